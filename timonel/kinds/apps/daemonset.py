"""apps/v1 DaemonSet: defaults, validation and table as kube-apiserver 1.32 has them.

kube-apiserver keeps a template generation next to the spec and shows it as the
`deprecated.daemonset.template.generation` annotation: 1 at creation, one more on each
template change, never what a client writes.
"""

from __future__ import annotations

from typing import Any, ClassVar

from timonel.api.errors import FieldError, invalid_value, not_supported, required
from timonel.api.objects import Object, metadata
from timonel.kinds.apps.deployment import validate_collision_count, validate_selector_unchanged
from timonel.kinds.apps.intstr import (
    go_int_or_string,
    int_or_percent_value,
    validate_nonnegative,
    validate_not_more_than_100_percent,
    validate_positive_int_or_percent,
)
from timonel.kinds.apps.selector import (
    format_label_selector,
    validate_label_selector,
)
from timonel.kinds.apps.workload import (
    CONTAINERS_COLUMN,
    IMAGES_COLUMN,
    as_dict,
    container_cells,
    default_rolling_update,
    default_status_counters,
    default_template,
    empty_selector_errors,
    int_field,
    pod_name_warning,
    semantic_equal,
    spec_of,
    status_of,
    validate_counters,
    validate_template_for_replicas,
)
from timonel.kinds.base import AGE_COLUMN, NAME_COLUMN, Column, Strategy, dig
from timonel.kinds.printing import creation_age, format_map_selector

TEMPLATE_GENERATION_ANNOTATION = "deprecated.daemonset.template.generation"
UPDATE_STRATEGY_TYPES = ["RollingUpdate", "OnDelete"]
_STATUS_COUNTERS = (
    "currentNumberScheduled",
    "numberMisscheduled",
    "desiredNumberScheduled",
    "numberReady",
)


def default_daemon_set(obj: Object) -> None:
    spec = spec_of(obj)
    default_rolling_update(spec, "updateStrategy", 1, 0)
    if spec.get("revisionHistoryLimit") is None:
        spec["revisionHistoryLimit"] = 10
    if not isinstance(spec.get("template"), dict):
        spec["template"] = {}
    default_template(spec["template"])
    default_status_counters(obj, _STATUS_COUNTERS)


def template_generation(obj: Object) -> int:
    """The template generation the annotation records (0 when absent or unreadable)."""
    value = ((obj.get("metadata") or {}).get("annotations") or {}).get(
        TEMPLATE_GENERATION_ANNOTATION
    )
    try:
        return int(value) if value is not None else 0
    except (TypeError, ValueError):
        return 0


def _set_template_generation(obj: Object, generation: int) -> None:
    annotations = metadata(obj).get("annotations")
    if not isinstance(annotations, dict):
        annotations = {}
        metadata(obj)["annotations"] = annotations
    annotations[TEMPLATE_GENERATION_ANNOTATION] = str(generation)


def validate_rolling_update(rolling: dict[str, Any], path: str) -> list[FieldError]:
    """ValidateRollingUpdateDaemonSet: exactly one of maxUnavailable and maxSurge non-zero."""
    max_unavailable = rolling.get("maxUnavailable")
    max_surge = rolling.get("maxSurge")
    errors = validate_positive_int_or_percent(max_unavailable, f"{path}.maxUnavailable")
    errors += validate_positive_int_or_percent(max_surge, f"{path}.maxSurge")
    errors += validate_not_more_than_100_percent(max_unavailable, f"{path}.maxUnavailable")
    errors += validate_not_more_than_100_percent(max_surge, f"{path}.maxSurge")
    has_unavailable = int_or_percent_value(max_unavailable) != 0
    has_surge = int_or_percent_value(max_surge) != 0
    if has_unavailable and has_surge:
        errors.append(
            invalid_value(
                f"{path}.maxSurge",
                go_int_or_string(max_surge),
                "may not be set when maxUnavailable is non-zero",
            )
        )
    elif not has_unavailable and not has_surge:
        errors.append(required(f"{path}.maxUnavailable", "cannot be 0 when maxSurge is 0"))
    return errors


def validate_update_strategy(strategy: Any, path: str) -> list[FieldError]:
    strategy = strategy if isinstance(strategy, dict) else {}
    kind = strategy.get("type")
    if kind == "OnDelete":
        return []
    if kind == "RollingUpdate":
        rolling = strategy.get("rollingUpdate")
        if not isinstance(rolling, dict):
            return [required(f"{path}.rollingUpdate")]
        return validate_rolling_update(rolling, f"{path}.rollingUpdate")
    return [not_supported(path, strategy, UPDATE_STRATEGY_TYPES)]


def validate_daemon_set_spec(spec: Any) -> list[FieldError]:
    """ValidateDaemonSetSpec, with field paths under `spec`."""
    spec = spec if isinstance(spec, dict) else {}
    selector = spec.get("selector")
    template = spec.get("template") if isinstance(spec.get("template"), dict) else {}
    errors = validate_label_selector(selector, "spec.selector")
    errors += empty_selector_errors(selector, "daemonset")
    errors += validate_template_for_replicas(template, selector, "spec.template", "DaemonSet")
    errors += validate_nonnegative(spec.get("minReadySeconds"), "spec.minReadySeconds")
    errors += validate_update_strategy(spec.get("updateStrategy"), "spec.updateStrategy")
    errors += validate_nonnegative(spec.get("revisionHistoryLimit"), "spec.revisionHistoryLimit")
    return errors


def validate_daemon_set_status(status: Any) -> list[FieldError]:
    return validate_counters(
        as_dict(status),
        (
            *_STATUS_COUNTERS,
            "observedGeneration",
            "updatedNumberScheduled",
            "numberAvailable",
            "numberUnavailable",
            "collisionCount",
        ),
    )


class DaemonSetStrategy(Strategy):
    group: ClassVar[str] = "apps"
    version: ClassVar[str] = "v1"
    kind: ClassVar[str] = "DaemonSet"
    plural: ClassVar[str] = "daemonsets"
    singular: ClassVar[str] = "daemonset"
    short_names: ClassVar[tuple[str, ...]] = ("ds",)
    categories: ClassVar[tuple[str, ...]] = ("all",)
    has_status: ClassVar[bool] = True
    tracks_generation: ClassVar[bool] = True
    # Checked by validate_update, with kube-apiserver's wording.
    immutable_fields: ClassVar[tuple[str, ...]] = ("spec.selector",)
    columns: ClassVar[tuple[Column, ...]] = (
        NAME_COLUMN,
        Column(
            "Desired",
            type="integer",
            description="The total number of nodes that should be running the daemon pod "
            "(including nodes correctly running the daemon pod). More info: "
            "https://kubernetes.io/docs/concepts/workloads/controllers/daemonset/",
        ),
        Column(
            "Current",
            type="integer",
            description="The number of nodes that are running at least 1 daemon pod and are "
            "supposed to run the daemon pod. More info: "
            "https://kubernetes.io/docs/concepts/workloads/controllers/daemonset/",
        ),
        Column(
            "Ready",
            type="integer",
            description="The number of nodes that should be running the daemon pod and have one "
            "or more of the daemon pod running and ready.",
        ),
        Column(
            "Up-to-date",
            type="integer",
            description="The total number of nodes that are running updated daemon pod",
        ),
        Column(
            "Available",
            type="integer",
            description="The number of nodes that should be running the daemon pod and have one "
            "or more of the daemon pod running and available (ready for at least "
            "spec.minReadySeconds)",
        ),
        Column(
            "Node Selector",
            description="NodeSelector is a selector which must be true for the pod to fit on a "
            "node. Selector which must match a node's labels for the pod to be scheduled on that "
            "node. More info: https://kubernetes.io/docs/concepts/configuration/"
            "assign-pod-node/",
        ),
        AGE_COLUMN,
        CONTAINERS_COLUMN,
        IMAGES_COLUMN,
        Column(
            "Selector",
            priority=1,
            description="A label query over pods that are managed by the daemon set. Must match "
            "in order to be controlled. If empty, defaulted to labels on Pod template. More "
            "info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/"
            "#label-selectors",
        ),
    )

    def default(self, obj: Object) -> None:
        default_daemon_set(obj)

    def prepare_for_create(self, obj: Object) -> None:
        super().prepare_for_create(obj)
        obj["status"] = {name: 0 for name in _STATUS_COUNTERS}
        _set_template_generation(obj, max(template_generation(obj), 1))

    def prepare_for_update(self, new: Object, old: Object) -> None:
        super().prepare_for_update(new, old)
        generation = template_generation(old)
        if not semantic_equal(dig(new, "spec", "template"), dig(old, "spec", "template")):
            generation += 1
        _set_template_generation(new, generation)

    def validate(self, obj: Object) -> list[FieldError]:
        return validate_daemon_set_spec(obj.get("spec"))

    def validate_update(self, new: Object, old: Object) -> list[FieldError]:
        return self.validate(new) + validate_selector_unchanged(new, old)

    def validate_status_update(self, new: Object, old: Object) -> list[FieldError]:
        return validate_daemon_set_status(new.get("status")) + validate_collision_count(new, old)

    def warnings(self, obj: Object) -> list[str]:
        return pod_name_warning(obj)

    def table_row(self, obj: Object) -> list[Any]:
        spec = obj.get("spec") or {}
        status = status_of(obj)
        template = spec.get("template")
        names, images = container_cells(template)
        return [
            (obj.get("metadata") or {}).get("name", ""),
            int_field(status, "desiredNumberScheduled"),
            int_field(status, "currentNumberScheduled"),
            int_field(status, "numberReady"),
            int_field(status, "updatedNumberScheduled"),
            int_field(status, "numberAvailable"),
            format_map_selector(dig(template, "spec", "nodeSelector")),
            creation_age(obj),
            names,
            images,
            format_label_selector(spec.get("selector")),
        ]
