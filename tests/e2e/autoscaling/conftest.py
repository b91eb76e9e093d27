"""A real `timonel server` with its node agent (containerd) for the autoscaling tests,
built as the kubelet tests build theirs, with the autoscaler's sync period shortened."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.e2e.kubelet.conftest import Cluster, cleaned_up, new_cluster

SYNC_PERIOD = "2s"


@dataclass
class AutoscalingCluster(Cluster):
    def command(self) -> list[str]:
        return [*super().command(), "--horizontal-pod-autoscaler-sync-period", SYNC_PERIOD]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    running = new_cluster(tmp_path_factory.mktemp("autoscaling"), AutoscalingCluster)
    with cleaned_up(running):
        yield running
