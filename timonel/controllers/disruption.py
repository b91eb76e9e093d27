"""The disruption controller: the status of PodDisruptionBudgets (kube's
pkg/controller/disruption).

For each budget: the pods its selector matches, how many of them should exist
(`expectedPods`: the pods themselves for an integer minAvailable, else the scale of
the controllers that own them), how many must stay healthy (`desiredHealthy`), how many
are (`currentHealthy`: ready, not being deleted, not just evicted), and from those
`disruptionsAllowed` with a DisruptionAllowed condition. Evictions the API server
granted are remembered in `disruptedPods` until the pod goes, or two minutes pass.
When the status cannot be computed the budget fails safe: no disruption allowed.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from timonel.api.errors import StatusError
from timonel.api.objects import Object
from timonel.api.selectors import label_selector_from_object
from timonel.client.resources import (
    DEPLOYMENTS,
    PODDISRUPTIONBUDGETS,
    PODS,
    REPLICASETS,
    REPLICATIONCONTROLLERS,
    STATEFULSETS,
)
from timonel.client.rest import is_conflict
from timonel.controllers.base import Controller
from timonel.controllers.manager import ControllerContext
from timonel.controllers.nodelifecycle import rfc3339
from timonel.controllers.ownership import controller_of
from timonel.controllers.pods import is_ready, meta, timestamp
from timonel.kinds.apps.intstr import is_int
from timonel.kinds.policy.poddisruptionbudget import (
    DISRUPTION_ALLOWED_CONDITION,
    SYNC_FAILED_REASON,
    desired_healthy,
    disruption_allowed_condition_up_to_date,
    disruptions_allowed,
    set_disruption_allowed_condition,
    set_status_condition,
)

log = logging.getLogger(__name__)

# How long an eviction granted by the API server keeps its pod out of the healthy count.
DELETION_TIMEOUT = timedelta(minutes=2)
# (group, kind) of the workloads whose scale the controller reads from informers.
_APPS_GROUPS = ("apps", "extensions")


# ======================================================================================
# pure decisions
# ======================================================================================


def pods_for_budget(pdb: Object, pods: list[Object]) -> list[Object]:
    """The budget's pods: an empty selector selects all of its namespace, none none."""
    try:
        selector = label_selector_from_object((pdb.get("spec") or {}).get("selector"))
    except StatusError:
        return []
    return [p for p in pods if selector.matches(meta(p).get("labels") or {})]


def disrupted_pods(
    pdb: Object, pods: list[Object], now: datetime
) -> tuple[dict[str, str], datetime | None, list[Object]]:
    """buildDisruptedPodMap: the evictions still in flight (pods neither deleted nor past
    the deletion timeout), when to look again, and the pods whose eviction timed out."""
    recorded = ((pdb.get("status") or {}).get("disruptedPods")) or {}
    kept: dict[str, str] = {}
    recheck: datetime | None = None
    overdue: list[Object] = []
    for pod in pods:
        name = meta(pod).get("name", "")
        if meta(pod).get("deletionTimestamp") or name not in recorded:
            continue
        evicted_at = timestamp(recorded[name])
        if evicted_at is None:
            continue
        expected_deletion = evicted_at + DELETION_TIMEOUT
        if expected_deletion < now:
            overdue.append(pod)
        else:
            recheck = expected_deletion if recheck is None else min(recheck, expected_deletion)
            kept[name] = recorded[name]
    return kept, recheck, overdue


def count_healthy(pods: list[Object], disrupted: dict[str, str], now: datetime) -> int:
    healthy = 0
    for pod in pods:
        if meta(pod).get("deletionTimestamp"):
            continue
        evicted_at = timestamp(disrupted.get(meta(pod).get("name", "")))
        if evicted_at is not None and evicted_at + DELETION_TIMEOUT > now:
            continue
        if is_ready(pod):
            healthy += 1
    return healthy


def uses_controller_scale(pdb: Object) -> bool:
    """Whether expectedPods comes from the owners' scale (maxUnavailable, or a percentage
    minAvailable) rather than from counting the pods."""
    spec = pdb.get("spec") or {}
    if spec.get("maxUnavailable") is not None:
        return True
    return spec.get("minAvailable") is not None and not is_int(spec["minAvailable"])


@dataclass(frozen=True)
class BudgetStatus:
    current_healthy: int
    desired_healthy: int
    expected_pods: int
    disruptions_allowed: int
    disrupted_pods: dict[str, str]


def budget_status(
    pdb: Object, pods: list[Object], expected_pods: int, disrupted: dict[str, str], now: datetime
) -> BudgetStatus:
    desired = desired_healthy(pdb, expected_pods)
    healthy = count_healthy(pods, disrupted, now)
    return BudgetStatus(
        healthy,
        desired,
        expected_pods,
        disruptions_allowed(healthy, desired, expected_pods),
        disrupted,
    )


def status_changed(pdb: Object, status: BudgetStatus) -> bool:
    current = pdb.get("status") or {}
    return not (
        current.get("currentHealthy") == status.current_healthy
        and current.get("desiredHealthy") == status.desired_healthy
        and current.get("expectedPods") == status.expected_pods
        and current.get("disruptionsAllowed") == status.disruptions_allowed
        and (current.get("disruptedPods") or {}) == status.disrupted_pods
        and current.get("observedGeneration") == meta(pdb).get("generation")
        and disruption_allowed_condition_up_to_date(pdb)
    )


def with_status(pdb: Object, status: BudgetStatus, now: datetime) -> Object:
    updated = copy.deepcopy(pdb)
    new_status: dict[str, Any] = {"observedGeneration": meta(pdb).get("generation") or 0}
    if status.disrupted_pods:
        new_status["disruptedPods"] = dict(status.disrupted_pods)
    new_status.update(
        disruptionsAllowed=status.disruptions_allowed,
        currentHealthy=status.current_healthy,
        desiredHealthy=status.desired_healthy,
        expectedPods=status.expected_pods,
        conditions=copy.deepcopy((pdb.get("status") or {}).get("conditions") or []),
    )
    updated["status"] = new_status
    set_disruption_allowed_condition(updated, now=rfc3339(now))
    return updated


def failed_safe(pdb: Object, message: str, now: datetime) -> Object:
    """failSafe: no disruption allowed, and a condition that says why."""
    updated = copy.deepcopy(pdb)
    status = updated.setdefault("status", {})
    status["disruptionsAllowed"] = 0
    conditions = status.get("conditions")
    if not isinstance(conditions, list):
        conditions = []
        status["conditions"] = conditions
    condition: dict[str, Any] = {
        "type": DISRUPTION_ALLOWED_CONDITION,
        "status": "False",
        "reason": SYNC_FAILED_REASON,
        "message": message,
    }
    if status.get("observedGeneration"):
        condition["observedGeneration"] = status["observedGeneration"]
    set_status_condition(conditions, condition, now=rfc3339(now))
    return updated


def go_label_selector(selector: Any) -> str:
    """A *metav1.LabelSelector as Go's %v prints it (event messages quote it so)."""
    if not isinstance(selector, dict):
        return "nil"
    labels = "".join(f"{k}: {v}," for k, v in sorted((selector.get("matchLabels") or {}).items()))
    expressions = "".join(
        f"LabelSelectorRequirement{{Key:{e.get('key', '')},Operator:{e.get('operator', '')},"
        f"Values:[{' '.join(e.get('values') or [])}],}},"
        for e in selector.get("matchExpressions") or []
    )
    return (
        f"&LabelSelector{{MatchLabels:map[string]string{{{labels}}},"
        f"MatchExpressions:[]LabelSelectorRequirement{{{expressions}}},}}"
    )


def _kind_in(reference: dict[str, Any], kind: str, groups: tuple[str, ...]) -> bool:
    group = str(reference.get("apiVersion", "")).rpartition("/")[0]
    return reference.get("kind") == kind and group in groups


def _replicas(obj: Object) -> int:
    replicas = (obj.get("spec") or {}).get("replicas")
    return int(replicas) if is_int(replicas) else 1


# ======================================================================================
# the controller
# ======================================================================================


class DisruptionController(Controller):
    name: ClassVar[str] = "disruption-controller"
    workers = 2

    def __init__(
        self, context: ControllerContext, *, clock: Callable[[], datetime] | None = None
    ) -> None:
        self.client = context.client
        self.budgets = context.informers.informer(PODDISRUPTIONBUDGETS)
        self.pods = context.informers.informer(PODS)
        self.replicasets = context.informers.informer(REPLICASETS)
        self.deployments = context.informers.informer(DEPLOYMENTS)
        self.statefulsets = context.informers.informer(STATEFULSETS)
        self.replication_controllers = context.informers.informer(REPLICATIONCONTROLLERS)
        super().__init__(
            [
                self.budgets,
                self.pods,
                self.replicasets,
                self.deployments,
                self.statefulsets,
                self.replication_controllers,
            ]
        )
        self.recorder = context.recorder("controllermanager")
        self.now = clock or (lambda: datetime.now(UTC))
        self.budgets.add_handlers(
            on_add=self._enqueue,
            on_update=lambda _, new: self._enqueue(new),
            on_delete=self._enqueue,
        )
        self.pods.add_handlers(
            on_add=self._pod_changed, on_update=self._pod_updated, on_delete=self._pod_changed
        )

    def _enqueue(self, pdb: Object) -> None:
        self.queue.add(f"{meta(pdb).get('namespace', '')}/{meta(pdb).get('name', '')}")

    def _pod_changed(self, pod: Object) -> None:
        namespace = meta(pod).get("namespace", "")
        for pdb in self.budgets.indexer.by_index("namespace", namespace):
            if pods_for_budget(pdb, [pod]):
                self._enqueue(pdb)

    def _pod_updated(self, old: Object, new: Object) -> None:
        self._pod_changed(new)
        if meta(old).get("labels") != meta(new).get("labels"):
            self._pod_changed(old)

    async def sync(self, key: str) -> None:
        pdb = self.budgets.get(key)
        if pdb is None:
            return
        try:
            await self.try_sync(key, pdb)
        except StatusError as error:
            if is_conflict(error):
                raise
            await self._fail_safe(pdb, error.message)
        except ValueError as error:
            await self._fail_safe(pdb, str(error))

    async def try_sync(self, key: str, pdb: Object) -> None:
        namespace = meta(pdb).get("namespace", "")
        pods = pods_for_budget(pdb, self.pods.indexer.by_index("namespace", namespace))
        if not pods:
            self.recorder.event(pdb, "Normal", "NoPods", "No matching pods found")
        if uses_controller_scale(pdb):
            expected, unmanaged = self.expected_scale(pods)
            if unmanaged:
                self.recorder.event(
                    pdb,
                    "Warning",
                    "UnmanagedPods",
                    "Pods selected by this PodDisruptionBudget (selector: "
                    f"{go_label_selector((pdb.get('spec') or {}).get('selector'))}) were found to be unmanaged. "
                    "As a result, the status of the PDB cannot be calculated correctly, which may result in "
                    'undefined behavior. To account for these pods please set ".spec.minAvailable" field of '
                    "the PDB to an integer value.",
                )
        else:
            expected = len(pods)
        now = self.now()
        disrupted, recheck, overdue = disrupted_pods(pdb, pods, now)
        for pod in overdue:
            self.recorder.event(
                pod,
                "Warning",
                "NotDeleted",
                f"Pod was expected by PDB {namespace}/{namespace} to be deleted but it wasn't",
            )
        status = budget_status(pdb, pods, expected, disrupted, now)
        if status_changed(pdb, status):
            await self.client.update_status(PODDISRUPTIONBUDGETS, with_status(pdb, status, now))
        if recheck is not None:
            self.queue.add_after(key, max((recheck - now).total_seconds(), 0.0))

    async def _fail_safe(self, pdb: Object, message: str) -> None:
        log.info("pdb %s/%s: %s", meta(pdb).get("namespace"), meta(pdb).get("name"), message)
        await self.client.update_status(PODDISRUPTIONBUDGETS, failed_safe(pdb, message, self.now()))

    def expected_scale(self, pods: list[Object]) -> tuple[int, list[str]]:
        """getExpectedScale: the summed scale of the controllers owning the pods, and the
        names of pods no controller owns. Raises ValueError for an owner it cannot find."""
        scales: dict[str, int] = {}
        unmanaged: list[str] = []
        for pod in pods:
            reference = controller_of(pod)
            if reference is None:
                unmanaged.append(meta(pod).get("name", ""))
                continue
            if reference.get("uid") in scales:
                continue
            found = self.controller_scale(reference, meta(pod).get("namespace", ""))
            if found is None:
                raise ValueError(f'found no controllers for pod "{meta(pod).get("name", "")}"')
            uid, scale = found
            scales[uid] = scale
        return sum(scales.values()), unmanaged

    def controller_scale(self, reference: dict[str, Any], namespace: str) -> tuple[str, int] | None:
        """The finders, in kube's order: ReplicationController, the Deployment of a
        ReplicaSet, the ReplicaSet itself, StatefulSet."""
        name, uid = reference.get("name", ""), reference.get("uid")
        if _kind_in(reference, "ReplicationController", ("",)):
            found = self.replication_controllers.get(f"{namespace}/{name}")
            if found is not None and meta(found).get("uid") == uid:
                return str(uid), _replicas(found)
            return None
        if _kind_in(reference, "ReplicaSet", _APPS_GROUPS):
            replicaset = self.replicasets.get(f"{namespace}/{name}")
            if replicaset is None or meta(replicaset).get("uid") != uid:
                return None
            owner = controller_of(replicaset)
            if owner is not None and _kind_in(owner, "Deployment", _APPS_GROUPS):
                deployment = self.deployments.get(f"{namespace}/{owner.get('name', '')}")
                if deployment is not None and meta(deployment).get("uid") == owner.get("uid"):
                    return str(owner.get("uid")), _replicas(deployment)
            return str(uid), _replicas(replicaset)
        if _kind_in(reference, "StatefulSet", _APPS_GROUPS):
            statefulset = self.statefulsets.get(f"{namespace}/{name}")
            if statefulset is not None and meta(statefulset).get("uid") == uid:
                return str(uid), _replicas(statefulset)
        return None
