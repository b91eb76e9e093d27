"""The endpoints controller: one Endpoints object per Service with a selector, listing
the addresses of the pods it selects (kube's pkg/controller/endpoint).

Each selected pod with an IP contributes, for every Service port whose target it has,
its address to `addresses` when it is ready (or the Service publishes not-ready
addresses) and to `notReadyAddresses` otherwise. Subsets are then repacked: pods that
serve the same ports share a subset. Services without a selector keep the Endpoints
their users write; the `kubernetes` Service's are the API server's own.
"""

from __future__ import annotations

import copy
import logging
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from timonel.api.errors import StatusError
from timonel.api.objects import Object
from timonel.client.resources import ENDPOINTS, PODS, SERVICES
from timonel.controllers.base import Controller
from timonel.controllers.manager import ControllerContext
from timonel.controllers.podendpoints import (
    HEADLESS_LABEL,
    LAST_CHANGE_TRIGGER_TIME,
    TriggerTimeTracker,
    find_port,
    format_time,
    is_service_ip_set,
    pod_address_fields,
    pod_ip_for_family,
    pod_ips,
    service_ip_family,
    service_selector,
    should_pod_be_in_endpoints,
)
from timonel.controllers.pods import is_ready, meta

log = logging.getLogger(__name__)

OVER_CAPACITY = "endpoints.kubernetes.io/over-capacity"
MAX_CAPACITY = 1000
# Endpoints of these Services are written by the API server itself.
API_SERVER_SERVICE = "default/kubernetes"

Address = dict[str, Any]
Port = dict[str, Any]
Subset = dict[str, Any]


# ======================================================================================
# pure decisions
# ======================================================================================


def endpoint_address(service: Object, pod: Object) -> Address | None:
    """The pod's address in the Service's IP family (None when it has none)."""
    ip = pod_ip_for_family(pod, service_ip_family(service, pod))
    if ip is None:
        return None
    return {"ip": ip, **pod_address_fields(pod, service)}


def endpoint_port(service_port: dict[str, Any], number: int) -> Port:
    port: Port = {"port": number, "protocol": service_port.get("protocol") or "TCP"}
    if service_port.get("name"):
        port["name"] = service_port["name"]
    if service_port.get("appProtocol"):
        port["appProtocol"] = service_port["appProtocol"]
    return port


def pod_subsets(service: Object, pods: list[Object]) -> list[Subset]:
    """One single-address subset per (pod, resolved port), before repacking."""
    spec = service.get("spec") or {}
    tolerate_unready = bool(spec.get("publishNotReadyAddresses"))
    service_ports = spec.get("ports") or []
    subsets: list[Subset] = []
    for pod in pods:
        if not should_pod_be_in_endpoints(pod, tolerate_unready):
            continue
        address = endpoint_address(service, pod)
        if address is None:
            continue
        field = "addresses" if tolerate_unready or is_ready(pod) else "notReadyAddresses"
        if not service_ports:
            # A headless Service may have no ports: its pods are listed without any.
            if spec.get("clusterIP") == "None":
                subsets.append({field: [address]})
            continue
        for service_port in service_ports:
            number = find_port(pod, service_port)
            if number is None:
                continue
            subsets.append({field: [address], "ports": [endpoint_port(service_port, number)]})
    return subsets


def _address_key(address: Address) -> tuple[str, str]:
    return str(address.get("ip", "")), str((address.get("targetRef") or {}).get("uid", ""))


def _port_key(port: Port | None) -> tuple[str, int, str, str]:
    if port is None:
        return ("", -1, "", "")
    return (
        str(port.get("name", "")),
        int(port.get("port", 0)),
        str(port.get("protocol", "TCP")),
        str(port.get("appProtocol", "")),
    )


def repack_subsets(subsets: list[Subset]) -> list[Subset]:
    """endpoints.RepackSubsets: addresses that serve the same set of ports share one
    subset; an address ready on a port in any input subset is ready there. The result
    is sorted, so equal sets of endpoints compare equal."""
    addresses: dict[tuple[str, str], Address] = {}
    ports: dict[tuple[str, int, str, str], Port | None] = {}
    readiness: dict[tuple[str, int, str, str], dict[tuple[str, str], bool]] = {}
    for subset in subsets:
        subset_ports: list[Port | None] = list(subset.get("ports") or []) or [None]
        for port in subset_ports:
            port_key = _port_key(port)
            ports.setdefault(port_key, port)
            by_address = readiness.setdefault(port_key, {})
            for field, is_ready_field in (("addresses", True), ("notReadyAddresses", False)):
                for address in subset.get(field) or []:
                    key = _address_key(address)
                    addresses.setdefault(key, address)
                    if not by_address.get(key, False):
                        by_address[key] = is_ready_field
    grouped: dict[frozenset[tuple[tuple[str, str], bool]], list[Port]] = {}
    for port_key, by_address in readiness.items():
        group = grouped.setdefault(frozenset(by_address.items()), [])
        port = ports[port_key]
        if port is not None:
            group.append(port)
    packed: list[Subset] = []
    for members, group_ports in grouped.items():
        ready = sorted(key for key, is_up in members if is_up)
        not_ready = sorted(key for key, is_up in members if not is_up)
        grouped_subset: Subset = {}
        if ready:
            grouped_subset["addresses"] = [copy.deepcopy(addresses[key]) for key in ready]
        if not_ready:
            grouped_subset["notReadyAddresses"] = [
                copy.deepcopy(addresses[key]) for key in not_ready
            ]
        if group_ports:
            grouped_subset["ports"] = sorted(group_ports, key=_port_key)
        if ready or not_ready:
            packed.append(grouped_subset)
    return sorted(packed, key=_subset_sort_key)


def _subset_sort_key(subset: Subset) -> tuple[Any, ...]:
    ports = tuple(_port_key(p) for p in subset.get("ports") or [])
    first = (subset.get("addresses") or subset.get("notReadyAddresses") or [{}])[0]
    return (ports, _address_key(first))


def _address_count(subsets: list[Subset]) -> tuple[int, int]:
    ready = sum(len(s.get("addresses") or []) for s in subsets)
    not_ready = sum(len(s.get("notReadyAddresses") or []) for s in subsets)
    return ready, not_ready


def truncate_subsets(subsets: list[Subset], capacity: int = MAX_CAPACITY) -> bool:
    """truncateEndpoints: keep at most `capacity` addresses, not-ready ones going first,
    each subset keeping its share. True when something was dropped."""
    total_ready, total_not_ready = _address_count(subsets)
    if total_ready + total_not_ready <= capacity:
        return False
    truncate_ready = total_ready > capacity
    budget = capacity if truncate_ready else capacity - total_ready
    total = total_ready if truncate_ready else total_not_ready
    remaining = budget
    for i, subset in enumerate(subsets):
        field = "addresses" if truncate_ready else "notReadyAddresses"
        count = len(subset.get(field) or [])
        share = (
            remaining
            if i == len(subsets) - 1
            else math.ceil(count / total * budget)
            if total
            else 0
        )
        kept = (subset.get(field) or [])[: max(min(share, remaining), 0)]
        if kept:
            subset[field] = kept
        else:
            subset.pop(field, None)
        if truncate_ready:
            subset.pop("notReadyAddresses", None)
        remaining -= len(kept)
    subsets[:] = [s for s in subsets if s.get("addresses") or s.get("notReadyAddresses")]
    return True


def desired_subsets(service: Object, pods: list[Object]) -> list[Subset]:
    return repack_subsets(pod_subsets(service, pods))


def _without_resource_versions(subsets: list[Subset]) -> list[Subset]:
    """Subsets compared as the controller compares them: a pod's resourceVersion in a
    targetRef (older writers set it) is not a change."""
    cleaned = copy.deepcopy(subsets)
    for subset in cleaned:
        for field in ("addresses", "notReadyAddresses"):
            for address in subset.get(field) or []:
                (address.get("targetRef") or {}).pop("resourceVersion", None)
    return repack_subsets(cleaned)


def _over_capacity_marked_right(annotations: dict[str, str], subsets: list[Subset]) -> bool:
    if sum(_address_count(subsets)) > MAX_CAPACITY:
        return False
    return OVER_CAPACITY not in annotations


def plan_endpoints(
    service: Object, subsets: list[Subset], current: Object | None, trigger_time: datetime | None
) -> Object | None:
    """The Endpoints object to write for `service`, or None when `current` already says it."""
    service_meta = meta(service)
    service_labels = dict(service_meta.get("labels") or {})
    if current is not None:
        current_meta = meta(current)
        compare_labels = dict(current_meta.get("labels") or {})
        compare_labels.pop(HEADLESS_LABEL, None)
        if (
            _without_resource_versions(list(current.get("subsets") or [])) == subsets
            and compare_labels == service_labels
            and _over_capacity_marked_right(
                current_meta.get("annotations") or {}, current.get("subsets") or []
            )
        ):
            return None
        endpoints = copy.deepcopy(current)
    else:
        endpoints = {
            "apiVersion": "v1",
            "kind": "Endpoints",
            "metadata": {
                "name": service_meta.get("name", ""),
                "namespace": service_meta.get("namespace", ""),
            },
        }
    endpoints_meta = endpoints.setdefault("metadata", {})
    new_subsets = copy.deepcopy(subsets)
    annotations: dict[str, str] = dict(endpoints_meta.get("annotations") or {})
    if trigger_time is not None:
        annotations[LAST_CHANGE_TRIGGER_TIME] = format_time(trigger_time)
    else:
        annotations.pop(LAST_CHANGE_TRIGGER_TIME, None)
    if truncate_subsets(new_subsets):
        annotations[OVER_CAPACITY] = "truncated"
    else:
        annotations.pop(OVER_CAPACITY, None)
    if new_subsets:
        endpoints["subsets"] = new_subsets
    else:
        endpoints.pop("subsets", None)
    labels = dict(service_labels)
    if is_service_ip_set(service):
        labels.pop(HEADLESS_LABEL, None)
    else:
        labels[HEADLESS_LABEL] = ""
    _set_or_drop(endpoints_meta, "labels", labels)
    _set_or_drop(endpoints_meta, "annotations", annotations)
    return endpoints


def _set_or_drop(holder: dict[str, Any], name: str, value: dict[str, str]) -> None:
    if value:
        holder[name] = value
    else:
        holder.pop(name, None)


@dataclass(frozen=True)
class _PodView:
    """What of a pod its endpoints depend on: a pod update that keeps it is ignored."""

    labels: tuple[tuple[str, str], ...]
    hostname: str
    subdomain: str
    deleting: bool
    ready: bool
    ips: tuple[str, ...]
    phase: str


def pod_view(pod: Object) -> _PodView:
    spec = pod.get("spec") or {}
    return _PodView(
        labels=tuple(sorted((meta(pod).get("labels") or {}).items())),
        hostname=str(spec.get("hostname") or ""),
        subdomain=str(spec.get("subdomain") or ""),
        deleting=bool(meta(pod).get("deletionTimestamp")),
        ready=is_ready(pod),
        ips=tuple(pod_ips(pod)),
        phase=str((pod.get("status") or {}).get("phase") or ""),
    )


def selects(service: Object, pod: Object) -> bool:
    selector = service_selector(service)
    if selector is None:
        return False
    labels = meta(pod).get("labels") or {}
    return all(labels.get(k) == v for k, v in selector.items())


def is_namespace_terminating(error: StatusError) -> bool:
    causes = (error.details or {}).get("causes") or []
    return error.code == 403 and any(c.get("reason") == "NamespaceTerminating" for c in causes)


# ======================================================================================
# the controller
# ======================================================================================


class EndpointsController(Controller):
    name: ClassVar[str] = "endpoints-controller"
    workers = 5

    def __init__(self, context: ControllerContext) -> None:
        self.client = context.client
        self.services = context.informers.informer(SERVICES)
        self.pods = context.informers.informer(PODS)
        self.endpoints = context.informers.informer(ENDPOINTS)
        super().__init__([self.services, self.pods, self.endpoints])
        self.recorder = context.recorder("endpoint-controller")
        self.trigger_times = TriggerTimeTracker()
        self.services.add_handlers(
            on_add=self._enqueue,
            on_update=lambda _, new: self._enqueue(new),
            on_delete=self._enqueue,
        )
        self.pods.add_handlers(
            on_add=self._pod_changed, on_update=self._pod_updated, on_delete=self._pod_changed
        )
        self.endpoints.add_handlers(on_delete=self._endpoints_deleted)

    def _enqueue(self, obj: Object) -> None:
        self.queue.add(f"{meta(obj).get('namespace', '')}/{meta(obj).get('name', '')}")

    def _namespace_has_services(self, pod: Object) -> bool:
        return bool(self.services.indexer.by_index("namespace", meta(pod).get("namespace", "")))

    def _services_of(self, pod: Object) -> list[Object]:
        namespace = meta(pod).get("namespace", "")
        return [
            s for s in self.services.indexer.by_index("namespace", namespace) if selects(s, pod)
        ]

    def _pod_changed(self, pod: Object) -> None:
        for service in self._services_of(pod):
            self._enqueue(service)

    def _pod_updated(self, old: Object, new: Object) -> None:
        if not self._namespace_has_services(new):
            return  # the common case for most pods: nothing here selects anything
        if pod_view(old) == pod_view(new):
            return
        for service in {id(s): s for s in self._services_of(old) + self._services_of(new)}.values():
            self._enqueue(service)

    def _endpoints_deleted(self, endpoints: Object) -> None:
        service = self.services.get(
            f"{meta(endpoints).get('namespace', '')}/{meta(endpoints).get('name', '')}"
        )
        if service is not None and service_selector(service) is not None:
            self._enqueue(service)

    async def sync(self, key: str) -> None:
        namespace, _, name = key.partition("/")
        service = self.services.get(key)
        if service is None:
            self.trigger_times.delete(key)
            try:
                await self.client.delete(ENDPOINTS, name, namespace)
            except StatusError as error:
                if error.code != 404:
                    raise
            return
        spec = service.get("spec") or {}
        if (
            spec.get("type") == "ExternalName"
            or service_selector(service) is None
            or key == API_SERVER_SERVICE
        ):
            return
        pods = [
            p for p in self.pods.indexer.by_index("namespace", namespace) if selects(service, p)
        ]
        trigger_time = self.trigger_times.compute(key, service, pods)
        current = self.endpoints.get(key)
        desired = plan_endpoints(service, desired_subsets(service, pods), current, trigger_time)
        if desired is None:
            return
        try:
            if current is None:
                await self.client.create(ENDPOINTS, desired, namespace)
            else:
                await self.client.update(ENDPOINTS, desired)
        except StatusError as error:
            if current is None and is_namespace_terminating(error):
                return
            if current is None:
                self.recorder.event(
                    desired,
                    "Warning",
                    "FailedToCreateEndpoint",
                    f"Failed to create endpoint for service {key}: {error.message}",
                )
            else:
                self.recorder.event(
                    desired,
                    "Warning",
                    "FailedToUpdateEndpoint",
                    f"Failed to update endpoint {key}: {error.message}",
                )
            raise
