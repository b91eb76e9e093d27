"""Cluster DNS answers: queries → answers, per the Kubernetes DNS specification and
CoreDNS's `kubernetes` plugin."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from timonel.agent.dns.records import (
    FORWARD,
    Answer,
    ClusterIndex,
    Zone,
    build_index,
    lookup,
)
from timonel.agent.dns.wire import (
    RCODE_NOERROR,
    RCODE_NXDOMAIN,
    TYPE_A,
    TYPE_AAAA,
    TYPE_CNAME,
    TYPE_MX,
    TYPE_NS,
    TYPE_PTR,
    TYPE_SOA,
    TYPE_SRV,
    TYPE_TXT,
    Soa,
    Srv,
)

ZONE = Zone(domain="cluster.local", nameservers=("10.43.0.10",))


def service(name: str, namespace: str = "default", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def endpoint_slice(
    name: str,
    service_name: str,
    endpoints: list[dict[str, Any]],
    ports: list[dict[str, Any]] | None = None,
    namespace: str = "default",
    address_type: str = "IPv4",
) -> dict[str, Any]:
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"kubernetes.io/service-name": service_name},
        },
        "addressType": address_type,
        "endpoints": endpoints,
        "ports": ports if ports is not None else [],
    }


def endpoint(ip: str, *, ready: bool | None = True, hostname: str = "") -> dict[str, Any]:
    item: dict[str, Any] = {"addresses": [ip]}
    if ready is not None:
        item["conditions"] = {"ready": ready}
    if hostname:
        item["hostname"] = hostname
    return item


def namespace(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


HTTP = {"name": "http", "port": 80, "protocol": "TCP"}


def cluster() -> ClusterIndex:
    index = build_index(
        services=[
            service(
                "kubernetes",
                clusterIP="10.43.0.1",
                clusterIPs=["10.43.0.1"],
                ports=[{"name": "https", "port": 443, "protocol": "TCP"}],
            ),
            service(
                "web",
                clusterIP="10.43.0.20",
                ports=[HTTP, {"name": "dns", "port": 53, "protocol": "UDP"}, {"port": 9000}],
            ),
            service(
                "dual",
                clusterIP="10.43.0.30",
                clusterIPs=["10.43.0.30", "fd00:43::30"],
                ports=[HTTP],
            ),
            service("db", clusterIP="None", ports=[{"name": "pg", "port": 5432}]),
            service("empty", clusterIP="None"),
            service("portless", clusterIP="None"),
            service("search", type="ExternalName", externalName="search.example.com."),
            service("alias", type="ExternalName", externalName="web.default.svc.cluster.local"),
            service("byip", type="ExternalName", externalName="192.0.2.10"),
        ],
        endpoint_slices=[
            endpoint_slice(
                "db-abc",
                "db",
                [
                    endpoint("10.42.0.5", hostname="db-0"),
                    endpoint("10.42.1.6", hostname="db-1"),
                    endpoint("10.42.2.7", ready=False, hostname="db-2"),
                    endpoint("10.42.3.8", ready=None),
                ],
                [{"name": "pg", "port": 5432, "protocol": "TCP"}],
            ),
            endpoint_slice("portless-x", "portless", [endpoint("10.42.0.9")]),
            endpoint_slice("web-x", "web", [endpoint("10.42.0.11")], [HTTP]),
            endpoint_slice("empty-x", "empty", [endpoint("10.42.0.12", ready=False)]),
        ],
        namespaces=[namespace("default"), namespace("kube-system"), namespace("other")],
    )
    index.serial = 42
    return index


def ask(name: str, qtype: int = TYPE_A, index: ClusterIndex | None = None) -> Answer:
    return lookup(index or cluster(), ZONE, name, qtype)


def data(answer: Answer) -> list[Any]:
    return [record.data for record in answer.answers]


def is_nxdomain(answer: Answer) -> bool:
    return (
        answer.rcode == RCODE_NXDOMAIN
        and not answer.answers
        and [r.type for r in answer.authorities] == [TYPE_SOA]
    )


def is_nodata(answer: Answer) -> bool:
    return (
        answer.rcode == RCODE_NOERROR
        and not answer.answers
        and not answer.forward
        and [r.type for r in answer.authorities] == [TYPE_SOA]
    )


# -- services -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "qtype", "expected"),
    [
        ("kubernetes.default.svc.cluster.local", TYPE_A, ["10.43.0.1"]),
        ("KUBERNETES.Default.SVC.cluster.local.", TYPE_A, ["10.43.0.1"]),
        ("web.default.svc.cluster.local", TYPE_A, ["10.43.0.20"]),
        ("dual.default.svc.cluster.local", TYPE_A, ["10.43.0.30"]),
        ("dual.default.svc.cluster.local", TYPE_AAAA, ["fd00:43::30"]),
        # headless: every ready endpoint (ready unset counts as ready), none of the others
        ("db.default.svc.cluster.local", TYPE_A, ["10.42.0.5", "10.42.1.6", "10.42.3.8"]),
        ("portless.default.svc.cluster.local", TYPE_A, ["10.42.0.9"]),
        # an endpoint by hostname, or by its dashed address
        ("db-1.db.default.svc.cluster.local", TYPE_A, ["10.42.1.6"]),
        ("10-42-3-8.db.default.svc.cluster.local", TYPE_A, ["10.42.3.8"]),
        ("10-42-0-11.web.default.svc.cluster.local", TYPE_A, ["10.42.0.11"]),
        # pods, insecure: the address in the name
        ("10-42-0-99.default.pod.cluster.local", TYPE_A, ["10.42.0.99"]),
        ("fd00-42--5.other.pod.cluster.local", TYPE_AAAA, ["fd00:42::5"]),
        # the zone's own names
        ("ns.dns.cluster.local", TYPE_A, ["10.43.0.10"]),
        ("dns-version.cluster.local", TYPE_TXT, [(b"1.1.0",)]),
    ],
)
def test_positive_answers(name: str, qtype: int, expected: list[Any]) -> None:
    answer = ask(name, qtype)
    assert answer.rcode == RCODE_NOERROR and not answer.forward
    assert sorted(data(answer), key=str) == sorted(expected, key=str)
    assert all(record.name == name.rstrip(".") for record in answer.answers)
    assert all(record.type == qtype for record in answer.answers)
    if qtype != TYPE_TXT:
        assert {record.ttl for record in answer.answers} == {5}


def test_dns_version_ttl_is_eight_hours() -> None:
    assert ask("dns-version.cluster.local", TYPE_TXT).answers[0].ttl == 28800


@pytest.mark.parametrize(
    "name",
    [
        "missing.default.svc.cluster.local",
        "web.nonexistent.svc.cluster.local",  # no such namespace
        "10-42-0-1.nonexistent.pod.cluster.local",
        "empty.default.svc.cluster.local",  # headless without ready endpoints
        "db-2.db.default.svc.cluster.local",  # not ready
        "nobody.db.default.svc.cluster.local",
        "a.b.c.d.web.default.svc.cluster.local",  # too many labels
        "web.default.cluster.local",  # neither svc nor pod
        "foo.cluster.local",
        "not-an-ip.default.pod.cluster.local",
        "1-2-3-4.x.default.pod.cluster.local",
        "_http._udp.web.default.svc.cluster.local",  # wrong protocol
        "_nope._tcp.web.default.svc.cluster.local",
        "_http._tcp.search.default.svc.cluster.local",  # ExternalName has no ports
        "byip.default.svc.cluster.local",  # ExternalName that is an address: no CNAME
    ],
)
def test_unknown_cluster_names_are_nxdomain(name: str) -> None:
    answer = ask(name)
    assert is_nxdomain(answer), answer
    soa = answer.authorities[0]
    assert soa.name == "cluster.local" and soa.ttl == 5
    assert soa.data == Soa(
        "ns.dns.cluster.local", "hostmaster.cluster.local", 42, 7200, 1800, 86400, 5
    )


@pytest.mark.parametrize(
    ("name", "qtype"),
    [
        ("kubernetes.default.svc.cluster.local", TYPE_AAAA),  # IPv4 only
        ("kubernetes.default.svc.cluster.local", TYPE_TXT),
        ("kubernetes.default.svc.cluster.local", TYPE_MX),
        ("kubernetes.default.svc.cluster.local", TYPE_CNAME),
        ("10-42-0-99.default.pod.cluster.local", TYPE_AAAA),
        ("default.svc.cluster.local", TYPE_A),  # names between the zone and services exist
        ("svc.cluster.local", TYPE_A),
        ("other.pod.cluster.local", TYPE_A),
        ("cluster.local", TYPE_A),
        ("dns-version.cluster.local", TYPE_A),
        ("search.default.svc.cluster.local", TYPE_SRV),  # CoreDNS: no SRV for ExternalName
    ],
)
def test_names_without_records_of_the_type_are_nodata(name: str, qtype: int) -> None:
    assert is_nodata(ask(name, qtype))


def test_names_outside_the_cluster_are_forwarded() -> None:
    for name in ("example.com", "cluster.local.example.com", "local", "svc.cluster.localx"):
        assert ask(name) is FORWARD


# -- SRV --------------------------------------------------------------------------------------


def test_srv_for_a_named_port_points_at_the_service() -> None:
    answer = ask("_http._tcp.web.default.svc.cluster.local", TYPE_SRV)
    assert data(answer) == [Srv(0, 100, 80, "web.default.svc.cluster.local")]
    assert [(r.name, r.type, r.data) for r in answer.additionals] == [
        ("web.default.svc.cluster.local", TYPE_A, "10.43.0.20")
    ]
    udp = ask("_dns._udp.web.default.svc.cluster.local", TYPE_SRV)
    assert data(udp) == [Srv(0, 100, 53, "web.default.svc.cluster.local")]


def test_srv_without_port_lists_every_port_sharing_the_weight() -> None:
    answer = ask("web.default.svc.cluster.local", TYPE_SRV)
    assert sorted(data(answer), key=lambda s: s.port) == [
        Srv(0, 33, 53, "web.default.svc.cluster.local"),
        Srv(0, 33, 80, "web.default.svc.cluster.local"),
        Srv(0, 33, 9000, "web.default.svc.cluster.local"),
    ]
    assert len(answer.additionals) == 1  # one address record per target and address


def test_headless_srv_names_each_ready_endpoint() -> None:
    answer = ask("_pg._tcp.db.default.svc.cluster.local", TYPE_SRV)
    assert data(answer) == [
        Srv(0, 33, 5432, "db-0.db.default.svc.cluster.local"),
        Srv(0, 33, 5432, "db-1.db.default.svc.cluster.local"),
        Srv(0, 33, 5432, "10-42-3-8.db.default.svc.cluster.local"),
    ]
    assert [(r.name, r.data) for r in answer.additionals] == [
        ("db-0.db.default.svc.cluster.local", "10.42.0.5"),
        ("db-1.db.default.svc.cluster.local", "10.42.1.6"),
        ("10-42-3-8.db.default.svc.cluster.local", "10.42.3.8"),
    ]


def test_a_headless_service_without_ports_has_addresses_but_no_srv() -> None:
    assert is_nodata(ask("portless.default.svc.cluster.local", TYPE_SRV))


# -- CNAME ------------------------------------------------------------------------------------


def test_external_name_is_a_cname_followed_upstream() -> None:
    answer = ask("search.default.svc.cluster.local", TYPE_A)
    assert [(r.type, r.data) for r in answer.answers] == [(TYPE_CNAME, "search.example.com")]
    assert answer.chase == "search.example.com" and not answer.forward
    cname = ask("search.default.svc.cluster.local", TYPE_CNAME)
    assert data(cname) == ["search.example.com"] and cname.chase == ""


def test_external_name_inside_the_cluster_is_followed_here() -> None:
    answer = ask("alias.default.svc.cluster.local", TYPE_A)
    assert [(r.name, r.type, r.data) for r in answer.answers] == [
        ("alias.default.svc.cluster.local", TYPE_CNAME, "web.default.svc.cluster.local"),
        ("web.default.svc.cluster.local", TYPE_A, "10.43.0.20"),
    ]
    assert answer.chase == ""


# -- PTR --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("1.0.43.10.in-addr.arpa", ["kubernetes.default.svc.cluster.local"]),
        ("20.0.43.10.in-addr.arpa", ["web.default.svc.cluster.local"]),
        ("5.0.42.10.in-addr.arpa", ["db-0.db.default.svc.cluster.local"]),
        ("8.3.42.10.In-Addr.Arpa.", ["10-42-3-8.db.default.svc.cluster.local"]),
        (
            ipaddress.ip_address("fd00:43::30").reverse_pointer,
            ["dual.default.svc.cluster.local"],
        ),
    ],
)
def test_ptr_names_services_and_endpoints(name: str, expected: list[str]) -> None:
    answer = ask(name, TYPE_PTR)
    assert data(answer) == expected
    assert answer.answers[0].name == name.rstrip(".") and answer.answers[0].ttl == 5


def test_unknown_reverse_names_are_forwarded() -> None:
    assert ask("7.2.42.10.in-addr.arpa", TYPE_PTR) is FORWARD  # not ready
    assert ask("1.0.0.127.in-addr.arpa", TYPE_PTR) is FORWARD
    assert ask("43.10.in-addr.arpa", TYPE_PTR) is FORWARD
    assert ask("1.0.43.10.in-addr.arpa", TYPE_A) is FORWARD


# -- the zone ---------------------------------------------------------------------------------


def test_zone_apex_soa_and_ns() -> None:
    soa = ask("cluster.local", TYPE_SOA)
    assert [r.type for r in soa.answers] == [TYPE_SOA] and soa.answers[0].data.serial == 42  # type: ignore[union-attr]
    ns = ask("cluster.local", TYPE_NS)
    assert data(ns) == ["ns.dns.cluster.local"]
    assert [(r.name, r.data) for r in ns.additionals] == [("ns.dns.cluster.local", "10.43.0.10")]


def test_other_cluster_domains() -> None:
    zone = Zone(domain="corp.internal", nameservers=("10.0.0.10",))
    index = cluster()
    assert data(lookup(index, zone, "web.default.svc.corp.internal", TYPE_A)) == ["10.43.0.20"]
    assert lookup(index, zone, "web.default.svc.cluster.local", TYPE_A) is FORWARD


# -- the index follows changes -----------------------------------------------------------------


def test_index_follows_updates_and_deletes() -> None:
    index = cluster()
    generation = index.generation
    index.put_service(service("web", clusterIP="10.43.0.21", ports=[HTTP]))
    assert data(ask("web.default.svc.cluster.local", index=index)) == ["10.43.0.21"]
    assert ask("20.0.43.10.in-addr.arpa", TYPE_PTR, index) is FORWARD
    assert data(ask("21.0.43.10.in-addr.arpa", TYPE_PTR, index)) == [
        "web.default.svc.cluster.local"
    ]
    index.put_slice(endpoint_slice("db-abc", "db", [endpoint("10.42.9.9", hostname="db-9")]))
    assert data(ask("db.default.svc.cluster.local", index=index)) == ["10.42.9.9"]
    assert ask("5.0.42.10.in-addr.arpa", TYPE_PTR, index) is FORWARD
    index.delete_slice(endpoint_slice("db-abc", "db", []))
    assert is_nxdomain(ask("db.default.svc.cluster.local", index=index))
    index.delete_service(service("web"))
    assert is_nxdomain(ask("web.default.svc.cluster.local", index=index))
    index.delete_namespace(namespace("other"))
    assert is_nxdomain(ask("1-2-3-4.other.pod.cluster.local", index=index))
    assert index.generation > generation


def test_slices_of_one_service_add_up_and_fqdn_slices_are_ignored() -> None:
    index = cluster()
    index.put_slice(endpoint_slice("db-def", "db", [endpoint("10.42.5.5")]))
    index.put_slice(
        endpoint_slice("db-fqdn", "db", [endpoint("db.example.com")], address_type="FQDN")
    )
    index.put_slice(endpoint_slice("db-v6", "db", [endpoint("fd00:42::7")], address_type="IPv6"))
    assert len(data(ask("db.default.svc.cluster.local", index=index))) == 4
    assert data(ask("db.default.svc.cluster.local", TYPE_AAAA, index)) == ["fd00:42::7"]
