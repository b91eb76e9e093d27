"""Pod CIDRs for nodes from the node IPAM controller inside `timonel server`."""

from __future__ import annotations

import uuid
from pathlib import Path

import yaml

from tests.conftest import RunningServer, start_server
from tests.integration.controllers.harness import apply, get, wait_for


def pod_cidr(server: RunningServer, name: str) -> str:
    def assigned() -> str | None:
        spec = (get(server, "node", name) or {}).get("spec") or {}
        return spec.get("podCIDR")

    cidr: str = wait_for(assigned, what=f"pod CIDR of {name}")
    node = get(server, "node", name)
    assert node is not None and node["spec"]["podCIDRs"] == [cidr]
    return cidr


def add_node(server: RunningServer, name: str) -> None:
    apply(server, {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}})


def test_nodes_get_distinct_pod_cidrs(server: RunningServer) -> None:
    names = [f"ipam-{uuid.uuid4().hex[:6]}-{i}" for i in range(3)]
    for name in names:
        add_node(server, name)
    cidrs = [pod_cidr(server, name) for name in names]
    assert len(set(cidrs)) == 3
    for cidr in cidrs:
        assert cidr.startswith("10.42.") and cidr.endswith(".0/24")
    server.kubectl("delete", "node", *names)


def test_nodes_registering_together_get_distinct_pod_cidrs(server: RunningServer) -> None:
    # Patched by concurrent workers: none may be handed a subnet another got.
    prefix = f"ipam-{uuid.uuid4().hex[:6]}"
    names = [f"{prefix}-{i}" for i in range(40)]
    nodes = [
        yaml.safe_dump({"apiVersion": "v1", "kind": "Node", "metadata": {"name": n}}) for n in names
    ]
    server.kubectl("apply", "-f", "-", input="---\n".join(nodes))
    cidrs = [pod_cidr(server, name) for name in names]
    assert len(set(cidrs)) == len(names)
    server.kubectl("delete", "node", *names)


def test_allocations_survive_a_restart(tmp_path: Path) -> None:
    data, cache = tmp_path / "data", tmp_path / "cache"
    data.mkdir()
    first = start_server(data, cache, "--cluster-cidr", "10.50.0.0/16")
    try:
        add_node(first, "before-0")
        add_node(first, "before-1")
        before = {pod_cidr(first, "before-0"), pod_cidr(first, "before-1")}
        assert before == {"10.50.0.0/24", "10.50.1.0/24"}
    finally:
        first.stop()
    second = start_server(data, cache, "--cluster-cidr", "10.50.0.0/16", port=first.port)
    try:
        # The stopped server's controllers are gone: take its leadership over at once
        # rather than waiting for its lease to expire.
        second.kubectl(
            "delete", "lease", "kube-controller-manager", "-n", "kube-system", "--ignore-not-found"
        )
        add_node(second, "after")
        assert pod_cidr(second, "after") not in before
    finally:
        second.stop()


def test_a_deleted_nodes_cidr_is_free_again(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    # A /23 holds two nodes: the third fits only once one is gone.
    running = start_server(data, tmp_path / "cache", "--cluster-cidr", "10.60.0.0/23")
    try:
        add_node(running, "n0")
        add_node(running, "n1")
        taken = {pod_cidr(running, "n0"), pod_cidr(running, "n1")}
        assert taken == {"10.60.0.0/24", "10.60.1.0/24"}
        running.kubectl("delete", "node", "n0")
        add_node(running, "n2")
        assert pod_cidr(running, "n2") in taken
    finally:
        running.stop()
