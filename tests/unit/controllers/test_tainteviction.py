"""Which pods the taint manager evicts, and when."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from timonel.api.objects import Object
from timonel.controllers.tainteviction import (
    Action,
    ScheduledEviction,
    matching_tolerations,
    min_toleration_seconds,
    plan_eviction,
    tolerates,
)

NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
UNREACHABLE = {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}
NOT_READY = {"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"}


def pod(*tolerations: dict[str, Any]) -> Object:
    return {
        "metadata": {"name": "p", "namespace": "ns"},
        "spec": {"tolerations": list(tolerations)},
    }


def toleration(key: str, seconds: int | None = None, **extra: Any) -> dict[str, Any]:
    found: dict[str, Any] = {"key": key, "operator": "Exists", "effect": "NoExecute", **extra}
    if seconds is not None:
        found["tolerationSeconds"] = seconds
    return found


def test_toleration_matching() -> None:
    taint = {"key": "k", "value": "v", "effect": "NoExecute"}
    assert tolerates({"key": "k", "value": "v", "effect": "NoExecute"}, taint)
    assert tolerates({"key": "k", "operator": "Equal", "value": "v"}, taint)
    assert not tolerates({"key": "k", "value": "w"}, taint)
    assert tolerates({"operator": "Exists"}, taint)
    assert not tolerates({"key": "k", "operator": "Exists", "effect": "NoSchedule"}, taint)
    assert not tolerates({"key": "k", "operator": "Gt", "value": "1"}, taint)


def test_min_toleration_time() -> None:
    assert min_toleration_seconds([]) == 0.0
    assert min_toleration_seconds([toleration("a")]) is None
    assert min_toleration_seconds([toleration("a"), toleration("b", 30), toleration("c", 5)]) == 5.0
    assert min_toleration_seconds([toleration("a", 0)]) == 0.0
    tolerated, used = matching_tolerations(
        [UNREACHABLE, NOT_READY], [toleration("node.kubernetes.io/unreachable", 2)]
    )
    assert not tolerated and used == []


def test_untolerated_taint_evicts_now() -> None:
    decision = plan_eviction(pod(), [UNREACHABLE], None, NOW)
    assert decision.action is Action.EVICT and decision.fire_at == NOW


def test_tolerated_for_a_while_schedules_once() -> None:
    p = pod(
        toleration("node.kubernetes.io/unreachable", 2),
        toleration("node.kubernetes.io/not-ready", 300),
    )
    decision = plan_eviction(p, [UNREACHABLE], None, NOW)
    assert decision.action is Action.SCHEDULE and decision.fire_at == NOW + timedelta(seconds=2)
    scheduled = ScheduledEviction(NOW, NOW + timedelta(seconds=2))
    later = plan_eviction(p, [UNREACHABLE, NOT_READY], scheduled, NOW + timedelta(seconds=1))
    assert later.action is Action.NOTHING and later.fire_at == scheduled.fire_at


def test_forever_or_no_taints_cancels() -> None:
    assert plan_eviction(
        pod(toleration("node.kubernetes.io/unreachable")), [UNREACHABLE], None, NOW
    ).action is (Action.CANCEL)
    assert plan_eviction(pod(), [], None, NOW).action is Action.CANCEL
