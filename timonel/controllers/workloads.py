"""What the DaemonSet, StatefulSet and Job controllers share: pods made from a template,
selector checks, slow-start batches of writes, and a per-key failure backoff."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from timonel.api.errors import StatusError
from timonel.api.objects import Object
from timonel.controllers.pods import meta
from timonel.kinds.apps.selector import convert_selector

SLOW_START_INITIAL_BATCH_SIZE = 1
NAMESPACE_TERMINATING_CAUSE = "NamespaceTerminating"


def with_kind(obj: Object, api_version: str, kind: str) -> Object:
    """A shallow copy that says what it is (objects listed by informers may not), as
    events and object references need."""
    typed = dict(obj)
    typed["apiVersion"] = api_version
    typed["kind"] = kind
    return typed


def selector_matches(selector: Any, labels: Any) -> bool:
    """Whether a metav1.LabelSelector selects these labels (a nil or invalid selector
    selects nothing)."""
    if selector is None:
        return False
    converted = convert_selector(selector)
    return converted is not None and converted.matches(labels if isinstance(labels, dict) else {})


def pod_from_template(
    template: Object, owner: Object, reference: dict[str, Any], *, generate_name: str | None = None
) -> Object:
    """controller.GetPodFromTemplate: the template's labels, annotations, finalizers and
    spec, owned by `reference`, named `<owner>-<random>` unless told otherwise."""
    template_meta = meta(template)
    owner_name = str(meta(owner).get("name", ""))
    pod_meta: dict[str, Any] = {
        "generateName": generate_name if generate_name is not None else f"{owner_name}-",
        "namespace": meta(owner).get("namespace", ""),
        "labels": dict(template_meta.get("labels") or {}),
        "ownerReferences": [dict(reference)],
    }
    if template_meta.get("annotations"):
        pod_meta["annotations"] = dict(template_meta["annotations"])
    if template_meta.get("finalizers"):
        pod_meta["finalizers"] = list(template_meta["finalizers"])
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": pod_meta,
        "spec": copy.deepcopy(template.get("spec") or {}),
    }


def namespace_terminating(error: BaseException) -> bool:
    """The write failed because the namespace is being deleted: every further write
    there will fail too, and there is nothing to retry."""
    if not isinstance(error, StatusError):
        return False
    causes = (error.details or {}).get("causes") or []
    return any(isinstance(c, dict) and c.get("type") == NAMESPACE_TERMINATING_CAUSE for c in causes)


@dataclass
class BatchResult:
    errors: list[BaseException]
    skipped: int


async def in_slow_start_batches(
    count: int,
    write: Callable[[int], Awaitable[None]],
    initial: int = SLOW_START_INITIAL_BATCH_SIZE,
) -> BatchResult:
    """Run `write(0..count-1)` in batches of 1, 2, 4, ... concurrently within a batch,
    stopping after a batch in which a write failed (kube's slowStartBatch): a template
    that cannot be created fails once, not `count` times."""
    errors: list[BaseException] = []
    done = 0
    size = min(count, initial)
    while size > 0:
        results = await asyncio.gather(
            *(write(done + i) for i in range(size)), return_exceptions=True
        )
        failures = [r for r in results if isinstance(r, BaseException)]
        for failure in failures:
            if isinstance(failure, asyncio.CancelledError):
                raise failure
        errors.extend(failures)
        done += size
        if failures:
            break
        size = min(2 * size, count - done)
    return BatchResult(errors, count - done)


class FailureBackoff:
    """flowcontrol.Backoff: per key, a delay that starts at `initial`, doubles on each
    failure up to `maximum`, and is forgotten after twice `maximum` without failures."""

    def __init__(self, initial: float, maximum: float) -> None:
        self.initial = initial
        self.maximum = maximum
        self._entries: dict[str, tuple[float, datetime]] = {}

    def in_backoff(self, key: str, now: datetime) -> bool:
        entry = self._entries.get(key)
        if entry is None:
            return False
        delay, last = entry
        return (now - last).total_seconds() < delay

    def delay(self, key: str) -> float:
        entry = self._entries.get(key)
        return entry[0] if entry is not None else 0.0

    def next(self, key: str, now: datetime) -> None:
        entry = self._entries.get(key)
        if entry is None or (now - entry[1]).total_seconds() > 2 * self.maximum:
            self._entries[key] = (self.initial, now)
        else:
            self._entries[key] = (min(entry[0] * 2, self.maximum), now)

    def forget(self, key: str) -> None:
        self._entries.pop(key, None)
