"""Node health, zone disruption and condition taints: the node lifecycle controller's
pure decisions."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

from timonel.api.objects import Object
from timonel.client.informer import InformerFactory
from timonel.controllers.manager import ControllerContext
from timonel.controllers.nodelifecycle import (
    NodeHealth,
    NodeLifecycleController,
    TaintQueue,
    ZoneState,
    assess_node_health,
    compute_zone_state,
    condition_taint_changes,
    no_execute_swap,
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


def test_assessment_shares_unchanged_conditions_and_leaves_the_saved_health() -> None:
    n = node(ready())
    first = assess(n, None, T0, T0)
    assert first.observed_ready is n["status"]["conditions"][0]
    assert first.current_ready is n["status"]["conditions"][0]
    saved = first.health
    kept = copy.copy(saved)
    renewed = assess(n, saved, T0 + timedelta(seconds=10), T0 + timedelta(seconds=10))
    assert renewed.health is not saved
    assert renewed.health.probe == T0 + timedelta(seconds=10)
    assert saved == kept
    quiet = assess(n, renewed.health, T0 + timedelta(seconds=10), T0 + timedelta(seconds=15))
    assert quiet.health is renewed.health and quiet.conditions is None


def test_an_unknown_node_is_not_written_again() -> None:
    unknown = {**ready("Unknown"), "reason": "NodeStatusUnknown"}
    n = node(unknown, {"type": "MemoryPressure", "status": "False"})
    health = assess(n, None, None, T0).health
    late = assess(n, health, None, T0 + timedelta(seconds=120))
    assert late.conditions is None
    assert late.current_ready == unknown and late.observed_ready == unknown


def test_no_execute_swap_fits_the_taint_to_the_ready_status() -> None:
    unreachable = {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}
    not_ready = {"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"}
    bare = node(ready())
    assert all(no_execute_swap(bare, status) is None for status in ("True", "False", "Unknown"))
    held = node(ready(), taints=[unreachable])
    assert no_execute_swap(held, "True") == ([], [unreachable])
    assert no_execute_swap(held, "False") == ([not_ready], [unreachable])
    assert no_execute_swap(held, "Unknown") is None
    assert no_execute_swap(node(ready(), taints=[not_ready]), "Unknown") == (
        [unreachable],
        [not_ready],
    )


# the monitor pass, with a client that records what it is asked


class RecordingClient:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    async def update_status(self, resource: Any, obj: Object) -> Object:
        self.calls.append(("update_status", obj["metadata"]["name"]))
        return obj

    async def patch(self, resource: Any, name: str, patch: Object, **_: Any) -> Object:
        self.calls.append(("patch", name))
        return {}

    async def get(self, resource: Any, name: str, namespace: str = "") -> Object:
        raise AssertionError(f"unexpected read of {name}")


class RecordingRecorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def event(self, obj: Object, type_: str, reason: str, message: str) -> None:
        self.events.append((reason, obj.get("name") or obj["metadata"]["name"]))


def lease(name: str, renewed: datetime) -> Object:
    return {
        "metadata": {"name": name, "namespace": "kube-node-lease", "resourceVersion": "1"},
        "spec": {"renewTime": renewed.strftime("%Y-%m-%dT%H:%M:%S.%fZ")},
    }


def named(
    name: str, *conditions: dict[str, Any], taints: list[dict[str, Any]] | None = None
) -> Object:
    found = node(*conditions, taints=taints)
    found["metadata"] = {**found["metadata"], "name": name, "uid": name}
    return found


def controller(
    clock: list[datetime],
) -> tuple[NodeLifecycleController, RecordingClient, RecordingRecorder]:
    client = RecordingClient()
    recorder = RecordingRecorder()
    context = ControllerContext(
        client=client,  # type: ignore[arg-type]
        informers=InformerFactory(client),  # type: ignore[arg-type]
        recorder=lambda _: recorder,  # type: ignore[arg-type,return-value]
    )
    return NodeLifecycleController(context, clock=lambda: clock[0]), client, recorder


async def test_a_pass_over_healthy_nodes_calls_nothing() -> None:
    clock = [T0]
    nlc, client, recorder = controller(clock)
    for name in ("a", "b", "c"):
        nlc.nodes.indexer.put(named(name, ready()))
        nlc.leases.indexer.put(lease(name, T0))
    await nlc.monitor()
    assert [reason for reason, _ in recorder.events] == ["RegisteredNode"] * 3
    for seconds in (5, 10, 30, 35):
        clock[0] = T0 + timedelta(seconds=seconds)
        for name in ("a", "b", "c"):
            nlc.leases.indexer.put(lease(name, clock[0]))
        await nlc.monitor()
    assert client.calls == []
    assert len(recorder.events) == 3
    assert set(nlc.health) == {"a", "b", "c"}
    assert all(nlc.health[name].probe == clock[0] for name in "abc")


async def test_a_pass_writes_only_for_nodes_that_need_it() -> None:
    clock = [T0]
    nlc, client, recorder = controller(clock)
    unreachable = {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}
    nlc.nodes.indexer.put(named("quiet", ready()))
    nlc.nodes.indexer.put(named("silent", ready()))
    nlc.leases.indexer.put(lease("quiet", T0))
    nlc.leases.indexer.put(lease("silent", T0))
    await nlc.monitor()
    # Back after an outage: still holding the unreachable NoExecute taint.
    nlc.nodes.indexer.put(named("back", ready(), taints=[unreachable]))
    nlc.leases.indexer.put(lease("back", T0))
    clock[0] = T0 + timedelta(seconds=41)
    nlc.leases.indexer.put(lease("quiet", clock[0]))
    nlc.leases.indexer.put(lease("back", clock[0]))
    client.calls.clear()
    await nlc.monitor()
    # "back" is registered and its taint goes (asked twice: the informer has not seen
    # the first patch when the pass reaches it), "silent" is Unknown (status written).
    assert sorted(client.calls) == [("patch", "back")] * 2 + [("update_status", "silent")]
    assert ("NodeNotReady", "silent") in recorder.events
    assert nlc.health["silent"].ready is not None
    assert nlc.health["silent"].ready["status"] == "Unknown"
