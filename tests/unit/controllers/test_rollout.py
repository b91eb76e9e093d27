"""The Deployment controller's decisions: fenceposts, which ReplicaSet grows or shrinks
by how much, annotations, the pod-template-hash, status and conditions."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from timonel.api.objects import Object
from timonel.controllers.rollout import (
    DESIRED_REPLICAS,
    MAX_REPLICAS,
    MAX_REVISION_HISTORY_CHARS,
    POD_TEMPLATE_HASH,
    REVISION,
    REVISION_HISTORY,
    ScaleStep,
    calculate_status,
    equal_ignore_hash,
    find_active_or_latest,
    find_new_replica_set,
    find_old_replica_sets,
    get_condition,
    is_saturated,
    is_scaling_event,
    max_surge,
    max_unavailable,
    new_replica_set,
    new_replica_set_annotations,
    new_replica_set_replicas,
    old_pods_running,
    paused_condition,
    plan_cleanup,
    plan_new_replica_set,
    plan_old_replica_sets,
    plan_recreate_scale_down,
    plan_scale,
    pod_template_hash,
    resolve_fenceposts,
    rollout_status,
    safe_encode,
    set_condition,
    status_equal,
    stuck_recheck_after,
)

NOW = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
TEMPLATE: dict[str, Any] = {
    "metadata": {"labels": {"app": "web"}},
    "spec": {"containers": [{"name": "web", "image": "nginx:1.14.2"}]},
}
OTHER_TEMPLATE: dict[str, Any] = {
    "metadata": {"labels": {"app": "web"}},
    "spec": {"containers": [{"name": "web", "image": "nginx:1.16.1"}]},
}


def stamp(seconds_before_now: float) -> str:
    return (NOW - timedelta(seconds=seconds_before_now)).strftime("%Y-%m-%dT%H:%M:%SZ")


def deployment(
    replicas: int = 10,
    *,
    surge: Any = "25%",
    unavailable: Any = "25%",
    strategy: str = "RollingUpdate",
    template: dict[str, Any] | None = None,
    status: dict[str, Any] | None = None,
    generation: int = 1,
    deadline: int | None = 600,
    history_limit: int | None = 10,
    annotations: dict[str, str] | None = None,
) -> Object:
    spec: dict[str, Any] = {
        "replicas": replicas,
        "selector": {"matchLabels": {"app": "web"}},
        "template": copy.deepcopy(template or TEMPLATE),
        "strategy": {"type": strategy},
    }
    if strategy == "RollingUpdate":
        spec["strategy"]["rollingUpdate"] = {"maxSurge": surge, "maxUnavailable": unavailable}
    if deadline is not None:
        spec["progressDeadlineSeconds"] = deadline
    if history_limit is not None:
        spec["revisionHistoryLimit"] = history_limit
    meta: dict[str, Any] = {
        "name": "web",
        "namespace": "default",
        "uid": "d-uid",
        "generation": generation,
    }
    if annotations:
        meta["annotations"] = annotations
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": spec,
        "status": status or {},
    }


def replica_set(
    name: str,
    replicas: int,
    *,
    available: int | None = None,
    pods: int | None = None,
    created: float = 100.0,
    desired: int | None = None,
    maximum: int | None = None,
    revision: int | None = None,
    template: dict[str, Any] | None = None,
) -> Object:
    annotations: dict[str, str] = {}
    if desired is not None:
        annotations[DESIRED_REPLICAS] = str(desired)
    if maximum is not None:
        annotations[MAX_REPLICAS] = str(maximum)
    if revision is not None:
        annotations[REVISION] = str(revision)
    pods = replicas if pods is None else pods
    available = pods if available is None else available
    return {
        "metadata": {
            "name": name,
            "namespace": "default",
            "uid": f"{name}-uid",
            "creationTimestamp": stamp(created),
            "annotations": annotations,
            "generation": 1,
        },
        "spec": {"replicas": replicas, "template": copy.deepcopy(template or TEMPLATE)},
        "status": {
            "replicas": pods,
            "readyReplicas": available,
            "availableReplicas": available,
            "observedGeneration": 1,
        },
    }


def sizes(steps: list[ScaleStep]) -> list[tuple[str, int]]:
    return [(step.replica_set["metadata"]["name"], step.replicas) for step in steps]


# -- fenceposts ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("surge", "unavailable", "desired", "expected"),
    [
        ("25%", "25%", 10, (3, 2)),  # surge rounds up, unavailable rounds down
        ("25%", "25%", 4, (1, 1)),
        ("25%", "25%", 3, (1, 0)),
        ("25%", "25%", 1, (1, 0)),
        ("50%", "50%", 3, (2, 1)),
        ("10%", 0, 5, (1, 0)),
        (0, "10%", 5, (0, 1)),  # both 0 after rounding: unavailable becomes 1
        ("0%", "0%", 10, (0, 1)),
        (2, 3, 10, (2, 3)),
        ("100%", 0, 3, (3, 0)),
        ("25%", "25%", 0, (0, 1)),
    ],
)
def test_resolve_fenceposts(
    surge: Any, unavailable: Any, desired: int, expected: tuple[int, int]
) -> None:
    assert resolve_fenceposts(surge, unavailable, desired) == expected


@pytest.mark.parametrize(
    ("d", "surge", "unavailable"),
    [
        (deployment(10), 3, 2),
        (deployment(1), 1, 0),
        (deployment(2, surge=0, unavailable=5), 0, 2),  # unavailable never exceeds replicas
        (deployment(0), 0, 0),  # nothing can be unavailable out of zero
        (deployment(4, strategy="Recreate"), 0, 0),
    ],
)
def test_max_surge_and_max_unavailable(d: Object, surge: int, unavailable: int) -> None:
    assert (max_surge(d), max_unavailable(d)) == (surge, unavailable)


# -- growing the new ReplicaSet ---------------------------------------------------------


@pytest.mark.parametrize(
    ("d", "old_sizes", "new_size", "expected"),
    [
        (deployment(10, surge=3, unavailable=0), [10], 0, 3),  # up to replicas + surge pods
        (deployment(10, surge=3, unavailable=0), [10], 3, 3),  # at the ceiling: stays
        (deployment(10, surge=3, unavailable=0), [7], 3, 6),
        (deployment(10, surge=3, unavailable=0), [0], 3, 10),  # never past replicas
        (deployment(10, surge="25%", unavailable=0), [10], 0, 3),  # 25% of 10 rounds up to 3
        (deployment(1, surge="25%", unavailable="25%"), [1], 0, 1),
        (deployment(3, strategy="Recreate"), [3], 0, 3),
    ],
)
def test_new_replica_set_replicas(
    d: Object, old_sizes: list[int], new_size: int, expected: int
) -> None:
    olds: list[Object | None] = [replica_set(f"old{i}", n) for i, n in enumerate(old_sizes)]
    new = replica_set("new", new_size, template=OTHER_TEMPLATE)
    assert new_replica_set_replicas(d, [*olds, new], new) == expected


def test_surge_counts_pods_an_old_replica_set_still_has() -> None:
    d = deployment(4, surge=1, unavailable=1)
    # Scaled down to 2, but the ReplicaSet controller has not deleted its pods yet.
    old = replica_set("old", 2, pods=4)
    new = replica_set("new", 1, template=OTHER_TEMPLATE)
    assert new_replica_set_replicas(d, [old, new], new) == 1
    old["status"]["replicas"] = 2
    assert new_replica_set_replicas(d, [old, new], new) == 3


def test_plan_new_replica_set_scales_a_too_large_new_set_down() -> None:
    d = deployment(3)
    new = replica_set("new", 5)
    assert sizes(plan_new_replica_set(d, [new], new)) == [("new", 3)]
    assert plan_new_replica_set(d, [replica_set("same", 3)], replica_set("same", 3)) == []


# -- shrinking the old ones -------------------------------------------------------------


@pytest.mark.parametrize(
    ("d", "olds", "new", "expected"),
    [
        # No unavailability allowed and the new pods are not available yet: nothing.
        (
            deployment(10, surge=3, unavailable=0),
            [replica_set("old", 10)],
            replica_set("new", 3, available=0),
            [],
        ),
        # The surge pods became available: the old set gives up as many.
        (
            deployment(10, surge=3, unavailable=0),
            [replica_set("old", 10)],
            replica_set("new", 3),
            [("old", 7)],
        ),
        # maxUnavailable lets the old set shrink before any new pod exists.
        (
            deployment(10, surge=0, unavailable=2),
            [replica_set("old", 10)],
            replica_set("new", 0),
            [("old", 8)],
        ),
        # Unavailable old pods go first: removing them costs no availability.
        (
            deployment(10, surge=0, unavailable=2),
            [replica_set("old", 10, available=8)],
            replica_set("new", 0),
            [("old", 8)],
        ),
        # 12 pods, 8 must stay available, 1 new pod unavailable: 3 may go (4 if it were available).
        (
            deployment(10, surge=2, unavailable=2),
            [replica_set("old", 10)],
            replica_set("new", 2, available=1),
            [("old", 7)],
        ),
        (
            deployment(10, surge=2, unavailable=2),
            [replica_set("old", 10)],
            replica_set("new", 2),
            [("old", 6)],
        ),
        # Oldest first.
        (
            deployment(10, surge=0, unavailable=3),
            [replica_set("b", 5, created=50), replica_set("a", 5, created=90)],
            replica_set("new", 0),
            [("a", 2)],
        ),
        (
            deployment(10, surge=0, unavailable=7),
            [replica_set("b", 5, created=50), replica_set("a", 5, created=90)],
            replica_set("new", 0),
            [("a", 0), ("b", 3)],
        ),
    ],
)
def test_plan_old_replica_sets(
    d: Object, olds: list[Object], new: Object, expected: list[tuple[str, int]]
) -> None:
    assert sizes(plan_old_replica_sets(d, [*olds, new], olds, new)) == expected


def test_availability_not_counted_past_a_replica_sets_size() -> None:
    """A status written before a scale-down still counts the pods being deleted."""
    d = deployment(4, surge=1, unavailable=1)
    old = replica_set("old", 2, pods=4, available=4)
    new = replica_set("new", 3, available=1, template=OTHER_TEMPLATE)
    # Available: min(2, 4) + 1 = 3 = minAvailable, so nothing more may go.
    assert plan_old_replica_sets(d, [old, new], [old], new) == []


def test_recreate_scales_every_active_old_set_to_zero() -> None:
    olds = [replica_set("a", 3), replica_set("b", 0), replica_set("c", 1)]
    assert sizes(plan_recreate_scale_down(olds)) == [("a", 0), ("c", 0)]


def test_old_pods_running() -> None:
    new = replica_set("new", 1)
    gone = replica_set("old", 0, pods=0)
    assert not old_pods_running(new, [gone], {"old-uid": []})
    assert old_pods_running(new, [replica_set("old", 0, pods=1)], {})
    finished = {"status": {"phase": "Succeeded"}}
    running = {"status": {"phase": "Running"}}
    assert not old_pods_running(new, [gone], {"old-uid": [finished], "new-uid": [running]})
    assert old_pods_running(new, [gone], {"old-uid": [running]})


# -- scaling events ---------------------------------------------------------------------


def test_a_single_active_replica_set_takes_the_new_count() -> None:
    d = deployment(12)
    new = replica_set("new", 10, desired=10, maximum=13)
    old = replica_set("old", 0, desired=10, maximum=13)
    assert sizes(plan_scale(d, new, [old])) == [("new", 12)]


def test_with_no_active_replica_set_the_newest_is_scaled() -> None:
    d = deployment(3)
    a, b = replica_set("a", 0, created=90), replica_set("b", 0, created=10)
    assert find_active_or_latest(None, [a, b]) is b
    assert sizes(plan_scale(d, None, [a, b])) == [("b", 3)]


@pytest.mark.parametrize(
    ("replicas", "new_size", "old_size", "annotated", "expected"),
    [
        (10, 2, 3, 5, {"new": 4, "old": 6}),  # 5 -> 10, in proportion
        (3, 2, 3, 5, {"new": 1, "old": 2}),  # 5 -> 3
        (0, 2, 3, 5, {"new": 0, "old": 0}),  # to zero
        (8, 4, 4, 8, {"new": 4, "old": 4}),  # same allowed size: nothing moves
    ],
)
def test_proportional_scaling_during_a_rollout(
    replicas: int, new_size: int, old_size: int, annotated: int, expected: dict[str, int]
) -> None:
    d = deployment(replicas, surge=0, unavailable=1)
    new = replica_set(
        "new", new_size, maximum=annotated, desired=annotated, created=10, template=OTHER_TEMPLATE
    )
    old = replica_set("old", old_size, maximum=annotated, desired=annotated, created=90)
    planned = dict(sizes(plan_scale(d, new, [old])))
    assert planned == expected


def test_rounding_leftovers_go_to_the_largest_replica_set() -> None:
    d = deployment(10, surge=0, unavailable=1)
    sets = [replica_set(n, 1, maximum=3, created=c) for n, c in (("a", 30), ("b", 20), ("c", 10))]
    planned = dict(sizes(plan_scale(d, sets[2], sets[:2])))
    # Each gets round(1 * 10 / 3) - 1 = 2; the leftover 1 goes to the first (newest) one.
    assert planned == {"c": 4, "b": 3, "a": 3}
    assert sum(planned.values()) == 10


def test_saturated_new_replica_set_takes_over() -> None:
    d = deployment(3)
    new = replica_set("new", 3, desired=3, template=OTHER_TEMPLATE)
    old = replica_set("old", 2)
    assert is_saturated(d, new)
    assert sizes(plan_scale(d, new, [old])) == [("old", 0)]
    assert not is_saturated(d, replica_set("new", 3, desired=3, available=2))


def test_recreate_is_not_scaled_in_proportion() -> None:
    d = deployment(5, strategy="Recreate")
    assert plan_scale(d, replica_set("new", 2, created=1), [replica_set("old", 2)]) == []


def test_is_scaling_event() -> None:
    d = deployment(5)
    assert is_scaling_event(d, replica_set("new", 3, desired=3), [])
    assert not is_scaling_event(
        d, replica_set("new", 5, desired=5), [replica_set("old", 0, desired=3)]
    )
    assert not is_scaling_event(d, replica_set("new", 5), [])  # no annotation: not ours to judge


# -- new and old ------------------------------------------------------------------------


def test_the_new_replica_set_is_the_oldest_with_the_template_ignoring_the_hash() -> None:
    d = deployment(3)
    hashed = copy.deepcopy(TEMPLATE)
    hashed["metadata"]["labels"][POD_TEMPLATE_HASH] = "abc"
    young = replica_set("young", 1, created=10, template=hashed)
    old_same = replica_set("elder", 1, created=90, template=hashed)
    other = replica_set("other", 1, created=50, template=OTHER_TEMPLATE)
    found = find_new_replica_set(d, [young, other, old_same])
    assert found is old_same
    assert [
        rs["metadata"]["name"] for rs in find_old_replica_sets(d, [young, other, old_same])
    ] == ["young", "other"]
    assert find_new_replica_set(deployment(3, template=OTHER_TEMPLATE), [young]) is None


def test_equal_ignore_hash_treats_empty_and_absent_alike() -> None:
    with_empties = copy.deepcopy(TEMPLATE)
    with_empties["metadata"]["annotations"] = {}
    with_empties["spec"]["volumes"] = []
    assert equal_ignore_hash(TEMPLATE, with_empties)
    assert not equal_ignore_hash(TEMPLATE, OTHER_TEMPLATE)


def test_pod_template_hash_is_stable_and_safe() -> None:
    first = pod_template_hash(TEMPLATE, None)
    assert first == pod_template_hash(copy.deepcopy(TEMPLATE), None)
    assert set(first) <= set("bcdfghjklmnpqrstvwxz2456789")
    assert 1 <= len(first) <= 10
    assert pod_template_hash(OTHER_TEMPLATE, None) != first
    assert pod_template_hash(TEMPLATE, 1) != first
    # Key order does not matter: the encoding is canonical.
    reordered = {"spec": TEMPLATE["spec"], "metadata": TEMPLATE["metadata"]}
    assert pod_template_hash(reordered, None) == first


def test_safe_encode_maps_digits_as_kube_does() -> None:
    assert safe_encode("0123456789") == "456789bcdf"


def test_new_replica_set_object() -> None:
    d = deployment(
        4,
        surge=1,
        unavailable=1,
        annotations={"team": "a", "kubectl.kubernetes.io/last-applied-configuration": "{}"},
    )
    old = replica_set("old", 4, revision=3, template=OTHER_TEMPLATE)
    reference = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "web",
        "uid": "d-uid",
        "controller": True,
    }
    rs = new_replica_set(d, [old], reference)
    template_hash = pod_template_hash(TEMPLATE, None)
    assert rs["metadata"]["name"] == f"web-{template_hash}"
    assert rs["metadata"]["labels"] == {"app": "web", POD_TEMPLATE_HASH: template_hash}
    assert rs["metadata"]["ownerReferences"] == [reference]
    assert rs["spec"]["selector"] == {
        "matchLabels": {"app": "web", POD_TEMPLATE_HASH: template_hash}
    }
    assert rs["spec"]["template"]["metadata"]["labels"][POD_TEMPLATE_HASH] == template_hash
    assert rs["spec"]["replicas"] == 1  # 4 old pods + 1 surge
    assert rs["metadata"]["annotations"] == {
        "team": "a",
        REVISION: "4",
        DESIRED_REPLICAS: "4",
        MAX_REPLICAS: "5",
    }
    assert "pod-template-hash" not in d["spec"]["template"]["metadata"]["labels"]


def test_rolling_back_to_a_replica_set_keeps_its_old_revision_in_the_history() -> None:
    d = deployment(3)
    rs = replica_set("back", 3, revision=1)
    annotations, changed = new_replica_set_annotations(d, rs, 4, exists=True)
    assert changed
    assert annotations[REVISION] == "4"
    assert annotations[REVISION_HISTORY] == "1"
    rs["metadata"]["annotations"] = annotations
    again, _ = new_replica_set_annotations(d, rs, 6, exists=True)
    assert again[REVISION_HISTORY] == "1,4"
    # An up-to-date revision changes nothing.
    _, changed = new_replica_set_annotations(
        d, {**rs, "metadata": {**rs["metadata"], "annotations": again}}, 6, exists=True
    )
    assert not changed


def test_revision_history_stays_bounded() -> None:
    d = deployment(3)
    history = ",".join(str(n) for n in range(1, 600))
    rs = replica_set("back", 3, revision=700)
    rs["metadata"]["annotations"][REVISION_HISTORY] = history
    annotations, _ = new_replica_set_annotations(d, rs, 701, exists=True)
    kept = annotations[REVISION_HISTORY]
    assert len(kept) <= MAX_REVISION_HISTORY_CHARS
    assert kept.endswith(",700")
    assert not kept.startswith("1,")


def test_cleanup_keeps_revision_history_limit_old_sets() -> None:
    d = deployment(3, history_limit=1)
    olds = [
        replica_set("r1", 0, revision=1, created=90),
        replica_set("r2", 0, revision=2, created=80),
        replica_set("r3", 1, revision=3, created=70),
        replica_set("r4", 0, revision=4, created=60),
    ]
    # Three must go, lowest revisions first; r3 still has replicas and stays.
    assert [rs["metadata"]["name"] for rs in plan_cleanup(d, olds)] == ["r1", "r2"]
    assert plan_cleanup(deployment(3, history_limit=None), olds) == []


# -- status and conditions ---------------------------------------------------------------


def test_calculate_status_counts_and_availability() -> None:
    d = deployment(4, surge=1, unavailable=1, generation=3)
    old = replica_set("old", 2, available=2)
    new = replica_set("new", 3, available=1, template=OTHER_TEMPLATE)
    status = calculate_status([old, new], new, d, NOW)
    assert {k: v for k, v in status.items() if k != "conditions"} == {
        "observedGeneration": 3,
        "replicas": 5,
        "updatedReplicas": 3,
        "readyReplicas": 3,
        "availableReplicas": 3,
        "unavailableReplicas": 2,
    }
    available = get_condition(status, "Available")
    assert available is not None
    assert (available["status"], available["reason"], available["message"]) == (
        "True",
        "MinimumReplicasAvailable",
        "Deployment has minimum availability.",
    )
    short = calculate_status([replica_set("old", 4, available=2)], None, d, NOW)
    available = get_condition(short, "Available")
    assert available is not None
    assert (available["status"], available["reason"], available["message"]) == (
        "False",
        "MinimumReplicasUnavailable",
        "Deployment does not have minimum availability.",
    )


def test_set_condition_keeps_transition_time_and_ignores_same_reason() -> None:
    status: dict[str, Any] = {}
    set_condition(
        status,
        {
            "type": "Progressing",
            "status": "True",
            "reason": "A",
            "message": "a",
            "lastUpdateTime": stamp(60),
            "lastTransitionTime": stamp(60),
        },
    )
    set_condition(
        status,
        {
            "type": "Progressing",
            "status": "True",
            "reason": "A",
            "message": "changed",
            "lastUpdateTime": stamp(0),
            "lastTransitionTime": stamp(0),
        },
    )
    assert status["conditions"][0]["message"] == "a"
    set_condition(
        status,
        {
            "type": "Progressing",
            "status": "True",
            "reason": "B",
            "message": "b",
            "lastUpdateTime": stamp(0),
            "lastTransitionTime": stamp(0),
        },
    )
    assert status["conditions"][0]["lastTransitionTime"] == stamp(60)
    assert status["conditions"][0]["lastUpdateTime"] == stamp(0)


def progressing(status: dict[str, Any]) -> tuple[str, str, str]:
    condition = get_condition(status, "Progressing")
    assert condition is not None
    return condition["status"], condition["reason"], condition["message"]


def test_rollout_progress_conditions() -> None:
    new = replica_set("web-abc", 2, available=1)
    d = deployment(2, status={"replicas": 2, "updatedReplicas": 2, "availableReplicas": 0})
    set_condition(
        d["status"],
        {
            "type": "Progressing",
            "status": "True",
            "reason": "NewReplicaSetCreated",
            "message": "",
            "lastUpdateTime": stamp(30),
            "lastTransitionTime": stamp(30),
        },
    )
    status = rollout_status([new], new, d, NOW)
    assert progressing(status) == (
        "True",
        "ReplicaSetUpdated",
        'ReplicaSet "web-abc" is progressing.',
    )
    condition = get_condition(status, "Progressing")
    assert condition is not None
    assert condition["lastTransitionTime"] == stamp(30)
    assert condition["lastUpdateTime"] == stamp(0)

    done = replica_set("web-abc", 2, available=2)
    status = rollout_status([done], done, d, NOW)
    assert progressing(status) == (
        "True",
        "NewReplicaSetAvailable",
        'ReplicaSet "web-abc" has successfully progressed.',
    )


def test_rollout_times_out_past_its_deadline() -> None:
    stuck = replica_set("web-abc", 2, available=0)
    d = deployment(2, deadline=10, status={"replicas": 2, "updatedReplicas": 2})
    set_condition(
        d["status"],
        {
            "type": "Progressing",
            "status": "True",
            "reason": "ReplicaSetUpdated",
            "message": "",
            "lastUpdateTime": stamp(4),
            "lastTransitionTime": stamp(4),
        },
    )
    status = rollout_status([stuck], stuck, d, NOW)
    assert progressing(status)[1] == "ReplicaSetUpdated"
    assert status_equal(d["status"], status) is False  # the Available condition is new
    d["status"] = status
    status = rollout_status([stuck], stuck, d, NOW)
    assert status_equal(d["status"], status)
    # Looked at again once the deadline has passed (plus a second).
    assert stuck_recheck_after(d, status, NOW) == pytest.approx(7.0)
    later = NOW + timedelta(seconds=7)
    status = rollout_status([stuck], stuck, d, later)
    assert progressing(status) == (
        "False",
        "ProgressDeadlineExceeded",
        'ReplicaSet "web-abc" has timed out progressing.',
    )
    d["status"] = status
    assert stuck_recheck_after(d, status, later) is None


def test_no_progressing_condition_without_a_deadline() -> None:
    rs = replica_set("web-abc", 2)
    d = deployment(2, deadline=None)
    assert get_condition(rollout_status([rs], rs, d, NOW), "Progressing") is None


def test_replica_failure_is_copied_from_the_replica_sets() -> None:
    rs = replica_set("web-abc", 2, pods=0)
    rs["status"]["conditions"] = [
        {
            "type": "ReplicaFailure",
            "status": "True",
            "reason": "FailedCreate",
            "message": "quota",
            "lastTransitionTime": stamp(5),
        }
    ]
    status = rollout_status([rs], rs, deployment(2), NOW)
    failure = get_condition(status, "ReplicaFailure")
    assert failure is not None
    assert (failure["reason"], failure["message"], failure["lastUpdateTime"]) == (
        "FailedCreate",
        "quota",
        stamp(5),
    )
    rs["status"].pop("conditions")
    assert (
        get_condition(
            rollout_status([rs], rs, {**deployment(2), "status": status}, NOW), "ReplicaFailure"
        )
        is None
    )


def test_pausing_and_resuming_record_an_unknown_progressing_condition() -> None:
    d = deployment(2)
    d["spec"]["paused"] = True
    status = paused_condition(d, NOW)
    assert status is not None
    assert progressing(status) == ("Unknown", "DeploymentPaused", "Deployment is paused")
    d["status"] = status
    assert paused_condition(d, NOW) is None
    d["spec"]["paused"] = False
    resumed = paused_condition(d, NOW)
    assert resumed is not None
    assert progressing(resumed) == ("Unknown", "DeploymentResumed", "Deployment is resumed")
