"""ReplicationControllers: the original replica manager (a map selector, an optional
template), served with `status` and `scale` subresources and in the `all` category."""

from __future__ import annotations

from typing import Any, ClassVar

from timonel.api.errors import FieldError, forbidden, invalid_value, not_supported, required
from timonel.api.objects import Object
from timonel.api.selectors import label_selector_from_set
from timonel.kinds.base import AGE_COLUMN, NAME_COLUMN, Column, ScaleSpec, Strategy
from timonel.kinds.core.common import as_dict, is_int, validate_nonnegative
from timonel.kinds.core.podspec import default_pod_template, validate_pod_template
from timonel.kinds.core.podtemplate import container_cells
from timonel.kinds.printing import creation_age, field_description, format_map_selector


def _doc(*path: str) -> str:
    return field_description("", "v1", "ReplicationController", *path)


class ReplicationControllerStrategy(Strategy):
    kind = "ReplicationController"
    plural = "replicationcontrollers"
    singular = "replicationcontroller"
    short_names = ("rc",)
    categories = ("all",)
    has_status = True
    tracks_generation = True
    # The selector is a plain label map (labels.SelectorFromSet), not a LabelSelector.
    scale = ScaleSpec(selector=("spec", "selector"), selector_is_map=True)
    field_labels = ("status.replicas",)
    columns: ClassVar[tuple[Column, ...]] = (
        NAME_COLUMN,
        Column("Desired", type="integer", description=_doc("spec", "replicas")),
        Column("Current", type="integer", description=_doc("status", "replicas")),
        Column("Ready", type="integer", description=_doc("status", "readyReplicas")),
        AGE_COLUMN,
        Column("Containers", priority=1, description="Names of each container in the template."),
        Column(
            "Images", priority=1, description="Images referenced by each container in the template."
        ),
        Column("Selector", priority=1, description=_doc("spec", "selector")),
    )

    def default(self, obj: Object) -> None:
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            spec = {}
            obj["spec"] = spec
        template = spec.get("template")
        if isinstance(template, dict):
            default_pod_template(template)
            labels = as_dict(template.get("metadata")).get("labels")
            if isinstance(labels, dict):
                if not spec.get("selector"):
                    spec["selector"] = dict(labels)
                meta = obj.setdefault("metadata", {})
                if not meta.get("labels"):
                    meta["labels"] = dict(labels)
        if spec.get("replicas") is None:
            spec["replicas"] = 1
        status = obj.get("status")
        if not isinstance(status, dict):
            status = {}
            obj["status"] = status
        # `replicas` is always written by Go, zero or not.
        status.setdefault("replicas", 0)

    def prepare_for_create(self, obj: Object) -> None:
        super().prepare_for_create(obj)
        obj["status"] = {"replicas": 0}

    def validate(self, obj: Object) -> list[FieldError]:
        spec = as_dict(obj.get("spec"))
        errors = validate_nonnegative(spec.get("minReadySeconds"), "spec.minReadySeconds")
        selector = spec.get("selector")
        if not selector:
            errors.append(required("spec.selector"))
        replicas = spec.get("replicas")
        if is_int(replicas) and replicas < 0:
            errors.append(
                invalid_value("spec.replicas", replicas, "must be greater than or equal to 0")
            )
        template = spec.get("template")
        if template is None:
            errors.append(required("spec.template"))
            return errors
        template = as_dict(template)
        labels = as_dict(as_dict(template.get("metadata")).get("labels"))
        if (
            isinstance(selector, dict)
            and selector
            and not label_selector_from_set(selector).matches(labels)
        ):
            errors.append(
                invalid_value(
                    "spec.template.metadata.labels",
                    labels,
                    "`selector` does not match template `labels`",
                )
            )
        errors += validate_pod_template(template, "spec.template")
        template_spec = as_dict(template.get("spec"))
        restart = template_spec.get("restartPolicy")
        if restart != "Always":
            errors.append(
                not_supported("spec.template.spec.restartPolicy", restart or "", ["Always"])
            )
        if template_spec.get("activeDeadlineSeconds") is not None:
            errors.append(
                forbidden(
                    "spec.template.spec.activeDeadlineSeconds",
                    "activeDeadlineSeconds in ReplicationController is not Supported",
                )
            )
        return errors

    def validate_update(self, new: Object, old: Object) -> list[FieldError]:
        return self.validate(new)

    def validate_status_update(self, new: Object, old: Object) -> list[FieldError]:
        status = as_dict(new.get("status"))
        errors: list[FieldError] = []
        for field in (
            "replicas",
            "fullyLabeledReplicas",
            "readyReplicas",
            "availableReplicas",
            "observedGeneration",
        ):
            errors += validate_nonnegative(status.get(field), f"status.{field}")
        replicas = status.get("replicas") or 0
        for field in ("fullyLabeledReplicas", "readyReplicas", "availableReplicas"):
            value = status.get(field) or 0
            if value > replicas:
                errors.append(
                    invalid_value(
                        f"status.{field}", value, "cannot be greater than status.replicas"
                    )
                )
        if (status.get("availableReplicas") or 0) > (status.get("readyReplicas") or 0):
            errors.append(
                invalid_value(
                    "status.availableReplicas",
                    status.get("availableReplicas"),
                    "cannot be greater than readyReplicas",
                )
            )
        return errors

    def table_row(self, obj: Object) -> list[Any]:
        meta = as_dict(obj.get("metadata"))
        spec = as_dict(obj.get("spec"))
        status = as_dict(obj.get("status"))
        template_spec = as_dict(as_dict(spec.get("template")).get("spec"))
        names, images = container_cells(template_spec.get("containers"))
        return [
            meta.get("name", ""),
            int(spec.get("replicas") or 0),
            int(status.get("replicas") or 0),
            int(status.get("readyReplicas") or 0),
            creation_age(obj),
            names,
            images,
            format_map_selector(spec.get("selector")),
        ]

    def selectable_fields(self, obj: Object) -> dict[str, str]:
        fields = super().selectable_fields(obj)
        fields["status.replicas"] = str(as_dict(obj.get("status")).get("replicas") or 0)
        return fields


def selector_text(controller: Object) -> str:
    """The Scale status selector of a ReplicationController: `labels.SelectorFromSet`."""
    return str(label_selector_from_set(as_dict(as_dict(controller.get("spec")).get("selector"))))
