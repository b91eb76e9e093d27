"""PersistentVolumeClaims and PersistentVolumes: defaults, validation, immutability, tables."""

from __future__ import annotations

import copy
from typing import Any

from timonel.kinds.core.persistentvolume import PersistentVolumeStrategy
from timonel.kinds.core.persistentvolumeclaim import PersistentVolumeClaimStrategy


def claim(**spec: Any) -> dict[str, Any]:
    obj = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "data", "namespace": "default"},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": "1.5Gi"}},
            **spec,
        },
    }
    strategy = PersistentVolumeClaimStrategy()
    strategy.default(obj)
    strategy.prepare_for_create(obj)
    return obj


def test_claim_defaults() -> None:
    obj = claim()
    assert obj["spec"] == {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": "1536Mi"}},
        "volumeMode": "Filesystem",
    }
    assert obj["status"] == {"phase": "Pending"}
    assert PersistentVolumeClaimStrategy().validate(obj) == []


def test_claim_validation() -> None:
    strategy = PersistentVolumeClaimStrategy()
    obj = claim(accessModes=[], resources={})
    assert [e.message() for e in strategy.validate(obj)] == [
        "spec.accessModes: Required value: at least 1 access mode is required",
        "spec.resources[storage]: Required value",
    ]
    obj = claim(accessModes=["ReadWriteOncePod", "ReadWriteOnce", "Sometimes"])
    assert [e.message() for e in strategy.validate(obj)] == [
        'spec.accessModes: Unsupported value: "Sometimes": supported values: "ReadOnlyMany", "ReadWriteMany", '
        '"ReadWriteOnce", "ReadWriteOncePod"',
        "spec.accessModes: Forbidden: may not use ReadWriteOncePod with other access modes",
    ]


def updated(old: dict[str, Any], change: Any) -> list[str]:
    strategy = PersistentVolumeClaimStrategy()
    new = copy.deepcopy(old)
    change(new)
    strategy.default(new)
    strategy.prepare_for_update(new, old)
    return [e.message() for e in strategy.validate_update(new, old)]


def test_claim_spec_is_immutable() -> None:
    old = claim()

    def change_modes(obj: dict[str, Any]) -> None:
        obj["spec"]["accessModes"] = ["ReadWriteMany"]

    errors = updated(old, change_modes)
    assert len(errors) == 1
    assert errors[0].startswith(
        "spec: Forbidden: spec is immutable after creation except resources.requests and "
        "volumeAttributesClassName for bound claims\n"
    )

    def bind(obj: dict[str, Any]) -> None:
        obj["spec"]["volumeName"] = "pv-1"
        obj["spec"]["storageClassName"] = "local"

    assert updated(old, bind) == []


def test_bound_claims_may_grow() -> None:
    old = claim(volumeName="pv-1")
    old["status"] = {"phase": "Bound", "capacity": {"storage": "2Gi"}}

    def grow(obj: dict[str, Any]) -> None:
        obj["spec"]["resources"]["requests"]["storage"] = "4Gi"

    assert updated(old, grow) == []

    def shrink(obj: dict[str, Any]) -> None:
        obj["spec"]["resources"]["requests"]["storage"] = "1Gi"

    assert updated(old, shrink) == [
        "spec.resources.requests.storage: Forbidden: field can not be less than status.capacity"
    ]


def test_claim_table() -> None:
    strategy = PersistentVolumeClaimStrategy()
    pending = claim(storageClassName="local")
    assert strategy.table_row(pending)[:7] == ["data", "Pending", "", "", "", "local", "<unset>"]
    assert strategy.table_row(pending)[8] == "Filesystem"
    bound = claim(volumeName="pv-1")
    bound["status"] = {
        "phase": "Bound",
        "accessModes": ["ReadWriteOnce", "ReadOnlyMany"],
        "capacity": {"storage": "2Gi"},
    }
    assert strategy.table_row(bound)[:5] == ["data", "Bound", "pv-1", "2Gi", "RWO,ROX"]
    assert [c.name for c in strategy.columns] == [
        "Name",
        "Status",
        "Volume",
        "Capacity",
        "Access Modes",
        "StorageClass",
        "VolumeAttributesClass",
        "Age",
        "VolumeMode",
    ]


def volume(**spec: Any) -> dict[str, Any]:
    obj = {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": "pv-1"},
        "spec": {
            "capacity": {"storage": "10Gi"},
            "accessModes": ["ReadWriteOnce"],
            "hostPath": {"path": "/data"},
            **spec,
        },
    }
    strategy = PersistentVolumeStrategy()
    strategy.default(obj)
    strategy.prepare_for_create(obj)
    return obj


def test_volume_defaults_and_validation() -> None:
    obj = volume()
    assert obj["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
    assert obj["spec"]["volumeMode"] == "Filesystem"
    assert obj["spec"]["hostPath"] == {"path": "/data", "type": ""}
    assert obj["status"]["phase"] == "Pending" and "lastPhaseTransitionTime" in obj["status"]
    strategy = PersistentVolumeStrategy()
    assert strategy.validate(obj) == []
    both = volume(nfs={"server": "nfs", "path": "/x"})
    assert [e.message() for e in strategy.validate(both)] == [
        "spec.nfs: Forbidden: may not specify more than 1 volume type"
    ]
    nothing = volume()
    del nothing["spec"]["hostPath"]
    assert [e.message() for e in strategy.validate(nothing)] == [
        "spec: Required value: must specify a volume type"
    ]
    local = volume(local={"path": "/mnt"})
    del local["spec"]["hostPath"]
    assert [e.message() for e in strategy.validate(local)] == [
        "spec.nodeAffinity: Required value: Local volume requires node affinity"
    ]


def test_volume_source_is_immutable_and_table() -> None:
    strategy = PersistentVolumeStrategy()
    old = volume(claimRef={"namespace": "default", "name": "data"})
    new = copy.deepcopy(old)
    new["spec"]["hostPath"]["path"] = "/elsewhere"
    errors = [e.message() for e in strategy.validate_update(new, old)]
    assert errors[0].startswith(
        "spec.persistentvolumesource: Forbidden: spec.persistentvolumesource is immutable "
        "after creation\n"
    )
    row = strategy.table_row(old)
    assert row[:9] == [
        "pv-1",
        "10Gi",
        "RWO",
        "Retain",
        "Pending",
        "default/data",
        "",
        "<unset>",
        "",
    ]
    assert row[10] == "Filesystem"
