"""Streamed responses (watches) over HTTPS: chunks at hand are sent together, none waits."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

from timonel.apiserver import http


class RecordingStream:
    def __init__(self) -> None:
        self.writes: list[bytes] = []

    async def write(self, data: bytes) -> None:
        self.writes.append(data)


class Source:
    """Chunks queued by the test; the stream waits when none is queued, like a watch."""

    def __init__(self) -> None:
        self.queued: deque[bytes] = deque()
        self.arrived = asyncio.Event()
        self.done = False

    def push(self, *chunks: bytes) -> None:
        self.queued.extend(chunks)
        self.arrived.set()

    def ready(self) -> bool:
        return bool(self.queued)

    async def chunks(self) -> AsyncIterator[bytes]:
        while True:
            if self.queued:
                yield self.queued.popleft()
                continue
            if self.done:
                return
            self.arrived.clear()
            await self.arrived.wait()


async def test_a_burst_at_hand_is_one_write_and_a_lone_chunk_goes_out_at_once() -> None:
    source = Source()
    stream = RecordingStream()
    writer = asyncio.create_task(http._write_chunks(stream, source.chunks(), source.ready))  # type: ignore[arg-type]
    source.push(b"a\n", b"b\n", b"c\n")
    await asyncio.sleep(0.01)
    assert stream.writes == [b"a\nb\nc\n"]
    source.push(b"d\n")
    await asyncio.sleep(0.01)
    # Written while the stream waits for more: nothing is held back.
    assert stream.writes == [b"a\nb\nc\n", b"d\n"]
    source.done = True
    source.push()
    await asyncio.wait_for(writer, 1)


async def test_a_burst_is_split_at_the_size_limit_and_keeps_every_byte_in_order(
    monkeypatch: Any,
) -> None:
    monkeypatch.setattr(http, "_BURST_BYTES", 10)
    source = Source()
    source.done = True
    lines = [f"{n:03d}\n".encode() for n in range(10)]
    source.push(*lines)
    stream = RecordingStream()
    await asyncio.wait_for(http._write_chunks(stream, source.chunks(), source.ready), 1)  # type: ignore[arg-type]
    assert b"".join(stream.writes) == b"".join(lines)
    assert 1 < len(stream.writes) < len(lines)
    assert all(len(write) <= 10 + 4 for write in stream.writes)


async def test_without_a_readiness_test_every_chunk_is_its_own_write() -> None:
    source = Source()
    source.done = True
    source.push(b"a\n", b"b\n")
    stream = RecordingStream()
    await asyncio.wait_for(http._write_chunks(stream, source.chunks(), None), 1)  # type: ignore[arg-type]
    assert stream.writes == [b"a\n", b"b\n"]
