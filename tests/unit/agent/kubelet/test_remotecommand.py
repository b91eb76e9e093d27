"""Exec over WebSocket (v5 and v4) translated to SPDY towards a streaming server that
behaves as containerd's: streams by type, the exit Status on the error stream."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import orjson
import pytest
from aiohttp import web

from timonel.agent.kubelet import remotecommand
from timonel.streaming import channels, spdy


@dataclass
class FakeRuntime:
    """A streaming server: answers the SPDY upgrade, then per session reads stdin up to a
    newline or its end, answers on stdout and stderr and exits with code 3."""

    port: int = 0
    server: asyncio.Server | None = None
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    resizes: list[bytes] = field(default_factory=list)

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raw = await reader.readuntil(b"\r\n\r\n")
        request_line, _, header_text = raw[:-4].decode().partition("\r\n")
        headers = dict(line.split(": ", 1) for line in header_text.split("\r\n") if line)
        self.requests.append((request_line, headers))
        writer.write(
            b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n"
            b"X-Stream-Protocol-Version: v4.channel.k8s.io\r\n\r\n"
        )
        session = spdy.SpdySession(reader, writer, client=False)
        session.start()
        streams: dict[str, spdy.SpdyStream] = {}
        # The client opens all its streams at once, before any data flows.
        while True:
            try:
                stream = await asyncio.wait_for(session.accept(), 0.3)
            except TimeoutError:
                break
            assert stream is not None
            streams[stream.headers["streamtype"]] = stream
        received = b""
        while not received.endswith(b"\n"):
            chunk = await streams["stdin"].read()
            if not chunk:
                break
            received += chunk
        if "resize" in streams:
            self.resizes.append(await streams["resize"].read())
        await streams["stdout"].write(b"got:" + received)
        if "stderr" in streams:
            await streams["stderr"].write(b"warn")
        await streams["error"].write(channels.exit_code_status(3))
        await session.close()


@pytest.fixture
async def runtime() -> AsyncIterator[FakeRuntime]:
    fake = FakeRuntime()
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


@pytest.fixture
async def kubelet(runtime: FakeRuntime) -> AsyncIterator[str]:
    async def exec_handler(request: web.Request) -> web.StreamResponse:
        options = remotecommand.StreamOptions.from_query(request.query)
        offered = channels.offered_protocols(request.headers.getall("Sec-WebSocket-Protocol", []))
        protocol = channels.choose_protocol(offered, remotecommand.EXEC_WEBSOCKET_PROTOCOLS)
        assert protocol is not None
        url = f"http://127.0.0.1:{runtime.port}/exec/token"
        return await remotecommand.serve_exec_websocket(request, url, options, protocol)

    app = web.Application()
    app.router.add_get("/exec", exec_handler)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}/exec"
    finally:
        await runner.cleanup()


async def _drain(ws: aiohttp.ClientWebSocketResponse) -> dict[int, bytes]:
    received: dict[int, bytes] = {}
    async for message in ws:
        assert message.type == aiohttp.WSMsgType.BINARY
        channel, payload = channels.parse(message.data)
        received[channel] = received.get(channel, b"") + payload
    return received


async def test_v5_stdin_close_reaches_the_runtime_and_the_exit_code_comes_back(
    kubelet: str, runtime: FakeRuntime
) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(
            kubelet + "?stdin=true&stdout=true&stderr=true", protocols=[channels.V5], autoping=False
        ) as ws,
    ):
        assert ws.protocol == channels.V5
        await ws.send_bytes(channels.frame(channels.STDIN, b"no newline"))
        # The command is blocked reading stdin: pings are still answered.
        await ws.ping(b"are you there")
        pong = await asyncio.wait_for(ws.receive(), 2)
        assert pong.type == aiohttp.WSMsgType.PONG
        await ws.send_bytes(channels.close_message(channels.STDIN))
        received = await asyncio.wait_for(_drain(ws), 5)
        assert ws.close_code == 1000
    assert received[channels.STDOUT] == b"got:no newline"
    assert received[channels.STDERR] == b"warn"
    assert channels.exit_code_of(received[channels.ERROR]) == 3
    request_line, headers = runtime.requests[0]
    assert request_line == "POST /exec/token HTTP/1.1"
    assert headers["Upgrade"] == "SPDY/3.1"
    assert headers["X-Stream-Protocol-Version"] == "v4.channel.k8s.io"


async def test_v4_text_stdin_and_a_tty_resize(kubelet: str, runtime: FakeRuntime) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(kubelet + "?stdin=1&stdout=1&tty=1", protocols=[channels.V4]) as ws,
    ):
        assert ws.protocol == channels.V4
        await ws.send_bytes(channels.frame(channels.RESIZE, b'{"Width":80,"Height":24}'))
        # As the Python client sends a str: a text frame, channel character included.
        await ws.send_str("\x00line\n")
        received = await asyncio.wait_for(_drain(ws), 5)
    assert received[channels.STDOUT] == b"got:line\n"
    assert channels.STDERR not in received
    assert orjson.loads(received[channels.ERROR])["reason"] == "NonZeroExitCode"
    assert runtime.resizes == [b'{"Width":80,"Height":24}']
