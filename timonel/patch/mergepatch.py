"""JSON merge patch (RFC 7386, `application/merge-patch+json`), as kube-apiserver applies it.

Objects merge recursively, `null` deletes a member, anything else (lists included) replaces.
Like gopkg.in/evanphx/json-patch.v4, which kube-apiserver uses, nulls inside a value that
replaces a non-object are pruned from its objects (also objects inside lists), while a
non-object replacing an object is taken as it is. A patch that is null or a scalar is a
400 "Invalid JSON Patch"; a list patch replaces the whole document.
"""

from __future__ import annotations

import copy
from typing import Any

from timonel.api.errors import bad_request

INVALID_PATCH_MESSAGE = "Invalid JSON Patch"


def apply_merge_patch(document: Any, patch: Any) -> Any:
    """`document` with `patch` applied; neither argument is modified."""
    if patch is None or not isinstance(patch, (dict, list)):
        raise bad_request(INVALID_PATCH_MESSAGE)
    patch = copy.deepcopy(patch)
    if isinstance(patch, list):
        return _prune_nulls(patch)
    if not isinstance(document, dict):
        return _prune_nulls(patch)
    doc = copy.deepcopy(document)
    _merge_into(doc, patch)
    return doc


def _merge_into(doc: dict[str, Any], patch: dict[str, Any]) -> None:
    for key, value in patch.items():
        if value is None:
            doc.pop(key, None)
            continue
        current = doc.get(key)
        if current is None or not isinstance(current, dict):
            doc[key] = _prune_nulls(value)
        elif not isinstance(value, dict):
            doc[key] = value
        else:
            _merge_into(current, value)


def _prune_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _prune_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_prune_nulls(v) if v is not None else None for v in value]
    return value
