"""LimitRanges: per-namespace bounds and defaults for container, pod and claim resources.

kube-apiserver has no table printer for LimitRanges (Name and Created At)."""

from __future__ import annotations

from typing import Any

from timonel.api.errors import FieldError, duplicate, forbidden, invalid_value, required
from timonel.api.objects import Object
from timonel.api.quantity import Quantity, canonical_resource_list
from timonel.kinds.base import Strategy
from timonel.kinds.core.common import (
    as_dict,
    as_list,
    as_str,
    is_overcommit_allowed,
    key,
    parse_resource_list,
    validate_container_resource_name,
    validate_qualified_name,
    validate_resource_name,
)

LIMIT_FIELDS = ("max", "min", "default", "defaultRequest", "maxLimitRequestRatio")
STANDARD_LIMIT_TYPES = frozenset({"Pod", "Container", "PersistentVolumeClaim"})


class LimitRangeStrategy(Strategy):
    kind = "LimitRange"
    plural = "limitranges"
    singular = "limitrange"
    short_names = ("limits",)

    def default(self, obj: Object) -> None:
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            spec = {}
            obj["spec"] = spec
        for item in as_list(spec.get("limits")):
            if isinstance(item, dict):
                default_limit_range_item(item)

    def validate(self, obj: Object) -> list[FieldError]:
        return validate_limits(as_list(as_dict(obj.get("spec")).get("limits")))

    def validate_update(self, new: Object, old: Object) -> list[FieldError]:
        return self.validate(new)


def default_limit_range_item(item: dict[str, Any]) -> None:
    """SetDefaults_LimitRangeItem: for containers, default limits come from max, default
    requests from the default limits, then from min."""
    for field in LIMIT_FIELDS:
        if isinstance(item.get(field), dict):
            item[field], _ = canonical_resource_list(item[field])
    if item.get("type") != "Container":
        return
    defaults = item.get("default")
    if not isinstance(defaults, dict):
        defaults = {}
    requests = item.get("defaultRequest")
    if not isinstance(requests, dict):
        requests = {}
    for name, value in as_dict(item.get("max")).items():
        defaults.setdefault(name, value)
    for name, value in defaults.items():
        requests.setdefault(name, value)
    for name, value in as_dict(item.get("min")).items():
        requests.setdefault(name, value)
    # Empty maps are not written back, as Go omits them.
    if defaults:
        item["default"] = defaults
    if requests:
        item["defaultRequest"] = requests


def validate_limits(limits: list[Any]) -> list[FieldError]:
    """ValidateLimitRange's checks of spec.limits."""
    errors: list[FieldError] = []
    seen_types: set[str] = set()
    for i, item in enumerate(limits):
        item = as_dict(item)
        path = f"spec.limits[{i}]"
        kind = as_str(item.get("type"))
        type_errors = validate_qualified_name(kind, f"{path}.type")
        if not type_errors and "/" not in kind and kind not in STANDARD_LIMIT_TYPES:
            type_errors.append(
                invalid_value(
                    f"{path}.type", kind, "must be a standard limit type or fully qualified"
                )
            )
        errors += type_errors
        if kind in seen_types:
            errors.append(duplicate(f"{path}.type", kind))
        seen_types.add(kind)
        values: dict[str, dict[str, Quantity]] = {}
        fields = (
            ["max", "min"]
            + (["default", "defaultRequest"] if kind != "Pod" else [])
            + ["maxLimitRequestRatio"]
        )
        for field in fields:
            parsed = parse_resource_list(item.get(field), f"{path}.{field}", errors)
            for name in parsed:
                if kind in ("Pod", "Container"):
                    errors += validate_container_resource_name(name, key(f"{path}.{field}", name))
                else:
                    errors += validate_resource_name(name, key(f"{path}.{field}", name))
            values[field] = parsed
        if kind == "Pod":
            if as_dict(item.get("default")):
                errors.append(
                    forbidden(f"{path}.default", "may not be specified when `type` is 'Pod'")
                )
            if as_dict(item.get("defaultRequest")):
                errors.append(
                    forbidden(f"{path}.defaultRequest", "may not be specified when `type` is 'Pod'")
                )
        if (
            kind == "PersistentVolumeClaim"
            and "storage" not in values["min"]
            and "storage" not in values["max"]
        ):
            errors.append(
                required(
                    f"{path}.limits",
                    "either minimum or maximum storage value is required, but neither was provided",
                )
            )
        names = set().union(*(set(v) for v in values.values()))
        for name in names:
            errors += _compare_limits(name, values, path)
    return errors


def _compare_limits(
    name: str, values: dict[str, dict[str, Quantity]], path: str
) -> list[FieldError]:
    errors: list[FieldError] = []
    low = values["min"].get(name)
    high = values["max"].get(name)
    default = values.get("default", {}).get(name)
    request = values.get("defaultRequest", {}).get(name)
    ratio = values["maxLimitRequestRatio"].get(name)
    if low is not None and high is not None and low > high:
        errors.append(
            invalid_value(
                key(f"{path}.min", name),
                str(low),
                f"min value {low} is greater than max value {high}",
            )
        )
    if request is not None and low is not None and low > request:
        errors.append(
            invalid_value(
                key(f"{path}.defaultRequest", name),
                str(request),
                f"min value {low} is greater than default request value {request}",
            )
        )
    if request is not None and high is not None and request > high:
        errors.append(
            invalid_value(
                key(f"{path}.defaultRequest", name),
                str(request),
                f"default request value {request} is greater than max value {high}",
            )
        )
    if request is not None and default is not None and request > default:
        errors.append(
            invalid_value(
                key(f"{path}.defaultRequest", name),
                str(request),
                f"default request value {request} is greater than default limit value {default}",
            )
        )
    if default is not None and low is not None and low > default:
        errors.append(
            invalid_value(
                key(f"{path}.default", name),
                str(low),
                f"min value {low} is greater than default value {default}",
            )
        )
    if default is not None and high is not None and default > high:
        errors.append(
            invalid_value(
                key(f"{path}.default", name),
                str(high),
                f"default value {default} is greater than max value {high}",
            )
        )
    if ratio is not None and ratio < Quantity.from_int(1):
        errors.append(
            invalid_value(
                key(f"{path}.maxLimitRequestRatio", name),
                str(ratio),
                f"ratio {ratio} is less than 1",
            )
        )
    if ratio is not None and low is not None and high is not None and low.sign() != 0:
        limit = high.milli_value() / low.milli_value()
        if ratio.milli_value() / 1000 > limit:
            errors.append(
                invalid_value(
                    key(f"{path}.maxLimitRequestRatio", name),
                    str(ratio),
                    f"ratio {ratio} is greater than max/min = {limit:f}",
                )
            )
    if (
        not is_overcommit_allowed(name)
        and default is not None
        and request is not None
        and default != request
    ):
        errors.append(
            invalid_value(
                key(f"{path}.defaultRequest", name),
                str(request),
                f"default value {default} must equal to defaultRequest value {request} in {name}",
            )
        )
    return errors
