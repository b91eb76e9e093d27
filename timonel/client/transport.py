"""Transports: how a request reaches the API server.

All I/O of the client goes through `Transport.request` and `Transport.stream`, so a
component runs the same whether it talks HTTPS to a remote server or sits inside
`timonel server` and uses the in-process transport (timonel/apiserver/inprocess.py),
which calls `ApiServer.handle` and so still authenticates, admits and validates.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Protocol

import aiohttp
from multidict import MultiDict

Query = Mapping[str, str | list[str]]

# A request that takes longer has failed (watches stream without this limit).
_REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=60)


@dataclass
class RawResponse:
    status: int
    body: bytes
    content_type: str


class Transport(Protocol):
    async def request(
        self,
        method: str,
        path: str,
        *,
        query: Query | None = None,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> RawResponse: ...

    def stream(
        self, path: str, *, query: Query | None = None, headers: Mapping[str, str] | None = None
    ) -> AsyncIterator[bytes]:
        """GET `path` and yield the body line by line (watch streams). Raises
        `StreamRefused` carrying the response when the server answers non-200."""

    async def close(self) -> None: ...


class StreamRefused(Exception):
    def __init__(self, response: RawResponse) -> None:
        super().__init__(f"stream refused with {response.status}")
        self.response = response


def as_multidict(query: Query | None) -> MultiDict[str]:
    result: MultiDict[str] = MultiDict()
    for key, value in (query or {}).items():
        if isinstance(value, list):
            for item in value:
                result.add(key, item)
        else:
            result.add(key, value)
    return result


class HttpsTransport:
    """HTTPS to a remote API server with a client certificate or a bearer token."""

    def __init__(
        self,
        server: str,
        ssl_context: ssl.SSLContext,
        *,
        token: str = "",
        user_agent: str = "timonel",
    ) -> None:
        self.server = server.rstrip("/")
        self.ssl_context = ssl_context
        self._headers = {"User-Agent": user_agent}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(ssl=self.ssl_context, limit=64)
            self._session = aiohttp.ClientSession(
                connector=connector,
                headers=self._headers,
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
            )
        return self._session

    async def request(
        self,
        method: str,
        path: str,
        *,
        query: Query | None = None,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> RawResponse:
        async with self._client().request(
            method,
            self.server + path,
            params=as_multidict(query) if query else None,
            data=body,
            headers=dict(headers) if headers else None,
            timeout=_REQUEST_TIMEOUT,
        ) as response:
            return RawResponse(
                response.status, await response.read(), response.headers.get("Content-Type", "")
            )

    async def stream(
        self, path: str, *, query: Query | None = None, headers: Mapping[str, str] | None = None
    ) -> AsyncIterator[bytes]:
        async with self._client().get(
            self.server + path, params=as_multidict(query), headers=dict(headers or {})
        ) as response:
            if response.status != 200:
                raise StreamRefused(
                    RawResponse(
                        response.status,
                        await response.read(),
                        response.headers.get("Content-Type", ""),
                    )
                )
            while True:
                line = await response.content.readline()
                if not line:
                    return
                if line.strip():
                    yield line

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
