"""The scheduler: one scheduling cycle as a synchronous function, and the thin shell that
feeds it cluster events and binds asynchronously.

A cycle (`SchedulingAlgorithm.schedule`) takes a pod and the cache's snapshot and runs:

    PreFilter -> Filter over a window of nodes -> PostFilter when nothing fits
              -> PreScore -> Score (+ normalize, weights) -> the best node, ties at random

Like kube-scheduler it stops filtering once it has found `num_feasible_nodes_to_find`
feasible nodes (all of them below 100 nodes; 50% minus 1% per 125 nodes, at least 5%
and 100 nodes, above), and each cycle starts where the previous one stopped, so every
node gets its turn.

The shell (`Scheduler`) owns the cache and the queue. Its `on_*` handlers are
synchronous and cheap; `run()` pops pods, runs a cycle, assumes the pod onto the chosen
node and binds it in a background task through the injected `bind` call. Failures are
reported through the injected `on_unschedulable` / `on_error` calls, which set the pod's
PodScheduled condition and record the FailedScheduling event.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from itertools import compress, repeat
from operator import eq
from typing import Any, Final

from timonel.api.objects import Object
from timonel.scheduler.cache import Cache, is_terminal
from timonel.scheduler.framework import (
    BindFunc,
    ClusterEvent,
    CycleState,
    Diagnosis,
    FitError,
    Handle,
    NodeInfo,
    PodInfo,
    Profile,
    Registry,
    Status,
    unresolvable,
)
from timonel.scheduler.plugins import DEFAULT_PROFILE, REGISTRY
from timonel.scheduler.queue import (
    BACKOFF_FLUSH_PERIOD,
    UNSCHEDULABLE_FLUSH_PERIOD,
    QueuedPodInfo,
    SchedulingQueue,
)
from timonel.scheduler.runtime import Framework

logger = logging.getLogger(__name__)

MIN_FEASIBLE_NODES_TO_FIND: Final = 100
MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND: Final = 5
# Filter at least this many nodes per batch, even when fewer feasible ones are missing.
_MIN_FILTER_BATCH: Final = 64

NO_NODES_AVAILABLE: Final = "no nodes available to schedule pods"

# What the I/O shell writes: the PodScheduled=False condition's reason is
# REASON_UNSCHEDULABLE for `on_unschedulable` and REASON_SCHEDULER_ERROR for `on_error`,
# with the message as given; the Warning event is EVENT_FAILED_SCHEDULING (action
# "Scheduling") with `event_note(message)`; after a binding, EVENT_SCHEDULED (Normal) with
# `scheduled_message(pod, node)`. All are reported as from DEFAULT_SCHEDULER_NAME.
REASON_UNSCHEDULABLE: Final = "Unschedulable"
REASON_SCHEDULER_ERROR: Final = "SchedulerError"
EVENT_FAILED_SCHEDULING: Final = "FailedScheduling"
EVENT_SCHEDULED: Final = "Scheduled"
NOTE_LENGTH_LIMIT: Final = 1024

FailureFunc = Callable[[Object, str], Awaitable[None]]


def num_feasible_nodes_to_find(percentage_of_nodes_to_score: int, num_all_nodes: int) -> int:
    """How many feasible nodes a cycle looks for before it stops filtering."""
    if num_all_nodes < MIN_FEASIBLE_NODES_TO_FIND:
        return num_all_nodes
    percentage = percentage_of_nodes_to_score
    if percentage == 0:
        percentage = max(50 - num_all_nodes // 125, MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND)
    return max(num_all_nodes * percentage // 100, MIN_FEASIBLE_NODES_TO_FIND)


def scheduled_message(pod: Object, node_name: str) -> str:
    """The message of the `Scheduled` event recorded after a successful binding."""
    metadata = pod.get("metadata") or {}
    return (
        f"Successfully assigned {metadata.get('namespace')}/{metadata.get('name')} to {node_name}"
    )


def event_note(message: str) -> str:
    """The message cut to an event note's 1024 characters, ending " ..." when cut."""
    if len(message) <= NOTE_LENGTH_LIMIT:
        return message
    return message[: NOTE_LENGTH_LIMIT - 4] + " ..."


class SchedulingError(Exception):
    """A cycle that failed for a reason other than the pod not fitting."""


@dataclass
class ScheduleResult:
    node_name: str
    evaluated_nodes: int
    feasible_nodes: int
    state: CycleState


def _window(nodes: Sequence[NodeInfo], start: int, size: int) -> list[NodeInfo]:
    end = start + size
    if end <= len(nodes):
        return nodes[start:end] if isinstance(nodes, list) else list(nodes[start:end])
    return [*nodes[start:], *nodes[: end - len(nodes)]]


class SchedulingAlgorithm:
    """Filter, score and pick a node for one pod at a time."""

    def __init__(self, framework: Framework, cache: Cache, rng: random.Random) -> None:
        self.framework = framework
        self.cache = cache
        self.rng = rng
        self.next_start_node_index = 0

    def schedule(self, pod: PodInfo) -> ScheduleResult:
        """The node for `pod`; raises FitError when none fits, SchedulingError on errors."""
        snapshot = self.cache.snapshot()
        all_nodes = snapshot.nodes
        if not all_nodes:
            raise SchedulingError(NO_NODES_AVAILABLE)
        state = CycleState(snapshot)
        feasible, diagnosis = self._find_nodes_that_fit(state, pod, all_nodes)
        if not feasible:
            post = self.framework.run_post_filter(state, pod, diagnosis)
            diagnosis.post_filter_message = post.message
            raise FitError(pod, len(all_nodes), diagnosis)
        evaluated = len(feasible) + len(diagnosis.node_statuses)
        if len(feasible) == 1:
            return ScheduleResult(feasible[0].name, evaluated, 1, state)
        status = self.framework.run_pre_score(state, pod, feasible)
        if not status.is_success:
            raise SchedulingError(status.message)
        totals = self.framework.run_score(state, pod, feasible)
        if totals is None:
            # Every node ties: the same draw as choosing from the list of all positions.
            chosen = self.rng.choice(range(len(feasible)))
        else:
            best = max(totals)
            if totals.count(best) == 1:
                chosen = totals.index(best)
            else:
                ties = list(compress(range(len(totals)), map(eq, totals, repeat(best))))
                chosen = self.rng.choice(ties)
        return ScheduleResult(feasible[chosen].name, evaluated, len(feasible), state)

    def _find_nodes_that_fit(
        self, state: CycleState, pod: PodInfo, all_nodes: Sequence[NodeInfo]
    ) -> tuple[list[NodeInfo], Diagnosis]:
        diagnosis = Diagnosis()
        narrowed, status, plugins = self.framework.run_pre_filter(state, pod, all_nodes)
        if not status.is_success:
            if not status.is_rejected:
                raise SchedulingError(status.message)
            diagnosis.absent_status = status
            diagnosis.pre_filter_message = status.message
            diagnosis.unschedulable_plugins.update(plugins)
            return [], diagnosis
        nodes: Sequence[NodeInfo] = all_nodes
        if narrowed is not None and narrowed.node_names is not None:
            picked = (state.snapshot.get(name) for name in sorted(narrowed.node_names))
            nodes = [n for n in picked if n is not None]
            diagnosis.absent_status = unresolvable(
                "", f"node(s) didn't satisfy plugin(s) [{' '.join(sorted(plugins))}]"
            )
            diagnosis.unschedulable_plugins.update(plugins)
        feasible = self._find_nodes_that_pass_filters(state, pod, nodes, diagnosis)
        processed = len(feasible) + len(diagnosis.node_statuses)
        self.next_start_node_index = (self.next_start_node_index + processed) % len(all_nodes)
        return feasible, diagnosis

    def _find_nodes_that_pass_filters(
        self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo], diagnosis: Diagnosis
    ) -> list[NodeInfo]:
        count = len(nodes)
        if not count:
            return []
        to_find = num_feasible_nodes_to_find(self.framework.percentage_of_nodes_to_score, count)
        start = self.next_start_node_index % count
        filters = self.framework.active_filters(state)
        whole_snapshot = nodes is state.snapshot.nodes
        if not filters:
            window = _window(nodes, start, min(to_find, count))
            if whole_snapshot:
                state.set_window(window, start)
            return window
        feasible: list[NodeInfo] = []
        offset = 0
        while offset < count and len(feasible) < to_find:
            missing = to_find - len(feasible)
            size = min(max(missing, _MIN_FILTER_BATCH), count - offset)
            batch = _window(nodes, (start + offset) % count, size)
            if whole_snapshot and not feasible:
                state.set_window(batch, (start + offset) % count)
            positions: Sequence[int] = range(size)
            candidates = batch
            rejected: dict[int, Status] = {}
            for plugin in filters:
                rejections = plugin.filter(state, pod, candidates)
                if not rejections:
                    continue
                for index, node_status in rejections.items():
                    rejected[positions[index]] = node_status
                keep = [i for i in range(len(candidates)) if i not in rejections]
                positions = [positions[i] for i in keep]
                candidates = [candidates[i] for i in keep]
                if not candidates:
                    break
            processed = size
            if len(candidates) > missing:
                # Found more than needed: the batch ends at the last feasible node kept.
                processed = positions[missing - 1] + 1
                candidates = candidates[:missing]
                rejected = {p: s for p, s in rejected.items() if p < processed}
            if feasible:
                feasible.extend(candidates)
            else:
                # The very list the filters saw, so what they derived from it stays valid.
                feasible = candidates
            for position, status in rejected.items():
                diagnosis.node_statuses[batch[position].name] = status
                diagnosis.add_plugin_status(status)
            offset += processed
        return feasible


@dataclass
class _Binding:
    queued: QueuedPodInfo
    node_name: str
    state: CycleState
    cycle: int


class Scheduler:
    """Drive with the `on_*` handlers (from informers on pods, nodes, namespaces,
    services and workload controllers) and `run()`."""

    def __init__(
        self,
        *,
        bind: BindFunc,
        on_unschedulable: FailureFunc,
        on_error: FailureFunc | None = None,
        profile: Profile = DEFAULT_PROFILE,
        registry: Registry = REGISTRY,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        max_concurrent_binds: int = 256,
    ) -> None:
        self.cache = Cache()
        self.framework = Framework(profile, registry, Handle(self.cache, bind))
        self.queue = SchedulingQueue(clock=clock, plugin_events=self.framework.plugin_events)
        self.algorithm = SchedulingAlgorithm(self.framework, self.cache, rng or random.Random())
        self.scheduler_name = profile.scheduler_name
        self._on_unschedulable = on_unschedulable
        self._on_error = on_error
        self._tasks: set[asyncio.Task[object]] = set()
        self._bind_slots = asyncio.Semaphore(max_concurrent_binds)

    # -- informer handlers: cheap, synchronous ----------------------------------------------

    def responsible_for(self, pod: Object) -> bool:
        name = (pod.get("spec") or {}).get("schedulerName") or "default-scheduler"
        return bool(name == self.scheduler_name)

    def on_node_add(self, node: Object) -> None:
        self.cache.add_node(node)
        self.queue.move_all_to_active_or_backoff(ClusterEvent.NODE_ADD)

    def on_node_update(self, old: Object | None, new: Object) -> None:
        for event in sorted(self.cache.update_node(old, new)):
            self.queue.move_all_to_active_or_backoff(event)

    def on_node_delete(self, node: Object) -> None:
        self.cache.remove_node(node)
        self.queue.move_all_to_active_or_backoff(ClusterEvent.NODE_DELETE)

    def on_pod_add(self, pod: Object) -> None:
        if is_terminal(pod):
            return
        if (pod.get("spec") or {}).get("nodeName"):
            if self.cache.add_pod(pod) is not None:
                self.queue.move_all_to_active_or_backoff(ClusterEvent.ASSIGNED_POD_ADD)
        elif self.responsible_for(pod):
            self.queue.add(PodInfo(pod))

    def on_pod_update(self, old: Object | None, new: Object) -> None:
        uid = (new.get("metadata") or {}).get("uid") or ""
        if is_terminal(new):
            self.on_pod_delete(new)
            return
        if (new.get("spec") or {}).get("nodeName"):
            self.queue.delete(uid)
            known = self.cache.node_of(uid) is not None
            relevant = not known or old is None or _changed_for_scheduling(old, new)
            if self.cache.update_pod(old, new) is not None and relevant:
                event = ClusterEvent.ASSIGNED_POD_UPDATE if known else ClusterEvent.ASSIGNED_POD_ADD
                self.queue.move_all_to_active_or_backoff(event)
            return
        if not self.responsible_for(new):
            self.queue.delete(uid)
            return
        if self.cache.is_assumed(uid):
            return  # being bound right now
        if old is not None and not _changed_for_scheduling(old, new):
            queued = self.queue.get(uid)
            if queued is not None:
                queued.pod.pod = new
            return
        self.queue.update(PodInfo(new))

    def on_pod_delete(self, pod: Object) -> None:
        uid = (pod.get("metadata") or {}).get("uid") or ""
        self.queue.delete(uid)
        if self.cache.remove_pod(pod) is not None:
            self.queue.move_all_to_active_or_backoff(ClusterEvent.ASSIGNED_POD_DELETE)

    def on_namespace(self, old: Object | None, new: Object | None) -> None:
        current = new if new is not None else old
        name = ((current or {}).get("metadata") or {}).get("name") or ""
        self.cache.set_namespace(new, name)
        self.queue.move_all_to_active_or_backoff(ClusterEvent.NAMESPACE_CHANGE)

    def on_service(self, old: Object | None, new: Object | None) -> None:
        self._workload("Service", old, new)

    def on_replication_controller(self, old: Object | None, new: Object | None) -> None:
        self._workload("ReplicationController", old, new)

    def on_replica_set(self, old: Object | None, new: Object | None) -> None:
        self._workload("ReplicaSet", old, new)

    def on_stateful_set(self, old: Object | None, new: Object | None) -> None:
        self._workload("StatefulSet", old, new)

    def _workload(self, kind: str, old: Object | None, new: Object | None) -> None:
        current = new if new is not None else old
        metadata = (current or {}).get("metadata") or {}
        namespace, name = metadata.get("namespace") or "", metadata.get("name") or ""
        if kind == "Service":
            self.cache.set_service(namespace, name, new)
        else:
            self.cache.set_controller(kind, namespace, name, new)
        self.queue.move_all_to_active_or_backoff(ClusterEvent.WORKLOAD_CHANGE)

    # -- scheduling ------------------------------------------------------------------------

    def schedule_one(self, queued: QueuedPodInfo) -> _Binding | None:
        """One synchronous scheduling cycle. On success the pod is assumed onto its node
        and the returned binding must be completed with `bind()`; on failure the pod is
        back in the queue and the failure has been reported."""
        pod = queued.pod
        cycle = self.queue.scheduling_cycle
        if pod.terminating or self.cache.node_of(pod.uid) is not None:
            self.queue.done(pod.uid)
            return None
        try:
            result = self.algorithm.schedule(pod)
        except FitError as failure:
            plugins = failure.diagnosis.unschedulable_plugins
            self.queue.add_unschedulable(queued, cycle, plugins)
            self._report(self._on_unschedulable, pod, str(failure))
            return None
        except SchedulingError as failure:
            self.queue.add_unschedulable(queued, cycle)
            self._report(self._on_error, pod, str(failure))
            return None
        self.cache.assume_pod(pod, result.node_name)
        status = self.framework.run_reserve(result.state, pod, result.node_name)
        if not status.is_success:
            self.cache.forget_pod(pod)
            self.queue.add_unschedulable(queued, cycle)
            self._report(self._on_error, pod, status.message)
            return None
        return _Binding(queued, result.node_name, result.state, cycle)

    async def bind(self, binding: _Binding) -> bool:
        """The binding cycle: bind through the API; undo the assumption on failure."""
        pod = binding.queued.pod
        async with self._bind_slots:
            status = await self.framework.run_bind(binding.state, pod, binding.node_name)
        if status.is_success:
            self.cache.finish_binding(pod)
            self.queue.done(pod.uid)
            return True
        self.framework.run_unreserve(binding.state, pod, binding.node_name)
        self.cache.forget_pod(pod)
        self.queue.move_all_to_active_or_backoff(ClusterEvent.ASSIGNED_POD_DELETE)
        self.queue.add_unschedulable(binding.queued, binding.cycle)
        if self._on_error is not None:
            await _quietly(self._on_error, pod.pod, status.message)
        return False

    def _report(self, callback: FailureFunc | None, pod: PodInfo, message: str) -> None:
        logger.debug("unable to schedule %s: %s", pod.key, message)
        if callback is not None:
            self._spawn(_quietly(callback, pod.pod, message))

    def _spawn(self, work: Coroutine[Any, Any, object]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def run(self) -> None:
        """Schedule pods until cancelled."""
        flusher = asyncio.get_running_loop().create_task(self._flush_periodically())
        try:
            while True:
                queued = await self.queue.pop()
                binding = self.schedule_one(queued)
                if binding is not None:
                    self._spawn(self.bind(binding))
                # Let informer events and finished bindings in between cycles.
                await asyncio.sleep(0)
        finally:
            flusher.cancel()

    async def wait_idle(self) -> None:
        """Wait for every binding and failure report started so far."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _flush_periodically(self) -> None:
        since_unschedulable_flush = 0.0
        while True:
            await asyncio.sleep(BACKOFF_FLUSH_PERIOD)
            self.queue.flush_backoff_completed()
            since_unschedulable_flush += BACKOFF_FLUSH_PERIOD
            if since_unschedulable_flush >= UNSCHEDULABLE_FLUSH_PERIOD:
                since_unschedulable_flush = 0.0
                self.queue.flush_unschedulable_left_over()


async def _quietly(callback: FailureFunc, pod: Object, message: str) -> None:
    try:
        await callback(pod, message)
    except Exception:  # a failed report must not stop scheduling
        logger.exception("reporting a scheduling failure failed")


def _changed_for_scheduling(old: Object, new: Object) -> bool:
    """isPodUpdated: anything but status, resourceVersion, generation, managedFields and
    finalizers changed (a status-only update must not retry an unschedulable pod)."""
    if old.get("spec") != new.get("spec"):
        return True
    old_meta, new_meta = old.get("metadata") or {}, new.get("metadata") or {}
    ignored = ("resourceVersion", "generation", "managedFields", "finalizers")
    return {k: v for k, v in old_meta.items() if k not in ignored} != {
        k: v for k, v in new_meta.items() if k not in ignored
    }
