"""networking.k8s.io/v1 NetworkPolicy."""

from __future__ import annotations

from typing import Any, ClassVar

from timonel.api.errors import (
    FieldError,
    RawValue,
    forbidden,
    invalid_value,
    not_supported,
    required,
)
from timonel.api.objects import Object
from timonel.api.validation import validate_label_selector
from timonel.kinds.base import AGE_COLUMN, NAME_COLUMN, Column, Strategy
from timonel.kinds.core.common import PORT_RANGE, port_name_problems
from timonel.kinds.networking.addresses import parse_cidr_sloppy
from timonel.kinds.printing import creation_age, field_description, format_label_selector

GROUP = "networking.k8s.io"
PROTOCOLS = ("TCP", "UDP", "SCTP")
POLICY_TYPES = ("Ingress", "Egress")


class NetworkPolicyStrategy(Strategy):
    group: ClassVar[str] = GROUP
    version: ClassVar[str] = "v1"
    kind: ClassVar[str] = "NetworkPolicy"
    plural: ClassVar[str] = "networkpolicies"
    singular: ClassVar[str] = "networkpolicy"
    short_names: ClassVar[tuple[str, ...]] = ("netpol",)
    tracks_generation: ClassVar[bool] = True
    columns: ClassVar[tuple[Column, ...]] = (
        NAME_COLUMN,
        Column(
            "Pod-Selector",
            description=field_description(GROUP, "v1", "NetworkPolicy", "spec", "podSelector"),
        ),
        AGE_COLUMN,
    )

    def default(self, obj: Object) -> None:
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return
        for direction in ("ingress", "egress"):
            for rule in spec.get(direction) or []:
                for port in (rule or {}).get("ports") or []:
                    if isinstance(port, dict):
                        port.setdefault("protocol", "TCP")
        if not spec.get("policyTypes"):
            spec["policyTypes"] = ["Ingress", "Egress"] if spec.get("egress") else ["Ingress"]

    def validate(self, obj: Object) -> list[FieldError]:
        return validate_network_policy_spec(obj.get("spec") or {})

    def validate_update(self, new: Object, old: Object) -> list[FieldError]:
        old_spec = old.get("spec") or {}
        # A selector stored by an older release may keep invalid label values.
        allow_invalid = bool(
            validate_label_selector(old_spec.get("podSelector"), "spec.podSelector")
        )
        return validate_network_policy_spec(
            new.get("spec") or {}, allow_invalid_label_value=allow_invalid
        )

    def table_row(self, obj: Object) -> list[Any]:
        selector = (obj.get("spec") or {}).get("podSelector") or {}
        return [
            (obj.get("metadata") or {}).get("name", ""),
            format_label_selector(selector),
            creation_age(obj),
        ]


def validate_network_policy_spec(
    spec: dict[str, Any], *, allow_invalid_label_value: bool = False
) -> list[FieldError]:
    errors = validate_label_selector(
        spec.get("podSelector") or {},
        "spec.podSelector",
        allow_invalid_label_value=allow_invalid_label_value,
    )
    for direction, peers_field in (("ingress", "from"), ("egress", "to")):
        for i, rule in enumerate(spec.get(direction) or []):
            rule = rule or {}
            path = f"spec.{direction}[{i}]"
            for j, port in enumerate(rule.get("ports") or []):
                errors.extend(validate_policy_port(port or {}, f"{path}.ports[{j}]"))
            for j, peer in enumerate(rule.get(peers_field) or []):
                errors.extend(
                    validate_policy_peer(
                        peer or {}, f"{path}.{peers_field}[{j}]", allow_invalid_label_value
                    )
                )
    policy_types = spec.get("policyTypes") or []
    if len(policy_types) > len(POLICY_TYPES):
        shown = RawValue(
            "&[]networking.PolicyType{" + ", ".join(f'"{t}"' for t in policy_types) + "}"
        )
        errors.append(
            invalid_value("spec.policyTypes", shown, "may not specify more than two policyTypes")
        )
        return errors
    for i, policy_type in enumerate(policy_types):
        if policy_type not in POLICY_TYPES:
            errors.append(not_supported(f"spec.policyTypes[{i}]", policy_type, list(POLICY_TYPES)))
    return errors


def validate_policy_port(port: dict[str, Any], path: str) -> list[FieldError]:
    errors: list[FieldError] = []
    protocol = port.get("protocol")
    if protocol is not None and protocol not in PROTOCOLS:
        errors.append(not_supported(f"{path}.protocol", protocol, list(PROTOCOLS)))
    number, end_port = port.get("port"), port.get("endPort")
    if number is None:
        if end_port is not None:
            errors.append(
                invalid_value(
                    f"{path}.endPort", end_port, "may not be specified when `port` is not specified"
                )
            )
    elif isinstance(number, int) and not isinstance(number, bool):
        if not 1 <= number <= 65535:
            errors.append(invalid_value(f"{path}.port", number, PORT_RANGE))
        if end_port is not None:
            if end_port < number:
                errors.append(
                    invalid_value(
                        f"{path}.endPort", end_port, "must be greater than or equal to `port`"
                    )
                )
            if not 1 <= end_port <= 65535:
                errors.append(invalid_value(f"{path}.endPort", end_port, PORT_RANGE))
    else:
        if end_port is not None:
            errors.append(
                invalid_value(
                    f"{path}.endPort", end_port, "may not be specified when `port` is non-numeric"
                )
            )
        errors.extend(
            invalid_value(f"{path}.port", number, p) for p in port_name_problems(str(number))
        )
    return errors


def validate_policy_peer(
    peer: dict[str, Any], path: str, allow_invalid_label_value: bool
) -> list[FieldError]:
    errors: list[FieldError] = []
    peers = 0
    for selector_field in ("podSelector", "namespaceSelector"):
        selector = peer.get(selector_field)
        if selector is not None:
            peers += 1
            errors.extend(
                validate_label_selector(
                    selector,
                    f"{path}.{selector_field}",
                    allow_invalid_label_value=allow_invalid_label_value,
                )
            )
    ip_block = peer.get("ipBlock")
    if ip_block is not None:
        peers += 1
        errors.extend(validate_ip_block(ip_block or {}, f"{path}.ipBlock"))
    if peers == 0:
        errors.append(required(path, "must specify a peer"))
    elif peers > 1 and ip_block is not None:
        errors.append(forbidden(path, "may not specify both ipBlock and another peer"))
    return errors


def validate_ip_block(ip_block: dict[str, Any], path: str) -> list[FieldError]:
    """ValidateIPBlock: cidr is a CIDR and every `except` a strict subset of it."""
    cidr_text = str(ip_block.get("cidr") or "")
    if not cidr_text:
        return [required(f"{path}.cidr")]
    cidr = parse_cidr_sloppy(cidr_text)
    if cidr is None:
        return [invalid_value(f"{path}.cidr", cidr_text, "not a valid CIDR")]
    errors: list[FieldError] = []
    for i, except_text in enumerate(ip_block.get("except") or []):
        except_path = f"{path}.except[{i}]"
        excepted = parse_cidr_sloppy(str(except_text))
        if excepted is None:
            errors.append(invalid_value(except_path, except_text, "not a valid CIDR"))
            return errors
        if (
            excepted.version != cidr.version
            or excepted.network_address not in cidr
            or cidr.prefixlen >= excepted.prefixlen
        ):
            errors.append(
                invalid_value(except_path, except_text, "must be a strict subset of `cidr`")
            )
    return errors
