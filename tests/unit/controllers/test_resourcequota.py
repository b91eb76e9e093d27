"""Quota usage: what objects use, and the quota controller's status."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from timonel.api.objects import Object
from timonel.controllers.resourcequota import counted_resources, plan_quota_status, releases_quota
from timonel.kinds.core.quotausage import (
    counted_resource,
    matching_resources,
    missing_pod_resources,
    pod_usage,
    quota_applies,
    render,
    service_usage,
    usage_of,
)

NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


def pod(*containers: dict[str, Any], phase: str = "Running", **spec: Any) -> Object:
    return {
        "metadata": {"name": "p", "namespace": "ns"},
        "spec": {"containers": list(containers), **spec},
        "status": {"phase": phase},
    }


def container(
    name: str = "c", requests: dict[str, str] | None = None, limits: dict[str, str] | None = None
) -> dict[str, Any]:
    resources: dict[str, Any] = {}
    if requests:
        resources["requests"] = requests
    if limits:
        resources["limits"] = limits
    return {"name": name, "resources": resources}


def quota(hard: dict[str, str], status: dict[str, Any] | None = None, **spec: Any) -> Object:
    return {
        "metadata": {"name": "q", "namespace": "ns"},
        "spec": {"hard": hard, **spec},
        "status": status or {},
    }


def test_pod_usage_sums_containers_and_takes_the_largest_init_container() -> None:
    p = pod(
        container("a", {"cpu": "100m", "memory": "64Mi"}, {"cpu": "200m"}),
        container("b", {"cpu": "300m"}),
        initContainers=[container("init", {"cpu": "1", "memory": "32Mi"})],
    )
    assert render(pod_usage(p, NOW)) == {
        "count/pods": "1",
        "cpu": "1",
        "limits.cpu": "200m",
        "memory": "64Mi",
        "pods": "1",
        "requests.cpu": "1",
        "requests.memory": "64Mi",
    }


def test_sidecars_add_up_and_limits_imply_requests() -> None:
    sidecar = {**container("s", {"cpu": "100m"}), "restartPolicy": "Always"}
    p = pod(container("a", limits={"cpu": "500m"}), initContainers=[sidecar])
    usage = render(pod_usage(p, NOW))
    assert usage["requests.cpu"] == "600m" and usage["limits.cpu"] == "500m"


def test_finished_pods_only_count_as_objects() -> None:
    assert render(pod_usage(pod(container("a", {"cpu": "1"}), phase="Succeeded"), NOW)) == {
        "count/pods": "1"
    }
    stuck = pod(container("a"))
    stuck["metadata"].update(
        deletionTimestamp="2026-01-01T11:00:00Z", deletionGracePeriodSeconds=30
    )
    assert render(pod_usage(stuck, NOW)) == {"count/pods": "1"}


def test_service_and_object_counts() -> None:
    node_port = {"spec": {"type": "NodePort", "ports": [{"port": 80}, {"port": 443}]}}
    assert render(service_usage(node_port)) == {
        "count/services": "1",
        "services": "1",
        "services.loadbalancers": "0",
        "services.nodeports": "2",
    }
    balancer = {
        "spec": {
            "type": "LoadBalancer",
            "allocateLoadBalancerNodePorts": False,
            "ports": [{"port": 80}],
        }
    }
    assert render(service_usage(balancer))["services.loadbalancers"] == "1"
    assert render(service_usage(balancer))["services.nodeports"] == "0"
    assert render(usage_of("", "configmaps", {}, NOW)) == {
        "configmaps": "1",
        "count/configmaps": "1",
    }
    assert render(usage_of("apps", "deployments", {}, NOW)) == {"count/deployments.apps": "1"}


def test_matching_resources_and_counted_resources() -> None:
    names = [
        "pods",
        "requests.cpu",
        "services",
        "count/configmaps",
        "requests.nvidia.com/gpu",
        "hugepages-2Mi",
    ]
    assert matching_resources("", "pods", names) == [
        "pods",
        "requests.cpu",
        "requests.nvidia.com/gpu",
        "hugepages-2Mi",
    ]
    assert matching_resources("", "services", names) == ["services"]
    assert matching_resources("", "configmaps", names) == ["count/configmaps"]
    assert counted_resource("count/deployments.apps") == ("apps", "deployments")
    assert counted_resource("limits.memory") == ("", "pods")
    assert counted_resource("services.nodeports") == ("", "services")
    assert counted_resources(quota({"pods": "1", "secrets": "2", "count/jobs.batch": "1"})) == {
        ("", "pods"),
        ("", "secrets"),
        ("batch", "jobs"),
    }


def test_scopes_select_pods_only() -> None:
    best_effort = pod(container("a"))
    burstable = pod(container("a", {"cpu": "100m"}))
    scoped = quota({"pods": "2"}, scopes=["BestEffort"])
    assert quota_applies(scoped, "", "pods", best_effort, ["pods"])
    assert not quota_applies(scoped, "", "pods", burstable, ["pods"])
    assert not quota_applies(
        quota({"count/configmaps": "1"}, scopes=["BestEffort"]),
        "",
        "configmaps",
        {},
        ["count/configmaps"],
    )
    terminating = quota({"pods": "1"}, scopes=["Terminating"])
    assert quota_applies(
        terminating, "", "pods", pod(container("a"), activeDeadlineSeconds=10), ["pods"]
    )
    assert not quota_applies(terminating, "", "pods", best_effort, ["pods"])
    by_class = quota(
        {"pods": "1"},
        scopeSelector={
            "matchExpressions": [
                {"scopeName": "PriorityClass", "operator": "In", "values": ["high"]}
            ]
        },
    )
    assert quota_applies(
        by_class, "", "pods", pod(container("a"), priorityClassName="high"), ["pods"]
    )
    assert not quota_applies(by_class, "", "pods", best_effort, ["pods"])


def test_containers_must_state_tracked_compute_resources() -> None:
    p = pod(container("a", {"cpu": "100m"}), container("b"))
    assert missing_pod_resources(p, ["pods", "requests.cpu", "limits.memory"]) == (
        "must specify limits.memory for: a,b; requests.cpu for: b"
    )
    assert missing_pod_resources(p, ["pods"]) is None


def test_quota_status_recounted_and_written_only_when_it_changes() -> None:
    q = quota({"pods": "3", "requests.cpu": "2", "count/configmaps": "5"})
    objects = {
        ("", "pods"): [
            pod(container("a", {"cpu": "250m"})),
            pod(container("b", {"cpu": "1"}), phase="Failed"),
        ],
        ("", "configmaps"): [{"metadata": {"name": "c"}}],
    }
    updated = plan_quota_status(q, objects, NOW)
    assert updated is not None
    assert updated["status"] == {
        "hard": {"pods": "3", "requests.cpu": "2", "count/configmaps": "5"},
        "used": {"count/configmaps": "1", "pods": "1", "requests.cpu": "250m"},
    }
    assert plan_quota_status(updated, objects, NOW) is None
    # Usage the controller cannot count is kept as it was.
    unknown = quota(
        {"count/widgets.example.com": "1"},
        {"hard": {"count/widgets.example.com": "1"}, "used": {"count/widgets.example.com": "1"}},
    )
    assert plan_quota_status(unknown, {}, NOW) is None


def test_what_releases_quota_on_update() -> None:
    running = pod(container("a"))
    assert releases_quota("", "pods", running, pod(container("a"), phase="Succeeded"), NOW)
    assert not releases_quota("", "pods", running, running, NOW)
    assert releases_quota(
        "", "services", {"spec": {"type": "NodePort"}}, {"spec": {"type": "ClusterIP"}}, NOW
    )
