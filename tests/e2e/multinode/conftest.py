"""Root only, with containerd and the CNI plugins: one multi-node cluster per module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.multinode.cluster import MultiNodeCluster, multinode_cluster
from tests.e2e.runtime.conftest import runtime_unavailable


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    reason = runtime_unavailable()
    for item in items:
        if item.path.parent == Path(__file__).parent:
            item.add_marker(pytest.mark.e2e)
            if reason is not None:
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MultiNodeCluster]:
    if runtime_unavailable() is not None:
        pytest.skip(str(runtime_unavailable()))
    with multinode_cluster(tmp_path_factory.mktemp("multinode")) as running:
        yield running
