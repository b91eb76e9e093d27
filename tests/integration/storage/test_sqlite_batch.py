"""Writes that share one SQLite transaction: a refused write leaves the others intact."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from timonel.storage.interface import KeyExists, RevisionMismatch
from timonel.storage.sqlite import SQLiteStorage, _Database


async def test_refused_writes_in_a_batch_leave_the_others_committed(tmp_path: Path) -> None:
    storage = SQLiteStorage(str(tmp_path / "db.sqlite"), compact_interval=0)
    await storage.start()
    try:
        existing = await storage.create("/b/existing", b"0")
        # Queued together, so the storage thread runs them in one transaction.
        outcomes = await asyncio.gather(
            storage.create("/b/a", b"a"),
            storage.create("/b/existing", b"again"),
            storage.update("/b/existing", b"1", expected_revision=existing.mod_revision),
            storage.update("/b/existing", b"2", expected_revision=existing.mod_revision),
            storage.create("/b/c", b"c"),
            return_exceptions=True,
        )
        assert isinstance(outcomes[1], KeyExists)
        assert isinstance(outcomes[3], RevisionMismatch)
        revisions = [o.mod_revision for o in outcomes if not isinstance(o, BaseException)]
        assert revisions == list(range(existing.mod_revision + 1, existing.mod_revision + 4))
        listed = await storage.list("/b/")
        assert [(kv.key, kv.value) for kv in listed.items] == [
            ("/b/a", b"a"),
            ("/b/c", b"c"),
            ("/b/existing", b"1"),
        ]
        assert listed.revision == revisions[-1]
    finally:
        await storage.close()


def test_an_insert_refused_by_the_unique_index_leaves_the_transaction_intact(
    tmp_path: Path,
) -> None:
    """What the batch relies on instead of a savepoint per write: SQLite backs out the
    failing statement alone."""
    database = _Database(str(tmp_path / "db.sqlite"))
    database.open()
    try:
        start = database.revision
        database.begin()
        first = database.create("/k/one", b"1").revision
        with pytest.raises(sqlite3.IntegrityError):
            # A second row based on the same previous row: the (name, prev_revision) index refuses it.
            database._append(
                "/k/one",
                created=True,
                deleted=False,
                create_revision=0,
                prev_revision=0,
                value=b"x",
            )
        second = database.create("/k/two", b"2").revision
        database.commit()
        assert (first, second) == (start + 1, start + 2)
        assert database.get("/k/one", 0) is not None
        assert database.get("/k/one", 0).value == b"1"  # type: ignore[union-attr]
        assert database.get("/k/two", 0).mod_revision == second  # type: ignore[union-attr]
        rows = database.sql.execute("SELECT id, name FROM kv_log WHERE id > ?", (start,)).fetchall()
        assert rows == [(first, "/k/one"), (second, "/k/two")]
    finally:
        database.close()
