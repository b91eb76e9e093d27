"""The watch cache: one per resource, serving LIST and WATCH from memory, like
kube-apiserver's cacher.

`start()` lists the resource's storage prefix, then watches storage from the list's
revision and applies every write in order. The cache holds:

- the current objects, decoded once, keyed by their storage key minus the prefix
  ("namespace/name" or "name"), with the keys kept sorted for paged lists;
- a ring buffer of the last `history` changes, from which a watch can start at any
  revision not older than the buffer (older: 410 Gone, reason Expired);
- `revision`: the store revision the cache is complete up to. Storage progress
  notifications advance it past writes to other resources, so a consistent read waits
  only for writes that matter (`wait_for_revision`, `wait_until_fresh`).

Objects are shared, never copied: everything `get`, `list` and `watch` hand out is the
cache's own object, also handed to every other caller. Callers must treat them as
immutable and copy before changing anything. (BOOKMARK objects are fresh dicts.)

Watchers. Each watcher has a bounded queue filled as changes are applied; a watcher
whose queue overflows is ended (its iterator stops after the queued events), so a slow
client never stalls the cache or writers. It resumes like any client: a new watch from
the last revision it saw. With a predicate (a label or field selector), an object that
starts matching arrives as ADDED and one that stops matching as DELETED (carrying its
previous state at the change's revision), as kube-apiserver does.

When the storage watch is dropped the cache resumes it from `revision` without a gap.
When that is impossible (compacted) it lists again; watchers that would miss changes
are ended, and the history restarts at the new list's revision.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import heapq
import itertools
import logging
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final, Literal, NamedTuple

from timonel.api.errors import StatusError
from timonel.api.objects import Object
from timonel.apiserver import sharedguard
from timonel.storage.interface import (
    Compacted,
    EventType,
    KeyValue,
    Storage,
    WatchDropped,
    WatchEvent,
    prefix_end,
)

log = logging.getLogger(__name__)

CacheEventType = Literal["ADDED", "MODIFIED", "DELETED", "BOOKMARK"]
ADDED: Final = "ADDED"
MODIFIED: Final = "MODIFIED"
DELETED: Final = "DELETED"
BOOKMARK: Final = "BOOKMARK"

Decode = Callable[[KeyValue], Object]
Predicate = Callable[[Object], bool]

# How long a consistent read waits for the cache to catch up by default (kube: 3s).
FRESHNESS_TIMEOUT: Final = 3.0
# The newest changes whose wire encodings are kept (CacheEvent.encoded) for watchers to
# share; older ones let theirs go, so the history does not hold every event twice.
_ENCODINGS_KEPT: Final = 64
_RETRY_MIN: Final = 0.1
_RETRY_MAX: Final = 5.0


class ResourceVersionTooOld(StatusError):
    """A watch asked for changes the cache no longer holds: 410 Gone, reason Expired."""

    def __init__(self, requested: int, oldest: int) -> None:
        super().__init__(410, "Expired", f"too old resource version: {requested} ({oldest})")
        self.requested = requested
        self.oldest = oldest


class ResourceVersionTooLarge(StatusError):
    """The cache did not reach the requested revision in time: 504, reason Timeout."""

    def __init__(self, requested: int, current: int) -> None:
        super().__init__(
            504,
            "Timeout",
            f"Timeout: Too large resource version: {requested}, current: {current}",
            details={
                "causes": [
                    {"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}
                ],
                "retryAfterSeconds": 1,
            },
        )
        self.requested = requested
        self.current = current


@dataclass(frozen=True, slots=True)
class CacheEvent:
    type: CacheEventType
    object: Object
    revision: int
    # The event as sent on the wire, by encoding: encoded once, written to every watcher.
    encoded: dict[Any, bytes] = field(default_factory=dict, compare=False, repr=False)


class CacheList(NamedTuple):
    items: list[Object]  # sorted by key; shared objects, do not mutate
    revision: int
    next_start_key: str | None  # where the next page starts; None on the last page
    # Items after this page (kube's remainingItemCount); None when a predicate was
    # given, as kube-apiserver leaves the count out for selector lists.
    remaining_count: int | None


def _with_revision(obj: Object, revision: int) -> Object:
    """A shallow copy of `obj` whose metadata.resourceVersion is `revision`."""
    copy = dict(obj)
    copy["metadata"] = {**(obj.get("metadata") or {}), "resourceVersion": str(revision)}
    return copy


class _Change:
    """One applied write, kept in the history and fanned out to watchers."""

    __slots__ = ("_added", "_removed", "event", "key", "object", "prev", "revision", "type")

    def __init__(
        self, key: str, type_: CacheEventType, obj: Object, prev: Object | None, revision: int
    ) -> None:
        self.key = key
        self.type = type_
        self.object = obj  # for DELETED: the last state, at the deletion's revision
        self.prev = prev
        self.revision = revision
        self.event = CacheEvent(type_, obj, revision)
        self._added: CacheEvent | None = None
        self._removed: CacheEvent | None = None

    def as_added(self) -> CacheEvent:
        """The change seen by a watcher the object has just started to match."""
        if self._added is None:
            self._added = CacheEvent(ADDED, self.object, self.revision)
        return self._added

    def forget_encodings(self) -> None:
        for event in (self.event, self._added, self._removed):
            if event is not None:
                event.encoded.clear()

    def as_removed(self) -> CacheEvent:
        """The change seen by a watcher the object has just stopped matching."""
        if self._removed is None:
            assert self.prev is not None
            self._removed = CacheEvent(
                DELETED, _with_revision(self.prev, self.revision), self.revision
            )
        return self._removed


def _select(change: _Change, key_prefix: str, predicate: Predicate | None) -> CacheEvent | None:
    """What a watcher with this key prefix and predicate sees of `change`, if anything."""
    if not change.key.startswith(key_prefix):
        return None
    if predicate is None:
        return change.event
    if change.type == DELETED:
        return change.event if predicate(change.prev or change.object) else None
    matches_now = predicate(change.object)
    matched_before = change.prev is not None and predicate(change.prev)
    if matches_now:
        return change.event if matched_before or change.type == ADDED else change.as_added()
    if matched_before:
        return change.as_removed()
    return None


class CacheWatcher:
    """An async iterator of CacheEvents for one watch request. `close()` ends it."""

    def __init__(
        self,
        cache: WatchCache,
        *,
        after: int,
        key_prefix: str,
        predicate: Predicate | None,
        capacity: int,
        backlog: Iterator[CacheEvent | None],
        backlog_revision: int,
        bookmark_interval: float | None,
        deadline: float | None = None,
    ) -> None:
        self._cache = cache
        self.after = after
        self.key_prefix = key_prefix
        self.predicate = predicate
        self._capacity = capacity
        self._backlog: Iterator[CacheEvent | None] | None = backlog
        self._backlog_revision = backlog_revision
        self._queue: deque[CacheEvent] = deque()
        self._waiter: asyncio.Future[None] | None = None
        # One timer per wake-up time (the next bookmark, the deadline), kept across
        # waits: a watcher that keeps up waits once per event.
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._bookmark_interval = bookmark_interval
        self._next_bookmark = (
            asyncio.get_running_loop().time() + bookmark_interval if bookmark_interval else 0.0
        )
        self._deadline = deadline
        self.revision = after  # the revision of the last event handed out
        self.ended = False
        self.overflowed = False

    def push(self, event: CacheEvent) -> bool:
        """Queue a live event; False (and the watcher ends) when the queue is full."""
        if len(self._queue) >= self._capacity:
            self.overflowed = True
            self._end()
            return False
        self._queue.append(event)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
        return True

    def ready(self) -> bool:
        """Whether a live event is queued, so that the next `anext` returns at once."""
        return self._backlog is None and bool(self._queue)

    def close(self) -> None:
        self._cache._forget(self)
        self._end()

    def _end(self) -> None:
        self.ended = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def __aiter__(self) -> CacheWatcher:
        return self

    async def __anext__(self) -> CacheEvent:
        if self._backlog is not None:
            for event in self._backlog:
                if event is not None:
                    return event
            self._backlog = None
            self.revision = max(self.revision, self._backlog_revision)
        loop = asyncio.get_running_loop()
        while True:
            deadline = self._deadline
            if deadline is not None and loop.time() >= deadline:
                # The watch's time is up, as kube-apiserver ends it: even with events
                # queued (the client watches again from the last revision it saw).
                raise StopAsyncIteration
            if self._queue:
                event = self._queue.popleft()
                self.revision = event.revision
                return event
            if self.ended:
                raise StopAsyncIteration
            if self._bookmark_interval:
                now = loop.time()
                if now >= self._next_bookmark:
                    self._next_bookmark = now + self._bookmark_interval
                    # The queue is empty, so nothing at or below the cache's revision is
                    # still owed to this watcher.
                    if self._cache.revision > self.revision:
                        self.revision = self._cache.revision
                        bookmark = {"metadata": {"resourceVersion": str(self.revision)}}
                        return CacheEvent(BOOKMARK, bookmark, self.revision)
                deadline = (
                    self._next_bookmark if deadline is None else min(deadline, self._next_bookmark)
                )
            await self._wait(loop, deadline)

    async def _wait(self, loop: asyncio.AbstractEventLoop, deadline: float | None) -> None:
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiter = waiter
        if deadline is not None and (self._timer is None or self._timer_at != deadline):
            if self._timer is not None:
                self._timer.cancel()
            self._timer = loop.call_at(deadline, self._on_timer)
            self._timer_at = deadline
        try:
            await waiter
        finally:
            self._waiter = None

    def _on_timer(self) -> None:
        self._timer = None
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class WatchCache:
    """The current objects and recent changes under one storage prefix (see module doc)."""

    def __init__(
        self,
        storage: Storage,
        prefix: str,
        decode: Decode,
        *,
        history: int = 10_000,
        watcher_queue: int = 1000,
    ) -> None:
        self._storage = storage
        self._prefix = prefix
        self._decode = decode
        self._watcher_queue = watcher_queue
        self.ready = asyncio.Event()
        self._objects: dict[str, tuple[Object, int]] = {}  # key -> (object, mod revision)
        self._guard = sharedguard.SharedObjectGuard(prefix) if sharedguard.enabled() else None
        self._keys: list[str] = []  # sorted
        self._history: deque[_Change] = deque(maxlen=history)
        self._floor = 0  # every change after this revision is in the history
        self._revision = 0
        self._watchers: set[CacheWatcher] = set()
        self._revision_waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._waiter_ids = itertools.count()
        self._task: asyncio.Task[None] | None = None
        self._listed = False
        self._starting = False

    @property
    def revision(self) -> int:
        """The store revision the cache is complete up to."""
        return self._revision

    @property
    def oldest_revision(self) -> int:
        """The oldest revision a watch can start after."""
        return self._floor

    # --- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        """List the prefix (errors propagate), then follow storage in the background.
        Calling it again while started does nothing."""
        if self._starting or self._task is not None:
            return
        self._starting = True
        try:
            await self._relist()
        finally:
            self._starting = False
        self._task = asyncio.create_task(self._follow(), name=f"watch cache {self._prefix}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._end_watchers()
        self.ready.clear()
        if self._guard is not None:
            self._guard.release_all()

    async def _relist(self) -> None:
        self.ready.clear()
        result = await self._storage.list(self._prefix)
        if self._listed and result.revision == self._revision:
            self.ready.set()  # nothing happened meanwhile: state and history still hold
            return
        cut = len(self._prefix)
        objects: dict[str, tuple[Object, int]] = {}
        for index, kv in enumerate(result.items):
            obj = self._decode_or_log(kv)
            if obj is not None:
                objects[kv.key[cut:]] = (obj, kv.mod_revision)
            if index % 1000 == 999:
                await asyncio.sleep(0)  # decoding many objects: let requests through
        # Storage lists in key order and stripping a common prefix keeps that order.
        if self._guard is not None:
            self._guard.release_all()
            for obj, _ in objects.values():
                self._guard.hold(obj)
        self._objects = objects
        self._keys = list(objects)
        self._history.clear()
        self._floor = result.revision
        self._end_watchers()  # they would miss the changes a relist skips over
        self._listed = True
        self._advance(result.revision)
        self.ready.set()

    async def _follow(self) -> None:
        delay = _RETRY_MIN
        must_list = False
        while True:
            try:
                if must_list:
                    await self._relist()
                    must_list = False
                watch = self._storage.watch(
                    self._prefix, after=self._revision, progress_notify=True
                )
                try:
                    async for event in watch:
                        self._apply(event)
                        delay = _RETRY_MIN
                finally:
                    close = getattr(watch, "aclose", None)
                    if close is not None:
                        await close()
                self._end_watchers()  # storage closed
                return
            except WatchDropped:
                log.warning("watch on %s fell behind at %d; resuming", self._prefix, self._revision)
            except Compacted:
                log.warning(
                    "watch on %s compacted at %d; listing again", self._prefix, self._revision
                )
                must_list = True
            except Exception:
                log.exception("watch cache %s failed; retrying in %.1fs", self._prefix, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, _RETRY_MAX)

    # --- applying writes -------------------------------------------------------------

    def _decode_or_log(self, kv: KeyValue) -> Object | None:
        try:
            return self._decode(kv)
        except Exception:
            log.exception("cannot decode %s at revision %d", kv.key, kv.mod_revision)
            return None

    def _apply(self, event: WatchEvent) -> None:
        if event.type is EventType.PROGRESS:
            self._advance(event.revision)
            return
        key = event.kv.key[len(self._prefix) :]
        revision = event.revision
        obj = self._decode_or_log(event.kv)
        held = self._objects.get(key)
        prev = None if held is None else held[0]
        if self._guard is not None:
            if prev is not None:
                self._guard.release(prev)
            if obj is not None and event.type is EventType.PUT:
                self._guard.hold(obj)
        change: _Change | None = None
        if event.type is EventType.PUT and obj is not None:
            if held is None:
                bisect.insort(self._keys, key)
            self._objects[key] = (obj, revision)
            change = _Change(key, ADDED if prev is None else MODIFIED, obj, prev, revision)
        else:  # a deletion, or a value that cannot be decoded: the object is gone
            if held is not None:
                del self._objects[key]
                del self._keys[bisect.bisect_left(self._keys, key)]
            last = obj if obj is not None else prev
            if last is not None:
                if obj is None:
                    last = _with_revision(last, revision)
                change = _Change(key, DELETED, last, prev or last, revision)
        if change is not None:
            self._record(change)
        self._advance(revision)

    def _record(self, change: _Change) -> None:
        history = self._history
        if history.maxlen is not None and len(history) == history.maxlen:
            self._floor = history[0].revision  # about to fall out of the buffer
        history.append(change)
        if len(history) > _ENCODINGS_KEPT:
            # Watchers that are up to date have written it; a late one encodes it again.
            history[-_ENCODINGS_KEPT - 1].forget_encodings()
        overflowed: list[CacheWatcher] = []
        for watcher in self._watchers:
            if change.revision <= watcher.after:
                continue
            event = _select(change, watcher.key_prefix, watcher.predicate)
            if event is not None and not watcher.push(event):
                overflowed.append(watcher)
        for watcher in overflowed:
            self._watchers.discard(watcher)
            log.info(
                "watcher on %s%s too slow at revision %d; ended",
                self._prefix,
                watcher.key_prefix,
                change.revision,
            )

    def _advance(self, revision: int) -> None:
        if revision > self._revision:
            self._revision = revision
        waiters = self._revision_waiters
        while waiters and waiters[0][0] <= self._revision:
            _resolve(heapq.heappop(waiters)[2])

    def _end_watchers(self) -> None:
        watchers, self._watchers = self._watchers, set()
        for watcher in watchers:
            watcher._end()

    def _forget(self, watcher: CacheWatcher) -> None:
        self._watchers.discard(watcher)

    # --- reads -----------------------------------------------------------------------

    async def wait_for_revision(self, revision: int, timeout: float = FRESHNESS_TIMEOUT) -> None:
        """Return once the cache is complete up to `revision`; ResourceVersionTooLarge
        when that takes longer than `timeout` seconds."""
        if revision <= self._revision:
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (revision, next(self._waiter_ids), waiter)
        heapq.heappush(self._revision_waiters, entry)
        try:
            async with asyncio.timeout(timeout):
                await waiter
        except TimeoutError:
            raise ResourceVersionTooLarge(revision, self._revision) from None
        finally:
            if not waiter.done():
                self._revision_waiters.remove(entry)
                heapq.heapify(self._revision_waiters)

    async def wait_until_fresh(self, timeout: float = FRESHNESS_TIMEOUT) -> int:
        """Wait until the cache holds every write acknowledged so far (a consistent
        read, as kube-apiserver serves from its cache); returns that revision."""
        revision = await self._storage.current_revision()
        await self.wait_for_revision(revision, timeout)
        return revision

    def get(self, key: str) -> Object | None:
        """The object stored under `key` ("namespace/name" or "name"); shared, read-only."""
        held = self._objects.get(key)
        return None if held is None else held[0]

    def list(
        self,
        *,
        key_prefix: str = "",
        start_key: str = "",
        limit: int = 0,
        predicate: Predicate | None = None,
    ) -> CacheList:
        """Objects whose keys start with `key_prefix`, from `start_key` on, in key order;
        at most `limit` when limit > 0. Shared objects: do not mutate."""
        keys = self._keys
        objects = self._objects
        low = bisect.bisect_left(keys, max(key_prefix, start_key))
        end = prefix_end(key_prefix)
        high = len(keys) if end is None else bisect.bisect_left(keys, end, lo=low)
        if predicate is None:
            stop = high if limit <= 0 else min(high, low + limit)
            items = [objects[key][0] for key in keys[low:stop]]
            next_key = keys[stop] if stop < high else None
            return CacheList(items, self._revision, next_key, high - stop)
        items = []
        next_key = None
        for index in range(low, high):
            obj = objects[keys[index]][0]
            if predicate(obj):
                if 0 < limit <= len(items):
                    next_key = keys[index]
                    break
                items.append(obj)
        return CacheList(items, self._revision, next_key, None)

    def watch(
        self,
        *,
        after: int,
        key_prefix: str = "",
        predicate: Predicate | None = None,
        bookmark_interval: float | None = None,
        deadline: float | None = None,
    ) -> CacheWatcher:
        """Changes after revision `after`, in order. `after=0`: an ADDED event for every
        current object first, then changes. Raises ResourceVersionTooOld when `after`
        predates the history. An `after` beyond `revision` waits for it (changes up to
        `after` are skipped); call `wait_for_revision` first to bound the wait instead.
        BOOKMARK events carry the cache's revision, at most every `bookmark_interval`
        seconds, when set. With a `deadline` (event loop time) the iterator stops once
        it would have to wait for an event past it: a watch's timeout without an
        `asyncio.timeout` around every event."""
        backlog: Iterator[CacheEvent | None]
        if after == 0:
            backlog = self._current_as_added(key_prefix, predicate)
        elif after < self._floor:
            raise ResourceVersionTooOld(after, self._floor)
        else:
            backlog = self._changes_since(after, key_prefix, predicate)
        watcher = CacheWatcher(
            self,
            after=after or self._revision,
            key_prefix=key_prefix,
            predicate=predicate,
            capacity=self._watcher_queue,
            backlog=backlog,
            backlog_revision=max(after, self._revision),
            bookmark_interval=bookmark_interval,
            deadline=deadline,
        )
        self._watchers.add(watcher)
        return watcher

    def _current_as_added(
        self, key_prefix: str, predicate: Predicate | None
    ) -> Iterator[CacheEvent | None]:
        keys = self._keys
        low = bisect.bisect_left(keys, key_prefix)
        end = prefix_end(key_prefix)
        high = len(keys) if end is None else bisect.bisect_left(keys, end, lo=low)
        snapshot = [self._objects[key] for key in keys[low:high]]
        return _added_events(snapshot, predicate)

    def _changes_since(
        self, after: int, key_prefix: str, predicate: Predicate | None
    ) -> Iterator[CacheEvent | None]:
        history = list(self._history)
        first = bisect.bisect_right(history, after, key=lambda change: change.revision)
        return (_select(change, key_prefix, predicate) for change in history[first:])


def _added_events(
    snapshot: Iterable[tuple[Object, int]], predicate: Predicate | None
) -> Iterator[CacheEvent | None]:
    for obj, revision in snapshot:
        yield CacheEvent(ADDED, obj, revision) if predicate is None or predicate(obj) else None
