"""A real `timonel server` with its node agent (containerd) for the autoscaling tests,
built as the kubelet tests build theirs, with the autoscaler's sync period shortened."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.conftest import free_port
from tests.e2e.kubelet.conftest import Cluster, cleaned_up, free_cluster_cidr
from tests.e2e.runtime.conftest import runtime_unavailable

SYNC_PERIOD = "2s"


@dataclass
class AutoscalingCluster(Cluster):
    def command(self) -> list[str]:
        return [*super().command(), "--horizontal-pod-autoscaler-sync-period", SYNC_PERIOD]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    if runtime_unavailable() is not None:
        pytest.skip(str(runtime_unavailable()))
    base = tmp_path_factory.mktemp("autoscaling")
    running = AutoscalingCluster(
        data_dir=base / "data",
        node_name=f"e2e-{uuid.uuid4().hex[:8]}",
        cluster_cidr=free_cluster_cidr(),
        port=free_port(),
        cache_dir=base / "kubectl-cache",
        log_path=base / "server.log",
    )
    with cleaned_up(running):
        yield running
