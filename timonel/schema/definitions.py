"""Load the published Kubernetes 1.32 definitions and navigate them by field path.

`Definitions.for_kind(group, version, kind)` gives the root `SchemaNode` of a kind; a
node answers what patching and validation need: its JSON type, its children, its list
items, and the list strategy (`x-kubernetes-patch-strategy`, `x-kubernetes-patch-merge-key`,
`x-kubernetes-list-type`, `x-kubernetes-list-map-keys`).
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
            target_name = ref.removeprefix(_REF_PREFIX).removeprefix("/api/_definitions.json#/$defs/")
            target = defs.raw.get(target_name, {})
            merged = dict(target)
            merged.update({k: v for k, v in raw.items() if k != "$ref"})
            raw = merged
            name = target_name
        self.raw = raw
        self.name = name

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
    def preserves_unknown_fields(self) -> bool:
        return bool(self.raw.get("x-kubernetes-preserve-unknown-fields")) or (
            "object" in self.types and not self.properties and "additionalProperties" not in self.raw
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
    """All definitions of one Kubernetes release, indexed by group/version/kind."""

    def __init__(self, raw: dict[str, Any]) -> None:
        self.raw = raw
        self._by_gvk: dict[tuple[str, str, str], str] = {}
        for name, schema in raw.items():
            for gvk in schema.get("x-kubernetes-group-version-kind", ()):
                self._by_gvk[(gvk.get("group", ""), gvk["version"], gvk["kind"])] = name

    def node(self, name: str) -> SchemaNode:
        return SchemaNode(self, self.raw[name], name)

    def name_for_kind(self, group: str, version: str, kind: str) -> str | None:
        return self._by_gvk.get((group, version, kind))

    def for_kind(self, group: str, version: str, kind: str) -> SchemaNode | None:
        name = self.name_for_kind(group, version, kind)
        return self.node(name) if name else None


@functools.cache
def kubernetes_definitions() -> Definitions:
    """The process-wide definitions, loaded on first use."""
    return Definitions(_load_raw())
