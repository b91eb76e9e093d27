"""PodDisruptionBudget status: the disruption controller's pure decisions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from timonel.api.objects import Object
from timonel.controllers.disruption import (
    budget_status,
    disrupted_pods,
    failed_safe,
    go_label_selector,
    pods_for_budget,
    status_changed,
    uses_controller_scale,
    with_status,
)

NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def pdb(selector: Any = None, status: dict[str, Any] | None = None, **spec: Any) -> Object:
    return {
        "metadata": {"name": "b", "namespace": "ns", "generation": 2},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}} if selector is None else selector,
            **spec,
        },
        "status": status or {},
    }


def pod(name: str, *, ready: bool = True, deleting: bool = False, app: str = "web") -> Object:
    meta: dict[str, Any] = {"name": name, "namespace": "ns", "labels": {"app": app}}
    if deleting:
        meta["deletionTimestamp"] = stamp(NOW)
    return {
        "metadata": meta,
        "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]},
    }


def test_selector_semantics() -> None:
    pods = [pod("a"), pod("b", app="db")]
    assert [p["metadata"]["name"] for p in pods_for_budget(pdb(), pods)] == ["a"]
    assert len(pods_for_budget(pdb(selector={}), pods)) == 2  # policy/v1: empty selects all
    budget = pdb()
    budget["spec"]["selector"] = None
    assert pods_for_budget(budget, pods) == []


def test_min_available_counts_pods_and_healthy_ones() -> None:
    budget = pdb(minAvailable=2)
    assert not uses_controller_scale(budget)
    pods = [pod("a"), pod("b"), pod("c", ready=False), pod("d", deleting=True)]
    status = budget_status(budget, pods, len(pods), {}, NOW)
    assert (
        status.current_healthy,
        status.desired_healthy,
        status.expected_pods,
        status.disruptions_allowed,
    ) == (2, 2, 4, 0)
    assert budget_status(budget, [*pods[:2], pod("e")], 3, {}, NOW).disruptions_allowed == 1


def test_max_unavailable_uses_the_scale() -> None:
    budget = pdb(maxUnavailable="50%")
    assert uses_controller_scale(budget) and uses_controller_scale(pdb(minAvailable="50%"))
    status = budget_status(budget, [pod("a"), pod("b"), pod("c")], 4, {}, NOW)
    assert (status.desired_healthy, status.disruptions_allowed) == (2, 1)


def test_recent_evictions_are_not_healthy_until_they_time_out() -> None:
    evicted = stamp(NOW - timedelta(seconds=30))
    long_ago = stamp(NOW - timedelta(minutes=5))
    budget = pdb(
        minAvailable=1, status={"disruptedPods": {"a": evicted, "b": long_ago, "gone": evicted}}
    )
    pods = [pod("a"), pod("b"), pod("c")]
    kept, recheck, overdue = disrupted_pods(budget, pods, NOW)
    assert kept == {"a": evicted}
    assert recheck == NOW + timedelta(seconds=90)
    assert [p["metadata"]["name"] for p in overdue] == ["b"]
    assert budget_status(budget, pods, 3, kept, NOW).current_healthy == 2


def test_status_and_condition_written_only_on_change() -> None:
    budget = pdb(minAvailable=1)
    status = budget_status(budget, [pod("a"), pod("b")], 2, {}, NOW)
    assert status_changed(budget, status)
    updated = with_status(budget, status, NOW)
    assert updated["status"] == {
        "observedGeneration": 2,
        "disruptionsAllowed": 1,
        "currentHealthy": 2,
        "desiredHealthy": 1,
        "expectedPods": 2,
        "conditions": [
            {
                "type": "DisruptionAllowed",
                "status": "True",
                "reason": "SufficientPods",
                "message": "",
                "observedGeneration": 2,
                "lastTransitionTime": stamp(NOW),
            }
        ],
    }
    assert not status_changed(updated, status)
    insufficient = budget_status(updated, [pod("a")], 1, {}, NOW)
    later = with_status(updated, insufficient, NOW + timedelta(seconds=5))
    condition = later["status"]["conditions"][0]
    assert (condition["status"], condition["reason"]) == ("False", "InsufficientPods")
    assert condition["lastTransitionTime"] == stamp(NOW + timedelta(seconds=5))


def test_fail_safe_allows_nothing() -> None:
    budget = pdb(status={"disruptionsAllowed": 3, "observedGeneration": 2})
    failed = failed_safe(budget, 'found no controllers for pod "a"', NOW)
    assert failed["status"]["disruptionsAllowed"] == 0
    assert failed["status"]["conditions"][0] == {
        "type": "DisruptionAllowed",
        "status": "False",
        "reason": "SyncFailed",
        "message": 'found no controllers for pod "a"',
        "observedGeneration": 2,
        "lastTransitionTime": stamp(NOW),
    }


def test_selector_printed_as_go_does() -> None:
    assert go_label_selector({"matchLabels": {"app": "web"}}) == (
        "&LabelSelector{MatchLabels:map[string]string{app: web,},"
        "MatchExpressions:[]LabelSelectorRequirement{},}"
    )
