"""Services: defaults per type, IP family defaults, validation and the table."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from timonel.kinds.core.service import (
    ServiceStrategy,
    service_external_ip,
    service_needs_cluster_ip,
    service_needs_health_check_node_port,
    service_node_ports_needed,
    service_ports_cell,
)


def service(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "web",
            "namespace": "default",
            "creationTimestamp": "2025-01-01T00:00:00Z",
        },
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}], **spec},
    }


def defaulted(**spec: Any) -> dict[str, Any]:
    svc = service(**spec)
    strategy = ServiceStrategy()
    strategy.default(svc)
    strategy.prepare_for_create(svc)
    return svc


def allocate(svc: dict[str, Any], ip: str = "10.43.0.10") -> None:
    """What the API server's allocator does: the primary ClusterIP in both fields."""
    svc["spec"]["clusterIP"] = ip
    svc["spec"]["clusterIPs"] = [ip]


def test_cluster_ip_defaults() -> None:
    svc = defaulted()
    assert svc["spec"] == {
        "selector": {"app": "web"},
        "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}],
        "sessionAffinity": "None",
        "type": "ClusterIP",
        "internalTrafficPolicy": "Cluster",
        "ipFamilyPolicy": "SingleStack",
        "ipFamilies": ["IPv4"],
    }
    assert svc["status"] == {"loadBalancer": {}}
    allocate(svc)
    assert ServiceStrategy().validate(svc) == []


def test_node_port_and_load_balancer_defaults() -> None:
    node_port = defaulted(type="NodePort")
    assert node_port["spec"]["externalTrafficPolicy"] == "Cluster"
    assert "allocateLoadBalancerNodePorts" not in node_port["spec"]
    lb = defaulted(type="LoadBalancer")
    assert lb["spec"]["externalTrafficPolicy"] == "Cluster"
    assert lb["spec"]["allocateLoadBalancerNodePorts"] is True
    assert service_node_ports_needed(lb) == [0]
    lb["spec"]["allocateLoadBalancerNodePorts"] = False
    assert service_node_ports_needed(lb) == []


def test_headless_defaults() -> None:
    with_selector = defaulted(clusterIP="None")
    assert with_selector["spec"]["clusterIPs"] == ["None"]
    assert (with_selector["spec"]["ipFamilyPolicy"], with_selector["spec"]["ipFamilies"]) == (
        "SingleStack",
        ["IPv4"],
    )
    selectorless = service(clusterIP="None")
    del selectorless["spec"]["selector"]
    ServiceStrategy().default(selectorless)
    assert (selectorless["spec"]["ipFamilyPolicy"], selectorless["spec"]["ipFamilies"]) == (
        "RequireDualStack",
        ["IPv4", "IPv6"],
    )
    assert not service_needs_cluster_ip(with_selector)
    assert service_needs_cluster_ip(defaulted())


def test_external_name_has_no_ip_fields() -> None:
    svc = defaulted(type="ExternalName", externalName="db.example.com")
    assert "ipFamilies" not in svc["spec"] and "ipFamilyPolicy" not in svc["spec"]
    assert not service_needs_cluster_ip(svc)
    assert ServiceStrategy().validate(svc) == []
    assert service_external_ip(svc) == "db.example.com"


def test_session_affinity_client_ip_gets_a_timeout() -> None:
    svc = defaulted(sessionAffinity="ClientIP")
    assert svc["spec"]["sessionAffinityConfig"] == {"clientIP": {"timeoutSeconds": 10800}}


def test_string_target_port_is_kept() -> None:
    svc = defaulted(ports=[{"port": 80, "targetPort": "http"}])
    assert svc["spec"]["ports"][0]["targetPort"] == "http"


def errors_of(**spec: Any) -> list[str]:
    svc = defaulted(**spec)
    if service_needs_cluster_ip(svc):
        allocate(svc)
    return [e.message() for e in ServiceStrategy().validate(svc)]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (
            {"ports": [{"port": 80}, {"port": 443}]},
            ["spec.ports[0].name: Required value", "spec.ports[1].name: Required value"],
        ),
        (
            {"ports": [{"port": 80, "name": "http"}, {"port": 81, "name": "http"}]},
            ['spec.ports[1].name: Duplicate value: "http"'],
        ),
        (
            {"ports": [{"port": 0}]},
            [
                "spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive",
                # targetPort defaults to the port, so it is out of range too.
                "spec.ports[0].targetPort: Invalid value: 0: must be between 1 and 65535, inclusive",
            ],
        ),
        ({"ports": []}, ["spec.ports: Required value"]),
        (
            {"ports": [{"port": 80, "nodePort": 30080}]},
            ["spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"],
        ),
        (
            {"type": "Bogus"},
            [
                'spec.type: Unsupported value: "Bogus": supported values: "ClusterIP", "ExternalName", '
                '"LoadBalancer", "NodePort"'
            ],
        ),
        (
            {"ports": [{"port": 80, "name": "a"}, {"port": 80, "name": "b"}]},
            [
                'spec.ports[1]: Duplicate value: core.ServicePort{Name:"", Protocol:"TCP", AppProtocol:(*string)(nil), '
                'Port:80, TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:""}, NodePort:0}'
            ],
        ),
        (
            {"type": "NodePort", "clusterIP": "None"},
            [
                "spec.clusterIPs[0]: Invalid value: \"None\": may not be set to 'None' for NodePort services"
            ],
        ),
        (
            {"externalTrafficPolicy": "Local"},
            [
                'spec.externalTrafficPolicy: Invalid value: "Local": may only be set for externally-accessible services'
            ],
        ),
        ({"type": "ExternalName"}, ["spec.externalName: Required value"]),
        (
            {"ports": [{"port": 80, "protocol": "ICMP"}]},
            [
                'spec.ports[0].protocol: Unsupported value: "ICMP": supported values: "SCTP", "TCP", "UDP"'
            ],
        ),
    ],
)
def test_validation(spec: dict[str, Any], expected: list[str]) -> None:
    assert errors_of(**spec) == expected


def test_cluster_ip_is_immutable() -> None:
    strategy = ServiceStrategy()
    old = defaulted()
    allocate(old)
    new = copy.deepcopy(old)
    new["spec"]["clusterIP"] = "10.43.0.99"
    strategy.default(new)
    strategy.prepare_for_update(new, old)
    assert [e.message() for e in strategy.validate_update(new, old)] == [
        'spec.clusterIPs[0]: Invalid value: []string{"10.43.0.99"}: may not change once set'
    ]


def test_update_keeps_allocated_values() -> None:
    strategy = ServiceStrategy()
    old = defaulted(type="NodePort")
    allocate(old)
    old["spec"]["ports"][0]["nodePort"] = 30080
    new = service(type="NodePort")  # a client that sends neither clusterIP nor nodePort
    strategy.default(new)
    strategy.prepare_for_update(new, old)
    assert new["spec"]["clusterIPs"] == ["10.43.0.10"]
    assert new["spec"]["ports"][0]["nodePort"] == 30080
    assert strategy.validate_update(new, old) == []


def test_type_change_drops_node_ports() -> None:
    strategy = ServiceStrategy()
    old = defaulted(type="NodePort")
    allocate(old)
    old["spec"]["ports"][0]["nodePort"] = 30080
    new = copy.deepcopy(old)
    new["spec"]["type"] = "ClusterIP"
    strategy.default(new)
    strategy.prepare_for_update(new, old)
    assert "nodePort" not in new["spec"]["ports"][0]
    assert "externalTrafficPolicy" not in new["spec"]
    assert strategy.validate_update(new, old) == []


def test_health_check_port() -> None:
    lb = defaulted(type="LoadBalancer", externalTrafficPolicy="Local")
    assert service_needs_health_check_node_port(lb)
    allocate(lb)
    assert [e.message() for e in ServiceStrategy().validate(lb)] == [
        "spec.healthCheckNodePort: Required value"
    ]


def test_table() -> None:
    strategy = ServiceStrategy()
    svc = defaulted(
        type="NodePort",
        ports=[
            {"port": 80, "nodePort": 30080, "name": "http"},
            {"port": 53, "protocol": "UDP", "name": "dns"},
        ],
    )
    allocate(svc)
    row = strategy.table_row(svc)
    assert row[0:5] == ["web", "NodePort", "10.43.0.10", "<none>", "80:30080/TCP,53/UDP"]
    assert row[6] == "app=web"
    lb = defaulted(type="LoadBalancer")
    assert service_external_ip(lb) == "<pending>"
    lb["status"]["loadBalancer"]["ingress"] = [{"ip": "192.0.2.9"}, {"hostname": "lb.example.com"}]
    assert service_external_ip(lb) == "192.0.2.9,lb.example.com"
    headless = defaulted(clusterIP="None", ports=[])
    assert strategy.table_row(headless)[2:5] == ["None", "<none>", "<none>"]
    unallocated = service()
    assert strategy.table_row(unallocated)[2] == "<none>"
    assert service_ports_cell([]) == ""
    assert [c.name for c in strategy.columns] == [
        "Name",
        "Type",
        "Cluster-IP",
        "External-IP",
        "Port(s)",
        "Age",
        "Selector",
    ]


def test_load_balancer_status_gets_ip_mode() -> None:
    svc = service(type="LoadBalancer")
    svc["status"] = {"loadBalancer": {"ingress": [{"ip": "192.0.2.1"}]}}
    ServiceStrategy().default(svc)
    assert svc["status"]["loadBalancer"]["ingress"] == [{"ip": "192.0.2.1", "ipMode": "VIP"}]


def test_name_is_dns1035_label() -> None:
    problems = ServiceStrategy().name_problems("1web")
    assert problems and problems[0].startswith(
        "a DNS-1035 label must consist of lower case alphanumeric"
    )
