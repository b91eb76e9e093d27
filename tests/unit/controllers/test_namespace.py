"""The namespace controller's decisions: what is left, how long to wait, which conditions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from timonel.client.discovery import ServerResources
from timonel.client.resources import Resource
from timonel.controllers.namespace import (
    CONDITION_TYPES,
    discovery_failure_message,
    estimate_pod_termination,
    failing_conditions,
    finalized_spec_finalizers,
    merge_conditions,
    summarize_remaining,
)

CONFIGMAPS = Resource("", "v1", "configmaps", "ConfigMap")
DEPLOYMENTS = Resource("apps", "v1", "deployments", "Deployment")
T0 = "2026-01-01T00:00:00Z"
T1 = "2026-01-01T00:01:00Z"


def item(*finalizers: str) -> dict[str, object]:
    return {"metadata": {"name": "x", "finalizers": list(finalizers)}}


def test_nothing_left_is_done() -> None:
    content = summarize_remaining(CONFIGMAPS, "ns", [], 0)
    assert (content.estimate, content.remaining, content.error) == (0, 0, "")


def test_items_held_by_finalizers_are_given_fifteen_seconds() -> None:
    content = summarize_remaining(CONFIGMAPS, "ns", [item("a/b"), item("a/b", "c/d")], 0)
    assert (content.estimate, content.remaining) == (15, 2)
    assert content.finalizers == {"a/b": 2, "c/d": 1}
    assert content.error == ""


def test_items_left_without_reason_are_an_error() -> None:
    content = summarize_remaining(DEPLOYMENTS, "ns", [item()], 0)
    assert (
        content.error
        == "unexpected items still remain in namespace: ns for gvr: apps/v1, Resource=deployments"
    )
    assert summarize_remaining(CONFIGMAPS, "ns", [item()], 0).error.endswith(
        "gvr: /v1, Resource=configmaps"
    )


def test_graceful_pods_keep_their_estimate() -> None:
    content = summarize_remaining(Resource("", "v1", "pods", "Pod"), "ns", [item()], 30)
    assert (content.estimate, content.remaining, content.error) == (30, 1, "")


def test_pod_estimate_is_the_longest_grace_period_until_it_has_passed() -> None:
    deleted = datetime(2026, 1, 1, tzinfo=UTC)
    pods = [
        {"spec": {"terminationGracePeriodSeconds": 30}, "status": {"phase": "Running"}},
        {"spec": {"terminationGracePeriodSeconds": 90}, "status": {"phase": "Succeeded"}},
        {"spec": {}, "status": {"phase": "Pending"}},
    ]
    assert estimate_pod_termination(pods, deleted, deleted + timedelta(seconds=10)) == 30
    assert estimate_pod_termination(pods, deleted, deleted + timedelta(seconds=30)) == 0
    assert estimate_pod_termination([], deleted, deleted) == 0


def test_failing_conditions_use_kube_wording() -> None:
    failing = failing_conditions(
        discovery_error="Discovery failed for some groups, 1 failing: x",
        content_errors=["b failed", "a failed"],
        remaining={CONFIGMAPS: 2, DEPLOYMENTS: 1},
        finalizers_remaining={"example.com/x": 2},
        now=T0,
    )
    by_type = {c["type"]: c for c in failing}
    assert by_type["NamespaceDeletionDiscoveryFailure"]["reason"] == "DiscoveryFailed"
    assert by_type["NamespaceContentRemaining"]["message"] == (
        "Some resources are remaining: configmaps. has 2 resource instances, "
        "deployments.apps has 1 resource instances"
    )
    assert by_type["NamespaceFinalizersRemaining"]["message"] == (
        "Some content in the namespace has finalizers remaining: example.com/x in 2 resource instances"
    )
    assert by_type["NamespaceDeletionContentFailure"] == {
        "type": "NamespaceDeletionContentFailure",
        "status": "True",
        "lastTransitionTime": T0,
        "reason": "ContentDeletionFailed",
        "message": "Failed to delete all resource types, 2 remaining: a failed, b failed",
    }


def test_merge_conditions_fills_in_ok_conditions_and_moves_time_only_on_flips() -> None:
    merged, changed = merge_conditions([{"type": "Other", "status": "True"}], [], T0)
    assert changed
    assert [c["type"] for c in merged] == ["Other", *CONDITION_TYPES]
    remaining = next(c for c in merged if c["type"] == "NamespaceContentRemaining")
    assert remaining == {
        "type": "NamespaceContentRemaining",
        "status": "False",
        "lastTransitionTime": T0,
        "reason": "ContentRemoved",
        "message": "All content successfully removed",
    }
    again, changed = merge_conditions(merged, [], T1)
    assert not changed and again == merged

    failing = failing_conditions(
        discovery_error="",
        content_errors=[],
        remaining={CONFIGMAPS: 1},
        finalizers_remaining={},
        now=T1,
    )
    flipped, changed = merge_conditions(merged, failing, T1)
    assert changed
    remaining = next(c for c in flipped if c["type"] == "NamespaceContentRemaining")
    assert (remaining["status"], remaining["lastTransitionTime"]) == ("True", T1)
    failing[0]["message"] = "Some resources are remaining: configmaps. has 2 resource instances"
    reworded, changed = merge_conditions(flipped, failing, "2026-01-01T00:02:00Z")
    remaining = next(c for c in reworded if c["type"] == "NamespaceContentRemaining")
    assert changed and remaining["lastTransitionTime"] == T1


def test_finalize_removes_only_the_kubernetes_finalizer() -> None:
    assert finalized_spec_finalizers(["kubernetes"]) == []
    assert finalized_spec_finalizers(["z.example/x", "kubernetes", "a.example/y"]) == [
        "a.example/y",
        "z.example/x",
    ]


def test_discovery_failure_message() -> None:
    assert discovery_failure_message(ServerResources()) == ""
    message = discovery_failure_message(
        ServerResources(failed={"x.example/v1": "the server is down"})
    )
    assert message == (
        "Discovery failed for some groups, 1 failing: unable to retrieve the complete list of server APIs: "
        "x.example/v1: the server is down"
    )
