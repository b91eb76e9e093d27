"""ResourceQuotas: per-namespace caps (spec.hard); the quota controller reports use in
status (hard and used)."""

from __future__ import annotations

from typing import Any, ClassVar

from timonel.api.errors import FieldError, RawValue, invalid_value, required
from timonel.api.objects import Object
from timonel.api.quantity import QuantityError, canonical_resource_list, parse_quantity_value
from timonel.kinds.base import AGE_COLUMN, NAME_COLUMN, Column, Strategy
from timonel.kinds.core.common import (
    STANDARD_QUOTA_RESOURCES,
    as_dict,
    as_list,
    as_str,
    key,
    parse_resource_list,
    validate_resource_name,
    validate_resource_quantity,
)
from timonel.kinds.printing import creation_age

QUOTA_SCOPES = frozenset(
    {
        "Terminating",
        "NotTerminating",
        "BestEffort",
        "NotBestEffort",
        "PriorityClass",
        "CrossNamespacePodAffinity",
    }
)
_POD_COUNT = frozenset({"pods"})
_POD_COMPUTE = frozenset(
    {"cpu", "memory", "limits.cpu", "limits.memory", "requests.cpu", "requests.memory"}
)


class ResourceQuotaStrategy(Strategy):
    kind = "ResourceQuota"
    plural = "resourcequotas"
    singular = "resourcequota"
    short_names = ("quota",)
    has_status = True
    columns: ClassVar[tuple[Column, ...]] = (
        NAME_COLUMN,
        Column(
            "Request",
            description="Request represents a minimum amount of cpu/memory that a container may consume.",
        ),
        Column(
            "Limit",
            description="Limits control the maximum amount of cpu/memory that a container may use "
            "independent of contention on the node.",
        ),
        AGE_COLUMN,
    )

    def default(self, obj: Object) -> None:
        for part in ("spec", "status"):
            holder = obj.get(part)
            if not isinstance(holder, dict):
                holder = {}
                obj[part] = holder
        if isinstance(obj["spec"].get("hard"), dict):
            obj["spec"]["hard"], _ = canonical_resource_list(obj["spec"]["hard"])
        for field in ("hard", "used"):
            if isinstance(obj["status"].get(field), dict):
                obj["status"][field], _ = canonical_resource_list(obj["status"][field])

    def prepare_for_create(self, obj: Object) -> None:
        obj["status"] = {}

    def validate(self, obj: Object) -> list[FieldError]:
        return _validate_quota_spec(as_dict(obj.get("spec"))) + _validate_quota_lists(
            as_dict(obj.get("status")), "status"
        )

    def validate_update(self, new: Object, old: Object) -> list[FieldError]:
        spec = as_dict(new.get("spec"))
        errors = _validate_quota_spec(spec)
        scopes = as_list(spec.get("scopes"))
        if set(scopes) != set(as_list(as_dict(old.get("spec")).get("scopes"))):
            errors.append(invalid_value("spec.scopes", _go_scopes(scopes), "field is immutable"))
        return errors

    def validate_status_update(self, new: Object, old: Object) -> list[FieldError]:
        # kube also requires a resourceVersion here; the update handler has already
        # settled which version is replaced (and dropped it from `new`) by now.
        return _validate_quota_lists(as_dict(new.get("status")), "status")

    def table_row(self, obj: Object) -> list[Any]:
        meta = as_dict(obj.get("metadata"))
        status = as_dict(obj.get("status"))
        hard = as_dict(status.get("hard"))
        used = as_dict(status.get("used"))
        requests: list[str] = []
        limits: list[str] = []
        for name in sorted(hard):
            cell = f"{name}: {_quantity_text(used.get(name))}/{_quantity_text(hard[name])}"
            pieces = name.split(".")
            (limits if len(pieces) > 1 and pieces[0] == "limits" else requests).append(cell)
        return [meta.get("name", ""), ", ".join(requests), ", ".join(limits), creation_age(obj)]


def _quantity_text(value: Any) -> str:
    if value is None:
        return "0"
    try:
        return str(parse_quantity_value(value))
    except QuantityError:
        return as_str(value)


def _go_scopes(scopes: list[Any]) -> RawValue:
    if not scopes:
        return RawValue("[]core.ResourceQuotaScope(nil)")
    return RawValue("[]core.ResourceQuotaScope{" + ", ".join(f'"{s}"' for s in scopes) + "}")


def _quota_resource_errors(name: str, path: str) -> list[FieldError]:
    errors = validate_resource_name(name, path)
    if (
        "/" not in name
        and name not in STANDARD_QUOTA_RESOURCES
        and not name.startswith(("hugepages-", "requests.hugepages-"))
    ):
        errors.append(invalid_value(path, name, "must be a standard resource for quota"))
    return errors


def _validate_quota_lists(holder: dict[str, Any], path: str) -> list[FieldError]:
    errors: list[FieldError] = []
    for field in ("hard", "used"):
        field_path = f"{path}.{field}"
        for name, quantity in parse_resource_list(holder.get(field), field_path, errors).items():
            errors += _quota_resource_errors(name, key(field_path, name))
            errors += validate_resource_quantity(name, quantity, key(field_path, name))
    return errors


def _validate_quota_spec(spec: dict[str, Any]) -> list[FieldError]:
    errors: list[FieldError] = []
    hard = parse_resource_list(spec.get("hard"), "spec.hard", errors)
    for name, quantity in hard.items():
        errors += _quota_resource_errors(name, key("spec.hard", name))
        errors += validate_resource_quantity(name, quantity, key("spec.hard", name))
    scopes = as_list(spec.get("scopes"))
    for scope in scopes:
        if scope not in QUOTA_SCOPES:
            errors.append(invalid_value("spec.scopes", _go_scopes(scopes), "unsupported scope"))
        for name in sorted(hard):
            if _standard_quota(name) and not _scope_fits(as_str(scope), name):
                errors.append(
                    invalid_value(
                        "spec.scopes", _go_scopes(scopes), "unsupported scope applied to resource"
                    )
                )
    if {"BestEffort", "NotBestEffort"} <= set(scopes) or {"Terminating", "NotTerminating"} <= set(
        scopes
    ):
        errors.append(invalid_value("spec.scopes", _go_scopes(scopes), "conflicting scopes"))
    selector = spec.get("scopeSelector")
    if selector is not None:
        names = []
        for expression in as_list(as_dict(selector).get("matchExpressions")):
            expression = as_dict(expression)
            path = "spec.scopeSelector.matchExpressions"
            scope = as_str(expression.get("scopeName"))
            names.append(scope)
            if scope not in QUOTA_SCOPES:
                errors.append(invalid_value(f"{path}.scopeName", scope, "unsupported scope"))
            operator = expression.get("operator")
            values = as_list(expression.get("values"))
            if scope in QUOTA_SCOPES - {"PriorityClass"} and operator != "Exists":
                errors.append(
                    invalid_value(
                        f"{path}.operator",
                        operator,
                        "must be 'Exists' when scope is any of ResourceQuotaScopeTerminating, "
                        "ResourceQuotaScopeNotTerminating, ResourceQuotaScopeBestEffort, "
                        "ResourceQuotaScopeNotBestEffort or ResourceQuotaScopeCrossNamespacePodAffinity",
                    )
                )
            if operator in ("In", "NotIn"):
                if not values:
                    errors.append(
                        required(
                            f"{path}.values",
                            "must be at least one value when `operator` is 'In' or 'NotIn' for scope selector",
                        )
                    )
            elif operator in ("Exists", "DoesNotExist"):
                if values:
                    errors.append(
                        invalid_value(
                            f"{path}.values",
                            values,
                            "must be no value when `operator` is 'Exist' or 'DoesNotExist' for scope selector",
                        )
                    )
            else:
                errors.append(
                    invalid_value(f"{path}.operator", operator, "not a valid selector operator")
                )
        if {"BestEffort", "NotBestEffort"} <= set(names) or {
            "Terminating",
            "NotTerminating",
        } <= set(names):
            errors.append(
                invalid_value(
                    "spec.scopeSelector.matchExpressions", _go_scopes(scopes), "conflicting scopes"
                )
            )
    return errors


def _standard_quota(name: str) -> bool:
    return name in STANDARD_QUOTA_RESOURCES or name.startswith(
        ("hugepages-", "requests.hugepages-")
    )


def _scope_fits(scope: str, resource: str) -> bool:
    if scope in (
        "Terminating",
        "NotTerminating",
        "NotBestEffort",
        "PriorityClass",
        "CrossNamespacePodAffinity",
    ):
        return resource in _POD_COUNT or resource in _POD_COMPUTE
    if scope == "BestEffort":
        return resource in _POD_COUNT
    return True
