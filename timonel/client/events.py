"""Recording Events about objects, as client-go's two recorders do.

The core/v1 recorder (`tools/record`, which kube-controller-manager's controllers and the
kubelet use) writes `source` and the legacy timestamps; the same event repeated is one
Event whose count and lastTimestamp grow. Its `reportingComponent` is the component and
`reportingInstance` the host, and it has no `action`.

The events.k8s.io/v1 recorder (`tools/events`, kube-scheduler's) writes `eventTime`,
`action`, `reportingController` and `reportingInstance` (`<controller>-<hostname>`) and no
`source`; a repeat becomes a `series` whose count starts at 2.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from timonel.api.errors import StatusError
from timonel.api.objects import Object, now_rfc3339
from timonel.client.resources import EVENTS, EVENTS_V1
from timonel.client.rest import ApiClient

log = logging.getLogger(__name__)


def object_reference(obj: Object) -> dict[str, str]:
    meta = obj.get("metadata") or {}
    reference = {
        "kind": obj.get("kind", ""),
        "apiVersion": obj.get("apiVersion", ""),
        "name": meta.get("name", ""),
        "uid": meta.get("uid", ""),
        "resourceVersion": meta.get("resourceVersion", ""),
    }
    if meta.get("namespace"):
        reference["namespace"] = meta["namespace"]
    return {k: v for k, v in reference.items() if v}


# As client-go's spam filter: per involved object, a burst of 25 events, then one per 5 minutes.
SPAM_BURST = 25
SPAM_REFILL_SECONDS = 300.0


@dataclass
class _Bucket:
    tokens: float
    updated: float


def now_micro_time() -> str:
    """A metav1.MicroTime for now: RFC 3339 with six fractional digits, as `eventTime` is."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class EventRecorder:
    client: ApiClient
    component: str
    host: str = ""
    # Record through events.k8s.io/v1 as client-go's `tools/events` recorder does.
    events_api: bool = False
    _seen: dict[tuple[str, ...], Object] = field(default_factory=dict)
    _buckets: dict[tuple[str, str, str], _Bucket] = field(default_factory=dict)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _last_name_stamp: int = 0

    async def close(self, grace: float = 1.0) -> None:
        """Give the events being written `grace` seconds, then cancel the rest."""
        pending = set(self._tasks)
        if pending:
            _, late = await asyncio.wait(pending, timeout=grace)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)

    def _allowed(self, obj: Object) -> bool:
        meta = obj.get("metadata") or {}
        key = (
            obj.get("kind", ""),
            meta.get("namespace", ""),
            meta.get("uid") or meta.get("name", ""),
        )
        now = time.monotonic()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) > 4096:
                self._buckets.pop(next(iter(self._buckets)))
            bucket = self._buckets[key] = _Bucket(SPAM_BURST, now)
        bucket.tokens = min(
            SPAM_BURST, bucket.tokens + (now - bucket.updated) / SPAM_REFILL_SECONDS
        )
        bucket.updated = now
        if bucket.tokens < 1:
            return False
        bucket.tokens -= 1
        return True

    @property
    def reporting_instance(self) -> str:
        if self.events_api:
            return f"{self.component}-{self.host}" if self.host else self.component
        return self.host

    def event(
        self,
        obj: Object,
        type_: str,
        reason: str,
        message: str,
        *,
        field_path: str = "",
        action: str = "",
    ) -> None:
        """Record in the background: recording must never slow down or fail the caller.
        `field_path` names a part of the object (kubelet: `spec.containers{web}`); `action`
        what was being done (events.k8s.io: `Scheduling`, `Binding`). Events about one
        object beyond the spam filter's budget are dropped."""
        if not self._allowed(obj):
            return
        task = asyncio.get_running_loop().create_task(
            self._record(obj, type_, reason, message, field_path, action)
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _record(
        self, obj: Object, type_: str, reason: str, message: str, field_path: str, action: str
    ) -> None:
        """Create the event, or count one more of an event recorded before."""
        reference = object_reference(obj)
        if field_path:
            reference["fieldPath"] = field_path
        key = (
            reference.get("uid", ""),
            reference.get("kind", ""),
            reference.get("name", ""),
            field_path,
            type_,
            reason,
            action,
            message,
        )
        resource = EVENTS_V1 if self.events_api else EVENTS
        try:
            previous = self._seen.get(key)
            if previous is not None:
                self._count_repeat(previous)
                try:
                    self._seen[key] = await self.client.update(resource, previous)
                    return
                except StatusError:
                    self._seen.pop(key, None)
            event = self._new_event(reference, type_, reason, message, action)
            namespace = event["metadata"]["namespace"]
            self._seen[key] = await self.client.create(resource, event, namespace)
            if len(self._seen) > 4096:
                self._seen.pop(next(iter(self._seen)))
        except Exception as exc:
            log.debug("could not record event %s for %s: %s", reason, reference.get("name"), exc)

    def _count_repeat(self, event: Object) -> None:
        if self.events_api:
            series = event.get("series") or {}
            event["series"] = {
                "count": int(series.get("count", 1)) + 1,
                "lastObservedTime": now_micro_time(),
            }
        else:
            event["count"] = int(event.get("count", 1)) + 1
            event["lastTimestamp"] = now_rfc3339()

    def _name_stamp(self) -> int:
        """As client-go names events: `<object>.<hex of the time in nanoseconds>`; never
        the same number twice from one recorder, so two events cannot collide here."""
        stamp = max(time.time_ns(), self._last_name_stamp + 1)
        self._last_name_stamp = stamp
        return stamp

    def _new_event(
        self, reference: dict[str, str], type_: str, reason: str, message: str, action: str
    ) -> Object:
        metadata = {
            "name": f"{reference.get('name', 'object')}.{self._name_stamp():x}",
            "namespace": reference.get("namespace") or "default",
        }
        if self.events_api:
            return {
                "apiVersion": "events.k8s.io/v1",
                "kind": "Event",
                "metadata": metadata,
                "eventTime": now_micro_time(),
                "reportingController": self.component,
                "reportingInstance": self.reporting_instance,
                "action": action or reason,
                "reason": reason,
                "regarding": reference,
                "note": message,
                "type": type_,
            }
        now = now_rfc3339()
        source = {"component": self.component}
        if self.host:
            source["host"] = self.host
        return {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": metadata,
            "involvedObject": reference,
            "reason": reason,
            "message": message,
            "type": type_,
            "source": source,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
            "reportingComponent": self.component,
            "reportingInstance": self.reporting_instance,
        }
