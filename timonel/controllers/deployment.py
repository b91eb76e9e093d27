"""The Deployment controller (kube-controller-manager's "deployment-controller"): keeps
each Deployment's ReplicaSets rolled out to its pod template.

A sync claims the ReplicaSets the Deployment's selector matches, then, in kube's order
of precedence: a Deployment being deleted only gets its status; a paused one or one
whose replica count changed is resized in proportion (sync); otherwise the strategy
rolls it out (Recreate, or RollingUpdate within maxSurge/maxUnavailable). Status is
written through the status subresource, with the revision annotation alongside it as
kube does. Decisions are in rollout.py; this module reads and writes.
"""

from __future__ import annotations

import contextlib
import copy
from datetime import datetime
from typing import Any, ClassVar

from timonel.api.errors import StatusError
from timonel.api.objects import Object, object_key
from timonel.client.resources import DEPLOYMENTS, PODS, REPLICASETS
from timonel.controllers.base import Controller, Requeue
from timonel.controllers.manager import ControllerContext
from timonel.controllers.ownership import (
    ControllerRefManager,
    controller_of,
    controller_reference,
    namespace_terminating,
    recheck_owner,
    selector_of,
)
from timonel.controllers.pods import meta
from timonel.controllers.replicas import spec_replicas
from timonel.controllers.rollout import (
    FAILED_RS_CREATE,
    FOUND_NEW_REPLICA_SET,
    NEW_REPLICA_SET_CREATED,
    PROGRESSING,
    REVISION,
    ROLLBACK_TO,
    ScaleStep,
    active,
    calculate_status,
    deployment_complete,
    equal_ignore_hash,
    find_new_replica_set,
    find_old_replica_sets,
    get_condition,
    has_progress_deadline,
    is_scaling_event,
    max_revision,
    max_surge,
    new_condition,
    new_replica_set,
    new_replica_set_annotations,
    old_pods_running,
    paused_condition,
    plan_cleanup,
    plan_new_replica_set,
    plan_old_replica_sets,
    plan_recreate_scale_down,
    plan_scale,
    replicas_annotations_need_update,
    rollout_status,
    set_condition,
    set_replicas_annotations,
    status_equal,
    stuck_recheck_after,
)
from timonel.util.clock import clock_option

COMPONENT = "deployment-controller"


class DeploymentController(Controller):
    name: ClassVar[str] = "deployment-controller"
    workers: ClassVar[int] = 5

    def __init__(self, context: ControllerContext) -> None:
        self.client = context.client
        self.deployments = context.informers.informer(DEPLOYMENTS)
        self.replica_sets = context.informers.informer(REPLICASETS)
        self.pods = context.informers.informer(PODS)
        super().__init__([self.deployments, self.replica_sets, self.pods])
        self.recorder = context.recorder(COMPONENT)
        self.clock = clock_option(context.options)
        self.deployments.add_handlers(
            on_add=self._enqueue,
            on_update=lambda old, new: self._enqueue(new),
            on_delete=self._enqueue,
        )
        self.replica_sets.add_handlers(
            on_add=self._on_replica_set_add,
            on_update=self._on_replica_set_update,
            on_delete=self._on_replica_set_delete,
        )
        self.pods.add_handlers(on_delete=self._on_pod_delete)

    # -- handlers: objects to keys ------------------------------------------------------

    def _enqueue(self, deployment: Object) -> None:
        self.queue.add(object_key(deployment))

    def _resolve(self, namespace: str, reference: dict[str, Any] | None) -> Object | None:
        if reference is None or reference.get("kind") != "Deployment":
            return None
        deployment = self.deployments.get(f"{namespace}/{reference.get('name', '')}")
        if deployment is None or meta(deployment).get("uid") != reference.get("uid"):
            return None
        return deployment

    def _deployments_selecting(self, rs: Object) -> list[Object]:
        """The Deployments whose selector matches an orphan ReplicaSet (adoption candidates)."""
        labels = meta(rs).get("labels") or {}
        found = []
        for deployment in self.deployments.indexer.by_index(
            "namespace", meta(rs).get("namespace", "")
        ):
            selector = selector_of(deployment)
            if selector is not None and not selector.empty and selector.matches(labels):
                found.append(deployment)
        return found

    def _on_replica_set_add(self, rs: Object) -> None:
        if meta(rs).get("deletionTimestamp"):
            self._on_replica_set_delete(rs)
            return
        namespace = meta(rs).get("namespace", "")
        reference = controller_of(rs)
        if reference is not None:
            owner = self._resolve(namespace, reference)
            if owner is not None:
                self._enqueue(owner)
            return
        for deployment in self._deployments_selecting(rs):
            self._enqueue(deployment)

    def _on_replica_set_update(self, old: Object, new: Object) -> None:
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
            return
        if reference_changed or meta(old).get("labels") != meta(new).get("labels"):
            for deployment in self._deployments_selecting(new):
                self._enqueue(deployment)

    def _on_replica_set_delete(self, rs: Object) -> None:
        owner = self._resolve(meta(rs).get("namespace", ""), controller_of(rs))
        if owner is not None:
            self._enqueue(owner)

    def _on_pod_delete(self, pod: Object) -> None:
        """Recreate waits for the old pods to be gone: look again when one goes."""
        namespace = meta(pod).get("namespace", "")
        reference = controller_of(pod)
        if reference is None or reference.get("kind") != "ReplicaSet":
            return
        rs = self.replica_sets.get(f"{namespace}/{reference.get('name', '')}")
        if rs is None or meta(rs).get("uid") != reference.get("uid"):
            return
        owner = self._resolve(namespace, controller_of(rs))
        strategy = ((owner or {}).get("spec") or {}).get("strategy") or {}
        if owner is not None and strategy.get("type") == "Recreate":
            self._enqueue(owner)

    # -- sync -----------------------------------------------------------------------------

    async def sync(self, key: str) -> None:
        cached = self.deployments.get(key)
        if cached is None:
            return
        run = _DeploymentSync(self, copy.deepcopy(cached))
        await run.reconcile()
        if run.recheck_after is not None:
            raise Requeue(self.clock.delay(run.recheck_after))


class _DeploymentSync:
    """One sync of one Deployment. `d` is always the latest version this sync has of the
    Deployment (it is replaced by the server's answer after each status write)."""

    def __init__(self, controller: DeploymentController, deployment: Object) -> None:
        self.controller = controller
        self.client = controller.client
        self.d = deployment
        self.recheck_after: float | None = None

    @property
    def namespace(self) -> str:
        return str(meta(self.d).get("namespace", ""))

    @property
    def name(self) -> str:
        return str(meta(self.d).get("name", ""))

    def event(self, type_: str, reason: str, message: str) -> None:
        # Listed objects may not say what they are; the event's reference must.
        typed = {**self.d, "apiVersion": "apps/v1", "kind": "Deployment"}
        self.controller.recorder.event(typed, type_, reason, message)

    def now(self) -> datetime:
        return self.controller.clock.now()

    async def reconcile(self) -> None:
        spec = self.d.get("spec") or {}
        selector = spec.get("selector")
        if not isinstance(selector, dict) or not (
            selector.get("matchLabels") or selector.get("matchExpressions")
        ):
            self.event(
                "Warning",
                "SelectingAll",
                "This deployment is selecting all pods. A non-empty selector is required.",
            )
            status = self.d.get("status") or {}
            generation = int(meta(self.d).get("generation") or 0)
            if int(status.get("observedGeneration") or 0) < generation:
                await self.write_status({**status, "observedGeneration": generation})
            return
        rs_list = await self.claim_replica_sets()
        if meta(self.d).get("deletionTimestamp"):
            new_rs, old_rss = await self.replica_sets_and_sync_revision(rs_list, create=False)
            await self.sync_deployment_status([*old_rss, new_rs], new_rs)
            return
        await self.check_paused_conditions()
        if spec.get("paused"):
            await self.sync_scale(rs_list)
            return
        new_rs, old_rss = await self.replica_sets_and_sync_revision(rs_list, create=False)
        if is_scaling_event(self.d, new_rs, old_rss):
            await self.sync_scale(rs_list)
            return
        if (spec.get("strategy") or {}).get("type") == "Recreate":
            await self.rollout_recreate(rs_list)
        else:
            await self.rollout_rolling(rs_list)

    # -- reading ---------------------------------------------------------------------------

    async def claim_replica_sets(self) -> list[Object]:
        """The ReplicaSets this Deployment owns, adopting and releasing as its selector says."""
        selector = selector_of(self.d)
        if selector is None:
            return []
        candidates = self.controller.replica_sets.indexer.by_index("namespace", self.namespace)
        manager = ControllerRefManager(
            self.client,
            REPLICASETS,
            self.d,
            controller_reference(self.d, "apps/v1", "Deployment"),
            recheck_owner(self.client, DEPLOYMENTS, self.d),
        )
        return await manager.claim(
            candidates, lambda rs: selector.matches(meta(rs).get("labels") or {})
        )

    def pods_by_replica_set(self, rs_list: list[Object]) -> dict[str, list[Object]]:
        """This Deployment's pods, by the uid of the ReplicaSet that controls them."""
        selector = selector_of(self.d)
        pods_by_rs: dict[str, list[Object]] = {str(meta(rs).get("uid")): [] for rs in rs_list}
        if selector is None:
            return pods_by_rs
        for pod in self.controller.pods.indexer.by_index("namespace", self.namespace):
            if not selector.matches(meta(pod).get("labels") or {}):
                continue
            reference = controller_of(pod)
            if reference is not None and reference.get("uid") in pods_by_rs:
                pods_by_rs[reference["uid"]].append(pod)
        return pods_by_rs

    async def replica_sets_and_sync_revision(
        self, rs_list: list[Object], *, create: bool
    ) -> tuple[Object | None, list[Object]]:
        old_rss = find_old_replica_sets(self.d, rs_list)
        new_rs = await self.new_replica_set(rs_list, old_rss, create=create)
        return new_rs, old_rss

    async def new_replica_set(
        self, rs_list: list[Object], old_rss: list[Object], *, create: bool
    ) -> Object | None:
        """The ReplicaSet of the current template, its annotations brought up to date and
        the Deployment's revision synced from it; created when asked and missing."""
        existing = find_new_replica_set(self.d, rs_list)
        new_revision = max_revision(old_rss) + 1
        if existing is not None:
            annotations, changed = new_replica_set_annotations(
                self.d, existing, new_revision, exists=True
            )
            min_ready = int((self.d.get("spec") or {}).get("minReadySeconds") or 0)
            if (
                changed
                or int((existing.get("spec") or {}).get("minReadySeconds") or 0) != min_ready
            ):
                updated = copy.deepcopy(existing)
                meta(updated)["annotations"] = annotations
                updated["spec"]["minReadySeconds"] = min_ready
                updated = await self.client.update(REPLICASETS, updated)
                # Later steps of this sync must not write the stale copy again.
                rs_list[rs_list.index(existing)] = updated
                return updated
            needs_update = self.set_revision(
                (meta(existing).get("annotations") or {}).get(REVISION, "")
            )
            status = self.d.setdefault("status", {})
            if has_progress_deadline(self.d) and get_condition(status, PROGRESSING) is None:
                message = f'Found new replica set "{meta(existing).get("name", "")}"'
                set_condition(
                    status,
                    new_condition(PROGRESSING, "True", FOUND_NEW_REPLICA_SET, message, self.now()),
                )
                needs_update = True
            if needs_update:
                await self.write_status(status)
            return existing
        if not create:
            return None

        rs = new_replica_set(self.d, old_rss, controller_reference(self.d, "apps/v1", "Deployment"))
        rs_name = meta(rs)["name"]
        already_existed = False
        try:
            created = await self.client.create(REPLICASETS, rs, self.namespace)
        except StatusError as error:
            if error.reason == "AlreadyExists":
                created = await self.client.get(REPLICASETS, rs_name, self.namespace)
                owner = controller_of(created)
                template = (self.d.get("spec") or {}).get("template")
                if not (
                    owner is not None
                    and owner.get("uid") == meta(self.d).get("uid")
                    and equal_ignore_hash(template, (created.get("spec") or {}).get("template"))
                ):
                    # A hash collision: a different template under the same name. The
                    # collision count goes into the next hash.
                    status = self.d.setdefault("status", {})
                    status["collisionCount"] = int(status.get("collisionCount") or 0) + 1
                    await self.write_status(status)
                    raise
                already_existed = True
            elif namespace_terminating(error):
                raise
            else:
                message = f'Failed to create new replica set "{rs_name}": {error.message}'
                if has_progress_deadline(self.d):
                    status = self.d.setdefault("status", {})
                    set_condition(
                        status,
                        new_condition(PROGRESSING, "False", FAILED_RS_CREATE, message, self.now()),
                    )
                    with contextlib.suppress(StatusError):
                        await self.write_status(status)
                self.event("Warning", FAILED_RS_CREATE, message)
                raise
        replicas = spec_replicas(rs)
        if not already_existed and replicas > 0:
            self.event(
                "Normal", "ScalingReplicaSet", f"Scaled up replica set {rs_name} to {replicas}"
            )
        needs_update = self.set_revision(str(new_revision))
        status = self.d.setdefault("status", {})
        if not already_existed and has_progress_deadline(self.d):
            message = f'Created new replica set "{rs_name}"'
            set_condition(
                status,
                new_condition(PROGRESSING, "True", NEW_REPLICA_SET_CREATED, message, self.now()),
            )
            needs_update = True
        if needs_update:
            await self.write_status(status)
        return created

    def set_revision(self, revision: str) -> bool:
        """SetDeploymentRevision: the Deployment carries its new ReplicaSet's revision."""
        annotations = meta(self.d).setdefault("annotations", {})
        if annotations.get(REVISION) == revision:
            return False
        annotations[REVISION] = revision
        return True

    # -- writing -------------------------------------------------------------------------

    async def write_status(self, status: dict[str, Any]) -> None:
        """Write the Deployment's status (with its annotations, which kube's status
        subresource for Deployments accepts) and continue from the server's answer."""
        self.d["status"] = status
        self.d = await self.client.update_status(DEPLOYMENTS, self.d)

    async def scale_replica_set(
        self, rs: Object, replicas: int, operation: str
    ) -> tuple[bool, Object]:
        """Resize one ReplicaSet and refresh its replica annotations; True when its size changed."""
        desired = spec_replicas(self.d)
        ceiling = desired + max_surge(self.d)
        size_changes = spec_replicas(rs) != replicas
        if not size_changes and not replicas_annotations_need_update(rs, desired, ceiling):
            return False, rs
        previous = spec_replicas(rs)
        updated = copy.deepcopy(rs)
        updated.setdefault("spec", {})["replicas"] = replicas
        set_replicas_annotations(meta(updated).setdefault("annotations", {}), desired, ceiling)
        updated = await self.client.update(REPLICASETS, updated)
        if size_changes:
            self.event(
                "Normal",
                "ScalingReplicaSet",
                f"Scaled {operation} replica set {meta(rs).get('name', '')} to {replicas} from {previous}",
            )
        return size_changes, updated

    async def apply(self, steps: list[ScaleStep]) -> bool:
        """Carry out scale steps in order; True when any ReplicaSet changed size."""
        latest: dict[str, Object] = {}
        scaled = False
        for step in steps:
            name = str(meta(step.replica_set).get("name", ""))
            rs = latest.get(name, step.replica_set)
            changed, latest[name] = await self.scale_replica_set(rs, step.replicas, step.operation)
            scaled = scaled or changed
        return scaled

    async def cleanup(self, old_rss: list[Object]) -> None:
        """Delete the old ReplicaSets beyond revisionHistoryLimit."""
        for rs in plan_cleanup(self.d, old_rss):
            try:
                await self.client.delete(REPLICASETS, meta(rs).get("name", ""), self.namespace)
            except StatusError as error:
                if error.code != 404:
                    raise

    async def check_paused_conditions(self) -> None:
        status = paused_condition(self.d, self.now())
        if status is not None:
            await self.write_status(status)

    async def sync_deployment_status(
        self, all_rss: list[Object | None], new_rs: Object | None
    ) -> None:
        status = calculate_status(all_rss, new_rs, self.d, self.now())
        if not status_equal(self.d.get("status") or {}, status):
            await self.write_status(status)

    async def sync_rollout_status(
        self, all_rss: list[Object | None], new_rs: Object | None
    ) -> None:
        now = self.now()
        status = rollout_status(all_rss, new_rs, self.d, now)
        if status_equal(self.d.get("status") or {}, status):
            self.recheck_after = stuck_recheck_after(self.d, status, now)
            return
        await self.write_status(status)

    # -- the ways a Deployment moves ------------------------------------------------------

    async def sync_scale(self, rs_list: list[Object]) -> None:
        """A paused Deployment, or a change of replicas: resize, no rollout."""
        new_rs, old_rss = await self.replica_sets_and_sync_revision(rs_list, create=False)
        await self.apply(plan_scale(self.d, new_rs, old_rss))
        spec = self.d.get("spec") or {}
        if spec.get("paused") and ROLLBACK_TO not in (meta(self.d).get("annotations") or {}):
            await self.cleanup(old_rss)
        await self.sync_deployment_status([*old_rss, new_rs], new_rs)

    async def rollout_rolling(self, rs_list: list[Object]) -> None:
        new_rs, old_rss = await self.replica_sets_and_sync_revision(rs_list, create=True)
        assert new_rs is not None
        all_rss: list[Object | None] = [*old_rss, new_rs]
        if await self.apply(plan_new_replica_set(self.d, all_rss, new_rs)):
            await self.sync_rollout_status(all_rss, new_rs)
            return
        if await self.apply(plan_old_replica_sets(self.d, all_rss, active(old_rss), new_rs)):
            await self.sync_rollout_status(all_rss, new_rs)
            return
        if deployment_complete(self.d, self.d.get("status") or {}):
            await self.cleanup(old_rss)
        await self.sync_rollout_status(all_rss, new_rs)

    async def rollout_recreate(self, rs_list: list[Object]) -> None:
        """Scale every old ReplicaSet to zero, wait for their pods to be gone, then
        create (or grow) the new one."""
        pods_by_rs = self.pods_by_replica_set(rs_list)
        new_rs, old_rss = await self.replica_sets_and_sync_revision(rs_list, create=False)
        all_rss: list[Object | None] = [*old_rss, new_rs]
        if await self.apply(plan_recreate_scale_down(old_rss)):
            await self.sync_rollout_status(all_rss, new_rs)
            return
        if old_pods_running(new_rs, old_rss, pods_by_rs):
            await self.sync_rollout_status(all_rss, new_rs)
            return
        if new_rs is None:
            new_rs, old_rss = await self.replica_sets_and_sync_revision(rs_list, create=True)
            all_rss = [*old_rss, new_rs]
        assert new_rs is not None
        replicas = spec_replicas(self.d)
        if spec_replicas(new_rs) != replicas:
            await self.apply(
                [ScaleStep(new_rs, replicas, "up" if spec_replicas(new_rs) < replicas else "down")]
            )
        if deployment_complete(self.d, self.d.get("status") or {}):
            await self.cleanup(old_rss)
        await self.sync_rollout_status(all_rss, new_rs)
