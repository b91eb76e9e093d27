"""NodeName: a pod that names its node (`spec.nodeName`) fits only that node."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from timonel.scheduler.framework import (
    ClusterEvent,
    CycleState,
    Handle,
    NodeInfo,
    PodInfo,
    Rejections,
    unresolvable,
)

NAME: Final = "NodeName"
REASON: Final = "node(s) didn't match the requested node name"

_REJECTED: Final = unresolvable(NAME, REASON)


class NodeName:
    name = NAME

    def filter(self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]) -> Rejections:
        wanted = pod.node_name
        if not wanted:
            return {}
        return {i: _REJECTED for i, node in enumerate(nodes) if node.name != wanted}

    def events_to_register(self) -> frozenset[ClusterEvent]:
        return frozenset({ClusterEvent.NODE_ADD})


def new(args: Mapping[str, Any], handle: Handle) -> NodeName:
    return NodeName()
