"""NodePorts: a pod asking for host ports fits only nodes where no pod holds the same
protocol and port on the same address (0.0.0.0 clashes with every address)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from timonel.scheduler.framework import (
    SKIP,
    SUCCESS,
    ClusterEvent,
    CycleState,
    Handle,
    NodeInfo,
    PodInfo,
    PreFilterResult,
    Rejections,
    Status,
    unschedulable,
)

NAME: Final = "NodePorts"
REASON: Final = "node(s) didn't have free ports for the requested pod ports"

_REJECTED: Final = unschedulable(NAME, REASON)
_ANY_ADDRESS: Final = "0.0.0.0"


def ports_conflict(node: NodeInfo, wanted: tuple[tuple[str, str, int], ...]) -> bool:
    used = node.used_ports
    if not used:
        return False
    for ip, protocol, port in wanted:
        holders = used.get((protocol, port))
        if holders and (ip == _ANY_ADDRESS or ip in holders or _ANY_ADDRESS in holders):
            return True
    return False


class NodePorts:
    name = NAME

    def pre_filter(
        self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]
    ) -> tuple[PreFilterResult | None, Status]:
        return None, (SUCCESS if pod.host_ports else SKIP)

    def filter(self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]) -> Rejections:
        wanted = pod.host_ports
        return {i: _REJECTED for i, node in enumerate(nodes) if ports_conflict(node, wanted)}

    def events_to_register(self) -> frozenset[ClusterEvent]:
        return frozenset({ClusterEvent.NODE_ADD, ClusterEvent.ASSIGNED_POD_DELETE})


def new(args: Mapping[str, Any], handle: Handle) -> NodePorts:
    return NodePorts()
