"""The WebSocket channel protocol of exec and attach (`v4.channel.k8s.io`, `v5.channel.k8s.io`).

Every message is a binary frame whose first byte names the channel:

    0 stdin    client → server
    1 stdout   server → client
    2 stderr   server → client (absent with a TTY)
    3 error    server → client: a metav1.Status JSON, once, when the command ended
    4 resize   client → server: {"Width":W,"Height":H}
    255 close  v5 only: [255, channel] half-closes that channel (the client's stdin EOF)

kubectl 1.32 offers only v5 and falls back to SPDY when a server does not pick it; the
Python client offers v5 then v4. The port-forward tunnel (`SPDY/3.1+portforward.k8s.io`)
carries raw SPDY bytes in binary messages, with no channel byte.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

import orjson

V5: Final = "v5.channel.k8s.io"
V4: Final = "v4.channel.k8s.io"
PORT_FORWARD_TUNNEL: Final = "SPDY/3.1+portforward.k8s.io"
PORT_FORWARD: Final = "portforward.k8s.io"

STDIN: Final = 0
STDOUT: Final = 1
STDERR: Final = 2
ERROR: Final = 3
RESIZE: Final = 4
CLOSE: Final = 255


def offered_protocols(header_values: Iterable[str]) -> list[str]:
    """The subprotocols of Sec-WebSocket-Protocol headers, in the client's order."""
    offered: list[str] = []
    for value in header_values:
        offered += [item.strip() for item in value.split(",") if item.strip()]
    return offered


def choose_protocol(offered: Iterable[str], supported: Iterable[str]) -> str | None:
    """The first protocol the client offered that the server supports."""
    wanted = list(supported)
    return next((protocol for protocol in offered if protocol in wanted), None)


def frame(channel: int, data: bytes) -> bytes:
    return bytes([channel]) + data


def parse(message: bytes) -> tuple[int, bytes]:
    """(channel, payload) of a binary message; an empty message is channel -1."""
    if not message:
        return -1, b""
    return message[0], message[1:]


def close_message(channel: int) -> bytes:
    return bytes([CLOSE, channel])


def closed_channel(payload: bytes) -> int | None:
    """The channel a v5 close message (already stripped of its 255) closes."""
    return payload[0] if payload else None


def parse_resize(payload: bytes) -> tuple[int, int] | None:
    """(width, height) of a resize message, or None if it is not one."""
    try:
        size = orjson.loads(payload)
        width, height = int(size["Width"]), int(size["Height"])
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None
    if width < 0 or height < 0 or width > 0xFFFF or height > 0xFFFF:
        return None
    return width, height


def success_status() -> bytes:
    return orjson.dumps({"metadata": {}, "status": "Success"})


def failure_status(message: str, reason: str = "InternalError", code: int = 500) -> bytes:
    status: dict[str, Any] = {
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    return orjson.dumps(status)


def exit_code_status(code: int, command: str = "") -> bytes:
    """What the error channel carries when the command exited non-zero."""
    what = f"error executing command [{command}], exit code {code}" if command else str(code)
    return orjson.dumps(
        {
            "metadata": {},
            "status": "Failure",
            "message": f"command terminated with non-zero exit code: {what}",
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
        }
    )


def exit_code_of(status: bytes) -> int | None:
    """The exit code an error-channel Status reports: 0 for Success, the ExitCode cause
    for NonZeroExitCode, None when it says neither (another failure, or no JSON)."""
    try:
        value = orjson.loads(status) if status else {"status": "Success"}
    except orjson.JSONDecodeError:
        return None
    if not isinstance(value, dict):
        return None
    if value.get("status") == "Success":
        return 0
    if value.get("reason") != "NonZeroExitCode":
        return None
    for cause in (value.get("details") or {}).get("causes") or []:
        if isinstance(cause, dict) and cause.get("reason") == "ExitCode":
            try:
                return int(cause.get("message", ""))
            except ValueError:
                return None
    return None
