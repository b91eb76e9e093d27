"""The nodes' DNS endpoints follow their Node's readiness (pure decisions)."""

from __future__ import annotations

from typing import Any

from timonel.agent.dns.registration import DnsEndpoint, planned_slice
from timonel.controllers.nodedns import is_node_dns_slice, slice_with_node_readiness


def _node(name: str, ready: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "status": {"conditions": [{"type": "Ready", "status": ready}]},
    }


def test_an_endpoint_follows_its_nodes_ready_condition() -> None:
    published = planned_slice(DnsEndpoint("n1", "192.0.2.1", 10053, 9153))
    assert slice_with_node_readiness(published, {"n1": _node("n1", "True")}) is None
    for status in ("False", "Unknown"):
        updated = slice_with_node_readiness(published, {"n1": _node("n1", status)})
        assert updated is not None
        assert updated["endpoints"][0]["conditions"] == {
            "ready": False,
            "serving": False,
            "terminating": False,
        }
        assert updated["endpoints"][0]["addresses"] == ["192.0.2.1"]
        assert published["endpoints"][0]["conditions"]["ready"] is True  # not mutated
        assert slice_with_node_readiness(updated, {"n1": _node("n1", status)}) is None
        back = slice_with_node_readiness(updated, {"n1": _node("n1", "True")})
        assert back is not None and back["endpoints"][0]["conditions"]["ready"] is True


def test_an_endpoint_of_an_unknown_node_is_left_alone() -> None:
    published = planned_slice(DnsEndpoint("n1", "192.0.2.1", 10053, 9153))
    assert slice_with_node_readiness(published, {}) is None


def test_only_the_agents_kube_dns_slices_are_managed() -> None:
    published = planned_slice(DnsEndpoint("n1", "192.0.2.1", 10053, 9153))
    assert is_node_dns_slice(published)
    other = {**published, "metadata": {**published["metadata"], "namespace": "default"}}
    assert not is_node_dns_slice(other)
    labels = {**published["metadata"]["labels"]}
    labels["endpointslice.kubernetes.io/managed-by"] = "endpointslice-controller.k8s.io"
    foreign = {**published, "metadata": {**published["metadata"], "labels": labels}}
    assert not is_node_dns_slice(foreign)
