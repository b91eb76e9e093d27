"""The audit log file with kube-apiserver's rotation (`--audit-log-maxsize`, `-maxbackup`,
`-maxage`), which it delegates to lumberjack:

- the file is rotated before a write that would take it past `max_size_mb` megabytes
  (0 means lumberjack's default, 100): it is renamed to `<name>-<UTC time>.<ext>`, the
  time as `2006-01-02T15-04-05.000`, and a new file is started;
- after a rotation, backups beyond the newest `max_backups` (0: keep every one) and
  backups older than `max_age_days` by the time in their name (0: no age limit) are
  deleted;
- one write larger than the maximum size is refused.

Used only by the audit writer thread; the choices are pure functions.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final

DEFAULT_MAX_SIZE_MB: Final = 100
MEGABYTE: Final = 1024 * 1024
_STAMP_FORMAT: Final = "%Y-%m-%dT%H-%M-%S"


@dataclass(frozen=True)
class Rotation:
    max_size_mb: int = 0
    max_backups: int = 0
    max_age_days: int = 0

    @property
    def max_bytes(self) -> int:
        return (self.max_size_mb or DEFAULT_MAX_SIZE_MB) * MEGABYTE


def rotation_problems(rotation: Rotation) -> list[str]:
    """kube-apiserver's checks of the rotation flags."""
    flags = (
        ("--audit-log-maxage", rotation.max_age_days),
        ("--audit-log-maxbackup", rotation.max_backups),
        ("--audit-log-maxsize", rotation.max_size_mb),
    )
    return [f"{flag} {value} can't be a negative number" for flag, value in flags if value < 0]


def backup_name(path: Path, moment: datetime.datetime) -> str:
    """audit.log rotated at 16:30:00.123 UTC: audit-2026-11-26T16-30-00.123.log."""
    utc = moment.astimezone(datetime.UTC)
    stamp = f"{utc.strftime(_STAMP_FORMAT)}.{utc.microsecond // 1000:03d}"
    return f"{path.stem}-{stamp}{path.suffix}"


def backup_time(path: Path, candidate: str) -> datetime.datetime | None:
    """The rotation time in a backup's name, or None when `candidate` is not a backup."""
    prefix, suffix = f"{path.stem}-", path.suffix
    if not candidate.startswith(prefix) or not candidate.endswith(suffix):
        return None
    stamp = candidate[len(prefix) : len(candidate) - len(suffix)]
    seconds, dot, millis = stamp.rpartition(".")
    if not dot or len(millis) != 3 or not millis.isdigit():
        return None
    try:
        moment = datetime.datetime.strptime(seconds, _STAMP_FORMAT)
    except ValueError:
        return None
    return moment.replace(microsecond=int(millis) * 1000, tzinfo=datetime.UTC)


def backups_to_remove(
    path: Path, names: list[str], now: datetime.datetime, rotation: Rotation
) -> list[str]:
    """The backups of `path` among `names` that the retention limits drop: all but the
    newest `max_backups`, and those rotated more than `max_age_days` ago."""
    backups = sorted(
        ((moment, name) for name in names if (moment := backup_time(path, name)) is not None),
        reverse=True,
    )
    doomed: list[str] = []
    if rotation.max_backups:
        doomed.extend(name for _, name in backups[rotation.max_backups :])
        backups = backups[: rotation.max_backups]
    if rotation.max_age_days:
        cutoff = now - datetime.timedelta(days=rotation.max_age_days)
        doomed.extend(name for moment, name in backups if moment < cutoff)
    return doomed


class RotatingLog:
    """An append-only binary file that rotates itself as `rotation` says."""

    def __init__(self, path: Path, rotation: Rotation) -> None:
        self.path = path
        self.rotation = rotation
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(path, "ab")  # noqa: SIM115 (held open until close)
        self._size = self._file.tell()

    def write(self, data: bytes) -> int:
        limit = self.rotation.max_bytes
        if len(data) > limit:
            raise OSError(f"write length {len(data)} exceeds maximum file size {limit}")
        if self._size + len(data) > limit:
            self._rotate()
        written = self._file.write(data)
        self._size += written
        return written

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        self._file.close()

    def _rotate(self) -> None:
        self._file.close()
        now = datetime.datetime.now(datetime.UTC)
        os.replace(self.path, self.path.with_name(backup_name(self.path, now)))
        self._file = open(self.path, "ab")  # noqa: SIM115
        self._size = 0
        names = [entry.name for entry in self.path.parent.iterdir()]
        for name in backups_to_remove(self.path, names, now, self.rotation):
            (self.path.parent / name).unlink(missing_ok=True)
