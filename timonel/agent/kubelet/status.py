"""A pod's status from what the runtime reports, as kubelet computes it (pure).

`generate_pod_status` is kubelet's generateAPIPodStatus: container statuses from the
runtime's containers (the newest of each name gives `state`, the one before it
`lastState`), overridden by the reason the last start attempt failed for (CrashLoopBackOff,
ErrImagePull, CreateContainerConfigError, ...) while the container waits to be started
again; `ready` and `started` from the probes; the phase from the containers (`pod_phase`,
kubelet's getPhase); the kubelet's conditions (PodReadyToStartContainers, Initialized,
Ready, ContainersReady, PodScheduled) with transition times kept while a condition's
status stays the same; pod and host addresses; startTime.

Init container statuses follow the spec's order, container statuses are sorted by name.
A terminal phase never changes back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from timonel.agent.kubelet.actions import (
    containers,
    init_containers,
    is_host_network,
    is_sidecar,
    restart_policy,
    should_restart,
)
from timonel.agent.kubelet.runtimestate import (
    EXITED,
    RUNNING,
    UNKNOWN,
    ContainerState,
    PodRuntime,
)
from timonel.api.objects import Object
from timonel.api.quantity import QuantityError, parse_quantity_value

CONTAINER_CREATING: Final = "ContainerCreating"
POD_INITIALIZING: Final = "PodInitializing"
KUBELET_CONDITIONS: Final = (
    "PodReadyToStartContainers",
    "Initialized",
    "Ready",
    "ContainersReady",
    "PodScheduled",
)
TERMINAL_PHASES: Final = ("Succeeded", "Failed")


@dataclass(frozen=True)
class PodStatusInputs:
    """Everything besides the pod and the runtime that the status depends on."""

    now: str
    host_ips: Sequence[str] = ()
    runtime_name: str = "containerd"
    readiness: Mapping[str, bool] = field(default_factory=dict)
    """Readiness probe results by container ID (absent: no result yet)."""
    startup: Mapping[str, bool] = field(default_factory=dict)
    """Startup probe results by container ID (absent: no result yet)."""
    waiting_reasons: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    """Why the last start of a container (by name) failed: (reason, message)."""
    terminal: bool = False
    """The pod's containers were stopped for good (deleted, or finished)."""
    eviction: str = ""
    """Why the agent evicted the pod (then it is Failed with reason Evicted)."""


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def rfc3339(nanoseconds: int) -> str:
    return datetime.fromtimestamp(nanoseconds / 1e9, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _terminated(container: ContainerState, container_id: str) -> dict[str, Any]:
    terminated: dict[str, Any] = {"exitCode": container.exit_code}
    if container.reason:
        terminated["reason"] = container.reason
    if container.message:
        terminated["message"] = container.message
    terminated["startedAt"] = rfc3339(container.started_at) if container.started_at else None
    terminated["finishedAt"] = rfc3339(container.finished_at) if container.finished_at else None
    terminated["containerID"] = container_id
    return terminated


def _state_of(
    container: ContainerState, container_id: str, old: Mapping[str, Any] | None
) -> dict[str, Any]:
    if container.state == RUNNING:
        return {"running": {"startedAt": rfc3339(container.started_at)}}
    if container.state == EXITED:
        return {"terminated": _terminated(container, container_id)}
    if container.state == UNKNOWN and old is not None and "running" in _dict(old.get("state")):
        return {
            "terminated": {
                "exitCode": 137,
                "reason": "ContainerStatusUnknown",
                "message": "The container could not be located when the pod was terminated",
                "startedAt": None,
                "finishedAt": None,
            }
        }
    return {"waiting": {}}


def _volume_mounts(spec_container: Mapping[str, Any]) -> list[dict[str, Any]]:
    mounts = []
    for mount in _list(spec_container.get("volumeMounts")):
        mount = _dict(mount)
        entry: dict[str, Any] = {
            "name": mount.get("name", ""),
            "mountPath": mount.get("mountPath", ""),
        }
        if mount.get("readOnly"):
            entry["readOnly"] = True
            entry["recursiveReadOnly"] = mount.get("recursiveReadOnly") or "Disabled"
        mounts.append(entry)
    return mounts


def _container_statuses(
    pod: Object,
    runtime: PodRuntime,
    spec_containers: list[dict[str, Any]],
    old_statuses: list[Any],
    inputs: PodStatusInputs,
    *,
    is_init: bool,
) -> list[dict[str, Any]]:
    default_reason = POD_INITIALIZING if init_containers(pod) else CONTAINER_CREATING
    old_by_name = {str(_dict(s).get("name")): _dict(s) for s in old_statuses}
    statuses: dict[str, dict[str, Any]] = {}
    for container in spec_containers:
        name = str(container.get("name", ""))
        status: dict[str, Any] = {
            "name": name,
            "image": container.get("image", ""),
            "imageID": "",
            "lastState": {},
            "ready": False,
            "restartCount": 0,
            "started": False,
            "state": {"waiting": {"reason": default_reason}},
        }
        old = old_by_name.get(name)
        if old is not None:
            if "terminated" in _dict(old.get("state")):
                status = {**old}
            else:
                status["restartCount"] = old.get("restartCount", 0)
                status["lastState"] = old.get("lastState") or {}
        statuses[name] = status

    seen: dict[str, int] = {}
    for found in runtime.containers:
        if found.name not in statuses or seen.get(found.name, 0) >= 2:
            continue
        container_id = f"{inputs.runtime_name}://{found.id}"
        old = old_by_name.get(found.name)
        state = _state_of(found, container_id, old)
        if seen.get(found.name, 0) == 0:
            spec_container = next(c for c in spec_containers if c.get("name") == found.name)
            status = {
                "name": found.name,
                "image": _reported_image(spec_container, found),
                "imageID": found.image_ref,
                "containerID": container_id,
                "lastState": {},
                "ready": False,
                "restartCount": found.restart_count,
                "started": False,
                "state": state,
            }
            if found.state == UNKNOWN and "terminated" in state and old is not None:
                status["restartCount"] = int(old.get("restartCount", 0)) + 1
            mounts = _volume_mounts(spec_container)
            if mounts:
                status["volumeMounts"] = mounts
            statuses[found.name] = status
        else:
            statuses[found.name]["lastState"] = state
        seen[found.name] = seen.get(found.name, 0) + 1

    for container in spec_containers:
        name = str(container.get("name", ""))
        latest = runtime.latest(name)
        if (
            is_init
            and not is_sidecar(container)
            and latest is not None
            and latest.state == EXITED
            and latest.exit_code == 0
        ):
            continue
        if not should_restart(container, pod, runtime):
            continue
        waiting = inputs.waiting_reasons.get(name)
        if waiting is None:
            continue
        status = statuses[name]
        if "terminated" in _dict(status.get("state")):
            status["lastState"] = status["state"]
        reason, message = waiting
        status["state"] = {
            "waiting": {"reason": reason, **({"message": message} if message else {})}
        }

    for container in spec_containers:
        status = statuses[str(container.get("name", ""))]
        running = "running" in _dict(status.get("state"))
        container_id = str(status.get("containerID", "")).partition("://")[2]
        started = running and (
            not container.get("startupProbe") or inputs.startup.get(container_id, False)
        )
        status["started"] = started
        if is_init and not is_sidecar(container):
            terminated = _dict(_dict(status.get("state")).get("terminated"))
            status["ready"] = bool(terminated) and terminated.get("exitCode") == 0
        else:
            status["ready"] = started and (
                not container.get("readinessProbe") or inputs.readiness.get(container_id, False)
            )

    if is_init:
        return [statuses[str(c.get("name", ""))] for c in spec_containers]
    return [statuses[name] for name in sorted(statuses)]


def _reported_image(spec_container: Mapping[str, Any], container: ContainerState) -> str:
    """The image as the status names it: the runtime's name for it, unless the image has
    several names and the runtime picked another than the one the spec asked for."""
    requested = normalized_image_name(str(spec_container.get("image", "")))
    return requested or container.image


def normalized_image_name(image: str) -> str:
    """`busybox` → `docker.io/library/busybox:latest`, as containerd names images."""
    if not image:
        return ""
    name, at, digest = image.partition("@")
    first, slash, _ = name.partition("/")
    if not slash or ("." not in first and ":" not in first and first != "localhost"):
        name = f"docker.io/{name}" if slash else f"docker.io/library/{name}"
    if at:
        return f"{name}@{digest}"
    last = name.rsplit("/", 1)[-1]
    if ":" not in last:
        name += ":latest"
    return name


def pod_phase(
    pod: Object, init_statuses: list[dict[str, Any]], statuses: list[dict[str, Any]], terminal: bool
) -> str:
    """kubelet's getPhase."""
    by_name = {str(s.get("name")): s for s in [*init_statuses, *statuses]}
    pending_initialization = 0
    failed_initialization = 0
    for container in init_containers(pod):
        if is_sidecar(container):
            continue
        status = by_name.get(str(container.get("name")))
        if status is None:
            pending_initialization += 1
            continue
        state = _dict(status.get("state"))
        if "running" in state:
            pending_initialization += 1
        elif "terminated" in state:
            if _dict(state["terminated"]).get("exitCode", 0) != 0:
                failed_initialization += 1
        elif "waiting" in state:
            last_terminated = _dict(_dict(status.get("lastState")).get("terminated"))
            if last_terminated:
                if last_terminated.get("exitCode", 0) != 0:
                    failed_initialization += 1
            else:
                pending_initialization += 1
        else:
            pending_initialization += 1

    unknown = running = waiting = stopped = succeeded = 0
    for container in init_containers(pod):
        if not is_sidecar(container):
            continue
        status = by_name.get(str(container.get("name")))
        if status is None:
            unknown += 1
            continue
        state = _dict(status.get("state"))
        if "running" in state:
            if not status.get("started"):
                pending_initialization += 1
            running += 1
        elif "terminated" in state:
            pass
        elif "waiting" in state:
            if not _dict(_dict(status.get("lastState")).get("terminated")):
                pending_initialization += 1
                waiting += 1
        else:
            pending_initialization += 1
            unknown += 1

    for container in containers(pod):
        status = by_name.get(str(container.get("name")))
        if status is None:
            unknown += 1
            continue
        state = _dict(status.get("state"))
        if "running" in state:
            running += 1
        elif "terminated" in state:
            stopped += 1
            if _dict(state["terminated"]).get("exitCode", 0) == 0:
                succeeded += 1
        elif "waiting" in state:
            if _dict(_dict(status.get("lastState")).get("terminated")):
                stopped += 1
            else:
                waiting += 1
        else:
            unknown += 1

    policy = restart_policy(pod)
    if failed_initialization > 0 and policy == "Never":
        return "Failed"
    if (pending_initialization > 0 and not has_regular_started(statuses)) or waiting > 0:
        return "Pending"
    if running > 0 and unknown == 0:
        return "Running"
    if running == 0 and stopped > 0 and unknown == 0:
        if terminal:
            return "Succeeded" if stopped == succeeded else "Failed"
        if policy == "Always":
            return "Running"
        if stopped == succeeded:
            return "Succeeded"
        if policy == "Never":
            return "Failed"
        return "Running"
    return "Pending"


def has_regular_started(statuses: list[dict[str, Any]]) -> bool:
    """Whether a regular container is running or has terminated (kubelet's
    HasAnyRegularContainerStarted)."""
    return any(
        "running" in _dict(s.get("state")) or "terminated" in _dict(s.get("state"))
        for s in statuses
    )


def _names(values: list[str]) -> str:
    return "[" + " ".join(values) + "]"


def initialized_condition(
    pod: Object, init_statuses: list[dict[str, Any]], statuses: list[dict[str, Any]], phase: str
) -> dict[str, Any]:
    inits = init_containers(pod)
    if not inits:
        return {"type": "Initialized", "status": "True"}
    by_name = {str(s.get("name")): s for s in init_statuses}
    unknown: list[str] = []
    incomplete: list[str] = []
    for container in inits:
        name = str(container.get("name", ""))
        status = by_name.get(name)
        if status is None:
            unknown.append(name)
            continue
        if is_sidecar(container):
            if not status.get("started"):
                incomplete.append(name)
        else:
            terminated = _dict(_dict(status.get("state")).get("terminated"))
            if not terminated or terminated.get("exitCode", 0) != 0:
                incomplete.append(name)
    if phase == "Succeeded" and not unknown:
        return {"type": "Initialized", "status": "True", "reason": "PodCompleted"}
    if has_regular_started(statuses):
        return {"type": "Initialized", "status": "True"}
    messages = []
    if unknown:
        messages.append(f"containers with unknown status: {_names(unknown)}")
    if incomplete:
        messages.append(f"containers with incomplete status: {_names(incomplete)}")
    if messages:
        return {
            "type": "Initialized",
            "status": "False",
            "reason": "ContainersNotInitialized",
            "message": ", ".join(messages),
        }
    return {"type": "Initialized", "status": "True"}


def containers_ready_condition(
    pod: Object, init_statuses: list[dict[str, Any]], statuses: list[dict[str, Any]], phase: str
) -> dict[str, Any]:
    by_name = {str(s.get("name")): s for s in [*init_statuses, *statuses]}
    unknown: list[str] = []
    unready: list[str] = []
    for container in [c for c in init_containers(pod) if is_sidecar(c)] + containers(pod):
        name = str(container.get("name", ""))
        status = by_name.get(name)
        if status is None:
            unknown.append(name)
        elif not status.get("ready"):
            unready.append(name)
    if phase == "Succeeded" and not unknown:
        return {"type": "ContainersReady", "status": "False", "reason": "PodCompleted"}
    if phase == "Failed":
        return {"type": "ContainersReady", "status": "False", "reason": "PodFailed"}
    messages = []
    if unknown:
        messages.append(f"containers with unknown status: {_names(unknown)}")
    if unready:
        messages.append(f"containers with unready status: {_names(unready)}")
    if messages:
        return {
            "type": "ContainersReady",
            "status": "False",
            "reason": "ContainersNotReady",
            "message": ", ".join(messages),
        }
    return {"type": "ContainersReady", "status": "True"}


def ready_condition(
    pod: Object, containers_ready: Mapping[str, Any], conditions: list[Any]
) -> dict[str, Any]:
    if containers_ready.get("status") != "True":
        ready = {"type": "Ready", "status": containers_ready.get("status")}
        for key in ("reason", "message"):
            if containers_ready.get(key):
                ready[key] = containers_ready[key]
        return ready
    by_type = {str(_dict(c).get("type")): _dict(c) for c in conditions}
    messages = []
    for gate in _list(_dict(pod.get("spec")).get("readinessGates")):
        kind = str(_dict(gate).get("conditionType", ""))
        condition = by_type.get(kind)
        if condition is None:
            messages.append(
                f'corresponding condition of pod readiness gate "{kind}" does not exist.'
            )
        elif condition.get("status") != "True":
            messages.append(
                f'the status of pod readiness gate "{kind}" is not "True", but {condition.get("status")}'
            )
    if messages:
        return {
            "type": "Ready",
            "status": "False",
            "reason": "ReadinessGatesNotReady",
            "message": ", ".join(messages),
        }
    return {"type": "Ready", "status": "True"}


def _with_times(condition: dict[str, Any], old_conditions: list[Any], now: str) -> dict[str, Any]:
    previous = next(
        (_dict(c) for c in old_conditions if _dict(c).get("type") == condition["type"]), None
    )
    transition = now
    if previous is not None and previous.get("status") == condition["status"]:
        transition = previous.get("lastTransitionTime") or now
    return {
        "type": condition["type"],
        "status": condition["status"],
        "lastProbeTime": None,
        "lastTransitionTime": transition,
        **{k: condition[k] for k in ("reason", "message") if condition.get(k)},
    }


def generate_pod_status(
    pod: Object, runtime: PodRuntime, inputs: PodStatusInputs
) -> dict[str, Any]:
    old = _dict(pod.get("status"))
    init_statuses = _container_statuses(
        pod,
        runtime,
        init_containers(pod),
        _list(old.get("initContainerStatuses")),
        inputs,
        is_init=True,
    )
    statuses = _container_statuses(
        pod, runtime, containers(pod), _list(old.get("containerStatuses")), inputs, is_init=False
    )
    phase = pod_phase(pod, init_statuses, statuses, inputs.terminal)
    if phase not in TERMINAL_PHASES and old.get("phase") in TERMINAL_PHASES:
        phase = str(old["phase"])
    if inputs.eviction:
        phase = "Failed"

    sandbox = runtime.sandboxes[0] if runtime.sandboxes else None
    old_conditions = _list(old.get("conditions"))
    network_ready = (
        sandbox is not None
        and sandbox.ready
        and (sandbox.host_network or bool(sandbox.ip))
        and phase not in TERMINAL_PHASES
    )
    containers_ready = containers_ready_condition(pod, init_statuses, statuses, phase)
    generated = [
        {"type": "PodReadyToStartContainers", "status": "True" if network_ready else "False"},
        initialized_condition(pod, init_statuses, statuses, phase),
        ready_condition(pod, containers_ready, old_conditions),
        containers_ready,
        {"type": "PodScheduled", "status": "True"},
    ]
    if inputs.eviction:
        generated.append(
            {
                "type": "DisruptionTarget",
                "status": "True",
                "reason": "TerminationByKubelet",
                "message": inputs.eviction,
            }
        )
    conditions = [_with_times(c, old_conditions, inputs.now) for c in generated]
    for condition in old_conditions:
        condition = _dict(condition)
        if condition.get("type") not in KUBELET_CONDITIONS and not (
            inputs.eviction and condition.get("type") == "DisruptionTarget"
        ):
            conditions.append(condition)

    status: dict[str, Any] = {
        "phase": phase,
        "conditions": conditions,
        "hostIP": inputs.host_ips[0] if inputs.host_ips else "",
        "hostIPs": [{"ip": ip} for ip in inputs.host_ips],
        "startTime": old.get("startTime") or inputs.now,
        "containerStatuses": statuses,
        "qosClass": old.get("qosClass") or qos_class(pod),
    }
    if init_containers(pod):
        status["initContainerStatuses"] = init_statuses
    if is_host_network(pod):
        pod_ips = list(inputs.host_ips)
    elif sandbox is not None and sandbox.ips:
        pod_ips = list(sandbox.ips)
    else:
        pod_ips = [
            str(_dict(ip).get("ip")) for ip in _list(old.get("podIPs")) if _dict(ip).get("ip")
        ]
    if pod_ips:
        status["podIP"] = pod_ips[0]
        status["podIPs"] = [{"ip": ip} for ip in pod_ips]
    if inputs.eviction:
        status["reason"] = "Evicted"
        status["message"] = inputs.eviction
    elif phase == old.get("phase"):
        for key in ("reason", "message", "nominatedNodeName"):
            if old.get(key):
                status[key] = old[key]
    elif old.get("nominatedNodeName"):
        status["nominatedNodeName"] = old["nominatedNodeName"]
    for key in ("resize", "resourceClaimStatuses", "ephemeralContainerStatuses"):
        if key in old:
            status[key] = old[key]
    return status


# -- QoS ------------------------------------------------------------------------------------


def qos_class(pod: Object) -> str:
    """ComputePodQOS: Guaranteed when every container limits cpu and memory and requests
    equal limits, BestEffort without any cpu or memory request or limit, else Burstable."""
    requests: dict[str, int] = {}
    limits: dict[str, int] = {}
    guaranteed = True
    for container in [*init_containers(pod), *containers(pod)]:
        resources = _dict(container.get("resources"))
        for name, amount in _cpu_memory(resources.get("requests")).items():
            requests[name] = requests.get(name, 0) + amount
        container_limits = _cpu_memory(resources.get("limits"))
        for name, amount in container_limits.items():
            limits[name] = limits.get(name, 0) + amount
        if set(container_limits) != {"cpu", "memory"}:
            guaranteed = False
    if not requests and not limits:
        return "BestEffort"
    if (
        guaranteed
        and len(requests) == len(limits)
        and all(limits.get(name) == amount for name, amount in requests.items())
    ):
        return "Guaranteed"
    return "Burstable"


def _cpu_memory(values: Any) -> dict[str, int]:
    found: dict[str, int] = {}
    for name in ("cpu", "memory"):
        value = _dict(values).get(name)
        if value is None:
            continue
        try:
            amount = parse_quantity_value(value).nanos
        except (QuantityError, ValueError):
            continue
        if amount > 0:
            found[name] = amount
    return found
