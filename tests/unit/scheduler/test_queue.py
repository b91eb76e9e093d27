"""The scheduling queue: ordering, backoff, and retrying unschedulable pods on events."""

from __future__ import annotations

import asyncio

import pytest

from tests.unit.scheduler.builders import pod
from timonel.scheduler.framework import ClusterEvent, PodInfo
from timonel.scheduler.queue import QueuedPodInfo, SchedulingQueue

FIT = "NodeResourcesFit"
AFFINITY = "NodeAffinity"
EVENTS = {
    FIT: frozenset({ClusterEvent.NODE_ADD, ClusterEvent.ASSIGNED_POD_DELETE}),
    AFFINITY: frozenset({ClusterEvent.NODE_ADD, ClusterEvent.NODE_LABEL_CHANGE}),
}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def queue(clock: Clock) -> SchedulingQueue:
    return SchedulingQueue(clock=clock, plugin_events=EVENTS)


def _info(name: str, **kwargs: object) -> PodInfo:
    return PodInfo(pod(name, **kwargs))  # type: ignore[arg-type]


def _pop(queue: SchedulingQueue) -> QueuedPodInfo:
    queued = queue.try_pop()
    assert queued is not None
    return queued


def _fail(queue: SchedulingQueue, queued: QueuedPodInfo, *plugins: str) -> None:
    queue.add_unschedulable(queued, queue.scheduling_cycle, plugins)


def test_higher_priority_first_then_oldest(queue: SchedulingQueue, clock: Clock) -> None:
    queue.add(_info("old"))
    clock.now += 1
    queue.add(_info("new"))
    queue.add(_info("urgent", priority=1000))
    assert [_pop(queue).pod.name for _ in range(3)] == ["urgent", "old", "new"]
    assert queue.try_pop() is None


@pytest.mark.parametrize(
    ("attempts", "seconds"), [(1, 1), (2, 2), (3, 4), (4, 8), (5, 10), (9, 10)]
)
def test_backoff_doubles_up_to_ten_seconds(
    queue: SchedulingQueue, attempts: int, seconds: float
) -> None:
    queued = QueuedPodInfo(_info("p"), timestamp=0.0, attempts=attempts)
    assert queue.backoff_duration(queued) == seconds


def test_error_backs_off_then_returns(queue: SchedulingQueue, clock: Clock) -> None:
    queue.add(_info("p"))
    queued = _pop(queue)
    _fail(queue, queued)  # no rejecting plugin: an error
    assert queue.where(queued.uid) == "backoff"
    clock.now += 0.5
    assert queue.flush_backoff_completed() == 0
    clock.now += 0.6
    assert queue.flush_backoff_completed() == 1
    assert _pop(queue).attempts == 2


def test_unschedulable_pod_waits_for_an_event_its_plugins_care_about(
    queue: SchedulingQueue, clock: Clock
) -> None:
    queue.add(_info("p"))
    queued = _pop(queue)
    _fail(queue, queued, FIT)
    assert queue.where(queued.uid) == "unschedulable"
    assert queue.move_all_to_active_or_backoff(ClusterEvent.NODE_LABEL_CHANGE) == 0
    assert queue.where(queued.uid) == "unschedulable"
    clock.now += 5  # past the 1s backoff of the first attempt
    assert queue.move_all_to_active_or_backoff(ClusterEvent.ASSIGNED_POD_DELETE) == 1
    assert queue.where(queued.uid) == "active"


def test_event_during_backoff_moves_to_backoff(queue: SchedulingQueue, clock: Clock) -> None:
    queue.add(_info("p"))
    queued = _pop(queue)
    _fail(queue, queued, AFFINITY)
    clock.now += 0.1
    queue.move_all_to_active_or_backoff(ClusterEvent.NODE_ADD)
    assert queue.where(queued.uid) == "backoff"


def test_event_during_the_cycle_is_not_lost(queue: SchedulingQueue) -> None:
    queue.add(_info("p"))
    queued = _pop(queue)
    cycle = queue.scheduling_cycle
    queue.move_all_to_active_or_backoff(ClusterEvent.NODE_ADD)  # arrives mid-cycle
    queue.add_unschedulable(queued, cycle, [FIT])
    assert queue.where(queued.uid) == "backoff"


def test_unschedulable_pods_retried_after_five_minutes(
    queue: SchedulingQueue, clock: Clock
) -> None:
    queue.add(_info("p"))
    queued = _pop(queue)
    _fail(queue, queued, FIT)
    clock.now += 299
    assert queue.flush_unschedulable_left_over() == 0
    clock.now += 2
    assert queue.flush_unschedulable_left_over() == 1
    assert queue.where(queued.uid) == "active"


def test_gated_pod_waits_for_its_gates_to_go(queue: SchedulingQueue) -> None:
    gated = pod("g")
    gated["spec"]["schedulingGates"] = [{"name": "example.com/wait"}]
    queue.add(PodInfo(gated))
    assert queue.where(PodInfo(gated).uid) == "unschedulable"
    assert queue.move_all_to_active_or_backoff(ClusterEvent.NODE_ADD) == 0
    assert queue.try_pop() is None
    released = {**gated, "spec": {**gated["spec"], "schedulingGates": []}}
    queue.update(PodInfo(released))
    assert _pop(queue).pod.name == "g"


def test_update_of_an_unschedulable_pod_retries_it(queue: SchedulingQueue, clock: Clock) -> None:
    original = pod("p")
    queue.add(PodInfo(original))
    queued = _pop(queue)
    _fail(queue, queued, AFFINITY)
    clock.now += 2
    changed = {**original, "spec": {**original["spec"], "nodeSelector": {"disk": "ssd"}}}
    queue.update(PodInfo(changed))
    popped = _pop(queue)
    assert popped.pod.pod is changed
    assert popped.attempts == 2


def test_delete(queue: SchedulingQueue) -> None:
    info = _info("p")
    queue.add(info)
    queue.delete(info.uid)
    assert info.uid not in queue
    assert queue.try_pop() is None


async def test_pop_waits_for_a_pod(queue: SchedulingQueue) -> None:
    waiter = asyncio.create_task(queue.pop())
    await asyncio.sleep(0)
    assert not waiter.done()
    queue.add(_info("late"))
    popped = await asyncio.wait_for(waiter, 1)
    assert popped.pod.name == "late"
    assert queue.where(popped.uid) == "in-flight"
    queue.done(popped.uid)
    assert queue.where(popped.uid) is None


def test_pod_deleted_during_its_cycle_is_not_requeued(queue: SchedulingQueue) -> None:
    queue.add(_info("p"))
    queued = _pop(queue)
    queue.delete(queued.uid)
    _fail(queue, queued)
    assert queue.where(queued.uid) is None
    assert len(queue) == 0
