"""Fixtures for proxy and network policy tests: root only, a private network-namespace
node per test (`lab`), or the real server with its node agent in a network namespace of
its own, one per module (`cluster`); removed even when the test fails."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from tests.e2e.proxy.lab import Lab
from tests.e2e.proxy.netns_cluster import NetnsCluster, netns_cluster
from tests.e2e.runtime.conftest import runtime_unavailable

REQUIRED_BINARIES = ("ip", "nsenter", "iptables", "iptables-restore", "iptables-save")


def lab_unavailable() -> str | None:
    if os.geteuid() != 0:
        return "needs root"
    missing = [name for name in REQUIRED_BINARIES if shutil.which(name) is None]
    if missing:
        return f"missing {', '.join(missing)}"
    return None


@pytest.fixture
def lab() -> Iterator[Lab]:
    created = Lab()
    try:
        yield created.create()
    finally:
        created.remove()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NetnsCluster]:
    if runtime_unavailable() is not None:
        pytest.skip(str(runtime_unavailable()))
    with netns_cluster(tmp_path_factory.mktemp("proxy-server")) as running:
        yield running
