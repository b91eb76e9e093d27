"""The /openapi/v2 document: Swagger 2.0 derived from the v3 documents, and its gnostic protobuf."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Any

import orjson
import yaml

from timonel.kinds.registry import builtin_registry
from timonel.schema.openapi import OpenAPIV3
from timonel.schema.openapiv2 import (
    encode_protobuf,
    swagger_document,
    swagger_schema,
    wants_protobuf,
)


def fields(data: bytes) -> Iterator[tuple[int, int | bytes]]:
    """(field number, value) of one protobuf message: ints for varints, bytes otherwise."""
    pos = 0
    while pos < len(data):
        key, pos = varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = varint(data, pos)
            yield number, value
        elif wire == 1:
            yield number, data[pos : pos + 8]
            pos += 8
        elif wire == 2:
            length, pos = varint(data, pos)
            yield number, data[pos : pos + length]
            pos += length
        else:
            raise AssertionError(f"unexpected wire type {wire}")


def varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return result, pos


def field(data: bytes, number: int) -> list[Any]:
    return [value for n, value in fields(data) if n == number]


def named(data: bytes) -> dict[str, bytes]:
    """A gnostic map message (repeated NamedX at field 1 or 2) as name -> value bytes."""
    out = {}
    for _, entry in fields(data):
        assert isinstance(entry, bytes)
        (name,) = field(entry, 1)
        (value,) = field(entry, 2)
        out[name.decode()] = value
    return out


def vendor_extensions(data: bytes, number: int) -> dict[str, Any]:
    out = {}
    for entry in field(data, number):
        (name,) = field(entry, 1)
        (value,) = field(entry, 2)
        (text,) = field(value, 2)
        out[name.decode()] = yaml.safe_load(text)
    return out


def test_accept_header_chooses_protobuf() -> None:
    assert wants_protobuf("application/com.github.proto-openapi.spec.v2@v1.0+protobuf")
    assert wants_protobuf("application/com.github.proto-openapi.spec.v2.v1.0+protobuf, */*")
    assert not wants_protobuf("application/json")
    assert not wants_protobuf(None)


def test_schemas_translate_to_swagger_2() -> None:
    wrapped = {
        "allOf": [{"$ref": "#/components/schemas/io.k8s.api.core.v1.PodSpec"}],
        "description": "the pod",
        "x-kubernetes-patch-strategy": "merge",
    }
    assert swagger_schema(wrapped) == {
        "$ref": "#/definitions/io.k8s.api.core.v1.PodSpec",
        "description": "the pod",
        "x-kubernetes-patch-strategy": "merge",
    }
    int_or_string = {
        "format": "int-or-string",
        "oneOf": [{"type": "integer"}, {"type": "string"}],
    }
    assert swagger_schema(int_or_string) == {"format": "int-or-string", "type": "string"}
    assert swagger_schema({"type": "object", "nullable": True, "properties": {}}) == {
        "type": "object",
        "properties": {},
    }


def test_document_carries_paths_definitions_and_patch_parameters() -> None:
    registry = builtin_registry()
    as_json, as_protobuf, tag = OpenAPIV3(lambda: list(registry)).swagger()
    document = orjson.loads(as_json)
    assert document["swagger"] == "2.0"
    deployment = document["definitions"]["io.k8s.api.apps.v1.Deployment"]
    assert deployment["x-kubernetes-group-version-kind"] == [
        {"group": "apps", "kind": "Deployment", "version": "v1"}
    ]
    containers = document["definitions"]["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]
    assert containers["x-kubernetes-patch-merge-key"] == "name"
    assert containers["items"] == {"$ref": "#/definitions/io.k8s.api.core.v1.Container"}
    patch = document["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"]
    assert patch["parameters"][0] == {
        "in": "body",
        "name": "body",
        "required": True,
        "schema": {"$ref": "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.Patch"},
    }
    assert "fieldValidation" in {p["name"] for p in patch["parameters"]}
    assert as_protobuf == encode_protobuf(document)
    assert len(tag) == 128


def test_every_reference_names_a_definition() -> None:
    registry = builtin_registry()
    document = orjson.loads(OpenAPIV3(lambda: list(registry)).swagger()[0])
    definitions = document["definitions"]
    missing = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str):
                if ref.removeprefix("#/definitions/") not in definitions:
                    missing.append(ref)
                assert "type" not in node, node
            for key, value in node.items():
                for child in value.values() if key == "properties" else [value]:
                    walk(child)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    walk(document)
    assert missing == []


def test_protobuf_follows_gnostic_field_numbers() -> None:
    v3 = {
        "components": {
            "schemas": {
                "Thing": {
                    "description": "a thing",
                    "properties": {
                        "count": {"type": "integer", "format": "int32", "minimum": -1},
                        "names": {
                            "type": "array",
                            "items": {"type": "string"},
                            "x-kubernetes-list-type": "set",
                        },
                    },
                    "required": ["count"],
                    "type": "object",
                    "x-kubernetes-group-version-kind": [
                        {"group": "example.com", "kind": "Thing", "version": "v1"}
                    ],
                }
            }
        },
        "paths": {
            "/apis/example.com/v1/things/{name}": {
                "patch": {
                    "operationId": "patchThing",
                    "parameters": [
                        {
                            "in": "query",
                            "name": "fieldValidation",
                            "schema": {"type": "string", "uniqueItems": True},
                        }
                    ],
                    "requestBody": {
                        "content": {"application/merge-patch+json": {"schema": {}}},
                        "required": True,
                    },
                    "responses": {
                        "200": {
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/Thing"}
                                }
                            },
                            "description": "OK",
                        }
                    },
                    "x-kubernetes-group-version-kind": {
                        "group": "example.com",
                        "kind": "Thing",
                        "version": "v1",
                    },
                },
                "parameters": [
                    {
                        "in": "path",
                        "name": "name",
                        "required": True,
                        "schema": {"type": "string"},
                    }
                ],
            }
        },
    }
    message = encode_protobuf(swagger_document([v3], "v1.32.0"))
    assert field(message, 1) == [b"2.0"]
    (info,) = field(message, 2)
    assert field(info, 2) == [b"v1.32.0"]

    (definitions,) = field(message, 9)
    thing = named(definitions)["Thing"]
    assert field(thing, 4) == [b"a thing"]
    assert field(thing, 19) == [b"count"]
    (type_item,) = field(thing, 22)
    assert field(type_item, 1) == [b"object"]
    assert vendor_extensions(thing, 31) == {
        "x-kubernetes-group-version-kind": [
            {"group": "example.com", "kind": "Thing", "version": "v1"}
        ]
    }
    (properties,) = field(thing, 25)
    count = named(properties)["count"]
    assert field(count, 2) == [b"int32"]
    assert [struct.unpack("<d", raw)[0] for raw in field(count, 9)] == [-1.0]
    names = named(properties)["names"]
    (items,) = field(names, 23)
    (item_schema,) = field(items, 1)
    assert field(field(item_schema, 22)[0], 1) == [b"string"]

    (paths,) = field(message, 8)
    path_item = {field(entry, 1)[0].decode(): field(entry, 2)[0] for entry in field(paths, 2)}[
        "/apis/example.com/v1/things/{name}"
    ]
    (patch,) = field(path_item, 8)
    assert field(patch, 5) == [b"patchThing"]
    assert vendor_extensions(patch, 13)["x-kubernetes-group-version-kind"]["kind"] == "Thing"
    body, query = field(patch, 8)
    (body_parameter,) = field(field(body, 1)[0], 1)
    assert field(body_parameter, 3) == [b"body"]
    (non_body,) = field(field(query, 1)[0], 2)
    (query_schema,) = field(non_body, 3)
    assert field(query_schema, 4) == [b"fieldValidation"]
    assert field(query_schema, 6) == [b"string"]
    (responses,) = field(patch, 9)
    ok = named(responses)["200"]
    (response,) = field(ok, 1)
    (schema_item,) = field(response, 2)
    (schema,) = field(schema_item, 1)
    assert field(schema, 1) == [b"#/definitions/Thing"]
    (path_parameter,) = field(path_item, 9)
    (path_schema,) = field(field(field(path_parameter, 1)[0], 2)[0], 4)
    assert field(path_schema, 1) == [1]
    assert field(path_schema, 5) == [b"string"]
