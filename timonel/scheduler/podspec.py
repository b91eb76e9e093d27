"""The parts of a Pod and a Node the scheduler reasons about, parsed once into plain values.

Everything here is pure. A pod or node is parsed when it enters the scheduler (cache or
queue); filters and scores then read ints, tuples and ready-made selectors, never JSON or
quantity strings.

Resource requests follow component-helpers `PodRequests`: regular containers and
restartable init containers (sidecars) add up; each ordinary init container needs its own
request plus the sidecars started before it; the pod needs the larger of the two; pod
overhead is added on top. `non_zero` requests replace a container's *missing* cpu or
memory request with 100m / 200Mi, as the scheduler's scoring does (an explicit 0 stays 0).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from types import MappingProxyType
from typing import Any, Final

from timonel.api.quantity import QuantityError, parse_quantity_value
from timonel.api.selectors import (
    EVERYTHING,
    NOTHING,
    LabelSelector,
    Operator,
    Requirement,
)

CPU: Final = "cpu"
MEMORY: Final = "memory"
EPHEMERAL_STORAGE: Final = "ephemeral-storage"
PODS: Final = "pods"

DEFAULT_MILLI_CPU_REQUEST: Final = 100  # 0.1 core
DEFAULT_MEMORY_REQUEST: Final = 200 * 1024 * 1024  # 200 MiB

LABEL_HOSTNAME: Final = "kubernetes.io/hostname"
LABEL_ZONE: Final = "topology.kubernetes.io/zone"
LABEL_REGION: Final = "topology.kubernetes.io/region"
TAINT_NODE_UNSCHEDULABLE: Final = "node.kubernetes.io/unschedulable"
DEFAULT_SCHEDULER_NAME: Final = "default-scheduler"

EFFECT_NO_SCHEDULE: Final = "NoSchedule"
EFFECT_PREFER_NO_SCHEDULE: Final = "PreferNoSchedule"
EFFECT_NO_EXECUTE: Final = "NoExecute"

_NANOS_PER_UNIT: Final = 10**9
_NANOS_PER_MILLI: Final = 10**6


# -- resources ---------------------------------------------------------------------------------


def is_scalar_resource(name: str) -> bool:
    """Resources the scheduler tracks by name besides cpu, memory, ephemeral-storage and
    pods: extended resources (`example.com/gpu`), hugepages and attachable volumes."""
    if name.startswith(("hugepages-", "attachable-volumes-")):
        return True
    # Extended: qualified with a domain that is not kubernetes.io, and not a quota name.
    return "/" in name and "kubernetes.io/" not in name and not name.startswith("requests.")


@dataclass(frozen=True, slots=True)
class Resources:
    """Requested or allocatable amounts: cpu in millicores, the rest in units."""

    milli_cpu: int = 0
    memory: int = 0
    ephemeral_storage: int = 0
    scalar: Mapping[str, int] = field(default_factory=dict)

    @property
    def is_zero(self) -> bool:
        return (
            not self.milli_cpu
            and not self.memory
            and not self.ephemeral_storage
            and not any(self.scalar.values())
        )


@lru_cache(maxsize=4096)
def _nanos_of_text(text: str) -> int | None:
    try:
        return parse_quantity_value(text).nanos
    except QuantityError:
        return None


def _nanos(value: Any) -> int | None:
    if isinstance(value, str):
        # Pods of one workload repeat the same few strings ("100m", "128Mi").
        return _nanos_of_text(value)
    try:
        return parse_quantity_value(value).nanos
    except QuantityError:
        return None


def _resource_nanos(resources: Any) -> dict[str, int]:
    """A ResourceList as exact nano-unit ints; entries that are not quantities are dropped."""
    result: dict[str, int] = {}
    if isinstance(resources, dict):
        for name, raw in resources.items():
            nanos = _nanos(raw)
            if nanos is not None:
                result[name] = nanos
    return result


def _with_defaults(requests: dict[str, int]) -> dict[str, int]:
    """A container's requests with missing cpu/memory set to the scoring defaults."""
    if CPU in requests and MEMORY in requests:
        return requests
    filled = dict(requests)
    filled.setdefault(CPU, DEFAULT_MILLI_CPU_REQUEST * _NANOS_PER_MILLI)
    filled.setdefault(MEMORY, DEFAULT_MEMORY_REQUEST * _NANOS_PER_UNIT)
    return filled


def _add_into(total: dict[str, int], extra: Mapping[str, int]) -> None:
    for name, nanos in extra.items():
        total[name] = total.get(name, 0) + nanos


def _max_into(total: dict[str, int], other: Mapping[str, int]) -> None:
    for name, nanos in other.items():
        if nanos > total.get(name, 0):
            total[name] = nanos


def _is_restartable(container: Mapping[str, Any]) -> bool:
    return container.get("restartPolicy") == "Always"


def pod_request_nanos(spec: Mapping[str, Any], *, non_zero: bool) -> dict[str, int]:
    """PodRequests over the spec, in nano-units per resource name."""
    total: dict[str, int] = {}
    for container in spec.get("containers") or ():
        requests = _resource_nanos((container.get("resources") or {}).get("requests"))
        _add_into(total, _with_defaults(requests) if non_zero else requests)
    sidecars: dict[str, int] = {}
    init_peak: dict[str, int] = {}
    for container in spec.get("initContainers") or ():
        requests = _resource_nanos((container.get("resources") or {}).get("requests"))
        if non_zero:
            requests = _with_defaults(requests)
        if _is_restartable(container):
            _add_into(total, requests)
            _add_into(sidecars, requests)
            running = dict(sidecars)
        else:
            running = dict(requests)
            _add_into(running, sidecars)
        _max_into(init_peak, running)
    _max_into(total, init_peak)
    _add_into(total, _resource_nanos(spec.get("overhead")))
    return total


def _units(nanos: int) -> int:
    """Quantity.Value(): rounded up, away from zero."""
    quotient, remainder = divmod(abs(nanos), _NANOS_PER_UNIT)
    quotient += 1 if remainder else 0
    return quotient if nanos >= 0 else -quotient


def _millis(nanos: int) -> int:
    """Quantity.MilliValue(): rounded up, away from zero."""
    quotient, remainder = divmod(abs(nanos), _NANOS_PER_MILLI)
    quotient += 1 if remainder else 0
    return quotient if nanos >= 0 else -quotient


def resources_from_nanos(nanos: Mapping[str, int]) -> Resources:
    scalar = {name: _units(value) for name, value in nanos.items() if is_scalar_resource(name)}
    if not scalar:
        # Pods of one workload ask for the same amounts: share one instance.
        return _plain_resources(
            nanos.get(CPU, 0), nanos.get(MEMORY, 0), nanos.get(EPHEMERAL_STORAGE, 0)
        )
    return Resources(
        milli_cpu=_millis(nanos.get(CPU, 0)),
        memory=_units(nanos.get(MEMORY, 0)),
        ephemeral_storage=_units(nanos.get(EPHEMERAL_STORAGE, 0)),
        scalar=scalar,
    )


_NO_SCALAR: Final[Mapping[str, int]] = MappingProxyType({})


@lru_cache(maxsize=1024)
def _plain_resources(cpu_nanos: int, memory_nanos: int, ephemeral_nanos: int) -> Resources:
    return Resources(_millis(cpu_nanos), _units(memory_nanos), _units(ephemeral_nanos), _NO_SCALAR)


def compute_pod_requests(spec: Mapping[str, Any]) -> Resources:
    """What NodeResourcesFit checks against a node's free allocatable."""
    return resources_from_nanos(pod_request_nanos(spec, non_zero=False))


def compute_non_zero_requests(spec: Mapping[str, Any]) -> tuple[int, int]:
    """(millicpu, memory) with the scoring defaults for missing container requests."""
    nanos = pod_request_nanos(spec, non_zero=True)
    return _millis(nanos.get(CPU, 0)), _units(nanos.get(MEMORY, 0))


_DEFAULT_CPU_NANOS: Final = DEFAULT_MILLI_CPU_REQUEST * _NANOS_PER_MILLI
_DEFAULT_MEMORY_NANOS: Final = DEFAULT_MEMORY_REQUEST * _NANOS_PER_UNIT


def compute_requests(spec: Mapping[str, Any]) -> tuple[Resources, int, int]:
    """compute_pod_requests and compute_non_zero_requests together, in one pass over the
    containers for the usual pod (no init containers, no overhead)."""
    if spec.get("initContainers") or spec.get("overhead"):
        non_zero_cpu, non_zero_memory = compute_non_zero_requests(spec)
        return compute_pod_requests(spec), non_zero_cpu, non_zero_memory
    total: dict[str, int] = {}
    non_zero_cpu = non_zero_memory = 0
    for container in spec.get("containers") or ():
        requests = _resource_nanos((container.get("resources") or {}).get("requests"))
        _add_into(total, requests)
        non_zero_cpu += requests.get(CPU, _DEFAULT_CPU_NANOS)
        non_zero_memory += requests.get(MEMORY, _DEFAULT_MEMORY_NANOS)
    return resources_from_nanos(total), _millis(non_zero_cpu), _units(non_zero_memory)


@dataclass(frozen=True, slots=True)
class Allocatable:
    resources: Resources
    pods: int


def parse_allocatable(node: Mapping[str, Any]) -> Allocatable:
    """status.allocatable, falling back to capacity for resources the node does not list."""
    status = node.get("status") or {}
    allocatable = dict(_resource_nanos(status.get("capacity")))
    allocatable.update(_resource_nanos(status.get("allocatable")))
    return Allocatable(resources_from_nanos(allocatable), _units(allocatable.get(PODS, 0)))


# -- taints and tolerations ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Taint:
    key: str
    value: str
    effect: str


@dataclass(frozen=True, slots=True)
class Toleration:
    key: str
    operator: str
    value: str
    effect: str

    def tolerates(self, taint: Taint) -> bool:
        """Toleration.ToleratesTaint: empty effect and key match all; `Exists` ignores the
        value; an empty operator means `Equal`."""
        if self.effect and self.effect != taint.effect:
            return False
        if self.key and self.key != taint.key:
            return False
        if self.operator in ("", "Equal"):
            return self.value == taint.value
        return self.operator == "Exists"


def parse_taints(node: Mapping[str, Any]) -> tuple[Taint, ...]:
    taints = (node.get("spec") or {}).get("taints") or ()
    return tuple(
        Taint(str(t.get("key") or ""), str(t.get("value") or ""), str(t.get("effect") or ""))
        for t in taints
        if isinstance(t, dict)
    )


def parse_tolerations(spec: Mapping[str, Any]) -> tuple[Toleration, ...]:
    tolerations = spec.get("tolerations")
    if not tolerations:
        return ()
    return tuple(
        _toleration(
            str(t.get("key") or ""),
            str(t.get("operator") or ""),
            str(t.get("value") or ""),
            str(t.get("effect") or ""),
        )
        for t in tolerations
        if isinstance(t, dict)
    )


@lru_cache(maxsize=1024)
def _toleration(key: str, operator: str, value: str, effect: str) -> Toleration:
    # Most pods carry the same two admission-defaulted NoExecute tolerations.
    return Toleration(key, operator, value, effect)


def tolerations_tolerate(tolerations: Iterable[Toleration], taint: Taint) -> bool:
    return any(toleration.tolerates(taint) for toleration in tolerations)


def find_untolerated_taint(
    taints: Iterable[Taint], tolerations: tuple[Toleration, ...]
) -> Taint | None:
    """The first taint that no toleration tolerates (taints already restricted to the
    effects the caller cares about)."""
    for taint in taints:
        if not tolerations_tolerate(tolerations, taint):
            return taint
    return None


# -- node selectors ----------------------------------------------------------------------------

_NODE_SELECTOR_OPERATORS: Final = {
    "In": Operator.IN,
    "NotIn": Operator.NOT_IN,
    "Exists": Operator.EXISTS,
    "DoesNotExist": Operator.DOES_NOT_EXIST,
    "Gt": Operator.GREATER_THAN,
    "Lt": Operator.LESS_THAN,
}


@dataclass(frozen=True, slots=True)
class NodeSelectorTerm:
    """One ORed term: its label expressions and `metadata.name` fields, ANDed. A term that
    does not parse never matches (the lazy-error node selector)."""

    labels: LabelSelector | None
    # (must equal, name) pairs from matchFields: In gives True, NotIn gives False.
    fields: tuple[tuple[bool, str, str], ...] | None
    broken: bool = False

    def matches(self, labels: Mapping[str, str], name: str) -> bool:
        if self.broken:
            return False
        if self.labels is not None and not self.labels.matches(labels):
            return False
        if self.fields is not None and name:
            for must_equal, field_name, value in self.fields:
                actual = name if field_name == "metadata.name" else ""
                if (actual == value) != must_equal:
                    return False
        return True

    @property
    def pinned_names(self) -> frozenset[str] | None:
        """Node names `metadata.name In` requirements limit this term to (intersected), or
        None when the term does not pin names."""
        names: frozenset[str] | None = None
        for must_equal, field_name, value in self.fields or ():
            if must_equal and field_name == "metadata.name":
                names = frozenset({value}) if names is None else names & {value}
        return names


def _label_requirements(expressions: Iterable[Any]) -> LabelSelector | None:
    requirements: list[Requirement] = []
    for expression in expressions:
        if not isinstance(expression, dict):
            return None
        operator = _NODE_SELECTOR_OPERATORS.get(str(expression.get("operator") or ""))
        key = expression.get("key")
        if operator is None or not isinstance(key, str) or not key:
            return None
        values = tuple(str(v) for v in expression.get("values") or ())
        requirements.append(Requirement(key, operator, values))
    requirements.sort(key=lambda r: r.key)
    return LabelSelector(tuple(requirements))


def parse_node_selector_term(term: Any) -> NodeSelectorTerm | None:
    """None for an empty term, which selects nothing and is skipped."""
    if not isinstance(term, dict):
        return None
    expressions = term.get("matchExpressions") or []
    match_fields = term.get("matchFields") or []
    if not expressions and not match_fields:
        return None
    labels: LabelSelector | None = None
    if expressions:
        labels = _label_requirements(expressions)
        if labels is None:
            return NodeSelectorTerm(None, None, broken=True)
    fields: list[tuple[bool, str, str]] = []
    for requirement in match_fields:
        operator = requirement.get("operator") if isinstance(requirement, dict) else None
        values = requirement.get("values") or [] if isinstance(requirement, dict) else []
        if operator not in ("In", "NotIn") or len(values) != 1:
            return NodeSelectorTerm(None, None, broken=True)
        fields.append((operator == "In", str(requirement.get("key") or ""), str(values[0])))
    return NodeSelectorTerm(labels, tuple(fields) if match_fields else None)


@dataclass(frozen=True, slots=True)
class RequiredNodeAffinity:
    """spec.nodeSelector ANDed with requiredDuringSchedulingIgnoredDuringExecution."""

    node_selector: tuple[tuple[str, str], ...]
    # None when the pod has no required node affinity; an empty tuple matches no node.
    terms: tuple[NodeSelectorTerm, ...] | None

    def matches(self, labels: Mapping[str, str], name: str) -> bool:
        for key, value in self.node_selector:
            if labels.get(key) != value:
                return False
        if self.terms is None:
            return True
        return any(term.matches(labels, name) for term in self.terms)


@dataclass(frozen=True, slots=True)
class PreferredTerm:
    weight: int
    term: NodeSelectorTerm


def _node_affinity(spec: Mapping[str, Any]) -> Mapping[str, Any]:
    affinity = spec.get("affinity") or {}
    return affinity.get("nodeAffinity") or {} if isinstance(affinity, dict) else {}


def parse_required_node_affinity(spec: Mapping[str, Any]) -> RequiredNodeAffinity | None:
    selector = spec.get("nodeSelector")
    required = _node_affinity(spec).get("requiredDuringSchedulingIgnoredDuringExecution")
    if selector is None and required is None:
        return None
    terms: tuple[NodeSelectorTerm, ...] | None = None
    if required is not None:
        parsed = (parse_node_selector_term(t) for t in required.get("nodeSelectorTerms") or ())
        terms = tuple(t for t in parsed if t is not None)
    pairs = tuple(sorted((str(k), str(v)) for k, v in (selector or {}).items()))
    return RequiredNodeAffinity(pairs, terms)


def parse_preferred_node_affinity(spec: Mapping[str, Any]) -> tuple[PreferredTerm, ...]:
    preferred = _node_affinity(spec).get("preferredDuringSchedulingIgnoredDuringExecution") or ()
    result: list[PreferredTerm] = []
    for item in preferred:
        if not isinstance(item, dict):
            continue
        weight = int(item.get("weight") or 0)
        term = parse_node_selector_term(item.get("preference"))
        if weight and term is not None:
            result.append(PreferredTerm(weight, term))
    return tuple(result)


# -- pod affinity terms ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AffinityTerm:
    """A PodAffinityTerm resolved against the pod that carries it: with neither namespaces
    nor a namespace selector it means the pod's own namespace."""

    namespaces: frozenset[str]
    selector: LabelSelector
    topology_key: str
    namespace_selector: LabelSelector

    def matches(
        self, namespace: str, labels: Mapping[str, str], namespace_labels: Mapping[str, str]
    ) -> bool:
        if namespace in self.namespaces or self.namespace_selector.matches(namespace_labels):
            return self.selector.matches(labels)
        return False


@dataclass(frozen=True, slots=True)
class WeightedAffinityTerm:
    term: AffinityTerm
    weight: int


def label_selector(selector: Any) -> LabelSelector:
    """metav1.LabelSelectorAsSelector without validation: None selects nothing, {} all."""
    if selector is None:
        return NOTHING
    if not isinstance(selector, dict):
        return NOTHING
    match_labels = selector.get("matchLabels") or {}
    expressions = selector.get("matchExpressions") or []
    if not match_labels and not expressions:
        return EVERYTHING
    requirements = [
        Requirement(str(k), Operator.EQUALS, (str(v),)) for k, v in match_labels.items()
    ]
    for expression in expressions:
        operator = {
            "In": Operator.IN,
            "NotIn": Operator.NOT_IN,
            "Exists": Operator.EXISTS,
            "DoesNotExist": Operator.DOES_NOT_EXIST,
        }.get(str(expression.get("operator") or ""))
        if operator is None:
            return NOTHING
        values = tuple(sorted(str(v) for v in expression.get("values") or ()))
        requirements.append(Requirement(str(expression.get("key") or ""), operator, values))
    requirements.sort(key=lambda r: r.key)
    return LabelSelector(tuple(requirements))


def parse_affinity_term(term: Mapping[str, Any], pod_namespace: str) -> AffinityTerm:
    namespaces = term.get("namespaces") or []
    namespace_selector = term.get("namespaceSelector")
    if not namespaces and namespace_selector is None:
        names = frozenset({pod_namespace})
    else:
        names = frozenset(str(n) for n in namespaces)
    return AffinityTerm(
        names,
        label_selector(term.get("labelSelector")),
        str(term.get("topologyKey") or ""),
        label_selector(namespace_selector),
    )


@dataclass(frozen=True, slots=True)
class PodAffinity:
    required_affinity: tuple[AffinityTerm, ...] = ()
    required_anti_affinity: tuple[AffinityTerm, ...] = ()
    preferred_affinity: tuple[WeightedAffinityTerm, ...] = ()
    preferred_anti_affinity: tuple[WeightedAffinityTerm, ...] = ()

    @property
    def empty(self) -> bool:
        return not (
            self.required_affinity
            or self.required_anti_affinity
            or self.preferred_affinity
            or self.preferred_anti_affinity
        )


NO_POD_AFFINITY: Final = PodAffinity()


def parse_pod_affinity(spec: Mapping[str, Any], namespace: str) -> PodAffinity:
    affinity = spec.get("affinity")
    if not isinstance(affinity, dict):
        return NO_POD_AFFINITY
    pod_affinity = affinity.get("podAffinity") or {}
    anti_affinity = affinity.get("podAntiAffinity") or {}
    if not pod_affinity and not anti_affinity:
        return NO_POD_AFFINITY

    def required(section: Mapping[str, Any]) -> tuple[AffinityTerm, ...]:
        terms = section.get("requiredDuringSchedulingIgnoredDuringExecution") or ()
        return tuple(parse_affinity_term(t, namespace) for t in terms if isinstance(t, dict))

    def preferred(section: Mapping[str, Any]) -> tuple[WeightedAffinityTerm, ...]:
        terms = section.get("preferredDuringSchedulingIgnoredDuringExecution") or ()
        return tuple(
            WeightedAffinityTerm(
                parse_affinity_term(t.get("podAffinityTerm") or {}, namespace),
                int(t.get("weight") or 0),
            )
            for t in terms
            if isinstance(t, dict)
        )

    return PodAffinity(
        required(pod_affinity),
        required(anti_affinity),
        preferred(pod_affinity),
        preferred(anti_affinity),
    )


# -- topology spread constraints -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SpreadConstraint:
    max_skew: int
    topology_key: str
    when_unsatisfiable: str
    selector: LabelSelector
    min_domains: int = 1
    honor_node_affinity: bool = True
    honor_node_taints: bool = False


def parse_spread_constraints(
    spec: Mapping[str, Any], labels: Mapping[str, str]
) -> tuple[SpreadConstraint, ...]:
    """topologySpreadConstraints with matchLabelKeys merged into the selector and the
    inclusion policies defaulted (nodeAffinityPolicy Honor, nodeTaintsPolicy Ignore)."""
    result: list[SpreadConstraint] = []
    for raw in spec.get("topologySpreadConstraints") or ():
        if not isinstance(raw, dict):
            continue
        selector = label_selector(raw.get("labelSelector"))
        keys = raw.get("matchLabelKeys") or ()
        extra = [Requirement(str(k), Operator.IN, (labels[k],)) for k in keys if k in labels]
        if extra and not selector.selects_nothing:
            merged = sorted([*selector.requirements, *extra], key=lambda r: r.key)
            selector = LabelSelector(tuple(merged))
        result.append(
            SpreadConstraint(
                max_skew=int(raw.get("maxSkew") or 1),
                topology_key=str(raw.get("topologyKey") or ""),
                when_unsatisfiable=str(raw.get("whenUnsatisfiable") or "DoNotSchedule"),
                selector=selector,
                min_domains=int(raw.get("minDomains") or 1),
                honor_node_affinity=raw.get("nodeAffinityPolicy", "Honor") != "Ignore",
                honor_node_taints=raw.get("nodeTaintsPolicy", "Ignore") == "Honor",
            )
        )
    return tuple(result)


# -- ports and images ----------------------------------------------------------------------


def parse_host_ports(spec: Mapping[str, Any]) -> tuple[tuple[str, str, int], ...]:
    """(hostIP, protocol, hostPort) of containers and sidecar init containers that ask for
    a host port. An empty IP means every address: 0.0.0.0."""
    containers = [c for c in spec.get("initContainers") or () if _is_restartable(c)]
    containers.extend(spec.get("containers") or ())
    ports: list[tuple[str, str, int]] = []
    for container in containers:
        if "ports" not in container:
            continue
        for port in container.get("ports") or ():
            host_port = int(port.get("hostPort") or 0)
            if host_port > 0:
                ip = str(port.get("hostIP") or "") or "0.0.0.0"
                ports.append((ip, str(port.get("protocol") or "TCP"), host_port))
    return tuple(ports)


@lru_cache(maxsize=4096)
def normalized_image_name(name: str) -> str:
    """An image reference with the implicit `:latest` tag spelled out."""
    if name.rfind(":") <= name.rfind("/"):
        return name + ":latest"
    return name


def parse_images(spec: Mapping[str, Any]) -> tuple[str, ...]:
    init = spec.get("initContainers")
    containers = [*init, *(spec.get("containers") or ())] if init else spec.get("containers") or ()
    return tuple(normalized_image_name(str(c.get("image") or "")) for c in containers)


def parse_node_images(node: Mapping[str, Any]) -> dict[str, int]:
    """Every name of every image on the node, with the image's size."""
    images: dict[str, int] = {}
    for image in (node.get("status") or {}).get("images") or ():
        size = int(image.get("sizeBytes") or 0)
        for name in image.get("names") or ():
            images[str(name)] = size
    return images
