"""Storage backends the conformance suite runs against.

Each backend is one entry in BACKENDS: a factory that opens a fresh store in a test's
temporary directory and knows how to measure it on disk.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from timonel.storage.interface import Storage
from timonel.storage.sqlite import SQLiteStorage


class Backend(Protocol):
    async def open(
        self,
        *,
        watcher_queue: int = ...,
        compact_interval: float = ...,
        compact_keep: int = ...,
    ) -> Storage:
        """A started store; opening again reopens the same data."""

    def disk_size(self) -> int:
        """Bytes the store occupies on disk."""

    async def close_all(self) -> None: ...


class SQLiteBackend:
    def __init__(self, directory: Path) -> None:
        self.path = directory / "state.db"
        self.opened: list[Storage] = []

    async def open(
        self,
        *,
        watcher_queue: int = 10_000,
        compact_interval: float = 0.0,
        compact_keep: int = 1000,
    ) -> Storage:
        storage = SQLiteStorage(
            str(self.path),
            compact_interval=compact_interval,
            compact_keep=compact_keep,
            watcher_queue=watcher_queue,
        )
        await storage.start()
        self.opened.append(storage)
        return storage

    def disk_size(self) -> int:
        return sum(
            path.stat().st_size
            for path in self.path.parent.iterdir()
            if path.name.startswith(self.path.name)
        )

    async def close_all(self) -> None:
        for storage in self.opened:
            await storage.close()


BACKENDS: dict[str, Callable[[Path], Backend]] = {
    "sqlite": SQLiteBackend,
}
