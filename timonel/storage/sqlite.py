"""The default datastore: SQLite holding one append-only log, as kine keeps it.

Layout. Every write appends one row to `kv_log`; the row's id is the write's revision.

    id               INTEGER PRIMARY KEY AUTOINCREMENT   the revision
    name             the key
    created          1 when the row creates the key
    deleted          1 when the row deletes it (a tombstone; `value` repeats the last value)
    create_revision  the revision that created the key
    prev_revision    the id of the key's previous row (0 for none)
    value            the bytes written

The current state is the newest row per name, unless it is a tombstone. A UNIQUE index on
(name, prev_revision) makes the database itself refuse two writes based on the same row.
A watch replay joins each row to its previous row through prev_revision to report the
previous value, so no `old_value` column doubles what is written. Reading the state at
an older revision R means taking the newest row per name with id <= R.

Revision 1 exists from the start (as in etcd), so the first write gets revision 2.

Threading. All SQLite work runs on one dedicated thread fed by a queue, so the event loop
never waits on fsync. The thread drains whatever is queued: reads run first, then all
queued writes share one transaction and one fsync. A write is acknowledged only after that
commit. Each write changes the database with at most one statement, an INSERT, made after
every check that can refuse it; SQLite backs out a failing statement by itself, so one
write's failure leaves the others intact without a savepoint per write.

Watch. This process is the only writer (the file is opened with an exclusive lock), so
committed writes are handed to watchers on the event loop right after the commit, in
revision order, before the writers are answered. A watch first replays the log from its
starting revision, then subscribes and replays the short gap again, dropping duplicates
by revision. Each watcher has a bounded queue; one that overflows ends with
`WatchDropped`, which never slows writers.

Compaction. `compact(R)` deletes every row that a later row at or below R supersedes, and
every tombstone at or below R: the state at R and after stays readable, older state does
not. A background task compacts periodically, keeping the newest `compact_keep`
revisions; freed pages go back to the file system through incremental vacuum.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, Final, TypeVar

from timonel.storage.fanout import Subscribers, progress_event
from timonel.storage.interface import (
    Compacted,
    EventType,
    FutureRevision,
    KeyExists,
    KeyNotFound,
    KeyValue,
    ListResult,
    RevisionMismatch,
    StorageError,
    WatchEvent,
    prefix_end,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS kv_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    created INTEGER NOT NULL,
    deleted INTEGER NOT NULL,
    create_revision INTEGER NOT NULL,
    prev_revision INTEGER NOT NULL,
    value BLOB NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS kv_log_name_prev_revision ON kv_log (name, prev_revision);
CREATE INDEX IF NOT EXISTS kv_log_name ON kv_log (name);
CREATE TABLE IF NOT EXISTS kv_meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
INSERT OR IGNORE INTO kv_meta (name, value) VALUES ('compacted_revision', 0);
INSERT INTO sqlite_sequence (name, seq)
    SELECT 'kv_log', 1 WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'kv_log');
"""

# Writes drained into one transaction at most; bounds the latency a batch adds.
_MAX_BATCH: Final = 256
# Rows per watch-replay read; a replay yields between reads so writers keep going.
_REPLAY_PAGE: Final = 1000
# Revisions deleted per compaction transaction, so writes interleave with a long compaction.
_COMPACT_STEP: Final = 10_000


def _range_clause(column: str, prefix: str, start_key: str) -> tuple[str, list[Any]]:
    """SQL selecting names under `prefix` from `start_key` on, with its parameters."""
    end = prefix_end(prefix)
    lower = max(prefix, start_key)
    if end is None:
        return f"{column} >= ?", [lower]
    return f"{column} >= ? AND {column} < ?", [lower, end]


class _Database:
    """The SQL side. Used only on the storage thread; every method is synchronous."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._connection: sqlite3.Connection | None = None
        self.revision = 0  # newest committed (or, inside a batch, assigned) revision
        self.compacted = 0

    @property
    def sql(self) -> sqlite3.Connection:
        if self._connection is None:
            raise StorageError("the database is not open")
        return self._connection

    # --- lifecycle -----------------------------------------------------------------

    def open(self) -> tuple[int, int]:
        try:
            return self._open()
        except sqlite3.OperationalError as error:
            self.close()
            if "locked" in str(error):
                raise StorageError(
                    f"{self._path} is in use by another process (one server per data directory)"
                ) from error
            raise

    def _open(self) -> tuple[int, int]:
        connection = sqlite3.connect(self._path, isolation_level=None)
        self._connection = connection
        # auto_vacuum takes effect only when set before the first table is created.
        connection.execute("PRAGMA auto_vacuum = INCREMENTAL")
        # One process owns the file: watch fan-out relies on seeing every write.
        connection.execute("PRAGMA locking_mode = EXCLUSIVE")
        mode = connection.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StorageError(f"cannot switch {self._path} to WAL mode (got {mode})")
        connection.execute("PRAGMA synchronous = FULL")
        connection.execute("PRAGMA journal_size_limit = 16777216")
        connection.execute("PRAGMA cache_size = -32768")
        connection.execute("PRAGMA temp_store = MEMORY")
        connection.execute("BEGIN IMMEDIATE")
        try:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    connection.execute(statement)
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        self._load_revisions()
        return self.revision, self.compacted

    def _load_revisions(self) -> None:
        row = self.sql.execute("SELECT seq FROM sqlite_sequence WHERE name = 'kv_log'").fetchone()
        self.revision = int(row[0])
        row = self.sql.execute(
            "SELECT value FROM kv_meta WHERE name = 'compacted_revision'"
        ).fetchone()
        self.compacted = int(row[0])

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    # --- transactions (writes run inside one batch transaction) ----------------------

    def begin(self) -> None:
        self.sql.execute("BEGIN IMMEDIATE")

    def commit(self) -> None:
        self.sql.execute("COMMIT")

    def rollback(self) -> None:
        if self.sql.in_transaction:
            self.sql.execute("ROLLBACK")
        self._load_revisions()

    # --- reads -----------------------------------------------------------------------

    def _check_readable(self, revision: int) -> None:
        if revision > self.revision:
            raise FutureRevision(revision, self.revision)
        if 0 < revision < self.compacted:
            raise Compacted(revision, self.compacted)

    def _latest(self, key: str) -> tuple[int, int, int, bytes] | None:
        """(id, deleted, create_revision, value) of the key's newest row."""
        row = self.sql.execute(
            "SELECT id, deleted, create_revision, value FROM kv_log "
            "WHERE name = ? ORDER BY id DESC LIMIT 1",
            (key,),
        ).fetchone()
        return None if row is None else (row[0], row[1], row[2], row[3])

    def get(self, key: str, revision: int) -> KeyValue | None:
        self._check_readable(revision)
        if revision:
            row = self.sql.execute(
                "SELECT id, deleted, create_revision, value FROM kv_log "
                "WHERE name = ? AND id <= ? ORDER BY id DESC LIMIT 1",
                (key, revision),
            ).fetchone()
        else:
            row = self._latest(key)
        if row is None or row[1]:
            return None
        return KeyValue(key, row[3], row[2], row[0])

    def list_range(self, prefix: str, revision: int, start_key: str, limit: int) -> ListResult:
        self._check_readable(revision)
        at = revision or self.revision
        where, params = _range_clause("l.name", prefix, start_key)
        # Walk the name index in order and keep a row when no newer row of its name
        # exists at or below `at`; the walk stops as soon as `limit` rows are found.
        sql = (
            "SELECT l.name, l.value, l.create_revision, l.id FROM kv_log l "
            f"WHERE {where} AND l.id <= ? AND l.deleted = 0 AND NOT EXISTS ("
            "SELECT 1 FROM kv_log n WHERE n.name = l.name AND n.id > l.id AND n.id <= ?) "
            "ORDER BY l.name"
        )
        params += [at, at]
        if limit > 0:
            sql += " LIMIT ?"
            params.append(limit + 1)
        items = [KeyValue(*row) for row in self.sql.execute(sql, params)]
        more = limit > 0 and len(items) > limit
        if more:
            del items[limit:]
        return ListResult(items=items, revision=at, more=more)

    def count(self, prefix: str) -> int:
        where, params = _range_clause("l.name", prefix, "")
        row = self.sql.execute(
            f"SELECT COUNT(*) FROM kv_log l WHERE {where} AND l.deleted = 0 AND NOT EXISTS ("
            "SELECT 1 FROM kv_log n WHERE n.name = l.name AND n.id > l.id)",
            params,
        ).fetchone()
        return int(row[0])

    def replay(self, prefix: str, after: int, limit: int) -> tuple[list[WatchEvent], int]:
        """Writes under `prefix` with revision > `after` (at most `limit`), and the
        revision up to which the answer is complete."""
        if after < self.compacted:
            raise Compacted(after, self.compacted)
        where, params = _range_clause("+l.name", prefix, "")  # '+': scan by id, not by name
        rows = self.sql.execute(
            "SELECT l.id, l.name, l.created, l.deleted, l.create_revision, l.prev_revision, "
            "l.value, p.value FROM kv_log l LEFT JOIN kv_log p ON p.id = l.prev_revision "
            f"WHERE l.id > ? AND {where} ORDER BY l.id LIMIT ?",
            [after, *params, limit],
        ).fetchall()
        events = [_event_from_row(*row) for row in rows]
        complete_to = events[-1].revision if len(events) == limit else self.revision
        return events, complete_to

    # --- writes (inside the batch's transaction; each makes at most one INSERT) -------

    def _append(
        self,
        key: str,
        *,
        created: bool,
        deleted: bool,
        create_revision: int,
        prev_revision: int,
        value: bytes,
    ) -> int:
        revision = self.revision + 1
        self.sql.execute(
            "INSERT INTO kv_log (id, name, created, deleted, create_revision, prev_revision, "
            "value) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                revision,
                key,
                int(created),
                int(deleted),
                create_revision or revision,
                prev_revision,
                value,
            ),
        )
        self.revision = revision
        return revision

    def create(self, key: str, value: bytes, decoded: Any = None) -> WatchEvent:
        latest = self._latest(key)
        if latest is not None and not latest[1]:
            raise KeyExists(key)
        try:
            revision = self._append(
                key,
                created=True,
                deleted=False,
                create_revision=0,
                prev_revision=0 if latest is None else latest[0],
                value=value,
            )
        except sqlite3.IntegrityError as error:  # another writer got there first
            raise KeyExists(key) from error
        return WatchEvent(EventType.PUT, KeyValue(key, value, revision, revision, decoded), None)

    def _live(self, key: str, expected_revision: int) -> tuple[int, int, int, bytes]:
        latest = self._latest(key)
        if latest is None or latest[1]:
            raise KeyNotFound(key)
        if expected_revision and latest[0] != expected_revision:
            raise RevisionMismatch(key, expected_revision, latest[0])
        return latest

    def update(
        self, key: str, value: bytes, expected_revision: int, decoded: Any = None
    ) -> WatchEvent:
        previous, _, create_revision, previous_value = self._live(key, expected_revision)
        try:
            revision = self._append(
                key,
                created=False,
                deleted=False,
                create_revision=create_revision,
                prev_revision=previous,
                value=value,
            )
        except sqlite3.IntegrityError as error:
            raise RevisionMismatch(key, expected_revision, -1) from error
        return WatchEvent(
            EventType.PUT,
            KeyValue(key, value, create_revision, revision, decoded),
            KeyValue(key, previous_value, create_revision, previous),
        )

    def delete(self, key: str, expected_revision: int) -> WatchEvent:
        previous, _, create_revision, value = self._live(key, expected_revision)
        try:
            revision = self._append(
                key,
                created=False,
                deleted=True,
                create_revision=create_revision,
                prev_revision=previous,
                value=value,
            )
        except sqlite3.IntegrityError as error:
            raise RevisionMismatch(key, expected_revision, -1) from error
        return WatchEvent(
            EventType.DELETE,
            KeyValue(key, value, create_revision, revision),
            KeyValue(key, value, create_revision, previous),
        )

    # --- compaction ----------------------------------------------------------------------

    def compact_step(self, target: int) -> int:
        """Compact up to `target`, at most _COMPACT_STEP revisions in this transaction;
        returns the compacted revision reached."""
        low = self.compacted
        high = min(target, low + _COMPACT_STEP, self.revision)
        if high <= low:
            return low
        self.begin()
        try:
            # Rows superseded by a row in (low, high]; rows superseded at or below `low`
            # went in earlier steps.
            self.sql.execute(
                "DELETE FROM kv_log WHERE id IN (SELECT prev_revision FROM kv_log "
                "WHERE id > ? AND id <= ? AND prev_revision > 0)",
                (low, high),
            )
            self.sql.execute(
                "DELETE FROM kv_log WHERE id > ? AND id <= ? AND deleted = 1", (low, high)
            )
            self.sql.execute(
                "UPDATE kv_meta SET value = ? WHERE name = 'compacted_revision'", (high,)
            )
            self.commit()
        except BaseException:
            self.rollback()
            raise
        self.compacted = high
        return high

    def reclaim_space(self) -> None:
        """Give free pages back to the file system once they are a quarter of the file."""
        pages = self.sql.execute("PRAGMA page_count").fetchone()[0]
        free = self.sql.execute("PRAGMA freelist_count").fetchone()[0]
        if free * 4 >= pages and free > 0:
            # Python's execute() steps this pragma once, freeing one page; a script
            # runs it to completion.
            self.sql.executescript("PRAGMA incremental_vacuum;")
        self.sql.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()


def _event_from_row(
    revision: int,
    key: str,
    created: int,
    deleted: int,
    create_revision: int,
    prev_revision: int,
    value: bytes,
    prev_value: bytes | None,
) -> WatchEvent:
    prev = None
    if not created and prev_value is not None:
        prev = KeyValue(key, prev_value, create_revision, prev_revision)
    kv = KeyValue(key, value, create_revision, revision)
    return WatchEvent(EventType.DELETE if deleted else EventType.PUT, kv, prev)


@dataclass(slots=True)
class _Request:
    write: bool  # batched into the shared write transaction
    run: Callable[[_Database], Any]
    future: asyncio.Future[Any]


class SQLiteStorage:
    """The `Storage` protocol over one SQLite file (see the module docstring)."""

    def __init__(
        self,
        path: str,
        *,
        compact_interval: float = 300.0,
        compact_keep: int = 1000,
        watcher_queue: int = 10_000,
    ) -> None:
        self._path = path
        self._compact_interval = compact_interval
        self._compact_keep = compact_keep
        self._database = _Database(path)
        self._requests: queue.SimpleQueue[_Request | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self._revision = 0  # newest revision handed to watchers and writers
        self._subscribers = Subscribers(watcher_queue, lambda: self._revision)
        self._compactor: asyncio.Task[None] | None = None

    # --- lifecycle -----------------------------------------------------------------

    async def start(self) -> None:
        if self._thread is not None:
            raise StorageError("storage already started")
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(
            target=self._serve, name=f"sqlite {self._path}", daemon=True
        )
        self._thread.start()
        try:
            self._revision, _ = await self._call(False, _Database.open)
        except BaseException:
            self._closed = True
            await self._stop_thread()
            raise
        if self._compact_interval > 0:
            self._compactor = asyncio.create_task(
                self._compact_periodically(), name=f"compact {self._path}"
            )

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._compactor is not None:
            self._compactor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._compactor
        self._subscribers.end_all()
        await self._stop_thread()

    async def _stop_thread(self) -> None:
        if self._thread is None:
            return
        self._requests.put(None)
        await asyncio.to_thread(self._thread.join)

    # --- the storage thread ----------------------------------------------------------

    def _serve(self) -> None:
        database = self._database
        running = True
        while running:
            batch: list[_Request] = []
            item = self._requests.get()
            while item is not None:
                batch.append(item)
                if len(batch) >= _MAX_BATCH:
                    break
                try:
                    item = self._requests.get_nowait()
                except queue.Empty:
                    break
            running = item is not None
            reads = [request for request in batch if not request.write]
            writes = [request for request in batch if request.write]
            if reads:
                self._post([(r.future, _outcome(r.run, database)) for r in reads], [])
            if writes:
                self._commit(database, writes)
        database.close()

    def _commit(self, database: _Database, writes: list[_Request]) -> None:
        outcomes: list[tuple[asyncio.Future[Any], Any]] = []
        events: list[WatchEvent] = []
        try:
            database.begin()
            for request in writes:
                try:
                    event = request.run(database)
                except Exception as error:
                    outcomes.append((request.future, _storage_error(error)))
                    continue
                events.append(event)
                outcomes.append((request.future, event))
            database.commit()
        except BaseException as error:
            log.exception("commit failed on %s", self._path)
            with contextlib.suppress(BaseException):
                database.rollback()
            failure = _storage_error(error)
            outcomes = [(request.future, failure) for request in writes]
            events = []
        self._post(outcomes, events)

    def _post(
        self, outcomes: list[tuple[asyncio.Future[Any], Any]], events: list[WatchEvent]
    ) -> None:
        assert self._loop is not None
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody is waiting
            self._loop.call_soon_threadsafe(self._settle, outcomes, events)

    # --- back on the event loop ------------------------------------------------------

    def _settle(
        self, outcomes: list[tuple[asyncio.Future[Any], Any]], events: list[WatchEvent]
    ) -> None:
        if events:
            self._revision = events[-1].revision
            self._subscribers.fan_out(events)
        for future, outcome in outcomes:
            if future.done():
                continue
            if isinstance(outcome, BaseException):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)

    def _call(self, write: bool, run: Callable[[_Database], T]) -> asyncio.Future[T]:
        if self._closed or self._loop is None:
            raise StorageError("storage is closed" if self._closed else "storage not started")
        future: asyncio.Future[T] = self._loop.create_future()
        self._requests.put(_Request(write, run, future))
        return future

    # --- the Storage protocol ------------------------------------------------------------

    async def current_revision(self) -> int:
        if self._loop is None:
            raise StorageError("storage not started")
        return self._revision

    async def get(self, key: str, *, revision: int = 0) -> KeyValue | None:
        return await self._call(False, lambda db: db.get(key, revision))

    async def list(
        self, prefix: str, *, revision: int = 0, start_key: str = "", limit: int = 0
    ) -> ListResult:
        return await self._call(False, lambda db: db.list_range(prefix, revision, start_key, limit))

    async def count(self, prefix: str) -> int:
        return await self._call(False, lambda db: db.count(prefix))

    async def create(self, key: str, value: bytes, *, decoded: Any = None) -> KeyValue:
        event = await self._call(True, lambda db: db.create(key, value, decoded))
        return event.kv

    async def update(
        self, key: str, value: bytes, *, expected_revision: int, decoded: Any = None
    ) -> KeyValue:
        event = await self._call(True, lambda db: db.update(key, value, expected_revision, decoded))
        return event.kv

    async def delete(self, key: str, *, expected_revision: int = 0) -> KeyValue:
        event = await self._call(True, lambda db: db.delete(key, expected_revision))
        return event.kv

    async def watch(
        self, prefix: str, *, after: int, progress_notify: bool = False
    ) -> AsyncIterator[WatchEvent]:
        position = after
        # Catch up from the log before subscribing, so the live queue only has to hold
        # what is written during the last replay read.
        while True:
            page, _ = await self._call(
                False, partial(_Database.replay, prefix=prefix, after=position, limit=_REPLAY_PAGE)
            )
            for event in page:
                yield event
                position = event.revision
            if len(page) < _REPLAY_PAGE:
                break
        subscriber = self._subscribers.subscribe(prefix, progress_notify)
        try:
            while True:
                page, complete_to = await self._call(
                    False,
                    partial(_Database.replay, prefix=prefix, after=position, limit=_REPLAY_PAGE),
                )
                for event in page:
                    yield event
                    position = event.revision
                if len(page) < _REPLAY_PAGE:
                    break
            if progress_notify and complete_to > position:
                position = complete_to
                yield progress_event(complete_to)
            async for event in subscriber.follow(position):
                yield event
        finally:
            self._subscribers.unsubscribe(subscriber)

    async def compact(self, revision: int) -> None:
        current = self._revision
        if revision > current:
            raise FutureRevision(revision, current)
        while True:
            reached = await self._call(False, lambda db: db.compact_step(revision))
            if reached >= revision:
                break
        await self._call(False, _Database.reclaim_space)

    async def compacted_revision(self) -> int:
        return await self._call(False, lambda db: db.compacted)

    async def _compact_periodically(self) -> None:
        while True:
            await asyncio.sleep(self._compact_interval)
            target = self._revision - self._compact_keep
            try:
                if target > await self.compacted_revision():
                    started = time.monotonic()
                    await self.compact(target)
                    log.debug(
                        "compacted %s to %d in %.3fs",
                        self._path,
                        target,
                        time.monotonic() - started,
                    )
            except StorageError:
                log.exception("periodic compaction of %s failed", self._path)


def _storage_error(error: BaseException) -> BaseException:
    if isinstance(error, StorageError):
        return error
    if isinstance(error, sqlite3.Error):
        wrapped = StorageError(f"sqlite: {error}")
        wrapped.__cause__ = error
        return wrapped
    return error


def _outcome(run: Callable[[_Database], Any], database: _Database) -> Any:
    try:
        return run(database)
    except Exception as error:
        return _storage_error(error)
