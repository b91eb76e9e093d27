"""Secrets and ConfigMaps: stringData, base64, key names, types, immutability."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from timonel.api.errors import StatusError
from timonel.kinds.core.common import Base64Error, decode_base64
from timonel.kinds.core.configmap import ConfigMapStrategy
from timonel.kinds.core.secret import SecretStrategy


def secret(**fields: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s", "namespace": "default"},
        **fields,
    }


def messages(strategy: Any, obj: dict[str, Any]) -> list[str]:
    return [e.message() for e in strategy.validate(obj)]


def test_defaults_and_string_data() -> None:
    obj = secret(data={"a": "YQ=="}, stringData={"b": "héllo", "a": "x"})
    SecretStrategy().default(obj)
    assert obj["type"] == "Opaque"
    assert "stringData" not in obj
    assert obj["data"] == {"a": "eA==", "b": "aMOpbGxv"}


def test_data_must_be_base64() -> None:
    with pytest.raises(StatusError) as caught:
        SecretStrategy().default(secret(data={"password": "hunter2!"}))
    assert caught.value.code == 400
    assert caught.value.message == (
        'Secret in version "v1" cannot be handled as a Secret: illegal base64 data at input byte 7'
    )


@pytest.mark.parametrize(
    ("text", "result"),
    [
        ("aGVsbG8=", b"hello"),
        ("aGVs\nbG8=", b"hello"),
        ("", b""),
        ("YWI=", b"ab"),
        ("aGVsbG8h", b"hello!"),
    ],
)
def test_base64(text: str, result: bytes) -> None:
    assert decode_base64(text) == result


@pytest.mark.parametrize(
    ("text", "offset"), [("aGVsbG8", 4), ("abc", 0), ("a===", 1), ("YQ==YQ==", 4), ("hi there", 2)]
)
def test_base64_error_offsets(text: str, offset: int) -> None:
    with pytest.raises(Base64Error) as caught:
        decode_base64(text)
    assert caught.value.offset == offset


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (
            {"data": {"bad key": "YQ=="}},
            [
                'data[bad key]: Invalid value: "bad key": a valid config key must consist of alphanumeric characters, '
                "'-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is "
                "'[-._a-zA-Z0-9]+')"
            ],
        ),
        ({"data": {"..": "YQ=="}}, ["data[..]: Invalid value: \"..\": must not be '..'"]),
        (
            {"type": "kubernetes.io/tls", "data": {"tls.crt": "YQ=="}},
            ["data[tls.key]: Required value"],
        ),
        (
            {"type": "kubernetes.io/basic-auth"},
            ["data[username]: Required value", "data[password]: Required value"],
        ),
        (
            {"type": "kubernetes.io/service-account-token"},
            ["metadata.annotations[kubernetes.io/service-account.name]: Required value"],
        ),
        ({"type": "kubernetes.io/dockerconfigjson", "data": {".dockerconfigjson": "e30="}}, []),
        (
            {"type": "kubernetes.io/dockerconfigjson", "data": {".dockerconfigjson": "eA=="}},
            [
                "data[.dockerconfigjson]: Invalid value: \"<secret contents redacted>\": invalid character 'x' looking "
                "for beginning of value"
            ],
        ),
        ({"type": "kubernetes.io/ssh-auth", "data": {}}, ["data[ssh-privatekey]: Required value"]),
    ],
)
def test_validation(fields: dict[str, Any], expected: list[str]) -> None:
    obj = secret(**fields)
    SecretStrategy().default(obj)
    assert messages(SecretStrategy(), obj) == expected


def test_type_and_immutable_data_cannot_change() -> None:
    strategy = SecretStrategy()
    old = secret(data={"a": "YQ=="}, immutable=True)
    strategy.default(old)
    new = copy.deepcopy(old)
    new["type"] = "kubernetes.io/tls"
    new["data"] = {"tls.crt": "YQ==", "tls.key": "YQ=="}
    new["immutable"] = False
    assert [e.message() for e in strategy.validate_update(new, old)] == [
        'type: Invalid value: "kubernetes.io/tls": field is immutable',
        "immutable: Forbidden: field is immutable when `immutable` is set",
        "data: Forbidden: field is immutable when `immutable` is set",
    ]


def test_secret_table_and_fields() -> None:
    obj = secret(data={"a": "YQ==", "b": "Yg=="})
    strategy = SecretStrategy()
    strategy.default(obj)
    assert strategy.table_row(obj)[:3] == ["s", "Opaque", 2]
    assert strategy.selectable_fields(obj)["type"] == "Opaque"
    assert [c.name for c in strategy.columns] == ["Name", "Type", "Data", "Age"]


def configmap(**fields: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c", "namespace": "default"},
        **fields,
    }


def test_configmap() -> None:
    strategy = ConfigMapStrategy()
    obj = configmap(data={"a": "1", "b": "2"}, binaryData={"c": "YQ=="})
    strategy.default(obj)
    assert strategy.validate(obj) == []
    assert strategy.table_row(obj)[:2] == ["c", 3]
    dup = configmap(data={"a": "1"}, binaryData={"a": "YQ=="})
    assert messages(strategy, dup) == [
        'data[a]: Invalid value: "a": duplicate of key present in binaryData'
    ]
    big = configmap(data={"a": "x" * (1024 * 1024 + 1)})
    assert messages(strategy, big) == ["Too long: may not be more than 1048576 bytes"]
    with pytest.raises(StatusError):
        strategy.default(configmap(binaryData={"a": "!"}))


def test_immutable_configmap() -> None:
    strategy = ConfigMapStrategy()
    old = configmap(data={"a": "1"}, immutable=True)
    new = copy.deepcopy(old)
    new["data"]["a"] = "2"
    assert [e.message() for e in strategy.validate_update(new, old)] == [
        "data: Forbidden: field is immutable when `immutable` is set"
    ]
    unchanged = copy.deepcopy(old)
    unchanged["metadata"]["labels"] = {"x": "y"}
    assert strategy.validate_update(unchanged, old) == []
