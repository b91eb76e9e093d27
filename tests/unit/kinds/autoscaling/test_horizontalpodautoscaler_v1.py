"""autoscaling/v1 HorizontalPodAutoscaler over the v2 store."""

from __future__ import annotations

import copy
import json
from typing import Any

from timonel.kinds.autoscaling.horizontalpodautoscaler import HorizontalPodAutoscalerStrategy
from timonel.kinds.autoscaling.horizontalpodautoscaler_v1 import (
    BEHAVIOR_ANNOTATION,
    CONDITIONS_ANNOTATION,
    CURRENT_METRICS_ANNOTATION,
    METRICS_ANNOTATION,
    HorizontalPodAutoscalerV1Strategy,
    hpa_v1_to_v2,
    hpa_v2_to_v1,
)

V1 = HorizontalPodAutoscalerV1Strategy()
V2 = HorizontalPodAutoscalerStrategy()


def autoscale(cpu: int | None = 50) -> dict[str, Any]:
    """What `kubectl autoscale deployment php-apache --min=1 --max=10` (1.32) sends."""
    spec: dict[str, Any] = {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "php-apache"},
        "minReplicas": 1,
        "maxReplicas": 10,
    }
    if cpu is not None:
        spec["targetCPUUtilizationPercentage"] = cpu
    return {
        "apiVersion": "autoscaling/v1",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "php-apache", "namespace": "default"},
        "spec": spec,
    }


def created(obj: dict[str, Any]) -> dict[str, Any]:
    V1.default(obj)
    V1.prepare_for_create(obj)
    return obj


def test_create_through_v1() -> None:
    obj = created(autoscale())
    assert obj["spec"]["targetCPUUtilizationPercentage"] == 50
    assert obj["status"] == {"currentReplicas": 0, "desiredReplicas": 0}
    assert "annotations" not in obj["metadata"]
    assert V1.validate(obj) == []
    stored = V1.to_storage(obj)
    assert stored["apiVersion"] == "autoscaling/v2"
    assert stored["spec"]["metrics"] == [
        {
            "type": "Resource",
            "resource": {
                "name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": 50},
            },
        }
    ]
    assert stored["status"] == {"desiredReplicas": 0, "currentMetrics": None}
    assert V2.table_row(stored)[2] == "cpu: <unknown>/50%"


def test_cpu_target_defaults_to_80_percent() -> None:
    obj = created(autoscale(cpu=None))
    assert obj["spec"]["targetCPUUtilizationPercentage"] == 80


def test_v1_validation_uses_the_v2_field_paths() -> None:
    obj = autoscale(cpu=0)
    V1.default(obj)
    assert [e.message() for e in V1.validate(obj)] == [
        "spec.metrics[0].resource.target.averageUtilization: Invalid value: 0: must be greater than 0"
    ]


def v2_hpa() -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web", "namespace": "default", "annotations": {"team": "a"}},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "minReplicas": 2,
            "maxReplicas": 5,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "memory",
                        "target": {"type": "AverageValue", "averageValue": "100Mi"},
                    },
                },
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": 60},
                    },
                },
            ],
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": 300}},
        },
    }
    V2.default(obj)
    V2.prepare_for_create(obj)
    obj["status"] = {
        "currentReplicas": 2,
        "desiredReplicas": 2,
        "currentMetrics": [
            {
                "type": "Resource",
                "resource": {
                    "name": "cpu",
                    "current": {"averageUtilization": 12, "averageValue": "6m"},
                },
            }
        ],
        "conditions": [
            {
                "type": "AbleToScale",
                "status": "True",
                "lastTransitionTime": "2024-01-01T00:00:00Z",
                "reason": "ReadyForNewScale",
                "message": "recommended size matches current size",
            }
        ],
    }
    return obj


def test_v2_only_fields_travel_in_annotations() -> None:
    view = hpa_v2_to_v1(v2_hpa())
    annotations = view["metadata"]["annotations"]
    assert view["spec"] == {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
        "minReplicas": 2,
        "maxReplicas": 5,
        "targetCPUUtilizationPercentage": 60,
    }
    assert view["status"] == {
        "currentReplicas": 2,
        "desiredReplicas": 2,
        "currentCPUUtilizationPercentage": 12,
    }
    assert annotations["team"] == "a"
    assert annotations[METRICS_ANNOTATION] == (
        '[{"type":"Resource","resource":{"name":"memory","targetAverageValue":"100Mi"}}]'
    )
    assert annotations[BEHAVIOR_ANNOTATION] == (
        '{"ScaleUp":{"StabilizationWindowSeconds":0,"SelectPolicy":"Max","Policies":'
        '[{"Type":"Pods","Value":4,"PeriodSeconds":15},{"Type":"Percent","Value":100,'
        '"PeriodSeconds":15}]},"ScaleDown":{"StabilizationWindowSeconds":300,"SelectPolicy":'
        '"Max","Policies":[{"Type":"Percent","Value":100,"PeriodSeconds":15}]}}'
    )
    assert annotations[CURRENT_METRICS_ANNOTATION] == (
        '[{"type":"Resource","resource":{"name":"cpu","currentAverageUtilization":12,'
        '"currentAverageValue":"6m"}}]'
    )
    assert json.loads(annotations[CONDITIONS_ANNOTATION])[0]["reason"] == "ReadyForNewScale"


def test_round_trip_keeps_everything() -> None:
    original = v2_hpa()
    back = hpa_v1_to_v2(hpa_v2_to_v1(original))
    assert back["metadata"]["annotations"] == {"team": "a"}
    # The CPU target comes back last, after the annotated metrics.
    assert back["spec"]["metrics"] == original["spec"]["metrics"]
    assert back["spec"]["behavior"] == original["spec"]["behavior"]
    assert back["status"] == original["status"]


def test_updating_through_v1_keeps_v2_metrics_and_status() -> None:
    stored = v2_hpa()
    old = hpa_v2_to_v1(stored)
    new = copy.deepcopy(old)
    new["spec"]["maxReplicas"] = 8
    new["status"] = {}
    V1.default(new)
    V1.prepare_for_update(new, old)
    assert V1.validate_update(new, old) == []
    after = V1.to_storage(new)
    assert after["spec"]["maxReplicas"] == 8
    assert after["spec"]["metrics"] == stored["spec"]["metrics"]
    assert after["status"] == stored["status"]


def test_attributes() -> None:
    assert (V1.group, V1.version, V1.plural) == ("autoscaling", "v1", "horizontalpodautoscalers")
    assert V1.storage_resource == ("autoscaling", "horizontalpodautoscalers")
    assert V1.columns == V2.columns
