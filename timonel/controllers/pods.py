"""What controllers read from a pod's state, as kube's pod helpers decide it: whether a
pod is active, ready, and available (ready for at least minReadySeconds)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from timonel.api.objects import Object, parse_rfc3339

TERMINAL_PHASES = ("Succeeded", "Failed")


def meta(obj: Object) -> dict[str, Any]:
    value = obj.get("metadata")
    return value if isinstance(value, dict) else {}


def timestamp(value: Any) -> datetime | None:
    """An RFC 3339 time field, None when absent or unreadable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return parse_rfc3339(value)
    except ValueError:
        return None


def is_active(pod: Object) -> bool:
    """controller.IsPodActive: not finished and not being deleted."""
    phase = (pod.get("status") or {}).get("phase")
    return phase not in TERMINAL_PHASES and not meta(pod).get("deletionTimestamp")


def ready_condition(pod: Object) -> dict[str, Any] | None:
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if isinstance(condition, dict) and condition.get("type") == "Ready":
            return condition
    return None


def is_ready(pod: Object) -> bool:
    condition = ready_condition(pod)
    return condition is not None and condition.get("status") == "True"


def ready_since(pod: Object) -> datetime | None:
    """When a ready pod last became ready; None when it is not ready or does not say."""
    condition = ready_condition(pod)
    if condition is None or condition.get("status") != "True":
        return None
    return timestamp(condition.get("lastTransitionTime"))


def is_available(pod: Object, min_ready_seconds: int, now: datetime) -> bool:
    """podutil.IsPodAvailable: ready, and ready for longer than minReadySeconds."""
    if not is_ready(pod):
        return False
    if min_ready_seconds == 0:
        return True
    since = ready_since(pod)
    return since is not None and since + timedelta(seconds=min_ready_seconds) < now


def seconds_until_available(
    pods: list[Object], min_ready_seconds: int, now: datetime
) -> float | None:
    """How long until the next of these ready pods becomes available (None when none
    is waiting): when to look again, rather than waiting for the next event."""
    if min_ready_seconds == 0:
        return None
    waits = []
    for pod in pods:
        since = ready_since(pod)
        if since is None or is_available(pod, min_ready_seconds, now):
            continue
        waits.append((since + timedelta(seconds=min_ready_seconds) - now).total_seconds())
    return max(min(waits), 0.0) if waits else None
