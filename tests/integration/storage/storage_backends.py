"""Storage backends the conformance suite runs against.

Each backend is one entry in BACKENDS: a factory that opens a fresh store in a test's
temporary directory and knows how to measure it on disk. Backends that need a server
(etcd) get it from `servers`, which starts it once per test module.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from tests.integration.storage.etcd_process import EtcdProcess
from timonel.storage.etcd import EtcdStorage
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


class Servers(Protocol):
    def etcd(self) -> EtcdProcess:
        """The test module's etcd (started on first use)."""


class SQLiteBackend:
    def __init__(self, directory: Path, servers: Servers) -> None:
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


class EtcdBackend:
    """A store on the module's etcd, emptied first so each test starts from no keys (the
    revision and the compactions of earlier tests carry over, as on a used cluster)."""

    def __init__(self, directory: Path, servers: Servers) -> None:
        self.server = servers.etcd()
        self.server.wipe()
        self.opened: list[Storage] = []

    async def open(
        self,
        *,
        watcher_queue: int = 10_000,
        compact_interval: float = 0.0,
        compact_keep: int = 1000,
    ) -> Storage:
        storage = EtcdStorage(
            self.server.endpoint,
            compact_interval=compact_interval,
            compact_keep=compact_keep,
            watcher_queue=watcher_queue,
        )
        await storage.start()
        self.opened.append(storage)
        return storage

    def disk_size(self) -> int:
        # etcd reuses the pages compaction frees inside its file and shrinks the file only
        # when defragmented (an operator's task, as `etcdctl defrag`); its write-ahead log
        # is preallocated in 64 MB segments, whatever the data.
        return self.server.defragmented_db_size()

    async def close_all(self) -> None:
        for storage in self.opened:
            await storage.close()


BACKENDS: dict[str, Callable[[Path, Servers], Backend]] = {
    "sqlite": SQLiteBackend,
    "etcd": EtcdBackend,
}
