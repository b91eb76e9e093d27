"""Fixtures running every storage test once per backend in storage_backends.BACKENDS."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.integration.storage.etcd_process import ETCD, MISSING_REASON, EtcdProcess
from tests.integration.storage.storage_backends import BACKENDS, Backend
from timonel.storage.interface import Storage


class ModuleServers:
    """Datastore servers shared by the tests of one module, started on first use."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._etcd: EtcdProcess | None = None

    def etcd(self) -> EtcdProcess:
        if not ETCD.exists():
            pytest.skip(MISSING_REASON)
        if self._etcd is None:
            self._etcd = EtcdProcess(self.directory)
            self._etcd.start()
        return self._etcd

    def stop(self) -> None:
        if self._etcd is not None:
            self._etcd.remove()


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleServers]:
    running = ModuleServers(tmp_path_factory.mktemp("datastores"))
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(params=sorted(BACKENDS))
async def backend(
    request: pytest.FixtureRequest, tmp_path: Path, servers: ModuleServers
) -> AsyncIterator[Backend]:
    opened = BACKENDS[request.param](tmp_path, servers)
    try:
        yield opened
    finally:
        await opened.close_all()


@pytest.fixture
async def storage(backend: Backend) -> Storage:
    return await backend.open()
