"""`compare` skips subtrees that are equal as JSON; what it reports must not change."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from timonel.patch import typed
from timonel.patch._gofmt import json_equal
from timonel.patch.fieldpath import FieldSet, field_element
from timonel.patch.typed import compare, shape_of
from timonel.schema.definitions import kubernetes_definitions

POD = shape_of(kubernetes_definitions().for_kind("", "v1", "Pod"))


def _pod() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web", "namespace": "ns", "labels": {"app": "web"}},
        "spec": {
            "containers": [
                {
                    "name": "c",
                    "image": "nginx",
                    "ports": [{"containerPort": 80, "protocol": "TCP"}],
                    "resources": {"requests": {"cpu": "100m"}},
                }
            ],
            "nodeName": "",
        },
        "status": {"phase": "Pending", "conditions": []},
    }


def _changed_pairs() -> list[tuple[dict[str, Any], dict[str, Any]]]:
    base = _pod()
    bound = copy.deepcopy(base)
    bound["spec"]["nodeName"] = "node-1"
    bound["status"]["conditions"] = [{"type": "PodScheduled", "status": "True"}]
    running = copy.deepcopy(bound)
    running["status"] = {"phase": "Running", "podIP": "10.0.0.5"}
    relabeled = copy.deepcopy(base)
    relabeled["metadata"]["labels"] = {"app": "web", "tier": "front"}
    del relabeled["spec"]["containers"][0]["ports"]
    duplicated = copy.deepcopy(running)
    duplicated["spec"]["containers"].append(copy.deepcopy(base["spec"]["containers"][0]))
    duplicated["status"]["conditions"] = [None, {"type": "Ready"}]
    return [
        (base, copy.deepcopy(base)),
        (base, bound),
        (bound, running),
        (base, relabeled),
        ({}, base),
        ({}, duplicated),
        (relabeled, duplicated),
        (running, {}),
    ]


def _full_walk(lhs: Any, rhs: Any, shape: typed.Shape, path: Any, out: typed.Comparison) -> None:
    """structured-merge-diff's comparison node by node, with no shortcut: the oracle."""
    absent, empty = typed._absent, typed._empty
    lkind, latomic = typed._resolve(shape, lhs)
    rkind, ratomic = typed._resolve(shape, rhs)
    kind = rkind if absent(lhs) else lkind
    atomic = ratomic if absent(lhs) else latomic
    if (
        kind == "scalar"
        or atomic
        or (not absent(lhs) and not absent(rhs) and lkind != rkind)
        or (empty(lhs) and empty(rhs))
    ):
        if absent(lhs):
            out.added.insert(path)
        elif absent(rhs):
            out.removed.insert(path)
        elif not json_equal(lhs, rhs):
            out.modified.insert(path)
        return
    if kind == "list":
        lorder, litems = typed._index_items(shape, lhs if isinstance(lhs, list) else [])
        rorder, ritems = typed._index_items(shape, rhs if isinstance(rhs, list) else [])
        for pe in lorder + [pe for pe in rorder if pe not in litems]:
            litem, ritem = litems.get(pe, typed.MISSING), ritems.get(pe, typed.MISSING)
            if litem is typed.MISSING and ritem is typed.MISSING:
                continue
            _full_walk(litem, ritem, shape.element(), (*path, pe), out)
    else:
        lmap = lhs if isinstance(lhs, dict) else {}
        rmap = rhs if isinstance(rhs, dict) else {}
        for name in list(lmap) + [k for k in rmap if k not in lmap]:
            lchild, rchild = lmap.get(name, typed.MISSING), rmap.get(name, typed.MISSING)
            child_shape = shape.field(name) or typed.UNTYPED
            if name in shape.always_present:
                if not absent(lhs):
                    lchild = typed._present(lchild, child_shape)
                if not absent(rhs):
                    rchild = typed._present(rchild, child_shape)
            if absent(lchild) and absent(rchild):
                continue
            _full_walk(lchild, rchild, child_shape, (*path, field_element(name)), out)
    if path:
        if absent(lhs):
            out.added.insert(path)
        elif absent(rhs):
            out.removed.insert(path)


@pytest.mark.parametrize("pair", _changed_pairs())
def test_the_shortcuts_report_what_the_full_walk_reports(
    pair: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    old, new = pair
    fast = compare(old, new, POD)
    slow = typed.Comparison()
    _full_walk(old, new, POD, (), slow)
    assert (fast.added, fast.modified, fast.removed) == (slow.added, slow.modified, slow.removed)
    assert not (fast.added.empty() and fast.modified.empty() and fast.removed.empty()) or (
        old == new
    )


def test_a_boolean_replacing_an_equal_number_is_a_modification() -> None:
    # Python's == holds between True and 1; JSON (and kube-apiserver) tells them apart.
    result = compare({"metadata": {"x": {"y": 1}}}, {"metadata": {"x": {"y": True}}}, POD)
    assert result.modified == FieldSet.of(
        (field_element("metadata"), field_element("x"), field_element("y"))
    )


def test_operations_leave_their_operands_as_they_were() -> None:
    a = FieldSet.of((field_element("spec"), field_element("a")), (field_element("status"),))
    b = FieldSet.of((field_element("spec"), field_element("b")))
    a_before, b_before = a.copy(), b.copy()
    union = a.union(b)
    difference = union.difference(b)
    assert union == FieldSet.of(
        (field_element("spec"), field_element("a")),
        (field_element("spec"), field_element("b")),
        (field_element("status"),),
    )
    assert difference == a
    assert union.recursive_difference(FieldSet.of((field_element("spec"),))) == FieldSet.of(
        (field_element("status"),)
    )
    assert (a, b) == (a_before, b_before)
