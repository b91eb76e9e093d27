"""Trimming informer objects: managedFields go, nothing else changes, the input stays."""

from __future__ import annotations

import copy

from timonel.api.objects import Object
from timonel.client.informer import strip_managed_fields


def test_strips_managed_fields_without_touching_the_input() -> None:
    pod: Object = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "web",
            "namespace": "default",
            "labels": {"app": "web"},
            "managedFields": [{"manager": "kubectl", "operation": "Update"}],
        },
        "spec": {"containers": [{"name": "c", "image": "nginx"}]},
    }
    before = copy.deepcopy(pod)
    trimmed = strip_managed_fields(pod)
    assert pod == before
    assert trimmed["metadata"] == {
        "name": "web",
        "namespace": "default",
        "labels": {"app": "web"},
    }
    assert {k: v for k, v in trimmed.items() if k != "metadata"} == {
        k: v for k, v in pod.items() if k != "metadata"
    }


def test_objects_without_managed_fields_come_back_as_they_are() -> None:
    plain: Object = {"metadata": {"name": "a"}}
    assert strip_managed_fields(plain) is plain
    assert strip_managed_fields({"kind": "Status"}) == {"kind": "Status"}
