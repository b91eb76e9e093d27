"""policy/v1 PodDisruptionBudget: validation and table as kube-apiserver 1.32 has them, and
the budget arithmetic the disruption controller and the eviction subresource share."""

from __future__ import annotations

from typing import Any, ClassVar

from timonel.api.errors import FieldError, invalid_value, not_supported
from timonel.api.objects import Object
from timonel.kinds.apps.intstr import (
    is_int,
    scaled_value,
    validate_nonnegative,
    validate_not_more_than_100_percent,
    validate_positive_int_or_percent,
)
from timonel.kinds.apps.selector import validate_label_selector
from timonel.kinds.apps.workload import as_dict, status_of
from timonel.kinds.base import AGE_COLUMN, NAME_COLUMN, Column, Strategy
from timonel.kinds.printing import creation_age

UNHEALTHY_POD_EVICTION_POLICIES = ["AlwaysAllow", "IfHealthyBudget"]
_STATUS_COUNTERS = ("disruptionsAllowed", "currentHealthy", "desiredHealthy", "expectedPods")


def validate_pod_disruption_budget_spec(spec: Any) -> list[FieldError]:
    spec = as_dict(spec)
    errors: list[FieldError] = []
    min_available = spec.get("minAvailable")
    max_unavailable = spec.get("maxUnavailable")
    if min_available is not None and max_unavailable is not None:
        errors.append(
            invalid_value("spec", spec, "minAvailable and maxUnavailable cannot be both set")
        )
    for name, value in (("minAvailable", min_available), ("maxUnavailable", max_unavailable)):
        if value is not None:
            errors += validate_positive_int_or_percent(value, f"spec.{name}")
            errors += validate_not_more_than_100_percent(value, f"spec.{name}")
    errors += validate_label_selector(spec.get("selector"), "spec.selector")
    policy = spec.get("unhealthyPodEvictionPolicy")
    if policy is not None and policy not in UNHEALTHY_POD_EVICTION_POLICIES:
        errors.append(
            not_supported(
                "spec.unhealthyPodEvictionPolicy", policy, UNHEALTHY_POD_EVICTION_POLICIES
            )
        )
    return errors


def validate_pod_disruption_budget_status(status: Any) -> list[FieldError]:
    status = as_dict(status)
    errors: list[FieldError] = []
    for name in _STATUS_COUNTERS:
        errors += validate_nonnegative(status.get(name), f"status.{name}")
    return errors


# -- budget arithmetic ----------------------------------------------------------------------


def desired_healthy(pdb: Object, expected_pods: int) -> int:
    """How many pods must stay healthy, given how many the owning controllers want
    (`expected_pods`; for an integer minAvailable, the number of selected pods)."""
    spec = as_dict(pdb.get("spec"))
    if spec.get("maxUnavailable") is not None:
        unavailable = scaled_value(spec["maxUnavailable"], expected_pods, round_up=True)
        return max(expected_pods - unavailable, 0)
    if spec.get("minAvailable") is not None:
        return scaled_value(spec["minAvailable"], expected_pods, round_up=True)
    return 0


def disruptions_allowed(current_healthy: int, desired: int, expected_pods: int) -> int:
    """status.disruptionsAllowed as the disruption controller computes it."""
    allowed = current_healthy - desired
    if expected_pods <= 0 or allowed <= 0:
        return 0
    return allowed


def disruption_allowed(pdb: Object) -> bool:
    """Whether an eviction covered by this budget may go ahead now: the controller has seen
    the current spec and reports room for one more disruption."""
    generation = (pdb.get("metadata") or {}).get("generation")
    status = status_of(pdb)
    observed = status.get("observedGeneration")
    if is_int(generation) and (not is_int(observed) or observed < generation):
        return False
    allowed = status.get("disruptionsAllowed")
    return is_int(allowed) and allowed > 0


def disruption_budget_cause(pdb: Object) -> str:
    """The cause kube-apiserver gives when an eviction would break the budget."""
    status = status_of(pdb)
    name = (pdb.get("metadata") or {}).get("name", "")
    desired = status.get("desiredHealthy") if is_int(status.get("desiredHealthy")) else 0
    current = status.get("currentHealthy") if is_int(status.get("currentHealthy")) else 0
    return f"The disruption budget {name} needs {desired} healthy pods and has {current} currently"


DISRUPTION_ALLOWED_CONDITION = "DisruptionAllowed"
SUFFICIENT_PODS_REASON = "SufficientPods"
INSUFFICIENT_PODS_REASON = "InsufficientPods"
SYNC_FAILED_REASON = "SyncFailed"


def set_status_condition(conditions: list[Any], condition: dict[str, Any], *, now: str) -> bool:
    """apimeta.SetStatusCondition: add or update the metav1.Condition of that type; the
    transition time moves only when the status does. True when something changed."""
    for existing in conditions:
        if isinstance(existing, dict) and existing.get("type") == condition["type"]:
            changed = False
            if existing.get("status") != condition["status"]:
                existing["status"] = condition["status"]
                existing["lastTransitionTime"] = now
                changed = True
            for name in ("reason", "message", "observedGeneration"):
                if existing.get(name) != condition.get(name):
                    if condition.get(name) is None:
                        existing.pop(name, None)
                    else:
                        existing[name] = condition[name]
                    changed = True
            return changed
    conditions.append({**condition, "lastTransitionTime": now})
    return True


def set_disruption_allowed_condition(pdb: Object, *, now: str) -> None:
    """UpdateDisruptionAllowedCondition: True (SufficientPods) while disruptions are
    allowed, False (InsufficientPods) otherwise."""
    status = pdb.setdefault("status", {})
    allowed = status.get("disruptionsAllowed")
    sufficient = is_int(allowed) and allowed > 0
    conditions = status.get("conditions")
    if not isinstance(conditions, list):
        conditions = []
        status["conditions"] = conditions
    condition: dict[str, Any] = {
        "type": DISRUPTION_ALLOWED_CONDITION,
        "status": "True" if sufficient else "False",
        "reason": SUFFICIENT_PODS_REASON if sufficient else INSUFFICIENT_PODS_REASON,
        "message": "",
    }
    if status.get("observedGeneration"):
        condition["observedGeneration"] = status["observedGeneration"]
    set_status_condition(conditions, condition, now=now)


def disruption_allowed_condition_up_to_date(pdb: Object) -> bool:
    """ConditionsAreUpToDate: the DisruptionAllowed condition agrees with the counters
    and the status describes the current generation."""
    status = status_of(pdb)
    if status.get("observedGeneration") != (pdb.get("metadata") or {}).get("generation"):
        return False
    condition = next(
        (
            c
            for c in status.get("conditions") or []
            if isinstance(c, dict) and c.get("type") == DISRUPTION_ALLOWED_CONDITION
        ),
        None,
    )
    if condition is None:
        return False
    allowed = status.get("disruptionsAllowed")
    if is_int(allowed) and allowed > 0:
        return (
            condition.get("status") == "True" and condition.get("reason") == SUFFICIENT_PODS_REASON
        )
    return (
        condition.get("status") == "False" and condition.get("reason") == INSUFFICIENT_PODS_REASON
    )


def _int_or_string_cell(value: Any) -> str:
    if value is None:
        return "N/A"
    return str(value)


class PodDisruptionBudgetStrategy(Strategy):
    group: ClassVar[str] = "policy"
    version: ClassVar[str] = "v1"
    kind: ClassVar[str] = "PodDisruptionBudget"
    plural: ClassVar[str] = "poddisruptionbudgets"
    singular: ClassVar[str] = "poddisruptionbudget"
    short_names: ClassVar[tuple[str, ...]] = ("pdb",)
    has_status: ClassVar[bool] = True
    tracks_generation: ClassVar[bool] = True
    columns: ClassVar[tuple[Column, ...]] = (
        NAME_COLUMN,
        Column("Min Available", description="The minimum number of pods that must be available."),
        Column(
            "Max Unavailable",
            description="The maximum number of pods that may be unavailable.",
        ),
        Column(
            "Allowed Disruptions",
            type="integer",
            description="Calculated number of pods that may be disrupted at this time.",
        ),
        AGE_COLUMN,
    )

    def default(self, obj: Object) -> None:
        status = obj.get("status")
        if isinstance(status, dict):
            for name in _STATUS_COUNTERS:
                if status.get(name) is None:
                    status[name] = 0

    def prepare_for_create(self, obj: Object) -> None:
        super().prepare_for_create(obj)
        obj["status"] = {name: 0 for name in _STATUS_COUNTERS}

    def validate(self, obj: Object) -> list[FieldError]:
        return validate_pod_disruption_budget_spec(obj.get("spec"))

    def validate_status_update(self, new: Object, old: Object) -> list[FieldError]:
        return validate_pod_disruption_budget_status(new.get("status"))

    def table_row(self, obj: Object) -> list[Any]:
        spec = as_dict(obj.get("spec"))
        allowed = status_of(obj).get("disruptionsAllowed")
        return [
            (obj.get("metadata") or {}).get("name", ""),
            _int_or_string_cell(spec.get("minAvailable")),
            _int_or_string_cell(spec.get("maxUnavailable")),
            allowed if is_int(allowed) else 0,
            creation_age(obj),
        ]
