"""Probe thresholds, backoff, node status pieces and the status patch helpers."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from timonel.agent.kubelet.actions import FAILURE, SUCCESS
from timonel.agent.kubelet.backoff import Backoff, format_duration
from timonel.agent.kubelet.node import (
    Machine,
    Pressure,
    allocatable,
    capacity,
    condition_events,
    node_conditions,
    node_images,
    renewed_lease,
)
from timonel.agent.kubelet.podsync import (
    directory_usage,
    merge_patch,
    sized_empty_dirs,
    strip_none,
)
from timonel.agent.kubelet.podworkers import differs_beyond_status
from timonel.agent.kubelet.probes import LIVENESS, READINESS, STARTUP, ProbeState


def test_readiness_needs_its_thresholds_in_a_row() -> None:
    state = ProbeState(READINESS, success_threshold=2, failure_threshold=3)
    assert state.result == FAILURE
    assert not state.observe(SUCCESS)
    assert state.observe(SUCCESS)
    assert state.result == SUCCESS
    assert not state.observe(FAILURE) and not state.observe(FAILURE)
    assert not state.observe(SUCCESS)
    assert not state.observe(FAILURE) and not state.observe(FAILURE)
    assert state.observe(FAILURE)
    assert state.result == FAILURE


def test_liveness_starts_successful_and_startup_unknown() -> None:
    liveness = ProbeState(LIVENESS, failure_threshold=1)
    assert liveness.result == SUCCESS
    assert liveness.observe(FAILURE)
    assert ProbeState(STARTUP).result is None


def test_crash_loop_backoff_doubles_to_the_maximum_and_resets_after_quiet() -> None:
    backoff = Backoff(initial=10, maximum=300)
    finished = 1000.0
    assert not backoff.in_backoff_since("k", finished, finished + 1)
    backoff.next("k", finished)
    assert backoff.delay("k") == 10
    assert backoff.in_backoff_since("k", finished, finished + 9)
    assert not backoff.in_backoff_since("k", finished, finished + 10)
    assert backoff.remaining("k", finished, finished + 4) == 6
    delays = []
    for step in range(7):
        backoff.next("k", finished + step)
        delays.append(backoff.delay("k"))
    assert delays == [20, 40, 80, 160, 300, 300, 300]
    backoff.next("k", finished + 6 + 601)
    assert backoff.delay("k") == 10
    backoff.forget_prefix("k")
    assert backoff.delay("k") == 0


def test_durations_as_go_prints_them() -> None:
    assert [format_duration(s) for s in (10, 20, 40, 80, 160, 300, 1.5)] == [
        "10s", "20s", "40s", "1m20s", "2m40s", "5m0s", "1.5s"
    ]  # fmt: skip


def test_node_capacity_and_allocatable() -> None:
    machine = Machine(cpus=2, memory_bytes=4 * 1024**3, disk_bytes=100 * 1024**3)
    assert capacity(machine) == {
        "cpu": "2",
        "ephemeral-storage": f"{100 * 1024**2}Ki",
        "hugepages-1Gi": "0",
        "hugepages-2Mi": "0",
        "memory": f"{4 * 1024**2}Ki",
        "pods": "110",
    }
    assigned = allocatable(machine)
    assert assigned["memory"] == f"{4 * 1024**2 - 100 * 1024}Ki"
    assert assigned["ephemeral-storage"] == str(int(100 * 1024**3 * 0.9))


def test_node_conditions_move_transition_times_only_on_change() -> None:
    first = node_conditions(
        ready=False, not_ready_message="network", pressure=Pressure(), previous=[], now="t1"
    )
    assert [c["type"] for c in first] == ["MemoryPressure", "DiskPressure", "PIDPressure", "Ready"]
    assert first[3]["reason"] == "KubeletNotReady" and first[3]["message"] == "network"
    second = node_conditions(
        ready=True, not_ready_message="", pressure=Pressure(), previous=first, now="t2"
    )
    assert second[0]["lastTransitionTime"] == "t1" and second[0]["lastHeartbeatTime"] == "t2"
    assert second[3] == {
        "type": "Ready",
        "status": "True",
        "lastHeartbeatTime": "t2",
        "lastTransitionTime": "t2",
        "reason": "KubeletReady",
        "message": "kubelet is posting ready status",
    }
    pressured = node_conditions(
        ready=True, not_ready_message="", pressure=Pressure(memory=True), previous=second, now="t3"
    )
    assert (
        pressured[0]["status"] == "True"
        and pressured[0]["reason"] == "KubeletHasInsufficientMemory"
    )


def test_node_images_biggest_first_with_digests_then_tags() -> None:
    images = [
        SimpleNamespace(size=10, repo_digests=["a@sha256:1"], repo_tags=["a:1"]),
        SimpleNamespace(size=30, repo_digests=[], repo_tags=["b:1", "b:latest"]),
        SimpleNamespace(size=20, repo_digests=[], repo_tags=[]),
    ]
    assert node_images(images) == [
        {"names": ["b:1", "b:latest"], "sizeBytes": 30},
        {"names": ["a@sha256:1", "a:1"], "sizeBytes": 10},
    ]


def test_lease_is_owned_by_the_node_and_renewed() -> None:
    lease = renewed_lease(None, node_name="n1", node_uid="u1", now="2024-01-01T00:00:00.000000Z")
    assert lease["metadata"] == {
        "name": "n1",
        "namespace": "kube-node-lease",
        "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": "n1", "uid": "u1"}],
    }
    assert lease["spec"] == {
        "holderIdentity": "n1",
        "leaseDurationSeconds": 40,
        "renewTime": "2024-01-01T00:00:00.000000Z",
    }
    lease["metadata"]["resourceVersion"] = "7"
    renewed = renewed_lease(lease, node_name="n1", node_uid="u1", now="later")
    assert renewed["metadata"]["resourceVersion"] == "7" and renewed["spec"]["renewTime"] == "later"


def test_status_merge_patch() -> None:
    old = {
        "phase": "Pending",
        "message": "x",
        "containerStatuses": [{"state": {"waiting": {}}}],
        "hostIP": "1",
    }
    new = {
        "phase": "Running",
        "containerStatuses": [{"state": {"running": {}}}],
        "hostIP": "1",
        "podIP": None,
    }
    assert merge_patch(old, new) == {
        "message": None,
        "phase": "Running",
        "containerStatuses": [{"state": {"running": {}}}],
    }
    assert merge_patch({"a": {"b": 1, "c": None}}, {"a": {"b": 1}}) == {}
    assert strip_none({"a": None, "b": [{"c": None, "d": 1}]}) == {"b": [{"d": 1}]}


def test_status_only_changes_do_not_wake_the_pod_worker() -> None:
    pod = {
        "metadata": {"name": "p", "resourceVersion": "1"},
        "spec": {"x": 1},
        "status": {"phase": "Pending"},
    }
    ours = {
        **pod,
        "metadata": {"name": "p", "resourceVersion": "2"},
        "status": {"phase": "Running"},
    }
    assert not differs_beyond_status(pod, ours)
    deleted = {**pod, "metadata": {"name": "p", "deletionTimestamp": "now"}}
    assert differs_beyond_status(pod, deleted)
    gated = {**pod, "status": {"conditions": [{"type": "example.com/gate", "status": "True"}]}}
    assert differs_beyond_status(pod, gated)


def test_sized_empty_dirs_and_their_usage(tmp_path: Path) -> None:
    pod = {
        "spec": {
            "volumes": [
                {"name": "disk", "emptyDir": {"sizeLimit": "1Mi"}},
                {"name": "memory", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}},
                {"name": "unbounded", "emptyDir": {}},
                {"name": "host", "hostPath": {"path": "/tmp"}},
            ]
        }
    }
    assert sized_empty_dirs(pod) == [("disk", 1024 * 1024, "1Mi")]
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "file").write_bytes(b"x" * 200_000)
    assert directory_usage(tmp_path) >= 200_000


def test_node_events_for_condition_changes() -> None:
    healthy = node_conditions(
        ready=True, not_ready_message="", pressure=Pressure(), previous=[], now="t"
    )
    assert condition_events([], healthy) == [
        "NodeHasSufficientMemory",
        "NodeHasNoDiskPressure",
        "NodeHasSufficientPID",
        "NodeReady",
    ]
    assert condition_events(healthy, healthy) == []
    unknown = [{**c, "status": "Unknown"} if c["type"] == "Ready" else c for c in healthy]
    assert condition_events(unknown, healthy) == ["NodeReady"]
