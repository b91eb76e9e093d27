"""Container logs as kubelet serves them: CRI log files read with the pod log options.

containerd writes each container's output to `<pod log dir>/<container>/<restart>.log`,
one line per write of at most 16 KiB:

    2026-01-02T15:04:05.123456789Z stdout F a whole line
    2026-01-02T15:04:05.123500000Z stderr P the first part of a long line, continued by
    2026-01-02T15:04:05.123600000Z stderr F the rest

`F` ends a line (a newline follows the message), `P` does not. Options, as kubelet applies
them: `tailLines` starts that many file lines from the end, `sinceSeconds`/`sinceTime`
drop earlier entries, `timestamps` prefixes each output line with its time in fixed
RFC 3339 nanoseconds, `limitBytes` cuts the output after that many bytes, and `follow`
keeps reading as the file grows until the container stops (a rotated file is followed
to its end, then its successor from the start).

Pure: `parse_cri_line`, `parse_timestamp`, `format_timestamp`, `tail_offset`,
`LogWriter`, `render_log`. I/O: `tail_offset_of_file`, `stream_log`.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

STDOUT: Final = "stdout"
STDERR: Final = "stderr"
READ_CHUNK: Final = 64 * 1024
FOLLOW_POLL: Final = 0.1
# How often a follower idle at the end of the file asks whether the container still runs.
RUNNING_CHECK_PERIOD: Final = 1.0


@dataclass(frozen=True)
class LogOptions:
    follow: bool = False
    tail_lines: int | None = None
    since_ns: int | None = None
    """Entries before this time (nanoseconds since the epoch) are skipped."""
    timestamps: bool = False
    limit_bytes: int | None = None


@dataclass(frozen=True)
class LogEntry:
    time_ns: int
    stream: str
    partial: bool
    message: bytes
    """Without the newline a full (`F`) entry ends with."""


def parse_timestamp(text: str) -> int:
    """Nanoseconds since the epoch of an RFC 3339 time with up to nine fraction digits."""
    main, _, rest = text.partition(".")
    if rest:
        digits = len(rest) - len(rest.lstrip("0123456789"))
        fraction, zone = rest[:digits], rest[digits:]
    else:
        fraction = ""
        zone = main[19:]
        main = main[:19]
    if not fraction and len(main) != 19:
        raise ValueError(f"bad timestamp {text!r}")
    zone = "+00:00" if zone in ("Z", "z") else zone
    moment = datetime.fromisoformat(main + zone)
    nanos = int((fraction + "000000000")[:9]) if fraction else 0
    return int(moment.timestamp()) * 1_000_000_000 + nanos


def format_timestamp(time_ns: int) -> str:
    """RFC 3339 in UTC with exactly nine fraction digits (kubelet's RFC3339NanoFixed)."""
    seconds, nanos = divmod(time_ns, 1_000_000_000)
    moment = datetime.fromtimestamp(seconds, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{nanos:09d}Z"


def parse_cri_line(line: bytes) -> LogEntry | None:
    """One line of a CRI log file (without its newline); None if it is not one."""
    parts = line.split(b" ", 3)
    if len(parts) < 3:
        return None
    try:
        time_ns = parse_timestamp(parts[0].decode("ascii"))
    except (ValueError, UnicodeDecodeError):
        return None
    stream = parts[1].decode("ascii", "replace")
    if stream not in (STDOUT, STDERR):
        return None
    tag = parts[2].split(b":", 1)[0]
    message = parts[3] if len(parts) == 4 else b""
    return LogEntry(time_ns, stream, tag == b"P", message)


def tail_offset(data: bytes, lines: int) -> int:
    """Where the last `lines` lines of `data` start (a line ends at each newline)."""
    if lines <= 0:
        return len(data)
    end = len(data) - 1 if data.endswith(b"\n") else len(data)
    for _ in range(lines):
        end = data.rfind(b"\n", 0, end)
        if end < 0:
            return 0
    return end + 1


class LogWriter:
    """Turns entries into output under the options (since, timestamps, limitBytes)."""

    def __init__(self, options: LogOptions) -> None:
        self.options = options
        self.remaining = options.limit_bytes
        self._at_line_start = True

    @property
    def done(self) -> bool:
        return self.remaining is not None and self.remaining <= 0

    def write(self, entry: LogEntry) -> bytes:
        if self.done:
            return b""
        if self.options.since_ns is not None and entry.time_ns < self.options.since_ns:
            return b""
        out = entry.message if entry.partial else entry.message + b"\n"
        if self.options.timestamps and self._at_line_start:
            out = format_timestamp(entry.time_ns).encode() + b" " + out
        self._at_line_start = not entry.partial
        if self.remaining is not None:
            out = out[: self.remaining]
            self.remaining -= len(out)
        return out


def render_log(data: bytes, options: LogOptions) -> bytes:
    """A whole CRI log file's output under `options` (follow aside)."""
    if options.tail_lines is not None:
        data = data[tail_offset(data, options.tail_lines) :]
    return _render(LogWriter(options), data.split(b"\n"))


def tail_offset_of_file(path: Path, lines: int) -> int:
    """`tail_offset` for a file, reading backwards block by block."""
    with path.open("rb") as file:
        size = file.seek(0, os.SEEK_END)
        if lines <= 0:
            return size
        position = size
        block = b""
        while position > 0:
            step = min(READ_CHUNK, position)
            position -= step
            file.seek(position)
            block = file.read(step) + block
            # One extra newline is enough to know the start of the wanted lines.
            if block.count(b"\n") > lines:
                return position + tail_offset(block, lines)
        return tail_offset(block, lines)


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_dev, info.st_ino


async def stream_log(
    path: Path,
    options: LogOptions,
    *,
    is_running: Callable[[], Awaitable[bool]],
    poll_interval: float = FOLLOW_POLL,
    running_check_period: float = RUNNING_CHECK_PERIOD,
    reader_gone: Callable[[], bool] = lambda: False,
) -> AsyncGenerator[bytes, None]:
    """The output of a container's CRI log file, chunk by chunk; with `follow`, until the
    container stops running and the file is drained, or `reader_gone()`."""
    writer = LogWriter(options)
    start = 0
    if options.tail_lines is not None:
        start = await asyncio.to_thread(tail_offset_of_file, path, options.tail_lines)
    file = await asyncio.to_thread(path.open, "rb")
    identity = _identity(path)
    try:
        await asyncio.to_thread(file.seek, start)
        pending = b""
        idle_since: float | None = None
        loop = asyncio.get_running_loop()
        while not writer.done:
            chunk = await asyncio.to_thread(file.read, READ_CHUNK)
            if chunk:
                idle_since = None
                lines = (pending + chunk).split(b"\n")
                pending = lines.pop()
                out = _render(writer, lines)
                if out:
                    yield out
                continue
            if not options.follow or reader_gone():
                break
            current = _identity(path)
            if current is not None and current != identity:
                # Rotated: this file is complete; carry on with its successor.
                file.close()
                file = await asyncio.to_thread(path.open, "rb")
                identity = current
                continue
            now = loop.time()
            if idle_since is None:
                idle_since = now
            elif now - idle_since >= running_check_period:
                if not await is_running():
                    # A last look: the container may have written just before it exited.
                    tail = await asyncio.to_thread(file.read, READ_CHUNK)
                    if tail:
                        idle_since = None
                        lines = (pending + tail).split(b"\n")
                        pending = lines.pop()
                        out = _render(writer, lines)
                        if out:
                            yield out
                        continue
                    break
                idle_since = now
            await asyncio.sleep(poll_interval)
    finally:
        file.close()


def _render(writer: LogWriter, lines: Iterable[bytes]) -> bytes:
    out = []
    for line in lines:
        entry = parse_cri_line(line)
        if entry is not None:
            out.append(writer.write(entry))
        if writer.done:
            break
    return b"".join(out)
