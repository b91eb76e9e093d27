"""What the workload kinds (apps and batch) share: their pod template's defaults and
validation as a controller's template, the Containers/Images table cells, and the
warnings and field helpers they word alike.

The PodSpec itself is defaulted and validated by timonel.kinds.core.podspec; this module
adds what a controller's template needs on top.
"""

from __future__ import annotations

from typing import Any

from timonel.api.errors import FieldError, forbidden, invalid_value, not_supported, required
from timonel.api.objects import Object
from timonel.api.validation import dns1123_label_problems
from timonel.kinds.apps.selector import convert_selector, go_string_map
from timonel.kinds.base import Column, dig
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


def spec_of(obj: Object) -> dict[str, Any]:
    """obj["spec"], created empty when missing or not an object."""
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        spec = {}
        obj["spec"] = spec
    return spec


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
    """ValidatePodTemplateSpecForReplicaSet (Deployments and ReplicaSets): the selector
    selects the template, the PodSpec is valid, pods restart Always, no deadline."""
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
