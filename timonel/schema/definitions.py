"""Load the published Kubernetes 1.32 definitions and navigate them by field path.

`Definitions.for_kind(group, version, kind)` gives the root `SchemaNode` of a kind; a
node answers what patching and validation need: its JSON type, its children, its list
items, and the list strategy (`x-kubernetes-patch-strategy`, `x-kubernetes-patch-merge-key`,
`x-kubernetes-list-type`, `x-kubernetes-list-map-keys`).

A CustomResourceDefinition version's `openAPIV3Schema` becomes a `Definitions` of its own
(`schema_from_openapi`): one synthetic root entry that falls back on the Kubernetes
definitions for `ObjectMeta`, marked structural so that an object schema without
properties means "no fields" rather than "any fields".
"""

from __future__ import annotations

import functools
import importlib.resources
from collections.abc import Mapping
from typing import Any

import orjson

KUBERNETES_SCHEMA_SET = "v1.32.0-local"
_REF_PREFIX = "#/$defs/"


def _load_raw() -> dict[str, Any]:
    root = importlib.resources.files("kubernetes_validate")
    path = root / "kubernetes-json-schema" / KUBERNETES_SCHEMA_SET / "_definitions.json"
    data: dict[str, Any] = orjson.loads(path.read_bytes())
    defs: dict[str, Any] = data["$defs"]
    return defs


class SchemaNode:
    """A view of one schema in the definitions; cheap to create, resolves `$ref` lazily."""

    __slots__ = ("_defs", "name", "raw")

    def __init__(self, defs: Definitions, raw: Mapping[str, Any], name: str = "") -> None:
        self._defs = defs
        # A property that is only `{"$ref": ..., "description": ...}` carries its own
        # description and patch extensions but the target's structure: merge both.
        ref = raw.get("$ref")
        if isinstance(ref, str):
            target_name = ref_name(ref)
            target = defs.lookup(target_name) or {}
            merged = dict(target)
            merged.update({k: v for k, v in raw.items() if k != "$ref"})
            raw = merged
            name = target_name
        self.raw = raw
        self.name = name

    @property
    def definitions(self) -> Definitions:
        """The set this node belongs to (it resolves the node's `$ref`s)."""
        return self._defs

    @property
    def types(self) -> tuple[str, ...]:
        """JSON types allowed here ("null" removed); empty when any type goes."""
        value = self.raw.get("type")
        if value is None:
            if "oneOf" in self.raw:  # Quantity and IntOrString
                found: list[str] = []
                for option in self.raw["oneOf"]:
                    t = option.get("type")
                    found.extend(t if isinstance(t, list) else [t])
                return tuple(t for t in found if t and t != "null")
            return ()
        types = value if isinstance(value, list) else [value]
        return tuple(t for t in types if t != "null")

    @property
    def description(self) -> str:
        return str(self.raw.get("description", ""))

    @property
    def properties(self) -> Mapping[str, Any]:
        props = self.raw.get("properties")
        return props if isinstance(props, dict) else {}

    def child(self, field: str) -> SchemaNode | None:
        """The schema of property `field` (or of a map value), None when unknown."""
        prop = self.properties.get(field)
        if prop is not None:
            return SchemaNode(self._defs, prop)
        additional = self.raw.get("additionalProperties")
        if isinstance(additional, dict):
            return SchemaNode(self._defs, additional)
        return None

    @property
    def is_map(self) -> bool:
        """A free-form map (labels, data): values share one schema, keys are arbitrary."""
        return not self.properties and isinstance(self.raw.get("additionalProperties"), dict)

    @property
    def structural(self) -> bool:
        """A CRD structural schema: only `x-kubernetes-preserve-unknown-fields` keeps unknown fields."""
        return self._defs.structural

    @property
    def preserves_unknown_fields(self) -> bool:
        if self.raw.get("x-kubernetes-preserve-unknown-fields"):
            return True
        if self._defs.structural:
            return False
        return (
            "object" in self.types
            and not self.properties
            and "additionalProperties" not in self.raw
        )

    def items(self) -> SchemaNode | None:
        items = self.raw.get("items")
        return SchemaNode(self._defs, items) if isinstance(items, dict) else None

    @property
    def patch_strategy(self) -> tuple[str, ...]:
        """Strategic-merge-patch strategies: "merge", "retainKeys", or both."""
        value = self.raw.get("x-kubernetes-patch-strategy", "")
        return tuple(s for s in str(value).split(",") if s)

    @property
    def patch_merge_key(self) -> str | None:
        value = self.raw.get("x-kubernetes-patch-merge-key")
        return str(value) if value else None

    @property
    def list_type(self) -> str | None:
        value = self.raw.get("x-kubernetes-list-type")
        return str(value) if value else None

    @property
    def list_map_keys(self) -> tuple[str, ...]:
        return tuple(self.raw.get("x-kubernetes-list-map-keys", ()))

    @property
    def map_type(self) -> str | None:
        value = self.raw.get("x-kubernetes-map-type")
        return str(value) if value else None

    def required_fields(self) -> tuple[str, ...]:
        return tuple(self.raw.get("required", ()))


class Definitions:
    """All definitions of one Kubernetes release, indexed by group/version/kind.

    `base` answers `$ref`s this set does not define (a CRD's set falls back on the
    Kubernetes definitions); `structural` marks CRD structural schemas; `validation`
    keeps, per root name, the schema values are validated against when it differs from
    the root (a CRD's own `metadata` constraints, say)."""

    def __init__(
        self, raw: dict[str, Any], *, base: Definitions | None = None, structural: bool = False
    ) -> None:
        self.raw = raw
        self.base = base
        self.structural = structural
        self.validation: dict[str, Mapping[str, Any]] = {}
        self._by_gvk: dict[tuple[str, str, str], str] = {}
        for name, schema in raw.items():
            for gvk in schema.get("x-kubernetes-group-version-kind", ()):
                self._by_gvk[(gvk.get("group", ""), gvk["version"], gvk["kind"])] = name

    def lookup(self, name: str) -> Mapping[str, Any] | None:
        """The raw schema named `name`, here or in the base set."""
        found = self.raw.get(name)
        if found is None and self.base is not None:
            return self.base.lookup(name)
        return found

    def node(self, name: str) -> SchemaNode:
        raw = self.lookup(name)
        if raw is None:
            raise KeyError(name)
        return SchemaNode(self, raw, name)

    def name_for_kind(self, group: str, version: str, kind: str) -> str | None:
        return self._by_gvk.get((group, version, kind))

    def for_kind(self, group: str, version: str, kind: str) -> SchemaNode | None:
        name = self.name_for_kind(group, version, kind)
        return self.node(name) if name else None


def ref_name(ref: str) -> str:
    """The definition name a `$ref` points at, whatever document it was written for."""
    return ref.rsplit("/", 1)[-1]


@functools.cache
def kubernetes_definitions() -> Definitions:
    """The process-wide definitions, loaded on first use."""
    return Definitions(_load_raw())


OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
_TYPE_META_DESCRIPTIONS = {
    "apiVersion": "APIVersion defines the versioned schema of this representation of an object. "
    "Servers should convert recognized schemas to the latest internal value, and may reject "
    "unrecognized values. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources",
    "kind": "Kind is a string value representing the REST resource this object represents. "
    "Servers may infer this from the endpoint the client submits requests to. Cannot be updated. "
    "In CamelCase. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds",
}
_METADATA_DESCRIPTION = (
    "Standard object's metadata. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"
)


def custom_resource_definition_name(group: str, version: str, kind: str) -> str:
    """How kube-apiserver names a custom resource's OpenAPI definition: reversed group."""
    reversed_group = ".".join(reversed(group.split("."))) if group else ""
    return ".".join(part for part in (reversed_group, version, kind) if part)


def schema_from_openapi(
    schema: Mapping[str, Any], *, group: str = "", version: str = "", kind: str = ""
) -> SchemaNode:
    """The root node of a CRD version's `openAPIV3Schema`.

    As for any custom resource, `apiVersion`, `kind` and `metadata` (an ObjectMeta) are
    implicitly part of the root; the schema itself is kept for value validation."""
    root: dict[str, Any] = {k: v for k, v in schema.items() if k != "properties"}
    root.setdefault("type", "object")
    properties: dict[str, Any] = {
        "apiVersion": {"description": _TYPE_META_DESCRIPTIONS["apiVersion"], "type": "string"},
        "kind": {"description": _TYPE_META_DESCRIPTIONS["kind"], "type": "string"},
        "metadata": {"$ref": _REF_PREFIX + OBJECT_META, "description": _METADATA_DESCRIPTION},
    }
    properties.update(
        (name, prop)
        for name, prop in (schema.get("properties") or {}).items()
        if name not in properties
    )
    root["properties"] = properties
    if kind:
        root["x-kubernetes-group-version-kind"] = [
            {"group": group, "kind": kind, "version": version}
        ]
    name = custom_resource_definition_name(group, version, kind) if kind else "custom-resource"
    defs = Definitions({name: root}, base=kubernetes_definitions(), structural=True)
    defs.validation[name] = schema
    return SchemaNode(defs, root, name)
