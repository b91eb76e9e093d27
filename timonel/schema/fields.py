"""Structural checks of a written object against its schema, worded as kube-apiserver words them.

kube-apiserver decodes a request body into Go structs. That decoding is where three kinds
of problems surface, and this module reproduces them on plain JSON objects:

* unknown fields (strict decoding): `unknown field "spec.template.spec.containers[0].imagePullPolcy"`;
  the API server fails, warns or ignores them per `fieldValidation=Strict|Warn|Ignore`;
* JSON values of the wrong type, always a 400 BadRequest:
  `json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of type int32`;
* values a custom decoder rejects: a malformed Quantity, a Secret value that is not base64,
  a timestamp that is not RFC 3339.

`check_object` reports unknown fields and type errors apart, `prune_unknown` drops unknown
fields as decoding into Go structs does. Both also serve CRD structural schemas
(`schema_from_openapi`): there a wrong type is not a decoding error but a 422 from value
validation, which `validate_custom_resource` performs with kube-openapi's wording.

A schema is compiled once per definition and cached; a check is one walk over the object.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import ipaddress
import json
import math
import re
import uuid
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final

import orjson

from timonel.api import errors
from timonel.api.errors import ErrorType, FieldError, StatusError
from timonel.api.objects import Object
from timonel.schema.definitions import (
    OBJECT_META,
    Definitions,
    SchemaNode,
    ref_name,
    schema_from_openapi,
)

__all__ = [
    "FieldCheck",
    "check_object",
    "decode_error",
    "go_quote",
    "prune_unknown",
    "quantity_problem",
    "schema_from_openapi",
    "validate_custom_resource",
]

# -- compiled schemas -------------------------------------------------------------------

# Shapes of a compiled node: what JSON value fits and how to walk into it.
_OBJECT: Final = 0  # a struct: known fields, each with its own schema
_MAP: Final = 1  # a map: any keys, one value schema
_LIST: Final = 2
_STRING: Final = 3
_INTEGER: Final = 4
_NUMBER: Final = 5
_BOOLEAN: Final = 6
_ANY: Final = 7  # any JSON value, nothing below it is checked
_INT_OR_STRING: Final = 8
_QUANTITY: Final = 9
_TIME: Final = 10
_MICRO_TIME: Final = 11
_BYTES: Final = 12

_SPECIAL_DEFINITIONS: Final = {
    "io.k8s.apimachinery.pkg.util.intstr.IntOrString": _INT_OR_STRING,
    "io.k8s.apimachinery.pkg.api.resource.Quantity": _QUANTITY,
    "io.k8s.apimachinery.pkg.apis.meta.v1.Time": _TIME,
    "io.k8s.apimachinery.pkg.apis.meta.v1.MicroTime": _MICRO_TIME,
    # Types with their own decoders that take any JSON.
    "io.k8s.apimachinery.pkg.runtime.RawExtension": _ANY,
    "io.k8s.apimachinery.pkg.apis.meta.v1.FieldsV1": _ANY,
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSON": _ANY,
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrArray": _ANY,
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrBool": _ANY,
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrStringArray": _ANY,
}
_SPECIAL_GO_TYPES: Final = {
    _INT_OR_STRING: "intstr.IntOrString",
    _QUANTITY: "resource.Quantity",
    _TIME: "v1.Time",
    _MICRO_TIME: "v1.MicroTime",
    _ANY: "interface {}",
}
_INT32_RANGE: Final = (-(2**31), 2**31 - 1)
_INT64_RANGE: Final = (-(2**63), 2**63 - 1)


class _Compiled:
    """What one schema node means for decoding, precomputed."""

    __slots__ = (
        "element",
        "fields",
        "go_type",
        "go_typed",
        "int_range",
        "nullable",
        "open",
        "shape",
        "struct",
    )

    def __init__(self, shape: int, *, go_typed: bool) -> None:
        self.shape = shape
        self.go_typed = go_typed  # a Go struct field: wrong JSON types are decoding errors
        self.go_type = ""  # reflect.Type.String() of the Go field, for error messages
        self.struct = ""  # Go struct name, the error context of its fields
        self.fields: dict[str, _Compiled] = {}
        self.element: _Compiled | None = None  # list items, map values
        self.open = False  # unknown fields are kept (x-kubernetes-preserve-unknown-fields)
        self.nullable = True
        self.int_range = _INT64_RANGE


_ANY_NODE: Final = _Compiled(_ANY, go_typed=False)
_ANY_NODE.go_type = "interface {}"
_ANY_NODE.open = True

_compiled_cache: weakref.WeakKeyDictionary[Definitions, dict[str | int, _Compiled]] = (
    weakref.WeakKeyDictionary()
)


def _cache_of(defs: Definitions) -> dict[str | int, _Compiled]:
    cache = _compiled_cache.get(defs)
    if cache is None:
        cache = _compiled_cache[defs] = {}
    return cache


def _compiled_for(node: SchemaNode) -> _Compiled:
    defs = node.definitions
    if node.name and node.name not in defs.raw and defs.base is not None:
        return _compiled_named(defs.base, node.name)
    raw = defs.raw.get(node.name) if node.name else None
    return _compile(
        defs, raw if raw is not None else node.raw, node.name, _cache_of(defs), root=True
    )


def _compiled_named(defs: Definitions, name: str) -> _Compiled:
    """The compiled definition `name`, from the set that defines it (shared by CRD sets)."""
    while name not in defs.raw and defs.base is not None:
        defs = defs.base
    raw = defs.raw.get(name)
    return _ANY_NODE if raw is None else _compile(defs, raw, name, _cache_of(defs))


def _go_type_name(definition: str) -> tuple[str, str]:
    """(`v1.DeploymentSpec`, `DeploymentSpec`) for `io.k8s.api.apps.v1.DeploymentSpec`."""
    parts = definition.split(".")
    name = parts[-1]
    return (f"{parts[-2]}.{name}" if len(parts) > 1 else name), name


def _compile(
    defs: Definitions,
    raw: Mapping[str, Any],
    name: str,
    cache: dict[str | int, _Compiled],
    *,
    root: bool = False,
) -> _Compiled:
    ref = raw.get("$ref")
    if isinstance(ref, str):
        target = ref_name(ref)
        if target not in defs.raw:
            return _compiled_named(defs, target) if defs.base is not None else _ANY_NODE
        raw, name = defs.raw[target], target
    key: str | int = name or id(raw)
    found = cache.get(key)
    if found is not None:
        return found

    structural = defs.structural
    special = _SPECIAL_DEFINITIONS.get(name)
    if special is not None:
        node = _Compiled(special, go_typed=not structural)
        node.go_type = _SPECIAL_GO_TYPES[special]
        node.open = special == _ANY
        cache[key] = node
        return node

    types = _types(raw)
    properties = raw.get("properties")
    additional = raw.get("additionalProperties")
    node = _Compiled(_ANY, go_typed=not structural)
    cache[key] = node  # before descending: definitions refer to themselves (JSONSchemaProps)
    node.nullable = bool(raw.get("nullable")) if structural else True
    if structural and raw.get("x-kubernetes-int-or-string"):
        node.shape = _INT_OR_STRING
        node.go_type = _SPECIAL_GO_TYPES[_INT_OR_STRING]
    elif "object" in types or isinstance(properties, dict) or isinstance(additional, dict):
        node.open = bool(raw.get("x-kubernetes-preserve-unknown-fields"))
        if isinstance(properties, dict) or (structural and not isinstance(additional, dict)):
            node.shape = _OBJECT
            go_type, struct = _go_type_name(name) if name else ("struct {}", "")
            node.go_type, node.struct = go_type, struct
            for field_name, prop in (properties or {}).items():
                node.fields[field_name] = _compile(defs, prop, "", cache)
            if structural and (root or raw.get("x-kubernetes-embedded-resource")):
                _add_type_meta(defs, node, cache)
        elif isinstance(additional, dict):
            node.shape = _MAP
            element = _compile(defs, additional, "", cache)
            node.element = element
            node.go_type = (
                "v1.ResourceList" if element.shape == _QUANTITY else f"map[string]{element.go_type}"
            )
        else:
            node.shape, node.open, node.go_type = _ANY, True, "map[string]interface {}"
    elif "array" in types:
        node.shape = _LIST
        items = raw.get("items")
        element = _compile(defs, items, "", cache) if isinstance(items, dict) else _ANY_NODE
        node.element = element
        node.go_type = "[]" + element.go_type
    elif "string" in types:
        if raw.get("format") == "byte" and not structural:
            node.shape, node.go_type = _BYTES, "[]uint8"
        else:
            node.shape, node.go_type = _STRING, "string"
    elif "integer" in types:
        node.shape = _INTEGER
        if raw.get("format") == "int32":
            node.go_type, node.int_range = "int32", _INT32_RANGE
        else:
            node.go_type = "int64"
    elif "number" in types:
        node.shape, node.go_type = _NUMBER, "float64"
    elif "boolean" in types:
        node.shape, node.go_type = _BOOLEAN, "bool"
    else:
        node.shape, node.open, node.go_type = _ANY, True, "interface {}"
    return node


def _add_type_meta(defs: Definitions, node: _Compiled, cache: dict[str | int, _Compiled]) -> None:
    """A custom resource and an embedded resource always carry apiVersion, kind, metadata."""
    string = _Compiled(_STRING, go_typed=False)
    string.go_type = "string"
    node.fields.setdefault("apiVersion", string)
    node.fields.setdefault("kind", string)
    if defs.lookup(OBJECT_META) is not None:
        node.fields["metadata"] = _compiled_named(defs, OBJECT_META)


def _types(raw: Mapping[str, Any]) -> tuple[str, ...]:
    value = raw.get("type")
    if value is None:
        return ()
    types = value if isinstance(value, list) else [value]
    return tuple(t for t in types if t != "null")


# -- checking -----------------------------------------------------------------------------

_MAX_STRICT_ERRORS: Final = 100  # the decoder stops collecting unknown fields past this


@dataclass
class FieldCheck:
    """What decoding an object into its Go type found wrong.

    `unknown` holds the paths of unknown fields, in document order, as strict decoding
    names them (`spec.template.spec.containers[0].imagePullPolcy`). `type_errors` holds
    decoding errors; kube-apiserver reports only the first."""

    unknown: list[str] = field(default_factory=list)
    type_errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.unknown and not self.type_errors

    def unknown_field_messages(self) -> list[str]:
        """One per unknown field: `unknown field "spec.foo"` (also the Warning header text)."""
        return [f"unknown field {go_quote(path)}" for path in self.unknown]

    def strict_error(self) -> str:
        """`strict decoding error: unknown field "spec.foo", unknown field "spec.bar"`."""
        return "strict decoding error: " + ", ".join(self.unknown_field_messages())

    def status_error(self, kind: str, version: str, field_validation: str) -> StatusError | None:
        """The 400 kube-apiserver answers for this body, if any: a type error always,
        unknown fields only under `fieldValidation=Strict`."""
        if self.type_errors:
            return decode_error(kind, version, self.type_errors[0])
        if self.unknown and field_validation == "Strict":
            return decode_error(kind, version, self.strict_error())
        return None

    def patch_status_error(self, patched: str, field_validation: str) -> StatusError | None:
        """The error kube-apiserver answers when a JSON, merge or strategic merge patch
        produces this object: a 422 on field `patch` whose value is the patched object
        (`patched`, as JSON) and whose detail is the decoding error."""
        if self.type_errors:
            detail = self.type_errors[0]
        elif self.unknown and field_validation == "Strict":
            detail = self.strict_error()
        else:
            return None
        return errors.invalid("", "", "", [errors.invalid_value("patch", patched, detail)])


def decode_error(kind: str, version: str, detail: str) -> StatusError:
    """`Deployment in version "v1" cannot be handled as a Deployment: <detail>` (400)."""
    return errors.bad_request(
        f"{kind} in version {go_quote(version)} cannot be handled as a {kind}: {detail}"
    )


def check_object(
    node: SchemaNode, obj: Object, *, unchanged_from: Object | None = None
) -> FieldCheck:
    """Decode `obj` against `node` the way kube-apiserver decodes a request body.

    `unchanged_from` is a stored version of the object (an update's live object): it
    passed this check when it was written, so what `obj` keeps of it unchanged (same
    values of the same JSON types) is not checked again. Only built-in kinds use it: a
    custom resource's schema may have changed since."""
    check = FieldCheck()
    compiled = _compiled_for(node)
    body: Any = obj  # bodies come from clients: not necessarily an object
    if not isinstance(body, dict):
        check.type_errors.append(
            f"json: cannot unmarshal {_json_word(body)} into Go value of type {compiled.go_type}"
        )
        return check
    walker = _Walker(check)
    if type(unchanged_from) is dict and not node.structural:
        walker.walk_changes(compiled, obj, unchanged_from, compiled.struct)
    else:
        walker.walk(compiled, obj, compiled.struct)
    return check


_SCALAR_VALUES: Final = (str, int, float, bool)


def _unchanged(value: Any, stored: Any) -> bool:
    """Equal and of the same JSON types throughout (Python's `==` finds `true == 1` and
    `1 == 1.0`, which decode differently); containers are confirmed by their JSON."""
    if value is stored:
        return True
    kind = type(value)
    if kind is not type(stored):
        return False
    if kind in _SCALAR_VALUES:
        return bool(value == stored)
    if value != stored:
        return False
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS) == orjson.dumps(
            stored, option=orjson.OPT_SORT_KEYS
        )
    except TypeError:
        return False


def prune_unknown(node: SchemaNode, obj: Object) -> None:
    """Remove, in place, the fields decoding would drop: unknown fields and, for CRD
    structural schemas, null values of fields that are not `nullable`."""
    if isinstance(obj, dict):
        _prune(_compiled_for(node), obj)


def _prune(node: _Compiled, value: Any) -> None:
    shape = node.shape
    if shape == _OBJECT:
        if type(value) is not dict:
            return
        fields = node.fields
        for key in list(value):
            child = fields.get(key)
            if child is None:
                if not node.open:
                    del value[key]
                continue
            sub = value[key]
            if sub is None:
                if not child.go_typed and not child.nullable:
                    del value[key]
                continue
            if child.shape <= _LIST:
                _prune(child, sub)
    elif shape == _MAP:
        if type(value) is not dict:
            return
        element = node.element
        assert element is not None
        for key in list(value):
            sub = value[key]
            if sub is None:
                if not element.go_typed and not element.nullable:
                    del value[key]
            elif element.shape <= _LIST:
                _prune(element, sub)
    elif shape == _LIST:
        if type(value) is not list:
            return
        element = node.element
        assert element is not None
        if element.shape <= _LIST:
            for sub in value:
                _prune(element, sub)


def _json_word(value: Any) -> str:
    """How Go's decoder names a JSON value in `cannot unmarshal <word>`."""
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    return "null"


def _number_text(value: float) -> str:
    """The JSON text of a number as the client most likely wrote it."""
    return repr(value) if isinstance(value, float) else str(value)


class _Aborted(Exception):
    """A custom decoder failed: Go's decoder stops at once and reports that error."""


class _Walker:
    __slots__ = ("check", "go_fields", "seen", "strict")

    def __init__(self, check: FieldCheck) -> None:
        self.check = check
        self.strict: list[str] = []  # strict-decoding path segments: "spec", ".template", "[0]"
        self.go_fields: list[str] = []  # Go error context: struct field names only
        self.seen: set[str] = set()

    def walk(self, node: _Compiled, value: Any, struct: str) -> None:
        with contextlib.suppress(_Aborted):
            self._walk(node, value, struct)

    def walk_changes(self, node: _Compiled, value: Any, stored: Any, struct: str) -> None:
        with contextlib.suppress(_Aborted):
            self._walk_changes(node, value, stored, struct)

    def _walk_changes(self, node: _Compiled, value: Any, stored: Any, struct: str) -> None:
        """`_walk` of what `value` changes relative to `stored`, a value at the same place
        that passed the check: children equal to their stored versions are skipped."""
        shape = node.shape
        if shape == _LIST:
            comparable = type(value) is list and type(stored) is list
        else:
            comparable = shape in (_OBJECT, _MAP) and type(value) is dict and type(stored) is dict
        if not comparable:
            self._walk(node, value, struct)
            return
        strict = self.strict
        if shape == _LIST:
            element = node.element
            assert element is not None
            if element.shape == _ANY:
                return
            count = len(stored)
            for index, sub in enumerate(value):
                if sub is None:
                    continue
                before = stored[index] if index < count else None
                if before is not None and _unchanged(sub, before):
                    continue
                strict.append(f"[{index}]")
                self._walk_changes(element, sub, before, struct)
                strict.pop()
            return
        mapping: dict[str, Any] = value
        if shape == _MAP:
            element = node.element
            assert element is not None
            if element.shape == _STRING:
                self._walk(node, value, struct)  # one cheap loop, nothing to skip
                return
            for key, sub in mapping.items():
                if sub is None:
                    continue
                before = stored.get(key)
                if before is not None and _unchanged(sub, before):
                    continue
                strict.append("." + key if strict else key)
                self._walk_changes(element, sub, before, struct)
                strict.pop()
            return
        fields = node.fields
        go_fields = self.go_fields
        for key, sub in mapping.items():
            child = fields.get(key)
            if child is None:
                if not node.open:
                    self._unknown(key)
                continue
            if sub is None or child.shape == _ANY:
                continue
            before = stored.get(key)
            if before is not None and _unchanged(sub, before):
                continue
            strict.append("." + key if strict else key)
            go_fields.append(key)
            self._walk_changes(child, sub, before, node.struct or struct)
            go_fields.pop()
            strict.pop()

    def _unknown(self, key: str) -> None:
        path = "".join(self.strict) + "." + key if self.strict else key
        if path in self.seen or len(self.check.unknown) >= _MAX_STRICT_ERRORS:
            return
        self.seen.add(path)
        self.check.unknown.append(path)

    def _context(self, struct: str) -> str:
        fields = ".".join(self.go_fields)
        if struct or fields:
            return f"Go struct field {struct}.{fields}"
        return "Go value"

    def _type_error(self, node: _Compiled, word: str, struct: str, go_type: str = "") -> None:
        self.check.type_errors.append(
            f"json: cannot unmarshal {word} into {self._context(struct)} of type {go_type or node.go_type}"
        )

    def _abort(self, message: str) -> None:
        self.check.type_errors.insert(0, message)
        raise _Aborted

    def _walk(self, node: _Compiled, value: Any, struct: str) -> None:
        shape = node.shape
        kind = type(value)
        if shape == _OBJECT:
            if kind is not dict:
                if node.go_typed:
                    self._type_error(node, _json_word(value), struct)
                return
            fields = node.fields
            strict = self.strict
            go_fields = self.go_fields
            for key, sub in value.items():
                child = fields.get(key)
                if child is None:
                    if not node.open:
                        self._unknown(key)
                    continue
                if sub is None or child.shape == _ANY:
                    continue
                strict.append("." + key if strict else key)
                go_fields.append(key)
                self._walk(child, sub, node.struct or struct)
                go_fields.pop()
                strict.pop()
        elif shape == _MAP:
            if kind is not dict:
                if node.go_typed:
                    self._type_error(node, _json_word(value), struct)
                return
            element = node.element
            assert element is not None
            if element.shape == _STRING:
                for sub in value.values():
                    if type(sub) is not str and sub is not None and element.go_typed:
                        self._type_error(element, _json_word(sub), struct)
                        break
                return
            strict = self.strict
            for key, sub in value.items():
                if sub is None:
                    continue
                strict.append("." + key if strict else key)
                self._walk(element, sub, struct)
                strict.pop()
        elif shape == _LIST:
            if kind is not list:
                if node.go_typed:
                    self._type_error(node, _json_word(value), struct)
                return
            element = node.element
            assert element is not None
            if element.shape == _ANY:
                return
            strict = self.strict
            for index, sub in enumerate(value):
                if sub is None:
                    continue
                strict.append(f"[{index}]")
                self._walk(element, sub, struct)
                strict.pop()
        elif not node.go_typed:
            return
        elif shape == _STRING:
            if kind is not str:
                self._type_error(node, _json_word(value), struct)
        elif shape == _INTEGER:
            word = _integer_problem(value, node.int_range)
            if word:
                self._type_error(node, word, struct)
        elif shape == _NUMBER:
            if kind is bool or kind not in (int, float):
                self._type_error(node, _json_word(value), struct)
        elif shape == _BOOLEAN:
            if kind is not bool:
                self._type_error(node, _json_word(value), struct)
        elif shape == _INT_OR_STRING:
            if kind is not str:
                word = _integer_problem(value, _INT32_RANGE)
                if word:
                    # IntOrString decodes numbers into an int32 itself; the context is kept.
                    self._abort(
                        f"json: cannot unmarshal {word} into {self._context(struct)} of type int32"
                    )
        elif shape == _QUANTITY:
            text = (
                value
                if kind is str
                else json.dumps(value)
                if kind in (dict, list, bool)
                else _number_text(value)
            )
            problem = quantity_problem(text.strip())
            if problem:
                self._abort(problem)
        elif shape in (_TIME, _MICRO_TIME):
            if kind is not str:
                self._abort(
                    f"json: cannot unmarshal {_json_word(value)} into {self._context(struct)} of type string"
                )
            problem = _time_problem(value, micro=shape == _MICRO_TIME)
            if problem:
                self._abort(problem)
        elif shape == _BYTES:
            if kind is str:
                offset = go_base64_error(value)
                if offset is not None:
                    self.check.type_errors.append(f"illegal base64 data at input byte {offset}")
            elif kind is list:
                for item in value:
                    word = _integer_problem(item, (0, 255))
                    if word:
                        self._type_error(node, word, struct, "uint8")
                        break
            else:
                self._type_error(node, _json_word(value), struct)


def _integer_problem(value: Any, bounds: tuple[int, int]) -> str:
    """The `cannot unmarshal` word for a value that does not fit an integer field, or ""."""
    kind = type(value)
    if kind is int:
        if bounds[0] <= value <= bounds[1]:
            return ""
        return f"number {value}"
    if kind is float:
        return f"number {_number_text(value)}"
    return _json_word(value)


# -- custom decoders ------------------------------------------------------------------------

QUANTITY_FORMAT_ERROR: Final = (
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
)
QUANTITY_NUMERIC_ERROR: Final = "unable to parse numeric part of quantity"
QUANTITY_SUFFIX_ERROR: Final = "unable to parse quantity's suffix"
_DIGITS: Final = frozenset("0123456789")
_SUFFIX_CHARS: Final = frozenset("eEinumkKMGTP")
_DECIMAL_SUFFIXES: Final = {
    "": 0,
    "n": -9,
    "u": -6,
    "m": -3,
    "k": 3,
    "M": 6,
    "G": 9,
    "T": 12,
    "P": 15,
    "E": 18,
}
_BINARY_SUFFIXES: Final = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DECIMAL_NUMBER: Final = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)")
_SIGNED_INTEGER: Final = re.compile(r"[+-]?[0-9]+")


def quantity_problem(text: str) -> str | None:
    """Why resource.ParseQuantity rejects `text`, in its words; None when it parses."""
    if not text:
        return QUANTITY_FORMAT_ERROR
    if text == "0":
        return None
    end = len(text)
    pos = 1 if text[0] in "+-" else 0
    while pos < end and text[pos] == "0":
        pos += 1
    if pos >= end:
        return None
    start = pos
    while pos < end and text[pos] in _DIGITS:
        pos += 1
    numerator = text[start:pos] or "0"
    denominator = ""
    if pos < end and text[pos] == ".":
        pos += 1
        start = pos
        while pos < end and text[pos] in _DIGITS:
            pos += 1
        denominator = text[start:pos]
    value = text[:pos]
    suffix_start = pos
    while pos < end and text[pos] in _SUFFIX_CHARS:
        pos += 1
    if pos < end:
        if text[pos] in "+-":
            pos += 1
        while pos < end:
            if text[pos] not in _DIGITS:
                return QUANTITY_FORMAT_ERROR
            pos += 1
    suffix = text[suffix_start:]

    if suffix in _DECIMAL_SUFFIXES:
        precision = 18 - len(numerator) - len(denominator)
        scale = _DECIMAL_SUFFIXES[suffix]
    elif suffix in _BINARY_SUFFIXES:
        exponent = _BINARY_SUFFIXES[suffix]
        scale = 0
        precision = 15 - len(numerator) - int(exponent * 3 / 10) - 1 if not denominator else -1
    elif len(suffix) > 1 and suffix[0] in "eE" and _SIGNED_INTEGER.fullmatch(suffix[1:]):
        scale = int(suffix[1:])
        if not -(2**63) <= scale < 2**63:
            return QUANTITY_SUFFIX_ERROR
        precision = 18 - len(numerator) - len(denominator)
    else:
        return QUANTITY_SUFFIX_ERROR
    if precision >= 0 and scale - len(denominator) >= -9:
        return None
    return None if _DECIMAL_NUMBER.fullmatch(value) else QUANTITY_NUMERIC_ERROR


_BASE64_ALPHABET: Final = frozenset(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
)


def go_base64_error(text: str) -> int | None:
    """The offset Go's padded standard base64 decoder reports for `text`, None when valid."""
    data = text.encode()
    end = len(data)
    index = 0
    while index < end:
        filled = 0
        while filled < 4:
            if index == end:
                if filled == 0:
                    return None
                return index - filled
            char = data[index]
            index += 1
            if char in _BASE64_ALPHABET:
                filled += 1
                continue
            if char in (0x0A, 0x0D):
                continue
            if char != 0x3D or filled < 2:  # not "=", or padding where data must be
                return index - 1
            if filled == 2:
                while index < end and data[index] in (0x0A, 0x0D):
                    index += 1
                if index == end:
                    return end
                if data[index] != 0x3D:
                    return index - 1
                index += 1
            while index < end and data[index] in (0x0A, 0x0D):
                index += 1
            return index if index < end else None
    return None


_RFC3339_LAYOUT: Final = "2006-01-02T15:04:05Z07:00"
_RFC3339_MICRO_LAYOUT: Final = "2006-01-02T15:04:05.000000Z07:00"
# (literal prefix, layout element) pairs, as Go's time.Parse walks a layout.
_RFC3339_STEPS: Final = (
    ("", "2006"),
    ("-", "01"),
    ("-", "02"),
    ("T", "15"),
    (":", "04"),
    (":", "05"),
    ("", "Z07:00"),
)
_RFC3339_MICRO_STEPS: Final = (*_RFC3339_STEPS[:6], ("", ".000000"), ("", "Z07:00"))


def _two_digits(value: str, fixed: bool) -> tuple[int, str] | None:
    if not value or value[0] not in _DIGITS:
        return None
    if len(value) < 2 or value[1] not in _DIGITS:
        return None if fixed else (int(value[0]), value[1:])
    return int(value[:2]), value[2:]


def _days_in(month: int, year: int) -> int:
    if month == 2:
        return 29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28
    return 30 if month in (4, 6, 9, 11) else 31


# The form servers and clients write (UTC, days every month has): parses, no need to
# walk Go's layout for it.
_PLAIN_TIME: Final = re.compile(
    r"\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|1\d|2[0-8])T(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\dZ"
)
_PLAIN_MICRO_TIME: Final = re.compile(
    r"\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|1\d|2[0-8])T(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d\.\d{6}Z"
)


def _time_problem(text: str, *, micro: bool) -> str | None:
    """Why Go's time.Parse(RFC3339[Micro], text) fails, in its words; None when it parses."""
    if (_PLAIN_MICRO_TIME if micro else _PLAIN_TIME).fullmatch(text):
        return None
    layout = _RFC3339_MICRO_LAYOUT if micro else _RFC3339_LAYOUT
    steps = _RFC3339_MICRO_STEPS if micro else _RFC3339_STEPS
    head = f"parsing time {go_quote(text)}"
    value = text
    year = month = day = 0

    def cannot(element: str, rest: str) -> str:
        return f"{head} as {go_quote(layout)}: cannot parse {go_quote(rest)} as {go_quote(element)}"

    for prefix, element in steps:
        if not value.startswith(prefix):
            return cannot(prefix, value)
        value = value[len(prefix) :]
        hold = value
        parsed: tuple[int, str] | None
        if element == "2006":
            if len(value) < 4 or not all(c in _DIGITS for c in value[:4]):
                return cannot(element, hold)
            year, value = int(value[:4]), value[4:]
            continue
        if element in ("01", "02", "15", "04", "05"):
            parsed = _two_digits(value, fixed=element != "15")
            if parsed is None:
                return cannot(element, hold)
            number, value = parsed
            limits = {
                "01": (1, 12, "month"),
                "15": (0, 23, "hour"),
                "04": (0, 59, "minute"),
                "05": (0, 59, "second"),
            }
            if element == "02":
                day = number
            elif not limits[element][0] <= number <= limits[element][1]:
                return f"{head}: {limits[element][2]} out of range"
            if element == "01":
                month = number
            if (
                element == "05"
                and not micro
                and len(value) >= 2
                and value[0] in ".,"
                and value[1] in _DIGITS
            ):
                digits = 2
                while digits < len(value) and value[digits] in _DIGITS:
                    digits += 1
                value = value[digits:]
            continue
        if element == ".000000":
            if len(value) < 7 or value[0] not in ".," or not all(c in _DIGITS for c in value[1:7]):
                return cannot(element, hold)
            value = value[7:]
            continue
        # Z07:00
        if value.startswith("Z"):
            value = value[1:]
            continue
        if len(value) < 6 or value[3] != ":" or value[0] not in "+-":
            return cannot(element, hold)
        hours, minutes = _two_digits(value[1:3], True), _two_digits(value[4:6], True)
        if hours is None or minutes is None:
            return cannot(element, hold)
        if hours[0] > 24:
            return f"{head}: time zone offset hour out of range"
        if minutes[0] > 60:
            return f"{head}: time zone offset minute out of range"
        value = value[6:]
    if value:
        return f"{head}: extra text: {go_quote(value)}"
    if day < 1 or day > _days_in(month, year):
        return f"{head}: day out of range"
    return None


def go_quote(text: str) -> str:
    """Go's strconv.Quote: a double-quoted literal, printable Unicode kept as is."""
    out = ['"']
    for char in text:
        if char == '"' or char == "\\":
            out.append("\\" + char)
        elif char.isprintable():
            out.append(char)
        elif char in _GO_ESCAPES:
            out.append(_GO_ESCAPES[char])
        elif ord(char) < 0x80:
            out.append(f"\\x{ord(char):02x}")
        elif ord(char) < 0x10000:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(f"\\U{ord(char):08x}")
    out.append('"')
    return "".join(out)


_GO_ESCAPES: Final = {
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
}


# -- custom resource value validation (kube-openapi) -------------------------------------------

# String formats a CRD may declare that kube-apiserver validates; others are ignored.
_SUPPORTED_STRING_FORMATS: Final = frozenset(
    {
        "bsonobjectid",
        "uri",
        "email",
        "hostname",
        "ipv4",
        "ipv6",
        "cidr",
        "mac",
        "uuid",
        "uuid3",
        "uuid4",
        "uuid5",
        "isbn",
        "isbn10",
        "isbn13",
        "creditcard",
        "ssn",
        "hexcolor",
        "rgbcolor",
        "byte",
        "password",
        "date",
        "duration",
        "datetime",
        "date-time",
    }
)
_HOSTNAME: Final = re.compile(
    r"^(?=.{1,253}$)[a-zA-Z0-9]([-a-zA-Z0-9]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([-a-zA-Z0-9]{0,61}[a-zA-Z0-9])?)*$"
)
_DATE_TIME: Final = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:?\d{2})?$"
)
_DATE: Final = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DURATION: Final = re.compile(
    r"^(\d+(\.\d+)?\s*(ns|us|µs|ms|s|m|h|d|w|nanoseconds?|microseconds?|milliseconds?|seconds?|"
    r"minutes?|hours?|days?|weeks?)\s*)+$"
)
_MAC: Final = re.compile(
    r"^([0-9A-Fa-f]{2}[:-]){5}[0-9A-Fa-f]{2}$|^([0-9A-Fa-f]{4}\.){2}[0-9A-Fa-f]{4}$"
)
_EMAIL: Final = re.compile(r"^[^@\s]+@[^@\s]+$")
_HEXCOLOR: Final = re.compile(r"^#([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")
_BSON_OBJECT_ID: Final = re.compile(r"^[0-9a-fA-F]{24}$")


def _valid_format(name: str, value: str) -> bool:
    try:
        if name in ("date-time", "datetime"):
            return bool(_DATE_TIME.match(value))
        if name == "date":
            return bool(_DATE.match(value))
        if name.startswith("uuid"):
            parsed = uuid.UUID(value)
            return name == "uuid" or parsed.version == int(name[4:])
        if name == "ipv4":
            ipaddress.IPv4Address(value)
        elif name == "ipv6":
            ipaddress.IPv6Address(value)
        elif name == "cidr":
            ipaddress.ip_network(value, strict=False)
        elif name == "byte":
            base64.b64decode(value, validate=True)
        elif name == "hostname":
            return bool(_HOSTNAME.match(value))
        elif name == "mac":
            return bool(_MAC.match(value))
        elif name == "email":
            return bool(_EMAIL.match(value))
        elif name == "hexcolor":
            return bool(_HEXCOLOR.match(value))
        elif name == "bsonobjectid":
            return bool(_BSON_OBJECT_ID.match(value))
        elif name == "duration":
            return bool(_DURATION.match(value))
    except (ValueError, binascii.Error):
        return False
    return True


def validate_custom_resource(node: SchemaNode, obj: Object) -> list[FieldError]:
    """Validate a custom resource's values against its CRD schema, as kube-apiserver's
    schema validator does: type, enum, required, bounds, lengths, counts, pattern, format.

    Field errors read like kube-apiserver's 422 causes, e.g.
    `spec.replicas: Invalid value: "string": spec.replicas in body must be of type integer: "string"`."""
    schema = node.definitions.validation.get(node.name, node.raw)
    found: list[FieldError] = []
    _validate(schema, obj, "", found)
    return found


def _field_path(name: str) -> str:
    name = name.removeprefix(".")
    return name or "<nil>"


def _invalid(name: str, value: Any, message: str) -> FieldError:
    return FieldError(ErrorType.INVALID, _field_path(name), message, value)


def _type_invalid(name: str, type_name: str, actual: str) -> FieldError:
    message = f"{name} in body must be of type {type_name}: {go_quote(actual)}"
    return FieldError(ErrorType.TYPE_INVALID, _field_path(name), message, actual)


def _composite(message: str) -> FieldError:
    return FieldError(ErrorType.INVALID, "<nil>", message, "")


def _data_type(value: Any) -> tuple[str, str]:
    """The JSON type and format kube-openapi infers from a decoded value."""
    if isinstance(value, bool):
        return "boolean", ""
    if isinstance(value, int):
        return "integer", "int64"
    if isinstance(value, float):
        return "number", "float64"
    if isinstance(value, str):
        return "string", ""
    if isinstance(value, list):
        return "array", ""
    return "object", ""


def _go_value(value: float) -> str:
    """Go's %v of a number: shortest digits, exponent form below 1e-4 and from 1e21 on
    for integers written as floats, from 1e6 on otherwise (strconv's 'g', precision -1)."""
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "-0" if math.copysign(1, value) < 0 else "0"
    sign, digits, exponent = Decimal(repr(value)).as_tuple()
    assert isinstance(exponent, int)
    trimmed = list(digits)
    while len(trimmed) > 1 and trimmed[-1] == 0:
        trimmed.pop()
        exponent += 1
    decimal_exponent = len(trimmed) + exponent - 1
    prefix = "-" if sign else ""
    if decimal_exponent < -4 or decimal_exponent >= 6:
        mantissa = str(trimmed[0]) + (
            "." + "".join(map(str, trimmed[1:])) if len(trimmed) > 1 else ""
        )
        power = "-" if decimal_exponent < 0 else "+"
        return f"{prefix}{mantissa}e{power}{abs(decimal_exponent):02d}"
    return prefix + format(Decimal((0, tuple(trimmed), exponent)), "f")


def _enum_matches(value: Any, allowed: Any) -> bool:
    if isinstance(value, bool) or isinstance(allowed, bool):
        return type(value) is type(allowed) and value == allowed
    if isinstance(value, (int, float)) and isinstance(allowed, (int, float)):
        return bool(value == allowed)
    return bool(value == allowed)


def _enum_value_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


_pattern_cache: dict[str, re.Pattern[str] | str] = {}


def _compiled_pattern(pattern: str) -> re.Pattern[str] | str:
    found = _pattern_cache.get(pattern)
    if found is None:
        try:
            found = re.compile(pattern)
        except re.error as error:
            found = str(error)
        _pattern_cache[pattern] = found
    return found


def _validates(schema: Mapping[str, Any], value: Any, path: str) -> bool:
    scratch: list[FieldError] = []
    _validate(schema, value, path, scratch)
    return not scratch


def _validate(schema: Mapping[str, Any], value: Any, path: str, out: list[FieldError]) -> None:
    if "$ref" in schema:  # ObjectMeta and other built-ins: validated by the API machinery
        return
    declared = schema.get("type")
    types: tuple[str, ...] = (declared,) if isinstance(declared, str) and declared else ()
    if schema.get("x-kubernetes-int-or-string"):
        types = ("integer", "string")
    format_name = schema.get("format") or ""
    if types == ("string",) and format_name not in _SUPPORTED_STRING_FORMATS:
        format_name = ""
    enum = schema.get("enum")

    if value is None:
        if types and not schema.get("nullable"):
            out.append(_type_invalid(path, ",".join(types), "null"))
        if enum:
            out.append(
                errors.not_supported(_field_path(path), None, [_enum_value_text(e) for e in enum])
            )
        return

    data_type, data_format = _data_type(value)
    is_text_or_list = data_type in ("string", "array")
    # Type, as kube-openapi's type validator decides it.
    if types or format_name:
        float_int = data_type == "number" and float(value).is_integer() and "integer" in types
        int_float = data_type == "integer" and "number" in types
        if (
            not is_text_or_list
            and format_name
            and not (data_type in types or data_format == format_name or float_int or int_float)
        ):
            out.append(_type_invalid(path, format_name, data_format))
        elif not ("number" in types or "integer" in types) and format_name and is_text_or_list:
            pass
        elif types and not (data_type in types or float_int or int_float):
            out.append(_type_invalid(path, ",".join(types), data_type))

    _validate_composition(schema, value, path, out)

    if data_type == "string":
        _validate_string(schema, value, path, format_name, out)
    elif data_type in ("integer", "number"):
        _validate_number(schema, value, path, out)
    elif data_type == "array":
        items = schema.get("items")
        if isinstance(items, dict):
            for index, item in enumerate(value):
                _validate(items, item, f"{path}[{index}]", out)
        size = len(value)
        if isinstance(schema.get("minItems"), int) and size < schema["minItems"]:
            out.append(
                _invalid(
                    path, size, f"{path} in body should have at least {schema['minItems']} items"
                )
            )
        if isinstance(schema.get("maxItems"), int) and size > schema["maxItems"]:
            out.append(
                FieldError(
                    ErrorType.TOO_MANY,
                    _field_path(path),
                    f"must have at most {schema['maxItems']} items",
                    size,
                )
            )
        if schema.get("uniqueItems") and _has_duplicates(value):
            out.append(_invalid(path, "", f"{path} in body shouldn't contain duplicates"))

    if enum and not any(_enum_matches(value, allowed) for allowed in enum):
        out.append(
            errors.not_supported(_field_path(path), value, [_enum_value_text(e) for e in enum])
        )

    if data_type == "object":
        _validate_object(schema, value, path, out)


def _validate_composition(
    schema: Mapping[str, Any], value: Any, path: str, out: list[FieldError]
) -> None:
    any_of = schema.get("anyOf")
    if isinstance(any_of, list) and any_of:
        failures: list[FieldError] | None = None
        for option in any_of:
            scratch: list[FieldError] = []
            _validate(option, value, path, scratch)
            if not scratch:
                failures = None
                break
            if failures is None:
                failures = scratch
        else:
            out.append(_composite(f"{go_quote(path)} must validate at least one schema (anyOf)"))
            out.extend(failures or ())
    one_of = schema.get("oneOf")
    if isinstance(one_of, list) and one_of:
        valid = sum(1 for option in one_of if _validates(option, value, path))
        if valid != 1:
            detail = "Found none valid" if valid == 0 else f"Found {valid} valid alternatives"
            out.append(
                _composite(
                    f"{go_quote(path)} must validate one and only one schema (oneOf). {detail}"
                )
            )
    all_of = schema.get("allOf")
    if isinstance(all_of, list):
        for option in all_of:
            _validate(option, value, path, out)
    not_schema = schema.get("not")
    if isinstance(not_schema, dict) and _validates(not_schema, value, path):
        out.append(_composite(f"{go_quote(path)} must not validate the schema (not)"))


def _validate_string(
    schema: Mapping[str, Any], value: str, path: str, format_name: str, out: list[FieldError]
) -> None:
    # The string validator reports only its first problem.
    max_length = schema.get("maxLength")
    min_length = schema.get("minLength")
    pattern = schema.get("pattern")
    if isinstance(max_length, int) and len(value) > max_length:
        unit = "byte" if max_length == 1 else "bytes"
        out.append(
            FieldError(
                ErrorType.TOO_LONG, _field_path(path), f"may not be more than {max_length} {unit}"
            )
        )
    elif isinstance(min_length, int) and len(value) < min_length:
        out.append(
            _invalid(path, value, f"{path} in body should be at least {min_length} chars long")
        )
    elif isinstance(pattern, str) and pattern:
        compiled = _compiled_pattern(pattern)
        if isinstance(compiled, str):
            out.append(
                _invalid(
                    path,
                    value,
                    f"{path} in body should match '{pattern}, but pattern is invalid: {compiled}'",
                )
            )
        elif not compiled.search(value):
            out.append(_invalid(path, value, f"{path} in body should match '{pattern}'"))
    if (
        format_name
        and format_name in _SUPPORTED_STRING_FORMATS
        and not _valid_format(format_name, value)
    ):
        out.append(
            FieldError(
                ErrorType.TYPE_INVALID,
                _field_path(path),
                f"{path} in body must be of type {format_name}: {go_quote(value)}",
                value,
            )
        )


def _validate_number(
    schema: Mapping[str, Any], value: float, path: str, out: list[FieldError]
) -> None:
    integral = isinstance(value, int)

    def bound(limit: float) -> float:
        # An integer value is compared with the bound truncated to an integer.
        return int(limit) if integral else float(limit)

    multiple = schema.get("multipleOf")
    if isinstance(multiple, (int, float)) and not isinstance(multiple, bool):
        factor = bound(multiple)
        if factor <= 0:
            out.append(
                _composite(
                    f"factor MultipleOf declared for {path} must be positive: {_go_value(factor)}"
                )
            )
        elif (integral and value % factor != 0) or (
            not integral
            and not ((value / factor) if factor >= 1 else (1 / factor * value)).is_integer()
        ):
            out.append(
                _invalid(path, value, f"{path} in body should be a multiple of {_go_value(factor)}")
            )
    minimum = schema.get("minimum")
    if isinstance(minimum, (int, float)) and not isinstance(minimum, bool):
        limit = bound(minimum)
        exclusive = bool(schema.get("exclusiveMinimum"))
        if value < limit or (exclusive and value == limit):
            relation = "greater than" if exclusive else "greater than or equal to"
            out.append(
                _invalid(path, value, f"{path} in body should be {relation} {_go_value(limit)}")
            )
    maximum = schema.get("maximum")
    if isinstance(maximum, (int, float)) and not isinstance(maximum, bool):
        limit = bound(maximum)
        exclusive = bool(schema.get("exclusiveMaximum"))
        if value > limit or (exclusive and value == limit):
            relation = "less than" if exclusive else "less than or equal to"
            out.append(
                _invalid(path, value, f"{path} in body should be {relation} {_go_value(limit)}")
            )


def _validate_object(
    schema: Mapping[str, Any], value: dict[str, Any], path: str, out: list[FieldError]
) -> None:
    size = len(value)
    min_properties = schema.get("minProperties")
    max_properties = schema.get("maxProperties")
    if isinstance(min_properties, int) and size < min_properties:
        out.append(
            _invalid(path, size, f"{path} in body should have at least {min_properties} properties")
        )
    if isinstance(max_properties, int) and size > max_properties:
        out.append(
            FieldError(
                ErrorType.TOO_MANY,
                _field_path(path),
                f"must have at most {max_properties} items",
                size,
            )
        )
    properties = schema.get("properties")
    properties = properties if isinstance(properties, dict) else {}
    additional = schema.get("additionalProperties")
    for key, sub in value.items():
        child_path = f"{path}.{key}" if path else key
        prop = properties.get(key)
        if prop is not None:
            _validate(prop, sub, child_path, out)
        elif isinstance(additional, dict):
            _validate(additional, sub, f"{path}.{key}", out)
    for key in schema.get("required") or ():
        if key not in value:
            out.append(errors.required(_field_path(f"{path}.{key}")))


def _has_duplicates(items: list[Any]) -> bool:
    seen: list[str] = []
    for item in items:
        key = json.dumps(item, sort_keys=True)
        if key in seen:
            return True
        seen.append(key)
    return False
