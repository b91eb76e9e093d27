"""`timonel server`: the composition root of the control plane.

data dir → certificates and tokens → storage → API server → HTTPS listener → the
built-in objects every cluster has → kubeconfig. Components started later (controllers,
scheduler, node agent) reach the cluster only through the API.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import secrets
import signal
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from multidict import CIMultiDict, MultiDict

from timonel import pki
from timonel.api.user import SYSTEM_MASTERS, UserInfo
from timonel.apiserver import nodecerts, nodeproxy, serviceaccounts
from timonel.apiserver.audit import AuditLog, PolicyError
from timonel.apiserver.auditfile import Rotation, rotation_problems
from timonel.apiserver.authn import Authenticator
from timonel.apiserver.authorization import authorizer as rbac_authorizer
from timonel.apiserver.authorization.bootstrap import ensure_bootstrap_policy
from timonel.apiserver.context import ApiRequest
from timonel.apiserver.http import HttpsListener
from timonel.apiserver.inprocess import InProcessTransport
from timonel.apiserver.server import ApiServer, ApiServerConfig
from timonel.client.rest import ApiClient
from timonel.controllers.manager import ControllerManager
from timonel.kinds.registry import builtin_registry
from timonel.scheduler.component import COMPONENT as SCHEDULER_COMPONENT
from timonel.scheduler.component import SchedulerComponent
from timonel.storage.interface import Storage

log = logging.getLogger(__name__)

SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


@dataclass
class ServerOptions:
    data_dir: Path = Path("/var/lib/timonel")
    bind_address: str = "0.0.0.0"
    https_listen_port: int = 6443
    datastore_endpoint: str = ""
    write_kubeconfig: Path | None = None
    cluster_cidr: str = "10.42.0.0/16"
    service_cidr: str = "10.43.0.0/16"
    cluster_dns: str = "10.43.0.10"
    cluster_domain: str = "cluster.local"
    node_name: str = ""
    disable_agent: bool = False
    private_registry: Path | None = None
    disable_scheduler: bool = False
    disable_controller_manager: bool = False
    extra_tokens: dict[str, UserInfo] = field(default_factory=dict)
    # kube-apiserver's audit flags: both are needed for an audit log.
    audit_log_path: str = ""
    audit_policy_file: Path | None = None
    audit_log_rotation: Rotation = field(default_factory=Rotation)
    # Controller tuning (ControllerContext.options), e.g. node_monitor_grace_period.
    controller_options: dict[str, object] = field(default_factory=dict)


def open_storage(endpoint: str, data_dir: Path) -> Storage:
    from timonel.storage.sqlite import SQLiteStorage

    if not endpoint:
        db_dir = data_dir / "server" / "db"
        db_dir.mkdir(parents=True, exist_ok=True)
        return SQLiteStorage(str(db_dir / "state.db"))
    if endpoint.startswith("sqlite://"):
        path = endpoint.removeprefix("sqlite://")
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        return SQLiteStorage(path)
    from timonel.storage.etcd import EtcdStorage, is_etcd_endpoint, parse_endpoint

    if is_etcd_endpoint(endpoint):
        try:
            return EtcdStorage(parse_endpoint(endpoint))
        except ValueError as error:
            raise SystemExit(f"invalid datastore endpoint: {error}") from None
    raise SystemExit(
        f"unsupported datastore endpoint: {endpoint} "
        "(supported: sqlite:///path, etcd://host:port[,host:port...], etcds://...)"
    )


def open_audit_log(options: ServerOptions) -> AuditLog | None:
    """The audit log the flags ask for; as kube-apiserver, a log path without a policy
    audits nothing."""
    if not options.audit_log_path:
        return None
    if options.audit_policy_file is None:
        log.warning("--audit-log-path without --audit-policy-file: nothing is audited")
        return None
    problems = rotation_problems(options.audit_log_rotation)
    if problems:
        raise SystemExit("invalid audit log options: " + "; ".join(problems))
    try:
        return AuditLog.open(
            options.audit_log_path, options.audit_policy_file, options.audit_log_rotation
        )
    except PolicyError as error:
        raise SystemExit(f"invalid audit policy: {error}") from None
    except OSError as error:
        raise SystemExit(f"cannot open the audit log: {error}") from None


class ControlPlane:
    """A running control plane; `start()` returns once /readyz would answer ok."""

    def __init__(self, options: ServerOptions) -> None:
        self.options = options
        self.internal_token = secrets.token_hex(32)
        self.api: ApiServer | None = None
        self.listener: HttpsListener | None = None
        self.storage: Storage | None = None
        self.kubeconfig_path = options.data_dir / "kubeconfig.yaml"
        self._components: list[asyncio.Task[None]] = []
        self.agent: Any = None

    @property
    def url(self) -> str:
        assert self.listener is not None
        host = self.options.bind_address
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        return f"https://{host}:{self.listener.port}"

    async def start(self) -> None:
        options = self.options
        options.data_dir.mkdir(parents=True, exist_ok=True)
        service_ip = pki.first_service_ip(options.service_cidr)
        cluster_pki = pki.ensure_cluster_pki(
            options.data_dir, hosts=pki.local_hosts(), service_ip=service_ip
        )
        join_token = pki.ensure_token(options.data_dir)
        tokens = {
            self.internal_token: UserInfo("system:apiserver", (SYSTEM_MASTERS,)),
            **options.extra_tokens,
        }
        authenticator = Authenticator(cluster_pki.ca_cert_pem, tokens, join_token=join_token)
        self.storage = open_storage(options.datastore_endpoint, options.data_dir)
        await self.storage.start()
        signing_key = serviceaccounts.ensure_signing_key(options.data_dir)
        self.api = ApiServer(
            storage=self.storage,
            registry=builtin_registry(),
            authenticator=authenticator,
            config=ApiServerConfig(
                service_cidr=options.service_cidr,
                advertise_address=pki.primary_address(),
                secure_port=options.https_listen_port,
                ca_cert_pem=cluster_pki.ca_cert_pem,
            ),
        )
        api = self.api
        api.token_issuer = serviceaccounts.TokenIssuer(signing_key, api.service_account_uid)
        authenticator.token_verifier = api.token_issuer.verify
        api.kubelets = nodeproxy.KubeletClient(cluster_pki)
        api.kubelet_signer = nodecerts.KubeletServingSigner(cluster_pki)
        authorizer = rbac_authorizer.install(api)
        api.audit = open_audit_log(options)
        self.listener = HttpsListener(
            self.api,
            host=options.bind_address,
            port=options.https_listen_port,
            ssl_context=pki.server_ssl_context(cluster_pki),
        )
        await self.listener.start()
        await self.api.start()
        authorizer.write_cluster_role = self._write_cluster_role
        await authorizer.start()
        await self._ensure_builtin_objects(service_ip)
        self._start_components(cluster_pki.ca_cert_pem)
        kubeconfig = pki.kubeconfig_yaml(server_url=self.url, pki=cluster_pki)
        pki.write_file_atomic(self.kubeconfig_path, kubeconfig)
        if options.write_kubeconfig:
            pki.write_file_atomic(options.write_kubeconfig, kubeconfig)

    def in_process_client(self, user_agent: str) -> ApiClient:
        """A client that reaches this API server without the network, through the same
        request path (authentication included) as any other client."""
        assert self.api is not None
        return ApiClient(
            InProcessTransport(self.api, self.internal_token, user_agent=user_agent),
            field_manager=user_agent,
        )

    def _start_components(self, ca_cert_pem: bytes) -> None:
        """The controller manager and the scheduler, each under its own leader election,
        and this machine's node agent."""
        if not self.options.disable_controller_manager:
            self._start_controller_manager(ca_cert_pem)
        if not self.options.disable_scheduler:
            scheduler = SchedulerComponent(self.in_process_client(SCHEDULER_COMPONENT))
            self._components.append(asyncio.create_task(scheduler.run(), name="scheduler"))
        if not self.options.disable_agent:
            self._components.append(asyncio.create_task(self._run_agent(), name="node-agent"))

    def _start_controller_manager(self, ca_cert_pem: bytes) -> None:
        manager = ControllerManager(
            self.in_process_client("kube-controller-manager"),
            options={
                "cluster_cidr": self.options.cluster_cidr,
                "ca_cert_pem": ca_cert_pem.decode(),
                **self.options.controller_options,
            },
        )
        self._components.append(asyncio.create_task(manager.run(), name="controller-manager"))

    async def _run_agent(self) -> None:
        """This machine's node agent, in-process (data under DATA_DIR/agent)."""
        from timonel.agent.kubelet.agent import AgentOptions, NodeAgent

        options = AgentOptions(
            node_name=self.options.node_name or socket.gethostname().lower(),
            data_dir=self.options.data_dir,
            cluster_dns=(self.options.cluster_dns,),
            cluster_domain=self.options.cluster_domain,
            node_labels={"node-role.kubernetes.io/control-plane": "true"},
        )
        if self.options.private_registry is not None:
            options.private_registry = self.options.private_registry
        self.agent = NodeAgent(self.in_process_client("kubelet"), options)
        try:
            await self.agent.run()
        except Exception:
            log.exception("the node agent stopped; the control plane keeps running")

    async def stop(self) -> None:
        """Stop in the reverse order of dependence: the in-process components (controller
        manager, scheduler, node agent: each waits for what it started, elections and
        event writes included), then the listener, the API server, and the storage last,
        so that nothing still running meets a closed store."""
        for task in self._components:
            task.cancel()
        await asyncio.gather(*self._components, return_exceptions=True)
        self._components.clear()
        if self.listener is not None:
            await self.listener.stop()
        if self.api is not None:
            if self.api.authorizer is not None:
                await self.api.authorizer.stop()
            await self.api.stop()
            if self.api.audit is not None:
                self.api.audit.close()
        if self.storage is not None:
            await self.storage.close()

    async def request(
        self, method: str, path: str, body: Any = None, *, content_type: str = "application/json"
    ) -> tuple[int, Any]:
        """A request through the full API path as the API server's own identity."""
        assert self.api is not None
        headers = CIMultiDict(
            {
                "Authorization": f"Bearer {self.internal_token}",
                "Content-Type": content_type,
                "Accept": "application/json",
                "User-Agent": "timonel-apiserver",
            }
        )
        raw = orjson.dumps(body) if body is not None else b""
        response = await self.api.handle(ApiRequest(method, path, MultiDict(), headers, raw))
        return response.status, orjson.loads(response.body) if response.body else None

    async def _write_cluster_role(self, role: dict[str, Any]) -> None:
        name = role["metadata"]["name"]
        status, body = await self.request(
            "PUT", f"/apis/rbac.authorization.k8s.io/v1/clusterroles/{name}", role
        )
        if status >= 300 and status != 409:  # 409: changed meanwhile, aggregated again
            log.warning("cannot update aggregated ClusterRole %s: %s", name, body)

    async def _ensure_builtin_objects(self, service_ip: str) -> None:
        await ensure_bootstrap_policy(lambda method, path, body: self.request(method, path, body))
        for name in SYSTEM_NAMESPACES:
            status, _ = await self.request("GET", f"/api/v1/namespaces/{name}")
            if status == 404:
                await self.request(
                    "POST",
                    "/api/v1/namespaces",
                    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}},
                )
        status, _ = await self.request("GET", "/api/v1/namespaces/default/services/kubernetes")
        if status == 404:
            await self.request(
                "POST",
                "/api/v1/namespaces/default/services",
                {
                    "apiVersion": "v1",
                    "kind": "Service",
                    "metadata": {
                        "name": "kubernetes",
                        "labels": {"component": "apiserver", "provider": "kubernetes"},
                    },
                    "spec": {
                        "clusterIP": service_ip,
                        "ports": [
                            {
                                "name": "https",
                                "port": 443,
                                "protocol": "TCP",
                                "targetPort": self.options.https_listen_port,
                            }
                        ],
                    },
                },
            )
        assert self.api is not None
        endpoints = {
            "apiVersion": "v1",
            "kind": "Endpoints",
            "metadata": {
                "name": "kubernetes",
                "namespace": "default",
                "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"},
            },
            "subsets": [
                {
                    "addresses": [{"ip": self.api.config.advertise_address}],
                    "ports": [
                        {"name": "https", "port": self.options.https_listen_port, "protocol": "TCP"}
                    ],
                }
            ],
        }
        status, current = await self.request(
            "GET", "/api/v1/namespaces/default/endpoints/kubernetes"
        )
        if status == 404:
            await self.request("POST", "/api/v1/namespaces/default/endpoints", endpoints)
        elif current and current.get("subsets") != endpoints["subsets"]:
            current["subsets"] = endpoints["subsets"]
            await self.request("PUT", "/api/v1/namespaces/default/endpoints/kubernetes", current)
        await self._ensure_kubernetes_endpoint_slice()
        await self._ensure_dns_service()

    async def _ensure_kubernetes_endpoint_slice(self) -> None:
        """The EndpointSlice kube-apiserver writes next to the `kubernetes` Endpoints
        (proxies read slices: without it the Service's cluster IP rejects connections)."""
        assert self.api is not None
        address = self.api.config.advertise_address
        wanted = {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "name": "kubernetes",
                "namespace": "default",
                "labels": {"kubernetes.io/service-name": "kubernetes"},
            },
            "addressType": "IPv6" if ":" in address else "IPv4",
            "endpoints": [{"addresses": [address], "conditions": {"ready": True}}],
            "ports": [{"name": "https", "port": self.options.https_listen_port, "protocol": "TCP"}],
        }
        path = "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices"
        status, current = await self.request("GET", f"{path}/kubernetes")
        if status == 404:
            await self.request("POST", path, wanted)
        elif current and (
            current.get("endpoints") != wanted["endpoints"]
            or current.get("ports") != wanted["ports"]
        ):
            current.update(endpoints=wanted["endpoints"], ports=wanted["ports"])
            await self.request("PUT", f"{path}/kubernetes", current)

    async def _ensure_dns_service(self) -> None:
        """kube-system/kube-dns at --cluster-dns; the nodes' DNS servers are its endpoints
        (timonel/agent/dns/registration.py)."""
        from timonel.agent.dns.registration import dns_service

        path = "/api/v1/namespaces/kube-system/services"
        status, _ = await self.request("GET", f"{path}/kube-dns")
        if status == 404:
            status, body = await self.request("POST", path, dns_service(self.options.cluster_dns))
            if status >= 300:
                log.warning("cannot create the kube-dns Service: %s", (body or {}).get("message"))


def keep_long_lived_objects_out_of_gc() -> None:
    """The watch caches hold many acyclic objects for a long time; full collections that
    walk them all stall the event loop for hundreds of milliseconds. Survivors of each
    full collection are moved out of the collector's view (gc.freeze), so the next one
    walks only what was created since."""
    gc.collect()
    gc.freeze()

    def freeze_survivors(phase: str, info: dict[str, int]) -> None:
        if phase == "stop" and info.get("generation") == 2:
            gc.freeze()

    gc.callbacks.append(freeze_survivors)


async def serve(options: ServerOptions) -> None:
    """Run until SIGINT/SIGTERM: start, wait, then shut down gracefully (a second signal
    forces the exit)."""
    started = time.perf_counter()
    plane = ControlPlane(options)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = 0

    def on_signal() -> None:
        nonlocal signals
        signals += 1
        if signals > 1:
            os._exit(1)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, on_signal)
    await plane.start()
    keep_long_lived_objects_out_of_gc()
    log.info(
        "timonel server ready at %s in %.0f ms; kubeconfig: %s",
        plane.url,
        (time.perf_counter() - started) * 1000,
        plane.kubeconfig_path,
    )
    try:
        await stop.wait()
    finally:
        await asyncio.wait_for(plane.stop(), timeout=10)
