"""The shape every controller has (see style rule 1: handlers enqueue keys, only
`sync(key)` does work).

A controller owns a work queue and the informers it reads. Informer handlers turn
objects into keys and enqueue them; `run(workers)` waits until the informers are synced,
then each worker loops: take a key → `sync(key)` → forget it on success, re-add it with
backoff on failure (or after `Requeue.after` seconds) → done. `sync` re-reads state
from the informers every time, so it is level-triggered and safe to run at any moment.
"""

from __future__ import annotations

import asyncio
import logging
from typing import ClassVar

from timonel.api.errors import StatusError
from timonel.client.informer import Informer
from timonel.client.workqueue import WorkQueue

log = logging.getLogger(__name__)


class Requeue(Exception):
    """Raised by `sync` to look at the key again after `after` seconds."""

    def __init__(self, after: float) -> None:
        super().__init__(f"requeue after {after}s")
        self.after = after


class Controller:
    name: ClassVar[str] = "controller"

    def __init__(self, informers: list[Informer]) -> None:
        self.queue = WorkQueue()
        self.informers = informers

    async def sync(self, key: str) -> None:
        raise NotImplementedError

    async def run(self, workers: int = 1) -> None:
        await asyncio.gather(*(informer.synced.wait() for informer in self.informers))
        try:
            await asyncio.gather(*(self._worker() for _ in range(workers)))
        finally:
            self.queue.shutdown()

    async def _worker(self) -> None:
        while True:
            key = await self.queue.get()
            if key is None:
                return
            try:
                await self.sync(key)
                self.queue.forget(key)
            except Requeue as requeue:
                self.queue.forget(key)
                self.queue.add_after(key, requeue.after)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                level = logging.DEBUG if self.queue.failures(key) < 3 else logging.WARNING
                # An API refusal is an expected outcome (a terminating namespace, a quota):
                # only unexpected failures deserve a traceback.
                trace = level > logging.DEBUG and not isinstance(exc, StatusError)
                log.log(level, "%s: sync %s failed: %s", self.name, key, exc, exc_info=trace)
                self.queue.add_rate_limited(key)
            finally:
                self.queue.done(key)
