"""ControllerRevision strategy: data is required and immutable; the table names the owner."""

from __future__ import annotations

import copy
from typing import Any

from timonel.kinds.apps.controllerrevision import ControllerRevisionStrategy

STRATEGY = ControllerRevisionStrategy()


def revision() -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "ControllerRevision",
        "metadata": {
            "name": "web-6d4b9c7f8",
            "namespace": "default",
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "StatefulSet",
                    "name": "web",
                    "uid": "u1",
                    "controller": True,
                }
            ],
        },
        "data": {"spec": {"template": {"$patch": "replace"}}},
        "revision": 2,
    }


def test_data_is_mandatory_and_revision_not_negative() -> None:
    obj = revision()
    del obj["data"]
    obj["revision"] = -1
    assert [e.message() for e in STRATEGY.validate(obj)] == [
        "data: Required value: data is mandatory",
        "revision: Invalid value: -1: must be greater than or equal to 0",
    ]


def test_revision_defaults_to_zero() -> None:
    obj = revision()
    del obj["revision"]
    STRATEGY.default(obj)
    assert obj["revision"] == 0


def test_data_is_immutable_revision_is_not() -> None:
    old = revision()
    renumbered = copy.deepcopy(old)
    renumbered["revision"] = 3
    assert STRATEGY.validate_update(renumbered, old) == []
    changed = copy.deepcopy(old)
    changed["data"] = {"spec": {}}
    assert [e.message() for e in STRATEGY.validate_update(changed, old)] == [
        'data: Invalid value: {"spec":{}}: field is immutable'
    ]


def test_table_row() -> None:
    row = STRATEGY.table_row(revision())
    assert row[:3] == ["web-6d4b9c7f8", "statefulset.apps/web", 2]
    orphan = revision()
    del orphan["metadata"]["ownerReferences"]
    assert STRATEGY.table_row(orphan)[1] == "<none>"
    assert [c.name for c in STRATEGY.columns] == ["Name", "Controller", "Revision", "Age"]
    assert not STRATEGY.has_status and not STRATEGY.tracks_generation
