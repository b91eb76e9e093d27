"""How the `kube-dns` Service finds the nodes' DNS servers.

`timonel server` creates `kube-system/kube-dns` (clusterIP = `--cluster-dns`, the labels
and ports of CoreDNS's Service) without a selector, so neither endpoints controller
manages its endpoints. Each node agent's DNS server publishes itself instead:

- one EndpointSlice per node, `kube-dns-<node>`, labelled for the Service and
  `managed-by: timonel-agent`, owned by the Node (deleting the Node deletes it), with
  the node's DNS address and the ports `dns` (UDP), `dns-tcp` (TCP) and `metrics` (TCP).
  The proxy DNATs the Service's ports to these, by port name, as for any Service;
- the Endpoints object `kube-dns`, derived from all those slices (what `kubectl
  describe service` and `kubectl get endpoints` show), labelled to skip mirroring.

A node publishes once its server answers, re-checks every minute (a deleted slice comes
back), and withdraws on shutdown.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

from timonel.api.errors import StatusError
from timonel.api.objects import Object
from timonel.client.resources import ENDPOINTS, ENDPOINTSLICES, NODES
from timonel.client.rest import ApiClient, is_conflict, is_not_found

log = logging.getLogger(__name__)

DNS_SERVICE: Final = "kube-dns"
DNS_NAMESPACE: Final = "kube-system"
SERVICE_NAME_LABEL: Final = "kubernetes.io/service-name"
MANAGED_BY_LABEL: Final = "endpointslice.kubernetes.io/managed-by"
MANAGED_BY: Final = "timonel-agent"
SKIP_MIRROR_LABEL: Final = "endpointslice.kubernetes.io/skip-mirror"
SLICE_SELECTOR: Final = f"{SERVICE_NAME_LABEL}={DNS_SERVICE},{MANAGED_BY_LABEL}={MANAGED_BY}"
MAX_NAME: Final = 253
CONFLICT_RETRIES: Final = 5


@dataclass(frozen=True)
class DnsEndpoint:
    """One node's DNS server: where it listens."""

    node_name: str
    address: str
    port: int
    metrics_port: int = 0
    """0: no metrics listener (the slice has no `metrics` port)."""

    @property
    def address_type(self) -> str:
        return "IPv6" if ":" in self.address else "IPv4"

    def ports(self) -> list[dict[str, Any]]:
        ports: list[dict[str, Any]] = [
            {"name": "dns", "protocol": "UDP", "port": self.port},
            {"name": "dns-tcp", "protocol": "TCP", "port": self.port},
        ]
        if self.metrics_port:
            ports.append({"name": "metrics", "protocol": "TCP", "port": self.metrics_port})
        return ports


# -- pure plans ----------------------------------------------------------------------------


def dns_service(cluster_dns: str) -> Object:
    """`kube-system/kube-dns` as k3s's CoreDNS manifest has it (labels that make
    `kubectl cluster-info` list "CoreDNS", the prometheus annotations, the ports), but
    without a selector: its endpoints are the nodes' DNS servers."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": DNS_SERVICE,
            "namespace": DNS_NAMESPACE,
            "labels": {
                "k8s-app": "kube-dns",
                "kubernetes.io/cluster-service": "true",
                "kubernetes.io/name": "CoreDNS",
            },
            "annotations": {"prometheus.io/port": "9153", "prometheus.io/scrape": "true"},
        },
        "spec": {
            "clusterIP": cluster_dns,
            "ports": [
                {"name": "dns", "port": 53, "protocol": "UDP"},
                {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
                {"name": "metrics", "port": 9153, "protocol": "TCP"},
            ],
        },
    }


def slice_name(node_name: str) -> str:
    """`kube-dns-<node>`; a digest stands for the end of node names too long for it."""
    name = f"{DNS_SERVICE}-{node_name}"
    if len(name) <= MAX_NAME:
        return name
    digest = hashlib.sha256(node_name.encode()).hexdigest()[:10]
    return f"{name[: MAX_NAME - 11].rstrip('-.')}-{digest}"


def planned_slice(endpoint: DnsEndpoint, node_uid: str = "") -> Object:
    metadata: dict[str, Any] = {
        "name": slice_name(endpoint.node_name),
        "namespace": DNS_NAMESPACE,
        "labels": {
            SERVICE_NAME_LABEL: DNS_SERVICE,
            MANAGED_BY_LABEL: MANAGED_BY,
            "k8s-app": "kube-dns",
        },
    }
    if node_uid:
        metadata["ownerReferences"] = [
            {"apiVersion": "v1", "kind": "Node", "name": endpoint.node_name, "uid": node_uid}
        ]
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": metadata,
        "addressType": endpoint.address_type,
        "endpoints": [
            {
                "addresses": [endpoint.address],
                "conditions": {"ready": True, "serving": True, "terminating": False},
                "nodeName": endpoint.node_name,
            }
        ],
        "ports": endpoint.ports(),
    }


def slice_differs(current: Object, planned: Object) -> bool:
    """Whether `current` lacks something `planned` says (labels, owners, content)."""
    current_meta = current.get("metadata") or {}
    planned_meta = planned["metadata"]
    labels = current_meta.get("labels") or {}
    if any(labels.get(k) != v for k, v in planned_meta["labels"].items()):
        return True
    if planned_meta.get("ownerReferences") and not current_meta.get("ownerReferences"):
        return True
    return any(current.get(k) != planned[k] for k in ("addressType", "endpoints", "ports"))


def updated_slice(current: Object, planned: Object) -> Object:
    merged = dict(current)
    metadata = dict(current.get("metadata") or {})
    metadata["labels"] = {**(metadata.get("labels") or {}), **planned["metadata"]["labels"]}
    if planned["metadata"].get("ownerReferences"):
        metadata["ownerReferences"] = planned["metadata"]["ownerReferences"]
    merged["metadata"] = metadata
    for key in ("addressType", "endpoints", "ports"):
        merged[key] = planned[key]
    return merged


def with_current_conditions(planned: Object, current: Object) -> Object:
    """`planned` with the conditions `current` has for the same addresses: an endpoint's
    readiness follows its Node's, which the server decides
    (timonel/controllers/nodedns.py), not the agent."""
    known = {
        tuple(endpoint.get("addresses") or []): endpoint.get("conditions")
        for endpoint in current.get("endpoints") or []
    }
    endpoints = []
    for endpoint in planned.get("endpoints") or []:
        conditions = known.get(tuple(endpoint.get("addresses") or []))
        endpoints.append({**endpoint, "conditions": conditions} if conditions else endpoint)
    return {**planned, "endpoints": endpoints}


def endpoints_subsets(slices: Iterable[Object]) -> list[dict[str, Any]]:
    """The Endpoints subsets the nodes' slices amount to: addresses grouped by their
    ports (not-ready ones under `notReadyAddresses`), sorted."""
    groups: dict[tuple[tuple[str, str, int], ...], dict[str, dict[str, Any]]] = {}
    not_ready: dict[tuple[tuple[str, str, int], ...], dict[str, dict[str, Any]]] = {}
    for endpoint_slice in slices:
        ports = tuple(
            sorted(
                (str(p.get("name") or ""), str(p.get("protocol") or "TCP"), int(p.get("port") or 0))
                for p in endpoint_slice.get("ports") or []
            )
        )
        for endpoint in endpoint_slice.get("endpoints") or []:
            ready = (endpoint.get("conditions") or {}).get("ready") is not False
            for ip in endpoint.get("addresses") or []:
                address: dict[str, Any] = {"ip": ip}
                if endpoint.get("nodeName"):
                    address["nodeName"] = endpoint["nodeName"]
                (groups if ready else not_ready).setdefault(ports, {})[ip] = address
    subsets: list[dict[str, Any]] = []
    for ports in sorted(groups.keys() | not_ready.keys()):
        subset: dict[str, Any] = {}
        for key, found in (("addresses", groups), ("notReadyAddresses", not_ready)):
            addresses = found.get(ports) or {}
            if addresses:
                subset[key] = [addresses[ip] for ip in sorted(addresses)]
        subset["ports"] = [{"name": n, "port": p, "protocol": proto} for n, proto, p in ports]
        subsets.append(subset)
    return subsets


def planned_endpoints(current: Object | None, subsets: list[dict[str, Any]]) -> Object | None:
    """The Endpoints object to write (None: `current` already says it)."""
    labels = {SKIP_MIRROR_LABEL: "true", "k8s-app": "kube-dns"}
    if current is None:
        endpoints: Object = {
            "apiVersion": "v1",
            "kind": "Endpoints",
            "metadata": {"name": DNS_SERVICE, "namespace": DNS_NAMESPACE, "labels": labels},
        }
        if subsets:
            endpoints["subsets"] = subsets
        return endpoints
    current_labels = (current.get("metadata") or {}).get("labels") or {}
    same_labels = all(current_labels.get(k) == v for k, v in labels.items())
    if (current.get("subsets") or []) == subsets and same_labels:
        return None
    updated = dict(current)
    updated["metadata"] = {
        **(current.get("metadata") or {}),
        "labels": {**current_labels, **labels},
    }
    if subsets:
        updated["subsets"] = subsets
    else:
        updated.pop("subsets", None)
    return updated


# -- I/O ---------------------------------------------------------------------------------


class DnsRegistration:
    """Publishes and withdraws one node's DNS endpoint (see the module's docstring)."""

    def __init__(self, client: ApiClient, endpoint: DnsEndpoint) -> None:
        self.client = client
        self.endpoint = endpoint

    async def publish(self) -> None:
        planned = planned_slice(self.endpoint, await self._node_uid())
        name = planned["metadata"]["name"]
        try:
            current = await self.client.get(ENDPOINTSLICES, name, DNS_NAMESPACE)
        except StatusError as error:
            if not is_not_found(error):
                raise
            await self.client.create(ENDPOINTSLICES, planned)
            log.info(
                "cluster DNS endpoint %s:%d published", self.endpoint.address, self.endpoint.port
            )
        else:
            planned = with_current_conditions(planned, current)
            if slice_differs(current, planned):
                await self.client.update(ENDPOINTSLICES, updated_slice(current, planned))
        await self.sync_endpoints()

    async def withdraw(self) -> None:
        try:
            await self.client.delete(
                ENDPOINTSLICES, slice_name(self.endpoint.node_name), DNS_NAMESPACE
            )
        except StatusError as error:
            if not is_not_found(error):
                raise
        await self.sync_endpoints()

    async def sync_endpoints(self) -> None:
        """Rewrite `kube-dns` Endpoints from the nodes' slices (retried on conflicts,
        since every node does it)."""
        for _ in range(CONFLICT_RETRIES):
            listed = await self.client.list(
                ENDPOINTSLICES, DNS_NAMESPACE, label_selector=SLICE_SELECTOR
            )
            subsets = endpoints_subsets(listed.get("items") or [])
            try:
                current: Object | None = await self.client.get(
                    ENDPOINTS, DNS_SERVICE, DNS_NAMESPACE
                )
            except StatusError as error:
                if not is_not_found(error):
                    raise
                current = None
            planned = planned_endpoints(current, subsets)
            if planned is None:
                return
            try:
                if current is None:
                    await self.client.create(ENDPOINTS, planned)
                else:
                    await self.client.update(ENDPOINTS, planned)
                return
            except StatusError as error:
                if not is_conflict(error):
                    raise
        log.warning("kube-dns Endpoints: gave up after %d conflicts", CONFLICT_RETRIES)

    async def _node_uid(self) -> str:
        try:
            node = await self.client.get(NODES, self.endpoint.node_name)
        except StatusError:
            return ""
        return str((node.get("metadata") or {}).get("uid") or "")
