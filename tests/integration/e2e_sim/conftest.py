"""Each module here runs its own cluster (fixture `cluster`, module scope); a test gets a
fresh namespace in it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.integration.e2e_sim.cluster import Cluster


@pytest.fixture
def namespace(cluster: Cluster) -> Iterator[str]:
    name = f"t-{uuid.uuid4().hex[:8]}"
    cluster.server.kubectl("create", "namespace", name)
    yield name
