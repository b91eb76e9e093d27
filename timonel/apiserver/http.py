"""The HTTPS listener: aiohttp requests in, `ApiServer.handle` in the middle, responses out.

Kept thin on purpose: everything an API client can observe is decided by the ApiServer,
so the in-process transport and this listener behave the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import re
import ssl
from collections.abc import AsyncIterator, Callable
from http import HTTPStatus
from typing import Any

from aiohttp import hdrs, web
from aiohttp.helpers import rfc822_formatted_time
from aiohttp.http import SERVER_SOFTWARE, HttpVersion11
from multidict import CIMultiDict

from timonel.api import errors
from timonel.apiserver import nodeproxy
from timonel.apiserver.context import ApiRequest, ApiResponse, status_response
from timonel.apiserver.negotiation import MAX_BODY_BYTES
from timonel.apiserver.server import ApiServer

log = logging.getLogger(__name__)

# The most bytes of a burst of stream chunks held to be written together.
_BURST_BYTES = 256 * 1024


def make_server(api: ApiServer) -> web.Server:
    """aiohttp's low-level server: every request goes to `dispatch`, with no router or
    middleware in between (the ApiServer does its own routing)."""
    loop = asyncio.get_running_loop()

    def make_request(
        message: Any, payload: Any, protocol: Any, writer: Any, task: Any
    ) -> web.BaseRequest:
        # aiohttp's own limit sits above ours so that an oversized body still gets a Status.
        return web.BaseRequest(
            message, payload, protocol, writer, task, loop, client_max_size=MAX_BODY_BYTES * 4
        )

    async def dispatch(request: web.BaseRequest) -> web.StreamResponse:
        headers = request.headers
        # Only an upgrade request (an Upgrade header) may be one the kubelet answers.
        if hdrs.UPGRADE in headers and nodeproxy.is_proxied_upgrade(request.path, headers):
            # exec, attach, port-forward: the connection itself goes to the kubelet.
            return await nodeproxy.serve_upgrade(api, request)
        body = b""
        if request.body_exists:
            try:
                body = await request.read()
            except web.HTTPRequestEntityTooLarge:
                return _to_aiohttp(status_response(errors.request_entity_too_large(MAX_BODY_BYTES)))
        peercert: Any = None
        transport = request.transport
        if transport is not None:
            peercert = transport.get_extra_info("peercert")
        api_request = ApiRequest(
            method=request.method,
            path=request.path,
            query=request.query,
            headers=headers,
            body=body,
            peercert=peercert or None,
            remote=request.remote or "",
            is_disconnected=lambda: request.transport is None or request.transport.is_closing(),
        )
        response = await api.handle(api_request)
        if response.stream is None:
            head = _plain_head(request, response)
            if head is None:
                return _to_aiohttp(response)
            return await _write_plain(request, head, response.body)
        stream = web.StreamResponse(
            status=response.status,
            headers={**response.headers, "Content-Type": response.content_type},
        )
        stream.enable_chunked_encoding()
        await stream.prepare(request)
        iterator = response.stream
        try:
            await _write_chunks(stream, iterator, response.stream_ready)
        except ConnectionResetError:
            pass
        finally:
            close = getattr(iterator, "aclose", None)
            if close is not None:
                with contextlib.suppress(Exception):
                    await close()
        with contextlib.suppress(ConnectionResetError):
            await stream.write_eof()
        return stream

    return web.Server(dispatch, request_factory=make_request, access_log=None)


async def _write_chunks(
    stream: web.StreamResponse,
    chunks: AsyncIterator[bytes],
    ready: Callable[[], bool] | None,
) -> None:
    """Write every chunk; those already at hand go out as one write (one HTTP chunk,
    one TLS record, one send) instead of one each. Nothing is held back to wait for more."""
    if ready is None:
        async for chunk in chunks:
            await stream.write(chunk)
        return
    held: list[bytes] = []
    size = 0
    async for chunk in chunks:
        held.append(chunk)
        size += len(chunk)
        if size < _BURST_BYTES and ready():
            continue
        await stream.write(chunk if len(held) == 1 else b"".join(held))
        held.clear()
        size = 0
    if held:  # the stream ended although more seemed at hand
        await stream.write(b"".join(held))


# What a plain response may carry besides its content type, for `_plain_head`.
_PLAIN_HEADERS = frozenset(("ETag", "Warning"))
# What aiohttp refuses in a header (a header injection): such a response goes its way.
_FORBIDDEN_IN_HEADER = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_STATUS_LINES = {
    status.value: f"HTTP/1.1 {status.value} {status.phrase}\r\n" for status in HTTPStatus
}
_SERVER_HEADER = f"Server: {SERVER_SOFTWARE}\r\n"


@functools.lru_cache(maxsize=64)
def _content_type_line(content_type: str) -> str | None:
    # Responses come in a handful of content types: each is checked once.
    if _FORBIDDEN_IN_HEADER.search(content_type) is not None:
        return None
    return f"Content-Type: {content_type}\r\n"


def _plain_head(request: web.BaseRequest, response: ApiResponse) -> bytes | None:
    """The status line and headers aiohttp would send for `response`, for the usual
    case (HTTP/1.1, a body that goes out, only the headers the API sets); None for
    anything else, which aiohttp's own response handles."""
    status = response.status
    if (
        status < 200
        or status in (204, 304)
        or request.method in ("HEAD", "CONNECT")
        or request.version != HttpVersion11
    ):
        return None
    content_type = _content_type_line(response.content_type)
    if content_type is None:
        return None
    lines = [_STATUS_LINES.get(status) or f"HTTP/1.1 {status} \r\n"]
    for name, value in response.headers.items():
        if name not in _PLAIN_HEADERS or _FORBIDDEN_IN_HEADER.search(value) is not None:
            return None
        lines.append(f"{name}: {value}\r\n")
    # aiohttp's order: the response's headers, Content-Length, Date, Server, Connection.
    lines.append(content_type)
    lines.append(f"Content-Length: {len(response.body)}\r\nDate: {rfc822_formatted_time()}\r\n")
    lines.append(_SERVER_HEADER)
    lines.append("\r\n" if request.keep_alive else "Connection: close\r\n\r\n")
    return "".join(lines).encode("utf-8")


class _WrittenResponse(web.StreamResponse):
    """A response already written in full: aiohttp has nothing left to send, and only
    learns from it whether the connection stays open. Nothing in it changes, so two
    instances serve every request."""

    def __init__(self, keep_alive: bool) -> None:
        super().__init__()
        self._keeps_alive = keep_alive

    @property
    def keep_alive(self) -> bool | None:
        return self._keeps_alive

    async def prepare(self, request: web.BaseRequest) -> None:
        return None

    async def write_eof(self, data: bytes = b"") -> None:
        return None


_WRITTEN_KEEP_ALIVE = _WrittenResponse(keep_alive=True)
_WRITTEN_CLOSE = _WrittenResponse(keep_alive=False)


async def _write_plain(request: web.BaseRequest, head: bytes, body: bytes) -> web.StreamResponse:
    """Send head and body as one write, skipping aiohttp's per-response header work
    (the same bytes as web.Response would produce, see `_plain_head`)."""
    try:
        await request.writer.write_eof(head + body)
    except ConnectionError:
        return _WRITTEN_CLOSE  # the client went: nothing more on this connection
    return _WRITTEN_KEEP_ALIVE if request.keep_alive else _WRITTEN_CLOSE


def _to_aiohttp(response: Any) -> web.Response:
    if response.status == 304:
        headers = CIMultiDict(response.headers)
        headers.pop("Content-Type", None)
        return web.Response(status=304, headers=headers)
    if not response.headers:  # most responses: only the content type to add
        return web.Response(
            status=response.status,
            body=response.body,
            headers={"Content-Type": response.content_type},
        )
    headers = CIMultiDict(response.headers)
    headers["Content-Type"] = response.content_type
    return web.Response(status=response.status, body=response.body, headers=headers)


class HttpsListener:
    def __init__(
        self, api: ApiServer, *, host: str, port: int, ssl_context: ssl.SSLContext
    ) -> None:
        self.api = api
        self.host = host
        self.port = port
        self.ssl_context = ssl_context
        self._runner: web.ServerRunner | None = None

    async def start(self) -> None:
        self._runner = web.ServerRunner(
            make_server(self.api), handle_signals=False, shutdown_timeout=1.0
        )
        await self._runner.setup()
        site = web.TCPSite(
            self._runner,
            self.host,
            self.port,
            ssl_context=self.ssl_context,
            reuse_address=True,
            backlog=1024,
        )
        await site.start()
        if self.port == 0:
            sockets = getattr(site._server, "sockets", None)
            if sockets:
                self.port = sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
