"""Cluster DNS over real sockets on loopback: the server alone (UDP, TCP, truncation,
forwarding), then against a real `timonel server` with objects made by kubectl."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from tests.conftest import RunningServer
from timonel.agent.dns.node import NodeDns, NodeDnsOptions
from timonel.agent.dns.records import Answer
from timonel.agent.dns.server import DnsServer, Forwarder, QueryHandler, Upstream, ask
from timonel.agent.dns.wire import (
    FLAG_AA,
    FLAG_TC,
    RCODE_NOERROR,
    RCODE_NXDOMAIN,
    TYPE_A,
    TYPE_CNAME,
    TYPE_PTR,
    TYPE_SRV,
    Edns,
    Message,
    Record,
    Srv,
    decode,
    query,
)
from timonel.agent.join import join

UPSTREAM_ADDRESS = "192.0.2.1"


def upstream_resolve(name: str, qtype: int) -> Answer:
    """A stand-in for the node's resolver: every name is 192.0.2.1."""
    if qtype != TYPE_A:
        return Answer()
    return Answer(answers=(Record(name, TYPE_A, 300, UPSTREAM_ADDRESS),))


def many_resolve(name: str, qtype: int) -> Answer:
    records = tuple(Record(name, TYPE_A, 5, f"10.42.0.{i}") for i in range(1, 201))
    return Answer(answers=records)


async def serving(resolve: Callable[[str, int], Answer], upstreams: list[Upstream]) -> DnsServer:
    server = DnsServer(
        QueryHandler(resolve, Forwarder(upstreams, attempt_timeout=1.0)), host="127.0.0.1", port=0
    )
    await server.start()
    return server


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    server = await serving(upstream_resolve, [])
    try:
        yield ("127.0.0.1", server.port)
    finally:
        await server.stop()


async def test_udp_truncates_and_tcp_carries_the_whole_answer() -> None:
    server = await serving(many_resolve, [])
    try:
        address = ("127.0.0.1", server.port)
        over_udp = await ask(address, "db.default.svc.cluster.local", TYPE_A)
        assert over_udp.has(FLAG_TC) and 0 < len(over_udp.answers) < 200
        with_edns = await ask(address, "db", TYPE_A, edns=Edns(udp_size=4096))
        assert not with_edns.has(FLAG_TC) and len(with_edns.answers) == 200
        over_tcp = await ask(address, "db.default.svc.cluster.local", TYPE_A, tcp=True)
        assert not over_tcp.has(FLAG_TC) and len(over_tcp.answers) == 200
    finally:
        await server.stop()


async def test_tcp_connection_carries_several_queries() -> None:
    server = await serving(many_resolve, [])
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        for ident in (1, 2, 3):
            data = query("x", TYPE_A, ident=ident)
            writer.write(len(data).to_bytes(2, "big") + data)
        await writer.drain()
        idents = []
        for _ in range(3):
            length = int.from_bytes(await reader.readexactly(2), "big")
            idents.append(decode(await reader.readexactly(length)).id)
        assert idents == [1, 2, 3]
        writer.close()
    finally:
        await server.stop()


async def test_forwarding_skips_a_dead_upstream(upstream: Upstream) -> None:
    dead = await serving(upstream_resolve, [])
    dead_address = ("127.0.0.1", dead.port)
    await dead.stop()  # nothing listens there now: the query is refused
    server = await serving(lambda n, t: Answer(forward=True), [dead_address, upstream])
    try:
        for tcp in (False, True):
            reply = await ask(("127.0.0.1", server.port), "example.com", TYPE_A, tcp=tcp)
            assert reply.rcode == RCODE_NOERROR
            assert [r.data for r in reply.answers] == [UPSTREAM_ADDRESS]
        metrics = server.handler.metrics
        dead_name, live_name = (f"{host}:{port}" for host, port in (dead_address, upstream))
        assert metrics.forward_failures[dead_name] == 2 and metrics.forwards[live_name] == 2
        assert f'coredns_forward_requests_total{{to="{live_name}"}} 2' in metrics.render()
    finally:
        await server.stop()


# -- against a real control plane --------------------------------------------------------------


@contextlib.asynccontextmanager
async def node_dns(
    server: RunningServer, upstream: Upstream, *, port: int = 0
) -> AsyncIterator[NodeDns]:
    """A node's DNS server, in this process, watching the test server."""
    token = (server.data_dir / "token").read_text().strip()
    client = await join(server.url, token, user_agent="dns-test", field_manager="dns-test")
    dns = NodeDns(
        client,
        NodeDnsOptions(
            node_name=f"dns-{uuid.uuid4().hex[:6]}",
            address="127.0.0.1",
            advertise_address="192.0.2.10",  # published only (loopback is refused), never sent to
            port=port,
            metrics_port=0,
            upstreams=(upstream,),
        ),
    )
    task = asyncio.create_task(dns.run())
    try:
        await asyncio.wait_for(dns.ready.wait(), 10)
        yield dns
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await client.close()


@pytest.fixture
async def cluster_dns(server: RunningServer, upstream: Upstream) -> AsyncIterator[NodeDns]:
    async with node_dns(server, upstream) as dns:
        yield dns


async def answered(
    dns: NodeDns, name: str, qtype: int = TYPE_A, *, until: Callable[[Message], bool]
) -> Message:
    """The reply to `name`, asked again until it satisfies `until` (informers lag)."""
    address = ("127.0.0.1", dns.server.port)
    deadline = asyncio.get_running_loop().time() + 5
    while True:
        reply = await ask(address, name, qtype)
        if until(reply) or asyncio.get_running_loop().time() > deadline:
            return reply
        await asyncio.sleep(0.05)


def has_answers(reply: Message) -> bool:
    return bool(reply.answers)


HEADLESS = """
apiVersion: v1
kind: Service
metadata: {{name: db, namespace: {ns}}}
spec:
  clusterIP: None
  ports: [{{name: pg, port: 5432}}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: db-1
  namespace: {ns}
  labels: {{kubernetes.io/service-name: db}}
addressType: IPv4
ports: [{{name: pg, port: 5432, protocol: TCP}}]
endpoints:
- addresses: [10.42.0.5]
  hostname: db-0
  conditions: {{ready: true}}
- addresses: [10.42.1.6]
  hostname: db-1
  conditions: {{ready: true}}
- addresses: [10.42.2.7]
  hostname: db-2
  conditions: {{ready: false}}
"""


async def test_services_made_with_kubectl_are_answered(
    server: RunningServer, namespace: str, cluster_dns: NodeDns
) -> None:
    kubectl = server.kubectl
    await asyncio.to_thread(
        kubectl, "-n", namespace, "create", "service", "clusterip", "web", "--tcp=80:8080"
    )
    await asyncio.to_thread(
        kubectl,
        "-n",
        namespace,
        "create",
        "service",
        "externalname",
        "ext",
        "--external-name",
        "www.example.com",
    )
    await asyncio.to_thread(kubectl, "apply", "-f", "-", input=HEADLESS.format(ns=namespace))
    cluster_ip = (
        await asyncio.to_thread(kubectl, "-n", namespace, "get", "service", "web", "-o", "json")
    ).json()["spec"]["clusterIP"]
    web = f"web.{namespace}.svc.cluster.local"

    reply = await answered(cluster_dns, web, until=has_answers)
    assert reply.rcode == RCODE_NOERROR and reply.has(FLAG_AA)
    assert [(r.name, r.ttl, r.data) for r in reply.answers] == [(web, 5, cluster_ip)]

    srv = await answered(cluster_dns, f"_80-8080._tcp.{web}", TYPE_SRV, until=has_answers)
    assert [r.data for r in srv.answers] == [Srv(0, 100, 80, web)]
    assert [r.data for r in srv.additionals] == [cluster_ip]

    reverse = ".".join(reversed(cluster_ip.split("."))) + ".in-addr.arpa"
    ptr = await answered(cluster_dns, reverse, TYPE_PTR, until=has_answers)
    assert [r.data for r in ptr.answers] == [web]

    db = f"db.{namespace}.svc.cluster.local"
    headless = await answered(cluster_dns, db, until=lambda r: len(r.answers) == 2)
    assert sorted(str(r.data) for r in headless.answers) == ["10.42.0.5", "10.42.1.6"]
    pet = await answered(cluster_dns, f"db-1.{db}", until=has_answers)
    assert [r.data for r in pet.answers] == ["10.42.1.6"]
    srv_db = await answered(cluster_dns, f"_pg._tcp.{db}", TYPE_SRV, until=has_answers)
    assert sorted(r.data.target for r in srv_db.answers) == [f"db-0.{db}", f"db-1.{db}"]  # type: ignore[union-attr]

    ext = await answered(cluster_dns, f"ext.{namespace}.svc.cluster.local", until=has_answers)
    assert [(r.type, r.data) for r in ext.answers] == [
        (TYPE_CNAME, "www.example.com"),
        (TYPE_A, UPSTREAM_ADDRESS),
    ]

    pod = await answered(cluster_dns, f"10-42-7-9.{namespace}.pod.cluster.local", until=has_answers)
    assert [r.data for r in pod.answers] == ["10.42.7.9"]

    missing = await answered(
        cluster_dns, f"nope.{namespace}.svc.cluster.local", until=lambda r: True
    )
    assert missing.rcode == RCODE_NXDOMAIN and not missing.answers
    forwarded = await answered(cluster_dns, "example.com", until=has_answers)
    assert [r.data for r in forwarded.answers] == [UPSTREAM_ADDRESS]

    await asyncio.to_thread(kubectl, "-n", namespace, "delete", "service", "web")
    gone = await answered(cluster_dns, web, until=lambda r: r.rcode == RCODE_NXDOMAIN)
    assert gone.rcode == RCODE_NXDOMAIN


async def test_the_dns_service_is_listed_and_gets_the_node_endpoints(
    server: RunningServer, upstream: Upstream
) -> None:
    info = await asyncio.to_thread(server.kubectl, "cluster-info")
    dns_url = f"{server.url}/api/v1/namespaces/kube-system/services/kube-dns:dns/proxy"
    assert f"CoreDNS is running at {dns_url}" in info.stdout

    def get(kind: str, name: str) -> dict[str, Any] | None:
        found = server.kubectl("-n", "kube-system", "get", kind, name, "-o", "json", check=False)
        return found.json() if found.returncode == 0 else None

    service = await asyncio.to_thread(get, "service", "kube-dns")
    assert service is not None and service["spec"]["clusterIP"] == "10.43.0.10"

    async def eventually(check: Callable[[], bool]) -> None:
        deadline = asyncio.get_running_loop().time() + 5
        while not await asyncio.to_thread(check):
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.1)

    def endpoint_ips() -> list[str]:
        endpoints = get("endpoints", "kube-dns") or {}
        return [a["ip"] for subset in endpoints.get("subsets", []) for a in subset["addresses"]]

    async with node_dns(server, upstream) as dns:
        answer = await answered(dns, "kube-dns.kube-system.svc.cluster.local", until=has_answers)
        assert [r.data for r in answer.answers] == ["10.43.0.10"]
        name = f"kube-dns-{dns.options.node_name}"
        await eventually(lambda: get("endpointslice", name) is not None)
        endpoint_slice = await asyncio.to_thread(get, "endpointslice", name)
        assert endpoint_slice is not None
        assert endpoint_slice["endpoints"][0]["addresses"] == ["192.0.2.10"]
        port = dns.server.port
        assert {(p["name"], p["protocol"], p["port"]) for p in endpoint_slice["ports"]} == {
            ("dns", "UDP", port),
            ("dns-tcp", "TCP", port),
        }
        await eventually(lambda: "192.0.2.10" in endpoint_ips())
    # Withdrawn when the node's DNS stops.
    await eventually(lambda: get("endpointslice", name) is None)
    assert "192.0.2.10" not in await asyncio.to_thread(endpoint_ips)


async def test_a_port_in_use_means_another_port(server: RunningServer, upstream: Upstream) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        async with node_dns(server, upstream, port=port) as dns:
            assert dns.server.port not in (0, port)
            reply = await ask(
                ("127.0.0.1", dns.server.port), "kube-dns.kube-system.svc.cluster.local", TYPE_A
            )
            assert [r.data for r in reply.answers] == ["10.43.0.10"]
