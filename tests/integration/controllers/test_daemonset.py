"""The DaemonSet controller inside `timonel server`: Node objects are created through the
API (to the controller they are just objects); pods are pinned to them by node affinity."""

from __future__ import annotations

import uuid
from typing import Any

from tests.conftest import RunningServer
from tests.integration.controllers.harness import (
    NO_SCHEDULER,
    apply,
    events,
    get,
    items,
    live_pods,
    mark_pod,
    wait_for,
)

AUTOMATIC_TOLERATIONS = [
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"},
]


def node(
    name: str, labels: dict[str, str], taints: list[dict[str, str]] | None = None
) -> dict[str, Any]:
    spec: dict[str, Any] = {"taints": taints} if taints else {}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": labels},
        "spec": spec,
    }


def daemonset(
    name: str, node_selector: dict[str, str] | None = None, env: str = "one"
) -> dict[str, Any]:
    pod_spec: dict[str, Any] = {
        "schedulerName": NO_SCHEDULER,
        "containers": [{"name": "agent", "image": "busybox", "env": [{"name": "V", "value": env}]}],
    }
    if node_selector:
        pod_spec["nodeSelector"] = node_selector
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": name},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": pod_spec},
        },
    }


def pinned_node(pod: dict[str, Any]) -> str:
    terms = pod["spec"]["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"
    ]["nodeSelectorTerms"]
    assert terms == [
        {
            "matchFields": [
                {
                    "key": "metadata.name",
                    "operator": "In",
                    "values": terms[0]["matchFields"][0]["values"],
                }
            ]
        }
    ]
    values: list[str] = terms[0]["matchFields"][0]["values"]
    return values[0]


def pods_by_node(
    server: RunningServer, namespace: str, app: str
) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for pod in live_pods(server, namespace, f"app={app}"):
        grouped.setdefault(pinned_node(pod), []).append(pod)
    return grouped


def test_one_pod_per_eligible_node_as_nodes_come_and_go(
    server: RunningServer, namespace: str
) -> None:
    tag = f"ds-{uuid.uuid4().hex[:8]}"
    label = {f"test/{tag}": "yes"}
    for suffix in ("a", "b"):
        apply(server, node(f"{tag}-{suffix}", label))
    apply(server, node(f"{tag}-unlabelled", {}))
    apply(server, daemonset("agent", label), namespace)

    grouped = wait_for(
        lambda: (
            (g := pods_by_node(server, namespace, "agent"))
            and set(g) == {f"{tag}-a", f"{tag}-b"}
            and g
        ),
        what="a pod on each labelled node",
    )
    assert all(len(pods) == 1 for pods in grouped.values())
    pod = grouped[f"{tag}-a"][0]
    assert pod["metadata"]["generateName"] == "agent-"
    owner = pod["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["controller"]) == ("DaemonSet", "agent", True)
    for toleration in AUTOMATIC_TOLERATIONS:
        assert toleration in pod["spec"]["tolerations"]
    labels = pod["metadata"]["labels"]
    assert labels["pod-template-generation"] == "1"
    revisions = items(server, "controllerrevisions", namespace)
    assert [r["metadata"]["name"] for r in revisions] == [
        f"agent-{labels['controller-revision-hash']}"
    ]
    assert revisions[0]["revision"] == 1

    ds = wait_for(
        lambda: (
            (d := get(server, "daemonset", "agent", namespace))
            and d.get("status", {}).get("currentNumberScheduled") == 2
            and d
        ),
        what="status counted",
    )
    status = ds["status"]
    assert status["desiredNumberScheduled"] == 2
    assert status["numberMisscheduled"] == 0
    assert status["updatedNumberScheduled"] == 2
    assert status["numberReady"] == 0
    assert status["observedGeneration"] == ds["metadata"]["generation"]

    # A node added later gets its pod.
    apply(server, node(f"{tag}-c", label))
    wait_for(
        lambda: f"{tag}-c" in pods_by_node(server, namespace, "agent"), what="a pod on the new node"
    )

    # A node that stops matching loses it; a deleted node too.
    server.kubectl("label", "node", f"{tag}-a", f"test/{tag}-")
    server.kubectl("delete", "node", f"{tag}-b")
    wait_for(
        lambda: set(pods_by_node(server, namespace, "agent")) == {f"{tag}-c"},
        what="pods only on the remaining labelled node",
    )

    # A NoExecute taint the pod does not tolerate evicts it; NoSchedule would not.
    server.kubectl("taint", "node", f"{tag}-c", "dedicated=infra:NoExecute")
    wait_for(
        lambda: not pods_by_node(server, namespace, "agent"),
        what="the pod leaving the tainted node",
    )
    reasons = [reason for reason, _ in events(server, namespace, "DaemonSet", "agent")]
    assert "SuccessfulCreate" in reasons and "SuccessfulDelete" in reasons
    created = [
        m for r, m in events(server, namespace, "DaemonSet", "agent") if r == "SuccessfulCreate"
    ]
    assert all(m.startswith("Created pod: agent-") for m in created)

    server.kubectl("delete", "daemonset", "agent", "-n", namespace)
    for suffix in ("a", "c", "unlabelled"):
        server.kubectl("delete", "node", f"{tag}-{suffix}")


def test_covers_every_node_and_tolerates_node_conditions(
    server: RunningServer, namespace: str
) -> None:
    tag = f"ds-{uuid.uuid4().hex[:8]}"
    apply(server, node(f"{tag}-plain", {}))
    # Taints a node condition brings are tolerated by every daemon pod.
    apply(
        server,
        node(
            f"{tag}-pressure",
            {},
            [{"key": "node.kubernetes.io/disk-pressure", "effect": "NoSchedule"}],
        ),
    )
    apply(
        server,
        node(
            f"{tag}-dedicated", {}, [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]
        ),
    )
    apply(server, daemonset("everywhere"), namespace)

    def eligible() -> set[str]:
        """Nodes whose taints are all tolerated (or only preferences), other tests' too."""
        tolerated = {(t["key"], t["effect"]) for t in AUTOMATIC_TOLERATIONS}
        return {
            n["metadata"]["name"]
            for n in items(server, "nodes")
            if all(
                (t["key"], t["effect"]) in tolerated or t["effect"] == "PreferNoSchedule"
                for t in n.get("spec", {}).get("taints") or []
            )
        }

    wait_for(
        # A node tainted NoSchedule since keeps its pod, hence "at least".
        lambda: eligible() <= set(pods_by_node(server, namespace, "everywhere")),
        what="a pod on every node the pods tolerate",
    )
    covered = set(pods_by_node(server, namespace, "everywhere"))
    assert {f"{tag}-plain", f"{tag}-pressure"} <= covered
    assert f"{tag}-dedicated" not in covered
    server.kubectl("delete", "daemonset", "everywhere", "-n", namespace)
    for suffix in ("plain", "pressure", "dedicated"):
        server.kubectl("delete", "node", f"{tag}-{suffix}")


def test_rolling_update_replaces_one_pod_at_a_time(server: RunningServer, namespace: str) -> None:
    tag = f"ds-{uuid.uuid4().hex[:8]}"
    label = {f"test/{tag}": "yes"}
    nodes = [f"{tag}-{i}" for i in range(2)]
    for name in nodes:
        apply(server, node(name, label))
    apply(server, daemonset("roll", label, env="one"), namespace)
    wait_for(
        lambda: set(pods_by_node(server, namespace, "roll")) == set(nodes), what="a pod per node"
    )
    for pod in live_pods(server, namespace, "app=roll"):
        mark_pod(server, namespace, pod["metadata"]["name"], "Running")
    wait_for(
        lambda: (
            (get(server, "daemonset", "roll", namespace) or {})
            .get("status", {})
            .get("numberAvailable")
            == 2
        ),
        what="both pods available",
    )
    old_hash = live_pods(server, namespace, "app=roll")[0]["metadata"]["labels"][
        "controller-revision-hash"
    ]

    apply(server, daemonset("roll", label, env="two"), namespace)

    def hashes() -> list[str]:
        return sorted(
            p["metadata"]["labels"]["controller-revision-hash"]
            for p in live_pods(server, namespace, "app=roll")
        )

    # maxUnavailable 1: one node at a time, the other keeps its available old pod.
    mixed = wait_for(
        lambda: (h := hashes()) and len(set(h)) == 2 and len(h) == 2 and h, what="one pod replaced"
    )
    new_hash = next(h for h in mixed if h != old_hash)
    new_pod = next(
        p
        for p in live_pods(server, namespace, "app=roll")
        if p["metadata"]["labels"]["controller-revision-hash"] == new_hash
    )
    assert new_pod["metadata"]["labels"]["pod-template-generation"] == "2"
    assert hashes().count(old_hash) == 1
    mark_pod(server, namespace, new_pod["metadata"]["name"], "Running")
    wait_for(lambda: hashes() == [new_hash, new_hash], what="the second pod replaced")
    revisions = {
        r["metadata"]["name"]: r["revision"]
        for r in items(server, "controllerrevisions", namespace)
    }
    assert revisions == {f"roll-{old_hash}": 1, f"roll-{new_hash}": 2}
    server.kubectl("delete", "daemonset", "roll", "-n", namespace)
    for name in nodes:
        server.kubectl("delete", "node", name)
