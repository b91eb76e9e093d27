"""Fixtures running every storage test once per backend in storage_backends.BACKENDS."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.integration.storage.storage_backends import BACKENDS, Backend
from timonel.storage.interface import Storage


@pytest.fixture(params=sorted(BACKENDS))
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    opened = BACKENDS[request.param](tmp_path)
    try:
        yield opened
    finally:
        await opened.close_all()


@pytest.fixture
async def storage(backend: Backend) -> Storage:
    return await backend.open()
