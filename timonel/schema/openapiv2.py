"""The Swagger 2.0 document kube-apiserver serves at /openapi/v2, derived from the v3 documents.

kubectl still reads /openapi/v2 where OpenAPI v3 does not answer its question: client-side
validation (`--validate=strict` for a kind no PATCH operation in v3 declares, such as the
`v1/List` that `kubectl get -o yaml` writes) and the patch metadata of `apply`. It asks for
the gnostic protobuf form (`application/com.github.proto-openapi.spec.v2@v1.0+protobuf`,
messages of gnostic's `openapiv2/OpenAPIv2.proto`); other clients get the same document as
JSON.

Swagger 2.0 has fewer schema words than OpenAPI 3.0, so the translation loses what kube-openapi's
v2 output loses too: `oneOf`/`anyOf`/`not` and `nullable` go, a one-of over primitive types
becomes `type: string` (as `IntOrString` and `Quantity` are published in v2), and a `$ref`
wrapped in `allOf` to keep sibling words becomes a `$ref` with those siblings again. Every
`$ref` keeps pointing inside `definitions`, which kubectl's schema parser insists on.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

import orjson

__all__ = [
    "PROTOBUF_CONTENT_TYPE",
    "encode_protobuf",
    "swagger_document",
    "wants_protobuf",
]

# What kubectl asks for; `@` is not allowed in a media type, so the reply is labelled with
# the older spelling, as kube-apiserver labels it (Go's MIME parser rejects the other).
_REQUESTED_PROTOBUF_CONTENT_TYPE: Final = (
    "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
)
PROTOBUF_CONTENT_TYPE: Final = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"

_V3_REFS: Final = "#/components/schemas/"
_V2_REFS: Final = "#/definitions/"
_OPERATIONS: Final = ("get", "put", "post", "delete", "options", "head", "patch")
# Schema words Swagger 2.0 has (gnostic's `Schema` message); anything else but `x-` is dropped.
_SCHEMA_WORDS: Final = frozenset(
    {
        "$ref",
        "format",
        "title",
        "description",
        "default",
        "multipleOf",
        "maximum",
        "exclusiveMaximum",
        "minimum",
        "exclusiveMinimum",
        "maxLength",
        "minLength",
        "pattern",
        "maxItems",
        "minItems",
        "uniqueItems",
        "maxProperties",
        "minProperties",
        "required",
        "enum",
        "additionalProperties",
        "type",
        "items",
        "allOf",
        "properties",
        "discriminator",
        "readOnly",
        "example",
    }
)
_BEARER_TOKEN: Final = {
    "description": "Bearer Token authentication",
    "in": "header",
    "name": "authorization",
    "type": "apiKey",
}


def wants_protobuf(accept: str | None) -> bool:
    """Whether an Accept header asks for the gnostic protobuf form."""
    if not accept:
        return False
    offered = {part.split(";")[0].strip() for part in accept.split(",")}
    return bool(offered & {_REQUESTED_PROTOBUF_CONTENT_TYPE, PROTOBUF_CONTENT_TYPE})


# -- from OpenAPI 3.0 to Swagger 2.0 ----------------------------------------------------------


def _v2_ref(ref: str) -> str:
    return _V2_REFS + ref.removeprefix(_V3_REFS)


def swagger_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """One OpenAPI 3.0 schema in its Swagger 2.0 form."""
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "$ref" and isinstance(value, str):
            out[key] = _v2_ref(value)
        elif key == "properties" and isinstance(value, Mapping):
            out[key] = {name: swagger_schema(prop) for name, prop in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, Mapping):
            out[key] = swagger_schema(value)
        elif key == "allOf" and isinstance(value, list):
            out[key] = [swagger_schema(option) for option in value]
        elif key == "type" and not isinstance(value, str):
            continue  # several types: no Swagger 2.0 form that kubectl parses
        elif key in _SCHEMA_WORDS or key.startswith("x-"):
            out[key] = value
    wrapped = out.get("allOf")
    if (
        isinstance(wrapped, list)
        and len(wrapped) == 1
        and set(wrapped[0]) == {"$ref"}
        and not {"$ref", "type", "properties"} & set(out)
    ):
        out["$ref"] = out.pop("allOf")[0]["$ref"]
    if "type" not in out and "$ref" not in out:
        one_of = [option.get("type") for option in schema.get("oneOf", ()) if option]
        if "string" in one_of:
            out["type"] = "string"
    return out


def _parameter(param: Mapping[str, Any]) -> dict[str, Any]:
    out = {key: param[key] for key in ("description", "in", "name", "required") if key in param}
    for key, value in (param.get("schema") or {}).items():
        if key in ("type", "format", "uniqueItems"):
            out[key] = value
    return out


def _content_schema(content: Mapping[str, Any]) -> dict[str, Any] | None:
    for media in content.values():
        schema = media.get("schema")
        if schema:
            return swagger_schema(schema)
    return None


def _operation(operation: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    request = operation.get("requestBody")
    if request is not None:
        out["consumes"] = list(request.get("content", {}))
    else:
        out["consumes"] = ["*/*"]
    for key in ("description", "operationId"):
        if key in operation:
            out[key] = operation[key]
    parameters = [_parameter(param) for param in operation.get("parameters", ())]
    if request is not None:
        body: dict[str, Any] = {"in": "body", "name": "body", "required": True}
        schema = _content_schema(request.get("content", {}))
        if schema is not None:
            body["schema"] = schema
        parameters.insert(0, body)
    if parameters:
        out["parameters"] = parameters
    produces: list[str] = []
    responses: dict[str, Any] = {}
    for code, response in operation.get("responses", {}).items():
        content = response.get("content", {})
        produces.extend(t for t in content if t not in produces)
        converted: dict[str, Any] = {"description": response.get("description", "")}
        schema = _content_schema(content)
        if schema is not None:
            converted["schema"] = schema
        responses[code] = converted
    out["produces"] = produces
    out["responses"] = responses
    out["schemes"] = ["https"]
    for key, value in operation.items():
        if key == "tags" or key.startswith("x-"):
            out[key] = value
    return out


def _path_item(item: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in item.items():
        if key in _OPERATIONS:
            out[key] = _operation(value)
        elif key == "parameters":
            out[key] = [_parameter(param) for param in value]
    return out


def swagger_document(documents: Iterable[Mapping[str, Any]], version: str) -> dict[str, Any]:
    """The single Swagger 2.0 document of every group-version's OpenAPI 3.0 document."""
    paths: dict[str, Any] = {}
    definitions: dict[str, Any] = {}
    for document in documents:
        for path, item in document.get("paths", {}).items():
            paths[path] = _path_item(item)
        for name, schema in document.get("components", {}).get("schemas", {}).items():
            if name not in definitions:
                definitions[name] = swagger_schema(schema)
    return {
        "definitions": dict(sorted(definitions.items())),
        "info": {"title": "Kubernetes", "version": version},
        "paths": dict(sorted(paths.items())),
        "security": [{"BearerToken": []}],
        "securityDefinitions": {"BearerToken": dict(_BEARER_TOKEN)},
        "swagger": "2.0",
    }


# -- the gnostic protobuf form -------------------------------------------------------------------


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative int64 values take ten bytes, as Go writes them
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _tag(number: int, wire_type: int) -> bytes:
    return _varint(number << 3 | wire_type)


def _message(number: int, payload: bytes) -> bytes:
    return _tag(number, 2) + _varint(len(payload)) + payload


def _string(number: int, value: object) -> bytes:
    return _message(number, str(value).encode()) if value else b""


def _bool(number: int, value: object) -> bytes:
    return _tag(number, 0) + b"\x01" if value is True else b""


def _int(number: int, value: object) -> bytes:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value:
        return b""
    return _tag(number, 0) + _varint(int(value))


def _double(number: int, value: object) -> bytes:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value:
        return b""
    return _tag(number, 1) + struct.pack("<d", float(value))


def _strings(number: int, values: object) -> bytes:
    if not isinstance(values, list):
        return b""
    return b"".join(_message(number, str(value).encode()) for value in values)


def _any(number: int, value: object) -> bytes:
    # gnostic's Any keeps a value as YAML text; JSON is YAML, and is what readers parse it with.
    return _message(number, _message(2, orjson.dumps(value)))


def _anys(number: int, values: object) -> bytes:
    if not isinstance(values, list):
        return b""
    return b"".join(_any(number, value) for value in values)


def _vendor_extensions(number: int, value: Mapping[str, Any]) -> bytes:
    return b"".join(
        _message(number, _string(1, key) + _any(2, item))
        for key, item in value.items()
        if key.startswith("x-")
    )


def _named(number: int, entries: Mapping[str, Any], encode: Callable[[Any], bytes]) -> bytes:
    """A map as gnostic writes it: repeated (name 1, value 2) pairs."""
    return b"".join(
        _message(number, _string(1, name) + _message(2, encode(value)))
        for name, value in entries.items()
    )


Encoder = Callable[[int, Any], bytes]


def _fields(value: Mapping[str, Any], table: Iterable[tuple[str, int, Encoder]]) -> bytes:
    return b"".join(encode(number, value[key]) for key, number, encode in table if key in value)


def _sub_message(encode: Callable[[Any], bytes]) -> Encoder:
    return lambda number, value: _message(number, encode(value))


def _repeated(encode: Callable[[Any], bytes]) -> Encoder:
    return lambda number, values: b"".join(_message(number, encode(v)) for v in values)


def _encode_schema(schema: Mapping[str, Any]) -> bytes:
    return _fields(schema, _SCHEMA_TABLE) + _vendor_extensions(31, schema)


def _encode_additional_properties(value: object) -> bytes:
    if isinstance(value, Mapping):
        return _message(1, _encode_schema(value))
    return _tag(2, 0) + (b"\x01" if value else b"\x00")


_SCHEMA_TABLE: Final[tuple[tuple[str, int, Encoder], ...]] = (
    ("$ref", 1, _string),
    ("format", 2, _string),
    ("title", 3, _string),
    ("description", 4, _string),
    ("default", 5, _any),
    ("multipleOf", 6, _double),
    ("maximum", 7, _double),
    ("exclusiveMaximum", 8, _bool),
    ("minimum", 9, _double),
    ("exclusiveMinimum", 10, _bool),
    ("maxLength", 11, _int),
    ("minLength", 12, _int),
    ("pattern", 13, _string),
    ("maxItems", 14, _int),
    ("minItems", 15, _int),
    ("uniqueItems", 16, _bool),
    ("maxProperties", 17, _int),
    ("minProperties", 18, _int),
    ("required", 19, _strings),
    ("enum", 20, _anys),
    ("additionalProperties", 21, _sub_message(_encode_additional_properties)),
    ("type", 22, _sub_message(lambda t: _strings(1, [t]))),
    ("items", 23, _sub_message(lambda s: _message(1, _encode_schema(s)))),
    ("allOf", 24, _repeated(_encode_schema)),
    ("properties", 25, _sub_message(lambda p: _named(1, p, _encode_schema))),
    ("discriminator", 26, _string),
    ("readOnly", 27, _bool),
    ("example", 30, _any),
)
# Query and form-data parameters number their words one way, path and header ones another.
_QUERY_PARAMETER: Final[tuple[tuple[str, int, Encoder], ...]] = (
    ("required", 1, _bool),
    ("in", 2, _string),
    ("description", 3, _string),
    ("name", 4, _string),
    ("type", 6, _string),
    ("format", 7, _string),
    ("uniqueItems", 20, _bool),
)
_PATH_PARAMETER: Final[tuple[tuple[str, int, Encoder], ...]] = (
    ("required", 1, _bool),
    ("in", 2, _string),
    ("description", 3, _string),
    ("name", 4, _string),
    ("type", 5, _string),
    ("format", 6, _string),
    ("uniqueItems", 19, _bool),
)
_NON_BODY_KINDS: Final = {"header": 1, "formData": 2, "query": 3, "path": 4}


def _encode_parameter(param: Mapping[str, Any]) -> bytes:
    """A `ParametersItem` holding a body or non-body `Parameter`."""
    location = param.get("in", "")
    if location == "body":
        parameter = _message(
            1,
            _string(1, param.get("description"))
            + _string(2, param.get("name"))
            + _string(3, location)
            + _bool(4, param.get("required"))
            + (_message(5, _encode_schema(param["schema"])) if "schema" in param else b""),
        )
    else:
        table = _QUERY_PARAMETER if location in ("query", "formData") else _PATH_PARAMETER
        sub_schema = _fields(param, table) + _vendor_extensions(22, param)
        parameter = _message(2, _message(_NON_BODY_KINDS.get(location, 3), sub_schema))
    return _message(1, parameter)


def _encode_response(response: Mapping[str, Any]) -> bytes:
    """A `ResponseValue` holding a `Response`."""
    payload = _string(1, response.get("description"))
    if "schema" in response:
        payload += _message(2, _message(1, _encode_schema(response["schema"])))
    return _message(1, payload)


_OPERATION_TABLE: Final[tuple[tuple[str, int, Encoder], ...]] = (
    ("tags", 1, _strings),
    ("summary", 2, _string),
    ("description", 3, _string),
    ("operationId", 5, _string),
    ("produces", 6, _strings),
    ("consumes", 7, _strings),
    ("parameters", 8, _repeated(_encode_parameter)),
    ("responses", 9, _sub_message(lambda r: _named(1, r, _encode_response))),
    ("schemes", 10, _strings),
    ("deprecated", 11, _bool),
)


def _encode_operation(operation: Mapping[str, Any]) -> bytes:
    return _fields(operation, _OPERATION_TABLE) + _vendor_extensions(13, operation)


def _encode_path_item(item: Mapping[str, Any]) -> bytes:
    payload = b"".join(
        _message(number, _encode_operation(item[verb]))
        for number, verb in enumerate(_OPERATIONS, start=2)
        if verb in item
    )
    payload += b"".join(_message(9, _encode_parameter(p)) for p in item.get("parameters", ()))
    return payload + _vendor_extensions(10, item)


def _encode_security_scheme(scheme: Mapping[str, Any]) -> bytes:
    """A `SecurityDefinitionsItem` holding an `ApiKeySecurity`."""
    api_key = (
        _string(1, scheme.get("type"))
        + _string(2, scheme.get("name"))
        + _string(3, scheme.get("in"))
        + _string(4, scheme.get("description"))
    )
    return _message(2, api_key)


def encode_protobuf(document: Mapping[str, Any]) -> bytes:
    """A Swagger 2.0 document as a gnostic `openapi.v2.Document` message."""
    info = document.get("info", {})
    out = _string(1, document.get("swagger"))
    out += _message(2, _string(1, info.get("title")) + _string(2, info.get("version")))
    out += _message(8, _named(2, document.get("paths", {}), _encode_path_item))
    out += _message(9, _named(1, document.get("definitions", {}), _encode_schema))
    for requirement in document.get("security", ()):
        out += _message(12, _named(1, requirement, lambda scopes: _strings(1, list(scopes))))
    schemes = document.get("securityDefinitions", {})
    out += _message(13, _named(1, schemes, _encode_security_scheme))
    return out + _vendor_extensions(16, document)
