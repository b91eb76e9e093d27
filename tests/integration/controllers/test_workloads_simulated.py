"""Workload controllers end to end: the default scheduler binds their pods to simulated
nodes (`timonel agent --simulate`), which report them Running and Ready, or finished.

The simulated nodes carry a taint of their own, so only the workloads here (which
tolerate it) land on them."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.conftest import REPO, RunningServer, stop_process
from tests.integration.controllers.harness import apply, get, items, live_pods, wait_for

NODES = 2
CONFIG = 'heartbeatPeriod: 1s\ncapacity: {cpu: "8"}\n'


@dataclass
class Simulated:
    tag: str
    names: list[str]

    @property
    def placement(self) -> dict[str, Any]:
        """What a pod template needs to run on these nodes only."""
        return {
            "nodeSelector": {"pool": self.tag},
            "tolerations": [
                {"key": "pool", "operator": "Equal", "value": self.tag, "effect": "NoSchedule"}
            ],
        }


@pytest.fixture(scope="module")
def simulated(
    server: RunningServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Simulated]:
    data_dir = tmp_path_factory.mktemp("simulated-workloads")
    (data_dir / "simulate.yaml").write_text(CONFIG)
    tag = f"wl{uuid.uuid4().hex[:6]}"
    token = (server.data_dir / "token").read_text().strip()
    with (data_dir / "agent.log").open("ab") as output:
        process = subprocess.Popen(
            [
                sys.executable, "-m", "timonel", "agent",
                "--simulate", str(NODES),
                "--server", server.url,
                "--token", token,
                "--data-dir", str(data_dir),
                "--node-name", tag,
                "--simulate-config", str(data_dir / "simulate.yaml"),
                "--simulate-label", f"pool={tag}",
                "--simulate-taint", f"pool={tag}:NoSchedule",
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )  # fmt: skip
    names = [f"{tag}-{i}" for i in range(NODES)]
    try:
        wait_for(
            lambda: (
                len([n for n in items(server, "nodes", selector=f"pool={tag}") if _ready(n)])
                == NODES
            ),
            what="simulated nodes Ready",
        )
        yield Simulated(tag, names)
    finally:
        stop_process(process)
        server.kubectl("delete", "node", "--ignore-not-found", *names, check=False)
        server.kubectl(
            "delete", "lease", "-n", "kube-node-lease", "--ignore-not-found", *names, check=False
        )


def _ready(node: dict[str, Any]) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in node.get("status", {}).get("conditions", [])
    )


def _template(name: str, simulated: Simulated, **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"labels": {"app": name}},
        "spec": {
            "containers": [{"name": "c", "image": "nginx:1.27"}],
            **simulated.placement,
            **spec,
        },
    }


def test_daemonset_runs_on_every_simulated_node(
    server: RunningServer, simulated: Simulated, namespace: str
) -> None:
    apply(
        server,
        {
            "apiVersion": "apps/v1",
            "kind": "DaemonSet",
            "metadata": {"name": "agent"},
            "spec": {
                "selector": {"matchLabels": {"app": "agent"}},
                "template": _template("agent", simulated),
            },
        },
        namespace,
    )
    ds = wait_for(
        lambda: (
            (d := get(server, "daemonset", "agent", namespace))
            and d["status"].get("numberReady") == NODES
            and d
        ),
        what="a ready daemon pod on each node",
    )
    assert ds["status"]["desiredNumberScheduled"] == NODES
    assert ds["status"]["numberAvailable"] == NODES
    bound = sorted(p["spec"]["nodeName"] for p in live_pods(server, namespace, "app=agent"))
    assert bound == simulated.names
    server.kubectl("delete", "daemonset", "agent", "-n", namespace)


def test_statefulset_comes_up_in_order(
    server: RunningServer, simulated: Simulated, namespace: str
) -> None:
    apply(
        server,
        {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": {"name": "web"},
            "spec": {
                "replicas": 3,
                "serviceName": "web",
                "selector": {"matchLabels": {"app": "web"}},
                "template": _template("web", simulated),
            },
        },
        namespace,
    )
    wait_for(
        lambda: (
            (s := get(server, "statefulset", "web", namespace))
            and s["status"].get("readyReplicas") == 3
        ),
        what="three ready replicas",
    )
    pods = {p["metadata"]["name"]: p for p in live_pods(server, namespace, "app=web")}
    assert sorted(pods) == ["web-0", "web-1", "web-2"]
    # Each pod started only once its predecessor was Ready.
    for lower, higher in (("web-0", "web-1"), ("web-1", "web-2")):
        ready_at = next(c for c in pods[lower]["status"]["conditions"] if c["type"] == "Ready")[
            "lastTransitionTime"
        ]
        assert ready_at <= pods[higher]["metadata"]["creationTimestamp"]
    server.kubectl("delete", "statefulset", "web", "-n", namespace)


def test_job_completes(server: RunningServer, simulated: Simulated, namespace: str) -> None:
    template = _template("work", simulated, restartPolicy="Never")
    template["metadata"]["annotations"] = {"simulate.timonel.io/complete-after": "200ms"}
    apply(
        server,
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "work"},
            "spec": {"completions": 3, "parallelism": 2, "template": template},
        },
        namespace,
    )
    done = wait_for(
        lambda: (
            (j := get(server, "job", "work", namespace))
            and any(c["type"] == "Complete" for c in j["status"].get("conditions") or [])
            and j
        ),
        timeout=30,
        what="the Job complete",
    )
    assert done["status"]["succeeded"] == 3
    assert all(
        p["spec"]["nodeName"] in simulated.names
        for p in items(server, "pods", namespace, "app=work")
    )
    server.kubectl("delete", "job", "work", "-n", namespace)
