"""From a metrics proposal to the replica count the autoscaler applies (kube's
horizontal.go normalization, v1.32), and the conditions that explain it.

Without `spec.behavior`: the highest recommendation of the last five minutes wins
(scale-down stabilization), and a step may at most double the replicas (at least 4).
With it: recommendations are stabilized over each direction's window (scale-up: the
lowest recent one, scale-down: the highest), then the change is limited by the
direction's policies (Pods or Percent per periodSeconds, counting the changes already
made in that period; selectPolicy Max, Min or Disabled). Both clamp to min/max replicas.

The history (recommendations, scale events) is kept by the caller per autoscaler and
passed in; every function here returns the new history rather than changing it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Final

DOWNSCALE_STABILIZATION_WINDOW: Final = timedelta(minutes=5)
SCALE_UP_LIMIT_FACTOR: Final = 2
SCALE_UP_LIMIT_MINIMUM: Final = 4

READY_FOR_NEW_SCALE = ("ReadyForNewScale", "recommended size matches current size")
SCALE_UP_STABILIZED = (
    "ScaleUpStabilized",
    "recent recommendations were lower than current one, applying the lowest recent recommendation",
)
SCALE_DOWN_STABILIZED = (
    "ScaleDownStabilized",
    "recent recommendations were higher than current one, applying the highest recent "
    "recommendation",
)
DESIRED_WITHIN_RANGE = ("DesiredWithinRange", "the desired count is within the acceptable range")
TOO_FEW_REPLICAS = (
    "TooFewReplicas",
    "the desired replica count is less than the minimum replica count",
)
TOO_MANY_REPLICAS = (
    "TooManyReplicas",
    "the desired replica count is more than the maximum replica count",
)
SCALE_UP_LIMIT = (
    "ScaleUpLimit",
    "the desired replica count is increasing faster than the maximum scale rate",
)
SCALE_DOWN_LIMIT = (
    "ScaleDownLimit",
    "the desired replica count is decreasing faster than the maximum scale rate",
)


@dataclass(frozen=True)
class Recommendation:
    replicas: int
    at: datetime


@dataclass(frozen=True)
class ScaleEvent:
    change: int
    at: datetime
    outdated: bool = False


@dataclass(frozen=True)
class History:
    """What the autoscaler remembers about one HPA between syncs."""

    recommendations: tuple[Recommendation, ...] = ()
    scale_ups: tuple[ScaleEvent, ...] = ()
    scale_downs: tuple[ScaleEvent, ...] = ()


@dataclass(frozen=True)
class Normalized:
    """The replicas to apply, and the AbleToScale / ScalingLimited conditions saying why."""

    replicas: int
    able_to_scale: tuple[str, str]
    limited: bool
    limit: tuple[str, str]
    history: History = field(default_factory=History)


def with_initial_recommendation(history: History, current: int, now: datetime) -> History:
    """The first sync of an autoscaler remembers the current size as a recommendation."""
    if history.recommendations:
        return history
    return replace(history, recommendations=(Recommendation(current, now),))


def _record(
    recommendations: tuple[Recommendation, ...], replaced: int | None, new: Recommendation
) -> tuple[Recommendation, ...]:
    """Reuse the slot of a sample out of every window, else append."""
    if replaced is None:
        return (*recommendations, new)
    return tuple(new if i == replaced else r for i, r in enumerate(recommendations))


# -- without behavior ------------------------------------------------------------------


def stabilize(
    history: History, desired: int, now: datetime, window: timedelta
) -> tuple[int, History]:
    """The highest recommendation within the downscale stabilization window."""
    highest = desired
    old: int | None = None
    cutoff = now - window
    for index, recommendation in enumerate(history.recommendations):
        if recommendation.at < cutoff:
            old = index
        elif recommendation.replicas > highest:
            highest = recommendation.replicas
    recommendations = _record(history.recommendations, old, Recommendation(desired, now))
    return highest, replace(history, recommendations=recommendations)


def limit_by_rules(
    current: int, desired: int, min_replicas: int, max_replicas: int
) -> tuple[int, tuple[str, str]]:
    """convertDesiredReplicasWithRules: min/max, and at most doubling in one step."""
    scale_up_limit = max(SCALE_UP_LIMIT_FACTOR * current, SCALE_UP_LIMIT_MINIMUM)
    if max_replicas > scale_up_limit:
        maximum, reason = scale_up_limit, SCALE_UP_LIMIT
    else:
        maximum, reason = max_replicas, TOO_MANY_REPLICAS
    if desired < min_replicas:
        return min_replicas, TOO_FEW_REPLICAS
    if desired > maximum:
        return maximum, reason
    return desired, DESIRED_WITHIN_RANGE


def normalize(
    history: History,
    current: int,
    desired: int,
    min_replicas: int,
    max_replicas: int,
    now: datetime,
    window: timedelta = DOWNSCALE_STABILIZATION_WINDOW,
) -> Normalized:
    stabilized, history = stabilize(history, desired, now, window)
    able = SCALE_DOWN_STABILIZED if stabilized != desired else READY_FOR_NEW_SCALE
    replicas, limit = limit_by_rules(current, stabilized, min_replicas, max_replicas)
    return Normalized(replicas, able, replicas != stabilized, limit, history)


# -- with behavior ---------------------------------------------------------------------


def _int(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def stabilize_with_behavior(
    history: History,
    current: int,
    desired: int,
    up_window: int,
    down_window: int,
    now: datetime,
) -> tuple[int, tuple[str, str], History]:
    """The recommendation kept within [lowest recent (scale-up window), highest recent
    (scale-down window)], starting from the current size."""
    up_cutoff = now - timedelta(seconds=up_window)
    down_cutoff = now - timedelta(seconds=down_window)
    up_bound = down_bound = desired
    old: int | None = None
    for index, recommendation in enumerate(history.recommendations):
        if recommendation.at > up_cutoff:
            up_bound = min(up_bound, recommendation.replicas)
        if recommendation.at > down_cutoff:
            down_bound = max(down_bound, recommendation.replicas)
        if recommendation.at < up_cutoff and recommendation.at < down_cutoff:
            old = index
    stabilized = min(max(current, up_bound), down_bound)
    recommendations = _record(history.recommendations, old, Recommendation(desired, now))
    reason = SCALE_UP_STABILIZED if desired >= current else SCALE_DOWN_STABILIZED
    return stabilized, reason, replace(history, recommendations=recommendations)


def _changed_within(events: tuple[ScaleEvent, ...], period_seconds: int, now: datetime) -> int:
    cutoff = now - timedelta(seconds=period_seconds)
    return sum(event.change for event in events if event.at > cutoff)


def _policies(rules: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in rules.get("policies") or [] if isinstance(p, dict)]


def scale_up_limit(
    current: int, events: tuple[ScaleEvent, ...], rules: dict[str, Any], now: datetime
) -> int:
    """calculateScaleUpLimitWithScalingRules: the most replicas the policies allow now."""
    select = rules.get("selectPolicy") or "Max"
    if select == "Disabled":
        return current
    proposals = []
    for policy in _policies(rules):
        start = current - _changed_within(events, _int(policy.get("periodSeconds"), 0), now)
        value = _int(policy.get("value"), 0)
        if policy.get("type") == "Pods":
            proposals.append(start + value)
        elif policy.get("type") == "Percent":
            # Rounded up: a small percentage of few pods must still add one.
            proposals.append(math.ceil(start * (1 + value / 100)))
    if not proposals:
        return current
    return min(proposals) if select == "Min" else max(proposals)


def scale_down_limit(
    current: int, events: tuple[ScaleEvent, ...], rules: dict[str, Any], now: datetime
) -> int:
    """calculateScaleDownLimitWithBehaviors: the fewest replicas the policies allow now
    (the smallest change, selectPolicy Min, is the highest count)."""
    select = rules.get("selectPolicy") or "Max"
    if select == "Disabled":
        return current
    proposals = []
    for policy in _policies(rules):
        start = current + _changed_within(events, _int(policy.get("periodSeconds"), 0), now)
        value = _int(policy.get("value"), 0)
        if policy.get("type") == "Pods":
            proposals.append(start - value)
        elif policy.get("type") == "Percent":
            proposals.append(int(start * (1 - value / 100)))
    if not proposals:
        return current
    return max(proposals) if select == "Min" else min(proposals)


def limit_by_behavior(
    history: History,
    current: int,
    desired: int,
    min_replicas: int,
    max_replicas: int,
    scale_up: dict[str, Any],
    scale_down: dict[str, Any],
    now: datetime,
) -> tuple[int, tuple[str, str]]:
    """convertDesiredReplicasWithBehaviorRate."""
    if desired > current:
        up_limit = max(scale_up_limit(current, history.scale_ups, scale_up, now), current)
        if max_replicas > up_limit:
            maximum, reason = up_limit, SCALE_UP_LIMIT
        else:
            maximum, reason = max_replicas, TOO_MANY_REPLICAS
        if desired > maximum:
            return maximum, reason
    elif desired < current:
        down_limit = min(scale_down_limit(current, history.scale_downs, scale_down, now), current)
        if min_replicas < down_limit:
            minimum, reason = down_limit, SCALE_DOWN_LIMIT
        else:
            minimum, reason = min_replicas, TOO_FEW_REPLICAS
        if desired < minimum:
            return minimum, reason
    return desired, DESIRED_WITHIN_RANGE


def scale_down_window(behavior: dict[str, Any], default: timedelta) -> int:
    """The scale-down stabilization window: the spec's, else the controller's default."""
    given = (behavior.get("scaleDown") or {}).get("stabilizationWindowSeconds")
    return _int(given, int(default.total_seconds()))


def normalize_with_behavior(
    history: History,
    current: int,
    desired: int,
    min_replicas: int,
    max_replicas: int,
    behavior: dict[str, Any],
    now: datetime,
    default_down_window: timedelta = DOWNSCALE_STABILIZATION_WINDOW,
) -> Normalized:
    scale_up = behavior.get("scaleUp") or {}
    scale_down = behavior.get("scaleDown") or {}
    stabilized, reason, history = stabilize_with_behavior(
        history,
        current,
        desired,
        _int(scale_up.get("stabilizationWindowSeconds"), 0),
        scale_down_window(behavior, default_down_window),
        now,
    )
    able = reason if stabilized != desired else READY_FOR_NEW_SCALE
    replicas, limit = limit_by_behavior(
        history, current, stabilized, min_replicas, max_replicas, scale_up, scale_down, now
    )
    return Normalized(replicas, able, replicas != stabilized, limit, history)


def _longest_period(rules: dict[str, Any]) -> int:
    return max((_int(p.get("periodSeconds"), 0) for p in _policies(rules)), default=0)


def _with_event(
    events: tuple[ScaleEvent, ...], rules: dict[str, Any], change: int, now: datetime
) -> tuple[ScaleEvent, ...]:
    """Events older than the longest policy period are outdated; the last outdated slot
    is reused for the new event."""
    cutoff = now - timedelta(seconds=_longest_period(rules))
    marked = tuple(replace(e, outdated=True) if e.outdated or e.at < cutoff else e for e in events)
    slot = max((i for i, e in enumerate(marked) if e.outdated), default=None)
    new = ScaleEvent(change, now)
    if slot is None:
        return (*marked, new)
    return tuple(new if i == slot else e for i, e in enumerate(marked))


def with_scale_event(
    history: History, behavior: dict[str, Any] | None, previous: int, new: int, now: datetime
) -> History:
    """storeScaleEvent: only autoscalers with a behavior keep their scale events."""
    if behavior is None or previous == new:
        return history
    if new > previous:
        events = _with_event(history.scale_ups, behavior.get("scaleUp") or {}, new - previous, now)
        return replace(history, scale_ups=events)
    events = _with_event(history.scale_downs, behavior.get("scaleDown") or {}, previous - new, now)
    return replace(history, scale_downs=events)
