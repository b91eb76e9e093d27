"""Leader election over a coordination.k8s.io Lease, as client-go's leaderelection: the
holder renews the lease before `renew_deadline`; others take it over once it has not
been renewed for `lease_duration`. Conflicting writes lose with a 409, so two servers
can never both believe they lead."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from timonel.api.errors import StatusError
from timonel.api.objects import Object
from timonel.client.resources import LEASES
from timonel.client.rest import ApiClient

log = logging.getLogger(__name__)


def _micro_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@dataclass
class LeaderElector:
    client: ApiClient
    name: str
    identity: str
    namespace: str = "kube-system"
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0

    async def run(self, lead: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Acquire the lease, then run `lead()` while renewing; `lead` is cancelled as
        soon as leadership is lost, and the election starts over."""
        while True:
            await self._acquire()
            log.info("%s became leader of %s", self.identity, self.name)
            leading = asyncio.create_task(lead())
            renewing = asyncio.create_task(self._renew_until_lost())
            try:
                done, _ = await asyncio.wait(
                    {leading, renewing}, return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                # Also when this election is cancelled: whoever stops it expects the
                # component it leads to have stopped too.
                for task in (leading, renewing):
                    task.cancel()
                await asyncio.gather(leading, renewing, return_exceptions=True)
            if leading in done and not leading.cancelled() and leading.exception() is None:
                return
            log.warning("%s lost leadership of %s", self.identity, self.name)

    async def _acquire(self) -> None:
        while not await self._try_acquire_or_renew():
            await asyncio.sleep(self.retry_period)

    async def _renew_until_lost(self) -> None:
        last_renewed = asyncio.get_running_loop().time()
        while True:
            await asyncio.sleep(self.retry_period)
            if await self._try_acquire_or_renew():
                last_renewed = asyncio.get_running_loop().time()
            elif asyncio.get_running_loop().time() - last_renewed > self.renew_deadline:
                return

    async def _try_acquire_or_renew(self) -> bool:
        now = _micro_now()
        try:
            lease: Object | None = await self.client.get(LEASES, self.name, self.namespace)
        except StatusError as exc:
            if exc.code != 404:
                return False
            lease = None
        spec_wanted = {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": int(self.lease_duration),
            "renewTime": now,
        }
        try:
            if lease is None:
                await self.client.create(
                    LEASES,
                    {
                        "apiVersion": "coordination.k8s.io/v1",
                        "kind": "Lease",
                        "metadata": {"name": self.name, "namespace": self.namespace},
                        "spec": {**spec_wanted, "acquireTime": now, "leaseTransitions": 0},
                    },
                    self.namespace,
                )
                return True
            spec = lease.get("spec") or {}
            holder = spec.get("holderIdentity")
            if holder and holder != self.identity:
                renewed = _parse(spec.get("renewTime"))
                duration = timedelta(
                    seconds=spec.get("leaseDurationSeconds") or self.lease_duration
                )
                if renewed is not None and datetime.now(UTC) < renewed + duration:
                    return False
                spec["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + 1
                spec["acquireTime"] = now
            elif not holder:
                spec["acquireTime"] = now
            spec.update(spec_wanted)
            lease["spec"] = spec
            await self.client.update(LEASES, lease)
            return True
        except StatusError:
            return False
