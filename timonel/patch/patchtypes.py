"""The patch content types a resource accepts, and the checks on a patch request's options.

Built-in resources accept four patch types; custom resources have no Go types to take
patch strategies from, so they refuse strategic merge patch with 415.
"""

from __future__ import annotations

import unicodedata
from typing import Final

from timonel.api.errors import (
    FieldError,
    StatusError,
    forbidden,
    invalid,
    invalid_value,
    required,
    too_long,
)

JSON_PATCH: Final = "application/json-patch+json"
MERGE_PATCH: Final = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH: Final = "application/strategic-merge-patch+json"
APPLY_PATCH: Final = "application/apply-patch+yaml"

BUILTIN_PATCH_TYPES: Final = (JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH, APPLY_PATCH)
CUSTOM_RESOURCE_PATCH_TYPES: Final = (JSON_PATCH, MERGE_PATCH, APPLY_PATCH)
FIELD_MANAGER_MAX_LENGTH: Final = 128


def accepted_patch_types(*, custom_resource: bool) -> tuple[str, ...]:
    return CUSTOM_RESOURCE_PATCH_TYPES if custom_resource else BUILTIN_PATCH_TYPES


def patch_type(content_type: str | None, *, custom_resource: bool) -> str:
    """The patch type named by a Content-Type header (parameters ignored), or 415."""
    base = (content_type or "").split(";", 1)[0].strip()
    accepted = accepted_patch_types(custom_resource=custom_resource)
    if base not in accepted:
        raise StatusError(
            415,
            "UnsupportedMediaType",
            "the body of the request was in an unknown format - accepted media types include: "
            + ", ".join(accepted),
        )
    return base


def validate_patch_options(kind_of_patch: str, *, field_manager: str, force: bool | None) -> None:
    """PatchOptions checks: apply needs a fieldManager, `force` is for apply only, and a
    field manager is short and printable. Raises 422 Invalid on PatchOptions."""
    errors: list[FieldError] = []
    if kind_of_patch != APPLY_PATCH:
        if force is not None:
            errors.append(forbidden("force", "may not be specified for non-apply patch"))
    elif not field_manager:
        errors.append(required("fieldManager", "is required for apply patch"))
    errors.extend(field_manager_errors(field_manager))
    if errors:
        error = invalid("PatchOptions", "meta.k8s.io", "", errors)
        if error.details is not None:
            error.details.pop("name", None)
        raise error


def field_manager_errors(field_manager: str) -> list[FieldError]:
    """ValidateFieldManager: at most 128 bytes, printable characters only."""
    if len(field_manager) > FIELD_MANAGER_MAX_LENGTH:
        return [too_long("fieldManager", FIELD_MANAGER_MAX_LENGTH)]
    offset = 0  # Go reports the byte offset
    for char in field_manager:
        if not printable(char):
            detail = f"invalid character U+{ord(char):04X} at index {offset}"
            return [invalid_value("fieldManager", field_manager, detail)]
        offset += len(char.encode())
    return []


def printable(char: str) -> bool:
    """Go's unicode.IsPrint: letters, marks, numbers, punctuation, symbols and ASCII space."""
    return char == " " or unicodedata.category(char)[0] in "LMNPS"
