"""NodeResourcesFit and NodeResourcesBalancedAllocation.

Fit filters out nodes whose free allocatable (allocatable minus the requests of the pods
already there) is smaller than the pod's request, for cpu, memory, ephemeral-storage,
extended resources and the pod count. Its score is the LeastAllocated strategy by default:
per resource `(allocatable - requested) * 100 / allocatable`, weighted, where requested
uses the non-zero defaults (100m cpu, 200Mi memory) for containers without requests.

BalancedAllocation prefers nodes whose cpu and memory would be used in equal shares:
`(1 - std(fractions)) * 100` over the requested fractions after placing the pod.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final

from timonel.scheduler.framework import (
    MAX_NODE_SCORE,
    SUCCESS,
    ClusterEvent,
    CycleState,
    Handle,
    NodeInfo,
    PodInfo,
    Rejections,
    ResourceState,
    Status,
    unschedulable,
)
from timonel.scheduler.podspec import CPU, EPHEMERAL_STORAGE, MEMORY, is_scalar_resource

FIT_NAME: Final = "NodeResourcesFit"
BALANCED_ALLOCATION_NAME: Final = "NodeResourcesBalancedAllocation"

LEAST_ALLOCATED: Final = "LeastAllocated"
MOST_ALLOCATED: Final = "MostAllocated"
DEFAULT_RESOURCES: Final = ((CPU, 1), (MEMORY, 1))

ResourceWeights = tuple[tuple[str, int], ...]


def _resource_weights(raw: Any) -> ResourceWeights:
    if not raw:
        return DEFAULT_RESOURCES
    return tuple((str(r["name"]), int(r.get("weight") or 1)) for r in raw)


def pod_request(pod: PodInfo, resource: str, *, non_zero: bool) -> int:
    if resource == CPU:
        return pod.non_zero_cpu if non_zero else pod.requests.milli_cpu
    if resource == MEMORY:
        return pod.non_zero_memory if non_zero else pod.requests.memory
    if resource == EPHEMERAL_STORAGE:
        return pod.requests.ephemeral_storage
    return pod.requests.scalar.get(resource, 0)


def allocatable_and_requested(
    node: NodeInfo, resource: str, pod_amount: int, *, non_zero: bool
) -> tuple[int, int]:
    """(allocatable, requested including the pod); (0, 0) leaves the resource out."""
    if pod_amount == 0 and is_scalar_resource(resource):
        return 0, 0
    if resource == CPU:
        return node.alloc_cpu, (node.non_zero_cpu if non_zero else node.req_cpu) + pod_amount
    if resource == MEMORY:
        used = node.non_zero_memory if non_zero else node.req_memory
        return node.alloc_memory, used + pod_amount
    if resource == EPHEMERAL_STORAGE:
        return node.alloc_ephemeral, node.req_ephemeral + pod_amount
    if resource in node.alloc_scalar:
        return node.alloc_scalar[resource], node.req_scalar.get(resource, 0) + pod_amount
    return 0, 0


def least_requested_score(requested: int, capacity: int) -> int:
    if capacity == 0 or requested > capacity:
        return 0
    return (capacity - requested) * MAX_NODE_SCORE // capacity


def most_requested_score(requested: int, capacity: int) -> int:
    if capacity == 0:
        return 0
    requested = min(requested, capacity)
    return requested * MAX_NODE_SCORE // capacity


class Fit:
    name = FIT_NAME

    def __init__(
        self,
        *,
        ignored_resources: frozenset[str] = frozenset(),
        ignored_groups: frozenset[str] = frozenset(),
        strategy: str = LEAST_ALLOCATED,
        resources: ResourceWeights = DEFAULT_RESOURCES,
    ) -> None:
        if strategy not in (LEAST_ALLOCATED, MOST_ALLOCATED):
            raise ValueError(f"scoring strategy {strategy!r} is not supported")
        self.ignored_resources = ignored_resources
        self.ignored_groups = ignored_groups
        self.strategy = strategy
        self.resources = resources
        self._statuses: dict[tuple[str, ...], Status] = {}

    # -- filter ----------------------------------------------------------------------------

    def _checked_scalar(self, pod: PodInfo) -> list[tuple[str, int]]:
        checked = []
        for name, amount in sorted(pod.requests.scalar.items()):
            if not amount:
                continue
            if "/" in name and "kubernetes.io/" not in name:
                group = name.split("/", 1)[0]
                if name in self.ignored_resources or group in self.ignored_groups:
                    continue
            checked.append((name, amount))
        return checked

    def filter(self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]) -> Rejections:
        requests = pod.requests
        cpu, memory, ephemeral = requests.milli_cpu, requests.memory, requests.ephemeral_storage
        scalar = self._checked_scalar(pod) if requests.scalar else []
        rejections: Rejections = {}
        if scalar:
            for index, node in enumerate(nodes):
                reasons = insufficient_resources(node, cpu, memory, ephemeral, scalar)
                if reasons:
                    rejections[index] = self._status(reasons)
            return rejections
        # Answer once per distinct resource state, then look each node up.
        keys = state.resource_states(nodes)
        verdicts: dict[ResourceState, Status | None] = {}
        for key in set(keys):
            reasons = _short_of(key, cpu, memory, ephemeral)
            verdicts[key] = self._status(reasons) if reasons else None
        if not any(verdicts.values()):
            return rejections
        for index, key in enumerate(keys):
            verdict = verdicts[key]
            if verdict is not None:
                rejections[index] = verdict
        return rejections

    def _status(self, reasons: tuple[str, ...]) -> Status:
        status = self._statuses.get(reasons)
        if status is None:
            status = self._statuses[reasons] = unschedulable(FIT_NAME, *reasons)
        return status

    # -- score -----------------------------------------------------------------------------

    def pre_score(self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]) -> Status:
        return SUCCESS

    def score_resource_states(
        self, state: CycleState, pod: PodInfo, states: Iterable[ResourceState]
    ) -> dict[ResourceState, int] | None:
        if self.resources != DEFAULT_RESOURCES:
            return None
        scorer = least_requested_score if self.strategy == LEAST_ALLOCATED else most_requested_score
        return _allocated_cpu_memory(scorer, pod.non_zero_cpu, pod.non_zero_memory, states)

    def score(self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]) -> list[int]:
        by_state = self.score_resource_states(state, pod, set(state.resource_states(nodes)))
        if by_state is not None:
            return list(map(by_state.__getitem__, state.resource_states(nodes)))
        scorer = least_requested_score if self.strategy == LEAST_ALLOCATED else most_requested_score
        amounts = [
            (name, weight, pod_request(pod, name, non_zero=True)) for name, weight in self.resources
        ]
        scores = []
        for node in nodes:
            total = weights = 0
            for name, weight, amount in amounts:
                capacity, requested = allocatable_and_requested(node, name, amount, non_zero=True)
                if capacity == 0:
                    continue
                total += scorer(requested, capacity) * weight
                weights += weight
            scores.append(total // weights if weights else 0)
        return scores

    def events_to_register(self) -> frozenset[ClusterEvent]:
        return frozenset(
            {
                ClusterEvent.NODE_ADD,
                ClusterEvent.NODE_ALLOCATABLE_CHANGE,
                ClusterEvent.ASSIGNED_POD_DELETE,
            }
        )


def insufficient_resources(
    node: NodeInfo, cpu: int, memory: int, ephemeral: int, scalar: Sequence[tuple[str, int]]
) -> tuple[str, ...]:
    """fitsRequest's reasons, in its order: pods, cpu, memory, ephemeral-storage, others."""
    reasons: list[str] = []
    if len(node.pods) >= node.alloc_pods:
        reasons.append("Too many pods")
    if cpu and cpu > node.alloc_cpu - node.req_cpu:
        reasons.append("Insufficient cpu")
    if memory and memory > node.alloc_memory - node.req_memory:
        reasons.append("Insufficient memory")
    if ephemeral and ephemeral > node.alloc_ephemeral - node.req_ephemeral:
        reasons.append("Insufficient ephemeral-storage")
    for name, amount in scalar:
        if amount > node.alloc_scalar.get(name, 0) - node.req_scalar.get(name, 0):
            reasons.append(f"Insufficient {name}")
    return tuple(reasons)


def _short_of(state: ResourceState, cpu: int, memory: int, ephemeral: int) -> tuple[str, ...]:
    """insufficient_resources for a node in `state`, for a pod without extended
    resources."""
    reasons: list[str] = []
    if state.free_pods <= 0:
        reasons.append("Too many pods")
    if cpu and cpu > state.alloc_cpu - state.req_cpu:
        reasons.append("Insufficient cpu")
    if memory and memory > state.alloc_memory - state.req_memory:
        reasons.append("Insufficient memory")
    if ephemeral and ephemeral > state.alloc_ephemeral - state.req_ephemeral:
        reasons.append("Insufficient ephemeral-storage")
    return tuple(reasons)


def _allocated_cpu_memory(
    scorer: Callable[[int, int], int],
    pod_cpu: int,
    pod_memory: int,
    states: Iterable[ResourceState],
) -> dict[ResourceState, int]:
    """The score over cpu and memory, weight 1 each (the default), per node usage."""
    table: dict[ResourceState, int] = {}
    for key in states:
        cpu_capacity, memory_capacity = key.alloc_cpu, key.alloc_memory
        total = weights = 0
        if cpu_capacity:
            total += scorer(key.non_zero_cpu + pod_cpu, cpu_capacity)
            weights += 1
        if memory_capacity:
            total += scorer(key.non_zero_memory + pod_memory, memory_capacity)
            weights += 1
        table[key] = total // weights if weights else 0
    return table


class BalancedAllocation:
    name = BALANCED_ALLOCATION_NAME

    def __init__(self, resources: ResourceWeights = DEFAULT_RESOURCES) -> None:
        self.resources = resources

    def pre_score(self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]) -> Status:
        return SUCCESS

    def score_resource_states(
        self, state: CycleState, pod: PodInfo, states: Iterable[ResourceState]
    ) -> dict[ResourceState, int] | None:
        if self.resources != DEFAULT_RESOURCES:
            return None
        return _balanced_cpu_memory(pod.requests.milli_cpu, pod.requests.memory, states)

    def score(self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]) -> list[int]:
        by_state = self.score_resource_states(state, pod, set(state.resource_states(nodes)))
        if by_state is not None:
            return list(map(by_state.__getitem__, state.resource_states(nodes)))
        amounts = [(name, pod_request(pod, name, non_zero=False)) for name, _ in self.resources]
        scores = []
        for node in nodes:
            fractions = []
            for name, amount in amounts:
                capacity, requested = allocatable_and_requested(node, name, amount, non_zero=False)
                if capacity:
                    fractions.append(min(requested / capacity, 1.0))
            scores.append(balanced_score(fractions))
        return scores

    def events_to_register(self) -> frozenset[ClusterEvent]:
        return frozenset(
            {
                ClusterEvent.NODE_ADD,
                ClusterEvent.NODE_ALLOCATABLE_CHANGE,
                ClusterEvent.ASSIGNED_POD_DELETE,
            }
        )


def balanced_score(fractions: Sequence[float]) -> int:
    std = 0.0
    if len(fractions) == 2:
        std = abs((fractions[0] - fractions[1]) / 2)
    elif len(fractions) > 2:
        mean = sum(fractions) / len(fractions)
        std = math.sqrt(sum((f - mean) * (f - mean) for f in fractions) / len(fractions))
    return int((1 - std) * MAX_NODE_SCORE)


def _balanced_cpu_memory(
    pod_cpu: int, pod_memory: int, states: Iterable[ResourceState]
) -> dict[ResourceState, int]:
    table: dict[ResourceState, int] = {}
    for key in states:
        cpu_capacity, memory_capacity = key.alloc_cpu, key.alloc_memory
        cpu_used, memory_used = key.req_cpu, key.req_memory
        fractions = []
        if cpu_capacity:
            fractions.append(min((cpu_used + pod_cpu) / cpu_capacity, 1.0))
        if memory_capacity:
            fractions.append(min((memory_used + pod_memory) / memory_capacity, 1.0))
        table[key] = balanced_score(fractions)
    return table


def new_fit(args: Mapping[str, Any], handle: Handle) -> Fit:
    strategy = args.get("scoringStrategy") or {}
    return Fit(
        ignored_resources=frozenset(args.get("ignoredResources") or ()),
        ignored_groups=frozenset(args.get("ignoredResourceGroups") or ()),
        strategy=str(strategy.get("type") or LEAST_ALLOCATED),
        resources=_resource_weights(strategy.get("resources")),
    )


def new_balanced_allocation(args: Mapping[str, Any], handle: Handle) -> BalancedAllocation:
    return BalancedAllocation(_resource_weights(args.get("resources")))
