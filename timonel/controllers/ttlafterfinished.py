"""The TTL-after-finished controller: a finished Job with `ttlSecondsAfterFinished` is
deleted (with its pods, in the foreground) that many seconds after it finished, as
kube-controller-manager's ttl-after-finished-controller does.

The Job finished when its Complete or Failed condition turned true. Before deleting, the
controller re-reads the Job from the API server: its TTL may have changed since the
informer saw it, and the deletion is made conditional on the uid it checked.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import ClassVar

from timonel.api.errors import StatusError
from timonel.api.objects import Object, object_key
from timonel.client.resources import JOBS
from timonel.controllers.base import Controller, Requeue
from timonel.controllers.job import finish_time, is_finished
from timonel.controllers.manager import ControllerContext
from timonel.controllers.pods import meta
from timonel.util.clock import clock_option

COMPONENT = "ttl-after-finished-controller"


def needs_cleanup(job: Object) -> bool:
    ttl = (job.get("spec") or {}).get("ttlSecondsAfterFinished")
    return isinstance(ttl, int) and not isinstance(ttl, bool) and is_finished(job)


def expiry(job: Object) -> datetime | None:
    """When the Job's time is up: its finish time plus its TTL (None when it does not
    need cleaning up or says nothing about when it finished)."""
    if meta(job).get("deletionTimestamp") or not needs_cleanup(job):
        return None
    finished = finish_time(job)
    if finished is None:
        return None
    return finished + timedelta(seconds=int((job.get("spec") or {})["ttlSecondsAfterFinished"]))


def seconds_left(job: Object, now: datetime) -> float | None:
    """Seconds until the Job expires (<= 0: it has), None if it never does."""
    expires = expiry(job)
    if expires is None:
        return None
    return (expires - now).total_seconds()


class TTLAfterFinishedController(Controller):
    name: ClassVar[str] = COMPONENT
    # kube-controller-manager's default --concurrent-*-syncs.
    workers: ClassVar[int] = 5

    def __init__(self, context: ControllerContext) -> None:
        self.client = context.client
        self.clock = clock_option(context.options)
        self.jobs = context.informers.informer(JOBS)
        super().__init__([self.jobs])
        self.jobs.add_handlers(on_add=self._on_job, on_update=lambda old, new: self._on_job(new))

    def _on_job(self, job: Object) -> None:
        if not meta(job).get("deletionTimestamp") and needs_cleanup(job):
            self.queue.add(object_key(job))

    async def sync(self, key: str) -> None:
        job = self.jobs.get(key)
        if job is None or not self._expired(job):
            return
        namespace, _, name = key.partition("/")
        try:
            fresh = await self.client.get(JOBS, name, namespace)
        except StatusError as error:
            if error.code == 404:
                return
            raise
        if not self._expired(fresh):
            return
        try:
            await self.client.delete(
                JOBS,
                name,
                namespace,
                propagation_policy="Foreground",
                preconditions={"uid": str(meta(fresh).get("uid", ""))},
            )
        except StatusError as error:
            if error.code not in (404, 409):
                raise

    def _expired(self, job: Object) -> bool:
        """processTTL: True when the TTL is up; otherwise look again when it will be."""
        left = seconds_left(job, self.clock.now())
        if left is None:
            return False
        if left <= 0:
            return True
        raise Requeue(self.clock.delay(left))
