"""The CronJob controller's decisions: missed schedules, starting deadlines, when to look
again, the Jobs it makes, history cleanup; and the clocks it runs on."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from timonel.api.objects import Object
from timonel.controllers.cronjob import (
    Missed,
    decide_schedule,
    format_schedule,
    job_from_template,
    job_name,
    most_recent_schedule_time,
    next_schedule_delay,
    plan_history_cleanup,
)
from timonel.kinds.batch.cron import parse_schedule
from timonel.util.clock import ScaledClock, SystemClock, clock_option

CREATED = datetime(2025, 3, 10, 9, 0, 30, tzinfo=UTC)


def cronjob(schedule: str = "*/5 * * * *", *, last: datetime | None = None, **spec: Any) -> Object:
    status: dict[str, Any] = {}
    if last is not None:
        status["lastScheduleTime"] = last.strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {
            "name": "report",
            "namespace": "ns",
            "uid": "cj-uid",
            "creationTimestamp": "2025-03-10T09:00:30Z",
        },
        "spec": {
            "schedule": schedule,
            **spec,
            "jobTemplate": {
                "metadata": {"labels": {"team": "x"}, "annotations": {"note": "y"}},
                "spec": {
                    "template": {
                        "spec": {
                            "restartPolicy": "OnFailure",
                            "containers": [{"name": "c", "image": "i"}],
                        }
                    }
                },
            },
        },
        "status": status,
    }


def at(minutes_after_creation: float) -> datetime:
    return CREATED + timedelta(minutes=minutes_after_creation)


def test_nothing_due_before_the_first_scheduled_time() -> None:
    schedule = parse_schedule("*/5 * * * *")
    earliest, recent, missed = most_recent_schedule_time(
        cronjob(), at(3), schedule, include_starting_deadline=True
    )
    assert (earliest, recent, missed) == (CREATED, None, Missed.NONE)


def test_the_due_time_and_missed_ones() -> None:
    schedule = parse_schedule("*/5 * * * *")
    _, recent, missed = most_recent_schedule_time(
        cronjob(), at(6), schedule, include_starting_deadline=True
    )
    assert (recent, missed) == (datetime(2025, 3, 10, 9, 5, tzinfo=UTC), Missed.NONE)
    # Three schedules passed: only the most recent is started.
    _, recent, missed = most_recent_schedule_time(
        cronjob(), at(16), schedule, include_starting_deadline=True
    )
    assert (recent, missed) == (datetime(2025, 3, 10, 9, 15, tzinfo=UTC), Missed.FEW)
    # Counting from the last schedule time, not the creation.
    last = datetime(2025, 3, 10, 9, 15, tzinfo=UTC)
    _, recent, _ = most_recent_schedule_time(
        cronjob(last=last), at(16), schedule, include_starting_deadline=True
    )
    assert recent is None


def test_more_than_a_hundred_missed_schedules() -> None:
    schedule = parse_schedule("* * * * *")
    _, recent, missed = most_recent_schedule_time(
        cronjob(), at(101.5), schedule, include_starting_deadline=True
    )
    assert missed is Missed.MANY
    assert recent == datetime(2025, 3, 10, 10, 42, tzinfo=UTC)
    # A starting deadline bounds how far back the controller looks.
    bounded = cronjob(startingDeadlineSeconds=200)
    _, recent, missed = most_recent_schedule_time(
        bounded, at(101.5), schedule, include_starting_deadline=True
    )
    assert (recent, missed) == (datetime(2025, 3, 10, 10, 42, tzinfo=UTC), Missed.FEW)


def test_starting_deadline_too_late() -> None:
    schedule = parse_schedule("0 * * * *")
    # 09:00 was missed long ago; with a 10-minute deadline at 10:30, 10:00 is too late.
    late = decide_schedule(cronjob("0 * * * *", startingDeadlineSeconds=600), at(90), schedule)
    assert late.scheduled is None  # nothing within the last 10 minutes
    in_time = decide_schedule(cronjob("0 * * * *", startingDeadlineSeconds=600), at(62), schedule)
    assert in_time.scheduled == datetime(2025, 3, 10, 10, 0, tzinfo=UTC) and not in_time.too_late
    assert decide_schedule(cronjob("0 * * * *"), at(90), schedule).scheduled == datetime(
        2025, 3, 10, 10, 0, tzinfo=UTC
    )


def test_when_to_look_again() -> None:
    schedule = parse_schedule("*/5 * * * *")
    # Created 09:00:30, now 09:02:00: next at 09:05:00, plus 100ms.
    assert next_schedule_delay(cronjob(), at(1.5), schedule) == pytest.approx(180.1)
    last = datetime(2025, 3, 10, 9, 5, tzinfo=UTC)
    assert next_schedule_delay(cronjob(last=last), at(5), schedule) == pytest.approx(270.1)


def test_time_zones() -> None:
    zoned = cronjob("0 9 * * *", timeZone="Europe/Madrid")
    assert format_schedule(zoned) == "TZ=Europe/Madrid 0 9 * * *"
    schedule = parse_schedule(format_schedule(zoned))
    decision = decide_schedule(zoned, datetime(2025, 3, 11, 8, 30, tzinfo=UTC), schedule)
    # 09:00 in Madrid (UTC+1 in March) is 08:00 UTC.
    assert decision.scheduled == datetime(2025, 3, 11, 8, 0, tzinfo=UTC)
    job = job_from_template(zoned, decision.scheduled)
    assert (
        job["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"]
        == "2025-03-11T09:00:00+01:00"
    )
    local = datetime(2025, 3, 11, 8, 30, tzinfo=ZoneInfo("Asia/Tokyo"))
    assert format_schedule(cronjob("0 9 * * *")) == "0 9 * * *"
    # Without spec.timeZone the schedule is read in the controller's zone.
    assert decide_schedule(
        cronjob("0 8 * * *"), local, parse_schedule("0 8 * * *")
    ).scheduled == local.replace(minute=0)


def test_jobs_from_the_template() -> None:
    scheduled = datetime(2025, 3, 10, 9, 5, tzinfo=UTC)
    assert job_name(cronjob(), scheduled) == f"report-{int(scheduled.timestamp()) // 60}"
    job = job_from_template(cronjob(), scheduled)
    meta = job["metadata"]
    assert meta["name"] == "report-29026625"
    assert meta["labels"] == {"team": "x"}
    assert meta["annotations"] == {
        "note": "y",
        "batch.kubernetes.io/cronjob-scheduled-timestamp": "2025-03-10T09:05:00Z",
    }
    assert meta["ownerReferences"] == [
        {
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "name": "report",
            "uid": "cj-uid",
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "OnFailure"


def finished_job(name: str, kind: str, started: str | None) -> Object:
    status: dict[str, Any] = {"conditions": [{"type": kind, "status": "True"}]}
    if started:
        status["startTime"] = started
    return {"metadata": {"name": name}, "status": status}


def test_history_cleanup_removes_the_oldest_beyond_each_limit() -> None:
    jobs = [
        finished_job("ok-3", "Complete", "2025-03-10T09:15:00Z"),
        finished_job("ok-1", "Complete", "2025-03-10T09:05:00Z"),
        finished_job("ok-2", "Complete", "2025-03-10T09:10:00Z"),
        finished_job("bad-1", "Failed", "2025-03-10T09:01:00Z"),
        finished_job("bad-2", "Failed", None),
        {"metadata": {"name": "running"}, "status": {"startTime": "2025-03-10T08:00:00Z"}},
    ]
    doomed = plan_history_cleanup(
        cronjob(successfulJobsHistoryLimit=1, failedJobsHistoryLimit=1), jobs
    )
    assert [j["metadata"]["name"] for j in doomed] == ["ok-1", "ok-2", "bad-1"]
    assert (
        plan_history_cleanup(cronjob(successfulJobsHistoryLimit=0), jobs)[-1]["metadata"]["name"]
        == "ok-3"
    )
    assert plan_history_cleanup(cronjob(), jobs) == []


def test_clocks() -> None:
    fast = ScaledClock(60, start=CREATED)
    time.sleep(0.05)
    assert fast.now() - CREATED >= timedelta(seconds=3)
    assert fast.delay(60) == 1.0
    assert SystemClock().delay(-1) == 0.0
    assert isinstance(clock_option({}), SystemClock)
    assert clock_option({"clock": fast}) is fast
    with pytest.raises(TypeError):
        clock_option({"clock": "fast"})
