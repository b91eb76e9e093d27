"""Small builders for pods and runtime states used by the kubelet unit tests."""

from __future__ import annotations

from typing import Any

from timonel.agent.kubelet.actions import container_hash
from timonel.agent.kubelet.runtimestate import (
    EXITED,
    RUNNING,
    ContainerState,
    PodRuntime,
    SandboxState,
)
from timonel.api.objects import Object

SECOND = 1_000_000_000
T0 = 1_700_000_000 * SECOND


def make_pod(
    *containers: dict[str, Any],
    init: list[dict[str, Any]] | None = None,
    restart_policy: str = "Always",
    **spec: Any,
) -> Object:
    pod: Object = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "ns", "uid": "uid-1"},
        "spec": {
            "restartPolicy": restart_policy,
            "containers": list(containers) or [{"name": "c", "image": "busybox"}],
            **spec,
        },
        "status": {"phase": "Pending", "qosClass": "BestEffort"},
    }
    if init:
        pod["spec"]["initContainers"] = init
    return pod


def sandbox(
    ready: bool = True, attempt: int = 0, ip: str = "10.1.0.5", **extra: Any
) -> SandboxState:
    return SandboxState(
        id=f"sb{attempt}", attempt=attempt, ready=ready, created_at=T0 + attempt, ip=ip, **extra
    )


def running(
    pod: Object, name: str, *, id: str | None = None, restarts: int = 0, created: int = 1
) -> ContainerState:
    spec = _spec_of(pod, name)
    return ContainerState(
        id=id or f"{name}-{restarts}",
        name=name,
        state=RUNNING,
        restart_count=restarts,
        hash=container_hash(spec),
        created_at=T0 + created * SECOND,
        started_at=T0 + created * SECOND,
        image="docker.io/library/busybox:latest",
        image_ref="sha256:abc",
    )


def exited(
    pod: Object,
    name: str,
    code: int = 0,
    *,
    id: str | None = None,
    restarts: int = 0,
    created: int = 1,
    reason: str = "",
    message: str = "",
) -> ContainerState:
    spec = _spec_of(pod, name)
    return ContainerState(
        id=id or f"{name}-{restarts}",
        name=name,
        state=EXITED,
        restart_count=restarts,
        hash=container_hash(spec),
        created_at=T0 + created * SECOND,
        started_at=T0 + created * SECOND,
        finished_at=T0 + (created + 1) * SECOND,
        exit_code=code,
        reason=reason or ("Completed" if code == 0 else "Error"),
        message=message,
        image="docker.io/library/busybox:latest",
        image_ref="sha256:abc",
    )


def runtime(
    *containers: ContainerState, sandboxes: tuple[SandboxState, ...] | None = None
) -> PodRuntime:
    ordered = tuple(sorted(containers, key=lambda c: c.created_at, reverse=True))
    return PodRuntime(
        uid="uid-1",
        sandboxes=(sandbox(),) if sandboxes is None else sandboxes,
        containers=ordered,
    )


def _spec_of(pod: Object, name: str) -> dict[str, Any]:
    spec = pod["spec"]
    for container in [*spec.get("initContainers", []), *spec["containers"]]:
        if container["name"] == name:
            return dict(container)
    raise KeyError(name)
