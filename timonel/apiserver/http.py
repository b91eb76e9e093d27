"""The HTTPS listener: aiohttp requests in, `ApiServer.handle` in the middle, responses out.

Kept thin on purpose: everything an API client can observe is decided by the ApiServer,
so the in-process transport and this listener behave the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import AsyncIterator, Callable
from typing import Any

from aiohttp import web
from multidict import CIMultiDict

from timonel.api import errors
from timonel.apiserver import nodeproxy
from timonel.apiserver.context import ApiRequest, status_response
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
        if nodeproxy.is_proxied_upgrade(request.path, request.headers):
            # exec, attach, port-forward: the connection itself goes to the kubelet.
            return await nodeproxy.serve_upgrade(api, request)
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
            headers=request.headers,
            body=body,
            peercert=peercert or None,
            remote=request.remote or "",
            is_disconnected=lambda: request.transport is None or request.transport.is_closing(),
        )
        response = await api.handle(api_request)
        if response.stream is None:
            return _to_aiohttp(response)
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


def _to_aiohttp(response: Any) -> web.Response:
    headers = CIMultiDict(response.headers)
    headers["Content-Type"] = response.content_type
    if response.status == 304:
        headers.pop("Content-Type", None)
        return web.Response(status=304, headers=headers)
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
