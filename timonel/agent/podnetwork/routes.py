"""Which host-gw routes a node needs, decided from the Nodes alone (pure).

Every other node's podCIDR is reached through that node's InternalIP, as flannel's host-gw
backend does: the nodes share one link, so the next hop is the node itself and pods see
each other's real addresses. The routes carry their own protocol number
(`ROUTE_PROTOCOL`), so the agent lists and removes exactly the routes it installed and
never a route someone else made; a destination already routed by someone else is left
alone and reported as a conflict.

IPv4 only: the node's CNI bridge is IPv4 (see timonel/agent/runtime/cni.py).
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from timonel.api.objects import Object

ROUTE_PROTOCOL: Final = 116
"""The `proto` of the routes the agent installs: no entry of iproute2's rt_protos and
none that routing daemons or CNI plugins are known to use."""


@dataclass(frozen=True, order=True)
class Route:
    destination: str
    """A network in CIDR notation."""
    gateway: str


@dataclass(frozen=True)
class ListedRoute:
    """A route of the main table as `ip -j route show` prints it."""

    destination: str
    gateway: str
    protocol: str
    """"kernel", "boot" (iproute2 omits it), a number, ..."""

    @property
    def route(self) -> Route:
        return Route(self.destination, self.gateway)


@dataclass(frozen=True)
class RoutePlan:
    replace: tuple[Route, ...] = ()
    """Routes to install or point at a new gateway (`ip route replace`)."""
    delete: tuple[Route, ...] = ()
    """Routes of ours that no node wants any more."""
    conflicts: tuple[Route, ...] = ()
    """Wanted routes whose destination another owner already routes: left alone."""

    def __bool__(self) -> bool:
        return bool(self.replace or self.delete)


# -- reading Nodes ---------------------------------------------------------------------------


def _ipv4_network(text: str) -> str | None:
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None
    return str(network) if network.version == 4 else None


def _ipv4_address(text: str) -> str | None:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    return str(address) if address.version == 4 else None


def node_pod_cidrs(node: Object) -> list[str]:
    """The node's IPv4 podCIDRs (`spec.podCIDRs`, else `spec.podCIDR`)."""
    spec = node.get("spec") or {}
    listed = spec.get("podCIDRs") or ([spec["podCIDR"]] if spec.get("podCIDR") else [])
    return [cidr for cidr in (_ipv4_network(str(c)) for c in listed) if cidr]


def node_internal_ip(node: Object) -> str:
    """The node's first IPv4 InternalIP ("" if it has none)."""
    for entry in (node.get("status") or {}).get("addresses") or []:
        if entry.get("type") == "InternalIP":
            found = _ipv4_address(str(entry.get("address") or ""))
            if found:
                return found
    return ""


def routing_view(node: Object) -> Object:
    """Only what routing reads from a Node: informers keep this instead of whole Nodes
    (their status changes with every heartbeat and carries the image list)."""
    metadata = node.get("metadata") or {}
    spec = node.get("spec") or {}
    view: dict[str, Any] = {
        "metadata": {
            key: metadata[key] for key in ("name", "uid", "resourceVersion") if key in metadata
        },
        "spec": {key: spec[key] for key in ("podCIDR", "podCIDRs") if key in spec},
        "status": {"addresses": list((node.get("status") or {}).get("addresses") or [])},
    }
    return view


def routing_facts(node: Object) -> tuple[tuple[str, ...], str]:
    """What a change must touch for the routes to change."""
    return (tuple(node_pod_cidrs(node)), node_internal_ip(node))


# -- decisions ---------------------------------------------------------------------------------


def desired_routes(node_name: str, nodes: Iterable[Object]) -> list[Route]:
    """One route per podCIDR of every other node, via its InternalIP. Nodes without a
    podCIDR or an InternalIP are skipped, as are destinations overlapping this node's own
    podCIDRs and a podCIDR a node earlier by name already claims. Sorted."""
    by_name = {str((n.get("metadata") or {}).get("name") or ""): n for n in nodes}
    own = by_name.get(node_name) or {}
    own_networks = [ipaddress.ip_network(c) for c in node_pod_cidrs(own)]
    own_address = node_internal_ip(own)
    claimed: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = list(own_networks)
    routes: list[Route] = []
    for name in sorted(by_name):
        if name == node_name:
            continue
        node = by_name[name]
        gateway = node_internal_ip(node)
        if not gateway or gateway == own_address:
            continue
        for cidr in node_pod_cidrs(node):
            network = ipaddress.ip_network(cidr)
            if any(network.overlaps(taken) for taken in claimed):
                continue
            claimed.append(network)
            routes.append(Route(cidr, gateway))
    return sorted(routes)


def plan_routes(
    desired: Iterable[Route], listed: Iterable[ListedRoute], protocol: int = ROUTE_PROTOCOL
) -> RoutePlan:
    """What to change so that the routes of `protocol` in the main table (`listed` is the
    whole table) are exactly `desired`, minus the destinations others already route."""
    ours: dict[str, Route] = {}
    foreign: set[str] = set()
    for entry in listed:
        if entry.protocol == str(protocol):
            ours[entry.destination] = entry.route
        else:
            foreign.add(entry.destination)
    replace: list[Route] = []
    conflicts: list[Route] = []
    wanted: set[str] = set()
    for route in sorted(set(desired)):
        if route.destination in foreign:
            conflicts.append(route)
            continue
        wanted.add(route.destination)
        if ours.get(route.destination) != route:
            replace.append(route)
    delete = [route for destination, route in sorted(ours.items()) if destination not in wanted]
    return RoutePlan(tuple(replace), tuple(delete), tuple(conflicts))


def parse_route_listing(text: str) -> list[ListedRoute]:
    """`ip -j -4 route show table main` → the routes (default route and all)."""
    entries: list[Mapping[str, Any]] = json.loads(text or "[]")
    listed: list[ListedRoute] = []
    for entry in entries:
        destination = str(entry.get("dst") or "")
        if not destination:
            continue
        if destination != "default" and "/" not in destination:
            destination += "/32"
        listed.append(
            ListedRoute(
                destination=destination,
                gateway=str(entry.get("gateway") or ""),
                protocol=str(entry.get("protocol") or "boot"),
            )
        )
    return listed
