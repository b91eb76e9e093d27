"""Lease strategy: kube-apiserver 1.32's validation and table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from timonel.kinds.coordination.lease import LeaseStrategy

STRATEGY = LeaseStrategy()


def lease(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": "node-1", "namespace": "kube-node-lease"},
        "spec": spec,
    }


def test_node_heartbeat_lease_is_valid() -> None:
    obj = lease(
        holderIdentity="node-1", leaseDurationSeconds=40, renewTime="2024-05-01T10:00:00.123456Z"
    )
    assert STRATEGY.validate(obj) == []


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (
            {"leaseDurationSeconds": 0},
            ["spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0"],
        ),
        (
            {"leaseTransitions": -1},
            ["spec.leaseTransitions: Invalid value: -1: must be greater than or equal to 0"],
        ),
        (
            {"strategy": "Newest"},
            [
                'spec.strategy.strategy: Unsupported value: "Newest": supported values: "OldestEmulationVersion"'
            ],
        ),
        (
            {"preferredHolder": "node-2"},
            ["spec.preferredHolder: Forbidden: may only be specified if `strategy` is defined"],
        ),
    ],
)
def test_validation_errors(spec: dict[str, Any], expected: list[str]) -> None:
    assert [e.message() for e in STRATEGY.validate(lease(**spec))] == expected
    assert [e.message() for e in STRATEGY.validate_update(lease(**spec), lease())] == expected


def test_domain_prefixed_strategy_is_accepted() -> None:
    assert STRATEGY.validate(lease(strategy="example.com/mine", preferredHolder="a")) == []


def test_table_row_shows_the_holder() -> None:
    obj = lease(holderIdentity="node-1")
    obj["metadata"]["creationTimestamp"] = (datetime.now(UTC) - timedelta(hours=3)).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    assert STRATEGY.table_row(obj) == ["node-1", "node-1", "3h"]
    assert STRATEGY.table_row(lease())[1] == ""
    assert [c.name for c in STRATEGY.columns] == ["Name", "Holder", "Age"]
