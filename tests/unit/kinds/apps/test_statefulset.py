"""StatefulSet strategy: defaults, the spec fields that may change, table."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from timonel.kinds.apps.statefulset import IMMUTABLE_SPEC_MESSAGE, StatefulSetStrategy

STRATEGY = StatefulSetStrategy()


def web() -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "web", "namespace": "default", "uid": "u1"},
        "spec": {
            "selector": {"matchLabels": {"app": "nginx"}},
            "serviceName": "nginx",
            "replicas": 3,
            "template": {
                "metadata": {"labels": {"app": "nginx"}},
                "spec": {
                    "containers": [
                        {
                            "name": "nginx",
                            "image": "registry.k8s.io/nginx-slim:0.24",
                            "volumeMounts": [{"name": "www", "mountPath": "/usr/share/nginx/html"}],
                        }
                    ]
                },
            },
            "volumeClaimTemplates": [
                {
                    "metadata": {"name": "www"},
                    "spec": {
                        "accessModes": ["ReadWriteOnce"],
                        "resources": {"requests": {"storage": "1Gi"}},
                    },
                }
            ],
        },
    }


def created(obj: dict[str, Any] | None = None) -> dict[str, Any]:
    obj = obj if obj is not None else web()
    STRATEGY.default(obj)
    STRATEGY.prepare_for_create(obj)
    return obj


def test_defaults() -> None:
    obj = created()
    spec = obj["spec"]
    assert spec["podManagementPolicy"] == "OrderedReady"
    assert spec["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}
    assert spec["persistentVolumeClaimRetentionPolicy"] == {
        "whenDeleted": "Retain",
        "whenScaled": "Retain",
    }
    assert spec["revisionHistoryLimit"] == 10
    assert spec["template"]["spec"]["dnsPolicy"] == "ClusterFirst"
    assert spec["volumeClaimTemplates"] == [
        {
            "metadata": {"name": "www", "creationTimestamp": None},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "1Gi"}},
                "volumeMode": "Filesystem",
            },
            "status": {"phase": "Pending"},
        }
    ]
    assert obj["status"] == {"replicas": 0, "availableReplicas": 0}
    assert STRATEGY.validate(obj) == []


def test_replicas_default_and_empty_service_name() -> None:
    obj = web()
    del obj["spec"]["replicas"], obj["spec"]["serviceName"]
    obj["spec"]["updateStrategy"] = {"type": "RollingUpdate"}
    STRATEGY.default(obj)
    assert obj["spec"]["replicas"] == 1
    assert obj["spec"]["serviceName"] == ""
    # An explicit RollingUpdate without rollingUpdate gets no partition.
    assert obj["spec"]["updateStrategy"] == {"type": "RollingUpdate"}


def test_name_must_be_a_dns_label() -> None:
    assert STRATEGY.name_problems("web.v1")
    assert STRATEGY.name_problems("web") == []


@pytest.mark.parametrize(
    ("change", "allowed"),
    [
        (lambda s: s.update(replicas=5), True),
        (lambda s: s["template"]["spec"]["containers"][0].update(image="nginx:2"), True),
        (lambda s: s.update(updateStrategy={"type": "OnDelete"}), True),
        (lambda s: s.update(minReadySeconds=10), True),
        (lambda s: s.update(ordinals={"start": 1}), True),
        (
            lambda s: s.update(
                persistentVolumeClaimRetentionPolicy={
                    "whenDeleted": "Delete",
                    "whenScaled": "Retain",
                }
            ),
            True,
        ),
        (lambda s: s.update(serviceName="other"), False),
        (lambda s: s.update(podManagementPolicy="Parallel"), False),
        (
            lambda s: s["volumeClaimTemplates"][0]["spec"]["resources"]["requests"].update(
                storage="2Gi"
            ),
            False,
        ),
    ],
)
def test_only_some_spec_fields_may_change(change: Any, allowed: bool) -> None:
    old = created()
    new = copy.deepcopy(old)
    change(new["spec"])
    STRATEGY.default(new)
    STRATEGY.prepare_for_update(new, old)
    found = [e.message() for e in STRATEGY.validate_update(new, old)]
    assert found == ([] if allowed else [f"spec: Forbidden: {IMMUTABLE_SPEC_MESSAGE}"])


def test_immutable_message_is_kube_apiservers() -> None:
    assert IMMUTABLE_SPEC_MESSAGE == (
        "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', "
        "'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"
    )


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda s: s.update(podManagementPolicy="Sometimes"),
            [
                "spec.podManagementPolicy: Invalid value: \"Sometimes\": must be 'OrderedReady' or 'Parallel'"
            ],
        ),
        (
            lambda s: s.update(
                updateStrategy={"type": "OnDelete", "rollingUpdate": {"partition": 1}}
            ),
            [
                'spec.updateStrategy.rollingUpdate: Invalid value: {"partition":1}: '
                "only allowed for updateStrategy 'RollingUpdate'"
            ],
        ),
        (
            lambda s: s.update(
                persistentVolumeClaimRetentionPolicy={"whenDeleted": "Keep", "whenScaled": "Retain"}
            ),
            [
                'spec.persistentVolumeClaimRetentionPolicy.whenDeleted: Unsupported value: "Keep": '
                'supported values: "Retain", "Delete"'
            ],
        ),
        (
            lambda s: s.update(selector={}),
            [
                "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), "
                "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for statefulset"
            ],
        ),
        (
            lambda s: s["template"]["spec"].update(restartPolicy="OnFailure"),
            [
                'spec.template.spec.restartPolicy: Unsupported value: "OnFailure": supported values: "Always"'
            ],
        ),
    ],
)
def test_validation_messages(change: Any, expected: list[str]) -> None:
    obj = web()
    change(obj["spec"])
    STRATEGY.default(obj)
    assert [e.message() for e in STRATEGY.validate(obj)] == expected


def test_table_row() -> None:
    obj = created()
    obj["status"]["readyReplicas"] = 2
    row = STRATEGY.table_row(obj)
    assert row[:2] == ["web", "2/3"]
    assert row[3:] == ["nginx", "registry.k8s.io/nginx-slim:0.24"]
    assert [c.name for c in STRATEGY.columns] == ["Name", "Ready", "Age", "Containers", "Images"]
    assert STRATEGY.short_names == ("sts",)
    assert STRATEGY.scale is not None
