"""The node agent's kubelet: the composition of everything in this package.

`NodeAgent(client, options).run()` runs until cancelled:

1. lays out `DATA_DIR/agent/` (containerd state, CNI config, `images/` for air-gapped
   image archives, `pods/` for pod volumes, `logs/` for container logs, `etc/certs.d` for
   registry hosts) and starts its own containerd (`NodeRuntime`, restarted if it dies,
   stopped on shutdown; running pods survive both) — or, with
   `container_runtime_endpoint`, talks to an existing CRI runtime instead;
2. imports the image archives dropped in `DATA_DIR/agent/images/` (once per file);
3. registers the Node and starts its heartbeat (Lease every 10 s, status on change);
4. waits for the node's podCIDR (node IPAM controller) and writes the CNI bridge config;
   the node reports Ready once the runtime says its network is ready;
5. watches the pods bound to this node (`spec.nodeName=<node>`) and the ConfigMaps,
   Secrets and Services they may use, runs one worker per pod, and relists the runtime
   every second. Pods already running in the runtime are adopted, not restarted; pods the
   API no longer has are removed.

`run_agent` is the `timonel agent --server URL --token TOKEN` process.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import signal
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from timonel.agent.dns.node import NodeDns, NodeDnsOptions
from timonel.agent.join import join_when_reachable
from timonel.agent.kubelet.backoff import Backoff
from timonel.agent.kubelet.dns import ClusterDns, parse_resolv_conf
from timonel.agent.kubelet.env import service_environment
from timonel.agent.kubelet.images import (
    ImageManager,
    RegistriesError,
    load_registries,
    render_cri_registry_config,
    write_hosts_dir,
)
from timonel.agent.kubelet.node import (
    KUBELET_PORT,
    Machine,
    NodeFacts,
    NodeReporter,
    Pressure,
    allocatable,
    node_images,
    node_labels,
    read_machine,
    read_pressure,
)
from timonel.agent.kubelet.podsync import NodeContext, PodSyncer, field_path
from timonel.agent.kubelet.podworkers import PodWorkers, pod_uid, relist_forever
from timonel.agent.kubelet.probes import ProbeManager
from timonel.agent.kubelet.process import (
    settle_after_start,
    use_pidfd_child_watcher,
    use_small_tls_read_buffers,
    without_system_ca_bundle,
)
from timonel.agent.kubelet.server import KubeletServer, start_kubelet_api
from timonel.agent.kubelet.volumes import VolumeManager, references
from timonel.agent.proxy.node import run_node_networking
from timonel.agent.runtime.cri import CriClient, CriError
from timonel.agent.runtime.images import import_image_archive
from timonel.agent.runtime.node import NodeRuntime
from timonel.api.errors import StatusError
from timonel.api.objects import Object
from timonel.client.events import EventRecorder
from timonel.client.informer import Informer, strip_managed_fields
from timonel.client.resources import CONFIGMAPS, NODES, PODS, SECRETS, SERVICES
from timonel.client.rest import ApiClient

log = logging.getLogger(__name__)

USER_AGENT: Final = "kubelet/v1.32.0+timonel (linux/amd64) timonel"
FIELD_MANAGER: Final = "kubelet"
DEFAULT_REGISTRIES_FILE: Final = Path("/etc/timonel/registries.yaml")
RUN_ROOT: Final = Path("/run/timonel")
ARCHIVE_SUFFIXES: Final = (".tar", ".tar.gz", ".tgz")
IMPORTED_RECORD: Final = ".imported.json"
RUNTIME_FACTS_PERIOD: Final = 10.0
DEFAULT_CLUSTER_DNS: Final = "10.43.0.10"


@dataclass
class AgentOptions:
    node_name: str
    data_dir: Path
    container_runtime_endpoint: str = ""
    """Empty: run a private containerd; else the CRI endpoint of an existing runtime."""
    cluster_dns: tuple[str, ...] = ()
    """Empty: the cluster IP of the kube-system/kube-dns Service (else 10.43.0.10), read at start."""
    cluster_domain: str = "cluster.local"
    private_registry: Path = DEFAULT_REGISTRIES_FILE
    node_ip: str = ""
    node_labels: Mapping[str, str] = field(default_factory=dict)
    run_dir: Path | None = None
    resolv_conf: Path = Path("/etc/resolv.conf")
    heartbeat_period: float = 10.0
    kubelet_port: int = KUBELET_PORT
    """The kubelet API's port (another one is taken if it is in use)."""

    @property
    def agent_dir(self) -> Path:
        return self.data_dir / "agent"


def default_run_dir(data_dir: Path) -> Path:
    """A short, per-data-dir directory for sockets (unix socket paths are limited)."""
    digest = hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:12]
    return RUN_ROOT / digest


def primary_address() -> str:
    for target in ("192.0.2.1",):
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
                probe.connect((target, 9))
                return str(probe.getsockname()[0])
        except OSError:
            continue
    return "127.0.0.1"


@dataclass
class _RuntimeFacts:
    version: str = ""
    runtime_name: str = "containerd"
    ready: bool = False
    message: str = "container runtime is starting"
    images: list[dict[str, Any]] = field(default_factory=list)


class NodeAgent:
    def __init__(self, client: ApiClient, options: AgentOptions) -> None:
        self.client = client
        self.options = options
        self.node_name = options.node_name
        agent_dir = options.agent_dir
        self.pods_dir = agent_dir / "pods"
        self.logs_dir = agent_dir / "logs" / "pods"
        self.images_dir = agent_dir / "images"
        self.hosts_dir = agent_dir / "etc" / "certs.d"
        self.run_dir = options.run_dir or default_run_dir(options.data_dir)
        self.node_ip = options.node_ip or primary_address()
        self.runtime: NodeRuntime | None = None
        self._cri: CriClient | None = None
        self.machine: Machine | None = None
        self.facts = _RuntimeFacts()
        self.pressure = Pressure()
        self.network_configured = bool(options.container_runtime_endpoint)
        self.started = asyncio.Event()
        self.recorder = EventRecorder(client, "kubelet", host=self.node_name)
        # Cached without managedFields: nothing here reads them (as kube-controller-manager).
        self.pods = Informer(
            client,
            PODS,
            field_selector=f"spec.nodeName={self.node_name}",
            transform=strip_managed_fields,
        )
        self.config_maps = Informer(client, CONFIGMAPS, transform=strip_managed_fields)
        self.secrets = Informer(client, SECRETS, transform=strip_managed_fields)
        self.services = Informer(client, SERVICES, transform=strip_managed_fields)
        self._tasks: list[asyncio.Task[None]] = []
        self.probes = ProbeManager(self.cri, self._wake, self._record_container_event)
        self.workers: PodWorkers | None = None
        self.reporter: NodeReporter | None = None
        self.kubelet_api: KubeletServer | None = None

    # -- small accessors -----------------------------------------------------------------

    def cri(self) -> CriClient:
        assert self._cri is not None, "the container runtime is not connected yet"
        return self._cri

    def _wake(self, uid: str) -> None:
        if self.workers is not None:
            self.workers.wake(uid)

    def _allocatable(self) -> dict[str, str]:
        return allocatable(self.machine) if self.machine is not None else {}

    def _record_event(self, pod: Object, path: str, type_: str, reason: str, message: str) -> None:
        involved = {**pod, "kind": "Pod", "apiVersion": "v1"}
        self.recorder.event(involved, type_, reason, message, field_path=path)

    def _record_node_event(self, reason: str, message: str) -> None:
        # The kubelet refers to its node by name, also as the UID.
        node = {
            "kind": "Node",
            "apiVersion": "v1",
            "metadata": {"name": self.node_name, "uid": self.node_name},
        }
        self.recorder.event(node, "Normal", reason, message)

    def _record_container_event(
        self, pod: Object, container: Mapping[str, Any], type_: str, reason: str, message: str
    ) -> None:
        self._record_event(
            pod, field_path(pod, str(container.get("name", ""))), type_, reason, message
        )

    def _lookup(self, informer: Informer) -> Any:
        def find(namespace: str, name: str) -> Object | None:
            return informer.get(f"{namespace}/{name}")

        return find

    def _service_env(self, pod: Object) -> dict[str, str]:
        meta = pod.get("metadata") or {}
        spec = pod.get("spec") or {}
        return service_environment(
            self.services.all(),
            str(meta.get("namespace", "")),
            enable_service_links=spec.get("enableServiceLinks") is not False,
        )

    # -- lifecycle -----------------------------------------------------------------------

    async def run(self) -> None:
        try:
            await self._start()
            await asyncio.gather(*self._tasks)
        finally:
            await self._shutdown()

    async def _start(self) -> None:
        started = time.perf_counter()
        for directory in (self.pods_dir, self.logs_dir, self.images_dir, self.hosts_dir):
            directory.mkdir(parents=True, exist_ok=True)
        self.machine = await asyncio.to_thread(read_machine, self.options.agent_dir)
        await self._start_runtime()
        await self._import_archives()
        await self._restore_network()
        await self._refresh_runtime_facts()
        await self._start_kubelet_api()

        self.reporter = NodeReporter(
            self.client,
            self.node_name,
            node_labels(self.node_name, self.machine, self.options.node_labels),
            facts=self._node_facts,
            readiness=self._readiness,
            pressure=lambda: self.pressure,
            record=self._record_node_event,
            heartbeat_period=self.options.heartbeat_period,
        )
        self._record_node_event("Starting", "Starting kubelet.")
        await self.reporter.register()
        cluster_dns = await self._discover_cluster_dns()
        self._spawn(self.reporter.run(), "node-heartbeat")
        self.dns = NodeDns(
            self.client,
            NodeDnsOptions(
                node_name=self.node_name,
                address=self.node_ip,
                cluster_dns=cluster_dns.servers,
                cluster_domain=self.options.cluster_domain,
                resolv_conf=self.options.resolv_conf,
            ),
        )
        self._spawn(self.dns.run(), "cluster-dns")
        self._spawn(run_node_networking(self.client, self.node_name), "service-proxy")
        if not self.options.container_runtime_endpoint:
            # The pod network is ours (our CNI bridge): route to the other nodes' pods.
            from timonel.agent.podnetwork.hostgw import HostGatewayRoutes

            self._spawn(HostGatewayRoutes(self.client, self.node_name).run(), "pod-routes")
        self._spawn(self._runtime_facts_loop(), "runtime-facts")
        if not self.network_configured:
            self._spawn(self._configure_network(), "pod-network")

        volumes = VolumeManager(
            self.pods_dir,
            self.client,
            self._lookup(self.config_maps),
            self._lookup(self.secrets),
            node_allocatable=self._allocatable,
        )
        syncer = PodSyncer(
            client=self.client,
            cri=self.cri,
            node=NodeContext(
                node_name=self.node_name,
                node_cgroup=self._node_cgroup(),
                host_ips=lambda: [self.node_ip],
                memory_capacity=lambda: self.machine.memory_bytes if self.machine else 0,
                allocatable=self._allocatable,
                cluster_dns=cluster_dns,
                pods_dir=self.pods_dir,
                logs_dir=self.logs_dir,
                runtime_name=lambda: self.facts.runtime_name,
            ),
            volumes=volumes,
            images=ImageManager(self.cri),
            probes=self.probes,
            config_maps=self._lookup(self.config_maps),
            secrets=self._lookup(self.secrets),
            service_env=self._service_env,
            record_event=self._record_event,
            backoff=Backoff(initial=10.0, maximum=300.0),
        )
        self.workers = PodWorkers(syncer)
        self._watch_dependencies()
        for informer, name in (
            (self.config_maps, "configmaps"),
            (self.secrets, "secrets"),
            (self.services, "services"),
        ):
            self._spawn(informer.run(), f"informer-{name}")
        await asyncio.gather(
            *(i.synced.wait() for i in (self.config_maps, self.secrets, self.services))
        )
        workers = self.workers
        self.pods.add_handlers(
            on_add=workers.update,
            on_update=lambda _old, new: workers.update(new),
            on_delete=workers.remove,
        )
        self._spawn(self.pods.run(), "informer-pods")
        await self.pods.synced.wait()
        self._remove_stale_pod_dirs()
        self._spawn(
            relist_forever(self.cri, self.node_name, workers, self._known_to_api),
            "runtime-relist",
        )
        self.started.set()
        log.info(
            "node agent %s started in %.0f ms (%d pods)",
            self.node_name,
            (time.perf_counter() - started) * 1000,
            len(self.pods.indexer),
        )

    def _spawn(self, work: Any, name: str) -> None:
        self._tasks.append(asyncio.create_task(work, name=name))

    async def _shutdown(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self.kubelet_api is not None:
            await self.kubelet_api.stop()
        if self.workers is not None:
            await self.workers.stop()
        await self.probes.stop()
        if self._cri is not None:
            await self._cri.close()
        if self.runtime is not None:
            with contextlib.suppress(Exception):
                await self.runtime.stop()

    # -- the container runtime -----------------------------------------------------------

    def _node_cgroup(self) -> str:
        if self.runtime is not None:
            return self.runtime.cgroup_parent
        return f"/timonel-{self.node_name}"

    async def _start_runtime(self) -> None:
        if self.options.container_runtime_endpoint:
            self._cri = CriClient(self.options.container_runtime_endpoint, timeout=30)
            return
        try:
            registries = load_registries(self.options.private_registry)
        except (RegistriesError, OSError) as error:
            log.error("ignoring the registries file %s: %s", self.options.private_registry, error)
            registries = load_registries(Path("/nonexistent"))
        write_hosts_dir(self.hosts_dir, registries)
        self.runtime = NodeRuntime(
            node_name=self.node_name,
            state_dir=self.options.agent_dir,
            run_dir=self.run_dir,
            extra_containerd_config=render_cri_registry_config(registries, self.hosts_dir),
        )
        await self.runtime.start()
        self._cri = self.runtime.client(timeout=30)
        log.info(
            "containerd ready (%s)",
            ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in self.runtime.startup_seconds.items()),
        )

    async def _import_archives(self) -> None:
        """Import each image archive of DATA_DIR/agent/images once (air-gapped nodes)."""
        if self.runtime is None:
            return
        record_path = self.images_dir / IMPORTED_RECORD
        try:
            imported: dict[str, list[int]] = json.loads(record_path.read_text())
        except (OSError, ValueError):
            imported = {}
        builtin = self.runtime.images_archive.resolve()
        changed = False
        for path in sorted(self.images_dir.iterdir()):
            if not path.name.endswith(ARCHIVE_SUFFIXES) or path.resolve() == builtin:
                continue
            info = path.stat()
            signature = [info.st_size, info.st_mtime_ns]
            if imported.get(path.name) == signature:
                continue
            try:
                await import_image_archive(self.runtime.socket, path)
            except Exception as error:
                log.error("importing image archive %s failed: %s", path, error)
                continue
            log.info("imported image archive %s", path.name)
            imported[path.name] = signature
            changed = True
        if changed:
            record_path.write_text(json.dumps(imported, indent=1, sort_keys=True))

    async def _restore_network(self) -> None:
        """A node registered before already has its podCIDR: configure the network before
        registering again, so a restarted agent never reports the node NotReady (the node
        lifecycle controller would mark its pods not ready)."""
        if self.network_configured or self.runtime is None:
            return
        try:
            node = await self.client.get(NODES, self.node_name)
        except (StatusError, OSError, TimeoutError):
            return
        cidr = (node.get("spec") or {}).get("podCIDR")
        if not cidr:
            return
        self.runtime.configure_network(str(cidr))
        self.network_configured = True
        for _ in range(50):
            await self._refresh_runtime_facts()
            if self.facts.ready:
                return
            await asyncio.sleep(0.1)

    async def _configure_network(self) -> None:
        assert self.reporter is not None
        cidr = await self.reporter.wait_for_pod_cidr()
        if self.runtime is not None:
            self.runtime.configure_network(cidr)
            log.info("pod network %s configured on node %s", cidr, self.node_name)
        self.network_configured = True
        for _ in range(100):
            await self._refresh_runtime_facts()
            if self.facts.ready:
                break
            await asyncio.sleep(0.1)
        self.reporter.changed.set()

    async def _refresh_runtime_facts(self) -> None:
        facts = self.facts
        try:
            version = await self.cri().version()
            status = await self.cri().status()
            images = await self.cri().list_images()
        except CriError as error:
            facts.ready = False
            facts.message = f"container runtime is down: {error.details}"
            return
        facts.runtime_name = version.runtime_name or "containerd"
        facts.version = f"{version.runtime_name}://{version.runtime_version}"
        conditions = {c.type: c for c in status.status.conditions}
        runtime = conditions.get("RuntimeReady")
        network = conditions.get("NetworkReady")
        if runtime is None or not runtime.status:
            facts.ready = False
            facts.message = "container runtime status check may not have completed yet"
        elif network is None or not network.status or not self.network_configured:
            facts.ready = False
            reason = network.reason if network is not None else "NetworkPluginNotReady"
            message = network.message if network is not None else "network plugin is not ready"
            facts.message = (
                "container runtime network not ready: NetworkReady=false "
                f"reason:{reason} message:{message}"
            )
        else:
            facts.ready = True
            facts.message = ""
        facts.images = node_images(images)

    async def _runtime_facts_loop(self) -> None:
        while True:
            await asyncio.sleep(RUNTIME_FACTS_PERIOD)
            before = (self.facts.ready, self.pressure)
            await self._refresh_runtime_facts()
            self.pressure = await asyncio.to_thread(read_pressure, self.options.agent_dir)
            if (self.facts.ready, self.pressure) != before and self.reporter is not None:
                self.reporter.changed.set()

    def _readiness(self) -> tuple[bool, str]:
        return self.facts.ready, self.facts.message

    def _node_facts(self) -> NodeFacts:
        assert self.machine is not None
        return NodeFacts(
            machine=self.machine,
            addresses=(("InternalIP", self.node_ip), ("Hostname", self.node_name)),
            runtime_version=self.facts.version,
            images=self.facts.images,
            kubelet_port=(
                self.kubelet_api.port if self.kubelet_api is not None else self.options.kubelet_port
            ),
        )

    async def _start_kubelet_api(self) -> None:
        """The HTTPS API the API server proxies logs, exec, attach, port-forward and usage
        to. Without it the node still runs its pods, so a failure is reported, not fatal."""
        try:
            self.kubelet_api = await start_kubelet_api(
                self.client,
                node_name=self.node_name,
                node_ip=self.node_ip,
                tls_dir=self.options.agent_dir / "tls",
                cri=self.cri,
                pod=lambda namespace, name: self.pods.get(f"{namespace}/{name}"),
                pods=self.pods.all,
                port=self.options.kubelet_port,
            )
        except (StatusError, OSError, ValueError) as error:
            log.error("the kubelet API is not served: %s", error)

    async def _discover_cluster_dns(self) -> ClusterDns:
        """The resolver pods get: the configured cluster DNS, or the kube-dns Service's
        address as k3s agents learn it from their server; the host's resolv.conf for the
        rest (search domains, and dnsPolicy Default)."""
        servers = tuple(self.options.cluster_dns)
        if not servers:
            try:
                service = await self.client.get(SERVICES, "kube-dns", "kube-system")
                address = str((service.get("spec") or {}).get("clusterIP") or "")
            except (StatusError, OSError, TimeoutError):
                address = ""
            servers = (address if address and address != "None" else DEFAULT_CLUSTER_DNS,)
        try:
            host = parse_resolv_conf(self.options.resolv_conf.read_text())
        except OSError:
            host = parse_resolv_conf("")
        return ClusterDns(servers=servers, domain=self.options.cluster_domain, host=host)

    # -- pods ------------------------------------------------------------------------------

    def _known_to_api(self, uid: str) -> bool:
        return any(pod_uid(pod) == uid for pod in self.pods.all())

    def _watch_dependencies(self) -> None:
        """A changed ConfigMap or Secret wakes the pods that use it (volumes follow)."""

        def on_change(kind: int) -> Any:
            def handler(*objects: Object) -> None:
                obj = objects[-1]
                meta = obj.get("metadata") or {}
                namespace, name = meta.get("namespace", ""), meta.get("name", "")
                assert self.workers is not None
                self.workers.wake_all(
                    lambda pod: (
                        (pod.get("metadata") or {}).get("namespace") == namespace
                        and name in references(pod)[kind]
                    )
                )

            return handler

        for informer, kind in ((self.config_maps, 0), (self.secrets, 1)):
            handler = on_change(kind)
            informer.add_handlers(on_add=handler, on_update=handler, on_delete=handler)

    def _remove_stale_pod_dirs(self) -> None:
        """Volumes of pods that were removed while the agent was down."""
        known = {pod_uid(pod) for pod in self.pods.all()}
        assert self.workers is not None
        for uid in os.listdir(self.pods_dir):
            if uid not in known:
                self.workers.orphan(uid)


# -- the process ---------------------------------------------------------------------------


async def run_agent(server: str, token: str, options: AgentOptions) -> None:
    """`timonel agent`: join the cluster at `server`, then run the node until SIGINT or
    SIGTERM (a second signal exits at once)."""
    use_small_tls_read_buffers()
    use_pidfd_child_watcher()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
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
    with without_system_ca_bundle():
        client = await join_when_reachable(
            server, token, user_agent=USER_AGENT, field_manager=FIELD_MANAGER
        )
    agent = NodeAgent(client, options)
    running = asyncio.create_task(agent.run(), name="node-agent")
    stopping = asyncio.create_task(stop.wait())
    settling = asyncio.create_task(settle_after_start(agent.started))
    try:
        await asyncio.wait({running, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (running, stopping, settling):
            task.cancel()
        results = await asyncio.gather(running, stopping, settling, return_exceptions=True)
        await client.close()
    failure = results[0]
    if isinstance(failure, BaseException) and not isinstance(failure, asyncio.CancelledError):
        raise failure
