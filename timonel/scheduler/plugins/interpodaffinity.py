"""InterPodAffinity: required pod affinity and anti-affinity (filter), preferred ones and
existing pods' terms towards the incoming pod (score).

Filter, per node:
- affinity: for every required affinity term, the node's domain (its value of the term's
  topology key) holds a pod matching all the terms; a pod whose terms match only itself
  may go anywhere with the keys while no such pod exists yet (the first of a group);
- anti-affinity: no domain of the node holds a pod matching one of the pod's required
  anti-affinity terms;
- existing anti-affinity: no pod in the node's domains has a required anti-affinity term
  matching the incoming pod.

Counts are taken per pod group (see the cache) and per topology value, so a node is
checked with a few dictionary lookups however many pods the cluster runs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from timonel.scheduler.cache import PodGroup, Snapshot, count_in_topology
from timonel.scheduler.framework import (
    MAX_NODE_SCORE,
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
    unresolvable,
    unschedulable,
)
from timonel.scheduler.podspec import AffinityTerm

NAME: Final = "InterPodAffinity"
REASON_AFFINITY: Final = "node(s) didn't match pod affinity rules"
REASON_ANTI_AFFINITY: Final = "node(s) didn't match pod anti-affinity rules"
REASON_EXISTING_ANTI_AFFINITY: Final = "node(s) didn't satisfy existing pods anti-affinity rules"

_AFFINITY_FAILED: Final = unresolvable(NAME, REASON_AFFINITY)
_ANTI_AFFINITY_FAILED: Final = unschedulable(NAME, REASON_ANTI_AFFINITY)
_EXISTING_FAILED: Final = unschedulable(NAME, REASON_EXISTING_ANTI_AFFINITY)
_PRE_FILTER_KEY: Final = f"PreFilter{NAME}"
_PRE_SCORE_KEY: Final = f"PreScore{NAME}"

# topology key -> per-value pod counts of every group that contributes
Domains = dict[str, list[Mapping[str, int]]]


def _occupied(domains: Domains, key: str, value: str) -> bool:
    return any(counts.get(value, 0) > 0 for counts in domains.get(key, ()))


def _term_matches_group(term: AffinityTerm, group: PodGroup, snapshot: Snapshot) -> bool:
    return term.matches(
        group.namespace, group.labels, snapshot.lister.namespace_labels(group.namespace)
    )


def _term_matches_pod(term: AffinityTerm, pod: PodInfo, snapshot: Snapshot) -> bool:
    return term.matches(pod.namespace, pod.labels, snapshot.lister.namespace_labels(pod.namespace))


class _PreFilterState:
    __slots__ = ("affinity", "affinity_exists", "anti_affinity", "existing", "matches_itself")

    def __init__(self) -> None:
        self.affinity: Domains = {}
        self.anti_affinity: Domains = {}
        self.existing: Domains = {}
        self.affinity_exists = False
        self.matches_itself = False


def _add(domains: Domains, key: str, counts: Mapping[str, int]) -> bool:
    domains.setdefault(key, []).append(counts)
    return any(c > 0 for c in counts.values())


class InterPodAffinity:
    name = NAME

    def __init__(self, hard_pod_affinity_weight: int = 1) -> None:
        self.hard_pod_affinity_weight = hard_pod_affinity_weight

    # -- filter ----------------------------------------------------------------------------

    def pre_filter(
        self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]
    ) -> tuple[PreFilterResult | None, Status]:
        snapshot = state.snapshot
        node_map = snapshot.node_map
        prepared = _PreFilterState()
        has_existing = False
        for group in snapshot.pod_groups.with_required_anti_affinity():
            for term in group.affinity.required_anti_affinity:
                if _term_matches_pod(term, pod, snapshot):
                    counts = count_in_topology(group, term.topology_key, node_map)
                    has_existing |= _add(prepared.existing, term.topology_key, counts)
        required = pod.affinity.required_affinity
        anti = pod.affinity.required_anti_affinity
        if not has_existing and not required and not anti:
            return None, SKIP
        if required or anti:
            for group in snapshot.pod_groups.groups():
                if required and all(_term_matches_group(t, group, snapshot) for t in required):
                    for term in required:
                        counts = count_in_topology(group, term.topology_key, node_map)
                        prepared.affinity_exists |= _add(
                            prepared.affinity, term.topology_key, counts
                        )
                for term in anti:
                    if _term_matches_group(term, group, snapshot):
                        _add(
                            prepared.anti_affinity,
                            term.topology_key,
                            count_in_topology(group, term.topology_key, node_map),
                        )
            prepared.matches_itself = bool(required) and all(
                _term_matches_pod(t, pod, snapshot) for t in required
            )
        state.write(_PRE_FILTER_KEY, prepared)
        return None, SUCCESS

    def filter(self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]) -> Rejections:
        prepared = state.read(_PRE_FILTER_KEY, _PreFilterState)
        required = pod.affinity.required_affinity
        anti = pod.affinity.required_anti_affinity
        existing = prepared.existing
        rejections: Rejections = {}
        for index, node in enumerate(nodes):
            labels = node.labels
            if required and not self._satisfies_affinity(prepared, required, labels):
                rejections[index] = _AFFINITY_FAILED
            elif anti and any(
                t.topology_key in labels
                and _occupied(prepared.anti_affinity, t.topology_key, labels[t.topology_key])
                for t in anti
            ):
                rejections[index] = _ANTI_AFFINITY_FAILED
            elif existing and any(
                key in labels and _occupied(existing, key, labels[key]) for key in existing
            ):
                rejections[index] = _EXISTING_FAILED
        return rejections

    @staticmethod
    def _satisfies_affinity(
        prepared: _PreFilterState, required: Sequence[AffinityTerm], labels: Mapping[str, str]
    ) -> bool:
        pods_exist = True
        for term in required:
            value = labels.get(term.topology_key)
            if value is None:
                return False
            if not _occupied(prepared.affinity, term.topology_key, value):
                pods_exist = False
        if pods_exist:
            return True
        # The first pod of a group with affinity to itself may go anywhere.
        return not prepared.affinity_exists and prepared.matches_itself

    # -- score -----------------------------------------------------------------------------

    def pre_score(self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]) -> Status:
        if not nodes:
            return SKIP
        snapshot = state.snapshot
        node_map = snapshot.node_map
        affinity = pod.affinity
        has_constraints = bool(affinity.preferred_affinity or affinity.preferred_anti_affinity)
        scores: dict[str, dict[str, int]] = {}

        def credit(term: AffinityTerm, weight: int, group: PodGroup) -> None:
            key = term.topology_key
            per_value = scores.setdefault(key, {})
            for value, count in count_in_topology(group, key, node_map).items():
                per_value[value] = per_value.get(value, 0) + weight * count

        groups = (
            snapshot.pod_groups.groups() if has_constraints else snapshot.pod_groups.with_affinity()
        )
        for group in groups:
            existing = group.affinity
            for weighted in affinity.preferred_affinity:
                if _term_matches_group(weighted.term, group, snapshot):
                    credit(weighted.term, weighted.weight, group)
            for weighted in affinity.preferred_anti_affinity:
                if _term_matches_group(weighted.term, group, snapshot):
                    credit(weighted.term, -weighted.weight, group)
            if self.hard_pod_affinity_weight > 0:
                for term in existing.required_affinity:
                    if _term_matches_pod(term, pod, snapshot):
                        credit(term, self.hard_pod_affinity_weight, group)
            for weighted in existing.preferred_affinity:
                if _term_matches_pod(weighted.term, pod, snapshot):
                    credit(weighted.term, weighted.weight, group)
            for weighted in existing.preferred_anti_affinity:
                if _term_matches_pod(weighted.term, pod, snapshot):
                    credit(weighted.term, -weighted.weight, group)
        if not scores:
            return SKIP
        state.write(_PRE_SCORE_KEY, scores)
        return SUCCESS

    def score(self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]) -> list[int]:
        scores: dict[str, dict[str, int]] = state.read(_PRE_SCORE_KEY, dict)
        result = []
        for node in nodes:
            labels = node.labels
            total = 0
            for key, per_value in scores.items():
                value = labels.get(key)
                if value is not None:
                    total += per_value.get(value, 0)
            result.append(total)
        return result

    def normalize(
        self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo], scores: list[int]
    ) -> None:
        if not scores:
            return
        lowest, highest = min(scores), max(scores)
        spread = highest - lowest
        scores[:] = [
            int(MAX_NODE_SCORE * ((s - lowest) / spread)) if spread > 0 else 0 for s in scores
        ]

    def events_to_register(self) -> frozenset[ClusterEvent]:
        return frozenset(
            {
                ClusterEvent.ASSIGNED_POD_ADD,
                ClusterEvent.ASSIGNED_POD_UPDATE,
                ClusterEvent.ASSIGNED_POD_DELETE,
                ClusterEvent.NODE_ADD,
                ClusterEvent.NODE_LABEL_CHANGE,
                ClusterEvent.NAMESPACE_CHANGE,
            }
        )


def new(args: Mapping[str, Any], handle: Handle) -> InterPodAffinity:
    return InterPodAffinity(int(args.get("hardPodAffinityWeight", 1)))
