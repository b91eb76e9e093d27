"""A container's environment, as kubelet computes it (pure).

Sources, in kubelet's order: `envFrom` (ConfigMaps and Secrets, each key with the
optional prefix), then `env` in declaration order (a later entry overrides an earlier
one of the same name), each either a value with `$(VAR)` references expanded against
what was defined before it and the service variables, or a `valueFrom` (configMapKeyRef,
secretKeyRef, fieldRef, resourceFieldRef); finally the service link variables
(`<SVC>_SERVICE_HOST`, Docker-style `<SVC>_PORT_...`) not already defined.

A missing non-optional source raises `ContainerConfigError` with kubelet's message; the
pod worker reports it as the container's CreateContainerConfigError.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from timonel.api.objects import Object
from timonel.api.quantity import Quantity, QuantityError, parse_quantity_value

ObjectLookup = Callable[[str, str], Object | None]
"""(namespace, name) → the object, or None when it does not exist."""

MASTER_SERVICES = frozenset({"kubernetes"})


class ContainerConfigError(Exception):
    """The container cannot be configured (a missing ConfigMap, Secret or key)."""


@dataclass(frozen=True)
class EnvContext:
    """What the environment may refer to besides the pod itself."""

    config_maps: ObjectLookup
    secrets: ObjectLookup
    pod_ips: Sequence[str] = ()
    host_ips: Sequence[str] = ()
    service_env: Mapping[str, str] = field(default_factory=dict)
    node_allocatable: Mapping[str, str] = field(default_factory=dict)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


# -- $(VAR) expansion --------------------------------------------------------------------


def expand(text: str, lookup: Callable[[str], str | None]) -> str:
    """Kubernetes variable expansion: `$(NAME)` becomes NAME's value when defined (else it
    stays as written), `$$` becomes `$`, anything else is kept."""
    out: list[str] = []
    index = 0
    length = len(text)
    while index < length:
        char = text[index]
        if char == "$" and index + 1 < length:
            following = text[index + 1]
            if following == "$":
                out.append("$")
                index += 2
                continue
            if following == "(":
                end = text.find(")", index + 2)
                if end != -1:
                    name = text[index + 2 : end]
                    value = lookup(name)
                    out.append(value if value is not None else f"$({name})")
                    index = end + 1
                    continue
        out.append(char)
        index += 1
    return "".join(out)


def expand_command(
    command: Sequence[str], args: Sequence[str], env: Sequence[tuple[str, str]]
) -> tuple[list[str], list[str]]:
    """The container's command and args with `$(VAR)` expanded against its environment."""
    values = dict(env)
    return (
        [expand(part, values.get) for part in command],
        [expand(part, values.get) for part in args],
    )


# -- service links ----------------------------------------------------------------------


def _env_name(name: str) -> str:
    return name.upper().replace("-", "_")


def _service_has_ip(service: Object) -> bool:
    ip = _dict(service.get("spec")).get("clusterIP")
    return bool(ip) and ip != "None"


def service_environment(
    services: Iterable[Object], namespace: str, *, enable_service_links: bool = True
) -> dict[str, str]:
    """The service variables of a pod in `namespace`: the `kubernetes` service of the
    default namespace always, the services of the pod's own namespace when service links
    are enabled (the default)."""
    chosen: dict[str, Object] = {}
    for service in services:
        meta = _dict(service.get("metadata"))
        name = str(meta.get("name", ""))
        if not _service_has_ip(service) or not _list(_dict(service.get("spec")).get("ports")):
            continue
        service_namespace = meta.get("namespace", "")
        if service_namespace == "default" and name in MASTER_SERVICES:
            chosen.setdefault(name, service)
        elif service_namespace == namespace and enable_service_links:
            chosen[name] = service
    result: dict[str, str] = {}
    for name in sorted(chosen):
        result.update(_service_variables(chosen[name]))
    return result


def _service_variables(service: Object) -> dict[str, str]:
    spec = _dict(service.get("spec"))
    ip = str(spec["clusterIP"])
    prefix = _env_name(str(_dict(service.get("metadata")).get("name", "")))
    ports = [_dict(p) for p in _list(spec.get("ports"))]
    variables = {
        f"{prefix}_SERVICE_HOST": ip,
        f"{prefix}_SERVICE_PORT": str(ports[0].get("port", "")),
    }
    for port in ports:
        if port.get("name"):
            variables[f"{prefix}_SERVICE_PORT_{_env_name(str(port['name']))}"] = str(
                port.get("port", "")
            )
    for index, port in enumerate(ports):
        protocol = str(port.get("protocol") or "TCP")
        number = port.get("port", "")
        url = f"{protocol.lower()}://{ip}:{number}"
        if index == 0:
            variables[f"{prefix}_PORT"] = url
        link = f"{prefix}_PORT_{number}_{protocol.upper()}"
        variables[link] = url
        variables[f"{link}_PROTO"] = protocol.lower()
        variables[f"{link}_PORT"] = str(number)
        variables[f"{link}_ADDR"] = ip
    return variables


# -- sources --------------------------------------------------------------------------------


def is_valid_env_name(name: str) -> bool:
    """Relaxed environment variable names (1.32): printable ASCII, not empty, no '='."""
    return bool(name) and "=" not in name and all(32 <= ord(c) <= 126 for c in name)


def _config_map(ns: str, name: str, context: EnvContext, optional: bool) -> Object | None:
    found = context.config_maps(ns, name)
    if found is None and not optional:
        raise ContainerConfigError(f'configmap "{name}" not found')
    return found


def _secret(ns: str, name: str, context: EnvContext, optional: bool) -> Object | None:
    found = context.secrets(ns, name)
    if found is None and not optional:
        raise ContainerConfigError(f'secret "{name}" not found')
    return found


def config_map_data(config_map: Object) -> dict[str, str]:
    """A ConfigMap's keys as text (binaryData decoded as UTF-8, replacing what is not)."""
    data = {str(k): str(v) for k, v in _dict(config_map.get("data")).items()}
    for key, value in _dict(config_map.get("binaryData")).items():
        data[str(key)] = base64.b64decode(str(value)).decode(errors="replace")
    return data


def secret_data(secret: Object) -> dict[str, bytes]:
    """A Secret's keys as bytes (stringData is folded in by the API server already)."""
    data = {str(k): base64.b64decode(str(v)) for k, v in _dict(secret.get("data")).items()}
    for key, value in _dict(secret.get("stringData")).items():
        data[str(key)] = str(value).encode()
    return data


def pod_field_value(pod: Object, path: str, context: EnvContext) -> str:
    """A fieldRef's value (the downward API), as kubelet resolves it."""
    meta = _dict(pod.get("metadata"))
    spec = _dict(pod.get("spec"))
    if path == "spec.nodeName":
        return str(spec.get("nodeName", ""))
    if path == "spec.serviceAccountName":
        return str(spec.get("serviceAccountName", ""))
    if path == "status.hostIP":
        return context.host_ips[0] if context.host_ips else ""
    if path == "status.hostIPs":
        return ",".join(context.host_ips)
    if path == "status.podIP":
        return context.pod_ips[0] if context.pod_ips else ""
    if path == "status.podIPs":
        return ",".join(context.pod_ips)
    return metadata_field_value(meta, path)


def metadata_field_value(meta: Mapping[str, Any], path: str) -> str:
    for field_name in ("labels", "annotations"):
        prefix = f"metadata.{field_name}"
        if path == prefix:
            return format_map(_dict(meta.get(field_name)))
        if path.startswith(prefix + "[") and path.endswith("]"):
            key = path[len(prefix) + 1 : -1].strip("'\"")
            return str(_dict(meta.get(field_name)).get(key, ""))
    if path in ("metadata.name", "metadata.namespace", "metadata.uid"):
        return str(meta.get(path.removeprefix("metadata."), ""))
    raise ContainerConfigError(f"unsupported fieldPath: {path}")


def go_quote(value: str) -> str:
    """Go's %q for the strings label and annotation values are."""
    escaped = []
    for char in value:
        code = ord(char)
        if char == '"':
            escaped.append('\\"')
        elif char == "\\":
            escaped.append("\\\\")
        elif char == "\n":
            escaped.append("\\n")
        elif char == "\t":
            escaped.append("\\t")
        elif char == "\r":
            escaped.append("\\r")
        elif code < 32 or code == 127:
            escaped.append(f"\\x{code:02x}")
        else:
            escaped.append(char)
    return '"' + "".join(escaped) + '"'


def format_map(values: Mapping[str, Any]) -> str:
    """Labels or annotations as the downward API writes them: `key="value"` lines, sorted."""
    return "\n".join(f"{key}={go_quote(str(values[key]))}" for key in sorted(values))


def _quantity(value: Any) -> Quantity | None:
    if value is None:
        return None
    try:
        return parse_quantity_value(value)
    except (QuantityError, ValueError):
        return None


def resource_field_value(
    container: Object, resource_ref: Mapping[str, Any], node_allocatable: Mapping[str, str]
) -> str:
    """A resourceFieldRef's value: the container's request or limit (a missing limit is the
    node's allocatable amount) divided by the divisor, rounded up."""
    resource = str(resource_ref.get("resource", ""))
    part, _, name = resource.partition(".")
    resources = _dict(container.get("resources"))
    amount = _quantity(_dict(resources.get(part)).get(name))
    if amount is None and part == "limits":
        amount = _quantity(node_allocatable.get(name))
    if amount is None:
        amount = Quantity(0)
    divisor = _quantity(resource_ref.get("divisor"))
    if divisor is None or divisor.is_zero():
        divisor = parse_quantity_value("1")
    known = part in ("limits", "requests") and name in ("cpu", "memory", "ephemeral-storage")
    if not known and not name.startswith("hugepages-"):
        raise ContainerConfigError(f"unsupported container resource: {resource}")
    if name == "cpu":
        return str(math.ceil(amount.milli_value() / divisor.milli_value()))
    return str(math.ceil(amount.value() / divisor.value()))


def _find_container(pod: Object, name: str) -> Object:
    spec = _dict(pod.get("spec"))
    for field_name in ("containers", "initContainers"):
        for container in _list(spec.get(field_name)):
            if _dict(container).get("name") == name:
                return _dict(container)
    raise ContainerConfigError(f"container {name} not found")


def container_environment(
    pod: Object, container: Object, context: EnvContext
) -> list[tuple[str, str]]:
    """The container's final environment, in declaration order, service variables last."""
    namespace = str(_dict(pod.get("metadata")).get("namespace", ""))
    values: dict[str, str] = {}

    for source in _list(container.get("envFrom")):
        source = _dict(source)
        prefix = str(source.get("prefix", ""))
        if "configMapRef" in source:
            ref = _dict(source["configMapRef"])
            found = _config_map(
                namespace, str(ref.get("name", "")), context, bool(ref.get("optional"))
            )
            entries: dict[str, str] = config_map_data(found) if found is not None else {}
        elif "secretRef" in source:
            ref = _dict(source["secretRef"])
            secret = _secret(
                namespace, str(ref.get("name", "")), context, bool(ref.get("optional"))
            )
            entries = (
                {k: v.decode(errors="replace") for k, v in secret_data(secret).items()}
                if secret is not None
                else {}
            )
        else:
            continue
        for key, value in entries.items():
            name = prefix + key
            if is_valid_env_name(name):
                values[name] = value

    def lookup(name: str) -> str | None:
        if name in values:
            return values[name]
        return context.service_env.get(name)

    for entry in _list(container.get("env")):
        variable = _dict(entry)
        name = str(variable.get("name", ""))
        literal = variable.get("value")
        source = _dict(variable.get("valueFrom"))
        if literal:
            values[name] = expand(str(literal), lookup)
        elif source:
            resolved = _value_from(pod, container, source, namespace, context)
            if resolved is None:
                continue  # an optional source that does not exist: no variable at all
            values[name] = resolved
        else:
            values[name] = ""

    result = list(values.items())
    result.extend((k, v) for k, v in context.service_env.items() if k not in values)
    return result


def _value_from(
    pod: Object, container: Object, source: dict[str, Any], namespace: str, context: EnvContext
) -> str | None:
    if "configMapKeyRef" in source:
        ref = _dict(source["configMapKeyRef"])
        optional = bool(ref.get("optional"))
        name, key = str(ref.get("name", "")), str(ref.get("key", ""))
        found = _config_map(namespace, name, context, optional)
        if found is None:
            return None
        data = config_map_data(found)
        if key not in data:
            if optional:
                return None
            raise ContainerConfigError(f"couldn't find key {key} in ConfigMap {namespace}/{name}")
        return data[key]
    if "secretKeyRef" in source:
        ref = _dict(source["secretKeyRef"])
        optional = bool(ref.get("optional"))
        name, key = str(ref.get("name", "")), str(ref.get("key", ""))
        secret = _secret(namespace, name, context, optional)
        if secret is None:
            return None
        secret_values = secret_data(secret)
        if key not in secret_values:
            if optional:
                return None
            raise ContainerConfigError(f"couldn't find key {key} in Secret {namespace}/{name}")
        return secret_values[key].decode(errors="replace")
    if "fieldRef" in source:
        return pod_field_value(pod, str(_dict(source["fieldRef"]).get("fieldPath", "")), context)
    if "resourceFieldRef" in source:
        ref = _dict(source["resourceFieldRef"])
        target = container
        if ref.get("containerName"):
            target = _find_container(pod, str(ref["containerName"]))
        return resource_field_value(target, ref, context.node_allocatable)
    return ""
