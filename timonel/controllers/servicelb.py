"""The service load balancer controller: LoadBalancer Services served by the nodes
themselves, as k3s's ServiceLB (klipper-lb) serves them.

A LoadBalancer Service without a `loadBalancerClass` gets the addresses of the nodes that
serve it in `status.loadBalancer.ingress`; every node's proxy captures traffic to those
addresses on the Service's ports (kube-proxy's "loadbalancer IP" rules), so the ports
answer on every listed node. The nodes are chosen as k3s chooses where its svclb pods run:

- Ready nodes; when any node carries the `svccontroller.k3s.cattle.io/enablelb` label, only
  those labelled "true" (and, for a Service labelled `svccontroller.k3s.cattle.io/lbpool`,
  only nodes of that pool);
- a node serves a Service only if none of its ports (port, protocol) is taken on that node
  by an older LoadBalancer Service (k3s's svclb pods would stay Pending on the host port);
- with externalTrafficPolicy Local, only nodes that have a ready endpoint of the Service.

Each node contributes its ExternalIP addresses when any chosen node has one, its InternalIP
addresses otherwise, in the Service's IP families, sorted. Events are k3s's:
"UpdatedLoadBalancer" and "UnAvailableLoadBalancer". A Service that stops being a
LoadBalancer has its ingress cleared.
"""

from __future__ import annotations

import copy
import ipaddress
import logging
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, Final

from timonel.api.errors import StatusError
from timonel.api.objects import Object, object_key
from timonel.client.resources import ENDPOINTSLICES, NODES, SERVICES
from timonel.controllers.base import Controller
from timonel.controllers.manager import ControllerContext

log = logging.getLogger(__name__)

COMPONENT: Final = "service-lb-controller"
ENABLE_LB_LABEL: Final = "svccontroller.k3s.cattle.io/enablelb"
LB_POOL_LABEL: Final = "svccontroller.k3s.cattle.io/lbpool"
SERVICE_NAME_LABEL: Final = "kubernetes.io/service-name"


# -- pure decisions ---------------------------------------------------------------------------


def served_by_nodes(service: Object) -> bool:
    """LoadBalancer Services that no other load balancer implementation claims."""
    spec = service.get("spec") or {}
    return bool(spec.get("type") == "LoadBalancer" and not spec.get("loadBalancerClass"))


def _is_ready(node: Object) -> bool:
    for condition in (node.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return bool(condition.get("status") == "True")
    return False


def _labels(obj: Object) -> Mapping[str, str]:
    return (obj.get("metadata") or {}).get("labels") or {}


def candidate_nodes(service: Object, nodes: Iterable[Object]) -> list[Object]:
    """Ready nodes that may serve `service` (the enablelb and lbpool labels)."""
    nodes = list(nodes)
    restricted = any(ENABLE_LB_LABEL in _labels(node) for node in nodes)
    pool = _labels(service).get(LB_POOL_LABEL, "")
    chosen: list[Object] = []
    for node in nodes:
        labels = _labels(node)
        if restricted and labels.get(ENABLE_LB_LABEL) != "true":
            continue
        if restricted and pool and labels.get(LB_POOL_LABEL) != pool:
            continue
        if _is_ready(node):
            chosen.append(node)
    return chosen


def _ports(service: Object) -> set[tuple[int, str]]:
    return {
        (int(port.get("port") or 0), str(port.get("protocol") or "TCP"))
        for port in (service.get("spec") or {}).get("ports") or []
    }


def _age_key(service: Object) -> tuple[str, str]:
    meta = service.get("metadata") or {}
    return (str(meta.get("creationTimestamp") or ""), str(object_key(service)))


def nodes_without_conflicts(
    service: Object, services: Iterable[Object], nodes: Iterable[Object]
) -> list[Object]:
    """The candidate nodes where every port of `service` is free: older LoadBalancer
    Services hold their ports on the nodes they are served on."""
    wanted = _ports(service)
    taken: dict[str, set[tuple[int, str]]] = {}
    all_nodes = list(nodes)
    mine = _age_key(service)
    for other in sorted((s for s in services if served_by_nodes(s)), key=_age_key):
        if _age_key(other) >= mine:
            break
        ports = _ports(other)
        for node in candidate_nodes(other, all_nodes):
            name = str((node.get("metadata") or {}).get("name", ""))
            held = taken.setdefault(name, set())
            if not held & ports:
                held.update(ports)
    return [
        node
        for node in candidate_nodes(service, all_nodes)
        if not taken.get(str((node.get("metadata") or {}).get("name", "")), set()) & wanted
    ]


def nodes_with_ready_endpoints(service: Object, endpoint_slices: Iterable[Object]) -> set[str]:
    meta = service.get("metadata") or {}
    found: set[str] = set()
    for endpoint_slice in endpoint_slices:
        slice_meta = endpoint_slice.get("metadata") or {}
        if slice_meta.get("namespace") != meta.get("namespace"):
            continue
        if _labels(endpoint_slice).get(SERVICE_NAME_LABEL) != meta.get("name"):
            continue
        for endpoint in endpoint_slice.get("endpoints") or []:
            ready = (endpoint.get("conditions") or {}).get("ready") is not False
            target = endpoint.get("targetRef") or {}
            if ready and endpoint.get("nodeName") and target.get("kind", "Pod") == "Pod":
                found.add(str(endpoint["nodeName"]))
    return found


def _family(address: str) -> str | None:
    try:
        return "IPv4" if ipaddress.ip_address(address).version == 4 else "IPv6"
    except ValueError:
        return None


def plan_ingress(
    service: Object,
    services: Iterable[Object],
    nodes: Iterable[Object],
    endpoint_slices: Iterable[Object],
) -> list[str]:
    """The ingress IPs `service` should have (empty: no node can serve it)."""
    if not served_by_nodes(service):
        return []
    chosen = nodes_without_conflicts(service, services, nodes)
    spec = service.get("spec") or {}
    if spec.get("externalTrafficPolicy") == "Local":
        ready = nodes_with_ready_endpoints(service, endpoint_slices)
        chosen = [n for n in chosen if (n.get("metadata") or {}).get("name") in ready]
    external: set[str] = set()
    internal: set[str] = set()
    for node in chosen:
        for address in (node.get("status") or {}).get("addresses") or []:
            if address.get("type") == "ExternalIP":
                external.add(str(address.get("address")))
            elif address.get("type") == "InternalIP":
                internal.add(str(address.get("address")))
    addresses = external or internal
    families = spec.get("ipFamilies") or ["IPv4"]
    ordered: list[str] = []
    for family in families:
        ordered += sorted(a for a in addresses if _family(a) == family)
    return ordered


def current_ingress(service: Object) -> list[str]:
    ingress = ((service.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    return [str(entry.get("ip") or entry.get("hostname") or "") for entry in ingress]


def _go_list(items: list[str]) -> str:
    return "[" + " ".join(items) + "]"


# -- the controller ----------------------------------------------------------------------------


class ServiceLBController(Controller):
    name: ClassVar[str] = COMPONENT

    def __init__(self, context: ControllerContext) -> None:
        self.client = context.client
        self.recorder = context.recorder(COMPONENT)
        self.services = context.informers.informer(SERVICES)
        self.nodes = context.informers.informer(NODES)
        self.endpoint_slices = context.informers.informer(ENDPOINTSLICES)
        super().__init__([self.services, self.nodes, self.endpoint_slices])
        self.services.add_handlers(
            on_add=self._service_changed,
            on_update=lambda _old, new: self._service_changed(new),
            on_delete=self._service_deleted,
        )
        self.nodes.add_handlers(
            on_add=lambda _node: self._enqueue_all(),
            on_update=self._node_updated,
            on_delete=lambda _node: self._enqueue_all(),
        )
        self.endpoint_slices.add_handlers(
            on_add=self._slice_changed,
            on_update=lambda _old, new: self._slice_changed(new),
            on_delete=self._slice_changed,
        )

    def _service_changed(self, service: Object) -> None:
        if served_by_nodes(service) or current_ingress(service):
            self.queue.add(object_key(service))
            # Its ports may have been taken or freed for the other LoadBalancer Services.
            self._enqueue_all()

    def _service_deleted(self, service: Object) -> None:
        if served_by_nodes(service):
            self._enqueue_all()

    def _enqueue_all(self) -> None:
        for service in self.services.all():
            if served_by_nodes(service):
                self.queue.add(object_key(service))

    def _node_updated(self, old: Object, new: Object) -> None:
        def facts(node: Object) -> tuple[Any, ...]:
            status = node.get("status") or {}
            return (_is_ready(node), repr(status.get("addresses")), repr(_labels(node)))

        if facts(old) != facts(new):
            self._enqueue_all()

    def _slice_changed(self, endpoint_slice: Object) -> None:
        namespace = (endpoint_slice.get("metadata") or {}).get("namespace", "")
        name = _labels(endpoint_slice).get(SERVICE_NAME_LABEL)
        if not name:
            return
        service = self.services.get(f"{namespace}/{name}")
        if (
            service is not None
            and served_by_nodes(service)
            and (service.get("spec") or {}).get("externalTrafficPolicy") == "Local"
        ):
            self.queue.add(object_key(service))

    async def sync(self, key: str) -> None:
        service = self.services.get(key)
        if service is None:
            return
        spec = service.get("spec") or {}
        if not served_by_nodes(service) and spec.get("type") == "LoadBalancer":
            return  # another load balancer implementation owns its status
        wanted = plan_ingress(
            service, self.services.all(), self.nodes.all(), self.endpoint_slices.all()
        )
        before = current_ingress(service)
        if wanted == before:
            return
        updated = copy.deepcopy(service)
        status = updated.setdefault("status", {})
        status["loadBalancer"] = (
            {"ingress": [{"ip": ip, "ipMode": "VIP"} for ip in wanted]} if wanted else {}
        )
        try:
            await self.client.update_status(SERVICES, updated)
        except StatusError as error:
            if error.code == 404:
                return
            raise
        if not served_by_nodes(service):
            return
        involved = {**service, "kind": "Service", "apiVersion": "v1"}
        if wanted:
            self.recorder.event(
                involved,
                "Normal",
                "UpdatedLoadBalancer",
                f"Updated LoadBalancer with new IPs: {_go_list(before)} -> {_go_list(wanted)}",
            )
        else:
            self.recorder.event(
                involved,
                "Warning",
                "UnAvailableLoadBalancer",
                "There are no available nodes for LoadBalancer",
            )
