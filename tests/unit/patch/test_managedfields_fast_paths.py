"""The shortcuts of field management give the general walk's answers.

`compare` first tries a walk that only descends where Python's `==` finds a difference;
a create builds its FieldsV1 in one walk instead of through FieldSets. Both are checked
against the general code over objects and many variants of them, including the values
Python's `==` confuses (True == 1, 1 == 1.0, 0 == False)."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from tests.unit.jsonpaths import paths, value_at
from tests.unit.sample_objects import deployment, lease, metadata
from timonel.patch import managedfields, typed
from timonel.patch.fieldpath import key_element
from timonel.schema.definitions import kubernetes_definitions


def _shape(group: str, version: str, kind: str) -> typed.Shape:
    return typed.shape_of(kubernetes_definitions().for_kind(group, version, kind))


LEASE = _shape("coordination.k8s.io", "v1", "Lease")
POD = _shape("", "v1", "Pod")
NODE = _shape("", "v1", "Node")
DEPLOYMENT = _shape("apps", "v1", "Deployment")
SERVICE = _shape("", "v1", "Service")


def _pod() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {**metadata("web"), "annotations": {"a": "1"}},
        "spec": {
            "containers": [
                {
                    "name": "c",
                    "image": "nginx",
                    "ports": [{"containerPort": 80}, {"containerPort": 53, "protocol": "UDP"}],
                    "resources": {"requests": {"cpu": "100m"}},
                    "args": ["a", "b"],
                    "stdin": False,
                },
                {"name": "d", "image": "busybox", "tty": True},
            ],
            "priority": 0,
            "enableServiceLinks": True,
            "tolerations": [{"key": "k", "operator": "Exists"}],
            "nodeSelector": {"disk": "ssd"},
            "securityContext": {},
        },
        "status": {
            "phase": "Running",
            "conditions": [
                {"type": "Ready", "status": "True", "lastProbeTime": None},
                {"type": "PodScheduled", "status": "True"},
            ],
            "podIPs": [{"ip": "10.0.0.5"}],
        },
    }


def _node() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": metadata("n1"),
        "spec": {"unschedulable": False, "taints": [{"key": "k", "effect": "NoSchedule"}]},
        "status": {
            "capacity": {"cpu": "4", "pods": "110"},
            "conditions": [
                {"type": "Ready", "status": "True", "lastHeartbeatTime": "2026-01-01T00:00:00Z"},
                {"type": "MemoryPressure", "status": "False"},
            ],
            "addresses": [{"type": "InternalIP", "address": "10.0.0.1"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
        },
    }


def _service() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata("svc"),
        "spec": {
            "ports": [{"port": 80, "targetPort": 8080}, {"port": 53, "protocol": "UDP"}],
            "selector": {"app": "web"},
            "type": "ClusterIP",
        },
    }


def _untyped() -> dict[str, Any]:
    return {
        "apiVersion": "example.com/v1",
        "kind": "Thing",
        "metadata": metadata("t"),
        "spec": {"size": 1, "ratio": 1.0, "on": True, "items": [1, 2], "nested": {"a": {"b": 0}}},
    }


BASES: dict[str, tuple[typed.Shape, Any]] = {
    "lease": (LEASE, lease),
    "pod": (POD, _pod),
    "node": (NODE, _node),
    "deployment": (DEPLOYMENT, deployment),
    "service": (SERVICE, _service),
    "untyped": (typed.UNTYPED, _untyped),
}

# Replacements for a value, chosen to hit Python's `==` between types.
_TRAPS: dict[type, list[Any]] = {
    bool: [1, 0, 1.0],
    int: [True, False, 0.0, 1.0, "1"],
    float: [1, True],
    str: ["", 1],
}


def _changed(base: Any, path: tuple[Any, ...], change: Any) -> Any:
    result = copy.deepcopy(base)
    parent = value_at(result, path[:-1])
    change(parent, path[-1])
    return result


def _replace(value: Any) -> Any:
    def apply(parent: Any, step: Any) -> None:
        parent[step] = copy.deepcopy(value)

    return apply


def _delete(parent: Any, step: Any) -> None:
    del parent[step]


def _variants(base: Any) -> Iterator[tuple[str, Any]]:
    """The base changed in one place, in every way the walks treat differently."""
    for path in paths(base):
        if not path:
            continue
        value = value_at(base, path)
        label = "/".join(map(str, path))
        yield f"{label} deleted", _changed(base, path, _delete)
        yield f"{label} null", _changed(base, path, _replace(None))
        for trap in _TRAPS.get(type(value), []):
            yield f"{label} = {trap!r}", _changed(base, path, _replace(trap))
            if isinstance(value_at(base, path[:-1]), dict):
                # A sibling changed too: the walk descends to the trap instead of
                # finding the parents equal.
                beside = _changed(base, path, _replace(trap))
                value_at(beside, path[:-1])["zz"] = "new"
                yield f"{label} = {trap!r} beside a new field", beside
        if isinstance(value, str):
            yield f"{label} edited", _changed(base, path, _replace(value + "x"))
        elif isinstance(value, bool):
            yield f"{label} negated", _changed(base, path, _replace(not value))
        elif isinstance(value, (int, float)):
            yield f"{label} incremented", _changed(base, path, _replace(value + 1))
        elif isinstance(value, dict):
            yield f"{label} emptied", _changed(base, path, _replace({}))
            grown = dict(value, extra={"x": 1})
            yield f"{label} grown", _changed(base, path, _replace(grown))
            yield f"{label} as list", _changed(base, path, _replace([value]))
        elif isinstance(value, list):
            yield f"{label} emptied", _changed(base, path, _replace([]))
            yield f"{label} reversed", _changed(base, path, _replace(value[::-1]))
            if value:
                yield f"{label} doubled", _changed(base, path, _replace(value + value[-1:]))


def _general_compare(old: Any, new: Any, shape: typed.Shape) -> typed.Comparison:
    result = typed.Comparison()
    typed._compare(old, new, shape, (), result)
    return result


def _as_tuple(comparison: typed.Comparison) -> tuple[typed.FieldSet, ...]:
    return comparison.added, comparison.modified, comparison.removed


@pytest.mark.parametrize("name", list(BASES))
def test_compare_reports_what_the_general_walk_reports(name: str) -> None:
    shape, make = BASES[name]
    base = make()
    for label, variant in _variants(base):
        for old, new in ((base, variant), (variant, base)):
            expected = _as_tuple(_general_compare(old, new, shape))
            assert _as_tuple(typed.compare(old, new, shape)) == expected, label


def test_the_shortcut_takes_the_common_updates() -> None:
    stored = lease()
    renewed = copy.deepcopy(stored)
    renewed["spec"]["renewTime"] = "2026-01-01T00:00:10.000000Z"
    del renewed["metadata"]["resourceVersion"]
    node = _node()
    heartbeat = copy.deepcopy(node)
    heartbeat["status"]["conditions"][0]["lastHeartbeatTime"] = "2026-01-01T00:00:10Z"
    for shape, old, new in ((LEASE, stored, renewed), (NODE, node, heartbeat)):
        out = typed.Comparison()
        assert typed._changed_fields(old, new, shape, out)
        assert _as_tuple(out) == _as_tuple(_general_compare(old, new, shape))
    out = typed.Comparison()
    typed._changed_fields(stored, renewed, LEASE, out)
    assert [typed.path_string(p) for p in out.modified.paths()] == [".spec.renewTime"]
    assert [typed.path_string(p) for p in out.removed.paths()] == [".metadata.resourceVersion"]


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ({"spec": {"replicas": 1}}, {"spec": {"replicas": True}}),
        ({"spec": {"replicas": True}}, {"spec": {"replicas": 1}}),
        ({"spec": {"x": {"y": 0}}}, {"spec": {"x": {"y": False}}}),
        ({"spec": {"x": [1]}}, {"spec": {"x": [True]}}),
    ],
)
def test_booleans_and_equal_numbers_are_changes(old: Any, new: Any) -> None:
    assert not typed.compare(old, new, DEPLOYMENT).modified.empty()


def test_equal_numbers_of_other_types_are_no_change() -> None:
    result = typed.compare({"spec": {"replicas": 1}}, {"spec": {"replicas": 1.0}}, DEPLOYMENT)
    assert all(part.empty() for part in _as_tuple(result))


def _general_created(new: Any, shape: typed.Shape) -> dict[str, Any]:
    comparison = _general_compare({}, new, shape)
    return comparison.added.union(comparison.modified).to_fields_v1()


@pytest.mark.parametrize("name", list(BASES))
def test_created_fields_are_the_general_walks_in_the_same_order(name: str) -> None:
    shape, make = BASES[name]
    base = make()
    for label, variant in [("as is", base), *_variants(base)]:
        if not isinstance(variant, dict):
            continue
        fast = typed.created_fields_v1(variant, shape)
        assert orjson.dumps(fast) == orjson.dumps(_general_created(variant, shape)), label


_KIND_OF = {
    "lease": ("coordination.k8s.io", "v1", "Lease"),
    "pod": ("", "v1", "Pod"),
    "node": ("", "v1", "Node"),
    "deployment": ("apps", "v1", "Deployment"),
    "service": ("", "v1", "Service"),
}


def _created_managed_fields(new: Any, schema: Any, reset: Any) -> Any:
    created = copy.deepcopy(new)
    created.get("metadata", {}).pop("resourceVersion", None)
    managedfields.record_update(
        None, created, manager="m", api_version="v1", schema=schema, reset_fields=reset, now="T"
    )
    return created["metadata"].get("managedFields")


def _general_managed_fields(new: Any, schema: Any, reset: Any) -> Any:
    obj = copy.deepcopy(new)
    obj.get("metadata", {}).pop("resourceVersion", None)
    updated = managedfields._update(
        {},
        obj,
        {},
        managedfields.ManagerId.for_update("m", "v1"),
        typed.shape_of(schema),
        managedfields._reset_set(reset),
        "T",
    )
    return managedfields.encode_managed_fields(updated) if updated else None


@pytest.mark.parametrize("name", list(BASES))
@pytest.mark.parametrize("has_status", [False, True])
def test_a_create_records_what_the_general_update_records(name: str, has_status: bool) -> None:
    _, make = BASES[name]
    schema = kubernetes_definitions().for_kind(*_KIND_OF[name]) if name in _KIND_OF else None
    reset = managedfields.reset_fields_for(has_status=has_status)
    base = make()
    odd_meta = copy.deepcopy(base)
    odd_meta["metadata"]["name"] = {"not": "a string"}
    odd_meta["metadata"]["generation"] = None
    odd_meta["apiVersion"] = {"group": "v1"}
    odd_meta["kind"] = ["Kind"]
    bare = {"apiVersion": "v1", "kind": "X", "metadata": {"name": "x", "uid": "u"}}
    for label, variant in [("as is", base), ("odd metadata", odd_meta), ("bare", bare)]:
        for candidate in (variant, *(v for _, v in _variants(variant))):
            if not isinstance(candidate, dict) or not isinstance(candidate.get("metadata"), dict):
                continue
            fast = _created_managed_fields(candidate, schema, reset)
            general = _general_managed_fields(candidate, schema, reset)
            assert orjson.dumps(fast) == orjson.dumps(general), label


def test_a_create_with_nothing_to_own_has_no_managed_fields() -> None:
    bare = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "uid": "u"}}
    schema = kubernetes_definitions().for_kind("", "v1", "ConfigMap")
    assert _created_managed_fields(bare, schema, ()) is None


def test_list_keys_that_python_finds_equal_stay_apart() -> None:
    # Key elements are remembered by value: 1 and True are one key to a dict, two to JSON.
    values = [1, True, 1.0, 0, False, 0.0, -0.0, None, "1", {"a": 1}, {"a": True}]
    for _ in range(2):
        assert [key_element([("port", value)]) for value in values] == [
            'k:{"port":1}',
            'k:{"port":true}',
            'k:{"port":1}',
            'k:{"port":0}',
            'k:{"port":false}',
            'k:{"port":0}',
            'k:{"port":-0}',
            'k:{"port":null}',
            'k:{"port":"1"}',
            'k:{"port":{"a":1}}',
            'k:{"port":{"a":true}}',
        ]
