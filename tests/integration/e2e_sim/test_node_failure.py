"""A node dies: its simulated kubelet stops heartbeating, the node lifecycle controller
marks it NotReady and taints it, the taint eviction controller evicts the pods whose
tolerations run out, the ReplicaSet replaces them and the scheduler places the
replacements on the nodes left. When the kubelet comes back, so does the node.

The server runs with a short node monitor grace period (4 s) and the pods tolerate the
node's NoExecute taints for 2 s, so the whole story takes seconds."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.integration.controllers.harness import events, get, items, live_pods, wait_for
from tests.integration.e2e_sim.cluster import (
    Cluster,
    SimulatedNodes,
    condition_true,
    pod_ready,
    running_cluster,
)

UNREACHABLE = "node.kubernetes.io/unreachable"
NOT_READY = "node.kubernetes.io/not-ready"
REPLICAS = 6


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(
        tmp_path_factory.mktemp("e2e-node-failure"),
        "--node-monitor-grace-period=4s",
        "--node-monitor-period=500ms",
    ) as cluster:
        cluster.add_nodes(3, prefix="node", heartbeat="500ms")
        yield cluster


@pytest.fixture(scope="module")
def nodes(cluster: Cluster) -> SimulatedNodes:
    return cluster.agents[0]


def _deployment() -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": REPLICAS,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [{"name": "web", "image": "nginx:1.27"}],
                    "tolerations": [
                        {
                            "key": key,
                            "operator": "Exists",
                            "effect": "NoExecute",
                            "tolerationSeconds": 2,
                        }
                        for key in (UNREACHABLE, NOT_READY)
                    ],
                },
            },
        },
    }


def _patient_pod(node: str) -> dict[str, Any]:
    """Pinned to `node`, with the 300 s tolerations admission gives every pod."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "patient", "labels": {"app": "patient"}},
        "spec": {
            "nodeSelector": {"kubernetes.io/hostname": node},
            "containers": [{"name": "c", "image": "nginx:1.27"}],
        },
    }


def _seconds(stamp: str) -> float:
    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


def _ready_condition(node: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in node["status"]["conditions"] if c["type"] == "Ready")


def _taints(node: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(t["key"], t["effect"]): t for t in node["spec"].get("taints") or []}


def _web_pods(cluster: Cluster, namespace: str) -> list[dict[str, Any]]:
    return items(cluster.server, "pods", namespace, "app=web")


def test_a_dead_node_is_tainted_and_its_pods_replaced_elsewhere(
    cluster: Cluster, nodes: SimulatedNodes, namespace: str
) -> None:
    server = cluster.server
    server.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(_deployment()))
    server.kubectl("rollout", "status", "deployment/web", "-n", namespace, "--timeout=60s")
    per_node = Counter(p["spec"]["nodeName"] for p in live_pods(server, namespace, "app=web"))
    assert set(per_node) == set(nodes.names), per_node
    dead = per_node.most_common(1)[0][0]
    server.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(_patient_pod(dead)))
    wait_for(
        lambda: pod_ready(get(server, "pod", "patient", namespace) or {}),
        what="the patient pod Ready",
    )
    doomed = {
        p["metadata"]["name"]
        for p in _web_pods(cluster, namespace)
        if p["spec"]["nodeName"] == dead
    }

    nodes.pause(dead)
    paused_at = time.time()
    node = wait_for(
        lambda: (
            (n := get(server, "node", dead))
            and _ready_condition(n)["status"] == "Unknown"
            and (UNREACHABLE, "NoExecute") in _taints(n)
            and n
        ),
        timeout=15,
        what="the node NotReady and tainted",
    )
    ready = _ready_condition(node)
    assert ready["reason"] == "NodeStatusUnknown"
    assert ready["message"] == "Kubelet stopped posting node status."
    # Nothing was decided before the 4 s grace period had passed since the last renewal
    # (at most 0.5 s before the pause; the transition time is cut to whole seconds).
    assert _seconds(ready["lastTransitionTime"]) + 1 >= paused_at + 3.5
    taints = _taints(node)
    assert (UNREACHABLE, "NoSchedule") in taints
    tainted_at = _seconds(taints[(UNREACHABLE, "NoExecute")]["timeAdded"])
    assert server.kubectl("get", "node", dead, "--no-headers").stdout.split()[1] == "NotReady"
    assert ("NodeNotReady", f"Node {dead} status is now: NodeNotReady") in events(
        server, "default", "Node", dead
    )

    def evicted() -> list[dict[str, Any]] | None:
        pods = {p["metadata"]["name"]: p for p in _web_pods(cluster, namespace)}
        gone = [pods[name] for name in doomed if name in pods]
        return gone if all(p["metadata"].get("deletionTimestamp") for p in gone) else None

    for pod in wait_for(evicted, timeout=20, what="the dead node's pods evicted"):
        target = next(c for c in pod["status"]["conditions"] if c["type"] == "DisruptionTarget")
        assert target["status"] == "True"
        assert target["reason"] == "DeletionByTaintManager"
        # Only once the 2 s toleration had run out.
        assert _seconds(target["lastTransitionTime"]) >= tainted_at + 2
        assert (
            "TaintManagerEviction",
            f"Marking for deletion Pod {namespace}/{pod['metadata']['name']}",
        ) in events(server, namespace, "Pod", pod["metadata"]["name"])

    def replaced() -> list[dict[str, Any]] | None:
        pods = live_pods(server, namespace, "app=web")
        done = len(pods) == REPLICAS and all(pod_ready(p) for p in pods)
        return pods if done else None

    replacements = wait_for(replaced, timeout=30, what="replacements Running elsewhere")
    assert dead not in {p["spec"]["nodeName"] for p in replacements}
    deployment = get(server, "deployment", "web", namespace)
    assert deployment is not None
    assert deployment["status"]["availableReplicas"] == REPLICAS

    # The pod that tolerates the taint for 300 s stays, marked not ready.
    patient = get(server, "pod", "patient", namespace)
    assert patient is not None
    assert not patient["metadata"].get("deletionTimestamp")
    assert not condition_true(patient, "Ready")

    # The kubelet comes back: the node is Ready and untainted, the evicted pods finish
    # terminating, and the patient pod is Ready again.
    nodes.pause()
    wait_for(
        lambda: (
            (n := get(server, "node", dead))
            and _ready_condition(n)["status"] == "True"
            and not set(_taints(n)) & {(UNREACHABLE, "NoSchedule"), (UNREACHABLE, "NoExecute")}
        ),
        timeout=15,
        what="the node Ready and untainted again",
    )
    wait_for(
        lambda: not doomed & {p["metadata"]["name"] for p in _web_pods(cluster, namespace)},
        what="the evicted pods gone",
    )
    wait_for(
        lambda: pod_ready(get(server, "pod", "patient", namespace) or {}),
        what="the patient pod Ready again",
    )
    assert len(live_pods(server, namespace, "app=web")) == REPLICAS
