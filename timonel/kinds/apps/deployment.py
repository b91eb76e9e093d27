"""apps/v1 Deployment: defaults, validation and table as kube-apiserver 1.32 has them."""

from __future__ import annotations

from typing import Any, ClassVar

from timonel.api.errors import (
    FieldError,
    RawValue,
    forbidden,
    invalid_value,
    not_supported,
    required,
)
from timonel.api.objects import Object
from timonel.kinds.apps.intstr import (
    go_int_or_string,
    int_or_percent_value,
    is_int,
    validate_nonnegative,
    validate_not_more_than_100_percent,
    validate_positive_int_or_percent,
)
from timonel.kinds.apps.selector import (
    convert_selector,
    go_label_selector,
    selector_string,
)
from timonel.kinds.apps.workload import (
    CONTAINERS_COLUMN,
    IMAGES_COLUMN,
    READY_COLUMN,
    container_cells,
    default_rolling_update,
    default_template,
    int_field,
    pod_name_warning,
    semantic_equal,
    spec_of,
    status_of,
    validate_replica_counts,
    validate_selected_template,
)
from timonel.kinds.base import AGE_COLUMN, NAME_COLUMN, Column, ScaleSpec, Strategy
from timonel.kinds.printing import creation_age

STRATEGY_TYPES = ["Recreate", "RollingUpdate"]


def default_deployment(obj: Object) -> None:
    """SetDefaults_Deployment plus the pod template's defaults."""
    spec = spec_of(obj)
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    default_rolling_update(spec, "strategy", "25%", "25%")
    if spec.get("revisionHistoryLimit") is None:
        spec["revisionHistoryLimit"] = 10
    if spec.get("progressDeadlineSeconds") is None:
        spec["progressDeadlineSeconds"] = 600
    if not isinstance(spec.get("template"), dict):
        spec["template"] = {}
    default_template(spec["template"])


def validate_rolling_update(rolling: dict[str, Any], path: str) -> list[FieldError]:
    """ValidateRollingUpdateDeployment."""
    max_unavailable = rolling.get("maxUnavailable")
    max_surge = rolling.get("maxSurge")
    errors = validate_positive_int_or_percent(max_unavailable, f"{path}.maxUnavailable")
    errors += validate_positive_int_or_percent(max_surge, f"{path}.maxSurge")
    if int_or_percent_value(max_unavailable) == 0 and int_or_percent_value(max_surge) == 0:
        errors.append(
            invalid_value(
                f"{path}.maxUnavailable",
                go_int_or_string(max_unavailable),
                "may not be 0 when `maxSurge` is 0",
            )
        )
    errors += validate_not_more_than_100_percent(max_unavailable, f"{path}.maxUnavailable")
    return errors


def _go_strategy(strategy: dict[str, Any]) -> RawValue:
    rolling = "(nil)" if strategy.get("rollingUpdate") is None else "(0xc000000000)"
    kind = str(strategy.get("type", "")).replace('"', '\\"')
    return RawValue(
        f'apps.DeploymentStrategy{{Type:"{kind}", RollingUpdate:(*apps.RollingUpdateDeployment){rolling}}}'
    )


def validate_strategy(strategy: Any, path: str) -> list[FieldError]:
    """ValidateDeploymentStrategy."""
    strategy = strategy if isinstance(strategy, dict) else {}
    kind = strategy.get("type")
    rolling = strategy.get("rollingUpdate")
    if kind == "Recreate":
        if rolling is not None:
            return [
                forbidden(
                    f"{path}.rollingUpdate",
                    "may not be specified when strategy `type` is 'Recreate'",
                )
            ]
        return []
    if kind == "RollingUpdate":
        if not isinstance(rolling, dict):
            return [required(f"{path}.rollingUpdate", "this should be defaulted and never be nil")]
        return validate_rolling_update(rolling, f"{path}.rollingUpdate")
    return [not_supported(path, _go_strategy(strategy), STRATEGY_TYPES)]


def validate_deployment_spec(spec: Any) -> list[FieldError]:
    """ValidateDeploymentSpec, with field paths under `spec`."""
    spec = spec if isinstance(spec, dict) else {}
    errors = validate_nonnegative(spec.get("replicas"), "spec.replicas")
    errors += validate_selected_template(spec, "Deployment")
    errors += validate_strategy(spec.get("strategy"), "spec.strategy")
    min_ready = spec.get("minReadySeconds")
    errors += validate_nonnegative(min_ready, "spec.minReadySeconds")
    errors += validate_nonnegative(spec.get("revisionHistoryLimit"), "spec.revisionHistoryLimit")
    deadline = spec.get("progressDeadlineSeconds")
    if deadline is not None:
        errors += validate_nonnegative(deadline, "spec.progressDeadlineSeconds")
        if is_int(deadline) and deadline <= (min_ready if is_int(min_ready) else 0):
            errors.append(
                invalid_value(
                    "spec.progressDeadlineSeconds",
                    deadline,
                    "must be greater than minReadySeconds",
                )
            )
    return errors


def validate_deployment_status(status: Any) -> list[FieldError]:
    """ValidateDeploymentStatus."""
    return validate_replica_counts(
        status,
        (
            "observedGeneration",
            "replicas",
            "updatedReplicas",
            "readyReplicas",
            "availableReplicas",
            "unavailableReplicas",
            "collisionCount",
        ),
        ("updatedReplicas", "readyReplicas", "availableReplicas"),
    )


def validate_collision_count(new: Object, old: Object) -> list[FieldError]:
    """status.collisionCount may grow or be set, never shrink or be cleared."""
    old_count = status_of(old).get("collisionCount")
    new_count = status_of(new).get("collisionCount")
    if not is_int(old_count):
        return []
    if not is_int(new_count) or new_count < old_count:
        value = new_count if is_int(new_count) else 0
        return [invalid_value("status.collisionCount", value, "cannot be decremented")]
    return []


def validate_selector_unchanged(new: Object, old: Object) -> list[FieldError]:
    """The selector of apps/v1 workloads cannot change once created."""
    new_selector = (new.get("spec") or {}).get("selector")
    old_selector = (old.get("spec") or {}).get("selector")
    if semantic_equal(new_selector, old_selector):
        return []
    return [invalid_value("spec.selector", go_label_selector(new_selector), "field is immutable")]


class DeploymentStrategy(Strategy):
    group: ClassVar[str] = "apps"
    version: ClassVar[str] = "v1"
    kind: ClassVar[str] = "Deployment"
    plural: ClassVar[str] = "deployments"
    singular: ClassVar[str] = "deployment"
    short_names: ClassVar[tuple[str, ...]] = ("deploy",)
    categories: ClassVar[tuple[str, ...]] = ("all",)
    has_status: ClassVar[bool] = True
    scale: ClassVar[ScaleSpec | None] = ScaleSpec()
    tracks_generation: ClassVar[bool] = True
    # Checked by validate_update, with kube-apiserver's wording.
    immutable_fields: ClassVar[tuple[str, ...]] = ("spec.selector",)
    columns: ClassVar[tuple[Column, ...]] = (
        NAME_COLUMN,
        READY_COLUMN,
        Column(
            "Up-to-date",
            description="Total number of non-terminated pods targeted by this deployment that "
            "have the desired template spec.",
        ),
        Column(
            "Available",
            description="Total number of available pods (ready for at least minReadySeconds) "
            "targeted by this deployment.",
        ),
        AGE_COLUMN,
        CONTAINERS_COLUMN,
        IMAGES_COLUMN,
        Column(
            "Selector",
            priority=1,
            description="Label selector for pods. Existing ReplicaSets whose pods are selected "
            "by this will be the ones affected by this deployment.",
        ),
    )

    def default(self, obj: Object) -> None:
        default_deployment(obj)

    def prepare_for_create(self, obj: Object) -> None:
        super().prepare_for_create(obj)
        obj["status"] = {}

    def spec_changed(self, new: Object, old: Object) -> bool:
        # Annotations are copied onto the ReplicaSets, so changing them is a new generation.
        new_annotations = (new.get("metadata") or {}).get("annotations")
        old_annotations = (old.get("metadata") or {}).get("annotations")
        return not semantic_equal(new.get("spec"), old.get("spec")) or not semantic_equal(
            new_annotations, old_annotations
        )

    def validate(self, obj: Object) -> list[FieldError]:
        return validate_deployment_spec(obj.get("spec"))

    def validate_update(self, new: Object, old: Object) -> list[FieldError]:
        return self.validate(new) + validate_selector_unchanged(new, old)

    def prepare_for_status_update(self, new: Object, old: Object) -> None:
        # kube-apiserver's deployment status strategy takes only spec and labels from the
        # stored object: the deployment controller writes the revision annotation along
        # with the status.
        new_meta = new.get("metadata")
        new_meta = new_meta if isinstance(new_meta, dict) else {}
        has_annotations = "annotations" in new_meta
        annotations = new_meta.get("annotations")
        super().prepare_for_status_update(new, old)
        if has_annotations:
            new["metadata"]["annotations"] = annotations
        else:
            new["metadata"].pop("annotations", None)

    def validate_status_update(self, new: Object, old: Object) -> list[FieldError]:
        return validate_deployment_status(new.get("status")) + validate_collision_count(new, old)

    def warnings(self, obj: Object) -> list[str]:
        return pod_name_warning(obj)

    def table_row(self, obj: Object) -> list[Any]:
        spec = obj.get("spec") or {}
        status = status_of(obj)
        names, images = container_cells(spec.get("template"))
        selector = spec.get("selector")
        selector_cell = (
            selector_string(selector) if convert_selector(selector) is not None else "<invalid>"
        )
        return [
            (obj.get("metadata") or {}).get("name", ""),
            f"{int_field(status, 'readyReplicas')}/{int_field(spec, 'replicas')}",
            int_field(status, "updatedReplicas"),
            int_field(status, "availableReplicas"),
            creation_age(obj),
            names,
            images,
            selector_cell,
        ]
