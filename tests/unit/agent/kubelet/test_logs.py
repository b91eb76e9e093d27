"""CRI log files read as `kubectl logs` asks (tail, since, timestamps, limitBytes, follow)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from timonel.agent.kubelet import logs
from timonel.agent.kubelet.logs import LogEntry, LogOptions

T0 = logs.parse_timestamp("2026-01-02T15:04:05Z")


def line(offset_ms: int, stream: str, tag: str, message: str) -> bytes:
    stamp = logs.format_timestamp(T0 + offset_ms * 1_000_000)
    return f"{stamp} {stream} {tag} {message}\n".encode()


SAMPLE = b"".join(
    [
        line(0, "stdout", "F", "first"),
        line(1000, "stderr", "F", "an error"),
        line(2000, "stdout", "P", "a long "),
        line(2001, "stdout", "F", "line"),
        line(3000, "stdout", "F", "last"),
    ]
)


def test_timestamps_parse_with_any_precision_and_zone_and_print_fixed() -> None:
    assert logs.parse_timestamp("2026-01-02T15:04:05.123456789Z") == T0 + 123456789
    assert logs.parse_timestamp("2026-01-02T15:04:05.5Z") == T0 + 500_000_000
    assert logs.parse_timestamp("2026-01-02T16:04:05.000001+01:00") == T0 + 1000
    assert logs.format_timestamp(T0 + 1) == "2026-01-02T15:04:05.000000001Z"
    assert logs.format_timestamp(T0) == "2026-01-02T15:04:05.000000000Z"
    with pytest.raises(ValueError):
        logs.parse_timestamp("yesterday")


def test_cri_lines_parse_into_entries() -> None:
    assert logs.parse_cri_line(b"2026-01-02T15:04:05Z stdout F hello world") == LogEntry(
        T0, "stdout", False, b"hello world"
    )
    assert logs.parse_cri_line(b"2026-01-02T15:04:05Z stderr P part") == LogEntry(
        T0, "stderr", True, b"part"
    )
    assert logs.parse_cri_line(b"2026-01-02T15:04:05Z stdout F") == LogEntry(
        T0, "stdout", False, b""
    )
    assert logs.parse_cri_line(b"2026-01-02T15:04:05Z stdout F:x tagged") is not None
    assert logs.parse_cri_line(b"not a log line") is None
    assert logs.parse_cri_line(b"2026-01-02T15:04:05Z console F x") is None
    assert logs.parse_cri_line(b"") is None


def test_the_whole_log_joins_partial_lines() -> None:
    assert logs.render_log(SAMPLE, LogOptions()) == b"first\nan error\na long line\nlast\n"


def test_tail_counts_file_lines_from_the_end() -> None:
    assert logs.render_log(SAMPLE, LogOptions(tail_lines=1)) == b"last\n"
    assert logs.render_log(SAMPLE, LogOptions(tail_lines=3)) == b"a long line\nlast\n"
    assert logs.render_log(SAMPLE, LogOptions(tail_lines=99)) == logs.render_log(
        SAMPLE, LogOptions()
    )
    assert logs.render_log(SAMPLE, LogOptions(tail_lines=0)) == b""
    assert logs.tail_offset(b"a\nb\nc", 1) == 4
    assert logs.tail_offset(b"a\nb\nc\n", 2) == 2


def test_since_drops_earlier_entries() -> None:
    since = LogOptions(since_ns=T0 + 1500 * 1_000_000)
    assert logs.render_log(SAMPLE, since) == b"a long line\nlast\n"


def test_timestamps_prefix_each_output_line_once() -> None:
    out = logs.render_log(SAMPLE, LogOptions(timestamps=True, tail_lines=3)).splitlines()
    assert out == [
        b"2026-01-02T15:04:07.000000000Z a long line",
        b"2026-01-02T15:04:08.000000000Z last",
    ]


def test_limit_bytes_cuts_the_output_even_mid_line() -> None:
    assert logs.render_log(SAMPLE, LogOptions(limit_bytes=9)) == b"first\nan "
    assert logs.render_log(SAMPLE, LogOptions(limit_bytes=6)) == b"first\n"
    stamped = logs.render_log(SAMPLE, LogOptions(limit_bytes=35, timestamps=True))
    assert stamped == b"2026-01-02T15:04:05.000000000Z firs"


def test_tail_of_a_large_file_reads_backwards(tmp_path: Path) -> None:
    path = tmp_path / "0.log"
    lines = [line(i, "stdout", "F", f"message {i:06d} " + "x" * 80) for i in range(5000)]
    path.write_bytes(b"".join(lines))
    offset = logs.tail_offset_of_file(path, 3)
    assert path.read_bytes()[offset:] == b"".join(lines[-3:])
    assert logs.tail_offset_of_file(path, 10_000) == 0
    assert logs.tail_offset_of_file(path, 0) == path.stat().st_size


async def _collect(path: Path, options: LogOptions, running: asyncio.Event) -> bytes:
    async def is_running() -> bool:
        return running.is_set()

    out = []
    async for chunk in logs.stream_log(
        path, options, is_running=is_running, poll_interval=0.01, running_check_period=0.05
    ):
        out.append(chunk)
    return b"".join(out)


async def test_without_follow_the_stream_ends_at_the_end_of_the_file(tmp_path: Path) -> None:
    path = tmp_path / "0.log"
    path.write_bytes(SAMPLE)
    running = asyncio.Event()
    running.set()
    out = await asyncio.wait_for(_collect(path, LogOptions(tail_lines=2), running), 2)
    assert out == b"line\nlast\n"


async def test_follow_streams_new_lines_until_the_container_stops(tmp_path: Path) -> None:
    path = tmp_path / "0.log"
    path.write_bytes(line(0, "stdout", "F", "before"))
    running = asyncio.Event()
    running.set()
    follower = asyncio.create_task(_collect(path, LogOptions(follow=True), running))
    await asyncio.sleep(0.1)
    with path.open("ab") as file:
        file.write(line(10, "stdout", "F", "after")[:20])  # half a line: held back
        file.flush()
        await asyncio.sleep(0.05)
        file.write(line(10, "stdout", "F", "after")[20:])
    await asyncio.sleep(0.1)
    assert not follower.done()
    running.clear()
    with path.open("ab") as file:
        file.write(line(20, "stderr", "F", "dying words"))
    assert await asyncio.wait_for(follower, 2) == b"before\nafter\ndying words\n"


async def test_follow_continues_into_a_rotated_files_successor(tmp_path: Path) -> None:
    path = tmp_path / "0.log"
    path.write_bytes(line(0, "stdout", "F", "old file"))
    running = asyncio.Event()
    running.set()
    follower = asyncio.create_task(_collect(path, LogOptions(follow=True), running))
    await asyncio.sleep(0.1)
    with path.open("ab") as file:
        file.write(line(1, "stdout", "F", "end of the old file"))
    path.rename(tmp_path / "0.log.20260102-150405")
    path.write_bytes(line(2, "stdout", "F", "new file"))
    await asyncio.sleep(0.2)
    running.clear()
    out = await asyncio.wait_for(follower, 2)
    assert out == b"old file\nend of the old file\nnew file\n"


async def test_follow_stops_at_the_byte_limit(tmp_path: Path) -> None:
    path = tmp_path / "0.log"
    path.write_bytes(SAMPLE)
    running = asyncio.Event()
    running.set()
    out = await asyncio.wait_for(_collect(path, LogOptions(follow=True, limit_bytes=3), running), 2)
    assert out == b"fir"


async def test_follow_stops_when_the_reader_is_gone(tmp_path: Path) -> None:
    path = tmp_path / "0.log"
    path.write_bytes(line(0, "stdout", "F", "only line"))
    gone = False

    async def is_running() -> bool:
        return True

    async def follow() -> bytes:
        out = b""
        async for chunk in logs.stream_log(
            path,
            LogOptions(follow=True),
            is_running=is_running,
            poll_interval=0.01,
            reader_gone=lambda: gone,
        ):
            out += chunk
        return out

    follower = asyncio.create_task(follow())
    await asyncio.sleep(0.1)
    assert not follower.done()
    gone = True
    assert await asyncio.wait_for(follower, 1) == b"only line\n"
