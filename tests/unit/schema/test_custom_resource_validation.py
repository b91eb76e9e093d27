"""Value validation of custom resources, with kube-apiserver's 422 wording."""

from __future__ import annotations

from typing import Any

import pytest

from timonel.api.errors import invalid
from timonel.schema.definitions import schema_from_openapi
from timonel.schema.fields import validate_custom_resource

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "metadata": {"type": "object", "properties": {"name": {"type": "string", "maxLength": 10}}},
        "spec": {
            "type": "object",
            "required": ["cronSpec"],
            "properties": {
                "cronSpec": {"type": "string", "pattern": "^(\\S+\\s+){4}\\S+$"},
                "image": {"type": "string", "minLength": 2, "maxLength": 5},
                "replicas": {"type": "integer", "format": "int32", "minimum": 1, "maximum": 10},
                "ratio": {"type": "number", "minimum": 0.5, "exclusiveMinimum": True},
                "step": {"type": "integer", "multipleOf": 5},
                "port": {"x-kubernetes-int-or-string": True},
                "mode": {"type": "string", "enum": ["Allow", "Forbid"]},
                "level": {"type": "integer", "enum": [1, 2]},
                "tags": {
                    "type": "array",
                    "items": {"type": "string"},
                    "minItems": 1,
                    "maxItems": 2,
                },
                "unique": {"type": "array", "items": {"type": "integer"}, "uniqueItems": True},
                "labels": {
                    "type": "object",
                    "additionalProperties": {"type": "string"},
                    "maxProperties": 1,
                },
                "when": {"type": "string", "format": "date-time"},
                "optional": {"type": "string", "nullable": True},
                "flag": {"type": "boolean"},
            },
        },
    },
}
NODE = schema_from_openapi(SCHEMA, group="stable.example.com", version="v1", kind="CronTab")


def messages(spec: dict[str, Any], **top: Any) -> list[str]:
    obj = {
        "apiVersion": "stable.example.com/v1",
        "kind": "CronTab",
        "metadata": {"name": "c"},
        "spec": {"cronSpec": "* * * * *", **spec},
        **top,
    }
    return [error.message() for error in validate_custom_resource(NODE, obj)]


def test_a_valid_custom_resource_has_no_errors() -> None:
    assert (
        messages(
            {
                "image": "nginx",
                "replicas": 3,
                "ratio": 0.75,
                "port": "http",
                "mode": "Allow",
                "tags": ["a"],
                "when": "2024-01-01T00:00:00Z",
                "optional": None,
                "level": 2,
                "step": 10,
            }
        )
        == []
    )


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (
            {"replicas": "string"},
            'spec.replicas: Invalid value: "string": spec.replicas in body must be of type integer: "string"',
        ),
        (
            {"flag": "yes"},
            'spec.flag: Invalid value: "string": spec.flag in body must be of type boolean: "string"',
        ),
        (
            {"replicas": 1.5},
            'spec.replicas: Invalid value: "float64": spec.replicas in body must be of type int32: "float64"',
        ),
        (
            {"port": True},
            'spec.port: Invalid value: "boolean": spec.port in body must be of type integer,string: "boolean"',
        ),
        (
            {"tags": "a"},
            'spec.tags: Invalid value: "string": spec.tags in body must be of type array: "string"',
        ),
        (
            {"flag": None},
            'spec.flag: Invalid value: "null": spec.flag in body must be of type boolean: "null"',
        ),
        (
            {"replicas": 0},
            "spec.replicas: Invalid value: 0: spec.replicas in body should be greater than or equal to 1",
        ),
        (
            {"replicas": 11},
            "spec.replicas: Invalid value: 11: spec.replicas in body should be less than or equal to 10",
        ),
        (
            {"ratio": 0.5},
            "spec.ratio: Invalid value: 0.5: spec.ratio in body should be greater than 0.5",
        ),
        ({"step": 7}, "spec.step: Invalid value: 7: spec.step in body should be a multiple of 5"),
        ({"image": "toolong"}, "spec.image: Too long: may not be more than 5 bytes"),
        (
            {"image": "a"},
            'spec.image: Invalid value: "a": spec.image in body should be at least 2 chars long',
        ),
        (
            {"cronSpec": "daily"},
            'spec.cronSpec: Invalid value: "daily": spec.cronSpec in body should match '
            "'^(\\S+\\s+){4}\\S+$'",
        ),
        (
            {"mode": "Sometimes"},
            'spec.mode: Unsupported value: "Sometimes": supported values: "Allow", "Forbid"',
        ),
        ({"level": 3}, 'spec.level: Unsupported value: 3: supported values: "1", "2"'),
        (
            {"tags": []},
            "spec.tags: Invalid value: 0: spec.tags in body should have at least 1 items",
        ),
        ({"tags": ["a", "b", "c"]}, "spec.tags: Too many: 3: must have at most 2 items"),
        (
            {"unique": [1, 1]},
            'spec.unique: Invalid value: "": spec.unique in body shouldn\'t contain duplicates',
        ),
        ({"labels": {"a": "1", "b": "2"}}, "spec.labels: Too many: 2: must have at most 1 items"),
        (
            {"labels": {"a": 1}},
            'spec.labels.a: Invalid value: "integer": spec.labels.a in body must be of type string: "integer"',
        ),
        (
            {"when": "tomorrow"},
            'spec.when: Invalid value: "tomorrow": spec.when in body must be of type date-time: "tomorrow"',
        ),
    ],
)
def test_value_errors_read_like_kube_apiserver(spec: dict[str, Any], expected: str) -> None:
    assert messages(spec) == [expected]


def test_required_fields() -> None:
    obj = {
        "apiVersion": "stable.example.com/v1",
        "kind": "CronTab",
        "metadata": {"name": "c"},
        "spec": {},
    }
    assert [e.message() for e in validate_custom_resource(NODE, obj)] == [
        "spec.cronSpec: Required value"
    ]


def test_the_crd_schema_own_metadata_constraints_apply() -> None:
    obj = {"metadata": {"name": "much-too-long-a-name"}, "spec": {"cronSpec": "* * * * *"}}
    assert [e.message() for e in validate_custom_resource(NODE, obj)] == [
        "metadata.name: Too long: may not be more than 10 bytes"
    ]


def test_integer_values_meet_integer_bounds_truncated() -> None:
    node = schema_from_openapi(
        {"type": "object", "properties": {"n": {"type": "integer", "minimum": 1.5}}}
    )
    # kube-openapi compares an integer with the bound converted to an integer.
    assert validate_custom_resource(node, {"n": 1}) == []


def test_causes_become_a_422_kubectl_prints_one_per_line() -> None:
    errors = validate_custom_resource(NODE, {"spec": {"replicas": "x"}})
    status = invalid("CronTab", "stable.example.com", "c", errors).status()
    assert status["code"] == 422
    assert status["message"] == (
        'CronTab.stable.example.com "c" is invalid: [spec.replicas: Invalid value: "string": '
        'spec.replicas in body must be of type integer: "string", spec.cronSpec: Required value]'
    )
    assert status["details"]["causes"][0] == {
        "reason": "FieldValueTypeInvalid",
        "message": 'Invalid value: "string": spec.replicas in body must be of type integer: "string"',
        "field": "spec.replicas",
    }


def test_any_of_reports_the_composite_failure() -> None:
    node = schema_from_openapi(
        {
            "type": "object",
            "properties": {"v": {"anyOf": [{"type": "integer"}, {"type": "string"}]}},
        }
    )
    found = [e.message() for e in validate_custom_resource(node, {"v": True})]
    assert found[0] == '<nil>: Invalid value: "": "v" must validate at least one schema (anyOf)'
    assert 'v: Invalid value: "boolean": v in body must be of type integer: "boolean"' in found
