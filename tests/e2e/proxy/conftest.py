"""Fixtures for proxy and network policy tests: root only, a private network-namespace
node per test, removed even when the test fails."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.proxy.lab import Lab

REQUIRED_BINARIES = ("ip", "nsenter", "iptables", "iptables-restore", "iptables-save")


def lab_unavailable() -> str | None:
    if os.geteuid() != 0:
        return "needs root"
    missing = [name for name in REQUIRED_BINARIES if shutil.which(name) is None]
    if missing:
        return f"missing {', '.join(missing)}"
    return None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    reason = lab_unavailable()
    for item in items:
        if item.path.parent == Path(__file__).parent:
            item.add_marker(pytest.mark.e2e)
            if reason is not None:
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture
def lab() -> Iterator[Lab]:
    created = Lab()
    try:
        yield created.create()
    finally:
        created.remove()
