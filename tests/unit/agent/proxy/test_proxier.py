"""The proxier's bookkeeping (no iptables): what it renders from, and which updates make
it sync."""

from __future__ import annotations

from typing import Any

import pytest

from timonel.agent.proxy.proxier import Proxier, node_view
from timonel.agent.proxy.rules import NodeView, render_rules


def node(name: str, cidr: str, address: str, heartbeat: str = "t0") -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {"podCIDR": cidr, "podCIDRs": [cidr]},
        "status": {
            "addresses": [
                {"type": "InternalIP", "address": address},
                {"type": "Hostname", "address": name},
            ],
            "conditions": [{"type": "Ready", "status": "True", "lastHeartbeatTime": heartbeat}],
        },
    }


def test_node_view_of_this_node_and_the_cluster() -> None:
    nodes = {
        "a": node("a", "10.42.0.0/24", "192.168.1.10"),
        "b": node("b", "10.42.1.0/24", "192.168.1.11"),
    }
    assert node_view("a", nodes) == NodeView(
        name="a",
        pod_cidrs=("10.42.0.0/24",),
        addresses=("192.168.1.10",),
        cluster_pod_cidrs=("10.42.0.0/24", "10.42.1.0/24"),
    )
    assert node_view("missing", nodes).pod_cidrs == ()


@pytest.fixture
def proxier() -> Proxier:
    return Proxier("a")


def dirty(proxier: Proxier) -> bool:
    was = proxier._dirty.is_set()
    proxier._dirty.clear()
    return was


def test_only_updates_that_change_the_rules_mark_them_dirty(proxier: Proxier) -> None:
    proxier.set_node(node("a", "10.42.0.0/24", "192.168.1.10"))
    proxier.set_node(node("b", "10.42.1.0/24", "192.168.1.11"))
    assert dirty(proxier)
    proxier.set_node(node("b", "10.42.1.0/24", "192.168.1.11", heartbeat="t1"))
    proxier.set_node(node("a", "10.42.0.0/24", "192.168.1.10", heartbeat="t1"))
    assert not dirty(proxier)
    proxier.set_node(node("b", "10.42.7.0/24", "192.168.1.11"))
    assert dirty(proxier)
    assert proxier.node.cluster_pod_cidrs == ("10.42.0.0/24", "10.42.7.0/24")
    proxier.delete_service({"metadata": {"namespace": "x", "name": "unknown"}})
    assert not dirty(proxier)


def test_it_renders_what_render_rules_renders(proxier: Proxier) -> None:
    service = {
        "metadata": {"namespace": "default", "name": "web", "resourceVersion": "5"},
        "spec": {"clusterIP": "10.43.0.5", "ports": [{"port": 80, "protocol": "UDP"}]},
    }
    endpoint_slice = {
        "metadata": {
            "namespace": "default",
            "name": "web-1",
            "resourceVersion": "6",
            "labels": {"kubernetes.io/service-name": "web"},
        },
        "addressType": "IPv4",
        "ports": [{"port": 5353, "protocol": "UDP"}],
        "endpoints": [{"addresses": ["10.42.0.9"]}],
    }
    proxier.set_node(node("a", "10.42.0.0/24", "192.168.1.10"))
    proxier.set_service(service)
    proxier.set_endpoint_slice(endpoint_slice)
    rendered = proxier.render(proxier.snapshot()).render()
    assert rendered == render_rules([service], [endpoint_slice], proxier.node).render()
    assert "--to-destination 10.42.0.9:5353" in rendered
