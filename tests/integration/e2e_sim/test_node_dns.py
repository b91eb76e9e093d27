"""The nodes' DNS endpoints follow their Nodes: a node whose kubelet stops reporting has
its kube-dns endpoint marked not ready (so no proxy sends DNS queries to it) and listed
under the Endpoints' notReadyAddresses; it is ready again when the node comes back, and
a deleted Node takes its endpoint with it.

The simulated nodes run no DNS server: the test publishes their endpoints as their
agents would (timonel/agent/dns/registration.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.controllers.harness import get, wait_for
from tests.integration.e2e_sim.cluster import Cluster, SimulatedNodes, running_cluster
from timonel.agent.dns.registration import DnsEndpoint, planned_slice, slice_name


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(
        tmp_path_factory.mktemp("e2e-node-dns"),
        "--node-monitor-grace-period=3s",
        "--node-monitor-period=500ms",
    ) as cluster:
        cluster.add_nodes(3, prefix="dns", heartbeat="500ms")
        yield cluster


@pytest.fixture(scope="module")
def nodes(cluster: Cluster) -> SimulatedNodes:
    return cluster.agents[0]


def _internal_ip(node: dict[str, Any]) -> str:
    return str(next(a["address"] for a in node["status"]["addresses"] if a["type"] == "InternalIP"))


def _publish(cluster: Cluster, name: str) -> str:
    node = get(cluster.server, "node", name)
    assert node is not None
    address = _internal_ip(node)
    endpoint_slice = planned_slice(DnsEndpoint(name, address, 10053, 9153), node["metadata"]["uid"])
    cluster.server.kubectl("create", "-f", "-", input=json.dumps(endpoint_slice))
    return address


def _slice_ready(cluster: Cluster, name: str) -> tuple[bool, bool] | None:
    found = get(cluster.server, "endpointslice", slice_name(name), "kube-system")
    if found is None:
        return None
    conditions = found["endpoints"][0]["conditions"]
    return (conditions["ready"], conditions["serving"])


def _kube_dns_addresses(cluster: Cluster) -> tuple[set[str], set[str]]:
    endpoints = get(cluster.server, "endpoints", "kube-dns", "kube-system") or {}
    ready: set[str] = set()
    not_ready: set[str] = set()
    for subset in endpoints.get("subsets") or []:
        ready |= {a["ip"] for a in subset.get("addresses") or []}
        not_ready |= {a["ip"] for a in subset.get("notReadyAddresses") or []}
    return ready, not_ready


def test_a_dead_nodes_dns_endpoint_is_not_ready_until_it_returns(
    cluster: Cluster, nodes: SimulatedNodes
) -> None:
    addresses = {name: _publish(cluster, name) for name in nodes.names}
    everyone = set(addresses.values())
    wait_for(
        lambda: _kube_dns_addresses(cluster) == (everyone, set()),
        what="every node's DNS endpoint in kube-dns Endpoints",
    )
    assert all(_slice_ready(cluster, name) == (True, True) for name in nodes.names)

    dead = nodes.names[1]
    nodes.pause(dead)
    wait_for(
        lambda: _slice_ready(cluster, dead) == (False, False),
        timeout=20,
        what="the dead node's DNS endpoint not ready",
    )
    ready, not_ready = wait_for(
        lambda: (found := _kube_dns_addresses(cluster))[1] and found,
        what="kube-dns Endpoints to list it as not ready",
    )
    assert not_ready == {addresses[dead]}
    assert ready == everyone - {addresses[dead]}
    assert all(_slice_ready(cluster, n) == (True, True) for n in nodes.names if n != dead)

    nodes.pause()
    wait_for(
        lambda: _slice_ready(cluster, dead) == (True, True),
        timeout=20,
        what="the node's DNS endpoint ready again",
    )
    wait_for(
        lambda: _kube_dns_addresses(cluster) == (everyone, set()),
        what="kube-dns Endpoints with every node ready",
    )

    # A node deleted for good: its slice goes with it (owned by the Node), and with it
    # its address.
    gone = nodes.names[2]
    cluster.server.kubectl("delete", "node", gone, "--wait=false")
    wait_for(
        lambda: _slice_ready(cluster, gone) is None,
        timeout=20,
        what="the deleted node's slice collected",
    )
    wait_for(
        lambda: _kube_dns_addresses(cluster) == (everyone - {addresses[gone]}, set()),
        what="kube-dns Endpoints without the deleted node",
    )
