"""The node's host-gw routes, kept in line with the Nodes (thin I/O over routes.py).

`HostGatewayRoutes(client, node_name).run()` watches the Nodes and, whenever a node's
podCIDR or InternalIP appears, changes or goes (and every `resync_period` seconds, which
repairs routes removed by hand), brings this network namespace's routes of
`ROUTE_PROTOCOL` in line with `desired_routes` using `ip route replace` / `ip route del`.
Failures are logged and retried with a growing pause; they never end the agent. When cancelled (clean
shutdown) it removes every route it owns.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Final

from timonel.agent.podnetwork.routes import (
    ROUTE_PROTOCOL,
    ListedRoute,
    Route,
    desired_routes,
    parse_route_listing,
    plan_routes,
    routing_facts,
    routing_view,
)
from timonel.api.objects import Object
from timonel.client.informer import Informer
from timonel.client.resources import NODES
from timonel.client.rest import ApiClient

log = logging.getLogger(__name__)

RETRY_PAUSE: Final = 2.0
CLEANUP_TIMEOUT: Final = 5.0


class RouteCommandError(OSError):
    pass


class IpRoutes:
    """`ip route` on the main IPv4 table of this process's network namespace (or `netns`,
    a name under /run/netns)."""

    def __init__(self, *, netns: str | None = None, protocol: int = ROUTE_PROTOCOL) -> None:
        self.netns = netns
        self.protocol = protocol

    async def _ip(self, *args: str) -> str:
        command = ["ip", *(["-n", self.netns] if self.netns else []), *args]
        process = await asyncio.create_subprocess_exec(
            *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        out, err = await process.communicate()
        if process.returncode != 0:
            raise RouteCommandError(f"{' '.join(command)}: {err.decode().strip()}")
        return out.decode()

    async def listed(self) -> list[ListedRoute]:
        return parse_route_listing(await self._ip("-j", "-4", "route", "show", "table", "main"))

    async def replace(self, route: Route) -> None:
        await self._ip(
            "-4", "route", "replace", route.destination, "via", route.gateway,
            "proto", str(self.protocol),
        )  # fmt: skip

    async def delete(self, route: Route) -> None:
        await self._ip("-4", "route", "del", route.destination, "proto", str(self.protocol))


class HostGatewayRoutes:
    def __init__(
        self,
        client: ApiClient,
        node_name: str,
        *,
        routes: IpRoutes | None = None,
        resync_period: float = 60.0,
    ) -> None:
        self.node_name = node_name
        self.routes = routes or IpRoutes()
        self.resync_period = resync_period
        self.nodes = Informer(client, NODES, transform=routing_view)
        self.changed = asyncio.Event()
        self._conflicts: tuple[Route, ...] = ()
        self._failures: list[str] = []
        self.synced = asyncio.Event()
        """Set after the first pass in which every change succeeded."""
        self.nodes.add_handlers(
            on_add=lambda _node: self.changed.set(),
            on_update=self._node_updated,
            on_delete=lambda _node: self.changed.set(),
        )

    def _node_updated(self, old: Object, new: Object) -> None:
        if routing_facts(old) != routing_facts(new):
            self.changed.set()

    async def run(self) -> None:
        watching = asyncio.create_task(self.nodes.run(), name="pod-routes-nodes")
        pause = RETRY_PAUSE
        try:
            await self.nodes.synced.wait()
            while True:
                self.changed.clear()
                try:
                    failures = await self.sync()
                except OSError as error:
                    failures = [str(error)]
                wait = self.resync_period
                if failures:
                    level = logging.WARNING if failures != self._failures else logging.DEBUG
                    log.log(level, "pod routes: %s; retrying", "; ".join(failures))
                    wait, pause = pause, min(pause * 2, self.resync_period)
                else:
                    pause = RETRY_PAUSE
                    self.synced.set()
                self._failures = failures
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.changed.wait(), wait)
        finally:
            watching.cancel()
            await asyncio.gather(watching, return_exceptions=True)
            with contextlib.suppress(OSError, TimeoutError):
                await asyncio.wait_for(self.remove_all(), CLEANUP_TIMEOUT)

    async def sync(self) -> list[str]:
        """One pass: remove, install and repoint routes, each on its own (a gateway that is
        not on a local link fails only its route). → what failed."""
        desired = desired_routes(self.node_name, self.nodes.all())
        plan = plan_routes(desired, await self.routes.listed(), self.routes.protocol)
        if plan.conflicts != self._conflicts:
            self._conflicts = plan.conflicts
            for route in plan.conflicts:
                log.warning(
                    "pod routes: %s is already routed by someone else; not routing it via %s",
                    route.destination,
                    route.gateway,
                )
        failures: list[str] = []
        for route in plan.delete:
            try:
                await self.routes.delete(route)
            except OSError as error:
                failures.append(str(error))
            else:
                log.info("pod routes: removed %s via %s", route.destination, route.gateway)
        for route in plan.replace:
            try:
                await self.routes.replace(route)
            except OSError as error:
                failures.append(str(error))
            else:
                log.info("pod routes: %s via %s", route.destination, route.gateway)
        return failures

    async def remove_all(self) -> None:
        """Remove every route of ours (clean shutdown)."""
        plan = plan_routes((), await self.routes.listed(), self.routes.protocol)
        for route in plan.delete:
            await self.routes.delete(route)
        if plan.delete:
            log.info("pod routes: removed %d routes", len(plan.delete))
