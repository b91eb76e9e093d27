"""Every test under tests/e2e is marked `e2e` and skipped, with the reason, on a machine
that cannot run it (not root, or the runtime's binaries missing)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.proxy.conftest import lab_unavailable
from tests.e2e.runtime.conftest import runtime_unavailable

HERE = Path(__file__).parent
# The proxy's network-namespace labs need iptables and root, not containerd.
LAB_ONLY = HERE / "proxy"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    runtime, lab = runtime_unavailable(), lab_unavailable()
    for item in items:
        if HERE not in item.path.parents:
            continue
        item.add_marker(pytest.mark.e2e)
        reason = lab if LAB_ONLY in item.path.parents else runtime
        if reason is not None:
            item.add_marker(pytest.mark.skip(reason=reason))
