"""An update's check skips what the body keeps unchanged from the stored object; what it
reports must be what checking the whole body reports. Python's `==` finds `true == 1` and
`1 == 1.0`, which decode differently: those must be checked again."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest

from tests.unit.jsonpaths import paths, value_at
from tests.unit.sample_objects import deployment, lease, metadata
from timonel.schema.definitions import SchemaNode, kubernetes_definitions, schema_from_openapi
from timonel.schema.fields import FieldCheck, check_object


def _schema(group: str, version: str, kind: str) -> SchemaNode:
    node = kubernetes_definitions().for_kind(group, version, kind)
    assert node is not None
    return node


def managed_metadata(name: str) -> dict[str, Any]:
    return metadata(name, managed=True)


def managed_lease() -> dict[str, Any]:
    return lease(managed=True)


def managed_deployment() -> dict[str, Any]:
    return deployment(managed=True)


def _pod() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": managed_metadata("web"),
        "spec": {
            "containers": [
                {
                    "name": "c",
                    "image": "nginx",
                    "ports": [{"containerPort": 80, "protocol": "TCP"}],
                    "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}},
                    "readinessProbe": {"httpGet": {"port": 8080, "path": "/"}},
                    "stdin": False,
                }
            ],
            "priority": 0,
            "enableServiceLinks": True,
            "nodeSelector": {"disk": "ssd"},
        },
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True", "lastProbeTime": None}],
            "startTime": "2026-01-01T00:00:00Z",
        },
    }


def _secret() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": managed_metadata("s"),
        "data": {"key": "dmFsdWU="},
        "immutable": False,
    }


CASES = {
    "lease": (_schema("coordination.k8s.io", "v1", "Lease"), managed_lease),
    "pod": (_schema("", "v1", "Pod"), _pod),
    "deployment": (_schema("apps", "v1", "Deployment"), managed_deployment),
    "secret": (_schema("", "v1", "Secret"), _secret),
}

_TRAPS: dict[type, list[Any]] = {
    bool: [1, 0, 1.0, "true"],
    int: [True, False, 0.0, 1.0, 40.0, "1", 2**40],
    float: [1, True],
    str: ["", 1, "x y z", "2026-01-01T00:00:00Z"],
}


def _with(base: Any, path: tuple[Any, ...], value: Any, *, beside: bool = False) -> Any:
    result = copy.deepcopy(base)
    parent = value_at(result, path[:-1])
    parent[path[-1]] = value
    if beside and isinstance(parent, dict):
        parent["zzUnknown"] = 1  # the parent differs too: the walk reaches the change
    return result


def _variants(base: Any) -> Iterator[tuple[str, Any]]:
    for path in paths(base):
        if not path:
            continue
        value = value_at(base, path)
        label = "/".join(map(str, path))
        for beside in (False, True):
            suffix = " beside an unknown field" if beside else ""
            for trap in _TRAPS.get(type(value), []):
                yield f"{label} = {trap!r}{suffix}", _with(base, path, trap, beside=beside)
            yield f"{label} null{suffix}", _with(base, path, None, beside=beside)
            if isinstance(value, str):
                edited = _with(base, path, value + "x", beside=beside)
                yield f"{label} edited{suffix}", edited
            if isinstance(value, dict):
                grown = _with(base, path, {**value, "unknownField": {"a": 1}}, beside=beside)
                yield f"{label} grown{suffix}", grown
                yield f"{label} as list{suffix}", _with(base, path, [value], beside=beside)
            if isinstance(value, list):
                yield f"{label} as map{suffix}", _with(base, path, {"a": value}, beside=beside)
                doubled = _with(base, path, value + value[-1:], beside=beside)
                yield f"{label} doubled{suffix}", doubled


def _found(check: FieldCheck) -> tuple[list[str], list[str]]:
    return check.unknown, check.type_errors


@pytest.mark.parametrize("name", list(CASES))
def test_skipping_unchanged_parts_finds_what_the_whole_check_finds(name: str) -> None:
    node, make = CASES[name]
    stored = make()
    assert check_object(node, stored).ok
    assert check_object(node, copy.deepcopy(stored), unchanged_from=stored).ok
    problems = 0
    for label, body in _variants(stored):
        whole = _found(check_object(node, body))
        assert _found(check_object(node, body, unchanged_from=stored)) == whole, label
        problems += bool(whole[0] or whole[1])
    assert problems > 0


def test_a_boolean_where_the_stored_object_has_one_is_still_an_error() -> None:
    node, make = CASES["deployment"]
    stored = make()
    body = copy.deepcopy(stored)
    body["spec"]["replicas"] = True  # True == 1 in Python
    body["spec"]["paused"] = False
    check = check_object(node, body, unchanged_from=stored)
    assert check.type_errors == [
        "json: cannot unmarshal bool into Go struct field DeploymentSpec.spec.replicas of type int32"
    ]


def test_a_custom_resource_is_checked_whole() -> None:
    """Its schema may have changed since the stored object was written."""
    node = schema_from_openapi(
        {"type": "object", "properties": {"spec": {"type": "object", "properties": {}}}},
        group="example.com",
        version="v1",
        kind="Thing",
    )
    stored = {
        "apiVersion": "example.com/v1",
        "kind": "Thing",
        "metadata": {"name": "t"},
        "spec": {"size": 1},
    }
    check = check_object(node, copy.deepcopy(stored), unchanged_from=stored)
    assert check.unknown == ["spec.size"]
