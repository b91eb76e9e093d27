"""The node DNS endpoints controller: the nodes' DNS servers count as ready only while
their Node is Ready.

Each node agent publishes its DNS server as an endpoint of `kube-system/kube-dns` in a
slice of its own (timonel/agent/dns/registration.py), but an agent that dies cannot
withdraw it, and every node's proxy would go on sending a share of the cluster's DNS
queries to it. As the node lifecycle controller marks a dead node's pods not ready, this
controller sets `conditions.ready` (and `serving`) of the agent-managed kube-dns slices
from their Node's Ready condition, and keeps the `kube-dns` Endpoints object
(`addresses` / `notReadyAddresses`) derived from those slices, as the agents derive it.
A deleted Node's slice is not this controller's: the Node owns it, and the garbage
collector removes it.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping
from typing import Any, ClassVar, Final

from timonel.agent.dns.registration import (
    DNS_NAMESPACE,
    DNS_SERVICE,
    MANAGED_BY,
    MANAGED_BY_LABEL,
    SERVICE_NAME_LABEL,
    endpoints_subsets,
    planned_endpoints,
)
from timonel.api.errors import StatusError
from timonel.api.objects import Object
from timonel.client.resources import ENDPOINTS, ENDPOINTSLICES, NODES
from timonel.controllers.base import Controller
from timonel.controllers.manager import ControllerContext

log = logging.getLogger(__name__)

KEY: Final = f"{DNS_NAMESPACE}/{DNS_SERVICE}"


# -- pure decisions ---------------------------------------------------------------------------


def is_node_dns_slice(endpoint_slice: Object) -> bool:
    meta = endpoint_slice.get("metadata") or {}
    labels = meta.get("labels") or {}
    return bool(
        meta.get("namespace") == DNS_NAMESPACE
        and labels.get(SERVICE_NAME_LABEL) == DNS_SERVICE
        and labels.get(MANAGED_BY_LABEL) == MANAGED_BY
    )


def node_is_ready(node: Object) -> bool:
    for condition in (node.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return bool(condition.get("status") == "True")
    return False


def slice_with_node_readiness(endpoint_slice: Object, nodes: Mapping[str, Object]) -> Object | None:
    """The slice with each endpoint's readiness set from its Node's (an endpoint whose
    Node is unknown is left as it is); None when it already says so."""
    endpoints: list[dict[str, Any]] = []
    changed = False
    for endpoint in endpoint_slice.get("endpoints") or []:
        node = nodes.get(str(endpoint.get("nodeName") or ""))
        if node is None:
            endpoints.append(endpoint)
            continue
        ready = node_is_ready(node)
        conditions = dict(endpoint.get("conditions") or {})
        wanted = {**conditions, "ready": ready, "serving": ready}
        wanted.setdefault("terminating", False)
        if wanted != conditions:
            changed = True
        endpoints.append({**endpoint, "conditions": wanted})
    if not changed:
        return None
    updated = copy.copy(endpoint_slice)
    updated["endpoints"] = endpoints
    return updated


def _readiness_facts(node: Object) -> tuple[str, bool]:
    return (str((node.get("metadata") or {}).get("name") or ""), node_is_ready(node))


# -- the controller ----------------------------------------------------------------------------


class NodeDnsEndpointsController(Controller):
    name: ClassVar[str] = "node-dns-endpoints"

    def __init__(self, context: ControllerContext) -> None:
        self.client = context.client
        self.nodes = context.informers.informer(NODES)
        self.slices = context.informers.informer(ENDPOINTSLICES)
        self.endpoints = context.informers.informer(ENDPOINTS)
        super().__init__([self.nodes, self.slices, self.endpoints])
        self.nodes.add_handlers(
            on_add=lambda _node: self._enqueue(),
            on_update=self._node_updated,
            on_delete=lambda _node: self._enqueue(),
        )
        self.slices.add_handlers(
            on_add=self._slice_changed,
            on_update=lambda _old, new: self._slice_changed(new),
            on_delete=self._slice_changed,
        )
        self.endpoints.add_handlers(
            on_add=self._endpoints_changed,
            on_update=lambda _old, new: self._endpoints_changed(new),
            on_delete=self._endpoints_changed,
        )

    def _enqueue(self) -> None:
        self.queue.add(KEY)

    def _node_updated(self, old: Object, new: Object) -> None:
        if _readiness_facts(old) != _readiness_facts(new):
            self._enqueue()

    def _slice_changed(self, endpoint_slice: Object) -> None:
        if is_node_dns_slice(endpoint_slice):
            self._enqueue()

    def _endpoints_changed(self, endpoints: Object) -> None:
        meta = endpoints.get("metadata") or {}
        if meta.get("namespace") == DNS_NAMESPACE and meta.get("name") == DNS_SERVICE:
            self._enqueue()

    async def sync(self, key: str) -> None:
        nodes = {str((n.get("metadata") or {}).get("name") or ""): n for n in self.nodes.all()}
        slices: list[Object] = []
        for endpoint_slice in self.slices.all():
            if not is_node_dns_slice(endpoint_slice):
                continue
            updated = slice_with_node_readiness(endpoint_slice, nodes)
            if updated is None:
                slices.append(endpoint_slice)
                continue
            try:
                slices.append(await self.client.update(ENDPOINTSLICES, updated))
            except StatusError as error:
                if error.code == 404:
                    continue
                raise
            log.info(
                "kube-dns endpoint of %s: ready=%s",
                ", ".join(str(e.get("nodeName")) for e in updated.get("endpoints") or []),
                all((e.get("conditions") or {}).get("ready") for e in updated["endpoints"]),
            )
        current = self.endpoints.get(KEY)
        planned = planned_endpoints(current, endpoints_subsets(slices))
        if planned is None:
            return
        if current is None:
            try:
                await self.client.create(ENDPOINTS, planned)
            except StatusError as error:
                if error.code != 409:
                    raise
        else:
            await self.client.update(ENDPOINTS, planned)
