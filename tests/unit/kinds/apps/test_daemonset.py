"""DaemonSet strategy: defaults, the template generation annotation, validation, table."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from timonel.kinds.apps.daemonset import TEMPLATE_GENERATION_ANNOTATION, DaemonSetStrategy

STRATEGY = DaemonSetStrategy()


def fluentd() -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "fluentd-elasticsearch", "namespace": "kube-system", "uid": "u1"},
        "spec": {
            "selector": {"matchLabels": {"name": "fluentd-elasticsearch"}},
            "template": {
                "metadata": {"labels": {"name": "fluentd-elasticsearch"}},
                "spec": {
                    "nodeSelector": {"kubernetes.io/os": "linux"},
                    "containers": [
                        {
                            "name": "fluentd-elasticsearch",
                            "image": "quay.io/fluentd_elasticsearch/fluentd:v2.5.2",
                        }
                    ],
                },
            },
        },
    }


def created() -> dict[str, Any]:
    obj = fluentd()
    STRATEGY.default(obj)
    STRATEGY.prepare_for_create(obj)
    return obj


def test_defaults_status_and_template_generation() -> None:
    obj = created()
    assert obj["spec"]["updateStrategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0},
    }
    assert obj["spec"]["revisionHistoryLimit"] == 10
    assert obj["metadata"]["annotations"] == {TEMPLATE_GENERATION_ANNOTATION: "1"}
    assert obj["metadata"]["generation"] == 1
    assert obj["status"] == {
        "currentNumberScheduled": 0,
        "numberMisscheduled": 0,
        "desiredNumberScheduled": 0,
        "numberReady": 0,
    }
    assert STRATEGY.validate(obj) == []


def test_on_delete_strategy_has_no_rolling_update() -> None:
    obj = fluentd()
    obj["spec"]["updateStrategy"] = {"type": "OnDelete"}
    STRATEGY.default(obj)
    assert obj["spec"]["updateStrategy"] == {"type": "OnDelete"}


def test_template_generation_moves_only_with_the_template() -> None:
    old = created()
    relabelled = copy.deepcopy(old)
    relabelled["metadata"]["annotations"][TEMPLATE_GENERATION_ANNOTATION] = "7"
    relabelled["spec"]["minReadySeconds"] = 5
    STRATEGY.prepare_for_update(relabelled, old)
    assert relabelled["metadata"]["annotations"][TEMPLATE_GENERATION_ANNOTATION] == "1"
    assert relabelled["metadata"]["generation"] == 2

    new_image = copy.deepcopy(old)
    new_image["spec"]["template"]["spec"]["containers"][0]["image"] = "fluentd:v3"
    STRATEGY.prepare_for_update(new_image, old)
    assert new_image["metadata"]["annotations"][TEMPLATE_GENERATION_ANNOTATION] == "2"


@pytest.mark.parametrize(
    ("rolling", "expected"),
    [
        (
            {"maxUnavailable": 0, "maxSurge": 0},
            [
                "spec.updateStrategy.rollingUpdate.maxUnavailable: Required value: cannot be 0 when maxSurge is 0"
            ],
        ),
        (
            {"maxUnavailable": 1, "maxSurge": "10%"},
            [
                "spec.updateStrategy.rollingUpdate.maxSurge: Invalid value: "
                'intstr.IntOrString{Type:1, IntVal:0, StrVal:"10%"}: may not be set when maxUnavailable is non-zero'
            ],
        ),
    ],
)
def test_rolling_update_rules(rolling: dict[str, Any], expected: list[str]) -> None:
    obj = fluentd()
    obj["spec"]["updateStrategy"] = {"type": "RollingUpdate", "rollingUpdate": rolling}
    STRATEGY.default(obj)
    assert [e.message() for e in STRATEGY.validate(obj)] == expected


def test_missing_selector_cannot_match_the_template() -> None:
    obj = fluentd()
    del obj["spec"]["selector"]
    STRATEGY.default(obj)
    assert [e.message() for e in STRATEGY.validate(obj)] == [
        'spec.template.metadata.labels: Invalid value: map[string]string{"name":"fluentd-elasticsearch"}: '
        "`selector` does not match template `labels`"
    ]


def test_selector_is_immutable() -> None:
    old = created()
    new = copy.deepcopy(old)
    new["spec"]["selector"] = {"matchLabels": {"name": "fluentd-elasticsearch", "x": "y"}}
    new["spec"]["template"]["metadata"]["labels"]["x"] = "y"
    assert [e.field for e in STRATEGY.validate_update(new, old)] == ["spec.selector"]


def test_table_row() -> None:
    obj = created()
    obj["status"].update(
        desiredNumberScheduled=3,
        currentNumberScheduled=3,
        numberReady=2,
        updatedNumberScheduled=3,
        numberAvailable=2,
    )
    row = STRATEGY.table_row(obj)
    assert row[:7] == ["fluentd-elasticsearch", 3, 3, 2, 3, 2, "kubernetes.io/os=linux"]
    assert row[8:] == [
        "fluentd-elasticsearch",
        "quay.io/fluentd_elasticsearch/fluentd:v2.5.2",
        "name=fluentd-elasticsearch",
    ]
    assert [c.name for c in STRATEGY.columns] == [
        "Name",
        "Desired",
        "Current",
        "Ready",
        "Up-to-date",
        "Available",
        "Node Selector",
        "Age",
        "Containers",
        "Images",
        "Selector",
    ]
    assert STRATEGY.scale is None
    assert STRATEGY.short_names == ("ds",)


def test_node_selector_cell_without_selector() -> None:
    obj = created()
    del obj["spec"]["template"]["spec"]["nodeSelector"]
    assert STRATEGY.table_row(obj)[6] == "<none>"
