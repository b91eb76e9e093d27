"""Nodes: cluster-scoped, registered by their kubelet with status included.

`admit_node(node)` is the TaintNodesByCondition admission plugin: a new node starts with
the `node.kubernetes.io/not-ready:NoSchedule` taint until the node lifecycle controller
sees it Ready.
"""

from __future__ import annotations

from typing import Any, ClassVar

from timonel.api.errors import (
    FieldError,
    duplicate,
    forbidden,
    invalid_value,
    not_supported,
    required,
)
from timonel.api.objects import Object
from timonel.api.quantity import canonical_resource_list
from timonel.kinds.base import AGE_COLUMN, NAME_COLUMN, Column, Strategy
from timonel.kinds.core.common import (
    TAINT_EFFECTS,
    as_dict,
    as_list,
    as_str,
    go_strings,
    is_dual_stack,
    quantity_or_error,
    validate_cidr,
    validate_label_value,
    validate_qualified_name,
    validate_resource_quantity,
)
from timonel.kinds.printing import creation_age, field_description

ROLE_LABEL_PREFIX = "node-role.kubernetes.io/"
ROLE_LABEL = "kubernetes.io/role"
NOT_READY_TAINT = "node.kubernetes.io/not-ready"

# NodeSystemInfo's fields are all written by Go, empty or not.
_NODE_INFO_FIELDS = (
    "architecture", "bootID", "containerRuntimeVersion", "kernelVersion", "kubeProxyVersion",
    "kubeletVersion", "machineID", "operatingSystem", "osImage", "systemUUID",
)  # fmt: skip


def _doc(*path: str) -> str:
    return field_description("", "v1", "Node", *path)


class NodeStrategy(Strategy):
    kind = "Node"
    plural = "nodes"
    singular = "node"
    namespaced = False
    short_names = ("no",)
    has_status = True
    field_labels = ("spec.unschedulable",)
    columns: ClassVar[tuple[Column, ...]] = (
        NAME_COLUMN,
        Column("Status", description="The status of the node"),
        Column("Roles", description="The roles of the node"),
        AGE_COLUMN,
        Column("Version", description=_doc("status", "nodeInfo", "kubeletVersion")),
        Column("Internal-IP", priority=1, description=_doc("status", "addresses")),
        Column("External-IP", priority=1, description=_doc("status", "addresses")),
        Column("OS-Image", priority=1, description=_doc("status", "nodeInfo", "osImage")),
        Column(
            "Kernel-Version", priority=1, description=_doc("status", "nodeInfo", "kernelVersion")
        ),
        Column(
            "Container-Runtime",
            priority=1,
            description=_doc("status", "nodeInfo", "containerRuntimeVersion"),
        ),
    )

    def default(self, obj: Object) -> None:
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            spec = {}
            obj["spec"] = spec
        # v1's podCIDR and podCIDRs agree, the singular field winning.
        cidr = spec.get("podCIDR")
        cidrs = as_list(spec.get("podCIDRs"))
        if cidr and (not cidrs or cidrs[0] != cidr):
            spec["podCIDRs"] = [cidr]
        elif cidrs:
            spec["podCIDR"] = cidrs[0]
        status = obj.get("status")
        if not isinstance(status, dict):
            status = {}
            obj["status"] = status
        for field in ("capacity", "allocatable"):
            if isinstance(status.get(field), dict):
                status[field], _ = canonical_resource_list(status[field])
        if status.get("allocatable") is None and status.get("capacity") is not None:
            status["allocatable"] = dict(status["capacity"])
        endpoints = status.get("daemonEndpoints")
        if not isinstance(endpoints, dict):
            endpoints = {}
            status["daemonEndpoints"] = endpoints
        kubelet = endpoints.get("kubeletEndpoint")
        if not isinstance(kubelet, dict):
            kubelet = {}
            endpoints["kubeletEndpoint"] = kubelet
        kubelet.setdefault("Port", 0)
        info = status.get("nodeInfo")
        if not isinstance(info, dict):
            info = {}
            status["nodeInfo"] = info
        for field in _NODE_INFO_FIELDS:
            info.setdefault(field, "")

    def prepare_for_create(self, obj: Object) -> None:
        """A kubelet registers its node with status: unlike most kinds, it is kept."""

    def validate(self, obj: Object) -> list[FieldError]:
        spec = as_dict(obj.get("spec"))
        errors = validate_taints(spec.get("taints"), "metadata.taints")
        errors += _validate_resources(obj)
        cidrs = as_list(spec.get("podCIDRs"))
        for i, cidr in enumerate(cidrs):
            errors += validate_cidr(cidr, f"spec.podCIDRs[{i}]")
        if len(cidrs) > 1:
            if not is_dual_stack([as_str(c).split("/")[0] for c in cidrs]) or len(cidrs) > 2:
                errors.append(
                    invalid_value(
                        "spec.podCIDRs",
                        go_strings(cidrs),
                        "may specify no more than one CIDR for each IP family",
                    )
                )
            seen: set[str] = set()
            for i, cidr in enumerate(cidrs):
                if cidr in seen:
                    errors.append(duplicate(f"spec.podCIDRs[{i}]", cidr))
                seen.add(as_str(cidr))
        return errors

    def validate_update(self, new: Object, old: Object) -> list[FieldError]:
        """ValidateNodeUpdate: podCIDRs and providerID may only be set once."""
        spec = as_dict(new.get("spec"))
        old_spec = as_dict(old.get("spec"))
        errors = _validate_resources(new)
        seen: list[Any] = []
        for i, address in enumerate(as_list(as_dict(new.get("status")).get("addresses"))):
            if address in seen:
                errors.append(duplicate(f"status.addresses[{i}]", address))
            seen.append(address)
        old_cidrs = as_list(old_spec.get("podCIDRs"))
        if old_cidrs and old_cidrs != as_list(spec.get("podCIDRs")):
            errors.append(
                forbidden(
                    "spec.podCIDRs", 'node updates may not change podCIDR except from "" to valid'
                )
            )
        if old_spec.get("providerID") and old_spec.get("providerID") != spec.get("providerID"):
            errors.append(
                forbidden(
                    "spec.providerID",
                    'node updates may not change providerID except from "" to valid',
                )
            )
        errors += validate_taints(spec.get("taints"), "metadata.taints")
        if spec.get("externalID") != old_spec.get("externalID"):
            errors.append(forbidden("spec.externalID", "may not be updated"))
        return errors

    def validate_status_update(self, new: Object, old: Object) -> list[FieldError]:
        return self.validate_update(new, old)

    def table_row(self, obj: Object) -> list[Any]:
        meta = as_dict(obj.get("metadata"))
        status = as_dict(obj.get("status"))
        info = as_dict(status.get("nodeInfo"))
        return [
            meta.get("name", ""),
            node_status_cell(obj),
            ",".join(node_roles(obj)) or "<none>",
            creation_age(obj),
            as_str(info.get("kubeletVersion")),
            node_address(obj, "InternalIP"),
            node_address(obj, "ExternalIP"),
            as_str(info.get("osImage")) or "<unknown>",
            as_str(info.get("kernelVersion")) or "<unknown>",
            as_str(info.get("containerRuntimeVersion")) or "<unknown>",
        ]

    def selectable_fields(self, obj: Object) -> dict[str, str]:
        fields = super().selectable_fields(obj)
        fields["spec.unschedulable"] = (
            "true" if as_dict(obj.get("spec")).get("unschedulable") is True else "false"
        )
        return fields


def node_status_cell(node: Object) -> str:
    """`Ready`, `NotReady` or `Unknown`, then `,SchedulingDisabled` when cordoned."""
    parts = ["Unknown"]
    for condition in as_list(as_dict(node.get("status")).get("conditions")):
        condition = as_dict(condition)
        if condition.get("type") == "Ready":
            parts = ["Ready" if condition.get("status") == "True" else "NotReady"]
    if as_dict(node.get("spec")).get("unschedulable") is True:
        parts.append("SchedulingDisabled")
    return ",".join(parts)


def node_roles(node: Object) -> list[str]:
    """findNodeRoles: `node-role.kubernetes.io/<role>` keys and `kubernetes.io/role` values,
    sorted and unique."""
    roles = set()
    for key, value in as_dict(as_dict(node.get("metadata")).get("labels")).items():
        if key.startswith(ROLE_LABEL_PREFIX):
            role = key.removeprefix(ROLE_LABEL_PREFIX)
            if role:
                roles.add(role)
        elif key == ROLE_LABEL and value:
            roles.add(as_str(value))
    return sorted(roles)


def node_address(node: Object, kind: str) -> str:
    for address in as_list(as_dict(node.get("status")).get("addresses")):
        if as_dict(address).get("type") == kind:
            return as_str(as_dict(address).get("address"))
    return "<none>"


def admit_node(node: Object) -> None:
    """TaintNodesByCondition: new nodes are tainted not-ready (NoSchedule) until Ready."""
    spec = node.setdefault("spec", {})
    taints = spec.get("taints")
    if not isinstance(taints, list):
        taints = []
    for taint in taints:
        if (
            as_dict(taint).get("key") == NOT_READY_TAINT
            and as_dict(taint).get("effect") == "NoSchedule"
        ):
            return
    taints.append({"key": NOT_READY_TAINT, "effect": "NoSchedule"})
    spec["taints"] = taints


def validate_taints(taints: Any, path: str) -> list[FieldError]:
    """validateNodeTaints: keys, values, effects, unique by key and effect."""
    errors: list[FieldError] = []
    seen: set[tuple[str, str]] = set()
    for i, taint in enumerate(as_list(taints)):
        taint = as_dict(taint)
        taint_path = f"{path}[{i}]"
        taint_key = as_str(taint.get("key"))
        errors += validate_qualified_name(taint_key, f"{taint_path}.key")
        value = as_str(taint.get("value"))
        problems = validate_label_value(value, f"{taint_path}.value")
        if problems:
            errors.append(
                invalid_value(f"{taint_path}.value", value, ";".join(p.detail for p in problems))
            )
        effect = as_str(taint.get("effect"))
        if not effect:
            errors.append(required(f"{taint_path}.effect"))
        elif effect not in TAINT_EFFECTS:
            errors.append(not_supported(f"{taint_path}.effect", effect, TAINT_EFFECTS))
        if (effect, taint_key) in seen:
            errors.append(
                FieldError(
                    duplicate(taint_path, taint).type,
                    taint_path,
                    "taints must be unique by key and effect pair",
                    taint,
                )
            )
            continue
        seen.add((effect, taint_key))
    return errors


def _validate_resources(node: Object) -> list[FieldError]:
    errors: list[FieldError] = []
    status = as_dict(node.get("status"))
    for field in ("capacity", "allocatable"):
        for name, raw in as_dict(status.get(field)).items():
            path = f"status.{field}.{name}"
            quantity = quantity_or_error(raw, path, errors)
            if quantity is not None:
                errors += validate_resource_quantity(name, quantity, path)
    return errors
