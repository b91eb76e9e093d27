"""Leader election: what stopping an election stops."""

from __future__ import annotations

import asyncio
from typing import Any

from timonel.api import errors
from timonel.api.objects import Object
from timonel.client.leaderelection import LeaderElector
from timonel.client.resources import Resource


class LeaseStore:
    """Stands in for ApiClient with one Lease, counting the requests made."""

    def __init__(self) -> None:
        self.lease: Object | None = None
        self.requests = 0

    async def get(self, resource: Resource, name: str, namespace: str = "") -> Object:
        self.requests += 1
        if self.lease is None:
            raise errors.StatusError(404, "NotFound", "not found")
        return dict(self.lease)

    async def create(self, resource: Resource, obj: Object, namespace: str = "") -> Object:
        self.requests += 1
        self.lease = obj
        return obj

    async def update(self, resource: Resource, obj: Object, **_: Any) -> Object:
        self.requests += 1
        self.lease = obj
        return obj


async def test_cancelling_the_election_stops_the_component_it_leads() -> None:
    store = LeaseStore()
    elector = LeaderElector(store, "kube-scheduler", "me", retry_period=0.01)  # type: ignore[arg-type]
    leading = asyncio.Event()
    stopped = asyncio.Event()

    async def lead() -> None:
        leading.set()
        try:
            await asyncio.Event().wait()
        finally:
            stopped.set()

    election = asyncio.create_task(elector.run(lead))
    await asyncio.wait_for(leading.wait(), 5)
    await asyncio.sleep(0.05)  # some renewals
    election.cancel()
    await asyncio.gather(election, return_exceptions=True)

    assert stopped.is_set(), "the led component outlived its election"
    requests = store.requests
    await asyncio.sleep(0.05)
    assert store.requests == requests, "the lease is still being renewed"
