"""The proxy's ruleset against golden iptables-restore texts (testdata/NAME.input.yaml →
NAME.rules), kube-proxy's own expected output for its overall test translated to our chain
names, and the pieces: probabilities, session affinity, endpoint selection, hashes.

Set TIMONEL_UPDATE_GOLDEN=1 to rewrite the .rules files from the current output.
"""

from __future__ import annotations

import os
import re
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
import yaml

from timonel.agent.proxy.rules import (
    LARGE_CLUSTER_ENDPOINTS,
    Endpoint,
    NodeView,
    ProxyOptions,
    RenderCache,
    ServicePort,
    categorize_endpoints,
    endpoints_map,
    owns_chain,
    port_proto_hash,
    probability,
    render_rules,
    service_ports,
)

TESTDATA = Path(__file__).parent / "testdata"
CASES = sorted(p.name.removesuffix(".input.yaml") for p in TESTDATA.glob("*.input.yaml"))
OPTION_NAMES = {
    "clusterCIDR": "cluster_cidr",
    "localhostNodePorts": "localhost_node_ports",
    "masqueradeAll": "masquerade_all",
    "masqueradePodEgress": "masquerade_pod_egress",
}


def load_case(name: str) -> tuple[list[Any], list[Any], NodeView, ProxyOptions]:
    data = yaml.safe_load((TESTDATA / f"{name}.input.yaml").read_text())
    node = data["node"]
    view = NodeView(
        name=node["name"],
        pod_cidrs=tuple(node.get("podCIDRs", ())),
        addresses=tuple(node.get("addresses", ())),
        cluster_pod_cidrs=tuple(node.get("clusterPodCIDRs", ())),
    )
    options = ProxyOptions(**{OPTION_NAMES[k]: v for k, v in (data.get("options") or {}).items()})
    return data.get("services") or [], data.get("endpointSlices") or [], view, options


@pytest.mark.parametrize("name", CASES)
def test_golden_rules(name: str) -> None:
    services, slices, node, options = load_case(name)
    rendered = render_rules(services, slices, node, options).render()
    golden = TESTDATA / f"{name}.rules"
    if os.environ.get("TIMONEL_UPDATE_GOLDEN"):
        golden.write_text(rendered)
    assert rendered == golden.read_text()


@pytest.mark.parametrize("name", CASES)
def test_a_render_cache_changes_nothing(name: str) -> None:
    services, slices, node, options = load_case(name)
    for number, obj in enumerate([*services, *slices]):
        obj["metadata"]["resourceVersion"] = str(number + 1)
    cache = RenderCache()
    first = render_rules(services, slices, node, options, cache=cache).render()
    again = render_rules(services, slices, node, options, cache=cache).render()
    assert first == again == render_rules(services, slices, node, options).render()


# -- kube-proxy's TestOverallIPTablesRules ------------------------------------------------------


def _service(namespace: str, name: str, status: Any = None, **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"namespace": namespace, "name": name},
        "spec": spec,
        "status": status or {},
    }


def _slice(namespace: str, name: str, endpoints: list[Any]) -> dict[str, Any]:
    return {
        "metadata": {
            "namespace": namespace,
            "name": f"{name}-1",
            "labels": {"kubernetes.io/service-name": name},
        },
        "addressType": "IPv4",
        "endpoints": endpoints,
        "ports": [{"name": "p80", "port": 80, "protocol": "TCP"}],
    }


def _p80(**extra: Any) -> list[dict[str, Any]]:
    return [{"name": "p80", "port": 80, "protocol": "TCP", **extra}]


KUBE_SERVICES = [
    _service("ns1", "svc1", clusterIP="172.30.0.41", ports=_p80()),
    _service(
        "ns2",
        "svc2",
        {"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}]}},
        type="LoadBalancer",
        externalTrafficPolicy="Local",
        clusterIP="172.30.0.42",
        ports=_p80(nodePort=3001),
        externalIPs=["192.168.99.22"],
        healthCheckNodePort=30000,
    ),
    _service("ns3", "svc3", type="NodePort", clusterIP="172.30.0.43", ports=_p80(nodePort=3003)),
    _service(
        "ns4",
        "svc4",
        type="NodePort",
        clusterIP="172.30.0.44",
        externalIPs=["192.168.99.33"],
        ports=_p80(targetPort=80),
    ),
    _service(
        "ns5",
        "svc5",
        {"loadBalancer": {"ingress": [{"ip": "5.6.7.8"}]}},
        type="LoadBalancer",
        externalTrafficPolicy="Cluster",
        clusterIP="172.30.0.45",
        ports=_p80(nodePort=3002),
        healthCheckNodePort=30000,
        loadBalancerSourceRanges=[" 203.0.113.0/25"],
        sessionAffinity="ClientIP",
        sessionAffinityConfig={"clientIP": {"timeoutSeconds": 10800}},
    ),
    _service("ns6", "svc6", type="ClusterIP", clusterIP="172.30.0.46", ports=_p80(targetPort=80)),
]
KUBE_SLICES = [
    _slice("ns1", "svc1", [{"addresses": ["10.180.0.1"]}]),
    _slice("ns2", "svc2", [{"addresses": ["10.180.0.2"]}]),
    _slice("ns3", "svc3", [{"addresses": ["10.180.0.3"]}]),
    _slice(
        "ns4",
        "svc4",
        [{"addresses": ["10.180.0.4"]}, {"addresses": ["10.180.0.5"], "nodeName": "test-node"}],
    ),
    _slice("ns5", "svc5", [{"addresses": ["10.180.0.3"]}]),
]

# kube-proxy's expected text (pkg/proxy/iptables/proxier_test.go, TestOverallIPTablesRules)
# with KUBE- → TIMONEL-, without its nfacct counters, with --random-fully (the fake iptables
# of that test lacks it) and with the pod egress masquerade that replaces the CNI's ipMasq.
KUBE_EXPECTED = """
*filter
:TIMONEL-NODEPORTS - [0:0]
:TIMONEL-SERVICES - [0:0]
:TIMONEL-EXTERNAL-SERVICES - [0:0]
:TIMONEL-FIREWALL - [0:0]
:TIMONEL-FORWARD - [0:0]
:TIMONEL-PROXY-FIREWALL - [0:0]
-A TIMONEL-NODEPORTS -m comment --comment "ns2/svc2:p80 health check node port" -m tcp -p tcp --dport 30000 -j ACCEPT
-A TIMONEL-SERVICES -m comment --comment "ns6/svc6:p80 has no endpoints" -m tcp -p tcp -d 172.30.0.46 --dport 80 -j REJECT
-A TIMONEL-EXTERNAL-SERVICES -m comment --comment "ns2/svc2:p80 has no local endpoints" -m tcp -p tcp -d 192.168.99.22 --dport 80 -j DROP
-A TIMONEL-EXTERNAL-SERVICES -m comment --comment "ns2/svc2:p80 has no local endpoints" -m tcp -p tcp -d 1.2.3.4 --dport 80 -j DROP
-A TIMONEL-EXTERNAL-SERVICES -m comment --comment "ns2/svc2:p80 has no local endpoints" -m addrtype --dst-type LOCAL -m tcp -p tcp --dport 3001 -j DROP
-A TIMONEL-FIREWALL -m comment --comment "block incoming localnet connections" -d 127.0.0.0/8 ! -s 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP
-A TIMONEL-FORWARD -m conntrack --ctstate INVALID -j DROP
-A TIMONEL-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT
-A TIMONEL-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A TIMONEL-PROXY-FIREWALL -m comment --comment "ns5/svc5:p80 traffic not accepted by TIMONEL-FW-NUKIZ6OKUXPJNT4C" -m tcp -p tcp -d 5.6.7.8 --dport 80 -j DROP
COMMIT
*nat
:TIMONEL-NODEPORTS - [0:0]
:TIMONEL-SERVICES - [0:0]
:TIMONEL-EXT-4SW47YFZTEDKD3PK - [0:0]
:TIMONEL-EXT-GNZBNJ2PO5MGZ6GT - [0:0]
:TIMONEL-EXT-NUKIZ6OKUXPJNT4C - [0:0]
:TIMONEL-EXT-X27LE4BHSL4DOUIK - [0:0]
:TIMONEL-FW-NUKIZ6OKUXPJNT4C - [0:0]
:TIMONEL-MARK-MASQ - [0:0]
:TIMONEL-POD-MASQ - [0:0]
:TIMONEL-POSTROUTING - [0:0]
:TIMONEL-SEP-C6EBXVWJJZMIWKLZ - [0:0]
:TIMONEL-SEP-I77PXRDZVX7PMWMN - [0:0]
:TIMONEL-SEP-OYPFS5VJICHGATKP - [0:0]
:TIMONEL-SEP-RS4RBKLTHTF2IUXJ - [0:0]
:TIMONEL-SEP-SXIVWICOYRO3J4NJ - [0:0]
:TIMONEL-SEP-UKSFD7AGPMPPLUHC - [0:0]
:TIMONEL-SVC-4SW47YFZTEDKD3PK - [0:0]
:TIMONEL-SVC-GNZBNJ2PO5MGZ6GT - [0:0]
:TIMONEL-SVC-NUKIZ6OKUXPJNT4C - [0:0]
:TIMONEL-SVC-X27LE4BHSL4DOUIK - [0:0]
:TIMONEL-SVC-XPGD46QRK7WJZT7O - [0:0]
-A TIMONEL-NODEPORTS -m comment --comment ns2/svc2:p80 -m tcp -p tcp --dport 3001 -j TIMONEL-EXT-GNZBNJ2PO5MGZ6GT
-A TIMONEL-NODEPORTS -m comment --comment ns3/svc3:p80 -m tcp -p tcp --dport 3003 -j TIMONEL-EXT-X27LE4BHSL4DOUIK
-A TIMONEL-NODEPORTS -m comment --comment ns5/svc5:p80 -m tcp -p tcp --dport 3002 -j TIMONEL-EXT-NUKIZ6OKUXPJNT4C
-A TIMONEL-SERVICES -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 -j TIMONEL-SVC-XPGD46QRK7WJZT7O
-A TIMONEL-SERVICES -m comment --comment "ns2/svc2:p80 cluster IP" -m tcp -p tcp -d 172.30.0.42 --dport 80 -j TIMONEL-SVC-GNZBNJ2PO5MGZ6GT
-A TIMONEL-SERVICES -m comment --comment "ns2/svc2:p80 external IP" -m tcp -p tcp -d 192.168.99.22 --dport 80 -j TIMONEL-EXT-GNZBNJ2PO5MGZ6GT
-A TIMONEL-SERVICES -m comment --comment "ns2/svc2:p80 loadbalancer IP" -m tcp -p tcp -d 1.2.3.4 --dport 80 -j TIMONEL-EXT-GNZBNJ2PO5MGZ6GT
-A TIMONEL-SERVICES -m comment --comment "ns3/svc3:p80 cluster IP" -m tcp -p tcp -d 172.30.0.43 --dport 80 -j TIMONEL-SVC-X27LE4BHSL4DOUIK
-A TIMONEL-SERVICES -m comment --comment "ns4/svc4:p80 cluster IP" -m tcp -p tcp -d 172.30.0.44 --dport 80 -j TIMONEL-SVC-4SW47YFZTEDKD3PK
-A TIMONEL-SERVICES -m comment --comment "ns4/svc4:p80 external IP" -m tcp -p tcp -d 192.168.99.33 --dport 80 -j TIMONEL-EXT-4SW47YFZTEDKD3PK
-A TIMONEL-SERVICES -m comment --comment "ns5/svc5:p80 cluster IP" -m tcp -p tcp -d 172.30.0.45 --dport 80 -j TIMONEL-SVC-NUKIZ6OKUXPJNT4C
-A TIMONEL-SERVICES -m comment --comment "ns5/svc5:p80 loadbalancer IP" -m tcp -p tcp -d 5.6.7.8 --dport 80 -j TIMONEL-FW-NUKIZ6OKUXPJNT4C
-A TIMONEL-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j TIMONEL-NODEPORTS
-A TIMONEL-EXT-4SW47YFZTEDKD3PK -m comment --comment "masquerade traffic for ns4/svc4:p80 external destinations" -j TIMONEL-MARK-MASQ
-A TIMONEL-EXT-4SW47YFZTEDKD3PK -j TIMONEL-SVC-4SW47YFZTEDKD3PK
-A TIMONEL-EXT-GNZBNJ2PO5MGZ6GT -m comment --comment "pod traffic for ns2/svc2:p80 external destinations" -s 10.0.0.0/8 -j TIMONEL-SVC-GNZBNJ2PO5MGZ6GT
-A TIMONEL-EXT-GNZBNJ2PO5MGZ6GT -m comment --comment "masquerade LOCAL traffic for ns2/svc2:p80 external destinations" -m addrtype --src-type LOCAL -j TIMONEL-MARK-MASQ
-A TIMONEL-EXT-GNZBNJ2PO5MGZ6GT -m comment --comment "route LOCAL traffic for ns2/svc2:p80 external destinations" -m addrtype --src-type LOCAL -j TIMONEL-SVC-GNZBNJ2PO5MGZ6GT
-A TIMONEL-EXT-NUKIZ6OKUXPJNT4C -m comment --comment "masquerade traffic for ns5/svc5:p80 external destinations" -j TIMONEL-MARK-MASQ
-A TIMONEL-EXT-NUKIZ6OKUXPJNT4C -j TIMONEL-SVC-NUKIZ6OKUXPJNT4C
-A TIMONEL-EXT-X27LE4BHSL4DOUIK -m comment --comment "masquerade traffic for ns3/svc3:p80 external destinations" -j TIMONEL-MARK-MASQ
-A TIMONEL-EXT-X27LE4BHSL4DOUIK -j TIMONEL-SVC-X27LE4BHSL4DOUIK
-A TIMONEL-FW-NUKIZ6OKUXPJNT4C -m comment --comment "ns5/svc5:p80 loadbalancer IP" -s 203.0.113.0/25 -j TIMONEL-EXT-NUKIZ6OKUXPJNT4C
-A TIMONEL-FW-NUKIZ6OKUXPJNT4C -m comment --comment "other traffic to ns5/svc5:p80 will be dropped by TIMONEL-PROXY-FIREWALL"
-A TIMONEL-MARK-MASQ -j MARK --or-mark 0x4000
-A TIMONEL-POD-MASQ -d 10.0.0.0/8 -j RETURN
-A TIMONEL-POD-MASQ -d 224.0.0.0/4 -j RETURN
-A TIMONEL-POD-MASQ -m comment --comment "masquerade pod traffic leaving the cluster" -j MASQUERADE --random-fully
-A TIMONEL-POSTROUTING -m comment --comment "pod traffic leaving the cluster" -s 10.0.0.0/8 -j TIMONEL-POD-MASQ
-A TIMONEL-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
-A TIMONEL-POSTROUTING -j MARK --xor-mark 0x4000
-A TIMONEL-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully
-A TIMONEL-SEP-C6EBXVWJJZMIWKLZ -m comment --comment ns4/svc4:p80 -s 10.180.0.5 -j TIMONEL-MARK-MASQ
-A TIMONEL-SEP-C6EBXVWJJZMIWKLZ -m comment --comment ns4/svc4:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.5:80
-A TIMONEL-SEP-I77PXRDZVX7PMWMN -m comment --comment ns5/svc5:p80 -s 10.180.0.3 -j TIMONEL-MARK-MASQ
-A TIMONEL-SEP-I77PXRDZVX7PMWMN -m comment --comment ns5/svc5:p80 -m recent --name TIMONEL-SEP-I77PXRDZVX7PMWMN --set -m tcp -p tcp -j DNAT --to-destination 10.180.0.3:80
-A TIMONEL-SEP-OYPFS5VJICHGATKP -m comment --comment ns3/svc3:p80 -s 10.180.0.3 -j TIMONEL-MARK-MASQ
-A TIMONEL-SEP-OYPFS5VJICHGATKP -m comment --comment ns3/svc3:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.3:80
-A TIMONEL-SEP-RS4RBKLTHTF2IUXJ -m comment --comment ns2/svc2:p80 -s 10.180.0.2 -j TIMONEL-MARK-MASQ
-A TIMONEL-SEP-RS4RBKLTHTF2IUXJ -m comment --comment ns2/svc2:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.2:80
-A TIMONEL-SEP-SXIVWICOYRO3J4NJ -m comment --comment ns1/svc1:p80 -s 10.180.0.1 -j TIMONEL-MARK-MASQ
-A TIMONEL-SEP-SXIVWICOYRO3J4NJ -m comment --comment ns1/svc1:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.1:80
-A TIMONEL-SEP-UKSFD7AGPMPPLUHC -m comment --comment ns4/svc4:p80 -s 10.180.0.4 -j TIMONEL-MARK-MASQ
-A TIMONEL-SEP-UKSFD7AGPMPPLUHC -m comment --comment ns4/svc4:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.4:80
-A TIMONEL-SVC-4SW47YFZTEDKD3PK -m comment --comment "ns4/svc4:p80 cluster IP" -m tcp -p tcp -d 172.30.0.44 --dport 80 ! -s 10.0.0.0/8 -j TIMONEL-MARK-MASQ
-A TIMONEL-SVC-4SW47YFZTEDKD3PK -m comment --comment "ns4/svc4:p80 -> 10.180.0.4:80" -m statistic --mode random --probability 0.5000000000 -j TIMONEL-SEP-UKSFD7AGPMPPLUHC
-A TIMONEL-SVC-4SW47YFZTEDKD3PK -m comment --comment "ns4/svc4:p80 -> 10.180.0.5:80" -j TIMONEL-SEP-C6EBXVWJJZMIWKLZ
-A TIMONEL-SVC-GNZBNJ2PO5MGZ6GT -m comment --comment "ns2/svc2:p80 cluster IP" -m tcp -p tcp -d 172.30.0.42 --dport 80 ! -s 10.0.0.0/8 -j TIMONEL-MARK-MASQ
-A TIMONEL-SVC-GNZBNJ2PO5MGZ6GT -m comment --comment "ns2/svc2:p80 -> 10.180.0.2:80" -j TIMONEL-SEP-RS4RBKLTHTF2IUXJ
-A TIMONEL-SVC-NUKIZ6OKUXPJNT4C -m comment --comment "ns5/svc5:p80 cluster IP" -m tcp -p tcp -d 172.30.0.45 --dport 80 ! -s 10.0.0.0/8 -j TIMONEL-MARK-MASQ
-A TIMONEL-SVC-NUKIZ6OKUXPJNT4C -m comment --comment "ns5/svc5:p80 -> 10.180.0.3:80" -m recent --name TIMONEL-SEP-I77PXRDZVX7PMWMN --rcheck --seconds 10800 --reap -j TIMONEL-SEP-I77PXRDZVX7PMWMN
-A TIMONEL-SVC-NUKIZ6OKUXPJNT4C -m comment --comment "ns5/svc5:p80 -> 10.180.0.3:80" -j TIMONEL-SEP-I77PXRDZVX7PMWMN
-A TIMONEL-SVC-X27LE4BHSL4DOUIK -m comment --comment "ns3/svc3:p80 cluster IP" -m tcp -p tcp -d 172.30.0.43 --dport 80 ! -s 10.0.0.0/8 -j TIMONEL-MARK-MASQ
-A TIMONEL-SVC-X27LE4BHSL4DOUIK -m comment --comment "ns3/svc3:p80 -> 10.180.0.3:80" -j TIMONEL-SEP-OYPFS5VJICHGATKP
-A TIMONEL-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 ! -s 10.0.0.0/8 -j TIMONEL-MARK-MASQ
-A TIMONEL-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 -> 10.180.0.1:80" -j TIMONEL-SEP-SXIVWICOYRO3J4NJ
COMMIT
"""


def normalized(text: str) -> dict[str, dict[str, list[str]]]:
    """Tables → chains → rules in order; chain order does not matter (kube-proxy writes
    chains in map order, its test sorts them)."""
    tables: dict[str, dict[str, list[str]]] = {}
    chains: dict[str, list[str]] = {}
    for line in text.strip().splitlines():
        if line.startswith("*"):
            chains = tables.setdefault(line[1:], {})
        elif line.startswith(":"):
            chains.setdefault(line[1:].split()[0], [])
        elif line.startswith("-A "):
            name, _, rule = line[3:].partition(" ")
            chains.setdefault(name, []).append(rule)
    return tables


def test_kube_proxys_overall_rules_come_out_the_same() -> None:
    rendered = render_rules(
        KUBE_SERVICES,
        KUBE_SLICES,
        NodeView("test-node", addresses=("192.168.0.2",)),
        ProxyOptions(cluster_cidr="10.0.0.0/8"),
    ).render()
    assert normalized(rendered) == normalized(KUBE_EXPECTED)


# -- load balancing ----------------------------------------------------------------------------


def _endpoints(count: int, node: str = "node-a") -> list[Endpoint]:
    return [Endpoint(f"10.42.0.{i + 10}", 8080, node_name=node) for i in range(count)]


def _service_port(**changes: Any) -> ServicePort:
    fields: dict[str, Any] = {
        "namespace": "default",
        "name": "web",
        "port_name": "http",
        "protocol": "TCP",
        "port": 80,
        "cluster_ip": "10.43.0.10",
    }
    fields.update(changes)
    return ServicePort(**fields)


def _spec_objects(count: int, **spec: Any) -> tuple[list[Any], list[Any]]:
    service = {
        "metadata": {"namespace": "default", "name": "web"},
        "spec": {
            "clusterIP": "10.43.0.10",
            "ports": [{"name": "http", "port": 80, "protocol": "TCP"}],
            **spec,
        },
    }
    endpoint_slice = {
        "metadata": {
            "namespace": "default",
            "name": "web-1",
            "labels": {"kubernetes.io/service-name": "web"},
        },
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
        "endpoints": [
            {"addresses": [f"10.42.{i // 200}.{i % 200 + 10}"], "nodeName": "node-a"}
            for i in range(count)
        ],
    }
    return [service], [endpoint_slice]


def _chain_rules(text: str, prefix: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(f"-A {prefix}")]


@pytest.mark.parametrize("count", [1, 2, 3, 5, 10, 37])
def test_every_endpoint_is_equally_likely(count: int) -> None:
    services, slices = _spec_objects(count)
    text = render_rules(services, slices, NodeView("node-a")).render()
    rules = _chain_rules(text, "TIMONEL-SVC-")
    balancing = [r for r in rules if "-j TIMONEL-SEP-" in r]
    assert len(balancing) == count
    chances = [
        Fraction(match.group(1)) if (match := re.search(r"--probability (\S+)", r)) else None
        for r in balancing
    ]
    # Rule i of n matches 1/(n-i) of what reaches it; the last takes everything left.
    assert chances[-1] is None
    assert all(c == Fraction(f"{1 / (count - i):.10f}") for i, c in enumerate(chances[:-1]))
    remaining = Fraction(1)
    for chance in chances:
        taken = remaining * (chance if chance is not None else 1)
        assert abs(taken - Fraction(1, count)) < Fraction(1, 10**8)
        remaining -= taken
    assert remaining == 0


def test_probability_is_written_with_ten_decimals() -> None:
    assert probability(2) == "0.5000000000"
    assert probability(3) == "0.3333333333"
    assert probability(7) == "0.1428571429"


def test_session_affinity_checks_recent_clients_before_balancing() -> None:
    services, slices = _spec_objects(
        3, sessionAffinity="ClientIP", sessionAffinityConfig={"clientIP": {"timeoutSeconds": 77}}
    )
    text = render_rules(services, slices, NodeView("node-a")).render()
    svc = _chain_rules(text, "TIMONEL-SVC-")
    sticky = [r for r in svc if "-m recent" in r]
    first_random = next(i for i, r in enumerate(svc) if "statistic" in r)
    assert len(sticky) == 3
    assert all(svc.index(r) < first_random for r in sticky)
    for rule in sticky:
        target = rule.rsplit("-j ", 1)[1]
        assert f"-m recent --name {target} --rcheck --seconds 77 --reap" in rule
        sep = _chain_rules(text, f"{target} ")
        assert any(f"-m recent --name {target} --set" in r and "DNAT" in r for r in sep)


def test_affinity_timeout_defaults_to_three_hours() -> None:
    services, _ = _spec_objects(1, sessionAffinity="ClientIP")
    assert service_ports(services[0])[0].sticky_seconds == 10800
    services, _ = _spec_objects(1)
    assert service_ports(services[0])[0].sticky_seconds is None


def test_hairpin_traffic_is_masqueraded_by_every_endpoint_chain() -> None:
    services, slices = _spec_objects(2)
    text = render_rules(services, slices, NodeView("node-a")).render()
    for ip in ("10.42.0.10", "10.42.0.11"):
        assert any(f"-s {ip} -j TIMONEL-MARK-MASQ" in r for r in _chain_rules(text, "TIMONEL-SEP-"))


def test_many_endpoints_drop_the_per_endpoint_comments() -> None:
    services, slices = _spec_objects(LARGE_CLUSTER_ENDPOINTS + 1)
    text = render_rules(services, slices, NodeView("node-a")).render()
    seps = _chain_rules(text, "TIMONEL-SEP-")
    assert seps and not any("--comment" in r for r in seps)
    assert "cluster IP" in text
    services, slices = _spec_objects(LARGE_CLUSTER_ENDPOINTS)
    text = render_rules(services, slices, NodeView("node-a")).render()
    assert all("--comment" in r for r in _chain_rules(text, "TIMONEL-SEP-"))


def test_localhost_nodeports_can_be_turned_off() -> None:
    services, slices = _spec_objects(1, type="NodePort")
    services[0]["spec"]["ports"][0]["nodePort"] = 30001
    text = render_rules(
        services, slices, NodeView("node-a"), ProxyOptions(localhost_node_ports=False)
    ).render()
    assert "-m addrtype --dst-type LOCAL ! -d 127.0.0.0/8 -j TIMONEL-NODEPORTS" in text
    assert "TIMONEL-FIREWALL" not in text


def test_masquerade_all_marks_every_cluster_ip_connection() -> None:
    services, slices = _spec_objects(1)
    text = render_rules(
        services,
        slices,
        NodeView("node-a", pod_cidrs=("10.42.0.0/24",)),
        ProxyOptions(masquerade_all=True),
    ).render()
    svc = _chain_rules(text, "TIMONEL-SVC-")
    assert svc[0].endswith("--dport 80 -j TIMONEL-MARK-MASQ")


# -- endpoints -------------------------------------------------------------------------------


def test_categorize_prefers_ready_and_falls_back_to_serving_terminating() -> None:
    port = _service_port()
    ready = Endpoint("10.42.0.1", 80)
    terminating = Endpoint("10.42.0.2", 80, ready=False, serving=True, terminating=True)
    gone = Endpoint("10.42.0.3", 80, ready=False, serving=False, terminating=True)
    both = categorize_endpoints([ready, terminating, gone], port, "node-a")
    assert both.cluster == (ready,) and both.has_any
    fallback = categorize_endpoints([terminating, gone], port, "node-a")
    assert fallback.cluster == (terminating,) and fallback.has_any
    none = categorize_endpoints([gone], port, "node-a")
    assert none.cluster == () and not none.has_any


def test_categorize_local_policies() -> None:
    here = Endpoint("10.42.0.1", 80, node_name="node-a")
    there = Endpoint("10.42.1.1", 80, node_name="node-b")
    external_local = _service_port(node_port=30000, external_policy_local=True)
    found = categorize_endpoints([here, there], external_local, "node-a")
    assert found.cluster == (here, there)
    assert found.local == (here,)
    assert found.reachable == (here, there)
    internal_local = _service_port(internal_policy_local=True)
    found = categorize_endpoints([there], internal_local, "node-a")
    assert found.cluster == () and found.local == () and found.has_any


def test_endpoints_merge_slices_and_keep_the_most_usable_duplicate() -> None:
    def endpoint_slice(name: str, ready: bool) -> dict[str, Any]:
        return {
            "metadata": {
                "namespace": "ns",
                "name": name,
                "labels": {"kubernetes.io/service-name": "svc"},
            },
            "addressType": "IPv4",
            "ports": [{"name": "p", "port": 80, "protocol": "UDP"}],
            "endpoints": [
                {"addresses": ["10.0.0.2"], "conditions": {"ready": ready}},
                {"addresses": [f"10.0.1.{1 if ready else 2}"]},
            ],
        }

    found = endpoints_map([endpoint_slice("a", False), endpoint_slice("b", True)])
    endpoints = found[("ns", "svc", "p", "UDP")]
    assert [e.address for e in endpoints] == ["10.0.0.2:80", "10.0.1.1:80", "10.0.1.2:80"]
    assert endpoints[0].ready


def test_chain_names_are_kube_proxys_hashes() -> None:
    assert port_proto_hash("ns1/svc1:p80", "TCP") == "XPGD46QRK7WJZT7O"
    assert owns_chain("TIMONEL-SVC-XPGD46QRK7WJZT7O")
    assert owns_chain("TIMONEL-SERVICES")
    assert not owns_chain("KUBE-SERVICES")
    assert not owns_chain("TIMONEL-NETPOL")


def test_load_balancer_ingress_with_proxy_ip_mode_is_not_captured() -> None:
    service = {
        "metadata": {"namespace": "a", "name": "b"},
        "spec": {
            "type": "LoadBalancer",
            "clusterIP": "10.43.0.1",
            "ports": [{"port": 80, "nodePort": 30080}],
        },
        "status": {
            "loadBalancer": {
                "ingress": [
                    {"ip": "192.0.2.1", "ipMode": "VIP"},
                    {"ip": "192.0.2.2", "ipMode": "Proxy"},
                ]
            }
        },
    }
    (port,) = service_ports(service)
    assert port.load_balancer_ips == ("192.0.2.1",)
    assert port.node_port == 30080
    service["spec"]["type"] = "ClusterIP"
    (port,) = service_ports(service)
    assert port.load_balancer_ips == () and port.node_port == 0
