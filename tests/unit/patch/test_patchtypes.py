"""Which patch types a resource accepts, and the PatchOptions checks."""

from __future__ import annotations

import pytest

from timonel.api.errors import StatusError
from timonel.patch.patchtypes import (
    APPLY_PATCH,
    JSON_PATCH,
    MERGE_PATCH,
    STRATEGIC_MERGE_PATCH,
    patch_type,
    validate_patch_options,
)


@pytest.mark.parametrize(
    "content_type", [JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH, APPLY_PATCH]
)
def test_built_in_resources_accept_every_patch_type(content_type: str) -> None:
    assert patch_type(content_type + "; charset=utf-8", custom_resource=False) == content_type


def test_custom_resources_refuse_strategic_merge_patch() -> None:
    with pytest.raises(StatusError) as raised:
        patch_type(STRATEGIC_MERGE_PATCH, custom_resource=True)
    assert raised.value.status() == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "the body of the request was in an unknown format - accepted media types include: "
        "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
        "reason": "UnsupportedMediaType",
        "code": 415,
    }


def test_a_json_body_is_not_a_patch() -> None:
    with pytest.raises(StatusError) as raised:
        patch_type("application/json", custom_resource=False)
    assert raised.value.code == 415
    assert (
        "application/strategic-merge-patch+json, application/apply-patch+yaml"
        in raised.value.message
    )


@pytest.mark.parametrize(
    ("kind", "field_manager", "force", "message", "cause"),
    [
        (
            APPLY_PATCH,
            "",
            None,
            'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch',
            {
                "reason": "FieldValueRequired",
                "message": "Required value: is required for apply patch",
                "field": "fieldManager",
            },
        ),
        (
            MERGE_PATCH,
            "kubectl-patch",
            False,
            'PatchOptions.meta.k8s.io "" is invalid: force: Forbidden: may not be specified for non-apply patch',
            {
                "reason": "FieldValueForbidden",
                "message": "Forbidden: may not be specified for non-apply patch",
                "field": "force",
            },
        ),
    ],
)
def test_patch_options_are_checked(
    kind: str, field_manager: str, force: bool | None, message: str, cause: dict[str, str]
) -> None:
    with pytest.raises(StatusError) as raised:
        validate_patch_options(kind, field_manager=field_manager, force=force)
    assert raised.value.code == 422
    assert raised.value.message == message
    assert raised.value.details == {
        "kind": "PatchOptions",
        "group": "meta.k8s.io",
        "causes": [cause],
    }


def test_valid_patch_options_pass() -> None:
    validate_patch_options(APPLY_PATCH, field_manager="kubectl", force=True)
    validate_patch_options(STRATEGIC_MERGE_PATCH, field_manager="", force=None)
