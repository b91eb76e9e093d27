"""The horizontal pod autoscaler inside `timonel server` (no nodes, so no metrics): what
it does without metrics, how it brings a target back within min/max, and what it says
about a target it cannot scale, through kubectl autoscale / get / describe."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import RunningServer, start_server
from tests.integration.controllers.harness import NO_SCHEDULER, apply, events, get, wait_for

NO_METRICS = (
    "failed to get cpu utilization: unable to get metrics for resource cpu: "
    "no metrics returned from resource metrics API"
)


@pytest.fixture(scope="module")
def fast_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    root: Path = tmp_path_factory.mktemp("hpa")
    running = start_server(
        root / "data", root / "cache", "--horizontal-pod-autoscaler-sync-period", "500ms"
    )
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def namespace(fast_server: RunningServer) -> Iterator[str]:
    name = f"t-{uuid.uuid4().hex[:8]}"
    fast_server.kubectl("create", "namespace", name)
    yield name
    fast_server.kubectl("delete", "namespace", name, "--wait=false", check=False)


def deployment(name: str, replicas: int) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "schedulerName": NO_SCHEDULER,
                    "containers": [
                        {"name": "c", "image": "busybox", "resources": {"requests": {"cpu": "50m"}}}
                    ],
                },
            },
        },
    }


def condition(hpa: dict[str, Any] | None, kind: str) -> dict[str, Any]:
    for found in ((hpa or {}).get("status") or {}).get("conditions") or []:
        if found["type"] == kind:
            return dict(found)
    return {}


def test_without_metrics_scaling_is_not_active(fast_server: RunningServer, namespace: str) -> None:
    apply(fast_server, deployment("web", 2), namespace)
    created = fast_server.kubectl(
        "autoscale", "deployment", "web", "--cpu-percent=50", "--min=1", "--max=5", "-n", namespace
    )
    assert "horizontalpodautoscaler.autoscaling/web autoscaled" in created.stdout

    def inactive() -> dict[str, Any] | None:
        hpa = get(fast_server, "hpa", "web", namespace)
        return hpa if condition(hpa, "ScalingActive").get("status") == "False" else None

    hpa = wait_for(inactive, timeout=20, what="ScalingActive=False")
    assert condition(hpa, "AbleToScale") | {"lastTransitionTime": ""} == {
        "type": "AbleToScale",
        "status": "True",
        "reason": "SucceededGetScale",
        "message": "the HPA controller was able to get the target's current scale",
        "lastTransitionTime": "",
    }
    active = condition(hpa, "ScalingActive")
    assert active["reason"] == "FailedGetResourceMetric"
    assert active["message"] == f"the HPA was unable to compute the replica count: {NO_METRICS}"
    assert hpa["status"]["currentReplicas"] == 2
    assert hpa["status"].get("lastScaleTime") is None
    # Nothing was scaled.
    assert (get(fast_server, "deployment", "web", namespace) or {})["spec"]["replicas"] == 2

    recorded = wait_for(
        lambda: (
            {r: m for r, m in events(fast_server, namespace, "HorizontalPodAutoscaler", "web")}
            if len(events(fast_server, namespace, "HorizontalPodAutoscaler", "web")) >= 2
            else None
        ),
        what="events",
    )
    assert recorded["FailedGetResourceMetric"] == NO_METRICS
    assert recorded["FailedComputeMetricsReplicas"] == (
        "invalid metrics (1 invalid out of 1), first error is: "
        f"failed to get cpu resource metric value: {NO_METRICS}"
    )

    table = fast_server.kubectl("get", "hpa", "web", "-n", namespace).stdout.splitlines()
    assert table[0].split() == [
        "NAME", "REFERENCE", "TARGETS", "MINPODS", "MAXPODS", "REPLICAS", "AGE"
    ]  # fmt: skip
    assert table[1].split()[:7] == ["web", "Deployment/web", "cpu:", "<unknown>/50%", "1", "5", "2"]
    described = fast_server.kubectl("describe", "hpa", "web", "-n", namespace).stdout
    assert "Reference:" in described and "Deployment/web" in described
    assert "ScalingActive  False   FailedGetResourceMetric" in described


def test_a_target_above_max_is_scaled_down_to_max(
    fast_server: RunningServer, namespace: str
) -> None:
    apply(fast_server, deployment("big", 7), namespace)
    fast_server.kubectl("autoscale", "deployment", "big", "--min=2", "--max=3", "-n", namespace)

    def scaled() -> dict[str, Any] | None:
        found = get(fast_server, "deployment", "big", namespace)
        return found if found and found["spec"]["replicas"] == 3 else None

    wait_for(scaled, timeout=20, what="the deployment scaled to 3")
    hpa = wait_for(
        lambda: (
            (found := get(fast_server, "hpa", "big", namespace))
            and found["status"].get("desiredReplicas") == 3
            and found
        ),
        what="status",
    )
    # The rescaling sync reports the 7 it saw; a later sync (the sync period is short
    # here) may already report the Deployment's 3.
    assert hpa["status"]["lastScaleTime"]
    if hpa["status"]["currentReplicas"] == 7:
        assert condition(hpa, "AbleToScale")["reason"] == "SucceededRescale"
        assert condition(hpa, "AbleToScale")["message"] == (
            "the HPA controller was able to update the target scale to 3"
        )
    else:  # a later sync: within bounds, and (no nodes, no metrics) nothing to rescale
        assert hpa["status"]["currentReplicas"] == 3
        assert condition(hpa, "AbleToScale")["reason"] == "SucceededGetScale"
    wait_for(
        lambda: (
            (
                "SuccessfulRescale",
                "New size: 3; reason: Current number of replicas above Spec.MaxReplicas",
            )
            in events(fast_server, namespace, "HorizontalPodAutoscaler", "big")
        ),
        what="the SuccessfulRescale event",
    )
    # The same status through autoscaling/v1.
    v1 = fast_server.kubectl("get", "hpa.v1.autoscaling", "big", "-n", namespace, "-o", "json")
    assert v1.json()["status"]["currentReplicas"] in (7, 3)
    assert v1.json()["status"]["desiredReplicas"] == 3


def test_a_target_below_min_is_scaled_up_to_min(fast_server: RunningServer, namespace: str) -> None:
    apply(fast_server, deployment("small", 1), namespace)
    fast_server.kubectl("autoscale", "deployment", "small", "--min=3", "--max=4", "-n", namespace)
    wait_for(
        lambda: (get(fast_server, "deployment", "small", namespace) or {})["spec"]["replicas"] == 3,
        timeout=20,
        what="the deployment scaled to 3",
    )
    wait_for(
        lambda: (
            (
                "SuccessfulRescale",
                "New size: 3; reason: Current number of replicas below Spec.MinReplicas",
            )
            in events(fast_server, namespace, "HorizontalPodAutoscaler", "small")
        ),
        what="the SuccessfulRescale event",
    )


def test_a_target_scaled_to_zero_disables_scaling(
    fast_server: RunningServer, namespace: str
) -> None:
    apply(fast_server, deployment("idle", 0), namespace)
    fast_server.kubectl("autoscale", "deployment", "idle", "--max=4", "-n", namespace)
    hpa = wait_for(
        lambda: (
            (found := get(fast_server, "hpa", "idle", namespace))
            and condition(found, "ScalingActive").get("reason") == "ScalingDisabled"
            and found
        ),
        timeout=20,
        what="ScalingDisabled",
    )
    assert condition(hpa, "ScalingActive")["message"] == (
        "scaling is disabled since the replica count of the target is zero"
    )
    assert (get(fast_server, "deployment", "idle", namespace) or {})["spec"]["replicas"] == 0


def test_a_missing_target_cannot_be_scaled(fast_server: RunningServer, namespace: str) -> None:
    hpa = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "ghost"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "nope"},
            "maxReplicas": 3,
        },
    }
    apply(fast_server, hpa, namespace)
    found = wait_for(
        lambda: (
            (got := get(fast_server, "hpa", "ghost", namespace))
            and condition(got, "AbleToScale").get("status") == "False"
            and got
        ),
        timeout=20,
        what="AbleToScale=False",
    )
    able = condition(found, "AbleToScale")
    assert able["reason"] == "FailedGetScale"
    assert able["message"] == (
        "the HPA controller was unable to get the target's current scale: "
        'deployments.apps "nope" not found'
    )
    wait_for(
        lambda: (
            ("FailedGetScale", 'deployments.apps "nope" not found')
            in events(fast_server, namespace, "HorizontalPodAutoscaler", "ghost")
        ),
        what="the FailedGetScale event",
    )
