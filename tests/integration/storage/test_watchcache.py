"""The API server's watch cache over each real store (storage_backends.BACKENDS)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
import pytest

from tests.integration.storage.storage_backends import Backend
from timonel.api.objects import Object
from timonel.apiserver.watchcache import (
    CacheEvent,
    CacheWatcher,
    ResourceVersionTooLarge,
    ResourceVersionTooOld,
    WatchCache,
)
from timonel.storage.interface import Compacted, KeyValue, Storage, WatchEvent

PODS = "/registry/core/pods/"


def decode(kv: KeyValue) -> Object:
    obj: Object = orjson.loads(kv.value)
    obj["metadata"]["resourceVersion"] = str(kv.mod_revision)
    return obj


def pod(namespace: str, name: str, **labels: str) -> bytes:
    meta: dict[str, Any] = {"name": name, "namespace": namespace}
    if labels:
        meta["labels"] = labels
    return orjson.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": meta})


def labelled(key: str, value: str) -> Callable[[Object], bool]:
    return lambda obj: (obj["metadata"].get("labels") or {}).get(key) == value


def rv(obj: Object) -> int:
    return int(obj["metadata"]["resourceVersion"])


@pytest.fixture
async def storage(backend: Backend) -> Storage:
    return await backend.open(compact_interval=0)


@pytest.fixture
async def cache(storage: Storage) -> AsyncIterator[WatchCache]:
    watch_cache = WatchCache(storage, PODS, decode)
    await watch_cache.start()
    yield watch_cache
    await watch_cache.stop()


async def put(storage: Storage, namespace: str, name: str, **labels: str) -> KeyValue:
    key = f"{PODS}{namespace}/{name}"
    current = await storage.get(key)
    if current is None:
        return await storage.create(key, pod(namespace, name, **labels))
    return await storage.update(
        key, pod(namespace, name, **labels), expected_revision=current.mod_revision
    )


async def next_events(watcher: CacheWatcher, count: int, timeout: float = 5.0) -> list[CacheEvent]:
    events: list[CacheEvent] = []
    async with asyncio.timeout(timeout):
        while len(events) < count:
            events.append(await anext(watcher))
    return events


def summary(events: list[CacheEvent]) -> list[tuple[str, str, int]]:
    return [(e.type, e.object["metadata"].get("name", ""), e.revision) for e in events]


# --- state and lists -----------------------------------------------------------------


async def test_start_loads_current_objects(storage: Storage) -> None:
    await put(storage, "b", "two")
    await put(storage, "a", "one")
    await storage.create("/registry/core/services/a/svc", b"{}")
    cache = WatchCache(storage, PODS, decode)
    await cache.start()
    try:
        assert cache.ready.is_set()
        assert cache.revision == await storage.current_revision()
        one = cache.get("a/one")
        assert one is not None
        assert one["metadata"]["name"] == "one"
        stored = await storage.get(f"{PODS}a/one")
        assert stored is not None
        assert rv(one) == stored.mod_revision
        assert cache.get("a/missing") is None
        listed = cache.list()
        assert [o["metadata"]["name"] for o in listed.items] == ["one", "two"]
        assert listed.revision == cache.revision
    finally:
        await cache.stop()


async def test_list_by_namespace_pages_and_predicate(storage: Storage, cache: WatchCache) -> None:
    for namespace in ("ns", "ns2", "other"):
        for index in range(5):
            await put(storage, namespace, f"p{index}", app="web" if index % 2 else "db")
    await cache.wait_until_fresh()

    in_ns = cache.list(key_prefix="ns/")
    assert [o["metadata"]["name"] for o in in_ns.items] == [f"p{i}" for i in range(5)]
    assert (in_ns.next_start_key, in_ns.remaining_count) == (None, 0)

    first = cache.list(key_prefix="ns/", limit=2)
    assert [o["metadata"]["name"] for o in first.items] == ["p0", "p1"]
    assert (first.next_start_key, first.remaining_count) == ("ns/p2", 3)
    second = cache.list(key_prefix="ns/", limit=2, start_key=first.next_start_key or "")
    assert [o["metadata"]["name"] for o in second.items] == ["p2", "p3"]
    last = cache.list(key_prefix="ns/", limit=2, start_key=second.next_start_key or "")
    assert [o["metadata"]["name"] for o in last.items] == ["p4"]
    assert (last.next_start_key, last.remaining_count) == (None, 0)

    web = cache.list(predicate=labelled("app", "web"), limit=3)
    assert [(o["metadata"]["namespace"], o["metadata"]["name"]) for o in web.items] == [
        ("ns", "p1"),
        ("ns", "p3"),
        ("ns2", "p1"),
    ]
    assert web.next_start_key == "ns2/p3"
    assert web.remaining_count is None
    everything = cache.list()
    assert len(everything.items) == 15
    assert [
        k
        for k in (f"{o['metadata']['namespace']}/{o['metadata']['name']}" for o in everything.items)
    ] == sorted(f"{ns}/p{i}" for ns in ("ns", "ns2", "other") for i in range(5))


async def test_cache_follows_creates_updates_and_deletes(
    storage: Storage, cache: WatchCache
) -> None:
    created = await put(storage, "ns", "a", app="web")
    await cache.wait_for_revision(created.mod_revision)
    cached = cache.get("ns/a")
    assert cached is not None
    assert rv(cached) == created.mod_revision

    updated = await put(storage, "ns", "a", app="db")
    await cache.wait_for_revision(updated.mod_revision)
    cached = cache.get("ns/a")
    assert cached is not None
    assert cached["metadata"]["labels"] == {"app": "db"}
    assert rv(cached) == updated.mod_revision

    deleted = await storage.delete(f"{PODS}ns/a")
    await cache.wait_for_revision(deleted.mod_revision)
    assert cache.get("ns/a") is None
    assert cache.list().items == []


async def test_wait_for_a_revision_never_reached_times_out(cache: WatchCache) -> None:
    with pytest.raises(ResourceVersionTooLarge) as raised:
        await cache.wait_for_revision(cache.revision + 100, timeout=0.05)
    assert raised.value.code == 504
    assert raised.value.reason == "Timeout"
    assert raised.value.message == (
        f"Timeout: Too large resource version: {cache.revision + 100}, current: {cache.revision}"
    )


async def test_writes_to_other_resources_do_not_keep_reads_waiting(
    storage: Storage, cache: WatchCache
) -> None:
    await put(storage, "ns", "a")
    elsewhere = await storage.create("/registry/core/services/ns/svc", b"{}")
    revision = await asyncio.wait_for(cache.wait_until_fresh(timeout=1), 2)
    assert revision == elsewhere.mod_revision
    assert cache.revision >= elsewhere.mod_revision


# --- watch ---------------------------------------------------------------------------


async def test_watch_from_zero_sends_current_objects_then_changes(
    storage: Storage, cache: WatchCache
) -> None:
    a = await put(storage, "ns", "a")
    b = await put(storage, "ns", "b")
    await put(storage, "other", "c")
    await cache.wait_until_fresh()
    watcher = cache.watch(after=0, key_prefix="ns/")
    modified = await put(storage, "ns", "a", app="web")
    await put(storage, "other", "c", app="web")
    created = await put(storage, "ns", "d")
    assert summary(await next_events(watcher, 4)) == [
        ("ADDED", "a", a.mod_revision),
        ("ADDED", "b", b.mod_revision),
        ("MODIFIED", "a", modified.mod_revision),
        ("ADDED", "d", created.mod_revision),
    ]


async def test_watch_from_a_revision_replays_history_then_follows(
    storage: Storage, cache: WatchCache
) -> None:
    a = await put(storage, "ns", "a")
    a2 = await put(storage, "ns", "a", app="x")
    gone = await storage.delete(f"{PODS}ns/a")
    await cache.wait_for_revision(gone.mod_revision)
    watcher = cache.watch(after=a.mod_revision)
    live = await put(storage, "ns", "b")
    events = await next_events(watcher, 3)
    assert summary(events) == [
        ("MODIFIED", "a", a2.mod_revision),
        ("DELETED", "a", gone.mod_revision),
        ("ADDED", "b", live.mod_revision),
    ]
    assert rv(events[1].object) == gone.mod_revision
    assert events[1].object["metadata"]["labels"] == {"app": "x"}


async def test_watch_too_far_back_is_gone(storage: Storage) -> None:
    cache = WatchCache(storage, PODS, decode, history=5)
    await cache.start()
    try:
        writes = [await put(storage, "ns", f"p{i}") for i in range(10)]
        await cache.wait_for_revision(writes[-1].mod_revision)
        oldest = writes[4].mod_revision  # the last change that fell out of the buffer
        with pytest.raises(ResourceVersionTooOld) as raised:
            cache.watch(after=writes[2].mod_revision)
        assert (raised.value.code, raised.value.reason) == (410, "Expired")
        assert raised.value.message == (
            f"too old resource version: {writes[2].mod_revision} ({oldest})"
        )
        events = await next_events(cache.watch(after=oldest), 5)
        assert [e.revision for e in events] == [w.mod_revision for w in writes[5:]]
    finally:
        await cache.stop()


async def test_watch_after_the_cache_revision_skips_up_to_it(
    storage: Storage, cache: WatchCache
) -> None:
    head = cache.revision
    watcher = cache.watch(after=head + 2)
    await put(storage, "ns", "a")
    await put(storage, "ns", "b")
    third = await put(storage, "ns", "c")
    assert summary(await next_events(watcher, 1)) == [("ADDED", "c", third.mod_revision)]


async def test_predicate_turns_moves_across_the_selection_into_added_and_deleted(
    storage: Storage, cache: WatchCache
) -> None:
    watcher = cache.watch(after=cache.revision, predicate=labelled("app", "web"))
    await put(storage, "ns", "a", app="db")  # never matched: nothing
    joined = await put(storage, "ns", "a", app="web")
    changed = await put(storage, "ns", "a", app="web", tier="front")
    left = await put(storage, "ns", "a", app="db", tier="front")
    await storage.delete(f"{PODS}ns/a")  # deleted while not matching: nothing
    b = await put(storage, "ns", "b", app="web")
    b_gone = await storage.delete(f"{PODS}ns/b")
    events = await next_events(watcher, 5)
    assert summary(events) == [
        ("ADDED", "a", joined.mod_revision),
        ("MODIFIED", "a", changed.mod_revision),
        ("DELETED", "a", left.mod_revision),
        ("ADDED", "b", b.mod_revision),
        ("DELETED", "b", b_gone.mod_revision),
    ]
    # Leaving the selection shows the last matching state, at the change's revision.
    assert events[2].object["metadata"]["labels"] == {"app": "web", "tier": "front"}
    assert rv(events[2].object) == left.mod_revision
    assert rv(events[1].object) == changed.mod_revision  # the shared cached object is intact


async def test_many_watchers_see_every_change_in_order(storage: Storage, cache: WatchCache) -> None:
    start = cache.revision
    watchers = [cache.watch(after=start) for _ in range(100)]
    selective = cache.watch(after=start, key_prefix="ns3/")

    async def writer(namespace: str) -> list[int]:
        revisions = []
        for index in range(10):
            revisions.append(
                (await put(storage, namespace, f"p{index % 4}", n=str(index))).mod_revision
            )
        return revisions

    written = sorted(
        r for rs in await asyncio.gather(*(writer(f"ns{n}") for n in range(5))) for r in rs
    )
    for watcher in watchers:
        events = await next_events(watcher, len(written))
        assert [e.revision for e in events] == written
    ns3 = await next_events(selective, 10)
    assert all(e.object["metadata"]["namespace"] == "ns3" for e in ns3)
    assert [e.revision for e in ns3] == sorted(e.revision for e in ns3)
    # Every watcher got the same objects, not copies.
    first = await next_events(cache.watch(after=start), 1)
    again = await next_events(cache.watch(after=start), 1)
    assert first[0].object is again[0].object


async def test_slow_watcher_is_ended_without_stalling_the_cache(storage: Storage) -> None:
    cache = WatchCache(storage, PODS, decode, watcher_queue=5)
    await cache.start()
    try:
        slow = cache.watch(after=cache.revision)
        fast = cache.watch(after=cache.revision)
        fast_events: list[CacheEvent] = []

        async def follow() -> None:
            async for event in fast:
                fast_events.append(event)

        follower = asyncio.create_task(follow())
        written = [(await put(storage, "ns", f"p{i}")).mod_revision for i in range(50)]
        await cache.wait_for_revision(written[-1], timeout=2)
        received = [event.revision async for event in slow]  # ends after what it queued
        assert slow.overflowed
        assert received == written[:5]
        async with asyncio.timeout(2):
            while len(fast_events) < 50:
                await asyncio.sleep(0.005)
        assert [e.revision for e in fast_events] == written
        follower.cancel()
        # The slow client resumes from the last revision it saw, losing nothing.
        resumed = await next_events(cache.watch(after=received[-1]), 45)
        assert [e.revision for e in resumed] == written[5:]
    finally:
        await cache.stop()


async def test_bookmarks_carry_the_revision_when_enabled(
    storage: Storage, cache: WatchCache
) -> None:
    quiet = cache.watch(after=cache.revision, key_prefix="quiet/", bookmark_interval=0.05)
    plain = cache.watch(after=cache.revision, key_prefix="quiet/")
    elsewhere = await put(storage, "busy", "a")
    await cache.wait_for_revision(elsewhere.mod_revision)
    bookmark = await asyncio.wait_for(anext(quiet), 2)
    assert bookmark.type == "BOOKMARK"
    assert bookmark.revision == elsewhere.mod_revision
    assert bookmark.object == {"metadata": {"resourceVersion": str(elsewhere.mod_revision)}}
    # Nothing new: no further bookmark.
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(anext(quiet), 0.2)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(anext(plain), 0.1)


async def test_a_watch_with_a_deadline_stops_waiting_at_it(
    storage: Storage, cache: WatchCache
) -> None:
    loop = asyncio.get_running_loop()
    watcher = cache.watch(after=cache.revision, bookmark_interval=0.05, deadline=loop.time() + 0.3)
    first = await put(storage, "ns", "a")
    second = await put(storage, "ns", "b")
    await cache.wait_for_revision(second.mod_revision)
    # Before the deadline what is queued comes.
    assert summary(await next_events(watcher, 1)) == [("ADDED", "a", first.mod_revision)]
    await asyncio.sleep(0.35)
    # Past it the watch ends, even with an event queued (as kube-apiserver ends a watch at
    # its timeout: the client watches again from the last revision it saw).
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(anext(watcher), 1)
    assert watcher.revision == first.mod_revision
    # Nothing comes: the wait ends at the deadline (no bookmark is owed).
    waiting = cache.watch(after=cache.revision, bookmark_interval=1.0, deadline=loop.time() + 0.1)
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(anext(waiting), 5)
    waiting.close()
    watcher.close()


async def test_stopping_the_cache_ends_its_watchers(storage: Storage) -> None:
    cache = WatchCache(storage, PODS, decode)
    await cache.start()
    watcher = cache.watch(after=cache.revision)
    await cache.stop()
    assert [event async for event in watcher] == []


# --- storage trouble -----------------------------------------------------------------


async def test_a_dropped_storage_watch_resumes_without_losing_changes(
    backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    # A storage watcher queue far smaller than one commit batch makes storage drop the
    # cache's watch under a burst of concurrent writes.
    storage = await backend.open(compact_interval=0, watcher_queue=3)
    cache = WatchCache(storage, PODS, decode)
    await cache.start()
    try:
        watcher = cache.watch(after=cache.revision)
        writes = await asyncio.gather(*(put(storage, "ns", f"p{i}") for i in range(200)))
        revisions = sorted(kv.mod_revision for kv in writes)
        await cache.wait_for_revision(revisions[-1], timeout=5)
        events = await next_events(watcher, 200)
        assert [e.revision for e in events] == revisions
        assert len(cache.list().items) == 200
        assert "fell behind" in caplog.text  # the storage watch was really dropped
    finally:
        await cache.stop()
        await storage.close()


class CompactingStorage:
    """A store whose next watch fails with Compacted, as after a long outage."""

    def __init__(self, inner: Storage) -> None:
        self.inner = inner
        self.fail_next_watch = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def watch(
        self, prefix: str, *, after: int, progress_notify: bool = False
    ) -> AsyncIterator[WatchEvent]:
        if self.fail_next_watch:
            self.fail_next_watch = False
            raise Compacted(after, after + 1)
        async for event in self.inner.watch(prefix, after=after, progress_notify=progress_notify):
            yield event


async def test_a_compacted_storage_watch_relists_and_ends_watchers(backend: Backend) -> None:
    inner = await backend.open(compact_interval=0, watcher_queue=3)
    storage = CompactingStorage(inner)
    cache = WatchCache(storage, PODS, decode)
    await cache.start()
    try:
        before = await put(inner, "ns", "old")
        await cache.wait_for_revision(before.mod_revision)
        watcher = cache.watch(after=cache.revision)
        storage.fail_next_watch = True
        writes = await asyncio.gather(*(put(inner, "ns", f"p{i}") for i in range(100)))
        await inner.delete(f"{PODS}ns/old")
        head = await inner.current_revision()
        await cache.wait_for_revision(head, timeout=5)
        received = [event async for event in watcher]  # ended by the relist
        assert len(received) < 101
        assert cache.get("ns/old") is None
        assert {o["metadata"]["name"] for o in cache.list().items} == {
            f"p{i}" for i in range(len(writes))
        }
        assert cache.oldest_revision > before.mod_revision
        with pytest.raises(ResourceVersionTooOld):
            cache.watch(after=before.mod_revision)
        follows = cache.watch(after=cache.revision)
        later = await put(inner, "ns", "later")
        assert summary(await next_events(follows, 1)) == [("ADDED", "later", later.mod_revision)]
    finally:
        await cache.stop()
        await inner.close()


async def test_an_object_changed_in_place_is_reported_when_the_cache_lets_it_go(
    storage: Storage, caplog: pytest.LogCaptureFixture
) -> None:
    # The test suite turns the check on for every server (tests/conftest.py).
    cache = WatchCache(storage, PODS, decode)
    await cache.start()
    try:
        first = await put(storage, "ns", "kept")
        changed = await put(storage, "ns", "changed")
        await cache.wait_for_revision(changed.mod_revision)
        cached = cache.get("ns/changed")
        assert cached is not None
        cached["metadata"]["labels"] = {"oops": "changed"}  # what a reader must never do
        later = await put(storage, "ns", "changed", fixed="yes")
        await cache.wait_for_revision(later.mod_revision)
        await put(storage, "ns", "kept", fine="yes")
        await cache.wait_until_fresh()
    finally:
        await cache.stop()
    reported = [r for r in caplog.records if r.name == "timonel.apiserver.sharedguard"]
    assert [r.getMessage().split(" under ")[0] for r in reported] == [
        "shared object changed in place: ns/changed"
    ]
    assert first.mod_revision < later.mod_revision
    caplog.clear()  # reported as expected: not a failure of this test
