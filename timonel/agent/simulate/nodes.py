"""Simulated nodes as the kubelet would write them: the Node it registers, the conditions
it heartbeats, the Lease it renews in kube-node-lease, and the pod addresses its CNI
would hand out. Pure functions of names, indexes, templates and the time.
"""

from __future__ import annotations

import copy
import fnmatch
import hashlib
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from timonel.api.objects import Object

KUBELET_VERSION: Final = "v1.32.0-timonel-sim"
CONTAINER_RUNTIME_VERSION: Final = "timonel-sim://1.0.0"
OS_IMAGE: Final = "timonel simulated node"
KERNEL_VERSION: Final = "6.1.0-timonel-sim"
KUBELET_PORT: Final = 10250
NODE_LEASE_NAMESPACE: Final = "kube-node-lease"
SIMULATED_LABEL: Final = ("type", "simulated")

DEFAULT_CAPACITY: Final[Mapping[str, str]] = {
    "cpu": "32",
    "ephemeral-storage": "100Gi",
    "memory": "256Gi",
    "pods": "110",
}

# The conditions the kubelet owns, healthy, with its reasons and messages, in its order.
HEALTHY_CONDITIONS: Final = (
    ("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
    ("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
    ("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
    ("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
)  # fmt: skip


@dataclass(frozen=True)
class NodeTemplate:
    """What every simulated node of one agent has in common."""

    capacity: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_CAPACITY))
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    taints: tuple[Object, ...] = ()


def node_names(prefix: str, count: int) -> list[str]:
    return [f"{prefix}-{index}" for index in range(count)]


def node_ip(index: int, node_ip_range: str) -> str:
    """The index-th host address of the range (the network address is skipped)."""
    network = ipaddress.ip_network(node_ip_range, strict=False)
    if index + 1 >= network.num_addresses - 1:
        raise ValueError(f"node IP range {node_ip_range} has no address for node {index}")
    return str(network.network_address + index + 1)


def fallback_pod_cidr(index: int, pod_ip_range: str, prefix_length: int = 24) -> str:
    """The index-th /24 (by default) of the range, for a node without spec.podCIDR."""
    network = ipaddress.ip_network(pod_ip_range, strict=False)
    if prefix_length < network.prefixlen:
        prefix_length = network.prefixlen
    blocks = 2 ** (prefix_length - network.prefixlen)
    if index >= blocks:
        raise ValueError(f"pod IP range {pod_ip_range} has no /{prefix_length} for node {index}")
    size = 2 ** (network.max_prefixlen - prefix_length)
    return f"{network.network_address + index * size}/{prefix_length}"


def node_labels(name: str, extra: Mapping[str, str]) -> dict[str, str]:
    """The kubelet's well-known labels plus `type=simulated` (as kwok's `type=kwok`),
    then the configured ones."""
    labels = {
        "beta.kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        SIMULATED_LABEL[0]: SIMULATED_LABEL[1],
    }
    labels.update(extra)
    return labels


def missing_labels(node: Object, wanted: Mapping[str, str]) -> dict[str, str]:
    """The wanted labels an existing Node lacks or has with another value."""
    current = (node.get("metadata") or {}).get("labels") or {}
    return {key: value for key, value in wanted.items() if current.get(key) != value}


def healthy_conditions(previous: Iterable[Any], now: str) -> list[Object]:
    """The kubelet's conditions as of a heartbeat at `now`: a transition time moves only
    when a condition's status changes."""
    old = {c.get("type"): c for c in previous if isinstance(c, dict)}
    conditions = []
    for kind, status, reason, message in HEALTHY_CONDITIONS:
        before = old.get(kind) or {}
        same = before.get("status") == status and before.get("lastTransitionTime")
        conditions.append(
            {
                "type": kind,
                "status": status,
                "lastHeartbeatTime": now,
                "lastTransitionTime": before["lastTransitionTime"] if same else now,
                "reason": reason,
                "message": message,
            }
        )
    return conditions


def _stable_id(name: str, purpose: str) -> str:
    return hashlib.sha256(f"{purpose}/{name}".encode()).hexdigest()[:32]


def render_node(name: str, *, ip: str, template: NodeTemplate, now: str) -> Object:
    """The Node a kubelet registers, status included."""
    node: Object = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": node_labels(name, template.labels),
            "annotations": {
                "volumes.kubernetes.io/controller-managed-attach-detach": "true",
                **template.annotations,
            },
        },
        "spec": {},
        "status": render_node_status(name, ip=ip, template=template, now=now, previous=()),
    }
    if template.taints:
        node["spec"]["taints"] = [copy.deepcopy(dict(taint)) for taint in template.taints]
    return node


def render_node_status(
    name: str, *, ip: str, template: NodeTemplate, now: str, previous: Iterable[Any]
) -> Object:
    system_uuid = _stable_id(name, "system-uuid")
    return {
        "capacity": dict(template.capacity),
        "allocatable": dict(template.capacity),
        "conditions": healthy_conditions(previous, now),
        "addresses": [
            {"type": "InternalIP", "address": ip},
            {"type": "Hostname", "address": name},
        ],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": KUBELET_PORT}},
        "nodeInfo": {
            "architecture": "amd64",
            "bootID": _stable_id(name, "boot-id"),
            "containerRuntimeVersion": CONTAINER_RUNTIME_VERSION,
            "kernelVersion": KERNEL_VERSION,
            "kubeProxyVersion": "",
            "kubeletVersion": KUBELET_VERSION,
            "machineID": _stable_id(name, "machine-id"),
            "operatingSystem": "linux",
            "osImage": OS_IMAGE,
            "systemUUID": f"{system_uuid[:8]}-{system_uuid[8:12]}-{system_uuid[12:16]}-"
            f"{system_uuid[16:20]}-{system_uuid[20:32]}",
        },
    }


def registration_status_patch(node: Object, *, ip: str, template: NodeTemplate, now: str) -> Object:
    """A merge patch that brings an already registered node's status to this agent's,
    as the kubelet reconciles an existing Node on restart."""
    previous = (node.get("status") or {}).get("conditions") or []
    status = render_node_status(
        (node.get("metadata") or {}).get("name", ""),
        ip=ip,
        template=template,
        now=now,
        previous=previous,
    )
    return {"status": status}


def heartbeat_patch(node: Object | None, now: str) -> Object:
    """A strategic merge patch of nodes/status renewing the kubelet's conditions."""
    previous = ((node or {}).get("status") or {}).get("conditions") or []
    return {"status": {"conditions": healthy_conditions(previous, now)}}


def needs_status_report(
    node: Object | None, *, now: float, last_report: float, report_period: float
) -> bool:
    """Whether a heartbeat must also write the node's status: the report is due, or the
    conditions the kubelet owns are not what it would write (someone else, such as the
    node lifecycle controller, changed them)."""
    if now - last_report >= report_period:
        return True
    current = {
        c.get("type"): (c.get("status"), c.get("reason"))
        for c in ((node or {}).get("status") or {}).get("conditions") or []
        if isinstance(c, dict)
    }
    return any(
        current.get(kind) != (status, reason) for kind, status, reason, _ in HEALTHY_CONDITIONS
    )


def renewed_lease(
    existing: Object | None, *, node_name: str, node_uid: str, now: str, duration_seconds: int
) -> Object:
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
    spec["leaseDurationSeconds"] = duration_seconds
    spec["renewTime"] = now
    return lease


def paused_nodes(text: str, names: Iterable[str]) -> frozenset[str]:
    """The nodes a paused-nodes file names: one name or shell pattern (`sim-1*`) per line;
    blank lines and `#` comments are ignored."""
    patterns = []
    for line in text.splitlines():
        entry = line.split("#", 1)[0].strip()
        if entry:
            patterns.append(entry)
    if not patterns:
        return frozenset()
    literal = {p for p in patterns if not any(ch in p for ch in "*?[")}
    wildcards = [p for p in patterns if p not in literal]
    return frozenset(
        name
        for name in names
        if name in literal or any(fnmatch.fnmatchcase(name, p) for p in wildcards)
    )


class IPExhausted(Exception):
    pass


class PodIPAllocator:
    """Pod addresses of one node's CIDR, handed out in order as the host-local IPAM
    plugin does: the network address and the first host (the bridge gateway) are skipped,
    the cursor moves on after each allocation and wraps around."""

    def __init__(self, cidr: str) -> None:
        self.cidr = cidr
        self._network = ipaddress.ip_network(cidr, strict=False)
        self._first = 2
        self._last = self._network.num_addresses - (2 if self._network.version == 4 else 1)
        self._cursor = self._first
        self._by_key: dict[str, int] = {}
        self._used: set[int] = set()

    def __len__(self) -> int:
        return len(self._by_key)

    def allocate(self, key: str) -> str:
        """The address of `key`, allocated on first request."""
        offset = self._by_key.get(key)
        if offset is None:
            size = self._last - self._first + 1
            for step in range(size):
                candidate = self._first + (self._cursor - self._first + step) % size
                if candidate not in self._used:
                    offset = candidate
                    break
            if offset is None:
                raise IPExhausted(f"no free pod address left in {self.cidr}")
            self._used.add(offset)
            self._by_key[key] = offset
            self._cursor = self._first + (offset + 1 - self._first) % size
        return str(self._network.network_address + offset)

    def reserve(self, key: str, ip: str) -> bool:
        """Record that `key` already has `ip` (found on a pod at start); False when the
        address is not ours or taken."""
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return False
        if address not in self._network:
            return False
        offset = int(address) - int(self._network.network_address)
        if self._by_key.get(key) == offset:
            return True
        if offset in self._used or not self._first <= offset <= self._last:
            return False
        self.release(key)
        self._used.add(offset)
        self._by_key[key] = offset
        return True

    def release(self, key: str) -> None:
        offset = self._by_key.pop(key, None)
        if offset is not None:
            self._used.discard(offset)
