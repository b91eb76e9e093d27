"""Endpoints: the addresses and ports behind a Service, kept by the endpoints controller."""

from __future__ import annotations

from typing import Any, ClassVar

from timonel.api.errors import FieldError, invalid_value, required
from timonel.api.objects import Object
from timonel.api.validation import dns1123_subdomain_problems
from timonel.kinds.base import AGE_COLUMN, NAME_COLUMN, Column, Strategy
from timonel.kinds.core.common import (
    as_dict,
    as_list,
    as_str,
    child,
    index,
    parse_ip,
    validate_dns1123_label,
    validate_ip,
    validate_port_number,
    validate_protocol,
    validate_qualified_name,
)
from timonel.kinds.printing import creation_age, field_description


class EndpointsStrategy(Strategy):
    kind = "Endpoints"
    plural = "endpoints"
    singular = "endpoints"
    short_names = ("ep",)
    columns: ClassVar[tuple[Column, ...]] = (
        NAME_COLUMN,
        Column("Endpoints", description=field_description("", "v1", "Endpoints", "subsets")),
        AGE_COLUMN,
    )

    def default(self, obj: Object) -> None:
        for subset in as_list(obj.get("subsets")):
            for port in as_list(as_dict(subset).get("ports")):
                if isinstance(port, dict) and not port.get("protocol"):
                    port["protocol"] = "TCP"

    def validate(self, obj: Object) -> list[FieldError]:
        errors: list[FieldError] = []
        for i, subset in enumerate(as_list(obj.get("subsets"))):
            subset = as_dict(subset)
            path = index("subsets", i)
            addresses = as_list(subset.get("addresses"))
            not_ready = as_list(subset.get("notReadyAddresses"))
            if not addresses and not not_ready:
                errors.append(required(path, "must specify `addresses` or `notReadyAddresses`"))
            for field, items in (("addresses", addresses), ("notReadyAddresses", not_ready)):
                for j, address in enumerate(items):
                    errors += _validate_address(as_dict(address), index(child(path, field), j))
            ports = as_list(subset.get("ports"))
            for j, port in enumerate(ports):
                errors += _validate_port(
                    as_dict(port), len(ports) > 1, index(child(path, "ports"), j)
                )
        return errors

    def validate_update(self, new: Object, old: Object) -> list[FieldError]:
        return self.validate(new)

    def table_row(self, obj: Object) -> list[Any]:
        meta = as_dict(obj.get("metadata"))
        return [meta.get("name", ""), format_endpoints(obj), creation_age(obj)]


def _validate_address(address: dict[str, Any], path: str) -> list[FieldError]:
    ip = address.get("ip")
    errors = validate_ip(ip, child(path, "ip"))
    if address.get("hostname"):
        errors += validate_dns1123_label(as_str(address.get("hostname")), child(path, "hostname"))
    node_name = address.get("nodeName")
    if node_name is not None:
        errors += [
            invalid_value(child(path, "nodeName"), node_name, p)
            for p in dns1123_subdomain_problems(as_str(node_name))
        ]
    errors += validate_non_special_ip(ip, child(path, "ip"))
    return errors


def validate_non_special_ip(value: Any, path: str) -> list[FieldError]:
    """ValidateNonSpecialIP: no unspecified, loopback or link-local addresses."""
    ip = parse_ip(value)
    if ip is None:
        return [invalid_value(path, value, "must be a valid IP address")]
    errors: list[FieldError] = []
    if ip.is_unspecified:
        errors.append(invalid_value(path, value, f"may not be unspecified ({value})"))
    if ip.is_loopback:
        errors.append(
            invalid_value(path, value, "may not be in the loopback range (127.0.0.0/8, ::1/128)")
        )
    if ip.is_link_local:
        errors.append(
            invalid_value(
                path, value, "may not be in the link-local range (169.254.0.0/16, fe80::/10)"
            )
        )
    if ip.is_multicast and _is_link_local_multicast(ip):
        errors.append(
            invalid_value(
                path,
                value,
                "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)",
            )
        )
    return errors


def _is_link_local_multicast(ip: Any) -> bool:
    if ip.version == 4:
        return str(ip).startswith("224.0.0.")
    return bool(ip.packed[0] == 0xFF and ip.packed[1] & 0x0F == 0x02)


def _validate_port(port: dict[str, Any], require_name: bool, path: str) -> list[FieldError]:
    errors: list[FieldError] = []
    name = as_str(port.get("name"))
    if require_name and not name:
        errors.append(required(child(path, "name")))
    elif name:
        errors += validate_dns1123_label(name, child(path, "name"))
    errors += validate_port_number(port.get("port"), child(path, "port"))
    errors += validate_protocol(port.get("protocol"), child(path, "protocol"))
    if port.get("appProtocol") is not None:
        errors += validate_qualified_name(
            as_str(port.get("appProtocol")), child(path, "appProtocol")
        )
    return errors


def format_endpoints(endpoints: Object, port_names: set[str] | None = None) -> str:
    """formatEndpoints: up to three `ip:port` (or bare ip), then `+ N more...`."""
    subsets = as_list(endpoints.get("subsets"))
    if not subsets:
        return "<none>"
    shown: list[str] = []
    limit = 3
    more = False
    count = 0
    for subset in subsets:
        subset = as_dict(subset)
        addresses = [as_dict(a) for a in as_list(subset.get("addresses"))]
        ports = as_list(subset.get("ports"))
        if not ports:
            count += len(addresses)
            for address in addresses:
                if len(shown) == limit:
                    more = True
                    break
                shown.append(as_str(address.get("ip")))
            continue
        for port in ports:
            port = as_dict(port)
            if port_names is not None and port.get("name", "") not in port_names:
                continue
            count += len(addresses)
            for address in addresses:
                if len(shown) == limit:
                    more = True
                    break
                shown.append(_join_host_port(as_str(address.get("ip")), port.get("port", 0)))
    text = ",".join(shown)
    if more:
        return f"{text} + {count - limit} more..."
    return text


def _join_host_port(host: str, port: Any) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
