"""The kubelet's HTTPS API (port 10250): what the API server proxies to a node.

    GET       /healthz                                     ok
    GET       /pods                                        the pods bound to this node
    GET       /containerLogs/{namespace}/{pod}/{container} a container's log (pods/log)
    GET|POST  /exec/{namespace}/{pod}/{container}          pods/exec (WebSocket or SPDY)
    GET|POST  /attach/{namespace}/{pod}/{container}        pods/attach
    GET|POST  /portForward/{namespace}/{pod}               pods/portforward
    GET       /stats/summary                               resource usage (metrics.k8s.io)
    GET       /logs/{path}                                 the node's /var/log

Every caller presents a client certificate of the cluster CA (TLS requires it) and must
be the API server (`kube-apiserver-kubelet-client`) or a cluster administrator
(`system:masters`); anyone else gets 403.

Pure: `caller`, `may_call`, `log_container_id`, `find_container_spec`, `log_options`.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import html
import logging
import socket
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import orjson
from aiohttp import web

from timonel.agent.kubelet.logs import LogOptions, stream_log
from timonel.agent.kubelet.node import KUBELET_PORT
from timonel.agent.kubelet.runtimestate import CONTAINER_NAME_LABEL, POD_UID_LABEL
from timonel.agent.kubelet.servingcert import (
    ALLOWED_GROUP,
    KUBELET_CLIENT_NAME,
    ensure_serving_certificate,
    server_context,
)
from timonel.agent.kubelet.stats import StatsProvider
from timonel.agent.runtime.cri import CriClient, CriError, api
from timonel.api import errors
from timonel.api.objects import Object
from timonel.client.rest import ApiClient

log = logging.getLogger(__name__)

NODE_LOG_DIR: Final = Path("/var/log")

PodLookup = Callable[[str, str], Object | None]


# -- who may call -----------------------------------------------------------------------------


def caller(peercert: Mapping[str, Any] | None) -> tuple[str, tuple[str, ...]]:
    """(user, groups) of a verified client certificate: its CN and O values."""
    name = ""
    groups: list[str] = []
    for rdn in (peercert or {}).get("subject") or ():
        for key, value in rdn:
            if key == "commonName":
                name = value
            elif key == "organizationName":
                groups.append(value)
    return name, tuple(groups)


def may_call(user: str, groups: tuple[str, ...]) -> bool:
    return user == KUBELET_CLIENT_NAME or ALLOWED_GROUP in groups


# -- which container -------------------------------------------------------------------------


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def find_container_spec(pod: Object, name: str) -> dict[str, Any] | None:
    spec = _dict(pod.get("spec"))
    for key in ("containers", "initContainers", "ephemeralContainers"):
        for container in spec.get(key) or []:
            if isinstance(container, dict) and container.get("name") == name:
                return container
    return None


def _container_status(pod: Object, name: str) -> dict[str, Any] | None:
    status = _dict(pod.get("status"))
    for key in ("containerStatuses", "initContainerStatuses", "ephemeralContainerStatuses"):
        for entry in status.get(key) or []:
            if isinstance(entry, dict) and entry.get("name") == name:
                return entry
    return None


def _runtime_id(container_id: str) -> str:
    return container_id.partition("://")[2] or container_id


def log_container_id(pod: Object, name: str, *, previous: bool) -> str:
    """The runtime ID of the container whose log to read (kubelet's
    validateContainerLogStatus); a BadRequest saying why when there is none."""
    pod_name = _dict(pod.get("metadata")).get("name", "")
    status = _container_status(pod, name)
    if status is None:
        raise errors.bad_request(f'container "{name}" in pod "{pod_name}" is not available')
    state = _dict(status.get("state"))
    last = _dict(_dict(status.get("lastState")).get("terminated"))
    if previous:
        if not last.get("containerID"):
            raise errors.bad_request(
                f'previous terminated container "{name}" in pod "{pod_name}" not found'
            )
        return _runtime_id(str(last["containerID"]))
    if "running" in state and status.get("containerID"):
        return _runtime_id(str(status["containerID"]))
    terminated = _dict(state.get("terminated"))
    if "terminated" in state:
        found = terminated.get("containerID") or last.get("containerID")
        if not found:
            raise errors.bad_request(f'container "{name}" in pod "{pod_name}" is terminated')
        return _runtime_id(str(found))
    if last:
        if not last.get("containerID"):
            raise errors.bad_request(f'container "{name}" in pod "{pod_name}" is terminated')
        return _runtime_id(str(last["containerID"]))
    reason = _dict(state.get("waiting")).get("reason") or "ContainerCreating"
    if reason == "ErrImagePull":
        reason = "image can't be pulled"
    elif reason == "ImagePullBackOff":
        reason = "trying and failing to pull image"
    raise errors.bad_request(
        f'container "{name}" in pod "{pod_name}" is waiting to start: {reason}'
    )


def _int_param(query: Mapping[str, str], name: str, minimum: int) -> int | None:
    text = query.get(name)
    if text is None or text == "":
        return None
    try:
        value = int(text)
    except ValueError:
        raise errors.bad_request(f"invalid {name}: {text!r} is not an integer") from None
    if value < minimum:
        raise errors.bad_request(f"invalid {name}: must be at least {minimum}")
    return value


def log_options(query: Mapping[str, str], now_ns: int) -> tuple[LogOptions, bool]:
    """(options, previous) of a containerLogs request."""
    since_ns = None
    since_seconds = _int_param(query, "sinceSeconds", 1)
    if since_seconds is not None:
        since_ns = now_ns - since_seconds * 1_000_000_000
    elif query.get("sinceTime"):
        try:
            moment = datetime.fromisoformat(query["sinceTime"].replace("Z", "+00:00"))
        except ValueError:
            raise errors.bad_request(f"invalid sinceTime: {query['sinceTime']!r}") from None
        since_ns = int(moment.timestamp() * 1_000_000_000)
    options = LogOptions(
        follow=_flag(query, "follow"),
        tail_lines=_int_param(query, "tailLines", 0),
        since_ns=since_ns,
        timestamps=_flag(query, "timestamps"),
        limit_bytes=_int_param(query, "limitBytes", 1),
    )
    return options, _flag(query, "previous")


def _flag(query: Mapping[str, str], name: str) -> bool:
    return query.get(name, "").lower() in ("1", "true")


# -- the server ------------------------------------------------------------------------------


def _status(error: errors.StatusError) -> web.Response:
    return web.Response(
        status=error.code, body=orjson.dumps(error.status()), content_type="application/json"
    )


class KubeletServer:
    def __init__(
        self,
        *,
        node_name: str,
        cri: Callable[[], CriClient],
        pod: PodLookup,
        pods: Callable[[], list[Object]],
        stats: StatsProvider,
        ssl_context: ssl.SSLContext,
        host: str = "0.0.0.0",
        port: int = KUBELET_PORT,
        node_log_dir: Path = NODE_LOG_DIR,
    ) -> None:
        self.node_name = node_name
        self.cri = cri
        self.pod = pod
        self.pods = pods
        self.stats = stats
        self.ssl_context = ssl_context
        self.host = host
        self.port = port
        self.node_log_dir = node_log_dir
        self._runner: web.AppRunner | None = None
        self._sampler: asyncio.Task[None] | None = None

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._authorize])
        route = app.router.add_route
        route("GET", "/healthz", self._healthz)
        route("GET", "/pods", self._pods)
        route("GET", "/containerLogs/{namespace}/{pod}/{container}", self._logs)
        for method in ("GET", "POST"):
            route(method, "/exec/{namespace}/{pod}/{container}", self._exec)
            route(method, "/attach/{namespace}/{pod}/{container}", self._attach)
            route(method, "/portForward/{namespace}/{pod}", self._port_forward)
        route("GET", "/stats/summary", self._summary)
        route("GET", "/logs/{path:.*}", self._node_logs)
        return app

    async def start(self) -> None:
        self._runner = web.AppRunner(
            self.app(), access_log=None, handle_signals=False, shutdown_timeout=1.0
        )
        await self._runner.setup()
        try:
            site = await self._listen(self.port)
        except OSError as error:
            if error.errno != errno.EADDRINUSE or self.port == 0:
                raise
            # Another kubelet on this host (several nodes on one machine) has the port:
            # take any, the Node reports which.
            log.warning("port %d is in use; the kubelet API listens on another", self.port)
            site = await self._listen(0)
        sockets = getattr(site._server, "sockets", None) or []
        if sockets:
            self.port = int(sockets[0].getsockname()[1])
        self._sampler = asyncio.create_task(self.stats.run(), name="usage-sampler")
        log.info("kubelet API listening on %s:%d", self.host, self.port)

    async def _listen(self, port: int) -> web.TCPSite:
        assert self._runner is not None
        site = web.TCPSite(
            self._runner, self.host, port, ssl_context=self.ssl_context, reuse_address=True
        )
        await site.start()
        return site

    async def stop(self) -> None:
        if self._sampler is not None:
            self._sampler.cancel()
            await asyncio.gather(self._sampler, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()

    @web.middleware
    async def _authorize(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        transport = request.transport
        peercert = transport.get_extra_info("peercert") if transport is not None else None
        user, groups = caller(peercert)
        if not may_call(user, groups):
            return _status(
                errors.forbidden_request(
                    f"Forbidden (user={user or 'system:anonymous'}, verb={request.method.lower()}, "
                    "resource=nodes, subresource=proxy)"
                )
            )
        try:
            return await handler(request)
        except errors.StatusError as error:
            return _status(error)
        except CriError as error:
            return _status(errors.StatusError(500, "InternalError", error.details or str(error)))

    # -- simple endpoints --------------------------------------------------------------------

    async def _healthz(self, request: web.Request) -> web.StreamResponse:
        return web.Response(text="ok")

    async def _pods(self, request: web.Request) -> web.StreamResponse:
        body = {"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": self.pods()}
        return web.Response(body=orjson.dumps(body), content_type="application/json")

    async def _summary(self, request: web.Request) -> web.StreamResponse:
        summary = await self.stats.summary()
        return web.Response(body=orjson.dumps(summary), content_type="application/json")

    async def _node_logs(self, request: web.Request) -> web.StreamResponse:
        root = self.node_log_dir.resolve()
        target = (root / request.match_info["path"]).resolve()
        if target != root and root not in target.parents:
            raise errors.StatusError(404, "NotFound", "not found")
        if target.is_dir():
            entries = sorted(
                p.name + ("/" if p.is_dir() else "") for p in target.iterdir() if not p.is_symlink()
            )
            links = "".join(f'<a href="{html.escape(e)}">{html.escape(e)}</a>\n' for e in entries)
            return web.Response(text=f"<pre>\n{links}</pre>\n", content_type="text/html")
        if not target.is_file():
            raise errors.StatusError(404, "NotFound", "not found")
        return web.FileResponse(target, headers={"Content-Type": "text/plain; charset=utf-8"})

    # -- pods ----------------------------------------------------------------------------------

    def _find_pod(self, request: web.Request) -> Object:
        namespace, name = request.match_info["namespace"], request.match_info["pod"]
        pod = self.pod(namespace, name)
        if pod is None:
            raise errors.StatusError(404, "NotFound", f'pod "{name}" does not exist')
        return pod

    def _container_name(self, request: web.Request, pod: Object) -> str:
        name = request.match_info["container"]
        if find_container_spec(pod, name) is None:
            pod_name = _dict(pod.get("metadata")).get("name", "")
            raise errors.StatusError(
                404, "NotFound", f'container "{name}" not found in pod "{pod_name}"'
            )
        return name

    async def _running_container(self, pod: Object, name: str) -> str:
        uid = str(_dict(pod.get("metadata")).get("uid", ""))
        found = await self.cri().list_containers(
            api.ContainerFilter(
                state=api.ContainerStateValue(state=api.CONTAINER_RUNNING),
                label_selector={POD_UID_LABEL: uid, CONTAINER_NAME_LABEL: name},
            )
        )
        if not found:
            raise errors.StatusError(404, "NotFound", f'container not found ("{name}")')
        return str(max(found, key=lambda c: c.created_at).id)

    async def _logs(self, request: web.Request) -> web.StreamResponse:
        pod = self._find_pod(request)
        name = self._container_name(request, pod)
        options, previous = log_options(request.query, time.time_ns())
        container_id = log_container_id(pod, name, previous=previous)
        cri = self.cri()
        try:
            status = await cri.container_status(container_id)
        except CriError:
            raise errors.bad_request(
                f'failed to get container status "{container_id}": not found'
            ) from None
        path = Path(status.status.log_path)

        async def is_running() -> bool:
            try:
                current = await cri.container_status(container_id)
            except CriError:
                return False
            return bool(current.status.state == api.CONTAINER_RUNNING)

        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        if not status.status.log_path or not path.exists():
            await response.write_eof()
            return response

        def reader_gone() -> bool:
            return request.transport is None or request.transport.is_closing()

        chunks = stream_log(path, options, is_running=is_running, reader_gone=reader_gone)
        try:
            async for chunk in chunks:
                await response.write(chunk)
        except (ConnectionError, OSError):
            return response
        finally:
            await chunks.aclose()
        with contextlib.suppress(ConnectionError):
            await response.write_eof()
        return response

    # The streaming code (WebSocket channels, SPDY) is loaded on the first stream: most
    # nodes seldom serve one, and it would otherwise stay in every agent's memory.

    async def _exec(self, request: web.Request) -> web.StreamResponse:
        return await _streaming(self._remote_command(request, attach=False))

    async def _attach(self, request: web.Request) -> web.StreamResponse:
        return await _streaming(self._remote_command(request, attach=True))

    async def _port_forward(self, request: web.Request) -> web.StreamResponse:
        return await _streaming(self._port_forward_stream(request))

    async def _remote_command(self, request: web.Request, *, attach: bool) -> web.StreamResponse:
        from timonel.agent.kubelet import remotecommand

        pod = self._find_pod(request)
        name = self._container_name(request, pod)
        options = remotecommand.StreamOptions.from_query(request.query)
        if not options.any:
            raise errors.bad_request("you must specify at least 1 of stdin, stdout, stderr")
        protocol = self._websocket_protocol(request, remotecommand.EXEC_WEBSOCKET_PROTOCOLS)
        container_id = await self._running_container(pod, name)
        if attach:
            url = await self.cri().attach(
                container_id,
                stdin=options.stdin,
                stdout=options.stdout,
                stderr=options.stderr,
                tty=options.tty,
            )
        else:
            command = request.query.getall("command", [])
            if not command:
                raise errors.bad_request("you must specify at least one command for the container")
            url = await self.cri().exec(
                container_id,
                command,
                stdin=options.stdin,
                stdout=options.stdout,
                stderr=options.stderr,
                tty=options.tty,
            )
        if protocol is not None:
            return await remotecommand.serve_exec_websocket(request, url, options, protocol)
        return await remotecommand.proxy_spdy(request, url)

    async def _port_forward_stream(self, request: web.Request) -> web.StreamResponse:
        from timonel.agent.kubelet import remotecommand
        from timonel.streaming import channels

        pod = self._find_pod(request)
        protocol = self._websocket_protocol(request, remotecommand.PORT_FORWARD_WEBSOCKET_PROTOCOLS)
        uid = str(_dict(pod.get("metadata")).get("uid", ""))
        sandboxes = await self.cri().list_pod_sandbox(
            api.PodSandboxFilter(
                state=api.PodSandboxStateValue(state=api.SANDBOX_READY),
                label_selector={POD_UID_LABEL: uid},
            )
        )
        if not sandboxes:
            raise errors.StatusError(404, "NotFound", "pod sandbox not found")
        sandbox_id = max(sandboxes, key=lambda s: s.created_at).id
        if protocol == channels.V4:
            try:
                ports = remotecommand.forwarded_ports(request.query.getall("ports", []))
            except ValueError as error:
                raise errors.bad_request(str(error)) from None
            url = await self.cri().port_forward(sandbox_id, ports)
            return await remotecommand.serve_port_forward_channels(request, url)
        # SPDY streams name their port in a header each.
        url = await self.cri().port_forward(sandbox_id, [])
        if protocol is not None:
            return await remotecommand.serve_port_forward_tunnel(request, url)
        return await remotecommand.proxy_spdy(request, url)

    def _websocket_protocol(self, request: web.Request, supported: tuple[str, ...]) -> str | None:
        """The WebSocket subprotocol to answer with; None for a SPDY upgrade. Anything
        else is refused before the runtime is asked for a stream."""
        from timonel.agent.kubelet import remotecommand
        from timonel.streaming import channels

        if remotecommand.wants_websocket(request):
            offered = channels.offered_protocols(
                request.headers.getall("Sec-WebSocket-Protocol", [])
            )
            protocol = channels.choose_protocol(offered, supported)
            if protocol is None:
                raise errors.bad_request(
                    f"none of the offered subprotocols {offered} is supported; supported: "
                    f"{list(supported)}"
                )
            return protocol
        if remotecommand.wants_spdy(request):
            return None
        raise errors.bad_request("Upgrade request required")


async def _streaming(call: Awaitable[web.StreamResponse]) -> web.StreamResponse:
    """A streaming handler's answer; a failed upgrade is an internal error."""
    from timonel.streaming.upgrade import UpgradeError

    try:
        return await call
    except UpgradeError as error:
        raise errors.StatusError(500, "InternalError", str(error)) from None


async def start_kubelet_api(
    client: ApiClient,
    *,
    node_name: str,
    node_ip: str,
    tls_dir: Path,
    cri: Callable[[], CriClient],
    pod: PodLookup,
    pods: Callable[[], list[Object]],
    port: int = KUBELET_PORT,
) -> KubeletServer:
    """Obtain the serving certificate (see servingcert.py) and start the kubelet API."""
    files = await ensure_serving_certificate(
        client,
        tls_dir,
        node_name=node_name,
        addresses=[node_ip, "127.0.0.1"],
        hostnames=[node_name, socket.gethostname(), "localhost"],
    )
    server = KubeletServer(
        node_name=node_name,
        cri=cri,
        pod=pod,
        pods=pods,
        stats=StatsProvider(cri, node_name),
        ssl_context=server_context(files),
        port=port,
    )
    await server.start()
    return server
