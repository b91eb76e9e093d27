"""Admission: what the API server does between validation and storage for some kinds.

- NamespaceLifecycle: objects are created only in existing, non-terminating namespaces;
  the system namespaces cannot be deleted.
- Pod defaults that kube-apiserver's admission plugins apply (service account,
  default tolerations, priority) and the pod's QoS class.
- Service ClusterIP and NodePort allocation (and release on delete or failure).
- ResourceQuota: a create must fit the namespace's quotas, which are charged for it
  (quota.py decides).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from timonel.api import errors
from timonel.api.errors import FieldError, invalid_value
from timonel.api.objects import Object
from timonel.apiserver import quota
from timonel.apiserver.allocators import AlreadyAllocated, OutOfRange, RangeFull
from timonel.kinds.base import Strategy
from timonel.kinds.core import pod as pod_kind
from timonel.storage.interface import RevisionMismatch

if TYPE_CHECKING:
    from timonel.apiserver.server import ApiServer

IMMORTAL_NAMESPACES = ("default", "kube-system", "kube-public")
_QUOTA_RETRIES = 10


def _is(strategy: Strategy, group: str, kind: str) -> bool:
    return strategy.group == group and strategy.kind == kind and not strategy.storage_resource


async def admit_create(api: ApiServer, strategy: Strategy, obj: Object, *, dry_run: bool) -> None:
    meta = obj.get("metadata") or {}
    if strategy.namespaced:
        await _check_namespace_open(api, meta.get("namespace", ""), strategy, meta.get("name", ""))
    if _is(strategy, "", "Pod"):
        pod_kind.admit_pod(obj)


async def reserve_create(api: ApiServer, strategy: Strategy, obj: Object, *, dry_run: bool) -> None:
    """What a valid create takes before it is stored: quota and service addresses (as
    kube-apiserver's validating admission and REST create do, after validation)."""
    meta = obj.get("metadata") or {}
    if strategy.namespaced and meta.get("namespace"):
        await _charge_quotas(api, strategy, obj, dry_run=dry_run)
    if _is(strategy, "", "Service") and not dry_run:
        await _allocate_service(api, obj, None)


async def release_create(api: ApiServer, strategy: Strategy, obj: Object) -> None:
    """Undo what reserve_create took when the object was not stored after all."""
    if _is(strategy, "", "Service"):
        await _release_service(api, obj, keep=None)


async def admit_update(
    api: ApiServer, strategy: Strategy, new: Object, old: Object, *, dry_run: bool
) -> None:
    if _is(strategy, "", "Service") and not dry_run:
        await _allocate_service(api, new, old)
        await _release_service(api, old, keep=new)


async def admit_delete(api: ApiServer, strategy: Strategy, obj: Object) -> None:
    if _is(strategy, "", "Namespace"):
        name = (obj.get("metadata") or {}).get("name", "")
        if name in IMMORTAL_NAMESPACES:
            raise errors.forbidden_request(
                f'namespaces "{name}" is forbidden: this namespace may not be deleted'
            )


async def after_delete(api: ApiServer, strategy: Strategy, obj: Object) -> None:
    if _is(strategy, "", "Service"):
        await _release_service(api, obj, keep=None)


def validate_meta_update(new: Object, old: Object) -> list[FieldError]:
    return []


async def _check_namespace_open(
    api: ApiServer, namespace: str, strategy: Strategy, name: str
) -> None:
    if not namespace:
        return
    ns = await api.get_namespace(namespace)
    if ns is None:
        raise errors.not_found("namespaces", "", namespace)
    if (ns.get("status") or {}).get("phase") == "Terminating" or (ns.get("metadata") or {}).get(
        "deletionTimestamp"
    ):
        raise errors.StatusError(
            403,
            "Forbidden",
            f'{strategy.plural}{"." + strategy.group if strategy.group else ""} "{name}" is forbidden: '
            f"unable to create new content in namespace {namespace} because it is being terminated",
            details={
                "name": name,
                "kind": strategy.plural,
                "group": strategy.group or None,
                "causes": [
                    {
                        "reason": "NamespaceTerminating",
                        "message": f"namespace {namespace} is being terminated",
                        "field": "metadata.namespace",
                    }
                ],
            },
        )


async def _charge_quotas(api: ApiServer, strategy: Strategy, obj: Object, *, dry_run: bool) -> None:
    """Check the create against the namespace's quotas and charge them, each write
    conditional on the quota not having changed since it was read."""
    namespace = (obj.get("metadata") or {}).get("namespace", "")
    names = [q["metadata"]["name"] for q in await api.list_objects("", "resourcequotas", namespace)]
    for _ in range(_QUOTA_RETRIES):
        if not names:
            return
        current = [
            q
            for q in [await api.get_object("", "resourcequotas", namespace, n) for n in names]
            if q
        ]
        charges = quota.charge_create(
            current, strategy.group, strategy.plural, obj, datetime.now(UTC)
        )
        if dry_run:
            return
        names = []
        for charge in charges:
            try:
                await api.store_object("", "resourcequotas", charge.updated_quota())
            except RevisionMismatch:
                names.append(charge.quota["metadata"]["name"])
    if not names:
        return
    raise errors.internal_error("failed to update resource quota usage: too many conflicts")


def _wants_cluster_ip(service: Object) -> bool:
    spec = service.get("spec") or {}
    return spec.get("type", "ClusterIP") != "ExternalName" and spec.get("clusterIP") != "None"


def _wants_node_ports(service: Object) -> bool:
    spec = service.get("spec") or {}
    kind = spec.get("type", "ClusterIP")
    if kind == "NodePort":
        return True
    return kind == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts", True) is not False


def _service_invalid(service: Object, error: FieldError) -> errors.StatusError:
    return errors.invalid("Service", "", (service.get("metadata") or {}).get("name", ""), [error])


async def _allocate_service(api: ApiServer, service: Object, old: Object | None) -> None:
    spec: dict[str, Any] = service.setdefault("spec", {})
    old_spec = (old or {}).get("spec") or {}
    allocated_ip = ""
    if _wants_cluster_ip(service) and not (
        old and old_spec.get("clusterIP") and old_spec.get("clusterIP") != "None"
    ):
        requested = spec.get("clusterIP") or ""
        try:
            allocated_ip = await api.service_ips.allocate(requested)
        except OutOfRange:
            raise _service_invalid(
                service,
                invalid_value(
                    "spec.clusterIPs",
                    [requested],
                    f"failed to allocate IP {requested}: the provided IP ({requested}) is not in the valid "
                    f"range. The range of valid IPs is {api.service_ips.network}",
                ),
            ) from None
        except AlreadyAllocated:
            raise _service_invalid(
                service,
                invalid_value(
                    "spec.clusterIPs",
                    [requested],
                    f"failed to allocate IP {requested}: provided IP is already allocated",
                ),
            ) from None
        except RangeFull:
            raise errors.internal_error("failed to allocate a serviceIP: range is full") from None
        spec["clusterIP"] = allocated_ip
        spec["clusterIPs"] = [allocated_ip]
    elif old and old_spec.get("clusterIP"):
        spec.setdefault("clusterIP", old_spec.get("clusterIP"))
        spec.setdefault("clusterIPs", old_spec.get("clusterIPs") or [old_spec.get("clusterIP")])
    if not _wants_node_ports(service):
        for port in spec.get("ports") or []:
            port.pop("nodePort", None)
        return
    old_ports = {int(p["nodePort"]) for p in old_spec.get("ports") or [] if p.get("nodePort")}
    taken: list[int] = []
    try:
        for index, port in enumerate(spec.get("ports") or []):
            requested_port = int(port.get("nodePort") or 0)
            if requested_port and requested_port in old_ports:
                continue
            try:
                port["nodePort"] = await api.node_ports.allocate(requested_port)
                taken.append(port["nodePort"])
            except OutOfRange:
                raise _service_invalid(
                    service,
                    invalid_value(
                        f"spec.ports[{index}].nodePort",
                        requested_port,
                        f"provided port is not in the valid range. The range of valid ports is "
                        f"{api.node_ports.ports.start}-{api.node_ports.ports.stop - 1}",
                    ),
                ) from None
            except AlreadyAllocated:
                raise _service_invalid(
                    service,
                    invalid_value(
                        f"spec.ports[{index}].nodePort",
                        requested_port,
                        "provided port is already allocated",
                    ),
                ) from None
    except BaseException:
        for port_number in taken:
            await api.node_ports.release(port_number)
        if allocated_ip:
            await api.service_ips.release(allocated_ip)
        raise


async def _release_service(api: ApiServer, service: Object, *, keep: Object | None) -> None:
    spec = service.get("spec") or {}
    keep_spec = (keep or {}).get("spec") or {}
    ip = spec.get("clusterIP")
    if ip and ip != "None" and ip != keep_spec.get("clusterIP"):
        await api.service_ips.release(ip)
    kept_ports = {p.get("nodePort") for p in keep_spec.get("ports") or []}
    for port in spec.get("ports") or []:
        node_port = port.get("nodePort")
        if node_port and node_port not in kept_ports:
            await api.node_ports.release(int(node_port))
