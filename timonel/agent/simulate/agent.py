"""`timonel agent --simulate N`: N simulated nodes in one process, for scale tests and for
testing controllers and the scheduler without containers (kwok's idea).

What a simulated node does, as a kubelet would:

- *registers* its Node (status included; an existing Node is reconciled instead);
- *heartbeats*: renews its Lease in kube-node-lease every heartbeat period (10 s), the
  nodes spread evenly over the period so that renewals arrive as a steady stream, at most
  `heartbeatConcurrency` requests in flight on connections of their own; the same tick
  writes the node's status when it is due (every 5 min) or when someone changed the
  conditions the kubelet owns. Heartbeats come first: while some wait for a slot, only
  a quarter of the pod workers go on, so a busy server delays pods, not leases;
- *plays its pods' lifecycles* from the stage table (stages.py) in kwok's pipeline: one
  informer over every bound pod (`spec.nodeName!=`), filtered to our nodes → a work
  queue keyed by pod → `sync_pod(key)` matches a stage and, once the stage's delay has
  passed, plays it (a status write through pods/<name>/status, or a delete with
  gracePeriodSeconds=0) → failures retried with per-pod exponential backoff, at most
  `concurrency` requests in flight. After a write, the pod is matched again only once
  the watch shows a newer version of it.

Failure injection: the file `<data-dir>/paused-nodes` names paused nodes, one name or
shell pattern (`sim-1*`) per line. It is read within half a second of any change. A
paused node behaves like a dead kubelet: its Lease and status stop being renewed and its
pods' stages stop playing (terminating pods stay terminating). Removing the line resumes
the node at once (heartbeat first, then its pods).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import os
import random
import signal
import ssl
import time
from collections import Counter
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import aiohttp

from timonel.agent.join import (
    JoinError,
    UntrustedServer,
    check_cluster_ca,
    fetch_cluster_ca,
    trusting,
)
from timonel.agent.simulate.config import SimulateConfig
from timonel.agent.simulate.nodes import (
    NODE_LEASE_NAMESPACE,
    IPExhausted,
    PodIPAllocator,
    fallback_pod_cidr,
    heartbeat_patch,
    missing_labels,
    needs_status_report,
    node_ip,
    node_labels,
    node_names,
    paused_nodes,
    registration_status_patch,
    render_node,
    renewed_lease,
)
from timonel.agent.simulate.stages import (
    StatusContext,
    match_stage,
    play_stage,
    stage_delay,
)
from timonel.api.errors import StatusError
from timonel.api.objects import Object, now_rfc3339, object_key
from timonel.client.informer import Informer, strip_managed_fields
from timonel.client.resources import LEASES, NODES, PODS
from timonel.client.rest import MERGE_PATCH, STRATEGIC_MERGE_PATCH, ApiClient
from timonel.client.transport import HttpsTransport
from timonel.client.workqueue import WorkQueue

log = logging.getLogger(__name__)

PAUSED_NODES_FILE: Final = "paused-nodes"
USER_AGENT: Final = "kubelet/v1.32.0-timonel-sim (linux/amd64) timonel"
FIELD_MANAGER: Final = "kubelet"
_PAUSE_POLL_SECONDS: Final = 0.5
_STATS_PERIOD_SECONDS: Final = 30.0


def _micro_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _meta(obj: Object) -> dict[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, dict) else {}


def _spec(obj: Object) -> dict[str, Any]:
    spec = obj.get("spec")
    return spec if isinstance(spec, dict) else {}


def _status(obj: Object) -> dict[str, Any]:
    status = obj.get("status")
    return status if isinstance(status, dict) else {}


def _is_terminal(pod: Object) -> bool:
    return _status(pod).get("phase") in ("Succeeded", "Failed")


@dataclass(frozen=True)
class _Planned:
    stage: str
    due: float


@dataclass
class SimulatedNodes:
    """The simulated nodes of one agent; `run()` until cancelled. Heartbeats go through
    `heartbeat_client` when given, so that they have connections of their own."""

    client: ApiClient
    names: list[str]
    config: SimulateConfig = field(default_factory=SimulateConfig)
    paused_file: Path | None = None
    rng: random.Random = field(default_factory=random.Random)
    heartbeat_client: ApiClient | None = None

    def __post_init__(self) -> None:
        self._index = {name: i for i, name in enumerate(self.names)}
        self._ips = {name: node_ip(i, self.config.node_ip_range) for name, i in self._index.items()}
        # Thousands of nodes and their pods: managedFields would be half of what is held.
        self.nodes = Informer(self.client, NODES, transform=strip_managed_fields)
        self.pods = Informer(
            self.client, PODS, field_selector="spec.nodeName!=", transform=strip_managed_fields
        )
        self.pods.indexer.add_index("node", lambda pod: [str(_spec(pod).get("nodeName", ""))])
        self.pods.add_handlers(
            on_add=self._on_pod,
            on_update=lambda _old, new: self._on_pod(new),
            on_delete=self._on_pod_deleted,
        )
        self.queue = WorkQueue(base_delay=0.05, max_delay=10.0)
        self.stats: Counter[str] = Counter()
        self.paused: frozenset[str] = frozenset()
        self._pending: dict[str, _Planned] = {}
        self._played: dict[str, str] = {}
        self._allocators: dict[str, PodIPAllocator] = {}
        self._allocation_of: dict[str, PodIPAllocator] = {}
        self._leases: dict[str, Object] = {}
        self._last_report: dict[str, float] = {}
        self._gone: set[str] = set()
        self._due: dict[str, float] = {}
        self._heap: list[tuple[float, int, str]] = []
        self._wake = asyncio.Event()
        self._in_flight: set[str] = set()
        self._background: set[asyncio.Task[None]] = set()
        self._beats = self.heartbeat_client or self.client
        self._heartbeat_slots = asyncio.Semaphore(self.config.heartbeat_concurrency)
        self._heartbeats_waiting = 0
        self._heartbeats_on_time = asyncio.Event()
        self._heartbeats_on_time.set()

    # -- life cycle -------------------------------------------------------------------------

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        await self._register_all()
        log.info(
            "registered %d simulated nodes (%s .. %s) in %.1f s",
            len(self.names),
            self.names[0] if self.names else "-",
            self.names[-1] if self.names else "-",
            loop.time() - started,
        )
        tasks: list[asyncio.Task[None]] = []
        try:
            tasks.append(asyncio.create_task(self.nodes.run(), name="simulate-nodes-informer"))
            await self.nodes.synced.wait()
            self._read_paused()
            tasks.append(asyncio.create_task(self.pods.run(), name="simulate-pods-informer"))
            tasks.append(asyncio.create_task(self._heartbeat_loop(), name="simulate-heartbeats"))
            tasks.append(asyncio.create_task(self._watch_paused_file(), name="simulate-paused"))
            tasks.append(asyncio.create_task(self._log_stats(), name="simulate-stats"))
            tasks += [
                asyncio.create_task(
                    self._pod_worker(always_runs=i < max(1, self.config.concurrency // 4)),
                    name=f"simulate-pod-worker-{i}",
                )
                for i in range(self.config.concurrency)
            ]
            await asyncio.gather(*tasks)
        finally:
            self.queue.shutdown()
            for task in [*tasks, *self._background]:
                task.cancel()
            await asyncio.gather(*tasks, *self._background, return_exceptions=True)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # -- registration -----------------------------------------------------------------------

    async def _register_all(self) -> None:
        slots = asyncio.Semaphore(self.config.concurrency)

        async def register(name: str) -> None:
            async with slots:
                await self._register(name)

        await asyncio.gather(*(register(name) for name in self.names))

    async def _register(self, name: str) -> None:
        """Create the Node, or reconcile an existing one, retrying until the server takes it."""
        backoff = 0.2
        while True:
            try:
                await self._register_once(name)
                self._last_report[name] = asyncio.get_running_loop().time()
                return
            except (StatusError, aiohttp.ClientError, OSError, TimeoutError) as exc:
                log.warning(
                    "registering node %s failed: %s; retrying in %.1f s", name, exc, backoff
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 7.0)

    async def _register_once(self, name: str) -> None:
        ip = self._ips[name]
        node = render_node(name, ip=ip, template=self.config.node, now=now_rfc3339())
        try:
            await self.client.create(NODES, node)
            return
        except StatusError as exc:
            if exc.code != 409:
                raise
        # Registered before (a restart): bring labels and status to what we report now.
        existing = await self.client.get(NODES, name)
        labels = missing_labels(existing, node_labels(name, self.config.node.labels))
        if labels:
            await self.client.patch(
                NODES, name, {"metadata": {"labels": labels}}, patch_type=MERGE_PATCH
            )
        await self.client.patch(
            NODES,
            name,
            registration_status_patch(
                existing, ip=ip, template=self.config.node, now=now_rfc3339()
            ),
            subresource="status",
            patch_type=STRATEGIC_MERGE_PATCH,
        )

    # -- heartbeats -------------------------------------------------------------------------

    async def _heartbeat_loop(self) -> None:
        loop = asyncio.get_running_loop()
        period = self.config.heartbeat_period
        start = loop.time()
        count = max(1, len(self.names))
        for index, name in enumerate(self.names):
            due = start + period * index / count
            self._due[name] = due
            self._heap.append((due, index, name))
        heapq.heapify(self._heap)
        while self._heap:
            due, index, name = self._heap[0]
            now = loop.time()
            if due > now:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), due - now)
                continue
            heapq.heappop(self._heap)
            if self._due.get(name) != due:
                continue  # superseded by an earlier heartbeat (a resumed node)
            following = due + period if due + period > now else now + period
            self._due[name] = following
            heapq.heappush(self._heap, (following, index, name))
            if name in self.paused or name in self._in_flight or name in self._gone:
                continue
            self._in_flight.add(name)
            self._spawn(self._heartbeat(name))

    def _heartbeat_now(self, name: str) -> None:
        now = asyncio.get_running_loop().time()
        self._due[name] = now
        heapq.heappush(self._heap, (now, self._index[name], name))
        self._wake.set()

    async def _heartbeat(self, name: str) -> None:
        waiting = True
        self._heartbeats_waiting += 1
        self._heartbeats_on_time.clear()
        try:
            async with self._heartbeat_slots:
                waiting = False
                self._heartbeat_started()
                if name in self.paused:
                    return
                node = self.nodes.get(name)
                if node is None:
                    self._gone.add(name)
                    log.warning("node %s was deleted; its heartbeats stop", name)
                    return
                await self._renew_lease(name, str(_meta(node).get("uid", "")))
                now = asyncio.get_running_loop().time()
                if needs_status_report(
                    node,
                    now=now,
                    last_report=self._last_report.get(name, 0.0),
                    report_period=self.config.status_report_period,
                ):
                    await self._beats.patch(
                        NODES,
                        name,
                        heartbeat_patch(node, now_rfc3339()),
                        subresource="status",
                        patch_type=STRATEGIC_MERGE_PATCH,
                    )
                    self._last_report[name] = now
                    self.stats["node-status"] += 1
                self.stats["lease-renewed"] += 1
        except (StatusError, aiohttp.ClientError, OSError, TimeoutError) as exc:
            self.stats["heartbeat-failed"] += 1
            log.debug("heartbeat of node %s failed: %s", name, exc)
        finally:
            if waiting:
                self._heartbeat_started()
            self._in_flight.discard(name)

    def _heartbeat_started(self) -> None:
        self._heartbeats_waiting -= 1
        if self._heartbeats_waiting == 0:
            self._heartbeats_on_time.set()

    async def _renew_lease(self, name: str, node_uid: str) -> None:
        duration = self.config.lease_duration_seconds
        cached = self._leases.get(name)
        lease = renewed_lease(
            cached, node_name=name, node_uid=node_uid, now=_micro_now(), duration_seconds=duration
        )
        try:
            if cached is None:
                self._leases[name] = await self._beats.create(LEASES, lease)
            else:
                self._leases[name] = await self._beats.update(LEASES, lease)
            return
        except StatusError as exc:
            if exc.code not in (404, 409):
                raise
        # Someone else wrote it, or it is gone (or already there): start from the server's copy.
        try:
            current: Object | None = await self._beats.get(LEASES, name, NODE_LEASE_NAMESPACE)
        except StatusError as exc:
            if exc.code != 404:
                raise
            current = None
        lease = renewed_lease(
            current, node_name=name, node_uid=node_uid, now=_micro_now(), duration_seconds=duration
        )
        if current is None:
            self._leases[name] = await self._beats.create(LEASES, lease)
        else:
            self._leases[name] = await self._beats.update(LEASES, lease)

    # -- paused nodes -----------------------------------------------------------------------

    async def _watch_paused_file(self) -> None:
        seen = self._paused_file_signature()
        while True:
            await asyncio.sleep(_PAUSE_POLL_SECONDS)
            signature = self._paused_file_signature()
            if signature != seen:
                seen = signature
                self._read_paused()

    def _paused_file_signature(self) -> tuple[int, int, int] | None:
        if self.paused_file is None:
            return None
        try:
            stat = self.paused_file.stat()
        except OSError:
            return None
        return (stat.st_ino, stat.st_mtime_ns, stat.st_size)

    def _read_paused(self) -> None:
        text = ""
        if self.paused_file is not None:
            with contextlib.suppress(OSError):
                text = self.paused_file.read_text()
        self.set_paused(paused_nodes(text, self.names))

    def set_paused(self, paused: frozenset[str]) -> None:
        """Pause exactly `paused` (node names of this agent); resumed nodes heartbeat and
        play their pods' stages at once."""
        resumed = self.paused - paused
        newly = paused - self.paused
        self.paused = paused
        if newly:
            log.info("paused nodes: %s", ", ".join(sorted(newly)))
        if resumed:
            log.info("resumed nodes: %s", ", ".join(sorted(resumed)))
        if not self._heap:
            return
        for name in resumed:
            self._heartbeat_now(name)
            for pod in self.pods.indexer.by_index("node", name):
                self.queue.add(object_key(pod))

    # -- pods -------------------------------------------------------------------------------

    def _on_pod(self, pod: Object) -> None:
        node_name = _spec(pod).get("nodeName", "")
        if node_name not in self._index:
            return
        key = object_key(pod)
        if _is_terminal(pod):
            self._release_ip(key)
        elif key not in self._allocation_of:
            ip = _status(pod).get("podIP")
            if ip and not _spec(pod).get("hostNetwork"):
                allocator = self._allocator(node_name)
                if allocator is not None and allocator.reserve(key, str(ip)):
                    self._allocation_of[key] = allocator
        self.queue.add(key)

    def _on_pod_deleted(self, pod: Object) -> None:
        key = object_key(pod)
        self._release_ip(key)
        self._pending.pop(key, None)
        self._played.pop(key, None)

    def _release_ip(self, key: str) -> None:
        allocator = self._allocation_of.pop(key, None)
        if allocator is not None:
            allocator.release(key)

    def _allocator(self, node_name: str) -> PodIPAllocator | None:
        """The allocator of the node's current pod CIDR: spec.podCIDR once the node IPAM
        controller set it, else the node's block of the fallback range."""
        node = self.nodes.get(node_name)
        if node is None:
            return None
        cidr = _spec(node).get("podCIDR") or fallback_pod_cidr(
            self._index[node_name], self.config.pod_ip_range
        )
        allocator = self._allocators.get(node_name)
        if allocator is None or allocator.cidr != cidr:
            allocator = PodIPAllocator(str(cidr))
            self._allocators[node_name] = allocator
        return allocator

    def _pod_ip(self, key: str, pod: Object, host_ip: str) -> str:
        existing = _status(pod).get("podIP")
        if existing:
            return str(existing)
        if _spec(pod).get("hostNetwork"):
            return host_ip
        held = self._allocation_of.get(key)
        if held is not None:
            return held.allocate(key)
        allocator = self._allocator(str(_spec(pod).get("nodeName", "")))
        if allocator is None:
            raise IPExhausted(f"node of pod {key} is gone")
        ip = allocator.allocate(key)
        self._allocation_of[key] = allocator
        return ip

    async def _pod_worker(self, *, always_runs: bool) -> None:
        """Work pods off the queue. Heartbeats come first: while some wait for a request
        slot, only the workers that always run go on, so that a busy server delays pod
        updates rather than lease renewals (which would make nodes look dead)."""
        while True:
            if not always_runs:
                await self._heartbeats_on_time.wait()
            key = await self.queue.get()
            if key is None:
                return
            try:
                await self.sync_pod(key)
                self.queue.forget(key)
            except StatusError as exc:
                if exc.code == 404:
                    self.queue.forget(key)
                else:
                    log.debug("pod %s: %s; retrying", key, exc)
                    self.stats["pod-write-failed"] += 1
                    self.queue.add_rate_limited(key)
            except (aiohttp.ClientError, OSError, TimeoutError, IPExhausted) as exc:
                log.debug("pod %s: %s; retrying", key, exc)
                self.stats["pod-write-failed"] += 1
                self.queue.add_rate_limited(key)
            except Exception:
                log.exception("pod %s: unexpected failure; retrying", key)
                self.queue.add_rate_limited(key)
            finally:
                self.queue.done(key)

    async def sync_pod(self, key: str) -> None:
        """Match the pod's stage; play it once its delay has passed, else come back then."""
        pod = self.pods.get(key)
        if pod is None:
            self._pending.pop(key, None)
            return
        node_name = str(_spec(pod).get("nodeName", ""))
        if node_name not in self._index or node_name in self.paused or node_name in self._gone:
            self._pending.pop(key, None)
            return
        version = str(_meta(pod).get("resourceVersion", ""))
        if self._played.get(key) == version:
            return  # our write of this version has not come back through the watch yet
        stage = match_stage(self.config.stages, pod)
        if stage is None:
            self._pending.pop(key, None)
            return
        now = asyncio.get_running_loop().time()
        planned = self._pending.get(key)
        if planned is None or planned.stage != stage.name:
            planned = _Planned(stage.name, now + stage_delay(stage, pod, self.rng.random()))
            self._pending[key] = planned
        if planned.due > now:
            self.queue.add_after(key, planned.due - now)
            return
        meta = _meta(pod)
        if stage.next.delete:
            await self.client.delete(
                PODS,
                str(meta.get("name", "")),
                str(meta.get("namespace", "")),
                grace_period_seconds=0,
                preconditions={"uid": str(meta.get("uid", ""))},
            )
        else:
            host_ip = self._ips[node_name]
            context = StatusContext(
                now=now_rfc3339(), host_ip=host_ip, pod_ip=self._pod_ip(key, pod, host_ip)
            )
            action = play_stage(stage, pod, context)
            await self.client.update_status(PODS, {**pod, "status": action.status})
        self._pending.pop(key, None)
        self._played[key] = version
        self.stats[stage.name] += 1

    # -- reporting --------------------------------------------------------------------------

    async def _log_stats(self) -> None:
        reported: Counter[str] = Counter()
        while True:
            await asyncio.sleep(_STATS_PERIOD_SECONDS)
            if self.stats != reported:
                reported = Counter(self.stats)
                log.info(
                    "simulated nodes: %d (%d paused); pods known: %d; %s",
                    len(self.names),
                    len(self.paused),
                    len(self.pods.indexer),
                    ", ".join(f"{k}={v}" for k, v in sorted(reported.items())),
                )


# -- the process ------------------------------------------------------------------------------


@dataclass
class SimulateOptions:
    server: str
    token: str
    count: int
    data_dir: Path
    node_name_prefix: str = "sim"
    config: SimulateConfig = field(default_factory=SimulateConfig)


async def _trust_when_reachable(options: SimulateOptions) -> ssl.SSLContext:
    """A TLS context trusting the cluster CA the token pins, retried while the server
    cannot be reached; a server whose CA the token does not pin is refused at once."""
    backoff = 0.5
    while True:
        try:
            ca_pem = await fetch_cluster_ca(options.server)
            check_cluster_ca(ca_pem, options.token)
            return trusting(ca_pem)
        except UntrustedServer:
            raise
        except JoinError as exc:
            log.warning("waiting for the server: %s; retrying in %.1f s", exc, backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)


async def run_simulated_agent(options: SimulateOptions) -> None:
    """Run until SIGINT/SIGTERM (a second signal exits at once)."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals = 0

    def on_signal() -> None:
        nonlocal signals
        signals += 1
        if signals > 1:
            os._exit(1)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, on_signal)
    started = time.perf_counter()
    context = await _trust_when_reachable(options)
    log.info("joined %s in %.0f ms", options.server, (time.perf_counter() - started) * 1000)
    # Two clients, two connection pools: pod updates never hold up lease renewals.
    client, heartbeat_client = (
        ApiClient(
            HttpsTransport(options.server, context, token=options.token, user_agent=USER_AGENT),
            field_manager=FIELD_MANAGER,
        )
        for _ in range(2)
    )
    nodes = SimulatedNodes(
        client,
        node_names(options.node_name_prefix, options.count),
        options.config,
        paused_file=options.data_dir / PAUSED_NODES_FILE,
        heartbeat_client=heartbeat_client,
    )
    running = asyncio.create_task(nodes.run(), name="simulated-nodes")
    stopping = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({running, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (running, stopping):
            task.cancel()
        results = await asyncio.gather(running, stopping, return_exceptions=True)
        await client.close()
        await heartbeat_client.close()
    failure = results[0]
    if isinstance(failure, BaseException) and not isinstance(failure, asyncio.CancelledError):
        raise failure
