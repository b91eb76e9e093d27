"""Running probe and lifecycle-hook actions against a container: exec (through CRI),
httpGet, tcpSocket, grpc (the standard health service) and sleep.

Each action returns a `HandlerResult`: success, failure or error, with the output kubelet
shows in events ("Liveness probe failed: HTTP probe failed with statuscode: 500").
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

from timonel.agent.runtime.cri import CriClient, CriError, DeadlineExceeded, NotFound
from timonel.agent.runtime.grpcwire import GrpcChannel, RpcError, StatusCode

SUCCESS: Final = "success"
FAILURE: Final = "failure"
ERROR: Final = "error"
WARNING: Final = "warning"

USER_AGENT: Final = "kube-probe/1.32"
MAX_BODY: Final = 10 * 1024
MAX_REDIRECTS: Final = 10
GRPC_SERVING: Final = 1
GRPC_STATUS_NAMES: Final = {0: "UNKNOWN", 1: "SERVING", 2: "NOT_SERVING", 3: "SERVICE_UNKNOWN"}


@dataclass(frozen=True)
class HandlerResult:
    result: str
    output: str = ""


@dataclass(frozen=True)
class Target:
    """Where the container's network endpoints are, and how to exec into it."""

    cri: Callable[[], CriClient]
    container_id: str
    pod_ip: str
    container: Mapping[str, Any]


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def resolve_port(port: Any, container: Mapping[str, Any]) -> int:
    """A probe's port: a number, or the name of one of the container's ports."""
    if isinstance(port, int):
        return port
    text = str(port)
    if text.isdigit():
        return int(text)
    for declared in container.get("ports") or []:
        declared = _dict(declared)
        if declared.get("name") == text:
            return int(declared.get("containerPort") or 0)
    raise ValueError(f"couldn't find port {text!r} in container")


async def run_action(action: Mapping[str, Any], target: Target, timeout: float) -> HandlerResult:
    """Run one probe or hook action (exec, httpGet, tcpSocket, grpc, sleep)."""
    try:
        if "exec" in action:
            return await run_exec(
                target, [str(c) for c in _dict(action["exec"]).get("command") or []], timeout
            )
        if "httpGet" in action:
            return await run_http(_dict(action["httpGet"]), target, timeout)
        if "tcpSocket" in action:
            spec = _dict(action["tcpSocket"])
            host = str(spec.get("host") or target.pod_ip)
            return await run_tcp(host, resolve_port(spec.get("port"), target.container), timeout)
        if "grpc" in action:
            spec = _dict(action["grpc"])
            return await run_grpc(
                target.pod_ip, int(spec.get("port") or 0), str(spec.get("service") or ""), timeout
            )
        if "sleep" in action:
            await asyncio.sleep(float(_dict(action["sleep"]).get("seconds") or 0))
            return HandlerResult(SUCCESS)
    except ValueError as error:
        return HandlerResult(ERROR, str(error))
    return HandlerResult(ERROR, "missing probe handler")


async def run_exec(target: Target, command: list[str], timeout: float) -> HandlerResult:
    try:
        result = await target.cri().exec_sync(
            target.container_id, command, timeout_seconds=max(1, int(timeout))
        )
    except DeadlineExceeded:
        return HandlerResult(FAILURE, f"command {' '.join(command)!r} timed out")
    except NotFound as error:
        return HandlerResult(ERROR, error.details)
    except CriError as error:
        return HandlerResult(ERROR, error.details)
    output = (result.stdout + result.stderr).decode(errors="replace")
    return HandlerResult(SUCCESS if result.exit_code == 0 else FAILURE, output)


def _format_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


async def run_tcp(host: str, port: int, timeout: float) -> HandlerResult:
    address = f"{_format_host(host)}:{port}"
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except TimeoutError:
        return HandlerResult(FAILURE, f"dial tcp {address}: i/o timeout")
    except ConnectionRefusedError:
        return HandlerResult(FAILURE, f"dial tcp {address}: connect: connection refused")
    except OSError as error:
        return HandlerResult(FAILURE, f"dial tcp {address}: connect: {error.strerror or error}")
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return HandlerResult(SUCCESS)


_PROBE_TLS: ssl.SSLContext | None = None


def _probe_tls_context() -> ssl.SSLContext:
    """TLS for HTTPS probes, which verify nothing (as kubelet's): one context for all of
    them, without the system CA bundle a default context would load each time."""
    global _PROBE_TLS
    if _PROBE_TLS is None:
        _PROBE_TLS = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        _PROBE_TLS.check_hostname = False
        _PROBE_TLS.verify_mode = ssl.CERT_NONE
    return _PROBE_TLS


async def _http_once(
    scheme: str, host: str, port: int, path: str, headers: Mapping[str, str], timeout: float
) -> tuple[int, dict[str, str], bytes]:
    context = _probe_tls_context() if scheme == "https" else None
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(host, port, ssl=context), timeout
    )
    try:
        lines = [f"GET {path} HTTP/1.1"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        lines.append("Connection: close")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        await writer.drain()

        async def read_response() -> tuple[int, dict[str, str], bytes]:
            status_line = await reader.readline()
            parts = status_line.decode("latin-1").split(" ", 2)
            if len(parts) < 2 or not parts[1].isdigit():
                raise ValueError(f"malformed HTTP response {status_line[:80]!r}")
            response_headers: dict[str, str] = {}
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b"\n", b""):
                    break
                name, _, value = line.decode("latin-1").partition(":")
                response_headers[name.strip().lower()] = value.strip()
            body = await reader.read(MAX_BODY)
            return int(parts[1]), response_headers, body

        return await asyncio.wait_for(read_response(), timeout)
    finally:
        writer.close()
        with contextlib.suppress(OSError, ssl.SSLError):
            await writer.wait_closed()


async def run_http(spec: Mapping[str, Any], target: Target, timeout: float) -> HandlerResult:
    scheme = str(spec.get("scheme") or "HTTP").lower()
    host = str(spec.get("host") or target.pod_ip)
    port = resolve_port(spec.get("port"), target.container)
    path = str(spec.get("path") or "/")
    if not path.startswith("/"):
        path = "/" + path
    headers = {"User-Agent": USER_AGENT, "Accept": "*/*"}
    for header in spec.get("httpHeaders") or []:
        header = _dict(header)
        if header.get("name"):
            headers[str(header["name"])] = str(header.get("value", ""))
    headers.setdefault("Host", f"{_format_host(host)}:{port}")
    if "host" in {k.lower() for k in headers if k != "Host"}:
        headers.pop("Host")
    url = f"{scheme}://{_format_host(host)}:{port}{path}"
    try:
        for _ in range(MAX_REDIRECTS + 1):
            status, response_headers, body = await _http_once(
                scheme, host, port, path, headers, timeout
            )
            location = response_headers.get("location")
            if 300 <= status < 400 and location:
                parts = urlsplit(location)
                if parts.hostname and (parts.hostname != host or (parts.port or port) != port):
                    return HandlerResult(
                        WARNING,
                        f"Probe terminated redirects, Response body: {body.decode(errors='replace')}",
                    )
                path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
                continue
            break
    except TimeoutError:
        return HandlerResult(
            FAILURE,
            f'Get "{url}": context deadline exceeded (Client.Timeout exceeded while awaiting headers)',
        )
    except ConnectionRefusedError:
        return HandlerResult(
            FAILURE,
            f'Get "{url}": dial tcp {_format_host(host)}:{port}: connect: connection refused',
        )
    except (OSError, ValueError, ssl.SSLError) as error:
        return HandlerResult(FAILURE, f'Get "{url}": {error}')
    if 200 <= status < 400:
        return HandlerResult(SUCCESS, body.decode(errors="replace"))
    return HandlerResult(FAILURE, f"HTTP probe failed with statuscode: {status}")


def _encode_health_request(service: str) -> bytes:
    data = service.encode()
    if not data:
        return b""
    length = len(data)
    varint = bytearray()
    while True:
        byte = length & 0x7F
        length >>= 7
        if length:
            varint.append(byte | 0x80)
        else:
            varint.append(byte)
            break
    return b"\x0a" + bytes(varint) + data


def _decode_health_status(data: bytes) -> int:
    """The `status` field (1, varint) of a HealthCheckResponse."""
    index = 0
    while index < len(data):
        key = data[index]
        index += 1
        value = 0
        shift = 0
        while index < len(data):
            byte = data[index]
            index += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        if key == 0x08:
            return value
    return 0


async def run_grpc(host: str, port: int, service: str, timeout: float) -> HandlerResult:
    address = f"{_format_host(host)}:{port}"
    channel = GrpcChannel(address)
    try:
        answer = await channel.unary(
            "/grpc.health.v1.Health/Check", _encode_health_request(service), timeout
        )
    except RpcError as error:
        if error.code == StatusCode.DEADLINE_EXCEEDED:
            return HandlerResult(
                FAILURE, f"timeout: health rpc did not complete within {timeout:g}s"
            )
        if error.code == StatusCode.UNAVAILABLE:
            return HandlerResult(
                FAILURE,
                f'failed to connect service "{address}" within {timeout:g}s: {error.details}',
            )
        return HandlerResult(
            FAILURE, f"health rpc probe failed: {error.code.name}: {error.details}"
        )
    finally:
        await channel.close()
    status = _decode_health_status(answer)
    if status == GRPC_SERVING:
        return HandlerResult(SUCCESS)
    return HandlerResult(
        FAILURE,
        f'service unhealthy (responded with "{GRPC_STATUS_NAMES.get(int(status), status)}")',
    )
