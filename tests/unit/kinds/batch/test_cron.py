"""Cron schedules: robfig/cron's standard parser and its next-activation rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from timonel.kinds.batch.cron import CronError, EverySchedule, parse_go_duration, parse_schedule

NEW_YORK = ZoneInfo("America/New_York")


def at(*parts: int, tz: ZoneInfo | None = None) -> datetime:
    return datetime(*parts, tzinfo=tz or UTC)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("schedule", "after", "expected"),
    [
        ("*/5 * * * *", at(2024, 1, 1, 10, 3, 7), at(2024, 1, 1, 10, 5)),
        ("*/5 * * * *", at(2024, 1, 1, 10, 5), at(2024, 1, 1, 10, 10)),
        ("0 * * * *", at(2024, 1, 1, 23, 30), at(2024, 1, 2, 0, 0)),
        ("30 2 1 * *", at(2024, 1, 15), at(2024, 2, 1, 2, 30)),
        ("0 0 29 2 *", at(2024, 3, 1), at(2028, 2, 29)),
        ("0 9 * * MON-FRI", at(2024, 6, 1), at(2024, 6, 3, 9)),
        ("0 9 * * 0", at(2024, 6, 3), at(2024, 6, 9, 9)),
        # Day of month and day of week both restricted: either one matches.
        ("0 0 13 * 5", at(2024, 9, 1), at(2024, 9, 6)),
        ("0 0 1-7/2 jan-mar ?", at(2024, 1, 4), at(2024, 1, 5)),
        ("@hourly", at(2024, 1, 1, 10, 0, 1), at(2024, 1, 1, 11)),
        ("@daily", at(2024, 1, 1, 10), at(2024, 1, 2)),
        ("@midnight", at(2024, 1, 1, 10), at(2024, 1, 2)),
        ("@weekly", at(2024, 6, 3), at(2024, 6, 9)),
        ("@monthly", at(2024, 6, 3), at(2024, 7, 1)),
        ("@yearly", at(2024, 6, 3), at(2025, 1, 1)),
        ("@annually", at(2024, 6, 3), at(2025, 1, 1)),
        ("CRON_TZ=Asia/Tokyo 0 9 * * *", at(2024, 6, 1), at(2024, 6, 2)),
        ("TZ=America/New_York 0 9 * * *", at(2024, 6, 1, 14), at(2024, 6, 2, 13)),
    ],
)
def test_next_activation(schedule: str, after: datetime, expected: datetime) -> None:
    assert parse_schedule(schedule).next_after(after) == expected


def test_wall_clock_of_the_given_zone_is_used() -> None:
    schedule = parse_schedule("0 9 * * *")
    found = schedule.next_after(at(2024, 6, 1, 12, tz=NEW_YORK))
    assert found == at(2024, 6, 2, 9, tz=NEW_YORK)
    assert found is not None and found.utcoffset() == timedelta(hours=-4)


def test_an_hour_the_clock_skips_is_skipped() -> None:
    # 02:00 does not exist in New York on 2024-03-10.
    assert parse_schedule("0 2 * * *").next_after(at(2024, 3, 9, 12, tz=NEW_YORK)) == at(
        2024, 3, 11, 2, tz=NEW_YORK
    )


def test_across_the_autumn_change() -> None:
    found = parse_schedule("30 1 * * *").next_after(at(2024, 11, 3, 0, 0, tz=NEW_YORK))
    assert found is not None
    assert found.astimezone(UTC) == at(2024, 11, 3, 5, 30)


def test_impossible_schedule_has_no_next_time() -> None:
    assert parse_schedule("0 0 31 2 *").next_after(at(2024, 1, 1)) is None


def test_every() -> None:
    schedule = parse_schedule("@every 1h30m")
    assert schedule == EverySchedule(timedelta(hours=1, minutes=30))
    assert schedule.next_after(at(2024, 1, 1, 0, 0, 0)) == at(2024, 1, 1, 1, 30)
    assert parse_schedule("@every 10ms") == EverySchedule(timedelta(seconds=1))


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        ("", "empty spec string"),
        ("* * * *", "expected exactly 5 fields, found 4: [* * * *]"),
        ("* * * * * *", "expected exactly 5 fields, found 6: [* * * * * *]"),
        ("60 * * * *", "end of range (60) above maximum (59): 60"),
        ("* 24 * * *", "end of range (24) above maximum (23): 24"),
        ("* * 0 * *", "beginning of range (0) below minimum (1): 0"),
        ("* * * * 7", "end of range (7) above maximum (6): 7"),
        ("5-1 * * * *", "beginning of range (5) beyond end of range (1): 5-1"),
        ("*/0 * * * *", "step of range should be a positive number: */0"),
        ("1-2-3 * * * *", "too many hyphens: 1-2-3"),
        ("*/2/3 * * * *", "too many slashes: */2/3"),
        ("a * * * *", 'failed to parse int from a: strconv.Atoi: parsing "a": invalid syntax'),
        ("@often", "unrecognized descriptor: @often"),
        (
            "@every 1d",
            'failed to parse duration @every 1d: time: unknown unit "d" in duration "1d"',
        ),
        (
            "TZ=Mars/Olympus * * * * *",
            "provided bad location Mars/Olympus: unknown time zone Mars/Olympus",
        ),
    ],
)
def test_parse_errors(schedule: str, message: str) -> None:
    with pytest.raises(CronError) as caught:
        parse_schedule(schedule)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1h30m", timedelta(minutes=90)),
        ("1.5h", timedelta(minutes=90)),
        ("-2m", timedelta(minutes=-2)),
        ("0", timedelta(0)),
        ("300ms", timedelta(milliseconds=300)),
    ],
)
def test_go_durations(text: str, expected: timedelta) -> None:
    assert parse_go_duration(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1", 'time: missing unit in duration "1"'),
        ("h", 'time: invalid duration "h"'),
        ("", 'time: invalid duration ""'),
    ],
)
def test_go_duration_errors(text: str, message: str) -> None:
    with pytest.raises(CronError) as caught:
        parse_go_duration(text)
    assert str(caught.value) == message
