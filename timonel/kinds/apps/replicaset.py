"""apps/v1 ReplicaSet: defaults, validation and table as kube-apiserver 1.32 has them."""

from __future__ import annotations

from typing import Any, ClassVar

from timonel.api.errors import FieldError
from timonel.api.objects import Object
from timonel.kinds.apps.deployment import validate_selector_unchanged
from timonel.kinds.apps.intstr import validate_nonnegative
from timonel.kinds.apps.selector import (
    format_label_selector,
)
from timonel.kinds.apps.workload import (
    CONTAINERS_COLUMN,
    IMAGES_COLUMN,
    container_cells,
    default_template,
    int_field,
    pod_name_warning,
    spec_of,
    status_of,
    validate_replica_counts,
    validate_selected_template,
)
from timonel.kinds.base import AGE_COLUMN, NAME_COLUMN, Column, ScaleSpec, Strategy
from timonel.kinds.printing import creation_age


def default_replica_set(obj: Object) -> None:
    spec = spec_of(obj)
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    if not isinstance(spec.get("template"), dict):
        spec["template"] = {}
    default_template(spec["template"])
    status = obj.get("status")
    if isinstance(status, dict) and status.get("replicas") is None:
        status["replicas"] = 0


def validate_replica_set_spec(spec: Any) -> list[FieldError]:
    """ValidateReplicaSetSpec, with field paths under `spec`."""
    spec = spec if isinstance(spec, dict) else {}
    errors = validate_nonnegative(spec.get("replicas"), "spec.replicas")
    errors += validate_nonnegative(spec.get("minReadySeconds"), "spec.minReadySeconds")
    return errors + validate_selected_template(spec, "ReplicaSet")


def validate_replica_set_status(status: Any) -> list[FieldError]:
    return validate_replica_counts(
        status,
        (
            "replicas",
            "fullyLabeledReplicas",
            "readyReplicas",
            "availableReplicas",
            "observedGeneration",
        ),
        ("fullyLabeledReplicas", "readyReplicas", "availableReplicas"),
    )


class ReplicaSetStrategy(Strategy):
    group: ClassVar[str] = "apps"
    version: ClassVar[str] = "v1"
    kind: ClassVar[str] = "ReplicaSet"
    plural: ClassVar[str] = "replicasets"
    singular: ClassVar[str] = "replicaset"
    short_names: ClassVar[tuple[str, ...]] = ("rs",)
    categories: ClassVar[tuple[str, ...]] = ("all",)
    has_status: ClassVar[bool] = True
    scale: ClassVar[ScaleSpec | None] = ScaleSpec()
    tracks_generation: ClassVar[bool] = True
    field_labels: ClassVar[tuple[str, ...]] = ("status.replicas",)
    # Checked by validate_update, with kube-apiserver's wording.
    immutable_fields: ClassVar[tuple[str, ...]] = ("spec.selector",)
    columns: ClassVar[tuple[Column, ...]] = (
        NAME_COLUMN,
        Column(
            "Desired",
            type="integer",
            description="Replicas is the number of desired replicas. This is a pointer to "
            "distinguish between explicit zero and unspecified. Defaults to 1. More info: "
            "https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller/"
            "#what-is-a-replicationcontroller",
        ),
        Column(
            "Current",
            type="integer",
            description="Replicas is the most recently observed number of replicas. More info: "
            "https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller/"
            "#what-is-a-replicationcontroller",
        ),
        Column(
            "Ready",
            type="integer",
            description="The number of ready replicas for this replica set.",
        ),
        AGE_COLUMN,
        CONTAINERS_COLUMN,
        IMAGES_COLUMN,
        Column(
            "Selector",
            priority=1,
            description="Selector is a label query over pods that should match the replica "
            "count. If the selector is empty, it is defaulted to the labels present on the pod "
            "template. Label keys and values that must match in order to be controlled by this "
            "replica set. More info: https://kubernetes.io/docs/concepts/overview/"
            "working-with-objects/labels/#label-selectors",
        ),
    )

    def default(self, obj: Object) -> None:
        default_replica_set(obj)

    def prepare_for_create(self, obj: Object) -> None:
        super().prepare_for_create(obj)
        obj["status"] = {"replicas": 0}

    def validate(self, obj: Object) -> list[FieldError]:
        return validate_replica_set_spec(obj.get("spec"))

    def validate_update(self, new: Object, old: Object) -> list[FieldError]:
        return self.validate(new) + validate_selector_unchanged(new, old)

    def validate_status_update(self, new: Object, old: Object) -> list[FieldError]:
        return validate_replica_set_status(new.get("status"))

    def warnings(self, obj: Object) -> list[str]:
        return pod_name_warning(obj)

    def table_row(self, obj: Object) -> list[Any]:
        spec = obj.get("spec") or {}
        status = status_of(obj)
        names, images = container_cells(spec.get("template"))
        return [
            (obj.get("metadata") or {}).get("name", ""),
            int_field(spec, "replicas"),
            int_field(status, "replicas"),
            int_field(status, "readyReplicas"),
            creation_age(obj),
            names,
            images,
            format_label_selector(spec.get("selector")),
        ]

    def selectable_fields(self, obj: Object) -> dict[str, str]:
        fields = super().selectable_fields(obj)
        fields["status.replicas"] = str(int_field(status_of(obj), "replicas"))
        return fields
