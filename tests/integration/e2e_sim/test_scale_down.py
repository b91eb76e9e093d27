"""A Deployment scaled down through its /scale subresource (as the horizontal pod
autoscaler does) while its pods are Running and Ready on simulated nodes that take a
few seconds to finish terminating: the ReplicaSet deletes exactly the surplus, keeps
the rest running and never creates a pod, also when the scale passes through an
intermediate value on the way down."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.controllers.harness import events, items, live_pods, wait_for
from tests.integration.e2e_sim.cluster import Cluster, PodWatch, pod_ready, running_cluster
from timonel.agent.simulate.stages import DEFAULT_STAGES_YAML

APP = "burn"
# The built-in stages, except that a terminating pod takes a few seconds to go (as a
# kubelet's pods take their grace period): long enough for the controllers to sync
# again while the pods they deleted are still there.
QUICK_DELETE = "delay: {seconds: 0.1, jitterSeconds: 0.1}\n  next: {delete: true}"
SLOW_DELETE = "delay: {seconds: 3, jitterSeconds: 0.5}\n  next: {delete: true}"
assert QUICK_DELETE in DEFAULT_STAGES_YAML
SLOW_TERMINATION = "stages:\n" + DEFAULT_STAGES_YAML.replace(QUICK_DELETE, SLOW_DELETE)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(tmp_path_factory.mktemp("e2e-scale-down")) as cluster:
        cluster.add_nodes(2, prefix="node", config=SLOW_TERMINATION)
        yield cluster


def _deployment() -> str:
    return json.dumps(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": APP},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": APP}},
                "template": {
                    "metadata": {"labels": {"app": APP}},
                    "spec": {
                        "terminationGracePeriodSeconds": 1,
                        "containers": [
                            {
                                "name": "burner",
                                "image": "busybox:1",
                                "resources": {
                                    "requests": {"cpu": "50m"},
                                    "limits": {"cpu": "100m"},
                                },
                            }
                        ],
                    },
                },
            },
        }
    )


def _scale(cluster: Cluster, namespace: str, replicas: int) -> None:
    cluster.server.kubectl(
        "patch", "deployment", APP, "-n", namespace, "--subresource=scale", "--type=merge",
        "-p", json.dumps({"spec": {"replicas": replicas}}),
    )  # fmt: skip


def _running(cluster: Cluster, namespace: str, count: int) -> list[dict[str, Any]]:
    """Wait for exactly `count` pods, none terminating, every one Running and Ready."""

    def settled() -> list[dict[str, Any]] | None:
        pods = items(cluster.server, "pods", namespace, f"app={APP}")
        done = len(pods) == count and all(
            not p["metadata"].get("deletionTimestamp")
            and p["status"].get("phase") == "Running"
            and pod_ready(p)
            for p in pods
        )
        return pods if done else None

    found: list[dict[str, Any]] = wait_for(settled, timeout=60, what=f"{count} running pods")
    return found


@pytest.mark.parametrize("steps", [[1], [2, 1]], ids=["3-to-1", "3-to-2-to-1"])
def test_scaling_down_deletes_only_the_surplus(
    cluster: Cluster, namespace: str, steps: list[int]
) -> None:
    cluster.server.kubectl("apply", "-n", namespace, "-f", "-", input=_deployment())
    _running(cluster, namespace, 1)
    _scale(cluster, namespace, 3)
    before = {p["metadata"]["name"] for p in _running(cluster, namespace, 3)}

    with PodWatch(cluster, namespace, selector=f"app={APP}") as watch:
        for replicas in steps:
            _scale(cluster, namespace, replicas)
        # Every pod gone but one, and the terminating ones gone for good.
        (kept,) = _running(cluster, namespace, 1)

    assert set(watch.added) == before, "a pod was created"
    assert kept["metadata"]["name"] in before
    terminated = {
        name
        for snapshot in watch.snapshots
        for name, pod in snapshot.items()
        if pod["metadata"].get("deletionTimestamp")
    }
    assert terminated == before - {kept["metadata"]["name"]}
    assert [p["metadata"]["name"] for p in live_pods(cluster.server, namespace)] == [
        kept["metadata"]["name"]
    ]
    (rs,) = items(cluster.server, "replicasets", namespace)
    said = [m for _, m in events(cluster.server, namespace, "ReplicaSet", rs["metadata"]["name"])]
    assert sorted(m for m in said if m.startswith("Deleted pod: ")) == sorted(
        f"Deleted pod: {name}" for name in terminated
    )
    assert len([m for m in said if m.startswith("Created pod: ")]) == 3
