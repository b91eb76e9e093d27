"""Clocks for components whose behaviour depends on wall-clock time (CronJob schedules,
Job deadlines and backoff, TTLs).

A component asks its clock two things: what time it is (`now`), and how long to really
wait until a span of clock time has passed (`delay`). `SystemClock` is the real one.
`ScaledClock` runs faster than real time (a minute in a second at rate 60), so tests of
time-driven behaviour can shorten time without touching the code under test.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable


@runtime_checkable
class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware."""
        ...

    def delay(self, seconds: float) -> float:
        """Real seconds to wait for `seconds` of this clock's time to pass."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def delay(self, seconds: float) -> float:
        return max(seconds, 0.0)


class ScaledClock:
    """Starts at `start` (default: now) and advances `rate` times faster than real time."""

    def __init__(self, rate: float, start: datetime | None = None) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self._start = start or datetime.now(UTC)
        self._origin = time.monotonic()

    def now(self) -> datetime:
        return self._start + timedelta(seconds=(time.monotonic() - self._origin) * self.rate)

    def delay(self, seconds: float) -> float:
        return max(seconds, 0.0) / self.rate


def clock_option(options: dict[str, object]) -> Clock:
    """The clock a component was configured with (`options["clock"]`), or the system's."""
    configured = options.get("clock")
    if configured is None:
        return SystemClock()
    if not isinstance(configured, Clock):
        raise TypeError(f"options['clock'] must be a Clock, not {type(configured).__name__}")
    return configured
