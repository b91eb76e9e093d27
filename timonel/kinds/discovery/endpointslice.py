"""discovery.k8s.io/v1 EndpointSlice: the addresses and ports behind a Service.

A slice belongs to its Service through the `kubernetes.io/service-name` label (no owner
field): the endpointslice controller, the proxy and DNS all find a Service's slices with
that label selector.
"""

from __future__ import annotations

from typing import Any, ClassVar

from timonel.api.errors import (
    ErrorType,
    FieldError,
    duplicate,
    invalid_value,
    not_supported,
    required,
)
from timonel.api.objects import Object
from timonel.api.validation import (
    dns1123_label_problems,
    dns1123_subdomain_problems,
    label_value_problems,
    qualified_name_problems,
    validate_labels,
)
from timonel.kinds.base import AGE_COLUMN, NAME_COLUMN, Column, Strategy
from timonel.kinds.core.common import immutable
from timonel.kinds.networking.addresses import endpoint_ip_problems, ipv4_problems, ipv6_problems
from timonel.kinds.printing import creation_age, field_description

GROUP = "discovery.k8s.io"

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"

ADDRESS_TYPES = ("FQDN", "IPv4", "IPv6")
PROTOCOLS = ("SCTP", "TCP", "UDP")
MAX_ENDPOINTS = 1000
MAX_ADDRESSES = 100
MAX_PORTS = 20000
MAX_TOPOLOGY_LABELS = 16
MAX_ZONE_HINTS = 8
# Printers show this many ports or addresses, then "+ N more...".
_CELL_ITEMS = 3


def service_name(endpoint_slice: Object) -> str | None:
    """The Service this slice serves, from its `kubernetes.io/service-name` label."""
    labels = (endpoint_slice.get("metadata") or {}).get("labels") or {}
    name = labels.get(SERVICE_NAME_LABEL)
    return name if isinstance(name, str) and name else None


def _too_many(path: str, actual: int, limit: int) -> FieldError:
    return FieldError(ErrorType.TOO_MANY, path, f"must have at most {limit} items", actual)


def _describe(field: str) -> str:
    return field_description(GROUP, "v1", "EndpointSlice", field)


class EndpointSliceStrategy(Strategy):
    group: ClassVar[str] = GROUP
    version: ClassVar[str] = "v1"
    kind: ClassVar[str] = "EndpointSlice"
    plural: ClassVar[str] = "endpointslices"
    singular: ClassVar[str] = "endpointslice"
    tracks_generation: ClassVar[bool] = True
    immutable_fields: ClassVar[tuple[str, ...]] = ("addressType",)
    columns: ClassVar[tuple[Column, ...]] = (
        NAME_COLUMN,
        Column("AddressType", description=_describe("addressType")),
        Column("Ports", description=_describe("ports")),
        Column("Endpoints", description=_describe("endpoints")),
        AGE_COLUMN,
    )

    def default(self, obj: Object) -> None:
        for port in obj.get("ports") or []:
            if isinstance(port, dict):
                port.setdefault("name", "")
                port.setdefault("protocol", "TCP")
        endpoints = obj.get("endpoints")
        if endpoints:
            for endpoint in endpoints:
                if isinstance(endpoint, dict):
                    endpoint.setdefault("conditions", {})
        else:
            # Stored as protobuf, an empty list reads back as null.
            obj["endpoints"] = None

    def prepare_for_create(self, obj: Object) -> None:
        super().prepare_for_create(obj)
        _drop_deprecated_topology(obj)

    def prepare_for_update(self, new: Object, old: Object) -> None:
        super().prepare_for_update(new, old)
        if new.get("endpoints") != old.get("endpoints"):
            _drop_deprecated_topology(new)

    def spec_changed(self, new: Object, old: Object) -> bool:
        """Anything but metadata counts, and so do label changes (the service-name label
        moves a slice between Services)."""
        new_labels = (new.get("metadata") or {}).get("labels")
        old_labels = (old.get("metadata") or {}).get("labels")
        return _without_meta(new) != _without_meta(old) or new_labels != old_labels

    def validate(self, obj: Object) -> list[FieldError]:
        address_type = obj.get("addressType") or ""
        errors: list[FieldError] = []
        if not address_type:
            errors.append(required("addressType"))
        elif address_type not in ADDRESS_TYPES:
            errors.append(not_supported("addressType", address_type, list(ADDRESS_TYPES)))
        errors.extend(_validate_endpoints(obj.get("endpoints") or [], address_type))
        errors.extend(_validate_ports(obj.get("ports") or []))
        return errors

    def validate_update(self, new: Object, old: Object) -> list[FieldError]:
        errors = self.validate(new)
        if new.get("addressType") != old.get("addressType"):
            errors.append(immutable("addressType", new.get("addressType") or ""))
        return errors

    def table_row(self, obj: Object) -> list[Any]:
        meta = obj.get("metadata") or {}
        return [
            meta.get("name", ""),
            obj.get("addressType", ""),
            format_ports(obj.get("ports") or []),
            format_endpoints(obj.get("endpoints") or []),
            creation_age(obj),
        ]


def _without_meta(obj: Object) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in ("metadata", "apiVersion", "kind")}


def _drop_deprecated_topology(obj: Object) -> None:
    # v1 writes clear the field that only v1beta1 clients could fill.
    for endpoint in obj.get("endpoints") or []:
        if isinstance(endpoint, dict):
            endpoint.pop("deprecatedTopology", None)


def _validate_endpoints(endpoints: list[Any], address_type: str) -> list[FieldError]:
    if len(endpoints) > MAX_ENDPOINTS:
        return [_too_many("endpoints", len(endpoints), MAX_ENDPOINTS)]
    errors: list[FieldError] = []
    for i, endpoint in enumerate(endpoints):
        path = f"endpoints[{i}]"
        if not isinstance(endpoint, dict):
            errors.append(invalid_value(path, endpoint, "must be an object"))
            continue
        addresses = endpoint.get("addresses") or []
        if not addresses:
            errors.append(required(f"{path}.addresses", "must contain at least 1 address"))
        elif len(addresses) > MAX_ADDRESSES:
            errors.append(_too_many(f"{path}.addresses", len(addresses), MAX_ADDRESSES))
        for j, address in enumerate(addresses):
            errors.extend(_address_errors(f"{path}.addresses[{j}]", str(address), address_type))
        node_name = endpoint.get("nodeName")
        if node_name is not None:
            errors.extend(
                invalid_value(f"{path}.nodeName", node_name, p)
                for p in dns1123_subdomain_problems(str(node_name))
            )
        topology = endpoint.get("deprecatedTopology")
        if isinstance(topology, dict) and len(topology) > MAX_TOPOLOGY_LABELS:
            errors.append(
                _too_many(f"{path}.deprecatedTopology", len(topology), MAX_TOPOLOGY_LABELS)
            )
        errors.extend(validate_labels(topology, f"{path}.deprecatedTopology"))
        hostname = endpoint.get("hostname")
        if hostname is not None:
            errors.extend(
                invalid_value(f"{path}.hostname", hostname, p)
                for p in dns1123_label_problems(str(hostname))
            )
        hints = endpoint.get("hints")
        if isinstance(hints, dict):
            errors.extend(_validate_hints(hints, f"{path}.hints"))
    return errors


def _address_errors(path: str, address: str, address_type: str) -> list[FieldError]:
    # Unknown address types were reported already; their addresses are not checked.
    if address_type == "IPv4":
        problems = ipv4_problems(address) + endpoint_ip_problems(address)
    elif address_type == "IPv6":
        problems = ipv6_problems(address) + endpoint_ip_problems(address)
    elif address_type == "FQDN":
        return _fqdn_errors(path, address)
    else:
        return []
    return [invalid_value(path, address, p) for p in problems]


def _fqdn_errors(path: str, name: str) -> list[FieldError]:
    """validation.IsFullyQualifiedDomainName: two labels at least, a trailing dot allowed."""
    if not name:
        return [required(path)]
    name = name.removesuffix(".")
    problems = dns1123_subdomain_problems(name)
    if problems:
        return [invalid_value(path, name, ",".join(problems))]
    labels = name.split(".")
    if len(labels) < 2:
        return [
            invalid_value(
                path, name, "should be a domain with at least two segments separated by dots"
            )
        ]
    for label in labels:
        label_problems = dns1123_label_problems(label)
        if label_problems:
            return [invalid_value(path, label, ",".join(label_problems))]
    return []


def _validate_hints(hints: dict[str, Any], path: str) -> list[FieldError]:
    zones = hints.get("forZones") or []
    if len(zones) > MAX_ZONE_HINTS:
        return [_too_many(f"{path}.forZones", len(zones), MAX_ZONE_HINTS)]
    errors: list[FieldError] = []
    seen: set[str] = set()
    for i, zone in enumerate(zones):
        name = str((zone or {}).get("name", ""))
        zone_path = f"{path}.forZones[{i}].name"
        if name in seen:
            errors.append(duplicate(zone_path, name))
        seen.add(name)
        errors.extend(invalid_value(zone_path, name, p) for p in label_value_problems(name))
    return errors


def _validate_ports(ports: list[Any]) -> list[FieldError]:
    if len(ports) > MAX_PORTS:
        return [_too_many("ports", len(ports), MAX_PORTS)]
    errors: list[FieldError] = []
    names: set[str] = set()
    for i, port in enumerate(ports):
        path = f"ports[{i}]"
        if not isinstance(port, dict):
            errors.append(invalid_value(path, port, "must be an object"))
            continue
        name = str(port.get("name") or "")
        if name:
            errors.extend(
                invalid_value(f"{path}.name", name, p) for p in dns1123_label_problems(name)
            )
        if name in names:
            errors.append(duplicate(f"{path}.name", name))
        names.add(name)
        protocol = port.get("protocol")
        if protocol is None:
            errors.append(required(f"{path}.protocol"))
        elif protocol not in PROTOCOLS:
            errors.append(not_supported(f"{path}.protocol", protocol, list(PROTOCOLS)))
        app_protocol = port.get("appProtocol")
        if app_protocol is not None:
            errors.extend(
                invalid_value(f"{path}.appProtocol", app_protocol, p)
                for p in qualified_name_problems(str(app_protocol))
            )
    return errors


def _with_more(items: list[str], count: int) -> str:
    text = ",".join(items)
    if count > _CELL_ITEMS:
        return f"{text} + {count - _CELL_ITEMS} more..."
    return text or "<unset>"


def format_ports(ports: list[Any]) -> str:
    """formatDiscoveryPorts: port numbers (or names, or "*" for all ports)."""
    shown: list[str] = []
    for port in ports[:_CELL_ITEMS]:
        port = port if isinstance(port, dict) else {}
        if port.get("port") is not None:
            shown.append(str(port["port"]))
        elif port.get("name") is not None:
            shown.append(str(port["name"]))
        else:
            shown.append("*")
    return _with_more(shown, len(ports))


def format_endpoints(endpoints: list[Any]) -> str:
    """formatDiscoveryEndpoints: every endpoint's addresses, the first three shown."""
    addresses = [
        str(address)
        for endpoint in endpoints
        if isinstance(endpoint, dict)
        for address in endpoint.get("addresses") or []
    ]
    return _with_more(addresses[:_CELL_ITEMS], len(addresses))
