"""TaintToleration: a node's NoSchedule and NoExecute taints keep out pods that do not
tolerate them (filter); untolerated PreferNoSchedule taints lower a node's score."""

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
    Rejections,
    Status,
    default_normalize_score,
    unresolvable,
)
from timonel.scheduler.podspec import (
    EFFECT_PREFER_NO_SCHEDULE,
    Taint,
    Toleration,
    find_untolerated_taint,
    tolerations_tolerate,
)

NAME: Final = "TaintToleration"
_PRE_SCORE_KEY: Final = f"PreScore{NAME}"


def untolerated_taint_reason(taint: Taint) -> str:
    return f"node(s) had untolerated taint {{{taint.key}: {taint.value}}}"


class _PreScoreState:
    __slots__ = ("tolerations",)

    def __init__(self, tolerations: tuple[Toleration, ...]) -> None:
        self.tolerations = tolerations


class TaintToleration:
    name = NAME

    def filter(self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]) -> Rejections:
        rejections: Rejections = {}
        if not state.snapshot.any_no_schedule_taints:
            return rejections
        # Nodes usually share a handful of taint sets (control plane, pressure, none).
        verdicts: dict[tuple[Taint, ...], Status | None] = {}
        tainted = [
            (i, node.no_schedule_taints) for i, node in enumerate(nodes) if node.no_schedule_taints
        ]
        for index, taints in tainted:
            if taints in verdicts:
                verdict = verdicts[taints]
            else:
                taint = find_untolerated_taint(taints, pod.tolerations)
                verdict = (
                    None if taint is None else unresolvable(NAME, untolerated_taint_reason(taint))
                )
                verdicts[taints] = verdict
            if verdict is not None:
                rejections[index] = verdict
        return rejections

    def pre_score(self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]) -> Status:
        if not state.snapshot.any_prefer_no_schedule_taints:
            return SKIP  # every node would score the same
        prefer = tuple(
            t for t in pod.tolerations if not t.effect or t.effect == EFFECT_PREFER_NO_SCHEDULE
        )
        state.write(_PRE_SCORE_KEY, _PreScoreState(prefer))
        return SUCCESS

    def score(self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]) -> list[int]:
        tolerations = state.read(_PRE_SCORE_KEY, _PreScoreState).tolerations
        scores = [0] * len(nodes)
        if not state.snapshot.any_prefer_no_schedule_taints:
            return scores
        for index, node in enumerate(nodes):
            taints = node.prefer_no_schedule_taints
            if taints:
                scores[index] = sum(
                    1 for taint in taints if not tolerations_tolerate(tolerations, taint)
                )
        return scores

    def normalize(
        self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo], scores: list[int]
    ) -> None:
        default_normalize_score(scores, reverse=True)

    def events_to_register(self) -> frozenset[ClusterEvent]:
        return frozenset({ClusterEvent.NODE_ADD, ClusterEvent.NODE_TAINT_CHANGE})


def new(args: Mapping[str, Any], handle: Handle) -> TaintToleration:
    return TaintToleration()
