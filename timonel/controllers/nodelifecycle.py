"""The node lifecycle controller: notices nodes that stopped reporting and taints nodes by
their conditions (kube's pkg/controller/nodelifecycle).

Every `node_monitor_period` a monitor pass looks at each Node:
- its health is probed by its Ready condition's heartbeat and its Lease in
  kube-node-lease: a node neither renewed within `node_monitor_grace_period` (or, one
  that never reported, `node_startup_grace_period` after creation) gets Ready,
  MemoryPressure, DiskPressure and PIDPressure set to Unknown ("Kubelet stopped posting
  node status.");
- a node that turns not-ready gets a NodeNotReady event and its pods' Ready condition
  set to False;
- a node whose Ready is False or Unknown is queued for the `not-ready` or `unreachable`
  NoExecute taint (the taint eviction controller acts on those), rate limited per zone;
  a Ready node loses them;
- zones are watched for disruption: when every node of every zone is not ready the
  controller assumes its own connectivity is at fault, stops tainting and removes the
  NoExecute taints; a zone mostly down slows tainting (to nothing in small clusters).

On every Node change the NoSchedule taints that mirror conditions (not-ready,
unreachable, memory/disk/pid pressure, network-unavailable) are brought in line.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any, ClassVar

from timonel.api.errors import StatusError
from timonel.api.objects import Object
from timonel.client.resources import LEASES, NODES, PODS
from timonel.client.rest import MERGE_PATCH
from timonel.controllers.base import Controller, Requeue
from timonel.controllers.manager import ControllerContext
from timonel.controllers.nodeipam import node_reference
from timonel.controllers.pods import meta, timestamp
from timonel.kinds.core.pod import set_pod_condition

log = logging.getLogger(__name__)

NODE_LEASE_NAMESPACE = "kube-node-lease"
NOT_READY_TAINT = "node.kubernetes.io/not-ready"
UNREACHABLE_TAINT = "node.kubernetes.io/unreachable"
EXCLUDE_DISRUPTION_LABEL = "node.kubernetes.io/exclude-disruption"
NOT_READY_NO_EXECUTE = {"key": NOT_READY_TAINT, "effect": "NoExecute"}
UNREACHABLE_NO_EXECUTE = {"key": UNREACHABLE_TAINT, "effect": "NoExecute"}
# Conditions the controller sets to Unknown when a node stops reporting (not
# NetworkUnavailable: that one is the network provider's).
WATCHED_CONDITIONS = ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure")
CONDITION_TAINTS: dict[str, dict[str, str]] = {
    "Ready": {"False": NOT_READY_TAINT, "Unknown": UNREACHABLE_TAINT},
    "MemoryPressure": {"True": "node.kubernetes.io/memory-pressure"},
    "DiskPressure": {"True": "node.kubernetes.io/disk-pressure"},
    "NetworkUnavailable": {"True": "node.kubernetes.io/network-unavailable"},
    "PIDPressure": {"True": "node.kubernetes.io/pid-pressure"},
}
_CONDITION_TAINT_KEYS = {
    key for by_status in CONDITION_TAINTS.values() for key in by_status.values()
}
STATUS_UPDATE_RETRIES = 5
TAINT_UPDATE_RETRIES = 5

DEFAULTS: dict[str, float] = {
    "node_monitor_period": 5.0,
    "node_monitor_grace_period": 40.0,
    "node_startup_grace_period": 60.0,
    "node_eviction_rate": 0.1,
    "secondary_node_eviction_rate": 0.01,
    "large_cluster_size_threshold": 50,
    "unhealthy_zone_threshold": 0.55,
}


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# ======================================================================================
# pure decisions
# ======================================================================================


def zone_key(node: Object) -> str:
    """nodetopology.GetZoneKey: region and zone labels (stable or beta), "" for neither."""
    return zone_of_labels(meta(node).get("labels") or {})


def zone_of_labels(labels: dict[str, Any]) -> str:
    region = (
        labels.get("topology.kubernetes.io/region")
        or labels.get("failure-domain.beta.kubernetes.io/region")
        or ""
    )
    zone = (
        labels.get("topology.kubernetes.io/zone")
        or labels.get("failure-domain.beta.kubernetes.io/zone")
        or ""
    )
    if not region and not zone:
        return ""
    return f"{region}:\x00:{zone}"


def node_condition(node: Object, kind: str) -> dict[str, Any] | None:
    for condition in (node.get("status") or {}).get("conditions") or []:
        if isinstance(condition, dict) and condition.get("type") == kind:
            return condition
    return None


@dataclass
class NodeHealth:
    """What the controller last saw of a node: its Ready condition, when it last heard
    from it (`probe`), when Ready last changed, and the lease renewal it saw."""

    ready: dict[str, Any] | None
    probe: datetime
    ready_transition: datetime
    lease_renewed: datetime | None = None


@dataclass
class HealthAssessment:
    health: NodeHealth
    # The Ready condition the node posted (a made-up Unknown one when it never did).
    observed_ready: dict[str, Any]
    # The Ready condition once the controller's verdict is applied.
    current_ready: dict[str, Any] | None
    # The node's new status.conditions when they must be written.
    conditions: list[dict[str, Any]] | None
    grace_period: float


def assess_node_health(
    node: Object,
    saved: NodeHealth | None,
    lease_renewed: datetime | None,
    now: datetime,
    *,
    grace_period: float,
    startup_grace_period: float,
) -> HealthAssessment:
    """tryUpdateNodeHealth: has the node (or its lease) been heard from recently enough,
    and if not, the conditions that say so.

    Nothing is copied unless it changes: the conditions returned are the node's own
    (read-only, as the informer's objects are), and `saved` is never modified."""
    ready = node_condition(node, "Ready")
    health = saved
    if ready is None:
        created = _created(node, now)
        created_text = rfc3339(created)
        observed: dict[str, Any] = {
            "type": "Ready",
            "status": "Unknown",
            "lastHeartbeatTime": created_text,
            "lastTransitionTime": created_text,
        }
        grace = startup_grace_period
        # A node that never reported is timed from its creation.
        if health is not None:
            health = _copy_health(health)
            health.ready = None
        else:
            health = NodeHealth(None, probe=created, ready_transition=created)
    else:
        observed = ready
        grace = grace_period
    saved_ready = health.ready if health is not None else None
    saved_lease = health.lease_renewed if health is not None else None
    if health is None or (saved_ready is None and ready is not None):
        health = NodeHealth(ready, probe=now, ready_transition=now)
    elif (
        saved_ready is not None
        and ready is not None
        and (saved_ready.get("lastHeartbeatTime") != ready.get("lastHeartbeatTime"))
    ):
        transition = (
            now
            if saved_ready.get("lastTransitionTime") != ready.get("lastTransitionTime")
            else (health.ready_transition)
        )
        health = NodeHealth(ready, probe=now, ready_transition=transition)
    # A renewed lease is a heartbeat, whatever the node's status says.
    if lease_renewed is not None and (saved_lease is None or saved_lease < lease_renewed):
        if health is saved:
            health = _copy_health(health)
        health.lease_renewed = lease_renewed
        health.probe = now
    conditions: list[dict[str, Any]] | None = None
    current = ready
    # Only a Ready condition that is not Unknown yet changes: with Ready already Unknown
    # nothing is written, whatever the other conditions say.
    if now > health.probe + timedelta(seconds=grace) and (
        ready is None or ready.get("status") != "Unknown"
    ):
        created_text = rfc3339(_created(node, now))
        updated = [copy.deepcopy(c) for c in (node.get("status") or {}).get("conditions") or []]
        stamp = rfc3339(now)
        for kind in WATCHED_CONDITIONS:
            found = next(
                (c for c in updated if isinstance(c, dict) and c.get("type") == kind), None
            )
            if found is None:
                updated.append(
                    {
                        "type": kind,
                        "status": "Unknown",
                        "lastHeartbeatTime": created_text,
                        "lastTransitionTime": stamp,
                        "reason": "NodeStatusNeverUpdated",
                        "message": "Kubelet never posted node status.",
                    }
                )
            elif found.get("status") != "Unknown":
                found.update(
                    status="Unknown",
                    reason="NodeStatusUnknown",
                    message="Kubelet stopped posting node status.",
                    lastTransitionTime=stamp,
                )
        current = next(c for c in updated if isinstance(c, dict) and c.get("type") == "Ready")
        if current != observed:
            conditions = updated
            health = NodeHealth(
                current,
                probe=health.probe,
                ready_transition=now,
                lease_renewed=lease_renewed,
            )
    return HealthAssessment(health, observed, current, conditions, grace)


def _created(node: Object, now: datetime) -> datetime:
    return timestamp(meta(node).get("creationTimestamp")) or now


def _copy_health(health: NodeHealth) -> NodeHealth:
    return NodeHealth(health.ready, health.probe, health.ready_transition, health.lease_renewed)


class ZoneState(Enum):
    INITIAL = "Initial"
    NORMAL = "Normal"
    FULL_DISRUPTION = "FullDisruption"
    PARTIAL_DISRUPTION = "PartialDisruption"


def compute_zone_state(
    ready_conditions: list[dict[str, Any] | None], unhealthy_threshold: float
) -> tuple[int, ZoneState]:
    """ComputeZoneState: no ready node at all is a full disruption; more than two not
    ready and at least `unhealthy_threshold` of them a partial one."""
    ready = sum(1 for c in ready_conditions if c is not None and c.get("status") == "True")
    not_ready = len(ready_conditions) - ready
    if ready == 0 and not_ready > 0:
        return not_ready, ZoneState.FULL_DISRUPTION
    if not_ready > 2 and not_ready / (not_ready + ready) >= unhealthy_threshold:
        return not_ready, ZoneState.PARTIAL_DISRUPTION
    return not_ready, ZoneState.NORMAL


def matches_taint(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Taints are the same taint when key and effect agree."""
    return a.get("key") == b.get("key") and a.get("effect") == b.get("effect")


def has_taint(node: Object, taint: dict[str, Any]) -> bool:
    return any(matches_taint(t, taint) for t in (node.get("spec") or {}).get("taints") or [])


def no_execute_swap(
    node: Object, observed_status: Any
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]] | None:
    """processTaintBasedEvictions' immediate taint change, as (add, remove): a node
    holding the NoExecute taint of the other not-ready state gets the right one, a ready
    node loses both; None when its taints already fit."""
    if not (node.get("spec") or {}).get("taints"):
        return None
    if observed_status == "False" and has_taint(node, UNREACHABLE_NO_EXECUTE):
        return [NOT_READY_NO_EXECUTE], [UNREACHABLE_NO_EXECUTE]
    if observed_status == "Unknown" and has_taint(node, NOT_READY_NO_EXECUTE):
        return [UNREACHABLE_NO_EXECUTE], [NOT_READY_NO_EXECUTE]
    if observed_status == "True":
        present = [t for t in (UNREACHABLE_NO_EXECUTE, NOT_READY_NO_EXECUTE) if has_taint(node, t)]
        if present:
            return [], present
    return None


def condition_taints(node: Object) -> list[dict[str, str]]:
    """The NoSchedule taints the node's conditions call for."""
    taints = []
    for condition in (node.get("status") or {}).get("conditions") or []:
        key = CONDITION_TAINTS.get(condition.get("type", ""), {}).get(condition.get("status", ""))
        if key:
            taints.append({"key": key, "effect": "NoSchedule"})
    return taints


def condition_taint_changes(node: Object) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """doNoScheduleTaintingPass: the condition taints to add and to remove."""
    wanted = condition_taints(node)
    present = [
        t
        for t in (node.get("spec") or {}).get("taints") or []
        if t.get("effect") == "NoSchedule" and t.get("key") in _CONDITION_TAINT_KEYS
    ]
    to_add = [t for t in wanted if not any(matches_taint(t, p) for p in present)]
    to_remove = [p for p in present if not any(matches_taint(p, t) for t in wanted)]
    return to_add, to_remove


def swap_taints(
    taints: list[dict[str, Any]],
    add: list[dict[str, Any]],
    remove: list[dict[str, Any]],
    now: datetime,
) -> list[dict[str, Any]] | None:
    """SwapNodeControllerTaint: the node's taints with `add` added (NoExecute ones stamped
    with the time) and `remove` removed; None when nothing changes."""
    result = [copy.deepcopy(t) for t in taints]
    changed = False
    for taint in add:
        wanted = dict(taint)
        if wanted.get("effect") == "NoExecute":
            wanted["timeAdded"] = rfc3339(now)
        index = next((i for i, t in enumerate(result) if matches_taint(t, wanted)), None)
        if index is None:
            result.append(wanted)
            changed = True
        elif result[index] != wanted:
            result[index] = wanted
            changed = True
    kept = [t for t in result if not any(matches_taint(t, r) for r in remove)]
    if len(kept) != len(result):
        changed = True
    return kept if changed else None


class TokenBucket:
    """A token bucket of capacity one (the eviction limiter): `qps` tokens a second."""

    def __init__(self, qps: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.qps = qps
        self._clock = clock
        self._tokens = 1.0
        self._last = clock()

    def try_accept(self) -> bool:
        if self.qps <= 0:
            return False
        now = self._clock()
        self._tokens = min(1.0, self._tokens + (now - self._last) * self.qps)
        self._last = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False


class TaintQueue:
    """Nodes waiting for a NoExecute taint in one zone (kube's RateLimitedTimedQueue over a
    UniqueQueue): a node stays a member once handled, so it is not queued again until it
    is removed (when it is reachable again)."""

    def __init__(self, qps: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.limiter = TokenBucket(qps, clock)
        self.pending: list[str] = []
        self.members: set[str] = set()

    def add(self, name: str) -> bool:
        if name in self.members:
            return False
        self.members.add(name)
        self.pending.append(name)
        return True

    def remove(self, name: str) -> bool:
        if name not in self.members:
            return False  # pending only ever holds members
        self.members.discard(name)
        if name in self.pending:
            self.pending.remove(name)
        return True

    def swap_limiter(self, qps: float) -> None:
        if qps == self.limiter.qps:
            return
        fresh = TokenBucket(qps, self._clock)
        if qps > 0 and not self.limiter.try_accept():
            fresh.try_accept()
        self.limiter = fresh


# ======================================================================================
# the controller
# ======================================================================================


@dataclass
class _Pass:
    """What one monitor pass learns."""

    zone_conditions: dict[str, list[dict[str, Any] | None]] = field(default_factory=dict)


MONITOR = "monitor"


def _first(pair: tuple[str, Object]) -> str:
    return pair[0]


def _option(options: dict[str, object], name: str) -> float:
    value = options.get(name, DEFAULTS[name])
    return float(value) if isinstance(value, (int, float, str)) else DEFAULTS[name]


class NodeLifecycleController(Controller):
    name: ClassVar[str] = "node-lifecycle-controller"
    workers = 2

    def __init__(
        self, context: ControllerContext, *, clock: Callable[[], datetime] | None = None
    ) -> None:
        self.client = context.client
        self.nodes = context.informers.informer(NODES)
        # The shared informer of every Lease (as kube-controller-manager's): the garbage
        # collector watches it too, so each renewal is delivered once, not twice.
        self.leases = context.informers.informer(LEASES)
        self.pods = context.informers.informer(PODS)
        super().__init__([self.nodes, self.leases, self.pods])
        self.pods.indexer.add_index(
            "nodeName", lambda pod: [(pod.get("spec") or {}).get("nodeName") or ""]
        )
        self.recorder = context.recorder("node-controller")
        self.now = clock or (lambda: datetime.now(UTC))
        options = context.options
        self.monitor_period = _option(options, "node_monitor_period")
        self.grace_period = _option(options, "node_monitor_grace_period")
        self.startup_grace_period = _option(options, "node_startup_grace_period")
        self.eviction_rate = _option(options, "node_eviction_rate")
        self.secondary_eviction_rate = _option(options, "secondary_node_eviction_rate")
        self.large_cluster_threshold = int(_option(options, "large_cluster_size_threshold"))
        self.unhealthy_zone_threshold = _option(options, "unhealthy_zone_threshold")
        self.health: dict[str, NodeHealth] = {}
        self.known: dict[str, Object] = {}
        self.zone_states: dict[str, ZoneState] = {}
        self.taint_queues: dict[str, TaintQueue] = {}
        self.retry_pods_not_ready: set[str] = set()
        self.nodes.add_handlers(
            on_add=self._node_changed, on_update=lambda _, new: self._node_changed(new)
        )
        self.pods.add_handlers(
            on_add=lambda pod: self._pod_changed(None, pod), on_update=self._pod_changed
        )
        self.queue.add(MONITOR)

    # -- handlers -----------------------------------------------------------------------

    def _node_changed(self, node: Object) -> None:
        self.queue.add(f"node:{meta(node).get('name', '')}")

    def _pod_changed(self, old: Object | None, new: Object) -> None:
        node_name = (new.get("spec") or {}).get("nodeName")
        if node_name and (old is None or (old.get("spec") or {}).get("nodeName") != node_name):
            self.queue.add(f"pod:{meta(new).get('namespace', '')}/{meta(new).get('name', '')}")

    async def sync(self, key: str) -> None:
        if key == MONITOR:
            try:
                await self.monitor()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("node health monitoring failed")
            raise Requeue(after=self.monitor_period)
        kind, _, rest = key.partition(":")
        if kind == "node":
            await self.sync_condition_taints(rest)
        elif kind == "pod":
            await self.sync_pod(rest)

    # -- NoSchedule taints --------------------------------------------------------------

    async def sync_condition_taints(self, name: str) -> None:
        node = self.nodes.get(name)
        if node is None:
            return
        to_add, to_remove = condition_taint_changes(node)
        if (to_add or to_remove) and not await self.swap_taints(name, to_add, to_remove):
            raise RuntimeError(f"failed to swap taints of node {name}")

    # -- pods on not-ready nodes --------------------------------------------------------

    async def sync_pod(self, key: str) -> None:
        pod = self.pods.get(key)
        if pod is None:
            return
        node_name = (pod.get("spec") or {}).get("nodeName") or ""
        health = self.health.get(node_name)
        if health is None or health.ready is None or self.nodes.get(node_name) is None:
            return
        if health.ready.get("status") != "True":
            await self.mark_pods_not_ready([pod], node_name)

    async def mark_pods_not_ready(self, pods: list[Object], node_name: str) -> None:
        """MarkPodsNotReady: each pod's Ready condition goes False, with a Warning event."""
        failures: list[StatusError] = []
        for original in pods:
            if (original.get("spec") or {}).get("nodeName") != node_name:
                continue
            pod = copy.deepcopy(original)
            ready = next(
                (
                    c
                    for c in (pod.get("status") or {}).get("conditions") or []
                    if c.get("type") == "Ready"
                ),
                None,
            )
            if ready is None:
                continue
            if not set_pod_condition(pod, {**ready, "status": "False"}, now=rfc3339(self.now())):
                continue
            try:
                await self.client.update_status(PODS, pod)
            except StatusError as error:
                if error.code == 404:
                    continue
                failures.append(error)
                continue
            self.recorder.event(pod, "Warning", "NodeNotReady", "Node is not ready")
        if failures:
            raise failures[0]

    # -- the monitor pass ---------------------------------------------------------------

    async def monitor(self) -> None:
        named = sorted(((meta(n).get("name", ""), n) for n in self.nodes.all()), key=_first)
        nodes = [node for _, node in named]
        names = {name for name, _ in named}
        for name, node in named:
            if name not in self.known:
                self.known[name] = node
                self.recorder.event(
                    node_reference(node),
                    "Normal",
                    "RegisteredNode",
                    f"Node {name} event: Registered Node {name} in Controller",
                )
                self._zone_queue(zone_key(node))
                await self.mark_reachable(node)
        for name in [n for n in self.known if n not in names]:
            gone = self.known.pop(name)
            self.recorder.event(
                node_reference(gone),
                "Normal",
                "RemovingNode",
                f"Node {name} event: Removing Node {name} from Controller",
            )
            self.health.pop(name, None)
            self._zone_queue(zone_key(gone)).remove(name)
        monitor_pass = _Pass()
        for name, node in named:
            try:
                # Read only (the decisions are pure; writes copy first). Most nodes need
                # no API call: they are settled here without a coroutine of their own.
                assessment = self._assess(name, node)
                if not self._settle_without_writes(name, node, assessment, monitor_pass):
                    await self._monitor_node(node, assessment, monitor_pass)
            except Exception as error:
                log.warning("node %s health update failed: %s", name, error)
        await self.handle_disruption(monitor_pass.zone_conditions, nodes)
        await self.taint_pass()

    def _assess(self, name: str, node: Object) -> HealthAssessment:
        """The node's health as its Ready condition and Lease tell it now."""
        lease = self.leases.get(f"{NODE_LEASE_NAMESPACE}/{name}")
        renewed = timestamp(((lease or {}).get("spec") or {}).get("renewTime"))
        return assess_node_health(
            node,
            self.health.get(name),
            renewed,
            self.now(),
            grace_period=self.grace_period,
            startup_grace_period=self.startup_grace_period,
        )

    def _settle_without_writes(
        self, name: str, node: Object, assessment: HealthAssessment, monitor_pass: _Pass
    ) -> bool:
        """Finish monitoring the node when that takes no API call (no condition to
        write, no NoExecute taint to swap, no pod to mark): what `_monitor_node` would
        do, without awaiting. False, having changed nothing, when a call is needed."""
        if assessment.conditions is not None:
            return False
        current, observed = assessment.current_ready, assessment.observed_ready
        status = observed.get("status")
        if current is not None:
            if no_execute_swap(node, status) is not None:
                return False
            if current.get("status") != "True" and (
                status == "True" or name in self.retry_pods_not_ready
            ):
                return False
        self.health[name] = assessment.health
        labels = meta(node).get("labels") or {}
        zone = zone_of_labels(labels)
        if EXCLUDE_DISRUPTION_LABEL not in labels:
            monitor_pass.zone_conditions.setdefault(zone, []).append(current)
        if current is not None:
            self._queue_for_eviction(self._zone_queue(zone), name, node, status)
        self.retry_pods_not_ready.discard(name)
        return True

    async def _monitor_node(
        self, node: Object, assessment: HealthAssessment, monitor_pass: _Pass
    ) -> None:
        name = meta(node).get("name", "")
        written = await self._update_health(node, assessment)
        if written is None:
            return
        assessment = written
        if EXCLUDE_DISRUPTION_LABEL not in (meta(node).get("labels") or {}):
            monitor_pass.zone_conditions.setdefault(zone_key(node), []).append(
                assessment.current_ready
            )
        current, observed = assessment.current_ready, assessment.observed_ready
        if current is None:
            self.retry_pods_not_ready.discard(name)
            return
        await self.process_taint_based_eviction(node, observed)
        needs_retry = name in self.retry_pods_not_ready
        went_not_ready = current.get("status") != "True" and observed.get("status") == "True"
        if went_not_ready:
            self.recorder.event(
                node_reference(node),
                "Normal",
                "NodeNotReady",
                f"Node {name} status is now: NodeNotReady",
            )
        if went_not_ready or (needs_retry and current.get("status") != "True"):
            try:
                await self.mark_pods_not_ready(self.pods.indexer.by_index("nodeName", name), name)
            except StatusError as error:
                log.info("unable to mark all pods NotReady on node %s: %s; will retry", name, error)
                self.retry_pods_not_ready.add(name)
                return
        self.retry_pods_not_ready.discard(name)

    async def _update_health(
        self, node: Object, assessment: HealthAssessment
    ) -> HealthAssessment | None:
        """Record the assessment, writing the node's conditions first when it changes
        them (re-reading and re-assessing on a failed write); None when the node is gone
        or the write kept failing."""
        name = meta(node).get("name", "")
        for attempt in range(STATUS_UPDATE_RETRIES):
            if attempt > 0:
                assessment = self._assess(name, node)
            if assessment.conditions is None:
                self.health[name] = assessment.health
                return assessment
            updated = copy.deepcopy(node)
            updated.setdefault("status", {})["conditions"] = assessment.conditions
            try:
                await self.client.update_status(NODES, updated)
            except StatusError as error:
                if error.code == 404:
                    return None
                node = await self.client.get(NODES, name)
                continue
            self.health[name] = assessment.health
            return assessment
        return None

    # -- NoExecute taints ---------------------------------------------------------------

    def _zone_queue(self, zone: str) -> TaintQueue:
        """The zone's taint queue; a zone seen for the first time (again) starts afresh."""
        if zone not in self.zone_states or zone not in self.taint_queues:
            self.zone_states[zone] = ZoneState.INITIAL
            self.taint_queues[zone] = TaintQueue(self.eviction_rate)
        return self.taint_queues[zone]

    async def process_taint_based_eviction(
        self, node: Object, observed_ready: dict[str, Any]
    ) -> None:
        name = meta(node).get("name", "")
        status = observed_ready.get("status")
        queue = self._zone_queue(zone_key(node))
        swap = no_execute_swap(node, status)
        if swap is not None:
            await self.swap_taints(name, *swap)
        self._queue_for_eviction(queue, name, node, status)

    @staticmethod
    def _queue_for_eviction(queue: TaintQueue, name: str, node: Object, status: Any) -> None:
        """The zone queue's side of processTaintBasedEvictions: a not-ready node without
        the other NoExecute taint waits for its taint (queued afresh when it lacks it);
        a ready one leaves the queue."""
        if status == "False":
            if not has_taint(node, UNREACHABLE_NO_EXECUTE):
                if not has_taint(node, NOT_READY_NO_EXECUTE):
                    queue.remove(name)
                queue.add(name)
        elif status == "Unknown":
            if not has_taint(node, NOT_READY_NO_EXECUTE):
                if not has_taint(node, UNREACHABLE_NO_EXECUTE):
                    queue.remove(name)
                queue.add(name)
        elif status == "True":
            queue.remove(name)

    async def mark_reachable(self, node: Object) -> None:
        name = meta(node).get("name", "")
        present = [t for t in (UNREACHABLE_NO_EXECUTE, NOT_READY_NO_EXECUTE) if has_taint(node, t)]
        if present:
            await self.swap_taints(name, [], present)
        self._zone_queue(zone_key(node)).remove(name)

    async def taint_pass(self) -> None:
        """doNoExecuteTaintingPass: taint queued nodes, as fast as each zone's limiter lets."""
        for queue in self.taint_queues.values():
            for name in list(queue.pending):
                if not queue.limiter.try_accept():
                    break
                node = self.nodes.get(name)
                if node is None:
                    queue.pending.remove(name)
                    continue
                ready = node_condition(node, "Ready")
                if ready is None:
                    continue
                if ready.get("status") == "False":
                    add, opposite = NOT_READY_NO_EXECUTE, UNREACHABLE_NO_EXECUTE
                elif ready.get("status") == "Unknown":
                    add, opposite = UNREACHABLE_NO_EXECUTE, NOT_READY_NO_EXECUTE
                else:
                    queue.pending.remove(name)
                    continue
                if await self.swap_taints(name, [add], [opposite]):
                    queue.pending.remove(name)

    async def swap_taints(
        self, name: str, add: list[dict[str, Any]], remove: list[dict[str, Any]]
    ) -> bool:
        """Change a node's taints under optimistic concurrency (a fresh read after a
        conflict); False when it could not be done."""
        node = self.nodes.get(name)
        for attempt in range(TAINT_UPDATE_RETRIES):
            if node is None or attempt > 0:
                try:
                    node = await self.client.get(NODES, name)
                except StatusError:
                    return False
            taints = swap_taints(
                list((node.get("spec") or {}).get("taints") or []), add, remove, self.now()
            )
            if taints is None:
                return True
            patch = {
                "metadata": {"resourceVersion": meta(node).get("resourceVersion", "")},
                "spec": {"taints": taints or None},
            }
            try:
                await self.client.patch(NODES, name, patch, patch_type=MERGE_PATCH)
                return True
            except StatusError as error:
                if error.code != 409:
                    log.info("could not update taints of node %s: %s", name, error.message)
                    return False
        return False

    # -- disruption ---------------------------------------------------------------------

    def _zone_rate(self, zone_size: int, state: ZoneState) -> float:
        if state is ZoneState.PARTIAL_DISRUPTION:
            return self.secondary_eviction_rate if zone_size > self.large_cluster_threshold else 0.0
        return self.eviction_rate

    async def handle_disruption(
        self, zone_conditions: dict[str, list[dict[str, Any] | None]], nodes: list[Object]
    ) -> None:
        new_states: dict[str, ZoneState] = {}
        all_fully_disrupted = True
        for zone, conditions in zone_conditions.items():
            _, state = compute_zone_state(conditions, self.unhealthy_zone_threshold)
            if state is not ZoneState.FULL_DISRUPTION:
                all_fully_disrupted = False
            new_states[zone] = state
            self._zone_queue(zone)
        all_were_fully_disrupted = True
        for zone in list(self.zone_states):
            if zone not in zone_conditions:
                del self.zone_states[zone]
                continue
            if self.zone_states[zone] is not ZoneState.FULL_DISRUPTION:
                all_were_fully_disrupted = False
                break
        if all_fully_disrupted and all_were_fully_disrupted:
            return
        if all_fully_disrupted:
            log.info("every node is not ready: entering master disruption mode")
            for node in nodes:
                await self.mark_reachable(node)
            for zone in self.zone_states:
                self._zone_queue(zone).swap_limiter(0)
                self.zone_states[zone] = ZoneState.FULL_DISRUPTION
            return
        if all_were_fully_disrupted:
            log.info("some nodes are ready: exiting master disruption mode")
            now = self.now()
            for node in nodes:
                health = self.health.get(meta(node).get("name", ""))
                if health is not None:
                    health.probe = now
                    health.ready_transition = now
            for zone in self.zone_states:
                state = new_states.get(zone, ZoneState.NORMAL)
                self._zone_queue(zone).swap_limiter(
                    self._zone_rate(len(zone_conditions.get(zone, [])), state)
                )
                self.zone_states[zone] = state
            return
        for zone, previous in list(self.zone_states.items()):
            state = new_states.get(zone, previous)
            if state is previous:
                continue
            log.info("zone %r is now in state %s", zone, state.value)
            self._zone_queue(zone).swap_limiter(
                self._zone_rate(len(zone_conditions.get(zone, [])), state)
            )
            self.zone_states[zone] = state
