"""`compare` skips subtrees that are equal as JSON; what it reports must not change."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from timonel.patch import typed
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
    return [(base, copy.deepcopy(base)), (base, bound), (bound, running), (base, relabeled)]


@pytest.mark.parametrize("pair", _changed_pairs())
def test_the_shortcut_reports_what_the_full_walk_reports(
    pair: tuple[dict[str, Any], dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    old, new = pair
    fast = compare(old, new, POD)
    monkeypatch.setattr(typed, "_same", lambda lhs, rhs: False)
    slow = compare(old, new, POD)
    assert (fast.added, fast.modified, fast.removed) == (slow.added, slow.modified, slow.removed)


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
