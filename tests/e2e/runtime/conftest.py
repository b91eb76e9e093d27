"""Fixtures for tests that run a real containerd: root only, private names, full cleanup."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.e2e.runtime.hosttools import force_cleanup, free_pod_cidr, wait_for_no_leftovers
from timonel.agent.runtime.node import NodeRuntime

REQUIRED_BINARIES = ("containerd", "ctr", "runc", "nsenter", "ip")


def runtime_unavailable() -> str | None:
    if os.geteuid() != 0:
        return "needs root"
    missing = [name for name in REQUIRED_BINARIES if shutil.which(name) is None]
    if missing:
        return f"missing {', '.join(missing)} (scripts/install-runtime installs them)"
    if not Path("/usr/lib/cni/bridge").exists():
        return "missing the CNI plugins in /usr/lib/cni"
    return None


@pytest.fixture
async def node_runtime(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[NodeRuntime]:
    """A started node runtime with a unique node name, bridge, network, CIDR and directories."""
    name = f"e2e-{uuid.uuid4().hex[:8]}"
    base = tmp_path_factory.mktemp(name)
    node = NodeRuntime(
        node_name=name,
        state_dir=base / "state",
        run_dir=base / "run",
        pod_cidr=free_pod_cidr(),
    )
    try:
        await node.start()
        yield node
    finally:
        await node.purge()
        found = await wait_for_no_leftovers(node)
        if found:
            force_cleanup(node)
        assert found == []
