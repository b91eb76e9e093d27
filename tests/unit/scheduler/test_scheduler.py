"""Scheduling cycles over many nodes, and the shell that binds and reports failures."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from typing import Any

import pytest

from tests.unit.scheduler.builders import node, on, pod
from timonel.scheduler.framework import CycleState, PodInfo
from timonel.scheduler.scheduler import Scheduler, num_feasible_nodes_to_find, scheduled_message

Obj = dict[str, Any]

_PREFER_NO_SCHEDULE = {"key": "k", "value": "v", "effect": "PreferNoSchedule"}


@pytest.mark.parametrize(
    ("percentage", "nodes", "expected"),
    [
        (0, 50, 50),  # small clusters: every node
        (0, 100, 100),
        (0, 200, 100),  # 49% is 98, but at least 100
        (0, 1000, 420),  # 50% - 1000/125 = 42%
        (0, 5000, 500),  # 10%
        (0, 6500, 325),  # 50 - 52 < 5: 5%
        (30, 1000, 300),
        (100, 300, 300),
    ],
)
def test_num_feasible_nodes_to_find(percentage: int, nodes: int, expected: int) -> None:
    assert num_feasible_nodes_to_find(percentage, nodes) == expected


async def _refuse(pod: Obj, node_name: str) -> None:
    raise AssertionError("cycles only")


async def _ignore(pod: Obj, message: str) -> None:
    return None


def _scheduler(nodes: list[Obj], placed: list[Obj] | None = None) -> Scheduler:
    scheduler = Scheduler(bind=_refuse, on_unschedulable=_ignore, rng=random.Random(7))
    for item in nodes:
        scheduler.on_node_add(item)
    for item in placed or []:
        scheduler.on_pod_add(item)
    return scheduler


def _place(scheduler: Scheduler, pending: Obj) -> str:
    """One cycle, then the binding confirmed as the informer would report it."""
    scheduler.on_pod_add(pending)
    queued = scheduler.queue.try_pop()
    assert queued is not None
    binding = scheduler.schedule_one(queued)
    assert binding is not None
    scheduler.cache.finish_binding(queued.pod)
    scheduler.queue.done(queued.uid)
    scheduler.on_pod_update(
        pending, on(binding.node_name, {**pending, "spec": dict(pending["spec"])})
    )
    return binding.node_name


def test_a_cycle_looks_at_a_window_and_the_next_starts_after_it() -> None:
    scheduler = _scheduler([node(f"n{i:04}") for i in range(1000)])
    first = scheduler.algorithm.schedule(PodInfo(pod(cpu="1")))
    assert first.feasible_nodes == 420 and first.evaluated_nodes == 420
    assert scheduler.algorithm.next_start_node_index == 420
    assert int(first.node_name[1:]) < 420
    second = scheduler.algorithm.schedule(PodInfo(pod(cpu="1")))
    assert 420 <= int(second.node_name[1:]) < 840


def test_rejected_nodes_count_as_evaluated() -> None:
    nodes = [node(f"full{i:03}", pods="0") for i in range(150)]
    nodes += [node(f"free{i:03}") for i in range(50)]
    scheduler = _scheduler(nodes)
    result = scheduler.algorithm.schedule(PodInfo(pod()))
    assert result.feasible_nodes == 50 and result.evaluated_nodes == 200
    assert result.node_name.startswith("free")
    assert scheduler.algorithm.next_start_node_index == 0


def test_filtering_stops_once_enough_nodes_fit() -> None:
    # 500 nodes: 46% -> 230 to find; 30 rejected among the first nodes looked at.
    nodes = [node(f"n{i:03}", pods="0" if i % 10 == 0 and i < 300 else "110") for i in range(500)]
    scheduler = _scheduler(nodes)
    result = scheduler.algorithm.schedule(PodInfo(pod()))
    assert result.feasible_nodes == 230
    # The window ended at the 230th feasible node: n000..n255 hold 26 full nodes.
    assert result.evaluated_nodes == 256
    assert scheduler.algorithm.next_start_node_index == 256


def test_pods_spread_over_identical_nodes() -> None:
    scheduler = _scheduler([node(f"n{i}") for i in range(20)])
    placements = Counter(
        _place(scheduler, pod(f"p{i}", cpu="100m", memory="128Mi")) for i in range(40)
    )
    assert sorted(placements.values()) == [2] * 20


def test_the_least_loaded_node_wins() -> None:
    placed = [on("busy", pod("x", cpu="3", memory="6Gi"))]
    scheduler = _scheduler([node("busy"), node("idle")], placed)
    assert scheduler.algorithm.schedule(PodInfo(pod(cpu="500m"))).node_name == "idle"


def test_scores_sum_weighted_plugins_and_tie_when_nothing_differs() -> None:
    zone = "topology.kubernetes.io/zone"
    placed = [on("busy", pod("x", cpu="3", memory="6Gi"))]
    nodes = [node("busy"), node("idle"), node("soft", taints=[_PREFER_NO_SCHEDULE])]
    scheduler = _scheduler([*nodes, node("big", cpu="8", labels={zone: "a"})], placed)
    framework = scheduler.framework
    info = PodInfo(pod(cpu="500m"))
    snapshot = scheduler.cache.snapshot()
    state = CycleState(snapshot)
    assert framework.run_pre_score(state, info, snapshot.nodes).is_success
    totals = framework.run_score(state, info, snapshot.nodes)
    assert totals is not None
    by_name = dict(zip((n.name for n in snapshot.nodes), totals, strict=True))
    # The untolerated PreferNoSchedule taint costs "soft" TaintToleration's 100 x 3.
    assert by_name["idle"] - by_name["soft"] == 300
    assert by_name["big"] > by_name["idle"] > by_name["busy"]
    same = _scheduler([node("a"), node("b")])
    snapshot = same.cache.snapshot()
    state = CycleState(snapshot)
    assert same.framework.run_pre_score(state, info, snapshot.nodes).is_success
    assert same.framework.run_score(state, info, snapshot.nodes) is None


def test_a_replica_set_spreads_across_zones() -> None:
    zone = "topology.kubernetes.io/zone"
    nodes = [
        node(f"{z}{i}", labels={zone: z}, cpu="64", memory="256Gi") for z in "abc" for i in range(2)
    ]
    scheduler = _scheduler(nodes)
    scheduler.on_replica_set(
        None,
        {
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"selector": {"matchLabels": {"app": "web"}}},
        },
    )
    placed = [
        _place(
            scheduler, pod(f"w{i}", cpu="100m", labels={"app": "web"}, owner=("ReplicaSet", "web"))
        )
        for i in range(6)
    ]
    assert Counter(name[0] for name in placed) == {"a": 2, "b": 2, "c": 2}
    assert len(set(placed)) == 6


def test_pods_for_another_scheduler_are_left_alone() -> None:
    scheduler = _scheduler([node("a")])
    scheduler.on_pod_add(pod("mine"))
    scheduler.on_pod_add(pod("theirs", scheduler_name="other-scheduler"))
    assert len(scheduler.queue) == 1


async def test_status_only_updates_do_not_retry_unschedulable_pods() -> None:
    scheduler = _scheduler([node("small", cpu="1")])
    pending = pod("big", cpu="2")
    scheduler.on_pod_add(pending)
    queued = scheduler.queue.try_pop()
    assert queued is not None and scheduler.schedule_one(queued) is None
    assert scheduler.queue.where(queued.uid) == "unschedulable"
    condition = {"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}
    with_status = {
        **pending,
        "status": {"phase": "Pending", "conditions": [condition]},
        "metadata": {**pending["metadata"], "resourceVersion": "2"},
    }
    scheduler.on_pod_update(pending, with_status)
    assert scheduler.queue.where(queued.uid) == "unschedulable"
    scheduler.on_node_add(node("large", cpu="4"))
    assert scheduler.queue.where(queued.uid) in ("active", "backoff")


def test_scheduled_message() -> None:
    assert (
        scheduled_message(pod("web", namespace="prod"), "n1")
        == "Successfully assigned prod/web to n1"
    )


class Recorder:
    def __init__(self) -> None:
        self.scheduler: Scheduler | None = None
        self.bound: list[tuple[str, str]] = []
        self.unschedulable: list[tuple[str, str]] = []
        self.errors: list[tuple[str, str]] = []
        self.refuse: set[str] = set()

    async def bind(self, obj: Obj, node_name: str) -> None:
        name = obj["metadata"]["name"]
        if name in self.refuse:
            self.refuse.discard(name)
            raise RuntimeError("boom")
        await asyncio.sleep(0)
        self.bound.append((name, node_name))
        assert self.scheduler is not None
        self.scheduler.on_pod_update(obj, on(node_name, {**obj, "spec": dict(obj["spec"])}))

    async def on_unschedulable(self, obj: Obj, message: str) -> None:
        self.unschedulable.append((obj["metadata"]["name"], message))

    async def on_error(self, obj: Obj, message: str) -> None:
        self.errors.append((obj["metadata"]["name"], message))


async def _until(condition: Any, timeout: float = 3.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.005)


async def test_run_binds_reports_and_retries() -> None:
    recorder = Recorder()
    clock = [0.0]
    scheduler = Scheduler(
        bind=recorder.bind,
        on_unschedulable=recorder.on_unschedulable,
        on_error=recorder.on_error,
        clock=lambda: clock[0],
        rng=random.Random(3),
    )
    recorder.scheduler = scheduler
    for i in range(3):
        scheduler.on_node_add(node(f"n{i}", cpu="2"))
    recorder.refuse.add("flaky")
    for i in range(5):
        scheduler.on_pod_add(pod(f"p{i}", cpu="500m"))
    scheduler.on_pod_add(pod("flaky", cpu="500m"))
    scheduler.on_pod_add(pod("huge", cpu="8"))
    scheduler.on_pod_add(pod("elsewhere", scheduler_name="other"))
    runner = asyncio.create_task(scheduler.run())
    try:
        await _until(
            lambda: len(recorder.bound) == 5 and recorder.errors and recorder.unschedulable
        )
        assert recorder.errors == [("flaky", 'running Bind plugin "DefaultBinder": boom')]
        assert recorder.unschedulable == [
            (
                "huge",
                "0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are available: "
                "3 No preemption victims found for incoming pod.",
            )
        ]
        # The failed binding was undone and the pod backs off, then gets bound.
        await scheduler.wait_idle()
        assert scheduler.cache.node_of(scheduler.queue.get(_uid(scheduler, "flaky")).uid) is None  # type: ignore[union-attr]
        clock[0] += 2
        scheduler.queue.flush_backoff_completed()
        await _until(lambda: len(recorder.bound) == 6)
        assert "flaky" in {name for name, _ in recorder.bound}
        assert "elsewhere" not in {name for name, _ in recorder.bound}
        used = Counter(node_name for _, node_name in recorder.bound)
        assert sum(used.values()) == 6 and max(used.values()) <= 4  # 2 cpu / 500m
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)


def _uid(scheduler: Scheduler, name: str) -> str:
    for uid in [*scheduler.queue.unschedulable, *scheduler.queue._backoff_live]:
        queued = scheduler.queue.get(uid)
        if queued is not None and queued.pod.name == name:
            return uid
    raise AssertionError(f"{name} is not queued")
