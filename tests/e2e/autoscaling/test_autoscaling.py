"""The horizontal pod autoscaler against real pods: containers that burn cpu make it
scale a Deployment up to its maximum, and once they go idle it scales back down, with
the metrics read from the kubelet through metrics.k8s.io as any client reads them."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from tests.e2e.kubelet.conftest import Cluster, condition, wait_for

BUSYBOX = "localhost/timonel/busybox:1"
# Burn cpu until the flag file appears in the directory shared with the host (so pods
# the ReplicaSet creates later see it too), then idle; exit promptly on TERM.
BURN_UNTIL_IDLE = (
    "trap 'exit 0' TERM; while [ ! -e /load/idle ]; do :; done; while true; do sleep 1; done"
)


def deployment(name: str, load_dir: Path) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "terminationGracePeriodSeconds": 1,
                    "containers": [
                        {
                            "name": "burner",
                            "image": BUSYBOX,
                            "command": ["sh", "-c", BURN_UNTIL_IDLE],
                            # The limit keeps three burners from taking the machine: the
                            # usage is still twice the request, four times the target.
                            "resources": {"requests": {"cpu": "50m"}, "limits": {"cpu": "100m"}},
                            "volumeMounts": [{"name": "load", "mountPath": "/load"}],
                        }
                    ],
                    "volumes": [
                        {
                            "name": "load",
                            "hostPath": {"path": str(load_dir), "type": "DirectoryOrCreate"},
                        }
                    ],
                },
            },
        },
    }


def autoscaler(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": 1,
            "maxReplicas": 3,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": 50},
                    },
                }
            ],
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": 0}},
        },
    }


def ready_pods(cluster: Cluster, namespace: str, app: str) -> list[dict[str, Any]]:
    listed = cluster.kubectl("get", "pods", "-n", namespace, "-l", f"app={app}", "-o", "json")
    return [
        p
        for p in listed.json()["items"]
        if not p["metadata"].get("deletionTimestamp") and condition(p, "Ready") == "True"
    ]


def replicas(cluster: Cluster, namespace: str, name: str) -> int:
    return int(cluster.get("deployment", name, namespace)["spec"]["replicas"])


def rescales(cluster: Cluster, namespace: str, name: str) -> list[str]:
    return [
        e["message"]
        for e in cluster.events(namespace, name)
        if e["involvedObject"].get("kind") == "HorizontalPodAutoscaler"
        and e["reason"] == "SuccessfulRescale"
    ]


def test_cpu_load_scales_a_deployment_up_and_idleness_back_down(cluster: Cluster) -> None:
    namespace = cluster.namespace()
    name = "burn"
    load_dir = cluster.data_dir.parent / f"load-{uuid.uuid4().hex[:8]}"
    try:
        cluster.apply(json.dumps(deployment(name, load_dir)), namespace)
        wait_for(lambda: ready_pods(cluster, namespace, name), timeout=60, what="the first pod")
        cluster.apply(json.dumps(autoscaler(name)), namespace)

        wait_for(
            lambda: replicas(cluster, namespace, name) == 3, timeout=60, what="a scale-up to 3"
        )
        scaled_up = (
            "New size: 3; reason: cpu resource utilization (percentage of request) above target"
        )
        wait_for(
            lambda: scaled_up in rescales(cluster, namespace, name), timeout=10, what="the event"
        )
        hpa = cluster.get("hpa", name, namespace)
        assert hpa["status"]["desiredReplicas"] == 3
        assert hpa["status"]["lastScaleTime"]
        (metric,) = hpa["status"]["currentMetrics"]
        assert metric["resource"]["name"] == "cpu"
        assert metric["resource"]["current"]["averageUtilization"] > 55
        row = cluster.kubectl("get", "hpa", name, "-n", namespace).stdout.splitlines()[1].split()
        assert row[:2] == [name, f"Deployment/{name}"]
        assert row[2] == "cpu:" and row[3].endswith("%/50%")

        (load_dir / "idle").touch()
        wait_for(
            lambda: replicas(cluster, namespace, name) == 1, timeout=60, what="a scale-down to 1"
        )
        scaled_down = "New size: 1; reason: All metrics below target"
        wait_for(
            lambda: scaled_down in rescales(cluster, namespace, name), timeout=10, what="the event"
        )
        described = cluster.kubectl("describe", "hpa", name, "-n", namespace).stdout
        assert "SuccessfulRescale" in described
        assert "ValidMetricFound" in described
    finally:
        # Without its Deployment nothing recreates the pods the cluster's teardown removes.
        cluster.kubectl("delete", "hpa", name, "-n", namespace, check=False)
        cluster.kubectl(
            "delete", "deployment", name, "-n", namespace, "--cascade=foreground",
            "--timeout=30s", check=False,
        )  # fmt: skip
