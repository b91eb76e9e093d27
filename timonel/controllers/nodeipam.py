"""The node IPAM controller: gives every Node a pod CIDR carved out of the cluster CIDR
(kube's range allocator, pkg/controller/nodeipam).

Each cluster CIDR (one per IP family, comma-separated) is cut into subnets of the node
mask size (/24 for IPv4, /64 for IPv6); a Node without `spec.podCIDRs` gets the next
free subnet of each, round-robin from the last one handed out, written as `podCIDR` and
`podCIDRs`. Allocations live in memory: on start they are rebuilt from the Nodes that
already have CIDRs, and a deleted Node's subnets are free again.
"""

from __future__ import annotations

import ipaddress
import logging
from typing import ClassVar

from timonel.api.errors import StatusError
from timonel.api.objects import Object
from timonel.client.resources import NODES
from timonel.client.rest import STRATEGIC_MERGE_PATCH
from timonel.controllers.base import Controller
from timonel.controllers.manager import ControllerContext
from timonel.controllers.pods import meta

log = logging.getLogger(__name__)

DEFAULT_CLUSTER_CIDR = "10.42.0.0/16"
IPV4_NODE_MASK = 24
IPV6_NODE_MASK = 64
PATCH_RETRIES = 3

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class RangeFull(Exception):
    """No subnet of the cluster CIDR is free."""


class CidrSet:
    """The subnets of one cluster CIDR and which of them are taken (kube's cidrset)."""

    def __init__(self, cluster_cidr: str, node_mask: int | None = None) -> None:
        self.network: Network = ipaddress.ip_network(cluster_cidr, strict=False)
        default_mask = IPV4_NODE_MASK if self.network.version == 4 else IPV6_NODE_MASK
        mask = node_mask if node_mask is not None else default_mask
        # A cluster CIDR smaller than one node subnet is handed out whole.
        self.node_mask = max(mask, self.network.prefixlen)
        self.size = 1 << (self.node_mask - self.network.prefixlen)
        self._host_bits = self.network.max_prefixlen - self.node_mask
        self._used: set[int] = set()
        self._next = 0

    @property
    def allocated(self) -> int:
        return len(self._used)

    def _subnet(self, index: int) -> str:
        start = int(self.network.network_address) + (index << self._host_bits)
        return str(ipaddress.ip_network((start, self.node_mask)))

    def _indexes(self, cidr: str) -> range | None:
        """The subnets `cidr` covers (None when it is outside this set)."""
        try:
            network = ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            return None
        if network.version != self.network.version or not network.overlaps(self.network):
            return None
        base = int(self.network.network_address)
        first = max(int(network.network_address), base)
        last = min(int(network.broadcast_address), int(self.network.broadcast_address))
        return range((first - base) >> self._host_bits, ((last - base) >> self._host_bits) + 1)

    def contains(self, cidr: str) -> bool:
        return self._indexes(cidr) is not None

    def occupy(self, cidr: str) -> bool:
        """Mark the subnets `cidr` covers as taken; False when it is not in this set."""
        indexes = self._indexes(cidr)
        if indexes is None:
            return False
        self._used.update(indexes)
        return True

    def release(self, cidr: str) -> None:
        indexes = self._indexes(cidr)
        if indexes is not None:
            self._used.difference_update(indexes)

    def allocate_next(self) -> str:
        if len(self._used) >= self.size:
            raise RangeFull(f"CIDR range {self.network} has no free /{self.node_mask} left")
        candidate = self._next
        while candidate in self._used:
            candidate = (candidate + 1) % self.size
        self._next = (candidate + 1) % self.size
        self._used.add(candidate)
        return self._subnet(candidate)


def cidr_sets(cluster_cidrs: str) -> list[CidrSet]:
    return [CidrSet(cidr.strip()) for cidr in cluster_cidrs.split(",") if cidr.strip()]


def node_pod_cidrs(node: Object) -> list[str]:
    spec = node.get("spec") or {}
    cidrs = [str(c) for c in spec.get("podCIDRs") or [] if c]
    if not cidrs and spec.get("podCIDR"):
        cidrs = [str(spec["podCIDR"])]
    return cidrs


def cidr_patch(cidrs: list[str]) -> Object:
    return {"spec": {"podCIDR": cidrs[0], "podCIDRs": cidrs}}


def node_reference(node: Object) -> Object:
    """The object events about a Node are recorded against."""
    return {
        "kind": "Node",
        "apiVersion": "v1",
        "metadata": {"name": meta(node).get("name", ""), "uid": meta(node).get("uid", "")},
    }


class NodeIpamController(Controller):
    name: ClassVar[str] = "node-ipam-controller"
    # kube's cidrUpdateWorkers: thousands of nodes registering at once are patched in
    # seconds, not one round trip after another. Subnets are taken before the first
    # await of a sync, so concurrent syncs never hand out the same one.
    workers = 30

    def __init__(self, context: ControllerContext) -> None:
        self.client = context.client
        self.nodes = context.informers.informer(NODES)
        super().__init__([self.nodes])
        self.recorder = context.recorder("cidrAllocator")
        self.sets = cidr_sets(str(context.options.get("cluster_cidr") or DEFAULT_CLUSTER_CIDR))
        # What this controller handed out (or found) per node name.
        self.assigned: dict[str, list[str]] = {}
        self._rebuilt = False
        self.nodes.add_handlers(
            on_add=self._enqueue, on_update=self._updated, on_delete=self._enqueue
        )

    def _enqueue(self, node: Object) -> None:
        self.queue.add(meta(node).get("name", ""))

    def _updated(self, old: Object, new: Object) -> None:
        if not node_pod_cidrs(new) or node_pod_cidrs(old) != node_pod_cidrs(new):
            self._enqueue(new)

    def _occupy(self, name: str, cidrs: list[str]) -> None:
        for cidr in cidrs:
            for cidr_set in self.sets:
                if cidr_set.occupy(cidr):
                    break
            else:
                log.info("node %s has pod CIDR %s outside the cluster CIDRs", name, cidr)
        self.assigned[name] = cidrs

    def _release(self, cidrs: list[str]) -> None:
        for cidr in cidrs:
            for cidr_set in self.sets:
                if cidr_set.contains(cidr):
                    cidr_set.release(cidr)
                    break

    def _rebuild(self) -> None:
        """Take the subnets existing Nodes hold before handing out any."""
        if self._rebuilt:
            return
        self._rebuilt = True
        for node in self.nodes.all():
            cidrs = node_pod_cidrs(node)
            if cidrs:
                self._occupy(meta(node).get("name", ""), cidrs)

    async def sync(self, key: str) -> None:
        self._rebuild()
        node = self.nodes.get(key)
        if node is None:
            self._release(self.assigned.pop(key, []))
            return
        existing = node_pod_cidrs(node)
        if existing:
            if self.assigned.get(key) != existing:
                self._release(self.assigned.pop(key, []))
                self._occupy(key, existing)
            return
        cidrs = self.assigned.get(key)
        if cidrs is None:
            try:
                cidrs = [cidr_set.allocate_next() for cidr_set in self.sets]
            except RangeFull:
                self.recorder.event(
                    node_reference(node),
                    "Normal",
                    "CIDRNotAvailable",
                    f"Node {key} status is now: CIDRNotAvailable",
                )
                raise
            self.assigned[key] = cidrs
        await self._write(node, cidrs)

    async def _write(self, node: Object, cidrs: list[str]) -> None:
        name = meta(node).get("name", "")
        failure: StatusError | None = None
        for _ in range(PATCH_RETRIES):
            try:
                await self.client.patch(
                    NODES, name, cidr_patch(cidrs), patch_type=STRATEGIC_MERGE_PATCH
                )
                log.info("set node %s pod CIDRs %s", name, cidrs)
                return
            except StatusError as error:
                failure = error
                if error.code == 404:
                    break
        assert failure is not None
        if failure.code == 404:
            # The node is gone: so is its claim on the subnets.
            self._release(self.assigned.pop(name, []))
            return
        self.recorder.event(
            node_reference(node),
            "Normal",
            "CIDRAssignmentFailed",
            f"Node {name} status is now: CIDRAssignmentFailed",
        )
        # Unless the outcome is unknown (a timeout), the subnets go back to the pool.
        if failure.code != 504:
            self._release(self.assigned.pop(name, []))
        raise failure
