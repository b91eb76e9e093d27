"""The resource quota controller: status.hard and status.used of ResourceQuotas (kube's
pkg/controller/resourcequota).

`used` is recounted from the namespace's objects (timonel.kinds.core.quotausage says
what each uses) for every resource the quota limits; values the controller cannot count
are kept as they were. The API server charges quotas itself when it admits a create, so
the controller does not recount on creations: it does when a quota's spec changes, when
something is released (an object deleted, a pod finished, a Service no longer taking
node ports), and every `resource_quota_sync_period` (5 minutes) for each quota.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import ClassVar

from timonel.api.objects import Object
from timonel.client.discovery import discover
from timonel.client.informer import Informer
from timonel.client.resources import (
    CONFIGMAPS,
    PERSISTENTVOLUMECLAIMS,
    PODS,
    REPLICATIONCONTROLLERS,
    RESOURCEQUOTAS,
    SECRETS,
    SERVICES,
    Resource,
)
from timonel.controllers.base import Controller
from timonel.controllers.manager import ControllerContext
from timonel.controllers.pods import meta
from timonel.kinds.core import quotausage
from timonel.kinds.core.quotausage import ResourceList, parse_resource_list

log = logging.getLogger(__name__)

DEFAULT_SYNC_PERIOD = 300.0
# How often discovery may be asked about resources a quota counts that have no informer.
DISCOVERY_INTERVAL = 30.0


# ======================================================================================
# pure decisions
# ======================================================================================


def same_resources(a: ResourceList, b: ResourceList) -> bool:
    return a.keys() == b.keys() and all(a[name] == b[name] for name in a)


def counted_resources(quota: Object) -> set[tuple[str, str]]:
    """The (group, plural) of every resource whose objects the quota's hard limits count."""
    found = set()
    for name in (quota.get("spec") or {}).get("hard") or {}:
        resource = quotausage.counted_resource(str(name))
        if resource is not None:
            found.add(resource)
    return found


def plan_quota_status(
    quota: Object, objects: dict[tuple[str, str], list[Object]], now: datetime
) -> Object | None:
    """The quota with its recounted status, or None when the status is already right."""
    spec_hard = parse_resource_list((quota.get("spec") or {}).get("hard"))
    status = quota.get("status") or {}
    previous_used = parse_resource_list(status.get("used"))
    used = dict(previous_used)
    used.update(quotausage.quota_usage(quota, objects, now))
    used = quotausage.mask(used, spec_hard)
    dirty = (
        status.get("hard") is None
        or status.get("used") is None
        or not same_resources(spec_hard, parse_resource_list(status.get("hard")))
        or not same_resources(used, previous_used)
    )
    if not dirty:
        return None
    updated = copy.deepcopy(quota)
    updated["status"] = {
        "hard": dict((quota.get("spec") or {}).get("hard") or {}),
        "used": quotausage.render(used),
    }
    return updated


def releases_quota(group: str, plural: str, old: Object, new: Object, now: datetime) -> bool:
    """Whether an update gives something back (kube's replenishment on update)."""
    if not group and plural == "pods":
        return quotausage.counts_against_quota(old, now) and not quotausage.counts_against_quota(
            new, now
        )
    if not group and plural == "services":
        return (old.get("spec") or {}).get("type") != (new.get("spec") or {}).get("type")
    if not group and plural == "persistentvolumeclaims":
        return quotausage.pvc_usage(old).get("requests.storage") != quotausage.pvc_usage(new).get(
            "requests.storage"
        )
    return False


# ======================================================================================
# the controller
# ======================================================================================


class ResourceQuotaController(Controller):
    name: ClassVar[str] = "resourcequota-controller"
    workers = 2

    def __init__(
        self, context: ControllerContext, *, clock: Callable[[], datetime] | None = None
    ) -> None:
        self.client = context.client
        self.quotas = context.informers.informer(RESOURCEQUOTAS)
        self.tracked: dict[tuple[str, str], Informer] = {
            (r.group, r.plural): context.informers.informer(r)
            for r in (
                PODS,
                SERVICES,
                CONFIGMAPS,
                SECRETS,
                PERSISTENTVOLUMECLAIMS,
                REPLICATIONCONTROLLERS,
            )
        }
        self.tracked[("", "resourcequotas")] = self.quotas
        super().__init__([self.quotas, *self.tracked.values()])
        self.now = clock or (lambda: datetime.now(UTC))
        period = context.options.get("resource_quota_sync_period", DEFAULT_SYNC_PERIOD)
        self.sync_period = (
            float(period) if isinstance(period, (int, float, str)) else DEFAULT_SYNC_PERIOD
        )
        self._other_resources: dict[tuple[str, str], Resource] = {}
        self._discovered_at = -DISCOVERY_INTERVAL
        self.quotas.add_handlers(on_add=self._enqueue, on_update=self._quota_updated)
        for (group, plural), informer in self.tracked.items():
            if (group, plural) == ("", "resourcequotas"):
                continue
            informer.add_handlers(
                on_update=self._released_by_update(group, plural), on_delete=self._released
            )

    def _enqueue(self, quota: Object) -> None:
        self.queue.add(f"{meta(quota).get('namespace', '')}/{meta(quota).get('name', '')}")

    def _quota_updated(self, old: Object, new: Object) -> None:
        old_hard = parse_resource_list((old.get("spec") or {}).get("hard"))
        if not same_resources(old_hard, parse_resource_list((new.get("spec") or {}).get("hard"))):
            self._enqueue(new)

    def _released(self, obj: Object) -> None:
        for quota in self.quotas.indexer.by_index("namespace", meta(obj).get("namespace", "")):
            self._enqueue(quota)

    def _released_by_update(self, group: str, plural: str) -> Callable[[Object, Object], None]:
        def handler(old: Object, new: Object) -> None:
            if releases_quota(group, plural, old, new, self.now()):
                self._released(new)

        return handler

    async def _objects(self, quota: Object) -> dict[tuple[str, str], list[Object]]:
        namespace = meta(quota).get("namespace", "")
        objects: dict[tuple[str, str], list[Object]] = {}
        for resource in counted_resources(quota):
            informer = self.tracked.get(resource)
            if informer is not None:
                objects[resource] = informer.indexer.by_index("namespace", namespace)
                continue
            found = await self._resource(resource)
            if found is not None and found.namespaced:
                listed = await self.client.list_all(found, namespace)
                objects[resource] = list(listed.get("items") or [])
        return objects

    async def _resource(self, wanted: tuple[str, str]) -> Resource | None:
        """A resource without an informer, found through discovery (looked up at most
        every DISCOVERY_INTERVAL seconds)."""
        if (
            wanted not in self._other_resources
            and time.monotonic() - self._discovered_at > DISCOVERY_INTERVAL
        ):
            self._discovered_at = time.monotonic()
            found = await discover(self.client)
            self._other_resources = {
                (e.resource.group, e.resource.plural): e.resource for e in found.preferred
            }
        return self._other_resources.get(wanted)

    async def sync(self, key: str) -> None:
        quota = self.quotas.get(key)
        if quota is None:
            return
        updated = plan_quota_status(quota, await self._objects(quota), self.now())
        if updated is not None:
            await self.client.update_status(RESOURCEQUOTAS, updated)
        self.queue.add_after(key, self.sync_period)
