"""One API request as the handlers see it, and the response they give back.

`ApiRequest` and `ApiResponse` are the seam between transports and the API: the HTTPS
listener builds them from aiohttp requests, the in-process transport builds them
directly, and both go through the same `ApiServer.handle` (authentication included).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from multidict import CIMultiDict, CIMultiDictProxy, MultiMapping

from timonel.api import errors
from timonel.api.user import UserInfo
from timonel.apiserver.negotiation import JSON, encode

Query = MultiMapping[str]
Headers = CIMultiDict[str] | CIMultiDictProxy[str]


@dataclass
class ApiRequest:
    method: str
    path: str
    query: Query
    headers: Headers
    body: bytes = b""
    # What the TLS layer verified about the client certificate (ssl.getpeercert()).
    peercert: dict[str, Any] | None = None
    # The client's address, for the audit log's sourceIPs.
    remote: str = ""
    user: UserInfo | None = None
    # Who authenticated, when `user` is someone they impersonate.
    impersonator: UserInfo | None = None
    # The authorizer's (allowed, reason), for the audit log.
    authorization: tuple[bool, str] | None = None
    # Warning texts to return as `Warning: 299 - "..."` headers.
    warnings: list[str] = field(default_factory=list)
    # Whether the client has gone (set by the HTTPS listener), for long streams that may
    # sit idle (a followed log) and would otherwise notice only at their next write.
    is_disconnected: Callable[[], bool] = lambda: False

    def param(self, name: str, default: str = "") -> str:
        return self.query.get(name, default)

    def flag(self, name: str) -> bool:
        return self.query.get(name, "") in ("1", "true", "True")

    def int_param(self, name: str) -> int | None:
        value = self.query.get(name)
        if value is None or value == "":
            return None
        try:
            return int(value)
        except ValueError:
            raise errors.bad_request(
                f"invalid value for {name}: {value!r} is not an integer"
            ) from None


@dataclass
class ApiResponse:
    status: int
    body: bytes = b""
    content_type: str = JSON
    headers: Mapping[str, str] = field(default_factory=dict)
    # A streamed body (watch): chunks written as they come.
    stream: AsyncIterator[bytes] | None = None
    # The same watch as decoded (type, object) events, for callers in this process that
    # would only parse `stream` again. Take one of the two, never both. The objects are
    # shared with the watch cache and every other watcher: read-only.
    events: AsyncIterator[tuple[str, Any]] | None = None
    # Whether `stream`'s next chunk is at hand (taking it would not wait), so that a
    # listener may send a burst of chunks together.
    stream_ready: Callable[[], bool] | None = None


def json_response(value: Any, status: int = 200, content_type: str = JSON) -> ApiResponse:
    return ApiResponse(status, encode(value), content_type)


def status_response(error: errors.StatusError) -> ApiResponse:
    return ApiResponse(error.code, encode(error.status()))


def success_status(details: dict[str, Any] | None = None) -> dict[str, Any]:
    status: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
    }
    if details:
        status["details"] = details
    return status
