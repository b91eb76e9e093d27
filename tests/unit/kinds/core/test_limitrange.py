"""LimitRanges and ResourceQuotas."""

from __future__ import annotations

import copy
from typing import Any

from timonel.kinds.core.limitrange import LimitRangeStrategy
from timonel.kinds.core.resourcequota import ResourceQuotaStrategy


def limit_range(*limits: dict[str, Any]) -> dict[str, Any]:
    obj = {
        "apiVersion": "v1",
        "kind": "LimitRange",
        "metadata": {"name": "l", "namespace": "default"},
        "spec": {"limits": list(limits)},
    }
    LimitRangeStrategy().default(obj)
    return obj


def test_container_defaults_cascade() -> None:
    obj = limit_range(
        {
            "type": "Container",
            "max": {"cpu": "2"},
            "min": {"memory": "0.5Gi"},
            "default": {"memory": "1Gi"},
        }
    )
    assert obj["spec"]["limits"][0] == {
        "type": "Container",
        "max": {"cpu": "2"},
        "min": {"memory": "512Mi"},
        "default": {"memory": "1Gi", "cpu": "2"},
        "defaultRequest": {"memory": "1Gi", "cpu": "2"},
    }
    assert LimitRangeStrategy().validate(obj) == []


def test_limit_range_validation() -> None:
    obj = limit_range(
        {"type": "Pod", "min": {"cpu": "2"}, "max": {"cpu": "1"}, "default": {"cpu": "1"}},
        {"type": "PersistentVolumeClaim"},
        {"type": "Shelf"},
    )
    assert [e.message() for e in LimitRangeStrategy().validate(obj)] == [
        "spec.limits[0].default: Forbidden: may not be specified when `type` is 'Pod'",
        'spec.limits[0].min[cpu]: Invalid value: "2": min value 2 is greater than max value 1',
        "spec.limits[1].limits: Required value: either minimum or maximum storage value is required, but "
        "neither was provided",
        'spec.limits[2].type: Invalid value: "Shelf": must be a standard limit type or fully qualified',
    ]


def quota(**spec: Any) -> dict[str, Any]:
    obj = {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": "q", "namespace": "default"},
        "spec": spec,
    }
    strategy = ResourceQuotaStrategy()
    strategy.default(obj)
    strategy.prepare_for_create(obj)
    return obj


def test_quota() -> None:
    strategy = ResourceQuotaStrategy()
    obj = quota(hard={"requests.cpu": "1", "limits.memory": "2Gi", "pods": "10"})
    assert obj["status"] == {}
    assert strategy.validate(obj) == []
    obj["status"] = {
        "hard": {"requests.cpu": "1", "limits.memory": "2Gi", "pods": "10"},
        "used": {"requests.cpu": "500m", "pods": "3"},
    }
    assert strategy.table_row(obj)[:3] == [
        "q",
        "pods: 3/10, requests.cpu: 500m/1",
        "limits.memory: 0/2Gi",
    ]
    bad = quota(hard={"pods": "1.5", "bananas": "1"})
    assert [e.message() for e in strategy.validate(bad)] == [
        'spec.hard[pods]: Invalid value: "1500m": must be an integer',
        'spec.hard[bananas]: Invalid value: "bananas": must be a standard resource type or fully qualified',
        'spec.hard[bananas]: Invalid value: "bananas": must be a standard resource for quota',
    ]


def test_quota_scopes() -> None:
    strategy = ResourceQuotaStrategy()
    conflicting = quota(hard={"pods": "1"}, scopes=["BestEffort", "NotBestEffort"])
    assert [e.message() for e in strategy.validate(conflicting)] == [
        'spec.scopes: Invalid value: []core.ResourceQuotaScope{"BestEffort", "NotBestEffort"}: conflicting scopes'
    ]
    old = quota(hard={"pods": "1"}, scopes=["Terminating"])
    new = copy.deepcopy(old)
    new["spec"]["scopes"] = ["NotTerminating"]
    assert [e.message() for e in strategy.validate_update(new, old)] == [
        'spec.scopes: Invalid value: []core.ResourceQuotaScope{"NotTerminating"}: field is immutable'
    ]
