"""A node's cluster DNS: informers → `ClusterIndex` → `DnsServer`, published as an
endpoint of the `kube-dns` Service.

`NodeDns(client, options).run()` runs until cancelled:

1. watches Services, EndpointSlices and Namespaces (pods are not needed: `pods insecure`
   answers pod names from the name itself, and a pod's hostname/subdomain record comes
   from the `hostname` the endpointslice controller puts on its endpoint);
2. once they are listed (or after `sync_timeout`, as CoreDNS starts with an unsynced
   API after 5 s), listens on `address:port` over UDP and TCP, and serves `/metrics`,
   `/health` and `/ready` on `address:metrics_port` (either on a free port instead when
   the port is in use: the endpoint published says which);
3. publishes itself (`registration.DnsRegistration`), re-checks every
   `republish_period` seconds, and withdraws when cancelled.

The server listens on the node's own address; pods reach it through the `kube-dns`
Service address (`--cluster-dns`), which the proxy DNATs to the nodes' DNS endpoints.
Names outside the cluster go to the nameservers of the node's resolv.conf.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

from timonel.agent.dns.records import Answer, ClusterIndex, Zone, lookup
from timonel.agent.dns.registration import DnsEndpoint, DnsRegistration
from timonel.agent.dns.server import (
    DnsMetrics,
    DnsServer,
    Forwarder,
    QueryHandler,
    Upstream,
    upstream_servers,
)
from timonel.agent.kubelet.dns import parse_resolv_conf
from timonel.api.objects import Object
from timonel.client.informer import Informer, strip_managed_fields
from timonel.client.resources import ENDPOINTSLICES, NAMESPACES, SERVICES
from timonel.client.rest import ApiClient

if TYPE_CHECKING:
    from aiohttp import web

log = logging.getLogger(__name__)

DEFAULT_DNS_PORT: Final = 10053
"""Not 53: the node's own resolver (or another DNS server) may hold port 53 on the host;
pods never see this port, the Service's 53 is translated to it."""
DEFAULT_METRICS_PORT: Final = 9153
BIND_RETRY: Final = 5.0

_Apply = Callable[[Object], None]


@dataclass
class NodeDnsOptions:
    node_name: str
    address: str
    """Where to listen: the node's address."""
    advertise_address: str = ""
    """The address published as the endpoint (default: `address`)."""
    port: int = DEFAULT_DNS_PORT
    metrics_port: int = DEFAULT_METRICS_PORT
    """0: no metrics listener."""
    cluster_dns: tuple[str, ...] = ("10.43.0.10",)
    cluster_domain: str = "cluster.local"
    resolv_conf: Path = Path("/etc/resolv.conf")
    upstreams: tuple[Upstream, ...] | None = None
    """The resolvers to forward to; None: the nameservers of `resolv_conf`."""
    publish: bool = True
    republish_period: float = 60.0
    sync_timeout: float = 5.0


def read_upstreams(resolv_conf: Path, cluster_dns: tuple[str, ...]) -> list[Upstream]:
    try:
        text = resolv_conf.read_text()
    except OSError as error:
        log.warning("cluster DNS: cannot read %s (%s): nothing is forwarded", resolv_conf, error)
        return []
    return upstream_servers(parse_resolv_conf(text).nameservers, exclude=cluster_dns)


class NodeDns:
    def __init__(self, client: ApiClient, options: NodeDnsOptions) -> None:
        self.client = client
        self.options = options
        self.index = ClusterIndex(serial=int(time.time()))
        self.zone = Zone(domain=options.cluster_domain, nameservers=options.cluster_dns)
        self.metrics = DnsMetrics()
        upstreams = options.upstreams
        if upstreams is None:
            upstreams = tuple(read_upstreams(options.resolv_conf, options.cluster_dns))
        self.forwarder = Forwarder(upstreams, metrics=self.metrics)
        self.handler = QueryHandler(
            self.resolve,
            self.forwarder,
            metrics=self.metrics,
            generation=lambda: self.index.generation,
        )
        self.server = DnsServer(self.handler, host=options.address, port=options.port)
        # Cached without managedFields (nothing here reads them).
        self.services = Informer(client, SERVICES, transform=strip_managed_fields)
        self.endpoint_slices = Informer(client, ENDPOINTSLICES, transform=strip_managed_fields)
        self.namespaces = Informer(client, NAMESPACES, transform=strip_managed_fields)
        self._watch(self.services, self.index.put_service, self.index.delete_service)
        self._watch(self.endpoint_slices, self.index.put_slice, self.index.delete_slice)
        self._watch(self.namespaces, self.index.put_namespace, self.index.delete_namespace)
        self.ready = asyncio.Event()
        self._metrics_runner: web.AppRunner | None = None
        self.metrics_port = 0

    def resolve(self, name: str, qtype: int) -> Answer:
        return lookup(self.index, self.zone, name, qtype)

    def _watch(self, informer: Informer, put: _Apply, delete: _Apply) -> None:
        index = self.index

        def changed() -> None:
            index.serial = max(index.serial + 1, int(time.time()))

        def on_add(obj: Object) -> None:
            put(obj)
            changed()

        def on_update(_old: Object, new: Object) -> None:
            put(new)
            changed()

        def on_delete(obj: Object) -> None:
            delete(obj)
            changed()

        informer.add_handlers(on_add=on_add, on_update=on_update, on_delete=on_delete)

    async def run(self) -> None:
        informers = (self.services, self.endpoint_slices, self.namespaces)
        tasks = [
            asyncio.create_task(i.run(), name=f"dns-informer-{i.resource.plural}")
            for i in informers
        ]
        registration: DnsRegistration | None = None
        try:
            try:
                await asyncio.wait_for(
                    asyncio.gather(*(i.synced.wait() for i in informers)),
                    self.options.sync_timeout,
                )
            except TimeoutError:
                log.warning("cluster DNS: starting with an unsynced API")
            await self._listen()
            await self._serve_metrics()
            self.ready.set()
            log.info(
                "cluster DNS listening on %s:%d (upstream: %s)",
                self.options.address,
                self.server.port,
                ", ".join(f"{h}:{p}" for h, p in self.forwarder.upstreams) or "none",
            )
            if not self.options.publish:
                await asyncio.Event().wait()
            registration = DnsRegistration(
                self.client,
                DnsEndpoint(
                    self.options.node_name,
                    self.options.advertise_address or self.options.address,
                    self.server.port,
                    self.metrics_port,
                ),
            )
            while True:
                try:
                    await registration.publish()
                except Exception as error:
                    log.warning("cluster DNS: publishing the endpoint failed: %s", error)
                await asyncio.sleep(self.options.republish_period)
        finally:
            if registration is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(registration.withdraw(), 3)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.server.stop()
            if self._metrics_runner is not None:
                await self._metrics_runner.cleanup()

    async def _listen(self) -> None:
        """On `port`, or, when another process has it (another agent on this host), on
        any free port: the published endpoint says which."""
        while True:
            try:
                await self.server.start()
                return
            except OSError as error:
                if error.errno == errno.EADDRINUSE and self.server.port:
                    log.warning(
                        "cluster DNS: %s:%d is in use; listening on a free port instead",
                        self.options.address,
                        self.server.port,
                    )
                    self.server.port = 0
                    continue
                log.error(
                    "cluster DNS: cannot listen on %s (%s); retrying in %.0f s",
                    self.options.address,
                    error,
                    BIND_RETRY,
                )
                await asyncio.sleep(BIND_RETRY)

    async def _serve_metrics(self) -> None:
        """`/metrics` (CoreDNS's counter names), `/health`, `/ready`; a port in use only
        costs the metrics."""
        if not self.options.metrics_port:
            return
        from aiohttp import web

        async def metrics(_request: web.Request) -> web.Response:
            return web.Response(text=self.metrics.render(), content_type="text/plain")

        async def health(_request: web.Request) -> web.Response:
            return web.Response(text="OK")

        app = web.Application()
        app.router.add_get("/metrics", metrics)
        app.router.add_get("/health", health)
        app.router.add_get("/ready", health)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        for port in (self.options.metrics_port, 0):
            try:
                await web.TCPSite(runner, self.options.address, port).start()
                break
            except OSError as error:
                log.warning(
                    "cluster DNS: no metrics on %s:%d: %s", self.options.address, port, error
                )
        else:
            await runner.cleanup()
            return
        self._metrics_runner = runner
        bound = [address for address in runner.addresses if isinstance(address, tuple)]
        self.metrics_port = int(bound[0][1]) if bound else self.options.metrics_port
