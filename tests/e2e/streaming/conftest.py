"""A real `timonel server` with its node agent for the streaming tests (logs, exec, attach,
cp, port-forward, top), one per module, built as the kubelet tests build theirs: unique
node name, cluster CIDR, port and data directory, everything removed at the end by PID
and purge. Each test works in its own namespace."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import KUBECTL
from tests.e2e.kubelet.conftest import Cluster, cleaned_up, condition, new_cluster, wait_for

BUSYBOX = "localhost/timonel/busybox:1"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    running = new_cluster(tmp_path_factory.mktemp("streaming"), Cluster)
    with cleaned_up(running):
        yield running


def kubectl_command(cluster: Cluster, *args: str) -> list[str]:
    return [
        KUBECTL,
        "--kubeconfig",
        str(cluster.kubeconfig),
        "--cache-dir",
        str(cluster.cache_dir),
        *args,
    ]


def run_kubectl(
    cluster: Cluster,
    *args: str,
    input: bytes | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[bytes]:
    """kubectl with bytes in and out and extra environment (the checks are the caller's)."""
    return subprocess.run(
        kubectl_command(cluster, *args),
        input=input,
        capture_output=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def pod_manifest(name: str, containers: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    for container in containers:
        container.setdefault("image", BUSYBOX)
    spec.setdefault("terminationGracePeriodSeconds", 1)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"containers": containers, **spec},
    }


def start_pod(cluster: Cluster, namespace: str, manifest: dict[str, Any]) -> dict[str, Any]:
    """Create the pod and wait until it is Ready."""
    cluster.apply(json.dumps(manifest), namespace)
    name = manifest["metadata"]["name"]

    def ready() -> dict[str, Any] | None:
        pod = cluster.pod(name, namespace)
        return pod if condition(pod, "Ready") == "True" else None

    return wait_for(ready, timeout=60, what=f"pod {name} to be Ready")
