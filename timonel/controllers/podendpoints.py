"""What of a pod goes into a Service's endpoints, shared by the endpoints and the
endpointslice controllers (kube's endpointutil and endpointslice util packages).

- `should_pod_be_in_endpoints`: a pod with an IP that is not finished (and, unless
  terminating pods are wanted, not being deleted).
- `find_port`: a Service port's target resolved for one pod; a named target is looked up
  in the pod's container ports (and its sidecars'), with the Service port's protocol.
- `pod_ip_for_family`: the pod IP of the Service's first IP family.
- `TriggerTimeTracker`: the `endpoints.kubernetes.io/last-change-trigger-time` value, the
  earliest change (pod readiness transition or Service creation) not yet published.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from timonel.api.objects import Object
from timonel.controllers.pods import TERMINAL_PHASES, meta, ready_condition, timestamp

LAST_CHANGE_TRIGGER_TIME = "endpoints.kubernetes.io/last-change-trigger-time"
HEADLESS_LABEL = "service.kubernetes.io/headless"
ZONE_LABEL = "topology.kubernetes.io/zone"


def service_selector(service: Object) -> dict[str, str] | None:
    """The Service's pod selector; None when it has none (its endpoints are the user's).
    An empty selector reads as none: kube stores it as protobuf, where empty is nil."""
    selector = (service.get("spec") or {}).get("selector")
    return selector if isinstance(selector, dict) and selector else None


def is_service_ip_set(service: Object) -> bool:
    """helper.IsServiceIPSet: a ClusterIP that is neither empty nor "None"."""
    cluster_ip = (service.get("spec") or {}).get("clusterIP") or ""
    return cluster_ip not in ("", "None")


def has_pod_ip(pod: Object) -> bool:
    status = pod.get("status") or {}
    return bool(status.get("podIP") or status.get("podIPs"))


def should_pod_be_in_endpoints(pod: Object, include_terminating: bool) -> bool:
    if (pod.get("status") or {}).get("phase") in TERMINAL_PHASES:
        return False
    if not has_pod_ip(pod):
        return False
    return include_terminating or not meta(pod).get("deletionTimestamp")


def should_set_hostname(pod: Object, service: Object) -> bool:
    """A pod names itself in a headless Service's DNS when its subdomain is that Service."""
    spec = pod.get("spec") or {}
    return (
        bool(spec.get("hostname"))
        and spec.get("subdomain") == meta(service).get("name")
        and meta(pod).get("namespace") == meta(service).get("namespace")
    )


def _is_sidecar(container: dict[str, Any]) -> bool:
    return container.get("restartPolicy") == "Always"


def find_port(pod: Object, service_port: dict[str, Any]) -> int | None:
    """podutil.FindPort: the port number traffic for `service_port` goes to on this pod,
    None when a named target port is not among the pod's container ports."""
    target = service_port.get("targetPort", service_port.get("port"))
    if isinstance(target, int) and not isinstance(target, bool):
        return target
    if not isinstance(target, str):
        return None
    protocol = service_port.get("protocol") or "TCP"
    spec = pod.get("spec") or {}
    containers = list(spec.get("containers") or [])
    containers += [
        c for c in spec.get("initContainers") or [] if isinstance(c, dict) and _is_sidecar(c)
    ]
    for container in containers:
        for port in (container or {}).get("ports") or []:
            if port.get("name") == target and (port.get("protocol") or "TCP") == protocol:
                number = port.get("containerPort")
                return int(number) if isinstance(number, int) else None
    return None


def _is_ipv6(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).version == 6
    except ValueError:
        return False


def service_ip_family(service: Object, pod: Object | None = None) -> str:
    """The family a Service's endpoints are in: its first ipFamilies entry, else that of
    its ClusterIP, else (headless) that of the pod's IP."""
    spec = service.get("spec") or {}
    families = spec.get("ipFamilies") or []
    if families:
        return str(families[0])
    cluster_ip = spec.get("clusterIP") or ""
    if cluster_ip and cluster_ip != "None":
        return "IPv6" if _is_ipv6(cluster_ip) else "IPv4"
    pod_ip = ((pod or {}).get("status") or {}).get("podIP") or ""
    return "IPv6" if _is_ipv6(pod_ip) else "IPv4"


def pod_ips(pod: Object) -> list[str]:
    status = pod.get("status") or {}
    ips = [
        str(entry.get("ip"))
        for entry in status.get("podIPs") or []
        if isinstance(entry, dict) and entry.get("ip")
    ]
    if not ips and status.get("podIP"):
        ips = [str(status["podIP"])]
    return ips


def pod_ip_for_family(pod: Object, family: str) -> str | None:
    for ip in pod_ips(pod):
        if _is_ipv6(ip) == (family == "IPv6"):
            return ip
    return None


def pod_reference(pod: Object) -> dict[str, str]:
    """The targetRef of an endpoint: kind, namespace, name and uid of the pod."""
    pod_meta = meta(pod)
    return {
        "kind": "Pod",
        "namespace": pod_meta.get("namespace", ""),
        "name": pod_meta.get("name", ""),
        "uid": pod_meta.get("uid", ""),
    }


def pod_address_fields(pod: Object, service: Object, zone: str | None = None) -> dict[str, Any]:
    """Where a pod's address points, as Endpoints addresses and EndpointSlice endpoints both
    carry it: hostname (when the Service publishes it), nodeName, zone, targetRef."""
    spec = pod.get("spec") or {}
    fields: dict[str, Any] = {}
    if should_set_hostname(pod, service):
        fields["hostname"] = spec["hostname"]
    if spec.get("nodeName"):
        fields["nodeName"] = spec["nodeName"]
    if zone:
        fields["zone"] = zone
    fields["targetRef"] = pod_reference(pod)
    return fields


def format_time(moment: datetime) -> str:
    """time.RFC3339Nano in UTC, as kube writes the trigger-time annotation."""
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond:06d}".rstrip("0")
    return text + "Z"


@dataclass
class _ServiceState:
    pod_trigger_times: dict[str, datetime] = field(default_factory=dict)
    service_trigger_time: datetime | None = None


class TriggerTimeTracker:
    """For each Service, the trigger times already published, so that a sync can tell the
    earliest change it is the first to publish (kube's TriggerTimeTracker). A pod's
    trigger is its Ready condition's last transition, a Service's its creation."""

    def __init__(self) -> None:
        self._states: dict[str, _ServiceState] = {}

    def compute(self, key: str, service: Object, pods: list[Object]) -> datetime | None:
        state = self._states.get(key, _ServiceState())
        fresh = _ServiceState()
        earliest: datetime | None = None
        for pod in pods:
            condition = ready_condition(pod) or {}
            changed_at = timestamp(condition.get("lastTransitionTime"))
            if changed_at is None:
                continue
            name = meta(pod).get("name", "")
            fresh.pod_trigger_times[name] = changed_at
            previous = state.pod_trigger_times.get(name)
            if previous is None or changed_at > previous:
                earliest = changed_at if earliest is None else min(earliest, changed_at)
        created = timestamp(meta(service).get("creationTimestamp"))
        if created is not None and (
            state.service_trigger_time is None or created > state.service_trigger_time
        ):
            earliest = created if earliest is None else min(earliest, created)
        fresh.service_trigger_time = created
        self._states[key] = fresh
        return earliest

    def delete(self, key: str) -> None:
        self._states.pop(key, None)
