"""Secrets: base64 data under config keys, a type (Opaque by default) naming the keys it
needs, optionally immutable. `stringData` is write-only: kube-apiserver folds it into
`data` while decoding, so it is never stored nor returned."""

from __future__ import annotations

import base64
import json
from typing import Any, ClassVar

from timonel.api.errors import FieldError, invalid_value, required
from timonel.api.objects import Object
from timonel.kinds.base import AGE_COLUMN, NAME_COLUMN, Column, Strategy
from timonel.kinds.core.common import (
    Base64Error,
    as_dict,
    as_str,
    config_key_problems,
    decode_base64,
    immutable,
    key,
    too_long,
)
from timonel.kinds.core.configmap import MAX_SIZE, immutable_data_errors, undecodable
from timonel.kinds.printing import creation_age, field_description

SERVICE_ACCOUNT_TOKEN = "kubernetes.io/service-account-token"
SERVICE_ACCOUNT_NAME_ANNOTATION = "kubernetes.io/service-account.name"


class SecretStrategy(Strategy):
    kind = "Secret"
    plural = "secrets"
    singular = "secret"
    field_labels = ("type",)
    columns: ClassVar[tuple[Column, ...]] = (
        NAME_COLUMN,
        Column("Type", description=field_description("", "v1", "Secret", "type")),
        Column("Data", description=field_description("", "v1", "Secret", "data")),
        AGE_COLUMN,
    )

    def default(self, obj: Object) -> None:
        data = obj.get("data")
        for value in as_dict(data).values():
            if isinstance(value, str):
                try:
                    decode_base64(value)
                except Base64Error as problem:
                    raise undecodable("Secret", problem) from None
        string_data = obj.pop("stringData", None)
        if isinstance(string_data, dict) and string_data:
            if not isinstance(data, dict):
                data = {}
                obj["data"] = data
            for name, value in string_data.items():
                text = value if isinstance(value, str) else ""
                data[name] = base64.b64encode(text.encode("utf-8")).decode("ascii")
        if not obj.get("type"):
            obj["type"] = "Opaque"

    def validate(self, obj: Object) -> list[FieldError]:
        result: list[FieldError] = []
        data = as_dict(obj.get("data"))
        decoded: dict[str, bytes] = {}
        size = 0
        for name, value in data.items():
            for problem in config_key_problems(name):
                result.append(invalid_value(key("data", name), name, problem))
            try:
                decoded[name] = decode_base64(value) if isinstance(value, str) else b""
            except Base64Error:
                decoded[name] = b""
            size += len(decoded[name])
        if size > MAX_SIZE:
            result.append(too_long("data", MAX_SIZE))
        result += _validate_type(obj, decoded)
        return result

    def validate_update(self, new: Object, old: Object) -> list[FieldError]:
        result: list[FieldError] = []
        if new.get("type") != old.get("type"):
            result.append(immutable("type", new.get("type", "")))
        result += immutable_data_errors(new, old, ("data",))
        return result + self.validate(new)

    def table_row(self, obj: Object) -> list[Any]:
        meta = as_dict(obj.get("metadata"))
        return [
            meta.get("name", ""),
            as_str(obj.get("type")),
            len(as_dict(obj.get("data"))),
            creation_age(obj),
        ]

    def selectable_fields(self, obj: Object) -> dict[str, str]:
        fields = super().selectable_fields(obj)
        fields["type"] = as_str(obj.get("type"))
        return fields


def _validate_type(secret: Object, data: dict[str, bytes]) -> list[FieldError]:
    kind = secret.get("type")
    if kind == SERVICE_ACCOUNT_TOKEN:
        annotations = as_dict(as_dict(secret.get("metadata")).get("annotations"))
        if not annotations.get(SERVICE_ACCOUNT_NAME_ANNOTATION):
            return [required(f"metadata.annotations[{SERVICE_ACCOUNT_NAME_ANNOTATION}]")]
    elif kind in ("kubernetes.io/dockercfg", "kubernetes.io/dockerconfigjson"):
        name = ".dockercfg" if kind == "kubernetes.io/dockercfg" else ".dockerconfigjson"
        if name not in data:
            return [required(key("data", name))]
        problem = go_json_object_problem(data[name])
        if problem:
            return [invalid_value(key("data", name), "<secret contents redacted>", problem)]
    elif kind == "kubernetes.io/basic-auth":
        if "username" not in data and "password" not in data:
            return [required("data[username]"), required("data[password]")]
    elif kind == "kubernetes.io/ssh-auth":
        if not data.get("ssh-privatekey"):
            return [required("data[ssh-privatekey]")]
    elif kind == "kubernetes.io/tls":
        return [required(key("data", name)) for name in ("tls.crt", "tls.key") if name not in data]
    return []


def go_json_object_problem(raw: bytes) -> str:
    """Why json.Unmarshal into a map would fail, worded as Go's encoding/json; "" if it
    would not."""
    text = raw.decode("utf-8", "replace")
    if not text.strip():
        return "unexpected end of JSON input"
    try:
        value = json.loads(text)
    except json.JSONDecodeError as problem:
        if problem.pos >= len(text):
            return "unexpected end of JSON input"
        char = text[problem.pos]
        context = (
            "looking for beginning of value"
            if problem.pos == len(text) - len(text.lstrip())
            else (
                "after top-level value"
                if "Extra data" in problem.msg
                else "looking for beginning of value"
            )
        )
        return f"invalid character {char!r} {context}"
    if value is not None and not isinstance(value, dict):
        go_type = {list: "array", str: "string", bool: "bool"}.get(type(value), "number")
        return f"json: cannot unmarshal {go_type} into Go value of type map[string]interface {{}}"
    return ""
