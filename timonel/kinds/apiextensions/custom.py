"""Custom resources: one `Strategy` per served version of a CustomResourceDefinition.

`custom_resource_strategies(crd)` builds them while the server runs. A strategy's class
attributes (group, kind, plural, ...) are `ClassVar`s, so each CRD version gets a subclass
of `CustomResourceStrategy` made with `type()`; what is not a class attribute (the schema,
the printer column paths) lives on the instance.

Behaviour follows apiextensions-apiserver's customresource registry:
- generation starts at 1 and grows with any change outside metadata;
- with the status subresource, the main endpoint keeps the stored status;
- unknown fields are pruned and schema defaults applied before validation;
- every served version shares one store: conversion `None` only rewrites apiVersion;
- tables: Name, then the version's additionalPrinterColumns, or Name and Age without them.
"""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any, ClassVar, cast

from timonel.api.errors import FieldError, invalid_value
from timonel.api.objects import Object
from timonel.api.validation import qualified_name_problems
from timonel.kinds.apiextensions.jsonpath import JSONPath, JSONPathError, text_of
from timonel.kinds.base import AGE_COLUMN, NAME_COLUMN, Column, ScaleSpec, Strategy
from timonel.kinds.printing import age
from timonel.schema.definitions import SchemaNode, schema_from_openapi
from timonel.schema.fields import prune_unknown, validate_custom_resource

MAX_INT32 = 2**31 - 1
STANDARD_FINALIZERS = frozenset({"orphan", "foregroundDeletion", "kubernetes"})
DEFAULT_AGE_COLUMN = Column("Age", type="date", description=AGE_COLUMN.description)


def _path_of(json_path: str) -> tuple[str, ...]:
    """ ".spec.replicas" → ("spec", "replicas")."""
    return tuple(part for part in json_path.removeprefix(".").split(".") if part)


def crd_version(crd: Object, version: str) -> dict[str, Any] | None:
    for entry in (crd.get("spec") or {}).get("versions") or []:
        if isinstance(entry, dict) and entry.get("name") == version:
            return entry
    return None


def storage_version(crd: Object) -> str:
    for entry in (crd.get("spec") or {}).get("versions") or []:
        if isinstance(entry, dict) and entry.get("storage"):
            return str(entry.get("name") or "")
    return ""


def printer_columns(version: dict[str, Any]) -> list[dict[str, Any]]:
    """The version's printer columns, or the implicit Age column when it declares none."""
    columns = version.get("additionalPrinterColumns") or []
    if columns:
        return [c for c in columns if isinstance(c, dict)]
    return [
        {
            "name": "Age",
            "type": "date",
            "jsonPath": ".metadata.creationTimestamp",
            "description": AGE_COLUMN.description,
        }
    ]


class CustomResourceStrategy(Strategy):
    """Behaviour shared by every custom resource; subclasses carry one version's names."""

    tracks_generation: ClassVar[bool] = True
    crd_name: ClassVar[str] = ""
    storage_version_name: ClassVar[str] = ""

    def __init__(
        self,
        *,
        schema: SchemaNode | None = None,
        openapi_schema: dict[str, Any] | None = None,
        column_paths: tuple[JSONPath | None, ...] = (),
        selectable_paths: tuple[tuple[str, JSONPath], ...] = (),
        scale_paths: dict[str, str] | None = None,
    ) -> None:
        # The structural schema, also read by the API server for field validation.
        self.schema = schema
        self.openapi_schema = openapi_schema or {}
        self.column_paths = column_paths
        self.selectable_paths = selectable_paths
        # The CRD's own JSON paths (".spec.replicas"): scale errors name them verbatim.
        self.scale_paths = scale_paths or {}

    # -- shape ------------------------------------------------------------------------

    def default(self, obj: Object) -> None:
        if self.schema is not None:
            prune_unknown(self.schema, obj)
        if self.openapi_schema:
            apply_schema_defaults(self.openapi_schema, obj, root=True)

    def spec_changed(self, new: Object, old: Object) -> bool:
        """Any change outside metadata is a new generation."""
        return _without_metadata(new) != _without_metadata(old)

    def to_storage(self, obj: Object) -> Object:
        # Conversion strategy None: only the apiVersion differs between versions.
        if self.storage_version_name:
            obj["apiVersion"] = f"{self.group}/{self.storage_version_name}"
        return obj

    def from_storage(self, obj: Object) -> Object:
        obj["apiVersion"] = self.api_version
        return obj

    # -- validation -------------------------------------------------------------------

    def validate(self, obj: Object) -> list[FieldError]:
        errors = self._type_meta_errors(obj)
        if errors:
            return errors
        errors.extend(self._schema_errors(obj))
        errors.extend(self._scale_spec_errors(obj))
        errors.extend(self._scale_status_errors(obj))
        return errors

    def validate_update(self, new: Object, old: Object) -> list[FieldError]:
        return self.validate(new)

    def validate_status_update(self, new: Object, old: Object) -> list[FieldError]:
        errors = self._type_meta_errors(new)
        if errors:
            return errors
        if "status" in new:
            errors.extend(
                e
                for e in self._schema_errors(new)
                if e.field == "status" or e.field.startswith("status.")
            )
        errors.extend(self._scale_status_errors(new))
        return errors

    def _type_meta_errors(self, obj: Object) -> list[FieldError]:
        errors: list[FieldError] = []
        if obj.get("kind") != self.kind:
            errors.append(invalid_value("kind", obj.get("kind") or "", f"must be {self.kind}"))
        if obj.get("apiVersion") != self.api_version:
            errors.append(
                invalid_value(
                    "apiVersion", obj.get("apiVersion") or "", f"must be {self.api_version}"
                )
            )
        return errors

    def _schema_errors(self, obj: Object) -> list[FieldError]:
        if self.schema is None:
            return []
        return validate_custom_resource(self.schema, obj)

    def _scale_spec_errors(self, obj: Object) -> list[FieldError]:
        path = self.scale_paths.get("specReplicasPath")
        return _replicas_errors(obj, path) if path else []

    def _scale_status_errors(self, obj: Object) -> list[FieldError]:
        path = self.scale_paths.get("statusReplicasPath")
        if not path:
            return []
        errors = _replicas_errors(obj, path)
        selector_path = self.scale_paths.get("labelSelectorPath")
        if selector_path:
            _, problem = _nested(obj, _path_of(selector_path), str, "string")
            if problem:
                errors.append(invalid_value(selector_path, "", problem))
        return errors

    def warnings(self, obj: Object) -> list[str]:
        """Finalizer names that are not domain-qualified (generateWarningsFromObj)."""
        found: list[str] = []
        for finalizer in sorted(set((obj.get("metadata") or {}).get("finalizers") or [])):
            name = str(finalizer)
            found.extend(
                f'metadata.finalizers: "{name}": {p}' for p in qualified_name_problems(name)
            )
            if "/" not in name and name not in STANDARD_FINALIZERS:
                path = " including a path (/)" if "." in name else ""
                found.append(
                    f'metadata.finalizers: "{name}": prefer a domain-qualified finalizer name{path} '
                    "to avoid accidental conflicts with other finalizer writers"
                )
        return found

    # -- reading ----------------------------------------------------------------------

    def table_row(self, obj: Object, now: datetime | None = None) -> list[Any]:
        cells: list[Any] = [(obj.get("metadata") or {}).get("name", "")]
        for column, path in zip(self.columns[1:], self.column_paths, strict=False):
            cells.append(_cell(column, path, obj, now))
        return cells

    def selectable_fields(self, obj: Object) -> dict[str, str]:
        fields = super().selectable_fields(obj)
        for name, path in self.selectable_paths:
            found, value = path.first(obj)
            fields[name] = "" if not found or value is None else _go_print(value)
        return fields


def _without_metadata(obj: Object) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k != "metadata"}


def _cell(column: Column, path: JSONPath | None, obj: Object, now: datetime | None) -> Any:
    """A printer column's cell, as the CRD table convertor types it."""
    if path is None:
        return None
    found, value = path.first(obj)
    if not found or value is None:
        return None
    if column.type == "string":
        return text_of(value)
    if column.type == "integer":
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        return int(value)
    if column.type == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        return float(value)
    if column.type == "boolean":
        return value if isinstance(value, bool) else None
    if column.type == "date":
        if not isinstance(value, str):
            return None
        text = age(value, now)
        return "<invalid>" if text == "<unknown>" and value else text
    return None


def _go_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int64"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "[]interface {}"
    if isinstance(value, dict):
        return "map[string]interface {}"
    return "<nil>"


def _go_print(value: Any) -> str:
    """fmt.Sprint of an unstructured value."""
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{_go_print(value[k])}" for k in sorted(value)) + "]"
    if isinstance(value, list):
        return "[" + " ".join(_go_print(v) for v in value) + "]"
    if value is None:
        return "<nil>"
    return text_of(value)


def _nested(obj: Object, path: tuple[str, ...], kind: type, go_name: str) -> tuple[Any, str]:
    """unstructured.NestedInt64 / NestedString: (value, problem); a missing field is fine."""
    current: Any = obj
    for i, part in enumerate(path):
        if not isinstance(current, dict):
            at = "." + ".".join(path[:i])
            return None, (
                f"{at} accessor error: {_go_print(current)} is of the type {_go_type(current)}, "
                "expected map[string]interface{}"
            )
        if part not in current:
            return None, ""
        current = current[part]
    if current is None or (isinstance(current, kind) and not isinstance(current, bool)):
        return current, ""
    at = "." + ".".join(path)
    return (
        None,
        f"{at} accessor error: {_go_print(current)} is of the type {_go_type(current)}, expected {go_name}",
    )


def _replicas_errors(obj: Object, json_path: str) -> list[FieldError]:
    value, problem = _nested(obj, _path_of(json_path), int, "int64")
    if problem:
        return [invalid_value(json_path, 0, problem)]
    replicas = value or 0
    if replicas < 0:
        return [invalid_value(json_path, replicas, "should be a non-negative integer")]
    if replicas > MAX_INT32:
        return [invalid_value(json_path, replicas, f"should be less than or equal to {MAX_INT32}")]
    return []


def apply_schema_defaults(schema: dict[str, Any], value: Any, *, root: bool = False) -> None:
    """structuraldefaulting.Default: fill absent (or null, non-nullable) properties with
    their schema's `default`, then descend."""
    if isinstance(value, dict):
        properties = schema.get("properties") or {}
        for name, prop in properties.items():
            if not isinstance(prop, dict) or (root and name == "metadata"):
                continue
            if "default" in prop and (
                name not in value or (value[name] is None and not prop.get("nullable"))
            ):
                value[name] = copy.deepcopy(prop["default"])
            if name in value:
                apply_schema_defaults(prop, value[name])
        additional = schema.get("additionalProperties")
        if isinstance(additional, dict) and not properties:
            for key in list(value):
                if (
                    value[key] is None
                    and "default" in additional
                    and not additional.get("nullable")
                ):
                    value[key] = copy.deepcopy(additional["default"])
                apply_schema_defaults(additional, value[key])
    elif isinstance(value, list):
        items = schema.get("items")
        if isinstance(items, dict):
            for i, item in enumerate(value):
                if item is None and "default" in items and not items.get("nullable"):
                    value[i] = copy.deepcopy(items["default"])
                apply_schema_defaults(items, value[i])


def _names(crd: Object) -> dict[str, Any]:
    """The names the CRD serves under: the accepted ones, the requested ones before that."""
    spec_names = (crd.get("spec") or {}).get("names") or {}
    accepted = (crd.get("status") or {}).get("acceptedNames") or {}
    return {
        key: accepted.get(key) or spec_names.get(key)
        for key in ("plural", "singular", "kind", "listKind", "shortNames", "categories")
    }


def custom_resource_strategies(crd: Object) -> list[Strategy]:
    """One strategy per served version of `crd`, ready to register."""
    spec = crd.get("spec") or {}
    names = _names(crd)
    group = str(spec.get("group") or "")
    kind = str(names.get("kind") or "")
    plural = str(names.get("plural") or "")
    if not (group and kind and plural):
        return []
    stored = storage_version(crd)
    strategies: list[Strategy] = []
    for version in spec.get("versions") or []:
        if not isinstance(version, dict) or not version.get("served"):
            continue
        strategies.append(_strategy_for(crd, version, group, kind, plural, names, stored))
    return strategies


def _strategy_for(
    crd: Object,
    version: dict[str, Any],
    group: str,
    kind: str,
    plural: str,
    names: dict[str, Any],
    stored: str,
) -> CustomResourceStrategy:
    version_name = str(version.get("name") or "")
    subresources = version.get("subresources") or {}
    scale_spec = subresources.get("scale") if isinstance(subresources, dict) else None
    scale_paths: dict[str, str] = {}
    scale: ScaleSpec | None = None
    if isinstance(scale_spec, dict):
        scale_paths = {
            k: str(scale_spec[k])
            for k in ("specReplicasPath", "statusReplicasPath", "labelSelectorPath")
            if scale_spec.get(k)
        }
        scale = ScaleSpec(
            spec_replicas=_path_of(scale_paths.get("specReplicasPath", ".spec.replicas")),
            status_replicas=_path_of(scale_paths.get("statusReplicasPath", ".status.replicas")),
            # An empty path: the CRD names no selector.
            selector=_path_of(scale_paths.get("labelSelectorPath", "")),
            selector_is_string=True,
        )

    columns: list[Column] = [NAME_COLUMN]
    column_paths: list[JSONPath | None] = []
    for definition in printer_columns(version):
        json_path = str(definition.get("jsonPath") or "")
        columns.append(
            Column(
                str(definition.get("name") or ""),
                type=str(definition.get("type") or "string"),
                format=str(definition.get("format") or ""),
                description=str(
                    definition.get("description")
                    or f"Custom resource definition column (in JSONPath format): {json_path}"
                ),
                priority=int(definition.get("priority") or 0),
            )
        )
        try:
            column_paths.append(JSONPath(json_path))
        except JSONPathError:
            column_paths.append(None)

    selectable: list[tuple[str, JSONPath]] = []
    for entry in version.get("selectableFields") or []:
        json_path = str((entry or {}).get("jsonPath") or "")
        try:
            selectable.append((json_path.removeprefix("."), JSONPath(json_path)))
        except JSONPathError:
            continue

    openapi_schema = (version.get("schema") or {}).get("openAPIV3Schema")
    schema: SchemaNode | None = None
    if isinstance(openapi_schema, dict):
        schema = schema_from_openapi(openapi_schema, group=group, version=version_name, kind=kind)

    attributes: dict[str, Any] = {
        "__module__": __name__,
        "__doc__": f"{kind} ({group}/{version_name}), served for CustomResourceDefinition {plural}.{group}.",
        "group": group,
        "version": version_name,
        "kind": kind,
        "plural": plural,
        "singular": str(names.get("singular") or kind.lower()),
        "namespaced": spec_scope_namespaced(crd),
        "short_names": tuple(names.get("shortNames") or ()),
        "categories": tuple(names.get("categories") or ()),
        "has_status": isinstance(subresources, dict) and "status" in subresources,
        "scale": scale,
        "columns": tuple(columns),
        "field_labels": tuple(name for name, _ in selectable),
        "storage_resource": (group, plural),
        "crd_name": str((crd.get("metadata") or {}).get("name") or f"{plural}.{group}"),
        "storage_version_name": stored,
    }
    subclass = cast(
        type[CustomResourceStrategy],
        type(f"{kind}{version_name.capitalize()}Strategy", (CustomResourceStrategy,), attributes),
    )
    return subclass(
        schema=schema,
        openapi_schema=openapi_schema if isinstance(openapi_schema, dict) else None,
        column_paths=tuple(column_paths),
        selectable_paths=tuple(selectable),
        scale_paths=scale_paths,
    )


def spec_scope_namespaced(crd: Object) -> bool:
    return (crd.get("spec") or {}).get("scope") != "Cluster"
