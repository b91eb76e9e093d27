"""PersistentVolumeClaims: storage requests, Pending until bound. A claim's spec is fixed
once created, except its storage request (for bound claims) and the volume name (set once,
by the binder)."""

from __future__ import annotations

import copy
from typing import Any, ClassVar

from timonel.api.errors import FieldError, forbidden, invalid_value, required
from timonel.api.objects import Object
from timonel.api.quantity import QuantityError, canonical_resource_list, parse_quantity_value
from timonel.kinds.base import AGE_COLUMN, NAME_COLUMN, Column, Strategy
from timonel.kinds.core.common import (
    as_dict,
    as_list,
    as_str,
    immutable,
    key,
    quantity_or_error,
    spec_diff,
    spec_of,
)
from timonel.kinds.core.podspec import default_claim_spec
from timonel.kinds.core.podvolumes import validate_claim_spec
from timonel.kinds.printing import creation_age, field_description

STORAGE_CLASS_ANNOTATION = "volume.beta.kubernetes.io/storage-class"
_ACCESS_MODE_SHORT = (
    ("ReadWriteOnce", "RWO"), ("ReadOnlyMany", "ROX"), ("ReadWriteMany", "RWX"), ("ReadWriteOncePod", "RWOP"),
)  # fmt: skip


def access_modes_cell(modes: Any) -> str:
    """helper.GetAccessModesAsString: RWO,ROX,RWX,RWOP in that order, each once."""
    present = set(as_list(modes))
    return ",".join(short for mode, short in _ACCESS_MODE_SHORT if mode in present)


def claim_class(claim: Object) -> str:
    annotations = as_dict(as_dict(claim.get("metadata")).get("annotations"))
    if STORAGE_CLASS_ANNOTATION in annotations:
        return as_str(annotations[STORAGE_CLASS_ANNOTATION])
    return as_str(as_dict(claim.get("spec")).get("storageClassName"))


def storage_cell(resources: Any) -> str:
    value = as_dict(resources).get("storage")
    if value is None:
        return "0"
    try:
        return str(parse_quantity_value(value))
    except QuantityError:
        return as_str(value)


class PendingStorageStrategy(Strategy):
    """What PersistentVolumes and PersistentVolumeClaims share: a spec and a status that
    starts Pending, a `name` field selector, and a fixed volumeMode."""

    has_status = True
    field_labels = ("name",)

    @staticmethod
    def default_pending(obj: Object) -> dict[str, Any]:
        """obj["status"], made an object in phase Pending unless it has a phase."""
        status = obj.get("status")
        if not isinstance(status, dict):
            status = {}
            obj["status"] = status
        if not status.get("phase"):
            status["phase"] = "Pending"
        return status

    @staticmethod
    def fixed_field_errors(spec: dict[str, Any], old_spec: dict[str, Any]) -> list[FieldError]:
        """volumeMode cannot change."""
        if spec.get("volumeMode") != old_spec.get("volumeMode"):
            return [immutable("volumeMode", spec.get("volumeMode"))]
        return []

    def selectable_fields(self, obj: Object) -> dict[str, str]:
        fields = super().selectable_fields(obj)
        fields["name"] = as_str(as_dict(obj.get("metadata")).get("name"))
        return fields


class PersistentVolumeClaimStrategy(PendingStorageStrategy):
    kind = "PersistentVolumeClaim"
    plural = "persistentvolumeclaims"
    singular = "persistentvolumeclaim"
    short_names = ("pvc",)
    columns: ClassVar[tuple[Column, ...]] = (
        NAME_COLUMN,
        Column(
            "Status",
            description=field_description("", "v1", "PersistentVolumeClaim", "status", "phase"),
        ),
        Column(
            "Volume",
            description=field_description("", "v1", "PersistentVolumeClaim", "spec", "volumeName"),
        ),
        Column(
            "Capacity",
            description=field_description("", "v1", "PersistentVolumeClaim", "status", "capacity"),
        ),
        Column(
            "Access Modes",
            description=field_description(
                "", "v1", "PersistentVolumeClaim", "status", "accessModes"
            ),
        ),
        Column("StorageClass", description="StorageClass of the pvc"),
        Column("VolumeAttributesClass", description="VolumeAttributesClass of the pvc"),
        AGE_COLUMN,
        Column(
            "VolumeMode",
            priority=1,
            description=field_description("", "v1", "PersistentVolumeClaim", "spec", "volumeMode"),
        ),
    )

    def default(self, obj: Object) -> None:
        default_claim_spec(spec_of(obj))
        status = self.default_pending(obj)
        for field in ("capacity", "allocatedResources"):
            if isinstance(status.get(field), dict):
                status[field], _ = canonical_resource_list(status[field])

    def prepare_for_create(self, obj: Object) -> None:
        obj["status"] = {"phase": "Pending"}

    def validate(self, obj: Object) -> list[FieldError]:
        return validate_claim_spec(as_dict(obj.get("spec")), "spec")

    def validate_update(self, new: Object, old: Object) -> list[FieldError]:
        """ValidatePersistentVolumeClaimUpdate."""
        errors = self.validate(new)
        spec = as_dict(new.get("spec"))
        old_spec = as_dict(old.get("spec"))
        new_copy = copy.deepcopy(spec)
        old_copy = copy.deepcopy(old_spec)
        if not old_spec.get("volumeName"):
            _set_or_drop(old_copy, "volumeName", spec.get("volumeName"))
        old_annotations = as_dict(as_dict(old.get("metadata")).get("annotations"))
        new_annotations = as_dict(as_dict(new.get("metadata")).get("annotations"))
        old_class = old_spec.get("storageClassName")
        new_class = spec.get("storageClassName")
        annotated = STORAGE_CLASS_ANNOTATION in old_annotations
        old_annotation = old_annotations.get(STORAGE_CLASS_ANNOTATION)
        if (
            annotated
            and old_class is None
            and new_class is not None
            and new_class == old_annotation
            and new_annotations.get(STORAGE_CLASS_ANNOTATION, old_annotation) == old_annotation
        ):
            # Moving from the beta annotation to the field.
            new_copy.pop("storageClassName", None)
        else:
            if new_annotations.get(STORAGE_CLASS_ANNOTATION, "") != old_annotations.get(
                STORAGE_CLASS_ANNOTATION, ""
            ):
                errors.append(
                    invalid_value(
                        f"metadata.annotations.{STORAGE_CLASS_ANNOTATION}",
                        new_annotations.get(STORAGE_CLASS_ANNOTATION, ""),
                        "field is immutable",
                    )
                )
            if (
                new_class is not None
                and old_class is None
                and (not annotated or new_class == old_annotation)
            ):
                # A class may be given to a claim that had none.
                new_copy.pop("storageClassName", None)
        bound = as_dict(new.get("status")).get("phase") == "Bound"
        if bound and isinstance(as_dict(new_copy.get("resources")).get("requests"), dict):
            old_storage = as_dict(as_dict(old_spec.get("resources")).get("requests")).get("storage")
            _set_or_drop(new_copy["resources"]["requests"], "storage", old_storage)
        if bound and new_copy.get("volumeAttributesClassName") is not None:
            _set_or_drop(
                new_copy, "volumeAttributesClassName", old_copy.get("volumeAttributesClassName")
            )
        if new_copy != old_copy:
            errors.append(
                forbidden(
                    "spec",
                    "spec is immutable after creation except resources.requests and volumeAttributesClassName "
                    "for bound claims\n" + spec_diff(old_copy, new_copy, "spec"),
                )
            )
        old_size = _storage_request(old_spec)
        new_size = _storage_request(spec)
        if new_size is not None and old_size is not None and new_size < old_size:
            capacity = as_dict(as_dict(old.get("status")).get("capacity")).get("storage")
            try:
                status_size = parse_quantity_value(capacity if capacity is not None else "0")
            except QuantityError:
                status_size = parse_quantity_value("0")
            if new_size <= status_size:
                errors.append(
                    forbidden(
                        "spec.resources.requests.storage",
                        "field can not be less than status.capacity",
                    )
                )
        errors += self.fixed_field_errors(spec, old_spec)
        old_vac = old_spec.get("volumeAttributesClassName")
        new_vac = spec.get("volumeAttributesClassName")
        if old_vac is not None and new_vac != old_vac:
            if new_vac is None:
                errors.append(
                    forbidden(
                        "spec.volumeAttributesClassName",
                        "update from non-nil value to nil is forbidden",
                    )
                )
            elif not new_vac:
                errors.append(
                    forbidden(
                        "spec.volumeAttributesClassName",
                        "update from non-nil value to an empty string is forbidden",
                    )
                )
        return errors

    def validate_status_update(self, new: Object, old: Object) -> list[FieldError]:
        errors: list[FieldError] = []
        if not as_list(as_dict(new.get("spec")).get("accessModes")):
            errors.append(required("Spec.accessModes"))
        for name, raw in as_dict(as_dict(new.get("status")).get("capacity")).items():
            path = key("status.capacity", name)
            quantity = quantity_or_error(raw, path, errors)
            if quantity is not None and quantity.value() < 0:
                errors.append(
                    invalid_value(path, quantity.value(), "must be a valid resource quantity")
                )
        return errors

    def table_row(self, obj: Object) -> list[Any]:
        meta = as_dict(obj.get("metadata"))
        spec = as_dict(obj.get("spec"))
        status = as_dict(obj.get("status"))
        phase = "Terminating" if meta.get("deletionTimestamp") else as_str(status.get("phase"))
        capacity = access = ""
        if spec.get("volumeName"):
            access = access_modes_cell(status.get("accessModes"))
            capacity = storage_cell(status.get("capacity"))
        vac = spec.get("volumeAttributesClassName")
        return [
            meta.get("name", ""),
            phase,
            as_str(spec.get("volumeName")),
            capacity,
            access,
            claim_class(obj),
            "<unset>" if vac is None else as_str(vac),
            creation_age(obj),
            "<unset>" if spec.get("volumeMode") is None else as_str(spec.get("volumeMode")),
        ]


def _set_or_drop(holder: dict[str, Any], field: str, value: Any) -> None:
    if value is None:
        holder.pop(field, None)
    else:
        holder[field] = copy.deepcopy(value)


def _storage_request(spec: dict[str, Any]) -> Any:
    value = as_dict(as_dict(spec.get("resources")).get("requests")).get("storage")
    if value is None:
        return None
    try:
        return parse_quantity_value(value)
    except QuantityError:
        return None
