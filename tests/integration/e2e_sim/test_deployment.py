"""Deployments end to end with the real scheduler on three simulated nodes: the seed's
manifest rolls out and scales, rolling updates keep to maxSurge / maxUnavailable at
every step, undo and restart, a deleted pod is replaced, each cascade mode leaves the
right objects, and an unschedulable pod is reported as kube-scheduler reports it."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.integration.controllers.harness import events, get, items, live_pods, wait_for
from tests.integration.e2e_sim.cluster import Cluster, PodWatch, pod_ready, running_cluster

# The seed's manifest, as given.
SEED_MANIFEST = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: nginx-deployment
spec:
  selector:
    matchLabels:
      app: nginx
  minReadySeconds: 5
  template:
    metadata:
      labels:
        app: nginx
    spec:
      containers:
      - name: nginx
        image: nginx:1.14.2
        ports:
        - containerPort: 80
"""
DEPLOYMENT = "deployment/nginx-deployment"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(tmp_path_factory.mktemp("e2e-deployment")) as cluster:
        nodes = cluster.add_nodes(3, prefix="node")
        assert sorted(n["metadata"]["name"] for n in cluster.nodes()) == nodes.names
        yield cluster


def _rollout(cluster: Cluster, namespace: str, timeout: int = 90) -> None:
    cluster.server.kubectl(
        "rollout", "status", DEPLOYMENT, "-n", namespace, f"--timeout={timeout}s", timeout=timeout
    )


def _seed(cluster: Cluster, namespace: str, replicas: int | None = None) -> None:
    cluster.server.kubectl("apply", "-n", namespace, "-f", "-", input=SEED_MANIFEST)
    if replicas is not None:
        cluster.server.kubectl("scale", DEPLOYMENT, "-n", namespace, f"--replicas={replicas}")
    _rollout(cluster, namespace)


def _seconds(stamp: str) -> float:
    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


def _ready_since(pod: dict[str, Any]) -> float:
    ready = next(c for c in pod["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True"
    return _seconds(ready["lastTransitionTime"])


def _controller(obj: dict[str, Any]) -> tuple[str, str]:
    (owner,) = [r for r in obj["metadata"].get("ownerReferences", []) if r.get("controller")]
    return owner["kind"], owner["name"]


def _running_pods(cluster: Cluster, namespace: str, count: int) -> list[dict[str, Any]]:
    """Wait for exactly `count` live pods, every one Running and Ready on a node."""

    def settled() -> list[dict[str, Any]] | None:
        pods = live_pods(cluster.server, namespace, "app=nginx")
        done = len(pods) == count and all(
            p["status"].get("phase") == "Running" and pod_ready(p) for p in pods
        )
        return pods if done else None

    if count == 0:
        wait_for(lambda: not items(cluster.server, "pods", namespace), what="no pods left")
        return []
    found: list[dict[str, Any]] = wait_for(settled, timeout=30, what=f"{count} Running pods")
    return found


def test_seed_manifest_rolls_out_spreads_and_scales(cluster: Cluster, namespace: str) -> None:
    server = cluster.server
    server.kubectl("apply", "-n", namespace, "-f", "-", input=SEED_MANIFEST)
    _rollout(cluster, namespace)
    rolled_out_at = time.time()

    (replica_set,) = items(server, "replicasets", namespace)
    template_hash = replica_set["metadata"]["labels"]["pod-template-hash"]
    rs_name = replica_set["metadata"]["name"]
    assert rs_name == f"nginx-deployment-{template_hash}"
    assert _controller(replica_set) == ("Deployment", "nginx-deployment")
    (pod,) = _running_pods(cluster, namespace, 1)
    assert _controller(pod) == ("ReplicaSet", rs_name)
    assert pod["spec"]["nodeName"] in {n["metadata"]["name"] for n in cluster.nodes()}
    assert pod["status"]["podIP"]
    # Available only minReadySeconds after Ready, and rollout status waits for that.
    assert rolled_out_at - _ready_since(pod) >= 5
    deployment = get(server, "deployment", "nginx-deployment", namespace)
    assert deployment is not None
    assert deployment["status"]["availableReplicas"] == 1
    available = next(c for c in deployment["status"]["conditions"] if c["type"] == "Available")
    assert available["status"] == "True"

    server.kubectl("scale", DEPLOYMENT, "-n", namespace, "--replicas=3")
    _rollout(cluster, namespace)
    pods = _running_pods(cluster, namespace, 3)
    # Default topology spreading and least-allocated scoring: one pod per node.
    assert len({p["spec"]["nodeName"] for p in pods}) == 3

    server.kubectl("scale", DEPLOYMENT, "-n", namespace, "--replicas=10")
    _rollout(cluster, namespace)
    per_node = Counter(p["spec"]["nodeName"] for p in _running_pods(cluster, namespace, 10))
    assert sorted(per_node.values()) == [3, 3, 4], per_node

    server.kubectl("scale", DEPLOYMENT, "-n", namespace, "--replicas=0")
    _rollout(cluster, namespace)
    _running_pods(cluster, namespace, 0)
    scaled_down = get(server, "replicaset", rs_name, namespace)
    assert scaled_down is not None
    assert scaled_down["spec"]["replicas"] == 0
    assert items(server, "replicasets", namespace) == [scaled_down]

    scaling = [m for reason, m in events(server, namespace, "Deployment", "nginx-deployment")]
    assert scaling == [
        f"Scaled up replica set {rs_name} to 1",
        f"Scaled up replica set {rs_name} to 3 from 1",
        f"Scaled up replica set {rs_name} to 10 from 3",
        f"Scaled down replica set {rs_name} to 0 from 10",
    ]


def test_rolling_update_keeps_within_surge_and_unavailability_then_undo_and_restart(
    cluster: Cluster, namespace: str
) -> None:
    server = cluster.server
    _seed(cluster, namespace, replicas=10)
    # Defaults: maxSurge 25% of 10 rounds up to 3, maxUnavailable 25% rounds down to 2.
    most, least = 10 + 3, 10 - 2
    seen = {"alive": 0, "ready": 10}

    def within_budget(pods: dict[str, dict[str, Any]]) -> str | None:
        alive = [p for p in pods.values() if not p["metadata"].get("deletionTimestamp")]
        ready = [p for p in alive if pod_ready(p)]
        seen["alive"] = max(seen["alive"], len(alive))
        seen["ready"] = min(seen["ready"], len(ready))
        if len(alive) > most:
            return f"{len(alive)} pods exist, more than {most}"
        if len(ready) < least:
            return f"only {len(ready)} pods are ready, fewer than {least}"
        return None

    (first,) = items(server, "replicasets", namespace)
    with PodWatch(cluster, namespace, selector="app=nginx", check=within_budget) as watch:
        server.kubectl("set", "image", DEPLOYMENT, "nginx=nginx:1.16.1", "-n", namespace)
        _rollout(cluster, namespace)
        _running_pods(cluster, namespace, 10)
    assert watch.violations == []
    assert seen["alive"] > 10, "the watch did not see the rollout surge"
    assert seen["ready"] >= least

    replica_sets = {r["metadata"]["name"]: r for r in items(server, "replicasets", namespace)}
    assert len(replica_sets) == 2
    (second_name,) = set(replica_sets) - {first["metadata"]["name"]}
    assert replica_sets[first["metadata"]["name"]]["spec"]["replicas"] == 0
    assert replica_sets[second_name]["spec"]["replicas"] == 10
    pods = _running_pods(cluster, namespace, 10)
    assert {p["spec"]["containers"][0]["image"] for p in pods} == {"nginx:1.16.1"}
    assert {_controller(p)[1] for p in pods} == {second_name}

    server.kubectl("rollout", "undo", DEPLOYMENT, "-n", namespace)
    _rollout(cluster, namespace)
    deployment = get(server, "deployment", "nginx-deployment", namespace)
    assert deployment is not None
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.14.2"
    assert deployment["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
    pods = _running_pods(cluster, namespace, 10)
    # The first ReplicaSet is back, not a new one.
    assert {_controller(p)[1] for p in pods} == {first["metadata"]["name"]}
    assert len(items(server, "replicasets", namespace)) == 2
    history = server.kubectl("rollout", "history", DEPLOYMENT, "-n", namespace).stdout
    assert [line.split()[0] for line in history.splitlines()[2:] if line.strip()] == ["2", "3"]

    before = {p["metadata"]["uid"] for p in pods}
    server.kubectl("rollout", "restart", DEPLOYMENT, "-n", namespace)
    _rollout(cluster, namespace)
    pods = _running_pods(cluster, namespace, 10)
    assert before.isdisjoint(p["metadata"]["uid"] for p in pods)
    assert all(
        "kubectl.kubernetes.io/restartedAt" in p["metadata"].get("annotations", {}) for p in pods
    )
    assert len(items(server, "replicasets", namespace)) == 3


def test_a_deleted_pod_is_replaced(cluster: Cluster, namespace: str) -> None:
    server = cluster.server
    _seed(cluster, namespace, replicas=3)
    pods = _running_pods(cluster, namespace, 3)
    victim = pods[0]["metadata"]["name"]
    server.kubectl("delete", "pod", victim, "-n", namespace)
    after = wait_for(
        lambda: (
            (now := _running_pods(cluster, namespace, 3))
            and victim not in {p["metadata"]["name"] for p in now}
            and now
        ),
        timeout=30,
        what="a replacement pod",
    )
    replacement = {p["metadata"]["name"] for p in after} - {p["metadata"]["name"] for p in pods}
    assert len(replacement) == 1
    (rs,) = items(server, "replicasets", namespace)
    created = [m for r, m in events(server, namespace, "ReplicaSet", rs["metadata"]["name"])]
    assert f"Created pod: {replacement.pop()}" in created


def _deployment(name: str, replicas: int = 2) -> str:
    return json.dumps(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": {"app": name}},
                    "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]},
                },
            },
        }
    )


def _owned(cluster: Cluster, namespace: str, app: str) -> dict[str, list[dict[str, Any]]]:
    return {
        kind: items(cluster.server, kind, namespace, f"app={app}")
        for kind in ("deployments", "replicasets", "pods")
    }


def _uids(objects: dict[str, list[dict[str, Any]]]) -> set[str]:
    return {o["metadata"]["uid"] for found in objects.values() for o in found}


def test_cascade_modes_leave_exactly_the_right_objects(cluster: Cluster, namespace: str) -> None:
    server = cluster.server
    names = ("background", "foreground", "orphan", "bystander")
    for name in names:
        server.kubectl("apply", "-n", namespace, "-f", "-", input=_deployment(name))
    for name in names:
        server.kubectl("rollout", "status", f"deployment/{name}", "-n", namespace, "--timeout=60s")
    wait_for(
        lambda: all(
            len([p for p in live_pods(server, namespace, f"app={n}") if pod_ready(p)]) == 2
            for n in names
        ),
        what="two ready pods per deployment",
    )
    bystander = _uids(_owned(cluster, namespace, "bystander"))
    orphaned = _owned(cluster, namespace, "orphan")

    # Foreground: kubectl waits for the Deployment to go, which happens only once its
    # ReplicaSet and pods are gone.
    server.kubectl("delete", "deployment", "foreground", "-n", namespace, "--cascade=foreground")
    assert _owned(cluster, namespace, "foreground") == {
        "deployments": [],
        "replicasets": [],
        "pods": [],
    }

    # Background: the Deployment goes at once, the garbage collector takes the rest.
    server.kubectl("delete", "deployment", "background", "-n", namespace, "--cascade=background")
    assert get(server, "deployment", "background", namespace) is None
    wait_for(
        lambda: not any(_owned(cluster, namespace, "background").values()),
        what="the background-deleted deployment's dependents gone",
    )

    # Orphan: the ReplicaSet and its pods stay, the ReplicaSet without its owner.
    server.kubectl("delete", "deployment", "orphan", "-n", namespace, "--cascade=orphan")
    time.sleep(2)  # give the garbage collector every chance to do something wrong
    left = _owned(cluster, namespace, "orphan")
    assert left["deployments"] == []
    (replica_set,) = left["replicasets"]
    assert replica_set["metadata"]["uid"] == orphaned["replicasets"][0]["metadata"]["uid"]
    assert not replica_set["metadata"].get("ownerReferences")
    assert {p["metadata"]["uid"] for p in left["pods"]} == {
        p["metadata"]["uid"] for p in orphaned["pods"]
    }
    assert all(
        _controller(p) == ("ReplicaSet", replica_set["metadata"]["name"]) for p in left["pods"]
    )
    assert replica_set["status"].get("readyReplicas") == 2

    assert _uids(_owned(cluster, namespace, "bystander")) == bystander


def test_unschedulable_pod_is_reported_as_kube_scheduler_words_it(
    cluster: Cluster, namespace: str
) -> None:
    server = cluster.server
    too_big = {
        "spec": {
            "containers": [
                {"name": "big", "image": "nginx:1.27", "resources": {"requests": {"cpu": "1000"}}}
            ]
        }
    }
    nowhere = {"spec": {"nodeSelector": {"disktype": "ssd"}}}
    for name, overrides in (("big", too_big), ("nowhere", nowhere)):
        server.kubectl(
            "run",
            name,
            "-n",
            namespace,
            "--image=nginx:1.27",
            f"--overrides={json.dumps(overrides)}",
        )
    expected = {
        "big": "0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are "
        "available: 3 No preemption victims found for incoming pod.",
        "nowhere": "0/3 nodes are available: 3 node(s) didn't match Pod's node "
        "affinity/selector. preemption: 0/3 nodes are available: 3 Preemption is not "
        "helpful for scheduling.",
    }
    for name, message in expected.items():

        def scheduled_condition(pod_name: str = name) -> dict[str, Any] | None:
            pod = get(server, "pod", pod_name, namespace) or {}
            return next(
                (
                    c
                    for c in pod.get("status", {}).get("conditions", [])
                    if c["type"] == "PodScheduled"
                ),
                None,
            )

        condition = wait_for(scheduled_condition, what=f"{name}'s PodScheduled condition")
        assert condition["status"] == "False"
        assert condition["reason"] == "Unschedulable"
        assert condition["message"] == message
        assert not (get(server, "pod", name, namespace) or {})["spec"].get("nodeName")

        failures = [
            e
            for e in items(server, "events", namespace)
            if e["involvedObject"]["name"] == name and e["reason"] == "FailedScheduling"
        ]
        assert failures, f"no FailedScheduling event for {name}"
        assert {(e["type"], e["message"]) for e in failures} == {("Warning", message)}
        assert all(
            "default-scheduler" in (e["source"].get("component"), e.get("reportingComponent"))
            for e in failures
        )
    described = server.kubectl("describe", "pod", "big", "-n", namespace).stdout
    assert "Warning  FailedScheduling" in described
    assert f"default-scheduler  {expected['big']}" in described
