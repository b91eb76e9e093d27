"""The behaviour every `Storage` backend owes the API server (see storage/interface.py)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable

import pytest

from tests.integration.storage.storage_backends import Backend
from timonel.storage.guaranteed import guaranteed_update
from timonel.storage.interface import (
    Compacted,
    EventType,
    FutureRevision,
    KeyExists,
    KeyNotFound,
    KeyValue,
    RevisionMismatch,
    Storage,
    WatchDropped,
    WatchEvent,
)


async def collect(
    watch: AsyncIterator[WatchEvent], until: int, timeout: float = 5.0
) -> list[WatchEvent]:
    """Events from `watch` (progress notices left out) up to revision `until`."""
    events: list[WatchEvent] = []
    async with asyncio.timeout(timeout):
        async for event in watch:
            if event.type is not EventType.PROGRESS:
                events.append(event)
            if event.revision >= until:
                return events
    return events


async def follow(watch: AsyncIterator[WatchEvent], into: list[WatchEvent]) -> None:
    async for event in watch:
        into.append(event)


async def until_seen(events: list[WatchEvent], revision: int, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not events or events[-1].revision < revision:
            await asyncio.sleep(0.002)


async def started(watch: AsyncIterator[WatchEvent], storage: Storage, key: str) -> WatchEvent:
    """Begin iterating `watch` (subscribing it) and return the event of one write to `key`."""
    first = asyncio.ensure_future(anext(watch))
    await asyncio.sleep(0.01)
    await storage.create(key, b"start")
    return await asyncio.wait_for(first, 5)


async def started_with(watch: AsyncIterator[WatchEvent], write: Awaitable[KeyValue]) -> WatchEvent:
    """Begin iterating `watch` (subscribing it), then `write`; the event of that write."""
    first = asyncio.ensure_future(anext(watch))
    await asyncio.sleep(0.01)
    await write
    return await asyncio.wait_for(first, 5)


# --- single-key operations ------------------------------------------------------------


async def test_create_then_get(storage: Storage) -> None:
    before = await storage.current_revision()
    created = await storage.create("/r/a", b"one")
    assert created == KeyValue("/r/a", b"one", created.mod_revision, created.mod_revision)
    assert created.mod_revision > before
    assert await storage.current_revision() == created.mod_revision
    assert await storage.get("/r/a") == created
    assert await storage.get("/r/missing") is None


async def test_create_refuses_a_live_key(storage: Storage) -> None:
    await storage.create("/r/a", b"one")
    with pytest.raises(KeyExists):
        await storage.create("/r/a", b"two")
    kept = await storage.get("/r/a")
    assert kept is not None
    assert kept.value == b"one"


async def test_update_requires_the_current_revision(storage: Storage) -> None:
    created = await storage.create("/r/a", b"one")
    updated = await storage.update("/r/a", b"two", expected_revision=created.mod_revision)
    assert updated.value == b"two"
    assert updated.create_revision == created.create_revision
    assert updated.mod_revision > created.mod_revision

    with pytest.raises(RevisionMismatch) as mismatch:
        await storage.update("/r/a", b"three", expected_revision=created.mod_revision)
    assert (mismatch.value.expected, mismatch.value.actual) == (
        created.mod_revision,
        updated.mod_revision,
    )
    assert await storage.get("/r/a") == updated

    with pytest.raises(KeyNotFound):
        await storage.update("/r/missing", b"x", expected_revision=1)


async def test_delete_returns_the_last_value_at_the_deletion_revision(storage: Storage) -> None:
    created = await storage.create("/r/a", b"one")
    deleted = await storage.delete("/r/a")
    assert deleted.value == b"one"
    assert deleted.create_revision == created.create_revision
    assert deleted.mod_revision > created.mod_revision
    assert await storage.current_revision() == deleted.mod_revision
    assert await storage.get("/r/a") is None
    with pytest.raises(KeyNotFound):
        await storage.delete("/r/a")
    with pytest.raises(KeyNotFound):
        await storage.update("/r/a", b"x", expected_revision=created.mod_revision)

    again = await storage.create("/r/a", b"two")
    assert again.create_revision == again.mod_revision > deleted.mod_revision


async def test_delete_with_a_stale_revision_is_refused(storage: Storage) -> None:
    created = await storage.create("/r/a", b"one")
    updated = await storage.update("/r/a", b"two", expected_revision=created.mod_revision)
    with pytest.raises(RevisionMismatch):
        await storage.delete("/r/a", expected_revision=created.mod_revision)
    assert await storage.get("/r/a") == updated
    await storage.delete("/r/a", expected_revision=updated.mod_revision)
    assert await storage.get("/r/a") is None


async def test_revisions_strictly_increase_across_keys_and_operations(storage: Storage) -> None:
    revisions = [await storage.current_revision()]
    for index in range(5):
        revisions.append((await storage.create(f"/r/{index}", b"v")).mod_revision)
    kv = await storage.get("/r/0")
    assert kv is not None
    revisions.append(
        (await storage.update("/r/0", b"w", expected_revision=kv.mod_revision)).mod_revision
    )
    revisions.append((await storage.delete("/r/1")).mod_revision)
    concurrent = await asyncio.gather(*(storage.create(f"/s/{i}", b"v") for i in range(50)))
    revisions.extend(sorted(kv.mod_revision for kv in concurrent))
    assert revisions == sorted(set(revisions))
    assert await storage.current_revision() == revisions[-1]


async def test_concurrent_creates_of_one_key_admit_exactly_one(storage: Storage) -> None:
    outcomes = await asyncio.gather(
        *(storage.create("/r/race", str(i).encode()) for i in range(20)), return_exceptions=True
    )
    winners = [o for o in outcomes if isinstance(o, KeyValue)]
    assert len(winners) == 1
    assert all(isinstance(o, KeyExists) for o in outcomes if o not in winners)
    assert await storage.get("/r/race") == winners[0]


# --- lists ---------------------------------------------------------------------------


async def test_list_selects_the_prefix_in_key_order(storage: Storage) -> None:
    for key in ["/r/b", "/r/a", "/r/c/x", "/r0", "/q/a", "/r", "/rr/a"]:
        await storage.create(key, key.encode())
    result = await storage.list("/r/")
    assert [kv.key for kv in result.items] == ["/r/a", "/r/b", "/r/c/x"]
    assert [kv.value for kv in result.items] == [b"/r/a", b"/r/b", b"/r/c/x"]
    assert result.revision == await storage.current_revision()
    assert result.more is False
    everything = await storage.list("")
    assert [kv.key for kv in everything.items] == sorted(
        ["/r/b", "/r/a", "/r/c/x", "/r0", "/q/a", "/r", "/rr/a"]
    )


async def test_list_pages_with_start_key_and_limit(storage: Storage) -> None:
    keys = [f"/r/{i:02d}" for i in range(7)]
    for key in keys:
        await storage.create(key, b"v")
    await storage.delete("/r/03")
    live = [key for key in keys if key != "/r/03"]

    pages: list[list[str]] = []
    start = ""
    revision = 0
    while True:
        page = await storage.list("/r/", start_key=start, limit=2, revision=revision)
        revision = page.revision
        pages.append([kv.key for kv in page.items])
        if not page.more:
            break
        start = page.items[-1].key + "\x00"
    assert pages == [live[0:2], live[2:4], live[4:6]]
    exact = await storage.list("/r/", limit=len(live))
    assert exact.more is False
    assert [kv.key for kv in (await storage.list("/r/", start_key="/r/04")).items] == live[3:]


async def test_list_and_get_at_an_older_revision(storage: Storage) -> None:
    a1 = await storage.create("/r/a", b"a1")
    b1 = await storage.create("/r/b", b"b1")
    a2 = await storage.update("/r/a", b"a2", expected_revision=a1.mod_revision)
    b_gone = await storage.delete("/r/b")
    c1 = await storage.create("/r/c", b"c1")

    def view(items: list[KeyValue]) -> dict[str, bytes]:
        return {kv.key: kv.value for kv in items}

    assert view((await storage.list("/r/", revision=b1.mod_revision)).items) == {
        "/r/a": b"a1",
        "/r/b": b"b1",
    }
    assert view((await storage.list("/r/", revision=a2.mod_revision)).items) == {
        "/r/a": b"a2",
        "/r/b": b"b1",
    }
    assert view((await storage.list("/r/", revision=b_gone.mod_revision)).items) == {"/r/a": b"a2"}
    at_b1 = await storage.list("/r/", revision=b1.mod_revision)
    assert at_b1.revision == b1.mod_revision
    assert [kv.mod_revision for kv in at_b1.items] == [a1.mod_revision, b1.mod_revision]
    assert await storage.get("/r/a", revision=a1.mod_revision) == a1
    assert await storage.get("/r/b", revision=b_gone.mod_revision) is None
    assert await storage.get("/r/c", revision=b_gone.mod_revision) is None
    assert await storage.get("/r/c", revision=c1.mod_revision) == c1
    with pytest.raises(FutureRevision):
        await storage.list("/r/", revision=c1.mod_revision + 10)


async def test_count_counts_live_keys_under_the_prefix(storage: Storage) -> None:
    for index in range(5):
        await storage.create(f"/r/{index}", b"v")
    await storage.create("/q/0", b"v")
    kv = await storage.get("/r/0")
    assert kv is not None
    await storage.update("/r/0", b"w", expected_revision=kv.mod_revision)
    await storage.delete("/r/4")
    assert await storage.count("/r/") == 4
    assert await storage.count("") == 5
    assert await storage.count("/none/") == 0


# --- watch ---------------------------------------------------------------------------


async def test_watch_reports_creates_updates_and_deletes(storage: Storage) -> None:
    start = await storage.current_revision()
    created = await storage.create("/r/a", b"one")
    updated = await storage.update("/r/a", b"two", expected_revision=created.mod_revision)
    deleted = await storage.delete("/r/a")
    events = await collect(storage.watch("/r/", after=start), deleted.mod_revision)
    assert [(e.type, e.kv, e.prev) for e in events] == [
        (EventType.PUT, created, None),
        (EventType.PUT, updated, created),
        (EventType.DELETE, deleted, updated),
    ]
    assert [e.is_create for e in events] == [True, False, False]


async def test_watch_replays_then_follows_live_writes_without_gaps(storage: Storage) -> None:
    start = await storage.current_revision()
    for index in range(30):
        await storage.create(f"/r/early-{index}", b"v")
        await storage.create(f"/other/{index}", b"v")

    async def writer(name: str) -> list[int]:
        revisions = []
        kv = await storage.create(f"/r/{name}", b"0")
        revisions.append(kv.mod_revision)
        for step in range(1, 15):
            kv = await storage.update(kv.key, str(step).encode(), expected_revision=kv.mod_revision)
            revisions.append(kv.mod_revision)
            await storage.create(f"/other/{name}-{step}", b"v")
        return revisions

    watch = storage.watch("/r/", after=start)
    events: list[WatchEvent] = []
    follower = asyncio.create_task(follow(watch, events))
    written = [
        r
        for revisions in await asyncio.gather(*(writer(f"w{n}") for n in range(10)))
        for r in revisions
    ]
    await until_seen(events, max(written))
    follower.cancel()

    early = [e for e in events if e.kv.key.startswith("/r/early-")]
    assert len(early) == 30
    revisions = [e.revision for e in events]
    assert revisions == sorted(set(revisions)), "out of order or duplicated"
    assert sorted(e.revision for e in events if not e.kv.key.startswith("/r/early-")) == sorted(
        written
    )
    assert all(e.kv.key.startswith("/r/") for e in events)


async def test_a_write_racing_the_start_of_a_watch_is_delivered_once(storage: Storage) -> None:
    for attempt in range(10):
        after = await storage.current_revision()
        watch = storage.watch("/r/", after=after)
        first = asyncio.ensure_future(anext(watch))
        write = asyncio.ensure_future(storage.create(f"/r/{attempt}", b"v"))
        await asyncio.sleep(0)  # both have started: the watch's first read and the write
        # Hold the event loop so the store answers the read and commits the write before
        # the watch gets to run again: the write lands while the watch is subscribing.
        time.sleep(0.02)
        kv = await write
        event = await asyncio.wait_for(first, 2)
        assert event.kv == kv
        next_event = asyncio.ensure_future(anext(watch))
        marker = await storage.create(f"/r/{attempt}-after", b"v")
        assert (await asyncio.wait_for(next_event, 2)).kv == marker, "delivered twice"


async def test_watch_from_a_compacted_revision_raises_compacted(storage: Storage) -> None:
    first = await storage.create("/r/a", b"1")
    kv = first
    for step in range(5):
        kv = await storage.update("/r/a", str(step).encode(), expected_revision=kv.mod_revision)
    await storage.compact(kv.mod_revision - 1)
    assert await storage.compacted_revision() == kv.mod_revision - 1
    with pytest.raises(Compacted):
        await anext(storage.watch("/r/", after=first.mod_revision))
    # From the compacted revision itself, the rest is still there.
    event = await anext(storage.watch("/r/", after=kv.mod_revision - 1))
    assert event.kv == kv


async def test_slow_watcher_is_dropped_without_stalling_writers(backend: Backend) -> None:
    storage = await backend.open(watcher_queue=10)
    slow = storage.watch("/r/", after=await storage.current_revision())
    fast = storage.watch("/r/", after=await storage.current_revision())
    fast_events: list[WatchEvent] = []
    follower = asyncio.create_task(follow(fast, fast_events))
    await started(slow, storage, "/r/start")  # subscribed, and then never read

    begun = time.monotonic()
    written = [(await storage.create(f"/r/{i}", b"v")).mod_revision for i in range(200)]
    assert time.monotonic() - begun < 5

    received = []
    with pytest.raises(WatchDropped):
        async for event in slow:
            received.append(event.revision)
    assert received == written[: len(received)], "a dropped watcher still gets a gap-free prefix"
    assert len(received) <= 10
    # A watcher that keeps up is unaffected.
    await until_seen(fast_events, written[-1])
    follower.cancel()
    assert [e.revision for e in fast_events][1:] == written


# --- compaction ----------------------------------------------------------------------


async def test_compaction_keeps_current_values(storage: Storage) -> None:
    current: dict[str, KeyValue] = {}
    for index in range(10):
        kv = await storage.create(f"/r/{index}", b"0")
        for step in range(1, 6):
            kv = await storage.update(kv.key, str(step).encode(), expected_revision=kv.mod_revision)
        current[kv.key] = kv
    for index in (2, 5):
        await storage.delete(f"/r/{index}")
        del current[f"/r/{index}"]
    recreated = await storage.create("/r/5", b"again")
    current["/r/5"] = recreated
    head = await storage.current_revision()

    await storage.compact(head)
    assert await storage.compacted_revision() == head
    assert {kv.key: kv for kv in (await storage.list("/r/")).items} == current
    assert {kv.key: kv for kv in (await storage.list("/r/", revision=head)).items} == current
    for key, kv in current.items():
        assert await storage.get(key) == kv
    assert await storage.get("/r/2") is None
    assert await storage.count("/r/") == len(current)
    with pytest.raises(Compacted):
        await storage.list("/r/", revision=head - 1)
    with pytest.raises(Compacted):
        await storage.get("/r/0", revision=head - 1)

    # Writes after compaction behave as before, including on keys deleted before it.
    again = await storage.create("/r/2", b"back")
    updated = await storage.update("/r/0", b"new", expected_revision=current["/r/0"].mod_revision)
    events = await collect(storage.watch("/r/", after=head), updated.mod_revision)
    assert [(e.kv.key, e.is_create) for e in events] == [("/r/2", True), ("/r/0", False)]
    assert events[0].kv == again
    assert events[1].prev == current["/r/0"]


async def test_compaction_at_a_middle_revision_keeps_that_revision_readable(
    storage: Storage,
) -> None:
    a = await storage.create("/r/a", b"a1")
    b = await storage.create("/r/b", b"b1")
    middle = (await storage.update("/r/a", b"a2", expected_revision=a.mod_revision)).mod_revision
    await storage.update("/r/b", b"b2", expected_revision=b.mod_revision)
    await storage.delete("/r/a")
    await storage.compact(middle)
    at_middle = await storage.list("/r/", revision=middle)
    assert {kv.key: kv.value for kv in at_middle.items} == {"/r/a": b"a2", "/r/b": b"b1"}
    events = await collect(storage.watch("/r/", after=middle), await storage.current_revision())
    assert [(e.type, e.kv.key, e.kv.value) for e in events] == [
        (EventType.PUT, "/r/b", b"b2"),
        (EventType.DELETE, "/r/a", b"a2"),
    ]


async def test_compaction_bounds_the_size_on_disk(backend: Backend) -> None:
    storage = await backend.open()
    value = b"x" * 4000
    keys = [f"/r/{i}" for i in range(10)]
    revisions = {key: (await storage.create(key, value)).mod_revision for key in keys}

    async def churn() -> None:
        for _ in range(60):
            for key in keys:
                kv = await storage.update(key, value, expected_revision=revisions[key])
                revisions[key] = kv.mod_revision

    await churn()
    await storage.compact(await storage.current_revision())
    after_first = backend.disk_size()
    for _ in range(3):
        await churn()
        await storage.compact(await storage.current_revision())
    # Three more rounds of churn leave the store no bigger than after the first.
    assert backend.disk_size() <= after_first * 1.2
    assert backend.disk_size() < 10 * 60 * len(value) / 4
    assert [kv.mod_revision for kv in (await storage.list("/r/")).items] == [
        revisions[key] for key in sorted(keys)
    ]


async def test_background_compaction_keeps_the_newest_revisions(backend: Backend) -> None:
    storage = await backend.open(compact_interval=0.02, compact_keep=20)
    kv = await storage.create("/r/a", b"0")
    for step in range(60):
        kv = await storage.update("/r/a", str(step).encode(), expected_revision=kv.mod_revision)
    async with asyncio.timeout(20):
        while await storage.compacted_revision() < kv.mod_revision - 20:
            await asyncio.sleep(0.01)
    assert await storage.compacted_revision() == kv.mod_revision - 20
    assert await storage.get("/r/a") == kv
    events = await collect(storage.watch("/r/", after=kv.mod_revision - 20), kv.mod_revision)
    assert len(events) == 20


# --- concurrency ---------------------------------------------------------------------


async def test_concurrent_read_modify_write_loses_no_increment(storage: Storage) -> None:
    await storage.create("/r/counter", b"0")

    async def increment(current: KeyValue | None) -> bytes:
        assert current is not None
        await asyncio.sleep(0)  # let other writers interleave between read and write
        return str(int(current.value) + 1).encode()

    async def worker() -> None:
        for _ in range(10):
            await guaranteed_update(storage, "/r/counter", increment, max_retries=1000)

    await asyncio.gather(*(worker() for _ in range(30)))
    final = await storage.get("/r/counter")
    assert final is not None
    assert final.value == b"300"


async def test_guaranteed_update_creates_and_skips_unchanged_values(storage: Storage) -> None:
    async def set_one(current: KeyValue | None) -> bytes:
        return b"1"

    created = await guaranteed_update(storage, "/r/a", set_one)
    assert created is not None
    assert created.value == b"1"
    assert await guaranteed_update(storage, "/r/a", set_one) == created
    assert await storage.current_revision() == created.mod_revision

    async def leave(current: KeyValue | None) -> None:
        return None

    assert await guaranteed_update(storage, "/r/missing", leave) is None
    assert await storage.get("/r/missing") is None


async def test_guaranteed_update_gives_up_after_max_retries(storage: Storage) -> None:
    kv = await storage.create("/r/a", b"0")

    async def always_raced(current: KeyValue | None) -> bytes:
        assert current is not None
        await storage.update("/r/a", b"other", expected_revision=current.mod_revision)
        return b"mine"

    with pytest.raises(RevisionMismatch):
        await guaranteed_update(storage, "/r/a", always_raced, max_retries=2)
    latest = await storage.get("/r/a")
    assert latest is not None
    assert latest.value == b"other"
    assert latest.mod_revision == kv.mod_revision + 3


async def test_progress_notices_report_writes_elsewhere(storage: Storage) -> None:
    start = await storage.current_revision()
    watch = storage.watch("/r/", after=start, progress_notify=True)
    first = asyncio.ensure_future(anext(watch))
    await asyncio.sleep(0.01)
    elsewhere = await storage.create("/other/a", b"v")
    notice = await asyncio.wait_for(first, 2)
    assert notice.type is EventType.PROGRESS
    assert notice.revision == elsewhere.mod_revision
    mine = await storage.create("/r/a", b"v")
    event = await asyncio.wait_for(anext(watch), 2)
    assert (event.type, event.kv) == (EventType.PUT, mine)


async def test_live_events_carry_what_the_writer_decoded(storage: Storage) -> None:
    start = await storage.current_revision()
    watch = storage.watch("/r/", after=start)
    first = {"step": 1}
    second = {"step": 2}
    created = await started_with(watch, storage.create("/r/a", b'{"step":1}', decoded=first))
    updated = await storage.update(
        "/r/a", b'{"step":2}', expected_revision=created.kv.mod_revision, decoded=second
    )
    event = await asyncio.wait_for(anext(watch), 5)
    assert event.kv == updated
    assert created.kv.decoded is first
    assert event.kv.decoded is second
