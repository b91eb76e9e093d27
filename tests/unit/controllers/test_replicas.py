"""The ReplicaSet controller's decisions: counts, slow-start batches, which pods go
first on scale-down, the pods a template makes, status; plus pod availability and
controller references."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from timonel.api.objects import Object
from timonel.controllers.expectations import Expectations
from timonel.controllers.ownership import Claim, adoption_patch, claim_decision, release_patch
from timonel.controllers.pods import is_available, seconds_until_available
from timonel.controllers.replicas import (
    ReplicaPlan,
    calculate_status,
    plan_replicas,
    pod_from_template,
    pods_to_delete,
    rank_for_deletion,
    slow_start_batches,
    status_needs_update,
)

NOW = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)


def stamp(seconds_before_now: float) -> str:
    return (NOW - timedelta(seconds=seconds_before_now)).strftime("%Y-%m-%dT%H:%M:%SZ")


def pod(
    name: str,
    *,
    node: str = "node-1",
    phase: str = "Running",
    ready_for: float | None = 3600.0,
    created: float = 7200.0,
    restarts: int = 0,
    cost: str | None = None,
    labels: dict[str, str] | None = None,
    uid: str | None = None,
    deleting: bool = False,
) -> Object:
    meta: dict[str, Any] = {
        "name": name,
        "namespace": "default",
        "uid": uid or f"uid-{name}",
        "creationTimestamp": stamp(created),
        "labels": {"app": "web"} if labels is None else labels,
    }
    if cost is not None:
        meta["annotations"] = {"controller.kubernetes.io/pod-deletion-cost": cost}
    if deleting:
        meta["deletionTimestamp"] = stamp(0)
    status: dict[str, Any] = {
        "phase": phase,
        "containerStatuses": [{"name": "c", "restartCount": restarts}],
    }
    if ready_for is not None:
        status["conditions"] = [
            {"type": "Ready", "status": "True", "lastTransitionTime": stamp(ready_for)}
        ]
    else:
        status["conditions"] = [
            {"type": "Ready", "status": "False", "lastTransitionTime": stamp(60)}
        ]
    spec: dict[str, Any] = {"containers": [{"name": "c", "image": "nginx"}]}
    if node:
        spec["nodeName"] = node
    return {"metadata": meta, "spec": spec, "status": status}


def names(pods: list[Object]) -> list[str]:
    return [p["metadata"]["name"] for p in pods]


# -- counts and batches -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("active", "desired", "burst", "expected"),
    [
        (0, 3, 500, ReplicaPlan(create=3)),
        (5, 3, 500, ReplicaPlan(delete=2)),
        (3, 3, 500, ReplicaPlan()),
        (0, 1000, 500, ReplicaPlan(create=500)),
        (1000, 0, 500, ReplicaPlan(delete=500)),
    ],
)
def test_plan_replicas(active: int, desired: int, burst: int, expected: ReplicaPlan) -> None:
    assert plan_replicas(active, desired, burst) == expected


@pytest.mark.parametrize(
    ("count", "batches"),
    [
        (0, []),
        (1, [1]),
        (2, [1, 1]),
        (3, [1, 2]),
        (7, [1, 2, 4]),
        (10, [1, 2, 4, 3]),
        (20, [1, 2, 4, 8, 5]),
    ],
)
def test_slow_start_batches(count: int, batches: list[int]) -> None:
    assert slow_start_batches(count) == batches
    assert sum(batches) == count


# -- who goes first -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "second", "why"),
    [
        (pod("a", node=""), pod("b"), "unscheduled before scheduled"),
        (pod("a", phase="Pending"), pod("b", phase="Unknown"), "pending before unknown"),
        (pod("a", phase="Unknown"), pod("b", phase="Running"), "unknown before running"),
        (pod("a", ready_for=None), pod("b"), "not ready before ready"),
        (pod("a", cost="-5"), pod("b", cost="10"), "lower deletion cost first"),
        (pod("a", ready_for=10), pod("b", ready_for=3600), "ready for less time first"),
        (pod("a", restarts=5), pod("b", restarts=1), "more restarts first"),
        (pod("a", created=10), pod("b", created=7200), "newer first"),
        # Ages in the same power-of-two bucket (about 68 and 69 minutes) rank alike: the uid decides.
        (
            pod("a", created=4100, uid="1"),
            pod("b", created=4105, uid="2"),
            "same age bucket: lower uid first",
        ),
        (
            pod("a", created=4105, uid="1"),
            pod("b", created=4100, uid="2"),
            "same age bucket: lower uid first",
        ),
    ],
)
def test_deletion_order(first: Object, second: Object, why: str) -> None:
    assert names(rank_for_deletion([second, first], [], NOW)) == ["a", "b"], why
    assert names(rank_for_deletion([first, second], [], NOW)) == ["a", "b"], why


def test_pods_sharing_a_node_with_more_related_pods_go_first() -> None:
    crowded, alone = pod("a", node="n1"), pod("b", node="n2")
    related = [crowded, alone, pod("x", node="n1"), pod("y", node="n1", deleting=True)]
    assert names(rank_for_deletion([alone, crowded], related, NOW)) == ["a", "b"]


def test_pods_to_delete_takes_the_first_in_order() -> None:
    pods = [pod("old"), pod("new", created=5), pod("pending", phase="Pending", ready_for=None)]
    assert names(pods_to_delete(pods, [], 2, NOW)) == ["pending", "new"]
    assert sorted(names(pods_to_delete(pods, [], 3, NOW))) == ["new", "old", "pending"]


def test_the_full_ranking() -> None:
    pods = [
        pod("running-old"),
        pod("running-restarts", restarts=3),
        pod("not-ready", ready_for=None),
        pod("pending", phase="Pending", ready_for=None),
        pod("unscheduled", node="", phase="Pending", ready_for=None),
        pod("running-young", created=30, ready_for=20),
    ]
    assert names(rank_for_deletion(pods, [], NOW)) == [
        "unscheduled",
        "pending",
        "not-ready",
        "running-young",
        "running-restarts",
        "running-old",
    ]


# -- pods and status ------------------------------------------------------------------------


def replica_set(
    replicas: int = 3, min_ready: int = 0, conditions: list[Any] | None = None
) -> Object:
    rs: Object = {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": "web-abc", "namespace": "default", "uid": "rs-uid", "generation": 2},
        "spec": {
            "replicas": replicas,
            "minReadySeconds": min_ready,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web", "tier": "front"}, "annotations": {"a": "b"}},
                "spec": {"containers": [{"name": "c", "image": "nginx"}]},
            },
        },
        "status": {"replicas": 0, "observedGeneration": 1},
    }
    if conditions:
        rs["status"]["conditions"] = conditions
    return rs


def test_pod_from_template() -> None:
    reference = {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "name": "web-abc",
        "uid": "rs-uid",
        "controller": True,
        "blockOwnerDeletion": True,
    }
    made = pod_from_template(replica_set(), reference)
    assert made["metadata"] == {
        "generateName": "web-abc-",
        "namespace": "default",
        "labels": {"app": "web", "tier": "front"},
        "annotations": {"a": "b"},
        "ownerReferences": [reference],
    }
    assert made["spec"] == {"containers": [{"name": "c", "image": "nginx"}]}


def test_status_counts() -> None:
    labeled = {"app": "web", "tier": "front"}
    pods = [
        pod("a", labels=labeled, ready_for=30),
        pod("b", labels=labeled, ready_for=2),  # ready, not yet available
        pod("c", labels={"app": "web"}, ready_for=None),
    ]
    status = calculate_status(replica_set(min_ready=5), pods, None, NOW)
    assert status == {
        "replicas": 3,
        "fullyLabeledReplicas": 2,
        "readyReplicas": 2,
        "availableReplicas": 1,
        "observedGeneration": 1,
    }
    assert status_needs_update(replica_set(), status)


def test_replica_failure_condition() -> None:
    status = calculate_status(replica_set(3), [], 'pods "web-abc-" is forbidden: quota', NOW)
    assert status["conditions"] == [
        {
            "type": "ReplicaFailure",
            "status": "True",
            "lastTransitionTime": stamp(0),
            "reason": "FailedCreate",
            "message": 'pods "web-abc-" is forbidden: quota',
        }
    ]
    failed = replica_set(3, conditions=status["conditions"])
    # Still failing: the first condition stays as it was.
    assert calculate_status(failed, [], "again", NOW)["conditions"] == status["conditions"]
    # Working again: the condition goes.
    assert "conditions" not in calculate_status(failed, [], None, NOW)
    too_many = calculate_status(replica_set(0), [pod("a")], "cannot delete", NOW)
    assert too_many["conditions"][0]["reason"] == "FailedDelete"


def test_status_unchanged_needs_no_write() -> None:
    rs = replica_set(1)
    rs["metadata"]["generation"] = 1
    rs["status"] = {
        "replicas": 1,
        "readyReplicas": 1,
        "availableReplicas": 1,
        "fullyLabeledReplicas": 1,
        "observedGeneration": 1,
    }
    status = calculate_status(rs, [pod("a", labels={"app": "web", "tier": "front"})], None, NOW)
    assert not status_needs_update(rs, status)
    rs["metadata"]["generation"] = 2  # a new spec not yet observed
    assert status_needs_update(rs, status)


# -- availability ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ready_for", "min_ready", "available"),
    [
        (None, 0, False),  # not ready
        (0, 0, True),  # ready is enough without minReadySeconds
        (4, 5, False),
        (5, 5, False),  # must be ready for longer than minReadySeconds
        (6, 5, True),
    ],
)
def test_available_after_min_ready_seconds(
    ready_for: float | None, min_ready: int, available: bool
) -> None:
    assert is_available(pod("a", ready_for=ready_for), min_ready, NOW) is available


def test_ready_without_a_transition_time_is_never_available_with_min_ready_seconds() -> None:
    unknown = pod("a")
    del unknown["status"]["conditions"][0]["lastTransitionTime"]
    assert not is_available(unknown, 5, NOW)
    assert is_available(unknown, 0, NOW)


def test_seconds_until_available() -> None:
    pods = [
        pod("a", ready_for=1),
        pod("b", ready_for=3),
        pod("c", ready_for=60),
        pod("d", ready_for=None),
    ]
    assert seconds_until_available(pods, 5, NOW) == pytest.approx(2.0)
    assert seconds_until_available([pod("c", ready_for=60)], 5, NOW) is None
    assert seconds_until_available(pods, 0, NOW) is None


# -- expectations ---------------------------------------------------------------------------


def test_expectations() -> None:
    clock = [0.0]
    expectations = Expectations(clock=lambda: clock[0], timeout=300)
    assert expectations.satisfied("ns/rs")
    expectations.expect_creations("ns/rs", 2)
    assert not expectations.satisfied("ns/rs")
    expectations.creation_observed("ns/rs")
    assert not expectations.satisfied("ns/rs")
    expectations.creation_observed("ns/rs")
    assert expectations.satisfied("ns/rs")

    expectations.expect_deletions("ns/rs", ["ns/a", "ns/b"])
    expectations.deletion_observed("ns/rs", "ns/a")
    expectations.deletion_observed("ns/rs", "ns/a")  # seen twice, counted once
    assert not expectations.satisfied("ns/rs")
    expectations.deletion_observed("ns/rs", "ns/other")
    assert not expectations.satisfied("ns/rs")
    clock[0] = 301.0  # a lost event cannot stall the controller forever
    assert expectations.satisfied("ns/rs")
    expectations.delete("ns/rs")
    assert expectations.satisfied("ns/rs")


# -- controller references -------------------------------------------------------------------


OWNER: Object = {"metadata": {"name": "web-abc", "namespace": "default", "uid": "rs-uid"}}


def owned(uid: str) -> Object:
    return {
        "metadata": {
            "namespace": "default",
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "name": "x",
                    "uid": uid,
                    "controller": True,
                }
            ],
        }
    }


@pytest.mark.parametrize(
    ("obj", "owner", "matches", "decision"),
    [
        (owned("rs-uid"), OWNER, True, Claim.KEEP),
        (owned("rs-uid"), OWNER, False, Claim.RELEASE),
        (owned("other"), OWNER, True, Claim.IGNORE),
        ({"metadata": {"namespace": "default"}}, OWNER, True, Claim.ADOPT),
        ({"metadata": {"namespace": "default"}}, OWNER, False, Claim.IGNORE),
        (
            {"metadata": {"namespace": "default", "deletionTimestamp": "x"}},
            OWNER,
            True,
            Claim.IGNORE,
        ),
        ({"metadata": {"namespace": "elsewhere"}}, OWNER, True, Claim.IGNORE),
        # An owner being deleted keeps what it has, but adopts and releases nothing.
        (
            owned("rs-uid"),
            {"metadata": {**OWNER["metadata"], "deletionTimestamp": "x"}},
            False,
            Claim.IGNORE,
        ),
        (
            {"metadata": {"namespace": "default"}},
            {"metadata": {**OWNER["metadata"], "deletionTimestamp": "x"}},
            True,
            Claim.IGNORE,
        ),
    ],
)
def test_claim_decision(obj: Object, owner: Object, matches: bool, decision: Claim) -> None:
    assert claim_decision(obj, owner, matches=matches) is decision


def test_adoption_and_release_patches() -> None:
    reference = {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "name": "web-abc",
        "uid": "rs-uid",
        "controller": True,
        "blockOwnerDeletion": True,
    }
    assert adoption_patch(reference, "pod-uid") == {
        "metadata": {"ownerReferences": [reference], "uid": "pod-uid"}
    }
    assert release_patch("rs-uid", "pod-uid") == {
        "metadata": {"ownerReferences": [{"$patch": "delete", "uid": "rs-uid"}], "uid": "pod-uid"}
    }
