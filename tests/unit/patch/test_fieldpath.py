"""Field paths and sets: their FieldsV1 form, their order and their algebra."""

from __future__ import annotations

import json
from typing import Any

import pytest

from timonel.patch._gofmt import go_float_json, go_float_v, go_json, go_v
from timonel.patch.fieldpath import (
    FieldSet,
    element_order,
    field_element,
    key_element,
    path_string,
    value_element,
)

F = field_element


def test_fields_v1_round_trip_keeps_members_with_children() -> None:
    fields = {
        "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
        "f:spec": {
            "f:containers": {'k:{"name":"nginx"}': {".": {}, "f:image": {}}},
            "f:finalizers": {'v:"a"': {}},
        },
    }
    parsed = FieldSet.from_fields_v1(fields)
    assert parsed.has((F("metadata"), F("labels")))
    assert parsed.has((F("metadata"), F("labels"), F("app")))
    assert not parsed.has((F("metadata"),))
    assert parsed.to_fields_v1() == fields


def test_elements_sort_fields_then_keys_then_values_then_indexes() -> None:
    elements = [
        "i:0",
        'v:"b"',
        "v:2",
        'k:{"name":"b"}',
        'k:{"containerPort":80,"protocol":"UDP"}',
        'k:{"containerPort":80,"protocol":"TCP"}',
        "f:b",
        "f:a",
    ]
    assert sorted(elements, key=element_order) == [
        "f:a",
        "f:b",
        'k:{"containerPort":80,"protocol":"TCP"}',
        'k:{"containerPort":80,"protocol":"UDP"}',
        'k:{"name":"b"}',
        "v:2",
        'v:"b"',
        "i:0",
    ]


@pytest.mark.parametrize(
    ("path", "text"),
    [
        ((F("spec"), F("replicas")), ".spec.replicas"),
        (
            (F("spec"), F("containers"), key_element([("name", "nginx")]), F("image")),
            '.spec.containers[name="nginx"].image',
        ),
        (
            (F("ports"), key_element([("containerPort", 80), ("protocol", "TCP")])),
            '.ports[containerPort=80,protocol="TCP"]',
        ),
        ((F("metadata"), F("finalizers"), value_element("x")), '.metadata.finalizers[="x"]'),
        ((F("args"), "i:2"), ".args[2]"),
    ],
)
def test_path_strings_read_as_in_conflict_messages(path: tuple[str, ...], text: str) -> None:
    assert path_string(path) == text


def test_key_elements_are_compact_sorted_json() -> None:
    assert (
        key_element([("containerPort", 80), ("protocol", "TCP")])
        == 'k:{"containerPort":80,"protocol":"TCP"}'
    )
    assert value_element("a<b") == 'v:"a\\u003cb"'


def test_set_algebra() -> None:
    a = FieldSet.of((F("a"),), (F("b"), F("c")), (F("b"), F("d")))
    b = FieldSet.of((F("b"),), (F("b"), F("c")))
    assert a.union(b) == FieldSet.of((F("a"),), (F("b"),), (F("b"), F("c")), (F("b"), F("d")))
    assert a.intersection(b) == FieldSet.of((F("b"), F("c")))
    assert a.difference(b) == FieldSet.of((F("a"),), (F("b"), F("d")))
    assert a.recursive_difference(b) == FieldSet.of((F("a"),))
    assert list(a.paths()) == [(F("a"),), (F("b"), F("c")), (F("b"), F("d"))]


@pytest.mark.parametrize(
    "bad",
    [{"x:y": {}}, {"f": {}}, {"f:a": []}, {'k:["a"]': {}}, "f:a"],
)
def test_malformed_fields_v1_is_refused(bad: Any) -> None:
    with pytest.raises(ValueError):
        FieldSet.from_fields_v1(bad)


@pytest.mark.parametrize(
    ("value", "as_json", "as_v"),
    [
        (1.0, "1", "1"),
        (1.5, "1.5", "1.5"),
        (1e6, "1000000", "1e+06"),
        (1234567.0, "1234567", "1.234567e+06"),
        (1e21, "1e+21", "1e+21"),
        (1.5e-7, "1.5e-7", "1.5e-07"),
        (0.0001, "0.0001", "0.0001"),
        (-2.25, "-2.25", "-2.25"),
    ],
)
def test_floats_print_as_go_prints_them(value: float, as_json: str, as_v: str) -> None:
    assert go_float_json(value) == as_json
    assert go_float_v(value) == as_v


def test_go_json_and_go_v_of_unstructured_values() -> None:
    value = {"b": [1, "x", None, True], "a": {"<": 2.0}}
    assert go_json(value) == '{"a":{"\\u003c":2},"b":[1,"x",null,true]}'
    assert json.loads(go_json(value)) == {"a": {"<": 2}, "b": [1, "x", None, True]}
    assert go_v(value) == "map[a:map[<:2] b:[1 x <nil> true]]"
