"""What a pod worker must do to bring a pod's runtime state to its spec (pure).

`compute_pod_actions` is kubelet's computePodActions: given the pod, what the runtime
has for it (`PodRuntime`) and the probe results, it decides whether the sandbox must be
(re)created, which init containers and containers to start and which containers to kill.
It never looks at backoff: starting a container that crashed recently is deferred by the
worker, as kubelet's doBackOff does at start time.

Rules (as kubelet 1.32, sidecar containers enabled):
- a pod needs a new sandbox when it has none, when the newest one is not ready, when more
  than one is ready, when its network mode changed, or when a pod-network sandbox has no
  IP; then everything restarts from the first init container (or the containers), unless
  the pod does not restart containers and some already ran;
- init containers run one at a time in order; a failed one is restarted unless the pod's
  restartPolicy is Never (then the pod is killed); sidecars (init containers with
  restartPolicy Always) are started in order, the next init container only once the
  sidecar has started (its startup probe succeeded), and are kept running;
- a container that is not running is started when the restart policy says so; a running
  one is killed and restarted when its spec changed or its liveness or startup probe
  failed;
- with nothing left to run, the pod is killed (its sandbox stopped).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from timonel.agent.kubelet.runtimestate import (
    CREATED,
    EXITED,
    RUNNING,
    UNKNOWN,
    ContainerState,
    PodRuntime,
)
from timonel.api.objects import Object

SUCCESS: Final = "success"
FAILURE: Final = "failure"

REASON_LIVENESS: Final = "liveness"
REASON_STARTUP: Final = "startup"
REASON_UNKNOWN: Final = "unknown"
REASON_POST_START: Final = "poststart"


@dataclass(frozen=True)
class KillInfo:
    name: str
    message: str
    reason: str = ""


@dataclass
class PodActions:
    kill_pod: bool = False
    create_sandbox: bool = False
    sandbox_id: str = ""
    attempt: int = 0
    init_containers_to_start: list[int] = field(default_factory=list)
    containers_to_start: list[int] = field(default_factory=list)
    containers_to_kill: dict[str, KillInfo] = field(default_factory=dict)

    @property
    def is_noop(self) -> bool:
        return not (
            self.kill_pod
            or self.create_sandbox
            or self.init_containers_to_start
            or self.containers_to_start
            or self.containers_to_kill
        )


@dataclass(frozen=True)
class ProbeResults:
    """Liveness and startup results by container ID ("success" / "failure"; absent while
    a probe has not concluded)."""

    liveness: Mapping[str, str] = field(default_factory=dict)
    startup: Mapping[str, str] = field(default_factory=dict)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def spec(pod: Object) -> dict[str, Any]:
    return _dict(pod.get("spec"))


def init_containers(pod: Object) -> list[dict[str, Any]]:
    return [_dict(c) for c in _list(spec(pod).get("initContainers"))]


def containers(pod: Object) -> list[dict[str, Any]]:
    return [_dict(c) for c in _list(spec(pod).get("containers"))]


def is_sidecar(container: Mapping[str, Any]) -> bool:
    """An init container that keeps running (restartPolicy: Always)."""
    return container.get("restartPolicy") == "Always"


def restart_policy(pod: Object) -> str:
    return str(spec(pod).get("restartPolicy") or "Always")


def restarts_on_failure(pod: Object) -> bool:
    return restart_policy(pod) != "Never"


def container_hash(container: Mapping[str, Any]) -> str:
    """A digest of the container's spec: a running container whose spec hash differs
    (its image was changed) is restarted."""
    canonical = json.dumps(container, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def is_host_network(pod: Object) -> bool:
    return bool(spec(pod).get("hostNetwork"))


def sandbox_changed(pod: Object, runtime: PodRuntime) -> tuple[bool, int, str]:
    """(needs a new sandbox, its attempt number, the current sandbox's ID)."""
    if not runtime.sandboxes:
        return True, 0, ""
    newest = runtime.sandboxes[0]
    ready = sum(1 for s in runtime.sandboxes if s.ready)
    if ready > 1 or not newest.ready:
        return True, newest.attempt + 1, newest.id
    if newest.host_network != is_host_network(pod):
        return True, newest.attempt + 1, ""
    if not is_host_network(pod) and not newest.ip:
        return True, newest.attempt + 1, newest.id
    return False, newest.attempt, newest.id


def should_restart(container: Mapping[str, Any], pod: Object, runtime: PodRuntime) -> bool:
    """kubelet's ShouldContainerBeRestarted."""
    if _dict(pod.get("metadata")).get("deletionTimestamp"):
        return False
    status = runtime.latest(str(container.get("name", "")))
    if status is None:
        return True
    if status.state == RUNNING:
        return False
    if status.state in (UNKNOWN, CREATED):
        return True
    policy = restart_policy(pod)
    if policy == "Never":
        return False
    return not (policy == "OnFailure" and status.exit_code == 0)


def _succeeded(container: Mapping[str, Any], runtime: PodRuntime) -> bool:
    status = runtime.latest(str(container.get("name", "")))
    return status is not None and status.state == EXITED and status.exit_code == 0


def _init_failed(status: ContainerState) -> bool:
    if status.state == EXITED and status.exit_code != 0:
        return True
    return status.state == UNKNOWN


def has_any_regular_container_created(pod: Object, runtime: PodRuntime) -> bool:
    for container in containers(pod):
        status = runtime.latest(str(container.get("name", "")))
        if status is not None and status.state != UNKNOWN:
            return True
    return False


def _compute_init_actions(
    pod: Object, runtime: PodRuntime, probes: ProbeResults, actions: PodActions
) -> bool:
    """Fill in the init containers to start (or kill the pod); True once initialized."""
    inits = init_containers(pod)
    if not inits:
        return True
    initialized = any(
        (status := runtime.latest(str(c.get("name", "")))) is not None
        and status.state in (CREATED, RUNNING)
        for c in containers(pod)
    )
    previously_initialized = initialized
    to_start: list[int] = []
    for index in range(len(inits) - 1, -1, -1):
        container = inits[index]
        name = str(container.get("name", ""))
        status = runtime.latest(name)
        sidecar = is_sidecar(container)
        if status is None:
            if previously_initialized and sidecar:
                to_start.append(index)
            continue
        if previously_initialized and not sidecar:
            continue
        if status.state == CREATED:
            to_start.append(index)
        elif status.state == RUNNING:
            if sidecar:
                started = True
                if container.get("startupProbe"):
                    result = probes.startup.get(status.id)
                    started = result == SUCCESS
                    if result == FAILURE:
                        actions.containers_to_kill[status.id] = KillInfo(
                            name, f"Init container {name} failed startup probe", REASON_STARTUP
                        )
                        to_start.append(index)
                if started:
                    if index == len(inits) - 1:
                        initialized = True
                    elif not previously_initialized:
                        to_start.append(index + 1)
                    if status.hash and status.hash != container_hash(container):
                        actions.containers_to_kill[status.id] = KillInfo(
                            name, f"Init container {name} definition changed"
                        )
                        to_start.append(index)
                    elif probes.liveness.get(status.id) == FAILURE:
                        actions.containers_to_kill[status.id] = KillInfo(
                            name, f"Init container {name} failed liveness probe", REASON_LIVENESS
                        )
                        to_start.append(index)
        elif status.state == EXITED:
            if sidecar:
                to_start.append(index)
            elif _init_failed(status):
                if not restarts_on_failure(pod):
                    actions.kill_pod = True
                    actions.init_containers_to_start = []
                    return False
                to_start.append(index)
            elif index == len(inits) - 1:
                initialized = True
            else:
                to_start.append(index + 1)
        else:  # unknown
            if not sidecar and not restarts_on_failure(pod):
                actions.kill_pod = True
                actions.init_containers_to_start = []
                return False
            actions.containers_to_kill[status.id] = KillInfo(
                name, f'Init container is in "{status.state}" state, try killing it', REASON_UNKNOWN
            )
            to_start.append(index)
        previously_initialized = True
    if not previously_initialized:
        to_start.append(0)
    actions.init_containers_to_start = sorted(set(to_start))
    return initialized


def compute_pod_actions(
    pod: Object, runtime: PodRuntime, probes: ProbeResults | None = None
) -> PodActions:
    probes = probes or ProbeResults()
    create, attempt, sandbox_id = sandbox_changed(pod, runtime)
    actions = PodActions(
        kill_pod=create, create_sandbox=create, sandbox_id=sandbox_id, attempt=attempt
    )
    regular = containers(pod)
    if create:
        if not restarts_on_failure(pod) and attempt != 0 and runtime.containers:
            actions.create_sandbox = False
            return actions
        to_start = [
            index
            for index, container in enumerate(regular)
            if not (restart_policy(pod) == "OnFailure" and _succeeded(container, runtime))
        ]
        if not to_start and has_any_regular_container_created(pod, runtime):
            actions.create_sandbox = False
            return actions
        if init_containers(pod):
            actions.init_containers_to_start = [0]
            return actions
        actions.containers_to_start = to_start
        return actions

    initialized = _compute_init_actions(pod, runtime, probes, actions)
    if actions.kill_pod or not initialized:
        return actions

    keep = 0
    for index, container in enumerate(regular):
        name = str(container.get("name", ""))
        status = runtime.latest(name)
        if status is None or status.state != RUNNING:
            if should_restart(container, pod, runtime):
                actions.containers_to_start.append(index)
                if status is not None and status.state == UNKNOWN:
                    actions.containers_to_kill[status.id] = KillInfo(
                        name,
                        f'Container is in "{status.state}" state, try killing it before restart',
                        REASON_UNKNOWN,
                    )
            continue
        restart = restarts_on_failure(pod)
        if status.hash and status.hash != container_hash(container):
            message, reason, restart = f"Container {name} definition changed", "", True
        elif probes.liveness.get(status.id) == FAILURE:
            message, reason = f"Container {name} failed liveness probe", REASON_LIVENESS
        elif probes.startup.get(status.id) == FAILURE:
            message, reason = f"Container {name} failed startup probe", REASON_STARTUP
        else:
            keep += 1
            continue
        if restart:
            message = f"{message}, will be restarted"
            actions.containers_to_start.append(index)
        actions.containers_to_kill[status.id] = KillInfo(name, message, reason)

    if keep == 0 and not actions.containers_to_start:
        actions.kill_pod = True
        actions.init_containers_to_start = []
    return actions
