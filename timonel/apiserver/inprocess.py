"""The in-process transport: components inside `timonel server` call `ApiServer.handle`
directly, with a bearer token, so authentication, admission and validation run exactly
as for a remote client; only the network is skipped."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import orjson
from multidict import CIMultiDict

from timonel.api.errors import StatusError
from timonel.api.objects import Object
from timonel.apiserver.context import ApiRequest
from timonel.apiserver.server import ApiServer
from timonel.client.transport import Query, RawResponse, StreamRefused, as_multidict


class InProcessTransport:
    def __init__(self, api: ApiServer, token: str, *, user_agent: str = "timonel") -> None:
        self.api = api
        self.token = token
        self.user_agent = user_agent

    def _request(
        self,
        method: str,
        path: str,
        query: Query | None,
        body: bytes | None,
        headers: Mapping[str, str] | None,
    ) -> ApiRequest:
        all_headers: CIMultiDict[str] = CIMultiDict(
            {
                "Authorization": f"Bearer {self.token}",
                "User-Agent": self.user_agent,
                "Accept": "application/json",
                "Content-Type": "application/json",
            }
        )
        all_headers.update(headers or {})
        return ApiRequest(method, path, as_multidict(query), all_headers, body or b"")

    async def request(
        self,
        method: str,
        path: str,
        *,
        query: Query | None = None,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> RawResponse:
        response = await self.api.handle(self._request(method, path, query, body, headers))
        if response.stream is not None:
            chunks = [chunk async for chunk in response.stream]
            return RawResponse(response.status, b"".join(chunks), response.content_type)
        return RawResponse(response.status, response.body, response.content_type)

    async def stream(
        self, path: str, *, query: Query | None = None, headers: Mapping[str, str] | None = None
    ) -> AsyncIterator[bytes]:
        response = await self.api.handle(self._request("GET", path, query, None, headers))
        if response.stream is None:
            raise StreamRefused(RawResponse(response.status, response.body, response.content_type))
        stream = response.stream
        try:
            async for chunk in stream:
                yield chunk
        finally:
            close = getattr(stream, "aclose", None)
            if close is not None:
                await close()

    async def open_watch(
        self, path: str, *, query: Query | None = None, headers: Mapping[str, str] | None = None
    ) -> AsyncIterator[tuple[str, Object]]:
        """Start a watch and return its decoded (type, object) events: what `stream`
        yields, without encoding and parsing it again, and without another generator
        between the server's events and the caller (one event per Lease renewal adds
        up). The objects are the watch cache's own, shared with every other watcher:
        callers must copy before changing anything, and close the iterator (`aclose`)
        when they stop early. A refused watch raises the StatusError the server
        answered with."""
        response = await self.api.handle(self._request("GET", path, query, None, headers))
        if response.events is not None:
            return response.events
        if response.stream is None:
            raise _status_error(response.status, response.body)
        return _parsed_events(response.stream)

    async def close(self) -> None:
        return None


def _status_error(code: int, body: bytes) -> StatusError:
    try:
        status = orjson.loads(body)
    except orjson.JSONDecodeError:
        status = None
    if isinstance(status, dict) and status.get("kind") == "Status":
        return StatusError(
            int(status.get("code") or code),
            str(status.get("reason", "")),
            str(status.get("message", "")),
            details=status.get("details"),
        )
    return StatusError(code, "", body[:200].decode(errors="replace"))


async def _parsed_events(stream: AsyncIterator[bytes]) -> AsyncIterator[tuple[str, Object]]:
    try:
        async for chunk in stream:
            event = orjson.loads(chunk)
            yield event["type"], event["object"]
    finally:
        await _close(stream)


async def _close(iterator: AsyncIterator[Any]) -> None:
    close = getattr(iterator, "aclose", None)
    if close is not None:
        await close()
