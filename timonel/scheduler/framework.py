"""The scheduling framework: results, per-cycle state, node and pod views, plugin Protocols.

A plugin implements `Plugin` (a `name`) and whichever extension points it needs, each a
small Protocol (mypy checks them the way Go's `var _ FilterPlugin = &X{}` does):

    PreFilterPlugin.pre_filter(state, pod, nodes) -> (PreFilterResult | None, Status)
    FilterPlugin.filter(state, pod, nodes) -> Rejections        {index in nodes: Status}
    PostFilterPlugin.post_filter(state, pod, diagnosis) -> Status
    PreScorePlugin.pre_score(state, pod, nodes) -> Status
    ScorePlugin.score(state, pod, nodes) -> list[int]          one score per node
    NormalizeScorePlugin.normalize(state, pod, nodes, scores) -> None   in place, to 0..100
    ReservePlugin.reserve / unreserve(state, pod, node_name)
    BindPlugin.bind(state, pod, node_name) -> Awaitable[Status]

Filter and Score take the whole batch of candidate nodes and answer for all of them: one
Python call per plugin per cycle instead of one per node, which is what lets a Python
scheduler keep up. They stay pure functions of the pod and the node views. A PreFilter or
PreScore that answers `Code.SKIP` turns its plugin's Filter or Score off for that cycle.

`NodeInfo` is the scheduler's incrementally kept view of one node: requested resources,
pods, used host ports and images change as pods are added and removed, never rebuilt.
"""

from __future__ import annotations

import weakref
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from functools import lru_cache
from operator import attrgetter
from typing import TYPE_CHECKING, Any, Final, Protocol, TypeVar, runtime_checkable

from timonel.api.objects import Object
from timonel.api.selectors import LabelSelector
from timonel.scheduler.podspec import (
    CPU,
    DEFAULT_SCHEDULER_NAME,
    EFFECT_NO_EXECUTE,
    EFFECT_NO_SCHEDULE,
    EFFECT_PREFER_NO_SCHEDULE,
    MEMORY,
    NO_POD_AFFINITY,
    PodAffinity,
    PreferredTerm,
    RequiredNodeAffinity,
    Resources,
    SpreadConstraint,
    Taint,
    Toleration,
    compute_requests,
    parse_allocatable,
    parse_host_ports,
    parse_images,
    parse_node_images,
    parse_pod_affinity,
    parse_preferred_node_affinity,
    parse_required_node_affinity,
    parse_spread_constraints,
    parse_taints,
    parse_tolerations,
)

if TYPE_CHECKING:
    from timonel.scheduler.cache import Snapshot

MAX_NODE_SCORE: Final = 100
MIN_NODE_SCORE: Final = 0


# -- results -----------------------------------------------------------------------------------


class Code(IntEnum):
    """The closed vocabulary every extension point answers with."""

    SUCCESS = 0
    ERROR = 1
    UNSCHEDULABLE = 2
    # Unschedulable, and preempting pods on the node would not change that.
    UNSCHEDULABLE_AND_UNRESOLVABLE = 3
    WAIT = 4
    SKIP = 5
    PENDING = 6


@dataclass(frozen=True, slots=True)
class Status:
    code: Code = Code.SUCCESS
    reasons: tuple[str, ...] = ()
    plugin: str = ""

    @staticmethod
    def ok() -> Status:
        return SUCCESS

    @property
    def message(self) -> str:
        return ", ".join(self.reasons)

    @property
    def is_success(self) -> bool:
        return self.code is Code.SUCCESS

    @property
    def is_skip(self) -> bool:
        return self.code is Code.SKIP

    @property
    def is_rejected(self) -> bool:
        return self.code in (Code.UNSCHEDULABLE, Code.UNSCHEDULABLE_AND_UNRESOLVABLE)

    def with_plugin(self, plugin: str) -> Status:
        return self if self.plugin == plugin else Status(self.code, self.reasons, plugin)


SUCCESS: Final = Status()
SKIP: Final = Status(Code.SKIP)


def unschedulable(plugin: str, *reasons: str) -> Status:
    return Status(Code.UNSCHEDULABLE, reasons, plugin)


def unresolvable(plugin: str, *reasons: str) -> Status:
    return Status(Code.UNSCHEDULABLE_AND_UNRESOLVABLE, reasons, plugin)


def error(plugin: str, message: str) -> Status:
    return Status(Code.ERROR, (message,), plugin)


# Filter answers: the index (into the nodes passed) of each node that cannot take the pod.
Rejections = dict[int, Status]


@dataclass(frozen=True, slots=True)
class PreFilterResult:
    """PreFilter narrowing the nodes worth filtering to these names (None: all)."""

    node_names: frozenset[str] | None = None

    def merge(self, other: PreFilterResult | None) -> PreFilterResult:
        if other is None or other.node_names is None:
            return self
        if self.node_names is None:
            return other
        return PreFilterResult(self.node_names & other.node_names)


# -- cycle state -------------------------------------------------------------------------------

T = TypeVar("T")


class StateError(LookupError):
    """A plugin read cycle state its own PreFilter or PreScore did not write."""


class CycleState:
    """The per-cycle scratchpad: PreFilter/PreScore compute once, Filter/Score read."""

    __slots__ = (
        "_data",
        "_keyed_nodes",
        "_keys",
        "_window",
        "skip_filter",
        "skip_score",
        "snapshot",
    )

    def __init__(self, snapshot: Snapshot) -> None:
        self._data: dict[str, object] = {}
        self.snapshot = snapshot
        self.skip_filter: set[str] = set()
        self.skip_score: set[str] = set()
        self._keyed_nodes: Sequence[NodeInfo] | None = None
        self._keys: list[ResourceState] = []
        self._window: tuple[Sequence[NodeInfo], int, int] | None = None

    def set_window(self, nodes: Sequence[NodeInfo], start: int) -> None:
        """`nodes` are the snapshot's nodes from position `start` on (wrapping around):
        per-node values for them can be sliced from the snapshot's columns. (The scheduler
        only ever appends to a node list after passing it on, so a list of the same
        identity and length holds the same nodes.)"""
        self._window = (nodes, start, len(nodes))

    def _slice(self, nodes: Sequence[NodeInfo], column: list[T]) -> list[T] | None:
        window = self._window
        if window is None or nodes is not window[0] or len(nodes) != window[2]:
            return None
        start, end = window[1], window[1] + window[2]
        if end <= len(column):
            return column[start:end]
        return column[start:] + column[: end - len(column)]

    def resource_states(self, nodes: Sequence[NodeInfo]) -> list[ResourceState]:
        """Each node's ResourceState, in order. Remembered for the last list asked about:
        Fit's filter and the resource scores usually ask about the same nodes."""
        keys = self._keys
        if nodes is not self._keyed_nodes or len(keys) != len(nodes):
            sliced = self._slice(nodes, self.snapshot.resources)
            keys = self._keys = sliced if sliced is not None else list(map(_RESOURCES_OF, nodes))
            self._keyed_nodes = nodes
        return keys

    def node_names(self, nodes: Sequence[NodeInfo]) -> list[str]:
        sliced = self._slice(nodes, self.snapshot.names)
        return sliced if sliced is not None else list(map(_NAME_OF, nodes))

    def label_values(self, nodes: Sequence[NodeInfo], key: str) -> list[str | None]:
        """Each node's value of the label `key` (None where it has none)."""
        sliced = self._slice(nodes, self.snapshot.label_column(key))
        if sliced is not None:
            return sliced
        return [node.labels.get(key) for node in nodes]

    def write(self, key: str, value: object) -> None:
        self._data[key] = value

    def read(self, key: str, type_: type[T]) -> T:
        value = self._data.get(key)
        if not isinstance(value, type_):
            raise StateError(f"error reading {key!r} from cycleState: not found")
        return value


_RESOURCES_OF: Final = attrgetter("resources")
_NAME_OF: Final = attrgetter("name")


# -- pods --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ControllerRef:
    api_version: str
    kind: str
    name: str


def _controller_ref(metadata: Mapping[str, Any]) -> ControllerRef | None:
    for ref in metadata.get("ownerReferences") or ():
        if isinstance(ref, dict) and ref.get("controller"):
            return _interned_controller_ref(
                str(ref.get("apiVersion") or ""), str(ref.get("kind") or ""), str(ref.get("name"))
            )
    return None


@lru_cache(maxsize=4096)
def _interned_controller_ref(api_version: str, kind: str, name: str) -> ControllerRef:
    # A workload's replicas share their controller.
    return ControllerRef(api_version, kind, name)


class PodInfo:
    """A pod parsed for scheduling. Built once when the pod enters the scheduler; the
    underlying object is never modified."""

    __slots__ = (
        "affinity",
        "container_count",
        "controller",
        "has_affinity",
        "has_required_anti_affinity",
        "host_ports",
        "images",
        "key",
        "labels",
        "name",
        "namespace",
        "node_name",
        "non_zero_cpu",
        "non_zero_memory",
        "pod",
        "preemption_never",
        "preferred_node_affinity",
        "priority",
        "requests",
        "required_node_affinity",
        "scheduler_name",
        "scheduling_gated",
        "spread_constraints",
        "terminating",
        "tolerations",
        "uid",
    )

    def __init__(self, pod: Object) -> None:
        metadata = pod.get("metadata") or {}
        spec = pod.get("spec") or {}
        self.pod = pod
        self.namespace: str = metadata.get("namespace") or ""
        self.name: str = metadata.get("name") or ""
        self.key = f"{self.namespace}/{self.name}"
        self.uid: str = metadata.get("uid") or self.key
        self.labels: dict[str, str] = metadata.get("labels") or {}
        self.terminating = metadata.get("deletionTimestamp") is not None
        self.controller = _controller_ref(metadata)
        self.priority = int(spec.get("priority") or 0)
        self.preemption_never = spec.get("preemptionPolicy") == "Never"
        self.scheduler_name: str = spec.get("schedulerName") or DEFAULT_SCHEDULER_NAME
        self.scheduling_gated = bool(spec.get("schedulingGates"))
        self.node_name: str = spec.get("nodeName") or ""
        self.requests: Resources
        self.requests, self.non_zero_cpu, self.non_zero_memory = compute_requests(spec)
        self.host_ports = parse_host_ports(spec)
        self.tolerations: tuple[Toleration, ...] = parse_tolerations(spec)
        self.required_node_affinity: RequiredNodeAffinity | None = None
        self.preferred_node_affinity: tuple[PreferredTerm, ...] = ()
        self.affinity: PodAffinity = NO_POD_AFFINITY
        has_affinity = bool(spec.get("affinity"))
        if has_affinity or "nodeSelector" in spec:
            self.required_node_affinity = parse_required_node_affinity(spec)
        if has_affinity:
            self.preferred_node_affinity = parse_preferred_node_affinity(spec)
            self.affinity = parse_pod_affinity(spec, self.namespace)
        self.has_affinity = not self.affinity.empty
        self.has_required_anti_affinity = bool(self.affinity.required_anti_affinity)
        self.spread_constraints: tuple[SpreadConstraint, ...] = (
            parse_spread_constraints(spec, self.labels)
            if spec.get("topologySpreadConstraints")
            else ()
        )
        self.images = parse_images(spec)
        self.container_count = len(self.images)

    def __repr__(self) -> str:
        return f"PodInfo({self.key})"


# -- nodes -------------------------------------------------------------------------------------

PortKey = tuple[str, int]  # (protocol, port)


class ResourceState:
    """A node's resource numbers. Nodes in equal states share one interned instance, so
    resource plugins compute once per distinct state (hashing by identity) and look the
    answer up for each node."""

    __slots__ = (
        "__weakref__",
        "alloc_cpu",
        "alloc_ephemeral",
        "alloc_memory",
        "free_pods",
        "non_zero_cpu",
        "non_zero_memory",
        "req_cpu",
        "req_ephemeral",
        "req_memory",
    )

    def __init__(self, values: tuple[int, int, int, int, int, int, int, int, int]) -> None:
        (
            self.free_pods,
            self.alloc_cpu,
            self.alloc_memory,
            self.alloc_ephemeral,
            self.req_cpu,
            self.req_memory,
            self.req_ephemeral,
            self.non_zero_cpu,
            self.non_zero_memory,
        ) = values


_RESOURCE_STATES: weakref.WeakValueDictionary[tuple[int, ...], ResourceState] = (
    weakref.WeakValueDictionary()
)


def resource_state(values: tuple[int, int, int, int, int, int, int, int, int]) -> ResourceState:
    state = _RESOURCE_STATES.get(values)
    if state is None:
        state = _RESOURCE_STATES[values] = ResourceState(values)
    return state


class NodeInfo:
    """One node and what the scheduler has placed on it, kept up to date incrementally.

    Plugins read the flat attributes directly; only the cache mutates them.
    """

    __slots__ = (
        "alloc_cpu",
        "alloc_ephemeral",
        "alloc_memory",
        "alloc_pods",
        "alloc_scalar",
        "generation",
        "images",
        "labels",
        "name",
        "no_schedule_taints",
        "node",
        "non_zero_cpu",
        "non_zero_memory",
        "pods",
        "pods_with_affinity",
        "pods_with_required_anti_affinity",
        "prefer_no_schedule_taints",
        "req_cpu",
        "req_ephemeral",
        "req_memory",
        "req_scalar",
        "resources",
        "snapshot_column",
        "snapshot_position",
        "taints",
        "unschedulable",
        "used_ports",
    )

    def __init__(self, node: Object | None = None, name: str = "") -> None:
        self.name = name
        self.node: Object = {}
        self.labels: dict[str, str] = {}
        self.taints: tuple[Taint, ...] = ()
        self.no_schedule_taints: tuple[Taint, ...] = ()
        self.prefer_no_schedule_taints: tuple[Taint, ...] = ()
        self.unschedulable = False
        self.alloc_cpu = self.alloc_memory = self.alloc_ephemeral = self.alloc_pods = 0
        self.alloc_scalar: dict[str, int] = {}
        self.images: dict[str, int] = {}
        self.req_cpu = self.req_memory = self.req_ephemeral = 0
        self.req_scalar: dict[str, int] = {}
        self.non_zero_cpu = self.non_zero_memory = 0
        self.pods: dict[str, PodInfo] = {}
        self.pods_with_affinity: dict[str, PodInfo] = {}
        self.pods_with_required_anti_affinity: dict[str, PodInfo] = {}
        # (protocol, port) -> {host IP: number of pods using it}
        self.used_ports: dict[PortKey, dict[str, int]] = {}
        self.generation = 0
        # The snapshot's resources column and this node's place in it, kept current here.
        self.snapshot_column: list[ResourceState] | None = None
        self.snapshot_position = 0
        self.resources = resource_state((0, 0, 0, 0, 0, 0, 0, 0, 0))
        if node is not None:
            self.set_node(node)

    @property
    def has_node(self) -> bool:
        return bool(self.node)

    def set_node(self, node: Object) -> None:
        metadata = node.get("metadata") or {}
        spec = node.get("spec") or {}
        self.node = node
        self.name = metadata.get("name") or self.name
        self.labels = metadata.get("labels") or {}
        self.taints = parse_taints(node)
        self.no_schedule_taints = tuple(
            t for t in self.taints if t.effect in (EFFECT_NO_SCHEDULE, EFFECT_NO_EXECUTE)
        )
        self.prefer_no_schedule_taints = tuple(
            t for t in self.taints if t.effect == EFFECT_PREFER_NO_SCHEDULE
        )
        self.unschedulable = bool(spec.get("unschedulable"))
        allocatable = parse_allocatable(node)
        self.alloc_cpu = allocatable.resources.milli_cpu
        self.alloc_memory = allocatable.resources.memory
        self.alloc_ephemeral = allocatable.resources.ephemeral_storage
        self.alloc_scalar = dict(allocatable.resources.scalar)
        self.alloc_pods = allocatable.pods
        self.images = parse_node_images(node)
        self._refresh_keys()

    def _refresh_keys(self) -> None:
        self.resources = resource_state(
            (
                self.alloc_pods - len(self.pods),
                self.alloc_cpu,
                self.alloc_memory,
                self.alloc_ephemeral,
                self.req_cpu,
                self.req_memory,
                self.req_ephemeral,
                self.non_zero_cpu,
                self.non_zero_memory,
            )
        )
        if self.snapshot_column is not None:
            self.snapshot_column[self.snapshot_position] = self.resources
        self.generation += 1

    def add_pod(self, pod: PodInfo) -> None:
        self.pods[pod.uid] = pod
        self._account(pod, 1)
        if pod.has_affinity:
            self.pods_with_affinity[pod.uid] = pod
        if pod.has_required_anti_affinity:
            self.pods_with_required_anti_affinity[pod.uid] = pod

    def remove_pod(self, pod: PodInfo) -> bool:
        present = self.pods.pop(pod.uid, None)
        if present is None:
            return False
        self.pods_with_affinity.pop(pod.uid, None)
        self.pods_with_required_anti_affinity.pop(pod.uid, None)
        self._account(present, -1)
        return True

    def _account(self, pod: PodInfo, sign: int) -> None:
        requests = pod.requests
        self.req_cpu += sign * requests.milli_cpu
        self.req_memory += sign * requests.memory
        self.req_ephemeral += sign * requests.ephemeral_storage
        for name, amount in requests.scalar.items():
            self.req_scalar[name] = self.req_scalar.get(name, 0) + sign * amount
        self.non_zero_cpu += sign * pod.non_zero_cpu
        self.non_zero_memory += sign * pod.non_zero_memory
        for ip, protocol, port in pod.host_ports:
            users = self.used_ports.setdefault((protocol, port), {})
            count = users.get(ip, 0) + sign
            if count > 0:
                users[ip] = count
            else:
                users.pop(ip, None)
                if not users:
                    del self.used_ports[(protocol, port)]
        self._refresh_keys()

    def requested(self, resource: str) -> int:
        """Requested amount of any resource by name (cpu in millicores)."""
        if resource == CPU:
            return self.req_cpu
        if resource == MEMORY:
            return self.req_memory
        if resource == "ephemeral-storage":
            return self.req_ephemeral
        return self.req_scalar.get(resource, 0)

    def allocatable(self, resource: str) -> int:
        if resource == CPU:
            return self.alloc_cpu
        if resource == MEMORY:
            return self.alloc_memory
        if resource == "ephemeral-storage":
            return self.alloc_ephemeral
        return self.alloc_scalar.get(resource, 0)

    def __repr__(self) -> str:
        return f"NodeInfo({self.name}, pods={len(self.pods)})"


# -- plugin protocols --------------------------------------------------------------------------


class ClusterEvent(StrEnum):
    """What changed in the cluster; plugins say which of these may make a pod they
    rejected schedulable, and the queue only retries a pod on those."""

    NODE_ADD = "NodeAdd"
    NODE_DELETE = "NodeDelete"
    NODE_LABEL_CHANGE = "NodeLabelChange"
    NODE_TAINT_CHANGE = "NodeTaintChange"
    NODE_ALLOCATABLE_CHANGE = "NodeAllocatableChange"
    NODE_SCHEDULABLE_CHANGE = "NodeSchedulableChange"
    ASSIGNED_POD_ADD = "AssignedPodAdd"
    ASSIGNED_POD_UPDATE = "AssignedPodUpdate"
    ASSIGNED_POD_DELETE = "AssignedPodDelete"
    NAMESPACE_CHANGE = "NamespaceChange"
    WORKLOAD_CHANGE = "WorkloadChange"
    UNSCHEDULABLE_TIMEOUT = "UnschedulableTimeout"


ALL_EVENTS: Final = frozenset(ClusterEvent)


class Plugin(Protocol):
    name: str


@runtime_checkable
class EnqueueExtensions(Protocol):
    def events_to_register(self) -> frozenset[ClusterEvent]: ...


@runtime_checkable
class PreFilterPlugin(Protocol):
    name: str

    def pre_filter(
        self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]
    ) -> tuple[PreFilterResult | None, Status]: ...


@runtime_checkable
class FilterPlugin(Protocol):
    name: str

    def filter(self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]) -> Rejections: ...


@runtime_checkable
class PostFilterPlugin(Protocol):
    name: str

    def post_filter(self, state: CycleState, pod: PodInfo, diagnosis: Diagnosis) -> Status: ...


@runtime_checkable
class PreScorePlugin(Protocol):
    name: str

    def pre_score(self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]) -> Status: ...


@runtime_checkable
class ScorePlugin(Protocol):
    name: str

    def score(self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]) -> list[int]: ...


@runtime_checkable
class ResourceScorePlugin(Protocol):
    """A Score plugin whose score of a node depends only on the node's ResourceState (and
    the pod), and that has no NormalizeScore: the framework asks it once per distinct
    state instead of once per node. `None` means "not for this configuration": the
    framework then calls `score`."""

    name: str

    def score_resource_states(
        self, state: CycleState, pod: PodInfo, states: Iterable[ResourceState]
    ) -> dict[ResourceState, int] | None: ...


@runtime_checkable
class NormalizeScorePlugin(Protocol):
    name: str

    def normalize(
        self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo], scores: list[int]
    ) -> None: ...


@runtime_checkable
class ReservePlugin(Protocol):
    name: str

    def reserve(self, state: CycleState, pod: PodInfo, node_name: str) -> Status: ...

    def unreserve(self, state: CycleState, pod: PodInfo, node_name: str) -> None: ...


@runtime_checkable
class BindPlugin(Protocol):
    name: str

    def bind(self, state: CycleState, pod: PodInfo, node_name: str) -> Awaitable[Status]: ...


def default_normalize_score(scores: list[int], *, reverse: bool) -> None:
    """helper.DefaultNormalizeScore: scale to 0..100 by the maximum; `reverse` flips it.
    All zeros stay 0 (or become 100 when reversed)."""
    highest = max(scores, default=0)
    if highest == 0:
        if reverse:
            scores[:] = [MAX_NODE_SCORE] * len(scores)
        return
    if reverse:
        scores[:] = [MAX_NODE_SCORE - MAX_NODE_SCORE * s // highest for s in scores]
    else:
        scores[:] = [MAX_NODE_SCORE * s // highest for s in scores]


# -- failures ----------------------------------------------------------------------------------


@dataclass
class Diagnosis:
    """Why a pod fits no node: each rejected node's status, plus one status for every node
    not listed (those PreFilter ruled out, or all of them when PreFilter failed)."""

    node_statuses: dict[str, Status] = field(default_factory=dict)
    absent_status: Status | None = None
    unschedulable_plugins: set[str] = field(default_factory=set)
    pre_filter_message: str = ""
    post_filter_message: str = ""

    def status_of(self, node_name: str) -> Status | None:
        return self.node_statuses.get(node_name, self.absent_status)

    def add_plugin_status(self, status: Status) -> None:
        if status.plugin and status.is_rejected:
            self.unschedulable_plugins.add(status.plugin)


NO_NODE_AVAILABLE: Final = "0/{} nodes are available"


def reasons_histogram(
    node_statuses: Mapping[str, Status], absent_status: Status | None, num_all_nodes: int
) -> list[str]:
    """ "<count> <reason>" for every reason, sorted as strings (so "10 x" sorts before
    "2 y", exactly as kube-scheduler's sort.Strings does)."""
    counts: dict[str, int] = {}
    for status in node_statuses.values():
        for reason in status.reasons:
            counts[reason] = counts.get(reason, 0) + 1
    absent = num_all_nodes - len(node_statuses)
    if absent > 0 and absent_status is not None:
        for reason in absent_status.reasons:
            counts[reason] = counts.get(reason, 0) + absent
    return sorted(f"{count} {reason}" for reason, count in counts.items())


def fit_error_message(num_all_nodes: int, diagnosis: Diagnosis) -> str:
    """FitError.Error(): "0/N nodes are available: <histogram>." then PostFilter's words."""
    message = NO_NODE_AVAILABLE.format(num_all_nodes) + ":"
    if diagnosis.pre_filter_message:
        message += f" {diagnosis.pre_filter_message}."
    else:
        histogram = reasons_histogram(
            diagnosis.node_statuses, diagnosis.absent_status, num_all_nodes
        )
        if histogram:
            message += " " + ", ".join(histogram) + "."
    if diagnosis.post_filter_message:
        message += " " + diagnosis.post_filter_message
    return message


@dataclass
class FitError(Exception):
    pod: PodInfo
    num_all_nodes: int
    diagnosis: Diagnosis

    def __str__(self) -> str:
        return fit_error_message(self.num_all_nodes, self.diagnosis)


# -- registry and profiles ---------------------------------------------------------------------


class ClusterLister(Protocol):
    """What plugins may read about the cluster beyond nodes and pods."""

    def namespace_labels(self, namespace: str) -> Mapping[str, str]: ...

    def service_selectors(self, namespace: str) -> Iterable[Mapping[str, str]]: ...

    def controller_selector(
        self, namespace: str, controller: ControllerRef
    ) -> LabelSelector | None: ...


BindFunc = Callable[[Object, str], Awaitable[None]]


@dataclass
class Handle:
    """What a plugin factory gets besides its arguments."""

    lister: ClusterLister
    bind: BindFunc | None = None


Factory = Callable[[Mapping[str, Any], Handle], Any]
Registry = dict[str, Factory]


@dataclass(frozen=True)
class PluginSpec:
    name: str
    weight: int = 0
    args: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Profile:
    """One scheduler profile: the plugins in extension-point order, score weights, and
    the share of nodes to find feasible before scoring (0 means kube's adaptive default)."""

    scheduler_name: str = DEFAULT_SCHEDULER_NAME
    plugins: tuple[PluginSpec, ...] = ()
    percentage_of_nodes_to_score: int = 0
