"""The DaemonSet controller: one pod of the set on every node that should run it, as
kube-controller-manager's daemonset-controller does.

Which nodes: those the pod's node selector and required node affinity match, and whose
NoSchedule/NoExecute taints the pod tolerates once daemon pods' automatic tolerations
are added (not-ready and unreachable NoExecute; disk, memory, PID pressure and
unschedulable NoSchedule; network-unavailable for host-network pods). A pod already on
a node stays while the node's NoExecute taints are tolerated. The default scheduler
places each pod: the controller pins it to its node with a required node affinity on
`metadata.name`.

Each template is recorded as a ControllerRevision `<ds>-<hash>`; pods carry the hash in
`controller-revision-hash` and the template generation in `pod-template-generation`.
RollingUpdate replaces old pods node by node within maxUnavailable (or, with maxSurge,
starts the new pod before removing the old one); OnDelete replaces a pod only when it
is deleted.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from timonel.api.errors import StatusError
from timonel.api.objects import Object, object_key
from timonel.client.resources import CONTROLLERREVISIONS, DAEMONSETS, NODES, PODS
from timonel.controllers.base import Controller, Requeue
from timonel.controllers.expectations import Expectations
from timonel.controllers.history import (
    REVISION_HASH_LABEL,
    claim_revisions,
    create_revision,
    delete_revisions,
    hash_template,
    new_revision,
    next_revision_number,
    revision_name,
    revision_number,
    same_data,
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
from timonel.controllers.pods import is_available, is_ready, meta, timestamp
from timonel.controllers.workloads import (
    FailureBackoff,
    in_slow_start_batches,
    namespace_terminating,
    pod_from_template,
    selector_matches,
    with_kind,
)
from timonel.kinds.apps.intstr import scaled_value
from timonel.util.clock import clock_option

API_VERSION = "apps/v1"
KIND = "DaemonSet"
COMPONENT = "daemonset-controller"
TEMPLATE_GENERATION_ANNOTATION = "deprecated.daemonset.template.generation"
TEMPLATE_GENERATION_LABEL = "pod-template-generation"
BURST_REPLICAS = 250
FAILED_POD_BACKOFF_INITIAL = 1.0
FAILED_POD_BACKOFF_MAX = 15 * 60.0
STATUS_UPDATE_RETRIES = 1

TAINT_NOT_READY = "node.kubernetes.io/not-ready"
TAINT_UNREACHABLE = "node.kubernetes.io/unreachable"
TAINT_DISK_PRESSURE = "node.kubernetes.io/disk-pressure"
TAINT_MEMORY_PRESSURE = "node.kubernetes.io/memory-pressure"
TAINT_PID_PRESSURE = "node.kubernetes.io/pid-pressure"
TAINT_UNSCHEDULABLE = "node.kubernetes.io/unschedulable"
TAINT_NETWORK_UNAVAILABLE = "node.kubernetes.io/network-unavailable"


# -- taints, tolerations, node affinity ---------------------------------------------------


def _daemon_tolerations(host_network: bool) -> list[dict[str, str]]:
    tolerations = [
        {"key": TAINT_NOT_READY, "operator": "Exists", "effect": "NoExecute"},
        {"key": TAINT_UNREACHABLE, "operator": "Exists", "effect": "NoExecute"},
        {"key": TAINT_DISK_PRESSURE, "operator": "Exists", "effect": "NoSchedule"},
        {"key": TAINT_MEMORY_PRESSURE, "operator": "Exists", "effect": "NoSchedule"},
        {"key": TAINT_PID_PRESSURE, "operator": "Exists", "effect": "NoSchedule"},
        {"key": TAINT_UNSCHEDULABLE, "operator": "Exists", "effect": "NoSchedule"},
    ]
    if host_network:
        tolerations.append(
            {"key": TAINT_NETWORK_UNAVAILABLE, "operator": "Exists", "effect": "NoSchedule"}
        )
    return tolerations


def _same_toleration(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Toleration.MatchToleration: same key, operator, value and effect."""
    return all((a.get(f) or "") == (b.get(f) or "") for f in ("key", "operator", "value", "effect"))


def add_daemon_tolerations(pod_spec: dict[str, Any]) -> None:
    """AddOrUpdateDaemonPodTolerations: each automatic toleration replaces a matching one
    (dropping its tolerationSeconds, so the pod is never evicted) or is appended."""
    tolerations = [t for t in pod_spec.get("tolerations") or [] if isinstance(t, dict)]
    for toleration in _daemon_tolerations(bool(pod_spec.get("hostNetwork"))):
        replaced = False
        for index, existing in enumerate(tolerations):
            if _same_toleration(existing, toleration):
                tolerations[index] = dict(toleration)
                replaced = True
        if not replaced:
            tolerations.append(dict(toleration))
    pod_spec["tolerations"] = tolerations


def tolerates(toleration: dict[str, Any], taint: dict[str, Any]) -> bool:
    """Toleration.ToleratesTaint."""
    effect = toleration.get("effect") or ""
    if effect and effect != taint.get("effect"):
        return False
    key = toleration.get("key") or ""
    if key and key != taint.get("key"):
        return False
    operator = toleration.get("operator") or "Equal"
    if operator == "Exists":
        return True
    if operator == "Equal":
        return (toleration.get("value") or "") == (taint.get("value") or "")
    return False


def untolerated_taint(
    taints: Iterable[Any], tolerations: Iterable[Any], effects: tuple[str, ...]
) -> dict[str, Any] | None:
    """FindMatchingUntoleratedTaint: the first taint with one of these effects that no
    toleration tolerates."""
    toleration_list = [t for t in tolerations if isinstance(t, dict)]
    for taint in taints:
        if not isinstance(taint, dict) or taint.get("effect") not in effects:
            continue
        if not any(tolerates(toleration, taint) for toleration in toleration_list):
            return taint
    return None


def _requirement_matches(requirement: dict[str, Any], values: dict[str, str]) -> bool:
    key = str(requirement.get("key") or "")
    operator = requirement.get("operator")
    wanted = [str(v) for v in requirement.get("values") or []]
    present = key in values
    if operator == "In":
        return present and values[key] in wanted
    if operator == "NotIn":
        return not present or values[key] not in wanted
    if operator == "Exists":
        return present
    if operator == "DoesNotExist":
        return not present
    if operator in ("Gt", "Lt"):
        if not present or len(wanted) != 1:
            return False
        try:
            have, bound = int(values[key]), int(wanted[0])
        except ValueError:
            return False
        return have > bound if operator == "Gt" else have < bound
    return False


def node_selector_term_matches(term: Any, node: Object) -> bool:
    """One NodeSelectorTerm: all its label expressions and field expressions (only
    metadata.name exists) hold; a term with neither matches nothing."""
    if not isinstance(term, dict):
        return False
    expressions = [e for e in term.get("matchExpressions") or [] if isinstance(e, dict)]
    fields = [f for f in term.get("matchFields") or [] if isinstance(f, dict)]
    if not expressions and not fields:
        return False
    labels = {str(k): str(v) for k, v in (meta(node).get("labels") or {}).items()}
    node_fields = {"metadata.name": str(meta(node).get("name", ""))}
    return all(_requirement_matches(e, labels) for e in expressions) and all(
        _requirement_matches(f, node_fields) for f in fields
    )


def required_affinity_matches(pod_spec: dict[str, Any], node: Object) -> bool:
    """nodeaffinity.GetRequiredNodeAffinity(pod).Match(node): the node selector, and any
    one of the required node selector terms."""
    labels = meta(node).get("labels") or {}
    for key, value in (pod_spec.get("nodeSelector") or {}).items():
        if labels.get(key) != value:
            return False
    affinity = ((pod_spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    )
    if not isinstance(affinity, dict):
        return True
    return any(
        node_selector_term_matches(term, node) for term in affinity.get("nodeSelectorTerms") or []
    )


def node_should_run(ds: Object, node: Object) -> tuple[bool, bool]:
    """NodeShouldRunDaemonPod: (should a pod be started here, may a pod already here
    stay)."""
    template_spec = ((ds.get("spec") or {}).get("template") or {}).get("spec") or {}
    node_name = str(meta(node).get("name", ""))
    wanted_node = template_spec.get("nodeName") or ""
    if wanted_node and wanted_node != node_name:
        return False, False
    pod_spec = copy.deepcopy(template_spec)
    add_daemon_tolerations(pod_spec)
    if not required_affinity_matches(pod_spec, node):
        return False, False
    taints = (node.get("spec") or {}).get("taints") or []
    tolerations = pod_spec.get("tolerations") or []
    if untolerated_taint(taints, tolerations, ("NoSchedule", "NoExecute")) is None:
        return True, True
    return False, untolerated_taint(taints, tolerations, ("NoExecute",)) is None


# -- pods of the set --------------------------------------------------------------------


def template_generation(ds: Object) -> int | None:
    """The template generation kube-apiserver records in an annotation (None if absent
    or unreadable)."""
    value = (meta(ds).get("annotations") or {}).get(TEMPLATE_GENERATION_ANNOTATION)
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def is_pod_updated(pod: Object, hash_value: str, generation: int | None) -> bool:
    """util.IsPodUpdated: the pod carries the current hash, or the current generation."""
    labels = meta(pod).get("labels") or {}
    generation_matches = generation is not None and labels.get(TEMPLATE_GENERATION_LABEL) == str(
        generation
    )
    hash_matches = bool(hash_value) and labels.get(REVISION_HASH_LABEL) == hash_value
    return hash_matches or generation_matches


def target_node_name(pod: Object) -> str | None:
    """util.GetTargetNodeName: the node a pod is bound to, or the one its
    `metadata.name In [node]` affinity names."""
    spec = pod.get("spec") or {}
    if spec.get("nodeName"):
        return str(spec["nodeName"])
    affinity = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    ) or {}
    terms = affinity.get("nodeSelectorTerms") or []
    for term in terms:
        for requirement in (term or {}).get("matchFields") or []:
            if (
                requirement.get("key") == "metadata.name"
                and requirement.get("operator") == "In"
                and len(requirement.get("values") or []) == 1
            ):
                return str(requirement["values"][0])
    return None


def pod_template(ds: Object, hash_value: str) -> Object:
    """util.CreatePodTemplate: the set's template with daemon tolerations and the
    generation and hash labels."""
    template = copy.deepcopy((ds.get("spec") or {}).get("template") or {})
    template_meta = template.setdefault("metadata", {})
    spec = template.setdefault("spec", {})
    add_daemon_tolerations(spec)
    labels = template_meta.get("labels")
    if not isinstance(labels, dict):
        labels = {}
        template_meta["labels"] = labels
    generation = template_generation(ds)
    if generation is not None:
        labels[TEMPLATE_GENERATION_LABEL] = str(generation)
    if hash_value:
        labels[REVISION_HASH_LABEL] = hash_value
    return template


def pin_to_node(affinity: Any, node_name: str) -> dict[str, Any]:
    """util.ReplaceDaemonSetPodNodeNameNodeAffinity: the required node affinity becomes
    the single term `metadata.name In [node]` (the node already passed the rest), for
    the default scheduler to place the pod there."""
    term = {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node_name]}]}
    pinned = copy.deepcopy(affinity) if isinstance(affinity, dict) else {}
    node_affinity = pinned.get("nodeAffinity")
    if not isinstance(node_affinity, dict):
        node_affinity = {}
        pinned["nodeAffinity"] = node_affinity
    required = node_affinity.get("requiredDuringSchedulingIgnoredDuringExecution")
    if not isinstance(required, dict):
        required = {}
        node_affinity["requiredDuringSchedulingIgnoredDuringExecution"] = required
    required["nodeSelectorTerms"] = [term]
    return pinned


def daemon_pod(ds: Object, template: Object, node_name: str) -> Object:
    """A pod of `template` for one node, controlled by the set."""
    pod = pod_from_template(template, ds, controller_reference(ds, API_VERSION, KIND))
    pod["spec"]["affinity"] = pin_to_node(pod["spec"].get("affinity"), node_name)
    return pod


def _creation_order(a: Object, b: Object) -> int:
    """podByCreationTimestampAndPhase: bound pods first, then the oldest, then by name."""
    a_bound, b_bound = (
        bool((a.get("spec") or {}).get("nodeName")),
        bool((b.get("spec") or {}).get("nodeName")),
    )
    if a_bound != b_bound:
        return -1 if a_bound else 1
    a_time, b_time = (
        timestamp(meta(a).get("creationTimestamp")),
        timestamp(meta(b).get("creationTimestamp")),
    )
    if a_time != b_time and a_time is not None and b_time is not None:
        return -1 if a_time < b_time else 1
    a_name, b_name = str(meta(a).get("name", "")), str(meta(b).get("name", ""))
    return (a_name > b_name) - (a_name < b_name)


def by_creation(pods: list[Object]) -> list[Object]:
    return sorted(pods, key=functools.cmp_to_key(_creation_order))


def pods_by_node(pods: Iterable[Object]) -> dict[str, list[Object]]:
    """getNodesToDaemonPods: the set's pods grouped by their node, leaving out finished
    pods on their way out."""
    grouped: dict[str, list[Object]] = {}
    for pod in pods:
        phase = (pod.get("status") or {}).get("phase")
        if phase in ("Succeeded", "Failed") and meta(pod).get("deletionTimestamp"):
            continue
        node_name = target_node_name(pod)
        if node_name is None:
            continue
        grouped.setdefault(node_name, []).append(pod)
    return grouped


# -- decisions --------------------------------------------------------------------------


def allows_surge(ds: Object) -> bool:
    strategy = (ds.get("spec") or {}).get("updateStrategy") or {}
    if strategy.get("type") != "RollingUpdate":
        return False
    surge = (strategy.get("rollingUpdate") or {}).get("maxSurge")
    try:
        return surge is not None and scaled_value(surge, 100, round_up=True) != 0
    except ValueError:
        return False


def min_ready_seconds(ds: Object) -> int:
    value = (ds.get("spec") or {}).get("minReadySeconds")
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


@dataclass
class NodePlan:
    """What one sync of the set does about pods on nodes."""

    create_on: list[str] = field(default_factory=list)
    delete: list[str] = field(default_factory=list)
    # Failed pods to remove (subject to the per-node backoff), as (pod, node) pairs.
    failed: list[tuple[Object, str]] = field(default_factory=list)
    # Succeeded pods to remove, as (pod, node) pairs (for the event).
    succeeded: list[tuple[Object, str]] = field(default_factory=list)


def plan_node(
    ds: Object,
    node: Object,
    pods: list[Object] | None,
    hash_value: str,
    now: datetime,
    plan: NodePlan,
) -> None:
    """podsShouldBeOnNode for one node, added to `plan`."""
    should_run, should_continue = node_should_run(ds, node)
    node_name = str(meta(node).get("name", ""))
    if should_run and pods is None:
        plan.create_on.append(node_name)
        return
    if pods is None:
        return
    if not should_continue:
        plan.delete.extend(
            str(meta(p)["name"]) for p in pods if not meta(p).get("deletionTimestamp")
        )
        return
    running: list[Object] = []
    for pod in pods:
        if meta(pod).get("deletionTimestamp"):
            continue
        phase = (pod.get("status") or {}).get("phase")
        if phase == "Failed":
            plan.failed.append((pod, node_name))
        elif phase == "Succeeded":
            plan.succeeded.append((pod, node_name))
        else:
            running.append(pod)
    if not allows_surge(ds):
        plan.delete.extend(str(meta(p)["name"]) for p in by_creation(running)[1:])
        return
    if len(running) <= 1:
        if not running and should_run:
            # Surging keeps at least one pod that is not being deleted on the node.
            plan.create_on.append(node_name)
        return
    oldest_new: Object | None = None
    oldest_old: Object | None = None
    for pod in by_creation(running):
        if (meta(pod).get("labels") or {}).get(REVISION_HASH_LABEL) == hash_value:
            if oldest_new is None:
                oldest_new = pod
                continue
        elif oldest_old is None:
            oldest_old = pod
            continue
        plan.delete.append(str(meta(pod)["name"]))
    if (
        oldest_new is not None
        and oldest_old is not None
        and (not is_ready(oldest_old) or is_available(oldest_new, min_ready_seconds(ds), now))
    ):
        plan.delete.append(str(meta(oldest_old)["name"]))


def plan_nodes(
    ds: Object,
    nodes: list[Object],
    grouped: dict[str, list[Object]],
    hash_value: str,
    now: datetime,
) -> NodePlan:
    """manage: the pods to start on nodes and to delete, over every node, plus the
    unscheduled pods meant for nodes that no longer exist."""
    plan = NodePlan()
    for node in nodes:
        plan_node(ds, node, grouped.get(str(meta(node).get("name", ""))), hash_value, now, plan)
    known = {str(meta(node).get("name", "")) for node in nodes}
    for node_name, pods in grouped.items():
        if node_name in known:
            continue
        plan.delete.extend(
            str(meta(p)["name"]) for p in pods if not (p.get("spec") or {}).get("nodeName")
        )
    return plan


def rolling_update_limits(ds: Object, desired: int) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) scaled to the number of nodes that should run a pod;
    a set that allows neither gets one unavailable pod."""
    rolling = (((ds.get("spec") or {}).get("updateStrategy") or {}).get("rollingUpdate")) or {}
    try:
        max_unavailable = scaled_value(rolling.get("maxUnavailable", 1), desired, round_up=True)
        max_surge = (
            scaled_value(rolling.get("maxSurge", 0), desired, round_up=True)
            if allows_surge(ds)
            else 0
        )
    except ValueError:
        max_unavailable, max_surge = 1, 0
    if desired > 0 and max_unavailable == 0 and max_surge == 0:
        max_unavailable = 1
    return max_surge, max_unavailable


def _updated_and_old(
    pods: list[Object], hash_value: str, generation: int | None
) -> tuple[Object | None, Object | None, bool]:
    """findUpdatedPodsOnNode: the node's new and old pod, or False when it has more
    than one of either (the manage pass sorts that out first)."""
    new: Object | None = None
    old: Object | None = None
    for pod in pods:
        if meta(pod).get("deletionTimestamp"):
            continue
        if is_pod_updated(pod, hash_value, generation):
            if new is not None:
                return None, None, False
            new = pod
        else:
            if old is not None:
                return None, None, False
            old = pod
    return new, old, True


def plan_rolling_update(
    ds: Object,
    nodes: list[Object],
    grouped: dict[str, list[Object]],
    hash_value: str,
    now: datetime,
) -> tuple[list[str], list[str]]:
    """rollingUpdate: (old pods to delete, nodes to start a new pod on) this round."""
    candidates: dict[str, list[Object]] = dict(grouped)
    desired = 0
    for node in nodes:
        if node_should_run(ds, node)[0]:
            desired += 1
            candidates.setdefault(str(meta(node).get("name", "")), [])
    max_surge, max_unavailable = rolling_update_limits(ds, desired)
    generation = template_generation(ds)
    ready_seconds = min_ready_seconds(ds)
    if max_surge == 0:
        unavailable = 0
        replacements: list[str] = []
        deletable: list[str] = []
        for _node_name, pods in sorted(candidates.items()):
            new, old, ok = _updated_and_old(pods, hash_value, generation)
            if not ok or (new is None) == (old is None):
                unavailable += 1
            elif new is not None:
                if not is_available(new, ready_seconds, now):
                    unavailable += 1
            elif old is not None:
                if not is_available(old, ready_seconds, now):
                    replacements.append(str(meta(old)["name"]))
                elif unavailable < max_unavailable:
                    deletable.append(str(meta(old)["name"]))
        room = min(max(max_unavailable - unavailable, 0), len(deletable))
        return replacements + deletable[:room], []
    surging = 0
    allowed_new: list[str] = []
    candidate_new: list[str] = []
    old_to_delete: list[str] = []
    for node_name, pods in sorted(candidates.items()):
        new, old, ok = _updated_and_old(pods, hash_value, generation)
        if not ok or old is None:
            continue
        if new is None:
            if not is_available(old, ready_seconds, now):
                allowed_new.append(node_name)
            elif surging < max_surge:
                candidate_new.append(node_name)
        elif not is_available(new, ready_seconds, now):
            surging += 1
        else:
            old_to_delete.append(str(meta(old)["name"]))
    room = min(max(max_surge - surging, 0), len(candidate_new))
    return old_to_delete, allowed_new + candidate_new[:room]


def compute_status(
    ds: Object,
    nodes: list[Object],
    grouped: dict[str, list[Object]],
    hash_value: str,
    now: datetime,
) -> dict[str, int]:
    """updateDaemonSetStatus's counters."""
    desired = current = misscheduled = ready = updated = available = 0
    generation = template_generation(ds)
    ready_seconds = min_ready_seconds(ds)
    for node in nodes:
        should_run, _ = node_should_run(ds, node)
        pods = grouped.get(str(meta(node).get("name", ""))) or []
        if not should_run:
            if pods:
                misscheduled += 1
            continue
        desired += 1
        if not pods:
            continue
        current += 1
        pod = by_creation(pods)[0]
        if is_ready(pod):
            ready += 1
            if is_available(pod, ready_seconds, now):
                available += 1
        if is_pod_updated(pod, hash_value, generation):
            updated += 1
    return {
        "desiredNumberScheduled": desired,
        "currentNumberScheduled": current,
        "numberMisscheduled": misscheduled,
        "numberReady": ready,
        "updatedNumberScheduled": updated,
        "numberAvailable": available,
        "numberUnavailable": desired - available,
    }


def status_unchanged(ds: Object, counters: dict[str, int]) -> bool:
    status = ds.get("status") or {}
    observed = status.get("observedGeneration") or 0
    generation = meta(ds).get("generation") or 0
    return all((status.get(k) or 0) == v for k, v in counters.items()) and observed >= generation


def plan_history_cleanup(
    old_revisions: list[Object], live_hashes: set[str], history_limit: int
) -> list[Object]:
    """cleanupHistory: the oldest revisions beyond the limit that no pod runs."""
    excess = len(old_revisions) - history_limit
    doomed: list[Object] = []
    for revision in sorted(old_revisions, key=revision_number):
        if excess <= 0:
            break
        if (meta(revision).get("labels") or {}).get(REVISION_HASH_LABEL) in live_hashes:
            continue
        doomed.append(revision)
        excess -= 1
    return doomed


def daemonset_hash(ds: Object) -> str:
    collision = (ds.get("status") or {}).get("collisionCount")
    return hash_template(
        (ds.get("spec") or {}).get("template"), collision if isinstance(collision, int) else None
    )


# -- the controller ---------------------------------------------------------------------


class DaemonSetController(Controller):
    name: ClassVar[str] = COMPONENT

    def __init__(self, context: ControllerContext) -> None:
        self.client = context.client
        self.recorder = context.recorder(COMPONENT)
        self.clock = clock_option(context.options)
        self.daemonsets = context.informers.informer(DAEMONSETS)
        self.pods = context.informers.informer(PODS)
        self.nodes = context.informers.informer(NODES)
        self.revisions = context.informers.informer(CONTROLLERREVISIONS)
        super().__init__([self.daemonsets, self.pods, self.nodes, self.revisions])
        self.expectations = Expectations()
        self.failed_pods_backoff = FailureBackoff(
            FAILED_POD_BACKOFF_INITIAL, FAILED_POD_BACKOFF_MAX
        )
        self.daemonsets.add_handlers(
            on_add=self._enqueue,
            on_update=lambda old, new: self._enqueue(new),
            on_delete=self._enqueue,
        )
        self.pods.add_handlers(
            on_add=self._on_pod_add, on_update=self._on_pod_update, on_delete=self._on_pod_delete
        )
        self.nodes.add_handlers(
            on_add=self._on_node_add, on_update=self._on_node_update, on_delete=self._on_node_delete
        )
        self.revisions.add_handlers(
            on_add=self._on_revision,
            on_update=lambda old, new: self._on_revision(new),
            on_delete=self._on_revision,
        )

    # -- handlers: only keys ----------------------------------------------------------

    def _enqueue(self, ds: Object) -> None:
        self.queue.add(object_key(ds))

    def _owner(self, obj: Object) -> Object | None:
        return cached_controller(obj, KIND, self.daemonsets)

    def _selecting(self, pod: Object) -> list[Object]:
        namespace = meta(pod).get("namespace", "")
        labels = meta(pod).get("labels") or {}
        return [
            ds
            for ds in self.daemonsets.indexer.by_index("namespace", namespace)
            if selector_matches((ds.get("spec") or {}).get("selector"), labels)
        ]

    def _on_pod_add(self, pod: Object) -> None:
        if meta(pod).get("deletionTimestamp"):
            self._on_pod_delete(pod)
            return
        if controller_of(pod) is not None:
            ds = self._owner(pod)
            if ds is not None:
                self.expectations.creation_observed(object_key(ds))
                self._enqueue(ds)
            return
        for ds in self._selecting(pod):
            self._enqueue(ds)

    def _on_pod_update(self, old: Object, new: Object) -> None:
        if meta(new).get("deletionTimestamp"):
            self._on_pod_delete(new)
            return
        old_reference, new_reference = controller_of(old), controller_of(new)
        if old_reference != new_reference and old_reference is not None:
            previous = self._owner(old)
            if previous is not None:
                self._enqueue(previous)
        if new_reference is not None:
            ds = self._owner(new)
            if ds is None:
                return
            self._enqueue(ds)
            ready_seconds = min_ready_seconds(ds)
            if ready_seconds > 0 and not is_ready(old) and is_ready(new):
                self.queue.add_after(object_key(ds), self.clock.delay(ready_seconds + 1))
            return
        if meta(old).get("labels") != meta(new).get("labels") or old_reference != new_reference:
            for ds in self._selecting(new):
                self._enqueue(ds)

    def _on_pod_delete(self, pod: Object) -> None:
        ds = self._owner(pod)
        if ds is None:
            return
        self.expectations.deletion_observed(object_key(ds), object_key(pod))
        self._enqueue(ds)

    def _on_node_add(self, node: Object) -> None:
        for ds in self.daemonsets.all():
            if node_should_run(ds, node)[0]:
                self._enqueue(ds)

    def _on_node_update(self, old: Object, new: Object) -> None:
        if meta(old).get("labels") == meta(new).get("labels") and (old.get("spec") or {}).get(
            "taints"
        ) == (new.get("spec") or {}).get("taints"):
            return
        for ds in self.daemonsets.all():
            if node_should_run(ds, old) != node_should_run(ds, new):
                self._enqueue(ds)

    def _on_node_delete(self, node: Object) -> None:
        # Pods not yet scheduled to a node that is gone are the controller's to remove.
        node_name = meta(node).get("name")
        for pod in self.pods.all():
            if target_node_name(pod) == node_name and not (pod.get("spec") or {}).get("nodeName"):
                ds = self._owner(pod)
                if ds is not None:
                    self._enqueue(ds)

    def _on_revision(self, revision: Object) -> None:
        ds = self._owner(revision)
        if ds is not None:
            self._enqueue(ds)

    # -- sync -------------------------------------------------------------------------

    async def sync(self, key: str) -> None:
        shared = self.daemonsets.get(key)
        if shared is None:
            self.expectations.delete(key)
            return
        ds = with_kind(copy.deepcopy(shared), API_VERSION, KIND)
        nodes = self.nodes.all()
        if (ds.get("spec") or {}).get("selector") == {}:
            self.recorder.event(
                ds,
                "Warning",
                "SelectingAll",
                "This daemon set is selecting all pods. A non-empty selector is required.",
            )
            return
        if meta(ds).get("deletionTimestamp"):
            return
        current, old = await self._construct_history(ds)
        hash_value = str((meta(current).get("labels") or {}).get(REVISION_HASH_LABEL) or "")
        if not self.expectations.satisfied(key):
            await self._update_status(ds, nodes, hash_value, observe_generation=False)
            return
        requeue_after: float | None = None
        failure: Exception | None = None
        try:
            requeue_after = await self._manage(key, ds, nodes, hash_value)
            if self.expectations.satisfied(key) and self._strategy(ds) == "RollingUpdate":
                await self._rolling_update(key, ds, nodes, hash_value)
            await self._cleanup_history(ds, old)
        except Exception as error:
            failure = error
        status_after = await self._update_status(
            ds, nodes, hash_value, observe_generation=failure is None
        )
        if failure is not None:
            raise failure
        waits = [w for w in (requeue_after, status_after) if w is not None]
        if waits:
            raise Requeue(min(waits))

    @staticmethod
    def _strategy(ds: Object) -> str:
        return str(
            ((ds.get("spec") or {}).get("updateStrategy") or {}).get("type") or "RollingUpdate"
        )

    async def _claimed_pods(self, ds: Object) -> list[Object]:
        namespace = meta(ds).get("namespace", "")
        selector = (ds.get("spec") or {}).get("selector")
        manager = ControllerRefManager(
            self.client,
            PODS,
            ds,
            controller_reference(ds, API_VERSION, KIND),
            recheck_owner(self.client, DAEMONSETS, ds),
        )
        candidates = self.pods.indexer.by_index("namespace", namespace)
        return await manager.claim(
            candidates, lambda pod: selector_matches(selector, meta(pod).get("labels"))
        )

    async def _manage(
        self, key: str, ds: Object, nodes: list[Object], hash_value: str
    ) -> float | None:
        grouped = pods_by_node(await self._claimed_pods(ds))
        now = self.clock.now()
        plan = plan_nodes(ds, nodes, grouped, hash_value, now)
        requeue_after: float | None = None
        namespace = meta(ds).get("namespace", "")
        for pod, node_name in plan.failed:
            backoff_key = f"{meta(ds).get('uid')}/{(ds.get('status') or {}).get('observedGeneration') or 0}/{node_name}"
            if self.failed_pods_backoff.in_backoff(backoff_key, now):
                wait = self.clock.delay(self.failed_pods_backoff.delay(backoff_key))
                requeue_after = wait if requeue_after is None else min(requeue_after, wait)
                continue
            self.failed_pods_backoff.next(backoff_key, now)
            self.recorder.event(
                ds,
                "Warning",
                "FailedDaemonPod",
                f"Found failed daemon pod {namespace}/{meta(pod)['name']} on node {node_name}, will try to kill it",
            )
            plan.delete.append(str(meta(pod)["name"]))
        for pod, node_name in plan.succeeded:
            self.recorder.event(
                ds,
                "Normal",
                "SucceededDaemonPod",
                f"Found succeeded daemon pod {namespace}/{meta(pod)['name']} on node {node_name}, will try to delete it",
            )
            plan.delete.append(str(meta(pod)["name"]))
        await self._sync_nodes(key, ds, plan.delete, plan.create_on, hash_value)
        return requeue_after

    async def _rolling_update(
        self, key: str, ds: Object, nodes: list[Object], hash_value: str
    ) -> None:
        grouped = pods_by_node(await self._claimed_pods(ds))
        to_delete, to_create = plan_rolling_update(ds, nodes, grouped, hash_value, self.clock.now())
        await self._sync_nodes(key, ds, to_delete, to_create, hash_value)

    async def _sync_nodes(
        self,
        key: str,
        ds: Object,
        pods_to_delete: list[str],
        nodes_needing_pods: list[str],
        hash_value: str,
    ) -> None:
        """syncNodes: create and delete within the burst limit, expecting to see each."""
        create_on = nodes_needing_pods[:BURST_REPLICAS]
        delete = pods_to_delete[:BURST_REPLICAS]
        if not create_on and not delete:
            return
        namespace = str(meta(ds).get("namespace", ""))
        self.expectations.expect(key, len(create_on), [f"{namespace}/{name}" for name in delete])
        template = pod_template(ds, hash_value)
        errors: list[BaseException] = []

        async def create(index: int) -> None:
            pod = daemon_pod(ds, template, create_on[index])
            try:
                created = await self.client.create(PODS, pod, namespace)
            except Exception as error:
                if namespace_terminating(error):
                    return
                self.expectations.creation_observed(key)
                self.recorder.event(ds, "Warning", "FailedCreate", f"Error creating: {error}")
                raise
            self.recorder.event(
                ds, "Normal", "SuccessfulCreate", f"Created pod: {meta(created).get('name', '')}"
            )

        result = await in_slow_start_batches(len(create_on), create)
        errors.extend(result.errors)
        for _ in range(result.skipped):
            self.expectations.creation_observed(key)

        async def delete_pod(name: str) -> None:
            try:
                await self.client.delete(PODS, name, namespace)
            except StatusError as error:
                self.expectations.deletion_observed(key, f"{namespace}/{name}")
                if error.code == 404:
                    return
                self.recorder.event(ds, "Warning", "FailedDelete", f"Error deleting: {error}")
                raise
            self.recorder.event(ds, "Normal", "SuccessfulDelete", f"Deleted pod: {name}")

        for name in delete:
            try:
                await delete_pod(name)
            except Exception as error:
                errors.append(error)
        if errors:
            first = errors[0]
            raise first if isinstance(first, Exception) else RuntimeError(str(first))

    async def _update_status(
        self, ds: Object, nodes: list[Object], hash_value: str, *, observe_generation: bool
    ) -> float | None:
        grouped = pods_by_node(await self._claimed_pods(ds))
        counters = compute_status(ds, nodes, grouped, hash_value, self.clock.now())
        requeue_after: float | None = None
        ready_seconds = min_ready_seconds(ds)
        if ready_seconds > 0 and counters["numberReady"] != counters["numberAvailable"]:
            requeue_after = self.clock.delay(ready_seconds)
        if status_unchanged(ds, counters):
            return requeue_after
        target = ds
        for attempt in range(STATUS_UPDATE_RETRIES + 1):
            status = dict(target.get("status") or {})
            status.update(counters)
            if observe_generation:
                status["observedGeneration"] = meta(ds).get("generation") or 0
            updated = dict(target)
            updated["status"] = status
            try:
                await self.client.update_status(DAEMONSETS, updated)
                return requeue_after
            except StatusError:
                if attempt >= STATUS_UPDATE_RETRIES:
                    raise
                target = await self.client.get(
                    DAEMONSETS, str(meta(ds)["name"]), str(meta(ds).get("namespace", ""))
                )
        return requeue_after

    # -- history ------------------------------------------------------------------------

    async def _controlled_revisions(self, ds: Object) -> list[Object]:
        candidates = self.revisions.indexer.by_index("namespace", meta(ds).get("namespace", ""))
        return await claim_revisions(self.client, ds, DAEMONSETS, KIND, candidates)

    async def _construct_history(self, ds: Object) -> tuple[Object, list[Object]]:
        """constructHistory: the revision of the current template (made if missing, with
        the highest revision number) and every older one."""
        patch = template_patch(ds)
        current: list[Object] = []
        old: list[Object] = []
        for revision in await self._controlled_revisions(ds):
            labels = meta(revision).get("labels") or {}
            if REVISION_HASH_LABEL not in labels:
                labelled = copy.deepcopy(revision)
                labelled["metadata"].setdefault("labels", {})[REVISION_HASH_LABEL] = meta(revision)[
                    "name"
                ]
                revision = await self.client.update(CONTROLLERREVISIONS, labelled)
            (current if same_data(revision, patch) else old).append(revision)
        next_number = next_revision_number(old)
        if not current:
            return await self._snapshot(ds, next_number), old
        keep = max(current, key=revision_number)
        for duplicate in current:
            if duplicate is not keep:
                await self._dedup(ds, duplicate, keep)
        if revision_number(keep) < next_number:
            renumbered = copy.deepcopy(keep)
            renumbered["revision"] = next_number
            keep = await self.client.update(CONTROLLERREVISIONS, renumbered)
        return keep, old

    async def _dedup(self, ds: Object, duplicate: Object, keep: Object) -> None:
        """Pods of a duplicate of the current revision move to the kept one's hash."""
        duplicate_hash = (meta(duplicate).get("labels") or {}).get(REVISION_HASH_LABEL)
        keep_hash = (meta(keep).get("labels") or {}).get(REVISION_HASH_LABEL)
        for pod in await self._claimed_pods(ds):
            if (meta(pod).get("labels") or {}).get(REVISION_HASH_LABEL) == duplicate_hash:
                await self.client.patch(
                    PODS,
                    str(meta(pod)["name"]),
                    {"metadata": {"labels": {REVISION_HASH_LABEL: keep_hash}}},
                    str(meta(pod).get("namespace", "")),
                )
        await delete_revisions(self.client, [duplicate])

    async def _snapshot(self, ds: Object, number: int) -> Object:
        hash_value = daemonset_hash(ds)
        name = revision_name(str(meta(ds)["name"]), hash_value)
        revision = new_revision(
            ds,
            api_version=API_VERSION,
            kind=KIND,
            name=name,
            hash_value=hash_value,
            revision=number,
        )
        namespace = str(meta(ds).get("namespace", ""))
        try:
            return await create_revision(self.client, revision)
        except StatusError as error:
            if error.code != 409:
                raise
            # A different template hashed to the same name: bump the collision count
            # (unless another sync already did) and try again with a new hash.
            fresh = await self.client.get(DAEMONSETS, str(meta(ds)["name"]), namespace)
            seen = (ds.get("status") or {}).get("collisionCount")
            if (fresh.get("status") or {}).get("collisionCount") != seen:
                raise RuntimeError(
                    f"stale collision count of DaemonSet {namespace}/{meta(ds)['name']}"
                ) from error
            fresh.setdefault("status", {})["collisionCount"] = int(seen or 0) + 1
            await self.client.update_status(DAEMONSETS, fresh)
            raise

    async def _cleanup_history(self, ds: Object, old: list[Object]) -> None:
        limit = (ds.get("spec") or {}).get("revisionHistoryLimit")
        limit = limit if isinstance(limit, int) else 10
        if len(old) <= limit:
            return
        live = {
            str((meta(pod).get("labels") or {}).get(REVISION_HASH_LABEL))
            for pods in pods_by_node(await self._claimed_pods(ds)).values()
            for pod in pods
            if (meta(pod).get("labels") or {}).get(REVISION_HASH_LABEL)
        }
        await delete_revisions(self.client, plan_history_cleanup(old, live, limit))
