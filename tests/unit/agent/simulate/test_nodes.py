"""Node, Lease and address rendering of simulated nodes, and their configuration."""

from __future__ import annotations

import pytest

from timonel.agent.simulate.config import (
    ConfigError,
    SimulateConfig,
    load_config,
    parse_taint,
    with_flags,
)
from timonel.agent.simulate.connect import UntrustedServer, check_cluster_ca
from timonel.agent.simulate.nodes import (
    KUBELET_VERSION,
    IPExhausted,
    NodeTemplate,
    PodIPAllocator,
    fallback_pod_cidr,
    healthy_conditions,
    heartbeat_patch,
    missing_labels,
    needs_status_report,
    node_ip,
    node_names,
    paused_nodes,
    render_node,
    renewed_lease,
)
from timonel.kinds.core.node import NodeStrategy
from timonel.pki import ca_hash

NOW = "2025-01-01T00:00:00Z"
LATER = "2025-01-01T00:00:10Z"


def test_names_and_addresses() -> None:
    assert node_names("sim", 3) == ["sim-0", "sim-1", "sim-2"]
    assert node_ip(0, "172.16.0.0/12") == "172.16.0.1"
    assert node_ip(4999, "172.16.0.0/12") == "172.16.19.136"
    assert fallback_pod_cidr(0, "10.128.0.0/9") == "10.128.0.0/24"
    assert fallback_pod_cidr(4999, "10.128.0.0/9") == "10.147.135.0/24"
    with pytest.raises(ValueError):
        node_ip(254, "192.168.0.0/24")
    with pytest.raises(ValueError):
        fallback_pod_cidr(2, "10.0.0.0/23")


def test_render_node_is_a_valid_ready_node() -> None:
    template = NodeTemplate(
        capacity={"cpu": "8", "memory": "16Gi", "pods": "110"},
        labels={"topology.kubernetes.io/zone": "a"},
        taints=({"key": "dedicated", "value": "sim", "effect": "NoSchedule"},),
    )
    node = render_node("sim-1", ip="172.16.0.2", template=template, now=NOW)
    meta, status = node["metadata"], node["status"]
    assert meta["name"] == "sim-1"
    assert meta["labels"]["kubernetes.io/hostname"] == "sim-1"
    assert meta["labels"]["kubernetes.io/os"] == "linux"
    assert meta["labels"]["kubernetes.io/arch"] == "amd64"
    assert meta["labels"]["type"] == "simulated"
    assert meta["labels"]["topology.kubernetes.io/zone"] == "a"
    assert node["spec"]["taints"] == [{"key": "dedicated", "value": "sim", "effect": "NoSchedule"}]
    assert status["capacity"] == status["allocatable"] == dict(template.capacity)
    assert {"type": "InternalIP", "address": "172.16.0.2"} in status["addresses"]
    assert status["nodeInfo"]["kubeletVersion"] == KUBELET_VERSION
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["Ready"]["status"] == "True"
    assert conditions["Ready"]["reason"] == "KubeletReady"
    for kind in ("MemoryPressure", "DiskPressure", "PIDPressure"):
        assert conditions[kind]["status"] == "False"
    strategy = NodeStrategy()
    strategy.default(node)
    assert strategy.validate(node) == []
    assert strategy.table_row(node)[1] == "Ready"


def test_nodes_of_one_name_render_the_same() -> None:
    one = render_node("sim-0", ip="172.16.0.1", template=NodeTemplate(), now=NOW)
    two = render_node("sim-0", ip="172.16.0.1", template=NodeTemplate(), now=NOW)
    other = render_node("sim-1", ip="172.16.0.2", template=NodeTemplate(), now=NOW)
    assert one == two
    assert one["status"]["nodeInfo"]["machineID"] != other["status"]["nodeInfo"]["machineID"]


def test_missing_labels_names_only_what_differs() -> None:
    node = {"metadata": {"labels": {"a": "1", "b": "2", "other": "x"}}}
    assert missing_labels(node, {"a": "1", "b": "3", "c": "4"}) == {"b": "3", "c": "4"}
    assert missing_labels(node, {"a": "1"}) == {}
    assert missing_labels({}, {"a": "1"}) == {"a": "1"}


def test_heartbeat_moves_heartbeat_time_and_keeps_transition_time() -> None:
    first = healthy_conditions([], NOW)
    again = healthy_conditions(first, LATER)
    assert all(c["lastHeartbeatTime"] == LATER for c in again)
    assert all(c["lastTransitionTime"] == NOW for c in again)
    # Someone (the node lifecycle controller) marked it Unknown: Ready transitions again.
    unknown = [
        {**c, "status": "Unknown", "reason": "NodeStatusUnknown"} if c["type"] == "Ready" else c
        for c in first
    ]
    recovered = {
        c["type"]: c
        for c in heartbeat_patch({"status": {"conditions": unknown}}, LATER)["status"]["conditions"]
    }
    assert recovered["Ready"]["status"] == "True"
    assert recovered["Ready"]["lastTransitionTime"] == LATER
    assert recovered["MemoryPressure"]["lastTransitionTime"] == NOW


def test_needs_status_report() -> None:
    node = {"status": {"conditions": healthy_conditions([], NOW)}}
    assert not needs_status_report(node, now=100.0, last_report=90.0, report_period=300.0)
    assert needs_status_report(node, now=400.0, last_report=90.0, report_period=300.0)
    unknown = {
        "status": {
            "conditions": [
                {**c, "status": "Unknown", "reason": "NodeStatusUnknown"}
                if c["type"] == "Ready"
                else c
                for c in node["status"]["conditions"]
            ]
        }
    }
    assert needs_status_report(unknown, now=100.0, last_report=90.0, report_period=300.0)


def test_renewed_lease() -> None:
    lease = renewed_lease(
        None,
        node_name="sim-0",
        node_uid="uid-1",
        now="2025-01-01T00:00:00.123456Z",
        duration_seconds=40,
    )
    assert lease["metadata"] == {
        "name": "sim-0",
        "namespace": "kube-node-lease",
        "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": "sim-0", "uid": "uid-1"}],
    }
    assert lease["spec"] == {
        "holderIdentity": "sim-0",
        "leaseDurationSeconds": 40,
        "renewTime": "2025-01-01T00:00:00.123456Z",
    }
    stored = {**lease, "metadata": {**lease["metadata"], "resourceVersion": "7"}}
    renewed = renewed_lease(
        stored,
        node_name="sim-0",
        node_uid="uid-2",
        now="2025-01-01T00:00:10.000000Z",
        duration_seconds=40,
    )
    assert renewed["metadata"]["resourceVersion"] == "7"
    assert renewed["metadata"]["ownerReferences"][0]["uid"] == "uid-2"
    assert renewed["spec"]["renewTime"] == "2025-01-01T00:00:10.000000Z"
    assert stored["spec"]["renewTime"] == "2025-01-01T00:00:00.123456Z"


def test_paused_nodes_file() -> None:
    names = ["sim-0", "sim-1", "sim-10", "sim-2"]
    assert paused_nodes("", names) == frozenset()
    assert paused_nodes("sim-1\n", names) == {"sim-1"}
    assert paused_nodes("# maintenance\n  sim-2  # flaky\nsim-1*\nother\n", names) == {
        "sim-1",
        "sim-10",
        "sim-2",
    }


def test_pod_ip_allocator_is_sequential_stable_and_reuses() -> None:
    allocator = PodIPAllocator("10.42.1.0/29")  # hosts .2 .. .6 for pods
    assert [allocator.allocate(k) for k in "abc"] == ["10.42.1.2", "10.42.1.3", "10.42.1.4"]
    assert allocator.allocate("a") == "10.42.1.2"
    allocator.release("b")
    assert allocator.allocate("d") == "10.42.1.5"
    assert allocator.allocate("e") == "10.42.1.6"
    assert allocator.allocate("f") == "10.42.1.3"  # wrapped around to the freed address
    with pytest.raises(IPExhausted):
        allocator.allocate("g")


def test_pod_ip_allocator_reserves_addresses_found_on_pods() -> None:
    allocator = PodIPAllocator("10.42.1.0/24")
    assert allocator.reserve("a", "10.42.1.2")
    assert not allocator.reserve("b", "10.42.1.2")
    assert not allocator.reserve("b", "10.99.0.1")
    assert allocator.allocate("c") == "10.42.1.3"


def test_config_file_and_flags() -> None:
    config = load_config(
        """
        capacity: {cpu: 4, memory: 8Gi}
        labels: {pool: blue}
        taints: [{key: dedicated, value: sim, effect: NoSchedule}, "spot:PreferNoSchedule"]
        heartbeatPeriod: 2s
        statusReportPeriod: 1m
        concurrency: 8
        stages:
        - name: all-done
          next: {statusTemplate: succeeded}
        """
    )
    assert config.node.capacity == {
        "cpu": "4",
        "ephemeral-storage": "100Gi",
        "memory": "8Gi",
        "pods": "110",
    }
    assert config.node.taints == (
        {"key": "dedicated", "value": "sim", "effect": "NoSchedule"},
        {"key": "spot", "effect": "PreferNoSchedule"},
    )
    assert (config.heartbeat_period, config.status_report_period, config.concurrency) == (
        2.0,
        60.0,
        8,
    )
    assert [s.name for s in config.stages] == ["all-done"]
    flagged = with_flags(config, capacity="cpu=16", labels=["pool=green"], taints=["x=y:NoExecute"])
    assert flagged.node.capacity["cpu"] == "16"
    assert flagged.node.capacity["memory"] == "8Gi"
    assert flagged.node.labels == {"pool": "green"}
    assert len(flagged.node.taints) == 3
    assert load_config("") == SimulateConfig()


@pytest.mark.parametrize(
    "text",
    [
        "capacity: {cpu: lots}",
        "taints: [{key: a, effect: Sometimes}]",
        "nodeIPRange: nowhere",
        "heartbeatPeriod: 0",
        "concurrency: 0",
        "stages: []",
        "colour: blue",
        "- a list",
    ],
)
def test_config_rejects(text: str) -> None:
    with pytest.raises(ConfigError):
        load_config(text)


def test_parse_taint() -> None:
    assert parse_taint("a=b:NoSchedule") == {"key": "a", "value": "b", "effect": "NoSchedule"}
    assert parse_taint("a:NoExecute") == {"key": "a", "effect": "NoExecute"}
    for bad in ("a=b", "a=b:Never", ":NoSchedule"):
        with pytest.raises(ConfigError):
            parse_taint(bad)


def test_cluster_ca_must_match_the_token() -> None:
    pem = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    check_cluster_ca(pem, f"K10{ca_hash(pem)}::server:secret")
    check_cluster_ca(pem, "bare-secret")
    with pytest.raises(UntrustedServer):
        check_cluster_ca(pem, f"K10{ca_hash(b'other')}::server:secret")
    with pytest.raises(UntrustedServer):
        check_cluster_ca(b"<html>", f"K10{ca_hash(b'<html>')}::server:secret")
