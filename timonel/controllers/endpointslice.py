"""The endpointslice controller: discovery.k8s.io/v1 EndpointSlices for every Service with
a selector (kube's pkg/controller/endpointslice and its reconciler).

A Service's slices carry the `kubernetes.io/service-name` and
`endpointslice.kubernetes.io/managed-by` labels and a controller reference to it. Pods
are grouped by the ports they resolve the Service's ports to; each group fills slices
of at most `max_endpoints_per_slice` endpoints (100). Changes are minimal: endpoints
that moved or changed update the slice they are in, new ones fill slices being updated
first, then the existing slice they fit best, then new slices; emptied slices go. A
Service with no endpoints keeps one empty placeholder slice.

The informer may lag behind the controller's own writes: slices written are tracked by
uid and generation, and a Service is not reconciled until its informer caught up.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from timonel.api.errors import StatusError
from timonel.api.objects import Object
from timonel.client.resources import ENDPOINTSLICES, NODES, PODS, SERVICES
from timonel.controllers.base import Controller, Requeue
from timonel.controllers.endpoints import is_namespace_terminating, pod_view, selects
from timonel.controllers.manager import ControllerContext
from timonel.controllers.ownership import controller_reference
from timonel.controllers.podendpoints import (
    HEADLESS_LABEL,
    LAST_CHANGE_TRIGGER_TIME,
    ZONE_LABEL,
    TriggerTimeTracker,
    find_port,
    format_time,
    is_service_ip_set,
    pod_address_fields,
    pod_ip_for_family,
    service_selector,
    should_pod_be_in_endpoints,
)
from timonel.controllers.pods import is_ready, meta

log = logging.getLogger(__name__)

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
CONTROLLER_NAME = "endpointslice-controller.k8s.io"
MAX_ENDPOINTS_PER_SLICE = 100
# How long after a slice changed behind the controller's back it looks at its Service.
SLICE_CHANGE_DELAY = 1.0
_RESERVED_LABELS = (SERVICE_NAME_LABEL, MANAGED_BY_LABEL, HEADLESS_LABEL)

Endpoint = dict[str, Any]
PortKey = tuple[tuple[str, str, int, str], ...]


# ======================================================================================
# pure decisions
# ======================================================================================


def address_types(service: Object) -> list[str]:
    """The address types a Service's slices have: one per IP family it serves."""
    spec = service.get("spec") or {}
    families = [str(f) for f in spec.get("ipFamilies") or [] if f in ("IPv4", "IPv6")]
    if families:
        return families
    cluster_ip = spec.get("clusterIP") or ""
    return ["IPv6"] if ":" in cluster_ip else ["IPv4"]


def slice_ports(service: Object, pod: Object) -> list[dict[str, Any]]:
    """getEndpointPorts: every Service port the pod resolves, named or not."""
    spec = service.get("spec") or {}
    ports: list[dict[str, Any]] = []
    for service_port in spec.get("ports") or []:
        number = find_port(pod, service_port)
        if number is None:
            continue
        port: dict[str, Any] = {
            "name": service_port.get("name") or "",
            "port": number,
            "protocol": service_port.get("protocol") or "TCP",
        }
        if service_port.get("appProtocol"):
            port["appProtocol"] = service_port["appProtocol"]
        ports.append(port)
    return ports


def port_key(ports: list[dict[str, Any]] | None) -> PortKey:
    return tuple(
        sorted(
            (
                str(p.get("name") or ""),
                str(p.get("protocol") or "TCP"),
                int(p.get("port") or 0),
                str(p.get("appProtocol") or ""),
            )
            for p in ports or []
        )
    )


def pod_endpoint(pod: Object, node: Object | None, service: Object, address_type: str) -> Endpoint:
    """podToEndpoint: the pod's address and conditions. A terminating pod is never ready
    unless the Service publishes not-ready addresses."""
    serving = is_ready(pod)
    terminating = bool(meta(pod).get("deletionTimestamp"))
    publish = bool((service.get("spec") or {}).get("publishNotReadyAddresses"))
    ip = pod_ip_for_family(pod, address_type)
    zone = (meta(node).get("labels") or {}).get(ZONE_LABEL) if node is not None else None
    return {
        "addresses": [ip] if ip else [],
        "conditions": {
            "ready": publish or (serving and not terminating),
            "serving": serving,
            "terminating": terminating,
        },
        **pod_address_fields(pod, service, zone),
    }


def endpoint_identity(endpoint: Endpoint) -> tuple[Any, ...]:
    """What makes two endpoints the same one (kube's endpoint hash): addresses, hostname
    and the pod it points at."""
    target = endpoint.get("targetRef") or {}
    return (
        tuple(sorted(endpoint.get("addresses") or [])),
        endpoint.get("hostname") or "",
        target.get("namespace") or "",
        target.get("name") or "",
    )


def _comparable(endpoint: Endpoint) -> dict[str, Any]:
    """An endpoint as EndpointsEqualBeyondHash compares it."""
    target = dict(endpoint.get("targetRef") or {})
    target.pop("resourceVersion", None)
    conditions = endpoint.get("conditions") or {}
    return {
        "nodeName": endpoint.get("nodeName"),
        "zone": endpoint.get("zone"),
        "ready": conditions.get("ready"),
        "serving": conditions.get("serving"),
        "terminating": conditions.get("terminating"),
        "targetRef": target,
        "hints": endpoint.get("hints"),
    }


def slice_labels(service: Object, controller_name: str = CONTROLLER_NAME) -> dict[str, str]:
    """setEndpointSliceLabels: the Service's labels (reserved keys excepted), the headless
    marker, and the two labels that tie a slice to its Service and controller."""
    labels = {
        k: v for k, v in (meta(service).get("labels") or {}).items() if k not in _RESERVED_LABELS
    }
    if not is_service_ip_set(service):
        labels[HEADLESS_LABEL] = ""
    labels[SERVICE_NAME_LABEL] = meta(service).get("name", "")
    labels[MANAGED_BY_LABEL] = controller_name
    return labels


def slice_prefix(service_name: str) -> str:
    prefix = f"{service_name}-"
    return prefix if len(prefix) <= 253 - 5 else service_name[: 253 - 5]


def new_slice(service: Object, ports: list[dict[str, Any]] | None, address_type: str) -> Object:
    service_meta = meta(service)
    endpoint_slice: Object = {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "generateName": slice_prefix(service_meta.get("name", "")),
            "namespace": service_meta.get("namespace", ""),
            "labels": slice_labels(service),
            "ownerReferences": [controller_reference(service, "v1", "Service")],
        },
        "addressType": address_type,
        "endpoints": [],
    }
    if ports:
        endpoint_slice["ports"] = copy.deepcopy(ports)
    return endpoint_slice


def owned_by(endpoint_slice: Object, service: Object) -> bool:
    uid = meta(service).get("uid")
    return any(ref.get("uid") == uid for ref in meta(endpoint_slice).get("ownerReferences") or [])


@dataclass
class SlicePlan:
    create: list[Object] = field(default_factory=list)
    update: list[Object] = field(default_factory=list)
    delete: list[Object] = field(default_factory=list)
    # Pods left out because their node is unknown: the Service is looked at again.
    problems: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.create or self.update or self.delete)


def _desired_by_ports(
    service: Object,
    pods: list[Object],
    nodes: Mapping[str, Object],
    address_type: str,
    problems: list[str],
) -> tuple[dict[PortKey, list[dict[str, Any]]], dict[PortKey, dict[tuple[Any, ...], Endpoint]]]:
    ports_by_key: dict[PortKey, list[dict[str, Any]]] = {}
    endpoints_by_key: dict[PortKey, dict[tuple[Any, ...], Endpoint]] = {}
    publish = bool((service.get("spec") or {}).get("publishNotReadyAddresses"))
    service_meta = meta(service)
    for pod in sorted(pods, key=lambda p: meta(p).get("name", "")):
        if not should_pod_be_in_endpoints(pod, True):
            continue
        ports = slice_ports(service, pod)
        key = port_key(ports)
        ports_by_key.setdefault(key, ports)
        endpoints = endpoints_by_key.setdefault(key, {})
        node_name = (pod.get("spec") or {}).get("nodeName") or ""
        node = nodes.get(node_name)
        if node is None and not publish:
            problems.append(
                f"skipping Pod {meta(pod).get('name', '')} for Service "
                f"{service_meta.get('namespace', '')}/{service_meta.get('name', '')}: Node {node_name} Not Found"
            )
            continue
        endpoint = pod_endpoint(pod, node, service, address_type)
        if endpoint["addresses"]:
            endpoints[endpoint_identity(endpoint)] = endpoint
    return ports_by_key, endpoints_by_key


def _plan_for_ports(
    service: Object,
    existing: list[Object],
    desired: dict[tuple[Any, ...], Endpoint],
    ports: list[dict[str, Any]],
    address_type: str,
    max_per_slice: int,
) -> SlicePlan:
    """reconcileByPortMapping for one group of pods serving the same ports."""
    plan = SlicePlan()
    labels = slice_labels(service)
    remaining = dict(desired)
    by_name: dict[str, Object] = {}
    unchanged: list[str] = []
    to_update: list[str] = []
    for current in existing:
        name = meta(current).get("name", "")
        by_name[name] = current
        kept: list[Endpoint] = []
        changed = False
        for endpoint in current.get("endpoints") or []:
            identity = endpoint_identity(endpoint)
            wanted = remaining.pop(identity, None)
            if wanted is None:
                continue
            kept.append(wanted)
            changed = changed or _comparable(wanted) != _comparable(endpoint)
        labels_changed = (meta(current).get("labels") or {}) != labels
        if changed or len(kept) != len(current.get("endpoints") or []):
            if not kept:
                plan.delete.append(current)
                continue
            updated = copy.deepcopy(current)
            updated["endpoints"] = kept
            meta(updated)["labels"] = dict(labels)
            by_name[name] = updated
            to_update.append(name)
        elif labels_changed:
            updated = copy.deepcopy(current)
            meta(updated)["labels"] = dict(labels)
            by_name[name] = updated
            to_update.append(name)
        else:
            unchanged.append(name)
    queue = list(remaining.values())
    # Fill the slices being written anyway, the fullest first.
    for name in sorted(to_update, key=lambda n: -len(by_name[n].get("endpoints") or [])):
        filling = by_name[name]
        while queue and len(filling["endpoints"]) < max_per_slice:
            filling["endpoints"].append(queue.pop(0))
    while queue:
        fitting: Object | None = None
        if len(queue) < max_per_slice and unchanged:
            fitting = _slice_to_fill([by_name[n] for n in unchanged], len(queue), max_per_slice)
        if fitting is None:
            target = new_slice(service, ports, address_type)
        else:
            target = copy.deepcopy(fitting)
            target["endpoints"] = list(target.get("endpoints") or [])
            by_name[meta(target)["name"]] = target
        while queue and len(target["endpoints"]) < max_per_slice:
            target["endpoints"].append(queue.pop(0))
        name = meta(target).get("name")
        if name:
            unchanged.remove(name)
            to_update.append(name)
        else:
            plan.create.append(target)
    plan.update = [by_name[name] for name in to_update]
    return plan


def _slice_to_fill(candidates: list[Object], count: int, max_per_slice: int) -> Object | None:
    """getSliceToFill: the slice that comes closest to full once `count` endpoints join."""
    closest_gap = max_per_slice
    closest: Object | None = None
    for candidate in candidates:
        gap = max_per_slice - (count + len(candidate.get("endpoints") or []))
        if 0 <= gap < closest_gap:
            closest_gap, closest = gap, candidate
            if gap == 0:
                break
    return closest


def _is_placeholder_for(endpoint_slice: Object, service: Object, address_type: str) -> bool:
    return (
        not endpoint_slice.get("endpoints")
        and not endpoint_slice.get("ports")
        and endpoint_slice.get("addressType") == address_type
        and (meta(endpoint_slice).get("labels") or {}) == slice_labels(service)
    )


def plan_slices(
    service: Object,
    pods: list[Object],
    nodes: Mapping[str, Object],
    existing: list[Object],
    *,
    max_per_slice: int = MAX_ENDPOINTS_PER_SLICE,
) -> SlicePlan:
    """The creates, updates and deletes that make `existing` slices serve `pods`."""
    plan = SlicePlan()
    wanted_types = address_types(service)
    by_type: dict[str, list[Object]] = {}
    for endpoint_slice in existing:
        if endpoint_slice.get("addressType") not in wanted_types:
            plan.delete.append(endpoint_slice)
        else:
            by_type.setdefault(str(endpoint_slice.get("addressType")), []).append(endpoint_slice)
    for address_type in wanted_types:
        slices = by_type.get(address_type, [])
        type_plan = SlicePlan()
        existing_by_ports: dict[PortKey, list[Object]] = {}
        for endpoint_slice in slices:
            if owned_by(endpoint_slice, service):
                existing_by_ports.setdefault(port_key(endpoint_slice.get("ports")), []).append(
                    endpoint_slice
                )
            else:
                type_plan.delete.append(endpoint_slice)
        ports_by_key, desired_by_key = _desired_by_ports(
            service, pods, nodes, address_type, plan.problems
        )
        for key, desired in desired_by_key.items():
            part = _plan_for_ports(
                service,
                existing_by_ports.get(key, []),
                desired,
                ports_by_key[key],
                address_type,
                max_per_slice,
            )
            type_plan.create += part.create
            type_plan.update += part.update
            type_plan.delete += part.delete
        for key, unwanted in existing_by_ports.items():
            if key not in desired_by_key:
                type_plan.delete += unwanted
        if len(slices) == len(type_plan.delete) and not type_plan.create:
            if len(type_plan.delete) == 1 and _is_placeholder_for(
                type_plan.delete[0], service, address_type
            ):
                type_plan.delete = []
            else:
                type_plan.create.append(new_slice(service, None, address_type))
        # A slice about to go can take the place of one about to be created.
        for doomed in list(type_plan.delete):
            if not type_plan.create:
                break
            if doomed.get("addressType") == address_type and owned_by(doomed, service):
                replacement = type_plan.create.pop(0)
                replacement_meta = meta(replacement)
                replacement_meta.pop("generateName", None)
                replacement_meta["name"] = meta(doomed).get("name", "")
                replacement_meta["resourceVersion"] = meta(doomed).get("resourceVersion", "")
                type_plan.update.append(replacement)
                type_plan.delete.remove(doomed)
        plan.create += type_plan.create
        plan.update += type_plan.update
        plan.delete += type_plan.delete
    return plan


def set_trigger_time(endpoint_slice: Object, trigger_time: datetime | None) -> None:
    annotations = dict(meta(endpoint_slice).get("annotations") or {})
    if trigger_time is not None:
        annotations[LAST_CHANGE_TRIGGER_TIME] = format_time(trigger_time)
    else:
        annotations.pop(LAST_CHANGE_TRIGGER_TIME, None)
    if annotations:
        meta(endpoint_slice)["annotations"] = annotations
    else:
        meta(endpoint_slice).pop("annotations", None)


DELETION_EXPECTED = -1


class SliceTracker:
    """The generation of every slice the controller wrote, per Service (kube's
    EndpointSliceTracker): while the informer shows older generations, or slices the
    controller deleted, it is stale for that Service."""

    def __init__(self) -> None:
        self._generations: dict[str, dict[str, int]] = {}

    def written(self, service_key: str, endpoint_slice: Object) -> None:
        uid = meta(endpoint_slice).get("uid", "")
        self._generations.setdefault(service_key, {})[uid] = int(
            meta(endpoint_slice).get("generation") or 0
        )

    def deleting(self, service_key: str, endpoint_slice: Object) -> None:
        self._generations.setdefault(service_key, {})[meta(endpoint_slice).get("uid", "")] = (
            DELETION_EXPECTED
        )

    def deleted(self, service_key: str, endpoint_slice: Object) -> None:
        self._generations.get(service_key, {}).pop(meta(endpoint_slice).get("uid", ""), None)

    def forget(self, service_key: str) -> None:
        self._generations.pop(service_key, None)

    def is_own_write(self, service_key: str, endpoint_slice: Object) -> bool:
        """True when this version of the slice is one the controller wrote itself."""
        known = self._generations.get(service_key, {}).get(meta(endpoint_slice).get("uid", ""))
        return known is not None and known >= int(meta(endpoint_slice).get("generation") or 0)

    def stale(self, service_key: str, slices: list[Object]) -> bool:
        known = self._generations.get(service_key)
        if not known:
            return False
        seen: set[str] = set()
        for endpoint_slice in slices:
            uid = meta(endpoint_slice).get("uid", "")
            seen.add(uid)
            generation = known.get(uid)
            if generation is not None and (
                generation == DELETION_EXPECTED
                or generation > int(meta(endpoint_slice).get("generation") or 0)
            ):
                return True
        return any(
            uid not in seen for uid, generation in known.items() if generation != DELETION_EXPECTED
        )


def service_key_of(endpoint_slice: Object) -> str | None:
    labels = meta(endpoint_slice).get("labels") or {}
    if labels.get(MANAGED_BY_LABEL) != CONTROLLER_NAME or not labels.get(SERVICE_NAME_LABEL):
        return None
    return f"{meta(endpoint_slice).get('namespace', '')}/{labels[SERVICE_NAME_LABEL]}"


# ======================================================================================
# the controller
# ======================================================================================


class EndpointSliceController(Controller):
    name: ClassVar[str] = "endpointslice-controller"
    workers = 5

    def __init__(self, context: ControllerContext) -> None:
        self.client = context.client
        self.services = context.informers.informer(SERVICES)
        self.pods = context.informers.informer(PODS)
        self.nodes = context.informers.informer(NODES)
        self.slices = context.informers.informer(ENDPOINTSLICES)
        super().__init__([self.services, self.pods, self.nodes, self.slices])
        limit = context.options.get("max_endpoints_per_slice", MAX_ENDPOINTS_PER_SLICE)
        self.max_per_slice = (
            int(limit) if isinstance(limit, (int, str)) else MAX_ENDPOINTS_PER_SLICE
        )
        self.recorder = context.recorder("endpoint-slice-controller")
        self.trigger_times = TriggerTimeTracker()
        self.tracker = SliceTracker()
        self.services.add_handlers(
            on_add=self._enqueue,
            on_update=lambda _, new: self._enqueue(new),
            on_delete=self._enqueue,
        )
        self.pods.add_handlers(
            on_add=self._pod_changed, on_update=self._pod_updated, on_delete=self._pod_changed
        )
        self.slices.add_handlers(
            on_add=self._slice_changed,
            on_update=lambda _, new: self._slice_changed(new),
            on_delete=self._slice_deleted,
        )

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
        if pod_view(old) == pod_view(new) and (old.get("spec") or {}).get("nodeName") == (
            new.get("spec") or {}
        ).get("nodeName"):
            return
        for service in {id(s): s for s in self._services_of(old) + self._services_of(new)}.values():
            self._enqueue(service)

    def _slice_changed(self, endpoint_slice: Object) -> None:
        key = service_key_of(endpoint_slice)
        if key is not None and not self.tracker.is_own_write(key, endpoint_slice):
            self.queue.add_after(key, SLICE_CHANGE_DELAY)

    def _slice_deleted(self, endpoint_slice: Object) -> None:
        key = service_key_of(endpoint_slice)
        if key is not None:
            self.tracker.deleted(key, endpoint_slice)
            self.queue.add_after(key, SLICE_CHANGE_DELAY)

    def _service_slices(self, service: Object) -> list[Object]:
        service_meta = meta(service)
        return [
            s
            for s in self.slices.indexer.by_index("namespace", service_meta.get("namespace", ""))
            if (meta(s).get("labels") or {}).get(SERVICE_NAME_LABEL) == service_meta.get("name")
            and (meta(s).get("labels") or {}).get(MANAGED_BY_LABEL) == CONTROLLER_NAME
        ]

    async def sync(self, key: str) -> None:
        namespace, _, _ = key.partition("/")
        service = self.services.get(key)
        if service is None:
            # The slices go with their owner (garbage collection).
            self.trigger_times.delete(key)
            self.tracker.forget(key)
            return
        if (service.get("spec") or {}).get("type") == "ExternalName" or service_selector(
            service
        ) is None:
            return
        slices = self._service_slices(service)
        if self.tracker.stale(key, slices):
            raise Requeue(after=0.1)
        slices = [s for s in slices if not meta(s).get("deletionTimestamp")]
        pods = [
            p for p in self.pods.indexer.by_index("namespace", namespace) if selects(service, p)
        ]
        trigger_time = self.trigger_times.compute(key, service, pods)
        nodes = {meta(n).get("name", ""): n for n in self.nodes.all()}
        plan = plan_slices(service, pods, nodes, slices, max_per_slice=self.max_per_slice)
        try:
            await self._apply(key, service, plan, trigger_time)
        except StatusError as error:
            if is_namespace_terminating(error):
                return
            self.recorder.event(
                service,
                "Warning",
                "FailedToUpdateEndpointSlices",
                f"Error updating Endpoint Slices for Service {key}: {error.message}",
            )
            raise
        if plan.problems:
            raise RuntimeError("; ".join(plan.problems))

    async def _apply(
        self, key: str, service: Object, plan: SlicePlan, trigger_time: datetime | None
    ) -> None:
        namespace = meta(service).get("namespace", "")
        # Creating next to a Service being deleted would race the garbage collector.
        if not meta(service).get("deletionTimestamp"):
            for endpoint_slice in plan.create:
                set_trigger_time(endpoint_slice, trigger_time)
                self.tracker.written(
                    key, await self.client.create(ENDPOINTSLICES, endpoint_slice, namespace)
                )
        for endpoint_slice in plan.update:
            set_trigger_time(endpoint_slice, trigger_time)
            self.tracker.written(key, await self.client.update(ENDPOINTSLICES, endpoint_slice))
        for endpoint_slice in plan.delete:
            try:
                await self.client.delete(
                    ENDPOINTSLICES, meta(endpoint_slice).get("name", ""), namespace
                )
            except StatusError as error:
                if error.code != 404:
                    raise
            self.tracker.deleting(key, endpoint_slice)
