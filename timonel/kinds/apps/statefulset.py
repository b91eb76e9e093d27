"""apps/v1 StatefulSet: defaults, validation and table as kube-apiserver 1.32 has them.

kube-apiserver checks little of a StatefulSet's pod template (labels, annotations, restart
policy): the PodSpec is not validated until the controller creates pods from it.
"""

from __future__ import annotations

import copy
from typing import Any, ClassVar

from timonel.api.errors import FieldError, forbidden, invalid_value, not_supported, required
from timonel.api.objects import Object
from timonel.api.validation import (
    dns1123_label_problems,
    validate_annotations,
    validate_labels,
)
from timonel.kinds.apps.deployment import validate_collision_count
from timonel.kinds.apps.intstr import (
    go_int_or_string,
    int_or_percent_value,
    validate_nonnegative,
    validate_not_more_than_100_percent,
    validate_positive_int_or_percent,
)
from timonel.kinds.apps.selector import (
    convert_selector,
    go_label_selector,
)
from timonel.kinds.apps.workload import (
    CONTAINERS_COLUMN,
    IMAGES_COLUMN,
    READY_COLUMN,
    as_dict,
    container_cells,
    default_status_counters,
    default_template,
    int_field,
    semantic_equal,
    spec_of,
    status_of,
    validate_replica_counts,
    validate_restart_always,
    validate_selector_matches_template,
    validate_workload_selector,
)
from timonel.kinds.base import AGE_COLUMN, NAME_COLUMN, Column, ScaleSpec, Strategy
from timonel.kinds.core.podspec import default_claim_spec
from timonel.kinds.printing import creation_age

POD_MANAGEMENT_POLICIES = ("OrderedReady", "Parallel")
RETENTION_POLICIES = ["Retain", "Delete"]
# What may change after creation; everything else in the spec is fixed.
MUTABLE_SPEC_FIELDS = (
    "replicas",
    "ordinals",
    "template",
    "updateStrategy",
    "persistentVolumeClaimRetentionPolicy",
    "minReadySeconds",
)
IMMUTABLE_SPEC_MESSAGE = (
    "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', "
    "'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are "
    "forbidden"
)
_STATUS_COUNTERS = ("replicas", "availableReplicas")


def _default_claim_template(claim: dict[str, Any]) -> None:
    """What kube-apiserver fills in each claim template: PersistentVolumeClaim defaults,
    including the Pending phase of a claim that does not exist yet."""
    meta = claim.get("metadata")
    if not isinstance(meta, dict):
        meta = {}
        claim["metadata"] = meta
    meta.setdefault("creationTimestamp", None)
    spec = claim.get("spec")
    if not isinstance(spec, dict):
        spec = {}
        claim["spec"] = spec
    default_claim_spec(spec)
    status = claim.get("status")
    if not isinstance(status, dict):
        status = {}
        claim["status"] = status
    if not status.get("phase"):
        status["phase"] = "Pending"


def default_stateful_set(obj: Object) -> None:
    spec = spec_of(obj)
    if not spec.get("podManagementPolicy"):
        spec["podManagementPolicy"] = "OrderedReady"
    strategy = spec.get("updateStrategy")
    if not isinstance(strategy, dict):
        strategy = {}
        spec["updateStrategy"] = strategy
    if not strategy.get("type"):
        strategy["type"] = "RollingUpdate"
        if strategy.get("rollingUpdate") is None:
            strategy["rollingUpdate"] = {}
    rolling = strategy.get("rollingUpdate")
    is_rolling = strategy["type"] == "RollingUpdate"
    if is_rolling and isinstance(rolling, dict) and rolling.get("partition") is None:
        rolling["partition"] = 0
    retention = spec.get("persistentVolumeClaimRetentionPolicy")
    if not isinstance(retention, dict):
        retention = {}
        spec["persistentVolumeClaimRetentionPolicy"] = retention
    for name in ("whenDeleted", "whenScaled"):
        if not retention.get(name):
            retention[name] = "Retain"
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    if spec.get("revisionHistoryLimit") is None:
        spec["revisionHistoryLimit"] = 10
    if spec.get("serviceName") is None:
        spec["serviceName"] = ""
    if not isinstance(spec.get("template"), dict):
        spec["template"] = {}
    default_template(spec["template"])
    for claim in spec.get("volumeClaimTemplates") or []:
        if isinstance(claim, dict):
            _default_claim_template(claim)
    default_status_counters(obj, _STATUS_COUNTERS)


def _validate_rolling_update(rolling: dict[str, Any], path: str) -> list[FieldError]:
    errors = validate_nonnegative(rolling.get("partition"), f"{path}.partition")
    max_unavailable = rolling.get("maxUnavailable")
    if max_unavailable is not None:
        unavailable_path = f"{path}.maxUnavailable"
        errors += validate_positive_int_or_percent(max_unavailable, unavailable_path)
        if int_or_percent_value(max_unavailable) == 0:
            errors.append(
                invalid_value(unavailable_path, go_int_or_string(max_unavailable), "cannot be 0")
            )
        errors += validate_not_more_than_100_percent(max_unavailable, unavailable_path)
    return errors


def _validate_update_strategy(strategy: Any, path: str) -> list[FieldError]:
    strategy = strategy if isinstance(strategy, dict) else {}
    kind = strategy.get("type") or ""
    rolling = strategy.get("rollingUpdate")
    if kind == "":
        return [required(path)]
    if kind == "OnDelete":
        if rolling is not None:
            return [
                invalid_value(
                    f"{path}.rollingUpdate",
                    rolling,
                    "only allowed for updateStrategy 'RollingUpdate'",
                )
            ]
        return []
    if kind == "RollingUpdate":
        if isinstance(rolling, dict):
            return _validate_rolling_update(rolling, f"{path}.rollingUpdate")
        return []
    return [invalid_value(path, strategy, "must be 'RollingUpdate' or 'OnDelete'")]


def _validate_template(template: Any, selector: Any, path: str) -> list[FieldError]:
    """ValidatePodTemplateSpecForStatefulSet: selector match, labels and annotations."""
    if not isinstance(template, dict):
        return [required(path)]
    errors = validate_selector_matches_template(selector, template, f"{path}.metadata.labels")
    meta = as_dict(template.get("metadata"))
    errors += validate_labels(meta.get("labels"), f"{path}.labels")
    errors += validate_annotations(meta.get("annotations"), f"{path}.annotations")
    return errors


def validate_stateful_set_spec(spec: Any) -> list[FieldError]:
    """ValidateStatefulSetSpec, with field paths under `spec`."""
    spec = spec if isinstance(spec, dict) else {}
    errors: list[FieldError] = []
    policy = spec.get("podManagementPolicy") or ""
    if policy == "":
        errors.append(required("spec.podManagementPolicy"))
    elif policy not in POD_MANAGEMENT_POLICIES:
        errors.append(
            invalid_value(
                "spec.podManagementPolicy", policy, "must be 'OrderedReady' or 'Parallel'"
            )
        )
    errors += _validate_update_strategy(spec.get("updateStrategy"), "spec.updateStrategy")
    retention = spec.get("persistentVolumeClaimRetentionPolicy")
    if isinstance(retention, dict):
        for name in ("whenDeleted", "whenScaled"):
            value = retention.get(name, "")
            if value not in RETENTION_POLICIES:
                errors.append(
                    not_supported(
                        f"spec.persistentVolumeClaimRetentionPolicy.{name}",
                        value,
                        RETENTION_POLICIES,
                    )
                )
    errors += validate_nonnegative(spec.get("replicas"), "spec.replicas")
    errors += validate_nonnegative(spec.get("minReadySeconds"), "spec.minReadySeconds")
    ordinals = spec.get("ordinals")
    if isinstance(ordinals, dict):
        errors += validate_nonnegative(ordinals.get("start"), "spec.ordinals.start")
    selector = spec.get("selector")
    errors += validate_workload_selector(selector, "statefulset")
    template = spec.get("template")
    if convert_selector(selector) is None:
        errors.append(invalid_value("spec.selector", go_label_selector(selector), ""))
    else:
        errors += _validate_template(template, selector, "spec.template")
    if isinstance(template, dict):
        errors += validate_restart_always(template, "spec.template", "StatefulSet")
    return errors


def validate_stateful_set_status(status: Any) -> list[FieldError]:
    return validate_replica_counts(
        status,
        (
            "replicas",
            "readyReplicas",
            "currentReplicas",
            "updatedReplicas",
            "availableReplicas",
            "observedGeneration",
            "collisionCount",
        ),
        ("readyReplicas", "currentReplicas", "updatedReplicas", "availableReplicas"),
        ready_field="status.readyReplicas",
    )


def fixed_spec_changed(new: Object, old: Object) -> bool:
    """Whether anything outside MUTABLE_SPEC_FIELDS differs between the two specs."""
    new_spec = copy.copy(new.get("spec") or {})
    old_spec = copy.copy(old.get("spec") or {})
    for name in MUTABLE_SPEC_FIELDS:
        new_spec.pop(name, None)
        old_spec.pop(name, None)
    return not semantic_equal(new_spec, old_spec)


class StatefulSetStrategy(Strategy):
    group: ClassVar[str] = "apps"
    version: ClassVar[str] = "v1"
    kind: ClassVar[str] = "StatefulSet"
    plural: ClassVar[str] = "statefulsets"
    singular: ClassVar[str] = "statefulset"
    short_names: ClassVar[tuple[str, ...]] = ("sts",)
    categories: ClassVar[tuple[str, ...]] = ("all",)
    has_status: ClassVar[bool] = True
    scale: ClassVar[ScaleSpec | None] = ScaleSpec()
    tracks_generation: ClassVar[bool] = True
    columns: ClassVar[tuple[Column, ...]] = (
        NAME_COLUMN,
        READY_COLUMN,
        AGE_COLUMN,
        CONTAINERS_COLUMN,
        IMAGES_COLUMN,
    )

    def name_problems(self, name: str) -> list[str]:
        # Pods and their hostnames are named after the StatefulSet.
        return dns1123_label_problems(name)

    def default(self, obj: Object) -> None:
        default_stateful_set(obj)

    def prepare_for_create(self, obj: Object) -> None:
        super().prepare_for_create(obj)
        obj["status"] = {name: 0 for name in _STATUS_COUNTERS}

    def validate(self, obj: Object) -> list[FieldError]:
        return validate_stateful_set_spec(obj.get("spec"))

    def validate_update(self, new: Object, old: Object) -> list[FieldError]:
        errors = self.validate(new)
        if fixed_spec_changed(new, old):
            errors.append(forbidden("spec", IMMUTABLE_SPEC_MESSAGE))
        return errors

    def validate_status_update(self, new: Object, old: Object) -> list[FieldError]:
        return validate_stateful_set_status(new.get("status")) + validate_collision_count(new, old)

    def table_row(self, obj: Object) -> list[Any]:
        spec = obj.get("spec") or {}
        names, images = container_cells(spec.get("template"))
        return [
            (obj.get("metadata") or {}).get("name", ""),
            f"{int_field(status_of(obj), 'readyReplicas')}/{int_field(spec, 'replicas')}",
            creation_age(obj),
            names,
            images,
        ]
