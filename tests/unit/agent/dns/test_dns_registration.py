"""The kube-dns Service and the nodes' DNS endpoints (pure plans)."""

from __future__ import annotations

from timonel.agent.dns.registration import (
    DnsEndpoint,
    dns_service,
    endpoints_subsets,
    planned_endpoints,
    planned_slice,
    slice_differs,
    slice_name,
    updated_slice,
    with_current_conditions,
)

NODE_A = DnsEndpoint("node-a", "192.168.1.10", 10053, 9153)
NODE_B = DnsEndpoint("node-b", "192.168.1.11", 10053, 9153)


def test_service_is_labelled_like_coredns_and_has_no_selector() -> None:
    service = dns_service("10.43.0.10")
    assert service["metadata"]["labels"] == {
        "k8s-app": "kube-dns",
        "kubernetes.io/cluster-service": "true",
        "kubernetes.io/name": "CoreDNS",
    }
    assert "selector" not in service["spec"]
    assert service["spec"]["clusterIP"] == "10.43.0.10"
    assert [(p["name"], p["port"], p["protocol"]) for p in service["spec"]["ports"]] == [
        ("dns", 53, "UDP"),
        ("dns-tcp", 53, "TCP"),
        ("metrics", 9153, "TCP"),
    ]


def test_each_node_has_its_slice_owned_by_its_node() -> None:
    planned = planned_slice(NODE_A, "uid-a")
    assert planned["metadata"]["name"] == "kube-dns-node-a"
    assert planned["metadata"]["namespace"] == "kube-system"
    assert planned["metadata"]["labels"]["kubernetes.io/service-name"] == "kube-dns"
    assert planned["metadata"]["ownerReferences"] == [
        {"apiVersion": "v1", "kind": "Node", "name": "node-a", "uid": "uid-a"}
    ]
    assert planned["addressType"] == "IPv4"
    assert planned["endpoints"] == [
        {
            "addresses": ["192.168.1.10"],
            "conditions": {"ready": True, "serving": True, "terminating": False},
            "nodeName": "node-a",
        }
    ]
    assert planned["ports"] == [
        {"name": "dns", "protocol": "UDP", "port": 10053},
        {"name": "dns-tcp", "protocol": "TCP", "port": 10053},
        {"name": "metrics", "protocol": "TCP", "port": 9153},
    ]
    without_metrics = planned_slice(DnsEndpoint("n", "fd00::1", 53))
    assert without_metrics["addressType"] == "IPv6" and len(without_metrics["ports"]) == 2
    assert "ownerReferences" not in without_metrics["metadata"]


def test_long_node_names_still_give_a_valid_slice_name() -> None:
    name = slice_name("n" * 253)
    assert len(name) <= 253 and name.startswith("kube-dns-nnn")
    assert slice_name("n" * 253) != slice_name("n" * 252 + "m")


def test_a_changed_slice_is_rewritten_keeping_what_others_added() -> None:
    current = planned_slice(NODE_A, "uid-a")
    current["metadata"]["resourceVersion"] = "7"
    current["metadata"]["labels"]["extra"] = "kept"
    assert not slice_differs(current, planned_slice(NODE_A, "uid-a"))
    moved = planned_slice(DnsEndpoint("node-a", "192.168.1.99", 10053, 9153), "uid-a")
    assert slice_differs(current, moved)
    updated = updated_slice(current, moved)
    assert updated["metadata"]["resourceVersion"] == "7"
    assert updated["metadata"]["labels"]["extra"] == "kept"
    assert updated["endpoints"][0]["addresses"] == ["192.168.1.99"]


def test_endpoints_gather_the_nodes_grouped_by_ports() -> None:
    # Groups in port order, addresses in address order: the same whichever node writes;
    # a node's endpoint marked not ready (its Node is not Ready) under notReadyAddresses.
    other_port = DnsEndpoint("node-c", "192.168.1.5", 5353)
    not_ready = planned_slice(DnsEndpoint("node-d", "192.168.1.6", 10053, 9153))
    not_ready["endpoints"][0]["conditions"]["ready"] = False
    subsets = endpoints_subsets(
        [planned_slice(NODE_B), planned_slice(NODE_A), planned_slice(other_port), not_ready]
    )
    assert subsets == [
        {
            "addresses": [{"ip": "192.168.1.5", "nodeName": "node-c"}],
            "ports": [
                {"name": "dns", "port": 5353, "protocol": "UDP"},
                {"name": "dns-tcp", "port": 5353, "protocol": "TCP"},
            ],
        },
        {
            "addresses": [
                {"ip": "192.168.1.10", "nodeName": "node-a"},
                {"ip": "192.168.1.11", "nodeName": "node-b"},
            ],
            "notReadyAddresses": [{"ip": "192.168.1.6", "nodeName": "node-d"}],
            "ports": [
                {"name": "dns", "port": 10053, "protocol": "UDP"},
                {"name": "dns-tcp", "port": 10053, "protocol": "TCP"},
                {"name": "metrics", "port": 9153, "protocol": "TCP"},
            ],
        },
    ]


def test_endpoints_are_written_only_when_they_change() -> None:
    subsets = endpoints_subsets([planned_slice(NODE_A)])
    created = planned_endpoints(None, subsets)
    assert created is not None
    assert created["metadata"]["labels"]["endpointslice.kubernetes.io/skip-mirror"] == "true"
    assert created["subsets"] == subsets
    assert planned_endpoints(created, subsets) is None
    emptied = planned_endpoints(created, [])
    assert emptied is not None and "subsets" not in emptied


def test_republishing_keeps_the_readiness_the_server_decided() -> None:
    current = planned_slice(NODE_A)
    current["endpoints"][0]["conditions"] = {"ready": False, "serving": False, "terminating": False}
    kept = with_current_conditions(planned_slice(NODE_A), current)
    assert not slice_differs(current, kept)
    # A new address starts ready; the server corrects it if the node is not.
    moved = with_current_conditions(
        planned_slice(DnsEndpoint("node-a", "192.168.1.99", 10053, 9153)), current
    )
    assert moved["endpoints"][0]["conditions"]["ready"] is True
    assert slice_differs(current, moved)
