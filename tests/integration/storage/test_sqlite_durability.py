"""An acknowledged write survives the process being killed (SIGKILL) at any moment."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

from timonel.storage.sqlite import SQLiteStorage

REPO = Path(__file__).resolve().parents[3]

# Eight writers create keys and one updates a counter, printing each write only once it
# is acknowledged: every printed line is a promise the store must keep.
WRITER = """
import asyncio, sys
from timonel.storage.sqlite import SQLiteStorage

async def main(path, round_):
    storage = SQLiteStorage(path, compact_interval=0)
    await storage.start()

    def acknowledge(kind, key, revision, value):
        sys.stdout.write(f"{kind} {key} {revision} {value}\\n")
        sys.stdout.flush()

    async def creator(writer):
        for index in range(1_000_000):
            key = f"/d/{round_}/{writer}/{index:07d}"
            kv = await storage.create(key, f"{writer}:{index}".encode() * 20)
            acknowledge("create", key, kv.mod_revision, f"{writer}:{index}")

    async def counter():
        kv = await storage.get("/d/counter")
        if kv is None:
            kv = await storage.create("/d/counter", b"0")
        while True:
            value = int(kv.value) + 1
            kv = await storage.update("/d/counter", str(value).encode(),
                                      expected_revision=kv.mod_revision)
            acknowledge("count", "/d/counter", kv.mod_revision, value)

    await asyncio.gather(counter(), *(creator(w) for w in range(8)))

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


def write_until_killed(path: Path, round_: int, acknowledgements: int) -> list[list[str]]:
    """Run the writer, SIGKILL it after `acknowledgements` lines, return every line it printed."""
    process = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), str(round_)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=REPO,
        text=True,
    )
    assert process.stdout is not None
    lines = []
    try:
        for line in process.stdout:
            lines.append(line.split())
            if len(lines) >= acknowledgements:
                process.send_signal(signal.SIGKILL)
                break
        # Lines written before the kill are still in the pipe: they were acknowledged too.
        lines.extend(line.split() for line in process.stdout)
    finally:
        process.kill()
        process.wait(10)
    assert process.returncode == -signal.SIGKILL, process.stderr.read() if process.stderr else ""
    return [line for line in lines if len(line) == 4]


async def test_every_acknowledged_write_survives_sigkill(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    acknowledged = write_until_killed(path, 1, 400)
    acknowledged += write_until_killed(path, 2, 400)  # reopens the crashed file first
    assert len(acknowledged) >= 800

    with closing(sqlite3.connect(path)) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]

    storage = SQLiteStorage(str(path), compact_interval=0)
    await storage.start()
    try:
        created = [line for line in acknowledged if line[0] == "create"]
        for _, key, revision, value in created:
            kv = await storage.get(key)
            assert kv is not None, f"acknowledged create of {key} at {revision} lost"
            assert kv.mod_revision == int(revision)
            assert kv.value == value.encode() * 20

        counts = [line for line in acknowledged if line[0] == "count"]
        counter = await storage.get("/d/counter")
        assert counter is not None
        assert counter.mod_revision >= max(int(line[2]) for line in counts)
        assert int(counter.value) >= max(int(line[3]) for line in counts)

        newest = max(int(line[2]) for line in acknowledged)
        assert await storage.current_revision() >= newest
        after = await storage.create("/d/after-crash", b"v")
        assert after.mod_revision > newest
        listed = await storage.list("/d/1/")
        assert {kv.key for kv in listed.items} >= {
            line[1] for line in created if line[1].startswith("/d/1/")
        }
    finally:
        await storage.close()
