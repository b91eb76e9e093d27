"""What the workload kinds (apps and batch) share: their pod template's defaults and
validation as a controller's template, the Containers/Images table cells, and the
warnings and field helpers they word alike.

The PodSpec itself is defaulted and validated by timonel.kinds.core.podspec; this module
adds what a controller's template needs on top.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from timonel.api.errors import FieldError, forbidden, invalid_value, not_supported, required
from timonel.api.objects import Object
from timonel.api.validation import dns1123_label_problems
from timonel.kinds.apps.intstr import validate_nonnegative
from timonel.kinds.apps.selector import (
    convert_selector,
    go_label_selector,
    go_string_map,
    validate_label_selector,
)
from timonel.kinds.base import Column, dig
from timonel.kinds.core.common import spec_of as spec_of
from timonel.kinds.core.podspec import default_pod_template, validate_pod_template

CONTAINERS_COLUMN = Column(
    "Containers", priority=1, description="Names of each container in the template."
)
IMAGES_COLUMN = Column(
    "Images", priority=1, description="Images referenced by each container in the template."
)
READY_COLUMN = Column("Ready", description="Number of the pod with ready state")

SELECTOR_MISMATCH = "`selector` does not match template `labels`"


def as_dict(value: Any) -> dict[str, Any]:
    """`value` when it is an object, else an empty one (malformed input reads as absent)."""
    return value if isinstance(value, dict) else {}


def status_of(obj: Object) -> dict[str, Any]:
    status = obj.get("status")
    return status if isinstance(status, dict) else {}


def int_field(mapping: Any, name: str, default: int = 0) -> int:
    """An integer field for display and arithmetic; anything unusable reads as `default`."""
    if not isinstance(mapping, dict):
        return default
    value = mapping.get(name)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return default


def _without_empties(value: Any) -> Any:
    if isinstance(value, dict):
        pruned = {k: _without_empties(v) for k, v in value.items()}
        return {k: v for k, v in pruned.items() if v is not None and v != {} and v != []}
    if isinstance(value, list):
        return [_without_empties(v) for v in value]
    return value


def semantic_equal(a: Any, b: Any) -> bool:
    """apiequality.Semantic.DeepEqual on JSON values: an absent, null, empty map and empty
    list field are all the same thing."""
    a, b = _without_empties(a), _without_empties(b)
    return bool(a == b or (a in (None, {}, []) and b in (None, {}, [])))


def default_rolling_update(
    spec: dict[str, Any], field: str, max_unavailable: int | str, max_surge: int | str
) -> None:
    """A RollingUpdate strategy at `spec[field]` unless another type is set, with the
    kind's default maxUnavailable and maxSurge (Deployment and DaemonSet)."""
    strategy = spec.get(field)
    if not isinstance(strategy, dict):
        strategy = {}
        spec[field] = strategy
    if not strategy.get("type"):
        strategy["type"] = "RollingUpdate"
    if strategy["type"] == "RollingUpdate":
        rolling = strategy.get("rollingUpdate")
        if not isinstance(rolling, dict):
            rolling = {}
            strategy["rollingUpdate"] = rolling
        if rolling.get("maxUnavailable") is None:
            rolling["maxUnavailable"] = max_unavailable
        if rolling.get("maxSurge") is None:
            rolling["maxSurge"] = max_surge


def default_status_counters(obj: Object, counters: Iterable[str]) -> None:
    """Zero for each of `counters` missing from a status the client sent."""
    status = obj.get("status")
    if isinstance(status, dict):
        for name in counters:
            if status.get(name) is None:
                status[name] = 0


def default_template(template: Any) -> None:
    """Pod template defaults, as they nest inside a workload object."""
    if isinstance(template, dict):
        default_pod_template(template)


def container_cells(template: Any) -> tuple[str, str]:
    """layoutContainerCells: comma-joined container names and images of a template."""
    containers = dig(template, "spec", "containers", default=[])
    if not isinstance(containers, list):
        return "", ""
    names = ",".join(str(c.get("name", "")) for c in containers if isinstance(c, dict))
    images = ",".join(str(c.get("image", "")) for c in containers if isinstance(c, dict))
    return names, images


def empty_selector_errors(selector: Any, kind: str) -> list[FieldError]:
    """A selector object with neither matchLabels nor matchExpressions would select every
    pod; kube-apiserver names the kind in lower case (ReplicaSets say `deployment`)."""
    if isinstance(selector, dict) and not (
        selector.get("matchLabels") or selector.get("matchExpressions")
    ):
        message = f"empty selector is invalid for {kind}"
        return [invalid_value("spec.selector", go_label_selector(selector), message)]
    return []


def validate_workload_selector(selector: Any, kind: str) -> list[FieldError]:
    """spec.selector of a Deployment, ReplicaSet or StatefulSet: required, well formed
    and not empty."""
    if selector is None:
        return [required("spec.selector")]
    return validate_label_selector(selector, "spec.selector") + empty_selector_errors(
        selector, kind
    )


def validate_selected_template(spec: dict[str, Any], kind: str) -> list[FieldError]:
    """The selector and pod template of a Deployment or ReplicaSet spec."""
    selector = spec.get("selector")
    errors = validate_workload_selector(selector, "deployment")
    if convert_selector(selector) is None:
        errors.append(
            invalid_value("spec.selector", go_label_selector(selector), "invalid label selector")
        )
    else:
        errors += validate_template_for_replicas(
            spec.get("template"), selector, "spec.template", kind
        )
    return errors


def validate_counters(status: dict[str, Any], counters: Iterable[str]) -> list[FieldError]:
    """Every status counter is non-negative."""
    errors: list[FieldError] = []
    for name in counters:
        errors += validate_nonnegative(status.get(name), f"status.{name}")
    return errors


def validate_replica_counts(
    status: Any,
    counters: Iterable[str],
    bounded: Iterable[str],
    *,
    ready_field: str = "readyReplicas",
) -> list[FieldError]:
    """A replicated workload's status: every counter non-negative, none of `bounded`
    above status.replicas, availableReplicas not above readyReplicas (which each kind's
    message names as `ready_field`)."""
    status = as_dict(status)
    errors = validate_counters(status, counters)
    replicas = int_field(status, "replicas")
    for name in bounded:
        if int_field(status, name) > replicas:
            errors.append(
                invalid_value(
                    f"status.{name}", status[name], "cannot be greater than status.replicas"
                )
            )
    if int_field(status, "availableReplicas") > int_field(status, "readyReplicas"):
        errors.append(
            invalid_value(
                "status.availableReplicas",
                status["availableReplicas"],
                f"cannot be greater than {ready_field}",
            )
        )
    return errors


def validate_selector_matches_template(
    selector: Any, template: Any, labels_path: str
) -> list[FieldError]:
    """A non-empty selector must select the template's labels. A nil selector converts to
    one that selects nothing, so it fails here too (next to its own Required error)."""
    converted = convert_selector(selector)
    if converted is None or converted.empty:
        return []
    labels = dig(template, "metadata", "labels")
    if converted.matches(labels if isinstance(labels, dict) else {}):
        return []
    return [invalid_value(labels_path, go_string_map(labels), SELECTOR_MISMATCH)]


def validate_template_for_replicas(
    template: Any, selector: Any, path: str, kind: str
) -> list[FieldError]:
    """ValidatePodTemplateSpecForReplicaSet (Deployments, ReplicaSets and, for their
    template, DaemonSets): the selector selects the template, the PodSpec is valid, pods
    restart Always, no deadline."""
    if not isinstance(template, dict):
        return [required(path)]
    errors = validate_selector_matches_template(selector, template, f"{path}.metadata.labels")
    errors.extend(validate_pod_template(template, path))
    errors.extend(validate_restart_always(template, path, kind))
    return errors


def validate_restart_always(template: dict[str, Any], path: str, kind: str) -> list[FieldError]:
    errors: list[FieldError] = []
    restart_policy = dig(template, "spec", "restartPolicy", default="")
    if restart_policy != "Always":
        errors.append(not_supported(f"{path}.spec.restartPolicy", restart_policy, ["Always"]))
    if dig(template, "spec", "activeDeadlineSeconds") is not None:
        errors.append(
            forbidden(
                f"{path}.spec.activeDeadlineSeconds",
                f"activeDeadlineSeconds in {kind} is not Supported",
            )
        )
    return errors


def pod_name_warning(obj: Object) -> list[str]:
    """Names that end up in pod names and hostnames should be DNS labels."""
    name = (obj.get("metadata") or {}).get("name") or ""
    problems = dns1123_label_problems(name) if name else []
    if not problems:
        return []
    return [
        "metadata.name: this is used in Pod names and hostnames, which can result in "
        f"surprising behavior; a DNS label is recommended: [{' '.join(problems)}]"
    ]
