"""Namespaces: the name label, Active phase, the kubernetes finalizer, status rules."""

from __future__ import annotations

import copy
from typing import Any

from timonel.kinds.core.namespace import NamespaceStrategy


def created(name: str = "team-a", **spec: Any) -> dict[str, Any]:
    ns: dict[str, Any] = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
    if spec:
        ns["spec"] = spec
    strategy = NamespaceStrategy()
    strategy.default(ns)
    strategy.prepare_for_create(ns)
    return ns


def test_create() -> None:
    ns = created()
    assert ns == {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "team-a", "labels": {"kubernetes.io/metadata.name": "team-a"}},
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    }
    assert NamespaceStrategy().validate(ns) == []


def test_name_label_follows_the_name_and_cannot_be_changed() -> None:
    ns = created()
    ns["metadata"]["labels"]["kubernetes.io/metadata.name"] = "other"
    NamespaceStrategy().default(ns)
    assert ns["metadata"]["labels"]["kubernetes.io/metadata.name"] == "team-a"


def test_extra_finalizers_are_kept_and_checked() -> None:
    ns = created(finalizers=["example.com/cleanup"])
    assert ns["spec"]["finalizers"] == ["example.com/cleanup", "kubernetes"]
    bad = created(finalizers=["cleanup"])
    assert [e.message() for e in NamespaceStrategy().validate(bad)] == [
        'spec.finalizers: Invalid value: "cleanup": name is neither a standard finalizer name nor is it fully qualified'
    ]


def test_update_cannot_touch_finalizers_or_status() -> None:
    strategy = NamespaceStrategy()
    old = created()
    new = copy.deepcopy(old)
    new["spec"]["finalizers"] = []
    new["status"]["phase"] = "Terminating"
    strategy.prepare_for_update(new, old)
    assert new["spec"]["finalizers"] == ["kubernetes"]
    assert new["status"] == {"phase": "Active"}
    finalized = copy.deepcopy(old)
    finalized["spec"]["finalizers"] = []
    strategy.prepare_for_finalize(finalized, old)
    assert finalized["spec"]["finalizers"] == []


def test_status_phase_rules() -> None:
    strategy = NamespaceStrategy()
    old = created()
    new = copy.deepcopy(old)
    new["status"]["phase"] = "Terminating"
    assert [e.message() for e in strategy.validate_status_update(new, old)] == [
        "status.Phase: Invalid value: \"Terminating\": may only be 'Active' if `deletionTimestamp` is empty"
    ]
    new["metadata"]["deletionTimestamp"] = "2025-01-01T00:00:00Z"
    assert strategy.validate_status_update(new, old) == []


def test_name_is_a_label_and_table() -> None:
    strategy = NamespaceStrategy()
    assert strategy.name_problems("a.b") == ["must not contain dots"]
    ns = created()
    assert strategy.table_row(ns)[:2] == ["team-a", "Active"]
    assert strategy.selectable_fields(ns) == {
        "metadata.name": "team-a",
        "status.phase": "Active",
        "name": "team-a",
    }
    assert not strategy.namespaced
    assert "deletecollection" not in strategy.verbs
