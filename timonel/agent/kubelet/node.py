"""The Node this agent runs: registration, status and the heartbeat Lease.

Pure: `render_node` (what the kubelet registers: well-known labels, capacity and
allocatable, conditions, addresses, nodeInfo, images, the kubelet endpoint),
`node_conditions` (Ready, MemoryPressure, DiskPressure, PIDPressure with kubelet's
reasons and messages; transition times move only when a status changes), `allocatable`
(capacity minus the default hard eviction thresholds: 100Mi of memory, 10% of the
node's filesystem) and `renewed_lease`.

I/O: `read_machine` (CPUs, memory, boot and machine IDs, kernel, OS image, disk) and
`NodeReporter`, which registers (or reconciles) the Node, renews its Lease in
kube-node-lease every 10 s, and writes the node status whenever it changed or at least
every 5 minutes, as kubelet does with node leases.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import os
import platform
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from timonel.api.errors import StatusError
from timonel.api.objects import Object, now_rfc3339
from timonel.client.resources import LEASES, NODES
from timonel.client.rest import MERGE_PATCH, STRATEGIC_MERGE_PATCH, ApiClient

log = logging.getLogger(__name__)

KUBELET_VERSION: Final = "v1.32.0+timonel"
KUBELET_PORT: Final = 10250
MAX_PODS: Final = 110
MAX_IMAGES: Final = 50
NODE_LEASE_NAMESPACE: Final = "kube-node-lease"
LEASE_DURATION_SECONDS: Final = 40
HEARTBEAT_PERIOD: Final = 10.0
STATUS_REPORT_PERIOD: Final = 300.0
EVICTION_MEMORY_BYTES: Final = 100 * 1024 * 1024
EVICTION_DISK_FRACTION: Final = 0.10
PID_PRESSURE_FRACTION: Final = 0.95


@dataclass(frozen=True)
class Machine:
    cpus: int
    memory_bytes: int
    boot_id: str = ""
    machine_id: str = ""
    system_uuid: str = ""
    kernel_version: str = ""
    os_image: str = ""
    architecture: str = "amd64"
    disk_bytes: int = 0


@dataclass(frozen=True)
class Pressure:
    memory: bool = False
    disk: bool = False
    pid: bool = False


def _read(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""


def _meminfo(field_name: str) -> int:
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1]) * 1024
    return 0


def _os_image() -> str:
    for line in _read("/etc/os-release").splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip().strip('"')
    return platform.system()


def read_machine(data_dir: Path) -> Machine:
    architecture = {"x86_64": "amd64", "aarch64": "arm64"}.get(
        platform.machine(), platform.machine()
    )
    disk = os.statvfs(data_dir)
    return Machine(
        cpus=len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count() or 1,
        memory_bytes=_meminfo("MemTotal"),
        boot_id=_read("/proc/sys/kernel/random/boot_id"),
        machine_id=_read("/etc/machine-id"),
        system_uuid=_read("/sys/class/dmi/id/product_uuid"),
        kernel_version=platform.release(),
        os_image=_os_image(),
        architecture=architecture,
        disk_bytes=disk.f_blocks * disk.f_frsize,
    )


def read_pressure(data_dir: Path) -> Pressure:
    """Kubelet's default hard eviction signals: memory.available < 100Mi,
    nodefs.available < 10%; and PIDs nearly exhausted."""
    disk = os.statvfs(data_dir)
    available = _meminfo("MemAvailable")
    pid_max = int(_read("/proc/sys/kernel/pid_max") or 0)
    processes = sum(1 for entry in os.scandir("/proc") if entry.name.isdigit())
    return Pressure(
        memory=0 < available < EVICTION_MEMORY_BYTES,
        disk=disk.f_blocks > 0 and disk.f_bavail / disk.f_blocks < EVICTION_DISK_FRACTION,
        pid=pid_max > 0 and processes > pid_max * PID_PRESSURE_FRACTION,
    )


def capacity(machine: Machine) -> dict[str, str]:
    return {
        "cpu": str(machine.cpus),
        "ephemeral-storage": f"{machine.disk_bytes // 1024}Ki",
        "hugepages-1Gi": "0",
        "hugepages-2Mi": "0",
        "memory": f"{machine.memory_bytes // 1024}Ki",
        "pods": str(MAX_PODS),
    }


def allocatable(machine: Machine) -> dict[str, str]:
    """Capacity minus what hard eviction keeps free."""
    result = capacity(machine)
    result["memory"] = f"{max(0, machine.memory_bytes - EVICTION_MEMORY_BYTES) // 1024}Ki"
    result["ephemeral-storage"] = str(int(machine.disk_bytes * (1 - EVICTION_DISK_FRACTION)))
    return result


def node_labels(name: str, machine: Machine, extra: Mapping[str, str]) -> dict[str, str]:
    labels = {
        "beta.kubernetes.io/arch": machine.architecture,
        "beta.kubernetes.io/os": "linux",
        "kubernetes.io/arch": machine.architecture,
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
    }
    labels.update(extra)
    return labels


def node_conditions(
    *,
    ready: bool,
    not_ready_message: str,
    pressure: Pressure,
    previous: Iterable[Any],
    now: str,
) -> list[dict[str, Any]]:
    """The four conditions the kubelet owns, in its order."""
    old = {c.get("type"): c for c in previous if isinstance(c, dict)}
    wanted = [
        ("MemoryPressure", pressure.memory,
         ("KubeletHasInsufficientMemory", "kubelet has insufficient memory available"),
         ("KubeletHasSufficientMemory", "kubelet has sufficient memory available")),
        ("DiskPressure", pressure.disk,
         ("KubeletHasDiskPressure", "kubelet has disk pressure"),
         ("KubeletHasNoDiskPressure", "kubelet has no disk pressure")),
        ("PIDPressure", pressure.pid,
         ("KubeletHasInsufficientPID", "kubelet has insufficient PID available"),
         ("KubeletHasSufficientPID", "kubelet has sufficient PID available")),
        ("Ready", ready,
         ("KubeletReady", "kubelet is posting ready status"),
         ("KubeletNotReady", not_ready_message)),
    ]  # fmt: skip
    conditions = []
    for kind, active, when_true, when_false in wanted:
        status = "True" if active else "False"
        reason, message = when_true if active else when_false
        before = old.get(kind) or {}
        transition = now
        if before.get("status") == status and before.get("lastTransitionTime"):
            transition = before["lastTransitionTime"]
        conditions.append(
            {
                "type": kind,
                "status": status,
                "lastHeartbeatTime": now,
                "lastTransitionTime": transition,
                "reason": reason,
                "message": message,
            }
        )
    return conditions


_EVENT_REASONS: Final = {
    ("MemoryPressure", "True"): "NodeHasInsufficientMemory",
    ("MemoryPressure", "False"): "NodeHasSufficientMemory",
    ("DiskPressure", "True"): "NodeHasDiskPressure",
    ("DiskPressure", "False"): "NodeHasNoDiskPressure",
    ("PIDPressure", "True"): "NodeHasInsufficientPID",
    ("PIDPressure", "False"): "NodeHasSufficientPID",
    ("Ready", "True"): "NodeReady",
    ("Ready", "False"): "NodeNotReady",
}


def condition_events(previous: Iterable[Any], current: Iterable[Any]) -> list[str]:
    """The kubelet's node event reasons for conditions whose status changed (all of them
    on registration): NodeReady, NodeNotReady, NodeHasSufficientMemory, ..."""
    before = {c.get("type"): c.get("status") for c in previous if isinstance(c, dict)}
    reasons = []
    for condition in current:
        kind, status = condition.get("type"), condition.get("status")
        if before.get(kind) != status and (kind, status) in _EVENT_REASONS:
            reasons.append(_EVENT_REASONS[(kind, status)])
    return reasons


def node_images(images: Iterable[Any]) -> list[dict[str, Any]]:
    """The images the node holds, biggest first, at most 50 (kubelet's nodeStatusMaxImages)."""
    entries = []
    for image in sorted(images, key=lambda i: int(i.size), reverse=True)[:MAX_IMAGES]:
        names = [*image.repo_digests, *image.repo_tags]
        if names:
            entries.append({"names": names, "sizeBytes": int(image.size)})
    return entries


@dataclass(frozen=True)
class NodeFacts:
    """Everything the node status is made of besides the conditions."""

    machine: Machine
    addresses: Sequence[tuple[str, str]]
    runtime_version: str
    images: Sequence[Mapping[str, Any]] = ()
    kubelet_port: int = KUBELET_PORT
    """Where the kubelet API listens (the API server proxies logs, exec and metrics to it)."""


def render_node_status(facts: NodeFacts, conditions: list[dict[str, Any]]) -> dict[str, Any]:
    machine = facts.machine
    return {
        "capacity": capacity(machine),
        "allocatable": allocatable(machine),
        "conditions": conditions,
        "addresses": [{"type": kind, "address": address} for kind, address in facts.addresses],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": facts.kubelet_port}},
        "nodeInfo": {
            "architecture": machine.architecture,
            "bootID": machine.boot_id,
            "containerRuntimeVersion": facts.runtime_version,
            "kernelVersion": machine.kernel_version,
            "kubeProxyVersion": "",
            "kubeletVersion": KUBELET_VERSION,
            "machineID": machine.machine_id,
            "operatingSystem": "linux",
            "osImage": machine.os_image,
            "systemUUID": machine.system_uuid,
        },
        "images": list(facts.images),
    }


def render_node(name: str, labels: Mapping[str, str], status: dict[str, Any]) -> Object:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": dict(labels),
            "annotations": {"volumes.kubernetes.io/controller-managed-attach-detach": "true"},
        },
        "spec": {},
        "status": status,
    }


def renewed_lease(existing: Object | None, *, node_name: str, node_uid: str, now: str) -> Object:
    """The node's Lease renewed at `now` (a MicroTime), owned by its Node."""
    lease = copy.deepcopy(existing) if existing else {}
    lease["apiVersion"] = "coordination.k8s.io/v1"
    lease["kind"] = "Lease"
    meta = lease.setdefault("metadata", {})
    meta["name"] = node_name
    meta["namespace"] = NODE_LEASE_NAMESPACE
    if node_uid:
        meta["ownerReferences"] = [
            {"apiVersion": "v1", "kind": "Node", "name": node_name, "uid": node_uid}
        ]
    spec = lease.setdefault("spec", {})
    spec["holderIdentity"] = node_name
    spec["leaseDurationSeconds"] = LEASE_DURATION_SECONDS
    spec["renewTime"] = now
    return lease


def _micro_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _comparable(status: Mapping[str, Any]) -> Any:
    """The status without heartbeat times (they change on every report by design)."""
    copied = copy.deepcopy(dict(status))
    for condition in copied.get("conditions") or []:
        condition.pop("lastHeartbeatTime", None)
    return copied


@dataclass
class NodeReporter:
    """Registers the Node and keeps its status and Lease fresh."""

    client: ApiClient
    name: str
    labels: Mapping[str, str]
    facts: Callable[[], NodeFacts]
    readiness: Callable[[], tuple[bool, str]]
    pressure: Callable[[], Pressure]
    record: Callable[[str, str], None] = lambda _reason, _message: None
    """(reason, message) → an Event about the node."""
    heartbeat_period: float = HEARTBEAT_PERIOD
    report_period: float = STATUS_REPORT_PERIOD
    node: Object | None = None
    _lease: Object | None = None
    _last_report: float = 0.0
    _reported: Any = None
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def _announce(self, previous: Iterable[Any], status: Mapping[str, Any]) -> None:
        for reason in condition_events(previous, status.get("conditions") or []):
            self.record(reason, f"Node {self.name} status is now: {reason}")

    def _status(self, previous: Iterable[Any]) -> dict[str, Any]:
        ready, message = self.readiness()
        conditions = node_conditions(
            ready=ready,
            not_ready_message=message,
            pressure=self.pressure(),
            previous=previous,
            now=now_rfc3339(),
        )
        return render_node_status(self.facts(), conditions)

    async def register(self) -> Object:
        """Create the Node, or bring an existing one (a restart) to what we report now."""
        backoff = 0.2
        while True:
            try:
                self.node = await self._register_once()
                self._last_report = time.monotonic()
                return self.node
            except (StatusError, OSError, TimeoutError) as error:
                log.warning(
                    "registering node %s failed: %s; retrying in %.1f s", self.name, error, backoff
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 7.0)

    async def _register_once(self) -> Object:
        status = self._status(())
        try:
            created = await self.client.create(NODES, render_node(self.name, self.labels, status))
            log.info("registered node %s", self.name)
            self._reported = _comparable(status)
            self._announce([], status)
            return created
        except StatusError as error:
            if error.code != 409:
                raise
        existing = await self.client.get(NODES, self.name)
        await self.client.patch(
            NODES, self.name, {"metadata": {"labels": dict(self.labels)}}, patch_type=MERGE_PATCH
        )
        previous = ((existing.get("status") or {}).get("conditions")) or []
        status = self._status(previous)
        updated = await self.client.patch(
            NODES,
            self.name,
            {"status": status},
            subresource="status",
            patch_type=STRATEGIC_MERGE_PATCH,
        )
        self._reported = _comparable(status)
        self._announce(previous, status)
        return updated

    async def wait_for_pod_cidr(self, poll: float = 0.2) -> str:
        """The podCIDR the node IPAM controller gives this node."""
        while True:
            try:
                node = await self.client.get(NODES, self.name)
            except (StatusError, OSError, TimeoutError) as error:
                log.debug("reading node %s: %s", self.name, error)
            else:
                self.node = node
                cidr = (node.get("spec") or {}).get("podCIDR")
                if cidr:
                    return str(cidr)
            await asyncio.sleep(poll)

    async def report_status(self, *, force: bool = False) -> None:
        """Write the status when it changed, when the report period passed, or when the
        server's copy of our conditions differs (the node lifecycle controller marks a
        node Unknown when its lease lapsed)."""
        try:
            self.node = await self.client.get(NODES, self.name)
        except StatusError as error:
            if error.code != 404:
                raise
            log.warning("node %s is gone; registering it again", self.name)
            await self.register()
            return
        previous = ((self.node or {}).get("status") or {}).get("conditions") or []
        status = self._status(previous)
        due = time.monotonic() - self._last_report >= self.report_period
        ours = {(c["type"], c["status"], c["reason"]) for c in status["conditions"]}
        theirs = {
            (c.get("type"), c.get("status"), c.get("reason"))
            for c in previous
            if isinstance(c, dict) and c.get("type") in {kind for kind, _, _ in ours}
        }
        if not force and not due and _comparable(status) == self._reported and ours == theirs:
            return
        try:
            self.node = await self.client.patch(
                NODES,
                self.name,
                {"status": status},
                subresource="status",
                patch_type=STRATEGIC_MERGE_PATCH,
            )
        except StatusError as error:
            if error.code != 404:
                raise
            log.warning("node %s is gone; registering it again", self.name)
            await self.register()
            return
        self._reported = _comparable(status)
        self._last_report = time.monotonic()
        self._announce(previous, status)

    async def renew_lease(self) -> None:
        node_uid = str(((self.node or {}).get("metadata") or {}).get("uid", ""))
        lease = renewed_lease(self._lease, node_name=self.name, node_uid=node_uid, now=_micro_now())
        try:
            if self._lease is None:
                self._lease = await self.client.create(LEASES, lease)
            else:
                self._lease = await self.client.update(LEASES, lease)
            return
        except StatusError as error:
            if error.code not in (404, 409):
                raise
        try:
            current: Object | None = await self.client.get(LEASES, self.name, NODE_LEASE_NAMESPACE)
        except StatusError as error:
            if error.code != 404:
                raise
            current = None
        lease = renewed_lease(current, node_name=self.name, node_uid=node_uid, now=_micro_now())
        if current is None:
            self._lease = await self.client.create(LEASES, lease)
        else:
            self._lease = await self.client.update(LEASES, lease)

    async def run(self) -> None:
        """Heartbeat forever: the Lease every period, the status when it changed (at once
        when `changed` is set) or when the report period passed."""
        while True:
            try:
                await self.renew_lease()
            except (StatusError, OSError, TimeoutError) as error:
                log.warning("renewing the lease of node %s failed: %s", self.name, error)
            try:
                await self.report_status()
            except (StatusError, OSError, TimeoutError) as error:
                log.warning("reporting the status of node %s failed: %s", self.name, error)
            self.changed.clear()
            deadline = time.monotonic() + self.heartbeat_period
            while time.monotonic() < deadline:
                try:
                    await asyncio.wait_for(self.changed.wait(), deadline - time.monotonic())
                except TimeoutError:
                    break
                self.changed.clear()
                try:
                    await self.report_status()
                except (StatusError, OSError, TimeoutError) as error:
                    log.warning("reporting the status of node %s failed: %s", self.name, error)
