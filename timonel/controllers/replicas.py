"""The ReplicaSet controller's decisions, as pure functions: how many pods to create or
delete, in which batches, which pods go first on scale-down, the pod a template makes,
and the status a set of pods amounts to.
"""

from __future__ import annotations

import copy
import functools
import math
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from timonel.api.objects import Object
from timonel.controllers.pods import is_active, is_available, is_ready, meta, ready_since, timestamp

# At most this many creations or deletions per sync (kube's BurstReplicas).
BURST_REPLICAS = 500
SLOW_START_INITIAL_BATCH_SIZE = 1
POD_DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"
REPLICA_FAILURE = "ReplicaFailure"

_PHASE_ORDER = {"Pending": 0, "Unknown": 1, "Running": 2}
_INT = re.compile(r"^[+-]?[0-9]+$")


def spec_replicas(obj: Object) -> int:
    """spec.replicas, which the API server defaults to 1."""
    value = (obj.get("spec") or {}).get("replicas")
    return value if isinstance(value, int) and not isinstance(value, bool) else 1


def status_count(obj: Object, field: str) -> int:
    value = (obj.get("status") or {}).get(field)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


@dataclass(frozen=True, slots=True)
class ReplicaPlan:
    create: int = 0
    delete: int = 0


def plan_replicas(active_pods: int, desired: int, burst: int = BURST_REPLICAS) -> ReplicaPlan:
    """How far the pod count is from the desired one, at most `burst` per sync."""
    diff = active_pods - desired
    if diff < 0:
        return ReplicaPlan(create=min(-diff, burst))
    if diff > 0:
        return ReplicaPlan(delete=min(diff, burst))
    return ReplicaPlan()


def slow_start_batches(count: int, initial: int = SLOW_START_INITIAL_BATCH_SIZE) -> list[int]:
    """Batch sizes for `count` creations: 1, 2, 4, ... so that a create that fails (a
    quota, a bad template) fails once rather than `count` times."""
    batches: list[int] = []
    remaining = count
    size = min(remaining, initial)
    while size > 0:
        batches.append(size)
        remaining -= size
        size = min(2 * size, remaining)
    return batches


def deletion_cost(pod: Object) -> int:
    """The pod-deletion-cost annotation (an int32); unusable values count as 0."""
    value = (meta(pod).get("annotations") or {}).get(POD_DELETION_COST)
    if not isinstance(value, str) or not _INT.match(value):
        return 0
    number = int(value)
    return number if -(2**31) <= number < 2**31 else 0


def max_container_restarts(pod: Object) -> tuple[int, int]:
    """The highest restart count among regular containers, then among sidecars
    (init containers that restart always)."""
    status = pod.get("status") or {}
    regular = max(
        (int(c.get("restartCount") or 0) for c in status.get("containerStatuses") or []), default=0
    )
    sidecars = {
        c.get("name")
        for c in (pod.get("spec") or {}).get("initContainers") or []
        if c.get("restartPolicy") == "Always"
    }
    sidecar = max(
        (
            int(c.get("restartCount") or 0)
            for c in status.get("initContainerStatuses") or []
            if c.get("name") in sidecars
        ),
        default=0,
    )
    return regular, sidecar


def _log_rank(then: datetime, now: datetime) -> int:
    """Which power-of-two bucket of age (in nanoseconds) `then` falls in; -1 when not
    in the past. Pods of about the same age rank alike (LogarithmicScaleDown)."""
    age = (now - then).total_seconds() * 1e9
    return int(math.log2(age)) if age > 0 else -1


@dataclass(frozen=True, slots=True)
class _Ranked:
    pod: Object
    node: str
    phase: int
    ready: bool
    cost: int
    colocated: int
    ready_since: datetime | None
    restarts: tuple[int, int]
    created: datetime | None
    uid: str


def _compare_times(
    a: datetime | None, b: datetime | None, a_uid: str, b_uid: str, now: datetime
) -> int:
    """Newer (or unknown) first; times in the same logarithmic bucket by uid."""
    if a is None or b is None:
        return -1 if a is None else 1
    diff = _log_rank(a, now) - _log_rank(b, now)
    if diff == 0:
        return -1 if a_uid < b_uid else (1 if a_uid > b_uid else 0)
    return -1 if diff < 0 else 1


def _deletion_order(a: _Ranked, b: _Ranked, now: datetime) -> int:
    """controller.ActivePodsWithRanks.Less, as a comparison: negative when `a` should
    be deleted before `b`."""
    if a.node != b.node and (not a.node or not b.node):
        return -1 if not a.node else 1
    if a.phase != b.phase:
        return -1 if a.phase < b.phase else 1
    if a.ready != b.ready:
        return -1 if not a.ready else 1
    if a.cost != b.cost:
        return -1 if a.cost < b.cost else 1
    if a.colocated != b.colocated:
        return -1 if a.colocated > b.colocated else 1
    if a.ready and b.ready and a.ready_since != b.ready_since:
        order = _compare_times(a.ready_since, b.ready_since, a.uid, b.uid, now)
        if order:
            return order
    if a.restarts[0] != b.restarts[0]:
        return -1 if a.restarts[0] > b.restarts[0] else 1
    if a.restarts[1] != b.restarts[1]:
        return -1 if a.restarts[1] > b.restarts[1] else 1
    if a.created != b.created:
        return _compare_times(a.created, b.created, a.uid, b.uid, now)
    return 0


def rank_for_deletion(
    pods: list[Object], related_pods: list[Object], now: datetime
) -> list[Object]:
    """`pods` in the order a scale-down deletes them: unscheduled before scheduled,
    pending before unknown before running, not ready before ready, lower deletion cost
    first, pods sharing a node with more related active pods first, ready for less
    time first, more restarts first, newer first."""
    on_node: dict[str, int] = {}
    for pod in related_pods:
        if is_active(pod):
            node = (pod.get("spec") or {}).get("nodeName") or ""
            on_node[node] = on_node.get(node, 0) + 1
    ranked = []
    for pod in pods:
        node = (pod.get("spec") or {}).get("nodeName") or ""
        ranked.append(
            _Ranked(
                pod=pod,
                node=node,
                phase=_PHASE_ORDER.get((pod.get("status") or {}).get("phase") or "", 0),
                ready=is_ready(pod),
                cost=deletion_cost(pod),
                colocated=on_node.get(node, 0),
                ready_since=ready_since(pod),
                restarts=max_container_restarts(pod),
                created=timestamp(meta(pod).get("creationTimestamp")),
                uid=str(meta(pod).get("uid") or ""),
            )
        )
    ranked.sort(key=functools.cmp_to_key(lambda a, b: _deletion_order(a, b, now)))
    return [r.pod for r in ranked]


def pods_to_delete(
    pods: list[Object], related_pods: list[Object], count: int, now: datetime
) -> list[Object]:
    """getPodsToDelete: the first `count` pods in deletion order (no ranking needed
    when all of them go)."""
    if count < len(pods):
        pods = rank_for_deletion(pods, related_pods, now)
    return pods[:count]


def pod_from_template(owner: Object, reference: dict[str, Any]) -> Object:
    """GetPodFromTemplate: a pod of the owner's template, named `<owner>-<random>`."""
    owner_meta = meta(owner)
    template = (owner.get("spec") or {}).get("template") or {}
    template_meta = template.get("metadata") or {}
    name = owner_meta.get("name", "")
    prefix = f"{name}-"
    if len(prefix) > 253:
        prefix = name
    pod_meta: dict[str, Any] = {
        "generateName": prefix,
        "namespace": owner_meta.get("namespace", ""),
        "labels": dict(template_meta.get("labels") or {}),
        "ownerReferences": [reference],
    }
    if template_meta.get("annotations"):
        pod_meta["annotations"] = dict(template_meta["annotations"])
    if template_meta.get("finalizers"):
        pod_meta["finalizers"] = list(template_meta["finalizers"])
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": pod_meta,
        "spec": copy.deepcopy(template.get("spec") or {}),
    }


def _labels_match(required: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in required.items())


def calculate_status(
    rs: Object, pods: list[Object], manage_error: str | None, now: datetime
) -> dict[str, Any]:
    """The status `pods` (the set's active, claimed pods) amount to; observedGeneration
    is left as it was (it is set when the status is written). `manage_error` is the
    message of a failed create or delete, recorded as the ReplicaFailure condition."""
    spec = rs.get("spec") or {}
    min_ready = int(spec.get("minReadySeconds") or 0)
    template_labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    fully_labeled = ready = available = 0
    for pod in pods:
        if _labels_match(template_labels, meta(pod).get("labels") or {}):
            fully_labeled += 1
        if is_ready(pod):
            ready += 1
            if is_available(pod, min_ready, now):
                available += 1
    old = rs.get("status") or {}
    conditions = [c for c in old.get("conditions") or [] if isinstance(c, dict)]
    failure = next((c for c in conditions if c.get("type") == REPLICA_FAILURE), None)
    if manage_error is not None and failure is None:
        diff = len(pods) - spec_replicas(rs)
        reason = "FailedCreate" if diff < 0 else ("FailedDelete" if diff > 0 else "")
        condition = {
            "type": REPLICA_FAILURE,
            "status": "True",
            "lastTransitionTime": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "reason": reason,
            "message": manage_error,
        }
        conditions.append(condition)
    elif manage_error is None and failure is not None:
        conditions = [c for c in conditions if c.get("type") != REPLICA_FAILURE]
    status: dict[str, Any] = {"replicas": len(pods)}
    for field, value in (
        ("fullyLabeledReplicas", fully_labeled),
        ("readyReplicas", ready),
        ("availableReplicas", available),
        ("observedGeneration", old.get("observedGeneration") or 0),
    ):
        if value:
            status[field] = value
    if conditions:
        status["conditions"] = conditions
    return status


def status_needs_update(rs: Object, new_status: dict[str, Any]) -> bool:
    """updateReplicaSetStatus's steady state test: counts, conditions, generation seen."""
    old = rs.get("status") or {}
    for field in ("replicas", "fullyLabeledReplicas", "readyReplicas", "availableReplicas"):
        if int(old.get(field) or 0) != int(new_status.get(field) or 0):
            return True
    if int(meta(rs).get("generation") or 0) != int(old.get("observedGeneration") or 0):
        return True
    return (old.get("conditions") or []) != (new_status.get("conditions") or [])
