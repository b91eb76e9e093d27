"""NodeUnschedulable: cordoned nodes (`spec.unschedulable`) take only pods that tolerate
the `node.kubernetes.io/unschedulable:NoSchedule` taint."""

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
from timonel.scheduler.podspec import (
    EFFECT_NO_SCHEDULE,
    TAINT_NODE_UNSCHEDULABLE,
    Taint,
    tolerations_tolerate,
)

NAME: Final = "NodeUnschedulable"
REASON: Final = "node(s) were unschedulable"

_UNSCHEDULABLE_TAINT: Final = Taint(TAINT_NODE_UNSCHEDULABLE, "", EFFECT_NO_SCHEDULE)
_REJECTED: Final = unresolvable(NAME, REASON)


class NodeUnschedulable:
    name = NAME

    def filter(self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]) -> Rejections:
        if not state.snapshot.any_cordoned:
            return {}
        cordoned = [i for i, node in enumerate(nodes) if node.unschedulable]
        if not cordoned or tolerations_tolerate(pod.tolerations, _UNSCHEDULABLE_TAINT):
            return {}
        return dict.fromkeys(cordoned, _REJECTED)

    def events_to_register(self) -> frozenset[ClusterEvent]:
        return frozenset(
            {
                ClusterEvent.NODE_ADD,
                ClusterEvent.NODE_SCHEDULABLE_CHANGE,
                ClusterEvent.NODE_TAINT_CHANGE,
            }
        )


def new(args: Mapping[str, Any], handle: Handle) -> NodeUnschedulable:
    return NodeUnschedulable()
