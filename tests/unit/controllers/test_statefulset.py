"""The StatefulSet controller's decisions: pod identity and storage, ordinal planning
(ordered and parallel), scale-down, rolling updates with a partition, status, claim
owners and history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from timonel.api.objects import Object
from timonel.controllers.statefulset import (
    StatefulSetPlan,
    claim_owner_references,
    complete_rolling_update,
    new_pod,
    persistent_volume_claims,
    plan_history_truncation,
    plan_stateful_set,
    status_inconsistent,
    versioned_pod,
)

NOW = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
OLD, NEW = "web-old", "web-new"


def statefulset(
    replicas: int = 3,
    *,
    policy: str = "OrderedReady",
    partition: int | None = 0,
    strategy: str = "RollingUpdate",
) -> Object:
    update: dict[str, Any] = {"type": strategy}
    if partition is not None and strategy == "RollingUpdate":
        update["rollingUpdate"] = {"partition": partition}
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "web", "namespace": "ns", "uid": "set-uid", "generation": 1},
        "spec": {
            "replicas": replicas,
            "serviceName": "web-svc",
            "podManagementPolicy": policy,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [{"name": "web", "image": "nginx"}],
                    "volumes": [{"name": "config", "emptyDir": {}}],
                },
            },
            "volumeClaimTemplates": [
                {
                    "metadata": {"name": "data", "labels": {"tier": "db"}},
                    "spec": {"resources": {}},
                    "status": {"phase": "Pending"},
                }
            ],
            "updateStrategy": update,
        },
    }


def pod(
    ordinal: int,
    *,
    phase: str = "Running",
    ready: bool = True,
    revision: str = NEW,
    deleting: bool = False,
) -> Object:
    made = new_pod(statefulset(), ordinal, revision)
    made["metadata"]["uid"] = f"uid-{ordinal}"
    if deleting:
        made["metadata"]["deletionTimestamp"] = "2025-01-01T11:59:00Z"
    stamp = (NOW - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    made["status"] = {
        "phase": phase,
        "conditions": [
            {"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": stamp}
        ],
    }
    return made


def plan(
    sts: Object, pods: list[Object], claims: dict[str, Object] | None = None
) -> StatefulSetPlan:
    return plan_stateful_set(
        sts,
        pods,
        current_set=sts,
        update_set=sts,
        current_revision=NEW,
        update_revision=NEW,
        claims=claims if claims is not None else {},
        now=NOW,
    )


def steps(result: StatefulSetPlan) -> list[list[tuple[str, str]]]:
    return [[(s.kind, s.pod["metadata"]["name"]) for s in phase] for phase in result.phases]


def test_pod_identity_and_storage() -> None:
    made = new_pod(statefulset(), 2, "web-abc")
    meta = made["metadata"]
    assert meta["name"] == "web-2" and meta["namespace"] == "ns"
    assert "generateName" not in meta
    assert meta["labels"] == {
        "app": "web",
        "statefulset.kubernetes.io/pod-name": "web-2",
        "apps.kubernetes.io/pod-index": "2",
        "controller-revision-hash": "web-abc",
    }
    assert meta["ownerReferences"][0]["kind"] == "StatefulSet"
    assert made["spec"]["hostname"] == "web-2"
    assert made["spec"]["subdomain"] == "web-svc"
    assert made["spec"]["volumes"] == [
        {"name": "data", "persistentVolumeClaim": {"claimName": "data-web-2"}},
        {"name": "config", "emptyDir": {}},
    ]
    [(template_name, claim)] = persistent_volume_claims(statefulset(), 2)
    assert template_name == "data"
    assert claim["metadata"]["name"] == "data-web-2"
    assert claim["metadata"]["labels"] == {"tier": "db", "app": "web"}
    assert "status" not in claim


def test_ordered_ready_creates_one_pod_at_a_time() -> None:
    sts = statefulset(3)
    assert steps(plan(sts, [])) == [[("create", "web-0")]]
    # web-0 exists but is not ready yet: nothing more.
    assert steps(plan(sts, [pod(0, phase="Pending", ready=False)], {"data-web-0": {}})) == []
    assert steps(plan(sts, [pod(0, ready=False)])) == []
    assert steps(plan(sts, [pod(0)])) == [[("create", "web-1")]]
    assert steps(plan(sts, [pod(0), pod(1)])) == [[("create", "web-2")]]
    assert steps(plan(sts, [pod(0), pod(1), pod(2)])) == []


def test_parallel_creates_all_at_once() -> None:
    result = plan(statefulset(3, policy="Parallel"), [pod(1, ready=False)])
    assert steps(result) == [[("create", "web-0"), ("create", "web-2")]]


def test_pending_pod_gets_its_missing_claims() -> None:
    assert steps(plan(statefulset(1), [pod(0, phase="Pending", ready=False)])) == [
        [("ensure_claims", "web-0")]
    ]


def test_finished_pods_are_recreated() -> None:
    result = plan(statefulset(2), [pod(0, phase="Failed", ready=False), pod(1)])
    assert steps(result) == [[("recreate", "web-0")]]
    step = result.phases[0][0]
    assert step.reason == "Failed"
    assert step.replacement is not None and "status" not in step.replacement


def test_scale_down_in_reverse_order() -> None:
    sts = statefulset(1)
    pods = [pod(0), pod(1), pod(2), pod(3)]
    assert steps(plan(sts, pods)) == [[("delete", "web-3")]]
    # While web-3 terminates, nothing else is deleted.
    assert steps(plan(sts, [pod(0), pod(1), pod(2), pod(3, deleting=True)])) == []
    # An unhealthy pod is deleted only if it is the first unhealthy one: otherwise it waits
    # for the lower ones to recover.
    assert steps(plan(sts, [pod(0), pod(1, ready=False), pod(2, ready=False)])) == []
    assert steps(plan(sts, [pod(0), pod(1), pod(2, ready=False)])) == [[("delete", "web-2")]]
    parallel = statefulset(1, policy="Parallel")
    assert steps(plan(parallel, pods)) == [
        [("delete", "web-3"), ("delete", "web-2"), ("delete", "web-1")]
    ]


def test_rolling_update_highest_ordinal_first_down_to_the_partition() -> None:
    def update_plan(sts: Object, pods: list[Object]) -> StatefulSetPlan:
        return plan_stateful_set(
            sts,
            pods,
            current_set=sts,
            update_set=sts,
            current_revision=OLD,
            update_revision=NEW,
            claims={},
            now=NOW,
        )

    sts = statefulset(3, partition=0)
    old = [pod(i, revision=OLD) for i in range(3)]
    result = update_plan(sts, old)
    assert steps(result) == [[("delete", "web-2")]]
    assert result.status["currentReplicas"] == 2  # one of the three current pods is going
    # The updated pod must be healthy before the next one goes.
    assert steps(update_plan(sts, [*old[:2], pod(2, revision=NEW, ready=False)])) == []
    assert steps(update_plan(sts, [*old[:2], pod(2, revision=NEW)])) == [[("delete", "web-1")]]
    # Ordinals below the partition stay.
    partitioned = statefulset(3, partition=2)
    assert steps(update_plan(partitioned, [*old[:2], pod(2, revision=NEW)])) == []
    on_delete = statefulset(3, strategy="OnDelete", partition=None)
    assert steps(update_plan(on_delete, old)) == []


def test_new_pods_below_the_partition_keep_the_current_revision() -> None:
    current, update = statefulset(3, partition=2), statefulset(3, partition=2)
    update["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:2"
    below = versioned_pod(current, current, update, OLD, NEW, 1)
    above = versioned_pod(current, current, update, OLD, NEW, 2)
    assert below["metadata"]["labels"]["controller-revision-hash"] == OLD
    assert below["spec"]["containers"][0]["image"] == "nginx"
    assert above["metadata"]["labels"]["controller-revision-hash"] == NEW
    assert above["spec"]["containers"][0]["image"] == "nginx:2"


def test_status_and_completed_rollout() -> None:
    result = plan_stateful_set(
        statefulset(3),
        [pod(0, revision=OLD), pod(1, ready=False), pod(2, phase="Pending", ready=False)],
        current_set=statefulset(3),
        update_set=statefulset(3),
        current_revision=OLD,
        update_revision=NEW,
        claims={"data-web-2": {}},
        now=NOW,
    )
    assert result.status == {
        "replicas": 3,
        "readyReplicas": 1,
        "availableReplicas": 1,
        "currentReplicas": 1,
        "updatedReplicas": 2,
    }
    status: dict[str, Any] = {
        "replicas": 3,
        "readyReplicas": 3,
        "updatedReplicas": 3,
        "currentReplicas": 0,
        "currentRevision": OLD,
        "updateRevision": NEW,
        "availableReplicas": 3,
    }
    complete_rolling_update(statefulset(3), status)
    assert (status["currentReplicas"], status["currentRevision"]) == (3, NEW)
    assert status_inconsistent({"status": {}}, status)
    assert not status_inconsistent({"status": dict(status)}, status)


def test_claim_owners_follow_the_retention_policy() -> None:
    sts = statefulset(2)
    kept, condemned = pod(1), pod(5)
    claim: Object = {
        "metadata": {"name": "data-web-5", "ownerReferences": [{"uid": "other", "kind": "Thing"}]}
    }

    def owners(when_deleted: str, when_scaled: str, of: Object) -> list[str]:
        sts["spec"]["persistentVolumeClaimRetentionPolicy"] = {
            "whenDeleted": when_deleted,
            "whenScaled": when_scaled,
        }
        return [r["uid"] for r in claim_owner_references(claim, sts, of)]

    assert owners("Retain", "Retain", kept) == ["other"]
    assert owners("Delete", "Retain", kept) == ["other", "set-uid"]
    assert owners("Retain", "Delete", condemned) == ["other", "uid-5"]
    assert owners("Retain", "Delete", kept) == ["other"]
    assert owners("Delete", "Delete", condemned) == ["other", "uid-5"]
    assert owners("Delete", "Delete", kept) == ["other", "set-uid"]


def test_history_truncation_spares_live_revisions() -> None:
    sts = statefulset()
    sts["spec"]["revisionHistoryLimit"] = 1
    revisions = [{"metadata": {"name": f"web-{n}"}, "revision": n} for n in range(1, 6)]
    doomed = plan_history_truncation(
        sts, revisions, [pod(0, revision="web-2")], current="web-4", update="web-5"
    )
    assert [r["metadata"]["name"] for r in doomed] == ["web-1"]
