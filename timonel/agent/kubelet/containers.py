"""Pod spec → CRI messages (pure): the sandbox config of a pod and the config of each of
its containers, as kubelet's kuberuntime generates them.

- Sandbox: metadata (name, namespace, UID, attempt), hostname (empty with hostNetwork),
  DNS, port mappings for hostPorts, labels (the pod's plus kubelet's identity labels),
  annotations, the cgroup parent `<node>/<qos>/pod<uid>` (Guaranteed pods directly under
  the node's), namespaces (network, pid for hostPID / shareProcessNamespace, ipc),
  pod-level security (runAsUser/Group, supplementalGroups + fsGroup, sysctls).
- Container: command and args (`$(VAR)` expanded), env, working dir, mounts, log path
  `<name>/<restartCount>.log`, resources (cpu shares from the request, CFS quota from the
  limit, memory limit, OOM score by QoS class), the effective security context (the
  container's over the pod's: user, group, runAsNonRoot checked against the image's
  user, read-only root, capabilities, privileged, no_new_privs, default masked and
  read-only /proc paths), and kubelet's annotations (spec hash, restart count,
  termination message settings) that let the agent adopt it after a restart.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from timonel.agent.kubelet.actions import container_hash, containers, is_host_network
from timonel.agent.kubelet.dns import DnsConfig
from timonel.agent.kubelet.env import ContainerConfigError, expand
from timonel.agent.kubelet.runtimestate import (
    CONFIG_SOURCE_ANNOTATION,
    CONTAINER_HASH_ANNOTATION,
    CONTAINER_NAME_LABEL,
    NODE_LABEL,
    POD_NAME_LABEL,
    POD_NAMESPACE_LABEL,
    POD_TERMINATION_GRACE_ANNOTATION,
    POD_UID_LABEL,
    RESTART_COUNT_ANNOTATION,
    TERMINATION_MESSAGE_PATH_ANNOTATION,
    TERMINATION_MESSAGE_POLICY_ANNOTATION,
)
from timonel.agent.kubelet.status import qos_class
from timonel.agent.runtime.cri import api
from timonel.api.objects import Object
from timonel.api.quantity import QuantityError, parse_quantity_value

MIN_SHARES: Final = 2
MAX_SHARES: Final = 262144
SHARES_PER_CPU: Final = 1024
QUOTA_PERIOD: Final = 100_000
MIN_QUOTA_PERIOD: Final = 1000
DEFAULT_TERMINATION_MESSAGE_PATH: Final = "/dev/termination-log"

DEFAULT_MASKED_PATHS: Final = (
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
)
DEFAULT_READONLY_PATHS: Final = (
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
)

_PROTOCOLS: Final = {"TCP": api.TCP, "UDP": api.UDP, "SCTP": api.SCTP}
_PROPAGATION: Final = {
    "HostToContainer": api.PROPAGATION_HOST_TO_CONTAINER,
    "Bidirectional": api.PROPAGATION_BIDIRECTIONAL,
}


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _meta(pod: Object) -> dict[str, Any]:
    return _dict(pod.get("metadata"))


def _spec(pod: Object) -> dict[str, Any]:
    return _dict(pod.get("spec"))


def pod_cgroup_parent(pod: Object, node_cgroup: str) -> str:
    """Where the pod's cgroup goes: `<node>/pod<uid>` for Guaranteed pods, else
    `<node>/burstable/pod<uid>` or `<node>/besteffort/pod<uid>` (kubelet's cgroupfs layout)."""
    uid = str(_meta(pod).get("uid", ""))
    qos = qos_class(pod)
    base = node_cgroup.rstrip("/")
    if qos == "Guaranteed":
        return f"{base}/pod{uid}"
    return f"{base}/{qos.lower()}/pod{uid}"


def pod_log_directory_name(pod: Object) -> str:
    meta = _meta(pod)
    return f"{meta.get('namespace', '')}_{meta.get('name', '')}_{meta.get('uid', '')}"


def pod_labels(pod: Object, node_name: str) -> dict[str, str]:
    meta = _meta(pod)
    labels = {str(k): str(v) for k, v in _dict(meta.get("labels")).items()}
    labels.update(
        {
            POD_NAME_LABEL: str(meta.get("name", "")),
            POD_NAMESPACE_LABEL: str(meta.get("namespace", "")),
            POD_UID_LABEL: str(meta.get("uid", "")),
            NODE_LABEL: node_name,
        }
    )
    return labels


def port_mappings(pod: Object) -> list[api.PortMapping]:
    """hostPort mappings of the pod's containers (the portmap CNI plugin installs them)."""
    mappings = []
    for container in containers(pod):
        for port in _list(container.get("ports")):
            port = _dict(port)
            host_port = int(port.get("hostPort") or 0)
            if host_port <= 0:
                continue
            mappings.append(
                api.PortMapping(
                    protocol=_PROTOCOLS.get(str(port.get("protocol") or "TCP"), api.TCP),
                    container_port=int(port.get("containerPort") or 0),
                    host_port=host_port,
                    host_ip=str(port.get("hostIP") or ""),
                )
            )
    return mappings


def _namespace_options(pod: Object) -> api.NamespaceOption:
    spec = _spec(pod)
    if spec.get("hostPID"):
        pid = api.NODE
    elif spec.get("shareProcessNamespace"):
        pid = api.POD
    else:
        pid = api.CONTAINER
    return api.NamespaceOption(
        network=api.NODE if is_host_network(pod) else api.POD,
        pid=pid,
        ipc=api.NODE if spec.get("hostIPC") else api.POD,
    )


def _supplemental_groups(pod_security: Mapping[str, Any]) -> list[int]:
    groups = [int(g) for g in _list(pod_security.get("supplementalGroups"))]
    if pod_security.get("fsGroup") is not None:
        groups.insert(0, int(pod_security["fsGroup"]))
    return list(dict.fromkeys(groups))


def _seccomp(security: Mapping[str, Any]) -> api.SecurityProfile:
    profile = _dict(security.get("seccompProfile"))
    kind = profile.get("type")
    if kind == "RuntimeDefault":
        return api.SecurityProfile(profile_type=api.SecurityProfile.RuntimeDefault)
    if kind == "Localhost":
        return api.SecurityProfile(
            profile_type=api.SecurityProfile.Localhost,
            localhost_ref=str(profile.get("localhostProfile", "")),
        )
    return api.SecurityProfile(profile_type=api.SecurityProfile.Unconfined)


def has_privileged_container(pod: Object) -> bool:
    spec = _spec(pod)
    return any(
        _dict(_dict(c).get("securityContext")).get("privileged") is True
        for field in ("initContainers", "containers")
        for c in _list(spec.get(field))
    )


def pod_sandbox_config(
    pod: Object,
    *,
    attempt: int,
    node_name: str,
    node_cgroup: str,
    log_directory: str,
    hostname: str,
    dns: DnsConfig | None,
) -> api.PodSandboxConfig:
    meta = _meta(pod)
    spec = _spec(pod)
    pod_security = _dict(spec.get("securityContext"))
    security = api.LinuxSandboxSecurityContext(
        namespace_options=_namespace_options(pod),
        supplemental_groups=_supplemental_groups(pod_security),
        privileged=has_privileged_container(pod),
        seccomp=_seccomp(pod_security),
    )
    if pod_security.get("runAsUser") is not None:
        security.run_as_user.value = int(pod_security["runAsUser"])
    if pod_security.get("runAsGroup") is not None:
        security.run_as_group.value = int(pod_security["runAsGroup"])
    annotations = {str(k): str(v) for k, v in _dict(meta.get("annotations")).items()}
    annotations[CONFIG_SOURCE_ANNOTATION] = "api"
    config = api.PodSandboxConfig(
        metadata=api.PodSandboxMetadata(
            name=str(meta.get("name", "")),
            uid=str(meta.get("uid", "")),
            namespace=str(meta.get("namespace", "")),
            attempt=attempt,
        ),
        hostname=hostname,
        log_directory=log_directory,
        port_mappings=port_mappings(pod),
        labels=pod_labels(pod, node_name),
        annotations=annotations,
        linux=api.LinuxPodSandboxConfig(
            cgroup_parent=pod_cgroup_parent(pod, node_cgroup),
            security_context=security,
            sysctls={
                str(_dict(s).get("name")): str(_dict(s).get("value", ""))
                for s in _list(pod_security.get("sysctls"))
            },
        ),
    )
    if dns is not None:
        config.dns_config.CopyFrom(
            api.DNSConfig(servers=dns.servers, searches=dns.searches, options=dns.options)
        )
    return config


# -- resources --------------------------------------------------------------------------


def _quantity(resources: Mapping[str, Any], part: str, name: str) -> tuple[int, int]:
    """(milli value, value) of a request or limit; (0, 0) when unset."""
    value = _dict(resources.get(part)).get(name)
    if value is None:
        return 0, 0
    try:
        quantity = parse_quantity_value(value)
    except (QuantityError, ValueError):
        return 0, 0
    return quantity.milli_value(), quantity.value()


def milli_cpu_to_shares(milli_cpu: int) -> int:
    if milli_cpu == 0:
        return MIN_SHARES
    shares = milli_cpu * SHARES_PER_CPU // 1000
    return max(MIN_SHARES, min(MAX_SHARES, shares))


def milli_cpu_to_quota(milli_cpu: int, period: int = QUOTA_PERIOD) -> tuple[int, int]:
    """(quota, period) in microseconds; (0, period) means no limit."""
    if milli_cpu == 0:
        return 0, period
    quota = milli_cpu * period // 1000
    return max(quota, MIN_QUOTA_PERIOD), period


def oom_score_adjust(pod: Object, container: Mapping[str, Any], memory_capacity: int) -> int:
    """The OOM score by QoS class: Guaranteed -997, BestEffort 1000, Burstable in between
    by the share of the node's memory the container requests."""
    qos = qos_class(pod)
    if qos == "Guaranteed":
        return -997
    if qos == "BestEffort":
        return 1000
    _, request = _quantity(_dict(container.get("resources")), "requests", "memory")
    if memory_capacity <= 0:
        return 999
    adjust = 1000 - (1000 * request) // memory_capacity
    return max(2, min(999, adjust))


def container_resources(
    pod: Object, container: Mapping[str, Any], memory_capacity: int
) -> api.LinuxContainerResources:
    resources = _dict(container.get("resources"))
    cpu_request, _ = _quantity(resources, "requests", "cpu")
    cpu_limit, _ = _quantity(resources, "limits", "cpu")
    _, memory_limit = _quantity(resources, "limits", "memory")
    shares = milli_cpu_to_shares(cpu_limit if cpu_request == 0 and cpu_limit else cpu_request)
    quota, period = milli_cpu_to_quota(cpu_limit)
    return api.LinuxContainerResources(
        cpu_shares=shares,
        cpu_quota=quota,
        cpu_period=period,
        memory_limit_in_bytes=memory_limit,
        oom_score_adj=oom_score_adjust(pod, container, memory_capacity),
    )


# -- security -----------------------------------------------------------------------------


def effective_security_context(pod: Object, container: Mapping[str, Any]) -> dict[str, Any]:
    """The container's security context over the pod's (kubelet's
    DetermineEffectiveSecurityContext)."""
    pod_security = _dict(_spec(pod).get("securityContext"))
    effective = {
        key: pod_security[key]
        for key in (
            "runAsUser",
            "runAsGroup",
            "runAsNonRoot",
            "seLinuxOptions",
            "seccompProfile",
            "appArmorProfile",
        )
        if pod_security.get(key) is not None
    }
    for key, value in _dict(container.get("securityContext")).items():
        if value is not None:
            effective[key] = value
    return effective


def verify_run_as_non_root(
    pod: Object, container: Mapping[str, Any], image_uid: int | None, image_user: str
) -> None:
    """Raise ContainerConfigError when runAsNonRoot is asked for and the container would
    run as root (an image without a user runs as root)."""
    security = effective_security_context(pod, container)
    if security.get("runAsNonRoot") is not True:
        return
    meta = _meta(pod)
    pod_name = f"{meta.get('name', '')}_{meta.get('namespace', '')}({meta.get('uid', '')})"
    name = container.get("name", "")
    if security.get("runAsUser") is not None:
        if int(security["runAsUser"]) == 0:
            raise ContainerConfigError(
                f'container\'s runAsUser breaks non-root policy (pod: "{pod_name}", container: {name})'
            )
        return
    if image_uid is None and image_user:
        raise ContainerConfigError(
            f"container has runAsNonRoot and image has non-numeric user ({image_user}), cannot "
            f'verify user is non-root (pod: "{pod_name}", container: {name})'
        )
    if (image_uid or 0) == 0:
        raise ContainerConfigError(
            f'container has runAsNonRoot and image will run as root (pod: "{pod_name}", container: {name})'
        )


def container_security_context(
    pod: Object, container: Mapping[str, Any]
) -> api.LinuxContainerSecurityContext:
    security = effective_security_context(pod, container)
    pod_security = _dict(_spec(pod).get("securityContext"))
    privileged = security.get("privileged") is True
    capabilities = _dict(security.get("capabilities"))
    allow_escalation = security.get("allowPrivilegeEscalation")
    context = api.LinuxContainerSecurityContext(
        capabilities=api.Capability(
            add_capabilities=[str(c) for c in _list(capabilities.get("add"))],
            drop_capabilities=[str(c) for c in _list(capabilities.get("drop"))],
        ),
        privileged=privileged,
        namespace_options=_namespace_options(pod),
        readonly_rootfs=security.get("readOnlyRootFilesystem") is True,
        supplemental_groups=_supplemental_groups(pod_security),
        no_new_privs=allow_escalation is False and not privileged,
        seccomp=_seccomp(security),
    )
    if security.get("procMount") != "Unmasked" and not privileged:
        context.masked_paths.extend(DEFAULT_MASKED_PATHS)
        context.readonly_paths.extend(DEFAULT_READONLY_PATHS)
    if security.get("runAsUser") is not None:
        context.run_as_user.value = int(security["runAsUser"])
    if security.get("runAsGroup") is not None:
        context.run_as_group.value = int(security["runAsGroup"])
    return context


# -- mounts ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class HostVolume:
    """A volume made ready on the node: where it is and whether it mounts read-only."""

    path: str
    read_only: bool = False


def _join_sub_path(base: str, sub_path: str) -> str:
    parts = [p for p in sub_path.split("/") if p not in ("", ".")]
    if sub_path.startswith("/") or ".." in parts:
        raise ContainerConfigError(
            f"subPath {sub_path!r} must be a relative path inside the volume"
        )
    return "/".join([base.rstrip("/"), *parts]) if parts else base


def container_mounts(
    container: Mapping[str, Any],
    volumes: Mapping[str, HostVolume],
    env: Sequence[tuple[str, str]],
    *,
    hosts_file: str | None = None,
    termination_file: str | None = None,
) -> list[api.Mount]:
    """The container's mounts: its volumeMounts (subPath and subPathExpr resolved), the
    pod's /etc/hosts unless the container mounts that path itself, and its termination
    message file."""
    mounts: list[api.Mount] = []
    values = dict(env)
    mount_paths = set()
    for mount in _list(container.get("volumeMounts")):
        mount = _dict(mount)
        name = str(mount.get("name", ""))
        volume = volumes.get(name)
        if volume is None:
            raise ContainerConfigError(
                f"cannot find volume {name!r} to mount into container {container.get('name')!r}"
            )
        host_path = volume.path
        sub_path = str(mount.get("subPath") or "")
        if mount.get("subPathExpr"):
            sub_path = expand(str(mount["subPathExpr"]), values.get)
        if sub_path:
            host_path = _join_sub_path(host_path, sub_path)
        container_path = str(mount.get("mountPath", ""))
        mount_paths.add(container_path)
        mounts.append(
            api.Mount(
                container_path=container_path,
                host_path=host_path,
                readonly=bool(mount.get("readOnly")) or volume.read_only,
                propagation=_PROPAGATION.get(
                    str(mount.get("mountPropagation")), api.PROPAGATION_PRIVATE
                ),
            )
        )
    if hosts_file is not None and "/etc/hosts" not in mount_paths:
        mounts.append(api.Mount(container_path="/etc/hosts", host_path=hosts_file))
    if termination_file is not None:
        path = str(container.get("terminationMessagePath") or DEFAULT_TERMINATION_MESSAGE_PATH)
        mounts.append(api.Mount(container_path=path, host_path=termination_file))
    return mounts


# -- the container config -------------------------------------------------------------------


def container_labels(pod: Object, container: Mapping[str, Any], node_name: str) -> dict[str, str]:
    meta = _meta(pod)
    return {
        CONTAINER_NAME_LABEL: str(container.get("name", "")),
        POD_NAME_LABEL: str(meta.get("name", "")),
        POD_NAMESPACE_LABEL: str(meta.get("namespace", "")),
        POD_UID_LABEL: str(meta.get("uid", "")),
        NODE_LABEL: node_name,
    }


def container_annotations(
    pod: Object, container: Mapping[str, Any], restart_count: int
) -> dict[str, str]:
    spec = _spec(pod)
    annotations = {
        CONTAINER_HASH_ANNOTATION: container_hash(container),
        RESTART_COUNT_ANNOTATION: str(restart_count),
        TERMINATION_MESSAGE_PATH_ANNOTATION: str(
            container.get("terminationMessagePath") or DEFAULT_TERMINATION_MESSAGE_PATH
        ),
        TERMINATION_MESSAGE_POLICY_ANNOTATION: str(
            container.get("terminationMessagePolicy") or "File"
        ),
    }
    if spec.get("terminationGracePeriodSeconds") is not None:
        annotations[POD_TERMINATION_GRACE_ANNOTATION] = str(spec["terminationGracePeriodSeconds"])
    return annotations


def container_config(
    pod: Object,
    container: Mapping[str, Any],
    *,
    node_name: str,
    restart_count: int,
    image: str,
    env: Sequence[tuple[str, str]],
    mounts: Sequence[api.Mount],
    command: Sequence[str],
    args: Sequence[str],
    memory_capacity: int,
) -> api.ContainerConfig:
    name = str(container.get("name", ""))
    return api.ContainerConfig(
        metadata=api.ContainerMetadata(name=name, attempt=restart_count),
        image=api.ImageSpec(image=image),
        command=list(command),
        args=list(args),
        working_dir=str(container.get("workingDir") or ""),
        envs=[api.KeyValue(key=k, value=v) for k, v in env],
        mounts=list(mounts),
        labels=container_labels(pod, container, node_name),
        annotations=container_annotations(pod, container, restart_count),
        log_path=f"{name}/{restart_count}.log",
        stdin=bool(container.get("stdin")),
        stdin_once=bool(container.get("stdinOnce")),
        tty=bool(container.get("tty")),
        linux=api.LinuxContainerConfig(
            resources=container_resources(pod, container, memory_capacity),
            security_context=container_security_context(pod, container),
        ),
    )
