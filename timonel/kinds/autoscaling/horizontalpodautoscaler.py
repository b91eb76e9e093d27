"""autoscaling/v2 HorizontalPodAutoscaler: defaults, validation and table as kube-apiserver
1.32 has them."""

from __future__ import annotations

import contextlib
import copy
from typing import Any, ClassVar

from timonel.api.errors import FieldError, forbidden, invalid_value, not_supported, required
from timonel.api.objects import Object
from timonel.api.quantity import QuantityError, canonical_quantity, parse_quantity_value
from timonel.api.validation import dns1123_label_problems
from timonel.kinds.apps.intstr import is_int, validate_nonnegative
from timonel.kinds.apps.selector import validate_label_selector
from timonel.kinds.apps.workload import as_dict, spec_of, status_of
from timonel.kinds.base import AGE_COLUMN, NAME_COLUMN, Column, Strategy
from timonel.kinds.core.common import validate_container_resource_name
from timonel.kinds.printing import creation_age

DEFAULT_CPU_UTILIZATION = 80
METRIC_SOURCE_TYPES = ["ContainerResource", "External", "Object", "Pods", "Resource"]
# The metric source field each type populates, in the order validation looks at them.
_SOURCE_FIELDS = {
    "Object": "object",
    "External": "external",
    "Pods": "pods",
    "Resource": "resource",
    "ContainerResource": "containerResource",
}
SELECT_POLICIES = ["Disabled", "Max", "Min"]
SCALING_POLICY_TYPES = ["Percent", "Pods"]
MAX_PERIOD_SECONDS = 1800
MAX_STABILIZATION_WINDOW_SECONDS = 3600

# The behavior kube-apiserver fills in for whatever a client leaves out of one it gives.
DEFAULT_SCALE_UP: dict[str, Any] = {
    "stabilizationWindowSeconds": 0,
    "selectPolicy": "Max",
    "policies": [
        {"type": "Pods", "value": 4, "periodSeconds": 15},
        {"type": "Percent", "value": 100, "periodSeconds": 15},
    ],
}
DEFAULT_SCALE_DOWN: dict[str, Any] = {
    "selectPolicy": "Max",
    "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}],
}


# -- defaults -------------------------------------------------------------------------------


def _scaling_rules(given: Any, defaults: dict[str, Any]) -> dict[str, Any]:
    rules = copy.deepcopy(defaults)
    if isinstance(given, dict):
        for name in ("selectPolicy", "stabilizationWindowSeconds", "policies", "tolerance"):
            if given.get(name) is not None:
                rules[name] = given[name]
    return rules


def _canonicalize_target(target: Any) -> None:
    if not isinstance(target, dict):
        return
    for name in ("value", "averageValue"):
        if target.get(name) is not None:
            # An unparsable quantity stays as given for validation to report.
            with contextlib.suppress(QuantityError):
                target[name] = canonical_quantity(target[name])


def default_horizontal_pod_autoscaler(obj: Object) -> None:
    spec = spec_of(obj)
    if spec.get("minReplicas") is None:
        spec["minReplicas"] = 1
    if not spec.get("metrics"):
        spec["metrics"] = [
            {
                "type": "Resource",
                "resource": {
                    "name": "cpu",
                    "target": {
                        "type": "Utilization",
                        "averageUtilization": DEFAULT_CPU_UTILIZATION,
                    },
                },
            }
        ]
    for metric in spec["metrics"] if isinstance(spec["metrics"], list) else []:
        for source in _SOURCE_FIELDS.values():
            if isinstance(metric, dict) and isinstance(metric.get(source), dict):
                _canonicalize_target(metric[source].get("target"))
    behavior = spec.get("behavior")
    if isinstance(behavior, dict):
        behavior["scaleUp"] = _scaling_rules(behavior.get("scaleUp"), DEFAULT_SCALE_UP)
        behavior["scaleDown"] = _scaling_rules(behavior.get("scaleDown"), DEFAULT_SCALE_DOWN)
    status = obj.get("status")
    if isinstance(status, dict):
        status.setdefault("currentMetrics", None)
        if status.get("desiredReplicas") is None:
            status["desiredReplicas"] = 0


# -- validation -----------------------------------------------------------------------------


def _path_segment_problems(name: str) -> list[str]:
    """IsValidPathSegmentName: the name can sit in a URL path."""
    if name in (".", ".."):
        return [f"may not be '{name}'"]
    return [f"may not contain '{c}'" for c in ("/", "%") if c in name]


def validate_object_reference(ref: Any, path: str) -> list[FieldError]:
    """ValidateCrossVersionObjectReference: kind and name are set and fit in a URL."""
    ref = as_dict(ref)
    errors: list[FieldError] = []
    for name in ("kind", "name"):
        value = ref.get(name) or ""
        if not value:
            errors.append(required(f"{path}.{name}"))
        else:
            errors += [
                invalid_value(f"{path}.{name}", value, problem)
                for problem in _path_segment_problems(str(value))
            ]
    return errors


def _quantity_sign(value: Any) -> int | None:
    try:
        return parse_quantity_value(value).sign()
    except QuantityError:
        return None


def validate_metric_target(target: Any, path: str) -> list[FieldError]:
    target = as_dict(target)
    errors: list[FieldError] = []
    kind = target.get("type") or ""
    if not kind:
        errors.append(required(f"{path}.type", "must specify a metric target type"))
    if kind not in ("Utilization", "Value", "AverageValue"):
        errors.append(
            invalid_value(
                f"{path}.type", kind, "must be either Utilization, Value, or AverageValue"
            )
        )
    for name in ("value", "averageValue"):
        if target.get(name) is not None and _quantity_sign(target[name]) != 1:
            errors.append(invalid_value(f"{path}.{name}", target[name], "must be positive"))
    utilization = target.get("averageUtilization")
    if utilization is not None and (not is_int(utilization) or utilization < 1):
        errors.append(
            invalid_value(f"{path}.averageUtilization", utilization, "must be greater than 0")
        )
    return errors


def _validate_metric_identifier(metric: Any, path: str) -> list[FieldError]:
    metric = as_dict(metric)
    name = str(metric.get("name") or "")
    if not name:
        errors = [required(f"{path}.name", "must specify a metric name")]
    else:
        errors = [
            invalid_value(f"{path}.name", name, problem) for problem in _path_segment_problems(name)
        ]
    if metric.get("selector") is not None:
        errors += validate_label_selector(metric["selector"], f"{path}.selector")
    return errors


def _validate_resource_source(
    source: dict[str, Any], path: str, container: bool
) -> list[FieldError]:
    name = str(source.get("name") or "")
    if not name:
        errors = [required(f"{path}.name", "must specify a resource name")]
    else:
        errors = validate_container_resource_name(name, f"{path}.name")
    if container:
        container_name = str(source.get("container") or "")
        if not container_name:
            errors.append(required(f"{path}.container", "must specify a container"))
        else:
            errors += [
                invalid_value(f"{path}.container", container_name, problem)
                for problem in dns1123_label_problems(container_name)
            ]
    target = as_dict(source.get("target"))
    errors += validate_metric_target(target, f"{path}.target")
    if target.get("averageUtilization") is None and target.get("averageValue") is None:
        errors.append(
            required(
                f"{path}.target.averageUtilization",
                "must set either a target raw value or a target utilization",
            )
        )
    if target.get("averageUtilization") is not None and target.get("averageValue") is not None:
        errors.append(
            forbidden(
                f"{path}.target.averageValue",
                "may not set both a target raw value and a target utilization",
            )
        )
    return errors


def _validate_source(kind: str, source: dict[str, Any], path: str) -> list[FieldError]:
    target = as_dict(source.get("target"))
    if kind in ("resource", "containerResource"):
        return _validate_resource_source(source, path, container=kind == "containerResource")
    errors: list[FieldError] = []
    if kind == "object":
        errors += validate_object_reference(
            source.get("describedObject"), f"{path}.describedObject"
        )
    errors += _validate_metric_identifier(source.get("metric"), f"{path}.metric")
    errors += validate_metric_target(target, f"{path}.target")
    if kind == "pods":
        if target.get("averageValue") is None:
            errors.append(
                required(
                    f"{path}.target.averageValue", "must specify a positive target averageValue"
                )
            )
    elif kind == "object":
        if target.get("value") is None and target.get("averageValue") is None:
            errors.append(
                required(
                    f"{path}.target.averageValue", "must set either a target value or averageValue"
                )
            )
    else:
        value, average = target.get("value"), target.get("averageValue")
        if value is None and average is None:
            errors.append(
                required(
                    f"{path}.target.averageValue",
                    "must set either a target value for metric or a per-pod target",
                )
            )
        if value is not None and average is not None:
            errors.append(
                forbidden(
                    f"{path}.target.value",
                    "may not set both a target value for metric and a per-pod target",
                )
            )
    return errors


def validate_metric_spec(metric: Any, path: str) -> list[FieldError]:
    metric = as_dict(metric)
    errors: list[FieldError] = []
    kind = str(metric.get("type") or "")
    if not kind:
        errors.append(required(f"{path}.type", "must specify a metric source type"))
    if kind not in METRIC_SOURCE_TYPES:
        errors.append(not_supported(f"{path}.type", kind, METRIC_SOURCE_TYPES))
    present = [name for name in _SOURCE_FIELDS.values() if metric.get(name) is not None]
    if len(present) >= 1 and isinstance(metric.get(present[0]), dict):
        errors += _validate_source(present[0], metric[present[0]], f"{path}.{present[0]}")
    expected = _SOURCE_FIELDS.get(kind)
    if expected is not None and metric.get(expected) is None:
        errors.append(
            required(f"{path}.{expected}", "must populate information for the given metric source")
        )
    if len(present) != 1:
        for name in present:
            if name != expected:
                errors.append(
                    forbidden(f"{path}.{name}", "must populate the given metric source only")
                )
    return errors


def _validate_scaling_rules(rules: Any, path: str) -> list[FieldError]:
    if rules is None:
        return []
    rules = as_dict(rules)
    errors: list[FieldError] = []
    window = rules.get("stabilizationWindowSeconds")
    window_path = f"{path}.stabilizationWindowSeconds"
    if is_int(window) and window < 0:
        errors.append(invalid_value(window_path, window, "must be greater than or equal to zero"))
    if is_int(window) and window > MAX_STABILIZATION_WINDOW_SECONDS:
        errors.append(
            invalid_value(
                window_path,
                window,
                f"must be less than or equal to {MAX_STABILIZATION_WINDOW_SECONDS}",
            )
        )
    select = rules.get("selectPolicy")
    if select is not None and select not in SELECT_POLICIES:
        errors.append(not_supported(f"{path}.selectPolicy", select, SELECT_POLICIES))
    policies = rules.get("policies") or []
    if not policies:
        errors.append(required(f"{path}.policies", "must specify at least one Policy"))
    for index, policy in enumerate(policies):
        policy = as_dict(policy)
        policy_path = f"{path}.policies[{index}]"
        kind = policy.get("type") or ""
        if kind not in SCALING_POLICY_TYPES:
            errors.append(not_supported(f"{policy_path}.type", kind, SCALING_POLICY_TYPES))
        value = policy.get("value", 0)
        if not is_int(value) or value <= 0:
            errors.append(invalid_value(f"{policy_path}.value", value, "must be greater than zero"))
        period = policy.get("periodSeconds", 0)
        if not is_int(period) or period <= 0:
            errors.append(
                invalid_value(f"{policy_path}.periodSeconds", period, "must be greater than zero")
            )
        if is_int(period) and period > MAX_PERIOD_SECONDS:
            errors.append(
                invalid_value(
                    f"{policy_path}.periodSeconds",
                    period,
                    f"must be less than or equal to {MAX_PERIOD_SECONDS}",
                )
            )
    return errors


def validate_horizontal_pod_autoscaler_spec(spec: Any) -> list[FieldError]:
    spec = as_dict(spec)
    errors: list[FieldError] = []
    min_replicas = spec.get("minReplicas")
    max_replicas = spec.get("maxReplicas", 0)
    if is_int(min_replicas) and min_replicas < 1:
        errors.append(
            invalid_value("spec.minReplicas", min_replicas, "must be greater than or equal to 1")
        )
    if not is_int(max_replicas) or max_replicas < 1:
        errors.append(invalid_value("spec.maxReplicas", max_replicas, "must be greater than 0"))
    elif is_int(min_replicas) and max_replicas < min_replicas:
        errors.append(
            invalid_value(
                "spec.maxReplicas", max_replicas, "must be greater than or equal to `minReplicas`"
            )
        )
    errors += validate_object_reference(spec.get("scaleTargetRef"), "spec.scaleTargetRef")
    metrics = spec.get("metrics") or []
    for index, metric in enumerate(metrics):
        errors += validate_metric_spec(metric, f"spec.metrics[{index}]")
    behavior = spec.get("behavior")
    if isinstance(behavior, dict):
        errors += _validate_scaling_rules(behavior.get("scaleUp"), "spec.behavior.scaleUp")
        errors += _validate_scaling_rules(behavior.get("scaleDown"), "spec.behavior.scaleDown")
    return errors


def validate_horizontal_pod_autoscaler_status(status: Any) -> list[FieldError]:
    status = as_dict(status)
    errors = validate_nonnegative(status.get("currentReplicas"), "status.currentReplicas")
    errors += validate_nonnegative(status.get("desiredReplicas"), "status.desiredReplicas")
    return errors


# -- reading --------------------------------------------------------------------------------


def _quantity_text(value: Any) -> str:
    """resource.Quantity's String(), `<nil>` for a missing one."""
    if value is None:
        return "<nil>"
    try:
        return canonical_quantity(value)
    except QuantityError:
        return str(value)


def _format_metric(spec: dict[str, Any], status: dict[str, Any] | None) -> str:
    kind = spec.get("type")
    field = _SOURCE_FIELDS.get(str(kind))
    if field is None:
        return "<unknown type>"
    source = as_dict(spec.get(field))
    target = as_dict(source.get("target"))
    observed = as_dict(status.get(field)) if status and status.get(field) is not None else None
    current = as_dict(observed.get("current")) if observed is not None else {}
    if kind in ("External", "Object"):
        if target.get("averageValue") is not None:
            shown = "<unknown>"
            if observed is not None and current.get("averageValue") is not None:
                shown = _quantity_text(current["averageValue"])
            return f"{shown}/{_quantity_text(target['averageValue'])} (avg)"
        shown = _quantity_text(current.get("value")) if observed is not None else "<unknown>"
        return f"{shown}/{_quantity_text(target.get('value'))}"
    if kind == "Pods":
        shown = _quantity_text(current.get("averageValue")) if observed is not None else "<unknown>"
        return f"{shown}/{_quantity_text(target.get('averageValue'))}"
    name = str(source.get("name") or "")
    if target.get("averageValue") is not None:
        shown = _quantity_text(current.get("averageValue")) if observed is not None else "<unknown>"
        return f"{name}: {shown}/{_quantity_text(target['averageValue'])}"
    shown = "<unknown>"
    if observed is not None and is_int(current.get("averageUtilization")):
        shown = f"{current['averageUtilization']}%"
    utilization = target.get("averageUtilization")
    wanted = f"{utilization}%" if is_int(utilization) else "<auto>"
    return f"{name}: {shown}/{wanted}"


def format_hpa_metrics(obj: Object) -> str:
    """The TARGETS cell: up to two metrics as current/target, e.g. `cpu: <unknown>/80%`."""
    specs = as_dict(obj.get("spec")).get("metrics") or []
    if not specs:
        return "<none>"
    statuses = status_of(obj).get("currentMetrics") or []
    shown = [
        _format_metric(as_dict(spec), as_dict(statuses[i]) if i < len(statuses) else None)
        for i, spec in enumerate(specs)
    ]
    if len(shown) > 2:
        return f"{', '.join(shown[:2])} + {len(shown) - 2} more..."
    return ", ".join(shown)


class HorizontalPodAutoscalerStrategy(Strategy):
    group: ClassVar[str] = "autoscaling"
    version: ClassVar[str] = "v2"
    kind: ClassVar[str] = "HorizontalPodAutoscaler"
    plural: ClassVar[str] = "horizontalpodautoscalers"
    singular: ClassVar[str] = "horizontalpodautoscaler"
    short_names: ClassVar[tuple[str, ...]] = ("hpa",)
    categories: ClassVar[tuple[str, ...]] = ("all",)
    has_status: ClassVar[bool] = True
    columns: ClassVar[tuple[Column, ...]] = (
        NAME_COLUMN,
        Column(
            "Reference",
            description="scaleTargetRef points to the target resource to scale, and is used to "
            "the pods for which metrics should be collected, as well as to actually change the "
            "replica count.",
        ),
        Column(
            "Targets",
            description="metrics contains the specifications for which to use to calculate the "
            "desired replica count (the maximum replica count across all metrics will be "
            "used).  The desired replica count is calculated multiplying the ratio between the "
            "target value and the current value by the current number of pods.  Ergo, metrics "
            "used must decrease as the pod count is increased, and vice-versa.  See the "
            "individual metric source types for more information about how each type of metric "
            "must respond.",
        ),
        Column(
            "MinPods",
            description="minReplicas is the lower limit for the number of replicas to which the "
            "autoscaler can scale down.  It defaults to 1 pod.  minReplicas is allowed to be 0 "
            "if the alpha feature gate HPAScaleToZero is enabled and at least one Object or "
            "External metric is configured.  Scaling is active as long as at least one metric "
            "value is available.",
        ),
        Column(
            "MaxPods",
            description="maxReplicas is the upper limit for the number of replicas to which the "
            "autoscaler can scale up. It cannot be less that minReplicas.",
        ),
        Column(
            "Replicas",
            description="currentReplicas is current number of replicas of pods managed by this "
            "autoscaler, as last seen by the autoscaler.",
        ),
        AGE_COLUMN,
    )

    def default(self, obj: Object) -> None:
        default_horizontal_pod_autoscaler(obj)

    def prepare_for_create(self, obj: Object) -> None:
        super().prepare_for_create(obj)
        obj["status"] = {"currentMetrics": None, "desiredReplicas": 0}

    def validate(self, obj: Object) -> list[FieldError]:
        return validate_horizontal_pod_autoscaler_spec(obj.get("spec"))

    def validate_status_update(self, new: Object, old: Object) -> list[FieldError]:
        return validate_horizontal_pod_autoscaler_status(new.get("status"))

    def table_row(self, obj: Object) -> list[Any]:
        spec = as_dict(obj.get("spec"))
        ref = as_dict(spec.get("scaleTargetRef"))
        min_replicas = spec.get("minReplicas")
        max_replicas = spec.get("maxReplicas")
        current = status_of(obj).get("currentReplicas")
        return [
            (obj.get("metadata") or {}).get("name", ""),
            f"{ref.get('kind', '')}/{ref.get('name', '')}",
            format_hpa_metrics(obj),
            str(min_replicas) if is_int(min_replicas) else "<unset>",
            max_replicas if is_int(max_replicas) else 0,
            current if is_int(current) else 0,
            creation_age(obj),
        ]
