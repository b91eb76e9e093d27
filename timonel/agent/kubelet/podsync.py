"""Making one pod real through CRI: kubelet's SyncPod, its termination and its cleanup.

`PodSyncer.sync(worker)` runs one level-triggered pass for a pod: it reads what the
runtime has for the pod, decides (`compute_pod_actions`, pure), acts (sandbox, init
containers, containers, kills), then writes the status that follows from the runtime's
new state (`generate_pod_status`, pure) through pods/status when it changed. It returns
when the pod should be looked at again (a backoff expiring, a retry), or that the worker
is done (the pod is gone and nothing of it is left on the node).

Three situations:
- *running*: volumes set up (or refreshed), sandbox and containers as the spec says;
  crashed containers restart after CrashLoopBackOff; finished pods (restartPolicy Never
  or OnFailure) have their sandbox stopped and stay as they are;
- *being deleted* (deletionTimestamp): every container is stopped (preStop hook, SIGTERM,
  SIGKILL after the grace period; sidecars after the others), the sandbox stopped, the
  final status written, the pod's containers, sandboxes and volumes removed, and only then
  the pod deleted from the API (grace 0, UID precondition) — "deletion completes only
  when the containers are gone";
- *gone from the API* (force-deleted, or found in the runtime with no pod): everything
  of it is stopped and removed.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from timonel.agent.kubelet.actions import (
    REASON_LIVENESS,
    REASON_POST_START,
    REASON_STARTUP,
    KillInfo,
    PodActions,
    ProbeResults,
    compute_pod_actions,
    containers,
    init_containers,
    is_host_network,
    is_sidecar,
)
from timonel.agent.kubelet.backoff import Backoff, format_duration
from timonel.agent.kubelet.containers import (
    HostVolume,
    container_config,
    container_mounts,
    pod_cgroup_parent,
    pod_log_directory_name,
    pod_sandbox_config,
    verify_run_as_non_root,
)
from timonel.agent.kubelet.dns import (
    ClusterDns,
    host_network_hosts_file,
    hosts_file,
    pod_dns_config,
    sandbox_hostname,
)
from timonel.agent.kubelet.env import (
    ContainerConfigError,
    EnvContext,
    ObjectLookup,
    container_environment,
    expand_command,
)
from timonel.agent.kubelet.handlers import FAILURE, Target, run_action
from timonel.agent.kubelet.images import ImageError, ImageManager
from timonel.agent.kubelet.probes import ProbeManager
from timonel.agent.kubelet.runtimestate import (
    EXITED,
    RUNNING,
    ContainerState,
    PodRuntime,
    read_pod_runtime,
    sandbox_state,
)
from timonel.agent.kubelet.status import PodStatusInputs, generate_pod_status
from timonel.agent.kubelet.volumes import VolumeError, VolumeManager
from timonel.agent.runtime.containerd import remove_cgroup_tree
from timonel.agent.runtime.cri import CriClient, CriError, NotFound, api
from timonel.api.errors import StatusError
from timonel.api.objects import Object, now_rfc3339
from timonel.api.quantity import QuantityError, parse_quantity_value
from timonel.client.resources import PODS
from timonel.client.rest import MERGE_PATCH, ApiClient

log = logging.getLogger(__name__)

MINIMUM_GRACE_PERIOD: Final = 2
EVICTION_CHECK_PERIOD: Final = 10.0
DEFAULT_GRACE_PERIOD: Final = 30
VOLUME_RETRY: Final = (1.0, 30.0)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _meta(pod: Object) -> dict[str, Any]:
    return _dict(pod.get("metadata"))


def pod_description(pod: Object) -> str:
    """format.Pod: name_namespace(uid)."""
    meta = _meta(pod)
    return f"{meta.get('name', '')}_{meta.get('namespace', '')}({meta.get('uid', '')})"


def field_path(pod: Object, name: str) -> str:
    for container in init_containers(pod):
        if container.get("name") == name:
            return f"spec.initContainers{{{name}}}"
    return f"spec.containers{{{name}}}"


def find_container(pod: Object, name: str) -> dict[str, Any] | None:
    for container in [*init_containers(pod), *containers(pod)]:
        if container.get("name") == name:
            return container
    return None


def sized_empty_dirs(pod: Object) -> list[tuple[str, int, str]]:
    """(volume, limit in bytes, limit as written) of the pod's disk-backed emptyDirs that
    have a sizeLimit (memory-backed ones are bounded by their tmpfs)."""
    found = []
    for volume in _dict(pod.get("spec")).get("volumes") or []:
        source = _dict(_dict(volume).get("emptyDir"))
        limit = source.get("sizeLimit")
        if limit is None or source.get("medium") == "Memory" or "emptyDir" not in volume:
            continue
        with contextlib.suppress(QuantityError, ValueError):
            found.append((str(volume.get("name")), parse_quantity_value(limit).value(), str(limit)))
    return found


def directory_usage(path: Path) -> int:
    """Bytes a directory tree occupies on disk (as du counts them)."""
    total = 0
    for root, directories, files in os.walk(path):
        for name in [*directories, *files]:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
    return total


def strip_none(value: Any) -> Any:
    """`value` without null members of objects (absent and null mean the same in status)."""
    if isinstance(value, dict):
        return {k: strip_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [strip_none(v) for v in value]
    return value


def merge_patch(old: Any, new: Any) -> Any:
    """The JSON merge patch (RFC 7386) that turns `old` into `new`."""
    if not isinstance(old, dict) or not isinstance(new, dict):
        return new
    patch: dict[str, Any] = {key: None for key in old if key not in new}
    for key, value in new.items():
        if key not in old:
            if value is not None:
                patch[key] = value
        elif strip_none(old[key]) != strip_none(value):
            patch[key] = merge_patch(old[key], value)
    return patch


def _newer_version(a: str, b: str) -> bool:
    """Whether resourceVersion `a` is newer than `b` (numeric versions; else unknown: no)."""
    return a.isdigit() and b.isdigit() and int(a) > int(b)


@dataclass
class PodState:
    """What the agent remembers about one pod between syncs."""

    uid: str
    pod: Object | None = None
    """The pod as the API last showed it; None once it is gone from the API."""
    last_pod: Object | None = None
    """The last version seen, kept after the pod is gone (for hooks and grace periods)."""
    waiting_reasons: dict[str, tuple[str, str]] = field(default_factory=dict)
    reported: tuple[str, dict[str, Any]] | None = None
    """(resourceVersion, status) of our last status write."""
    deleted_from_api: bool = False
    terminated: bool = False
    volume_failures: int = 0
    adopted: bool = False
    eviction: str = ""


@dataclass
class NodeContext:
    """What every pod sync needs to know about the node."""

    node_name: str
    node_cgroup: str
    host_ips: Callable[[], list[str]]
    memory_capacity: Callable[[], int]
    allocatable: Callable[[], Mapping[str, str]]
    cluster_dns: ClusterDns
    pods_dir: Path
    logs_dir: Path
    runtime_name: Callable[[], str]
    host_hosts_file: Path = Path("/etc/hosts")


@dataclass
class PodSyncer:
    client: ApiClient
    cri: Callable[[], CriClient]
    node: NodeContext
    volumes: VolumeManager
    images: ImageManager
    probes: ProbeManager
    config_maps: ObjectLookup
    secrets: ObjectLookup
    service_env: Callable[[Object], dict[str, str]]
    record_event: Callable[[Object, str, str, str, str], None]
    """(pod, field path, type, reason, message)."""
    backoff: Backoff = field(default_factory=Backoff)
    sandbox_slots: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(4))

    # -- entry point -----------------------------------------------------------------

    async def sync(self, state: PodState) -> tuple[bool, float | None]:
        """One pass; returns (done, seconds until the pod should be synced again)."""
        runtime = await read_pod_runtime(self.cri(), state.uid)
        pod = state.pod
        if pod is None:
            await self._remove_everything(state, runtime)
            return True, None
        if _meta(pod).get("deletionTimestamp"):
            await self._terminate(state, pod, runtime)
            return False, None
        return False, await self._sync_running(state, pod, runtime)

    # -- running pods ------------------------------------------------------------------

    async def _sync_running(
        self, state: PodState, pod: Object, runtime: PodRuntime
    ) -> float | None:
        if not state.adopted:
            self._adopt_probe_results(pod, runtime)
            state.adopted = True
        phase = _dict(pod.get("status")).get("phase")
        if phase in ("Succeeded", "Failed"):
            await self._stop_pod(pod, runtime, grace_override=None)
            runtime = await read_pod_runtime(self.cri(), state.uid)
            await self._finish_terminal(state, pod, runtime)
            await self._write_status(state, pod, runtime)
            return None
        requeue: list[float] = []
        try:
            volumes = await self.volumes.setup(pod)
            state.volume_failures = 0
        except VolumeError as error:
            self.record_event(pod, "", "Warning", "FailedMount", str(error))
            state.volume_failures += 1
            await self._write_status(state, pod, runtime)
            initial, maximum = VOLUME_RETRY
            return float(min(maximum, initial * 2 ** min(state.volume_failures - 1, 8)))

        sized = sized_empty_dirs(pod)
        if sized:
            for name, limit, text in sized:
                used = await asyncio.to_thread(directory_usage, Path(volumes[name].path))
                if used > limit:
                    message = f'Usage of EmptyDir volume "{name}" exceeds the limit "{text}". '
                    await self._evict(state, pod, runtime, message)
                    return None
            requeue.append(EVICTION_CHECK_PERIOD)

        results = ProbeResults(liveness=self.probes.liveness, startup=self.probes.startup)
        actions = compute_pod_actions(pod, runtime, results)
        if not actions.is_noop:
            requeue += await self._apply(state, pod, runtime, actions, volumes)
            runtime = await read_pod_runtime(self.cri(), state.uid)
            await self._collect_dead_containers(pod, runtime)
        sandbox = runtime.ready_sandbox
        pod_ip = self.node.host_ips()[0] if is_host_network(pod) and self.node.host_ips() else ""
        if sandbox is not None and not pod_ip:
            pod_ip = sandbox.ip
        self.probes.sync_pod(pod, runtime, pod_ip)
        if actions.kill_pod and not actions.create_sandbox:
            await self._finish_terminal(state, pod, runtime)
        await self._write_status(state, pod, runtime)
        return min(requeue) if requeue else None

    async def _evict(self, state: PodState, pod: Object, runtime: PodRuntime, message: str) -> None:
        """Stop the pod for good and report it Failed/Evicted (kubelet's eviction manager)."""
        self.record_event(pod, "", "Warning", "Evicted", message)
        state.eviction = message
        await self._stop_pod(pod, runtime, grace_override=MINIMUM_GRACE_PERIOD)
        runtime = await read_pod_runtime(self.cri(), state.uid)
        await self._finish_terminal(state, pod, runtime)
        await self._write_status(state, pod, runtime)

    def _adopt_probe_results(self, pod: Object, runtime: PodRuntime) -> None:
        """Keep readiness and started as the API shows them for containers that were
        already running when this agent started."""
        status = _dict(pod.get("status"))
        for entry in [
            *(status.get("containerStatuses") or []),
            *(status.get("initContainerStatuses") or []),
        ]:
            entry = _dict(entry)
            container_id = str(entry.get("containerID", "")).partition("://")[2]
            current = runtime.latest(str(entry.get("name", "")))
            if current is None or current.id != container_id or current.state != RUNNING:
                continue
            self.probes.seed(
                container_id, ready=bool(entry.get("ready")), started=bool(entry.get("started"))
            )

    async def _finish_terminal(self, state: PodState, pod: Object, runtime: PodRuntime) -> None:
        """A pod whose containers are all done: its volumes and cgroup go (kubelet's
        SyncTerminatedPod); its containers stay for their logs until the pod is deleted."""
        if state.terminated or runtime.running:
            return
        self.probes.remove_pod(state.uid)
        await asyncio.to_thread(self.volumes.teardown, state.uid)
        remove_cgroup_tree(pod_cgroup_parent(pod, self.node.node_cgroup))
        state.terminated = True

    async def _apply(
        self,
        state: PodState,
        pod: Object,
        runtime: PodRuntime,
        actions: PodActions,
        volumes: dict[str, HostVolume],
    ) -> list[float]:
        requeue: list[float] = []
        if actions.kill_pod:
            if actions.create_sandbox and runtime.sandboxes:
                self.record_event(
                    pod,
                    "",
                    "Normal",
                    "SandboxChanged",
                    "Pod sandbox changed, it will be killed and re-created.",
                )
            await self._stop_pod(pod, runtime, grace_override=None)
            if actions.create_sandbox:
                await self._remove_init_containers(pod, runtime)
        else:
            by_id = {c.id: c for c in runtime.containers}
            await asyncio.gather(
                *(
                    self._kill_container(pod, by_id[container_id], info)
                    for container_id, info in actions.containers_to_kill.items()
                    if container_id in by_id
                )
            )
        if not actions.create_sandbox and (
            actions.kill_pod
            or not (actions.init_containers_to_start or actions.containers_to_start)
        ):
            return requeue

        sandbox_id = actions.sandbox_id
        sandbox_config = self._sandbox_config(pod, actions.attempt)
        if actions.create_sandbox:
            try:
                sandbox_id = await self._run_sandbox(pod, sandbox_config)
            except CriError as error:
                self.record_event(
                    pod,
                    "",
                    "Warning",
                    "FailedCreatePodSandBox",
                    f"Failed to create pod sandbox: {error.details}",
                )
                return [2.0]
            created = sandbox_state((await self.cri().pod_sandbox_status(sandbox_id)).status)
            runtime = dataclasses.replace(runtime, sandboxes=(created, *runtime.sandboxes))
        else:
            sandbox_config = self._sandbox_config(
                pod, runtime.sandboxes[0].attempt if runtime.sandboxes else 0
            )
        sandbox = next((s for s in runtime.sandboxes if s.id == sandbox_id), None)
        pod_ips = (
            list(self.node.host_ips())
            if is_host_network(pod)
            else list(sandbox.ips if sandbox else ())
        )
        hosts_path = self._write_hosts_file(pod, pod_ips)

        for index in actions.init_containers_to_start:
            container = init_containers(pod)[index]
            delay = await self._start_container(
                state,
                pod,
                container,
                runtime,
                sandbox_id,
                sandbox_config,
                volumes,
                pod_ips,
                hosts_path,
            )
            if delay is not None:
                requeue.append(delay)
                if not is_sidecar(container):
                    return requeue
                continue
            if not is_sidecar(container):
                return requeue
        for index in actions.containers_to_start:
            container = containers(pod)[index]
            delay = await self._start_container(
                state,
                pod,
                container,
                runtime,
                sandbox_id,
                sandbox_config,
                volumes,
                pod_ips,
                hosts_path,
            )
            if delay is not None:
                requeue.append(delay)
        return requeue

    def _sandbox_config(self, pod: Object, attempt: int) -> api.PodSandboxConfig:
        return pod_sandbox_config(
            pod,
            attempt=attempt,
            node_name=self.node.node_name,
            node_cgroup=self.node.node_cgroup,
            log_directory=str(self.node.logs_dir / pod_log_directory_name(pod)),
            hostname=sandbox_hostname(pod, self.node.cluster_dns.domain),
            dns=pod_dns_config(pod, self.node.cluster_dns),
        )

    async def _run_sandbox(self, pod: Object, config: api.PodSandboxConfig) -> str:
        Path(config.log_directory).mkdir(parents=True, exist_ok=True)
        async with self.sandbox_slots:
            return await self.cri().run_pod_sandbox(config, timeout=120)

    def _write_hosts_file(self, pod: Object, pod_ips: list[str]) -> str | None:
        if not pod_ips:
            return None
        path = self.volumes.pod_dir(str(_meta(pod).get("uid", ""))) / "etc-hosts"
        if is_host_network(pod):
            try:
                host = self.node.host_hosts_file.read_text()
            except OSError:
                host = ""
            content = host_network_hosts_file(pod, host)
        else:
            content = hosts_file(pod, pod_ips, self.node.cluster_dns.domain)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            if path.read_text() == content:
                return str(path)
        except FileNotFoundError:
            pass
        temporary = path.with_name(".etc-hosts.tmp")
        temporary.write_text(content)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
        return str(path)

    # -- starting a container ------------------------------------------------------------

    @staticmethod
    def _waiting(state: PodState, name: str, reason: str, message: str) -> None:
        """Why the container could not start, shown as its waiting state until it does."""
        state.waiting_reasons[name] = (reason, message)

    async def _start_container(
        self,
        state: PodState,
        pod: Object,
        container: dict[str, Any],
        runtime: PodRuntime,
        sandbox_id: str,
        sandbox_config: api.PodSandboxConfig,
        volumes: dict[str, HostVolume],
        pod_ips: list[str],
        hosts_path: str | None,
    ) -> float | None:
        """Start one container; None when it started, else seconds until it may be tried
        again (its waiting reason is recorded for the status)."""
        name = str(container.get("name", ""))
        path = field_path(pod, name)
        previous = runtime.latest(name)
        meta = _meta(pod)

        if previous is not None and previous.state == EXITED:
            key = f"{meta.get('uid')}/{name}/{previous.hash}"
            finished = previous.finished_at / 1e9
            now = time.time()
            if self.backoff.in_backoff_since(key, finished, now):
                delay = self.backoff.delay(key)
                self.record_event(
                    pod,
                    path,
                    "Warning",
                    "BackOff",
                    f"Back-off restarting failed container {name} in pod {pod_description(pod)}",
                )
                self._waiting(
                    state,
                    name,
                    "CrashLoopBackOff",
                    f"back-off {format_duration(delay)} restarting failed container={name} pod={pod_description(pod)}",
                )
                return max(0.05, self.backoff.remaining(key, finished, now))
            self.backoff.next(key, finished)

        def record(type_: str, reason: str, message: str) -> None:
            self.record_event(pod, path, type_, reason, message)

        try:
            image = await self.images.ensure_image(
                state.uid, container, self._pull_secrets(pod), record, sandbox_config
            )
        except ImageError as error:
            record("Warning", "Failed", f"Error: {error.reason}")
            self._waiting(state, name, error.reason, error.message)
            remaining = self.images.backoff.delay(f"{state.uid}/{container.get('image', '')}")
            return max(1.0, remaining)

        try:
            env = container_environment(pod, container, self._env_context(pod, pod_ips))
            command, args = expand_command(
                container.get("command") or [], container.get("args") or [], env
            )
            image_uid = image.uid.value if image.HasField("uid") else None
            verify_run_as_non_root(pod, container, image_uid, image.username)
            termination_file = self._termination_file(pod, name)
            mounts = container_mounts(
                container, volumes, env, hosts_file=hosts_path, termination_file=termination_file
            )
        except ContainerConfigError as error:
            record("Warning", "Failed", f"Error: {error}")
            self._waiting(state, name, "CreateContainerConfigError", str(error))
            return 2.0

        restart_count = (
            previous.restart_count + 1
            if previous is not None
            else self._restart_count_from_logs(pod, name)
        )
        Path(sandbox_config.log_directory, name).mkdir(parents=True, exist_ok=True)
        config = container_config(
            pod,
            container,
            node_name=self.node.node_name,
            restart_count=restart_count,
            image=image.id,
            env=env,
            mounts=mounts,
            command=command,
            args=args,
            memory_capacity=self.node.memory_capacity(),
        )
        try:
            container_id = await self.cri().create_container(
                sandbox_id, config, sandbox_config, timeout=60
            )
        except CriError as error:
            record("Warning", "Failed", f"Error: {error.details}")
            self._waiting(state, name, "CreateContainerError", error.details)
            return 2.0
        record("Normal", "Created", f"Created container: {name}")
        try:
            await self.cri().start_container(container_id, timeout=60)
        except CriError as error:
            record("Warning", "Failed", f"Error: {error.details}")
            self._waiting(state, name, "RunContainerError", error.details)
            return 1.0
        record("Normal", "Started", f"Started container {name}")
        state.waiting_reasons.pop(name, None)

        hook = _dict(_dict(container.get("lifecycle")).get("postStart"))
        if hook:
            pod_ip = pod_ips[0] if pod_ips else ""
            grace = self._grace_period(pod, container, "")
            outcome = await run_action(
                hook, Target(self.cri, container_id, pod_ip, container), float(grace)
            )
            if outcome.result != "success":
                record("Warning", "FailedPostStartHook", "PostStartHook failed")
                started = ContainerState(id=container_id, name=name, state=RUNNING)
                await self._kill_container(
                    pod, started, KillInfo(name, "FailedPostStartHook", REASON_POST_START)
                )
                self._waiting(state, name, "PostStartHookError", outcome.output)
                return 1.0
        return None

    def _pull_secrets(self, pod: Object) -> list[Object]:
        namespace = str(_meta(pod).get("namespace", ""))
        found = []
        for reference in _dict(pod.get("spec")).get("imagePullSecrets") or []:
            secret = self.secrets(namespace, str(_dict(reference).get("name", "")))
            if secret is not None:
                found.append(secret)
        return found

    def _env_context(self, pod: Object, pod_ips: list[str]) -> EnvContext:
        return EnvContext(
            config_maps=self.config_maps,
            secrets=self.secrets,
            pod_ips=pod_ips,
            host_ips=self.node.host_ips(),
            service_env=self.service_env(pod),
            node_allocatable=self.node.allocatable(),
        )

    def _termination_file(self, pod: Object, name: str) -> str:
        directory = self.volumes.pod_dir(str(_meta(pod).get("uid", ""))) / "containers" / name
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / secrets.token_hex(4)
        path.touch()
        os.chmod(path, 0o666)
        return str(path)

    def _restart_count_from_logs(self, pod: Object, name: str) -> int:
        """After the runtime lost a container (a reboot), continue its log numbering."""
        directory = self.node.logs_dir / pod_log_directory_name(pod) / name
        highest = 0
        with contextlib.suppress(OSError):
            for entry in directory.iterdir():
                stem = entry.name.split(".", 1)[0]
                if entry.name.endswith(".log") and stem.isdigit():
                    highest = max(highest, int(stem) + 1)
        return highest

    # -- stopping ------------------------------------------------------------------------

    def _grace_period(self, pod: Object, container: dict[str, Any] | None, reason: str) -> int:
        meta = _meta(pod)
        spec = _dict(pod.get("spec"))
        if meta.get("deletionGracePeriodSeconds") is not None:
            grace = int(meta["deletionGracePeriodSeconds"])
        elif spec.get("terminationGracePeriodSeconds") is not None:
            grace = int(spec["terminationGracePeriodSeconds"])
        else:
            grace = DEFAULT_GRACE_PERIOD
        probe = {REASON_LIVENESS: "livenessProbe", REASON_STARTUP: "startupProbe"}.get(reason)
        if probe and container is not None:
            override = _dict(container.get(probe)).get("terminationGracePeriodSeconds")
            if override is not None:
                grace = int(override)
        return grace

    async def _kill_container(
        self,
        pod: Object,
        container: ContainerState,
        info: KillInfo,
        grace_override: int | None = None,
    ) -> None:
        spec = find_container(pod, container.name)
        message = info.message or f"Stopping container {container.name}"
        self.record_event(pod, field_path(pod, container.name), "Normal", "Killing", message)
        grace = self._grace_period(pod, spec, info.reason)
        if grace_override is not None:
            grace = grace_override
        hook = _dict(_dict((spec or {}).get("lifecycle")).get("preStop"))
        if hook and grace > 0 and container.state == RUNNING:
            started = time.monotonic()
            pod_ip = str(_dict(pod.get("status")).get("podIP", ""))
            target = Target(self.cri, container.id, pod_ip, spec or {})
            try:
                outcome = await asyncio.wait_for(run_action(hook, target, float(grace)), grace)
                if outcome.result == FAILURE or outcome.result == "error":
                    self.record_event(
                        pod,
                        field_path(pod, container.name),
                        "Warning",
                        "FailedPreStopHook",
                        "PreStopHook failed",
                    )
            except TimeoutError:
                log.info(
                    "preStop hook of %s/%s did not finish in %d s",
                    pod_description(pod),
                    container.name,
                    grace,
                )
            grace -= int(time.monotonic() - started)
        grace = max(grace, MINIMUM_GRACE_PERIOD)
        try:
            await self.cri().stop_container(container.id, grace)
        except NotFound:
            pass
        except CriError as error:
            log.warning(
                "stopping container %s of %s failed: %s",
                container.name,
                pod_description(pod),
                error,
            )

    async def _stop_pod(
        self, pod: Object, runtime: PodRuntime, *, grace_override: int | None
    ) -> None:
        """Stop every running container (regular ones first, then sidecars in reverse
        order) and every ready sandbox."""
        sidecar_names = [str(c.get("name")) for c in init_containers(pod) if is_sidecar(c)]
        running = runtime.running
        first = [c for c in running if c.name not in sidecar_names]
        await asyncio.gather(
            *(self._kill_container(pod, c, KillInfo(c.name, ""), grace_override) for c in first)
        )
        for name in reversed(sidecar_names):
            for container in [c for c in running if c.name == name]:
                await self._kill_container(pod, container, KillInfo(name, ""), grace_override)
        for sandbox in runtime.sandboxes:
            if sandbox.ready:
                try:
                    await self.cri().stop_pod_sandbox(sandbox.id, timeout=60)
                except NotFound:
                    pass
                except CriError as error:
                    self.record_event(
                        pod, "", "Warning", "FailedKillPod", f"error killing pod: {error.details}"
                    )

    async def _remove_init_containers(self, pod: Object, runtime: PodRuntime) -> None:
        names = {str(c.get("name")) for c in init_containers(pod)}
        for container in runtime.containers:
            if container.name in names:
                with contextlib.suppress(NotFound):
                    await self.cri().remove_container(container.id)

    async def _collect_dead_containers(self, pod: Object, runtime: PodRuntime) -> None:
        """Keep the running containers and the newest stopped one of each name (it is
        what lastState shows); remove older ones, as kubelet's container GC does."""
        stopped_seen: set[str] = set()
        removed: set[str] = set()
        for container in runtime.containers:
            if container.state == RUNNING:
                continue
            if container.name not in stopped_seen:
                stopped_seen.add(container.name)
                continue
            with contextlib.suppress(NotFound):
                await self.cri().remove_container(container.id)
                removed.add(container.id)
        if removed:
            self.probes.forget_containers(removed)

    # -- deletion --------------------------------------------------------------------------

    async def _terminate(self, state: PodState, pod: Object, runtime: PodRuntime) -> None:
        self.probes.remove_pod(state.uid)
        await self._stop_pod(pod, runtime, grace_override=None)
        runtime = await read_pod_runtime(self.cri(), state.uid)
        await self._write_status(state, pod, runtime, terminal=True)
        await self._remove_runtime(state.uid, runtime)
        await asyncio.to_thread(self.volumes.teardown, state.uid)
        remove_cgroup_tree(pod_cgroup_parent(pod, self.node.node_cgroup))
        meta = _meta(pod)
        try:
            await self.client.delete(
                PODS,
                str(meta.get("name", "")),
                str(meta.get("namespace", "")),
                grace_period_seconds=0,
                preconditions={"uid": state.uid},
            )
        except StatusError as error:
            if error.code not in (404, 409):
                raise
        state.deleted_from_api = True

    async def _remove_runtime(self, uid: str, runtime: PodRuntime) -> None:
        for container in runtime.containers:
            with contextlib.suppress(NotFound):
                if container.state == RUNNING:
                    await self.cri().stop_container(container.id, MINIMUM_GRACE_PERIOD)
                await self.cri().remove_container(container.id)
        for sandbox in runtime.sandboxes:
            with contextlib.suppress(NotFound):
                await self.cri().stop_pod_sandbox(sandbox.id, timeout=60)
                await self.cri().remove_pod_sandbox(sandbox.id, timeout=60)
        self.probes.forget_containers({c.id for c in runtime.containers})

    async def _remove_everything(self, state: PodState, runtime: PodRuntime) -> None:
        """The pod is gone from the API: stop and remove what is left of it."""
        self.probes.remove_pod(state.uid)
        last = state.last_pod
        if last is not None and runtime.running:
            await self._stop_pod(last, runtime, grace_override=MINIMUM_GRACE_PERIOD)
            runtime = await read_pod_runtime(self.cri(), state.uid)
        await self._remove_runtime(state.uid, runtime)
        await asyncio.to_thread(self.volumes.teardown, state.uid)
        if last is not None:
            remove_cgroup_tree(pod_cgroup_parent(last, self.node.node_cgroup))
        self.images.forget_pod(state.uid)
        self.backoff.forget_prefix(f"{state.uid}/")

    # -- status ----------------------------------------------------------------------------

    async def _write_status(
        self, state: PodState, pod: Object, runtime: PodRuntime, *, terminal: bool = False
    ) -> None:
        base = pod
        meta = _meta(pod)
        if state.reported is not None:
            version, status = state.reported
            current = str(meta.get("resourceVersion", ""))
            if version == current or _newer_version(version, current):
                base = {**pod, "status": status}
        inputs = PodStatusInputs(
            now=now_rfc3339(),
            host_ips=self.node.host_ips(),
            runtime_name=self.node.runtime_name(),
            readiness=self.probes.readiness,
            startup={k: v == "success" for k, v in self.probes.startup.items()},
            waiting_reasons=state.waiting_reasons,
            terminal=terminal,
            eviction=state.eviction,
        )
        new_status = generate_pod_status(base, runtime, inputs)
        old_status = _dict(base.get("status"))
        patch = merge_patch(old_status, new_status)
        if not patch:
            return
        try:
            updated = await self.client.patch(
                PODS,
                str(meta.get("name", "")),
                {"metadata": {"uid": state.uid}, "status": patch},
                str(meta.get("namespace", "")),
                patch_type=MERGE_PATCH,
                subresource="status",
            )
        except StatusError as error:
            if error.code in (404, 409, 422):
                log.debug("status of %s not written: %s", pod_description(pod), error)
                return
            raise
        state.reported = (
            str(_meta(updated).get("resourceVersion", "")),
            _dict(updated.get("status")),
        )
