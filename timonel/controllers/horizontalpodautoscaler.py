"""The horizontal pod autoscaler controller (kube's pkg/controller/podautoscaler).

Every sync period (15 s, --horizontal-pod-autoscaler-sync-period) each
HorizontalPodAutoscaler is reconciled: read its target's `/scale`; if the target is
outside [minReplicas, maxReplicas] bring it back; otherwise compute a proposal per metric
from the metrics API (metrics.k8s.io PodMetrics, read like any client) and the target's
pods, take the largest, stabilize and limit it (`spec.behavior`, or the defaults when it
has none), and write the new size through `/scale`. The status says what was seen
(currentReplicas, desiredReplicas, currentMetrics, lastScaleTime) and the conditions
AbleToScale / ScalingActive / ScalingLimited why, with kube's reasons and messages;
events SuccessfulRescale, FailedGetScale, FailedGetResourceMetric, ... as kube's.

Resource and container resource metrics are computed (Utilization and AverageValue);
Pods, Object and External metrics need a custom or external metrics API, which this
server does not serve, so they report as kube does when none is registered.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Final

from timonel.api.errors import StatusError
from timonel.api.objects import Object
from timonel.api.quantity import Quantity, QuantityError, parse_quantity_value
from timonel.api.selectors import LabelSelector, parse_label_selector
from timonel.client.resources import (
    DEPLOYMENTS,
    HORIZONTALPODAUTOSCALERS,
    PODS,
    REPLICASETS,
    REPLICATIONCONTROLLERS,
    STATEFULSETS,
    Resource,
)
from timonel.controllers.base import Controller
from timonel.controllers.manager import ControllerContext
from timonel.controllers.nodelifecycle import rfc3339
from timonel.controllers.podautoscaler.replicas import (
    TOLERANCE,
    MetricsError,
    PodMetric,
    average_value_replicas,
    resource_metrics,
    utilization_replicas,
)
from timonel.controllers.podautoscaler.scaling import (
    DOWNSCALE_STABILIZATION_WINDOW,
    History,
    normalize,
    normalize_with_behavior,
    with_initial_recommendation,
    with_scale_event,
)
from timonel.controllers.pods import meta

log = logging.getLogger(__name__)

COMPONENT: Final = "horizontal-pod-autoscaler"
SYNC_PERIOD: Final = 15.0
PODMETRICS: Final = Resource("metrics.k8s.io", "v1beta1", "pods", "PodMetrics")
# Scalable kinds known without asking discovery: (group, kind) → resource.
KNOWN_TARGETS: Final = {
    ("apps", "Deployment"): DEPLOYMENTS,
    ("apps", "ReplicaSet"): REPLICASETS,
    ("apps", "StatefulSet"): STATEFULSETS,
    ("", "ReplicationController"): REPLICATIONCONTROLLERS,
}

ABLE_TO_SCALE: Final = "AbleToScale"
SCALING_ACTIVE: Final = "ScalingActive"
SCALING_LIMITED: Final = "ScalingLimited"


# ======================================================================================
# pure decisions
# ======================================================================================


def set_condition(
    hpa: Object, kind: str, status: str, reason: str, message: str, now: datetime
) -> None:
    """setCondition: update the condition in place (its transition time moves only when
    its status changes), or append it."""
    hpa_status = hpa.setdefault("status", {})
    conditions = hpa_status.get("conditions")
    if not isinstance(conditions, list):
        conditions = []
        hpa_status["conditions"] = conditions
    for condition in conditions:
        if isinstance(condition, dict) and condition.get("type") == kind:
            if condition.get("status") != status:
                condition["lastTransitionTime"] = rfc3339(now)
            condition.update(status=status, reason=reason, message=message)
            return
    conditions.append(
        {
            "type": kind,
            "status": status,
            "lastTransitionTime": rfc3339(now),
            "reason": reason,
            "message": message,
        }
    )


def _milli_quantity(milli: int) -> str:
    return str(Quantity.from_milli(milli))


def _target_milli(value: Any) -> int | None:
    try:
        return parse_quantity_value(value).milli_value()
    except (QuantityError, TypeError, ValueError):
        return None


@dataclass(frozen=True)
class MetricOutcome:
    """One metric's proposal, or why there is none: `cause` is what the event and the
    ScalingActive condition say (with `reason`), `error` the same for the summary."""

    replicas: int = 0
    name: str = ""
    status: Object | None = None
    error: str = ""
    cause: str = ""
    reason: str = ""


def _failed(reason: str, cause: str, context: str = "") -> MetricOutcome:
    return MetricOutcome(
        error=f"{context}: {cause}" if context else cause, cause=cause, reason=reason
    )


# The metric sources that need an API this server does not serve, with kube's reasons.
_UNSERVED_SOURCES: Final = {
    "Pods": ("pods", "FailedGetPodsMetric", "failed to get pods metric value"),
    "Object": ("object", "FailedGetObjectMetric", "failed to get object metric value"),
    "External": ("external", "FailedGetExternalMetric", "failed to get external metric value"),
}


def _unserved_metric(metric: dict[str, Any]) -> MetricOutcome:
    field, reason, context = _UNSERVED_SOURCES[str(metric.get("type"))]
    name = ((metric.get(field) or {}).get("metric") or {}).get("name", "")
    if field == "external":
        cause = (
            f"unable to get external metric {name}: unable to fetch metrics from external "
            "metrics API: no external metrics API (external.metrics.k8s.io) registered"
        )
    else:
        cause = (
            f"unable to get metric {name}: unable to fetch metrics from custom metrics API: "
            "no custom metrics API (custom.metrics.k8s.io) registered"
        )
    return _failed(reason, cause, context)


def _samples(
    pod_metrics: list[Object] | MetricsError, resource: str, container: str
) -> dict[str, PodMetric]:
    """GetResourceMetric: the pods' samples, or why there are none."""
    try:
        if isinstance(pod_metrics, MetricsError):
            raise pod_metrics
        samples, _ = resource_metrics(pod_metrics, resource, container)
    except MetricsError as error:
        raise MetricsError(f"unable to get metrics for resource {resource}: {error}") from None
    return samples


def evaluate_metric(
    metric: dict[str, Any],
    current_replicas: int,
    pods: list[Object],
    pod_metrics: list[Object] | MetricsError,
    now: datetime,
    tolerance: float = TOLERANCE,
) -> MetricOutcome:
    """computeReplicasForMetric for one metric spec: a proposal with its status entry."""
    kind = metric.get("type")
    if kind in _UNSERVED_SOURCES:
        return _unserved_metric(metric)
    if kind not in ("Resource", "ContainerResource"):
        cause = f'unknown metric source type "{kind}"'
        return _failed("InvalidMetricSourceType", cause)
    container_metric = kind == "ContainerResource"
    field = "containerResource" if container_metric else "resource"
    source = metric.get(field) or {}
    resource = str(source.get("name") or "")
    container = str(source.get("container") or "") if container_metric else ""
    target = source.get("target") or {}
    if container_metric:
        reason = "FailedGetContainerResourceMetric"
        context = f"failed to get {resource} container metric value"
        label = f"{resource} container resource"
    else:
        reason = "FailedGetResourceMetric"
        context = f"failed to get {resource} resource metric value"
        label = f"{resource} resource"
    average_target = _target_milli(target.get("averageValue"))
    current: dict[str, Any]
    if average_target is not None:
        try:
            samples = _samples(pod_metrics, resource, container)
            value = average_value_replicas(
                current_replicas,
                average_target,
                resource,
                pods,
                samples,
                now,
                tolerance=tolerance,
            )
        except MetricsError as error:
            return _failed(reason, f"failed to get {resource} usage: {error}", context)
        current = {"averageValue": _milli_quantity(value.average_value)}
        replicas, name = value.replicas, label
    else:
        utilization_target = target.get("averageUtilization")
        if not isinstance(utilization_target, int) or utilization_target <= 0:
            cause = (
                "invalid resource metric source: neither an average utilization target "
                "nor an average value (usage) target was set"
            )
            return _failed(reason, cause, context)
        try:
            samples = _samples(pod_metrics, resource, container)
            proposal = utilization_replicas(
                current_replicas,
                utilization_target,
                resource,
                pods,
                samples,
                now,
                container=container,
                tolerance=tolerance,
            )
        except MetricsError as error:
            return _failed(reason, f"failed to get {resource} utilization: {error}", context)
        current = {
            "averageUtilization": proposal.utilization,
            "averageValue": _milli_quantity(proposal.average_value),
        }
        replicas, name = proposal.replicas, f"{label} utilization (percentage of request)"
    entry: dict[str, Any] = {"name": resource, "current": current}
    if container_metric:
        entry = {"name": resource, "container": container, "current": current}
    return MetricOutcome(replicas, name, {"type": kind, field: entry})


@dataclass(frozen=True)
class MetricsDecision:
    """computeReplicasForMetrics: the largest proposal (or -1 when scaling must not
    happen), the metric it came from, every metric's status, the first error, and the
    ScalingActive condition to set (status, reason, message)."""

    replicas: int
    metric: str
    statuses: list[Object]
    error: str
    scaling_active: tuple[str, str, str]


def decide_from_metrics(outcomes: list[MetricOutcome], spec_replicas: int) -> MetricsDecision:
    replicas, metric = 0, ""
    invalid: list[MetricOutcome] = []
    for outcome in outcomes:
        if outcome.error:
            invalid.append(outcome)
        elif replicas == 0 or outcome.replicas > replicas:
            replicas, metric = outcome.replicas, outcome.name
    # A metric that failed leaves an empty entry, as kube's zero MetricStatus.
    statuses = [o.status if o.status is not None else {"type": ""} for o in outcomes]
    error = ""
    if invalid:
        error = (
            f"invalid metrics ({len(invalid)} invalid out of {len(outcomes)}), "
            f"first error is: {invalid[0].error}"
        )
    # All metrics invalid, or some invalid while the valid ones would scale down: do not
    # act on partial information.
    if invalid and (len(invalid) >= len(outcomes) or replicas < spec_replicas):
        first = invalid[0]
        condition = (
            "False",
            first.reason,
            f"the HPA was unable to compute the replica count: {first.cause}",
        )
        return MetricsDecision(-1, "", statuses, error, condition)
    condition = (
        "True",
        "ValidMetricFound",
        f"the HPA was able to successfully calculate a replica count from {metric}",
    )
    return MetricsDecision(replicas, metric, statuses, error, condition)


def min_replicas_of(hpa: Object) -> int:
    value = (hpa.get("spec") or {}).get("minReplicas")
    return value if isinstance(value, int) and not isinstance(value, bool) else 1


def max_replicas_of(hpa: Object) -> int:
    value = (hpa.get("spec") or {}).get("maxReplicas")
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def set_status(
    hpa: Object,
    current: int,
    desired: int,
    statuses: list[Object] | None,
    now: datetime | None,
) -> None:
    """setStatus: rebuild the status, keeping lastScaleTime (moved to `now` on a rescale)
    and the conditions."""
    previous = hpa.get("status") or {}
    status: dict[str, Any] = {
        "observedGeneration": meta(hpa).get("generation") or 0,
        "currentReplicas": current,
        "desiredReplicas": desired,
        "currentMetrics": statuses or None,
    }
    last_scale = rfc3339(now) if now is not None else previous.get("lastScaleTime")
    if last_scale:
        status["lastScaleTime"] = last_scale
    if previous.get("conditions"):
        status["conditions"] = previous["conditions"]
    hpa["status"] = status


def pods_selected(pods: list[Object], selector: LabelSelector) -> list[Object]:
    return [p for p in pods if selector.matches(meta(p).get("labels") or {})]


def _group_of(api_version: str) -> tuple[str, str]:
    """(group, version) of an apiVersion; ValueError as schema.ParseGroupVersion."""
    if api_version.count("/") > 1:
        raise ValueError(f"unexpected GroupVersion string: {api_version}")
    group, _, version = api_version.rpartition("/")
    return group, version


# ======================================================================================
# the controller
# ======================================================================================


def _number_option(options: dict[str, object], name: str, default: float) -> float:
    value = options.get(name)
    return float(value) if isinstance(value, int | float) else default


class HorizontalPodAutoscalerController(Controller):
    name: ClassVar[str] = "horizontal-pod-autoscaler-controller"
    workers = 2

    def __init__(
        self, context: ControllerContext, *, clock: Callable[[], datetime] | None = None
    ) -> None:
        self.client = context.client
        self.autoscalers = context.informers.informer(HORIZONTALPODAUTOSCALERS)
        self.pods = context.informers.informer(PODS)
        super().__init__([self.autoscalers, self.pods])
        self.recorder = context.recorder(COMPONENT)
        self.now = clock or (lambda: datetime.now(UTC))
        options = context.options
        # kube-controller-manager's --horizontal-pod-autoscaler-* flags.
        self.sync_period = _number_option(
            options, "horizontal_pod_autoscaler_sync_period", SYNC_PERIOD
        )
        self.tolerance = _number_option(options, "horizontal_pod_autoscaler_tolerance", TOLERANCE)
        self.downscale_window = timedelta(
            seconds=_number_option(
                options,
                "horizontal_pod_autoscaler_downscale_stabilization",
                DOWNSCALE_STABILIZATION_WINDOW.total_seconds(),
            )
        )
        self.history: dict[str, History] = {}
        self.autoscalers.add_handlers(
            on_add=self._enqueue,
            on_update=lambda _, new: self._enqueue(new),
            on_delete=self._forget,
        )

    @staticmethod
    def _key(hpa: Object) -> str:
        return f"{meta(hpa).get('namespace', '')}/{meta(hpa).get('name', '')}"

    def _enqueue(self, hpa: Object) -> None:
        # As kube: every autoscaler is looked at once per sync period, changes included.
        self.queue.add_after(self._key(hpa), self.sync_period)

    def _forget(self, hpa: Object) -> None:
        self.history.pop(self._key(hpa), None)

    async def sync(self, key: str) -> None:
        hpa = self.autoscalers.get(key)
        if hpa is None:
            self.history.pop(key, None)
            return
        try:
            await self.reconcile(key, copy.deepcopy(hpa))
        except StatusError as error:
            log.info("horizontal pod autoscaler %s: %s", key, error.message)
        except MetricsError as error:
            log.info("horizontal pod autoscaler %s: %s", key, error)
        finally:
            self.queue.add_after(key, self.sync_period)

    async def _update_status(self, original: Object | None, hpa: Object) -> None:
        """updateStatusIfNeeded."""
        if original == hpa.get("status"):
            return
        try:
            await self.client.update_status(HORIZONTALPODAUTOSCALERS, hpa)
        except StatusError as error:
            self.recorder.event(hpa, "Warning", "FailedUpdateStatus", error.message)
            raise

    async def target_resource(self, ref: dict[str, Any]) -> Resource:
        """The resource of the scale target (RESTMapping); MetricsError when unknown."""
        group, version = _group_of(str(ref.get("apiVersion") or ""))
        kind = str(ref.get("kind") or "")
        known = KNOWN_TARGETS.get((group, kind))
        if known is not None:
            return known
        path = f"/apis/{group}/{version}" if group else f"/api/{version}"
        try:
            discovery = await self.client.get_path(path)
        except StatusError:
            discovery = {}
        for entry in discovery.get("resources") or []:
            if entry.get("kind") == kind and "/" not in str(entry.get("name", "")):
                return Resource(group, version, entry["name"], kind, bool(entry.get("namespaced")))
        raise MetricsError(f'no matches for kind "{kind}" in group "{group}"')

    async def _fail_to_get_scale(self, hpa: Object, original: Object | None, message: str) -> None:
        self.recorder.event(hpa, "Warning", "FailedGetScale", message)
        set_condition(
            hpa,
            ABLE_TO_SCALE,
            "False",
            "FailedGetScale",
            f"the HPA controller was unable to get the target's current scale: {message}",
            self.now(),
        )
        await self._update_status(original, hpa)

    async def reconcile(self, key: str, hpa: Object) -> None:
        original = copy.deepcopy(hpa.get("status"))
        spec = hpa.get("spec") or {}
        namespace = meta(hpa).get("namespace", "")
        ref = spec.get("scaleTargetRef") or {}
        try:
            resource = await self.target_resource(ref)
        except (ValueError, MetricsError) as error:
            await self._fail_to_get_scale(hpa, original, str(error))
            return
        try:
            scale = await self.client.get(
                resource, str(ref.get("name", "")), namespace, subresource="scale"
            )
        except StatusError as error:
            await self._fail_to_get_scale(hpa, original, error.message)
            return
        now = self.now()
        set_condition(
            hpa,
            ABLE_TO_SCALE,
            "True",
            "SucceededGetScale",
            "the HPA controller was able to get the target's current scale",
            now,
        )
        current = int((scale.get("spec") or {}).get("replicas") or 0)
        history = with_initial_recommendation(self.history.get(key, History()), current, now)
        self.history[key] = history
        min_replicas, max_replicas = min_replicas_of(hpa), max_replicas_of(hpa)
        statuses: list[Object] | None = None
        reason = ""
        desired = 0
        if current == 0 and min_replicas != 0:
            # A target scaled to zero by hand has autoscaling switched off.
            set_condition(
                hpa,
                SCALING_ACTIVE,
                "False",
                "ScalingDisabled",
                "scaling is disabled since the replica count of the target is zero",
                now,
            )
            rescale = False
        elif current > max_replicas:
            reason, desired, rescale = (
                "Current number of replicas above Spec.MaxReplicas",
                max_replicas,
                True,
            )
        elif current < min_replicas:
            reason, desired, rescale = (
                "Current number of replicas below Spec.MinReplicas",
                min_replicas,
                True,
            )
        else:
            decision = await self.metrics_decision(hpa, scale, current, now)
            statuses = decision.statuses
            if decision.replicas == -1:
                set_status(
                    hpa,
                    current,
                    (hpa.get("status") or {}).get("desiredReplicas") or 0,
                    statuses,
                    None,
                )
                await self._update_status(original, hpa)
                if decision.error:
                    self.recorder.event(
                        hpa, "Warning", "FailedComputeMetricsReplicas", decision.error
                    )
                return
            desired = max(decision.replicas, 0)
            if desired > current:
                reason = f"{decision.metric} above target"
            elif desired < current:
                reason = "All metrics below target"
            behavior = spec.get("behavior")
            if isinstance(behavior, dict):
                normalized = normalize_with_behavior(
                    history,
                    current,
                    desired,
                    min_replicas,
                    max_replicas,
                    behavior,
                    now,
                    self.downscale_window,
                )
            else:
                normalized = normalize(
                    history,
                    current,
                    desired,
                    min_replicas,
                    max_replicas,
                    now,
                    self.downscale_window,
                )
            self.history[key] = normalized.history
            set_condition(hpa, ABLE_TO_SCALE, "True", *normalized.able_to_scale, now)
            set_condition(
                hpa,
                SCALING_LIMITED,
                "True" if normalized.limited else "False",
                *normalized.limit,
                now,
            )
            desired = normalized.replicas
            rescale = desired != current
        if rescale:
            updated_scale = copy.deepcopy(scale)
            updated_scale.setdefault("spec", {})["replicas"] = desired
            try:
                await self.client.update(resource, updated_scale, subresource="scale")
            except StatusError as error:
                self.recorder.event(
                    hpa,
                    "Warning",
                    "FailedRescale",
                    f"New size: {desired}; reason: {reason}; error: {error.message}",
                )
                set_condition(
                    hpa,
                    ABLE_TO_SCALE,
                    "False",
                    "FailedUpdateScale",
                    f"the HPA controller was unable to update the target scale: {error.message}",
                    now,
                )
                set_status(
                    hpa,
                    current,
                    (hpa.get("status") or {}).get("desiredReplicas") or 0,
                    statuses,
                    None,
                )
                await self._update_status(original, hpa)
                return
            set_condition(
                hpa,
                ABLE_TO_SCALE,
                "True",
                "SucceededRescale",
                f"the HPA controller was able to update the target scale to {desired}",
                now,
            )
            self.recorder.event(
                hpa, "Normal", "SuccessfulRescale", f"New size: {desired}; reason: {reason}"
            )
            self.history[key] = with_scale_event(
                self.history[key], spec.get("behavior"), current, desired, now
            )
            log.info("rescaled %s from %d to %d: %s", key, current, desired, reason)
        else:
            desired = current
        set_status(hpa, current, desired, statuses, now if rescale else None)
        await self._update_status(original, hpa)

    async def metrics_decision(
        self, hpa: Object, scale: Object, current: int, now: datetime
    ) -> MetricsDecision:
        """computeReplicasForMetrics, with its conditions and events."""
        selector_text = str((scale.get("status") or {}).get("selector") or "")
        if not selector_text:
            self.recorder.event(hpa, "Warning", "SelectorRequired", "selector is required")
            set_condition(
                hpa,
                SCALING_ACTIVE,
                "False",
                "InvalidSelector",
                "the HPA target's scale is missing a selector",
                now,
            )
            return MetricsDecision(-1, "", [], "selector is required", ("", "", ""))
        try:
            selector = parse_label_selector(selector_text)
        except StatusError as error:
            message = (
                "couldn't convert selector into a corresponding internal selector object: "
                f"{error.message}"
            )
            self.recorder.event(hpa, "Warning", "InvalidSelector", message)
            set_condition(hpa, SCALING_ACTIVE, "False", "InvalidSelector", message, now)
            return MetricsDecision(-1, "", [], message, ("", "", ""))
        namespace = meta(hpa).get("namespace", "")
        pods = pods_selected(self.pods.indexer.by_index("namespace", namespace), selector)
        metrics_spec = [
            m for m in (hpa.get("spec") or {}).get("metrics") or [] if isinstance(m, dict)
        ]
        pod_metrics = await self.pod_metrics(namespace, selector_text, metrics_spec)
        outcomes = [
            evaluate_metric(metric, current, pods, pod_metrics, now, self.tolerance)
            for metric in metrics_spec
        ]
        for outcome in outcomes:
            if outcome.error:
                self.recorder.event(hpa, "Warning", outcome.reason, outcome.cause)
        decision = decide_from_metrics(outcomes, current)
        set_condition(hpa, SCALING_ACTIVE, *decision.scaling_active, now)
        return decision

    async def pod_metrics(
        self, namespace: str, selector: str, metrics_spec: list[dict[str, Any]]
    ) -> list[Object] | MetricsError:
        """The PodMetrics of the target's pods, once per sync (only when a resource
        metric needs them)."""
        if not any(m.get("type") in ("Resource", "ContainerResource") for m in metrics_spec):
            return []
        try:
            listed = await self.client.list(PODMETRICS, namespace, label_selector=selector)
        except StatusError as error:
            return MetricsError(
                f"unable to fetch metrics from resource metrics API: {error.message}"
            )
        return [i for i in listed.get("items") or [] if isinstance(i, dict)]
