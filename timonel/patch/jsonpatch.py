"""JSON patch (RFC 6902, `application/json-patch+json`), as kube-apiserver applies it.

kube-apiserver uses gopkg.in/evanphx/json-patch.v4, and its behaviour is what clients see:

- operations add, remove, replace, move, copy, test; pointers unescape `~1` to `/` and
  `~0` to `~`; `-` appends to a list; negative indexes count from the end;
- `replace` of a missing object member adds it (v4 only checks that the parent exists);
- `test` of a missing member or a null succeeds when the expected value is null;
- any failed operation answers 422 Invalid with the generic message
  "the server rejected our request due to an error in our request" and empty details;
- a body that is not a list of operation objects answers 400 BadRequest; more than
  10000 operations answers 413.
"""

from __future__ import annotations

import copy
import re
from typing import Any, Final

from timonel.api.errors import StatusError, bad_request
from timonel.patch._gofmt import json_equal

MAX_OPERATIONS: Final = 10000
GENERIC_INVALID_MESSAGE: Final = "the server rejected our request due to an error in our request"
_GO_INT: Final = re.compile(r"[+-]?[0-9]+")
_ABSENT: Final = object()


class PatchFailed(Exception):
    """One operation did not apply; the text is the library's, for logs only."""


def apply_json_patch(document: Any, operations: Any, *, strict_decoding: bool = True) -> Any:
    """`document` with `operations` applied; the input is not modified.

    `strict_decoding` follows the fieldValidation parameter (Strict or Warn, the default,
    decode operations into typed fields first; Ignore does not), which decides the wording
    of a malformed body.
    """
    ops = _decode(operations, strict_decoding)
    if len(ops) > MAX_OPERATIONS:
        raise StatusError(
            413,
            "RequestEntityTooLarge",
            "Request entity too large: The allowed maximum operations in a JSON patch is "
            f"{MAX_OPERATIONS}, got {len(ops)}",
        )
    doc = copy.deepcopy(document)
    try:
        for op in ops:
            doc = _apply_operation(doc, op)
    except PatchFailed as failure:
        raise patch_not_applied() from failure
    return doc


def patch_not_applied() -> StatusError:
    """What kube-apiserver answers for any JSON patch that does not apply."""
    return StatusError(422, "Invalid", GENERIC_INVALID_MESSAGE, details={})


def _go_json_kind(value: Any) -> str:
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "bool"
    return "number"


def _decode(operations: Any, strict: bool) -> list[dict[str, Any] | None]:
    if operations is None:
        return []
    if strict:
        if not isinstance(operations, list):
            raise bad_request(
                "error decoding patch: json: cannot unmarshal "
                f"{_go_json_kind(operations)} into Go value of type []handlers.jsonPatchOp"
            )
        for op in operations:
            if op is not None and not isinstance(op, dict):
                raise bad_request(
                    "error decoding patch: json: cannot unmarshal "
                    f"{_go_json_kind(op)} into Go value of type handlers.jsonPatchOp"
                )
            for name in ("op", "path", "from"):
                if (
                    isinstance(op, dict)
                    and op.get(name) is not None
                    and not isinstance(op[name], str)
                ):
                    raise bad_request(
                        "error decoding patch: json: cannot unmarshal "
                        f"{_go_json_kind(op[name])} into Go struct field jsonPatchOp.{name} of type string"
                    )
    if not isinstance(operations, list):
        raise bad_request(
            f"json: cannot unmarshal {_go_json_kind(operations)} into Go value of type jsonpatch.Patch"
        )
    for op in operations:
        if op is not None and not isinstance(op, dict):
            raise bad_request(
                f"json: cannot unmarshal {_go_json_kind(op)} into Go value of type jsonpatch.Operation"
            )
    return list(operations)


# -- pointers ----------------------------------------------------------------------------


def _unescape(token: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(token):
        if token.startswith("~1", i):
            out.append("/")
            i += 2
        elif token.startswith("~0", i):
            out.append("~")
            i += 2
        else:
            out.append(token[i])
            i += 1
    return "".join(out)


def _index(token: str) -> int:
    if not _GO_INT.fullmatch(token):
        raise PatchFailed(f"value was not a proper array index: '{token}'")
    return int(token)


def _get(container: Any, key: str) -> Any:
    """The child at `key`: a missing object member (or a null) reads as absent; a bad
    list index fails."""
    if isinstance(container, dict):
        value = container.get(key)
        return _ABSENT if value is None else value
    index = _index(key)
    if index < 0:
        if index < -len(container):
            raise PatchFailed(f"Unable to access invalid index: {index}")
        index += len(container)
    if index >= len(container):
        raise PatchFailed(f"Unable to access invalid index: {index}")
    value = container[index]
    return _ABSENT if value is None else value


def _find_parent(doc: Any, path: str) -> tuple[Any, str] | None:
    """findObject: the container holding the last token, and that token. Like the library,
    the first token (normally empty, before the leading `/`) is skipped."""
    tokens = path.split("/")
    if len(tokens) < 2:
        return None
    current = doc
    for token in tokens[1:-1]:
        try:
            child = _get(current, _unescape(token))
        except PatchFailed:
            return None
        if child is _ABSENT or not isinstance(child, (dict, list)):
            return None
        current = child
    return current, _unescape(tokens[-1])


def _container_add(container: Any, key: str, value: Any) -> None:
    if isinstance(container, dict):
        container[key] = value
        return
    if key == "-":
        container.append(value)
        return
    index = _index(key)
    size = len(container) + 1
    if index >= size:
        raise PatchFailed(f"Unable to access invalid index: {index}")
    if index < 0:
        if index < -size:
            raise PatchFailed(f"Unable to access invalid index: {index}")
        index += size
    container.insert(index, value)


def _container_remove(container: Any, key: str) -> None:
    if isinstance(container, dict):
        if key not in container:
            raise PatchFailed(f"Unable to remove nonexistent key: {key}")
        del container[key]
        return
    index = _index(key)
    if index >= len(container):
        raise PatchFailed(f"Unable to access invalid index: {index}")
    if index < 0:
        if index < -len(container):
            raise PatchFailed(f"Unable to access invalid index: {index}")
        index += len(container)
    del container[index]


def _container_set(container: Any, key: str, value: Any) -> None:
    if isinstance(container, dict):
        container[key] = value
        return
    index = _index(key)
    if index < 0:
        index += len(container)
    container[index] = value


# -- operations --------------------------------------------------------------------------


def _path(op: dict[str, Any], field: str = "path") -> str:
    value = op.get(field)
    if not isinstance(value, str):
        raise PatchFailed(f"operation missing {field} field")
    return value


def _value(op: dict[str, Any]) -> Any:
    return copy.deepcopy(op.get("value"))


def _apply_operation(doc: Any, op: dict[str, Any] | None) -> Any:
    kind = op.get("op") if op is not None else None
    if op is None or not isinstance(kind, str):
        raise PatchFailed("Unexpected kind: unknown")
    if kind == "add":
        parent = _find_parent(doc, _path(op))
        if parent is None:
            raise PatchFailed("add operation does not apply: doc is missing path")
        _container_add(parent[0], parent[1], _value(op))
    elif kind == "remove":
        parent = _find_parent(doc, _path(op))
        if parent is None:
            raise PatchFailed("remove operation does not apply: doc is missing path")
        _container_remove(*parent)
    elif kind == "replace":
        path = _path(op)
        if path == "":
            value = _value(op)
            if not isinstance(value, (dict, list)):
                raise PatchFailed("replace operation value must be object or array")
            return value
        parent = _find_parent(doc, path)
        if parent is None:
            raise PatchFailed("replace operation does not apply: doc is missing path")
        _get(*parent)  # a bad list index fails; a missing object member is added
        _container_set(parent[0], parent[1], _value(op))
    elif kind == "move":
        source = _find_parent(doc, _path(op, "from"))
        if source is None:
            raise PatchFailed("move operation does not apply: doc is missing from path")
        value = _get(*source)
        _container_remove(*source)
        target = _find_parent(doc, _path(op))
        if target is None:
            raise PatchFailed("move operation does not apply: doc is missing destination path")
        _container_add(target[0], target[1], None if value is _ABSENT else value)
    elif kind == "copy":
        source = _find_parent(doc, _path(op, "from"))
        if source is None:
            raise PatchFailed("copy operation does not apply: doc is missing from path")
        value = _get(*source)
        target = _find_parent(doc, _path(op))
        if target is None:
            raise PatchFailed("copy operation does not apply: doc is missing destination path")
        _container_add(target[0], target[1], None if value is _ABSENT else copy.deepcopy(value))
    elif kind == "test":
        _test(doc, op)
    else:
        raise PatchFailed(f"Unexpected kind: {kind}")
    return doc


def _test(doc: Any, op: dict[str, Any]) -> None:
    path = _path(op)
    expected = op.get("value", _ABSENT)
    if path == "":
        if expected is _ABSENT or not json_equal(doc, expected):
            raise PatchFailed(f"testing value {path} failed")
        return
    parent = _find_parent(doc, path)
    if parent is None:
        raise PatchFailed("test operation does not apply: is missing path")
    actual = _get(*parent)
    if actual is _ABSENT:
        if expected is _ABSENT or expected is None:
            return
        raise PatchFailed(f"testing value {path} failed")
    if expected is _ABSENT or not json_equal(actual, expected):
        raise PatchFailed(f"testing value {path} failed")
