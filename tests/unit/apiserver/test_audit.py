"""Audit policy: parsing, which rule decides a request's level, and the events written."""

from __future__ import annotations

import asyncio
import datetime
import io
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from multidict import CIMultiDict, MultiDict

from timonel.api.user import UserInfo
from timonel.apiserver.audit import AuditLog, PolicyError, parse_policy
from timonel.apiserver.context import ApiRequest, ApiResponse
from timonel.apiserver.requestinfo import parse_request_info

ADMIN = UserInfo("system:admin", ("system:masters", "system:authenticated"))
ROBOT = UserInfo("system:serviceaccount:a:robot", ("system:serviceaccounts",))


def policy(*rules: dict[str, Any], **extra: Any) -> Any:
    return parse_policy(
        {"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "rules": list(rules), **extra}
    )


@pytest.mark.parametrize(
    ("rule", "user", "method", "path", "matches"),
    [
        ({"level": "Metadata"}, ADMIN, "GET", "/api/v1/pods", True),
        ({"level": "Metadata", "users": ["system:admin"]}, ROBOT, "GET", "/api/v1/pods", False),
        (
            {"level": "Metadata", "userGroups": ["system:serviceaccounts"]},
            ROBOT,
            "GET",
            "/api/v1/pods",
            True,
        ),
        ({"level": "Metadata", "verbs": ["create"]}, ADMIN, "GET", "/api/v1/pods", False),
        ({"level": "Metadata", "verbs": ["list"]}, ADMIN, "GET", "/api/v1/pods", True),
        ({"level": "Metadata", "verbs": ["watch"]}, ADMIN, "GET", "/api/v1/pods?watch=1", True),
        (
            {"level": "Metadata", "resources": [{"group": "", "resources": ["pods"]}]},
            ADMIN,
            "GET",
            "/api/v1/namespaces/a/pods/p/log",
            False,
        ),
        (
            {"level": "Metadata", "resources": [{"group": "", "resources": ["pods/log"]}]},
            ADMIN,
            "GET",
            "/api/v1/namespaces/a/pods/p/log",
            True,
        ),
        (
            {"level": "Metadata", "resources": [{"group": "", "resources": ["pods/*"]}]},
            ADMIN,
            "GET",
            "/api/v1/namespaces/a/pods/p/status",
            True,
        ),
        (
            {"level": "Metadata", "resources": [{"group": "apps"}]},
            ADMIN,
            "GET",
            "/apis/apps/v1/deployments",
            True,
        ),
        (
            {"level": "Metadata", "resources": [{"group": "apps"}]},
            ADMIN,
            "GET",
            "/api/v1/pods",
            False,
        ),
        (
            {
                "level": "Metadata",
                "resources": [{"group": "", "resources": ["pods"], "resourceNames": ["p"]}],
            },
            ADMIN,
            "GET",
            "/api/v1/namespaces/a/pods/p",
            True,
        ),
        (
            {"level": "Metadata", "namespaces": ["a"]},
            ADMIN,
            "GET",
            "/api/v1/namespaces/a/pods",
            True,
        ),
        (
            {"level": "Metadata", "namespaces": ["a"]},
            ADMIN,
            "GET",
            "/api/v1/namespaces/b/pods",
            False,
        ),
        # Resource rules never match a non-resource request, and the reverse.
        ({"level": "Metadata", "namespaces": ["a"]}, ADMIN, "GET", "/healthz", False),
        (
            {"level": "Metadata", "nonResourceURLs": ["/healthz*"]},
            ADMIN,
            "GET",
            "/healthz/ping",
            True,
        ),
        (
            {"level": "Metadata", "nonResourceURLs": ["/healthz*"]},
            ADMIN,
            "GET",
            "/api/v1/pods",
            False,
        ),
    ],
)
def test_rule_matching(
    rule: dict[str, Any], user: UserInfo, method: str, path: str, matches: bool
) -> None:
    bare, _, query = path.partition("?")
    info = parse_request_info(method, bare, "1" if "watch" in query else None)
    level, _ = policy(rule).decide(user, info)
    assert level == ("Metadata" if matches else "None")


def test_first_matching_rule_wins_and_stages_combine() -> None:
    decided = policy(
        {"level": "None", "users": ["system:admin"]},
        {"level": "RequestResponse", "omitStages": ["ResponseStarted"]},
        omitStages=["RequestReceived"],
    )
    info = parse_request_info("GET", "/api/v1/pods", None)
    assert decided.decide(ADMIN, info)[0] == "None"
    level, omit = decided.decide(ROBOT, info)
    assert level == "RequestResponse"
    assert omit == {"RequestReceived", "ResponseStarted"}


@pytest.mark.parametrize(
    "document",
    [
        {"apiVersion": "v1", "kind": "Policy"},
        {"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "rules": [{"level": "Everything"}]},
        {"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "omitStages": ["Later"]},
        {
            "apiVersion": "audit.k8s.io/v1",
            "kind": "Policy",
            "rules": [{"level": "Metadata", "nonResourceURLs": ["/x"], "namespaces": ["a"]}],
        },
    ],
)
def test_invalid_policies(document: dict[str, Any]) -> None:
    with pytest.raises(PolicyError):
        parse_policy(document)


def request(method: str, path: str, body: bytes = b"", user: UserInfo = ADMIN) -> ApiRequest:
    headers = CIMultiDict({"User-Agent": "test/1", "Content-Type": "application/json"})
    return ApiRequest(method, path, MultiDict(), headers, body, user=user, remote="10.0.0.9")


async def written(audit: AuditLog, sink: io.BytesIO) -> list[dict[str, Any]]:
    audit.close()
    return [orjson.loads(line) for line in sink.getvalue().splitlines()]


class Sink(io.BytesIO):
    def close(self) -> None:  # keep the contents readable after AuditLog.close()
        pass


async def test_events_for_a_create_at_request_response() -> None:
    sink = Sink()
    audit = AuditLog(policy({"level": "RequestResponse"}), sink)
    body = orjson.dumps({"kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "b"}})
    api_request = request("POST", "/api/v1/namespaces/a/configmaps", body)
    api_request.authorization = (True, "")
    info = parse_request_info("POST", api_request.path, None)
    received = datetime.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=datetime.UTC)
    response = ApiResponse(201, orjson.dumps({"kind": "ConfigMap", "metadata": {"name": "c"}}))
    assert audit.record(api_request, info, response, received) is response
    events = await written(audit, sink)
    assert [e["stage"] for e in events] == ["RequestReceived", "ResponseComplete"]
    assert events[0]["auditID"] == events[1]["auditID"]
    assert "requestObject" not in events[0]
    complete = events[1]
    assert complete["requestReceivedTimestamp"] == "2026-01-02T03:04:05.678901Z"
    assert complete["objectRef"] == {
        "resource": "configmaps",
        "namespace": "a",
        "name": "c",
        "apiVersion": "v1",
    }
    assert complete["sourceIPs"] == ["10.0.0.9"]
    assert complete["requestObject"]["data"] == {"a": "b"}
    assert complete["responseObject"] == {"kind": "ConfigMap", "metadata": {"name": "c"}}
    assert complete["responseStatus"] == {"metadata": {}, "code": 201}
    assert complete["annotations"] == {
        "authorization.k8s.io/decision": "allow",
        "authorization.k8s.io/reason": "",
    }


async def test_forbidden_at_metadata_and_impersonation() -> None:
    sink = Sink()
    audit = AuditLog(policy({"level": "Metadata", "omitStages": ["RequestReceived"]}), sink)
    api_request = request("GET", "/api/v1/namespaces/a/pods", user=ROBOT)
    api_request.impersonator = ADMIN
    api_request.authorization = (False, "")
    status = {"kind": "Status", "status": "Failure", "message": "no", "reason": "Forbidden"}
    response = ApiResponse(403, orjson.dumps({**status, "code": 403}))
    info = parse_request_info("GET", api_request.path, None)
    audit.record(api_request, info, response, datetime.datetime.now(datetime.UTC))
    (event,) = await written(audit, sink)
    assert event["user"]["username"] == "system:admin"
    assert event["impersonatedUser"]["username"] == ROBOT.name
    assert event["responseStatus"] == {
        "metadata": {},
        "code": 403,
        "status": "Failure",
        "message": "no",
        "reason": "Forbidden",
    }
    assert event["annotations"]["authorization.k8s.io/decision"] == "forbid"
    assert "responseObject" not in event


async def test_watch_completes_when_its_stream_ends() -> None:
    sink = Sink()
    audit = AuditLog(policy({"level": "Metadata"}), sink)
    api_request = request("GET", "/api/v1/pods")
    info = parse_request_info("GET", api_request.path, "true")

    async def chunks() -> AsyncIterator[bytes]:
        yield b"one"
        await asyncio.sleep(0)
        yield b"two"

    response = ApiResponse(200, stream=chunks())
    audit.record(api_request, info, response, datetime.datetime.now(datetime.UTC))
    assert response.stream is not None
    assert [chunk async for chunk in response.stream] == [b"one", b"two"]
    events = await written(audit, sink)
    assert [e["stage"] for e in events] == [
        "RequestReceived",
        "ResponseStarted",
        "ResponseComplete",
    ]
    assert events[2]["verb"] == "watch"


async def test_level_none_writes_nothing() -> None:
    sink = Sink()
    audit = AuditLog(policy({"level": "None"}), sink)
    api_request = request("GET", "/api/v1/pods")
    info = parse_request_info("GET", api_request.path, None)
    audit.record(api_request, info, ApiResponse(200, b"{}"), datetime.datetime.now(datetime.UTC))
    assert await written(audit, sink) == []
