"""Pod CIDR allocation for nodes (the range allocator's cidr sets)."""

from __future__ import annotations

import pytest

from timonel.controllers.nodeipam import CidrSet, RangeFull, cidr_patch, cidr_sets, node_pod_cidrs


def test_allocates_consecutive_24s_from_the_cluster_cidr() -> None:
    cidrs = CidrSet("10.42.0.0/16")
    assert [cidrs.allocate_next() for _ in range(3)] == [
        "10.42.0.0/24",
        "10.42.1.0/24",
        "10.42.2.0/24",
    ]
    assert cidrs.size == 256 and cidrs.allocated == 3


def test_never_hands_out_a_taken_subnet() -> None:
    cidrs = CidrSet("10.42.0.0/16")
    assert cidrs.occupy("10.42.0.0/24") and cidrs.occupy("10.42.1.0/24")
    assert cidrs.allocate_next() == "10.42.2.0/24"
    handed = {cidrs.allocate_next() for _ in range(253)}
    assert len(handed) == 253 and not handed & {"10.42.0.0/24", "10.42.1.0/24", "10.42.2.0/24"}
    with pytest.raises(RangeFull):
        cidrs.allocate_next()


def test_released_subnets_come_back_after_the_others() -> None:
    cidrs = CidrSet("10.42.0.0/22")
    first = cidrs.allocate_next()
    cidrs.allocate_next()
    cidrs.release(first)
    # Round-robin: the next candidate is after the last handed out, not the freed one.
    assert cidrs.allocate_next() == "10.42.2.0/24"
    assert cidrs.allocate_next() == "10.42.3.0/24"
    assert cidrs.allocate_next() == first


def test_occupy_covers_larger_and_ignores_foreign_cidrs() -> None:
    cidrs = CidrSet("10.42.0.0/22")
    assert cidrs.occupy("10.42.0.0/23")
    assert cidrs.allocated == 2
    assert not cidrs.occupy("192.168.0.0/24")
    assert not cidrs.occupy("fd00::/64")
    assert cidrs.allocate_next() == "10.42.2.0/24"


def test_dual_stack_and_small_clusters() -> None:
    sets = cidr_sets("10.42.0.0/16, fd42::/56")
    assert [s.allocate_next() for s in sets] == ["10.42.0.0/24", "fd42::/64"]
    tiny = CidrSet("10.0.0.0/26")
    assert tiny.allocate_next() == "10.0.0.0/26"
    with pytest.raises(RangeFull):
        tiny.allocate_next()


def test_node_cidrs_and_patch() -> None:
    assert node_pod_cidrs({"spec": {"podCIDR": "10.42.3.0/24"}}) == ["10.42.3.0/24"]
    assert node_pod_cidrs({"spec": {}}) == []
    assert cidr_patch(["10.42.3.0/24"]) == {
        "spec": {"podCIDR": "10.42.3.0/24", "podCIDRs": ["10.42.3.0/24"]}
    }
