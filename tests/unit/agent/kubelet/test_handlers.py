"""Probe and hook actions against real local servers: httpGet, tcpSocket, grpc."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
import grpc.aio
import pytest
from aiohttp import web

from timonel.agent.kubelet.handlers import (
    FAILURE,
    SUCCESS,
    WARNING,
    Target,
    resolve_port,
    run_action,
    run_grpc,
    run_tcp,
)


def target(port: int) -> Target:
    def no_cri() -> Any:
        raise AssertionError("no exec expected")

    return Target(no_cri, "c1", "127.0.0.1", {"ports": [{"name": "http", "containerPort": port}]})


@pytest.fixture
async def http_server() -> AsyncIterator[tuple[int, list[dict[str, str]]]]:
    seen: list[dict[str, str]] = []

    async def handle(request: web.Request) -> web.Response:
        seen.append(dict(request.headers))
        if request.path == "/ok":
            return web.Response(text="fine")
        if request.path == "/moved":
            raise web.HTTPFound("/ok")
        if request.path == "/away":
            raise web.HTTPFound("http://example.invalid/elsewhere")
        return web.Response(status=500)

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield port, seen
    await runner.cleanup()


async def test_http_get_success_failure_and_redirects(
    http_server: tuple[int, list[dict[str, str]]],
) -> None:
    port, seen = http_server
    ok = await run_action(
        {
            "httpGet": {
                "path": "/ok",
                "port": "http",
                "httpHeaders": [{"name": "X-Probe", "value": "1"}],
            }
        },
        target(port),
        1,
    )
    assert (ok.result, ok.output) == (SUCCESS, "fine")
    assert seen[-1]["User-Agent"] == "kube-probe/1.32" and seen[-1]["X-Probe"] == "1"
    failed = await run_action({"httpGet": {"path": "/broken", "port": port}}, target(port), 1)
    assert (failed.result, failed.output) == (FAILURE, "HTTP probe failed with statuscode: 500")
    moved = await run_action({"httpGet": {"path": "/moved", "port": port}}, target(port), 1)
    assert moved.result == SUCCESS
    away = await run_action({"httpGet": {"path": "/away", "port": port}}, target(port), 1)
    assert away.result == WARNING


async def test_tcp_and_refused_connections(http_server: tuple[int, list[dict[str, str]]]) -> None:
    port, _ = http_server
    assert (await run_tcp("127.0.0.1", port, 1)).result == SUCCESS
    closed = port + 1 if port < 65535 else port - 1
    refused = await run_tcp("127.0.0.1", closed, 1)
    assert refused.result == FAILURE and "connection refused" in refused.output
    http_refused = await run_action({"httpGet": {"path": "/", "port": closed}}, target(port), 1)
    assert http_refused.output.endswith("connect: connection refused")


def test_named_ports_resolve_to_container_ports() -> None:
    container = {"ports": [{"name": "web", "containerPort": 8080}]}
    assert resolve_port("web", container) == 8080
    assert resolve_port(80, container) == 80
    with pytest.raises(ValueError):
        resolve_port("nope", container)


async def test_grpc_health_checks() -> None:
    statuses = {"": 1, "db": 2}

    def check(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
        service = request[2:].decode() if request else ""
        return bytes([0x08, statuses.get(service, 3)])

    handler = grpc.method_handlers_generic_handler(
        "grpc.health.v1.Health",
        {"Check": grpc.unary_unary_rpc_method_handler(check)},
    )
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        assert (await run_grpc("127.0.0.1", port, "", 2)).result == SUCCESS
        unhealthy = await run_grpc("127.0.0.1", port, "db", 2)
        assert (unhealthy.result, unhealthy.output) == (
            FAILURE,
            'service unhealthy (responded with "NOT_SERVING")',
        )
    finally:
        await server.stop(None)
    refused = await run_grpc("127.0.0.1", port, "", 2)
    assert refused.result == FAILURE
    assert refused.output.startswith(f'failed to connect service "127.0.0.1:{port}" within 2s')
