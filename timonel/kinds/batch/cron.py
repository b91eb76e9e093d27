"""CronJob schedules: parsing and "when does it fire next", as kube-apiserver validates them
and kube-controller-manager runs them (both use robfig/cron v3's standard parser).

Accepted syntax:

    [TZ=<zone> | CRON_TZ=<zone>] <minute> <hour> <day-of-month> <month> <day-of-week>
    @yearly | @annually | @monthly | @weekly | @daily | @midnight | @hourly | @every <duration>

Each field is a comma-separated list of `*`, `?`, `N`, `N-M`, each with an optional `/step`
(`N/step` means N up to the field's maximum). Months and weekdays also take names (`jan`,
`mon`, any case); weekdays run 0 (Sunday) to 6. As in cron, a day matches when both
day-of-month and day-of-week match if either of them is `*`, and when either matches
otherwise.

Times are computed on the wall clock of the time zone given to `next_after` (or of the
schedule's own TZ= zone), with Go's rules for clocks that skip or repeat an hour.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = [
    "CronError",
    "CronSchedule",
    "EverySchedule",
    "Schedule",
    "load_time_zone",
    "parse_go_duration",
    "parse_schedule",
]


class CronError(ValueError):
    """A schedule robfig/cron rejects; the message is the one kube-apiserver reports."""


_STAR = 1 << 63
_YEARS_TO_SEARCH = 5


@dataclass(frozen=True)
class _Bounds:
    low: int
    high: int
    names: dict[str, int] | None = None


_MINUTES = _Bounds(0, 59)
_HOURS = _Bounds(0, 23)
_DAYS_OF_MONTH = _Bounds(1, 31)
_MONTHS = _Bounds(
    1,
    12,
    {
        "jan": 1,
        "feb": 2,
        "mar": 3,
        "apr": 4,
        "may": 5,
        "jun": 6,
        "jul": 7,
        "aug": 8,
        "sep": 9,
        "oct": 10,
        "nov": 11,
        "dec": 12,
    },
)
_DAYS_OF_WEEK = _Bounds(
    0, 6, {"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}
)


def _bits(low: int, high: int, step: int) -> int:
    found = 0
    for value in range(low, high + 1, step):
        found |= 1 << value
    return found


def _all(bounds: _Bounds) -> int:
    return _bits(bounds.low, bounds.high, 1) | _STAR


# -- Go time semantics ---------------------------------------------------------------------


def load_time_zone(name: str) -> tzinfo:
    """time.LoadLocation: "" and "UTC" are UTC; anything else must be an IANA zone name."""
    if name in ("", "UTC"):
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise CronError(f"unknown time zone {name}") from None


def _offset_at(instant: datetime, zone: tzinfo) -> timedelta:
    return instant.astimezone(zone).utcoffset() or timedelta(0)


def _go_date(
    year: int, month: int, day: int, hour: int, minute: int, second: int, zone: tzinfo | None
) -> datetime:
    """time.Date: out-of-range months and days carry over, and a wall time that the zone
    skips or repeats resolves to the instant Go picks."""
    year += (month - 1) // 12
    month = (month - 1) % 12 + 1
    wall = datetime.combine(date(year, month, 1) + timedelta(days=day - 1), datetime.min.time())
    wall = wall.replace(hour=hour, minute=minute, second=second)
    if zone is None:
        return wall
    as_utc = wall.replace(tzinfo=UTC)
    offset = _offset_at(as_utc, zone)
    corrected = _offset_at(as_utc - offset, zone)
    if corrected != offset:
        offset = corrected
    return (as_utc - offset).astimezone(zone)


def _add(moment: datetime, delta: timedelta) -> datetime:
    """time.Add: absolute time, whatever the wall clock does."""
    if moment.tzinfo is None:
        return moment + delta
    return (moment.astimezone(UTC) + delta).astimezone(moment.tzinfo)


def _go_weekday(moment: datetime) -> int:
    return (moment.weekday() + 1) % 7


_DURATION_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_DURATION_PART = re.compile(r"([0-9]*(?:\.[0-9]*)?)([^0-9.]*)")


def parse_go_duration(text: str) -> timedelta:
    """time.ParseDuration: "1h30m", "90s", "1.5h", "-2m"."""
    quoted = '"' + text + '"'
    rest = text
    sign = 1
    if rest[:1] in ("-", "+"):
        sign = -1 if rest[0] == "-" else 1
        rest = rest[1:]
    if rest == "0":
        return timedelta(0)
    if not rest:
        raise CronError(f"time: invalid duration {quoted}")
    seconds = 0.0
    while rest:
        match = _DURATION_PART.match(rest)
        if match is None or match.group(1) in ("", "."):
            raise CronError(f"time: invalid duration {quoted}")
        number, unit = match.group(1), match.group(2)
        if not unit:
            raise CronError(f"time: missing unit in duration {quoted}")
        if unit not in _DURATION_UNITS:
            raise CronError(f'time: unknown unit "{unit}" in duration {quoted}')
        seconds += float(number) * _DURATION_UNITS[unit]
        rest = rest[match.end() :]
    return timedelta(seconds=sign * seconds)


# -- schedules -----------------------------------------------------------------------------


class Schedule:
    """When a CronJob fires."""

    def next_after(self, moment: datetime) -> datetime | None:
        """The first activation strictly after `moment`, to the second, in `moment`'s time
        zone; None when there is none within five years."""
        raise NotImplementedError


@dataclass(frozen=True)
class CronSchedule(Schedule):
    """A five-field schedule as bit sets (bit N set: value N matches; the top bit marks a
    field written as `*`)."""

    minute: int
    hour: int
    day_of_month: int
    month: int
    day_of_week: int
    second: int = 1
    # From a TZ= or CRON_TZ= prefix; otherwise the zone of the time asked about.
    location: tzinfo | None = None

    def _day_matches(self, moment: datetime) -> bool:
        dom_match = bool((1 << moment.day) & self.day_of_month)
        dow_match = bool((1 << _go_weekday(moment)) & self.day_of_week)
        if self.day_of_month & _STAR or self.day_of_week & _STAR:
            return dom_match and dow_match
        return dom_match or dow_match

    def next_after(self, moment: datetime) -> datetime | None:
        original_zone = moment.tzinfo
        t = moment.astimezone(self.location) if self.location is not None else moment
        zone = t.tzinfo
        t = _add(t, timedelta(seconds=1) - timedelta(microseconds=t.microsecond))
        added = False
        year_limit = t.year + _YEARS_TO_SEARCH
        while True:
            if t.year > year_limit:
                return None
            wrapped = False
            while not (1 << t.month) & self.month:
                if not added:
                    added = True
                    t = _go_date(t.year, t.month, 1, 0, 0, 0, zone)
                t = _go_date(t.year, t.month + 1, t.day, t.hour, t.minute, t.second, zone)
                if t.month == 1:
                    wrapped = True
                    break
            if wrapped:
                continue
            while not self._day_matches(t):
                if not added:
                    added = True
                    t = _go_date(t.year, t.month, t.day, 0, 0, 0, zone)
                t = _go_date(t.year, t.month, t.day + 1, t.hour, t.minute, t.second, zone)
                # Where midnight is skipped or repeated the clock may not read 00:00.
                if t.hour != 0:
                    shift = 24 - t.hour if t.hour > 12 else -t.hour
                    t = _add(t, timedelta(hours=shift))
                if t.day == 1:
                    wrapped = True
                    break
            if wrapped:
                continue
            while not (1 << t.hour) & self.hour:
                if not added:
                    added = True
                    t = _go_date(t.year, t.month, t.day, t.hour, 0, 0, zone)
                t = _add(t, timedelta(hours=1))
                if t.hour == 0:
                    wrapped = True
                    break
            if wrapped:
                continue
            while not (1 << t.minute) & self.minute:
                if not added:
                    added = True
                    t = _add(t, -timedelta(seconds=t.second, microseconds=t.microsecond))
                t = _add(t, timedelta(minutes=1))
                if t.minute == 0:
                    wrapped = True
                    break
            if wrapped:
                continue
            while not (1 << t.second) & self.second:
                if not added:
                    added = True
                    t = _add(t, -timedelta(microseconds=t.microsecond))
                t = _add(t, timedelta(seconds=1))
                if t.second == 0:
                    wrapped = True
                    break
            if wrapped:
                continue
            break
        if original_zone is None or self.location is None:
            return t
        return t.astimezone(original_zone)


@dataclass(frozen=True)
class EverySchedule(Schedule):
    """`@every <duration>`: a fixed delay, at least one second, in whole seconds."""

    delay: timedelta

    def next_after(self, moment: datetime) -> datetime | None:
        return _add(moment, self.delay - timedelta(microseconds=moment.microsecond))


def _parse_number(text: str) -> int:
    """strconv.Atoi, then no negatives."""
    if not re.fullmatch(r"[+-]?[0-9]+", text):
        raise CronError(
            f'failed to parse int from {text}: strconv.Atoi: parsing "{text}": invalid syntax'
        )
    number = int(text)
    if number >= 2**63 or number < -(2**63):
        raise CronError(
            f'failed to parse int from {text}: strconv.Atoi: parsing "{text}": value out of range'
        )
    if number < 0:
        raise CronError(f"negative number ({number}) not allowed: {text}")
    return number


def _parse_int_or_name(text: str, bounds: _Bounds) -> int:
    if bounds.names is not None and text.lower() in bounds.names:
        return bounds.names[text.lower()]
    return _parse_number(text)


def _parse_range(expr: str, bounds: _Bounds) -> int:
    range_and_step = expr.split("/")
    low_and_high = range_and_step[0].split("-")
    single = len(low_and_high) == 1
    extra = 0
    if low_and_high[0] in ("*", "?"):
        start, end = bounds.low, bounds.high
        extra = _STAR
    else:
        start = _parse_int_or_name(low_and_high[0], bounds)
        if len(low_and_high) == 1:
            end = start
        elif len(low_and_high) == 2:
            end = _parse_int_or_name(low_and_high[1], bounds)
        else:
            raise CronError(f"too many hyphens: {expr}")
    if len(range_and_step) == 1:
        step = 1
    elif len(range_and_step) == 2:
        step = _parse_number(range_and_step[1])
        if single:
            end = bounds.high
        if step > 1:
            extra = 0
    else:
        raise CronError(f"too many slashes: {expr}")
    if start < bounds.low:
        raise CronError(f"beginning of range ({start}) below minimum ({bounds.low}): {expr}")
    if end > bounds.high:
        raise CronError(f"end of range ({end}) above maximum ({bounds.high}): {expr}")
    if start > end:
        raise CronError(f"beginning of range ({start}) beyond end of range ({end}): {expr}")
    if step == 0:
        raise CronError(f"step of range should be a positive number: {expr}")
    return _bits(start, end, step) | extra


def _parse_field(field: str, bounds: _Bounds) -> int:
    found = 0
    for expr in (part for part in field.split(",") if part):
        found |= _parse_range(expr, bounds)
    return found


def _parse_descriptor(text: str, location: tzinfo | None) -> Schedule:
    hours, days_of_month, months, days_of_week = (
        _all(_HOURS),
        _all(_DAYS_OF_MONTH),
        _all(_MONTHS),
        _all(_DAYS_OF_WEEK),
    )
    first_hour, first_day, first_month, sunday = 1 << 0, 1 << 1, 1 << 1, 1 << 0
    fields: tuple[int, int, int, int] | None = {
        "@yearly": (first_hour, first_day, first_month, days_of_week),
        "@annually": (first_hour, first_day, first_month, days_of_week),
        "@monthly": (first_hour, first_day, months, days_of_week),
        "@weekly": (first_hour, days_of_month, months, sunday),
        "@daily": (first_hour, days_of_month, months, days_of_week),
        "@midnight": (first_hour, days_of_month, months, days_of_week),
        "@hourly": (hours, days_of_month, months, days_of_week),
    }.get(text)
    if fields is not None:
        hour, day_of_month, month, day_of_week = fields
        return CronSchedule(1 << 0, hour, day_of_month, month, day_of_week, location=location)
    if text.startswith("@every "):
        try:
            delay = parse_go_duration(text[len("@every ") :])
        except CronError as error:
            raise CronError(f"failed to parse duration {text}: {error}") from None
        delay = max(delay, timedelta(seconds=1))
        return EverySchedule(timedelta(seconds=int(delay.total_seconds())))
    raise CronError(f"unrecognized descriptor: {text}")


def parse_schedule(text: str) -> Schedule:
    """cron.ParseStandard. Raises CronError with robfig/cron's wording."""
    if not text:
        raise CronError("empty spec string")
    location: tzinfo | None = None
    if text.startswith(("TZ=", "CRON_TZ=")):
        space = text.find(" ")
        equals = text.index("=")
        name = text[equals + 1 : space] if space >= 0 else text[equals + 1 :]
        try:
            location = load_time_zone(name)
        except CronError as error:
            raise CronError(f"provided bad location {name}: {error}") from None
        text = text[space:].strip() if space >= 0 else ""
    if text.startswith("@"):
        return _parse_descriptor(text, location)
    fields = text.split()
    if len(fields) != 5:
        raise CronError(f"expected exactly 5 fields, found {len(fields)}: [{' '.join(fields)}]")
    return CronSchedule(
        minute=_parse_field(fields[0], _MINUTES),
        hour=_parse_field(fields[1], _HOURS),
        day_of_month=_parse_field(fields[2], _DAYS_OF_MONTH),
        month=_parse_field(fields[3], _MONTHS),
        day_of_week=_parse_field(fields[4], _DAYS_OF_WEEK),
        location=location,
    )
