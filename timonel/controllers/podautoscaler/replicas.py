"""The replica calculator: how many replicas a resource metric asks for (kube's
replica_calculator.go and metrics client, v1.32).

Pods are grouped first: deleted or failed pods are ignored; pending pods, and for cpu the
pods not ready or still warming up, are "unready"; pods without a sample are "missing".
The usage of the ready pods gives a ratio to the target. Within the tolerance (0.1) the
replica count stays. When pods are unready or missing, the ratio is computed again
assuming the worst for the direction of the change: on a scale-up unready and missing
pods count as idle, on a scale-down missing pods count as fully using their request
(or the target, when it is above 100 %); if that flips the direction, nothing changes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from timonel.api.objects import Object
from timonel.api.quantity import QuantityError, parse_quantity_value
from timonel.controllers.pods import meta, ready_condition, timestamp

TOLERANCE: Final = 0.1
# --horizontal-pod-autoscaler-cpu-initialization-period and
# --horizontal-pod-autoscaler-initial-readiness-delay.
CPU_INITIALIZATION_PERIOD: Final = timedelta(minutes=5)
DELAY_OF_INITIAL_READINESS_STATUS: Final = timedelta(seconds=30)


class MetricsError(Exception):
    """Why no proposal could be computed, worded as kube words it."""


@dataclass(frozen=True)
class PodMetric:
    """One pod's sample: its value in milli-units, when and over which window it was taken."""

    value: int
    timestamp: datetime
    window: timedelta


@dataclass(frozen=True)
class UtilizationProposal:
    replicas: int
    utilization: int  # percent of the requests
    average_value: int  # milli-units per pod


@dataclass(frozen=True)
class ValueProposal:
    replicas: int
    average_value: int  # milli-units per pod


@dataclass(frozen=True)
class PodGroups:
    ready_count: int
    unready: frozenset[str]
    missing: frozenset[str]
    ignored: frozenset[str]


# -- reading the metrics API -------------------------------------------------------------


def _milli(value: Any) -> int | None:
    try:
        return parse_quantity_value(value).milli_value()
    except (QuantityError, TypeError, ValueError):
        return None


def _window(value: Any) -> timedelta:
    text = str(value or "")
    for suffix, unit in (("ms", 0.001), ("s", 1.0), ("m", 60.0)):
        if text.endswith(suffix):
            try:
                return timedelta(seconds=float(text[: -len(suffix)]) * unit)
            except ValueError:
                break
    return timedelta(0)


def resource_metrics(
    items: list[Object], resource: str, container: str = ""
) -> tuple[dict[str, PodMetric], datetime | None]:
    """PodMetrics items → each pod's usage of `resource` (summed over its containers, or
    of one container), and the time of the first sample. A pod lacking the resource in
    any container is left out; a named container missing from a pod is an error."""
    if not items:
        raise MetricsError("no metrics returned from resource metrics API")
    found: dict[str, PodMetric] = {}
    for item in items:
        name = str(meta(item).get("name", ""))
        sampled = timestamp(item.get("timestamp"))
        if sampled is None:
            continue
        window = _window(item.get("window"))
        containers = [c for c in item.get("containers") or [] if isinstance(c, dict)]
        if container:
            chosen = [c for c in containers if c.get("name") == container]
            if not chosen:
                raise MetricsError(
                    f"failed to get container metrics: container {container} not present in "
                    f"metrics for pod {meta(item).get('namespace', '')}/{name}"
                )
            containers = chosen[:1]
        usages = [_milli((c.get("usage") or {}).get(resource)) for c in containers]
        if not usages or any(u is None for u in usages):
            continue
        found[name] = PodMetric(sum(u for u in usages if u is not None), sampled, window)
    first = timestamp(items[0].get("timestamp"))
    return found, first


# -- grouping pods ---------------------------------------------------------------------


def _cpu_unready(pod: Object, metric: PodMetric, now: datetime) -> bool:
    condition = ready_condition(pod)
    started = timestamp((pod.get("status") or {}).get("startTime"))
    if condition is None or started is None:
        return True
    transition = timestamp(condition.get("lastTransitionTime"))
    not_ready = condition.get("status") == "False"
    if started + CPU_INITIALIZATION_PERIOD > now:
        # Still starting: count the sample only when the pod is ready and a whole
        # window of it was taken after the pod became ready.
        return not_ready or (
            transition is not None and metric.timestamp < transition + metric.window
        )
    # Past the initialization period: ignore only a pod that never became ready.
    return (
        not_ready
        and transition is not None
        and started + DELAY_OF_INITIAL_READINESS_STATUS > transition
    )


def group_pods(
    pods: list[Object], metrics: Mapping[str, PodMetric], resource: str, now: datetime
) -> PodGroups:
    ready = 0
    unready: set[str] = set()
    missing: set[str] = set()
    ignored: set[str] = set()
    for pod in pods:
        name = str(meta(pod).get("name", ""))
        phase = (pod.get("status") or {}).get("phase")
        if meta(pod).get("deletionTimestamp") or phase == "Failed":
            ignored.add(name)
            continue
        if phase == "Pending":
            unready.add(name)
            continue
        metric = metrics.get(name)
        if metric is None:
            missing.add(name)
            continue
        if resource == "cpu" and _cpu_unready(pod, metric, now):
            unready.add(name)
            continue
        ready += 1
    return PodGroups(ready, frozenset(unready), frozenset(missing), frozenset(ignored))


def pod_requests(pods: list[Object], resource: str, container: str = "") -> dict[str, int]:
    """Each pod's request of `resource` in milli-units, over its containers and sidecars
    (restartable init containers), or of the one named container."""
    requests: dict[str, int] = {}
    for pod in pods:
        spec = pod.get("spec") or {}
        containers = list(spec.get("containers") or []) + [
            c for c in spec.get("initContainers") or [] if c.get("restartPolicy") == "Always"
        ]
        total = 0
        for entry in containers:
            if container and entry.get("name") != container:
                continue
            request = _milli(((entry.get("resources") or {}).get("requests") or {}).get(resource))
            if request is None:
                raise MetricsError(
                    f"missing request for {resource} in container {entry.get('name', '')} "
                    f"of Pod {meta(pod).get('name', '')}"
                )
            total += request
        requests[str(meta(pod).get("name", ""))] = total
    return requests


# -- ratios ----------------------------------------------------------------------------


def utilization_ratio(
    metrics: Mapping[str, PodMetric], requests: Mapping[str, int], target_utilization: int
) -> tuple[float, int, int]:
    """(usage ratio, utilization percent, average milli-value) over the pods with both a
    sample and a request."""
    used = requested = counted = 0
    for name, metric in metrics.items():
        if name not in requests:
            continue
        used += metric.value
        requested += requests[name]
        counted += 1
    if requested == 0:
        raise MetricsError("no metrics returned matched known pods")
    utilization = used * 100 // requested
    return utilization / target_utilization, utilization, used // counted


def value_ratio(metrics: Mapping[str, PodMetric], target_value: int) -> tuple[float, int]:
    average = sum(m.value for m in metrics.values()) // len(metrics)
    return average / target_value, average


def _ceil(value: float) -> int:
    return math.ceil(value)


def _without(metrics: Mapping[str, PodMetric], names: frozenset[str]) -> dict[str, PodMetric]:
    return {name: metric for name, metric in metrics.items() if name not in names}


def _settled(
    ratio: float, new_ratio: float, new_replicas: int, current_replicas: int, tolerance: float
) -> bool:
    """Whether filling in unready and missing pods leaves the count where it is: the
    change is within tolerance, or the fill-in reverses the direction."""
    if abs(1.0 - new_ratio) <= tolerance:
        return True
    if (ratio < 1.0 < new_ratio) or (ratio > 1.0 > new_ratio):
        return True
    return (new_ratio < 1.0 and new_replicas > current_replicas) or (
        new_ratio > 1.0 and new_replicas < current_replicas
    )


def utilization_replicas(
    current_replicas: int,
    target_utilization: int,
    resource: str,
    pods: list[Object],
    metrics: Mapping[str, PodMetric],
    now: datetime,
    *,
    container: str = "",
    tolerance: float = TOLERANCE,
) -> UtilizationProposal:
    """GetResourceReplicas: a target of `target_utilization` percent of the requests."""
    if not pods:
        raise MetricsError("no pods returned by selector while calculating replica count")
    groups = group_pods(pods, metrics, resource, now)
    samples = _without(metrics, groups.ignored | groups.unready)
    if not samples:
        raise MetricsError("did not receive metrics for targeted pods (pods might be unready)")
    requests = pod_requests(pods, resource, container)
    ratio, utilization, average = utilization_ratio(samples, requests, target_utilization)
    scale_up_with_unready = bool(groups.unready) and ratio > 1.0
    if not scale_up_with_unready and not groups.missing:
        if abs(1.0 - ratio) <= tolerance:
            return UtilizationProposal(current_replicas, utilization, average)
        return UtilizationProposal(_ceil(ratio * groups.ready_count), utilization, average)
    if groups.missing and ratio != 1.0:
        fallback_percent = max(100, target_utilization) if ratio < 1.0 else 0
        for name in groups.missing:
            samples[name] = PodMetric(
                requests.get(name, 0) * fallback_percent // 100, now, timedelta(0)
            )
    if scale_up_with_unready:
        for name in groups.unready:
            samples[name] = PodMetric(0, now, timedelta(0))
    new_ratio, _, _ = utilization_ratio(samples, requests, target_utilization)
    new_replicas = _ceil(new_ratio * len(samples))
    if _settled(ratio, new_ratio, new_replicas, current_replicas, tolerance):
        return UtilizationProposal(current_replicas, utilization, average)
    return UtilizationProposal(new_replicas, utilization, average)


def average_value_replicas(
    current_replicas: int,
    target_value: int,
    resource: str,
    pods: list[Object],
    metrics: Mapping[str, PodMetric],
    now: datetime,
    *,
    tolerance: float = TOLERANCE,
) -> ValueProposal:
    """calcPlainMetricReplicas: a target of `target_value` milli-units per pod."""
    if not pods:
        raise MetricsError("no pods returned by selector while calculating replica count")
    groups = group_pods(pods, metrics, resource, now)
    samples = _without(metrics, groups.ignored | groups.unready)
    if not samples:
        raise MetricsError("did not receive metrics for targeted pods (pods might be unready)")
    ratio, average = value_ratio(samples, target_value)
    scale_up_with_unready = bool(groups.unready) and ratio > 1.0
    if not scale_up_with_unready and not groups.missing:
        if abs(1.0 - ratio) <= tolerance:
            return ValueProposal(current_replicas, average)
        return ValueProposal(_ceil(ratio * groups.ready_count), average)
    if groups.missing:
        fallback = target_value if ratio < 1.0 else 0
        for name in groups.missing:
            samples[name] = PodMetric(fallback, now, timedelta(0))
    if scale_up_with_unready:
        for name in groups.unready:
            samples[name] = PodMetric(0, now, timedelta(0))
    new_ratio, _ = value_ratio(samples, target_value)
    new_replicas = _ceil(new_ratio * len(samples))
    if _settled(ratio, new_ratio, new_replicas, current_replicas, tolerance):
        return ValueProposal(current_replicas, average)
    return ValueProposal(new_replicas, average)
