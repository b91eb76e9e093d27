"""Table-driven patch cases from testdata/: JSON patch, JSON merge patch, strategic merge patch."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from timonel.api.errors import StatusError
from timonel.patch.jsonpatch import MAX_OPERATIONS, apply_json_patch
from timonel.patch.mergepatch import apply_merge_patch
from timonel.patch.strategic import apply_strategic_merge_patch
from timonel.schema.definitions import SchemaNode, kubernetes_definitions

TESTDATA = Path(__file__).parent / "testdata"


def load(name: str) -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = yaml.safe_load((TESTDATA / name).read_text())
    return cases


def ids(cases: list[dict[str, Any]]) -> list[str]:
    return [case["name"] for case in cases]


def schema_for(kind: list[str]) -> SchemaNode:
    schema = kubernetes_definitions().for_kind(*kind)
    assert schema is not None
    return schema


def check(case: dict[str, Any], run: Any) -> None:
    before = copy.deepcopy(case)
    if "error" in case:
        with pytest.raises(StatusError) as raised:
            run()
        expected = case["error"]
        assert (raised.value.code, raised.value.reason, raised.value.message) == (
            expected["code"],
            expected["reason"],
            expected["message"],
        )
        if "details" in expected:
            assert raised.value.status()["details"] == expected["details"]
    else:
        assert run() == case["expected"]
    assert case == before, "the inputs were modified"


JSON_PATCH_CASES = load("jsonpatch.yaml")
MERGE_PATCH_CASES = load("mergepatch.yaml")
STRATEGIC_CASES = load("strategic.yaml")


@pytest.mark.parametrize("case", JSON_PATCH_CASES, ids=ids(JSON_PATCH_CASES))
def test_json_patch(case: dict[str, Any]) -> None:
    check(case, lambda: apply_json_patch(case["document"], case["patch"]))


@pytest.mark.parametrize("case", MERGE_PATCH_CASES, ids=ids(MERGE_PATCH_CASES))
def test_merge_patch(case: dict[str, Any]) -> None:
    check(case, lambda: apply_merge_patch(case["document"], case["patch"]))


@pytest.mark.parametrize("case", STRATEGIC_CASES, ids=ids(STRATEGIC_CASES))
def test_strategic_merge_patch(case: dict[str, Any]) -> None:
    schema = schema_for(case["kind"])
    check(case, lambda: apply_strategic_merge_patch(case["original"], case["patch"], schema))


def test_json_patch_with_too_many_operations_is_too_large() -> None:
    operations = [{"op": "test", "path": "/a", "value": 1}] * (MAX_OPERATIONS + 1)
    with pytest.raises(StatusError) as raised:
        apply_json_patch({"a": 1}, operations)
    assert raised.value.code == 413
    assert raised.value.reason == "RequestEntityTooLarge"
    assert raised.value.message == (
        "Request entity too large: The allowed maximum operations in a JSON patch is 10000, got 10001"
    )


def test_json_patch_decoding_without_field_validation_uses_the_library_wording() -> None:
    with pytest.raises(StatusError) as raised:
        apply_json_patch({"a": 1}, {"op": "remove"}, strict_decoding=False)
    assert raised.value.code == 400
    assert (
        raised.value.message
        == "json: cannot unmarshal object into Go value of type jsonpatch.Patch"
    )


def test_failed_json_patch_status_matches_kube_apiserver() -> None:
    with pytest.raises(StatusError) as raised:
        apply_json_patch({"a": 1}, [{"op": "test", "path": "/a", "value": 2}])
    assert raised.value.status() == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "the server rejected our request due to an error in our request",
        "reason": "Invalid",
        "details": {},
        "code": 422,
    }
