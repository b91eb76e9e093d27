"""The Job controller's decisions: how many pods to run, failure backoff, completed
indexes, which pods go first, the pods it makes, deadlines, conditions, finalizer
counting, and the TTL after a Job finished."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from timonel.api.objects import Object
from timonel.controllers.job import (
    BackoffRecord,
    active_pods_for_removal,
    clean_status,
    count_removed_finalizers,
    ensure_condition,
    failure_backoff,
    first_pending_indexes,
    format_indexes,
    indexed_generate_name,
    is_pod_failed,
    job_pod,
    new_backoff_record,
    parse_indexes,
    past_active_deadline,
    past_backoff_limit_on_failure,
    remaining_backoff,
    succeeded_indexes,
    wanted_active,
    with_indexes,
)
from timonel.controllers.ttlafterfinished import seconds_left

NOW = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)


def stamp(seconds_before_now: float) -> str:
    return (NOW - timedelta(seconds=seconds_before_now)).strftime("%Y-%m-%dT%H:%M:%SZ")


def job(**spec: Any) -> Object:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "pi", "namespace": "ns", "uid": "job-uid"},
        "spec": {
            "parallelism": 1,
            "backoffLimit": 6,
            **spec,
            "template": {
                "metadata": {"labels": {"batch.kubernetes.io/job-name": "pi"}},
                "spec": {
                    "restartPolicy": spec.get("restartPolicy", "Never"),
                    "initContainers": [{"name": "setup", "image": "busybox"}],
                    "containers": [
                        {"name": "pi", "image": "perl", "env": [{"name": "A", "value": "1"}]}
                    ],
                },
            },
        },
        "status": {},
    }


def pod(
    name: str,
    *,
    phase: str = "Running",
    index: int | None = None,
    finished: float | None = None,
    ready: bool = False,
    node: str = "",
    created: float = 600,
    deleting: bool = False,
) -> Object:
    meta: dict[str, Any] = {
        "name": name,
        "uid": f"uid-{name}",
        "creationTimestamp": stamp(created),
        "finalizers": ["batch.kubernetes.io/job-tracking"],
    }
    if index is not None:
        meta["annotations"] = {"batch.kubernetes.io/job-completion-index": str(index)}
    if deleting:
        meta["deletionTimestamp"] = stamp(0)
    status: dict[str, Any] = {"phase": phase}
    if finished is not None:
        status["containerStatuses"] = [
            {"name": "pi", "state": {"terminated": {"finishedAt": stamp(finished)}}}
        ]
    status["conditions"] = [
        {"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": stamp(300)}
    ]
    return {"metadata": meta, "spec": {"nodeName": node}, "status": status}


def test_wanted_active() -> None:
    assert wanted_active(job(completions=5, parallelism=2), succeeded=0, active=0) == 2
    assert wanted_active(job(completions=5, parallelism=2), succeeded=4, active=2) == 1
    assert wanted_active(job(completions=5, parallelism=2), succeeded=6, active=0) == 0
    # Without completions, any success means: let what runs finish, start nothing.
    assert wanted_active(job(parallelism=3), succeeded=0, active=1) == 3
    assert wanted_active(job(parallelism=3), succeeded=1, active=2) == 2


def test_failure_backoff_doubles_up_to_the_cap() -> None:
    assert [failure_backoff(n) for n in range(0, 8)] == [0, 10, 20, 40, 80, 160, 320, 600]
    assert failure_backoff(30) == 600


def test_remaining_backoff() -> None:
    record = BackoffRecord(
        failures_after_last_success=2, last_failure_time=NOW - timedelta(seconds=5)
    )
    assert remaining_backoff(record, NOW) == 15.0
    assert remaining_backoff(record, NOW + timedelta(seconds=20)) == 0.0
    assert remaining_backoff(BackoffRecord(), NOW) == 0.0


def test_backoff_record_counts_failures_since_the_last_success() -> None:
    first = new_backoff_record(
        None, [], [pod("a", phase="Failed", finished=30), pod("b", phase="Failed", finished=10)]
    )
    assert first == BackoffRecord(2, NOW - timedelta(seconds=10))
    assert new_backoff_record(first, [], []) == first
    # A success resets the count; failures after it start a new one.
    after = new_backoff_record(
        first,
        [pod("ok", phase="Succeeded", finished=20)],
        [pod("c", phase="Failed", finished=25), pod("d", phase="Failed", finished=5)],
    )
    assert after == BackoffRecord(1, NOW - timedelta(seconds=5))
    assert (
        new_backoff_record(first, [pod("ok", phase="Succeeded", finished=1)], []) == BackoffRecord()
    )


def test_completed_indexes() -> None:
    assert parse_indexes("1,3-5,7", 10) == [(1, 1), (3, 5), (7, 7)]
    assert parse_indexes("1,3-5,7", 5) == [(1, 1), (3, 4)]
    assert format_indexes([(0, 0), (2, 3), (5, 9)]) == "0,2,3,5-9"
    assert with_indexes([(1, 1), (5, 6)], [2, 3, 0, 8]) == [(0, 3), (5, 6), (8, 8)]
    running = [pod("r", index=2)]
    assert first_pending_indexes([(0, 1), (4, 4)], running, 3, 8) == [3, 5, 6]
    assert first_pending_indexes([(0, 2)], [], 5, 4) == [3]
    indexed = job(completionMode="Indexed", completions=4)
    indexed["status"]["completedIndexes"] = "0"
    previous, now = succeeded_indexes(
        indexed,
        [
            pod("a", phase="Succeeded", index=2),
            pod("b", index=3),
            pod("c", phase="Succeeded", index=9),
        ],
    )
    assert (previous, now) == ([(0, 0)], [(0, 0), (2, 2)])


def test_pods_removed_first() -> None:
    plain = job(completions=3)
    pods = [
        pod("ready", ready=True, node="n"),
        pod("pending", phase="Pending", node="n"),
        pod("unscheduled"),
    ]
    assert [p["metadata"]["name"] for p in active_pods_for_removal(plain, pods, 2)] == [
        "unscheduled",
        "pending",
    ]
    # Indexed: out-of-range, index-less and repeated indexes go regardless.
    indexed = job(completionMode="Indexed", completions=3)
    pods = [
        pod("i0", index=0),
        pod("i1-old", index=1, ready=True, node="n", created=900),
        pod("i1-new", index=1, node="n", created=10),
        pod("i7", index=7),
        pod("none"),
    ]
    removed = {p["metadata"]["name"] for p in active_pods_for_removal(indexed, pods, 0)}
    assert removed == {"i1-new", "i7", "none"}


def test_job_pods() -> None:
    made = job_pod(job(completions=2), None)
    assert made["metadata"]["generateName"] == "pi-"
    assert made["metadata"]["finalizers"] == ["batch.kubernetes.io/job-tracking"]
    assert made["metadata"]["ownerReferences"][0]["kind"] == "Job"
    assert "hostname" not in made["spec"]

    indexed = job_pod(job(completionMode="Indexed", completions=2), 1)
    meta = indexed["metadata"]
    assert meta["generateName"] == "pi-1-"
    assert meta["annotations"] == {"batch.kubernetes.io/job-completion-index": "1"}
    assert meta["labels"]["batch.kubernetes.io/job-completion-index"] == "1"
    assert indexed["spec"]["hostname"] == "pi-1"
    index_env = {
        "name": "JOB_COMPLETION_INDEX",
        "valueFrom": {
            "fieldRef": {"fieldPath": "metadata.labels['batch.kubernetes.io/job-completion-index']"}
        },
    }
    assert indexed["spec"]["containers"][0]["env"] == [{"name": "A", "value": "1"}, index_env]
    assert indexed["spec"]["initContainers"][0]["env"] == [index_env]
    assert indexed_generate_name("x" * 60, 12) == "x" * 54 + "-12-"


def test_failed_pods() -> None:
    plain = job()
    assert is_pod_failed(pod("f", phase="Failed"), plain)
    # A pod deleted before it finished counts as failed unless only failed pods are replaced.
    assert is_pod_failed(pod("d", deleting=True), plain)
    assert not is_pod_failed(pod("d", deleting=True), job(podReplacementPolicy="Failed"))
    assert not is_pod_failed(pod("s", phase="Succeeded", deleting=True), plain)


def test_deadlines_and_restart_limits() -> None:
    deadline = job(activeDeadlineSeconds=60)
    deadline["status"]["startTime"] = stamp(61)
    assert past_active_deadline(deadline, NOW)
    deadline["status"]["startTime"] = stamp(30)
    assert not past_active_deadline(deadline, NOW)
    on_failure = job(restartPolicy="OnFailure", backoffLimit=2)
    restarting = pod("r")
    restarting["status"]["containerStatuses"] = [{"name": "pi", "restartCount": 2}]
    assert past_backoff_limit_on_failure(on_failure, [restarting])
    assert not past_backoff_limit_on_failure(job(backoffLimit=2), [restarting])


def test_conditions() -> None:
    conditions: list[dict[str, Any]] = []
    assert not ensure_condition(conditions, "Suspended", "False", "JobResumed", "Job resumed", NOW)
    assert ensure_condition(conditions, "Suspended", "True", "JobSuspended", "Job suspended", NOW)
    assert not ensure_condition(
        conditions, "Suspended", "True", "JobSuspended", "Job suspended", NOW
    )
    assert ensure_condition(conditions, "Suspended", "False", "JobResumed", "Job resumed", NOW)
    assert conditions == [
        {
            "type": "Suspended",
            "status": "False",
            "reason": "JobResumed",
            "message": "Job resumed",
            "lastProbeTime": "2025-01-01T12:00:00Z",
            "lastTransitionTime": "2025-01-01T12:00:00Z",
        }
    ]


def test_uncounted_pods_move_to_the_counters_once_their_finalizer_is_gone() -> None:
    status: dict[str, Any] = {
        "succeeded": 1,
        "uncountedTerminatedPods": {"succeeded": ["a", "b"], "failed": ["c"]},
    }
    assert count_removed_finalizers(status, with_finalizer={"b"})
    assert status == {
        "succeeded": 2,
        "failed": 1,
        "uncountedTerminatedPods": {"succeeded": ["b"], "failed": []},
    }
    assert not count_removed_finalizers(status, with_finalizer={"b"})
    assert clean_status({**status, "active": 0, "ready": 0}) == {
        "succeeded": 2,
        "failed": 1,
        "ready": 0,
        "uncountedTerminatedPods": {"succeeded": ["b"]},
    }


def test_ttl_after_finished() -> None:
    finished = job(ttlSecondsAfterFinished=100)
    finished["status"]["conditions"] = [
        {"type": "Complete", "status": "True", "lastTransitionTime": stamp(60)}
    ]
    assert seconds_left(finished, NOW) == 40.0
    finished["spec"]["ttlSecondsAfterFinished"] = 0
    assert seconds_left(finished, NOW) == -60.0
    assert seconds_left(job(ttlSecondsAfterFinished=10), NOW) is None
    running_forever = job()
    running_forever["status"]["conditions"] = finished["status"]["conditions"]
    assert seconds_left(running_forever, NOW) is None
