"""Root only, with containerd and the CNI plugins: one multi-node cluster per module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.multinode.cluster import MultiNodeCluster, multinode_cluster
from tests.e2e.runtime.conftest import runtime_unavailable


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MultiNodeCluster]:
    if runtime_unavailable() is not None:
        pytest.skip(str(runtime_unavailable()))
    with multinode_cluster(tmp_path_factory.mktemp("multinode")) as running:
        yield running
