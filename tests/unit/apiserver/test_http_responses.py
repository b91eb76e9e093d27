"""What the listener sends for an ordinary response, byte for byte as aiohttp's own
web.Response would: the same status line, headers in the same order, keep-alive kept."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from timonel.apiserver import http
from timonel.apiserver.context import ApiRequest, ApiResponse

RESPONSES = {
    "/ok": ApiResponse(200, b'{"a":1}'),
    "/created": ApiResponse(201, b"{}"),
    "/text": ApiResponse(200, b"ok", "text/plain; charset=utf-8"),
    "/missing": ApiResponse(404, b'{"kind":"Status"}'),
    "/warned": ApiResponse(200, b"{}", headers={"Warning": '299 - "careful"'}),
    "/tagged": ApiResponse(200, b"{}", headers={"ETag": '"abc"'}),
    "/unchanged": ApiResponse(304, b"", headers={"ETag": '"abc"'}),
    "/empty": ApiResponse(200, b""),
    "/unusual": ApiResponse(599, b"x"),
}


class StubApi:
    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    async def handle(self, request: ApiRequest) -> ApiResponse:
        self.bodies.append(request.body)
        return RESPONSES[request.path]


@pytest.fixture
async def port() -> AsyncIterator[int]:
    runner = web.ServerRunner(http.make_server(StubApi()), handle_signals=False)  # type: ignore[arg-type]
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server: Any = site._server
    yield server.sockets[0].getsockname()[1]
    await runner.cleanup()


def normalized(received: bytes) -> bytes:
    """The server's Date and Server values blanked."""
    received = re.sub(rb"Date: [^\r]*", b"Date: D", received)
    return re.sub(rb"Server: [^\r]*", b"Server: S", received)


async def exchange(port: int, expected: bytes, *requests: bytes) -> tuple[bytes, bool]:
    """What the server sends back for `requests` written at once (as long as `expected`
    once normalized), and whether it then keeps the connection open."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"".join(requests))
    received = b""
    while len(normalized(received)) < len(expected):
        chunk = await asyncio.wait_for(reader.read(65536), 10)
        if not chunk:
            break
        received += chunk
    try:
        # A closed connection reads its end at once; an open one sends nothing more.
        still_open = await asyncio.wait_for(reader.read(1), 0.3) != b""
    except TimeoutError:
        still_open = True
    writer.close()
    return normalized(received), still_open


def get(path: str, version: str = "1.1", extra: str = "") -> bytes:
    return f"GET {path} HTTP/{version}\r\nHost: x\r\n{extra}\r\n".encode()


def sent(status: str, body: bytes, *headers: str, connection: str = "") -> bytes:
    lines = [f"HTTP/1.1 {status}", *headers, "Date: D", "Server: S"]
    if connection:
        lines.append(f"Connection: {connection}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


JSON = "Content-Type: application/json"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/ok", sent("200 OK", b'{"a":1}', JSON, "Content-Length: 7")),
        ("/created", sent("201 Created", b"{}", JSON, "Content-Length: 2")),
        (
            "/text",
            sent("200 OK", b"ok", "Content-Type: text/plain; charset=utf-8", "Content-Length: 2"),
        ),
        ("/missing", sent("404 Not Found", b'{"kind":"Status"}', JSON, "Content-Length: 17")),
        (
            "/warned",
            sent("200 OK", b"{}", 'Warning: 299 - "careful"', JSON, "Content-Length: 2"),
        ),
        ("/tagged", sent("200 OK", b"{}", 'ETag: "abc"', JSON, "Content-Length: 2")),
        ("/unchanged", sent("304 Not Modified", b"", 'ETag: "abc"')),
        ("/empty", sent("200 OK", b"", JSON, "Content-Length: 0")),
        ("/unusual", sent("599 ", b"x", JSON, "Content-Length: 1")),
    ],
)
async def test_responses_keep_the_connection(port: int, path: str, expected: bytes) -> None:
    assert await exchange(port, expected, get(path)) == (expected, True)


async def test_requests_on_one_connection_are_answered_in_turn(port: int) -> None:
    post = b"POST /created HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
    expected = (
        sent("200 OK", b'{"a":1}', JSON, "Content-Length: 7")
        + sent("201 Created", b"{}", JSON, "Content-Length: 2")
        + sent("404 Not Found", b'{"kind":"Status"}', JSON, "Content-Length: 17")
    )
    assert await exchange(port, expected, get("/ok"), post, get("/missing")) == (expected, True)


async def test_a_client_that_closes_gets_connection_close(port: int) -> None:
    expected = sent("200 OK", b'{"a":1}', JSON, "Content-Length: 7", connection="close")
    assert await exchange(port, expected, get("/ok", extra="Connection: close\r\n")) == (
        expected,
        False,
    )


async def test_head_and_http_1_0_are_answered_as_aiohttp_does(port: int) -> None:
    head = b"HEAD /ok HTTP/1.1\r\nHost: x\r\n\r\n"
    headers_only = sent("200 OK", b"", JSON, "Content-Length: 7")
    assert await exchange(port, headers_only, head) == (headers_only, True)
    old = sent("200 OK", b'{"a":1}', JSON, "Content-Length: 7").replace(b"HTTP/1.1", b"HTTP/1.0")
    assert await exchange(port, old, get("/ok", "1.0")) == (old, False)
    kept = sent("200 OK", b'{"a":1}', JSON, "Content-Length: 7", connection="keep-alive")
    kept = kept.replace(b"HTTP/1.1", b"HTTP/1.0")
    assert await exchange(port, kept, get("/ok", "1.0", "Connection: keep-alive\r\n")) == (
        kept,
        True,
    )
