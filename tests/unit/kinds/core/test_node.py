"""Nodes: registration defaults, the not-ready taint, podCIDR rules, the table."""

from __future__ import annotations

import copy
from typing import Any

from timonel.kinds.core.node import NodeStrategy, admit_node, node_roles, node_status_cell


def registered(**status: Any) -> dict[str, Any]:
    node: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": "node-1",
            "labels": {
                "node-role.kubernetes.io/control-plane": "",
                "node-role.kubernetes.io/master": "true",
                "kubernetes.io/role": "worker",
            },
        },
        "status": {"capacity": {"cpu": "4", "memory": "8140432Ki", "pods": "110"}, **status},
    }
    strategy = NodeStrategy()
    strategy.default(node)
    admit_node(node)
    strategy.prepare_for_create(node)
    return node


def test_registration_keeps_status_and_fills_go_fields() -> None:
    node = registered()
    assert node["status"]["allocatable"] == {"cpu": "4", "memory": "8140432Ki", "pods": "110"}
    assert node["status"]["daemonEndpoints"] == {"kubeletEndpoint": {"Port": 0}}
    assert node["status"]["nodeInfo"]["kubeletVersion"] == ""
    assert node["spec"] == {
        "taints": [{"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}]
    }
    assert NodeStrategy().validate(node) == []


def test_not_ready_taint_is_added_once() -> None:
    node: dict[str, Any] = {
        "spec": {"taints": [{"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}]}
    }
    admit_node(node)
    assert len(node["spec"]["taints"]) == 1


def test_pod_cidr_is_set_once() -> None:
    strategy = NodeStrategy()
    old = registered()
    new = copy.deepcopy(old)
    new["spec"]["podCIDR"] = "10.42.0.0/24"
    strategy.default(new)
    strategy.prepare_for_update(new, old)
    assert new["spec"]["podCIDRs"] == ["10.42.0.0/24"]
    assert strategy.validate_update(new, old) == []
    again = copy.deepcopy(new)
    again["spec"]["podCIDR"] = "10.42.1.0/24"
    strategy.default(again)
    assert [e.message() for e in strategy.validate_update(again, new)] == [
        'spec.podCIDRs: Forbidden: node updates may not change podCIDR except from "" to valid'
    ]


def test_taint_validation() -> None:
    node = registered()
    node["spec"]["taints"] = [
        {"key": "k", "effect": "Sometimes"},
        {"key": "k", "value": "v", "effect": "NoSchedule"},
        {"key": "k", "effect": "NoSchedule"},
    ]
    assert [e.message() for e in NodeStrategy().validate(node)] == [
        'metadata.taints[0].effect: Unsupported value: "Sometimes": supported values: "NoSchedule", '
        '"PreferNoSchedule", "NoExecute"',
        'metadata.taints[2]: Duplicate value: {"effect":"NoSchedule","key":"k"}: taints must be unique by key and '
        "effect pair",
    ]


def test_table() -> None:
    node = registered(
        conditions=[{"type": "Ready", "status": "True"}],
        addresses=[
            {"type": "InternalIP", "address": "192.168.1.10"},
            {"type": "Hostname", "address": "node-1"},
        ],
        nodeInfo={
            "kubeletVersion": "v1.32.4",
            "osImage": "Ubuntu 24.04",
            "kernelVersion": "6.8",
            "containerRuntimeVersion": "containerd://2.0.0",
        },
    )
    row = NodeStrategy().table_row(node)
    assert row[:3] == ["node-1", "Ready", "control-plane,master,worker"]
    assert row[4:] == [
        "v1.32.4",
        "192.168.1.10",
        "<none>",
        "Ubuntu 24.04",
        "6.8",
        "containerd://2.0.0",
    ]
    node["spec"]["unschedulable"] = True
    assert node_status_cell(node) == "Ready,SchedulingDisabled"
    node["status"]["conditions"][0]["status"] = "Unknown"
    assert node_status_cell(node) == "NotReady,SchedulingDisabled"
    assert node_status_cell({}) == "Unknown"
    assert node_roles({}) == []
    assert NodeStrategy().selectable_fields(node)["spec.unschedulable"] == "true"


def test_capacity_quantities() -> None:
    node = registered()
    node["status"]["capacity"]["pods"] = "1.5"
    assert [e.message() for e in NodeStrategy().validate(node)] == [
        'status.capacity.pods: Invalid value: "1500m": must be an integer'
    ]
