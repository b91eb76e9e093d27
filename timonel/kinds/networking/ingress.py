"""networking.k8s.io/v1 Ingress and IngressClass."""

from __future__ import annotations

from typing import Any, ClassVar

from timonel.api.errors import (
    FieldError,
    RawValue,
    forbidden,
    invalid_value,
    not_supported,
    required,
    too_long,
)
from timonel.api.objects import Object
from timonel.api.validation import (
    dns1035_label_problems,
    dns1123_label_problems,
    dns1123_subdomain_problems,
)
from timonel.kinds.base import AGE_COLUMN, NAME_COLUMN, Column, Strategy
from timonel.kinds.core.common import PORT_RANGE, immutable, port_name_problems
from timonel.kinds.networking.addresses import ip_problems, parse_ip_sloppy
from timonel.kinds.printing import creation_age

GROUP = "networking.k8s.io"
INGRESS_CLASS_ANNOTATION = "kubernetes.io/ingress.class"
PATH_TYPES = ("Exact", "ImplementationSpecific", "Prefix")
PARAMETER_SCOPES = ("Cluster", "Namespace")
MAX_CONTROLLER_LENGTH = 250
_INVALID_PATH_SEQUENCES = ("//", "/./", "/../", "%2f", "%2F")
_INVALID_PATH_SUFFIXES = ("/..", "/.")

# A wildcard host: "*." followed by a DNS subdomain (RFC 1034 section 4.3.3).
_WILDCARD_SUBDOMAIN_ERROR = (
    "a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, "
    "which must consist of lower case alphanumeric characters, '-' or '.' and end with an "
    "alphanumeric character (e.g. '*.example.com', regex used for validation is "
    "'\\*\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)


def wildcard_subdomain_problems(value: str) -> list[str]:
    problems = []
    if len(value) > 253:
        problems.append("must be no more than 253 characters")
    if not value.startswith("*.") or dns1123_subdomain_problems(value[2:]):
        problems.append(_WILDCARD_SUBDOMAIN_ERROR)
    return problems


def path_segment_problems(name: str) -> list[str]:
    """path.IsValidPathSegmentName: what may appear as one segment of a URL path."""
    if name in (".", ".."):
        return [f"may not be '{name}'"]
    return [f"may not contain '{c}'" for c in ("/", "%") if c in name]


def _host_problems(host: str) -> list[str]:
    if "*" in host:
        return wildcard_subdomain_problems(host)
    return dns1123_subdomain_problems(host)


class IngressStrategy(Strategy):
    group: ClassVar[str] = GROUP
    version: ClassVar[str] = "v1"
    kind: ClassVar[str] = "Ingress"
    plural: ClassVar[str] = "ingresses"
    singular: ClassVar[str] = "ingress"
    short_names: ClassVar[tuple[str, ...]] = ("ing",)
    has_status: ClassVar[bool] = True
    tracks_generation: ClassVar[bool] = True
    columns: ClassVar[tuple[Column, ...]] = (
        NAME_COLUMN,
        Column(
            "Class",
            description="The name of the IngressClass resource that should be used for additional configuration",
        ),
        Column(
            "Hosts",
            description="Hosts that incoming requests are matched against before the ingress rule",
        ),
        Column(
            "Address",
            description="Address is a list containing ingress points for the load-balancer",
        ),
        Column("Ports", description="Ports of TLS configurations that open"),
        AGE_COLUMN,
    )

    def prepare_for_create(self, obj: Object) -> None:
        super().prepare_for_create(obj)
        obj["status"] = {"loadBalancer": {}}

    def prepare_for_update(self, new: Object, old: Object) -> None:
        super().prepare_for_update(new, old)
        new.setdefault("status", {"loadBalancer": {}})

    def validate(self, obj: Object) -> list[FieldError]:
        errors = validate_ingress_spec(
            obj.get("spec") or {},
            allow_invalid_secret_name=False,
            allow_invalid_wildcard_host_rule=False,
        )
        annotations = (obj.get("metadata") or {}).get("annotations") or {}
        class_name = (obj.get("spec") or {}).get("ingressClassName")
        annotation = annotations.get(INGRESS_CLASS_ANNOTATION)
        if annotation is not None and class_name is not None and annotation != class_name:
            errors.append(
                invalid_value(
                    f"annotations.{INGRESS_CLASS_ANNOTATION}",
                    annotation,
                    "must match `ingressClassName` when both are specified",
                )
            )
        return errors

    def validate_update(self, new: Object, old: Object) -> list[FieldError]:
        # Invalid data stored by older releases stays accepted while it is not changed.
        old_spec = old.get("spec") or {}
        allow_secret = any(
            _tls_secret_name_problems(str(tls.get("secretName") or ""))
            for tls in old_spec.get("tls") or []
            if isinstance(tls, dict)
        )
        allow_wildcard = any(
            "*" in str(rule.get("host") or "") and _validate_rule_value(rule, "", True)
            for rule in old_spec.get("rules") or []
            if isinstance(rule, dict)
        )
        return validate_ingress_spec(
            new.get("spec") or {},
            allow_invalid_secret_name=allow_secret,
            allow_invalid_wildcard_host_rule=allow_wildcard,
        )

    def validate_status_update(self, new: Object, old: Object) -> list[FieldError]:
        errors: list[FieldError] = []
        load_balancer = (new.get("status") or {}).get("loadBalancer") or {}
        for i, entry in enumerate(load_balancer.get("ingress") or []):
            path = f"status.loadBalancer.ingress[{i}]"
            ip = str(entry.get("ip") or "")
            if ip:
                errors.extend(invalid_value(f"{path}.ip", ip, p) for p in ip_problems(ip))
            hostname = str(entry.get("hostname") or "")
            if hostname:
                errors.extend(
                    invalid_value(f"{path}.hostname", hostname, p)
                    for p in dns1123_subdomain_problems(hostname)
                )
                if parse_ip_sloppy(hostname) is not None:
                    errors.append(
                        invalid_value(
                            f"{path}.hostname", hostname, "must be a DNS name, not an IP address"
                        )
                    )
        return errors

    def table_row(self, obj: Object) -> list[Any]:
        spec = obj.get("spec") or {}
        class_name = spec.get("ingressClassName")
        return [
            (obj.get("metadata") or {}).get("name", ""),
            class_name if class_name is not None else "<none>",
            format_hosts(spec.get("rules") or []),
            load_balancer_addresses((obj.get("status") or {}).get("loadBalancer") or {}),
            "80, 443" if spec.get("tls") else "80",
            creation_age(obj),
        ]


def format_hosts(rules: list[Any]) -> str:
    """formatHosts: the first three rule hosts, "*" when no rule names one."""
    hosts: list[str] = []
    more = False
    for rule in rules:
        if len(hosts) == 3:
            more = True
            break
        host = rule.get("host") if isinstance(rule, dict) else None
        if host:
            hosts.append(str(host))
    if not hosts:
        return "*"
    text = ",".join(hosts)
    return f"{text} + {len(rules) - 3} more..." if more else text


def load_balancer_addresses(load_balancer: dict[str, Any]) -> str:
    """The distinct IPs (or, lacking one, hostnames) of an IngressLoadBalancerStatus."""
    found: list[str] = []
    for entry in load_balancer.get("ingress") or []:
        address = entry.get("ip") or entry.get("hostname") or ""
        if address and address not in found:
            found.append(address)
    return ",".join(found)


def validate_ingress_spec(
    spec: dict[str, Any], *, allow_invalid_secret_name: bool, allow_invalid_wildcard_host_rule: bool
) -> list[FieldError]:
    errors: list[FieldError] = []
    rules = spec.get("rules") or []
    default_backend = spec.get("defaultBackend")
    if not rules and default_backend is None:
        shown = (
            "[]networking.IngressRule(nil)"
            if spec.get("rules") is None
            else "[]networking.IngressRule{}"
        )
        errors.append(
            invalid_value(
                "spec", RawValue(shown), "either `defaultBackend` or `rules` must be specified"
            )
        )
    if default_backend is not None:
        errors.extend(_validate_backend(default_backend, "spec.defaultBackend"))
    for i, rule in enumerate(rules):
        path = f"spec.rules[{i}]"
        if not isinstance(rule, dict):
            errors.append(invalid_value(path, rule, "must be an object"))
            continue
        host = str(rule.get("host") or "")
        wildcard = False
        if host:
            if parse_ip_sloppy(host) is not None:
                errors.append(
                    invalid_value(f"{path}.host", host, "must be a DNS name, not an IP address")
                )
            wildcard = "*" in host
            errors.extend(invalid_value(f"{path}.host", host, p) for p in _host_problems(host))
        if not wildcard or not allow_invalid_wildcard_host_rule:
            errors.extend(_validate_rule_value(rule, path, True))
    for i, tls in enumerate(spec.get("tls") or []):
        path = f"spec.tls[{i}]"
        for j, host in enumerate(tls.get("hosts") or []):
            errors.extend(
                invalid_value(f"{path}.hosts[{j}]", host, p) for p in _host_problems(str(host))
            )
        if not allow_invalid_secret_name:
            secret = str(tls.get("secretName") or "")
            errors.extend(
                invalid_value(f"{path}.secretName", secret, p)
                for p in _tls_secret_name_problems(secret)
            )
    class_name = spec.get("ingressClassName")
    if class_name is not None:
        errors.extend(
            invalid_value("spec.ingressClassName", class_name, p)
            for p in dns1123_subdomain_problems(str(class_name))
        )
    return errors


def _tls_secret_name_problems(name: str) -> list[str]:
    return dns1123_subdomain_problems(name) if name else []


def _validate_rule_value(rule: dict[str, Any], path: str, with_backends: bool) -> list[FieldError]:
    http = rule.get("http")
    if http is None:
        return []
    errors: list[FieldError] = []
    paths = (http or {}).get("paths") or []
    if not paths:
        errors.append(required(f"{path}.http.paths"))
    for i, http_path in enumerate(paths):
        errors.extend(
            _validate_http_path(http_path or {}, f"{path}.http.paths[{i}]", with_backends)
        )
    return errors


def _validate_http_path(
    http_path: dict[str, Any], path: str, with_backends: bool
) -> list[FieldError]:
    path_type = http_path.get("pathType")
    if path_type is None:
        return [required(f"{path}.pathType", "pathType must be specified")]
    errors: list[FieldError] = []
    value = str(http_path.get("path") or "")
    if path_type in ("Exact", "Prefix"):
        if not value.startswith("/"):
            errors.append(invalid_value(f"{path}.path", value, "must be an absolute path"))
        if value:
            errors.extend(
                invalid_value(f"{path}.path", value, f"must not contain '{seq}'")
                for seq in _INVALID_PATH_SEQUENCES
                if seq in value
            )
            errors.extend(
                invalid_value(f"{path}.path", value, f"cannot end with '{suffix}'")
                for suffix in _INVALID_PATH_SUFFIXES
                if value.endswith(suffix)
            )
    elif path_type == "ImplementationSpecific":
        if value and not value.startswith("/"):
            errors.append(invalid_value(f"{path}.path", value, "must be an absolute path"))
    else:
        errors.append(not_supported(f"{path}.pathType", path_type, list(PATH_TYPES)))
    if with_backends:
        errors.extend(_validate_backend(http_path.get("backend") or {}, f"{path}.backend"))
    return errors


def _validate_backend(backend: dict[str, Any], path: str) -> list[FieldError]:
    resource, service = backend.get("resource"), backend.get("service")
    if resource is not None and service is not None:
        return [invalid_value(path, "", "cannot set both resource and service backends")]
    if resource is not None:
        return _validate_local_reference(resource, f"{path}.resource")
    if service is None:
        return [invalid_value(path, "", "resource or service backend is required")]
    errors: list[FieldError] = []
    name = str(service.get("name") or "")
    if not name:
        errors.append(required(f"{path}.service.name"))
    else:
        errors.extend(
            invalid_value(f"{path}.service.name", name, p) for p in dns1035_label_problems(name)
        )
    port = service.get("port") or {}
    port_name, port_number = port.get("name") or "", port.get("number") or 0
    if port_name and port_number:
        errors.append(invalid_value(path, "", "cannot set both port name & port number"))
    elif port_name:
        errors.extend(
            invalid_value(f"{path}.service.port.name", port_name, p)
            for p in port_name_problems(port_name)
        )
    elif port_number:
        if not 1 <= port_number <= 65535:
            errors.append(invalid_value(f"{path}.service.port.number", port_number, PORT_RANGE))
    else:
        errors.append(required(path, "port name or number is required"))
    return errors


def _validate_local_reference(reference: dict[str, Any], path: str) -> list[FieldError]:
    """An Ingress resource backend (a TypedLocalObjectReference)."""
    errors: list[FieldError] = []
    api_group = reference.get("apiGroup")
    if api_group is not None:
        errors.extend(
            invalid_value(f"{path}.apiGroup", api_group, p)
            for p in dns1123_subdomain_problems(str(api_group))
        )
    for name in ("kind", "name"):
        value = str(reference.get(name) or "")
        if not value:
            errors.append(required(f"{path}.{name}"))
        else:
            errors.extend(
                invalid_value(f"{path}.{name}", value, p) for p in path_segment_problems(value)
            )
    return errors


class IngressClassStrategy(Strategy):
    group: ClassVar[str] = GROUP
    version: ClassVar[str] = "v1"
    kind: ClassVar[str] = "IngressClass"
    plural: ClassVar[str] = "ingressclasses"
    singular: ClassVar[str] = "ingressclass"
    namespaced: ClassVar[bool] = False
    tracks_generation: ClassVar[bool] = True
    immutable_fields: ClassVar[tuple[str, ...]] = ("spec.controller",)
    columns: ClassVar[tuple[Column, ...]] = (
        NAME_COLUMN,
        Column("Controller", description="Controller that is responsible for handling this class"),
        Column("Parameters", description="A reference to a resource with additional parameters"),
        AGE_COLUMN,
    )

    def default(self, obj: Object) -> None:
        parameters = (obj.get("spec") or {}).get("parameters")
        if isinstance(parameters, dict):
            parameters.setdefault("scope", "Cluster")

    def validate(self, obj: Object) -> list[FieldError]:
        spec = obj.get("spec") or {}
        errors: list[FieldError] = []
        controller = str(spec.get("controller") or "")
        if len(controller) > MAX_CONTROLLER_LENGTH:
            errors.append(too_long("spec.controller", MAX_CONTROLLER_LENGTH))
        errors.extend(domain_prefixed_path_errors(controller, "spec.controller"))
        parameters = spec.get("parameters")
        if isinstance(parameters, dict):
            errors.extend(_validate_parameters(parameters, "spec.parameters"))
        return errors

    def validate_update(self, new: Object, old: Object) -> list[FieldError]:
        errors: list[FieldError] = []
        controller = (new.get("spec") or {}).get("controller")
        if controller != (old.get("spec") or {}).get("controller"):
            errors.append(immutable("spec.controller", controller))
        return errors + self.validate(new)

    def table_row(self, obj: Object) -> list[Any]:
        spec = obj.get("spec") or {}
        parameters = spec.get("parameters")
        cell = "<none>"
        if isinstance(parameters, dict):
            cell = str(parameters.get("kind") or "")
            if parameters.get("apiGroup") is not None:
                cell += "." + str(parameters["apiGroup"])
            cell += "/" + str(parameters.get("name") or "")
        return [
            (obj.get("metadata") or {}).get("name", ""),
            spec.get("controller") or "",
            cell,
            creation_age(obj),
        ]


_HTTP_PATH_CHARS = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/-._~%!$&'()*+,;=:"
)


def domain_prefixed_path_errors(value: str, path: str) -> list[FieldError]:
    """validation.IsDomainPrefixedPath: "example.com/ingress-controller"."""
    if not value:
        return [required(path)]
    host, slash, rest = value.partition("/")
    if not slash or not host or not rest:
        return [
            invalid_value(path, value, 'must be a domain-prefixed path (such as "acme.io/foo")')
        ]
    errors = [invalid_value(path, host, p) for p in dns1123_subdomain_problems(host)]
    if not set(rest) <= _HTTP_PATH_CHARS:
        errors.append(
            invalid_value(
                path,
                rest,
                "Invalid path (regex used for validation is '[A-Za-z0-9/\\-._~%!$&'()*+,;=:]+')",
            )
        )
    return errors


def _validate_parameters(parameters: dict[str, Any], path: str) -> list[FieldError]:
    errors = _validate_local_reference(parameters, path)
    scope = parameters.get("scope")
    if scope is None:
        errors.append(required(f"{path}.scope"))
        return errors
    if scope not in PARAMETER_SCOPES:
        errors.append(not_supported(f"{path}.scope", scope, list(PARAMETER_SCOPES)))
        return errors
    namespace = parameters.get("namespace")
    if scope == "Namespace":
        if namespace is None:
            errors.append(required(f"{path}.namespace", "`parameters.scope` is set to 'Namespace'"))
        else:
            errors.extend(
                invalid_value(f"{path}.namespace", namespace, p)
                for p in dns1123_label_problems(str(namespace))
            )
    elif namespace is not None:
        errors.append(forbidden(f"{path}.namespace", "`parameters.scope` is set to 'Cluster'"))
    return errors
