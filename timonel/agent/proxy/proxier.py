"""The node's proxy: Services, EndpointSlices and Nodes in, iptables rules out.

`Proxier` holds the objects the rules are made from and one sync loop. Every change marks
the rules dirty; the loop re-renders (`render_rules`, in a worker thread) and installs what
changed (`RulesetApplier`). Syncs are at least `min_sync_period` apart (100 ms) so that a
burst of changes costs one sync, and the first change after a quiet spell syncs at once:
an endpoint change is in the tables well within a second. Every `sync_period` the loop
checks that the tables still hold the proxy's canary chain and rewrites everything if not;
every `full_sync_period` it rewrites everything anyway. A failed sync is retried, in full.

Nothing is installed until the first list of Services and EndpointSlices arrived (rules from
a partial picture would reject traffic to Services whose endpoints were not listed yet). On
a clean stop the proxy removes its jumps and chains.

`NodeProxy` feeds a `Proxier` from informers, which is how the node agent runs it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

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
    jumps_for,
    owns_chain,
    render_rules,
)
from timonel.api.objects import Object, object_key
from timonel.client.informer import Informer
from timonel.client.resources import ENDPOINTSLICES, NODES, SERVICES
from timonel.client.rest import ApiClient

log = logging.getLogger(__name__)

# kube-proxy lists and watches only what it proxies.
PROXIED_SELECTOR = "!service.kubernetes.io/service-proxy-name,!service.kubernetes.io/headless"


@dataclass(frozen=True)
class SyncSettings:
    min_sync_period: float = 0.1
    sync_period: float = 10.0
    full_sync_period: float = 3600.0
    retry_period: float = 1.0


@dataclass(frozen=True)
class SyncResult:
    full: bool
    changed: bool
    rules: int
    render_seconds: float
    restore_seconds: float
    finished: float
    """time.monotonic() when the rules were in place."""


def node_view(node_name: str, nodes: dict[str, Object]) -> NodeView:
    """This node's podCIDRs and addresses, and every node's podCIDRs."""
    own = nodes.get(node_name) or {}
    spec = own.get("spec") or {}
    pod_cidrs = tuple(spec.get("podCIDRs") or ([spec["podCIDR"]] if spec.get("podCIDR") else []))
    addresses = tuple(
        str(entry.get("address"))
        for entry in (own.get("status") or {}).get("addresses") or []
        if entry.get("type") in ("InternalIP", "ExternalIP") and entry.get("address")
    )
    cluster: set[str] = set()
    for node in nodes.values():
        node_spec = node.get("spec") or {}
        cluster.update(node_spec.get("podCIDRs") or [])
        if node_spec.get("podCIDR"):
            cluster.add(node_spec["podCIDR"])
    return NodeView(
        name=node_name,
        pod_cidrs=pod_cidrs,
        addresses=addresses,
        cluster_pod_cidrs=tuple(sorted(cluster)),
    )


class Proxier:
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
        self.settings = settings or SyncSettings()
        self.cleanup_on_exit = cleanup_on_exit
        wanted = jumps_for(self.options)
        self.applier = RulesetApplier(
            self.iptables,
            owns=owns_chain,
            jumps=wanted,
            canary=CANARY_CHAIN,
            stale_jumps=stale_jumps(JUMPS + FIREWALL_JUMPS, wanted),
        )
        self.services: dict[str, Object] = {}
        self.endpoint_slices: dict[str, Object] = {}
        self.nodes: dict[str, Object] = {}
        self.node = NodeView(node_name)
        self.ready = asyncio.Event()
        """Set once the first lists arrived; nothing is installed before."""
        self.last_result: SyncResult | None = None
        self.listeners: list[Callable[[SyncResult], None]] = []
        self._dirty = asyncio.Event()
        self._cache = RenderCache()
        self._need_full = True

    # -- the objects --------------------------------------------------------------------------

    def changed(self) -> None:
        self._dirty.set()

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
        self.nodes[object_key(node)] = node
        self._node_changed()

    def delete_node(self, node: Object) -> None:
        self.nodes.pop(object_key(node), None)
        self._node_changed()

    def _node_changed(self) -> None:
        # Heartbeats update Nodes every few seconds; only the podCIDRs and addresses matter.
        view = node_view(self.node_name, self.nodes)
        if view != self.node:
            self.node = view
            self.changed()

    # -- syncing ------------------------------------------------------------------------------

    async def sync(self, *, full: bool = False) -> SyncResult:
        """Render the rules from the objects now known and install what changed."""
        services = list(self.services.values())
        slices = list(self.endpoint_slices.values())
        node, options, cache = self.node, self.options, self._cache
        started = time.perf_counter()
        ruleset = await asyncio.to_thread(
            lambda: render_rules(services, slices, node, options, cache=cache)
        )
        rendered = time.perf_counter()
        stats = await self.applier.apply(ruleset, full=full)
        result = SyncResult(
            full=stats.full,
            changed=stats.changed,
            rules=ruleset.rule_count(),
            render_seconds=rendered - started,
            restore_seconds=stats.restore_seconds,
            finished=time.monotonic(),
        )
        self.last_result = result
        for listener in list(self.listeners):
            listener(result)
        return result

    async def run(self) -> None:
        """Sync until cancelled; remove the rules on the way out."""
        await ensure_forwarding_sysctls(
            self.iptables, route_localnet=self.options.localhost_node_ports
        )
        log.info("proxy on node %s uses %s", self.node_name, await self.iptables.version())
        try:
            await self.ready.wait()
            await self._loop()
        finally:
            if self.cleanup_on_exit:
                with contextlib.suppress(Exception):
                    await self.applier.remove()

    async def _loop(self) -> None:
        settings = self.settings
        loop = asyncio.get_running_loop()
        last_sync = -1e9
        last_full = loop.time()
        self._dirty.set()
        while True:
            periodic = False
            try:
                await asyncio.wait_for(self._dirty.wait(), settings.sync_period)
            except TimeoutError:
                periodic = True
            pause = last_sync + settings.min_sync_period - loop.time()
            if pause > 0:
                await asyncio.sleep(pause)
            self._dirty.clear()
            if periodic and not self._need_full and not await self.applier.intact():
                log.warning("proxy rules were removed behind the proxy's back; rewriting them")
                self._need_full = True
            if loop.time() - last_full > settings.full_sync_period:
                self._need_full = True
            full = self._need_full
            last_sync = loop.time()
            try:
                result = await self.sync(full=full)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.error("syncing proxy rules failed: %s", error)
                self._need_full = True
                loop.call_later(settings.retry_period, self._dirty.set)
                continue
            self._need_full = False
            if full:
                last_full = loop.time()
            if result.changed:
                log.debug(
                    "proxy rules synced (%s): %d rules, render %.0f ms, restore %.0f ms",
                    "full" if full else "partial",
                    result.rules,
                    result.render_seconds * 1000,
                    result.restore_seconds * 1000,
                )


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
        self.services = Informer(self.client, SERVICES, label_selector=PROXIED_SELECTOR)
        self.endpoint_slices = Informer(
            self.client, ENDPOINTSLICES, label_selector=PROXIED_SELECTOR
        )
        self.nodes = Informer(self.client, NODES)
        for informer, put, drop in (
            (self.services, proxier.set_service, proxier.delete_service),
            (self.endpoint_slices, proxier.set_endpoint_slice, proxier.delete_endpoint_slice),
            (self.nodes, proxier.set_node, proxier.delete_node),
        ):
            informer.add_handlers(
                on_add=put, on_update=lambda _old, new, put=put: put(new), on_delete=drop
            )

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
