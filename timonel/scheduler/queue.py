"""The scheduling queue: pending pods waiting for a scheduling cycle.

Three places a pending pod can be:

    activeQ          ready now; popped highest priority first, then longest waiting
    backoffQ         failed recently; waits 1s, 2s, 4s, 8s, then 10s per further attempt
    unschedulable    rejected by some plugins; waits for a cluster event one of those
                     plugins cares about (a node added, a pod deleted, ...), or 5 minutes

A pod rejected while a cluster event arrived during its cycle goes to backoffQ instead
of unschedulable, so the event is not lost (`move_request_cycle`). A pod with
scheduling gates waits in unschedulable until an update removes them.

The queue is synchronous and keeps time through an injected clock; `pop()` is the only
coroutine, waiting for a pod to become active. The owner calls the `flush_*` methods
periodically (backoff every second, unschedulable every 30 seconds).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final

from timonel.scheduler.framework import ClusterEvent, PodInfo

DEFAULT_INITIAL_BACKOFF: Final = 1.0
DEFAULT_MAX_BACKOFF: Final = 10.0
DEFAULT_MAX_UNSCHEDULABLE_DURATION: Final = 300.0
BACKOFF_FLUSH_PERIOD: Final = 1.0
UNSCHEDULABLE_FLUSH_PERIOD: Final = 30.0


@dataclass(eq=False)
class QueuedPodInfo:
    pod: PodInfo
    # When the pod last entered the queue: orders equal priorities and starts backoff.
    timestamp: float
    initial_attempt: float | None = None
    attempts: int = 0
    # Plugins that rejected the pod in its last cycle (empty after an error).
    unschedulable_plugins: frozenset[str] = field(default_factory=frozenset)
    gated: bool = False

    @property
    def uid(self) -> str:
        return self.pod.uid


class SchedulingQueue:
    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        initial_backoff: float = DEFAULT_INITIAL_BACKOFF,
        max_backoff: float = DEFAULT_MAX_BACKOFF,
        max_unschedulable_duration: float = DEFAULT_MAX_UNSCHEDULABLE_DURATION,
        plugin_events: Mapping[str, frozenset[ClusterEvent]] | None = None,
    ) -> None:
        self._clock = clock
        self._initial_backoff = initial_backoff
        self._max_backoff = max_backoff
        self._max_unschedulable = max_unschedulable_duration
        self._plugin_events = dict(plugin_events or {})
        self._sequence = itertools.count()
        # Heaps with lazy deletion: an entry is live while the uid maps to that entry.
        self._active: list[tuple[int, float, int, QueuedPodInfo]] = []
        self._active_live: dict[str, QueuedPodInfo] = {}
        self._backoff: list[tuple[float, int, QueuedPodInfo]] = []
        self._backoff_live: dict[str, QueuedPodInfo] = {}
        self.unschedulable: dict[str, QueuedPodInfo] = {}
        self._in_flight: dict[str, QueuedPodInfo] = {}
        self.scheduling_cycle = 0
        self._move_request_cycle = -1
        self._wakeup: asyncio.Event | None = None

    # -- membership ------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._active_live) + len(self._backoff_live) + len(self.unschedulable)

    def __contains__(self, uid: object) -> bool:
        return uid in self._active_live or uid in self._backoff_live or uid in self.unschedulable

    @property
    def active_count(self) -> int:
        return len(self._active_live)

    @property
    def backoff_count(self) -> int:
        return len(self._backoff_live)

    def where(self, uid: str) -> str | None:
        """ "active", "backoff", "unschedulable", "in-flight", or None."""
        if uid in self._active_live:
            return "active"
        if uid in self._backoff_live:
            return "backoff"
        if uid in self.unschedulable:
            return "unschedulable"
        if uid in self._in_flight:
            return "in-flight"
        return None

    def get(self, uid: str) -> QueuedPodInfo | None:
        return (
            self._active_live.get(uid)
            or self._backoff_live.get(uid)
            or self.unschedulable.get(uid)
            or self._in_flight.get(uid)
        )

    # -- internal moves ----------------------------------------------------------------------

    def _push_active(self, queued: QueuedPodInfo) -> None:
        self._active_live[queued.uid] = queued
        entry = (-queued.pod.priority, queued.timestamp, next(self._sequence), queued)
        heapq.heappush(self._active, entry)
        if self._wakeup is not None:
            self._wakeup.set()

    def _push_backoff(self, queued: QueuedPodInfo) -> None:
        self._backoff_live[queued.uid] = queued
        heapq.heappush(self._backoff, (self.backoff_expiry(queued), next(self._sequence), queued))

    def _discard(self, uid: str) -> QueuedPodInfo | None:
        return (
            self._active_live.pop(uid, None)
            or self._backoff_live.pop(uid, None)
            or self.unschedulable.pop(uid, None)
        )

    def backoff_duration(self, queued: QueuedPodInfo) -> float:
        duration = self._initial_backoff
        for _ in range(1, queued.attempts):
            if duration > self._max_backoff - duration:
                return self._max_backoff
            duration += duration
        return duration

    def backoff_expiry(self, queued: QueuedPodInfo) -> float:
        return queued.timestamp + self.backoff_duration(queued)

    def _backing_off(self, queued: QueuedPodInfo, now: float) -> bool:
        return queued.attempts > 0 and self.backoff_expiry(queued) > now

    def _requeue(self, queued: QueuedPodInfo, now: float) -> None:
        if self._backing_off(queued, now):
            self._push_backoff(queued)
        else:
            self._push_active(queued)

    # -- adding, updating, removing pending pods ----------------------------------------------

    def add(self, pod: PodInfo) -> None:
        """A new pending pod."""
        if pod.uid in self or pod.uid in self._in_flight:
            self.update(pod)
            return
        now = self._clock()
        queued = QueuedPodInfo(pod, now)
        if pod.scheduling_gated:
            queued.gated = True
            self.unschedulable[pod.uid] = queued
            return
        self._push_active(queued)

    def update(self, pod: PodInfo) -> None:
        """A pending pod changed in a way scheduling cares about (spec, labels, gates)."""
        uid = pod.uid
        if uid in self._in_flight:
            self._in_flight[uid].pod = pod
            return
        queued = self._discard(uid)
        now = self._clock()
        if queued is None:
            self.add(pod)
            return
        queued.pod = pod
        queued.gated = pod.scheduling_gated
        if queued.gated:
            self.unschedulable[uid] = queued
        else:
            self._requeue(queued, now)

    def delete(self, uid: str) -> None:
        self._discard(uid)
        self._in_flight.pop(uid, None)

    # -- scheduling cycles -------------------------------------------------------------------

    def try_pop(self) -> QueuedPodInfo | None:
        while self._active:
            _, _, _, queued = heapq.heappop(self._active)
            if self._active_live.get(queued.uid) is queued:
                del self._active_live[queued.uid]
                queued.attempts += 1
                if queued.initial_attempt is None:
                    queued.initial_attempt = self._clock()
                self.scheduling_cycle += 1
                self._in_flight[queued.uid] = queued
                return queued
        return None

    async def pop(self) -> QueuedPodInfo:
        """The next active pod, waiting until there is one."""
        while True:
            queued = self.try_pop()
            if queued is not None:
                return queued
            if self._wakeup is None:
                self._wakeup = asyncio.Event()
            self._wakeup.clear()
            await self._wakeup.wait()

    def done(self, uid: str) -> None:
        """The pod's cycle (and binding) finished."""
        self._in_flight.pop(uid, None)

    def add_unschedulable(
        self,
        queued: QueuedPodInfo,
        cycle: int,
        unschedulable_plugins: Iterable[str] = (),
    ) -> None:
        """Put back a pod whose cycle `cycle` failed. With no rejecting plugins (an
        error) or a cluster event since the cycle began, it backs off; otherwise it waits
        for an event its rejecting plugins care about. A pod deleted meanwhile (no longer
        in flight) is dropped."""
        if self._in_flight.pop(queued.uid, None) is None or queued.uid in self:
            return
        queued.timestamp = self._clock()
        queued.unschedulable_plugins = frozenset(unschedulable_plugins)
        if not queued.unschedulable_plugins or self._move_request_cycle >= cycle:
            self._push_backoff(queued)
        else:
            self.unschedulable[queued.uid] = queued

    # -- cluster events ----------------------------------------------------------------------

    def _interested(self, queued: QueuedPodInfo, event: ClusterEvent) -> bool:
        if event is ClusterEvent.UNSCHEDULABLE_TIMEOUT or not queued.unschedulable_plugins:
            return True
        return any(
            event in self._plugin_events.get(plugin, frozenset())
            for plugin in queued.unschedulable_plugins
        )

    def move_all_to_active_or_backoff(self, event: ClusterEvent) -> int:
        """Retry the unschedulable pods `event` may help. Returns how many moved."""
        self._move_request_cycle = self.scheduling_cycle
        if not self.unschedulable:
            return 0
        now = self._clock()
        moving = [
            q for q in self.unschedulable.values() if not q.gated and self._interested(q, event)
        ]
        for queued in moving:
            del self.unschedulable[queued.uid]
            self._requeue(queued, now)
        return len(moving)

    def flush_backoff_completed(self) -> int:
        now = self._clock()
        moved = 0
        while self._backoff and self._backoff[0][0] <= now:
            _, _, queued = heapq.heappop(self._backoff)
            if self._backoff_live.get(queued.uid) is queued:
                del self._backoff_live[queued.uid]
                self._push_active(queued)
                moved += 1
        return moved

    def next_backoff_expiry(self) -> float | None:
        while (
            self._backoff
            and self._backoff_live.get(self._backoff[0][2].uid) is not self._backoff[0][2]
        ):
            heapq.heappop(self._backoff)
        return self._backoff[0][0] if self._backoff else None

    def flush_unschedulable_left_over(self) -> int:
        """Retry pods that have waited longer than the maximum (5 minutes)."""
        now = self._clock()
        stale = [
            q
            for q in self.unschedulable.values()
            if not q.gated and now - q.timestamp > self._max_unschedulable
        ]
        for queued in stale:
            del self.unschedulable[queued.uid]
            self._requeue(queued, now)
        return len(stale)
