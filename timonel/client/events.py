"""Recording Events about objects, as client-go's recorder does: the same event repeated
is one Event whose count and lastTimestamp grow."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from dataclasses import dataclass, field

from timonel.api.errors import StatusError
from timonel.api.objects import Object, now_rfc3339
from timonel.client.resources import EVENTS
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


@dataclass
class EventRecorder:
    client: ApiClient
    component: str
    host: str = ""
    _seen: dict[tuple[str, ...], Object] = field(default_factory=dict)
    _buckets: dict[tuple[str, str, str], _Bucket] = field(default_factory=dict)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

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

    def event(
        self, obj: Object, type_: str, reason: str, message: str, *, field_path: str = ""
    ) -> None:
        """Record in the background: recording must never slow down or fail the caller.
        `field_path` names a part of the object (kubelet: `spec.containers{web}`). Events
        about one object beyond the spam filter's budget are dropped."""
        if not self._allowed(obj):
            return
        task = asyncio.get_running_loop().create_task(
            self._record(obj, type_, reason, message, field_path)
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _record(
        self, obj: Object, type_: str, reason: str, message: str, field_path: str = ""
    ) -> None:
        reference = object_reference(obj)
        if field_path:
            reference["fieldPath"] = field_path
        namespace = reference.get("namespace") or "default"
        key = (
            reference.get("uid", ""),
            reference.get("kind", ""),
            reference.get("name", ""),
            field_path,
            type_,
            reason,
            message,
        )
        now = now_rfc3339()
        try:
            previous = self._seen.get(key)
            if previous is not None:
                previous["count"] = int(previous.get("count", 1)) + 1
                previous["lastTimestamp"] = now
                try:
                    self._seen[key] = await self.client.update(EVENTS, previous)
                    return
                except StatusError:
                    self._seen.pop(key, None)
            source = {"component": self.component}
            if self.host:
                source["host"] = self.host
            event: Object = {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {
                    "name": f"{reference.get('name', 'object')}.{secrets.token_hex(8)}",
                    "namespace": namespace,
                },
                "involvedObject": reference,
                "reason": reason,
                "message": message,
                "type": type_,
                "source": source,
                "firstTimestamp": now,
                "lastTimestamp": now,
                "count": 1,
                "reportingComponent": self.component,
                "reportingInstance": self.host,
            }
            self._seen[key] = await self.client.create(EVENTS, event, namespace)
            if len(self._seen) > 4096:
                self._seen.pop(next(iter(self._seen)))
        except Exception as exc:
            log.debug("could not record event %s for %s: %s", reason, reference.get("name"), exc)
