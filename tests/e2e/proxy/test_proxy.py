"""The proxy's rules loaded into a network-namespace node (see lab.py), with real traffic:
ClusterIP over TCP and UDP, rejection without endpoints, NodePort, LoadBalancer ingress,
session affinity, hairpin, pod egress, scale changes through the sync loop, cleanup."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

from tests.e2e.proxy.lab import (
    CLUSTER_CIDR,
    EXTERNAL_IP,
    HERE,
    NODE_IP,
    NODE_NAME,
    POD_CIDR,
    Lab,
    Pod,
    netns_path,
    request,
)
from timonel.agent.proxy.iptables import ensure_forwarding_sysctls
from timonel.agent.proxy.proxier import Proxier, SyncSettings
from timonel.agent.proxy.rules import ProxyOptions

CLUSTER_IP = "10.96.0.10"


def service(name: str, cluster_ip: str, *ports: dict[str, Any], **spec: Any) -> dict[str, Any]:
    status = spec.pop("status", {})
    return {
        "metadata": {"namespace": "default", "name": name},
        "spec": {"type": "ClusterIP", "clusterIP": cluster_ip, "ports": list(ports), **spec},
        "status": status,
    }


def http_port(port: int = 80, **extra: Any) -> dict[str, Any]:
    return {"name": "http", "port": port, "protocol": "TCP", "targetPort": 8080, **extra}


def endpoint_slice(
    service_name: str, pods: list[Pod], *, ports: list[tuple[str, int, str]] | None = None
) -> dict[str, Any]:
    return {
        "metadata": {
            "namespace": "default",
            "name": f"{service_name}-slice",
            "labels": {"kubernetes.io/service-name": service_name},
        },
        "addressType": "IPv4",
        "ports": [
            {"name": name, "port": port, "protocol": protocol}
            for name, port, protocol in ports or [("http", 8080, "TCP")]
        ],
        "endpoints": [
            {"addresses": [pod.ip], "conditions": {"ready": True}, "nodeName": NODE_NAME}
            for pod in pods
        ],
    }


def node_object() -> dict[str, Any]:
    return {
        "metadata": {"name": NODE_NAME},
        "spec": {"podCIDR": POD_CIDR, "podCIDRs": [POD_CIDR]},
        "status": {"addresses": [{"type": "InternalIP", "address": NODE_IP}]},
    }


async def proxier_for(lab: Lab, *objects: dict[str, Any]) -> Proxier:
    proxier = Proxier(
        NODE_NAME,
        iptables=lab.iptables,
        options=ProxyOptions(cluster_cidr=CLUSTER_CIDR),
        settings=SyncSettings(sync_period=1.0),
    )
    await ensure_forwarding_sysctls(lab.iptables, route_localnet=True)
    proxier.set_node(node_object())
    for obj in objects:
        if "addressType" in obj:
            proxier.set_endpoint_slice(obj)
        else:
            proxier.set_service(obj)
    await proxier.sync()
    return proxier


def backends(lab: Lab, count: int, **labels: str) -> list[Pod]:
    pods = [lab.add_pod(f"web-{i}", {"app": "web", **labels}) for i in range(count)]
    for pod in pods:
        lab.serve(pod, udp=5353)
    return pods


async def test_cluster_ip_reaches_every_backend_from_pods_and_the_node(lab: Lab) -> None:
    pods = backends(lab, 3)
    client = lab.add_pod("client")
    await proxier_for(lab, service("web", CLUSTER_IP, http_port()), endpoint_slice("web", pods))

    from_pod = await request(client.netns, f"{CLUSTER_IP}:80", count=60)
    assert from_pod["errors"] == {}
    assert set(from_pod["answers"]) == {"web-0", "web-1", "web-2"}
    from_node = await request(lab.node, f"{CLUSTER_IP}:80", count=30)
    assert from_node["errors"] == {}
    assert sum(from_node["answers"].values()) == 30


async def test_udp_and_named_ports_of_one_service(lab: Lab) -> None:
    pods = backends(lab, 2)
    client = lab.add_pod("client")
    web = service(
        "web",
        CLUSTER_IP,
        http_port(),
        {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": "dns"},
    )
    ports = [("http", 8080, "TCP"), ("dns", 5353, "UDP")]
    await proxier_for(lab, web, endpoint_slice("web", pods, ports=ports))

    answered = await request(client.netns, f"{CLUSTER_IP}:53", count=20, udp=True)
    assert answered["errors"] == {}
    assert set(answered["answers"]) <= {"web-0", "web-1"}
    assert sum(answered["answers"].values()) == 20


async def test_a_service_without_endpoints_rejects_at_once(lab: Lab) -> None:
    client = lab.add_pod("client")
    await proxier_for(lab, service("empty", CLUSTER_IP, http_port()), endpoint_slice("empty", []))
    result = await request(client.netns, f"{CLUSTER_IP}:80", count=3, timeout=5)
    assert result["errors"] == {"refused": 3}
    assert max(result["seconds"]) < 0.5


async def test_node_port_answers_on_node_addresses_and_localhost(lab: Lab) -> None:
    pods = backends(lab, 2)
    await proxier_for(
        lab,
        service("web", CLUSTER_IP, http_port(nodePort=30080), type="NodePort"),
        endpoint_slice("web", pods),
    )
    for netns, target in (
        (lab.external, f"{NODE_IP}:30080"),
        (lab.node, f"{NODE_IP}:30080"),
        (lab.node, "127.0.0.1:30080"),
    ):
        result = await request(netns, target, count=20)
        assert result["errors"] == {}, target
        assert sum(result["answers"].values()) == 20


async def test_load_balancer_ingress_on_the_node_address_answers(lab: Lab) -> None:
    pods = backends(lab, 1)
    lb = service(
        "public",
        CLUSTER_IP,
        http_port(8000, nodePort=30800),
        type="LoadBalancer",
        status={"loadBalancer": {"ingress": [{"ip": NODE_IP, "ipMode": "VIP"}]}},
    )
    await proxier_for(lab, lb, endpoint_slice("public", pods))
    result = await request(lab.external, f"{NODE_IP}:8000", count=5)
    assert result["answers"] == {"web-0": 5}


async def test_session_affinity_sticks_to_one_backend(lab: Lab) -> None:
    pods = backends(lab, 3)
    client = lab.add_pod("client")
    sticky = service(
        "web",
        CLUSTER_IP,
        http_port(),
        sessionAffinity="ClientIP",
        sessionAffinityConfig={"clientIP": {"timeoutSeconds": 60}},
    )
    await proxier_for(lab, sticky, endpoint_slice("web", pods))
    result = await request(client.netns, f"{CLUSTER_IP}:80", count=30)
    assert result["errors"] == {}
    assert len(result["answers"]) == 1
    other = lab.add_pod("other-client")
    # Another client is balanced on its own (and sticks as well).
    second = await request(other.netns, f"{CLUSTER_IP}:80", count=10)
    assert len(second["answers"]) == 1


async def test_a_pod_reaches_its_own_service_hairpin(lab: Lab) -> None:
    pods = backends(lab, 2)
    await proxier_for(lab, service("web", CLUSTER_IP, http_port()), endpoint_slice("web", pods))
    result = await request(pods[0].netns, f"{CLUSTER_IP}:80", count=40)
    assert result["errors"] == {}
    assert set(result["answers"]) == {"web-0", "web-1"}


async def test_pod_traffic_leaving_the_cluster_is_masqueraded(lab: Lab) -> None:
    client = lab.add_pod("client")
    outside = subprocess_backend(lab)
    await proxier_for(lab)
    # The external namespace has no route back to the pod network: only masquerading works.
    result = await request(client.netns, f"{EXTERNAL_IP}:9090", count=3)
    assert result["answers"] == {outside: 3}


async def test_udp_clients_move_off_a_removed_endpoint(lab: Lab) -> None:
    pods = backends(lab, 2)
    client = lab.add_pod("client")
    dns = service("dns", CLUSTER_IP, {"name": "dns", "port": 53, "protocol": "UDP"})
    ports = [("dns", 5353, "UDP")]
    proxier = await proxier_for(lab, dns, endpoint_slice("dns", pods[:1], ports=ports))
    command = ["nsenter", f"--net={netns_path(client.netns)}", sys.executable,
               str(HERE / "client.py"), "--udp-stream", "2.5", f"{CLUSTER_IP}:53"]  # fmt: skip
    stream = await asyncio.create_subprocess_exec(*command, stdout=asyncio.subprocess.PIPE)
    await asyncio.sleep(1.0)
    proxier.set_endpoint_slice(endpoint_slice("dns", pods[1:], ports=ports))
    await proxier.sync()
    out, _ = await stream.communicate()
    answers = [who for _at, who in json.loads(out)["timeline"]]
    # The same socket (one conntrack entry) throughout: web-0 until the change, web-1 after.
    switch = answers.index("web-1")
    assert switch > 5 and set(answers[:switch]) == {"web-0"}
    assert "web-0" not in answers[switch:] and answers[-5:] == ["web-1"] * 5


def subprocess_backend(lab: Lab) -> str:
    outside = Pod("outside", lab.external, EXTERNAL_IP)
    lab.serve(outside, tcp=9090)
    return outside.name


async def test_scale_changes_reach_the_rules_within_a_second(lab: Lab) -> None:
    pods = backends(lab, 3)
    client = lab.add_pod("client")
    proxier = await proxier_for(
        lab, service("web", CLUSTER_IP, http_port()), endpoint_slice("web", pods[:1])
    )
    proxier.ready.set()
    running = asyncio.create_task(proxier.run())
    synced: list[float] = []
    proxier.listeners.append(lambda result: synced.append(result.finished))
    try:
        assert (await request(client.netns, f"{CLUSTER_IP}:80", count=10))["answers"] == {
            "web-0": 10
        }
        for wanted in (pods, pods[1:2]):
            changed = time.monotonic()
            synced.clear()
            proxier.set_endpoint_slice(endpoint_slice("web", wanted))
            while not synced:
                await asyncio.sleep(0.01)
            assert synced[0] - changed < 1.0
            result = await request(client.netns, f"{CLUSTER_IP}:80", count=40)
            assert set(result["answers"]) == {pod.name for pod in wanted}
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
    saved = "".join([await lab.iptables.save("nat"), await lab.iptables.save("filter")])
    assert "TIMONEL" not in saved
