"""The controller manager: builds every controller over one shared informer factory and
runs them while this process holds the `kube-controller-manager` lease."""

from __future__ import annotations

import asyncio
import logging
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from timonel.client.events import EventRecorder
from timonel.client.informer import InformerFactory, strip_managed_fields
from timonel.client.leaderelection import LeaderElector
from timonel.client.rest import ApiClient
from timonel.controllers.base import Controller

log = logging.getLogger(__name__)


@dataclass
class ControllerContext:
    """What a controller constructor may use."""

    client: ApiClient
    informers: InformerFactory
    recorder: Callable[[str], EventRecorder]
    options: dict[str, object] = field(default_factory=dict)


ControllerFactory = Callable[[ControllerContext], Controller]


def builtin_controllers() -> dict[str, ControllerFactory]:
    """Every controller timonel runs, by name (as kube-controller-manager's --controllers)."""
    from timonel.controllers import registry

    return registry.CONTROLLERS


class ControllerManager:
    def __init__(
        self,
        client: ApiClient,
        *,
        enabled: dict[str, ControllerFactory] | None = None,
        options: dict[str, object] | None = None,
        leader_elect: bool = True,
    ) -> None:
        self.client = client
        self.factories = enabled if enabled is not None else builtin_controllers()
        self.options = options or {}
        self.leader_elect = leader_elect
        self.identity = f"{socket.gethostname()}_{uuid.uuid4()}"

    async def run(self) -> None:
        if not self.leader_elect:
            await self._lead()
            return
        elector = LeaderElector(self.client, "kube-controller-manager", self.identity)
        await elector.run(self._lead)

    async def _lead(self) -> None:
        factory = InformerFactory(self.client, transform=strip_managed_fields)
        recorders: list[EventRecorder] = []

        def recorder(component: str) -> EventRecorder:
            recorders.append(EventRecorder(self.client, component))
            return recorders[-1]

        context = ControllerContext(
            client=self.client, informers=factory, recorder=recorder, options=self.options
        )
        controllers = [make(context) for make in self.factories.values()]
        factory.start()
        try:
            await asyncio.gather(
                *(
                    controller.run(workers=getattr(controller, "workers", 2))
                    for controller in controllers
                )
            )
        finally:
            await factory.stop()
            await asyncio.gather(*(r.close() for r in recorders))
