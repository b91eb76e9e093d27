"""Proxied HTTP upgrades: heads, header forwarding, switching protocols and splicing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web
from multidict import CIMultiDict

from timonel.streaming import upgrade

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def test_response_heads_parse_with_repeated_headers() -> None:
    head = upgrade.parse_response_head(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: SPDY/3.1\r\nConnection: Upgrade\r\n"
        b"X-Stream-Protocol-Version: v4.channel.k8s.io\r\nDate: today\r\nSet: a\r\nSet: b"
    )
    assert (head.status, head.reason) == (101, "Switching Protocols")
    assert head.get("upgrade") == "SPDY/3.1"
    assert head.get_all("set") == ["a", "b"]
    assert ("Date", "today") not in head.switched_headers()
    assert ("X-Stream-Protocol-Version", "v4.channel.k8s.io") in head.switched_headers()
    with pytest.raises(upgrade.UpgradeError):
        upgrade.parse_response_head(b"SSH-2.0-OpenSSH")


def test_request_heads_refuse_header_injection() -> None:
    head = upgrade.render_request_head("POST", "/exec/x?command=ls", [("Upgrade", "SPDY/3.1")])
    assert head == b"POST /exec/x?command=ls HTTP/1.1\r\nUpgrade: SPDY/3.1\r\n\r\n"
    with pytest.raises(ValueError):
        upgrade.render_request_head("GET", "/", [("X", "a\r\nEvil: 1")])


def test_only_upgrade_headers_travel_to_the_next_hop() -> None:
    headers = CIMultiDict(
        [
            ("Authorization", "Bearer secret"),
            ("Connection", "Upgrade"),
            ("Upgrade", "SPDY/3.1"),
            ("X-Stream-Protocol-Version", "v5.channel.k8s.io"),
            ("X-Stream-Protocol-Version", "v4.channel.k8s.io"),
            ("Sec-WebSocket-Protocol", "v5.channel.k8s.io"),
        ]
    )
    assert upgrade.is_upgrade_request(headers)
    assert upgrade.upgrade_request_headers(headers) == [
        ("Upgrade", "SPDY/3.1"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Protocol", "v5.channel.k8s.io"),
        ("X-Stream-Protocol-Version", "v5.channel.k8s.io"),
        ("X-Stream-Protocol-Version", "v4.channel.k8s.io"),
    ]
    assert not upgrade.is_upgrade_request({"Connection": "keep-alive", "Upgrade": "websocket"})
    assert upgrade.is_upgrade_request({"Connection": "keep-alive, Upgrade", "Upgrade": "tcp"})


async def _serve(handler: Handler) -> tuple[web.AppRunner, int]:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, port


async def _shouting_backend(request: web.Request) -> web.StreamResponse:
    """Answers /refuse with 403; otherwise switches protocols and upper-cases bytes."""
    if request.path == "/refuse":
        return web.Response(status=403, text="no streams for you")
    response, connection = await upgrade.switch_protocols(
        request,
        [
            ("Connection", "Upgrade"),
            ("Upgrade", "SPDY/3.1"),
            ("X-Stream-Protocol-Version", request.headers.getall("X-Stream-Protocol-Version")[-1]),
        ],
    )
    while data := await connection.read():
        await connection.write(data.upper())
    return response


@pytest.fixture
async def proxied() -> AsyncIterator[int]:
    """A proxy hop in front of the shouting backend; yields the proxy's port."""
    backend, backend_port = await _serve(_shouting_backend)

    async def proxy(request: web.Request) -> web.StreamResponse:
        upstream = await upgrade.open_upgrade(
            "127.0.0.1",
            backend_port,
            method=request.method,
            target=request.path_qs,
            headers=upgrade.upgrade_request_headers(request.headers),
        )
        if upstream.head.status != 101:
            return web.Response(status=upstream.head.status, body=upstream.body)
        response, client = await upgrade.switch_protocols(request, upstream.head.switched_headers())
        await upgrade.splice(client, upstream.stream)
        return response

    front, front_port = await _serve(proxy)
    try:
        yield front_port
    finally:
        await front.cleanup()
        await backend.cleanup()


async def _request(port: int, path: str) -> tuple[upgrade.ResponseHead, upgrade.SocketStream]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        upgrade.render_request_head(
            "POST",
            path,
            [
                ("Host", "x"),
                ("Connection", "Upgrade"),
                ("Upgrade", "SPDY/3.1"),
                ("X-Stream-Protocol-Version", "v5.channel.k8s.io"),
                ("X-Stream-Protocol-Version", "v4.channel.k8s.io"),
            ],
        )
    )
    raw = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    return upgrade.parse_response_head(raw[:-4]), upgrade.SocketStream(reader, writer)


async def test_a_switched_connection_is_spliced_end_to_end(proxied: int) -> None:
    head, stream = await _request(proxied, "/exec/token")
    try:
        assert head.status == 101
        assert head.get("X-Stream-Protocol-Version") == "v4.channel.k8s.io"
        for word in (b"hello", b"x" * 200_000):
            await stream.write(word)
            received = b""
            while len(received) < len(word):
                received += await asyncio.wait_for(stream.read(), 5)
            assert received == word.upper()
    finally:
        await stream.close()


async def test_a_refusal_comes_back_with_its_status_and_body(proxied: int) -> None:
    head, stream = await _request(proxied, "/refuse")
    try:
        assert head.status == 403
        length = int(head.get("Content-Length"))
        assert await asyncio.wait_for(stream.reader.readexactly(length), 5) == b"no streams for you"
    finally:
        await stream.close()


async def test_an_unreachable_hop_is_an_upgrade_error() -> None:
    runner, port = await _serve(_shouting_backend)
    await runner.cleanup()
    with pytest.raises(upgrade.UpgradeError, match=r"dial tcp 127\.0\.0\.1"):
        await upgrade.open_upgrade("127.0.0.1", port, method="GET", target="/", headers=[])
