"""The pods/eviction subresource: delete a pod unless that would break its
PodDisruptionBudget (kube's pkg/registry/core/pod/storage/eviction.go).

- A pod that is finished, pending or already terminating is deleted without asking.
- A pod covered by more than one budget cannot be evicted (500).
- A ready pod covered by a budget takes one of its allowed disruptions: the budget's
  status is written first (disruptionsAllowed - 1, the pod in disruptedPods), or the
  eviction is refused with 429 TooManyRequests when none is left or the disruption
  controller has not caught up with the budget's spec.
- A pod that is not ready does not count as healthy: it goes without taking a
  disruption when the budget is met (or its policy is AlwaysAllow), provided it has
  not become ready meanwhile (the deletion is conditional on its resourceVersion).
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from timonel.api import errors
from timonel.api.objects import Object
from timonel.api.selectors import label_selector_from_object
from timonel.apiserver.store import ResourceStore
from timonel.kinds.core import pod as pod_kind
from timonel.kinds.policy.poddisruptionbudget import set_disruption_allowed_condition
from timonel.storage.interface import RevisionMismatch

if TYPE_CHECKING:
    from timonel.apiserver.server import ApiServer

EVICTION_RETRIES = 20
MAX_DISRUPTED_PODS = 2000


def covering_budgets(budgets: list[Object], pod: Object) -> list[Object]:
    """The budgets whose selector matches the pod; a nil or empty selector matches none."""
    labels = (pod.get("metadata") or {}).get("labels") or {}
    found = []
    for budget in budgets:
        try:
            selector = label_selector_from_object((budget.get("spec") or {}).get("selector"))
        except errors.StatusError:
            continue
        if selector.empty or not selector.matches(labels):
            continue
        found.append(budget)
    return found


def _is_ready(pod: Object) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in conditions
        if isinstance(c, dict)
    )


def unhealthy_pod_may_go(pod: Object, budget: Object) -> bool:
    """A pod that is not ready may go without taking a disruption: always under the
    AlwaysAllow policy, else while the budget has its healthy pods."""
    if _is_ready(pod):
        return False
    if (budget.get("spec") or {}).get("unhealthyPodEvictionPolicy") == "AlwaysAllow":
        return True
    status = budget.get("status") or {}
    desired = int(status.get("desiredHealthy") or 0)
    return int(status.get("currentHealthy") or 0) >= desired and desired > 0


def still_processing(budget_name: str) -> errors.StatusError:
    return errors.StatusError(
        429,
        "TooManyRequests",
        "Cannot evict pod as it would violate the pod's disruption budget.",
        details={
            "causes": [
                {
                    "reason": "DisruptionBudget",
                    "message": f"The disruption budget {budget_name} is still being processed by the server.",
                }
            ],
            "retryAfterSeconds": 10,
        },
    )


def take_disruption(budget: Object, pod_name: str, now: str) -> Object:
    """checkAndDecrement: the budget after granting one disruption to `pod_name`, or the
    refusal."""
    status = budget.get("status") or {}
    meta = budget.get("metadata") or {}
    name = meta.get("name", "")
    denied: errors.StatusError | None
    if int(status.get("observedGeneration") or 0) < int(meta.get("generation") or 0):
        denied = pod_kind.eviction_denied(budget)
    elif int(status.get("disruptionsAllowed") or 0) < 0:
        denied = _budget_forbidden(name, "pdb disruptions allowed is negative")
    elif len(status.get("disruptedPods") or {}) > MAX_DISRUPTED_PODS:
        denied = _budget_forbidden(
            name, "DisruptedPods map too big - too many evictions not confirmed by PDB controller"
        )
    else:
        denied = pod_kind.eviction_denied(budget)
    if denied is not None:
        raise denied
    granted = copy.deepcopy(budget)
    pod_kind.record_disruption(granted, pod_name, now=now)
    if granted["status"]["disruptionsAllowed"] == 0:
        set_disruption_allowed_condition(granted, now=now)
    return granted


def _budget_forbidden(name: str, why: str) -> errors.StatusError:
    return errors.StatusError(
        403,
        "Forbidden",
        f'poddisruptionbudget.policy "{name}" is forbidden: {why}',
        details={"name": name, "group": "policy", "kind": "poddisruptionbudget"},
    )


def _with_resource_version(options: dict[str, Any], resource_version: str) -> dict[str, Any]:
    updated = dict(options)
    updated["preconditions"] = {
        **(options.get("preconditions") or {}),
        "resourceVersion": resource_version,
    }
    return updated


async def evict(
    api: ApiServer,
    store: ResourceStore,
    namespace: str,
    name: str,
    eviction: Object,
    *,
    dry_run: bool,
) -> None:
    pod_kind.check_eviction_name(name, eviction)
    options: dict[str, Any] = dict(eviction.get("deleteOptions") or {})
    caller_version = (options.get("preconditions") or {}).get("resourceVersion")
    pod: Object | None = None
    for _ in range(EVICTION_RETRIES):
        pod, _ = await store.read(namespace, name)
        if not pod_kind.can_ignore_disruption_budget(pod):
            break
        delete_options = options
        phase = (pod.get("status") or {}).get("phase")
        terminating = bool((pod.get("metadata") or {}).get("deletionTimestamp"))
        if phase not in ("Succeeded", "Failed") and not terminating and not caller_version:
            # A pending pod must not have become ready (and protected) since it was read.
            delete_options = _with_resource_version(options, pod["metadata"]["resourceVersion"])
        try:
            await api.handlers.delete_object(
                store, namespace, name, delete_options, dry_run=dry_run
            )
            return
        except errors.StatusError as error:
            if error.code != 409 or caller_version:
                raise
    assert pod is not None
    budgets = covering_budgets(
        await api.list_objects("policy", "poddisruptionbudgets", namespace), pod
    )
    if len(budgets) > 1:
        raise pod_kind.too_many_budgets()
    conditional = False
    budget_name = ""
    if budgets:
        budget_name = budgets[0]["metadata"]["name"]
        if unhealthy_pod_may_go(pod, budgets[0]):
            conditional = True
        else:
            await _grant_disruption(api, namespace, budget_name, name, dry_run=dry_run)
    delete_options = options
    if conditional:
        delete_options = _with_resource_version(options, pod["metadata"]["resourceVersion"])
    try:
        await api.handlers.delete_object(store, namespace, name, delete_options, dry_run=dry_run)
    except errors.StatusError as error:
        if error.code == 409 and conditional and not caller_version:
            raise still_processing(budget_name) from None
        raise


async def _grant_disruption(
    api: ApiServer, namespace: str, budget_name: str, pod_name: str, *, dry_run: bool
) -> None:
    for _ in range(EVICTION_RETRIES):
        budget = await api.get_object("policy", "poddisruptionbudgets", namespace, budget_name)
        if budget is None:
            raise errors.not_found("poddisruptionbudgets", "policy", budget_name)
        granted = take_disruption(
            budget, pod_name, datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        )
        if dry_run:
            return
        try:
            await api.store_object("policy", "poddisruptionbudgets", granted)
            return
        except RevisionMismatch:
            continue
    raise errors.StatusError(
        504,
        "Timeout",
        f'Timeout: couldn\'t update PodDisruptionBudget "{budget_name}" due to conflicts',
        details={"retryAfterSeconds": 10},
    )
