"""The host-gw routes in a real network namespace, without a cluster: the Nodes are put
straight into the informer's store. Only routes of our protocol are touched, a gateway
that is not on a local link fails only its own route, and everything of ours goes on
removal."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from typing import Any, cast

import pytest

from tests.e2e.proxy.lab import ip
from tests.unit.agent.podnetwork.test_routes import node
from timonel.agent.podnetwork.hostgw import HostGatewayRoutes, IpRoutes
from timonel.agent.podnetwork.routes import ROUTE_PROTOCOL
from timonel.client.rest import ApiClient


@pytest.fixture
def netns() -> Iterator[str]:
    name = f"thg-{uuid.uuid4().hex[:6]}"
    ip("netns", "add", name)
    try:
        ip("-n", name, "link", "add", "eth0", "type", "veth", "peer", "name", "peer0")
        ip("-n", name, "addr", "add", "172.31.0.11/24", "dev", "eth0")
        for link in ("lo", "eth0", "peer0"):
            ip("-n", name, "link", "set", link, "up")
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)


def routes(netns: str) -> dict[str, tuple[str, str]]:
    listed: list[dict[str, Any]] = json.loads(
        subprocess.run(
            ["ip", "-n", netns, "-j", "-4", "route", "show"],
            capture_output=True, text=True, check=True,
        ).stdout
    )  # fmt: skip
    return {
        r["dst"]: (r.get("gateway", ""), r.get("protocol", "boot"))
        for r in listed
        if r["dst"].startswith("10.")
    }


async def test_routes_are_installed_repointed_and_removed(netns: str) -> None:
    ours = str(ROUTE_PROTOCOL)
    ip("-n", netns, "route", "add", "10.42.9.0/24", "via", "172.31.0.99")  # someone else's
    ip("-n", netns, "route", "add", "10.42.8.0/24", "via", "172.31.0.98", "proto", ours)  # stale
    agent = HostGatewayRoutes(cast(ApiClient, None), "a", routes=IpRoutes(netns=netns))
    for obj in (
        node("a", "10.42.1.0/24", "172.31.0.11"),
        node("b", "10.42.2.0/24", "172.31.0.12"),
        node("c", "10.42.3.0/24", "192.0.2.13"),  # not on a link of ours
        node("d", "10.42.9.0/24", "172.31.0.14"),  # routed by someone else already
    ):
        agent.nodes.indexer.put(obj)

    failures = await agent.sync()
    assert len(failures) == 1 and "10.42.3.0/24" in failures[0]
    assert routes(netns) == {
        "10.42.2.0/24": ("172.31.0.12", ours),
        "10.42.9.0/24": ("172.31.0.99", "boot"),
    }

    agent.nodes.indexer.put(node("b", "10.42.2.0/24", "172.31.0.22"))
    agent.nodes.indexer.put(node("c", "10.42.3.0/24", "172.31.0.13"))
    assert await agent.sync() == []
    assert routes(netns) == {
        "10.42.2.0/24": ("172.31.0.22", ours),
        "10.42.3.0/24": ("172.31.0.13", ours),
        "10.42.9.0/24": ("172.31.0.99", "boot"),
    }

    await agent.remove_all()
    assert routes(netns) == {"10.42.9.0/24": ("172.31.0.99", "boot")}
