"""HTTP/1.1 connection upgrades, proxied: how exec, attach and port-forward cross hops.

kubectl's upgrade request (WebSocket, or SPDY/3.1) reaches the API server, which forwards
it to the pod's kubelet; the kubelet forwards SPDY ones to containerd's streaming server.
Each hop sends the request on (`open_upgrade`), and when the next hop answers
`101 Switching Protocols` answers its own client with that head (`switch_protocols`)
and copies bytes both ways until either side ends (`splice`). A refusal (any other
status) comes back with its body so the hop can report it as an API error.

Pure: `render_request_head`, `parse_response_head`, `is_upgrade_request`,
`upgrade_request_headers`. I/O: the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final, Protocol

from aiohttp import WSMsgType, web
from aiohttp.http import StreamWriter
from multidict import MultiMapping

MAX_HEAD_BYTES: Final = 64 * 1024
MAX_REFUSAL_BYTES: Final = 1024 * 1024
READ_SIZE: Final = 64 * 1024

# What an upgrade request carries to the next hop; everything else (credentials above
# all) stays with the hop that received it.
UPGRADE_REQUEST_HEADERS: Final = (
    "Upgrade",
    "Connection",
    "Sec-WebSocket-Key",
    "Sec-WebSocket-Version",
    "Sec-WebSocket-Protocol",
    "Sec-WebSocket-Extensions",
    "X-Stream-Protocol-Version",
)
# Response headers the answering hop writes itself.
_OWN_RESPONSE_HEADERS: Final = frozenset(
    {"date", "server", "content-length", "transfer-encoding", "content-type"}
)


class UpgradeError(Exception):
    """The next hop could not be reached or did not answer HTTP."""


@dataclass(frozen=True)
class ResponseHead:
    status: int
    reason: str
    headers: tuple[tuple[str, str], ...]

    def get(self, name: str, default: str = "") -> str:
        wanted = name.lower()
        return next((v for k, v in self.headers if k.lower() == wanted), default)

    def get_all(self, name: str) -> list[str]:
        wanted = name.lower()
        return [v for k, v in self.headers if k.lower() == wanted]

    def switched_headers(self) -> list[tuple[str, str]]:
        """The headers of a 101 to pass to the previous hop."""
        return [(k, v) for k, v in self.headers if k.lower() not in _OWN_RESPONSE_HEADERS]


def render_request_head(method: str, target: str, headers: Iterable[tuple[str, str]]) -> bytes:
    lines = [f"{method} {target} HTTP/1.1"]
    for name, value in headers:
        if "\r" in name or "\n" in name or "\r" in value or "\n" in value:
            raise ValueError(f"header {name!r} holds a line break")
        lines.append(f"{name}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def parse_response_head(raw: bytes) -> ResponseHead:
    """The status line and headers of `raw` (without the blank line that ends them)."""
    text = raw.decode("latin-1")
    status_line, _, rest = text.partition("\r\n")
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise UpgradeError(f"not an HTTP response: {status_line[:80]!r}")
    headers = []
    for line in rest.split("\r\n"):
        if not line:
            continue
        name, colon, value = line.partition(":")
        if not colon:
            raise UpgradeError(f"bad header line {line[:80]!r}")
        headers.append((name.strip(), value.strip()))
    return ResponseHead(int(parts[1]), parts[2] if len(parts) > 2 else "", tuple(headers))


def is_upgrade_request(headers: Mapping[str, str]) -> bool:
    connection = [token.strip().lower() for token in headers.get("Connection", "").split(",")]
    return "upgrade" in connection and bool(headers.get("Upgrade"))


def upgrade_request_headers(headers: MultiMapping[str]) -> list[tuple[str, str]]:
    return [(name, value) for name in UPGRADE_REQUEST_HEADERS for value in headers.getall(name, [])]


# -- byte streams ---------------------------------------------------------------------------


class ByteStream(Protocol):
    async def read(self) -> bytes:
        """The next bytes, or b"" at the end."""

    async def write(self, data: bytes) -> None: ...

    async def close(self) -> None: ...


class SocketStream:
    """An asyncio connection as a ByteStream."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def read(self) -> bytes:
        try:
            return await self.reader.read(READ_SIZE)
        except (ConnectionError, OSError, ssl.SSLError):
            return b""

    async def write(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.writer.wait_closed(), 2)


class _RawFeed:
    """Stands in for aiohttp's payload parser once a connection switched protocols:
    every byte the client sends after that goes to `reader` untouched."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self._reader = reader

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        self._reader.feed_data(data)
        return False, b""

    def feed_eof(self) -> None:
        self._reader.feed_eof()


class SwitchedConnection:
    """The client side of a connection an aiohttp handler switched to another protocol.
    aiohttp closes it when the handler returns."""

    def __init__(self, reader: asyncio.StreamReader, writer: StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    async def read(self) -> bytes:
        try:
            return await self._reader.read(READ_SIZE)
        except (ConnectionError, OSError):
            return b""

    async def write(self, data: bytes) -> None:
        await self._writer.write(data)

    async def close(self) -> None:
        transport = self._writer.transport
        if transport is not None:
            transport.close()


class WebSocketStream:
    """A WebSocket whose binary messages are pieces of one byte stream (the port-forward
    tunnel). Pings are answered by aiohttp while `read` waits."""

    def __init__(self, ws: web.WebSocketResponse) -> None:
        self.ws = ws

    async def read(self) -> bytes:
        while True:
            message = await self.ws.receive()
            if message.type == WSMsgType.BINARY:
                if message.data:
                    return bytes(message.data)
                continue
            if message.type == WSMsgType.TEXT:
                continue
            return b""

    async def write(self, data: bytes) -> None:
        await self.ws.send_bytes(data)

    async def close(self) -> None:
        await self.ws.close()


async def switch_protocols(
    request: web.BaseRequest, headers: Iterable[tuple[str, str]]
) -> tuple[web.StreamResponse, SwitchedConnection]:
    """Answer `request` with 101 and `headers` and take the connection over. The
    handler must return the response once done with the connection."""
    response = web.StreamResponse(status=101, reason="Switching Protocols")
    for name, value in headers:
        response.headers.add(name, value)
    response.force_close()
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=READ_SIZE, loop=loop)
    if request.transport is not None:
        reader.set_transport(request.transport)
    # aiohttp's own WebSocket support takes the connection over the same way.
    request.protocol.set_parser(_RawFeed(reader))  # type: ignore[arg-type]
    await response.prepare(request)
    return response, SwitchedConnection(reader, StreamWriter(request.protocol, loop))


@dataclass
class Upstream:
    """The next hop's answer to an upgrade request: on 101 the connection is the new
    protocol's; otherwise `body` holds what it said."""

    head: ResponseHead
    stream: SocketStream
    body: bytes = b""


async def open_upgrade(
    host: str,
    port: int,
    *,
    method: str,
    target: str,
    headers: Iterable[tuple[str, str]],
    ssl_context: ssl.SSLContext | None = None,
    timeout: float = 10.0,
) -> Upstream:
    """Send an upgrade request and read the answer's head (and body, unless 101)."""
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(
                host,
                port,
                ssl=ssl_context,
                server_hostname=host if ssl_context is not None else None,
                limit=MAX_HEAD_BYTES,
            ),
            timeout,
        )
    except (OSError, TimeoutError, ssl.SSLError) as error:
        raise UpgradeError(f"dial tcp {_host_port(host, port)}: {error or 'timeout'}") from None
    stream = SocketStream(reader, writer)
    try:
        authority = _host_port(host, port)
        head_bytes = render_request_head(method, target, [("Host", authority), *headers])
        writer.write(head_bytes)
        await writer.drain()
        raw = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
        head = parse_response_head(raw[:-4])
        body = b""
        if head.status != 101:
            body = await asyncio.wait_for(_read_body(reader, head), timeout)
    except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as error:
        await stream.close()
        raise UpgradeError(f"{method} {target}: {error or 'timeout'}") from None
    except BaseException:
        await stream.close()
        raise
    if head.status != 101:
        await stream.close()
    return Upstream(head, stream, body)


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def _read_body(reader: asyncio.StreamReader, head: ResponseHead) -> bytes:
    length = head.get("Content-Length")
    if length.isdigit():
        return await reader.readexactly(min(int(length), MAX_REFUSAL_BYTES))
    if "chunked" in head.get("Transfer-Encoding").lower():
        parts = []
        total = 0
        while total < MAX_REFUSAL_BYTES:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                break
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)
            total += size
        return b"".join(parts)
    return await reader.read(MAX_REFUSAL_BYTES)


async def _pump(source: ByteStream, sink: ByteStream) -> None:
    while data := await source.read():
        await sink.write(data)


async def splice(first: ByteStream, second: ByteStream) -> None:
    """Copy bytes both ways until either side ends, then close both."""
    forward = asyncio.create_task(_pump(first, second))
    backward = asyncio.create_task(_pump(second, first))
    try:
        await asyncio.wait({forward, backward}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (forward, backward):
            task.cancel()
        await asyncio.gather(forward, backward, return_exceptions=True)
        await asyncio.gather(first.close(), second.close(), return_exceptions=True)
