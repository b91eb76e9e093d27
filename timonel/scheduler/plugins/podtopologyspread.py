"""PodTopologySpread: keep matching pods evenly spread over topology domains.

Filter (`whenUnsatisfiable: DoNotSchedule`): a node fails when placing the pod there
would make `pods in its domain + self - fewest pods in any domain` exceed `maxSkew`
(the fewest counts as 0 when there are fewer domains than `minDomains`).

Score (`ScheduleAnyway`, and the cluster default for pods without constraints: hostname
maxSkew 3 and zone maxSkew 5 over the pods selected by the Services and the controller of
the pod): each node scores `sum(count * log(domains + 2) + maxSkew - 1)`, and fewer
matching pods normalise to a higher score.

Counting walks the cache's pod groups, not every pod: a workload's replicas share one
group whose per-node and per-domain counts the cache keeps current.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from operator import add, getitem, mul
from typing import Any, Final, cast

from timonel.api.selectors import LabelSelector, Operator, Requirement
from timonel.scheduler.cache import PodGroup, Snapshot, count_in_topology
from timonel.scheduler.framework import (
    MAX_NODE_SCORE,
    SKIP,
    SUCCESS,
    ClusterEvent,
    ClusterLister,
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
from timonel.scheduler.podspec import (
    LABEL_HOSTNAME,
    LABEL_ZONE,
    SpreadConstraint,
    find_untolerated_taint,
)

NAME: Final = "PodTopologySpread"
REASON_CONSTRAINTS: Final = "node(s) didn't match pod topology spread constraints"
REASON_MISSING_LABEL: Final = REASON_CONSTRAINTS + " (missing required label)"

DO_NOT_SCHEDULE: Final = "DoNotSchedule"
SCHEDULE_ANYWAY: Final = "ScheduleAnyway"

SYSTEM_DEFAULT_CONSTRAINTS: Final = (
    SpreadConstraint(3, LABEL_HOSTNAME, SCHEDULE_ANYWAY, LabelSelector()),
    SpreadConstraint(5, LABEL_ZONE, SCHEDULE_ANYWAY, LabelSelector()),
)
_MAX_INT32: Final = 2**31 - 1
_PRE_FILTER_KEY: Final = f"PreFilter{NAME}"
_PRE_SCORE_KEY: Final = f"PreScore{NAME}"

_CONSTRAINTS_FAILED: Final = unschedulable(NAME, REASON_CONSTRAINTS)
_LABEL_MISSING: Final = unresolvable(NAME, REASON_MISSING_LABEL)


def default_selector(pod: PodInfo, lister: ClusterLister) -> LabelSelector:
    """helper.DefaultSelector: the selectors of the Services selecting the pod, merged,
    plus the selector of the pod's ReplicationController, ReplicaSet or StatefulSet."""
    merged: dict[str, str] = {}
    for selector in lister.service_selectors(pod.namespace):
        if all(pod.labels.get(k) == v for k, v in selector.items()):
            merged.update(selector)
    requirements = [Requirement(k, Operator.EQUALS, (v,)) for k, v in merged.items()]
    owner = pod.controller
    if owner is not None and owner.kind in _SPREAD_CONTROLLERS.get(owner.api_version, ()):
        controller = lister.controller_selector(pod.namespace, owner)
        if controller is not None and not controller.selects_nothing:
            requirements.extend(controller.requirements)
    requirements.sort(key=lambda r: r.key)
    return LabelSelector(tuple(requirements))


_SPREAD_CONTROLLERS: Final = {
    "v1": ("ReplicationController",),
    "apps/v1": ("ReplicaSet", "StatefulSet"),
}


def _hostname_counts(groups: Sequence[PodGroup], names: Sequence[str]) -> list[int]:
    """Matching pods on each named node."""
    if not groups:
        return [0] * len(names)
    counts = list(map(groups[0].node_counts.get, names, itertools.repeat(0)))
    for group in groups[1:]:
        on_node = map(group.node_counts.get, names, itertools.repeat(0))
        counts = list(map(add, counts, on_node))
    return counts


class _Weighted:
    """One score constraint whose key every node carries: its weight and each node's
    count, given directly (hostname) or as the node's domain and the domain's count."""

    __slots__ = ("_counts", "domain_counts", "values", "weight")

    def __init__(
        self,
        weight: float,
        counts: list[int] | None,
        values: list[str] | None = None,
        domain_counts: Mapping[str, int] | None = None,
    ) -> None:
        self.weight = weight
        self._counts = counts
        self.values = values or []
        self.domain_counts = domain_counts or {}

    @property
    def by_domain(self) -> bool:
        return self._counts is None

    def counts(self) -> list[int]:
        if self._counts is None:
            self._counts = list(map(self.domain_counts.__getitem__, self.values))
        return self._counts


def _two_weighted(first: _Weighted, second: _Weighted, constant: float, size: int) -> list[int]:
    """int(a * w1 + b * w2 + constant) for each node's counts (a, b)."""
    w1, w2 = first.weight, second.weight
    if first.by_domain != second.by_domain:
        # Per-node counts and a per-domain count: one row of scores per domain, indexed by
        # the per-node count, then each node's score is looked up without arithmetic.
        direct, domains = (second, first) if first.by_domain else (first, second)
        counts = direct.counts()
        top = max(counts, default=0)
        if len(domains.domain_counts) * (top + 1) <= size:
            rows: dict[str, list[int]] = {}
            for value, b in domains.domain_counts.items():
                if first.by_domain:
                    rows[value] = [int(b * w1 + a * w2 + constant) for a in range(top + 1)]
                else:
                    rows[value] = [int(a * w1 + b * w2 + constant) for a in range(top + 1)]
            return list(map(getitem, map(rows.__getitem__, domains.values), counts))
    firsts, seconds = first.counts(), second.counts()
    if not firsts:
        return []
    # Counts are small non-negative ints and pairs repeat across nodes: each pair as one
    # int, a * base + b, computed without a Python-level loop, and scored once.
    base = max(seconds) + 1
    pairs = list(map(add, map(mul, firsts, itertools.repeat(base)), seconds))
    table = {}
    for pair in set(pairs):
        a, b = divmod(pair, base)
        table[pair] = int(a * w1 + b * w2 + constant)
    return list(map(table.__getitem__, pairs))


def _domains_among(nodes: Sequence[NodeInfo], key: str, snapshot: Snapshot) -> set[str]:
    """The values of `key` among `nodes` ("" for nodes without it, which kube-scheduler
    puts in one domain), stopping once every value in the cluster has been seen."""
    everywhere = snapshot.on_every_node(key)
    possible = len(snapshot.topology_domains(key)) + (0 if everywhere else 1)
    seen: set[str] = set()
    for node in nodes:
        seen.add(node.labels.get(key, ""))
        if len(seen) == possible:
            break
    return seen


def _matching_count(groups: Sequence[PodGroup], node_name: str) -> int:
    return sum(g.node_counts.get(node_name, 0) for g in groups)


def _included(constraint: SpreadConstraint, pod: PodInfo, node: NodeInfo) -> bool:
    """matchNodeInclusionPolicies."""
    required = pod.required_node_affinity
    if (
        constraint.honor_node_affinity
        and required is not None
        and not required.matches(node.labels, node.name)
    ):
        return False
    return not (
        constraint.honor_node_taints
        and find_untolerated_taint(node.no_schedule_taints, pod.tolerations) is not None
    )


def _has_keys(node: NodeInfo, constraints: Sequence[SpreadConstraint]) -> bool:
    labels = node.labels
    return all(c.topology_key in labels for c in constraints)


def _counts_need_no_node_checks(
    pod: PodInfo, constraints: Sequence[SpreadConstraint], require_all: bool
) -> bool:
    """Whether every node carrying a constraint's key counts for it, so counts can come
    straight from the per-domain group counts."""
    if any(c.honor_node_taints for c in constraints):
        return False
    if pod.required_node_affinity is not None and any(c.honor_node_affinity for c in constraints):
        return False
    return not require_all or len({c.topology_key for c in constraints}) == 1


@dataclass
class _Hard:
    """PreFilter state for one DoNotSchedule constraint."""

    constraint: SpreadConstraint
    counts: dict[str, int]  # matching pods per domain (domains with none may be absent)
    min_match: int
    self_match: int


class _PreFilterState:
    __slots__ = ("hard",)

    def __init__(self, hard: list[_Hard]) -> None:
        self.hard = hard


@dataclass
class _Soft:
    constraint: SpreadConstraint
    groups: list[PodGroup]
    domain_counts: dict[str, int]  # non-hostname keys: matching pods per domain
    weight: float


class _PreScoreState:
    __slots__ = ("ignored", "soft")

    def __init__(self, soft: list[_Soft], ignored: set[str]) -> None:
        self.soft = soft
        self.ignored = ignored


class PodTopologySpread:
    name = NAME

    def __init__(
        self,
        lister: ClusterLister,
        defaults: tuple[SpreadConstraint, ...] = SYSTEM_DEFAULT_CONSTRAINTS,
        *,
        system_defaulted: bool = True,
    ) -> None:
        self._lister = lister
        self._defaults = defaults
        self._system_defaulted = system_defaulted
        self._default_cache: dict[tuple[str, LabelSelector], tuple[SpreadConstraint, ...]] = {}

    def _constraints(self, pod: PodInfo, action: str) -> tuple[SpreadConstraint, ...]:
        if pod.spread_constraints:
            return tuple(c for c in pod.spread_constraints if c.when_unsatisfiable == action)
        if not any(c.when_unsatisfiable == action for c in self._defaults):
            return ()
        selector = default_selector(pod, self._lister)
        if not selector.requirements:
            return ()
        key = (action, selector)
        constraints = self._default_cache.get(key)
        if constraints is None:
            constraints = tuple(
                replace(c, selector=selector)
                for c in self._defaults
                if c.when_unsatisfiable == action
            )
            self._default_cache[key] = constraints
        return constraints

    # -- filter ----------------------------------------------------------------------------

    def pre_filter(
        self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]
    ) -> tuple[PreFilterResult | None, Status]:
        constraints = self._constraints(pod, DO_NOT_SCHEDULE)
        if not constraints:
            return None, SKIP
        snapshot = state.snapshot
        hard = [_Hard(c, {}, 0, 1 if c.selector.matches(pod.labels) else 0) for c in constraints]
        groups = [snapshot.pod_groups.matching(pod.namespace, c.selector) for c in constraints]
        domain_totals: list[int] = []
        if _counts_need_no_node_checks(pod, constraints, require_all=True):
            for entry, matching in zip(hard, groups, strict=True):
                key = entry.constraint.topology_key
                domains = snapshot.topology_domains(key)
                domain_totals.append(len(domains))
                for group in matching:
                    for value, count in count_in_topology(group, key, snapshot.node_map).items():
                        entry.counts[value] = entry.counts.get(value, 0) + count
        else:
            seen: list[set[str]] = [set() for _ in constraints]
            for node in nodes:
                if not _has_keys(node, constraints):
                    continue
                for index, entry in enumerate(hard):
                    if not _included(entry.constraint, pod, node):
                        continue
                    value = node.labels[entry.constraint.topology_key]
                    seen[index].add(value)
                    count = _matching_count(groups[index], node.name)
                    entry.counts[value] = entry.counts.get(value, 0) + count
            domain_totals = [len(s) for s in seen]
        for entry, total in zip(hard, domain_totals, strict=True):
            entry.min_match = _min_match(entry.counts, total, entry.constraint.min_domains)
        state.write(_PRE_FILTER_KEY, _PreFilterState(hard))
        return None, SUCCESS

    def filter(self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]) -> Rejections:
        hard = state.read(_PRE_FILTER_KEY, _PreFilterState).hard
        rejections: Rejections = {}
        for index, node in enumerate(nodes):
            labels = node.labels
            for entry in hard:
                constraint = entry.constraint
                value = labels.get(constraint.topology_key)
                if value is None:
                    rejections[index] = _LABEL_MISSING
                    break
                skew = entry.counts.get(value, 0) + entry.self_match - entry.min_match
                if skew > constraint.max_skew:
                    rejections[index] = _CONSTRAINTS_FAILED
                    break
        return rejections

    # -- score -----------------------------------------------------------------------------

    def pre_score(self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]) -> Status:
        snapshot = state.snapshot
        if not snapshot.nodes:
            return SKIP
        constraints = self._constraints(pod, SCHEDULE_ANYWAY)
        if not constraints:
            return SKIP
        require_all = bool(pod.spread_constraints) or not self._system_defaulted
        ignored: set[str] = set()
        scored: Sequence[NodeInfo] = nodes
        if require_all:
            ignored = {n.name for n in nodes if not _has_keys(n, constraints)}
            if ignored:
                scored = [n for n in nodes if n.name not in ignored]
        soft = []
        for constraint in constraints:
            groups = snapshot.pod_groups.matching(pod.namespace, constraint.selector)
            key = constraint.topology_key
            domains: dict[str, int] = {}
            if key == LABEL_HOSTNAME:
                size = len(scored)
            else:
                domains = dict.fromkeys(_domains_among(scored, key, snapshot), 0)
                size = len(domains)
            soft.append(_Soft(constraint, groups, domains, math.log(size + 2)))
        _count_domains(pod, soft, snapshot, constraints, require_all)
        state.write(_PRE_SCORE_KEY, _PreScoreState(soft, ignored))
        return SUCCESS

    def score(self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]) -> list[int]:
        prepared = state.read(_PRE_SCORE_KEY, _PreScoreState)
        snapshot = state.snapshot
        # Each node scores sum(count * weight + maxSkew - 1) over the constraints whose key
        # it carries. Constraints whose key every node carries contribute a weighted count
        # vector and a constant; the others a per-node vector of their own.
        constant = 0.0
        weighted: list[_Weighted] = []
        masked: list[list[float]] = []
        names: list[str] | None = None
        for entry in prepared.soft:
            key = entry.constraint.topology_key
            weight = entry.weight
            skew = entry.constraint.max_skew - 1
            everywhere = snapshot.on_every_node(key)
            if key == LABEL_HOSTNAME:
                if names is None:
                    names = state.node_names(nodes)
                counts = _hostname_counts(entry.groups, names)
                if everywhere:
                    weighted.append(_Weighted(weight, counts))
            elif everywhere:
                # Every scored node's value is one of the domains counted in PreScore.
                values = cast(list[str], state.label_values(nodes, key))
                weighted.append(_Weighted(weight, None, values, entry.domain_counts))
            else:
                in_domain = entry.domain_counts
                counts = [in_domain.get(n.labels.get(key, ""), 0) for n in nodes]
            if everywhere:
                constant += skew
            else:
                present = [key in n.labels for n in nodes]
                masked.append(
                    [c * weight + skew if p else 0.0 for c, p in zip(counts, present, strict=True)]
                )
        constant += 0.5  # math.Round, for the non-negative totals here
        if len(weighted) == 2 and not masked:
            scores = _two_weighted(weighted[0], weighted[1], constant, len(nodes))
        elif len(weighted) == 1 and not masked:
            first, w1 = weighted[0].counts(), weighted[0].weight
            scores = [int(a * w1 + constant) for a in first]
        else:
            columns = [[c * item.weight for c in item.counts()] for item in weighted] + masked
            scores = [int(sum(column) + constant) for column in zip(*columns, strict=True)]
        if prepared.ignored:
            ignored = prepared.ignored
            scores = [0 if n.name in ignored else s for n, s in zip(nodes, scores, strict=True)]
        return scores

    def normalize(
        self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo], scores: list[int]
    ) -> None:
        ignored = state.read(_PRE_SCORE_KEY, _PreScoreState).ignored
        valid = (
            [s for node, s in zip(nodes, scores, strict=True) if node.name not in ignored]
            if ignored
            else scores
        )
        if not valid:
            scores[:] = [0] * len(scores)
            return
        # Few distinct scores: each is normalised once, then looked up per node.
        distinct = set(scores)
        valid_distinct = set(valid) if ignored else distinct
        lowest, highest = min(valid_distinct), max(valid_distinct)
        if highest == 0:
            normalized = [MAX_NODE_SCORE] * len(scores)
        else:
            total, top = highest + lowest, MAX_NODE_SCORE
            by_score = {s: top * (total - s) // highest for s in distinct}
            normalized = list(map(by_score.__getitem__, scores))
        if ignored:
            normalized = [
                0 if n.name in ignored else s for n, s in zip(nodes, normalized, strict=True)
            ]
        scores[:] = normalized

    def events_to_register(self) -> frozenset[ClusterEvent]:
        return frozenset(
            {
                ClusterEvent.ASSIGNED_POD_ADD,
                ClusterEvent.ASSIGNED_POD_UPDATE,
                ClusterEvent.ASSIGNED_POD_DELETE,
                ClusterEvent.NODE_ADD,
                ClusterEvent.NODE_DELETE,
                ClusterEvent.NODE_LABEL_CHANGE,
                ClusterEvent.NODE_TAINT_CHANGE,
                ClusterEvent.WORKLOAD_CHANGE,
            }
        )


def _min_match(counts: Mapping[str, int], domains: int, min_domains: int) -> int:
    """The fewest matching pods in any eligible domain (criticalPaths[0]), taking
    minDomains into account."""
    if domains < min_domains:
        return 0
    if domains == 0:
        return _MAX_INT32
    if len(counts) < domains:
        return 0  # some domain has no matching pod
    return min(counts.values())


def _count_domains(
    pod: PodInfo,
    soft: list[_Soft],
    snapshot: Snapshot,
    constraints: Sequence[SpreadConstraint],
    require_all: bool,
) -> None:
    """Fill each non-hostname constraint's counts for the domains of the scored nodes."""
    wanted = [e for e in soft if e.constraint.topology_key != LABEL_HOSTNAME and e.domain_counts]
    if not wanted:
        return
    if _counts_need_no_node_checks(pod, constraints, require_all):
        for entry in wanted:
            key = entry.constraint.topology_key
            counts = entry.domain_counts
            for group in entry.groups:
                for value, count in count_in_topology(group, key, snapshot.node_map).items():
                    if value in counts:
                        counts[value] += count
        return
    for node in snapshot.nodes:
        if require_all and not _has_keys(node, constraints):
            continue
        for entry in wanted:
            constraint = entry.constraint
            if not _included(constraint, pod, node):
                continue
            value = node.labels.get(constraint.topology_key, "")
            if value in entry.domain_counts:
                entry.domain_counts[value] += _matching_count(entry.groups, node.name)


def _default_constraints(args: Mapping[str, Any]) -> tuple[tuple[SpreadConstraint, ...], bool]:
    if args.get("defaultingType", "System") != "List":
        return SYSTEM_DEFAULT_CONSTRAINTS, True
    result = []
    for raw in args.get("defaultConstraints") or ():
        result.append(
            SpreadConstraint(
                int(raw.get("maxSkew") or 1),
                str(raw.get("topologyKey") or ""),
                str(raw.get("whenUnsatisfiable") or DO_NOT_SCHEDULE),
                LabelSelector(),
            )
        )
    return tuple(result), False


def new(args: Mapping[str, Any], handle: Handle) -> PodTopologySpread:
    defaults, system = _default_constraints(args)
    return PodTopologySpread(handle.lister, defaults, system_defaulted=system)
