"""Endpoints from a Service and its pods: pure decisions of the endpoints controller."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from timonel.api.objects import Object
from timonel.controllers.endpoints import (
    LAST_CHANGE_TRIGGER_TIME,
    OVER_CAPACITY,
    desired_subsets,
    plan_endpoints,
    pod_view,
    repack_subsets,
    truncate_subsets,
)
from timonel.controllers.podendpoints import TriggerTimeTracker, find_port

READY_AT = "2026-01-01T10:00:00Z"


def service(name: str = "web", *, ports: list[dict[str, Any]] | None = None, **spec: Any) -> Object:
    default_ports = [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]
    return {
        "metadata": {
            "name": name,
            "namespace": "ns",
            "uid": "svc-uid",
            "labels": {"team": "a"},
            "creationTimestamp": "2026-01-01T09:00:00Z",
        },
        "spec": {
            "selector": {"app": "web"},
            "clusterIP": "10.43.0.10",
            "ports": default_ports if ports is None else ports,
            **spec,
        },
    }


def pod(
    name: str,
    ip: str | None,
    *,
    ready: bool = True,
    port: int = 8080,
    node: str = "n1",
    deleting: bool = False,
    phase: str = "Running",
    **spec: Any,
) -> Object:
    meta: dict[str, Any] = {
        "name": name,
        "namespace": "ns",
        "uid": f"uid-{name}",
        "labels": {"app": "web"},
    }
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T11:00:00Z"
    status: dict[str, Any] = {
        "phase": phase,
        "conditions": [
            {
                "type": "Ready",
                "status": "True" if ready else "False",
                "lastTransitionTime": READY_AT,
            }
        ],
    }
    if ip:
        status["podIP"] = ip
        status["podIPs"] = [{"ip": ip}]
    return {
        "metadata": meta,
        "spec": {
            "nodeName": node,
            "containers": [
                {"name": "c", "ports": [{"name": "http", "containerPort": port, "protocol": "TCP"}]}
            ],
            **spec,
        },
        "status": status,
    }


def address(name: str, ip: str, node: str = "n1") -> dict[str, Any]:
    return {
        "ip": ip,
        "nodeName": node,
        "targetRef": {"kind": "Pod", "namespace": "ns", "name": name, "uid": f"uid-{name}"},
    }


def test_named_target_port_is_resolved_per_pod() -> None:
    svc = service()
    assert find_port(pod("a", "10.0.0.1", port=8080), svc["spec"]["ports"][0]) == 8080
    assert find_port(pod("b", "10.0.0.2", port=9090), svc["spec"]["ports"][0]) == 9090
    # The protocol must match too.
    udp = {"name": "dns", "port": 53, "targetPort": "http", "protocol": "UDP"}
    assert find_port(pod("a", "10.0.0.1"), udp) is None
    assert find_port(pod("a", "10.0.0.1"), {"port": 80, "targetPort": 7000}) == 7000


def test_sidecar_ports_count_but_plain_init_container_ports_do_not() -> None:
    target = {"port": 80, "targetPort": "metrics", "protocol": "TCP"}
    sidecar = {
        "name": "s",
        "restartPolicy": "Always",
        "ports": [{"name": "metrics", "containerPort": 9100}],
    }
    init = {"name": "i", "ports": [{"name": "metrics", "containerPort": 9100}]}
    assert find_port(pod("a", "10.0.0.1", initContainers=[sidecar]), target) == 9100
    assert find_port(pod("a", "10.0.0.1", initContainers=[init]), target) is None


def test_ready_and_not_ready_pods_with_different_ports() -> None:
    pods = [
        pod("a", "10.0.0.1", port=8080),
        pod("b", "10.0.0.2", port=9090, ready=False),
        pod("c", "10.0.0.3", port=8080),
        pod("no-ip", None),
        pod("done", "10.0.0.9", phase="Succeeded"),
        pod("going", "10.0.0.8", deleting=True),
    ]
    assert desired_subsets(service(), pods) == [
        {
            "addresses": [address("a", "10.0.0.1"), address("c", "10.0.0.3")],
            "ports": [{"port": 8080, "protocol": "TCP", "name": "http"}],
        },
        {
            "notReadyAddresses": [address("b", "10.0.0.2")],
            "ports": [{"port": 9090, "protocol": "TCP", "name": "http"}],
        },
    ]


def test_publish_not_ready_addresses_lists_every_pod_as_ready() -> None:
    pods = [pod("a", "10.0.0.1", ready=False), pod("going", "10.0.0.8", deleting=True)]
    subsets = desired_subsets(service(publishNotReadyAddresses=True), pods)
    assert subsets == [
        {
            "addresses": [address("a", "10.0.0.1"), address("going", "10.0.0.8")],
            "ports": [{"port": 8080, "protocol": "TCP", "name": "http"}],
        }
    ]


def test_pods_without_the_named_port_are_left_out() -> None:
    other = pod("x", "10.0.0.5")
    other["spec"]["containers"][0]["ports"] = [{"name": "grpc", "containerPort": 5000}]
    assert desired_subsets(service(), [other]) == []


def test_headless_service_without_ports_and_hostnames() -> None:
    svc = service("db", ports=[], clusterIP="None")
    named = pod("db-0", "10.0.0.1", hostname="db-0", subdomain="db")
    elsewhere = pod("x", "10.0.0.2", hostname="x", subdomain="other")
    assert desired_subsets(svc, [named, elsewhere]) == [
        {
            "addresses": [
                {**address("db-0", "10.0.0.1"), "hostname": "db-0"},
                address("x", "10.0.0.2"),
            ]
        }
    ]
    # A Service with a ClusterIP and no ports has no endpoints at all.
    assert desired_subsets(service(ports=[]), [named]) == []


def test_repack_merges_ports_served_by_the_same_addresses() -> None:
    a = address("a", "10.0.0.1")
    subsets = [
        {"addresses": [a], "ports": [{"name": "https", "port": 443, "protocol": "TCP"}]},
        {"addresses": [a], "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]},
        # Ready on a port anywhere wins over not ready.
        {"notReadyAddresses": [a], "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]},
    ]
    assert repack_subsets(subsets) == [
        {
            "addresses": [a],
            "ports": [
                {"name": "http", "port": 80, "protocol": "TCP"},
                {"name": "https", "port": 443, "protocol": "TCP"},
            ],
        }
    ]


def test_plan_creates_then_leaves_alone_then_updates() -> None:
    svc = service(clusterIP="None")
    pods = [pod("a", "10.0.0.1")]
    subsets = desired_subsets(svc, pods)
    trigger = datetime(2026, 1, 1, 10, 0, tzinfo=UTC)
    created = plan_endpoints(svc, subsets, None, trigger)
    assert created is not None
    assert created["metadata"] == {
        "name": "web",
        "namespace": "ns",
        "labels": {"team": "a", "service.kubernetes.io/headless": ""},
        "annotations": {LAST_CHANGE_TRIGGER_TIME: "2026-01-01T10:00:00Z"},
    }
    assert created["subsets"] == subsets
    stored = {**created, "metadata": {**created["metadata"], "resourceVersion": "5"}}
    assert plan_endpoints(svc, subsets, stored, None) is None
    # A targetRef resourceVersion (older writers) is no difference either.
    with_version = {**stored, "subsets": [dict(s) for s in subsets]}
    with_version["subsets"][0]["addresses"] = [
        {
            **address("a", "10.0.0.1"),
            "targetRef": {**address("a", "10.0.0.1")["targetRef"], "resourceVersion": "9"},
        }
    ]
    assert plan_endpoints(svc, subsets, with_version, None) is None
    emptied = plan_endpoints(svc, [], stored, None)
    assert emptied is not None and "subsets" not in emptied
    assert LAST_CHANGE_TRIGGER_TIME not in emptied["metadata"].get("annotations", {})
    assert emptied["metadata"]["resourceVersion"] == "5"


def test_truncation_keeps_ready_addresses_first() -> None:
    ready = [address(f"r{i}", f"10.0.{i // 250}.{i % 250}") for i in range(600)]
    not_ready = [address(f"n{i}", f"10.1.{i // 250}.{i % 250}") for i in range(600)]
    subsets: list[dict[str, Any]] = [
        {"addresses": ready, "notReadyAddresses": not_ready, "ports": []}
    ]
    assert truncate_subsets(subsets, 1000)
    assert len(subsets[0]["addresses"]) == 600
    assert len(subsets[0]["notReadyAddresses"]) == 400
    svc = service()
    planned = plan_endpoints(svc, [{"addresses": ready + not_ready, "ports": []}], None, None)
    assert planned is not None
    assert planned["metadata"]["annotations"] == {OVER_CAPACITY: "truncated"}


def test_trigger_time_is_the_earliest_unpublished_change() -> None:
    tracker = TriggerTimeTracker()
    svc = service()
    first = tracker.compute("ns/web", svc, [pod("a", "10.0.0.1")])
    assert first == datetime(2026, 1, 1, 9, 0, tzinfo=UTC)  # the Service's creation
    assert tracker.compute("ns/web", svc, [pod("a", "10.0.0.1")]) is None
    changed = pod("a", "10.0.0.1", ready=False)
    changed["status"]["conditions"][0]["lastTransitionTime"] = "2026-01-01T10:05:00Z"
    assert tracker.compute("ns/web", svc, [changed]) == datetime(2026, 1, 1, 10, 5, tzinfo=UTC)


def test_pod_updates_that_do_not_touch_endpoints_are_ignored() -> None:
    before = pod("a", "10.0.0.1")
    annotated = {**before, "metadata": {**before["metadata"], "annotations": {"x": "y"}}}
    assert pod_view(before) == pod_view(annotated)
    assert pod_view(before) != pod_view(pod("a", "10.0.0.1", ready=False))
    assert pod_view(before) != pod_view(pod("a", "10.0.0.2"))
