"""storage.k8s.io/v1 StorageClass."""

from __future__ import annotations

from typing import Any, ClassVar

from timonel.api.errors import (
    FieldError,
    duplicate,
    forbidden,
    invalid_value,
    not_supported,
    required,
    too_long,
)
from timonel.api.objects import Object
from timonel.api.validation import qualified_name_problems, validate_label_name
from timonel.kinds.base import AGE_COLUMN, NAME_COLUMN, Column, Strategy
from timonel.kinds.core.common import immutable
from timonel.kinds.printing import creation_age, field_description

GROUP = "storage.k8s.io"
DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"
# The annotation beta clusters used; kube-apiserver still honours it.
BETA_DEFAULT_CLASS_ANNOTATION = "storageclass.beta.kubernetes.io/is-default-class"
RECLAIM_POLICIES = ("Delete", "Retain")
VOLUME_BINDING_MODES = ("Immediate", "WaitForFirstConsumer")
MAX_PARAMETERS = 512
MAX_PARAMETERS_SIZE = 256 * 1024


def is_default_class(storage_class: Object) -> bool:
    annotations = (storage_class.get("metadata") or {}).get("annotations") or {}
    return (
        annotations.get(DEFAULT_CLASS_ANNOTATION) == "true"
        or annotations.get(BETA_DEFAULT_CLASS_ANNOTATION) == "true"
    )


def _describe(field: str) -> str:
    return field_description(GROUP, "v1", "StorageClass", field)


class StorageClassStrategy(Strategy):
    group: ClassVar[str] = GROUP
    version: ClassVar[str] = "v1"
    kind: ClassVar[str] = "StorageClass"
    plural: ClassVar[str] = "storageclasses"
    singular: ClassVar[str] = "storageclass"
    namespaced: ClassVar[bool] = False
    short_names: ClassVar[tuple[str, ...]] = ("sc",)
    immutable_fields: ClassVar[tuple[str, ...]] = (
        "provisioner",
        "parameters",
        "reclaimPolicy",
        "volumeBindingMode",
    )
    columns: ClassVar[tuple[Column, ...]] = (
        NAME_COLUMN,
        Column("Provisioner", description=_describe("provisioner")),
        Column("ReclaimPolicy", description=_describe("reclaimPolicy")),
        Column("VolumeBindingMode", description=_describe("volumeBindingMode")),
        Column("AllowVolumeExpansion", description=_describe("allowVolumeExpansion")),
        AGE_COLUMN,
    )

    def default(self, obj: Object) -> None:
        obj.setdefault("reclaimPolicy", "Delete")
        obj.setdefault("volumeBindingMode", "Immediate")

    def validate(self, obj: Object) -> list[FieldError]:
        errors: list[FieldError] = []
        provisioner = str(obj.get("provisioner") or "")
        if not provisioner:
            errors.append(required("provisioner"))
        else:
            errors.extend(
                invalid_value("provisioner", provisioner, p)
                for p in qualified_name_problems(provisioner.lower())
            )
        errors.extend(_validate_parameters(obj.get("parameters") or {}))
        reclaim_policy = obj.get("reclaimPolicy")
        if reclaim_policy and reclaim_policy not in RECLAIM_POLICIES:
            errors.append(not_supported("reclaimPolicy", reclaim_policy, list(RECLAIM_POLICIES)))
        binding_mode = obj.get("volumeBindingMode")
        if binding_mode is None:
            errors.append(required("volumeBindingMode"))
        elif binding_mode not in VOLUME_BINDING_MODES:
            errors.append(
                not_supported("volumeBindingMode", binding_mode, list(VOLUME_BINDING_MODES))
            )
        errors.extend(_validate_allowed_topologies(obj.get("allowedTopologies") or []))
        return errors

    def validate_update(self, new: Object, old: Object) -> list[FieldError]:
        errors = self.validate(new)
        if (new.get("parameters") or {}) != (old.get("parameters") or {}):
            errors.append(forbidden("parameters", "updates to parameters are forbidden."))
        if new.get("provisioner") != old.get("provisioner"):
            errors.append(forbidden("provisioner", "updates to provisioner are forbidden."))
        if new.get("reclaimPolicy") != old.get("reclaimPolicy"):
            errors.append(forbidden("reclaimPolicy", "updates to reclaimPolicy are forbidden."))
        if new.get("volumeBindingMode") != old.get("volumeBindingMode"):
            errors.append(immutable("volumeBindingMode", new.get("volumeBindingMode")))
        return errors

    def table_row(self, obj: Object) -> list[Any]:
        name = (obj.get("metadata") or {}).get("name", "")
        if is_default_class(obj):
            name += " (default)"
        return [
            name,
            obj.get("provisioner") or "",
            obj.get("reclaimPolicy") or "Delete",
            obj.get("volumeBindingMode") or "Immediate",
            bool(obj.get("allowVolumeExpansion")),
            creation_age(obj),
        ]


def _validate_parameters(parameters: dict[str, Any]) -> list[FieldError]:
    if len(parameters) > MAX_PARAMETERS:
        return [too_long("parameters", MAX_PARAMETERS)]
    errors: list[FieldError] = []
    size = 0
    for key, value in parameters.items():
        if not key:
            errors.append(invalid_value("parameters", key, "field can not be empty."))
        size += len(key) + len(str(value or ""))
    if size > MAX_PARAMETERS_SIZE:
        errors.append(too_long("parameters", MAX_PARAMETERS_SIZE))
    return errors


def _validate_allowed_topologies(terms: list[Any]) -> list[FieldError]:
    """ValidateTopologySelectorTerm for each term, and no two terms alike."""
    errors: list[FieldError] = []
    seen: list[dict[str, frozenset[str]]] = []
    for i, term in enumerate(terms):
        path = f"allowedTopologies[{i}]"
        expressions: dict[str, frozenset[str]] = {}
        for j, requirement in enumerate((term or {}).get("matchLabelExpressions") or []):
            req_path = f"{path}.matchLabelExpressions[{j}]"
            key = str((requirement or {}).get("key") or "")
            values = (requirement or {}).get("values") or []
            if not values:
                errors.append(required(f"{req_path}.values"))
            value_set: set[str] = set()
            for k, value in enumerate(values):
                if value in value_set:
                    errors.append(duplicate(f"{req_path}.values[{k}]", value))
                value_set.add(value)
            errors.extend(validate_label_name(key, f"{req_path}.key"))
            if key in expressions:
                errors.append(duplicate(f"{req_path}.key", key))
            expressions[key] = frozenset(value_set)
        if expressions in seen:
            errors.append(duplicate(f"{path}.matchLabelExpressions", ""))
        seen.append(expressions)
    return errors
