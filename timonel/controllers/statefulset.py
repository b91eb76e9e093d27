"""The StatefulSet controller: pods with stable names and storage, as
kube-controller-manager's statefulset-controller runs them.

Pods are named `<set>-<ordinal>` for ordinals `start..start+replicas-1`, labelled with
their name, ordinal and revision, and get `hostname` = their name and `subdomain` = the
set's serviceName. Each volumeClaimTemplate gives every pod a claim
`<claim>-<set>-<ordinal>`, created before the pod and owned as the retention policy says.

With OrderedReady pod management the controller creates one pod at a time, in ordinal
order, and waits until it is Running and Ready (and available) before the next; it
deletes in reverse ordinal order, one at a time, and only when every lower pod is
healthy. Parallel creates and deletes all at once. A RollingUpdate replaces pods from the
highest ordinal down to the partition, one at a time, each after the previous one came
back healthy; OnDelete replaces a pod only when it is deleted. Templates are recorded as
ControllerRevisions; `currentRevision` becomes `updateRevision` once every pod runs it.
"""

from __future__ import annotations

import asyncio
import copy
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Literal

from timonel.api.errors import StatusError
from timonel.api.objects import Object, object_key
from timonel.client.resources import CONTROLLERREVISIONS, PERSISTENTVOLUMECLAIMS, PODS, STATEFULSETS
from timonel.controllers.base import Controller, Requeue
from timonel.controllers.history import (
    REVISION_HASH_LABEL,
    apply_revision,
    claim_revisions,
    create_revision,
    delete_revisions,
    equal_revisions,
    hash_revision_data,
    new_revision,
    next_revision_number,
    revision_name,
    sort_revisions,
    template_patch,
)
from timonel.controllers.manager import ControllerContext
from timonel.controllers.ownership import (
    ControllerRefManager,
    cached_controller,
    controller_of,
    controller_reference,
    recheck_owner,
)
from timonel.controllers.pods import is_available, is_ready, meta
from timonel.controllers.workloads import in_slow_start_batches, selector_matches, with_kind
from timonel.util.clock import clock_option

API_VERSION = "apps/v1"
KIND = "StatefulSet"
COMPONENT = "statefulset-controller"
POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"
_ORDINAL_NAME = re.compile(r"^(.*)-([0-9]+)$")


# -- identity and storage -----------------------------------------------------------------


def parent_and_ordinal(pod: Object) -> tuple[str, int]:
    """getParentNameAndOrdinal: ("", -1) for a name without a trailing ordinal."""
    match = _ORDINAL_NAME.match(str(meta(pod).get("name", "")))
    if match is None:
        return "", -1
    return match.group(1), int(match.group(2))


def is_member_of(sts: Object, pod: Object) -> bool:
    return parent_and_ordinal(pod)[0] == meta(sts).get("name")


def _int_field(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def start_ordinal(sts: Object) -> int:
    ordinals = (sts.get("spec") or {}).get("ordinals") or {}
    return _int_field(ordinals.get("start"), 0)


def spec_replicas(sts: Object) -> int:
    return _int_field((sts.get("spec") or {}).get("replicas"), 1)


def min_ready_seconds(sts: Object) -> int:
    return _int_field((sts.get("spec") or {}).get("minReadySeconds"), 0)


def pod_name(sts: Object, ordinal: int) -> str:
    return f"{meta(sts).get('name', '')}-{ordinal}"


def claim_name(template_name: str, sts: Object, ordinal: int) -> str:
    return f"{template_name}-{meta(sts).get('name', '')}-{ordinal}"


def retention_policy(sts: Object) -> tuple[str, str]:
    """(whenDeleted, whenScaled), Retain unless set."""
    policy = (sts.get("spec") or {}).get("persistentVolumeClaimRetentionPolicy") or {}
    return str(policy.get("whenDeleted") or "Retain"), str(policy.get("whenScaled") or "Retain")


def in_ordinal_range(sts: Object, pod: Object) -> bool:
    ordinal = parent_and_ordinal(pod)[1]
    start = start_ordinal(sts)
    return start <= ordinal < start + spec_replicas(sts)


def _reference(owner: Object, api_version: str, kind: str) -> dict[str, Any]:
    owner_meta = meta(owner)
    return {
        "apiVersion": api_version,
        "kind": kind,
        "name": owner_meta.get("name", ""),
        "uid": owner_meta.get("uid", ""),
    }


def claim_owner_references(claim: Object, sts: Object, pod: Object) -> list[dict[str, Any]]:
    """updateClaimOwnerRefForSetAndPod: the set owns the claims it should delete with
    itself, a condemned pod the claims it should take along when scaled away."""
    set_uid, pod_uid = meta(sts).get("uid"), meta(pod).get("uid")
    references = [
        r
        for r in meta(claim).get("ownerReferences") or []
        if isinstance(r, dict) and r.get("uid") not in (set_uid, pod_uid)
    ]
    when_deleted, when_scaled = retention_policy(sts)
    scaled_down = not in_ordinal_range(sts, pod)
    set_owns = when_deleted == "Delete" and not (when_scaled == "Delete" and scaled_down)
    pod_owns = when_scaled == "Delete" and scaled_down
    if set_owns and set_uid:
        references.append(_reference(sts, API_VERSION, KIND))
    if pod_owns and pod_uid:
        references.append(_reference(pod, "v1", "Pod"))
    return references


def _same_references(left: list[Any], right: list[Any]) -> bool:
    return sorted(str(r.get("uid")) for r in left if isinstance(r, dict)) == sorted(
        str(r.get("uid")) for r in right if isinstance(r, dict)
    )


def persistent_volume_claims(sts: Object, ordinal: int) -> list[tuple[str, Object]]:
    """getPersistentVolumeClaims: (template name, claim) for each claim template, labelled
    with the template's labels and the set's matchLabels."""
    spec = sts.get("spec") or {}
    match_labels = (spec.get("selector") or {}).get("matchLabels") or {}
    claims: list[tuple[str, Object]] = []
    for template in spec.get("volumeClaimTemplates") or []:
        if not isinstance(template, dict):
            continue
        claim = copy.deepcopy(template)
        claim.pop("status", None)
        claim_meta = claim.setdefault("metadata", {})
        template_name = str(claim_meta.get("name", ""))
        claim_meta.pop("creationTimestamp", None)
        claim_meta["name"] = claim_name(template_name, sts, ordinal)
        claim_meta["namespace"] = meta(sts).get("namespace", "")
        labels = dict(claim_meta.get("labels") or {})
        labels.update(match_labels)
        claim_meta["labels"] = labels
        claim["apiVersion"] = "v1"
        claim["kind"] = "PersistentVolumeClaim"
        claims.append((template_name, claim))
    return claims


def set_identity(sts: Object, pod: Object, ordinal: int) -> None:
    """updateIdentity: name, namespace and the name and index labels."""
    pod_meta = pod.setdefault("metadata", {})
    pod_meta["name"] = pod_name(sts, ordinal)
    pod_meta["namespace"] = meta(sts).get("namespace", "")
    labels = pod_meta.get("labels")
    if not isinstance(labels, dict):
        labels = {}
        pod_meta["labels"] = labels
    labels[POD_NAME_LABEL] = pod_meta["name"]
    labels[POD_INDEX_LABEL] = str(ordinal)


def set_storage(sts: Object, pod: Object, ordinal: int) -> None:
    """updateStorage: a volume per claim template pointing at the pod's claim, in
    template order, then the pod's other volumes."""
    spec = pod.setdefault("spec", {})
    claims = persistent_volume_claims(sts, ordinal)
    names = {template_name for template_name, _ in claims}
    volumes = [
        {"name": template_name, "persistentVolumeClaim": {"claimName": meta(claim)["name"]}}
        for template_name, claim in claims
    ]
    volumes += [
        v for v in spec.get("volumes") or [] if isinstance(v, dict) and v.get("name") not in names
    ]
    if volumes:
        spec["volumes"] = volumes


def new_pod(sts: Object, ordinal: int, revision: str) -> Object:
    """newStatefulSetPod plus its revision label: a pod of `sts`'s template."""
    template = (sts.get("spec") or {}).get("template") or {}
    template_meta = template.get("metadata") or {}
    pod_meta: dict[str, Any] = {
        "labels": dict(template_meta.get("labels") or {}),
        "ownerReferences": [controller_reference(sts, API_VERSION, KIND)],
    }
    if template_meta.get("annotations"):
        pod_meta["annotations"] = dict(template_meta["annotations"])
    if template_meta.get("finalizers"):
        pod_meta["finalizers"] = list(template_meta["finalizers"])
    pod: Object = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": pod_meta,
        "spec": copy.deepcopy(template.get("spec") or {}),
    }
    set_identity(sts, pod, ordinal)
    pod["spec"]["hostname"] = pod_meta["name"]
    service_name = (sts.get("spec") or {}).get("serviceName")
    if service_name:
        pod["spec"]["subdomain"] = service_name
    set_storage(sts, pod, ordinal)
    pod_meta["labels"][REVISION_HASH_LABEL] = revision
    return pod


def identity_matches(sts: Object, pod: Object) -> bool:
    parent, ordinal = parent_and_ordinal(pod)
    return (
        ordinal >= 0
        and parent == meta(sts).get("name")
        and meta(pod).get("namespace") == meta(sts).get("namespace")
        and (meta(pod).get("labels") or {}).get(POD_NAME_LABEL) == meta(pod).get("name")
    )


def storage_matches(sts: Object, pod: Object) -> bool:
    ordinal = parent_and_ordinal(pod)[1]
    if ordinal < 0:
        return False
    volumes = {
        v.get("name"): v
        for v in (pod.get("spec") or {}).get("volumes") or []
        if isinstance(v, dict)
    }
    for template_name, claim in persistent_volume_claims(sts, ordinal):
        volume = volumes.get(template_name)
        if (
            volume is None
            or (volume.get("persistentVolumeClaim") or {}).get("claimName") != meta(claim)["name"]
        ):
            return False
    return True


def pod_revision(pod: Object) -> str:
    return str((meta(pod).get("labels") or {}).get(REVISION_HASH_LABEL) or "")


def _phase(pod: Object) -> str:
    return str((pod.get("status") or {}).get("phase") or "")


def is_created(pod: Object) -> bool:
    return bool(_phase(pod))


def is_terminating(pod: Object) -> bool:
    return bool(meta(pod).get("deletionTimestamp"))


def is_running_and_ready(pod: Object) -> bool:
    return _phase(pod) == "Running" and is_ready(pod)


def is_running_and_available(pod: Object, ready_seconds: int, now: datetime) -> bool:
    return _phase(pod) == "Running" and is_available(pod, ready_seconds, now)


def is_healthy(pod: Object) -> bool:
    return is_running_and_ready(pod) and not is_terminating(pod)


def versioned_pod(
    sts: Object,
    current_set: Object,
    update_set: Object,
    current_revision: str,
    update_revision: str,
    ordinal: int,
) -> Object:
    """newVersionedStatefulSetPod: ordinals below the partition keep the current
    revision during a RollingUpdate; every other pod is made at the update revision."""
    strategy = (current_set.get("spec") or {}).get("updateStrategy") or {}
    rolling = strategy.get("rollingUpdate")
    start = start_ordinal(current_set)
    current_replicas = _int_field((current_set.get("status") or {}).get("currentReplicas"), 0)
    below = (
        strategy.get("type") == "RollingUpdate"
        and rolling is None
        and ordinal < start + current_replicas
    ) or (rolling is not None and ordinal < start + _int_field((rolling or {}).get("partition"), 0))
    if below:
        return new_pod(current_set, ordinal, current_revision)
    return new_pod(update_set, ordinal, update_revision)


# -- the plan of one sync -----------------------------------------------------------------


StepKind = Literal["create", "recreate", "ensure_claims", "update", "fix_claims", "delete"]


@dataclass
class Step:
    kind: StepKind
    # The pod acted on: the one to create, or the existing one.
    pod: Object
    # For "recreate": the pod that replaces the finished one.
    replacement: Object | None = None
    reason: str = ""


@dataclass
class StatefulSetPlan:
    # Each phase runs after the previous one succeeded; the steps of one phase may run
    # concurrently (one step per phase when pods are managed in order).
    phases: list[list[Step]] = field(default_factory=list)
    status: dict[str, int] = field(default_factory=dict)


def replica_status(
    pods: list[Object],
    ready_seconds: int,
    current_revision: str,
    update_revision: str,
    now: datetime,
) -> dict[str, int]:
    """computeReplicaStatus over the pods the set has (planned pods not yet created
    count for nothing)."""
    counts = {
        "replicas": 0,
        "readyReplicas": 0,
        "availableReplicas": 0,
        "currentReplicas": 0,
        "updatedReplicas": 0,
    }
    for pod in pods:
        if is_created(pod):
            counts["replicas"] += 1
        if is_running_and_ready(pod):
            counts["readyReplicas"] += 1
            if is_running_and_available(pod, ready_seconds, now):
                counts["availableReplicas"] += 1
        if is_created(pod) and not is_terminating(pod):
            revision = pod_revision(pod)
            if revision == current_revision:
                counts["currentReplicas"] += 1
            if revision == update_revision:
                counts["updatedReplicas"] += 1
    return counts


def plan_stateful_set(
    sts: Object,
    pods: list[Object],
    *,
    current_set: Object,
    update_set: Object,
    current_revision: str,
    update_revision: str,
    claims: dict[str, Object],
    now: datetime,
) -> StatefulSetPlan:
    """updateStatefulSet's decisions for one sync, given the set's pods and the claims
    that exist (by name)."""
    start = start_ordinal(sts)
    count = max(spec_replicas(sts), 0)
    ready_seconds = min_ready_seconds(sts)
    replicas: list[Object | None] = [None] * count
    condemned: list[Object] = []
    for pod in pods:
        ordinal = parent_and_ordinal(pod)[1]
        if start <= ordinal < start + count:
            replicas[ordinal - start] = pod
        elif ordinal >= 0:
            condemned.append(pod)
    filled: list[Object] = [
        pod
        if pod is not None
        else versioned_pod(
            sts, current_set, update_set, current_revision, update_revision, start + i
        )
        for i, pod in enumerate(replicas)
    ]
    condemned.sort(key=lambda p: parent_and_ordinal(p)[1], reverse=True)
    first_unhealthy: Object | None = next(
        (p for p in [*filled, *reversed(condemned)] if not is_healthy(p)), None
    )
    plan = StatefulSetPlan()

    def finish(extra_current: int = 0) -> StatefulSetPlan:
        plan.status = replica_status(
            [*filled, *condemned], ready_seconds, current_revision, update_revision, now
        )
        plan.status["currentReplicas"] += extra_current
        return plan

    if meta(sts).get("deletionTimestamp"):
        return finish()
    monotonic = (sts.get("spec") or {}).get("podManagementPolicy") != "Parallel"
    replica_steps: list[Step] = []

    def emit(steps: list[Step], step: Step) -> None:
        if monotonic:
            plan.phases.append([step])
        else:
            steps.append(step)

    for index, pod in enumerate(filled):
        if _phase(pod) in ("Failed", "Succeeded"):
            replacement = versioned_pod(
                sts, current_set, update_set, current_revision, update_revision, start + index
            )
            emit(replica_steps, Step("recreate", pod, replacement, reason=_phase(pod)))
            filled[index] = replacement
            if monotonic:
                return finish()
            continue
        if not is_created(pod):
            emit(replica_steps, Step("create", pod))
            if monotonic:
                return finish()
            continue
        if _phase(pod) == "Pending":
            missing = [
                c
                for _, c in persistent_volume_claims(sts, parent_and_ordinal(pod)[1])
                if meta(c)["name"] not in claims
            ]
            if missing:
                emit(replica_steps, Step("ensure_claims", pod))
        if monotonic and (
            is_terminating(pod)
            or not is_running_and_ready(pod)
            or not is_running_and_available(pod, ready_seconds, now)
        ):
            return finish()
        if not (identity_matches(sts, pod) and storage_matches(sts, pod)) or _claims_misowned(
            update_set, pod, claims
        ):
            emit(replica_steps, Step("update", pod))
    if replica_steps:
        plan.phases.append(replica_steps)

    fixes = [
        Step("fix_claims", pod) for pod in condemned if _claims_misowned(update_set, pod, claims)
    ]
    if fixes:
        if monotonic:
            plan.phases.extend([step] for step in fixes)
        else:
            plan.phases.append(fixes)

    condemned_steps: list[Step] = []
    for pod in condemned:
        if is_terminating(pod):
            if monotonic:
                return finish()
            continue
        unhealthy = not is_running_and_ready(pod) or not is_running_and_available(
            pod, ready_seconds, now
        )
        if monotonic and unhealthy and pod is not first_unhealthy:
            return finish()
        emit(condemned_steps, Step("delete", pod, reason="scale down"))
        if monotonic:
            return finish()
    if condemned_steps:
        plan.phases.append(condemned_steps)

    strategy = (sts.get("spec") or {}).get("updateStrategy") or {}
    if strategy.get("type") == "OnDelete":
        return finish()
    partition = _int_field((strategy.get("rollingUpdate") or {}).get("partition"), 0)
    for target in range(len(filled) - 1, partition - 1, -1):
        pod = filled[target]
        if pod_revision(pod) != update_revision and not is_terminating(pod):
            plan.phases.append([Step("delete", pod, reason="update")])
            return finish(extra_current=-1)
        if not is_healthy(pod):
            break
    return finish()


def _claims_misowned(sts: Object, pod: Object, claims: dict[str, Object]) -> bool:
    """ClaimsMatchRetentionPolicy, negated: some existing claim of the pod has owners
    the retention policy does not call for."""
    ordinal = parent_and_ordinal(pod)[1]
    if ordinal < 0 or not meta(pod).get("uid"):
        return False
    for _, wanted in persistent_volume_claims(sts, ordinal):
        claim = claims.get(str(meta(wanted)["name"]))
        if claim is None:
            continue
        if not _same_references(
            meta(claim).get("ownerReferences") or [], claim_owner_references(claim, sts, pod)
        ):
            return True
    return False


def complete_rolling_update(sts: Object, status: dict[str, Any]) -> None:
    """completeRollingUpdate: once every pod runs the update revision and is ready, it
    becomes the current one."""
    strategy = ((sts.get("spec") or {}).get("updateStrategy") or {}).get("type")
    if (
        strategy == "RollingUpdate"
        and status["updatedReplicas"] == status["replicas"]
        and status["readyReplicas"] == status["replicas"]
    ):
        status["currentReplicas"] = status["updatedReplicas"]
        status["currentRevision"] = status["updateRevision"]


def status_inconsistent(sts: Object, status: dict[str, Any]) -> bool:
    old = sts.get("status") or {}
    if _int_field(status.get("observedGeneration"), 0) > _int_field(
        old.get("observedGeneration"), 0
    ):
        return True
    fields = (
        "replicas",
        "currentReplicas",
        "readyReplicas",
        "updatedReplicas",
        "availableReplicas",
    )
    if any(_int_field(status.get(f), 0) != _int_field(old.get(f), 0) for f in fields):
        return True
    return any(
        (status.get(f) or "") != (old.get(f) or "") for f in ("currentRevision", "updateRevision")
    )


def plan_history_truncation(
    sts: Object, revisions: list[Object], pods: list[Object], current: str, update: str
) -> list[Object]:
    """truncateHistory: the oldest revisions beyond revisionHistoryLimit that neither the
    set nor any pod uses."""
    live = {current, update, *(pod_revision(p) for p in pods)}
    history = [r for r in sort_revisions(revisions) if meta(r).get("name") not in live]
    limit = _int_field((sts.get("spec") or {}).get("revisionHistoryLimit"), 10)
    if len(history) <= limit:
        return []
    return history[: len(history) - limit]


# -- the controller ---------------------------------------------------------------------


class StatefulSetController(Controller):
    name: ClassVar[str] = COMPONENT
    # kube-controller-manager's default --concurrent-*-syncs.
    workers: ClassVar[int] = 5

    def __init__(self, context: ControllerContext) -> None:
        self.client = context.client
        self.recorder = context.recorder(COMPONENT)
        self.clock = clock_option(context.options)
        self.sets = context.informers.informer(STATEFULSETS)
        self.pods = context.informers.informer(PODS)
        self.revisions = context.informers.informer(CONTROLLERREVISIONS)
        self.claims = context.informers.informer(PERSISTENTVOLUMECLAIMS)
        super().__init__([self.sets, self.pods, self.revisions, self.claims])
        self.sets.add_handlers(
            on_add=self._enqueue,
            on_update=lambda old, new: self._enqueue(new),
            on_delete=self._enqueue,
        )
        self.pods.add_handlers(
            on_add=self._on_pod, on_update=self._on_pod_update, on_delete=self._on_pod
        )
        self.revisions.add_handlers(
            on_add=self._on_owned, on_update=lambda old, new: self._on_owned(new)
        )

    def _enqueue(self, sts: Object) -> None:
        self.queue.add(object_key(sts))

    def _owner(self, obj: Object) -> Object | None:
        return cached_controller(obj, KIND, self.sets)

    def _on_owned(self, obj: Object) -> None:
        sts = self._owner(obj)
        if sts is not None:
            self._enqueue(sts)

    def _on_pod(self, pod: Object) -> None:
        if controller_of(pod) is not None:
            self._on_owned(pod)
            return
        namespace = meta(pod).get("namespace", "")
        for sts in self.sets.indexer.by_index("namespace", namespace):
            if selector_matches((sts.get("spec") or {}).get("selector"), meta(pod).get("labels")):
                self._enqueue(sts)

    def _on_pod_update(self, old: Object, new: Object) -> None:
        if controller_of(old) != controller_of(new):
            self._on_owned(old)
        self._on_pod(new)
        sts = self._owner(new)
        if sts is not None and min_ready_seconds(sts) > 0 and not is_ready(old) and is_ready(new):
            self.queue.add_after(object_key(sts), self.clock.delay(min_ready_seconds(sts) + 1))

    async def sync(self, key: str) -> None:
        shared = self.sets.get(key)
        if shared is None:
            return
        sts = with_kind(copy.deepcopy(shared), API_VERSION, KIND)
        namespace = str(meta(sts).get("namespace", ""))
        selector = (sts.get("spec") or {}).get("selector")
        revisions = await claim_revisions(
            self.client,
            sts,
            STATEFULSETS,
            KIND,
            self.revisions.indexer.by_index("namespace", namespace),
        )
        reference = controller_reference(sts, API_VERSION, KIND)
        can_adopt = recheck_owner(self.client, STATEFULSETS, sts)
        pods = await ControllerRefManager(self.client, PODS, sts, reference, can_adopt).claim(
            self.pods.indexer.by_index("namespace", namespace),
            lambda p: selector_matches(selector, meta(p).get("labels")) and is_member_of(sts, p),
        )
        revisions = sort_revisions(revisions)
        current, update, collision_count = await self._revisions(sts, revisions)
        current_name, update_name = str(meta(current)["name"]), str(meta(update)["name"])
        claims = {
            str(meta(c).get("name")): c
            for c in self.claims.indexer.by_index("namespace", namespace)
        }
        now = self.clock.now()
        plan = plan_stateful_set(
            sts,
            pods,
            current_set=apply_revision(sts, current),
            update_set=apply_revision(sts, update),
            current_revision=current_name,
            update_revision=update_name,
            claims=claims,
            now=now,
        )
        failure: Exception | None = None
        try:
            for phase in plan.phases:
                await self._run_phase(sts, apply_revision(sts, update), phase, claims)
        except Exception as error:
            failure = error
        status: dict[str, Any] = {
            **plan.status,
            "observedGeneration": meta(sts).get("generation") or 0,
            "currentRevision": current_name,
            "updateRevision": update_name,
            "collisionCount": collision_count,
        }
        await self._update_status(sts, status)
        await self._truncate_history(sts, revisions, pods, current_name, update_name)
        if failure is not None:
            raise failure
        ready_seconds = min_ready_seconds(sts)
        if ready_seconds > 0 and status["availableReplicas"] != spec_replicas(sts):
            raise Requeue(self.clock.delay(ready_seconds))

    async def _revisions(self, sts: Object, revisions: list[Object]) -> tuple[Object, Object, int]:
        """getStatefulSetRevisions: (current, update, collision count). The update revision
        is the current template's: the newest revision if it already is, an older equal
        one renumbered (a rollback), or a new one."""
        collision = _int_field((sts.get("status") or {}).get("collisionCount"), 0)
        number = next_revision_number(revisions)
        data = template_patch(sts)
        candidate = self._revision(sts, data, collision, number)
        equal = [r for r in revisions if equal_revisions(r, candidate)]
        if equal and revisions and equal[-1] is revisions[-1]:
            update = revisions[-1]
        elif equal:
            renumbered = copy.deepcopy(equal[-1])
            renumbered["revision"] = number
            update = await self.client.update(CONTROLLERREVISIONS, renumbered)
        else:
            while True:
                candidate = self._revision(sts, data, collision, number)
                try:
                    update = await create_revision(self.client, candidate)
                    break
                except StatusError as error:
                    if error.code != 409:
                        raise
                    collision += 1
        wanted = (sts.get("status") or {}).get("currentRevision")
        current = next((r for r in revisions if meta(r).get("name") == wanted), update)
        return current, update, collision

    @staticmethod
    def _revision(sts: Object, data: Object, collision: int, number: int) -> Object:
        hash_value = hash_revision_data(data, collision)
        name = revision_name(str(meta(sts)["name"]), hash_value)
        return new_revision(
            sts,
            api_version=API_VERSION,
            kind=KIND,
            name=name,
            hash_value=hash_value,
            revision=number,
        )

    async def _run_phase(
        self, sts: Object, update_set: Object, steps: list[Step], claims: dict[str, Object]
    ) -> None:
        async def run(index: int) -> None:
            await self._run_step(sts, update_set, steps[index], claims)

        if len(steps) == 1:
            await run(0)
            return
        result = await in_slow_start_batches(len(steps), run)
        if result.errors:
            first = result.errors[0]
            raise first if isinstance(first, Exception) else RuntimeError(str(first))

    async def _run_step(
        self, sts: Object, update_set: Object, step: Step, claims: dict[str, Object]
    ) -> None:
        set_name = meta(sts)["name"]
        pod = step.pod
        name = str(meta(pod).get("name", ""))
        if step.kind == "recreate":
            if step.reason == "Failed":
                self.recorder.event(
                    sts,
                    "Warning",
                    "RecreatingFailedPod",
                    f"StatefulSet {meta(sts)['namespace']}/{set_name} is recreating failed Pod {name}",
                )
            else:
                self.recorder.event(
                    sts,
                    "Normal",
                    "RecreatingTerminatedPod",
                    f"StatefulSet {meta(sts)['namespace']}/{set_name} is recreating terminated Pod {name}",
                )
            await self._delete_pod(sts, pod)
            assert step.replacement is not None
            await self._create_pod(sts, step.replacement, claims)
        elif step.kind == "create":
            await self._create_pod(sts, pod, claims)
        elif step.kind == "ensure_claims":
            await self._create_claims(sts, pod, claims)
        elif step.kind == "update":
            await self._update_pod(sts, update_set, pod, claims)
        elif step.kind == "fix_claims":
            await self._fix_claims(update_set, pod, claims)
        elif step.kind == "delete":
            await self._delete_pod(sts, pod)

    async def _create_claims(self, sts: Object, pod: Object, claims: dict[str, Object]) -> None:
        """createPersistentVolumeClaims: each missing claim of the pod, owned as the
        retention policy says."""
        failures: list[str] = []
        set_name, pod_name_ = meta(sts)["name"], meta(pod).get("name", "")
        for _, claim in persistent_volume_claims(sts, parent_and_ordinal(pod)[1]):
            claim_name_ = str(meta(claim)["name"])
            existing = claims.get(claim_name_)
            if existing is not None:
                if meta(existing).get("deletionTimestamp"):
                    failures.append(f"pvc {claim_name_} is to be deleted")
                continue
            references = claim_owner_references(claim, sts, pod)
            if references:
                claim["metadata"]["ownerReferences"] = references
            try:
                claims[claim_name_] = await self.client.create(
                    PERSISTENTVOLUMECLAIMS, claim, str(meta(sts)["namespace"])
                )
            except StatusError as error:
                if error.code == 409:
                    continue
                self.recorder.event(
                    sts,
                    "Warning",
                    "FailedCreate",
                    f"create Claim {claim_name_} for Pod {pod_name_} in StatefulSet {set_name} failed error: {error}",
                )
                failures.append(str(error))
                continue
            self.recorder.event(
                sts,
                "Normal",
                "SuccessfulCreate",
                f"create Claim {claim_name_} Pod {pod_name_} in StatefulSet {set_name} success",
            )
        if failures:
            raise RuntimeError("; ".join(failures))

    async def _create_pod(self, sts: Object, pod: Object, claims: dict[str, Object]) -> None:
        """CreateStatefulPod: claims first, then the pod."""
        set_name, name = meta(sts)["name"], meta(pod)["name"]
        try:
            await self._create_claims(sts, pod, claims)
            await self.client.create(PODS, pod, str(meta(sts)["namespace"]))
        except StatusError as error:
            if error.code == 409:
                raise
            self.recorder.event(
                sts,
                "Warning",
                "FailedCreate",
                f"create Pod {name} in StatefulSet {set_name} failed error: {error}",
            )
            raise
        except Exception as error:
            self.recorder.event(
                sts,
                "Warning",
                "FailedCreate",
                f"create Pod {name} in StatefulSet {set_name} failed error: {error}",
            )
            raise
        self.recorder.event(
            sts,
            "Normal",
            "SuccessfulCreate",
            f"create Pod {name} in StatefulSet {set_name} successful",
        )

    async def _delete_pod(self, sts: Object, pod: Object) -> None:
        set_name, name = meta(sts)["name"], meta(pod)["name"]
        try:
            await self.client.delete(PODS, str(name), str(meta(sts)["namespace"]))
        except StatusError as error:
            if error.code == 404:
                return
            self.recorder.event(
                sts,
                "Warning",
                "FailedDelete",
                f"delete Pod {name} in StatefulSet {set_name} failed error: {error}",
            )
            raise
        self.recorder.event(
            sts,
            "Normal",
            "SuccessfulDelete",
            f"delete Pod {name} in StatefulSet {set_name} successful",
        )

    async def _fix_claims(self, sts: Object, pod: Object, claims: dict[str, Object]) -> None:
        """UpdatePodClaimForRetentionPolicy: claim owners as the policy says."""
        for _, wanted in persistent_volume_claims(sts, parent_and_ordinal(pod)[1]):
            claim = claims.get(str(meta(wanted)["name"]))
            if claim is None:
                continue
            references = claim_owner_references(claim, sts, pod)
            if _same_references(meta(claim).get("ownerReferences") or [], references):
                continue
            updated = copy.deepcopy(claim)
            updated["metadata"]["ownerReferences"] = references
            claims[str(meta(claim)["name"])] = await self.client.update(
                PERSISTENTVOLUMECLAIMS, updated
            )

    async def _update_pod(
        self, sts: Object, update_set: Object, pod: Object, claims: dict[str, Object]
    ) -> None:
        """UpdateStatefulPod: restore the pod's identity labels, create missing claims and
        fix claim owners."""
        ordinal = parent_and_ordinal(pod)[1]
        if not storage_matches(sts, pod):
            await self._create_claims(sts, pod, claims)
        await self._fix_claims(update_set, pod, claims)
        if identity_matches(sts, pod):
            return
        updated = copy.deepcopy(pod)
        set_identity(sts, updated, ordinal)
        await self.client.update(PODS, updated)
        self.recorder.event(
            sts,
            "Normal",
            "SuccessfulUpdate",
            f"update Pod {meta(pod)['name']} in StatefulSet {meta(sts)['name']} successful",
        )

    async def _update_status(self, sts: Object, status: dict[str, Any]) -> None:
        complete_rolling_update(sts, status)
        if not status_inconsistent(sts, status):
            return
        target = sts
        for attempt in range(5):
            updated = dict(target)
            updated["status"] = {**(target.get("status") or {}), **status}
            try:
                await self.client.update_status(STATEFULSETS, updated)
                return
            except StatusError as error:
                if error.code != 409 or attempt == 4:
                    raise
                target = await self.client.get(
                    STATEFULSETS, str(meta(sts)["name"]), str(meta(sts)["namespace"])
                )
                await asyncio.sleep(0)

    async def _truncate_history(
        self, sts: Object, revisions: list[Object], pods: list[Object], current: str, update: str
    ) -> None:
        await delete_revisions(
            self.client, plan_history_truncation(sts, revisions, pods, current, update)
        )
