"""Exec, attach and port-forward sessions between a client and containerd's streaming server.

CRI's Exec, Attach and PortForward return a single-use URL on containerd's streaming
server, which speaks WebSocket v4 and SPDY/3.1 (containerd 1.6 knows no v5). Clients
arrive (through the API server) speaking:

- WebSocket `v5.channel.k8s.io` (kubectl 1.30+) or `v4.channel.k8s.io` (the Python
  client) for exec and attach: the kubelet answers the WebSocket itself and speaks SPDY
  to containerd, stream per channel, because only SPDY can half-close stdin (the v5
  close message [255, 0] becomes a FIN on the stdin stream). The exit Status containerd
  writes on its error stream goes to channel 3, then the WebSocket closes normally.
- WebSocket `SPDY/3.1+portforward.k8s.io` for port-forward: raw SPDY in binary messages,
  which the kubelet passes as bytes to containerd's SPDY port-forward endpoint; or
  WebSocket `v4.channel.k8s.io` with `?ports=` (the Python client): two channels per port
  (data, error), relayed message for message to containerd's WebSocket endpoint.
- SPDY (kubectl's fallback, either command): the upgrade is proxied to containerd as is.

Pure: `StreamOptions`, `spdy_stream_kinds`, `parse_streaming_url`, `forwarded_ports`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

import aiohttp
from aiohttp import WSMsgType, web

from timonel.streaming import channels
from timonel.streaming.spdy import SpdySession, SpdyStream
from timonel.streaming.upgrade import (
    UpgradeError,
    Upstream,
    WebSocketStream,
    open_upgrade,
    splice,
    switch_protocols,
    upgrade_request_headers,
)

log = logging.getLogger(__name__)

SPDY: Final = "SPDY/3.1"
EXEC_WEBSOCKET_PROTOCOLS: Final = (channels.V5, channels.V4)
PORT_FORWARD_WEBSOCKET_PROTOCOLS: Final = (channels.PORT_FORWARD_TUNNEL, channels.V4)
# What the kubelet asks containerd for when it translates a WebSocket session.
CONTAINERD_EXEC_PROTOCOL: Final = channels.V4
# How long the last output may take to arrive after the command's status did.
OUTPUT_DRAIN_TIMEOUT: Final = 5.0


def _flag(query: Mapping[str, str], name: str) -> bool:
    return query.get(name, "").lower() in ("1", "true")


@dataclass(frozen=True)
class StreamOptions:
    stdin: bool = False
    stdout: bool = True
    stderr: bool = True
    tty: bool = False

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> StreamOptions:
        """The streams of an exec or attach request; with a TTY stderr is merged into
        stdout, as the runtime does."""
        tty = _flag(query, "tty")
        return cls(
            stdin=_flag(query, "stdin"),
            stdout=_flag(query, "stdout"),
            stderr=_flag(query, "stderr") and not tty,
            tty=tty,
        )

    @property
    def any(self) -> bool:
        return self.stdin or self.stdout or self.stderr


def spdy_stream_kinds(options: StreamOptions) -> list[str]:
    """The `streamType`s a v4 SPDY client opens, in the order kubectl opens them."""
    kinds = ["error"]
    kinds += ["stdin"] if options.stdin else []
    kinds += ["stdout"] if options.stdout else []
    kinds += ["stderr"] if options.stderr else []
    kinds += ["resize"] if options.tty else []
    return kinds


@dataclass(frozen=True)
class StreamingUrl:
    host: str
    port: int
    target: str


def parse_streaming_url(url: str) -> StreamingUrl:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"unsupported streaming URL {url!r}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    return StreamingUrl(parts.hostname, port, target)


def forwarded_ports(values: list[str]) -> list[int]:
    """The `ports` of a WebSocket port-forward (repeated or comma-separated), as kubelet
    reads them; a ValueError says what is wrong."""
    ports: list[int] = []
    for value in values:
        for item in value.split(","):
            port = int(item.strip())
            if not 0 < port < 65536:
                raise ValueError(f"port {port} must be between 1 and 65535")
            if port not in ports:
                ports.append(port)
    if not ports:
        raise ValueError('query parameter "ports" is required')
    return ports


def wants_websocket(request: web.Request) -> bool:
    return request.headers.get("Upgrade", "").lower() == "websocket"


def wants_spdy(request: web.Request) -> bool:
    return request.headers.get("Upgrade", "").lower() == SPDY.lower()


async def _open_spdy(url: str, protocol: str) -> Upstream:
    location = parse_streaming_url(url)
    upstream = await open_upgrade(
        location.host,
        location.port,
        method="POST",
        target=location.target,
        headers=[
            ("Connection", "Upgrade"),
            ("Upgrade", SPDY),
            ("X-Stream-Protocol-Version", protocol),
        ],
    )
    if upstream.head.status != 101:
        message = upstream.body.decode(errors="replace").strip() or upstream.head.reason
        raise UpgradeError(f"the runtime refused the stream: {message}")
    return upstream


async def proxy_spdy(request: web.Request, url: str) -> web.StreamResponse:
    """Pass a client's SPDY upgrade to the runtime's streaming server unchanged."""
    location = parse_streaming_url(url)
    upstream = await open_upgrade(
        location.host,
        location.port,
        method="POST",
        target=location.target,
        headers=upgrade_request_headers(request.headers),
    )
    if upstream.head.status != 101:
        return web.Response(
            status=upstream.head.status,
            body=upstream.body,
            content_type=upstream.head.get("Content-Type") or "text/plain",
        )
    response, client = await switch_protocols(request, upstream.head.switched_headers())
    await splice(client, upstream.stream)
    return response


async def serve_exec_websocket(
    request: web.Request, url: str, options: StreamOptions, protocol: str
) -> web.StreamResponse:
    """An exec or attach WebSocket (v5 or v4), translated to SPDY towards the runtime."""
    upstream = await _open_spdy(url, CONTAINERD_EXEC_PROTOCOL)
    session = SpdySession(upstream.stream.reader, upstream.stream.writer, client=True)
    session.start()
    try:
        streams = {
            kind: await session.open_stream({"streamType": kind})
            for kind in spdy_stream_kinds(options)
        }
        ws = web.WebSocketResponse(protocols=(protocol,), max_msg_size=0, compress=False)
        await ws.prepare(request)
        await bridge(ws, streams)
    finally:
        await session.close()
    return ws


async def bridge(ws: web.WebSocketResponse, streams: Mapping[str, SpdyStream]) -> None:
    """Channels of `ws` to and from the SPDY streams, until the command's status arrives
    (sent on channel 3 before a normal close) or the client goes away."""
    v5 = ws.ws_protocol == channels.V5
    stdin = streams.get("stdin")
    resize = streams.get("resize")

    async def forward(stream: SpdyStream | None, channel: int) -> None:
        if stream is None:
            return
        while data := await stream.read():
            await ws.send_bytes(channels.frame(channel, data))

    async def from_client() -> None:
        async for message in ws:
            if message.type == WSMsgType.BINARY:
                data = bytes(message.data)
            elif message.type == WSMsgType.TEXT:
                # The Python client sends str stdin as text frames, channel byte included.
                data = str(message.data).encode()
            else:
                continue
            channel, payload = channels.parse(data)
            try:
                if channel == channels.STDIN and stdin is not None:
                    await stdin.write(payload)
                elif channel == channels.RESIZE and resize is not None:
                    await resize.write(payload)
                elif (
                    channel == channels.CLOSE
                    and v5
                    and stdin is not None
                    and channels.closed_channel(payload) == channels.STDIN
                ):
                    await stdin.close()
            except ConnectionError:
                return

    async def outcome(outputs: asyncio.Future[tuple[None, None]]) -> bytes:
        status = await streams["error"].read_all()
        # The runtime writes the status once the command ended, after its output; the
        # output streams end when it closes the connection right after.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(outputs), OUTPUT_DRAIN_TIMEOUT)
        return status

    outputs = asyncio.gather(
        forward(streams.get("stdout"), channels.STDOUT),
        forward(streams.get("stderr"), channels.STDERR),
    )
    client = asyncio.create_task(from_client())
    finished = asyncio.create_task(outcome(outputs))
    try:
        await asyncio.wait({client, finished}, return_when=asyncio.FIRST_COMPLETED)
        if finished.done() and not finished.cancelled() and finished.exception() is None:
            status = finished.result() or channels.success_status()
            with contextlib.suppress(ConnectionError, RuntimeError):
                await ws.send_bytes(channels.frame(channels.ERROR, status))
                await ws.close()
    finally:
        outputs.cancel()
        for task in (client, finished):
            task.cancel()
        await asyncio.gather(outputs, client, finished, return_exceptions=True)


async def serve_port_forward_tunnel(request: web.Request, url: str) -> web.StreamResponse:
    """kubectl's SPDY-in-WebSocket port-forward, as bytes to the runtime's SPDY endpoint."""
    upstream = await _open_spdy(url, channels.PORT_FORWARD)
    ws = web.WebSocketResponse(
        protocols=(channels.PORT_FORWARD_TUNNEL,), max_msg_size=0, compress=False
    )
    await ws.prepare(request)
    await splice(WebSocketStream(ws), upstream.stream)
    return ws


async def serve_port_forward_channels(request: web.Request, url: str) -> web.StreamResponse:
    """A v4 channel port-forward, relayed to the runtime's own WebSocket endpoint (which
    forwards the ports the CRI request named)."""
    websocket_url = "ws" + url.removeprefix("http")
    async with aiohttp.ClientSession() as client:
        try:
            upstream = await client.ws_connect(
                websocket_url, protocols=(channels.V4,), max_msg_size=0, autoping=True
            )
        except aiohttp.ClientError as error:
            raise UpgradeError(f"the runtime refused the stream: {error}") from None
        ws = web.WebSocketResponse(protocols=(channels.V4,), max_msg_size=0, compress=False)
        await ws.prepare(request)

        async def relay(
            source: web.WebSocketResponse | aiohttp.ClientWebSocketResponse,
            sink: web.WebSocketResponse | aiohttp.ClientWebSocketResponse,
        ) -> None:
            async for message in source:
                if message.type == WSMsgType.BINARY:
                    await sink.send_bytes(message.data)
                elif message.type == WSMsgType.TEXT:
                    await sink.send_str(message.data)

        tasks = [
            asyncio.create_task(relay(ws, upstream)),
            asyncio.create_task(relay(upstream, ws)),
        ]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await upstream.close()
            await ws.close()
    return ws
