"""Requests the API server passes on to a node's kubelet, as kube-apiserver does.

    pods/log           GET  → /containerLogs/{namespace}/{pod}/{container}?follow&tailLines&...
    pods/exec          upgrade → /exec/{namespace}/{pod}/{container}?command&stdin&stdout&stderr&tty
    pods/attach        upgrade → /attach/{namespace}/{pod}/{container}?stdin&stdout&stderr&tty
    pods/portforward   upgrade → /portForward/{namespace}/{pod}
    nodes/proxy        any  → /{path} on the node's kubelet (stats/summary, logs/, pods, ...)

The kubelet is found from the Node: its first InternalIP (else ExternalIP, else
Hostname) and `status.daemonEndpoints.kubeletEndpoint.Port`. The API server dials it over
TLS, verifies its serving certificate against the cluster CA (the node obtained it from
the API server; see nodecerts.py), and presents `kube-apiserver-kubelet-client` in
`system:masters`, a client certificate issued on first use.

Upgrade requests (WebSocket and SPDY) are proxied without looking inside: the request
goes to the kubelet, its 101 comes back, and the connection is spliced. What the streams
carry is the kubelet's business (timonel/agent/kubelet/remotecommand.py).

Pure: `kubelet_location`, `choose_container`, `kubelet_target`, `is_proxied_upgrade`,
`pod_phase_problem`.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote, urlencode

import aiohttp
import orjson
from aiohttp import web
from multidict import MultiMapping

from timonel import pki
from timonel.api import errors
from timonel.api.objects import Object
from timonel.apiserver.context import ApiRequest, ApiResponse, status_response
from timonel.apiserver.requestinfo import RequestInfo, parse_request_info
from timonel.streaming.upgrade import (
    UpgradeError,
    is_upgrade_request,
    open_upgrade,
    splice,
    switch_protocols,
    upgrade_request_headers,
)

if TYPE_CHECKING:
    from timonel.apiserver.server import ApiServer

KUBELET_CLIENT_NAME: Final = "kube-apiserver-kubelet-client"
KUBELET_CLIENT_GROUP: Final = "system:masters"
DEFAULT_KUBELET_PORT: Final = 10250
ADDRESS_PREFERENCE: Final = ("InternalIP", "ExternalIP", "Hostname", "InternalDNS", "ExternalDNS")
CONNECT_TIMEOUT: Final = 10.0
RELAY_IDLE_CHECK: Final = 1.0

POD_SUBRESOURCES: Final = frozenset({"log", "exec", "attach", "portforward"})
UPGRADE_SUBRESOURCES: Final = frozenset({"exec", "attach", "portforward"})
# (group, plural, subresource) of every request served by a kubelet.
SUBRESOURCES: Final = frozenset(
    {("", "pods", s) for s in POD_SUBRESOURCES} | {("", "nodes", "proxy")}
)
_LOG_FLAGS: Final = ("follow", "previous", "timestamps", "insecureSkipTLSVerifyBackend")
_LOG_NUMBERS: Final = {"tailLines": 0, "limitBytes": 1, "sinceSeconds": 1}


@dataclass(frozen=True)
class KubeletLocation:
    node_name: str
    host: str
    port: int

    def url(self, target: str) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"https://{host}:{self.port}{target}"


def kubelet_location(node: Object) -> KubeletLocation:
    meta = node.get("metadata") or {}
    status = node.get("status") or {}
    name = str(meta.get("name", ""))
    addresses = [a for a in status.get("addresses") or [] if isinstance(a, dict)]
    host = ""
    for kind in ADDRESS_PREFERENCE:
        host = next((str(a["address"]) for a in addresses if a.get("type") == kind), "")
        if host:
            break
    if not host:
        raise errors.bad_request(f"node {name} has no addresses")
    endpoint = ((status.get("daemonEndpoints") or {}).get("kubeletEndpoint")) or {}
    port = endpoint.get("Port") or DEFAULT_KUBELET_PORT
    return KubeletLocation(name, host, int(port))


def _names(containers: Any) -> list[str]:
    return [str(c.get("name")) for c in containers or [] if isinstance(c, dict)]


def choose_container(pod: Object, requested: str) -> str:
    """The container a pods/log, exec or attach request addresses: the one named, or the
    pod's only container; a BadRequest as kube-apiserver words it otherwise."""
    spec = pod.get("spec") or {}
    name = (pod.get("metadata") or {}).get("name", "")
    containers = _names(spec.get("containers"))
    init = _names(spec.get("initContainers"))
    ephemeral = _names(spec.get("ephemeralContainers"))
    if not requested:
        if len(containers) == 1:
            return containers[0]
        message = (
            f"a container name must be specified for pod {name}, "
            f"choose one of: [{' '.join(containers)}]"
        )
        if init:
            message += f" or one of the init containers: [{' '.join(init)}]"
        if ephemeral:
            message += f" or one of the ephemeral containers: [{' '.join(ephemeral)}]"
        raise errors.bad_request(message)
    if requested not in (*containers, *init, *ephemeral):
        raise errors.bad_request(f"container {requested} is not valid for pod {name}")
    return requested


def _log_query(query: MultiMapping[str], pod_name: str) -> dict[str, str]:
    """The kubelet query of a pods/log request, validated as PodLogOptions."""
    forwarded: dict[str, str] = {}
    problems: list[errors.FieldError] = []
    for flag in _LOG_FLAGS:
        if query.get(flag, "").lower() in ("1", "true"):
            forwarded[flag] = "true"
    for field, minimum in _LOG_NUMBERS.items():
        text = query.get(field)
        if text is None or text == "":
            continue
        try:
            value = int(text)
        except ValueError:
            raise errors.bad_request(f'invalid value "{text}" for {field}') from None
        if value < minimum:
            detail = "must be greater than 0" if minimum else "must be greater than or equal to 0"
            problems.append(errors.invalid_value(field, value, detail))
        forwarded[field] = str(value)
    if query.get("sinceTime"):
        if "sinceSeconds" in forwarded:
            problems.append(
                errors.forbidden("sinceSeconds", "at most one of `sinceTime` or `sinceSeconds`")
            )
        forwarded["sinceTime"] = query["sinceTime"]
    if problems:
        raise errors.invalid("PodLogOptions", "", pod_name, problems)
    return forwarded


def kubelet_target(info: RequestInfo, pod: Object, query: MultiMapping[str]) -> str:
    """The kubelet path and query of a pod subresource request."""
    namespace = quote(info.namespace, safe="")
    name = quote(info.name, safe="")
    if info.subresource == "portforward":
        ports = query.getall("ports", [])
        suffix = "?" + urlencode([("ports", p) for p in ports]) if ports else ""
        return f"/portForward/{namespace}/{name}{suffix}"
    container = quote(choose_container(pod, query.get("container", "")), safe="")
    if info.subresource == "log":
        params: list[tuple[str, str]] = list(_log_query(query, info.name).items())
        base = "/containerLogs"
    else:
        params = [("command", c) for c in query.getall("command", [])]
        params += [(k, query[k]) for k in ("stdin", "stdout", "stderr", "tty") if k in query]
        base = f"/{info.subresource}"
    suffix = "?" + urlencode(params) if params else ""
    return f"{base}/{namespace}/{name}/{container}{suffix}"


def is_proxied_upgrade(path: str, headers: Mapping[str, str]) -> bool:
    """An upgrade request a kubelet answers (exec, attach, port-forward, node proxy)."""
    if not is_upgrade_request(headers):
        return False
    info = parse_request_info("GET", path, None)
    return info.is_resource and (
        (info.resource == "pods" and info.subresource in UPGRADE_SUBRESOURCES)
        or (info.resource == "nodes" and info.subresource == "proxy")
    )


def _node_proxy_target(info: RequestInfo, path: str, query_string: str) -> str:
    marker = f"/nodes/{info.name}/proxy"
    rest = path.split(marker, 1)[1] if marker in path else ""
    target = rest if rest.startswith("/") else "/" + rest
    return target + (f"?{query_string}" if query_string else "")


def pod_phase_problem(pod: Object, subresource: str) -> str | None:
    phase = (pod.get("status") or {}).get("phase")
    if subresource in ("exec", "attach") and phase in ("Succeeded", "Failed"):
        verb = "exec into" if subresource == "exec" else "attach to"
        return f"cannot {verb} a container in a completed pod; current phase is {phase}"
    return None


# -- the client to kubelets --------------------------------------------------------------------


class KubeletClient:
    """HTTPS to kubelets as `kube-apiserver-kubelet-client` (see the module docstring)."""

    def __init__(self, cluster_pki: pki.ClusterPKI) -> None:
        self._pki = cluster_pki
        self._context: ssl.SSLContext | None = None
        self._lock = asyncio.Lock()
        self._session: aiohttp.ClientSession | None = None

    async def ssl_context(self) -> ssl.SSLContext:
        async with self._lock:
            if self._context is None:
                self._context = await asyncio.to_thread(self._make_context)
            return self._context

    def _make_context(self) -> ssl.SSLContext:
        cert_pem, key_pem = pki.issue_client_cert(
            self._pki, KUBELET_CLIENT_NAME, [KUBELET_CLIENT_GROUP]
        )
        cert_path = self._pki.tls_dir / "kubelet-client.crt"
        key_path = self._pki.tls_dir / "kubelet-client.key"
        pki.write_file_atomic(key_path, key_pem, mode=0o600)
        pki.write_file_atomic(cert_path, cert_pem, mode=0o644)
        context = ssl.create_default_context(cadata=self._pki.ca_cert_pem.decode("ascii"))
        context.load_cert_chain(cert_path, key_path)
        return context

    async def session(self) -> aiohttp.ClientSession:
        context = await self.ssl_context()
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=context, limit=256),
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_TIMEOUT),
                auto_decompress=False,
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def request(
        self,
        location: KubeletLocation,
        method: str,
        target: str,
        *,
        body: bytes = b"",
        headers: Mapping[str, str] | None = None,
    ) -> aiohttp.ClientResponse:
        """The kubelet's response, unread (the caller releases it); unreachable kubelets
        raise a StatusError worded as kube-apiserver's dial errors are."""
        session = await self.session()
        url = location.url(target)
        try:
            return await session.request(
                method, url, data=body or None, headers=dict(headers or {}), allow_redirects=False
            )
        except (aiohttp.ClientError, OSError, TimeoutError) as error:
            raise errors.StatusError(
                500, "", f'{method.title()} "{url}": {error or type(error).__name__}'
            ) from None

    async def get_json(self, location: KubeletLocation, target: str, timeout: float) -> Any:
        async with asyncio.timeout(timeout):
            response = await self.request(location, "GET", target)
            try:
                if response.status != 200:
                    raise await _kubelet_error(response)
                return orjson.loads(await response.read())
            finally:
                response.release()


async def _kubelet_error(response: aiohttp.ClientResponse) -> errors.StatusError:
    """A kubelet's refusal as the API's error: its Status when it sent one, else its
    text as the message (kube-apiserver's generic response checker)."""
    body = await response.read()
    with contextlib.suppress(orjson.JSONDecodeError):
        status = orjson.loads(body)
        if isinstance(status, dict) and status.get("kind") == "Status":
            return errors.StatusError(
                int(status.get("code") or response.status),
                str(status.get("reason", "")),
                str(status.get("message", "")),
                details=status.get("details"),
            )
    text = body.decode(errors="replace").strip()
    if response.status == 404:
        return errors.StatusError(404, "NotFound", text or "not found")
    if response.status == 400:
        return errors.bad_request(text)
    return errors.StatusError(response.status, "", text or response.reason or "")


# -- serving -----------------------------------------------------------------------------------


def _client(api: ApiServer) -> KubeletClient:
    if api.kubelets is None:
        raise errors.StatusError(503, "ServiceUnavailable", "no kubelet client is configured")
    return api.kubelets


async def _node(api: ApiServer, name: str) -> Object:
    node = await api.get_object("", "nodes", "", name)
    if node is None:
        raise errors.not_found("nodes", "", name)
    return node


async def _pod_and_location(api: ApiServer, info: RequestInfo) -> tuple[Object, KubeletLocation]:
    pod = await api.get_object("", "pods", info.namespace, info.name)
    if pod is None:
        raise errors.not_found("pods", "", info.name)
    problem = pod_phase_problem(pod, info.subresource)
    if problem:
        raise errors.bad_request(problem)
    node_name = (pod.get("spec") or {}).get("nodeName")
    if not node_name:
        raise errors.bad_request(f"pod {info.name} does not have a host assigned")
    return pod, kubelet_location(await _node(api, str(node_name)))


async def _relay(
    response: aiohttp.ClientResponse, client_gone: Callable[[], bool]
) -> AsyncIterator[bytes]:
    """The kubelet's body as it comes; a followed log may idle for long, so the client's
    departure is checked every second rather than noticed at the next write."""
    try:
        while not client_gone():
            try:
                chunk = await asyncio.wait_for(response.content.readany(), RELAY_IDLE_CHECK)
            except TimeoutError:
                continue
            if not chunk:
                return
            yield chunk
    except (aiohttp.ClientError, OSError):
        return
    finally:
        response.close()


async def serve(api: ApiServer, request: ApiRequest, info: RequestInfo) -> ApiResponse:
    """pods/log, nodes/proxy, and exec/attach/portforward without an upgrade."""
    if info.resource == "nodes":
        node_name = info.name.partition(":")[0]
        location = kubelet_location(await _node(api, node_name))
        query = urlencode([(k, v) for k, v in request.query.items()])
        target = _node_proxy_target(info, request.path, query)
        headers = {
            k: v
            for k, v in request.headers.items()
            if k.lower() in ("accept", "content-type", "user-agent")
        }
        upstream = await _client(api).request(
            location, request.method, target, body=request.body, headers=headers
        )
        return ApiResponse(
            upstream.status,
            content_type=upstream.headers.get("Content-Type", "application/octet-stream"),
            stream=_relay(upstream, request.is_disconnected),
        )
    if info.subresource in UPGRADE_SUBRESOURCES:
        raise errors.bad_request("Upgrade request required")
    if info.verb != "get":
        raise errors.method_not_allowed(f"{request.method} is not supported on pods/log")
    pod, location = await _pod_and_location(api, info)
    target = kubelet_target(info, pod, request.query)
    upstream = await _client(api).request(location, "GET", target)
    if upstream.status != 200:
        try:
            raise await _kubelet_error(upstream)
        finally:
            upstream.release()
    return ApiResponse(
        200, content_type="text/plain", stream=_relay(upstream, request.is_disconnected)
    )


async def serve_upgrade(api: ApiServer, request: web.BaseRequest) -> web.StreamResponse:
    """exec, attach, port-forward and node proxy upgrades, spliced through to the kubelet."""
    try:
        transport = request.transport
        peercert = transport.get_extra_info("peercert") if transport is not None else None
        user = api.authenticator.authenticate(peercert, request.headers.get("Authorization"))
        if user is None:
            raise errors.unauthorized()
        info = parse_request_info(request.method, request.path, None)
        client = _client(api)
        if info.resource == "nodes":
            location = kubelet_location(await _node(api, info.name.partition(":")[0]))
            target = _node_proxy_target(info, request.path, request.query_string)
        else:
            pod, location = await _pod_and_location(api, info)
            target = kubelet_target(info, pod, request.query)
        try:
            upstream = await open_upgrade(
                location.host,
                location.port,
                method=request.method,
                target=target,
                headers=upgrade_request_headers(request.headers),
                ssl_context=await client.ssl_context(),
                timeout=CONNECT_TIMEOUT,
            )
        except UpgradeError as error:
            raise errors.StatusError(500, "", f"error dialing backend: {error}") from None
    except errors.StatusError as error:
        return _aiohttp_response(status_response(error))
    if upstream.head.status != 101:
        return web.Response(
            status=upstream.head.status,
            body=upstream.body,
            content_type=upstream.head.get("Content-Type", "application/json").split(";")[0],
        )
    response, downstream = await switch_protocols(request, upstream.head.switched_headers())
    await splice(downstream, upstream.stream)
    return response


def _aiohttp_response(response: ApiResponse) -> web.Response:
    return web.Response(
        status=response.status, body=response.body, content_type=response.content_type
    )
