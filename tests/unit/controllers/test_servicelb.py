"""ServiceLB decisions: which nodes serve a LoadBalancer Service and with which addresses."""

from __future__ import annotations

from typing import Any

from timonel.controllers.servicelb import (
    ENABLE_LB_LABEL,
    LB_POOL_LABEL,
    candidate_nodes,
    current_ingress,
    plan_ingress,
    served_by_nodes,
)


def node(
    name: str,
    internal: str,
    *,
    ready: bool = True,
    external: str = "",
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    addresses = [{"type": "InternalIP", "address": internal}, {"type": "Hostname", "address": name}]
    if external:
        addresses.append({"type": "ExternalIP", "address": external})
    return {
        "metadata": {"name": name, "labels": labels or {}},
        "status": {
            "addresses": addresses,
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


def lb_service(
    name: str,
    *ports: int,
    created: str = "2025-01-01T00:00:00Z",
    labels: dict[str, str] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    return {
        "metadata": {
            "namespace": "default",
            "name": name,
            "creationTimestamp": created,
            "labels": labels or {},
        },
        "spec": {
            "type": "LoadBalancer",
            "ipFamilies": ["IPv4"],
            "ports": [{"port": p, "protocol": "TCP"} for p in ports or (80,)],
            **spec,
        },
    }


NODES = [node("b", "10.0.0.2"), node("a", "10.0.0.1"), node("down", "10.0.0.3", ready=False)]


def test_ready_nodes_serve_with_their_internal_addresses_sorted() -> None:
    web = lb_service("web")
    assert plan_ingress(web, [web], NODES, []) == ["10.0.0.1", "10.0.0.2"]


def test_external_addresses_win_when_any_node_has_one() -> None:
    nodes = [node("a", "10.0.0.1", external="203.0.113.1"), node("b", "10.0.0.2")]
    web = lb_service("web")
    assert plan_ingress(web, [web], nodes, []) == ["203.0.113.1"]


def test_only_load_balancer_services_without_a_class() -> None:
    assert served_by_nodes(lb_service("web"))
    assert not served_by_nodes(lb_service("web", loadBalancerClass="example.com/lb"))
    cluster_ip = lb_service("web")
    cluster_ip["spec"]["type"] = "ClusterIP"
    assert not served_by_nodes(cluster_ip)
    assert plan_ingress(cluster_ip, [cluster_ip], NODES, []) == []


def test_enablelb_labels_restrict_the_nodes_and_pools() -> None:
    nodes = [
        node("a", "10.0.0.1", labels={ENABLE_LB_LABEL: "true", LB_POOL_LABEL: "edge"}),
        node("b", "10.0.0.2", labels={ENABLE_LB_LABEL: "false"}),
        node("c", "10.0.0.3"),
        node("d", "10.0.0.4", labels={ENABLE_LB_LABEL: "true"}),
    ]
    assert [n["metadata"]["name"] for n in candidate_nodes(lb_service("web"), nodes)] == ["a", "d"]
    pooled = lb_service("web", labels={LB_POOL_LABEL: "edge"})
    assert plan_ingress(pooled, [pooled], nodes, []) == ["10.0.0.1"]


def test_an_older_service_keeps_its_ports() -> None:
    first = lb_service("first", 80, 443, created="2025-01-01T00:00:00Z")
    second = lb_service("second", 443, created="2025-01-02T00:00:00Z")
    third = lb_service("third", 8080, created="2025-01-03T00:00:00Z")
    services = [third, second, first]
    assert plan_ingress(first, services, NODES, []) == ["10.0.0.1", "10.0.0.2"]
    assert plan_ingress(second, services, NODES, []) == []
    assert plan_ingress(third, services, NODES, []) == ["10.0.0.1", "10.0.0.2"]
    # UDP on the same number is another port.
    udp = lb_service("udp", created="2025-01-04T00:00:00Z")
    udp["spec"]["ports"] = [{"port": 443, "protocol": "UDP"}]
    assert plan_ingress(udp, [*services, udp], NODES, []) == ["10.0.0.1", "10.0.0.2"]


def test_a_port_is_taken_only_on_the_nodes_that_serve_the_older_service() -> None:
    nodes = [
        node("a", "10.0.0.1", labels={ENABLE_LB_LABEL: "true", LB_POOL_LABEL: "one"}),
        node("b", "10.0.0.2", labels={ENABLE_LB_LABEL: "true", LB_POOL_LABEL: "two"}),
    ]
    first = lb_service("first", created="2025-01-01T00:00:00Z", labels={LB_POOL_LABEL: "one"})
    second = lb_service("second", created="2025-01-02T00:00:00Z")
    assert plan_ingress(second, [first, second], nodes, []) == ["10.0.0.2"]


def test_local_traffic_policy_lists_nodes_with_ready_endpoints() -> None:
    web = lb_service("web", externalTrafficPolicy="Local")
    endpoint_slice = {
        "metadata": {
            "namespace": "default",
            "name": "web-1",
            "labels": {"kubernetes.io/service-name": "web"},
        },
        "endpoints": [
            {"addresses": ["10.42.0.5"], "nodeName": "b", "conditions": {"ready": True}},
            {"addresses": ["10.42.0.6"], "nodeName": "a", "conditions": {"ready": False}},
        ],
    }
    assert plan_ingress(web, [web], NODES, [endpoint_slice]) == ["10.0.0.2"]
    assert plan_ingress(web, [web], NODES, []) == []


def test_current_ingress() -> None:
    service = lb_service("web")
    assert current_ingress(service) == []
    service["status"] = {"loadBalancer": {"ingress": [{"ip": "10.0.0.1", "ipMode": "VIP"}]}}
    assert current_ingress(service) == ["10.0.0.1"]
