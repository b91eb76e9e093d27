"""ResourceQuota admission decisions and the eviction subresource's budget checks."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from timonel.api.errors import StatusError
from timonel.api.objects import Object
from timonel.apiserver.eviction import covering_budgets, take_disruption, unhealthy_pod_may_go
from timonel.apiserver.quota import charge_create

NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


def quota(name: str, hard: dict[str, str], used: dict[str, str] | None, **spec: Any) -> Object:
    status: dict[str, Any] = {}
    if used is not None:
        status = {"hard": hard, "used": used}
    return {
        "metadata": {"name": name, "namespace": "ns", "resourceVersion": "7"},
        "spec": {"hard": hard, **spec},
        "status": status,
    }


def pod(name: str = "web", requests: dict[str, str] | None = None) -> Object:
    resources = {"requests": requests} if requests else {}
    return {
        "metadata": {"name": name, "namespace": "ns"},
        "spec": {"containers": [{"name": "c", "image": "x", "resources": resources}]},
        "status": {"phase": "Pending"},
    }


def test_a_create_within_quota_is_charged() -> None:
    charges = charge_create([quota("q", {"pods": "2"}, {"pods": "1"})], "", "pods", pod(), NOW)
    assert [c.used for c in charges] == [{"pods": "2"}]
    assert charges[0].updated_quota()["status"]["used"] == {"pods": "2"}
    assert charges[0].updated_quota()["metadata"]["resourceVersion"] == "7"


def test_exceeding_is_forbidden_with_kube_wording() -> None:
    with pytest.raises(StatusError) as refused:
        charge_create([quota("q", {"pods": "2"}, {"pods": "2"})], "", "pods", pod("third"), NOW)
    assert refused.value.code == 403 and refused.value.reason == "Forbidden"
    assert refused.value.message == (
        'pods "third" is forbidden: exceeded quota: q, requested: pods=1, used: pods=2, limited: pods=2'
    )
    assert refused.value.details == {"name": "third", "kind": "pods"}


def test_only_the_exceeded_resources_are_named() -> None:
    q = quota("compute", {"pods": "10", "requests.cpu": "1"}, {"pods": "1", "requests.cpu": "800m"})
    with pytest.raises(StatusError) as refused:
        charge_create([q], "", "pods", pod(requests={"cpu": "300m"}), NOW)
    assert refused.value.message.endswith(
        "exceeded quota: compute, requested: requests.cpu=300m, used: requests.cpu=800m, limited: requests.cpu=1"
    )


def test_missing_requests_and_unknown_status_are_forbidden() -> None:
    q = quota("compute", {"requests.cpu": "1"}, {"requests.cpu": "0"})
    with pytest.raises(StatusError) as missing:
        charge_create([q], "", "pods", pod(), NOW)
    assert (
        missing.value.message
        == 'pods "web" is forbidden: failed quota: compute: must specify requests.cpu for: c'
    )
    partial = quota("q", {"pods": "1", "count/pods": "2"}, {"pods": "0"})
    with pytest.raises(StatusError) as unknown:
        charge_create([partial], "", "pods", pod(), NOW)
    assert (
        unknown.value.message
        == 'pods "web" is forbidden: status unknown for quota: q, resources: count/pods,pods'
    )


def test_quotas_the_controller_has_not_seen_and_unrelated_objects_pass() -> None:
    assert charge_create([quota("q", {"pods": "0"}, None)], "", "pods", pod(), NOW) == []
    cms = quota("q", {"count/configmaps": "1"}, {"count/configmaps": "0"})
    assert charge_create([cms], "", "pods", pod(), NOW) == []
    charged = charge_create([cms], "", "configmaps", {"metadata": {"name": "c"}}, NOW)
    assert charged[0].used == {"count/configmaps": "1"}
    with pytest.raises(StatusError) as refused:
        charge_create(
            [quota("q", {"count/deployments.apps": "0"}, {"count/deployments.apps": "0"})],
            "apps",
            "deployments",
            {"metadata": {"generateName": "d-"}},
            NOW,
        )
    assert refused.value.message.startswith('deployments.apps "d-" is forbidden: exceeded quota: q')


def budget(selector: Any, **status: Any) -> Object:
    return {
        "metadata": {"name": "b", "namespace": "ns", "generation": 1},
        "spec": {"selector": selector},
        "status": {"observedGeneration": 1, **status},
    }


def test_budgets_covering_a_pod() -> None:
    labelled = {"metadata": {"labels": {"app": "web"}}}
    budgets = [
        budget({"matchLabels": {"app": "web"}}),
        budget({}),
        budget(None),
        budget({"matchLabels": {"app": "db"}}),
    ]
    assert covering_budgets(budgets, labelled) == [budgets[0]]


def test_taking_a_disruption() -> None:
    granted = take_disruption(
        budget({}, disruptionsAllowed=1, currentHealthy=2, desiredHealthy=1), "web-1", "t"
    )
    assert granted["status"]["disruptionsAllowed"] == 0
    assert granted["status"]["disruptedPods"] == {"web-1": "t"}
    assert granted["status"]["conditions"][0]["reason"] == "InsufficientPods"
    with pytest.raises(StatusError) as refused:
        take_disruption(
            budget({}, disruptionsAllowed=0, currentHealthy=1, desiredHealthy=1), "web-1", "t"
        )
    assert refused.value.code == 429
    assert refused.value.details == {
        "causes": [
            {
                "reason": "DisruptionBudget",
                "message": "The disruption budget b needs 1 healthy pods and has 1 currently",
            }
        ]
    }
    stale = budget({}, disruptionsAllowed=1)
    stale["metadata"]["generation"] = 2
    with pytest.raises(StatusError) as processing:
        take_disruption(stale, "web-1", "t")
    assert "still being processed" in processing.value.details["causes"][0]["message"]  # type: ignore[index]
    with pytest.raises(StatusError) as negative:
        take_disruption(budget({}, disruptionsAllowed=-1), "web-1", "t")
    assert negative.value.code == 403


def test_unready_pods_go_while_the_budget_is_met() -> None:
    unready = {"status": {"conditions": [{"type": "Ready", "status": "False"}]}}
    ready = {"status": {"conditions": [{"type": "Ready", "status": "True"}]}}
    met = budget({}, currentHealthy=2, desiredHealthy=2)
    assert unhealthy_pod_may_go(unready, met)
    assert not unhealthy_pod_may_go(ready, met)
    assert not unhealthy_pod_may_go(unready, budget({}, currentHealthy=1, desiredHealthy=2))
    always = budget({}, currentHealthy=0, desiredHealthy=2)
    always["spec"]["unhealthyPodEvictionPolicy"] = "AlwaysAllow"
    assert unhealthy_pod_may_go(unready, always)
