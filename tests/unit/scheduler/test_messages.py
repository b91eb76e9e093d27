"""The FailedScheduling message, word for word as kube-scheduler 1.32 writes it."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.scheduler.builders import node, on, pod
from timonel.scheduler.framework import (
    Code,
    Diagnosis,
    FitError,
    PodInfo,
    Status,
    fit_error_message,
    reasons_histogram,
)
from timonel.scheduler.scheduler import NO_NODES_AVAILABLE, Scheduler, SchedulingError

CONTROL_PLANE = {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}


async def _unused(*args: Any) -> None:
    raise AssertionError("not called in these tests")


def failure(
    nodes: list[dict[str, Any]], pending: dict[str, Any], placed: list[dict[str, Any]] | None = None
) -> str:
    scheduler = Scheduler(bind=_unused, on_unschedulable=_unused)
    for item in nodes:
        scheduler.on_node_add(item)
    for item in placed or []:
        scheduler.on_pod_add(item)
    with pytest.raises(FitError) as caught:
        scheduler.algorithm.schedule(PodInfo(pending))
    return str(caught.value)


def test_brief_example() -> None:
    nodes = [
        node("cp1", taints=[CONTROL_PLANE]),
        node("cp2", taints=[CONTROL_PLANE]),
        node("w", cpu="1"),
    ]
    assert failure(nodes, pod(cpu="2")) == (
        "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had untolerated taint "
        "{node-role.kubernetes.io/control-plane: }. preemption: 0/3 nodes are available: "
        "1 No preemption victims found for incoming pod, 2 Preemption is not helpful for "
        "scheduling."
    )


def test_all_nodes_short_of_resources() -> None:
    nodes = [node("a", cpu="1", memory="1Gi"), node("b", cpu="1")]
    assert failure(nodes, pod(cpu="2", memory="2Gi")) == (
        "0/2 nodes are available: 1 Insufficient memory, 2 Insufficient cpu. preemption: "
        "0/2 nodes are available: 2 No preemption victims found for incoming pod."
    )


def test_node_selector_and_cordon() -> None:
    nodes = [node("a"), node("b"), node("c", unschedulable=True)]
    assert failure(nodes, pod(node_selector={"disk": "ssd"})) == (
        "0/3 nodes are available: 1 node(s) were unschedulable, 2 node(s) didn't match "
        "Pod's node affinity/selector. preemption: 0/3 nodes are available: 3 Preemption is "
        "not helpful for scheduling."
    )


def test_preemption_policy_never() -> None:
    assert failure([node("a", cpu="1")], pod(cpu="2", preemption_policy="Never")) == (
        "0/1 nodes are available: 1 Insufficient cpu. preemption: not eligible due to "
        "preemptionPolicy=Never."
    )


def test_lower_priority_pods_that_would_not_free_enough() -> None:
    placed = [on("a", pod("low", cpu="1", priority=0))]
    pending = pod(cpu="5", priority=100)
    assert failure([node("a", cpu="4")], pending, placed) == (
        "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: "
        "1 Insufficient cpu."
    )


def test_no_preemption_part_when_evicting_would_help() -> None:
    placed = [on("a", pod("low", cpu="3", priority=0))]
    assert failure([node("a", cpu="4")], pod(cpu="2", priority=100), placed) == (
        "0/1 nodes are available: 1 Insufficient cpu."
    )


def test_pre_filter_failure_is_the_whole_message() -> None:
    affinity = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {
                        "matchFields": [
                            {"key": "metadata.name", "operator": "In", "values": ["a"]},
                            {"key": "metadata.name", "operator": "In", "values": ["b"]},
                        ]
                    }
                ]
            }
        }
    }
    assert failure([node("a"), node("b")], pod(affinity=affinity)) == (
        "0/2 nodes are available: pod affinity terms conflict. preemption: 0/2 nodes are "
        "available: 2 Preemption is not helpful for scheduling."
    )


def test_nodes_ruled_out_by_pre_filter() -> None:
    affinity = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["a"]}]}
                ]
            }
        }
    }
    assert failure([node("a", cpu="1"), node("b"), node("c")], pod(cpu="2", affinity=affinity)) == (
        "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) didn't satisfy plugin(s) "
        "[NodeAffinity]. preemption: 0/3 nodes are available: 1 No preemption victims found "
        "for incoming pod, 2 Preemption is not helpful for scheduling."
    )


def test_no_nodes_at_all_is_an_error() -> None:
    scheduler = Scheduler(bind=_unused, on_unschedulable=_unused)
    with pytest.raises(SchedulingError, match=NO_NODES_AVAILABLE):
        scheduler.algorithm.schedule(PodInfo(pod()))


def test_histogram_sorts_as_strings() -> None:
    statuses = {f"n{i}": Status(Code.UNSCHEDULABLE, ("Insufficient cpu",)) for i in range(10)}
    statuses["m1"] = Status(Code.UNSCHEDULABLE, ("Insufficient memory",))
    statuses["m2"] = Status(Code.UNSCHEDULABLE, ("Insufficient memory",))
    assert reasons_histogram(statuses, None, 12) == ["10 Insufficient cpu", "2 Insufficient memory"]


def test_message_without_reasons_or_post_filter() -> None:
    assert fit_error_message(0, Diagnosis()) == "0/0 nodes are available:"


def test_event_note_is_cut_at_1024_characters() -> None:
    from timonel.scheduler import event_note

    assert event_note("short") == "short"
    cut = event_note("x" * 2000)
    assert len(cut) == 1024 and cut.endswith("x ...")
