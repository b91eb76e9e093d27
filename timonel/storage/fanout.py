"""Live watchers of one store: each committed batch of events is handed to every watcher
whose prefix it touches, on the event loop, and watchers that asked for them get progress
notices (at most every PROGRESS_INTERVAL) carrying the store's revision.

A watcher's queue is bounded: one that falls `capacity` events behind is dropped and its
stream ends with `WatchDropped`, so one stuck client cannot hold the store's memory.
Both backends (SQLite and etcd) replay what a watcher missed from their own history, then
follow it here.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Final

from timonel.storage.interface import EventType, KeyValue, WatchDropped, WatchEvent

# Progress notices go out at most this often (seconds), and at once when allowed.
PROGRESS_INTERVAL: Final = 0.05


def progress_event(revision: int) -> WatchEvent:
    return WatchEvent(EventType.PROGRESS, KeyValue("", b"", 0, revision), None)


class Subscriber:
    """One watcher's live queue."""

    __slots__ = ("capacity", "closed", "dropped", "events", "prefix", "progress", "waiter")

    def __init__(self, prefix: str, capacity: int, progress: bool) -> None:
        self.prefix = prefix
        self.capacity = capacity
        self.progress = progress
        self.events: deque[WatchEvent] = deque()
        self.waiter: asyncio.Future[None] | None = None
        self.dropped = False
        self.closed = False

    def wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    async def wait(self) -> None:
        self.waiter = asyncio.get_running_loop().create_future()
        try:
            await self.waiter
        finally:
            self.waiter = None

    async def follow(self, position: int) -> AsyncIterator[WatchEvent]:
        """The queued events after revision `position`, as they come, until the store
        closes; `WatchDropped` once the queue overflowed."""
        while True:
            while self.events:
                event = self.events.popleft()
                if event.revision <= position:
                    continue  # already replayed, or a notice with nothing new
                position = event.revision
                yield event
            if self.dropped:
                raise WatchDropped(f"watch on {self.prefix!r} fell behind at revision {position}")
            if self.closed:
                return
            await self.wait()


class Subscribers:
    """The live watchers of one store; `revision` tells the store's current revision."""

    def __init__(self, capacity: int, revision: Callable[[], int]) -> None:
        self.capacity = capacity
        self._revision = revision
        self._members: set[Subscriber] = set()
        self._last_progress = 0.0
        self._progress_timer: asyncio.TimerHandle | None = None

    def subscribe(self, prefix: str, progress: bool) -> Subscriber:
        subscriber = Subscriber(prefix, self.capacity, progress)
        self._members.add(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self._members.discard(subscriber)

    def end_all(self, *, dropped: bool = False) -> None:
        """End every stream: as closed (the store closes) or as dropped (they all missed
        events and must start over)."""
        if self._progress_timer is not None:
            self._progress_timer.cancel()
            self._progress_timer = None
        for subscriber in self._members:
            if dropped:
                subscriber.dropped = True
            else:
                subscriber.closed = True
            subscriber.wake()
        self._members.clear()

    def fan_out(self, events: Sequence[WatchEvent]) -> None:
        wants_progress = False
        for subscriber in list(self._members):
            received = False
            for event in events:
                if event.kv.key.startswith(subscriber.prefix):
                    if len(subscriber.events) >= subscriber.capacity:
                        subscriber.dropped = True
                        self._members.discard(subscriber)
                        received = True
                        break
                    subscriber.events.append(event)
                    received = True
            wants_progress = wants_progress or subscriber.progress
            # Only subscribers with something new are woken; the others learn of the
            # revision through the (rate-limited) progress notice.
            if received:
                subscriber.wake()
        if wants_progress:
            self._schedule_progress()

    def _schedule_progress(self) -> None:
        if self._progress_timer is not None:
            return
        loop = asyncio.get_running_loop()
        due = self._last_progress + PROGRESS_INTERVAL
        if loop.time() >= due:
            self._send_progress()
        else:
            self._progress_timer = loop.call_at(due, self._send_progress)

    def _send_progress(self) -> None:
        self._progress_timer = None
        self._last_progress = asyncio.get_running_loop().time()
        notice = progress_event(self._revision())
        for subscriber in self._members:
            if not subscriber.progress:
                continue
            queued = subscriber.events
            if queued and queued[-1].type is EventType.PROGRESS:
                queued[-1] = notice  # a newer notice says everything the older one did
            elif len(queued) < subscriber.capacity:
                queued.append(notice)
            subscriber.wake()
