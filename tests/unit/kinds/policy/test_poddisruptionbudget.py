"""PodDisruptionBudget (policy/v1): validation, table and the budget arithmetic."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from timonel.kinds.policy.poddisruptionbudget import (
    PodDisruptionBudgetStrategy,
    desired_healthy,
    disruption_allowed,
    disruption_budget_cause,
    disruptions_allowed,
)

STRATEGY = PodDisruptionBudgetStrategy()


def zk_pdb(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": "zk-pdb", "namespace": "default"},
        "spec": {"selector": {"matchLabels": {"app": "zookeeper"}}, **spec},
    }


def created(obj: dict[str, Any]) -> dict[str, Any]:
    STRATEGY.default(obj)
    STRATEGY.prepare_for_create(obj)
    return obj


def test_create_writes_the_zero_counters() -> None:
    obj = created(zk_pdb(minAvailable=2))
    assert obj["status"] == {
        "disruptionsAllowed": 0,
        "currentHealthy": 0,
        "desiredHealthy": 0,
        "expectedPods": 0,
    }
    assert obj["metadata"]["generation"] == 1
    assert obj["spec"] == {"selector": {"matchLabels": {"app": "zookeeper"}}, "minAvailable": 2}
    assert STRATEGY.validate(obj) == []


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({}, []),
        ({"maxUnavailable": "50%"}, []),
        (
            {"minAvailable": 1, "maxUnavailable": 1},
            [
                'spec: Invalid value: {"maxUnavailable":1,"minAvailable":1,"selector":{"matchLabels":'
                '{"app":"zookeeper"}}}: minAvailable and maxUnavailable cannot be both set'
            ],
        ),
        (
            {"minAvailable": -1},
            ["spec.minAvailable: Invalid value: -1: must be greater than or equal to 0"],
        ),
        (
            {"maxUnavailable": "150%"},
            [
                'spec.maxUnavailable: Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:"150%"}: must not be greater than 100%'
            ],
        ),
        (
            {"minAvailable": "two"},
            [
                'spec.minAvailable: Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:"two"}: a valid '
                "percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%')"
            ],
        ),
        (
            {"unhealthyPodEvictionPolicy": "Never"},
            [
                'spec.unhealthyPodEvictionPolicy: Unsupported value: "Never": supported values: "AlwaysAllow", "IfHealthyBudget"'
            ],
        ),
    ],
)
def test_validation(spec: dict[str, Any], expected: list[str]) -> None:
    assert [e.message() for e in STRATEGY.validate(zk_pdb(**spec))] == expected


def test_spec_changes_bump_generation_and_status_is_kept() -> None:
    old = created(zk_pdb(minAvailable=2))
    old["status"]["disruptionsAllowed"] = 1
    new = copy.deepcopy(old)
    new["spec"]["minAvailable"] = 1
    new["status"] = {}
    STRATEGY.prepare_for_update(new, old)
    assert new["metadata"]["generation"] == 2
    assert new["status"]["disruptionsAllowed"] == 1


def test_status_counters_may_not_be_negative() -> None:
    old = created(zk_pdb(minAvailable=2))
    new = copy.deepcopy(old)
    new["status"] = {"disruptionsAllowed": -1}
    STRATEGY.default(new)
    assert new["status"]["expectedPods"] == 0
    assert [e.message() for e in STRATEGY.validate_status_update(new, old)] == [
        "status.disruptionsAllowed: Invalid value: -1: must be greater than or equal to 0"
    ]


def test_table_row() -> None:
    obj = created(zk_pdb(minAvailable=2))
    obj["status"]["disruptionsAllowed"] = 1
    assert STRATEGY.table_row(obj)[:4] == ["zk-pdb", "2", "N/A", 1]
    assert STRATEGY.table_row(created(zk_pdb(maxUnavailable="25%")))[:4] == [
        "zk-pdb",
        "N/A",
        "25%",
        0,
    ]
    assert [c.name for c in STRATEGY.columns] == [
        "Name",
        "Min Available",
        "Max Unavailable",
        "Allowed Disruptions",
        "Age",
    ]
    assert STRATEGY.short_names == ("pdb",)


@pytest.mark.parametrize(
    ("spec", "expected_pods", "desired"),
    [
        ({"minAvailable": 2}, 3, 2),
        ({"minAvailable": "50%"}, 3, 2),
        ({"maxUnavailable": 1}, 3, 2),
        ({"maxUnavailable": "50%"}, 3, 1),
        ({"maxUnavailable": 5}, 3, 0),
        ({}, 3, 0),
    ],
)
def test_desired_healthy(spec: dict[str, Any], expected_pods: int, desired: int) -> None:
    assert desired_healthy(zk_pdb(**spec), expected_pods) == desired


def test_disruptions_allowed() -> None:
    assert disruptions_allowed(current_healthy=3, desired=2, expected_pods=3) == 1
    assert disruptions_allowed(current_healthy=1, desired=2, expected_pods=3) == 0
    assert disruptions_allowed(current_healthy=3, desired=0, expected_pods=0) == 0


def test_disruption_allowed_needs_an_up_to_date_budget_with_room() -> None:
    pdb = created(zk_pdb(minAvailable=2))
    pdb["status"].update(
        disruptionsAllowed=1, observedGeneration=1, currentHealthy=3, desiredHealthy=2
    )
    assert disruption_allowed(pdb)
    stale = copy.deepcopy(pdb)
    stale["metadata"]["generation"] = 2
    assert not disruption_allowed(stale)
    full = copy.deepcopy(pdb)
    full["status"]["disruptionsAllowed"] = 0
    assert not disruption_allowed(full)
    assert (
        disruption_budget_cause(full)
        == "The disruption budget zk-pdb needs 2 healthy pods and has 3 currently"
    )
