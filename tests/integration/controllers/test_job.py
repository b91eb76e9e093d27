"""The Job and TTL-after-finished controllers inside `timonel server`. The test finishes
pods itself (Succeeded / Failed), as a kubelet would."""

from __future__ import annotations

from typing import Any

from tests.conftest import RunningServer
from tests.integration.controllers.harness import (
    NO_SCHEDULER,
    apply,
    events,
    get,
    items,
    live_pods,
    mark_pod,
    wait_for,
)

FINALIZER = "batch.kubernetes.io/job-tracking"


def job(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            **spec,
            "template": {
                "spec": {
                    "schedulerName": NO_SCHEDULER,
                    "restartPolicy": "Never",
                    "containers": [{"name": "work", "image": "busybox", "command": ["true"]}],
                }
            },
        },
    }


def running(server: RunningServer, namespace: str, name: str) -> list[dict[str, Any]]:
    """The Job's pods that are neither finished nor on their way out."""
    return [
        p
        for p in live_pods(server, namespace, f"batch.kubernetes.io/job-name={name}")
        if p.get("status", {}).get("phase") not in ("Succeeded", "Failed")
    ]


def conditions(obj: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in (obj or {}).get("status", {}).get("conditions") or []}


def test_runs_to_completion_with_parallelism(server: RunningServer, namespace: str) -> None:
    apply(server, job("batch", completions=3, parallelism=2), namespace)
    first = wait_for(
        lambda: len(p := running(server, namespace, "batch")) == 2 and p, what="two pods"
    )
    pod = first[0]
    assert pod["metadata"]["generateName"] == "batch-"
    assert FINALIZER in pod["metadata"]["finalizers"]
    assert pod["metadata"]["labels"]["batch.kubernetes.io/job-name"] == "batch"
    assert pod["metadata"]["ownerReferences"][0]["kind"] == "Job"

    mark_pod(server, namespace, first[0]["metadata"]["name"], "Succeeded")
    # One done, two to go, two at a time.
    wait_for(
        lambda: (
            len(r := running(server, namespace, "batch")) == 2
            and first[0]["metadata"]["name"] not in {p["metadata"]["name"] for p in r}
        ),
        what="a third pod",
    )
    for pod in running(server, namespace, "batch"):
        mark_pod(server, namespace, pod["metadata"]["name"], "Succeeded")

    done = wait_for(
        lambda: (j := get(server, "job", "batch", namespace)) and "Complete" in conditions(j) and j,
        what="the Job complete",
    )
    status = done["status"]
    assert status["succeeded"] == 3
    assert status.get("active", 0) == 0 and status["ready"] == 0
    assert status["startTime"] <= status["completionTime"]
    met, complete = conditions(done)["SuccessCriteriaMet"], conditions(done)["Complete"]
    assert (met["status"], met["reason"]) == ("True", "CompletionsReached")
    assert (complete["status"], complete["reason"], complete["message"]) == (
        "True",
        "CompletionsReached",
        "Reached expected number of succeeded pods",
    )
    # Counted pods lose the tracking finalizer.
    pods = items(server, "pods", namespace, "batch.kubernetes.io/job-name=batch")
    assert len(pods) == 3 and all(
        FINALIZER not in (p["metadata"].get("finalizers") or []) for p in pods
    )
    recorded = events(server, namespace, "Job", "batch")
    assert ("Completed", "Job completed") in recorded
    assert (
        sum(
            1
            for reason, message in recorded
            if reason == "SuccessfulCreate" and message.startswith("Created pod: batch-")
        )
        == 3
    )


def test_indexed_job(server: RunningServer, namespace: str) -> None:
    apply(server, job("idx", completions=2, parallelism=2, completionMode="Indexed"), namespace)
    pods = wait_for(
        lambda: len(p := running(server, namespace, "idx")) == 2 and p, what="two indexed pods"
    )
    by_index = {
        p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]: p for p in pods
    }
    assert set(by_index) == {"0", "1"}
    pod = by_index["1"]
    assert pod["metadata"]["generateName"] == "idx-1-"
    assert pod["metadata"]["labels"]["batch.kubernetes.io/job-completion-index"] == "1"
    assert pod["spec"]["hostname"] == "idx-1"
    env = pod["spec"]["containers"][0]["env"]
    assert env == [
        {
            "name": "JOB_COMPLETION_INDEX",
            "valueFrom": {
                "fieldRef": {
                    "apiVersion": "v1",
                    "fieldPath": "metadata.labels['batch.kubernetes.io/job-completion-index']",
                }
            },
        }
    ]
    mark_pod(server, namespace, by_index["1"]["metadata"]["name"], "Succeeded")
    wait_for(
        lambda: (
            (get(server, "job", "idx", namespace) or {}).get("status", {}).get("completedIndexes")
            == "1"
        ),
        what="index 1 completed",
    )
    mark_pod(server, namespace, by_index["0"]["metadata"]["name"], "Succeeded")
    done = wait_for(
        lambda: (j := get(server, "job", "idx", namespace)) and "Complete" in conditions(j) and j,
        what="complete",
    )
    assert done["status"]["completedIndexes"] == "0,1"
    assert done["status"]["succeeded"] == 2


def test_backoff_limit_exceeded(server: RunningServer, namespace: str) -> None:
    apply(server, job("fails", backoffLimit=0), namespace)
    pod = wait_for(lambda: running(server, namespace, "fails"), what="a pod")[0]
    mark_pod(server, namespace, pod["metadata"]["name"], "Failed")
    failed = wait_for(
        lambda: (j := get(server, "job", "fails", namespace)) and "Failed" in conditions(j) and j,
        what="failed",
    )
    assert failed["status"]["failed"] == 1
    target, final = conditions(failed)["FailureTarget"], conditions(failed)["Failed"]
    expected = ("True", "BackoffLimitExceeded", "Job has reached the specified backoff limit")
    assert (target["status"], target["reason"], target["message"]) == expected
    assert (final["status"], final["reason"], final["message"]) == expected
    assert "completionTime" not in failed["status"]
    assert ("BackoffLimitExceeded", "Job has reached the specified backoff limit") in events(
        server, namespace, "Job", "fails"
    )
    # No replacement pod for a failed Job.
    assert running(server, namespace, "fails") == []


def test_active_deadline_exceeded(server: RunningServer, namespace: str) -> None:
    apply(server, job("slow", activeDeadlineSeconds=1), namespace)
    wait_for(lambda: running(server, namespace, "slow"), what="a pod")
    failed = wait_for(
        lambda: (j := get(server, "job", "slow", namespace)) and "Failed" in conditions(j) and j,
        what="deadline",
    )
    assert conditions(failed)["Failed"]["reason"] == "DeadlineExceeded"
    assert (
        conditions(failed)["Failed"]["message"] == "Job was active longer than specified deadline"
    )
    assert running(server, namespace, "slow") == []
    assert failed["status"]["failed"] == 1


def test_suspended_job_starts_when_resumed(server: RunningServer, namespace: str) -> None:
    apply(server, job("later", suspend=True), namespace)
    suspended = wait_for(
        lambda: (
            (j := get(server, "job", "later", namespace)) and "Suspended" in conditions(j) and j
        ),
        what="suspended",
    )
    assert conditions(suspended)["Suspended"]["status"] == "True"
    assert "startTime" not in suspended["status"]
    assert running(server, namespace, "later") == []
    server.kubectl(
        "patch", "job", "later", "-n", namespace, "--type=merge", "-p", '{"spec":{"suspend":false}}'
    )
    wait_for(lambda: running(server, namespace, "later"), what="a pod once resumed")
    resumed = get(server, "job", "later", namespace)
    assert conditions(resumed)["Suspended"]["status"] == "False"
    assert conditions(resumed)["Suspended"]["reason"] == "JobResumed"


def test_finished_job_deleted_after_its_ttl(server: RunningServer, namespace: str) -> None:
    apply(server, job("brief", ttlSecondsAfterFinished=1), namespace)
    pod = wait_for(lambda: running(server, namespace, "brief"), what="a pod")[0]
    mark_pod(server, namespace, pod["metadata"]["name"], "Succeeded")
    seen_complete = False

    def deleted_after_completing() -> bool:
        nonlocal seen_complete
        current = get(server, "job", "brief", namespace)
        if current is None:
            return True
        seen_complete = seen_complete or "Complete" in conditions(current)
        return False

    # With a one-second TTL the Job may already be gone when first polled after completing.
    wait_for(deleted_after_completing, what="the Job deleted")
    events = server.kubectl("get", "events", "-n", namespace, "-o", "json").json()["items"]
    assert seen_complete or any(e.get("reason") == "Completed" for e in events)
