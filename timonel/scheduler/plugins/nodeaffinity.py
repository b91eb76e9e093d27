"""NodeAffinity: `spec.nodeSelector` and required node affinity filter nodes; preferred
node affinity terms add their weights to the nodes they match (normalised to 0..100)."""

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
    default_normalize_score,
    unresolvable,
)

NAME: Final = "NodeAffinity"
REASON_POD: Final = "node(s) didn't match Pod's node affinity/selector"
REASON_CONFLICT: Final = "pod affinity terms conflict"

_REJECTED: Final = unresolvable(NAME, REASON_POD)


class NodeAffinity:
    name = NAME

    def pre_filter(
        self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]
    ) -> tuple[PreFilterResult | None, Status]:
        required = pod.required_node_affinity
        if required is None:
            return None, SKIP
        if not required.terms:
            return None, SUCCESS
        # Terms are ORed: only when every term pins `metadata.name` can the node list be cut.
        names: frozenset[str] = frozenset()
        for term in required.terms:
            pinned = term.pinned_names
            if pinned is None:
                return None, SUCCESS
            names |= pinned
        if not names:
            return None, unresolvable(NAME, REASON_CONFLICT)
        return PreFilterResult(names), SUCCESS

    def filter(self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]) -> Rejections:
        required = pod.required_node_affinity
        if required is None:
            return {}
        return {
            i: _REJECTED
            for i, node in enumerate(nodes)
            if not required.matches(node.labels, node.name)
        }

    def pre_score(self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]) -> Status:
        return SUCCESS if pod.preferred_node_affinity else SKIP

    def score(self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]) -> list[int]:
        terms = pod.preferred_node_affinity
        return [
            sum(p.weight for p in terms if p.term.matches(node.labels, node.name)) for node in nodes
        ]

    def normalize(
        self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo], scores: list[int]
    ) -> None:
        default_normalize_score(scores, reverse=False)

    def events_to_register(self) -> frozenset[ClusterEvent]:
        return frozenset({ClusterEvent.NODE_ADD, ClusterEvent.NODE_LABEL_CHANGE})


def new(args: Mapping[str, Any], handle: Handle) -> NodeAffinity:
    return NodeAffinity()
