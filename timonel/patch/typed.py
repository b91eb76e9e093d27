"""Objects seen through their schema, as structured-merge-diff sees them.

A `Shape` is what field management needs from a schema node: is it a struct, a map, a
list or a scalar; is it atomic (owned and replaced as a whole) or granular; for lists,
is it a set or a map keyed by some fields. Lists without `x-kubernetes-list-type` fall
back to their patch strategy (merge with a key: a list-map; merge without: a set) and are
atomic otherwise. Nodes without a type (`x-kubernetes-preserve-unknown-fields`, JSON
fields) are deduced from the value: maps are granular, lists atomic.

The walkers below are the operations server-side apply is built from:

    to_field_set(value)            the fields a value sets (ToFieldSet)
    compare(old, new)              added, modified and removed fields (Compare)
    merge(live, config)            an applied configuration merged into the live object (Merge)
    remove_items(value, fields)    a value without the given fields and items (RemoveItems)
    validate(value)                why a value does not fit its schema

Values are decoded JSON. `MISSING` stands for an absent field; a `None` in the live or new
object is treated as absent too (Go omits empty fields), while a `None` in an applied
configuration is an explicit value.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from timonel.patch._gofmt import go_quote, go_type_name, go_v, json_equal
from timonel.patch.fieldpath import (
    FieldSet,
    Path,
    PathElement,
    element_order,
    element_string,
    field_element,
    key_element,
    path_string,
    value_element,
)
from timonel.schema.definitions import SchemaNode, kubernetes_definitions


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final[Any] = _Missing()

OBJECT_META: Final = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"

# List-map keys that have a default value (`+default=` in the Go types). The published
# definitions drop defaults, yet structured-merge-diff keys an item that omits one of these
# with the default: a container port without a protocol is `{"containerPort":80,"protocol":"TCP"}`.
KEY_DEFAULTS: Final[Mapping[str, Mapping[str, Any]]] = {
    "io.k8s.api.core.v1.ContainerPort": {"protocol": "TCP"},
    "io.k8s.api.core.v1.ServicePort": {"protocol": "TCP"},
}

# Fields a Go object always carries, even when unset: struct values (not pointers) and
# lists without `omitempty`. They exist in the empty object an update is compared with,
# so adding something below them never makes the field itself "added" (no `.` in FieldsV1).
ALWAYS_PRESENT: Final[Mapping[str, frozenset[str]]] = {
    "io.k8s.api.apps.v1.DeploymentSpec": frozenset({"template", "strategy"}),
    "io.k8s.api.apps.v1.ReplicaSetSpec": frozenset({"template"}),
    "io.k8s.api.apps.v1.StatefulSetSpec": frozenset({"template", "updateStrategy"}),
    "io.k8s.api.apps.v1.DaemonSetSpec": frozenset({"template", "updateStrategy"}),
    "io.k8s.api.batch.v1.JobSpec": frozenset({"template"}),
    "io.k8s.api.batch.v1.CronJobSpec": frozenset({"jobTemplate"}),
    "io.k8s.api.batch.v1.JobTemplateSpec": frozenset({"metadata", "spec"}),
    "io.k8s.api.core.v1.PodTemplateSpec": frozenset({"metadata", "spec"}),
    "io.k8s.api.core.v1.PodTemplate": frozenset({"template"}),
    "io.k8s.api.core.v1.PodSpec": frozenset({"containers"}),
    "io.k8s.api.core.v1.Container": frozenset({"resources"}),
    "io.k8s.api.core.v1.EphemeralContainer": frozenset({"resources"}),
    "io.k8s.api.core.v1.ServiceStatus": frozenset({"loadBalancer"}),
    "io.k8s.api.core.v1.NodeStatus": frozenset({"daemonEndpoints", "nodeInfo"}),
    "io.k8s.api.core.v1.NodeDaemonEndpoints": frozenset({"kubeletEndpoint"}),
    "io.k8s.api.core.v1.PersistentVolumeClaimSpec": frozenset({"resources"}),
    "io.k8s.api.core.v1.Event": frozenset({"involvedObject", "source"}),
    "io.k8s.api.networking.v1.IngressStatus": frozenset({"loadBalancer"}),
    "io.k8s.api.rbac.v1.RoleBinding": frozenset({"roleRef"}),
    "io.k8s.api.rbac.v1.ClusterRoleBinding": frozenset({"roleRef"}),
    "io.k8s.api.autoscaling.v1.HorizontalPodAutoscalerSpec": frozenset({"scaleTargetRef"}),
    "io.k8s.api.autoscaling.v2.HorizontalPodAutoscalerSpec": frozenset({"scaleTargetRef"}),
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinitionSpec": (
        frozenset({"names"})
    ),
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinitionStatus": (
        frozenset({"acceptedNames"})
    ),
}
# Every built-in kind's metadata, spec and status are struct values.
_ROOT_ALWAYS_PRESENT: Final = frozenset({"metadata", "spec", "status"})

_SCALAR_TYPES: Final = frozenset({"string", "integer", "number", "boolean"})
_TYPE_META: Final = frozenset({"apiVersion", "kind"})
_ROOT_FIELDS: Final = _TYPE_META | {"metadata"}


class Shape:
    """What field management needs to know about one schema node. Children are built
    lazily and kept, so walking the same kind twice costs one dictionary lookup per node."""

    __slots__ = (
        "_children",
        "_element",
        "always_present",
        "atomic",
        "builtin",
        "definition",
        "is_root",
        "kind",
        "list_keys",
        "list_type",
        "merge_key",
        "node",
        "patch_strategies",
        "preserve_unknown",
    )

    def __init__(self, node: SchemaNode | None, *, builtin: bool, is_root: bool = False) -> None:
        self.node = node
        self.builtin = builtin
        self.is_root = is_root
        self._children: dict[str, Shape | None] = {}
        self._element: Shape | _Missing | None = MISSING
        self.definition = node.name if node is not None else ""
        self.list_type = ""
        self.list_keys: tuple[str, ...] = ()
        self.patch_strategies: tuple[str, ...] = ()
        self.merge_key: str | None = None
        self.preserve_unknown = False
        self.atomic = False
        if node is None:
            self.kind = "untyped"
            self.always_present: frozenset[str] = frozenset()
            return
        self.patch_strategies = node.patch_strategy
        self.merge_key = node.patch_merge_key
        self.preserve_unknown = bool(node.raw.get("x-kubernetes-preserve-unknown-fields"))
        types = node.types
        raw = node.raw
        if "array" in types:
            self.kind = "list"
            declared = node.list_type
            if declared is None:
                if "merge" in self.patch_strategies:
                    declared = "map" if self.merge_key else "set"
                    self.list_keys = (self.merge_key,) if self.merge_key else ()
                else:
                    declared = "atomic"
            else:
                self.list_keys = node.list_map_keys
            self.list_type = declared
            self.atomic = declared == "atomic"
        elif node.properties:
            self.kind = "struct"
            self.atomic = node.map_type == "atomic"
        elif isinstance(raw.get("additionalProperties"), dict):
            self.kind = "map"
            self.atomic = node.map_type == "atomic"
        elif "object" in types and node.structural and not self.preserve_unknown:
            # In a CRD's structural schema an object without properties has no fields.
            self.kind = "struct"
            self.atomic = node.map_type == "atomic"
        elif raw.get("x-kubernetes-int-or-string") or (types and set(types) <= _SCALAR_TYPES):
            self.kind = "scalar"
            self.atomic = True
        else:
            self.kind = "untyped"
        present = ALWAYS_PRESENT.get(self.definition, frozenset())
        if is_root and builtin:
            present = present | _ROOT_ALWAYS_PRESENT
        self.always_present = present if builtin else frozenset()

    def __repr__(self) -> str:
        return f"Shape({self.kind}, {self.definition or '-'})"

    def declares(self, name: str) -> bool:
        """A named field of a struct (FindField), as opposed to a key of a map."""
        if self.kind != "struct" or self.node is None:
            return False
        return name in self.node.properties or (self.is_root and name in _ROOT_FIELDS)

    def field(self, name: str) -> Shape | None:
        """The shape of a struct field or map value; None when the field is undeclared.
        Only declared fields are remembered one by one: map keys are data, not schema."""
        if self.kind == "untyped" or self.node is None:
            return UNTYPED
        if self.kind not in ("struct", "map"):
            return None
        known = self._children.get(name, MISSING)
        if known is not MISSING:
            return known  # type: ignore[no-any-return]
        if self.kind == "struct" and self.declares(name):
            child = self.node.child(name)
            if self.is_root and name == "metadata" and (child is None or not child.properties):
                # Whatever a custom resource's schema says, its metadata is an ObjectMeta.
                child = kubernetes_definitions().node(OBJECT_META)
            elif self.is_root and name in _TYPE_META and child is None:
                child = SchemaNode(self.node.definitions, {"type": "string"})
            result = Shape(child, builtin=self.builtin) if child is not None else UNTYPED
            self._children[name] = result
            return result
        return self._map_value()

    def _map_value(self) -> Shape | None:
        """The shape of values under keys a struct does not declare (or of any map value)."""
        known = self._children.get("", MISSING) if self.kind == "map" else MISSING
        if self.kind == "map" and known is not MISSING:
            return known  # type: ignore[no-any-return]
        assert self.node is not None
        additional = self.node.raw.get("additionalProperties")
        result: Shape | None
        if isinstance(additional, dict):
            result = Shape(SchemaNode(self.node.definitions, additional), builtin=self.builtin)
        else:
            result = UNTYPED if self.preserve_unknown else None
        if self.kind == "map":
            self._children[""] = result
        return result

    def element(self) -> Shape:
        """The shape of a list's items."""
        if isinstance(self._element, _Missing):
            items = self.node.items() if self.node is not None else None
            self._element = Shape(items, builtin=self.builtin) if items is not None else UNTYPED
        assert self._element is not None
        return self._element

    @property
    def go_name(self) -> str:
        """The Go type name used in strategic-merge-patch errors (`Container`)."""
        return self.definition.rsplit(".", 1)[-1]


UNTYPED: Final = Shape(None, builtin=False)

_builtin_roots: dict[str, Shape] = {}


def shape_of(schema: SchemaNode | None) -> Shape:
    """The root shape of a kind. Built-in kinds are built once per process and kept;
    a custom resource's shape lives as long as its schema node is used."""
    if schema is None:
        return UNTYPED
    if schema.definitions is not kubernetes_definitions() or not schema.name:
        return Shape(schema, builtin=False, is_root=True)
    cached = _builtin_roots.get(schema.name)
    if cached is None or cached.node is None or cached.node.raw is not schema.raw:
        cached = _builtin_roots[schema.name] = Shape(schema, builtin=True, is_root=True)
    return cached


# -- values and list items ------------------------------------------------------------


def _absent(value: Any) -> bool:
    return value is MISSING or value is None


def _resolve(shape: Shape, value: Any) -> tuple[str, bool]:
    """The kind a value is handled as under `shape` (untyped nodes deduce it), and atomicity."""
    kind = shape.kind
    if kind == "untyped":
        if isinstance(value, dict):
            return "map", False
        if isinstance(value, list):
            return "list", True
        return "scalar", True
    if kind in ("struct", "map"):
        if _absent(value) or isinstance(value, dict):
            return kind, shape.atomic
        return "scalar", True
    if kind == "list":
        if _absent(value) or isinstance(value, list):
            return kind, shape.atomic
        return "scalar", True
    return "scalar", True


class ItemError(Exception):
    pass


def item_element(shape: Shape, item: Any) -> PathElement:
    """The path element of an item of an associative list (listItemToPathElement)."""
    if shape.list_keys:
        if item is None:
            raise ItemError("associative list with keys may not have a null element")
        if not isinstance(item, dict):
            raise ItemError("associative list with keys may not have non-map elements")
        defaults = KEY_DEFAULTS.get(shape.element().definition, {})
        fields: list[tuple[str, Any]] = []
        for name in shape.list_keys:
            if name in item:
                fields.append((name, item[name]))
            elif name in defaults:
                fields.append((name, defaults[name]))
        if not fields:
            keys = "[" + " ".join(go_quote(k) for k in shape.list_keys) + "]"
            raise ItemError(
                f"associative list with keys has an element that omits all key fields {keys} "
                "(and doesn't have default values for any key fields)"
            )
        if len(fields) > 1:
            fields.sort(key=lambda kv: kv[0])
        return key_element(fields)
    if isinstance(item, dict):
        raise ItemError("associative list without keys has an element that's a map type")
    if isinstance(item, list):
        raise ItemError("not supported: associative list with lists as elements")
    if item is None:
        raise ItemError("associative list without keys has an element that's an explicit null")
    return value_element(item)


def _index_items(
    shape: Shape, items: list[Any]
) -> tuple[list[PathElement], dict[PathElement, Any]]:
    """Path elements in order (first occurrence only) and the item for each; a duplicated
    key maps to MISSING, since duplicates are never merged."""
    order: list[PathElement] = []
    found: dict[PathElement, Any] = {}
    for item in items:
        try:
            pe = item_element(shape, item)
        except ItemError:
            continue
        if pe in found:
            found[pe] = MISSING
            continue
        found[pe] = item
        order.append(pe)
    return order, found


# -- ToFieldSet -------------------------------------------------------------------------


def to_field_set(value: Any, shape: Shape) -> FieldSet:
    """The set of fields `value` specifies, as an applier would own them."""
    return _fields_of(value, shape)[1]


def _fields_of(value: Any, shape: Shape) -> tuple[bool, FieldSet]:
    """(whether the node itself is a member, the set below it)."""
    kind, atomic = _resolve(shape, value)
    if kind == "scalar" or atomic:
        return True, FieldSet()
    result = FieldSet()
    if kind == "list":
        if not isinstance(value, list):
            return False, result
        element = shape.element()
        seen: set[PathElement] = set()
        duplicates: set[PathElement] = set()
        pes: list[PathElement | None] = []
        for item in value:
            try:
                pe: PathElement | None = item_element(shape, item)
            except ItemError:
                pe = None
            pes.append(pe)
            if pe is None:
                continue
            if pe in seen:
                duplicates.add(pe)
            seen.add(pe)
        for item, item_pe in zip(value, pes, strict=True):
            if item_pe is None:
                continue
            result.members.add(item_pe)
            if item_pe in duplicates:
                continue
            _, below = _fields_of(item, element)
            result.add_child(item_pe, below)
        return False, result
    if not isinstance(value, dict):
        return False, result
    for name, child_value in value.items():
        pe = field_element(name)
        child_shape = shape.field(name) or UNTYPED
        member, below = _fields_of(child_value, child_shape)
        result.add_child(pe, below)
        if (
            member
            or child_value is None
            or (isinstance(child_value, dict) and not child_value)
            or not shape.declares(name)
        ):
            result.members.add(pe)
    return False, result


# -- Compare ----------------------------------------------------------------------------


@dataclass
class Comparison:
    added: FieldSet = field(default_factory=FieldSet)
    modified: FieldSet = field(default_factory=FieldSet)
    removed: FieldSet = field(default_factory=FieldSet)

    def exclude(self, fields: FieldSet) -> Comparison:
        if fields.empty():
            return self
        return Comparison(
            self.added.recursive_difference(fields),
            self.modified.recursive_difference(fields),
            self.removed.recursive_difference(fields),
        )


def compare(old: Any, new: Any, shape: Shape) -> Comparison:
    """Which fields `new` adds, modifies and removes relative to `old`."""
    result = Comparison()
    old = {} if _absent(old) else old
    new = {} if _absent(new) else new
    if _changed_fields(old, new, shape, result):
        return result
    result = Comparison()
    _compare(old, new, shape, (), result)
    return result


class _NotSimple(Exception):
    """A difference `_changed_fields` leaves to the full comparison."""


_SCALAR_VALUES: Final = (str, int, float, bool)


def _changed_fields(old: Any, new: Any, shape: Shape, out: Comparison) -> bool:
    """`_compare` for the common update: most of the object equal, the rest changed
    scalars, scalars added or removed, or new subtrees. Equal subtrees are told apart
    with `==` in C (confirmed by their JSON, which tells `true` from `1`); only the
    branches that differ are walked. False, with `out` partly filled, when the
    difference is of any other kind: the full comparison decides then."""
    if type(old) is not dict or type(new) is not dict:
        return False
    kind, atomic = _resolve(shape, old)
    if kind not in ("struct", "map") or atomic:
        return False
    try:
        _changed_in_map(old, new, shape, (), out)
    except _NotSimple:
        return False
    return True


def _equal_json(lhs: Any, rhs: Any) -> bool:
    """Whether two containers Python finds equal are equal as JSON too; raises _NotSimple
    when the encodings differ (`true` against `1`, `1` against `1.0`)."""
    try:
        if orjson.dumps(lhs, option=orjson.OPT_SORT_KEYS) == orjson.dumps(
            rhs, option=orjson.OPT_SORT_KEYS
        ):
            return True
    except TypeError:
        pass
    raise _NotSimple


def _changed_in_map(
    lmap: dict[str, Any], rmap: dict[str, Any], shape: Shape, path: Path, out: Comparison
) -> None:
    always_present = shape.always_present
    for name, lchild in lmap.items():
        rchild = rmap.get(name)
        if lchild is rchild:
            continue
        kind = type(lchild)
        if kind is type(rchild):
            if kind in _SCALAR_VALUES:
                if lchild != rchild:
                    out.modified.insert((*path, field_element(name)))
                continue
            if lchild == rchild:
                _equal_json(lchild, rchild)
                continue
        if name in always_present and (lchild is None or rchild is None):
            raise _NotSimple
        if rchild is None:
            if lchild is None:
                continue
            if kind not in _SCALAR_VALUES:
                raise _NotSimple
            out.removed.insert((*path, field_element(name)))
            continue
        child_shape = shape.field(name) or UNTYPED
        if lchild is None:
            _add(rchild, child_shape, (*path, field_element(name)), out.added)
            continue
        _changed_value(lchild, rchild, child_shape, (*path, field_element(name)), out)
    for name, rchild in rmap.items():
        if rchild is None or name in lmap:
            continue
        if name in always_present:
            raise _NotSimple
        _add(rchild, shape.field(name) or UNTYPED, (*path, field_element(name)), out.added)


def _changed_value(lhs: Any, rhs: Any, shape: Shape, path: Path, out: Comparison) -> None:
    """Both present (neither absent nor null)."""
    kind = type(lhs)
    if kind is not type(rhs):
        raise _NotSimple  # 1 against 1.0 is no change, true against 1 is: left to _compare
    if kind in _SCALAR_VALUES:
        if lhs != rhs:
            out.modified.insert(path)
        return
    if lhs == rhs:
        _equal_json(lhs, rhs)
        return
    resolved, atomic = _resolve(shape, lhs)
    if resolved == "scalar" or atomic:
        out.modified.insert(path)  # unequal in Python, so unequal as JSON
        return
    if kind is dict and resolved in ("struct", "map"):
        _changed_in_map(lhs, rhs, shape, path, out)
        return
    if kind is list and resolved == "list" and shape.list_keys:
        lorder, litems = _index_items(shape, lhs)
        rorder, ritems = _index_items(shape, rhs)
        if lorder != rorder or len(lorder) != len(lhs) or len(rorder) != len(rhs):
            raise _NotSimple  # items added, removed, moved, duplicated or unkeyed
        element = shape.element()
        for pe in lorder:
            litem, ritem = litems[pe], ritems[pe]
            if litem is not ritem:
                _changed_value(litem, ritem, element, (*path, pe), out)
        return
    raise _NotSimple


def _empty(value: Any) -> bool:
    return _absent(value) or (isinstance(value, (dict, list)) and not value)


def _compare(lhs: Any, rhs: Any, shape: Shape, path: Path, out: Comparison) -> None:
    if _same(lhs, rhs):
        return  # an equal subtree adds, modifies and removes nothing
    if _absent(lhs) and not _absent(rhs):
        _add(rhs, shape, path, out.added)  # the common case on create, walked directly
        return
    lkind, latomic = _resolve(shape, lhs)
    rkind, ratomic = _resolve(shape, rhs)
    kind = rkind if _absent(lhs) else lkind
    atomic = ratomic if _absent(lhs) else latomic
    in_leaf = (
        kind == "scalar"
        or atomic
        or (not _absent(lhs) and not _absent(rhs) and lkind != rkind)
        or (_empty(lhs) and _empty(rhs))
    )
    if in_leaf:
        if _absent(lhs):
            out.added.insert(path)
        elif _absent(rhs):
            out.removed.insert(path)
        elif not json_equal(lhs, rhs):
            out.modified.insert(path)
        return
    if kind == "list":
        element = shape.element()
        lorder, litems = _index_items(shape, lhs if isinstance(lhs, list) else [])
        rorder, ritems = _index_items(shape, rhs if isinstance(rhs, list) else [])
        for pe in lorder + [pe for pe in rorder if pe not in litems]:
            litem, ritem = litems.get(pe, MISSING), ritems.get(pe, MISSING)
            if litem is MISSING and ritem is MISSING:
                continue
            _compare(litem, ritem, element, (*path, pe), out)
    else:
        lmap = lhs if isinstance(lhs, dict) else {}
        rmap = rhs if isinstance(rhs, dict) else {}
        for name in list(lmap) + [k for k in rmap if k not in lmap]:
            lchild, rchild = lmap.get(name, MISSING), rmap.get(name, MISSING)
            child_shape = shape.field(name) or UNTYPED
            if name in shape.always_present:
                # Only where the parent itself exists: below a new item nothing is present.
                if not _absent(lhs):
                    lchild = _present(lchild, child_shape)
                if not _absent(rhs):
                    rchild = _present(rchild, child_shape)
            if _absent(lchild) and _absent(rchild):
                continue
            _compare(lchild, rchild, child_shape, (*path, field_element(name)), out)
    if path:
        if _absent(lhs):
            out.added.insert(path)
        elif _absent(rhs):
            out.removed.insert(path)


def _add(value: Any, shape: Shape, path: Path, added: FieldSet) -> None:
    """What `_compare` records for a subtree only the new object has: all of it added."""
    kind, atomic = _resolve(shape, value)
    if kind == "scalar" or atomic or _empty(value):
        added.insert(path)
        return
    if kind == "list":
        element = shape.element()
        order, items = _index_items(shape, value)
        for pe in order:
            item = items[pe]
            if item is not MISSING:  # a duplicated key: never merged, never owned
                _add(item, element, (*path, pe), added)
    else:
        for name, child in value.items():
            child_shape = shape.field(name) or UNTYPED
            if name in shape.always_present:
                child = _present(child, child_shape)
            if not _absent(child):
                _add(child, child_shape, (*path, field_element(name)), added)
    added.insert(path)


def created_fields_v1(new: Any, shape: Shape) -> dict[str, Any]:
    """The FieldsV1 trie of the fields `compare({}, new)` finds added or modified (what a
    create gives its manager), built in one walk: the same trie, in the same order, as
    `added.union(modified).to_fields_v1()`."""
    if _absent(new):
        return {}
    return _changed_from_empty({}, new, shape) or {}  # the object itself is nobody's


def _changed_from_empty(empty: Any, rhs: Any, shape: Shape) -> dict[str, Any] | None:
    """What `_compare(empty, rhs)` records below a node a Go object always carries
    (`empty` is its empty value): None for nothing, {} when the node itself is modified,
    otherwise the trie of its changed children (the node itself is not added)."""
    if _same(empty, rhs):
        return None
    lkind, latomic = _resolve(shape, empty)
    rkind, _ = _resolve(shape, rhs)
    if lkind == "scalar" or latomic or lkind != rkind or _empty(rhs):
        return None if json_equal(empty, rhs) else {}
    children: dict[str, Any] = {}
    if lkind == "list":
        element = shape.element()
        order, items = _index_items(shape, rhs)
        for pe in order:
            item = items[pe]
            if item is not MISSING:
                children[pe] = _added_fields_v1(item, element)
        return _sorted_items(children) if children else None
    always_present = shape.always_present
    for name, child in rhs.items():
        if type(child) in _SCALAR_VALUES and name not in always_present:
            children[field_element(name)] = {}  # a scalar is a leaf under any shape
            continue
        child_shape = shape.field(name) or UNTYPED
        if name in always_present:
            body = _changed_from_empty(
                _present(MISSING, child_shape), _present(child, child_shape), child_shape
            )
            if body is not None:
                children[field_element(name)] = body
        elif not _absent(child):
            children[field_element(name)] = _added_fields_v1(child, child_shape)
    return _sorted_fields(children) if children else None


def _added_fields_v1(value: Any, shape: Shape) -> dict[str, Any]:
    """The FieldsV1 body of a subtree `_add` records: the node and everything below it."""
    kind, atomic = _resolve(shape, value)
    if kind == "scalar" or atomic or _empty(value):
        return {}
    children: dict[str, Any] = {}
    if kind == "list":
        element = shape.element()
        order, items = _index_items(shape, value)
        for pe in order:
            item = items[pe]
            if item is not MISSING:  # a duplicated key: never merged, never owned
                children[pe] = _added_fields_v1(item, element)
        if not children:
            return {}
        return {".": {}, **_sorted_items(children)}
    always_present = shape.always_present
    for name, child in value.items():
        if type(child) in _SCALAR_VALUES:
            children[field_element(name)] = {}  # a scalar is a leaf under any shape
            continue
        child_shape = shape.field(name) or UNTYPED
        if name in always_present:
            child = _present(child, child_shape)
        if not _absent(child):
            children[field_element(name)] = _added_fields_v1(child, child_shape)
    if not children:
        return {}
    return {".": {}, **_sorted_fields(children)}


def _sorted_fields(children: dict[str, Any]) -> dict[str, Any]:
    """Field elements in FieldsV1 order: by name (all share the `f:` prefix)."""
    return children if len(children) < 2 else dict(sorted(children.items()))


def _sorted_items(children: dict[str, Any]) -> dict[str, Any]:
    if len(children) < 2:
        return children
    return dict(sorted(children.items(), key=lambda pair: element_order(pair[0])))


def _same(lhs: Any, rhs: Any) -> bool:
    """Both present and equal as JSON. Python's `==` (in C) rules most pairs out cheaply;
    it also holds between a boolean and a number, which JSON tells apart: equal
    encodings settle that quickly too, and anything else (1 against 1.0) is compared
    as JSON in full."""
    if _absent(lhs) or _absent(rhs):
        return False
    if lhs is rhs:
        return True
    if type(lhs) is not type(rhs) or lhs != rhs:
        return False
    if type(lhs) in _SCALAR_VALUES:
        return True  # equal values of one scalar type: equal as JSON
    try:
        if orjson.dumps(lhs, option=orjson.OPT_SORT_KEYS) == orjson.dumps(
            rhs, option=orjson.OPT_SORT_KEYS
        ):
            return True
    except TypeError:
        pass  # not encodable as JSON (a key that is not a string): compare it in full
    return json_equal(lhs, rhs)


def _present(value: Any, shape: Shape) -> Any:
    """A field Go always carries: absent reads as its empty value."""
    if not _absent(value):
        return value
    return [] if shape.kind == "list" else {}


# -- Merge ------------------------------------------------------------------------------


def merge(live: Any, config: Any, shape: Shape) -> Any:
    """`config` merged into `live`: config wins on leaves, list-maps and sets merge by
    item, atomic nodes are replaced. Explicit nulls in config clear leaves."""
    result = _merge(live, config, shape)
    return {} if result is MISSING else result


def _merge(lhs: Any, rhs: Any, shape: Shape) -> Any:
    if lhs is None:
        lhs = MISSING
    lkind, latomic = _resolve(shape, lhs)
    rkind, ratomic = _resolve(shape, rhs)
    kind, atomic = (rkind, ratomic) if lhs is MISSING else (lkind, latomic)
    if (
        kind == "scalar"
        or atomic
        or (lhs is not MISSING and not _absent(rhs) and lkind != rkind)
        or (_empty(lhs) and _empty(rhs))
    ):
        return rhs if rhs is not MISSING else lhs
    if kind == "list":
        merged = _merge_list(
            lhs if isinstance(lhs, list) else [], rhs if isinstance(rhs, list) else [], shape
        )
        return merged if merged else MISSING
    lmap = lhs if isinstance(lhs, dict) else {}
    rmap = rhs if isinstance(rhs, dict) else {}
    out: dict[str, Any] = {}
    for name in list(lmap) + [k for k in rmap if k not in lmap]:
        child = _merge(
            lmap.get(name, MISSING), rmap.get(name, MISSING), shape.field(name) or UNTYPED
        )
        if child is not MISSING and child is not None:
            out[name] = child
    return out if out else MISSING


def _merge_list(lhs: list[Any], rhs: list[Any], shape: Shape) -> list[Any]:
    """Merge two associative lists keeping the live order and placing new items where the
    configuration puts them (structured-merge-diff's visitListItems)."""
    element = shape.element()
    rpes, ritems = _index_items(shape, rhs)
    lpes_all: list[PathElement] = []
    litems: dict[PathElement, Any] = {}
    lvalues: list[Any] = []
    for item in lhs:
        try:
            pe = item_element(shape, item)
        except ItemError:
            continue
        litems[pe] = MISSING if pe in litems else item
        lpes_all.append(pe)
        lvalues.append(item)
    shared = [pe for pe in rpes if pe in litems]
    next_shared = shared.pop(0) if shared else None
    merged_rhs: set[PathElement] = set()
    out: list[Any] = []

    def emit(litem: Any, ritem: Any) -> None:
        merged = _merge(litem, ritem, element)
        if merged is not MISSING:
            out.append(merged)

    li = ri = 0
    lcount, rcount = len(lpes_all), len(rpes)
    while li < lcount or ri < rcount:
        if li < lcount and ri < rcount:
            pe = lpes_all[li]
            if pe == rpes[ri]:
                merged_rhs.add(pe)
                emit(litems[pe], ritems[pe])
                li += 1
                ri += 1
                next_shared = shared.pop(0) if shared else None
                continue
            if pe in ritems and next_shared is not None and next_shared != pe:
                li += 1
                continue
        if li < lcount:
            pe = lpes_all[li]
            if pe not in ritems:
                emit(lvalues[li], MISSING)
                li += 1
                continue
            if pe in merged_rhs:
                li += 1
        if ri < rcount:
            pe = rpes[ri]
            merged_rhs.add(pe)
            emit(litems.get(pe, MISSING), ritems[pe])
            ri += 1
            if next_shared is not None and next_shared == pe:
                next_shared = shared.pop(0) if shared else None
    return out


# -- RemoveItems ------------------------------------------------------------------------


def remove_items(value: Any, fields: FieldSet, shape: Shape) -> Any:
    """`value` without the members of `fields` (each removed with everything below it)."""
    result = _remove(value, fields, shape)
    return {} if result is MISSING else result


def _remove(value: Any, fields: FieldSet, shape: Shape) -> Any:
    kind, atomic = _resolve(shape, value)
    if kind == "scalar":
        return value
    if kind == "list":
        if not isinstance(value, list) or not value or atomic:
            return MISSING
        element = shape.element()
        kept: list[Any] = []
        for item in value:
            try:
                pe = item_element(shape, item)
            except ItemError:
                kept.append(item)
                continue
            if pe in fields.members:
                continue
            below = fields.children.get(pe)
            if below is not None:
                item = _remove(item, below, element)
                if item is MISSING:
                    continue
            kept.append(item)
        return kept if kept else MISSING
    if not isinstance(value, dict) or not value or atomic:
        return MISSING
    out: dict[str, Any] = {}
    for name, child in value.items():
        pe = field_element(name)
        if pe in fields.members:
            continue
        below = fields.children.get(pe)
        if below is not None:
            child = _remove(child, below, shape.field(name) or UNTYPED)
            if child is MISSING:
                continue
        if child is not None:
            out[name] = child
    return out if out else MISSING


def ensure_named_fields_are_members(fields: FieldSet, shape: Shape) -> FieldSet:
    """`fields` plus every struct field on the way to its members (not map keys, not items)."""
    members = set(fields.members)
    children: dict[PathElement, FieldSet] = {}
    for pe, below in fields.children.items():
        child_shape: Shape = UNTYPED
        if pe.startswith("f:"):
            name = pe[2:]
            if shape.declares(name):
                members.add(pe)
            if shape.kind in ("struct", "map"):
                child_shape = shape.field(name) or UNTYPED
        elif pe.startswith("k:") and shape.kind == "list":
            child_shape = shape.element()
        children[pe] = ensure_named_fields_are_members(below, child_shape)
    return FieldSet(members, children)


# -- Validation -------------------------------------------------------------------------


def validate(value: Any, shape: Shape) -> list[str]:
    """Why `value` does not fit `shape`, one message per problem, prefixed with the path."""
    errors: list[str] = []
    _validate(value, shape, (), errors)
    return errors


def _validate(value: Any, shape: Shape, path: Path, errors: list[str]) -> None:
    def report(message: str) -> None:
        errors.append(f"{path_string(path)}: {message}" if path else message)

    if value is None:
        return
    kind = shape.kind
    if kind == "untyped":
        if isinstance(value, dict):
            for name, child in value.items():
                _validate(child, UNTYPED, (*path, field_element(name)), errors)
        return
    if kind == "scalar":
        _validate_scalar(value, shape, report)
        return
    if kind == "list":
        if not isinstance(value, list):
            report(f"expected list, got &{{{go_v(value)}}}")
            return
        element = shape.element()
        seen: set[PathElement] = set()
        for index, item in enumerate(value):
            if shape.list_type == "atomic":
                _validate(item, element, (*path, f"i:{index}"), errors)
                continue
            try:
                pe = item_element(shape, item)
            except ItemError as error:
                report(f"element {index}: {error}")
                return
            if pe in seen:
                report(f"duplicate entries for key {element_string(pe)}")
            seen.add(pe)
            _validate(item, element, (*path, pe), errors)
        return
    if not isinstance(value, dict):
        report(f"expected map, got &{{{go_v(value)}}}")
        return
    for name, child in value.items():
        child_shape = shape.field(name)
        if child_shape is None:
            errors.append(
                f"{path_string((*path, field_element(name)))}: field not declared in schema"
            )
            return
        _validate(child, child_shape, (*path, field_element(name)), errors)


def _validate_scalar(value: Any, shape: Shape, report: Callable[[str], None]) -> None:
    """validateScalar: numeric, string and boolean schemas check the value's type; mixed
    ones (int-or-string, quantities) only that it is a scalar."""
    types = set(shape.node.types) if shape.node is not None else set()
    if shape.node is not None and shape.node.raw.get("x-kubernetes-int-or-string"):
        types = {"string", "integer"}
    if types and types <= {"integer", "number"}:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            report(f"expected numeric (int or float), got {go_type_name(value)}")
    elif types == {"string"}:
        if not isinstance(value, str):
            report(f"expected string, got &value.valueUnstructured{{Value:{go_v(value)}}}")
    elif types == {"boolean"}:
        if not isinstance(value, bool):
            report(f"expected boolean, got &{{{go_v(value)}}}")
    elif isinstance(value, (dict, list)):
        report(f"expected any scalar, got &{{{go_v(value)}}}")


def strip_none(value: Any) -> Any:
    """A copy without null map values, as a decoded Go object would have."""
    if isinstance(value, dict):
        return {k: strip_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [strip_none(v) for v in value]
    return value
