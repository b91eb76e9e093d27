"""The node's proxy: Services, EndpointSlices and Nodes in, iptables rules out.

`Proxier` holds the objects the rules are made from; every change marks the rules dirty and
the sync loop (`RuleSyncer`: at most one sync per 100 ms, the first change after a quiet
spell at once, so an endpoint change is in the tables well within a second) re-renders
them (`render_rules`, in a worker thread) and installs what changed. Before the first sync
it sets the sysctls Services need.

`NodeProxy` feeds a `Proxier` from informers, which is how the node agent runs it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from timonel.agent.proxy.conntrack import (
    Conntrack,
    Frontends,
    clean_stale_entries,
    lost_endpoints,
    service_frontends,
)
from timonel.agent.proxy.iptables import (
    Iptables,
    RulesetApplier,
    ensure_forwarding_sysctls,
    stale_jumps,
)
from timonel.agent.proxy.rules import (
    CANARY_CHAIN,
    FIREWALL_JUMPS,
    JUMPS,
    NodeView,
    ProxyOptions,
    RenderCache,
    collect_inputs,
    jumps_for,
    owns_chain,
    render_inputs,
)
from timonel.agent.proxy.ruleset import Ruleset
from timonel.agent.proxy.syncloop import RuleSyncer, SyncResult, SyncSettings
from timonel.api.objects import Object, object_key
from timonel.client.informer import Informer, strip_managed_fields
from timonel.client.resources import ENDPOINTSLICES, NODES, SERVICES
from timonel.client.rest import ApiClient

log = logging.getLogger(__name__)

# kube-proxy lists and watches only what it proxies.
PROXIED_SELECTOR = "!service.kubernetes.io/service-proxy-name,!service.kubernetes.io/headless"

__all__ = ["NodeProxy", "Proxier", "SyncResult", "SyncSettings", "node_view"]


def _pod_cidrs(node: Object) -> tuple[str, ...]:
    spec = node.get("spec") or {}
    return tuple(spec.get("podCIDRs") or ([spec["podCIDR"]] if spec.get("podCIDR") else []))


def node_view(node_name: str, nodes: dict[str, Object]) -> NodeView:
    """This node's podCIDRs and addresses, and every node's podCIDRs."""
    own = nodes.get(node_name) or {}
    pod_cidrs = _pod_cidrs(own)
    addresses = tuple(
        str(entry.get("address"))
        for entry in (own.get("status") or {}).get("addresses") or []
        if entry.get("type") in ("InternalIP", "ExternalIP") and entry.get("address")
    )
    cluster = {cidr for node in nodes.values() for cidr in _pod_cidrs(node)}
    return NodeView(
        name=node_name,
        pod_cidrs=pod_cidrs,
        addresses=addresses,
        cluster_pod_cidrs=tuple(sorted(cluster)),
    )


ProxySnapshot = tuple[list[Object], list[Object], NodeView]


class Proxier(RuleSyncer[ProxySnapshot]):
    component = "proxy rules"
    lock_name = "proxy"

    def __init__(
        self,
        node_name: str,
        *,
        iptables: Iptables | None = None,
        options: ProxyOptions | None = None,
        settings: SyncSettings | None = None,
        cleanup_on_exit: bool = True,
    ) -> None:
        self.node_name = node_name
        self.iptables = iptables or Iptables()
        self.options = options or ProxyOptions()
        wanted = jumps_for(self.options)
        super().__init__(
            RulesetApplier(
                self.iptables,
                owns=owns_chain,
                jumps=wanted,
                canary=CANARY_CHAIN,
                stale_jumps=stale_jumps(JUMPS + FIREWALL_JUMPS, wanted),
            ),
            settings=settings,
            cleanup_on_exit=cleanup_on_exit,
        )
        self.services: dict[str, Object] = {}
        self.endpoint_slices: dict[str, Object] = {}
        self.nodes: dict[str, Object] = {}
        self.node = NodeView(node_name)
        self.conntrack = Conntrack(self.iptables.netns)
        self._cache = RenderCache()
        self._rendered_frontends: Frontends = {}
        self._installed_frontends: Frontends = {}

    # -- the objects --------------------------------------------------------------------------

    def set_service(self, service: Object) -> None:
        self.services[object_key(service)] = service
        self.changed()

    def delete_service(self, service: Object) -> None:
        if self.services.pop(object_key(service), None) is not None:
            self.changed()

    def set_endpoint_slice(self, endpoint_slice: Object) -> None:
        self.endpoint_slices[object_key(endpoint_slice)] = endpoint_slice
        self.changed()

    def delete_endpoint_slice(self, endpoint_slice: Object) -> None:
        if self.endpoint_slices.pop(object_key(endpoint_slice), None) is not None:
            self.changed()

    def set_node(self, node: Object) -> None:
        name = object_key(node)
        before = self.nodes.get(name)
        self.nodes[name] = node
        # Heartbeats update every Node every few seconds: only this node's addresses and
        # any node's podCIDRs matter.
        if name == self.node_name or before is None or _pod_cidrs(before) != _pod_cidrs(node):
            self._node_changed()

    def delete_node(self, node: Object) -> None:
        if self.nodes.pop(object_key(node), None) is not None:
            self._node_changed()

    def _node_changed(self) -> None:
        view = node_view(self.node_name, self.nodes)
        if view != self.node:
            self.node = view
            self.changed()

    # -- rendering ----------------------------------------------------------------------------

    def snapshot(self) -> ProxySnapshot:
        return (list(self.services.values()), list(self.endpoint_slices.values()), self.node)

    def render(self, snapshot: ProxySnapshot) -> Ruleset:
        services, slices, node = snapshot
        inputs = collect_inputs(services, slices, cache=self._cache)
        self._rendered_frontends = service_frontends(inputs.ports, inputs.endpoints, node)
        return render_inputs(inputs, node, self.options, cache=self._cache)

    async def after_sync(self, result: SyncResult) -> None:
        """UDP and SCTP clients must not stay on endpoints that went away."""
        frontends = self._rendered_frontends
        changed = lost_endpoints(self._installed_frontends, frontends)
        self._installed_frontends = frontends
        if not changed:
            return
        try:
            deleted = await asyncio.to_thread(
                clean_stale_entries, self.conntrack, frontends, changed
            )
        except OSError as error:
            log.warning("cannot clear stale conntrack entries: %s", error)
            return
        if deleted:
            log.debug("deleted %d stale conntrack entries", deleted)

    async def prepare(self) -> None:
        await ensure_forwarding_sysctls(
            self.iptables, route_localnet=self.options.localhost_node_ports
        )
        log.info("proxy on node %s uses %s", self.node_name, await self.iptables.version())


def _updated(put: Callable[[Object], None]) -> Callable[[Object, Object], None]:
    def on_update(_old: Object, new: Object) -> None:
        put(new)

    return on_update


@dataclass
class NodeProxy:
    """A `Proxier` fed by informers on Services, EndpointSlices and Nodes."""

    client: ApiClient
    node_name: str
    options: ProxyOptions = field(default_factory=ProxyOptions)
    iptables: Iptables = field(default_factory=Iptables)
    settings: SyncSettings = field(default_factory=SyncSettings)

    def __post_init__(self) -> None:
        self.proxier = Proxier(
            self.node_name, iptables=self.iptables, options=self.options, settings=self.settings
        )
        proxier = self.proxier
        # Cached without managedFields (nothing here reads them).
        self.services = Informer(
            self.client,
            SERVICES,
            label_selector=PROXIED_SELECTOR,
            transform=strip_managed_fields,
        )
        self.endpoint_slices = Informer(
            self.client,
            ENDPOINTSLICES,
            label_selector=PROXIED_SELECTOR,
            transform=strip_managed_fields,
        )
        self.nodes = Informer(self.client, NODES, transform=strip_managed_fields)
        feeds: tuple[tuple[Informer, Callable[[Object], None], Callable[[Object], None]], ...] = (
            (self.services, proxier.set_service, proxier.delete_service),
            (self.endpoint_slices, proxier.set_endpoint_slice, proxier.delete_endpoint_slice),
            (self.nodes, proxier.set_node, proxier.delete_node),
        )
        for informer, put, drop in feeds:
            informer.add_handlers(on_add=put, on_update=_updated(put), on_delete=drop)

    async def run(self) -> None:
        informers = (self.services, self.endpoint_slices, self.nodes)
        tasks = [asyncio.create_task(i.run(), name=f"proxy-{i.resource.plural}") for i in informers]
        try:
            await asyncio.gather(*(i.synced.wait() for i in informers))
            self.proxier.ready.set()
            await self.proxier.run()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
