"""The horizontal pod autoscaler's decisions: the replica calculation (tolerance, missing
and unready pods), stabilization and scaling policies, min/max, and what a sync makes of
each metric's outcome."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from timonel.controllers.horizontalpodautoscaler import (
    MetricOutcome,
    decide_from_metrics,
    evaluate_metric,
    set_condition,
)
from timonel.controllers.podautoscaler.replicas import (
    MetricsError,
    PodMetric,
    average_value_replicas,
    group_pods,
    pod_requests,
    resource_metrics,
    utilization_replicas,
)
from timonel.controllers.podautoscaler.scaling import (
    History,
    Recommendation,
    ScaleEvent,
    limit_by_behavior,
    limit_by_rules,
    normalize,
    normalize_with_behavior,
    scale_down_limit,
    scale_up_limit,
    with_scale_event,
)

NOW = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)
LONG_AGO = NOW - timedelta(hours=1)
WINDOW = timedelta(seconds=10)


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def pod(
    name: str,
    *,
    cpu: str | None = "50m",
    phase: str = "Running",
    ready: str | None = "True",
    started: datetime = LONG_AGO,
    ready_since: datetime = LONG_AGO,
    deleted: bool = False,
) -> dict[str, Any]:
    requests = {"cpu": cpu} if cpu is not None else {}
    status: dict[str, Any] = {"phase": phase, "startTime": stamp(started)}
    if ready is not None:
        status["conditions"] = [
            {"type": "Ready", "status": ready, "lastTransitionTime": stamp(ready_since)}
        ]
    metadata: dict[str, Any] = {"name": name, "namespace": "default"}
    if deleted:
        metadata["deletionTimestamp"] = stamp(NOW)
    return {
        "metadata": metadata,
        "spec": {"containers": [{"name": "app", "resources": {"requests": requests}}]},
        "status": status,
    }


def sample(milli: int, at: datetime = NOW) -> PodMetric:
    return PodMetric(milli, at, WINDOW)


def pod_metrics_item(name: str, usage: dict[str, str], container: str = "app") -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "default"},
        "timestamp": stamp(NOW),
        "window": "10s",
        "containers": [{"name": container, "usage": usage}],
    }


# -- the replica calculation -----------------------------------------------------------


@pytest.mark.parametrize(
    ("pods", "metrics", "current", "expected"),
    [
        # 125m of 50m is 250 % of the request, five times the 50 % target.
        ([pod("a")], {"a": sample(125)}, 1, (5, 250, 125)),
        # 52 % against 50 % is within the 0.1 tolerance: no change.
        ([pod("a"), pod("b")], {"a": sample(26), "b": sample(26)}, 2, (2, 52, 26)),
        # 54 % is within the tolerance; 56 % (ratio 1.12) is not.
        ([pod("a", cpu="100m")], {"a": sample(54)}, 1, (1, 54, 54)),
        ([pod("a", cpu="100m")], {"a": sample(56)}, 1, (2, 56, 56)),
        # 60 % is outside it: ceil(1.2 * 4) = 5.
        ([pod(n) for n in "abcd"], {n: sample(30) for n in "abcd"}, 4, (5, 60, 30)),
        # 20 % of request against 50 %: ceil(0.4 * 4) = 2.
        ([pod(n) for n in "abcd"], {n: sample(10) for n in "abcd"}, 4, (2, 20, 10)),
    ],
)
def test_utilization_replicas(
    pods: list[dict[str, Any]],
    metrics: dict[str, PodMetric],
    current: int,
    expected: tuple[int, int, int],
) -> None:
    proposal = utilization_replicas(current, 50, "cpu", pods, metrics, NOW)
    assert (proposal.replicas, proposal.utilization, proposal.average_value) == expected


def test_missing_pods_count_as_idle_on_a_scale_up() -> None:
    # a: 200 %, b has no sample: b counts as 0 → 100 % over two pods → ceil(2 * 2) = 4.
    proposal = utilization_replicas(2, 50, "cpu", [pod("a"), pod("b")], {"a": sample(100)}, NOW)
    assert proposal.replicas == 4
    assert proposal.utilization == 200


def test_missing_pods_count_as_fully_used_on_a_scale_down() -> None:
    # a: 10 %; b missing counts as 100 % → 55 % → ratio 1.1 would reverse the direction.
    proposal = utilization_replicas(2, 50, "cpu", [pod("a"), pod("b")], {"a": sample(5)}, NOW)
    assert proposal.replicas == 2
    # Four idle pods and one missing: (4 * 2m + 50m) / 250m = 23 % → ceil(0.46 * 5) = 3.
    pods = [pod(n) for n in "abcde"]
    metrics = {n: sample(2) for n in "abcd"}
    assert utilization_replicas(5, 50, "cpu", pods, metrics, NOW).replicas == 3


def test_missing_pods_on_scale_down_use_the_target_above_100_percent() -> None:
    # Target 200 %: a missing pod counts as using 200 % of its request.
    pods = [pod(n) for n in "abcde"]
    metrics = {n: sample(5) for n in "abcd"}  # 10 % each
    # (4 * 5m + 100m) / 250m = 48 % → ratio 0.24 → ceil(0.24 * 5) = 2.
    assert utilization_replicas(5, 200, "cpu", pods, metrics, NOW).replicas == 2


def test_unready_pods_count_as_idle_only_on_a_scale_up() -> None:
    pending = pod("b", phase="Pending", ready="False")
    # Scale-up: b counts as 0 → (100m + 0) / 100m = 100 % → ratio 2 → 4.
    up = utilization_replicas(2, 50, "cpu", [pod("a"), pending], {"a": sample(100)}, NOW)
    assert up.replicas == 4
    # Scale-down: b is left out entirely: ceil(0.2 * 1) = 1.
    down = utilization_replicas(2, 50, "cpu", [pod("a"), pending], {"a": sample(5)}, NOW)
    assert down.replicas == 1


@pytest.mark.parametrize(
    ("the_pod", "metric", "group"),
    [
        (pod("p"), sample(10), "ready"),
        (pod("p", phase="Pending", ready=None), sample(10), "unready"),
        (pod("p", phase="Failed"), sample(10), "ignored"),
        (pod("p", deleted=True), sample(10), "ignored"),
        (pod("p"), None, "missing"),
        (pod("p", ready=None), sample(10), "unready"),
        # Started a minute ago, ready 5 s before the sample: not a full window yet.
        (
            pod("p", started=NOW - timedelta(minutes=1), ready_since=NOW - timedelta(seconds=5)),
            sample(10),
            "unready",
        ),
        # Started a minute ago, ready for 30 s: its sample counts.
        (
            pod("p", started=NOW - timedelta(minutes=1), ready_since=NOW - timedelta(seconds=30)),
            sample(10),
            "ready",
        ),
        # Past the initialization period, not ready, but it was ready once: counted.
        (
            pod("p", ready="False", started=LONG_AGO, ready_since=NOW - timedelta(minutes=1)),
            sample(10),
            "ready",
        ),
        # Past the initialization period and never ready: unready.
        (
            pod("p", ready="False", started=LONG_AGO, ready_since=LONG_AGO + timedelta(seconds=5)),
            sample(10),
            "unready",
        ),
    ],
)
def test_group_pods(the_pod: dict[str, Any], metric: PodMetric | None, group: str) -> None:
    metrics = {"p": metric} if metric is not None else {}
    groups = group_pods([the_pod], metrics, "cpu", NOW)
    found = {
        "ready": groups.ready_count == 1,
        "unready": "p" in groups.unready,
        "missing": "p" in groups.missing,
        "ignored": "p" in groups.ignored,
    }
    assert [name for name, hit in found.items() if hit] == [group]


def test_readiness_does_not_matter_for_memory() -> None:
    unready = pod("p", ready=None)
    assert group_pods([unready], {"p": sample(10)}, "memory", NOW).ready_count == 1


@pytest.mark.parametrize(
    ("pods", "metrics", "message"),
    [
        ([], {"a": sample(1)}, "no pods returned by selector while calculating replica count"),
        (
            [pod("a", phase="Pending")],
            {"a": sample(1)},
            "did not receive metrics for targeted pods (pods might be unready)",
        ),
        (
            [pod("a", cpu=None)],
            {"a": sample(1)},
            "missing request for cpu in container app of Pod a",
        ),
    ],
)
def test_utilization_errors(
    pods: list[dict[str, Any]], metrics: dict[str, PodMetric], message: str
) -> None:
    with pytest.raises(MetricsError, match=message.replace("(", r"\(").replace(")", r"\)")):
        utilization_replicas(1, 50, "cpu", pods, metrics, NOW)


def test_average_value_replicas() -> None:
    pods = [pod("a"), pod("b")]
    mebibyte = 1024 * 1024 * 1000  # milli-bytes
    metrics = {"a": sample(200 * mebibyte), "b": sample(200 * mebibyte)}
    proposal = average_value_replicas(2, 100 * mebibyte, "memory", pods, metrics, NOW)
    assert (proposal.replicas, proposal.average_value) == (4, 200 * mebibyte)
    # Within tolerance: stays.
    metrics = {"a": sample(105 * mebibyte), "b": sample(105 * mebibyte)}
    assert average_value_replicas(2, 100 * mebibyte, "memory", pods, metrics, NOW).replicas == 2


def test_resource_metrics_sums_containers_and_skips_incomplete_pods() -> None:
    items: list[dict[str, Any]] = [
        {
            "metadata": {"name": "a"},
            "timestamp": stamp(NOW),
            "window": "10s",
            "containers": [
                {"name": "app", "usage": {"cpu": "100m", "memory": "1Mi"}},
                {"name": "side", "usage": {"cpu": "25m", "memory": "1Mi"}},
            ],
        },
        {"metadata": {"name": "b"}, "timestamp": stamp(NOW), "window": "10s", "containers": []},
    ]
    found, first = resource_metrics(items, "cpu")
    assert found == {"a": PodMetric(125, NOW, WINDOW)}
    assert first == NOW
    only_side, _ = resource_metrics(items[:1], "cpu", "side")
    assert only_side["a"].value == 25
    with pytest.raises(MetricsError, match="no metrics returned from resource metrics API"):
        resource_metrics([], "cpu")


def test_pod_requests_include_sidecars_and_one_container() -> None:
    the_pod = pod("a")
    the_pod["spec"]["initContainers"] = [
        {"name": "init", "resources": {"requests": {"cpu": "1"}}},
        {"name": "side", "restartPolicy": "Always", "resources": {"requests": {"cpu": "20m"}}},
    ]
    assert pod_requests([the_pod], "cpu") == {"a": 70}
    assert pod_requests([the_pod], "cpu", "side") == {"a": 20}


# -- normalization without behavior ----------------------------------------------------


@pytest.mark.parametrize(
    ("current", "desired", "minimum", "maximum", "expected"),
    [
        (2, 3, 1, 10, (3, "DesiredWithinRange")),
        (1, 10, 1, 20, (4, "ScaleUpLimit")),  # at most max(2 * 1, 4)
        (5, 20, 1, 20, (10, "ScaleUpLimit")),  # at most 2 * 5
        (1, 10, 1, 3, (3, "TooManyReplicas")),
        (3, 0, 1, 3, (1, "TooFewReplicas")),
        (3, 1, 2, 3, (2, "TooFewReplicas")),
    ],
)
def test_limit_by_rules(
    current: int, desired: int, minimum: int, maximum: int, expected: tuple[int, str]
) -> None:
    replicas, (reason, _) = limit_by_rules(current, desired, minimum, maximum)
    assert (replicas, reason) == expected


def test_scale_down_is_stabilized_over_five_minutes() -> None:
    history = History((Recommendation(5, NOW - timedelta(minutes=2)),))
    held = normalize(history, 5, 2, 1, 10, NOW)
    assert held.replicas == 5
    assert held.able_to_scale[0] == "ScaleDownStabilized"
    # The recommendation is remembered: two more minutes later it still holds...
    later = normalize(held.history, 5, 2, 1, 10, NOW + timedelta(minutes=2))
    assert later.replicas == 5
    # ...and once the high one is older than the window, the scale-down happens (its
    # slot is reused).
    free = normalize(later.history, 5, 2, 1, 10, NOW + timedelta(minutes=4))
    assert free.replicas == 2
    assert free.able_to_scale[0] == "ReadyForNewScale"
    assert [r.replicas for r in free.history.recommendations] == [2, 2, 2]


def test_scale_up_is_not_stabilized_and_limits_set_scaling_limited() -> None:
    result = normalize(History((Recommendation(1, NOW),)), 1, 8, 1, 3, NOW)
    assert (result.replicas, result.limited, result.limit[0]) == (3, True, "TooManyReplicas")
    within = normalize(History(), 2, 3, 1, 10, NOW)
    assert (within.replicas, within.limited, within.limit[0]) == (3, False, "DesiredWithinRange")


# -- normalization with behavior -------------------------------------------------------

DEFAULT_UP = {
    "stabilizationWindowSeconds": 0,
    "selectPolicy": "Max",
    "policies": [
        {"type": "Pods", "value": 4, "periodSeconds": 15},
        {"type": "Percent", "value": 100, "periodSeconds": 15},
    ],
}
DEFAULT_DOWN = {
    "selectPolicy": "Max",
    "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}],
}


@pytest.mark.parametrize(
    ("current", "events", "rules", "expected"),
    [
        (2, (), DEFAULT_UP, 6),  # max(2 + 4, 2 * 2)
        (10, (), DEFAULT_UP, 20),  # max(10 + 4, 10 * 2)
        (2, (), {**DEFAULT_UP, "selectPolicy": "Min"}, 4),
        (2, (), {**DEFAULT_UP, "selectPolicy": "Disabled"}, 2),
        # Two added 10 s ago count against the 15 s period: start from 2.
        (4, (ScaleEvent(2, NOW - timedelta(seconds=10)),), DEFAULT_UP, 6),
        # Added 20 s ago: outside the period.
        (4, (ScaleEvent(2, NOW - timedelta(seconds=20)),), DEFAULT_UP, 8),
        # Percent rounds up: 10 % of 3 still adds one.
        (
            3,
            (),
            {
                "selectPolicy": "Max",
                "policies": [{"type": "Percent", "value": 10, "periodSeconds": 60}],
            },
            4,
        ),
    ],
)
def test_scale_up_limit(
    current: int, events: tuple[ScaleEvent, ...], rules: dict[str, Any], expected: int
) -> None:
    assert scale_up_limit(current, events, rules, NOW) == expected


ONE_POD_A_MINUTE = {
    "selectPolicy": "Max",
    "policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}],
}


@pytest.mark.parametrize(
    ("current", "events", "rules", "expected"),
    [
        (5, (), DEFAULT_DOWN, 0),
        (5, (), ONE_POD_A_MINUTE, 4),
        (5, (ScaleEvent(1, NOW - timedelta(seconds=30)),), ONE_POD_A_MINUTE, 5),
        # 50 % of 5 is 2.5: truncated to 2 left.
        (
            5,
            (),
            {
                "selectPolicy": "Max",
                "policies": [{"type": "Percent", "value": 50, "periodSeconds": 60}],
            },
            2,
        ),
        # Min picks the smallest change: the highest count.
        (
            10,
            (),
            {
                "selectPolicy": "Min",
                "policies": [
                    {"type": "Pods", "value": 1, "periodSeconds": 60},
                    {"type": "Percent", "value": 50, "periodSeconds": 60},
                ],
            },
            9,
        ),
        (5, (), {**DEFAULT_DOWN, "selectPolicy": "Disabled"}, 5),
    ],
)
def test_scale_down_limit(
    current: int, events: tuple[ScaleEvent, ...], rules: dict[str, Any], expected: int
) -> None:
    assert scale_down_limit(current, events, rules, NOW) == expected


@pytest.mark.parametrize(
    ("current", "desired", "up", "down", "expected"),
    [
        (2, 10, DEFAULT_UP, DEFAULT_DOWN, (6, "ScaleUpLimit")),
        (2, 50, DEFAULT_UP, DEFAULT_DOWN, (6, "ScaleUpLimit")),
        (8, 50, DEFAULT_UP, DEFAULT_DOWN, (10, "TooManyReplicas")),
        (2, 5, DEFAULT_UP, DEFAULT_DOWN, (5, "DesiredWithinRange")),
        (5, 1, DEFAULT_UP, ONE_POD_A_MINUTE, (4, "ScaleDownLimit")),
        (5, 0, DEFAULT_UP, DEFAULT_DOWN, (1, "TooFewReplicas")),
        (2, 10, {**DEFAULT_UP, "selectPolicy": "Disabled"}, DEFAULT_DOWN, (2, "ScaleUpLimit")),
    ],
)
def test_limit_by_behavior(
    current: int,
    desired: int,
    up: dict[str, Any],
    down: dict[str, Any],
    expected: tuple[int, str],
) -> None:
    replicas, (reason, _) = limit_by_behavior(History(), current, desired, 1, 10, up, down, NOW)
    assert (replicas, reason) == expected


def test_behavior_stabilization_windows() -> None:
    behavior = {
        "scaleUp": {**DEFAULT_UP, "stabilizationWindowSeconds": 60},
        "scaleDown": {**DEFAULT_DOWN, "stabilizationWindowSeconds": 0},
    }
    history = History((Recommendation(3, NOW - timedelta(seconds=30)),))
    # Scale-up: the lowest recommendation of the last minute (3) wins over 6.
    up = normalize_with_behavior(history, 2, 6, 1, 10, behavior, NOW)
    assert (up.replicas, up.able_to_scale[0]) == (3, "ScaleUpStabilized")
    # Scale-down with a zero window happens at once.
    down = normalize_with_behavior(History((Recommendation(5, NOW),)), 5, 1, 1, 10, behavior, NOW)
    assert (down.replicas, down.able_to_scale[0]) == (1, "ReadyForNewScale")


def test_behavior_without_a_scale_down_window_uses_the_controller_default() -> None:
    behavior = {"scaleUp": DEFAULT_UP, "scaleDown": DEFAULT_DOWN}
    history = History((Recommendation(5, NOW - timedelta(minutes=4)),))
    held = normalize_with_behavior(history, 5, 1, 1, 10, behavior, NOW)
    assert (held.replicas, held.able_to_scale[0]) == (5, "ScaleDownStabilized")
    short = normalize_with_behavior(history, 5, 1, 1, 10, behavior, NOW, timedelta(minutes=3))
    assert short.replicas == 1


def test_scale_events_are_kept_per_direction_and_reuse_outdated_slots() -> None:
    behavior = {"scaleUp": DEFAULT_UP, "scaleDown": DEFAULT_DOWN}
    assert with_scale_event(History(), None, 1, 3, NOW) == History()
    history = with_scale_event(History(), behavior, 1, 3, NOW - timedelta(minutes=1))
    history = with_scale_event(history, behavior, 3, 4, NOW)
    assert [e.change for e in history.scale_ups] == [1]
    history = with_scale_event(history, behavior, 4, 2, NOW)
    assert [e.change for e in history.scale_downs] == [2]


# -- a sync's view of the metrics ------------------------------------------------------

CPU_50 = {
    "type": "Resource",
    "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}},
}


def test_evaluate_a_cpu_utilization_metric() -> None:
    outcome = evaluate_metric(CPU_50, 1, [pod("a")], [pod_metrics_item("a", {"cpu": "125m"})], NOW)
    assert outcome.replicas == 5
    assert outcome.name == "cpu resource utilization (percentage of request)"
    assert outcome.status == {
        "type": "Resource",
        "resource": {"name": "cpu", "current": {"averageUtilization": 250, "averageValue": "125m"}},
    }


def test_evaluate_an_average_value_metric() -> None:
    metric = {
        "type": "Resource",
        "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "100Mi"}},
    }
    outcome = evaluate_metric(
        metric, 1, [pod("a")], [pod_metrics_item("a", {"memory": "200Mi"})], NOW
    )
    assert (outcome.replicas, outcome.name) == (2, "memory resource")
    assert outcome.status == {
        "type": "Resource",
        "resource": {"name": "memory", "current": {"averageValue": "209715200"}},
    }


def test_evaluate_a_container_resource_metric() -> None:
    metric = {
        "type": "ContainerResource",
        "containerResource": {
            "name": "cpu",
            "container": "app",
            "target": {"type": "Utilization", "averageUtilization": 50},
        },
    }
    outcome = evaluate_metric(metric, 1, [pod("a")], [pod_metrics_item("a", {"cpu": "50m"})], NOW)
    assert outcome.replicas == 2
    assert outcome.name == "cpu container resource utilization (percentage of request)"
    assert outcome.status is not None
    assert outcome.status["containerResource"]["container"] == "app"


def test_evaluate_without_metrics() -> None:
    outcome = evaluate_metric(CPU_50, 1, [pod("a")], [], NOW)
    cause = (
        "failed to get cpu utilization: unable to get metrics for resource cpu: "
        "no metrics returned from resource metrics API"
    )
    assert (outcome.reason, outcome.cause) == ("FailedGetResourceMetric", cause)
    assert outcome.error == f"failed to get cpu resource metric value: {cause}"


def test_evaluate_a_pods_metric_reports_the_missing_custom_metrics_api() -> None:
    metric = {
        "type": "Pods",
        "pods": {
            "metric": {"name": "rps"},
            "target": {"type": "AverageValue", "averageValue": "1"},
        },
    }
    outcome = evaluate_metric(metric, 1, [pod("a")], [], NOW)
    assert outcome.reason == "FailedGetPodsMetric"
    assert "no custom metrics API (custom.metrics.k8s.io) registered" in outcome.cause


def test_decide_from_metrics() -> None:
    good = MetricOutcome(
        4, "cpu resource utilization (percentage of request)", {"type": "Resource"}
    )
    low = MetricOutcome(1, "memory resource", {"type": "Resource"})
    bad = MetricOutcome(error="failed: x", cause="x", reason="FailedGetResourceMetric")
    all_bad = decide_from_metrics([bad], 2)
    assert all_bad.replicas == -1
    assert all_bad.statuses == [{"type": ""}]
    assert all_bad.error == "invalid metrics (1 invalid out of 1), first error is: failed: x"
    assert all_bad.scaling_active == (
        "False",
        "FailedGetResourceMetric",
        "the HPA was unable to compute the replica count: x",
    )
    # Some invalid, the rest scale up: go ahead with the valid ones.
    partly = decide_from_metrics([bad, good, low], 2)
    assert (partly.replicas, partly.metric) == (4, good.name)
    assert partly.scaling_active[:2] == ("True", "ValidMetricFound")
    # Some invalid and the rest would scale down: do nothing.
    assert decide_from_metrics([bad, low], 2).replicas == -1


def test_set_condition_moves_the_transition_time_only_on_a_status_change() -> None:
    hpa: dict[str, Any] = {}
    set_condition(hpa, "AbleToScale", "True", "SucceededGetScale", "m", NOW)
    later = NOW + timedelta(minutes=1)
    set_condition(hpa, "AbleToScale", "True", "ReadyForNewScale", "n", later)
    (condition,) = hpa["status"]["conditions"]
    assert (condition["reason"], condition["lastTransitionTime"]) == (
        "ReadyForNewScale",
        stamp(NOW),
    )
    set_condition(hpa, "AbleToScale", "False", "FailedGetScale", "o", later)
    assert hpa["status"]["conditions"][0]["lastTransitionTime"] == stamp(later)
