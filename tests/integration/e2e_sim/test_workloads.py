"""Jobs, StatefulSets and DaemonSets end to end with the real scheduler on simulated
nodes: a Job runs to completion never exceeding its parallelism, a StatefulSet starts
web-0, web-1, web-2 each only once the one before is Ready, and a DaemonSet covers every
node, including one that joins later."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.controllers.harness import events, get, live_pods, wait_for
from tests.integration.e2e_sim.cluster import Cluster, PodWatch, pod_ready, running_cluster

COMPLETE_AFTER = "simulate.timonel.io/complete-after"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(tmp_path_factory.mktemp("e2e-workloads")) as cluster:
        cluster.add_nodes(3, prefix="node")
        yield cluster


def _apply(cluster: Cluster, namespace: str, obj: dict[str, Any]) -> None:
    cluster.server.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(obj))


def _finished(pod: dict[str, Any]) -> bool:
    return pod.get("status", {}).get("phase") in ("Succeeded", "Failed")


def test_job_runs_to_completion_within_its_parallelism(cluster: Cluster, namespace: str) -> None:
    server = cluster.server
    completions, parallelism = 6, 2
    busiest = {"running": 0}

    def within_parallelism(pods: dict[str, dict[str, Any]]) -> str | None:
        active = [
            p
            for p in pods.values()
            if not _finished(p) and not p["metadata"].get("deletionTimestamp")
        ]
        busiest["running"] = max(busiest["running"], len(active))
        if len(active) > parallelism:
            return f"{len(active)} pods active, parallelism is {parallelism}"
        return None

    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "pi"},
        "spec": {
            "completions": completions,
            "parallelism": parallelism,
            "template": {
                # The simulated kubelet ends the container 300 ms after it started.
                "metadata": {"annotations": {COMPLETE_AFTER: "300ms"}},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "pi", "image": "perl:5.34.0"}],
                },
            },
        },
    }
    with PodWatch(cluster, namespace, selector="job-name=pi", check=within_parallelism) as watch:
        _apply(cluster, namespace, job)
        server.kubectl(
            "wait", "--for=condition=Complete", "job/pi", "-n", namespace, "--timeout=60s"
        )
    assert watch.violations == []
    assert busiest["running"] == parallelism

    done = get(server, "job", "pi", namespace)
    assert done is not None
    assert done["status"]["succeeded"] == completions
    assert not done["status"].get("failed")
    assert done["status"]["completionTime"]
    pods = [p for p in watch.pods.values() if p["metadata"]["labels"].get("job-name") == "pi"]
    assert len(pods) == completions
    assert all(p["status"]["phase"] == "Succeeded" and p["spec"]["nodeName"] for p in pods)
    # Spread over the nodes rather than piled on one.
    assert len({p["spec"]["nodeName"] for p in pods}) > 1
    assert ("Completed", "Job completed") in events(server, namespace, "Job", "pi")
    row = server.kubectl("get", "job", "pi", "-n", namespace, "--no-headers").stdout.split()
    assert row[1:3] == ["Complete", f"{completions}/{completions}"]


def test_statefulset_creates_its_pods_in_order(cluster: Cluster, namespace: str) -> None:
    server = cluster.server

    def predecessor_ready(pods: dict[str, dict[str, Any]]) -> str | None:
        for name in pods:
            ordinal = int(name.rsplit("-", 1)[1])
            before = pods.get(f"web-{ordinal - 1}")
            if ordinal > 0 and (before is None or not pod_ready(before)):
                return f"{name} exists while web-{ordinal - 1} is not Ready"
        return None

    statefulset = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 3,
            "serviceName": "web",
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "nginx", "image": "nginx:1.27"}]},
            },
        },
    }
    with PodWatch(cluster, namespace, selector="app=web", check=predecessor_ready) as watch:
        _apply(cluster, namespace, statefulset)
        server.kubectl("rollout", "status", "statefulset/web", "-n", namespace, "--timeout=60s")
        wait_for(
            lambda: (
                (s := get(server, "statefulset", "web", namespace))
                and s["status"].get("readyReplicas") == 3
            ),
            what="three ready replicas",
        )
    assert watch.added == ["web-0", "web-1", "web-2"]
    assert watch.violations == []
    pods = {p["metadata"]["name"]: p for p in live_pods(server, namespace, "app=web")}
    assert sorted(pods) == ["web-0", "web-1", "web-2"]
    assert all(pod_ready(p) and p["spec"]["hostname"] == name for name, p in pods.items())
    assert all(p["spec"]["subdomain"] == "web" for p in pods.values())
    created = [
        m for r, m in events(server, namespace, "StatefulSet", "web") if r == "SuccessfulCreate"
    ]
    assert created == [f"create Pod web-{i} in StatefulSet web successful" for i in range(3)]


def test_daemonset_covers_every_node_including_one_added_later(
    cluster: Cluster, namespace: str
) -> None:
    server = cluster.server
    daemonset = {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "agent"},
        "spec": {
            "selector": {"matchLabels": {"app": "agent"}},
            "template": {
                "metadata": {"labels": {"app": "agent"}},
                "spec": {"containers": [{"name": "agent", "image": "busybox:1.36"}]},
            },
        },
    }
    _apply(cluster, namespace, daemonset)

    def covering(count: int) -> dict[str, Any] | None:
        found = get(server, "daemonset", "agent", namespace)
        status = (found or {}).get("status", {})
        wanted = ("desiredNumberScheduled", "currentNumberScheduled", "numberReady")
        return found if all(status.get(key) == count for key in wanted) else None

    wait_for(lambda: covering(3), timeout=30, what="a ready daemon pod on each of 3 nodes")
    node_names = {n["metadata"]["name"] for n in cluster.nodes()}
    assert sorted(p["spec"]["nodeName"] for p in live_pods(server, namespace, "app=agent")) == (
        sorted(node_names)
    )

    joined = cluster.add_nodes(1, prefix="late")
    wait_for(lambda: covering(4), timeout=30, what="a ready daemon pod on the new node too")
    pods = live_pods(server, namespace, "app=agent")
    assert sorted(p["spec"]["nodeName"] for p in pods) == sorted(node_names | set(joined.names))
    assert all(pod_ready(p) for p in pods)
    # Daemon pods are placed by the default scheduler through node affinity.
    (late,) = [p for p in pods if p["spec"]["nodeName"] == joined.names[0]]
    terms = late["spec"]["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"
    ]
    assert terms["nodeSelectorTerms"] == [
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [joined.names[0]]}]}
    ]
    assert late["spec"].get("schedulerName", "default-scheduler") == "default-scheduler"
