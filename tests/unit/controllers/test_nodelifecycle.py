"""Node health, zone disruption and condition taints: the node lifecycle controller's
pure decisions."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

from timonel.api.objects import Object
from timonel.controllers.nodelifecycle import (
    NodeHealth,
    TaintQueue,
    ZoneState,
    assess_node_health,
    compute_zone_state,
    condition_taint_changes,
    swap_taints,
    zone_key,
)

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def node(
    *conditions: dict[str, Any], taints: list[dict[str, Any]] | None = None, **labels: str
) -> Object:
    return {
        "metadata": {"name": "n1", "uid": "u", "creationTimestamp": stamp(T0), "labels": labels},
        "spec": {"taints": taints or []},
        "status": {"conditions": list(conditions)},
    }


def ready(status: str = "True", heartbeat: datetime = T0) -> dict[str, Any]:
    return {
        "type": "Ready",
        "status": status,
        "reason": "KubeletReady",
        "message": "kubelet is posting ready status",
        "lastHeartbeatTime": stamp(heartbeat),
        "lastTransitionTime": stamp(T0),
    }


def assess(n: Object, saved: NodeHealth | None, lease: datetime | None, now: datetime) -> Any:
    return assess_node_health(n, saved, lease, now, grace_period=40, startup_grace_period=60)


def test_a_fresh_node_is_healthy_until_the_grace_period_passes() -> None:
    n = node(ready(), {"type": "MemoryPressure", "status": "False"})
    first = assess(n, None, None, T0)
    assert first.conditions is None and first.current_ready["status"] == "True"
    quiet = assess(n, first.health, None, T0 + timedelta(seconds=39))
    assert quiet.conditions is None
    late = assess(n, quiet.health, None, T0 + timedelta(seconds=41))
    assert late.observed_ready["status"] == "True"
    assert late.current_ready == {
        **ready(),
        "status": "Unknown",
        "reason": "NodeStatusUnknown",
        "message": "Kubelet stopped posting node status.",
        "lastTransitionTime": stamp(T0 + timedelta(seconds=41)),
    }
    by_type = {c["type"]: c for c in late.conditions}
    assert by_type["MemoryPressure"]["status"] == "Unknown"
    assert by_type["DiskPressure"] == {
        "type": "DiskPressure",
        "status": "Unknown",
        "lastHeartbeatTime": stamp(T0),
        "lastTransitionTime": stamp(T0 + timedelta(seconds=41)),
        "reason": "NodeStatusNeverUpdated",
        "message": "Kubelet never posted node status.",
    }
    assert "NetworkUnavailable" not in by_type


def test_lease_renewals_keep_a_node_healthy() -> None:
    n = node(ready())
    health = assess(n, None, T0, T0).health
    for seconds in (30, 60, 90):
        result = assess(n, health, T0 + timedelta(seconds=seconds), T0 + timedelta(seconds=seconds))
        assert result.conditions is None
        health = result.health
    stale = assess(n, health, T0 + timedelta(seconds=90), T0 + timedelta(seconds=131))
    assert stale.current_ready["status"] == "Unknown"


def test_a_new_heartbeat_counts_as_a_probe() -> None:
    health = assess(node(ready()), None, None, T0).health
    later = T0 + timedelta(seconds=35)
    renewed = assess(node(ready(heartbeat=later)), health, None, later).health
    assert (
        assess(
            node(ready(heartbeat=later)), renewed, None, later + timedelta(seconds=30)
        ).conditions
        is None
    )


def test_a_node_that_never_reported_gets_the_startup_grace() -> None:
    n = node()
    assert assess(n, None, None, T0 + timedelta(seconds=59)).conditions is None
    late = assess(n, None, None, T0 + timedelta(seconds=61))
    assert late.current_ready["reason"] == "NodeStatusNeverUpdated"
    assert late.observed_ready["status"] == "Unknown"


def test_zone_states() -> None:
    up, down = {"status": "True"}, {"status": "Unknown"}
    assert compute_zone_state([up, down], 0.55) == (1, ZoneState.NORMAL)
    assert compute_zone_state([down, None], 0.55) == (2, ZoneState.FULL_DISRUPTION)
    assert compute_zone_state([up, down, down, down], 0.55) == (3, ZoneState.PARTIAL_DISRUPTION)
    assert compute_zone_state([up, up, down, down, down, up, up], 0.55) == (3, ZoneState.NORMAL)


def test_zone_key() -> None:
    assert zone_key(node()) == ""
    assert zone_key(node(**{"topology.kubernetes.io/zone": "a"})) == ":\x00:a"
    assert (
        zone_key(node(**{"topology.kubernetes.io/region": "r", "topology.kubernetes.io/zone": "a"}))
        == "r:\x00:a"
    )


def test_condition_taints_follow_conditions() -> None:
    not_ready = node(
        ready("False"),
        {"type": "DiskPressure", "status": "True"},
        taints=[
            {"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule"},
            {"key": "custom", "effect": "NoSchedule"},
        ],
    )
    add, remove = condition_taint_changes(not_ready)
    assert add == [
        {"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"},
        {"key": "node.kubernetes.io/disk-pressure", "effect": "NoSchedule"},
    ]
    assert remove == [{"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule"}]
    healthy = node(
        ready(), taints=[{"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}]
    )
    assert condition_taint_changes(healthy) == (
        [],
        [{"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}],
    )


def test_swap_taints_stamps_no_execute_taints() -> None:
    unreachable = {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}
    not_ready = {"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"}
    keep = {"key": "custom", "effect": "NoSchedule"}
    swapped = swap_taints([keep, {**not_ready, "timeAdded": "old"}], [unreachable], [not_ready], T0)
    assert swapped == [keep, {**unreachable, "timeAdded": stamp(T0)}]
    assert swap_taints([keep], [], [unreachable], T0) is None


def test_decisions_leave_the_node_alone() -> None:
    # The monitor hands them the informer's own (shared) objects.
    unreachable = {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}
    n = node(ready(), {"type": "MemoryPressure", "status": "False"}, taints=[unreachable])
    before = copy.deepcopy(n)
    health = assess(n, None, None, T0).health
    late = assess(n, health, None, T0 + timedelta(seconds=41))
    assert late.conditions is not None
    late.conditions[0]["status"] = "changed by the caller"
    late.current_ready["status"] = "changed by the caller"
    swapped = swap_taints(n["spec"]["taints"], [], [unreachable], T0)
    assert swapped == []
    assert condition_taint_changes(n) is not None
    assert n == before


def test_taint_queue_takes_a_node_once_until_removed() -> None:
    clock = [0.0]
    queue = TaintQueue(0.1, clock=lambda: clock[0])
    assert queue.add("a") and not queue.add("a")
    queue.pending.remove("a")  # handled: stays a member
    assert not queue.add("a")
    assert queue.remove("a") and queue.add("a")
    assert queue.limiter.try_accept()
    assert not queue.limiter.try_accept()
    clock[0] = 10.0
    assert queue.limiter.try_accept()
    queue.swap_limiter(0)
    clock[0] = 100.0
    assert not queue.limiter.try_accept()
