"""Kubernetes protobuf request bodies, decoded into the JSON-shaped objects the API handles.

kubectl 1.32's typed clients send bodies as `application/vnd.kubernetes.protobuf`: the
4-byte magic `k8s\\0`, then a `runtime.Unknown` envelope

    1 typeMeta {1 apiVersion, 2 kind}   2 raw   3 contentEncoding   4 contentType

whose `raw` is the object encoded per its `generated.proto`. `decode` turns that into
exactly the dict the JSON body of the same Go object would have been, so everything after
body decoding sees one form. The JSON form follows Go's encoder, field by field, from the
tables in `protobuf_messages` (which state each field's Go shape and omitempty tag):

* Go's protobuf encoder writes every non-pointer scalar, so an empty `namespace` arrives on
  the wire; omitempty leaves it out of the JSON, while a pointer (`replicas`) that arrives
  is written even when zero.
* A struct held by value is always written, decoded from empty bytes when absent
  (`"strategy": {}`, `"status": {}`); a zero `metav1.Time` is `null`.
* A list or map without omitempty that is empty is `null`, as Go writes a nil slice.

Fields not in the tables are skipped, as kube-apiserver drops unknown fields. Anything
malformed (bad magic, truncated varint, wrong wire type, unknown kind) is a 400
BadRequest; no other exception escapes `decode`.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any, Final

import orjson

from timonel.api import errors
from timonel.api.objects import Object
from timonel.apiserver.protobuf_messages import ANY_VERSION_KINDS, KINDS, MESSAGES

MAGIC: Final = b"k8s\x00"

_VARINT: Final = 0
_FIXED64: Final = 1
_LENGTH_DELIMITED: Final = 2
_START_GROUP: Final = 3
_END_GROUP: Final = 4
_FIXED32: Final = 5

_WIRE_NAMES: Final = {
    _VARINT: "varint",
    _FIXED64: "64-bit",
    _LENGTH_DELIMITED: "length-delimited",
    _START_GROUP: "start-group",
    _END_GROUP: "end-group",
    _FIXED32: "32-bit",
}

_VARINT_TYPES: Final = frozenset({"int32", "int64", "bool"})
_SCALAR_TYPES: Final = _VARINT_TYPES | {"string", "bytes"}
# Well-known messages with a JSON form of their own (see _decode_well_known).
_WELL_KNOWN_TYPES: Final = frozenset(
    {"Time", "Quantity", "IntOrString", "FieldsV1", "RawExtension", "StringList"}
)

# The Unix time of Go's zero time.Time (January 1, year 1), which JSON writes as null.
_GO_ZERO_TIME_SECONDS: Final = -62135596800
_UNIX_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


class ProtobufError(Exception):
    """The body is not a well-formed message of the type its envelope names."""


# --- the wire format ----------------------------------------------------------------------


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    """The unsigned varint at `pos` (its low 64 bits, as Go keeps them) and the next position."""
    result = 0
    for shift in range(0, 70, 7):
        if pos >= len(data):
            raise ProtobufError("unexpected end of data inside a varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result & 0xFFFF_FFFF_FFFF_FFFF, pos
    raise ProtobufError("varint longer than 10 bytes (integer overflow)")


def _take(data: bytes, pos: int, size: int) -> tuple[bytes, int]:
    end = pos + size
    if end > len(data):
        raise ProtobufError(
            f"unexpected end of data: {size} bytes announced, {len(data) - pos} left"
        )
    return data[pos:end], end


def _read_key(data: bytes, pos: int) -> tuple[int, int, int]:
    key, pos = _read_varint(data, pos)
    number, wire_type = key >> 3, key & 7
    if number == 0 or number >= 1 << 29:
        raise ProtobufError(f"illegal field number {number}")
    if wire_type not in _WIRE_NAMES:
        raise ProtobufError(f"illegal wire type {wire_type} for field {number}")
    return number, wire_type, pos


def _skip_group(data: bytes, pos: int, group_number: int) -> int:
    """The position after the end-group key that closes `group_number`'s group."""
    open_groups = [group_number]
    while open_groups:
        if pos >= len(data):
            raise ProtobufError(f"unexpected end of data inside group {open_groups[-1]}")
        number, wire_type, pos = _read_key(data, pos)
        if wire_type == _START_GROUP:
            open_groups.append(number)
        elif wire_type == _END_GROUP:
            if number != open_groups.pop():
                raise ProtobufError(f"end-group {number} does not close the open group")
        else:
            _, pos = _read_value(data, pos, wire_type)
    return pos


def _read_value(data: bytes, pos: int, wire_type: int) -> tuple[int | bytes, int]:
    if wire_type == _VARINT:
        return _read_varint(data, pos)
    if wire_type == _LENGTH_DELIMITED:
        size, pos = _read_varint(data, pos)
        return _take(data, pos, size)
    if wire_type == _FIXED64:
        raw, pos = _take(data, pos, 8)
        return int.from_bytes(raw, "little"), pos
    if wire_type == _FIXED32:
        raw, pos = _take(data, pos, 4)
        return int.from_bytes(raw, "little"), pos
    raise ProtobufError(f"unexpected {_WIRE_NAMES[wire_type]} key")


def iter_fields(data: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """Each field of one message as (number, wire type, value).

    The value is an int for varint, 64-bit and 32-bit fields and the payload bytes for
    length-delimited ones. Groups (deprecated, never sent by Kubernetes clients) are
    skipped whole and reported with an empty payload, so a known field that arrives as
    one fails the wire-type check.
    """
    pos = 0
    while pos < len(data):
        number, wire_type, pos = _read_key(data, pos)
        if wire_type == _START_GROUP:
            pos = _skip_group(data, pos, number)
            yield number, wire_type, b""
            continue
        value, pos = _read_value(data, pos, wire_type)
        yield number, wire_type, value


def _signed(value: int, bits: int) -> int:
    """Two's complement of the low `bits` bits, as Go's int32/int64 conversions give."""
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


def _iter_packed_varints(data: bytes) -> Iterator[int]:
    pos = 0
    while pos < len(data):
        value, pos = _read_varint(data, pos)
        yield value


# --- the field tables ---------------------------------------------------------------------


class Shape(Enum):
    VALUE = "value"  # a Go value: scalar zero or a struct decoded from nothing when absent
    POINTER = "pointer"  # *T: present only when set
    LIST = "list"  # []T: one wire field per element (packed varints allowed)
    MAP = "map"  # map[string]T: one {1 key, 2 value} entry message per item


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One protobuf field and the Go field it decodes into."""

    number: int
    json_name: str
    shape: Shape
    type: str
    omitempty: bool
    inline: bool

    @property
    def wire_type(self) -> int:
        return _VARINT if self.type in _VARINT_TYPES else _LENGTH_DELIMITED


@dataclass(frozen=True, slots=True)
class MessageSpec:
    name: str
    fields: tuple[FieldSpec, ...]
    by_number: dict[int, FieldSpec]


def parse_field_spec(number: int, spec: str) -> FieldSpec:
    """A FieldSpec from its table entry, `"<json name> <type>[,omitempty][,inline]"`."""
    json_name, _, rest = spec.partition(" ")
    type_text, *flags = rest.split(",")
    if not json_name or not type_text or set(flags) - {"omitempty", "inline"}:
        raise ValueError(f"malformed field spec {spec!r}")
    shape = Shape.VALUE
    if type_text.startswith("*"):
        shape, type_text = Shape.POINTER, type_text[1:]
    elif type_text.startswith("[]"):
        shape, type_text = Shape.LIST, type_text[2:]
    elif type_text.startswith("map[string]"):
        shape, type_text = Shape.MAP, type_text[len("map[string]") :]
    inline = "inline" in flags
    if inline != (json_name == "...") or (inline and shape is not Shape.VALUE):
        raise ValueError(f"malformed inline field spec {spec!r}")
    return FieldSpec(
        number, "" if inline else json_name, shape, type_text, "omitempty" in flags, inline
    )


def _compile_messages(tables: dict[str, dict[int, str]]) -> dict[str, MessageSpec]:
    messages: dict[str, MessageSpec] = {}
    for name, table in tables.items():
        fields = tuple(parse_field_spec(number, spec) for number, spec in table.items())
        messages[name] = MessageSpec(name, fields, {f.number: f for f in fields})
    for message in messages.values():
        for spec in message.fields:
            known = (
                spec.type in _SCALAR_TYPES
                or spec.type in _WELL_KNOWN_TYPES
                or spec.type in messages
            )
            if not known:
                raise ValueError(f"{message.name}.{spec.json_name}: unknown type {spec.type!r}")
            if spec.inline and spec.type not in messages:
                raise ValueError(f"{message.name}: inline field of non-message type {spec.type!r}")
    return messages


COMPILED: Final = _compile_messages(MESSAGES)


# --- decoding -----------------------------------------------------------------------------


def decode(body: bytes) -> Object:
    """The object a protobuf request body carries, in its JSON form (400 when malformed)."""
    if not body.startswith(MAGIC):
        raise errors.bad_request(
            "provided data does not appear to be a protobuf message, expected prefix [107 56 115 0]"
        )
    try:
        api_version, kind, raw = _read_envelope(body[len(MAGIC) :])
        message = _message_for(api_version, kind)
        decoded = decode_message(raw, message, kind)
    except ProtobufError as exc:
        raise errors.bad_request(f"unable to decode the protobuf request body: {exc}") from None
    return {"kind": kind, "apiVersion": api_version, **decoded}


def _read_envelope(data: bytes) -> tuple[str, str, bytes]:
    """(apiVersion, kind, raw) of a runtime.Unknown.

    Like kube-apiserver, the contentType is not consulted; a compressed raw is refused.
    """
    type_meta = b""
    raw = b""
    content_encoding = ""
    for number, wire_type, value in iter_fields(data):
        if number in (1, 2, 3, 4):
            payload = _expect_bytes(wire_type, value, "Unknown", number)
            if number == 1:
                type_meta += payload
            elif number == 2:
                raw = payload
            elif number == 3:
                content_encoding = payload.decode("utf-8", "replace")
    if content_encoding:
        raise ProtobufError(f"unsupported contentEncoding {content_encoding!r}")
    api_version = kind = ""
    for number, wire_type, value in iter_fields(type_meta):
        if number == 1:
            api_version = _expect_bytes(wire_type, value, "TypeMeta", number).decode(
                "utf-8", "replace"
            )
        elif number == 2:
            kind = _expect_bytes(wire_type, value, "TypeMeta", number).decode("utf-8", "replace")
    return api_version, kind, raw


def _expect_bytes(wire_type: int, value: int | bytes, where: str, number: int) -> bytes:
    if wire_type != _LENGTH_DELIMITED or not isinstance(value, bytes):
        raise ProtobufError(
            f"{where} field {number}: wire type {_WIRE_NAMES[wire_type]}, expected length-delimited"
        )
    return value


def _message_for(api_version: str, kind: str) -> str:
    if kind in KINDS.get(api_version, ()) or (kind in ANY_VERSION_KINDS and api_version):
        return kind
    raise ProtobufError(f'no kind "{kind}" is registered for version "{api_version}"')


def decode_message(data: bytes, name: str, where: str) -> dict[str, Any]:
    """Message `name` from its wire bytes, as Go's JSON encoder would write it."""
    message = COMPILED[name]
    found: dict[int, list[int | bytes]] = {}
    for number, wire_type, value in iter_fields(data):
        spec = message.by_number.get(number)
        if spec is None:
            continue
        values = found.setdefault(number, [])
        if wire_type == spec.wire_type:
            values.append(value)
        elif (
            spec.shape is Shape.LIST
            and spec.wire_type == _VARINT
            and wire_type == _LENGTH_DELIMITED
        ):
            assert isinstance(value, bytes)
            values.extend(_iter_packed_varints(value))
        else:
            raise ProtobufError(
                f"{where}: field {number} ({spec.json_name or spec.type}) has wire type "
                f"{_WIRE_NAMES[wire_type]}, expected {_WIRE_NAMES[spec.wire_type]}"
            )
    out: dict[str, Any] = {}
    for spec in message.fields:
        values = found.get(spec.number, [])
        if spec.inline:
            out.update(decode_message(_joined(values), spec.type, where))
            continue
        path = f"{where}.{spec.json_name}"
        present, value = _field_json(spec, values, path)
        if present:
            out[spec.json_name] = value
    return out


def _joined(values: list[int | bytes]) -> bytes:
    """Every occurrence of a message field, concatenated: protobuf merges them in order."""
    return b"".join(v for v in values if isinstance(v, bytes))


def _field_json(spec: FieldSpec, values: list[int | bytes], path: str) -> tuple[bool, Any]:
    """(whether Go writes the field, its JSON value) for the wire values of one field."""
    if spec.shape is Shape.LIST:
        if not values:
            return not spec.omitempty, None
        return True, [_value_json(spec.type, v, f"{path}[{i}]") for i, v in enumerate(values)]
    if spec.shape is Shape.MAP:
        if not values:
            return not spec.omitempty, None
        entries: dict[str, Any] = {}
        for entry in values:
            assert isinstance(entry, bytes)
            key, value = _map_entry(entry, spec.type, path)
            entries[key] = value
        return True, dict(sorted(entries.items()))  # Go writes map keys sorted
    if spec.shape is Shape.POINTER:
        if not values:
            return not spec.omitempty, None
        return True, _value_json(spec.type, _last_or_joined(spec.type, values), path)
    if spec.type in _SCALAR_TYPES:
        value = _value_json(spec.type, values[-1], path) if values else _zero_scalar(spec.type)
        return not (spec.omitempty and value in ("", 0, False, None)), value
    return True, _value_json(spec.type, _joined(values), path)


def _last_or_joined(type_name: str, values: list[int | bytes]) -> int | bytes:
    return values[-1] if type_name in _SCALAR_TYPES else _joined(values)


def _zero_scalar(type_name: str) -> Any:
    """Go's zero value in JSON; a []byte's is nil, which Go writes as null."""
    return {"string": "", "int32": 0, "int64": 0, "bool": False, "bytes": None}[type_name]


def _map_entry(data: bytes, value_type: str, path: str) -> tuple[str, Any]:
    key = ""
    value_parts: list[int | bytes] = []
    value_wire_type = _VARINT if value_type in _VARINT_TYPES else _LENGTH_DELIMITED
    for number, wire_type, value in iter_fields(data):
        if number == 1:
            key = _expect_bytes(wire_type, value, f"{path} entry key", 1).decode("utf-8", "replace")
        elif number == 2:
            if wire_type != value_wire_type:
                raise ProtobufError(
                    f"{path}: map value has wire type {_WIRE_NAMES[wire_type]}, "
                    f"expected {_WIRE_NAMES[value_wire_type]}"
                )
            value_parts.append(value)
    entry_path = f"{path}[{key!r}]"
    if not value_parts:
        # An entry without a value holds the zero value; Go starts a []byte value empty, not nil.
        if value_type == "bytes":
            return key, ""
        if value_type in _SCALAR_TYPES:
            return key, _zero_scalar(value_type)
        return key, _value_json(value_type, b"", entry_path)
    return key, _value_json(value_type, _last_or_joined(value_type, value_parts), entry_path)


def _value_json(type_name: str, value: int | bytes, path: str) -> Any:
    """One wire value of `type_name` in its JSON form."""
    if isinstance(value, int):
        if type_name == "int32":
            return _signed(value, 32)
        if type_name == "int64":
            return _signed(value, 64)
        return value != 0  # bool
    if type_name == "string":
        return value.decode("utf-8", "replace")  # Go writes invalid UTF-8 as U+FFFD
    if type_name == "bytes":
        return base64.b64encode(value).decode("ascii")
    if type_name in _WELL_KNOWN_TYPES:
        return _decode_well_known(type_name, value, path)
    return decode_message(value, type_name, path)


def _decode_well_known(type_name: str, data: bytes, path: str) -> Any:
    fields: dict[int, int | bytes] = {}
    items: list[str] = []
    for number, wire_type, value in iter_fields(data):
        expected = _WELL_KNOWN_WIRE_TYPES[type_name].get(number)
        if expected is None:
            continue
        if wire_type != expected:
            raise ProtobufError(
                f"{path}: {type_name} field {number} has wire type {_WIRE_NAMES[wire_type]}, "
                f"expected {_WIRE_NAMES[expected]}"
            )
        if type_name == "StringList":
            assert isinstance(value, bytes)
            items.append(value.decode("utf-8", "replace"))
        fields[number] = value
    if type_name == "Time":
        return _time_json(_int_field(fields, 1, 64), _int_field(fields, 2, 32), path)
    if type_name == "Quantity":
        # The canonical string Go's encoder wrote; quantities are checked with the object.
        return _bytes_field(fields, 1).decode("utf-8", "replace") if 1 in fields else "0"
    if type_name == "IntOrString":
        return _int_or_string_json(fields, path)
    if type_name in ("FieldsV1", "RawExtension"):
        return _embedded_json(fields, path)
    return items  # StringList


_WELL_KNOWN_WIRE_TYPES: Final[dict[str, dict[int, int]]] = {
    "Time": {1: _VARINT, 2: _VARINT},  # seconds, nanos
    "Quantity": {1: _LENGTH_DELIMITED},  # string
    "IntOrString": {1: _VARINT, 2: _VARINT, 3: _LENGTH_DELIMITED},  # type, intVal, strVal
    "FieldsV1": {1: _LENGTH_DELIMITED},  # Raw
    "RawExtension": {1: _LENGTH_DELIMITED},  # raw
    "StringList": {1: _LENGTH_DELIMITED},  # items
}


def _int_field(fields: dict[int, int | bytes], number: int, bits: int) -> int:
    value = fields.get(number, 0)
    assert isinstance(value, int)
    return _signed(value, bits)


def _bytes_field(fields: dict[int, int | bytes], number: int) -> bytes:
    value = fields.get(number, b"")
    assert isinstance(value, bytes)
    return value


def _time_json(seconds: int, nanos: int, path: str) -> str | None:
    """metav1.Time: RFC 3339 in UTC to the second; null for the zero time."""
    if seconds == 0 and nanos == 0:
        return None
    seconds += nanos // 1_000_000_000  # Go's time.Unix normalises the nanoseconds
    if seconds == _GO_ZERO_TIME_SECONDS:
        return None
    try:
        moment = _UNIX_EPOCH + timedelta(seconds=seconds)
    except OverflowError:
        raise ProtobufError(f"{path}: time {seconds}s after the epoch is out of range") from None
    # Written field by field: strftime drops the zero padding of years before 1000.
    return (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}"
        f"T{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}Z"
    )


def _int_or_string_json(fields: dict[int, int | bytes], path: str) -> int | str:
    kind = _int_field(fields, 1, 64)
    if kind == 0:
        return _int_field(fields, 2, 32)
    if kind == 1:
        return _bytes_field(fields, 3).decode("utf-8", "replace")
    raise ProtobufError(f"{path}: impossible IntOrString type {kind}")


def _embedded_json(fields: dict[int, int | bytes], path: str) -> Any:
    """FieldsV1 and RawExtension carry JSON bytes, written out verbatim (null when absent)."""
    if 1 not in fields:
        return None
    try:
        return orjson.loads(_bytes_field(fields, 1))
    except orjson.JSONDecodeError as exc:
        raise ProtobufError(f"{path}: embedded object is not JSON: {exc}") from None
