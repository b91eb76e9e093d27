"""Validators and accessors the core kinds share: field paths, resource lists, quantities,
ports, IP addresses, label selectors.

Wording follows kube-apiserver's `pkg/apis/core/validation` and apimachinery's
`util/validation`, so that messages read as kubectl users know them.
"""

from __future__ import annotations

import ipaddress
import json
import re
from typing import Any, TypeGuard

from timonel.api.errors import (
    ErrorType,
    FieldError,
    RawValue,
    invalid_value,
    not_supported,
    required,
)
from timonel.api.objects import Object
from timonel.api.quantity import Quantity, QuantityError, parse_quantity_value
from timonel.api.validation import (
    LABEL_VALUE_ERROR,
    dns1123_label_problems,
    dns1123_subdomain_problems,
    label_value_problems,
    qualified_name_problems,
)

FIELD_IMMUTABLE = "field is immutable"
IS_NEGATIVE = "must be greater than or equal to 0"
PORT_RANGE = "must be between 1 and 65535, inclusive"
PROTOCOLS = ["SCTP", "TCP", "UDP"]

_PORT_NAME_CHARS = re.compile(r"^[-a-z0-9]+$")
_HAS_LETTER = re.compile(r"[a-z]")
_CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
_ENV_VAR_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
_HTTP_HEADER = re.compile(r"^[-A-Za-z0-9]+$")

CONFIG_KEY_ERROR = (
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. "
    "'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"
)
ENV_VAR_NAME_ERROR = (
    "a valid environment variable name must consist of alphabetic characters, digits, '_', '-', "
    "or '.', and must not start with a digit (e.g. 'my.env-name',  or 'MY_ENV.NAME',  or "
    "'MyEnvName1', regex used for validation is '[-._a-zA-Z][-._a-zA-Z0-9]*')"
)
HTTP_HEADER_ERROR = (
    "a valid HTTP header must consist of alphanumeric characters or '-' (e.g. 'X-Header-Name', "
    "regex used for validation is '[-A-Za-z0-9]+')"
)
IP_ERROR = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"
CIDR_ERROR = "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"

# Resource names kube-apiserver knows without a domain prefix (helper.IsStandardResourceName).
_STANDARD_CONTAINER_RESOURCES = frozenset({"cpu", "memory", "ephemeral-storage"})
STANDARD_QUOTA_RESOURCES = frozenset(
    {
        "pods",
        "memory",
        "cpu",
        "requests.cpu",
        "requests.memory",
        "requests.storage",
        "requests.ephemeral-storage",
        "limits.cpu",
        "limits.memory",
        "limits.ephemeral-storage",
        "persistentvolumeclaims",
        "ephemeral-storage",
        "services",
        "services.nodeports",
        "services.loadbalancers",
        "replicationcontrollers",
        "resourcequotas",
        "secrets",
        "configmaps",
    }
)
_STANDARD_RESOURCES = frozenset({"storage"}) | STANDARD_QUOTA_RESOURCES
_INTEGER_RESOURCES = frozenset(
    {
        "pods",
        "services",
        "replicationcontrollers",
        "resourcequotas",
        "secrets",
        "configmaps",
        "persistentvolumeclaims",
        "services.nodeports",
        "services.loadbalancers",
    }
)


# -- paths and shapes ------------------------------------------------------------------


def child(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def index(path: str, i: int) -> str:
    return f"{path}[{i}]"


def key(path: str, k: str) -> str:
    return f"{path}[{k}]"


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def spec_of(obj: Object) -> dict[str, Any]:
    """obj["spec"], created empty when missing or not an object."""
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        spec = {}
        obj["spec"] = spec
    return spec


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def as_str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def too_long(path: str, limit: int) -> FieldError:
    """field.TooLong as kube-apiserver 1.32 words it."""
    return FieldError(ErrorType.TOO_LONG, path, f"may not be more than {limit} bytes")


def go_strings(values: Any) -> RawValue:
    """A []string as Go's %#v prints it in error messages: `[]string{"a", "b"}`."""
    if not values:
        return RawValue("[]string(nil)") if values is None else RawValue("[]string{}")
    quoted = ", ".join('"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values)
    return RawValue("[]string{" + quoted + "}")


def immutable(path: str, value: Any) -> FieldError:
    """apimachinery's ValidateImmutableField: an Invalid error, not a Forbidden one."""
    return invalid_value(path, value, FIELD_IMMUTABLE)


# -- names -----------------------------------------------------------------------------


def validate_qualified_name(value: str, path: str) -> list[FieldError]:
    return [invalid_value(path, value, p) for p in qualified_name_problems(value)]


def validate_dns1123_label(value: str, path: str) -> list[FieldError]:
    return [invalid_value(path, value, p) for p in dns1123_label_problems(value)]


def validate_dns1123_subdomain(value: str, path: str) -> list[FieldError]:
    return [invalid_value(path, value, p) for p in dns1123_subdomain_problems(value)]


def port_name_problems(name: str) -> list[str]:
    """validation.IsValidPortName (IANA service names)."""
    problems = []
    if len(name) > 15:
        problems.append("must be no more than 15 characters")
    if not _PORT_NAME_CHARS.match(name):
        problems.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if not _HAS_LETTER.search(name):
        problems.append("must contain at least one letter (a-z)")
    if "--" in name:
        problems.append("must not contain consecutive hyphens")
    if name and (name[0] == "-" or name[-1] == "-"):
        problems.append("must not begin or end with a hyphen")
    return problems


def config_key_problems(value: str) -> list[str]:
    """validation.IsConfigMapKey: keys of ConfigMaps and Secrets."""
    problems = []
    if len(value) > 253:
        problems.append("must be no more than 253 characters")
    if not _CONFIG_KEY.match(value):
        problems.append(CONFIG_KEY_ERROR)
    problems.extend(_chdir_prefix_problems(value))
    return problems


def env_var_name_problems(value: str) -> list[str]:
    problems = [] if _ENV_VAR_NAME.match(value) else [ENV_VAR_NAME_ERROR]
    problems.extend(_chdir_prefix_problems(value))
    return problems


def http_header_problems(value: str) -> list[str]:
    return [] if _HTTP_HEADER.match(value) else [HTTP_HEADER_ERROR]


def _chdir_prefix_problems(value: str) -> list[str]:
    if value == ".":
        return ["must not be '.'"]
    if value == "..":
        return ["must not be '..'"]
    if value.startswith(".."):
        return ["must not start with '..'"]
    return []


# -- numbers and ports -----------------------------------------------------------------


def validate_nonnegative(value: Any, path: str) -> list[FieldError]:
    if is_int(value) and value < 0:
        return [invalid_value(path, value, IS_NEGATIVE)]
    return []


def validate_port_number(value: Any, path: str) -> list[FieldError]:
    if not is_int(value) or not 1 <= value <= 65535:
        return [invalid_value(path, value, PORT_RANGE)]
    return []


def validate_port_num_or_name(value: Any, path: str) -> list[FieldError]:
    """ValidatePortNumOrName: an IntOrString port (probes, targetPort)."""
    if isinstance(value, str):
        return [invalid_value(path, value, p) for p in port_name_problems(value)]
    return validate_port_number(value, path)


def validate_protocol(value: Any, path: str) -> list[FieldError]:
    if not value:
        return [required(path)]
    if value not in PROTOCOLS:
        return [not_supported(path, value, PROTOCOLS)]
    return []


# -- IP addresses ----------------------------------------------------------------------


def parse_ip(value: Any) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """netutils.ParseIPSloppy: IPv4 octets may carry leading zeros."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        pass
    parts = value.split(".")
    if len(parts) == 4 and all(p.isdigit() and len(p) <= 3 for p in parts):
        try:
            return ipaddress.IPv4Address(".".join(str(int(p)) for p in parts))
        except ValueError:
            return None
    return None


def is_ipv6(value: Any) -> bool:
    ip = parse_ip(value)
    return ip is not None and ip.version == 6


def validate_ip(value: Any, path: str) -> list[FieldError]:
    return [] if parse_ip(value) is not None else [invalid_value(path, value, IP_ERROR)]


def validate_cidr(value: Any, path: str) -> list[FieldError]:
    if isinstance(value, str) and "/" in value:
        address, _, prefix = value.partition("/")
        ip = parse_ip(address)
        if ip is not None and prefix.isdigit() and int(prefix) <= ip.max_prefixlen:
            return []
    return [invalid_value(path, value, CIDR_ERROR)]


def is_dual_stack(ips: list[str]) -> bool:
    """Exactly one IPv4 and at least one IPv6 among valid addresses (IsDualStackIPStrings)."""
    families = {ip.version for ip in (parse_ip(v) for v in ips) if ip is not None}
    return families == {4, 6}


# -- labels ----------------------------------------------------------------------------


def validate_label_value(value: Any, path: str) -> list[FieldError]:
    if not isinstance(value, str):
        return [invalid_value(path, value, LABEL_VALUE_ERROR)]
    return [invalid_value(path, value, p) for p in label_value_problems(value)]


# -- resources and quantities ----------------------------------------------------------


def is_hugepages(name: str) -> bool:
    return name.startswith("hugepages-")


def is_native_resource(name: str) -> bool:
    return "/" not in name or "kubernetes.io/" in name


def is_extended_resource(name: str) -> bool:
    """helper.IsExtendedResourceName: a domain-prefixed name outside kubernetes.io."""
    if is_native_resource(name) or name.startswith("requests."):
        return False
    return not qualified_name_problems("requests." + name)


def is_overcommit_allowed(name: str) -> bool:
    return is_native_resource(name) and not is_hugepages(name)


def is_integer_resource(name: str) -> bool:
    return name in _INTEGER_RESOURCES or is_extended_resource(name)


def is_standard_resource(name: str) -> bool:
    return (
        name in _STANDARD_RESOURCES or is_hugepages(name) or name.startswith("requests.hugepages-")
    )


def validate_resource_name(name: str, path: str) -> list[FieldError]:
    """validateResourceName: a qualified name, standard unless domain-prefixed."""
    errors = validate_qualified_name(name, path)
    if errors:
        return errors
    if "/" not in name and not is_standard_resource(name):
        errors.append(
            invalid_value(path, name, "must be a standard resource type or fully qualified")
        )
    return errors


def validate_container_resource_name(name: str, path: str) -> list[FieldError]:
    errors = validate_resource_name(name, path)
    if "/" not in name:
        if name not in _STANDARD_CONTAINER_RESOURCES and not is_hugepages(name):
            errors.append(invalid_value(path, name, "must be a standard resource for containers"))
    elif not is_native_resource(name) and not is_extended_resource(name):
        errors.append(invalid_value(path, name, "doesn't follow extended resource name standard"))
    return errors


def quantity_or_error(value: Any, path: str, errors: list[FieldError]) -> Quantity | None:
    """The quantity `value` denotes; records an error and returns None when it is not one.

    kube-apiserver rejects such a body while decoding it; here the object stays as sent
    and validation names the field."""
    try:
        return parse_quantity_value(value)
    except QuantityError as problem:
        errors.append(invalid_value(path, value, str(problem)))
        return None


def validate_resource_quantity(name: str, value: Quantity, path: str) -> list[FieldError]:
    """ValidateResourceQuantityValue: not negative; whole for integer resources."""
    errors: list[FieldError] = []
    if value.sign() < 0:
        errors.append(invalid_value(path, str(value), IS_NEGATIVE))
    if is_integer_resource(name) and value.milli_value() % 1000 != 0:
        errors.append(invalid_value(path, str(value), "must be an integer"))
    return errors


def parse_resource_list(resources: Any, path: str, errors: list[FieldError]) -> dict[str, Quantity]:
    """The quantities of a ResourceList; entries that are not quantities become errors."""
    parsed: dict[str, Quantity] = {}
    for name, raw in as_dict(resources).items():
        quantity = quantity_or_error(raw, key(path, name), errors)
        if quantity is not None:
            parsed[name] = quantity
    return parsed


# -- base64, as Go's encoding/json decodes []byte -----------------------------------------

_BASE64_ALPHABET = {
    c: i for i, c in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
}


class Base64Error(ValueError):
    """Go's base64.CorruptInputError: `illegal base64 data at input byte N`."""

    def __init__(self, offset: int) -> None:
        super().__init__(f"illegal base64 data at input byte {offset}")
        self.offset = offset


def decode_base64(text: str) -> bytes:
    """base64.StdEncoding.DecodeString with Go's error offsets (line breaks are skipped)."""
    src = text.encode("utf-8", "surrogateescape")
    out = bytearray()
    si = 0
    while True:
        quantum: list[int] = []
        length = 4
        trailing_error: int | None = None
        while len(quantum) < 4:
            if si == len(src):
                if not quantum:
                    return bytes(out)
                raise Base64Error(si - len(quantum))
            char = src[si]
            si += 1
            value = _BASE64_ALPHABET.get(chr(char))
            if value is not None:
                quantum.append(value)
                continue
            if char in (0x0A, 0x0D):
                continue
            if char != ord("="):
                raise Base64Error(si - 1)
            position = len(quantum)
            if position in (0, 1):
                raise Base64Error(si - 1)
            if position == 2:
                while si < len(src) and src[si] in (0x0A, 0x0D):
                    si += 1
                if si == len(src):
                    raise Base64Error(len(src))
                if src[si] != ord("="):
                    raise Base64Error(si - 1)
                si += 1
            while si < len(src) and src[si] in (0x0A, 0x0D):
                si += 1
            if si < len(src):
                trailing_error = si
            length = position
            quantum.extend([0] * (4 - position))
            break
        value = quantum[0] << 18 | quantum[1] << 12 | quantum[2] << 6 | quantum[3]
        decoded = bytes([(value >> 16) & 0xFF, (value >> 8) & 0xFF, value & 0xFF])
        out += decoded[: length - 1]
        if trailing_error is not None:
            raise Base64Error(trailing_error)
        if length < 4:
            return bytes(out)


# -- enumerations and shared errors ------------------------------------------------------

MAX_INT32 = 2**31 - 1

RESTART_POLICIES = ["Always", "OnFailure", "Never"]
DNS_POLICIES = ["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"]
PULL_POLICIES = ["Always", "IfNotPresent", "Never"]
TERMINATION_MESSAGE_POLICIES = ["File", "FallbackToLogsOnError"]
PREEMPTION_POLICIES = ["PreemptLowerPriority", "Never"]
TAINT_EFFECTS = ["NoSchedule", "PreferNoSchedule", "NoExecute"]


def not_found(path: str, value: Any, detail: str = "") -> FieldError:
    return FieldError(ErrorType.NOT_FOUND, path, detail, value)


def validate_enum_required(value: Any, path: str, supported: list[str]) -> list[FieldError]:
    """A required field naming one of `supported`."""
    if value in (None, ""):
        return [required(path)]
    if value not in supported:
        return [not_supported(path, value, supported)]
    return []


# -- what an update changed -------------------------------------------------------------


def spec_diff(old: Any, new: Any, path: str) -> str:
    """A line per changed field (`- old`, `+ new`), in place of the Go struct diff
    kube-apiserver appends to its message."""
    lines: list[str] = []
    _diff(old, new, path, lines)
    return "\n".join(lines)


def _diff(old: Any, new: Any, path: str, lines: list[str]) -> None:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new)):
            _diff(old.get(key), new.get(key), f"{path}.{key}", lines)
    elif isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        for i, (a, b) in enumerate(zip(old, new, strict=True)):
            _diff(a, b, f"{path}[{i}]", lines)
    elif old != new:
        if old is not None:
            lines.append(f"- {path}: {_render(old)}")
        if new is not None:
            lines.append(f"+ {path}: {_render(new)}")


def _render(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))
