"""The stage table against golden pairs (testdata/NAME.input.yaml → NAME.output.yaml), and
the pieces it is made of: paths, match expressions, delays, parsing."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from timonel.agent.simulate.stages import (
    DEFAULT_STAGES,
    MatchExpression,
    Operator,
    Stage,
    StageError,
    StatusContext,
    lookup,
    match_stage,
    parse_duration,
    parse_path,
    parse_stages,
    play_stage,
    stage_delay,
)

TESTDATA = Path(__file__).parent / "testdata"
CONTEXT = StatusContext(now="2025-01-01T00:00:00Z", host_ip="172.16.0.2", pod_ip="10.128.1.2")
CASES = sorted(p.name.removesuffix(".input.yaml") for p in TESTDATA.glob("*.input.yaml"))


def outcome(pod: dict[str, Any]) -> dict[str, Any]:
    """What the table does with `pod`: the stage, its delay bounds and what comes next."""
    stage = match_stage(DEFAULT_STAGES, pod)
    if stage is None:
        return {"stage": None}
    action = play_stage(stage, pod, CONTEXT)
    following: dict[str, Any] = {"delete": True} if action.delete else {"status": action.status}
    return {
        "stage": stage.name,
        "delay": [round(stage_delay(stage, pod, f), 6) for f in (0.0, 1.0)],
        "next": following,
    }


@pytest.mark.parametrize("case", CASES)
def test_golden(case: str) -> None:
    pod = yaml.safe_load((TESTDATA / f"{case}.input.yaml").read_text())
    got = outcome(pod)
    expected_path = TESTDATA / f"{case}.output.yaml"
    if os.environ.get("UPDATE_GOLDEN"):
        expected_path.write_text(yaml.safe_dump(got, sort_keys=False))
    assert got == yaml.safe_load(expected_path.read_text())


def test_every_case_has_an_output() -> None:
    outputs = sorted(p.name.removesuffix(".output.yaml") for p in TESTDATA.glob("*.output.yaml"))
    assert outputs == CASES
    assert len(CASES) >= 8


def test_playing_leaves_the_input_alone() -> None:
    pod = yaml.safe_load((TESTDATA / "pod-job-complete.input.yaml").read_text())
    before = yaml.safe_dump(pod)
    outcome(pod)
    assert yaml.safe_dump(pod) == before


def test_ready_keeps_transition_times_of_unchanged_conditions() -> None:
    pod = yaml.safe_load((TESTDATA / "pod-pending.input.yaml").read_text())
    status = play_stage(DEFAULT_STAGES[1], pod, CONTEXT).status
    assert status is not None
    times = {c["type"]: c["lastTransitionTime"] for c in status["conditions"]}
    assert times["PodScheduled"] == "2024-12-31T23:59:58Z"
    assert times["Ready"] == CONTEXT.now


# -- paths and expressions -----------------------------------------------------------------


def test_parse_path() -> None:
    assert parse_path(".status.phase") == ("status", "phase")
    assert parse_path(".metadata.ownerReferences.[].kind") == (
        "metadata",
        "ownerReferences",
        "[]",
        "kind",
    )
    assert parse_path('.metadata.annotations["example.com/a.b"]') == (
        "metadata",
        "annotations",
        "example.com/a.b",
    )
    for bad in ("", "status", ".status..phase", '.metadata.annotations["x'):
        with pytest.raises(StageError):
            parse_path(bad)


def test_lookup_fans_out_over_lists_and_skips_nulls() -> None:
    pod = {"metadata": {"ownerReferences": [{"kind": "Job"}, {"kind": "Other"}, {}]}}
    assert lookup(pod, parse_path(".metadata.ownerReferences.[].kind")) == ["Job", "Other"]
    assert (
        lookup({"metadata": {"deletionTimestamp": None}}, ("metadata", "deletionTimestamp")) == []
    )


@pytest.mark.parametrize(
    ("operator", "values", "pod", "expected"),
    [
        (Operator.IN, ("Running",), {"status": {"phase": "Running"}}, True),
        (Operator.IN, ("Running",), {"status": {"phase": "Pending"}}, False),
        (Operator.IN, ("Running",), {}, False),
        (Operator.NOT_IN, ("Running",), {"status": {"phase": "Pending"}}, True),
        (Operator.NOT_IN, ("Running",), {}, True),
        (Operator.NOT_IN, ("Running",), {"status": {"phase": "Running"}}, False),
        (Operator.EXISTS, (), {"status": {"phase": ""}}, True),
        (Operator.EXISTS, (), {"status": {}}, False),
        (Operator.DOES_NOT_EXIST, (), {"status": {}}, True),
    ],
)
def test_match_expression(
    operator: Operator, values: tuple[str, ...], pod: dict[str, Any], expected: bool
) -> None:
    assert MatchExpression(".status.phase", operator, values).matches(pod) is expected


def test_match_expression_compares_booleans_as_go_prints_them() -> None:
    expression = MatchExpression(".spec.hostNetwork", Operator.IN, ("true",))
    assert expression.matches({"spec": {"hostNetwork": True}})
    assert not expression.matches({"spec": {"hostNetwork": False}})


def test_match_expression_checks_its_values() -> None:
    with pytest.raises(StageError):
        MatchExpression(".status.phase", Operator.IN)
    with pytest.raises(StageError):
        MatchExpression(".status.phase", Operator.EXISTS, ("x",))


# -- delays and durations ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("0", 0.0), ("500ms", 0.5), ("3s", 3.0), ("1m30s", 90.0), ("1.5h", 5400.0), (2, 2.0)],
)
def test_parse_duration(text: Any, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "3", "3x", "-1s", True, -1])
def test_parse_duration_rejects(text: Any) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_delay_from_annotation_falls_back_when_unparseable() -> None:
    complete = next(s for s in DEFAULT_STAGES if s.name == "pod-complete")
    pod = {"metadata": {"annotations": {"simulate.timonel.io/complete-after": "soon"}}}
    assert stage_delay(complete, pod, 0.5) == complete.delay.seconds


def test_ready_delay_spreads_with_jitter() -> None:
    ready = next(s for s in DEFAULT_STAGES if s.name == "pod-ready")
    assert stage_delay(ready, {}, 0.0) == pytest.approx(0.4)
    assert stage_delay(ready, {}, 0.5) == pytest.approx(0.5)


# -- reading tables ------------------------------------------------------------------------


def test_parse_stages_reads_a_custom_table() -> None:
    stages = parse_stages(
        [
            {
                "name": "job-done",
                "selector": {
                    "matchExpressions": [
                        {
                            "key": ".metadata.ownerReferences.[].kind",
                            "operator": "In",
                            "values": ["Job"],
                        }
                    ]
                },
                "delay": {"seconds": "2s", "jitterSeconds": 1},
                "next": {"statusTemplate": "succeeded"},
            }
        ]
    )
    job_pod = {"metadata": {"ownerReferences": [{"kind": "Job"}]}}
    assert match_stage(stages, job_pod) is stages[0]
    assert match_stage(stages, {"metadata": {}}) is None
    assert stage_delay(stages[0], job_pod, 0.5) == pytest.approx(2.5)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ([], "non-empty list"),
        ([{"next": {"delete": True}}], "name: required"),
        ([{"name": "a", "next": {}}], "exactly one of"),
        ([{"name": "a", "next": {"delete": True, "statusTemplate": "running"}}], "exactly one of"),
        ([{"name": "a", "next": {"statusTemplate": "sleeping"}}], "not one of"),
        (
            [
                {
                    "name": "a",
                    "selector": {"matchExpressions": [{"key": ".x", "operator": "Gt"}]},
                    "next": {"delete": True},
                }
            ],
            "operator",
        ),
        ([{"name": "a", "delay": {"seconds": "soon"}, "next": {"delete": True}}], "delay"),
        (
            [{"name": "a", "next": {"delete": True}}, {"name": "a", "next": {"delete": True}}],
            "duplicate",
        ),
    ],
)
def test_parse_stages_rejects(table: Any, message: str) -> None:
    with pytest.raises(StageError, match=message):
        parse_stages(table)


def test_ready_again_leaves_a_pod_held_back_by_its_readiness_gate_as_it_is() -> None:
    # Such a pod matches pod-ready-again forever; playing it must be a no-op write.
    pod = yaml.safe_load((TESTDATA / "pod-running-gate-not-ready.input.yaml").read_text())
    action = play_stage(match_stage_named("pod-ready-again"), pod, CONTEXT)
    assert action.status == pod["status"]


def match_stage_named(name: str) -> Stage:
    return next(stage for stage in DEFAULT_STAGES if stage.name == name)
