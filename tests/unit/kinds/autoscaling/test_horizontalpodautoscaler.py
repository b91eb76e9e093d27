"""HorizontalPodAutoscaler (autoscaling/v2): defaults, validation and the TARGETS cell."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from timonel.kinds.autoscaling.horizontalpodautoscaler import (
    HorizontalPodAutoscalerStrategy,
    format_hpa_metrics,
)

STRATEGY = HorizontalPodAutoscalerStrategy()


def php_apache() -> dict[str, Any]:
    """What `kubectl autoscale deployment php-apache --cpu-percent=50 --min=1 --max=10` sends."""
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "php-apache", "namespace": "default"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "php-apache"},
            "minReplicas": 1,
            "maxReplicas": 10,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": 50},
                    },
                }
            ],
        },
    }


def created(obj: dict[str, Any] | None = None) -> dict[str, Any]:
    obj = obj if obj is not None else php_apache()
    STRATEGY.default(obj)
    STRATEGY.prepare_for_create(obj)
    return obj


def messages(obj: dict[str, Any]) -> list[str]:
    return [e.message() for e in STRATEGY.validate(obj)]


def test_create_fills_status_as_go_writes_it() -> None:
    obj = created()
    assert obj["status"] == {"currentMetrics": None, "desiredReplicas": 0}
    assert "behavior" not in obj["spec"]
    assert STRATEGY.validate(obj) == []


def test_defaults_min_replicas_and_cpu_metric() -> None:
    obj = php_apache()
    del obj["spec"]["minReplicas"], obj["spec"]["metrics"]
    STRATEGY.default(obj)
    assert obj["spec"]["minReplicas"] == 1
    assert obj["spec"]["metrics"] == [
        {
            "type": "Resource",
            "resource": {
                "name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": 80},
            },
        }
    ]


def test_behavior_is_completed_when_given() -> None:
    obj = php_apache()
    obj["spec"]["behavior"] = {"scaleDown": {"stabilizationWindowSeconds": 300}}
    STRATEGY.default(obj)
    assert obj["spec"]["behavior"] == {
        "scaleDown": {
            "stabilizationWindowSeconds": 300,
            "selectPolicy": "Max",
            "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}],
        },
        "scaleUp": {
            "stabilizationWindowSeconds": 0,
            "selectPolicy": "Max",
            "policies": [
                {"type": "Pods", "value": 4, "periodSeconds": 15},
                {"type": "Percent", "value": 100, "periodSeconds": 15},
            ],
        },
    }
    again = copy.deepcopy(obj)
    STRATEGY.default(again)
    assert again == obj


def test_target_quantities_are_canonical() -> None:
    obj = php_apache()
    obj["spec"]["metrics"] = [
        {
            "type": "Pods",
            "pods": {
                "metric": {"name": "rps"},
                "target": {"type": "AverageValue", "averageValue": "0.5"},
            },
        }
    ]
    STRATEGY.default(obj)
    assert obj["spec"]["metrics"][0]["pods"]["target"]["averageValue"] == "500m"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda s: s.update(minReplicas=5, maxReplicas=2),
            ["spec.maxReplicas: Invalid value: 2: must be greater than or equal to `minReplicas`"],
        ),
        (
            lambda s: s.update(maxReplicas=0),
            ["spec.maxReplicas: Invalid value: 0: must be greater than 0"],
        ),
        (
            lambda s: s.update(minReplicas=0),
            ["spec.minReplicas: Invalid value: 0: must be greater than or equal to 1"],
        ),
        (
            lambda s: s["scaleTargetRef"].update(name="a/b", kind=""),
            [
                "spec.scaleTargetRef.kind: Required value",
                "spec.scaleTargetRef.name: Invalid value: \"a/b\": may not contain '/'",
            ],
        ),
        (
            lambda s: s["metrics"][0]["resource"]["target"].update(averageUtilization=0),
            [
                "spec.metrics[0].resource.target.averageUtilization: Invalid value: 0: must be greater than 0"
            ],
        ),
        (
            lambda s: s["metrics"][0]["resource"]["target"].update(averageValue="100m"),
            [
                "spec.metrics[0].resource.target.averageValue: Forbidden: may not set both a target "
                "raw value and a target utilization"
            ],
        ),
        (
            lambda s: s["metrics"][0].update(type="Pods"),
            [
                "spec.metrics[0].pods: Required value: must populate information for the given metric source",
            ],
        ),
        (
            lambda s: s["metrics"][0].update(
                pods={
                    "metric": {"name": "rps"},
                    "target": {"type": "AverageValue", "averageValue": "1"},
                }
            ),
            ["spec.metrics[0].pods: Forbidden: must populate the given metric source only"],
        ),
        (
            lambda s: s["metrics"][0].update(type="Magic"),
            [
                'spec.metrics[0].type: Unsupported value: "Magic": supported values: "ContainerResource", '
                '"External", "Object", "Pods", "Resource"'
            ],
        ),
        (
            lambda s: s.update(
                behavior={
                    "scaleUp": {
                        "selectPolicy": "Most",
                        "policies": [{"type": "Pods", "value": 0, "periodSeconds": 2000}],
                    }
                }
            ),
            [
                'spec.behavior.scaleUp.selectPolicy: Unsupported value: "Most": supported values: "Disabled", "Max", "Min"',
                "spec.behavior.scaleUp.policies[0].value: Invalid value: 0: must be greater than zero",
                "spec.behavior.scaleUp.policies[0].periodSeconds: Invalid value: 2000: must be less than or equal to 1800",
            ],
        ),
    ],
)
def test_validation_messages(change: Any, expected: list[str]) -> None:
    obj = php_apache()
    change(obj["spec"])
    assert messages(obj) == expected


@pytest.mark.parametrize(
    ("metrics", "current", "expected"),
    [
        (None, None, "cpu: <unknown>/50%"),
        (
            None,
            [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "current": {"averageUtilization": 12, "averageValue": "1m"},
                    },
                }
            ],
            "cpu: 12%/50%",
        ),
        (
            [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "memory",
                        "target": {"type": "AverageValue", "averageValue": "100Mi"},
                    },
                }
            ],
            [
                {
                    "type": "Resource",
                    "resource": {"name": "memory", "current": {"averageValue": "52428800"}},
                }
            ],
            "memory: 52428800/100Mi",
        ),
        (
            [
                {
                    "type": "Pods",
                    "pods": {
                        "metric": {"name": "rps"},
                        "target": {"type": "AverageValue", "averageValue": "1k"},
                    },
                }
            ],
            None,
            "<unknown>/1k",
        ),
        (
            [
                {
                    "type": "External",
                    "external": {
                        "metric": {"name": "queue"},
                        "target": {"type": "AverageValue", "averageValue": "30"},
                    },
                }
            ],
            None,
            "<unknown>/30 (avg)",
        ),
        (
            [
                {
                    "type": "Object",
                    "object": {
                        "metric": {"name": "hits"},
                        "describedObject": {"kind": "Service", "name": "s"},
                        "target": {"type": "Value", "value": "10"},
                    },
                }
            ],
            [{"type": "Object", "object": {"metric": {"name": "hits"}, "current": {"value": "7"}}}],
            "7/10",
        ),
        ([], None, "<none>"),
    ],
)
def test_targets_cell(metrics: Any, current: Any, expected: str) -> None:
    obj = created()
    if metrics is not None:
        obj["spec"]["metrics"] = metrics
    if current is not None:
        obj["status"]["currentMetrics"] = current
    assert format_hpa_metrics(obj) == expected


def test_more_than_two_targets_are_summarised() -> None:
    obj = created()
    cpu = obj["spec"]["metrics"][0]
    obj["spec"]["metrics"] = [cpu, cpu, cpu, cpu]
    assert format_hpa_metrics(obj) == "cpu: <unknown>/50%, cpu: <unknown>/50% + 2 more..."


def test_table_row_and_columns() -> None:
    obj = created()
    obj["status"]["currentReplicas"] = 2
    row = STRATEGY.table_row(obj)
    assert row[:6] == ["php-apache", "Deployment/php-apache", "cpu: <unknown>/50%", "1", 10, 2]
    assert [c.name for c in STRATEGY.columns] == [
        "Name",
        "Reference",
        "Targets",
        "MinPods",
        "MaxPods",
        "Replicas",
        "Age",
    ]
    assert (STRATEGY.group, STRATEGY.version) == ("autoscaling", "v2")
    assert STRATEGY.short_names == ("hpa",)
    assert STRATEGY.categories == ("all",)
    assert STRATEGY.has_status and not STRATEGY.tracks_generation


def test_status_update_keeps_spec_and_checks_counts() -> None:
    old = created()
    new = copy.deepcopy(old)
    new["spec"]["maxReplicas"] = 99
    new["status"] = {"currentReplicas": -1, "desiredReplicas": 1}
    STRATEGY.default(new)
    STRATEGY.prepare_for_status_update(new, old)
    assert new["spec"]["maxReplicas"] == 10
    assert new["status"]["currentMetrics"] is None
    assert [e.message() for e in STRATEGY.validate_status_update(new, old)] == [
        "status.currentReplicas: Invalid value: -1: must be greater than or equal to 0"
    ]
