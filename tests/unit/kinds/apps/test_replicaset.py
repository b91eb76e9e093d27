"""ReplicaSet strategy: defaults, validation, table and field selectors."""

from __future__ import annotations

import copy
from typing import Any

from timonel.kinds.apps.replicaset import ReplicaSetStrategy

STRATEGY = ReplicaSetStrategy()


def frontend() -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": "frontend", "namespace": "default", "uid": "u1"},
        "spec": {
            "selector": {"matchLabels": {"tier": "frontend"}},
            "template": {
                "metadata": {"labels": {"tier": "frontend"}},
                "spec": {
                    "containers": [
                        {"name": "php-redis", "image": "gcr.io/google_samples/gb-frontend:v3"}
                    ]
                },
            },
        },
    }


def created() -> dict[str, Any]:
    obj = frontend()
    STRATEGY.default(obj)
    STRATEGY.prepare_for_create(obj)
    return obj


def test_defaults_and_initial_status() -> None:
    obj = created()
    assert obj["spec"]["replicas"] == 1
    assert obj["spec"]["template"]["metadata"]["creationTimestamp"] is None
    assert obj["spec"]["template"]["spec"]["restartPolicy"] == "Always"
    # `replicas` is not omitempty in ReplicaSetStatus: a new one reports 0.
    assert obj["status"] == {"replicas": 0}
    assert STRATEGY.validate(obj) == []


def test_status_update_fills_zero_replicas() -> None:
    obj = created()
    new = copy.deepcopy(obj)
    new["status"] = {"observedGeneration": 1}
    STRATEGY.default(new)
    STRATEGY.prepare_for_status_update(new, obj)
    assert new["status"] == {"observedGeneration": 1, "replicas": 0}


def test_empty_selector_message_is_the_deployment_one() -> None:
    obj = frontend()
    obj["spec"]["selector"] = {"matchLabels": {}}
    STRATEGY.default(obj)
    assert [e.message() for e in STRATEGY.validate(obj)] == [
        "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{}, "
        "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for deployment"
    ]


def test_invalid_selector_operator() -> None:
    obj = frontend()
    obj["spec"]["selector"] = {"matchExpressions": [{"key": "tier", "operator": "Near"}]}
    STRATEGY.default(obj)
    found = [e.message() for e in STRATEGY.validate(obj)]
    assert (
        found[0]
        == 'spec.selector.matchExpressions[0].operator: Invalid value: "Near": not a valid selector operator'
    )
    assert found[-1].startswith("spec.selector: Invalid value: v1.LabelSelector{")
    assert found[-1].endswith(": invalid label selector")


def test_selector_immutable_and_generation() -> None:
    old = created()
    new = copy.deepcopy(old)
    new["spec"]["selector"]["matchLabels"]["tier"] = "backend"
    new["spec"]["template"]["metadata"]["labels"]["tier"] = "backend"
    STRATEGY.prepare_for_update(new, old)
    assert new["metadata"]["generation"] == 2
    assert [e.field for e in STRATEGY.validate_update(new, old)] == ["spec.selector"]


def test_status_limits() -> None:
    old = created()
    new = copy.deepcopy(old)
    new["status"] = {
        "replicas": 2,
        "fullyLabeledReplicas": 3,
        "readyReplicas": 1,
        "availableReplicas": 2,
    }
    assert [e.message() for e in STRATEGY.validate_status_update(new, old)] == [
        "status.fullyLabeledReplicas: Invalid value: 3: cannot be greater than status.replicas",
        "status.availableReplicas: Invalid value: 2: cannot be greater than readyReplicas",
    ]


def test_table_row_and_field_selector() -> None:
    obj = created()
    obj["spec"]["replicas"] = 3
    obj["status"] = {"replicas": 3, "readyReplicas": 2}
    row = STRATEGY.table_row(obj)
    assert row[:4] == ["frontend", 3, 3, 2]
    assert row[5:] == ["php-redis", "gcr.io/google_samples/gb-frontend:v3", "tier=frontend"]
    assert [c.name for c in STRATEGY.columns] == [
        "Name",
        "Desired",
        "Current",
        "Ready",
        "Age",
        "Containers",
        "Images",
        "Selector",
    ]
    assert [c.type for c in STRATEGY.columns[1:4]] == ["integer"] * 3
    assert STRATEGY.field_labels == ("status.replicas",)
    assert STRATEGY.selectable_fields(obj) == {
        "metadata.name": "frontend",
        "metadata.namespace": "default",
        "status.replicas": "3",
    }
    assert STRATEGY.short_names == ("rs",)
