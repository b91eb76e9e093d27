"""Audit logging: one audit.k8s.io/v1 Event per request stage, as JSON lines, as
kube-apiserver's `--audit-log-path` and `--audit-policy-file` do.

The policy (audit.k8s.io/v1 Policy) picks a level per request from its first matching
rule: None (not logged), Metadata (who did what to which object, and the outcome),
Request (also the request body), RequestResponse (also the response body). Stages:
RequestReceived, ResponseStarted (watches only, when the stream starts), ResponseComplete
(and Panic is never written: failures are Statuses).

The event loop only assembles small dicts and queues them; a writer thread decodes the
bodies, encodes the lines and writes them, so a slow disk never stalls requests. With no
audit configured the API server holds no `AuditLog` and pays one attribute check.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import queue
import sys
import threading
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final, TypeVar
from urllib.parse import urlencode

import orjson
import yaml

from timonel.api.user import UserInfo
from timonel.apiserver.auditfile import RotatingLog, Rotation
from timonel.apiserver.authorization.rbac import resource_matches, url_matches
from timonel.apiserver.context import ApiRequest, ApiResponse
from timonel.apiserver.negotiation import PROTOBUF, media_type
from timonel.apiserver.requestinfo import RequestInfo

log = logging.getLogger(__name__)

LEVELS: Final = ("None", "Metadata", "Request", "RequestResponse")
STAGES: Final = ("RequestReceived", "ResponseStarted", "ResponseComplete", "Panic")
REQUEST_RECEIVED: Final = "RequestReceived"
RESPONSE_STARTED: Final = "ResponseStarted"
RESPONSE_COMPLETE: Final = "ResponseComplete"
DECISION_ANNOTATION: Final = "authorization.k8s.io/decision"
REASON_ANNOTATION: Final = "authorization.k8s.io/reason"
ANONYMOUS: Final = UserInfo("system:anonymous", ("system:unauthenticated",))


class PolicyError(ValueError):
    pass


@dataclass(frozen=True)
class PolicyRule:
    level: str
    users: frozenset[str] = frozenset()
    user_groups: frozenset[str] = frozenset()
    verbs: frozenset[str] = frozenset()
    # (group, resources, resourceNames)
    resources: tuple[tuple[str, frozenset[str], frozenset[str]], ...] = ()
    namespaces: frozenset[str] | None = None
    non_resource_urls: tuple[str, ...] = ()
    omit_stages: frozenset[str] | None = None

    def matches(self, user: UserInfo, info: RequestInfo) -> bool:
        if self.users and user.name not in self.users:
            return False
        if self.user_groups and not any(g in self.user_groups for g in user.groups):
            return False
        if self.verbs and info.verb not in self.verbs:
            return False
        if self.resources or self.namespaces is not None:
            if not info.is_resource:
                return False
            if self.namespaces is not None and info.namespace not in self.namespaces:
                return False
            if self.resources and not any(
                _group_resource_matches(entry, info) for entry in self.resources
            ):
                return False
        if self.non_resource_urls:
            if info.is_resource:
                return False
            return url_matches(self.non_resource_urls, info.path)
        return True


def _group_resource_matches(
    entry: tuple[str, frozenset[str], frozenset[str]], info: RequestInfo
) -> bool:
    group, resources, names = entry
    if group != "*" and group != info.group:
        return False
    if resources and not (
        resource_matches(resources, info.resource, info.subresource)
        or (info.subresource and f"{info.resource}/*" in resources)
    ):
        return False
    return not names or info.name in names


@dataclass(frozen=True)
class Policy:
    rules: tuple[PolicyRule, ...]
    omit_stages: frozenset[str] = frozenset()

    def decide(self, user: UserInfo, info: RequestInfo) -> tuple[str, frozenset[str]]:
        """(level, stages to leave out) for a request; level None when no rule matches."""
        for rule in self.rules:
            if rule.matches(user, info):
                omit = self.omit_stages | (rule.omit_stages or frozenset())
                return rule.level, omit
        return "None", self.omit_stages


def _strings(value: Any, path: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise PolicyError(f"{path}: must be a list of strings")
    return value


def _stages(value: Any, path: str) -> frozenset[str]:
    stages = _strings(value, path)
    for stage in stages:
        if stage not in STAGES:
            raise PolicyError(f'{path}: Unsupported value: "{stage}"')
    return frozenset(stages)


def parse_policy(document: Any) -> Policy:
    """An audit.k8s.io/v1 Policy from its parsed YAML/JSON."""
    if not isinstance(document, dict):
        raise PolicyError("the audit policy must be an object")
    if document.get("kind") != "Policy" or document.get("apiVersion") not in (
        "audit.k8s.io/v1",
        "audit.k8s.io/v1beta1",
    ):
        raise PolicyError('the audit policy must be kind "Policy" of apiVersion audit.k8s.io/v1')
    rules: list[PolicyRule] = []
    for i, raw in enumerate(document.get("rules") or []):
        path = f"rules[{i}]"
        if not isinstance(raw, dict):
            raise PolicyError(f"{path}: must be an object")
        level = raw.get("level")
        if level not in LEVELS:
            raise PolicyError(f'{path}.level: Unsupported value: "{level}"')
        resources: list[tuple[str, frozenset[str], frozenset[str]]] = []
        for j, entry in enumerate(raw.get("resources") or []):
            if not isinstance(entry, dict):
                raise PolicyError(f"{path}.resources[{j}]: must be an object")
            resources.append(
                (
                    str(entry.get("group") or ""),
                    frozenset(_strings(entry.get("resources"), f"{path}.resources[{j}]")),
                    frozenset(_strings(entry.get("resourceNames"), f"{path}.resources[{j}]")),
                )
            )
        urls = _strings(raw.get("nonResourceURLs"), f"{path}.nonResourceURLs")
        namespaces = raw.get("namespaces")
        if urls and (resources or namespaces):
            raise PolicyError(
                f"{path}: rules cannot apply to both regular resources and non-resource URLs"
            )
        rules.append(
            PolicyRule(
                level=level,
                users=frozenset(_strings(raw.get("users"), f"{path}.users")),
                user_groups=frozenset(_strings(raw.get("userGroups"), f"{path}.userGroups")),
                verbs=frozenset(_strings(raw.get("verbs"), f"{path}.verbs")),
                resources=tuple(resources),
                namespaces=(
                    frozenset(_strings(namespaces, f"{path}.namespaces")) if namespaces else None
                ),
                non_resource_urls=tuple(urls),
                omit_stages=(
                    _stages(raw["omitStages"], f"{path}.omitStages")
                    if raw.get("omitStages") is not None
                    else None
                ),
            )
        )
    return Policy(tuple(rules), _stages(document.get("omitStages"), "omitStages"))


def load_policy(path: Path) -> Policy:
    try:
        return parse_policy(yaml.safe_load(path.read_text()))
    except (OSError, yaml.YAMLError) as error:
        raise PolicyError(f"cannot read the audit policy {path}: {error}") from None


def timestamp(moment: datetime.datetime) -> str:
    """RFC 3339 with microseconds, as audit events carry (metav1.MicroTime)."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def user_object(user: UserInfo) -> dict[str, Any]:
    out: dict[str, Any] = {"username": user.name}
    if user.uid:
        out["uid"] = user.uid
    if user.groups:
        out["groups"] = list(user.groups)
    if user.extra:
        out["extra"] = {k: list(v) for k, v in user.extra.items()}
    return out


def object_ref(info: RequestInfo) -> dict[str, Any] | None:
    if not info.is_resource:
        return None
    ref: dict[str, Any] = {"resource": info.resource}
    namespace = info.namespace or (info.name if info.resource == "namespaces" else "")
    if namespace:
        ref["namespace"] = namespace
    if info.name:
        ref["name"] = info.name
    if info.group:
        ref["apiGroup"] = info.group
    ref["apiVersion"] = info.version
    if info.subresource:
        ref["subresource"] = info.subresource
    return ref


def _decode_body(body: bytes, content_type: str) -> Any:
    """A request or response body as an object (JSON, YAML or protobuf); None when it is
    none of them."""
    if not body:
        return None
    kind = media_type(content_type)
    try:
        if kind == PROTOBUF:
            from timonel.apiserver import protobuf

            return protobuf.decode(body)
        if "yaml" in kind:
            return yaml.safe_load(body)
        return orjson.loads(body)
    except Exception:
        return None


def _response_status(response: ApiResponse) -> dict[str, Any]:
    status: dict[str, Any] = {"metadata": {}, "code": response.status}
    if response.status >= 400:
        decoded = _decode_body(response.body, response.content_type)
        if isinstance(decoded, dict) and decoded.get("kind") == "Status":
            status["status"] = decoded.get("status", "Failure")
            for key in ("message", "reason", "details"):
                if decoded.get(key):
                    status[key] = decoded[key]
    return status


# An event as queued: the event's fields, and the bodies the writer decodes
# (request body, its content type; response, when the level asks for them).
_Queued = tuple[dict[str, Any], bytes | None, str, ApiResponse | None]
_T = TypeVar("_T")


class AuditLog:
    """Writes audit events for the requests `record` is given; see the module docstring."""

    def __init__(self, policy: Policy, sink: IO[bytes] | RotatingLog) -> None:
        self.policy = policy
        self._sink = sink
        self._queue: queue.SimpleQueue[_Queued | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._write_loop, name="audit-log", daemon=True)
        self._thread.start()

    @classmethod
    def open(cls, log_path: str, policy_path: Path, rotation: Rotation | None = None) -> AuditLog:
        policy = load_policy(policy_path)
        if log_path == "-":
            return cls(policy, sys.stdout.buffer)
        return cls(policy, RotatingLog(Path(log_path), rotation or Rotation()))

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=5)
        if self._sink is not sys.stdout.buffer:
            with contextlib.suppress(OSError):
                self._sink.close()

    # -- the event loop side ----------------------------------------------------------

    def record(
        self,
        request: ApiRequest,
        info: RequestInfo,
        response: ApiResponse,
        received: datetime.datetime,
    ) -> ApiResponse:
        """Queue the events of a finished (or, for a watch, started) request; returns the
        response, its stream wrapped so that the end of a watch is recorded too."""
        user = request.user or ANONYMOUS
        # The policy sees who authenticated, as kube-apiserver audits before impersonating.
        level, omit = self.policy.decide(request.impersonator or user, info)
        if level == "None":
            return response
        event: dict[str, Any] = {
            "kind": "Event",
            "apiVersion": "audit.k8s.io/v1",
            "level": level,
            "auditID": str(uuid.uuid4()),
            "stage": REQUEST_RECEIVED,
            "requestURI": _request_uri(request),
            "verb": info.verb,
            "user": user_object(request.impersonator or user),
            "sourceIPs": _source_ips(request),
            "userAgent": request.headers.get("User-Agent", ""),
        }
        if request.impersonator is not None:
            event["impersonatedUser"] = user_object(user)
        ref = object_ref(info)
        if ref is not None:
            event["objectRef"] = ref
        received_text = timestamp(received)
        event["requestReceivedTimestamp"] = received_text
        if request.authorization is not None:
            allowed, reason = request.authorization
            event["annotations"] = {
                DECISION_ANNOTATION: "allow" if allowed else "forbid",
                REASON_ANNOTATION: reason,
            }
        wants_request = level in ("Request", "RequestResponse")
        # A create names its object only in the body: the writer takes the name from it.
        names_from_body = info.verb == "create" and not info.name
        request_body = request.body if (wants_request or names_from_body) and request.body else None
        content_type = request.headers.get("Content-Type", "") if request_body else ""
        if REQUEST_RECEIVED not in omit:
            self._queue.put(({**event, "stageTimestamp": received_text}, None, "", None))
        streaming = response.stream is not None or response.events is not None
        if streaming:
            started = {
                **event,
                "stage": RESPONSE_STARTED,
                "responseStatus": {"metadata": {}, "code": response.status},
            }
            if RESPONSE_STARTED not in omit:
                self._queue.put(
                    (
                        {**started, "stageTimestamp": timestamp(utc_now())},
                        request_body,
                        content_type,
                        None,
                    )
                )
            if RESPONSE_COMPLETE not in omit:
                complete = {**started, "stage": RESPONSE_COMPLETE}
                if response.stream is not None:
                    response.stream = self._until_done(
                        response.stream, complete, request_body, content_type
                    )
                if response.events is not None:
                    response.events = self._until_done(
                        response.events, complete, request_body, content_type
                    )
            return response
        if RESPONSE_COMPLETE not in omit:
            complete = {
                **event,
                "stage": RESPONSE_COMPLETE,
                "responseStatus": _response_status(response),
                "stageTimestamp": timestamp(utc_now()),
            }
            self._queue.put(
                (
                    complete,
                    request_body,
                    content_type,
                    response if level == "RequestResponse" and response.status < 400 else None,
                )
            )
        return response

    async def _until_done(
        self,
        stream: AsyncIterator[_T],
        event: dict[str, Any],
        request_body: bytes | None,
        content_type: str,
    ) -> AsyncIterator[_T]:
        try:
            async for item in stream:
                yield item
        finally:
            self._queue.put(
                (
                    {**event, "stageTimestamp": timestamp(utc_now())},
                    request_body,
                    content_type,
                    None,
                )
            )

    # -- the writer thread ------------------------------------------------------------

    def _write_loop(self) -> None:
        while True:
            item = self._queue.get()
            lines: list[bytes] = []
            done = item is None
            while item is not None:
                lines.append(self._encode(*item))
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    done = True
            if lines:
                try:
                    self._sink.write(b"".join(lines))
                    self._sink.flush()
                except OSError:
                    log.exception("cannot write the audit log")
            if done:
                return

    @staticmethod
    def _encode(
        event: dict[str, Any],
        request_body: bytes | None,
        content_type: str,
        response: ApiResponse | None,
    ) -> bytes:
        if request_body is not None:
            decoded = _decode_body(request_body, content_type)
            ref = event.get("objectRef")
            if isinstance(decoded, dict) and ref is not None and "name" not in ref:
                name = (decoded.get("metadata") or {}).get("name")
                if name:
                    event["objectRef"] = {**ref, "name": name}
            if decoded is not None and event["level"] in ("Request", "RequestResponse"):
                event["requestObject"] = decoded
        if response is not None:
            decoded = _decode_body(response.body, response.content_type)
            if decoded is not None:
                event["responseObject"] = decoded
        return orjson.dumps(event) + b"\n"


def _request_uri(request: ApiRequest) -> str:
    if not request.query:
        return request.path
    return f"{request.path}?{urlencode(list(request.query.items()))}"


def _source_ips(request: ApiRequest) -> list[str]:
    ips: list[str] = []
    forwarded = request.headers.get("X-Forwarded-For")
    if forwarded:
        ips.extend(ip.strip() for ip in forwarded.split(",") if ip.strip())
    real_ip = request.headers.get("X-Real-Ip")
    if real_ip and real_ip not in ips:
        ips.append(real_ip)
    remote = request.remote or "127.0.0.1"
    if remote not in ips:
        ips.append(remote)
    return ips
