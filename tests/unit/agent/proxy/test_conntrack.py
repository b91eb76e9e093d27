"""Stale UDP conntrack entries: which frontends changed, which entries go, and the
ctnetlink messages (built and parsed without a kernel)."""

from __future__ import annotations

import socket
import struct

from timonel.agent.proxy.conntrack import (
    CTA_TUPLE_ORIG,
    CTA_TUPLE_REPLY,
    NLA_F_NESTED,
    Flow,
    Frontend,
    _attribute,
    _attributes,
    delete_request,
    lost_endpoints,
    parse_flow,
    service_frontends,
    stale_flows,
)
from timonel.agent.proxy.rules import Endpoint, NodeView, ServicePort

UDP = 17


def dns_port(**changes: object) -> ServicePort:
    fields: dict[str, object] = {
        "namespace": "kube-system",
        "name": "dns",
        "port_name": "dns",
        "protocol": "UDP",
        "port": 53,
        "cluster_ip": "10.43.0.10",
    }
    fields.update(changes)
    return ServicePort(**fields)  # type: ignore[arg-type]


def test_frontends_of_udp_ports_only() -> None:
    udp = dns_port(node_port=30053, external_ips=("203.0.113.1",))
    tcp = dns_port(port_name="tcp", protocol="TCP")
    endpoints = {udp.key: [Endpoint("10.42.0.5", 5353), Endpoint("10.42.0.6", 5353, ready=False)]}
    found = service_frontends([udp, tcp], endpoints, NodeView("n", addresses=("192.168.1.2",)))
    serving = frozenset({"10.42.0.5:5353"})
    assert found == {
        Frontend(UDP, "10.43.0.10", 53): serving,
        Frontend(UDP, "203.0.113.1", 53): serving,
        Frontend(UDP, "192.168.1.2", 30053): serving,
        Frontend(UDP, "127.0.0.1", 30053): serving,
    }


def test_changed_when_an_endpoint_goes_or_the_first_arrives() -> None:
    a, b = Frontend(UDP, "10.43.0.10", 53), Frontend(UDP, "10.43.0.11", 53)
    before = {a: frozenset({"x:1", "y:1"}), b: frozenset()}
    assert lost_endpoints(before, {a: frozenset({"x:1", "y:1", "z:1"}), b: frozenset()}) == set()
    assert lost_endpoints(before, {a: frozenset({"x:1"}), b: frozenset()}) == {a}
    assert lost_endpoints(before, {a: before[a], b: frozenset({"z:1"})}) == {b}


def test_stale_flows_are_those_replied_by_other_than_the_endpoints() -> None:
    frontend = Frontend(UDP, "10.43.0.10", 53)
    frontends = {frontend: frozenset({"10.42.0.6:5353"})}

    def flow(reply: str, destination: str = "10.43.0.10", port: int = 53) -> Flow:
        return Flow(UDP, "10.42.0.9", destination, 40000, port, reply, 5353)

    old, current = flow("10.42.0.5"), flow("10.42.0.6")
    other_service = flow("10.42.0.5", destination="10.43.0.99")
    other_port = flow("10.42.0.5", port=54)
    found = stale_flows([old, current, other_service, other_port], frontends, {frontend})
    assert found == [old]
    assert stale_flows([old], frontends, set()) == []


def _tuple(source: str, destination: str, sport: int, dport: int) -> bytes:
    addresses = _attribute(1, socket.inet_aton(source)) + _attribute(
        2, socket.inet_aton(destination)
    )
    proto = (
        _attribute(1, bytes([UDP]))
        + _attribute(2, struct.pack("!H", sport))
        + _attribute(3, struct.pack("!H", dport))
    )
    return _attribute(1 | NLA_F_NESTED, addresses) + _attribute(2 | NLA_F_NESTED, proto)


def test_entries_parse_and_delete_requests_name_the_original_tuple() -> None:
    payload = _attribute(
        CTA_TUPLE_ORIG | NLA_F_NESTED, _tuple("10.42.0.9", "10.43.0.10", 40000, 53)
    ) + _attribute(CTA_TUPLE_REPLY | NLA_F_NESTED, _tuple("10.42.0.5", "10.42.0.9", 5353, 40000))
    flow = parse_flow(payload)
    assert flow == Flow(UDP, "10.42.0.9", "10.43.0.10", 40000, 53, "10.42.0.5", 5353)

    request = delete_request(flow, 7)
    length, kind, flags, sequence, _ = struct.unpack_from("=IHHII", request)
    assert length == len(request) and sequence == 7
    assert kind == (1 << 8) | 2 and flags == 0x1 | 0x4
    attributes = dict(_attributes(request[20:]))
    assert (
        parse_flow(
            _attribute(CTA_TUPLE_ORIG, attributes[CTA_TUPLE_ORIG])
            + _attribute(CTA_TUPLE_REPLY, _tuple("10.42.0.5", "10.42.0.9", 5353, 40000))
        )
        == flow
    )
