"""ConfigMaps: string data and base64 binaryData under config keys, optionally immutable."""

from __future__ import annotations

from typing import Any, ClassVar

from timonel.api import errors
from timonel.api.errors import FieldError, forbidden, invalid_value
from timonel.api.objects import Object
from timonel.kinds.base import AGE_COLUMN, NAME_COLUMN, Column, Strategy
from timonel.kinds.core.common import (
    Base64Error,
    as_dict,
    config_key_problems,
    decode_base64,
    key,
    too_long,
)
from timonel.kinds.printing import creation_age, field_description

MAX_SIZE = 1024 * 1024  # core.MaxSecretSize, shared by ConfigMaps and Secrets


def undecodable(kind: str, problem: Base64Error) -> errors.StatusError:
    """What kube-apiserver answers when a body does not decode into the kind (400)."""
    return errors.bad_request(f'{kind} in version "v1" cannot be handled as a {kind}: {problem}')


class ConfigMapStrategy(Strategy):
    kind = "ConfigMap"
    plural = "configmaps"
    singular = "configmap"
    short_names = ("cm",)
    columns: ClassVar[tuple[Column, ...]] = (
        NAME_COLUMN,
        Column("Data", description=field_description("", "v1", "ConfigMap", "data")),
        AGE_COLUMN,
    )

    def default(self, obj: Object) -> None:
        # binaryData holds bytes: a value that is not base64 does not decode.
        for value in as_dict(obj.get("binaryData")).values():
            if isinstance(value, str):
                try:
                    decode_base64(value)
                except Base64Error as problem:
                    raise undecodable("ConfigMap", problem) from None

    def validate(self, obj: Object) -> list[FieldError]:
        result: list[FieldError] = []
        data = as_dict(obj.get("data"))
        binary = as_dict(obj.get("binaryData"))
        size = 0
        for name, value in data.items():
            for problem in config_key_problems(name):
                result.append(invalid_value(key("data", name), name, problem))
            if name in binary:
                result.append(
                    invalid_value(key("data", name), name, "duplicate of key present in binaryData")
                )
            size += len(value.encode()) if isinstance(value, str) else 0
        for name, value in binary.items():
            for problem in config_key_problems(name):
                result.append(invalid_value(key("binaryData", name), name, problem))
            size += _decoded_length(value)
        if size > MAX_SIZE:
            result.append(too_long("", MAX_SIZE))
        return result

    def validate_update(self, new: Object, old: Object) -> list[FieldError]:
        return immutable_data_errors(new, old, ("data", "binaryData")) + self.validate(new)

    def table_row(self, obj: Object) -> list[Any]:
        meta = as_dict(obj.get("metadata"))
        count = len(as_dict(obj.get("data"))) + len(as_dict(obj.get("binaryData")))
        return [meta.get("name", ""), count, creation_age(obj)]


def _decoded_length(value: Any) -> int:
    if not isinstance(value, str):
        return 0
    try:
        return len(decode_base64(value))
    except Base64Error:
        return 0


def immutable_data_errors(new: Object, old: Object, fields: tuple[str, ...]) -> list[FieldError]:
    """Once `immutable: true`, the flag and the data stay as they are."""
    if old.get("immutable") is not True:
        return []
    result: list[FieldError] = []
    if new.get("immutable") is not True:
        result.append(forbidden("immutable", "field is immutable when `immutable` is set"))
    for field in fields:
        if (new.get(field) or None) != (old.get(field) or None):
            result.append(forbidden(field, "field is immutable when `immutable` is set"))
    return result
