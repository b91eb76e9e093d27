"""Per-key exponential backoff, as kubelet's flowcontrol.Backoff: what CrashLoopBackOff
(10 s doubling to 5 min) and ImagePullBackOff are made of.

An entry remembers the current delay and when it last grew. A key is "in backoff since"
an event (a container's finish, a failed pull) while less than the current delay has
passed since that event. Growing the delay after a quiet spell of twice the maximum
(10 minutes for containers) starts again from the initial delay: a container that ran
that long without crashing restarts at once the next time.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class _Entry:
    delay: float
    last_update: float


@dataclass
class Backoff:
    initial: float = 10.0
    maximum: float = 300.0
    _entries: dict[str, _Entry] = field(default_factory=dict)

    def delay(self, key: str) -> float:
        """The current delay of `key` (0 when it has none)."""
        entry = self._entries.get(key)
        return entry.delay if entry is not None else 0.0

    def _expired(self, entry: _Entry, event_time: float) -> bool:
        return event_time - entry.last_update > 2 * self.maximum

    def in_backoff_since(self, key: str, event_time: float, now: float) -> bool:
        entry = self._entries.get(key)
        if entry is None or self._expired(entry, now):
            return False
        return now - event_time < entry.delay

    def in_backoff_since_update(self, key: str, now: float) -> bool:
        """Whether less than the current delay has passed since the delay last grew."""
        entry = self._entries.get(key)
        if entry is None or self._expired(entry, now):
            return False
        return now - entry.last_update < entry.delay

    def remaining(self, key: str, event_time: float, now: float) -> float:
        """Seconds until `key` leaves the backoff that started at `event_time`."""
        entry = self._entries.get(key)
        if entry is None or self._expired(entry, now):
            return 0.0
        return max(0.0, event_time + entry.delay - now)

    def next(self, key: str, event_time: float) -> None:
        """Grow the delay of `key` (or start it) as of `event_time`."""
        entry = self._entries.get(key)
        if entry is None or self._expired(entry, event_time):
            self._entries[key] = _Entry(self.initial, event_time)
        else:
            entry.delay = min(entry.delay * 2, self.maximum)
            entry.last_update = event_time

    def reset(self, key: str) -> None:
        self._entries.pop(key, None)

    def forget_prefix(self, prefix: str) -> None:
        """Drop every key starting with `prefix` (a pod's keys when it goes away)."""
        for key in [k for k in self._entries if k.startswith(prefix)]:
            del self._entries[key]

    def collect_garbage(self, now: float) -> None:
        """Drop entries that have been quiet long enough to have expired anyway."""
        for key in [k for k, e in self._entries.items() if self._expired(e, now)]:
            del self._entries[key]


def format_duration(seconds: float) -> str:
    """A duration as Go's time.Duration prints it: 10s, 1m20s, 5m0s, 1.5s."""
    if seconds < 60:
        text = f"{seconds:.3f}".rstrip("0").rstrip(".")
        return f"{text}s"
    minutes, rest = divmod(seconds, 60)
    hours, minutes = divmod(int(minutes), 60)
    rest_text = f"{rest:.3f}".rstrip("0").rstrip(".")
    if hours:
        return f"{hours}h{minutes}m{rest_text}s"
    return f"{minutes}m{rest_text}s"
