"""The JSONPath subset CRD printer columns and selectable fields use."""

from __future__ import annotations

from typing import Any

import pytest

from timonel.kinds.apiextensions.jsonpath import JSONPath, JSONPathError, text_of

OBJ: dict[str, Any] = {
    "metadata": {"name": "db", "labels": {"app.kubernetes.io/name": "postgres"}},
    "spec": {
        "replicas": 3,
        "containers": [{"name": "a", "image": "pg:16"}, {"name": "b", "image": "x:1"}],
    },
    "status": {
        "conditions": [{"type": "Ready", "status": "True"}, {"type": "Synced", "status": "False"}],
        "observed": 2.5,
    },
}


@pytest.mark.parametrize(
    ("expression", "found"),
    [
        (".spec.replicas", [3]),
        ("{.spec.replicas}", [3]),
        (".spec.containers[0].image", ["pg:16"]),
        (".spec.containers[-1].name", ["b"]),
        (".spec.containers[*].name", ["a", "b"]),
        ('.status.conditions[?(@.type=="Ready")].status', ["True"]),
        (".status.conditions[?(@.type=='Synced')].status", ["False"]),
        ('.status.conditions[?(@.type!="Ready")].type', ["Synced"]),
        (".metadata.labels['app.kubernetes.io/name']", ["postgres"]),
        (".metadata.labels.app\\.kubernetes\\.io/name", ["postgres"]),
        (".spec.missing", []),
        (".spec.containers[5].name", []),
        (".status.observed", [2.5]),
    ],
)
def test_find(expression: str, found: list[Any]) -> None:
    assert JSONPath(expression).find(OBJ) == found


def test_unsupported_expressions_are_rejected() -> None:
    with pytest.raises(JSONPathError):
        JSONPath("..name")
    with pytest.raises(JSONPathError):
        JSONPath(".spec[")


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("x", "x"),
        (3, "3"),
        (True, "true"),
        (2.5, "2.5"),
        (1e6 + 0.5, "1.0000005e+06"),
        ({"b": 1, "a": [1, "x"]}, '{"a":[1,"x"],"b":1}'),
        (None, "null"),
    ],
)
def test_text_of_prints_like_client_go(value: Any, text: str) -> None:
    assert text_of(value) == text
