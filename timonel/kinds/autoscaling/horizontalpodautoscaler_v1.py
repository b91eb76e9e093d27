"""autoscaling/v1 HorizontalPodAutoscaler, served over the autoscaling/v2 objects.

v1 only knows a CPU utilization target. As kube-apiserver does, everything else a v2
object holds travels through v1 in annotations, encoded the way kube-apiserver encodes
them, and is lifted back into the fields when a v1 object is written:

    autoscaling.alpha.kubernetes.io/metrics          spec.metrics other than CPU utilization
    autoscaling.alpha.kubernetes.io/behavior         spec.behavior
    autoscaling.alpha.kubernetes.io/current-metrics  status.currentMetrics
    autoscaling.alpha.kubernetes.io/conditions       status.conditions

Defaults, validation and the table are the v2 ones, applied to the converted object.
"""

from __future__ import annotations

import copy
import json
from typing import Any, ClassVar

from timonel.api.errors import FieldError
from timonel.api.objects import Object
from timonel.api.quantity import QuantityError, canonical_quantity
from timonel.kinds.apps.intstr import is_int
from timonel.kinds.apps.workload import as_dict
from timonel.kinds.autoscaling.horizontalpodautoscaler import HorizontalPodAutoscalerStrategy
from timonel.kinds.base import Column, Strategy

METRICS_ANNOTATION = "autoscaling.alpha.kubernetes.io/metrics"
BEHAVIOR_ANNOTATION = "autoscaling.alpha.kubernetes.io/behavior"
CURRENT_METRICS_ANNOTATION = "autoscaling.alpha.kubernetes.io/current-metrics"
CONDITIONS_ANNOTATION = "autoscaling.alpha.kubernetes.io/conditions"
ROUND_TRIP_ANNOTATIONS = (
    METRICS_ANNOTATION,
    BEHAVIOR_ANNOTATION,
    CURRENT_METRICS_ANNOTATION,
    CONDITIONS_ANNOTATION,
)


def _quantity(value: Any) -> str:
    """A resource.Quantity as Go encodes it; a missing one is zero."""
    if value is None:
        return "0"
    try:
        return canonical_quantity(value)
    except QuantityError:
        return str(value)


def _encode(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _is_cpu_utilization(metric: dict[str, Any]) -> bool:
    resource = as_dict(metric.get("resource"))
    return (
        metric.get("type") == "Resource"
        and resource.get("name") == "cpu"
        and as_dict(resource.get("target")).get("averageUtilization") is not None
    )


# -- v2 metric specs and statuses in their v1 (annotation) shape -----------------------------


def _metric_spec_to_v1(metric: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"type": metric.get("type", "")}
    source = as_dict(
        metric.get(
            {
                "Object": "object",
                "Pods": "pods",
                "Resource": "resource",
                "ContainerResource": "containerResource",
                "External": "external",
            }.get(str(metric.get("type")), "")
        )
    )
    target = as_dict(source.get("target"))
    identifier = as_dict(source.get("metric"))
    kind = metric.get("type")
    if kind == "Object":
        entry: dict[str, Any] = {
            "target": source.get("describedObject") or {"kind": "", "name": ""},
            "metricName": identifier.get("name", ""),
            "targetValue": _quantity(target.get("value")),
        }
        if identifier.get("selector") is not None:
            entry["selector"] = identifier["selector"]
        if target.get("averageValue") is not None:
            entry["averageValue"] = _quantity(target["averageValue"])
        out["object"] = entry
    elif kind == "Pods":
        entry = {
            "metricName": identifier.get("name", ""),
            "targetAverageValue": _quantity(target.get("averageValue")),
        }
        if identifier.get("selector") is not None:
            entry["selector"] = identifier["selector"]
        out["pods"] = entry
    elif kind in ("Resource", "ContainerResource"):
        entry = {"name": source.get("name", "")}
        if target.get("averageUtilization") is not None:
            entry["targetAverageUtilization"] = target["averageUtilization"]
        if target.get("averageValue") is not None:
            entry["targetAverageValue"] = _quantity(target["averageValue"])
        if kind == "ContainerResource":
            entry["container"] = source.get("container", "")
            out["containerResource"] = entry
        else:
            out["resource"] = entry
    elif kind == "External":
        entry = {"metricName": identifier.get("name", "")}
        if identifier.get("selector") is not None:
            entry["metricSelector"] = identifier["selector"]
        if target.get("value") is not None:
            entry["targetValue"] = _quantity(target["value"])
        if target.get("averageValue") is not None:
            entry["targetAverageValue"] = _quantity(target["averageValue"])
        out["external"] = entry
    return out


def _present(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def _identifier(name: Any, selector: Any) -> dict[str, Any]:
    identifier: dict[str, Any] = {"name": name or ""}
    if selector is not None:
        identifier["selector"] = selector
    return identifier


def _metric_spec_to_v2(metric: dict[str, Any]) -> dict[str, Any]:
    kind = metric.get("type", "")
    out: dict[str, Any] = {"type": kind}
    if kind == "Object":
        source = as_dict(metric.get("object"))
        average = source.get("averageValue")
        target: dict[str, Any] = {"type": "AverageValue" if average is not None else "Value"}
        if source.get("targetValue") is not None:
            target["value"] = source["targetValue"]
        if average is not None:
            target["averageValue"] = average
        out["object"] = {
            "describedObject": source.get("target") or {},
            "target": target,
            "metric": _identifier(source.get("metricName"), source.get("selector")),
        }
    elif kind == "Pods":
        source = as_dict(metric.get("pods"))
        out["pods"] = {
            "metric": _identifier(source.get("metricName"), source.get("selector")),
            "target": _present(
                {"type": "AverageValue", "averageValue": source.get("targetAverageValue")}
            ),
        }
    elif kind in ("Resource", "ContainerResource"):
        field = "resource" if kind == "Resource" else "containerResource"
        source = as_dict(metric.get(field))
        utilization = source.get("targetAverageUtilization")
        target = {"type": "Utilization" if utilization is not None else "AverageValue"}
        if source.get("targetAverageValue") is not None:
            target["averageValue"] = source["targetAverageValue"]
        if utilization is not None:
            target["averageUtilization"] = utilization
        entry: dict[str, Any] = {"name": source.get("name", ""), "target": target}
        if kind == "ContainerResource":
            entry["container"] = source.get("container", "")
        out[field] = entry
    elif kind == "External":
        source = as_dict(metric.get("external"))
        value = source.get("targetValue")
        target = {"type": "Value" if value is not None else "AverageValue"}
        if value is not None:
            target["value"] = value
        if source.get("targetAverageValue") is not None:
            target["averageValue"] = source["targetAverageValue"]
        out["external"] = {
            "metric": _identifier(source.get("metricName"), source.get("metricSelector")),
            "target": target,
        }
    return out


def _metric_status_to_v1(metric: dict[str, Any]) -> dict[str, Any]:
    kind = metric.get("type", "")
    out: dict[str, Any] = {"type": kind}
    field = {
        "Object": "object",
        "Pods": "pods",
        "Resource": "resource",
        "ContainerResource": "containerResource",
        "External": "external",
    }.get(str(kind))
    source = as_dict(metric.get(field)) if field else {}
    current = as_dict(source.get("current"))
    identifier = as_dict(source.get("metric"))
    if kind == "Object":
        entry: dict[str, Any] = {
            "target": source.get("describedObject") or {"kind": "", "name": ""},
            "metricName": identifier.get("name", ""),
            "currentValue": _quantity(current.get("value")),
        }
        if identifier.get("selector") is not None:
            entry["selector"] = identifier["selector"]
        if current.get("averageValue") is not None:
            entry["averageValue"] = _quantity(current["averageValue"])
        out["object"] = entry
    elif kind == "Pods":
        entry = {
            "metricName": identifier.get("name", ""),
            "currentAverageValue": _quantity(current.get("averageValue")),
        }
        if identifier.get("selector") is not None:
            entry["selector"] = identifier["selector"]
        out["pods"] = entry
    elif kind in ("Resource", "ContainerResource"):
        entry = {"name": source.get("name", "")}
        if current.get("averageUtilization") is not None:
            entry["currentAverageUtilization"] = current["averageUtilization"]
        entry["currentAverageValue"] = _quantity(current.get("averageValue"))
        if kind == "ContainerResource":
            entry["container"] = source.get("container", "")
        out[str(field)] = entry
    elif kind == "External":
        entry = {"metricName": identifier.get("name", "")}
        if identifier.get("selector") is not None:
            entry["metricSelector"] = identifier["selector"]
        entry["currentValue"] = _quantity(current.get("value"))
        if current.get("averageValue") is not None:
            entry["currentAverageValue"] = _quantity(current["averageValue"])
        out["external"] = entry
    return out


def _metric_status_to_v2(metric: dict[str, Any]) -> dict[str, Any]:
    kind = metric.get("type", "")
    out: dict[str, Any] = {"type": kind}
    if kind == "Object":
        source = as_dict(metric.get("object"))
        current = _present(
            {"value": source.get("currentValue"), "averageValue": source.get("averageValue")}
        )
        out["object"] = {
            "metric": _identifier(source.get("metricName"), source.get("selector")),
            "current": current,
            "describedObject": source.get("target") or {},
        }
    elif kind == "Pods":
        source = as_dict(metric.get("pods"))
        out["pods"] = {
            "metric": _identifier(source.get("metricName"), source.get("selector")),
            "current": _present({"averageValue": source.get("currentAverageValue")}),
        }
    elif kind in ("Resource", "ContainerResource"):
        field = "resource" if kind == "Resource" else "containerResource"
        source = as_dict(metric.get(field))
        current = _present(
            {
                "averageValue": source.get("currentAverageValue"),
                "averageUtilization": source.get("currentAverageUtilization"),
            }
        )
        entry: dict[str, Any] = {"name": source.get("name", ""), "current": current}
        if kind == "ContainerResource":
            entry["container"] = source.get("container", "")
        out[field] = entry
    elif kind == "External":
        source = as_dict(metric.get("external"))
        current = _present(
            {"value": source.get("currentValue"), "averageValue": source.get("currentAverageValue")}
        )
        out["external"] = {
            "metric": _identifier(source.get("metricName"), source.get("metricSelector")),
            "current": current,
        }
    return out


# -- behavior, encoded as kube-apiserver encodes its internal struct ------------------------


def _behavior_to_annotation(behavior: dict[str, Any]) -> str:
    def rules(value: Any) -> Any:
        if not isinstance(value, dict):
            return None
        policies = value.get("policies")
        return {
            "StabilizationWindowSeconds": value.get("stabilizationWindowSeconds"),
            "SelectPolicy": value.get("selectPolicy"),
            "Policies": None
            if policies is None
            else [
                {
                    "Type": as_dict(p).get("type", ""),
                    "Value": as_dict(p).get("value", 0),
                    "PeriodSeconds": as_dict(p).get("periodSeconds", 0),
                }
                for p in policies
            ],
        }

    return _encode(
        {"ScaleUp": rules(behavior.get("scaleUp")), "ScaleDown": rules(behavior.get("scaleDown"))}
    )


def _lower_keys(value: Any) -> Any:
    """Go's json.Unmarshal matches field names without regard to case."""
    if isinstance(value, dict):
        return {str(k).lower(): _lower_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_lower_keys(v) for v in value]
    return value


def _behavior_from_annotation(text: str) -> dict[str, Any] | None:
    try:
        decoded = _lower_keys(json.loads(text))
    except ValueError:
        return None
    if not isinstance(decoded, dict):
        return None
    behavior: dict[str, Any] = {}
    for name, key in (("scaleUp", "scaleup"), ("scaleDown", "scaledown")):
        rules = decoded.get(key)
        if not isinstance(rules, dict):
            continue
        converted: dict[str, Any] = {}
        if rules.get("stabilizationwindowseconds") is not None:
            converted["stabilizationWindowSeconds"] = rules["stabilizationwindowseconds"]
        if rules.get("selectpolicy") is not None:
            converted["selectPolicy"] = rules["selectpolicy"]
        if rules.get("policies") is not None:
            converted["policies"] = [
                {
                    "type": as_dict(p).get("type", ""),
                    "value": as_dict(p).get("value", 0),
                    "periodSeconds": as_dict(p).get("periodseconds", 0),
                }
                for p in rules["policies"]
            ]
        behavior[name] = converted
    return behavior or None


# -- whole objects --------------------------------------------------------------------------


def hpa_v2_to_v1(obj: Object) -> Object:
    """An autoscaling/v2 HorizontalPodAutoscaler as autoscaling/v1 shows it."""
    spec = as_dict(obj.get("spec"))
    status = obj.get("status")
    out: Object = {**obj, "apiVersion": "autoscaling/v1"}
    out["metadata"] = meta = copy.copy(as_dict(obj.get("metadata")))
    annotations = dict(as_dict(meta.get("annotations")))

    metrics = [as_dict(m) for m in spec.get("metrics") or []]
    v1_spec: dict[str, Any] = {"scaleTargetRef": spec.get("scaleTargetRef") or {}}
    if spec.get("minReplicas") is not None:
        v1_spec["minReplicas"] = spec["minReplicas"]
    v1_spec["maxReplicas"] = spec.get("maxReplicas", 0)
    for metric in metrics:
        if (
            metric.get("type") == "Resource"
            and as_dict(metric.get("resource")).get("name") == "cpu"
        ):
            utilization = as_dict(as_dict(metric["resource"]).get("target")).get(
                "averageUtilization"
            )
            if utilization is not None:
                v1_spec["targetCPUUtilizationPercentage"] = utilization
            break
    out["spec"] = v1_spec
    others = [_metric_spec_to_v1(m) for m in metrics if not _is_cpu_utilization(m)]
    if others:
        annotations[METRICS_ANNOTATION] = _encode(others)
    if isinstance(spec.get("behavior"), dict):
        annotations[BEHAVIOR_ANNOTATION] = _behavior_to_annotation(spec["behavior"])

    if isinstance(status, dict):
        v1_status: dict[str, Any] = {}
        for name in ("observedGeneration", "lastScaleTime"):
            if status.get(name) is not None:
                v1_status[name] = status[name]
        v1_status["currentReplicas"] = status.get("currentReplicas") or 0
        v1_status["desiredReplicas"] = status.get("desiredReplicas") or 0
        current_metrics = [as_dict(m) for m in status.get("currentMetrics") or []]
        for metric in current_metrics:
            resource = as_dict(metric.get("resource"))
            utilization = as_dict(resource.get("current")).get("averageUtilization")
            if (
                metric.get("type") == "Resource"
                and resource.get("name") == "cpu"
                and utilization is not None
            ):
                v1_status["currentCPUUtilizationPercentage"] = utilization
        out["status"] = v1_status
        if current_metrics:
            annotations[CURRENT_METRICS_ANNOTATION] = _encode(
                [_metric_status_to_v1(m) for m in current_metrics]
            )
        conditions = status.get("conditions") or []
        if conditions:
            annotations[CONDITIONS_ANNOTATION] = _encode(
                [
                    {
                        "type": as_dict(c).get("type", ""),
                        "status": as_dict(c).get("status", ""),
                        "lastTransitionTime": as_dict(c).get("lastTransitionTime"),
                        **{k: as_dict(c)[k] for k in ("reason", "message") if as_dict(c).get(k)},
                    }
                    for c in conditions
                ]
            )
    if annotations:
        meta["annotations"] = annotations
    return out


def hpa_v1_to_v2(obj: Object) -> Object:
    """An autoscaling/v1 HorizontalPodAutoscaler as the autoscaling/v2 object it stands for."""
    spec = as_dict(obj.get("spec"))
    status = obj.get("status")
    out: Object = {**obj, "apiVersion": "autoscaling/v2"}
    out["metadata"] = meta = copy.copy(as_dict(obj.get("metadata")))
    annotations = dict(as_dict(meta.get("annotations")))

    v2_spec: dict[str, Any] = {"scaleTargetRef": spec.get("scaleTargetRef") or {}}
    if spec.get("minReplicas") is not None:
        v2_spec["minReplicas"] = spec["minReplicas"]
    v2_spec["maxReplicas"] = spec.get("maxReplicas", 0)
    metrics: list[dict[str, Any]] = []
    try:
        annotated = json.loads(annotations.get(METRICS_ANNOTATION, "null"))
    except ValueError:
        annotated = None
    if isinstance(annotated, list):
        metrics += [_metric_spec_to_v2(as_dict(m)) for m in annotated]
    if spec.get("targetCPUUtilizationPercentage") is not None:
        metrics.append(
            {
                "type": "Resource",
                "resource": {
                    "name": "cpu",
                    "target": {
                        "type": "Utilization",
                        "averageUtilization": spec["targetCPUUtilizationPercentage"],
                    },
                },
            }
        )
    if metrics:
        v2_spec["metrics"] = metrics
    if BEHAVIOR_ANNOTATION in annotations:
        behavior = _behavior_from_annotation(annotations[BEHAVIOR_ANNOTATION])
        if behavior is not None:
            v2_spec["behavior"] = behavior
    out["spec"] = v2_spec

    if isinstance(status, dict):
        v2_status: dict[str, Any] = {}
        for name in ("observedGeneration", "lastScaleTime"):
            if status.get(name) is not None:
                v2_status[name] = status[name]
        if status.get("currentReplicas"):
            v2_status["currentReplicas"] = status["currentReplicas"]
        v2_status["desiredReplicas"] = status.get("desiredReplicas") or 0
        current: list[dict[str, Any]] | None = None
        if is_int(status.get("currentCPUUtilizationPercentage")):
            current = [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "current": {
                            "averageUtilization": status["currentCPUUtilizationPercentage"]
                        },
                    },
                }
            ]
        try:
            annotated = json.loads(annotations.get(CURRENT_METRICS_ANNOTATION, "null"))
        except ValueError:
            annotated = None
        if isinstance(annotated, list):
            current = [_metric_status_to_v2(as_dict(m)) for m in annotated]
        v2_status["currentMetrics"] = current
        try:
            conditions = json.loads(annotations.get(CONDITIONS_ANNOTATION, "null"))
        except ValueError:
            conditions = None
        if isinstance(conditions, list) and conditions:
            v2_status["conditions"] = conditions
        out["status"] = v2_status
    for name in ROUND_TRIP_ANNOTATIONS:
        annotations.pop(name, None)
    if annotations:
        meta["annotations"] = annotations
    else:
        meta.pop("annotations", None)
    return out


def _replace(target: Object, source: Object) -> None:
    target.clear()
    target.update(source)


class HorizontalPodAutoscalerV1Strategy(Strategy):
    """autoscaling/v1 over the autoscaling/v2 store: every rule is the v2 one."""

    group: ClassVar[str] = "autoscaling"
    version: ClassVar[str] = "v1"
    kind: ClassVar[str] = "HorizontalPodAutoscaler"
    plural: ClassVar[str] = "horizontalpodautoscalers"
    singular: ClassVar[str] = "horizontalpodautoscaler"
    short_names: ClassVar[tuple[str, ...]] = ("hpa",)
    categories: ClassVar[tuple[str, ...]] = ("all",)
    has_status: ClassVar[bool] = True
    storage_resource: ClassVar[tuple[str, str] | None] = ("autoscaling", "horizontalpodautoscalers")
    columns: ClassVar[tuple[Column, ...]] = HorizontalPodAutoscalerStrategy.columns

    def __init__(self) -> None:
        self._v2 = HorizontalPodAutoscalerStrategy()

    def to_storage(self, obj: Object) -> Object:
        return hpa_v1_to_v2(obj)

    def from_storage(self, obj: Object) -> Object:
        return hpa_v2_to_v1(obj)

    def default(self, obj: Object) -> None:
        converted = hpa_v1_to_v2(obj)
        self._v2.default(converted)
        _replace(obj, hpa_v2_to_v1(converted))

    def prepare_for_create(self, obj: Object) -> None:
        converted = hpa_v1_to_v2(obj)
        self._v2.prepare_for_create(converted)
        _replace(obj, hpa_v2_to_v1(converted))

    def prepare_for_update(self, new: Object, old: Object) -> None:
        converted = hpa_v1_to_v2(new)
        self._v2.prepare_for_update(converted, hpa_v1_to_v2(old))
        _replace(new, hpa_v2_to_v1(converted))

    def prepare_for_status_update(self, new: Object, old: Object) -> None:
        converted = hpa_v1_to_v2(new)
        self._v2.prepare_for_status_update(converted, hpa_v1_to_v2(old))
        _replace(new, hpa_v2_to_v1(converted))

    def validate(self, obj: Object) -> list[FieldError]:
        return self._v2.validate(hpa_v1_to_v2(obj))

    def validate_update(self, new: Object, old: Object) -> list[FieldError]:
        return self._v2.validate_update(hpa_v1_to_v2(new), hpa_v1_to_v2(old))

    def validate_status_update(self, new: Object, old: Object) -> list[FieldError]:
        return self._v2.validate_status_update(hpa_v1_to_v2(new), hpa_v1_to_v2(old))

    def table_row(self, obj: Object) -> list[Any]:
        return self._v2.table_row(hpa_v1_to_v2(obj))
