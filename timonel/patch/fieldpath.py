"""Field paths and sets of them, as structured-merge-diff writes them into managedFields.

A path is a tuple of path elements; each element is kept in its serialized FieldsV1 form:

    f:<name>          a field of a struct or a key of a map
    k:<json object>   an item of a list-map, by its key fields (sorted, compact JSON)
    v:<json value>    an item of a set, by its value
    i:<index>         an item of an atomic list (never written by Kubernetes itself)

A `FieldSet` is a trie: `members` are the paths the set holds at this level, `children`
the sets below. In FieldsV1 a path that is both a member and has children carries `.`.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from typing import Any, Final

from timonel.patch._gofmt import go_float_v, go_json, go_quote

PathElement = str
Path = tuple[PathElement, ...]


def field_element(name: str) -> PathElement:
    return "f:" + name


def key_element(fields: list[tuple[str, Any]]) -> PathElement:
    """`fields` must already be sorted by name, as Kubernetes keys are."""
    if len(fields) == 1 and type(fields[0][1]) is str:
        return _cached_string_key_element(*fields[0])  # a name, a condition type
    if all(type(value) in _HASHABLE_KEY_VALUES for _, value in fields):
        # Typed, so that 1 and True (equal keys to Python) stay apart.
        return _cached_key_element(tuple((name, type(value), value) for name, value in fields))
    return _encode_key_element(fields)


# Not floats: 0.0 and -0.0 are one key to Python and two to JSON.
_HASHABLE_KEY_VALUES: Final = (str, int, bool, type(None))


@functools.lru_cache(maxsize=4096)
def _cached_key_element(fields: tuple[tuple[str, type, Any], ...]) -> PathElement:
    """Items keep their keys from write to write (container names, ports, condition types)."""
    return _encode_key_element([(name, value) for name, _, value in fields])


@functools.lru_cache(maxsize=4096)
def _cached_string_key_element(name: str, value: str) -> PathElement:
    return _encode_key_element([(name, value)])


def _encode_key_element(fields: list[tuple[str, Any]]) -> PathElement:
    return "k:{" + ",".join(go_json(name) + ":" + go_json(value) for name, value in fields) + "}"


def value_element(value: Any) -> PathElement:
    return "v:" + go_json(value)


def _value_rank(value: Any) -> tuple[Any, ...]:
    """value.Compare of structured-merge-diff: numbers, strings, booleans, lists, maps, null."""
    if isinstance(value, bool):
        return (2, value)
    if isinstance(value, (int, float)):
        return (0, float(value))
    if isinstance(value, str):
        return (1, value)
    if isinstance(value, list):
        return (3, tuple(_value_rank(v) for v in value))
    if isinstance(value, dict):
        return (4, tuple((k, _value_rank(value[k])) for k in sorted(value)))
    return (5,)


@functools.lru_cache(maxsize=4096)
def element_order(pe: PathElement) -> tuple[Any, ...]:
    """The sort order of path elements: fields, then keys, then values, then indexes."""
    kind, body = pe[0], pe[2:]
    if kind == "f":
        return (0, body)
    if kind == "k":
        fields = json.loads(body)
        return (1, tuple((name, _value_rank(fields[name])) for name in fields))
    if kind == "v":
        return (2, _value_rank(json.loads(body)))
    return (3, int(body))


def _value_string(value: Any) -> str:
    """value.ToString: how a key or set value appears in a human-readable path."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return go_float_v(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return go_quote(value)
    if isinstance(value, list):
        return "[" + ",".join(_value_string(v) for v in value) + "]"
    if isinstance(value, dict):
        return "".join(f"{k}={_value_string(v)}" for k, v in value.items())
    return str(value)


def element_string(pe: PathElement) -> str:
    kind, body = pe[0], pe[2:]
    if kind == "f":
        return "." + body
    if kind == "k":
        fields = json.loads(body)
        return "[" + ",".join(f"{k}={_value_string(v)}" for k, v in fields.items()) + "]"
    if kind == "v":
        return "[=" + _value_string(json.loads(body)) + "]"
    return "[" + body + "]"


def path_string(path: Path) -> str:
    """`.spec.template.spec.containers[name="nginx"].image`: how conflicts name a field."""
    return "".join(element_string(pe) for pe in path)


def parse_element(text: str) -> PathElement:
    """Validate one serialized path element (from a client-supplied FieldsV1)."""
    if len(text) < 2:
        raise ValueError(f"key must be 2 characters long: {text}")
    if text[1] != ":":
        raise ValueError(f"missing colon: {text}")
    kind, body = text[0], text[2:]
    if kind == "f":
        return text
    if kind == "v":
        return value_element(json.loads(body))
    if kind == "k":
        fields = json.loads(body)
        if not isinstance(fields, dict):
            raise ValueError(f"key must be a JSON object: {text}")
        return key_element(sorted(fields.items()))
    if kind == "i":
        return "i:" + str(int(body))
    raise ValueError("unknown path element type")


class FieldSet:
    """A set of field paths (fieldpath.Set). Operations return sets that share the
    subtrees they leave unchanged with their operands (or are one of them, when the
    other is empty): a set that came out of an operation (or went into one) is never
    changed in place."""

    __slots__ = ("children", "members")

    def __init__(
        self,
        members: set[PathElement] | None = None,
        children: dict[PathElement, FieldSet] | None = None,
    ) -> None:
        self.members: set[PathElement] = members if members is not None else set()
        self.children: dict[PathElement, FieldSet] = children if children is not None else {}

    # -- building ---------------------------------------------------------------

    def insert(self, path: Path) -> None:
        if not path:
            return  # nobody owns the whole object
        node = self
        for pe in path[:-1]:
            child = node.children.get(pe)
            if child is None:
                child = node.children[pe] = FieldSet()
            node = child
        node.members.add(path[-1])

    def add_child(self, pe: PathElement, child: FieldSet) -> None:
        """Attach `child` below `pe`, merging with what is there (empty sets are dropped)."""
        if child.empty():
            return
        existing = self.children.get(pe)
        self.children[pe] = child if existing is None else existing.union(child)

    @classmethod
    def of(cls, *paths: Path) -> FieldSet:
        result = cls()
        for path in paths:
            result.insert(path)
        return result

    # -- queries ----------------------------------------------------------------

    def empty(self) -> bool:
        return not self.members and not self.children

    def has(self, path: Path) -> bool:
        if not path:
            return False
        node: FieldSet | None = self
        for pe in path[:-1]:
            assert node is not None
            node = node.children.get(pe)
            if node is None:
                return False
        assert node is not None
        return path[-1] in node.members

    def with_prefix(self, pe: PathElement) -> FieldSet:
        return self.children.get(pe) or FieldSet()

    def paths(self, prefix: Path = ()) -> Iterator[Path]:
        """Every member path: this level's members in order, then each child in order."""
        for pe in sorted(self.members, key=element_order):
            yield (*prefix, pe)
        for pe in sorted(self.children, key=element_order):
            yield from self.children[pe].paths((*prefix, pe))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FieldSet):
            return NotImplemented
        return self.members == other.members and self.children == other.children

    def __repr__(self) -> str:
        return f"FieldSet({[path_string(p) for p in self.paths()]})"

    __hash__ = None  # type: ignore[assignment]

    # -- algebra ----------------------------------------------------------------

    def copy(self) -> FieldSet:
        return FieldSet(set(self.members), {pe: c.copy() for pe, c in self.children.items()})

    def union(self, other: FieldSet) -> FieldSet:
        if other.empty():
            return self  # shared, as the subtrees of any result are
        if self.empty():
            return other
        children = dict(self.children)
        for pe, child in other.children.items():
            mine = children.get(pe)
            children[pe] = child if mine is None else mine.union(child)
        return FieldSet(self.members | other.members, children)

    def intersection(self, other: FieldSet) -> FieldSet:
        children: dict[PathElement, FieldSet] = {}
        for pe, child in self.children.items():
            theirs = other.children.get(pe)
            if theirs is not None:
                both = child.intersection(theirs)
                if not both.empty():
                    children[pe] = both
        return FieldSet(self.members & other.members, children)

    def difference(self, other: FieldSet) -> FieldSet:
        """Paths in self not in other; a member of other does not remove self's children."""
        if other.empty():
            return self
        children: dict[PathElement, FieldSet] = {}
        for pe, child in self.children.items():
            theirs = other.children.get(pe)
            rest = child if theirs is None else child.difference(theirs)
            if not rest.empty():
                children[pe] = rest
        return FieldSet(self.members - other.members, children)

    def recursive_difference(self, other: FieldSet) -> FieldSet:
        """Like difference, but a member of other also removes everything below it."""
        if other.empty():
            return self
        children: dict[PathElement, FieldSet] = {}
        for pe, child in self.children.items():
            if pe in other.members:
                continue
            theirs = other.children.get(pe)
            rest = child if theirs is None else child.recursive_difference(theirs)
            if not rest.empty():
                children[pe] = rest
        return FieldSet(self.members - other.members, children)

    # -- FieldsV1 ---------------------------------------------------------------

    def to_fields_v1(self) -> dict[str, Any]:
        """The FieldsV1 trie, keys in structured-merge-diff's order."""
        out: dict[str, Any] = {}
        for pe in sorted(self.members | set(self.children), key=element_order):
            child = self.children.get(pe)
            if child is None:
                out[pe] = {}
                continue
            body = child.to_fields_v1()
            out[pe] = {".": {}, **body} if pe in self.members else body
        return out

    @classmethod
    def from_fields_v1(cls, fields: Any) -> FieldSet:
        """Parse a FieldsV1 trie; raises ValueError when it is malformed."""
        if not isinstance(fields, dict):
            raise ValueError("FieldsV1 must be a JSON object")
        result = cls()
        for text, body in fields.items():
            if text == ".":
                continue
            pe = parse_element(text)
            if not isinstance(body, dict):
                raise ValueError(f"value of {text} must be a JSON object")
            if not body or "." in body:
                result.members.add(pe)
            rest = {k: v for k, v in body.items() if k != "."}
            if rest:
                result.add_child(pe, cls.from_fields_v1(rest))
        return result
