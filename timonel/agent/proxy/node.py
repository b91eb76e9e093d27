"""What a node agent runs for Service traffic: the proxy and the network policy enforcer.

`run_node_networking(client, node_name)` runs both until cancelled, each restarted (with a
growing pause) if it fails, so a missing iptables binary or a transient API error never
takes the rest of the agent down. On cancellation both remove their rules.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from timonel.agent.netpol.enforcer import NodeNetworkPolicy
from timonel.agent.proxy.iptables import Iptables
from timonel.agent.proxy.proxier import NodeProxy
from timonel.agent.proxy.rules import ProxyOptions
from timonel.client.rest import ApiClient

log = logging.getLogger(__name__)


async def _supervised(name: str, start: Callable[[], Awaitable[None]]) -> None:
    pause = 1.0
    while True:
        try:
            await start()
            return
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log.error("%s stopped: %s; restarting in %.0f s", name, error, pause)
        await asyncio.sleep(pause)
        pause = min(pause * 2, 60.0)


async def run_node_networking(
    client: ApiClient,
    node_name: str,
    *,
    cluster_cidr: str = "",
    iptables: Iptables | None = None,
) -> None:
    """The service proxy and network policies of `node_name`, in this process's network
    namespace (or `iptables.netns`)."""
    iptables = iptables or Iptables()
    options = ProxyOptions(cluster_cidr=cluster_cidr)

    async def proxy() -> None:
        await NodeProxy(client, node_name, options=options, iptables=iptables).run()

    async def policies() -> None:
        await NodeNetworkPolicy(client, node_name, iptables=iptables).run()

    await asyncio.gather(
        _supervised("service proxy", proxy), _supervised("network policies", policies)
    )
