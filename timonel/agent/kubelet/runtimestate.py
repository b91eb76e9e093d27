"""What the container runtime knows about a pod, read back from CRI.

All the agent's state lives in the runtime: sandboxes and containers carry the pod's UID,
name and namespace as labels, and each container its spec hash, restart count and
termination-message settings as annotations (the same keys kubelet uses, so `crictl`
shows them as for any kubelet). Reading this back after a restart is how the agent adopts
the pods it left running.

`PodRuntime` lists a pod's sandboxes and containers newest first, as kubelet's PodStatus
does; `read_pod_runtime` fills it from CRI and `list_node_pods` is the cheap relist the
pod lifecycle event generator runs every second.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final, TypeVar

from timonel.agent.runtime.cri import CriClient, NotFound, api

POD_NAME_LABEL: Final = "io.kubernetes.pod.name"
POD_NAMESPACE_LABEL: Final = "io.kubernetes.pod.namespace"
POD_UID_LABEL: Final = "io.kubernetes.pod.uid"
CONTAINER_NAME_LABEL: Final = "io.kubernetes.container.name"
NODE_LABEL: Final = "io.timonel.node"
"""Marks what this node's agent created, so a shared runtime's other sandboxes are left alone."""

CONTAINER_HASH_ANNOTATION: Final = "io.kubernetes.container.hash"
RESTART_COUNT_ANNOTATION: Final = "io.kubernetes.container.restartCount"
TERMINATION_MESSAGE_PATH_ANNOTATION: Final = "io.kubernetes.container.terminationMessagePath"
TERMINATION_MESSAGE_POLICY_ANNOTATION: Final = "io.kubernetes.container.terminationMessagePolicy"
POD_TERMINATION_GRACE_ANNOTATION: Final = "io.kubernetes.pod.terminationGracePeriod"
CONFIG_SOURCE_ANNOTATION: Final = "kubernetes.io/config.source"

MAX_TERMINATION_MESSAGE: Final = 4096
MAX_TERMINATION_LOG_BYTES: Final = 2048
MAX_TERMINATION_LOG_LINES: Final = 80

CREATED: Final = "created"
RUNNING: Final = "running"
EXITED: Final = "exited"
UNKNOWN: Final = "unknown"

_STATES: Final = {
    api.CONTAINER_CREATED: CREATED,
    api.CONTAINER_RUNNING: RUNNING,
    api.CONTAINER_EXITED: EXITED,
    api.CONTAINER_UNKNOWN: UNKNOWN,
}


@dataclass(frozen=True)
class SandboxState:
    id: str
    attempt: int
    ready: bool
    created_at: int
    """Nanoseconds since the epoch, as CRI reports times."""
    ip: str = ""
    additional_ips: tuple[str, ...] = ()
    host_network: bool = False

    @property
    def ips(self) -> tuple[str, ...]:
        return (self.ip, *self.additional_ips) if self.ip else self.additional_ips


@dataclass(frozen=True)
class ContainerState:
    id: str
    name: str
    state: str
    sandbox_id: str = ""
    restart_count: int = 0
    hash: str = ""
    created_at: int = 0
    started_at: int = 0
    finished_at: int = 0
    exit_code: int = 0
    reason: str = ""
    message: str = ""
    image: str = ""
    image_ref: str = ""
    log_path: str = ""


@dataclass(frozen=True)
class PodRuntime:
    uid: str
    name: str = ""
    namespace: str = ""
    sandboxes: tuple[SandboxState, ...] = ()
    """Newest first."""
    containers: tuple[ContainerState, ...] = ()
    """Newest first."""

    def latest(self, name: str) -> ContainerState | None:
        """The newest container of that name (kubelet's FindContainerStatusByName)."""
        for container in self.containers:
            if container.name == name:
                return container
        return None

    def named(self, name: str) -> list[ContainerState]:
        return [c for c in self.containers if c.name == name]

    @property
    def running(self) -> list[ContainerState]:
        return [c for c in self.containers if c.state == RUNNING]

    @property
    def ready_sandbox(self) -> SandboxState | None:
        for sandbox in self.sandboxes:
            if sandbox.ready:
                return sandbox
        return None

    @property
    def is_empty(self) -> bool:
        return not self.sandboxes and not self.containers


# -- reading from CRI --------------------------------------------------------------------


def sandbox_state(status: api.PodSandboxStatus) -> SandboxState:
    network = status.network
    mode = status.linux.namespaces.options.network
    return SandboxState(
        id=status.id,
        attempt=status.metadata.attempt,
        ready=status.state == api.SANDBOX_READY,
        created_at=status.created_at,
        ip=network.ip,
        additional_ips=tuple(ip.ip for ip in network.additional_ips if ip.ip),
        host_network=mode == api.NODE,
    )


def _int(text: str | None) -> int:
    try:
        return int(text or 0)
    except ValueError:
        return 0


def read_termination_message(status: api.ContainerStatus) -> tuple[str, bool]:
    """The message the container left at its terminationMessagePath, and whether the
    logs should be read instead (FallbackToLogsOnError with an empty file)."""
    annotations = status.annotations
    path = annotations.get(TERMINATION_MESSAGE_PATH_ANNOTATION, "")
    fallback = (
        annotations.get(TERMINATION_MESSAGE_POLICY_ANNOTATION) == "FallbackToLogsOnError"
        and status.exit_code != 0
        and status.reason != "ContainerCannotRun"
    )
    if not path:
        return "", fallback
    for mount in status.mounts:
        if mount.container_path != path:
            continue
        try:
            with open(mount.host_path, "rb") as file:
                data = file.read(MAX_TERMINATION_MESSAGE)
        except FileNotFoundError:
            return "", fallback
        except OSError as error:
            return f"Error on reading termination log {mount.host_path}: {error}", False
        return data.decode(errors="replace"), fallback and not data
    return "", fallback


def tail_of_log(path: str) -> str:
    """The end of a CRI log file (at most 80 lines, 2048 bytes), messages only."""
    try:
        with open(path, "rb") as file:
            file.seek(0, 2)
            size = file.tell()
            file.seek(max(0, size - 64 * 1024))
            raw = file.read()
    except OSError:
        return ""
    messages: list[str] = []
    for line in raw.decode(errors="replace").splitlines()[-MAX_TERMINATION_LOG_LINES:]:
        # "<time> <stream> <P|F> <message>": partial lines (P) continue on the next one.
        parts = line.split(" ", 3)
        if len(parts) == 4:
            messages.append(parts[3] + ("" if parts[2] == "P" else "\n"))
    text = "".join(messages)
    return text[-MAX_TERMINATION_LOG_BYTES:]


def container_state(status: api.ContainerStatus) -> ContainerState:
    """One container as the pod worker sees it; an exited container's message carries its
    termination message (kubelet appends it to the runtime's own message)."""
    state = _STATES.get(status.state, UNKNOWN)
    message = status.message if state == EXITED else ""
    if state == EXITED:
        termination, from_logs = read_termination_message(status)
        if from_logs and status.log_path:
            termination = tail_of_log(status.log_path)
        if termination:
            message = f"{message}: {termination}" if message else termination
    return ContainerState(
        id=status.id,
        name=status.labels.get(CONTAINER_NAME_LABEL) or status.metadata.name,
        state=state,
        restart_count=_int(status.annotations.get(RESTART_COUNT_ANNOTATION)),
        hash=status.annotations.get(CONTAINER_HASH_ANNOTATION, ""),
        created_at=status.created_at,
        started_at=status.started_at if state != CREATED else 0,
        finished_at=status.finished_at if state == EXITED else 0,
        exit_code=status.exit_code if state == EXITED else 0,
        reason=status.reason if state == EXITED else "",
        message=message,
        image=status.image.image,
        image_ref=status.image_ref,
        log_path=status.log_path,
    )


def _newest_first(items: Iterable[ContainerState]) -> tuple[ContainerState, ...]:
    return tuple(sorted(items, key=lambda c: c.created_at, reverse=True))


Answer = TypeVar("Answer")


async def _or_none(call: Awaitable[Answer]) -> Answer | None:
    """The answer, or None when the object is gone (NotFound)."""
    try:
        return await call
    except NotFound:
        return None


async def read_pod_runtime(cri: CriClient, uid: str) -> PodRuntime:
    """Everything the runtime has for the pod with this UID (sandboxes and containers,
    with full container statuses). Objects removed while reading are skipped."""
    selector = {POD_UID_LABEL: uid}
    sandboxes, containers = await asyncio.gather(
        cri.list_pod_sandbox(api.PodSandboxFilter(label_selector=selector)),
        cri.list_containers(api.ContainerFilter(label_selector=selector)),
    )
    ordered = sorted(sandboxes, key=lambda s: s.created_at, reverse=True)
    name = next((n for s in ordered if (n := s.labels.get(POD_NAME_LABEL, ""))), "")
    namespace = next((n for s in ordered if (n := s.labels.get(POD_NAMESPACE_LABEL, ""))), "")
    # Full statuses for ready sandboxes (and the newest one), and for every container:
    # asked for all at once, as each is a round trip to the runtime.
    detailed = [
        index
        for index, sandbox in enumerate(ordered)
        if sandbox.state == api.SANDBOX_READY or index == 0
    ]
    sandbox_answers, container_answers = await asyncio.gather(
        asyncio.gather(*(_or_none(cri.pod_sandbox_status(ordered[i].id)) for i in detailed)),
        asyncio.gather(*(_or_none(cri.container_status(c.id)) for c in containers)),
    )
    statuses = dict(zip(detailed, sandbox_answers, strict=True))
    sandbox_states: list[SandboxState] = []
    for index, sandbox in enumerate(ordered):
        answer = statuses.get(index)
        if answer is not None:
            sandbox_states.append(sandbox_state(answer.status))
            continue
        sandbox_states.append(
            SandboxState(
                id=sandbox.id,
                attempt=sandbox.metadata.attempt,
                ready=sandbox.state == api.SANDBOX_READY,
                created_at=sandbox.created_at,
            )
        )
    container_states: list[ContainerState] = []
    for container, status in zip(containers, container_answers, strict=True):
        if status is None:
            continue  # removed while reading
        state = container_state(status.status)
        container_states.append(dataclasses.replace(state, sandbox_id=container.pod_sandbox_id))
    return PodRuntime(
        uid=uid,
        name=name,
        namespace=namespace,
        sandboxes=tuple(sandbox_states),
        containers=_newest_first(container_states),
    )


@dataclass(frozen=True)
class RelistedPod:
    """A pod as one relist sees it: enough to tell whether anything changed."""

    uid: str
    name: str
    namespace: str
    signature: tuple[tuple[str, int], ...]


async def list_node_pods(cri: CriClient, node_name: str | None) -> dict[str, RelistedPod]:
    """Every pod the runtime has (for this node when `node_name` is given), by UID, with a
    signature of its sandboxes' and containers' states."""
    selector = {NODE_LABEL: node_name} if node_name else {}
    sandboxes, containers = await asyncio.gather(
        cri.list_pod_sandbox(api.PodSandboxFilter(label_selector=selector)),
        cri.list_containers(api.ContainerFilter(label_selector=selector)),
    )
    parts: dict[str, list[tuple[str, int]]] = {}
    names: dict[str, tuple[str, str]] = {}
    for sandbox in sandboxes:
        uid = sandbox.labels.get(POD_UID_LABEL)
        if not uid:
            continue
        parts.setdefault(uid, []).append((sandbox.id, int(sandbox.state)))
        names.setdefault(
            uid,
            (sandbox.labels.get(POD_NAME_LABEL, ""), sandbox.labels.get(POD_NAMESPACE_LABEL, "")),
        )
    for container in containers:
        uid = container.labels.get(POD_UID_LABEL)
        if not uid:
            continue
        parts.setdefault(uid, []).append((container.id, 10 + int(container.state)))
        names.setdefault(
            uid,
            (
                container.labels.get(POD_NAME_LABEL, ""),
                container.labels.get(POD_NAMESPACE_LABEL, ""),
            ),
        )
    return {
        uid: RelistedPod(uid, *names[uid], tuple(sorted(signature)))
        for uid, signature in parts.items()
    }


def log_file(log_directory: Path, container_name: str, restart_count: int) -> Path:
    return log_directory / container_name / f"{restart_count}.log"
