"""The ReplicaSet controller (kube-controller-manager's "replicaset-controller"): keeps
`spec.replicas` pods of each ReplicaSet's template running.

A sync claims the active pods the selector matches (adopting orphans, releasing pods
that stopped matching), then, unless its expectations are still pending, creates the
missing pods in slow-start batches or deletes the surplus (the least useful first),
and always writes the status the pods amount to. Expectations keep it from acting twice
on an informer that has not yet seen its own writes. Decisions are in replicas.py.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, ClassVar

from timonel.api.errors import StatusError
from timonel.api.objects import Object, object_key
from timonel.client.resources import PODS, REPLICASETS
from timonel.controllers.base import Controller, Requeue
from timonel.controllers.expectations import Expectations
from timonel.controllers.manager import ControllerContext
from timonel.controllers.ownership import (
    ControllerRefManager,
    controller_of,
    controller_reference,
    namespace_terminating,
    recheck_owner,
    selector_of,
)
from timonel.controllers.pods import is_active, is_ready, meta, seconds_until_available
from timonel.controllers.replicas import (
    BURST_REPLICAS,
    calculate_status,
    plan_replicas,
    pod_from_template,
    pods_to_delete,
    slow_start_batches,
    spec_replicas,
    status_needs_update,
)
from timonel.util.clock import clock_option

log = logging.getLogger(__name__)

COMPONENT = "replicaset-controller"
CONTROLLER_UID_INDEX = "controllerUID"
# A little past the instant a pod becomes available, so it surely is when we look.
_AVAILABILITY_MARGIN = 0.05


def controller_uid_index(obj: Object) -> list[str]:
    reference = controller_of(obj)
    return [str(reference.get("uid"))] if reference is not None else []


class ReplicaSetController(Controller):
    name: ClassVar[str] = "replicaset-controller"
    workers: ClassVar[int] = 5

    def __init__(self, context: ControllerContext) -> None:
        self.client = context.client
        self.replica_sets = context.informers.informer(REPLICASETS)
        self.pods = context.informers.informer(PODS)
        super().__init__([self.replica_sets, self.pods])
        self.replica_sets.indexer.add_index(CONTROLLER_UID_INDEX, controller_uid_index)
        self.recorder = context.recorder(COMPONENT)
        self.expectations = Expectations()
        self.clock = clock_option(context.options)
        self.replica_sets.add_handlers(
            on_add=self._enqueue,
            on_update=self._on_replica_set_update,
            on_delete=self._on_replica_set_delete,
        )
        self.pods.add_handlers(
            on_add=self._on_pod_add, on_update=self._on_pod_update, on_delete=self._on_pod_delete
        )

    # -- handlers: objects to keys ------------------------------------------------------

    def _enqueue(self, rs: Object) -> None:
        self.queue.add(object_key(rs))

    def _on_replica_set_update(self, old: Object, new: Object) -> None:
        if meta(old).get("uid") != meta(new).get("uid"):
            self._on_replica_set_delete(old)
        self._enqueue(new)

    def _on_replica_set_delete(self, rs: Object) -> None:
        key = object_key(rs)
        self.expectations.delete(key)
        self.queue.add(key)

    def _resolve(self, namespace: str, reference: dict[str, Any] | None) -> Object | None:
        if reference is None or reference.get("kind") != "ReplicaSet":
            return None
        rs = self.replica_sets.get(f"{namespace}/{reference.get('name', '')}")
        if rs is None or meta(rs).get("uid") != reference.get("uid"):
            return None
        return rs

    def _replica_sets_selecting(self, pod: Object) -> list[Object]:
        """The ReplicaSets whose selector matches an orphan pod (adoption candidates)."""
        labels = meta(pod).get("labels") or {}
        found = []
        for rs in self.replica_sets.indexer.by_index("namespace", meta(pod).get("namespace", "")):
            selector = selector_of(rs)
            if selector is not None and not selector.empty and selector.matches(labels):
                found.append(rs)
        return found

    def _on_pod_add(self, pod: Object) -> None:
        if meta(pod).get("deletionTimestamp"):
            # Seen for the first time already being deleted (after a relist).
            self._on_pod_delete(pod)
            return
        reference = controller_of(pod)
        if reference is not None:
            rs = self._resolve(meta(pod).get("namespace", ""), reference)
            if rs is not None:
                key = object_key(rs)
                self.expectations.creation_observed(key)
                self.queue.add(key)
            return
        for rs in self._replica_sets_selecting(pod):
            self._enqueue(rs)

    def _on_pod_update(self, old: Object, new: Object) -> None:
        labels_changed = meta(old).get("labels") != meta(new).get("labels")
        if meta(new).get("deletionTimestamp"):
            # A graceful deletion began: count the pod as deleted now, for the RS that
            # owns it and, if its labels moved it, for the one that owned it before.
            self._on_pod_delete(new)
            if labels_changed:
                self._on_pod_delete(old)
            return
        namespace = meta(new).get("namespace", "")
        new_reference, old_reference = controller_of(new), controller_of(old)
        reference_changed = new_reference != old_reference
        if reference_changed and old_reference is not None:
            previous = self._resolve(namespace, old_reference)
            if previous is not None:
                self._enqueue(previous)
        if new_reference is not None:
            owner = self._resolve(namespace, new_reference)
            if owner is not None:
                self._enqueue(owner)
                min_ready = int((owner.get("spec") or {}).get("minReadySeconds") or 0)
                if min_ready > 0 and not is_ready(old) and is_ready(new):
                    # A last line of defence: look again once the pod should be available.
                    self.queue.add_after(object_key(owner), self.clock.delay(min_ready + 1))
            return
        if labels_changed or reference_changed:
            for rs in self._replica_sets_selecting(new):
                self._enqueue(rs)

    def _on_pod_delete(self, pod: Object) -> None:
        rs = self._resolve(meta(pod).get("namespace", ""), controller_of(pod))
        if rs is None:
            return
        key = object_key(rs)
        self.expectations.deletion_observed(key, object_key(pod))
        self.queue.add(key)

    # -- sync -----------------------------------------------------------------------------

    async def sync(self, key: str) -> None:
        rs = self.replica_sets.get(key)
        if rs is None:
            self.expectations.delete(key)
            return
        needs_sync = self.expectations.satisfied(key)
        selector = selector_of(rs)
        if selector is None:
            log.warning("%s: replica set %s has an unusable selector", COMPONENT, key)
            return
        namespace = str(meta(rs).get("namespace", ""))
        candidates = [p for p in self.pods.indexer.by_index("namespace", namespace) if is_active(p)]
        manager = ControllerRefManager(
            self.client,
            PODS,
            rs,
            controller_reference(rs, "apps/v1", "ReplicaSet"),
            recheck_owner(self.client, REPLICASETS, rs),
        )
        pods = await manager.claim(
            candidates, lambda pod: selector.matches(meta(pod).get("labels") or {})
        )

        manage_error: Exception | None = None
        if needs_sync and not meta(rs).get("deletionTimestamp"):
            try:
                await self.manage_replicas(key, rs, pods)
            except Exception as error:
                manage_error = error
        now = self.clock.now()
        status = calculate_status(rs, pods, _message(manage_error) if manage_error else None, now)
        await self.write_status(rs, status)
        if manage_error is not None:
            raise manage_error
        min_ready = int((rs.get("spec") or {}).get("minReadySeconds") or 0)
        wait = seconds_until_available(pods, min_ready, now)
        if wait is not None:
            raise Requeue(self.clock.delay(wait) + _AVAILABILITY_MARGIN)

    async def manage_replicas(self, key: str, rs: Object, pods: list[Object]) -> None:
        plan = plan_replicas(len(pods), spec_replicas(rs), BURST_REPLICAS)
        if plan.create:
            await self._create_pods(key, rs, plan.create)
        elif plan.delete:
            await self._delete_pods(key, rs, pods, plan.delete)

    async def _create_pods(self, key: str, rs: Object, count: int) -> None:
        """Create `count` pods in slow-start batches; stop at the first failing batch."""
        self.expectations.expect_creations(key, count)
        created = 0
        failure: BaseException | None = None
        for batch in slow_start_batches(count):
            results = await asyncio.gather(
                *(self._create_pod(rs) for _ in range(batch)), return_exceptions=True
            )
            failures = [r for r in results if isinstance(r, BaseException)]
            created += batch - len(failures)
            if failures:
                failure = failures[0]
                break
        # Creations that failed or were never tried will not be observed.
        for _ in range(count - created):
            self.expectations.creation_observed(key)
        if failure is not None:
            raise failure

    async def _create_pod(self, rs: Object) -> None:
        pod = pod_from_template(rs, controller_reference(rs, "apps/v1", "ReplicaSet"))
        if not meta(pod).get("labels"):
            raise ValueError("unable to create pods, no labels")
        try:
            created = await self.client.create(PODS, pod, str(meta(rs).get("namespace", "")))
        except StatusError as error:
            if namespace_terminating(error):
                return  # every create would fail; the namespace is going away
            self.recorder.event(
                _typed(rs), "Warning", "FailedCreate", f"Error creating: {error.message}"
            )
            raise
        self.recorder.event(
            _typed(rs),
            "Normal",
            "SuccessfulCreate",
            f"Created pod: {meta(created).get('name', '')}",
        )

    async def _delete_pods(self, key: str, rs: Object, pods: list[Object], count: int) -> None:
        doomed = pods_to_delete(pods, self._related_pods(rs), count, self.clock.now())
        self.expectations.expect_deletions(key, [object_key(p) for p in doomed])
        results = await asyncio.gather(
            *(self._delete_pod(rs, pod) for pod in doomed), return_exceptions=True
        )
        failure: BaseException | None = None
        for pod, result in zip(doomed, results, strict=True):
            if isinstance(result, BaseException):
                # The informer will not see this deletion.
                self.expectations.deletion_observed(key, object_key(pod))
                if not (isinstance(result, StatusError) and result.code == 404) and failure is None:
                    failure = result
        if failure is not None:
            raise failure

    async def _delete_pod(self, rs: Object, pod: Object) -> None:
        name = str(meta(pod).get("name", ""))
        try:
            await self.client.delete(PODS, name, str(meta(pod).get("namespace", "")))
        except StatusError as error:
            if error.code != 404:
                self.recorder.event(
                    _typed(rs), "Warning", "FailedDelete", f"Error deleting: {error.message}"
                )
            raise
        self.recorder.event(_typed(rs), "Normal", "SuccessfulDelete", f"Deleted pod: {name}")

    def _related_pods(self, rs: Object) -> list[Object]:
        """The pods of every ReplicaSet with the same controller (the Deployment's
        other revisions): scale-down prefers pods on nodes crowded with them."""
        reference = controller_of(rs)
        if reference is None:
            return []
        namespace = meta(rs).get("namespace", "")
        seen: set[str] = set()
        related: list[Object] = []
        siblings = self.replica_sets.indexer.by_index(
            CONTROLLER_UID_INDEX, str(reference.get("uid"))
        )
        for sibling in siblings:
            selector = selector_of(sibling)
            if selector is None:
                continue
            for pod in self.pods.indexer.by_index("namespace", namespace):
                uid = str(meta(pod).get("uid", ""))
                if uid in seen or not selector.matches(meta(pod).get("labels") or {}):
                    continue
                seen.add(uid)
                related.append(pod)
        return related

    async def write_status(self, rs: Object, status: dict[str, Any]) -> None:
        """Write the status unless nothing changed; on failure, retry once on a fresh copy."""
        if not status_needs_update(rs, status):
            return
        status = {**status, "observedGeneration": int(meta(rs).get("generation") or 0)}
        current = rs
        for attempt in range(2):
            try:
                await self.client.update_status(REPLICASETS, {**current, "status": status})
                return
            except StatusError:
                if attempt == 1:
                    raise
            current = await self.client.get(
                REPLICASETS, str(meta(rs).get("name", "")), str(meta(rs).get("namespace", ""))
            )


def _message(error: Exception) -> str:
    return error.message if isinstance(error, StatusError) else str(error)


def _typed(rs: Object) -> Object:
    """Listed objects may not say what they are; an event's reference must."""
    return {**rs, "apiVersion": "apps/v1", "kind": "ReplicaSet"}
