"""The taint eviction controller (the "taint manager"): deletes pods that do not
tolerate their node's NoExecute taints (kube's pkg/controller/tainteviction).

For each pod bound to a node with NoExecute taints:
- a taint the pod does not tolerate: the pod is deleted at once;
- every taint tolerated, some for a limited `tolerationSeconds`: the deletion is
  scheduled for the shortest of those, counted from when the controller noticed, and
  kept even if the taints change meanwhile (unless they go away or become tolerated
  forever, which cancels it);
- tolerated forever, or no taints left: any scheduled deletion is cancelled.

A deletion is announced with a TaintManagerEviction event ("Marking for deletion Pod
ns/name"), marks the pod with a DisruptionTarget condition and deletes it gracefully.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any, ClassVar

from timonel.api.errors import StatusError
from timonel.api.objects import Object
from timonel.client.resources import NODES, PODS
from timonel.client.rest import STRATEGIC_MERGE_PATCH
from timonel.controllers.base import Controller, Requeue
from timonel.controllers.manager import ControllerContext
from timonel.controllers.nodelifecycle import rfc3339
from timonel.controllers.pods import meta
from timonel.kinds.core.pod import set_pod_condition

log = logging.getLogger(__name__)

DELETE_RETRIES = 5


# ======================================================================================
# pure decisions
# ======================================================================================


def no_execute_taints(node: Object | None) -> list[dict[str, Any]]:
    return [
        t
        for t in ((node or {}).get("spec") or {}).get("taints") or []
        if t.get("effect") == "NoExecute"
    ]


def tolerates(toleration: dict[str, Any], taint: dict[str, Any]) -> bool:
    """Toleration.ToleratesTaint: effect and key match (empty matches any), then
    Exists matches every value and Equal (the default) the same value."""
    if toleration.get("effect") and toleration.get("effect") != taint.get("effect"):
        return False
    if toleration.get("key") and toleration.get("key") != taint.get("key"):
        return False
    operator = toleration.get("operator") or "Equal"
    if operator == "Exists":
        return True
    if operator == "Equal":
        return (toleration.get("value") or "") == (taint.get("value") or "")
    return False


def matching_tolerations(
    taints: list[dict[str, Any]], tolerations: list[dict[str, Any]]
) -> tuple[bool, list[dict[str, Any]]]:
    """GetMatchingTolerations: whether every taint is tolerated, and the first toleration
    found for each."""
    used: list[dict[str, Any]] = []
    for taint in taints:
        found = next((t for t in tolerations if tolerates(t, taint)), None)
        if found is None:
            return False, []
        used.append(found)
    return True, used


def min_toleration_seconds(tolerations: list[dict[str, Any]]) -> float | None:
    """getMinTolerationTime: the shortest tolerationSeconds (0 for none or non-positive),
    None when all of them tolerate forever."""
    if not tolerations:
        return 0.0
    shortest: float | None = None
    for toleration in tolerations:
        seconds = toleration.get("tolerationSeconds")
        if seconds is None:
            continue
        if seconds <= 0:
            return 0.0
        shortest = float(seconds) if shortest is None else min(shortest, float(seconds))
    return shortest


@dataclass
class ScheduledEviction:
    created: datetime
    fire_at: datetime
    # Done: the pod was deleted; kept so that it is not scheduled again.
    fired: bool = False


class Action(Enum):
    NOTHING = "nothing"
    CANCEL = "cancel"
    EVICT = "evict"
    SCHEDULE = "schedule"


@dataclass(frozen=True)
class EvictionDecision:
    action: Action
    fire_at: datetime | None = None


def plan_eviction(
    pod: Object, taints: list[dict[str, Any]], scheduled: ScheduledEviction | None, now: datetime
) -> EvictionDecision:
    """processPodOnNode for the pod's current NoExecute taints."""
    if not taints:
        return EvictionDecision(Action.CANCEL)
    tolerated, used = matching_tolerations(
        taints, list((pod.get("spec") or {}).get("tolerations") or [])
    )
    if not tolerated:
        return EvictionDecision(Action.EVICT, now)
    seconds = min_toleration_seconds(used)
    if seconds is None:
        return EvictionDecision(Action.CANCEL)
    if scheduled is not None:
        return EvictionDecision(Action.NOTHING, scheduled.fire_at)
    return EvictionDecision(Action.SCHEDULE, now + timedelta(seconds=seconds))


def pod_event_reference(namespace: str, name: str) -> Object:
    return {"kind": "Pod", "apiVersion": "v1", "metadata": {"name": name, "namespace": namespace}}


# ======================================================================================
# the controller
# ======================================================================================


class TaintEvictionController(Controller):
    name: ClassVar[str] = "taint-eviction-controller"
    workers = 4

    def __init__(
        self, context: ControllerContext, *, clock: Callable[[], datetime] | None = None
    ) -> None:
        self.client = context.client
        self.pods = context.informers.informer(PODS)
        self.nodes = context.informers.informer(NODES)
        super().__init__([self.pods, self.nodes])
        self.pods.indexer.add_index(
            "nodeName", lambda pod: [(pod.get("spec") or {}).get("nodeName") or ""]
        )
        self.recorder = context.recorder("taint-eviction-controller")
        self.now = clock or (lambda: datetime.now(UTC))
        self.scheduled: dict[str, ScheduledEviction] = {}
        self.pods.add_handlers(
            on_add=self._pod_added, on_update=self._pod_updated, on_delete=self._pod_added
        )
        self.nodes.add_handlers(on_add=self._node_added, on_update=self._node_updated)

    def _enqueue_pod(self, pod: Object) -> None:
        self.queue.add(f"{meta(pod).get('namespace', '')}/{meta(pod).get('name', '')}")

    def _pod_added(self, pod: Object) -> None:
        self._enqueue_pod(pod)

    def _pod_updated(self, old: Object, new: Object) -> None:
        old_spec, new_spec = old.get("spec") or {}, new.get("spec") or {}
        if old_spec.get("tolerations") != new_spec.get("tolerations") or old_spec.get(
            "nodeName"
        ) != new_spec.get("nodeName"):
            self._enqueue_pod(new)

    def _node_added(self, node: Object) -> None:
        if no_execute_taints(node):
            self._enqueue_pods_on(node)

    def _node_updated(self, old: Object, new: Object) -> None:
        if no_execute_taints(old) != no_execute_taints(new):
            self._enqueue_pods_on(new)

    def _enqueue_pods_on(self, node: Object) -> None:
        for pod in self.pods.indexer.by_index("nodeName", meta(node).get("name", "")):
            self._enqueue_pod(pod)

    def _cancel(self, key: str) -> None:
        scheduled = self.scheduled.pop(key, None)
        if scheduled is not None and not scheduled.fired:
            namespace, _, name = key.partition("/")
            self.recorder.event(
                pod_event_reference(namespace, name),
                "Normal",
                "TaintManagerEviction",
                f"Cancelling deletion of Pod {key}",
            )

    async def sync(self, key: str) -> None:
        pod = self.pods.get(key)
        if pod is None:
            self._cancel(key)
            return
        node_name = (pod.get("spec") or {}).get("nodeName") or ""
        if not node_name:
            return
        now = self.now()
        scheduled = self.scheduled.get(key)
        node = self.nodes.get(node_name)
        if node is not None:
            decision = plan_eviction(pod, no_execute_taints(node), scheduled, now)
            if decision.action is Action.CANCEL:
                self._cancel(key)
                return
            if decision.action is Action.EVICT:
                if scheduled is None or scheduled.fire_at > now:
                    self._cancel(key)
                    scheduled = self.scheduled[key] = ScheduledEviction(now, now)
            elif decision.action is Action.SCHEDULE:
                assert decision.fire_at is not None
                scheduled = self.scheduled[key] = ScheduledEviction(now, decision.fire_at)
        if scheduled is None or scheduled.fired:
            return
        if scheduled.fire_at > now:
            raise Requeue(after=(scheduled.fire_at - now).total_seconds())
        await self.evict(pod)
        scheduled.fired = True

    async def evict(self, pod: Object) -> None:
        namespace, name = meta(pod).get("namespace", ""), meta(pod).get("name", "")
        self.recorder.event(
            pod_event_reference(namespace, name),
            "Normal",
            "TaintManagerEviction",
            f"Marking for deletion Pod {namespace}/{name}",
        )
        failure: Exception | None = None
        for _ in range(DELETE_RETRIES):
            try:
                await self._mark_and_delete(namespace, name)
                return
            except StatusError as error:
                if error.code == 404:
                    return
                failure = error
            await asyncio.sleep(0.01)
        assert failure is not None
        raise failure

    async def _mark_and_delete(self, namespace: str, name: str) -> None:
        """addConditionAndDeletePod: a DisruptionTarget condition says why, then delete."""
        pod = await self.client.get(PODS, name, namespace)
        marked = copy.deepcopy(pod)
        condition = {
            "type": "DisruptionTarget",
            "status": "True",
            "reason": "DeletionByTaintManager",
            "message": "Taint manager: deleting due to NoExecute taint",
        }
        if set_pod_condition(marked, condition, now=rfc3339(self.now())):
            changed = next(
                c for c in marked["status"]["conditions"] if c.get("type") == "DisruptionTarget"
            )
            patch = {
                "metadata": {"uid": meta(pod).get("uid", "")},
                "status": {"conditions": [changed]},
            }
            await self.client.patch(
                PODS, name, patch, namespace, patch_type=STRATEGIC_MERGE_PATCH, subresource="status"
            )
        await self.client.delete(PODS, name, namespace)
