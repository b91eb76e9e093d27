"""PodDisruptionBudget status from the disruption controller, and the eviction
subresource honouring it, through kubectl."""

from __future__ import annotations

import json
from typing import Any

from tests.conftest import KubectlResult, RunningServer
from tests.integration.controllers.harness import NO_SCHEDULER, apply, get, mark_pod, wait_for


def pod(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "web"}},
        "spec": {"nodeName": "pdb-node", "containers": [{"name": "c", "image": "nginx"}]},
    }


def budget_status(server: RunningServer, namespace: str, name: str = "web") -> dict[str, Any]:
    found: dict[str, Any] = (get(server, "pdb", name, namespace) or {}).get("status") or {}
    return found


def evict(server: RunningServer, namespace: str, name: str) -> KubectlResult:
    eviction = {
        "apiVersion": "policy/v1",
        "kind": "Eviction",
        "metadata": {"name": name, "namespace": namespace},
    }
    return server.kubectl(
        "create",
        "--raw",
        f"/api/v1/namespaces/{namespace}/pods/{name}/eviction",
        "-f",
        "-",
        input=json.dumps(eviction),
        check=False,
    )


def test_evictions_stop_at_the_budget(server: RunningServer, namespace: str) -> None:
    for name in ("web-1", "web-2"):
        apply(server, pod(name), namespace)
        mark_pod(server, namespace, name, "Running")
    server.kubectl(
        "create", "pdb", "web", "--selector=app=web", "--min-available=1", "-n", namespace
    )
    status = wait_for(
        lambda: (s := budget_status(server, namespace)).get("observedGeneration") and s,
        what="budget status",
    )
    assert (status["currentHealthy"], status["desiredHealthy"], status["expectedPods"]) == (2, 1, 2)
    assert status["disruptionsAllowed"] == 1
    condition = status["conditions"][0]
    assert (condition["type"], condition["status"], condition["reason"]) == (
        "DisruptionAllowed",
        "True",
        "SufficientPods",
    )

    first = evict(server, namespace, "web-1")
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["status"] == "Success"
    after = budget_status(server, namespace)
    assert after["disruptionsAllowed"] == 0
    assert after["conditions"][0]["reason"] == "InsufficientPods"
    evicted = get(server, "pod", "web-1", namespace)
    assert evicted is None or evicted["metadata"].get("deletionTimestamp")

    refused = evict(server, namespace, "web-2")
    assert refused.returncode != 0
    assert "Cannot evict pod as it would violate the pod's disruption budget." in refused.stderr
    assert not get(server, "pod", "web-2", namespace)["metadata"].get("deletionTimestamp")  # type: ignore[index]
    wait_for(
        lambda: budget_status(server, namespace).get("currentHealthy") == 1,
        what="evicted pod not healthy",
    )


def test_pods_not_running_are_evicted_without_a_budget(
    server: RunningServer, namespace: str
) -> None:
    apply(server, pod("pending"), namespace)
    server.kubectl(
        "create", "pdb", "web", "--selector=app=web", "--min-available=5", "-n", namespace
    )
    result = evict(server, namespace, "pending")
    assert result.returncode == 0, result.stderr
    deleted = get(server, "pod", "pending", namespace)
    assert deleted is None or deleted["metadata"].get("deletionTimestamp")


def test_two_budgets_for_one_pod_cannot_be_evicted(server: RunningServer, namespace: str) -> None:
    apply(server, pod("web-1"), namespace)
    mark_pod(server, namespace, "web-1", "Running")
    server.kubectl(
        "create", "pdb", "one", "--selector=app=web", "--max-unavailable=1", "-n", namespace
    )
    server.kubectl(
        "create", "pdb", "two", "--selector=app=web", "--max-unavailable=1", "-n", namespace
    )
    result = evict(server, namespace, "web-1")
    assert result.returncode != 0
    assert "This pod has more than one PodDisruptionBudget" in result.stderr


def test_max_unavailable_follows_the_deployment_scale(
    server: RunningServer, namespace: str
) -> None:
    apply(
        server,
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "app"},
            "spec": {
                "replicas": 3,
                "selector": {"matchLabels": {"app": "scaled"}},
                "template": {
                    "metadata": {"labels": {"app": "scaled"}},
                    "spec": {
                        "schedulerName": NO_SCHEDULER,
                        "containers": [{"name": "c", "image": "nginx"}],
                    },
                },
            },
        },
        namespace,
    )
    server.kubectl(
        "create", "pdb", "scaled", "--selector=app=scaled", "--max-unavailable=1", "-n", namespace
    )
    status = wait_for(
        lambda: (s := budget_status(server, namespace, "scaled")).get("expectedPods") == 3 and s,
        what="expected pods from the deployment",
    )
    assert (status["desiredHealthy"], status["currentHealthy"], status["disruptionsAllowed"]) == (
        2,
        0,
        0,
    )
