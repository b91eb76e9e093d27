"""Strategic merge patch (`application/strategic-merge-patch+json`), as kube-apiserver applies it.

It is a JSON merge patch whose lists follow each field's patch strategy (published as
`x-kubernetes-patch-strategy` / `x-kubernetes-patch-merge-key`):

- `merge` with a merge key: items are matched by the key and merged; new items go first
  unless `$setElementOrder/<field>` gives the order; `{"$patch": "delete", key: v}` removes
  an item, `{"$patch": "replace"}` makes the patch's items the whole list;
- `merge` on primitives: the list is a set; `$deleteFromPrimitiveList/<field>` removes values;
- any other list is replaced whole;
- `$patch: replace` on a map replaces it, `$patch: delete` empties it, `$retainKeys` drops
  the keys it does not name; `null` deletes a field.

The algorithm follows k8s.io/apimachinery/pkg/util/strategicpatch (StrategicMergeMapPatch)
step by step, quirks included, and fails with the status kube-apiserver answers: 400 for
malformed directives, 422 for lists of lists, 500 for the rest. Directive keys the Go
decoder would drop as unknown fields are dropped from the result.
"""

from __future__ import annotations

import copy
from typing import Any, Final

from timonel.api.errors import StatusError, bad_request
from timonel.api.objects import Object
from timonel.patch._gofmt import go_quote, go_type_name, go_v, same_scalar
from timonel.patch.jsonpatch import GENERIC_INVALID_MESSAGE
from timonel.patch.typed import UNTYPED, Shape, shape_of
from timonel.schema.definitions import SchemaNode

DIRECTIVE: Final = "$patch"
RETAIN_KEYS: Final = "$retainKeys"
SET_ELEMENT_ORDER: Final = "$setElementOrder"
DELETE_FROM_PRIMITIVE_LIST: Final = "$deleteFromPrimitiveList"

_BAD_PRIMITIVE_LIST: Final = "invalid patch format of primitive list"
_BAD_RETAIN_KEYS: Final = "invalid patch format of retainKeys"
_BAD_SET_ELEMENT_ORDER: Final = "invalid patch format of setElementOrder list"
_LIST_OF_LISTS: Final = "lists of lists are not supported"
_LIST_TYPE: Final = "[]interface {}"
_MAP_TYPE: Final = "map[string]interface {}"


def apply_strategic_merge_patch(original: Object, patch: Any, schema: SchemaNode | None) -> Object:
    """`original` with `patch` applied; neither argument is modified.

    `schema` is the kind's root schema (built-in kinds only: custom resources have no
    patch strategies, and their API refuses this patch type with 415).
    """
    if patch is None:
        return copy.deepcopy(original)
    if not isinstance(patch, dict):
        raise bad_request(
            f"json: cannot unmarshal {_json_kind(patch)} into Go value of type map[string]interface {{}}"
        )
    shape = shape_of(schema)
    merged = _merge_map(copy.deepcopy(original), copy.deepcopy(patch), shape)
    result = _drop_directives(merged, shape)
    assert isinstance(result, dict)
    return result


# -- errors ------------------------------------------------------------------------------


def _internal(message: str) -> StatusError:
    """An error kube-apiserver does not classify: 500 with no reason."""
    return StatusError(500, "", message)


def _no_list_of_lists() -> StatusError:
    return StatusError(422, "Invalid", GENERIC_INVALID_MESSAGE, details={})


def _bad_arg_type(expected: str, actual: Any) -> StatusError:
    return _internal(f"expected a {expected}, but received a {go_type_name(actual)}")


def _no_merge_key(item: Any, key: str) -> StatusError:
    return _internal(f"map: {go_v(item)} does not contain declared merge key: {key}")


def _bad_patch_type(directive: Any, item: Any) -> StatusError:
    return _internal(f"unknown patch type: {_go_s(directive)} in map: {go_v(item)}")


def _go_s(value: Any) -> str:
    """fmt's %s of an interface value."""
    if isinstance(value, str):
        return value
    if value is None:
        return "%!s(<nil>)"
    if isinstance(value, (bool, int, float)):
        return f"%!s({go_type_name(value)}={go_v(value)})"
    return go_v(value)


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "bool"
    return "number"


# -- schema lookups ----------------------------------------------------------------------


def _lookup(shape: Shape, key: str) -> tuple[Shape, str, str]:
    """LookupPatchMetadata: the field's shape, its patch strategy (without retainKeys) and
    its merge key. Unknown fields of a struct are an error, as for the Go types."""
    if shape.kind == "map":
        return shape.field(key) or UNTYPED, "", ""
    if shape.kind == "struct":
        if not shape.declares(key):
            raise _internal(
                f"unable to find api field in struct {shape.go_name} for the json field {go_quote(key)}"
            )
        child = shape.field(key) or UNTYPED
        return child, _strategy(child.patch_strategies), child.merge_key or ""
    if shape.kind == "untyped":
        return UNTYPED, "", ""
    kind = "slice" if shape.kind == "list" else "string"
    raise _internal(
        f"merging an object in json but data type is not map or struct, instead is: {kind}"
    )


def _strategy(strategies: tuple[str, ...]) -> str:
    """The patch strategy other than retainKeys (extractRetainKeysPatchStrategy)."""
    if not strategies:
        return ""
    if len(strategies) == 1:
        return "" if strategies[0] == "retainKeys" else strategies[0]
    if len(strategies) == 2 and "retainKeys" in strategies:
        return strategies[0] if strategies[1] == "retainKeys" else strategies[1]
    raise _internal(f"unexpected patch strategy: {go_v(list(strategies))}")


def _go_type(value: Any) -> str:
    return go_type_name(value)


# -- maps --------------------------------------------------------------------------------


def _merge_map(
    original: dict[str, Any] | None, patch: dict[str, Any], shape: Shape
) -> dict[str, Any]:
    if DIRECTIVE in patch:
        directive = patch[DIRECTIVE]
        if directive == "replace" and isinstance(directive, str):
            del patch[DIRECTIVE]
            replacement: dict[str, Any] = _inserted(patch)
            return replacement
        if directive == "delete" and isinstance(directive, str):
            return {}
        raise _bad_patch_type(directive, patch)
    if original is None:
        original = {}
    _apply_retain_keys(original, patch)
    _merge_ordered_lists(original, patch, shape)
    for key, value in patch.items():
        is_delete_list = False
        if key.startswith(DELETE_FROM_PRIMITIVE_LIST):
            key = _extract_key(key, DELETE_FROM_PRIMITIVE_LIST)
            is_delete_list = True
        if value is None:
            original.pop(key, None)
            continue
        if key not in original:
            original[key] = _inserted(value)
            continue
        current = original[key]
        if _go_type(current) != _go_type(value):
            original[key] = _inserted(value)
            continue
        child, strategy, merge_key = _lookup(shape, key)
        if isinstance(value, dict):
            if strategy == "replace":
                original[key] = _inserted(value)
            else:
                original[key] = _merge_map(current, value, child)
        elif isinstance(value, list):
            original[key] = _merge_list_field(
                current, value, child, strategy, merge_key, is_delete_list
            )
        else:
            original[key] = value
    return original


def _extract_key(key: str, prefix: str) -> str:
    head, slash, rest = key.partition("/")
    if not slash or head != prefix:
        if prefix == DELETE_FROM_PRIMITIVE_LIST:
            raise bad_request(_BAD_PRIMITIVE_LIST)
        raise bad_request(_BAD_SET_ELEMENT_ORDER)
    return rest


def _apply_retain_keys(original: dict[str, Any], patch: dict[str, Any]) -> None:
    if RETAIN_KEYS not in patch:
        return
    retained = patch.pop(RETAIN_KEYS)
    if not isinstance(retained, list):
        raise bad_request(_BAD_RETAIN_KEYS)
    names = {item for item in retained if isinstance(item, str)}
    for key, value in patch.items():
        if value is None or key.startswith((DELETE_FROM_PRIMITIVE_LIST, SET_ELEMENT_ORDER)):
            continue
        if key not in names:
            raise bad_request(_BAD_RETAIN_KEYS)
    for key in [k for k in original if k not in names]:
        del original[key]


def _merge_ordered_lists(original: dict[str, Any], patch: dict[str, Any], shape: Shape) -> None:
    """Merge every list that comes with `$setElementOrder/<field>` and put it in that order:
    the order list first, then the patch's order, then the live order."""
    for directive_key in [k for k in patch if k.startswith(SET_ELEMENT_ORDER)]:
        order = patch.pop(directive_key)
        if not isinstance(order, list):
            raise _bad_arg_type(_LIST_TYPE, order)
        key = _extract_key(directive_key, SET_ELEMENT_ORDER)
        found_original = original.get(key) is not None
        found_patch = key in patch
        original_list = original.get(key)
        patch_list = patch.get(key)
        if found_original and not isinstance(original_list, list):
            raise _bad_arg_type(_LIST_TYPE, original_list)
        if found_patch and not isinstance(patch_list, list):
            raise _bad_arg_type(_LIST_TYPE, patch_list)
        child, strategy, merge_key = _lookup(shape, key)
        original_items: list[Any] = original_list if isinstance(original_list, list) else []
        patch_items_in: list[Any] = patch_list if isinstance(patch_list, list) else []
        _check_order(patch_items_in, order, merge_key)
        if found_original and not found_patch:
            merged = original_items
        elif found_patch and not found_original:
            merged = patch_items_in
        elif found_original and found_patch:
            merged = _merge_list_field(
                original_items, patch_items_in, child, strategy, merge_key, False
            )
        else:
            continue
        if merge_key:
            in_patch, server_only = _partition_maps(merged, order, merge_key)
        else:
            in_patch, server_only = _partition_primitives(merged, order)
        kind = _element_kind(original_items, patch_items_in)
        original[key] = _normalize_order(
            in_patch, server_only, order, original_items, merge_key, kind
        )
        patch.pop(key, None)


def _check_order(patch_list: list[Any], order: list[Any], merge_key: str) -> None:
    """The patch's items must appear in the order list, in the same relative order."""
    if not order or not patch_list:
        return
    items = _split_deletions(patch_list)[0] if merge_key else patch_list
    item_index = order_index = 0
    while item_index < len(items) and order_index < len(order):
        if isinstance(items[item_index], dict) and DIRECTIVE in items[item_index]:
            item_index += 1
            continue
        if _merge_key_equal(items[item_index], order[order_index], merge_key):
            item_index += 1
        order_index += 1
    if item_index < len(items) and order_index >= len(order):
        raise _internal(
            f"The order in patch list:\n{go_v(patch_list)}\n doesn't match "
            f"{SET_ELEMENT_ORDER} list:\n{go_v(order)}\n"
        )


def _merge_key_equal(left: Any, right: Any, merge_key: str) -> bool:
    if not merge_key:
        return same_scalar(left, right)
    if not isinstance(left, dict):
        raise _bad_arg_type(_MAP_TYPE, left)
    if not isinstance(right, dict):
        raise _bad_arg_type(_MAP_TYPE, right)
    if merge_key not in left:
        raise _no_merge_key(left, merge_key)
    if merge_key not in right:
        raise _no_merge_key(right, merge_key)
    return same_scalar(left[merge_key], right[merge_key])


# -- lists -------------------------------------------------------------------------------


def _merge_list_field(
    original: list[Any],
    patch: list[Any],
    shape: Shape,
    strategy: str,
    merge_key: str,
    is_delete_list: bool,
) -> list[Any]:
    if strategy != "merge":
        return [_inserted(item) for item in patch]
    return _merge_list(
        original,
        patch,
        shape.element() if shape.kind == "list" else UNTYPED,
        merge_key,
        is_delete_list,
    )


def _element_kind(*lists: list[Any]) -> str:
    """sliceElementType: every item of every list must have the same type, and not be a list."""
    first: str | None = None
    for items in lists:
        for item in items:
            kind = _go_type(item)
            if first is None:
                if isinstance(item, list):
                    raise _no_list_of_lists()
                first = kind
            elif kind != first:
                raise _internal(
                    "list element types are not identical: "
                    + go_v([list(items) for items in lists])
                )
    if first is None:
        raise _internal("no elements in any of the given slices")
    return "map" if first == _MAP_TYPE else "scalar"


def _merge_list(
    original: list[Any], patch: list[Any], element: Shape, merge_key: str, is_delete_list: bool
) -> list[Any]:
    """Merge a list with strategy merge. Deleting and appending items rewrite `original` in
    place the way Go's slices share their array: the caller's view of the live list then
    shows what Go's does, which decides where server-only items go."""
    if not original and not patch:
        return original
    kind = _element_kind(original, patch)
    if kind != "map":
        if is_delete_list:
            return [item for item in original if not any(same_scalar(item, gone) for gone in patch)]
        merged = _deduplicate(original + patch)
        server_order = original
    else:
        if not merge_key:
            what = "struct" if element.kind == "struct" else "map"
            raise _internal(f"cannot merge lists without merge key for type {what}")
        live = _GoSlice(original)
        replacement, patch = _apply_list_directives(live, patch, merge_key)
        if replacement is not None:
            merged = server_order = replacement
        else:
            server_order = live.items()
            merged = _merge_items(live, patch, merge_key, element)
    if merge_key:
        in_patch, server_only = _partition_maps(merged, patch, merge_key)
    else:
        in_patch, server_only = _partition_primitives(merged, patch)
    return _normalize_order(in_patch, server_only, patch, server_order, merge_key, kind)


class _GoSlice:
    """A Go slice over a live list: removing shifts the items left inside the same array,
    appending writes into the array's spare room (its original length) before it moves."""

    __slots__ = ("array", "length")

    def __init__(self, array: list[Any]) -> None:
        self.array = array
        self.length = len(array)

    def items(self) -> list[Any]:
        return self.array[: self.length]

    def remove(self, index: int) -> None:
        self.array[index : self.length - 1] = self.array[index + 1 : self.length]
        self.length -= 1

    def append(self, item: Any) -> None:
        if self.length < len(self.array):
            self.array[self.length] = item
        else:
            self.array = [*self.array[: self.length], item]
        self.length += 1


def _deduplicate(items: list[Any]) -> list[Any]:
    """deduplicateScalars, with its habit of moving the last item into a duplicate's place."""
    items = list(items)
    last = len(items) - 1
    i = 0
    while i < last:
        j = i + 1
        while j <= last:
            if same_scalar(items[i], items[j]):
                items[j] = items[last]
                items = items[:last]
                last -= 1
                j -= 1
            j += 1
        i += 1
    return items


def _apply_list_directives(
    live: _GoSlice, patch: list[Any], merge_key: str
) -> tuple[list[Any] | None, list[Any]]:
    """Handle `$patch` items: delete removes matching live items; replace makes the other
    patch items the whole list (returned first, else None). Returns the plain patch items."""
    plain: list[Any] = []
    replace = False
    for item in patch:
        if DIRECTIVE not in item:
            plain.append(item)
            continue
        directive = item[DIRECTIVE]
        if directive == "delete" and isinstance(directive, str):
            if merge_key not in item:
                raise _no_merge_key(item, merge_key)
            while (index := _find_by_key(live.items(), merge_key, item[merge_key])) >= 0:
                live.remove(index)
        elif directive == "replace" and isinstance(directive, str):
            replace = True
        elif directive == "merge" and isinstance(directive, str):
            raise _internal("merging lists cannot yet be specified in the patch")
        else:
            raise _bad_patch_type(directive, item)
    if replace:
        return [_inserted(item) for item in plain], []
    return None, plain


def _find_by_key(items: list[Any], merge_key: str, value: Any) -> int:
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise _internal(f"value for key {index} is not a map.")
        if merge_key in item and same_scalar(item[merge_key], value):
            return index
    return -1


def _merge_items(live: _GoSlice, patch: list[Any], merge_key: str, element: Shape) -> list[Any]:
    for item in patch:
        if merge_key not in item:
            raise _no_merge_key(item, merge_key)
        index = _find_by_key(live.items(), merge_key, item[merge_key])
        if index >= 0:
            live.array[index] = _merge_map(live.array[index], item, element)
        else:
            live.append(_inserted(item))
    return live.items()


def _partition_maps(items: list[Any], by: list[Any], merge_key: str) -> tuple[list[Any], list[Any]]:
    in_patch: list[Any] = []
    server_only: list[Any] = []
    for item in items:
        if not isinstance(item, dict):
            raise _bad_arg_type(_MAP_TYPE, item)
        if merge_key not in item:
            raise _no_merge_key(item, merge_key)
        (in_patch if _find_by_key(by, merge_key, item[merge_key]) >= 0 else server_only).append(
            item
        )
    return in_patch, server_only


def _partition_primitives(items: list[Any], by: list[Any]) -> tuple[list[Any], list[Any]]:
    in_patch: list[Any] = []
    server_only: list[Any] = []
    for item in items:
        (in_patch if any(same_scalar(item, other) for other in by) else server_only).append(item)
    return in_patch, server_only


# -- ordering ----------------------------------------------------------------------------


def _index(items: list[Any], item: Any, merge_key: str, kind: str) -> int:
    def key_of(value: Any) -> Any:
        if kind == "map":
            return value.get(merge_key) if isinstance(value, dict) else None
        return value

    wanted = key_of(item)
    for index, candidate in enumerate(items):
        if same_scalar(key_of(candidate), wanted):
            return index
    return -1


def _split_deletions(items: list[Any]) -> tuple[list[Any], list[Any]]:
    kept: list[Any] = []
    deleted: list[Any] = []
    for item in items:
        if not isinstance(item, dict):
            raise _bad_arg_type(_MAP_TYPE, item)
        directive = item.get(DIRECTIVE)
        (deleted if directive == "delete" and isinstance(directive, str) else kept).append(item)
    return kept, deleted


def _sort_by(items: list[Any], order: list[Any], merge_key: str, kind: str) -> list[Any]:
    """normalizeSliceOrder: a stable sort by position in `order` (deletions go last)."""
    deleted: list[Any] = []
    if kind == "map":
        for item in [*items, *order]:
            if not isinstance(item, dict):
                raise _bad_arg_type(_MAP_TYPE, item)
            if merge_key not in item:
                raise _no_merge_key(item, merge_key)
        items, deleted = _split_deletions(items)
    items = list(items)

    def less(a: Any, b: Any) -> bool:
        ia = _index(order, a, merge_key, kind)
        if ia >= 0:
            ib = _index(order, b, merge_key, kind)
            if ib >= 0:
                return ia < ib
        return True

    if len(items) <= 20:
        # Go's sort.SliceStable is an insertion sort for short slices; its comparator is
        # not a strict order for items missing from `order`, so follow it step by step.
        for i in range(1, len(items)):
            j = i
            while j > 0 and less(items[j], items[j - 1]):
                items[j], items[j - 1] = items[j - 1], items[j]
                j -= 1
    else:
        positions = [_index(order, item, merge_key, kind) for item in items]
        ranked = sorted(range(len(items)), key=lambda i: (positions[i] < 0, positions[i]))
        items = [items[i] for i in ranked]
    return items + deleted


def _normalize_order(
    in_patch: list[Any],
    server_only: list[Any],
    patch_order: list[Any],
    server_order: list[Any],
    merge_key: str,
    kind: str,
) -> list[Any]:
    """Patch items in patch order, server-only items in live order, interleaved by the live
    order where both are known (normalizeElementOrder + mergeSortedSlice)."""
    right = _sort_by(in_patch, patch_order, merge_key, kind)
    left = _sort_by(server_only, server_order, merge_key, kind)
    result: list[Any] = []
    i = j = 0
    while i < len(left) or j < len(right):
        if i >= len(left):
            result.append(right[j])
            j += 1
        elif j >= len(right):
            result.append(left[i])
            i += 1
        else:
            li = _index(server_order, left[i], merge_key, kind)
            ri = _index(server_order, right[j], merge_key, kind)
            if li >= 0 and ri >= 0 and li < ri:
                result.append(left[i])
                i += 1
            else:
                result.append(right[j])
                j += 1
    return result


# -- cleanup -----------------------------------------------------------------------------


def _inserted(value: Any) -> Any:
    """A patch value taken as it is. Go keeps the nulls inside it and decoding turns them
    into zero values (omitted fields); here they are dropped."""
    if isinstance(value, dict):
        return {k: _inserted(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_inserted(v) for v in value]
    return value


def _is_directive(key: str) -> bool:
    return key in (DIRECTIVE, RETAIN_KEYS) or key.startswith(
        (SET_ELEMENT_ORDER + "/", DELETE_FROM_PRIMITIVE_LIST + "/")
    )


def _drop_directives(value: Any, shape: Shape) -> Any:
    """Directives left where the Go code leaves them (inside items the patch added) would be
    unknown fields to the typed object; drop them, and any other `$`-key a struct does not
    declare."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, child in value.items():
            if _is_directive(key):
                continue
            if key.startswith("$") and shape.kind == "struct" and not shape.declares(key):
                continue
            child_shape = shape.field(key) if shape.kind in ("struct", "map", "untyped") else None
            out[key] = _drop_directives(child, child_shape or UNTYPED)
        return out
    if isinstance(value, list):
        element = shape.element() if shape.kind == "list" else UNTYPED
        return [_drop_directives(item, element) for item in value]
    return value
