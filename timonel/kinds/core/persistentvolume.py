"""PersistentVolumes: cluster-scoped storage, Pending until bound to a claim. The volume
source is fixed once created; a node affinity, once set, too."""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any, ClassVar

from timonel.api.errors import FieldError, forbidden, invalid_value, not_supported, required
from timonel.api.objects import Object, now_rfc3339
from timonel.api.quantity import canonical_resource_list
from timonel.api.validation import dns1123_subdomain_problems
from timonel.kinds.base import AGE_COLUMN, NAME_COLUMN, Column
from timonel.kinds.core.common import (
    as_dict,
    as_list,
    as_str,
    key,
    quantity_or_error,
    spec_diff,
    spec_of,
)
from timonel.kinds.core.persistentvolumeclaim import (
    STORAGE_CLASS_ANNOTATION,
    PendingStorageStrategy,
    access_modes_cell,
    storage_cell,
)
from timonel.kinds.core.podscheduling import validate_node_selector
from timonel.kinds.core.podspec import default_volume
from timonel.kinds.core.podvolumes import access_mode_errors, class_and_mode_errors
from timonel.kinds.printing import age, field_description

RECLAIM_POLICIES = ["Delete", "Recycle", "Retain"]

# PersistentVolumeSource members, in the order validation.go checks them.
PV_SOURCES = (
    "hostPath", "gcePersistentDisk", "awsElasticBlockStore", "glusterfs", "flocker", "nfs", "rbd",
    "quobyte", "cephfs", "iscsi", "cinder", "fc", "flexVolume", "azureFile", "vsphereVolume",
    "photonPersistentDisk", "portworxVolume", "azureDisk", "scaleIO", "local", "storageos", "csi",
)  # fmt: skip


class PersistentVolumeStrategy(PendingStorageStrategy):
    kind = "PersistentVolume"
    plural = "persistentvolumes"
    singular = "persistentvolume"
    namespaced = False
    short_names = ("pv",)
    columns: ClassVar[tuple[Column, ...]] = (
        NAME_COLUMN,
        Column(
            "Capacity",
            description=field_description("", "v1", "PersistentVolume", "spec", "capacity"),
        ),
        Column(
            "Access Modes",
            description=field_description("", "v1", "PersistentVolume", "spec", "accessModes"),
        ),
        Column(
            "Reclaim Policy",
            description=field_description(
                "", "v1", "PersistentVolume", "spec", "persistentVolumeReclaimPolicy"
            ),
        ),
        Column(
            "Status", description=field_description("", "v1", "PersistentVolume", "status", "phase")
        ),
        Column(
            "Claim", description=field_description("", "v1", "PersistentVolume", "spec", "claimRef")
        ),
        Column("StorageClass", description="StorageClass of the pv"),
        Column("VolumeAttributesClass", description="VolumeAttributesClass of the pv"),
        Column(
            "Reason",
            description=field_description("", "v1", "PersistentVolume", "status", "reason"),
        ),
        AGE_COLUMN,
        Column(
            "VolumeMode",
            priority=1,
            description=field_description("", "v1", "PersistentVolume", "spec", "volumeMode"),
        ),
    )

    def default(self, obj: Object) -> None:
        spec = spec_of(obj)
        if not spec.get("persistentVolumeReclaimPolicy"):
            spec["persistentVolumeReclaimPolicy"] = "Retain"
        if spec.get("volumeMode") is None:
            spec["volumeMode"] = "Filesystem"
        if isinstance(spec.get("capacity"), dict):
            spec["capacity"], _ = canonical_resource_list(spec["capacity"])
        # The volume sources shared with pods get the same defaults (hostPath type, ...).
        sources = {k: v for k, v in spec.items() if k in PV_SOURCES and isinstance(v, dict)}
        if sources:
            default_volume(sources)
        self.default_pending(obj)

    def prepare_for_create(self, obj: Object) -> None:
        obj["status"] = {"phase": "Pending", "lastPhaseTransitionTime": now_rfc3339()}

    def prepare_for_status_update(self, new: Object, old: Object) -> None:
        super().prepare_for_status_update(new, old)
        status = new.setdefault("status", {})
        old_status = as_dict(old.get("status"))
        if status.get("phase") != old_status.get("phase") and status.get(
            "lastPhaseTransitionTime"
        ) in (None, old_status.get("lastPhaseTransitionTime")):
            status["lastPhaseTransitionTime"] = now_rfc3339()

    def validate(self, obj: Object) -> list[FieldError]:
        return validate_volume_spec(as_dict(obj.get("spec")))

    def validate_update(self, new: Object, old: Object) -> list[FieldError]:
        errors = self.validate(new)
        spec = as_dict(new.get("spec"))
        old_spec = as_dict(old.get("spec"))
        new_source = {k: v for k, v in spec.items() if k in PV_SOURCES}
        old_source = {k: v for k, v in old_spec.items() if k in PV_SOURCES}
        csi = as_dict(new_source.get("csi"))
        if (
            csi.get("controllerExpandSecretRef") is not None
            and as_dict(old_source.get("csi"))
            and as_dict(old_source["csi"]).get("controllerExpandSecretRef") is None
        ):
            new_source = copy.deepcopy(new_source)
            new_source["csi"].pop("controllerExpandSecretRef")
        if new_source != old_source:
            errors.append(
                forbidden(
                    "spec.persistentvolumesource",
                    "spec.persistentvolumesource is immutable after creation\n"
                    + spec_diff(old_source, new_source, "spec"),
                )
            )
        errors += self.fixed_field_errors(spec, old_spec)
        if old_spec.get("nodeAffinity") is not None and spec.get("nodeAffinity") != old_spec.get(
            "nodeAffinity"
        ):
            errors.append(
                invalid_value(
                    "nodeAffinity",
                    spec.get("nodeAffinity"),
                    "field is immutable, except for updating from beta label to GA",
                )
            )
        old_vac = old_spec.get("volumeAttributesClassName")
        if old_vac is not None and spec.get("volumeAttributesClassName") is None:
            errors.append(
                forbidden(
                    "spec.volumeAttributesClassName",
                    "update from non-nil value to nil is forbidden",
                )
            )
        return errors

    def validate_status_update(self, new: Object, old: Object) -> list[FieldError]:
        return []

    def table_row(self, obj: Object) -> list[Any]:
        return persistent_volume_row(obj)


def persistent_volume_row(volume: Object, now: datetime | None = None) -> list[Any]:
    meta = as_dict(volume.get("metadata"))
    spec = as_dict(volume.get("spec"))
    status = as_dict(volume.get("status"))
    claim = spec.get("claimRef")
    claim_cell = (
        f"{as_str(as_dict(claim).get('namespace'))}/{as_str(as_dict(claim).get('name'))}"
        if claim
        else ""
    )
    annotations = as_dict(meta.get("annotations"))
    storage_class = as_str(annotations.get(STORAGE_CLASS_ANNOTATION, spec.get("storageClassName")))
    vac = spec.get("volumeAttributesClassName")
    return [
        meta.get("name", ""),
        storage_cell(spec.get("capacity")),
        access_modes_cell(spec.get("accessModes")),
        as_str(spec.get("persistentVolumeReclaimPolicy")),
        "Terminating" if meta.get("deletionTimestamp") else as_str(status.get("phase")),
        claim_cell,
        storage_class,
        "<unset>" if vac is None else as_str(vac),
        as_str(status.get("reason")),
        age(meta.get("creationTimestamp"), now),
        "<unset>" if spec.get("volumeMode") is None else as_str(spec.get("volumeMode")),
    ]


def validate_volume_spec(spec: dict[str, Any]) -> list[FieldError]:
    """ValidatePersistentVolumeSpec for a PersistentVolume object."""
    errors: list[FieldError] = []
    modes = as_list(spec.get("accessModes"))
    if not modes:
        errors.append(required("spec.accessModes"))
    errors += access_mode_errors(modes, "spec.accessModes")
    capacity = as_dict(spec.get("capacity"))
    if not capacity:
        errors.append(required("spec.capacity"))
    if "storage" not in capacity or len(capacity) > 1:
        errors.append(not_supported("spec.capacity", capacity, ["storage"]))
    for name, raw in capacity.items():
        path = key("spec.capacity", name)
        quantity = quantity_or_error(raw, path, errors)
        if quantity is None:
            continue
        if quantity.value() < 0:
            errors.append(
                invalid_value(path, quantity.value(), "must be a valid resource quantity")
            )
        if quantity.sign() <= 0:
            errors.append(invalid_value(path, str(quantity), "must be greater than zero"))
    policy = spec.get("persistentVolumeReclaimPolicy")
    if policy and policy not in RECLAIM_POLICIES:
        errors.append(not_supported("spec.persistentVolumeReclaimPolicy", policy, RECLAIM_POLICIES))
    affinity = spec.get("nodeAffinity")
    if affinity is not None:
        required_terms = as_dict(affinity).get("required")
        if required_terms is None:
            errors.append(
                required("spec.nodeAffinity.required", "must specify required node constraints")
            )
        else:
            errors += validate_node_selector(as_dict(required_terms), "spec.nodeAffinity.required")
    count = 0
    for source in PV_SOURCES:
        value = spec.get(source)
        if value is None:
            continue
        if count > 0 and source != "flexVolume":
            name = {"cephfs": "cephFS", "gcePersistentDisk": "gcePersistentDisk"}.get(
                source, source
            )
            errors.append(forbidden(f"spec.{name}", "may not specify more than 1 volume type"))
            continue
        count += 1
        errors += _validate_pv_source(source, as_dict(value), spec)
    if count == 0:
        errors.append(required("spec", "must specify a volume type"))
    host_path = as_dict(spec.get("hostPath")).get("path")
    if host_path is not None and str(host_path).rstrip("/") == "" and policy == "Recycle":
        errors.append(
            forbidden(
                "spec.persistentVolumeReclaimPolicy",
                "may not be 'recycle' for a hostPath mount of '/'",
            )
        )
    return errors + class_and_mode_errors(spec, "spec")


def _validate_pv_source(
    source: str, value: dict[str, Any], spec: dict[str, Any]
) -> list[FieldError]:
    path = f"spec.{source}"
    if source in ("hostPath", "local"):
        target = as_str(value.get("path"))
        if not target:
            return [required(f"{path}.path")]
        errors: list[FieldError] = []
        if ".." in target.split("/"):
            errors.append(invalid_value(f"{path}.path", target, "must not contain '..'"))
        if source == "local" and spec.get("nodeAffinity") is None:
            errors.append(required("spec.nodeAffinity", "Local volume requires node affinity"))
        return errors
    if source == "nfs":
        errors = []
        if not value.get("server"):
            errors.append(required(f"{path}.server"))
        nfs_path = as_str(value.get("path"))
        if not nfs_path:
            errors.append(required(f"{path}.path"))
        if not nfs_path.startswith("/"):
            errors.append(invalid_value(f"{path}.path", nfs_path, "must be an absolute path"))
        return errors
    if source == "csi":
        errors = []
        driver = as_str(value.get("driver"))
        if not driver:
            errors.append(required(f"{path}.driver"))
        errors += [
            invalid_value(f"{path}.driver", driver, p)
            for p in dns1123_subdomain_problems(driver.lower())
        ]
        if not value.get("volumeHandle"):
            errors.append(required(f"{path}.volumeHandle"))
        return errors
    return []
