"""kube-scheduler as a component: informers feed the scheduler's cache and queue, binding
and failure reports go through the API. Runs while holding the `kube-scheduler` lease."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import socket
import uuid
from collections.abc import Callable

from timonel.api.errors import StatusError
from timonel.api.objects import Object, now_rfc3339
from timonel.client.events import EventRecorder
from timonel.client.informer import Informer, InformerFactory, strip_managed_fields
from timonel.client.leaderelection import LeaderElector
from timonel.client.resources import (
    NAMESPACES,
    NODES,
    PODS,
    REPLICASETS,
    REPLICATIONCONTROLLERS,
    SERVICES,
    STATEFULSETS,
)
from timonel.client.rest import ApiClient
from timonel.scheduler import (
    EVENT_FAILED_SCHEDULING,
    EVENT_SCHEDULED,
    REASON_SCHEDULER_ERROR,
    REASON_UNSCHEDULABLE,
    Scheduler,
    event_note,
    scheduled_message,
)

log = logging.getLogger(__name__)

COMPONENT = "default-scheduler"
# As kube-scheduler: terminal pods hold no resources and need no scheduling.
ACTIVE_PODS = "status.phase!=Succeeded,status.phase!=Failed"
SHUTDOWN_GRACE_SECONDS = 2.0


class SchedulerComponent:
    def __init__(self, client: ApiClient, *, leader_elect: bool = True) -> None:
        self.client = client
        self.leader_elect = leader_elect
        self.identity = f"{socket.gethostname()}_{uuid.uuid4()}"
        # kube-scheduler records through events.k8s.io/v1, as `<scheduler>-<hostname>`.
        self.recorder = EventRecorder(client, COMPONENT, host=socket.gethostname(), events_api=True)

    async def run(self) -> None:
        if not self.leader_elect:
            await self._lead()
            return
        await LeaderElector(self.client, "kube-scheduler", self.identity).run(self._lead)

    async def _lead(self) -> None:
        scheduler = Scheduler(
            bind=self._bind, on_unschedulable=self._unschedulable, on_error=self._error
        )
        factory = InformerFactory(self.client, transform=strip_managed_fields)
        _feed(
            factory.informer(NODES),
            scheduler.on_node_add,
            scheduler.on_node_update,
            scheduler.on_node_delete,
        )
        _feed(
            factory.informer(PODS, field_selector=ACTIVE_PODS),
            scheduler.on_pod_add,
            scheduler.on_pod_update,
            scheduler.on_pod_delete,
        )
        for resource, handler in (
            (NAMESPACES, scheduler.on_namespace),
            (SERVICES, scheduler.on_service),
            (REPLICASETS, scheduler.on_replica_set),
            (STATEFULSETS, scheduler.on_stateful_set),
            (REPLICATIONCONTROLLERS, scheduler.on_replication_controller),
        ):
            _feed_pairs(factory.informer(resource), handler)
        factory.start()
        try:
            await factory.wait_for_sync()
            await scheduler.run()
        finally:
            await factory.stop()
            # Bindings already under way finish (or are cancelled after the grace period).
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(scheduler.wait_idle(), SHUTDOWN_GRACE_SECONDS)
            await self.recorder.close()

    async def _bind(self, pod: Object, node_name: str) -> None:
        meta = pod["metadata"]
        binding = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta.get("uid", ""),
            },
            "target": {"apiVersion": "v1", "kind": "Node", "name": node_name},
        }
        await self.client.create_subresource(
            PODS, meta["name"], "binding", binding, meta["namespace"]
        )
        self.recorder.event(
            pod, "Normal", EVENT_SCHEDULED, scheduled_message(pod, node_name), action="Binding"
        )

    async def _unschedulable(self, pod: Object, message: str) -> None:
        await self._report_failure(pod, REASON_UNSCHEDULABLE, message)

    async def _error(self, pod: Object, message: str) -> None:
        await self._report_failure(pod, REASON_SCHEDULER_ERROR, message)

    async def _report_failure(self, pod: Object, reason: str, message: str) -> None:
        self.recorder.event(
            pod, "Warning", EVENT_FAILED_SCHEDULING, event_note(message), action="Scheduling"
        )
        meta = pod["metadata"]
        for _ in range(3):
            try:
                current = await self.client.get(PODS, meta["name"], meta["namespace"])
            except StatusError:
                return
            if (current.get("spec") or {}).get("nodeName"):
                return
            updated = copy.deepcopy(current)
            if not _set_scheduled_condition(updated, reason, message):
                return
            try:
                await self.client.update_status(PODS, updated)
                return
            except StatusError as exc:
                if exc.code != 409:
                    log.debug("could not record %s for %s: %s", reason, meta["name"], exc)
                    return
            await asyncio.sleep(0)


def _set_scheduled_condition(pod: Object, reason: str, message: str) -> bool:
    """PodScheduled=False with the reason and message; False when nothing changes."""
    conditions = pod.setdefault("status", {}).setdefault("conditions", [])
    for condition in conditions:
        if condition.get("type") == "PodScheduled":
            if (condition.get("status"), condition.get("reason"), condition.get("message")) == (
                "False",
                reason,
                message,
            ):
                return False
            if condition.get("status") != "False":
                condition["lastTransitionTime"] = now_rfc3339()
            condition.update(
                {"status": "False", "reason": reason, "message": message, "lastProbeTime": None}
            )
            return True
    conditions.append(
        {
            "type": "PodScheduled",
            "status": "False",
            "reason": reason,
            "message": message,
            "lastProbeTime": None,
            "lastTransitionTime": now_rfc3339(),
        }
    )
    return True


def _feed(
    informer: Informer,
    add: Callable[[Object], None],
    update: Callable[[Object, Object], None],
    delete: Callable[[Object], None],
) -> None:
    informer.add_handlers(on_add=add, on_update=update, on_delete=delete)


def _feed_pairs(
    informer: Informer, handler: Callable[[Object | None, Object | None], None]
) -> None:
    informer.add_handlers(
        on_add=lambda new: handler(None, new),
        on_update=handler,
        on_delete=lambda old: handler(old, None),
    )
