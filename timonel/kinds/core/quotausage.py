"""What an object uses against a ResourceQuota: kube's quota evaluators
(pkg/quota/v1/evaluator/core and the generic object counter), shared by the quota
controller (status.used) and the API server's quota admission.

Usage is a resource list, name → Quantity:
- every namespaced object counts 1 as `count/<plural>[.<group>]`; configmaps, secrets,
  replicationcontrollers and resourcequotas also under their bare plural;
- a pod also counts `pods` and its compute requests and limits (`cpu` and
  `requests.cpu`, `limits.cpu`, likewise memory and ephemeral-storage, hugepages and
  `requests.<extended>`), unless it is finished or stuck past its deletion grace;
- a Service counts `services`, `services.nodeports` and `services.loadbalancers`;
- a PersistentVolumeClaim counts `persistentvolumeclaims` and `requests.storage`,
  also per storage class.

Quota scopes (spec.scopes and spec.scopeSelector) select pods only; a quota with scopes
never applies to other objects.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from timonel.api.objects import Object, parse_rfc3339
from timonel.api.quantity import Quantity, QuantityError, parse_quantity_value
from timonel.kinds.core.common import as_dict, as_list, is_native_resource
from timonel.kinds.core.pod import qos_class

ResourceList = dict[str, Quantity]

ONE = Quantity.from_int(1)
ZERO = Quantity.from_int(0)
LEGACY_COUNTED = frozenset({"configmaps", "secrets", "replicationcontrollers", "resourcequotas"})
STORAGE_CLASS_SUFFIX = ".storageclass.storage.k8s.io/"
STORAGE_CLASS_ANNOTATION = "volume.beta.kubernetes.io/storage-class"

POD_RESOURCES = frozenset(
    {
        "count/pods",
        "cpu",
        "memory",
        "ephemeral-storage",
        "requests.cpu",
        "requests.memory",
        "requests.ephemeral-storage",
        "limits.cpu",
        "limits.memory",
        "limits.ephemeral-storage",
        "pods",
    }
)
_POD_RESOURCE_PREFIXES = ("hugepages-", "requests.hugepages-")
SERVICE_RESOURCES = frozenset(
    {"count/services", "services", "services.loadbalancers", "services.nodeports"}
)
PVC_RESOURCES = frozenset(
    {"count/persistentvolumeclaims", "persistentvolumeclaims", "requests.storage"}
)
# Resources whose absence from a container is refused when a quota tracks them.
_MUST_SPECIFY = frozenset(
    {"cpu", "memory", "requests.cpu", "requests.memory", "limits.cpu", "limits.memory"}
)


# -- resource list arithmetic -------------------------------------------------------------


def parse_resource_list(resources: Any) -> ResourceList:
    """A ResourceList's quantities; entries that are not quantities are left out."""
    parsed: ResourceList = {}
    for name, raw in as_dict(resources).items():
        try:
            parsed[str(name)] = parse_quantity_value(raw)
        except QuantityError:
            continue
    return parsed


def add(a: Mapping[str, Quantity], b: Mapping[str, Quantity]) -> ResourceList:
    result = dict(a)
    for name, value in b.items():
        result[name] = result[name] + value if name in result else value
    return result


def mask(resources: Mapping[str, Quantity], names: Iterable[str]) -> ResourceList:
    wanted = set(names)
    return {name: value for name, value in resources.items() if name in wanted}


def exceeded(usage: Mapping[str, Quantity], hard: Mapping[str, Quantity]) -> list[str]:
    """quota.LessThanOrEqual's failures: the names whose usage passes its hard limit."""
    return sorted(name for name, value in usage.items() if name in hard and value > hard[name])


def pretty_print(resources: Mapping[str, Quantity]) -> str:
    """`name=quantity` pairs sorted by name, as quota admission writes them."""
    return ",".join(f"{name}={resources[name]}" for name in sorted(resources))


def render(resources: Mapping[str, Quantity]) -> dict[str, str]:
    return {name: str(value) for name, value in sorted(resources.items())}


def _max_into(target: ResourceList, other: Mapping[str, Quantity]) -> None:
    for name, value in other.items():
        if name not in target or value > target[name]:
            target[name] = value


# -- pods ----------------------------------------------------------------------------------


def _container_requests(container: dict[str, Any]) -> ResourceList:
    resources = as_dict(container.get("resources"))
    # A limit without a request is a request of the same (defaulting does the same).
    return {
        **parse_resource_list(resources.get("limits")),
        **parse_resource_list(resources.get("requests")),
    }


def _container_limits(container: dict[str, Any]) -> ResourceList:
    return parse_resource_list(as_dict(container.get("resources")).get("limits"))


def _pod_totals(pod: Object, per_container: Any) -> tuple[ResourceList, dict[str, Any]]:
    """PodRequests / PodLimits: the containers' sum, sidecars included, or the largest
    init container (plus the sidecars started before it) when that is more."""
    spec = as_dict(pod.get("spec"))
    total: ResourceList = {}
    for container in as_list(spec.get("containers")):
        total = add(total, per_container(as_dict(container)))
    sidecars: ResourceList = {}
    init_peak: ResourceList = {}
    for container in as_list(spec.get("initContainers")):
        container = as_dict(container)
        own = per_container(container)
        if container.get("restartPolicy") == "Always":
            total = add(total, own)
            sidecars = add(sidecars, own)
            candidate = sidecars
        else:
            candidate = add(own, sidecars)
        _max_into(init_peak, candidate)
    _max_into(total, init_peak)
    return total, spec


def pod_requests(pod: Object) -> ResourceList:
    requests, spec = _pod_totals(pod, _container_requests)
    return add(requests, parse_resource_list(spec.get("overhead")))


def pod_limits(pod: Object) -> ResourceList:
    limits, spec = _pod_totals(pod, _container_limits)
    overhead = parse_resource_list(spec.get("overhead"))
    return {
        name: value + overhead[name] if name in overhead else value
        for name, value in limits.items()
    }


def compute_usage(requests: Mapping[str, Quantity], limits: Mapping[str, Quantity]) -> ResourceList:
    """podComputeUsageHelper: the quota names a pod's (or a container's) requests and
    limits count under."""
    result: ResourceList = {"pods": ONE}
    for name in ("cpu", "memory", "ephemeral-storage"):
        if name in requests:
            result[name] = requests[name]
            result[f"requests.{name}"] = requests[name]
        if name in limits:
            result[f"limits.{name}"] = limits[name]
    for name, value in requests.items():
        if name.startswith("hugepages-"):
            result[name] = value
            result[f"requests.{name}"] = value
        elif not is_native_resource(name):
            result[f"requests.{name}"] = value
    return result


def counts_against_quota(pod: Object, now: datetime) -> bool:
    """QuotaV1Pod: finished pods, and pods past their deletion grace (stuck on a lost
    node), no longer use compute quota."""
    if as_dict(pod.get("status")).get("phase") in ("Succeeded", "Failed"):
        return False
    meta = as_dict(pod.get("metadata"))
    deletion, grace = meta.get("deletionTimestamp"), meta.get("deletionGracePeriodSeconds")
    if isinstance(deletion, str) and isinstance(grace, int):
        try:
            if now > parse_rfc3339(deletion) + timedelta(seconds=grace):
                return False
        except ValueError:
            pass
    return True


def pod_usage(pod: Object, now: datetime) -> ResourceList:
    usage: ResourceList = {"count/pods": ONE}
    if not counts_against_quota(pod, now):
        return usage
    return add(usage, compute_usage(pod_requests(pod), pod_limits(pod)))


def missing_pod_resources(pod: Object, required: Iterable[str]) -> str | None:
    """podEvaluator.Constraints: containers must state each cpu or memory request or
    limit a quota tracks; the error names what is missing and for which containers."""
    required_set = set(required) & _MUST_SPECIFY
    if not required_set:
        return None
    missing: dict[str, set[str]] = {}
    spec = as_dict(pod.get("spec"))
    for container in as_list(spec.get("containers")) + as_list(spec.get("initContainers")):
        container = as_dict(container)
        resources = as_dict(container.get("resources"))
        present = compute_usage(
            parse_resource_list(resources.get("requests")),
            parse_resource_list(resources.get("limits")),
        )
        for name in required_set - set(present):
            missing.setdefault(name, set()).add(str(container.get("name", "")))
    if not missing:
        return None
    return "must specify " + "; ".join(
        f"{name} for: {','.join(sorted(missing[name]))}" for name in sorted(missing)
    )


def _is_terminating(pod: Object) -> bool:
    deadline = as_dict(pod.get("spec")).get("activeDeadlineSeconds")
    return isinstance(deadline, int) and deadline >= 0


def _uses_cross_namespace_affinity(pod: Object) -> bool:
    affinity = as_dict(as_dict(pod.get("spec")).get("affinity"))
    for kind in ("podAffinity", "podAntiAffinity"):
        section = as_dict(affinity.get(kind))
        terms = as_list(section.get("requiredDuringSchedulingIgnoredDuringExecution"))
        terms += [
            as_dict(t).get("podAffinityTerm")
            for t in as_list(section.get("preferredDuringSchedulingIgnoredDuringExecution"))
        ]
        for term in terms:
            term = as_dict(term)
            if as_list(term.get("namespaces")) or term.get("namespaceSelector") is not None:
                return True
    return False


def _pod_matches_scope(pod: Object, requirement: dict[str, Any]) -> bool:
    scope = requirement.get("scopeName")
    if scope == "Terminating":
        return _is_terminating(pod)
    if scope == "NotTerminating":
        return not _is_terminating(pod)
    if scope == "BestEffort":
        return qos_class(pod) == "BestEffort"
    if scope == "NotBestEffort":
        return qos_class(pod) != "BestEffort"
    if scope == "CrossNamespacePodAffinity":
        return _uses_cross_namespace_affinity(pod)
    if scope == "PriorityClass":
        priority_class = as_dict(pod.get("spec")).get("priorityClassName") or ""
        operator = requirement.get("operator")
        values = as_list(requirement.get("values"))
        if operator == "Exists":
            return bool(priority_class)
        if operator == "DoesNotExist":
            return not priority_class
        if operator == "In":
            return bool(priority_class) and priority_class in values
        if operator == "NotIn":
            return not priority_class or priority_class not in values
    return False


def scope_requirements(quota: Object) -> list[dict[str, Any]]:
    """getScopeSelectorsFromQuota: spec.scopes as Exists requirements, then the
    scopeSelector's expressions."""
    spec = as_dict(quota.get("spec"))
    requirements = [
        {"scopeName": scope, "operator": "Exists"} for scope in as_list(spec.get("scopes"))
    ]
    requirements += [
        as_dict(e) for e in as_list(as_dict(spec.get("scopeSelector")).get("matchExpressions"))
    ]
    return requirements


# -- any object ----------------------------------------------------------------------------


def object_count_name(group: str, plural: str) -> str:
    return f"count/{plural}.{group}" if group else f"count/{plural}"


def service_usage(service: Object) -> ResourceList:
    spec = as_dict(service.get("spec"))
    ports = as_list(spec.get("ports"))
    usage: ResourceList = {
        "count/services": ONE,
        "services": ONE,
        "services.loadbalancers": ZERO,
        "services.nodeports": ZERO,
    }
    kind = spec.get("type") or "ClusterIP"
    if kind == "NodePort":
        usage["services.nodeports"] = Quantity.from_int(len(ports))
    elif kind == "LoadBalancer":
        with_node_ports = len(ports)
        if spec.get("allocateLoadBalancerNodePorts") is False:
            with_node_ports = sum(1 for p in ports if as_dict(p).get("nodePort"))
        usage["services.nodeports"] = Quantity.from_int(with_node_ports)
        usage["services.loadbalancers"] = ONE
    return usage


def pvc_usage(claim: Object) -> ResourceList:
    usage: ResourceList = {"count/persistentvolumeclaims": ONE, "persistentvolumeclaims": ONE}
    spec = as_dict(claim.get("spec"))
    storage_class = spec.get("storageClassName")
    if storage_class is None:
        storage_class = as_dict(as_dict(claim.get("metadata")).get("annotations")).get(
            STORAGE_CLASS_ANNOTATION
        )
    if storage_class:
        usage[f"{storage_class}{STORAGE_CLASS_SUFFIX}persistentvolumeclaims"] = ONE
    requested = parse_resource_list(as_dict(spec.get("resources")).get("requests")).get("storage")
    allocated = parse_resource_list(as_dict(claim.get("status")).get("allocatedResources")).get(
        "storage"
    )
    if allocated is not None and (requested is None or allocated > requested):
        requested = allocated
    if requested is not None:
        usage["requests.storage"] = requested
        if storage_class:
            usage[f"{storage_class}{STORAGE_CLASS_SUFFIX}requests.storage"] = requested
    return usage


def usage_of(group: str, plural: str, obj: Object, now: datetime) -> ResourceList:
    """Everything `obj` (of resource group/plural) uses."""
    if not group and plural == "pods":
        return pod_usage(obj, now)
    if not group and plural == "services":
        return service_usage(obj)
    if not group and plural == "persistentvolumeclaims":
        return pvc_usage(obj)
    usage: ResourceList = {object_count_name(group, plural): ONE}
    if not group and plural in LEGACY_COUNTED:
        usage[plural] = ONE
    return usage


def matching_resources(group: str, plural: str, names: Iterable[str]) -> list[str]:
    """evaluator.MatchingResources: which of a quota's resource names this resource's
    objects can use."""
    names = list(names)
    if not group and plural == "pods":
        return [
            n
            for n in names
            if n in POD_RESOURCES
            or n.startswith(_POD_RESOURCE_PREFIXES)
            or (not is_native_resource(n) and n.startswith("requests."))
        ]
    if not group and plural == "services":
        return [n for n in names if n in SERVICE_RESOURCES]
    if not group and plural == "persistentvolumeclaims":
        return [
            n
            for n in names
            if n in PVC_RESOURCES
            or (
                STORAGE_CLASS_SUFFIX in n
                and n.endswith(("/persistentvolumeclaims", "/requests.storage"))
            )
        ]
    accepted = {object_count_name(group, plural)}
    if not group and plural in LEGACY_COUNTED:
        accepted.add(plural)
    return [n for n in names if n in accepted]


def quota_applies(quota: Object, group: str, plural: str, obj: Object, hard: Iterable[str]) -> bool:
    """quota.Matches: the quota limits something this object uses, and its scopes (pods
    only) select the object."""
    if not matching_resources(group, plural, hard):
        return False
    requirements = scope_requirements(quota)
    if not requirements:
        return True
    if group or plural != "pods":
        return False
    return all(_pod_matches_scope(obj, r) for r in requirements)


def quota_usage(
    quota: Object, resources: Mapping[tuple[str, str], list[Object]], now: datetime
) -> ResourceList:
    """status.used for `quota` over the namespace's objects, by (group, plural): zero
    for every limited resource no object uses."""
    hard = parse_resource_list(as_dict(quota.get("spec")).get("hard"))
    used: ResourceList = {}
    for (group, plural), objects in resources.items():
        names = matching_resources(group, plural, hard)
        if not names:
            continue
        total: ResourceList = {name: ZERO for name in names}
        for obj in objects:
            if quota_applies(quota, group, plural, obj, hard):
                total = add(total, mask(usage_of(group, plural, obj, now), names))
        used.update(total)
    return used


def counted_resource(name: str) -> tuple[str, str] | None:
    """The (group, plural) whose objects a quota resource name counts."""
    if name.startswith("count/"):
        plural, _, group = name.removeprefix("count/").partition(".")
        return group, plural
    if name in LEGACY_COUNTED:
        return "", name
    if name in SERVICE_RESOURCES:
        return "", "services"
    if name in PVC_RESOURCES or STORAGE_CLASS_SUFFIX in name:
        return "", "persistentvolumeclaims"
    if matching_resources("", "pods", [name]):
        return "", "pods"
    return None
