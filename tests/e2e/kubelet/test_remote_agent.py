"""`timonel agent --server URL --token TOKEN`: a node agent in its own process joins a
server that runs without one (as k3s agents join a k3s server)."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, free_port, stop_process
from tests.e2e.kubelet.conftest import (
    Cluster,
    cleaned_up,
    condition,
    free_cluster_cidr,
    wait_for,
)
from tests.e2e.runtime.conftest import runtime_unavailable

BUSYBOX = "localhost/timonel/busybox:1"


@dataclass
class RemoteCluster(Cluster):
    agent: subprocess.Popen[bytes] | None = None

    @property
    def agent_data_dir(self) -> Path:
        return self.data_dir.parent / "agent-data"

    def command(self) -> list[str]:
        return [*super().command(), "--disable-agent"]

    def start(self) -> None:
        super().start()
        token = (self.data_dir / "token").read_text().strip()
        log = self.log_path.with_name("agent.log").open("ab")
        self.agent = subprocess.Popen(
            [
                sys.executable, "-m", "timonel", "agent",
                "--server", f"https://127.0.0.1:{self.port}", "--token", token,
                "--data-dir", str(self.agent_data_dir), "--node-name", self.node_name,
            ],
            stdout=log, stderr=subprocess.STDOUT, cwd=REPO,
        )  # fmt: skip
        log.close()

    def stop(self) -> None:
        if self.agent is not None:
            stop_process(self.agent, grace=20)
        super().stop()


@pytest.fixture(scope="module")
def remote(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RemoteCluster]:
    if runtime_unavailable() is not None:
        pytest.skip(str(runtime_unavailable()))
    base = tmp_path_factory.mktemp("remote")
    running = RemoteCluster(
        data_dir=base / "data",
        node_name=f"e2e-remote-{uuid.uuid4().hex[:6]}",
        cluster_cidr=free_cluster_cidr(),
        port=free_port(),
        cache_dir=base / "kubectl-cache",
        log_path=base / "server.log",
    )
    with cleaned_up(running):
        yield running


def test_remote_agent_registers_and_runs_pods(remote: RemoteCluster) -> None:
    node = remote.get("node", remote.node_name)
    assert "node-role.kubernetes.io/control-plane" not in node["metadata"]["labels"]
    assert node["metadata"]["labels"]["kubernetes.io/hostname"] == remote.node_name
    namespace = remote.namespace()
    remote.kubectl(
        "create", "configmap", "page", "-n", namespace, "--from-literal=index.html=remote\n"
    )
    pod: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web"},
        "spec": {
            "terminationGracePeriodSeconds": 2,
            "containers": [
                {
                    "name": "web",
                    "image": BUSYBOX,
                    "command": ["httpd", "-f", "-p", "80", "-h", "/www"],
                    "volumeMounts": [{"name": "page", "mountPath": "/www"}],
                    "readinessProbe": {"httpGet": {"path": "/", "port": 80}, "periodSeconds": 1},
                }
            ],
            "volumes": [{"name": "page", "configMap": {"name": "page"}}],
        },
    }
    remote.apply(json.dumps(pod), namespace)

    def ready() -> dict[str, Any] | None:
        current = remote.pod("web", namespace)
        return current if condition(current, "Ready") == "True" else None

    running = wait_for(ready, timeout=60, what="the pod to be Ready")
    import urllib.request

    with urllib.request.urlopen(f"http://{running['status']['podIP']}/", timeout=5) as response:
        assert response.read() == b"remote\n"
    remote.kubectl("delete", "pod", "web", "-n", namespace, "--wait=true", timeout=30)
    assert remote.sandbox_count() == 0
