"""StorageClass strategy: kube-apiserver 1.32's defaults, validation, immutability and table."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from timonel.kinds.storage.storageclass import StorageClassStrategy

STRATEGY = StorageClassStrategy()

# k3s' local-path class, as its manifest declares it.
LOCAL_PATH = """
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: local-path
  annotations:
    storageclass.kubernetes.io/is-default-class: "true"
provisioner: rancher.io/local-path
volumeBindingMode: WaitForFirstConsumer
"""


def load(text: str = LOCAL_PATH) -> dict[str, Any]:
    obj: dict[str, Any] = yaml.safe_load(text)
    STRATEGY.default(obj)
    return obj


def messages(obj: dict[str, Any]) -> list[str]:
    return [e.message() for e in STRATEGY.validate(obj)]


def test_defaults() -> None:
    obj = load()
    assert obj["reclaimPolicy"] == "Delete"
    assert obj["volumeBindingMode"] == "WaitForFirstConsumer"
    bare = load("metadata: {name: standard}\nprovisioner: example.com/disk\n")
    assert (bare["reclaimPolicy"], bare["volumeBindingMode"]) == ("Delete", "Immediate")
    assert messages(obj) == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"provisioner": ""}, ["provisioner: Required value"]),
        (
            {"provisioner": "bad provisioner"},
            [
                'provisioner: Invalid value: "bad provisioner": name part must consist of alphanumeric '
                "characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. "
                "'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
                "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
            ],
        ),
        (
            {"reclaimPolicy": "Recycle"},
            ['reclaimPolicy: Unsupported value: "Recycle": supported values: "Delete", "Retain"'],
        ),
        (
            {"volumeBindingMode": "Later"},
            [
                'volumeBindingMode: Unsupported value: "Later": supported values: "Immediate", "WaitForFirstConsumer"'
            ],
        ),
        (
            {
                "allowedTopologies": [
                    {"matchLabelExpressions": [{"key": "topology.kubernetes.io/zone"}]}
                ]
            },
            ["allowedTopologies[0].matchLabelExpressions[0].values: Required value"],
        ),
        (
            {
                "allowedTopologies": [
                    {"matchLabelExpressions": [{"key": "zone", "values": ["a"]}]},
                    {"matchLabelExpressions": [{"key": "zone", "values": ["a"]}]},
                ]
            },
            ['allowedTopologies[1].matchLabelExpressions: Duplicate value: ""'],
        ),
    ],
)
def test_validation_errors(change: dict[str, Any], expected: list[str]) -> None:
    obj = load()
    obj.update(change)
    assert messages(obj) == expected


def test_provisioner_parameters_and_policies_are_immutable() -> None:
    old = load("metadata: {name: fast}\nprovisioner: example.com/disk\nparameters: {type: ssd}\n")
    new = copy.deepcopy(old)
    new["parameters"] = {"type": "hdd"}
    new["provisioner"] = "example.com/other"
    new["reclaimPolicy"] = "Retain"
    new["volumeBindingMode"] = "WaitForFirstConsumer"
    assert [e.message() for e in STRATEGY.validate_update(new, old)] == [
        "parameters: Forbidden: updates to parameters are forbidden.",
        "provisioner: Forbidden: updates to provisioner are forbidden.",
        "reclaimPolicy: Forbidden: updates to reclaimPolicy are forbidden.",
        'volumeBindingMode: Invalid value: "WaitForFirstConsumer": field is immutable',
    ]
    expandable = copy.deepcopy(old)
    expandable["allowVolumeExpansion"] = True
    assert STRATEGY.validate_update(expandable, old) == []


def test_table_row_marks_the_default_class() -> None:
    row = STRATEGY.table_row(load())
    assert row[:5] == [
        "local-path (default)",
        "rancher.io/local-path",
        "Delete",
        "WaitForFirstConsumer",
        False,
    ]
    plain = load(
        "metadata: {name: fast}\nprovisioner: example.com/disk\nallowVolumeExpansion: true\n"
    )
    assert STRATEGY.table_row(plain)[:5] == [
        "fast",
        "example.com/disk",
        "Delete",
        "Immediate",
        True,
    ]
    assert [c.name for c in STRATEGY.columns] == [
        "Name",
        "Provisioner",
        "ReclaimPolicy",
        "VolumeBindingMode",
        "AllowVolumeExpansion",
        "Age",
    ]
    assert (STRATEGY.namespaced, STRATEGY.short_names) == (False, ("sc",))
