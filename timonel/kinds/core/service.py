"""Services: defaults, validation and table, and the pure decisions around IP and port
allocation (which the API server performs with storage I/O).

Helpers for the API server:
- `service_needs_cluster_ip(svc)`: a ClusterIP must be allocated (not ExternalName, not
  headless); `service_requested_cluster_ips(svc)` the addresses the user asked for.
- `service_needs_node_ports(svc)` / `service_node_ports_needed(svc)`: which ports get a
  NodePort; `service_needs_health_check_node_port(svc)`.
- `NODE_PORT_RANGE`: kube-apiserver's default --service-node-port-range.
"""

from __future__ import annotations

import copy
from typing import Any, ClassVar

from timonel.api.errors import (
    FieldError,
    RawValue,
    duplicate,
    forbidden,
    invalid_value,
    not_supported,
    required,
)
from timonel.api.objects import Object
from timonel.api.validation import dns1035_label_problems, validate_labels
from timonel.kinds.base import AGE_COLUMN, NAME_COLUMN, Column, Strategy
from timonel.kinds.core.common import (
    as_dict,
    as_list,
    as_str,
    go_strings,
    index,
    is_dual_stack,
    is_int,
    is_ipv6,
    parse_ip,
    validate_cidr,
    validate_dns1123_label,
    validate_dns1123_subdomain,
    validate_ip,
    validate_port_num_or_name,
    validate_port_number,
    validate_protocol,
    validate_qualified_name,
)
from timonel.kinds.core.endpoints import validate_non_special_ip
from timonel.kinds.printing import creation_age, field_description, format_map_selector

NODE_PORT_RANGE = range(30000, 32768)
MAX_SESSION_AFFINITY_SECONDS = 86400
DEFAULT_SESSION_AFFINITY_SECONDS = 10800
SERVICE_TYPES = ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"]
IP_FAMILY_POLICIES = ["PreferDualStack", "RequireDualStack", "SingleStack"]


def _doc(*path: str) -> str:
    return field_description("", "v1", "Service", *path)


class ServiceStrategy(Strategy):
    kind = "Service"
    plural = "services"
    singular = "service"
    short_names = ("svc",)
    categories = ("all",)
    has_status = True
    field_labels = ("spec.clusterIP", "spec.type")
    columns: ClassVar[tuple[Column, ...]] = (
        NAME_COLUMN,
        Column("Type", description=_doc("spec", "type")),
        Column("Cluster-IP", description=_doc("spec", "clusterIP")),
        Column("External-IP", description=_doc("spec", "externalIPs")),
        Column("Port(s)", description=_doc("spec", "ports")),
        AGE_COLUMN,
        Column("Selector", priority=1, description=_doc("spec", "selector")),
    )

    def name_problems(self, name: str) -> list[str]:
        return dns1035_label_problems(name)

    # -- defaults and preparation ------------------------------------------------------

    def default(self, obj: Object) -> None:
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            spec = {}
            obj["spec"] = spec
        default_service_spec(spec)
        status = obj.get("status")
        if not isinstance(status, dict):
            status = {}
            obj["status"] = status
        if not isinstance(status.get("loadBalancer"), dict):
            status["loadBalancer"] = {}
        if spec.get("type") == "LoadBalancer":
            for ingress in as_list(status["loadBalancer"].get("ingress")):
                if (
                    isinstance(ingress, dict)
                    and ingress.get("ip")
                    and ingress.get("ipMode") is None
                ):
                    ingress["ipMode"] = "VIP"

    def prepare_for_create(self, obj: Object) -> None:
        obj["status"] = {"loadBalancer": {}}

    def prepare_for_update(self, new: Object, old: Object) -> None:
        new["status"] = copy.deepcopy(old.get("status") or {"loadBalancer": {}})
        spec = new.setdefault("spec", {})
        old_spec = as_dict(old.get("spec"))
        patch_allocated_values(spec, old_spec)
        normalize_cluster_ips(spec, old_spec)
        drop_type_dependent_fields(new, old)

    # -- validation --------------------------------------------------------------------

    def validate(self, obj: Object) -> list[FieldError]:
        return validate_service(obj)

    def validate_update(self, new: Object, old: Object) -> list[FieldError]:
        spec = as_dict(new.get("spec"))
        old_spec = as_dict(old.get("spec"))
        errors = _validate_cluster_ip_changes(old_spec, spec)
        errors += _validate_ip_family_changes(old_spec, spec)
        errors += _validate_load_balancer_class(old_spec, spec)
        if (
            needs_health_check(old_spec)
            and needs_health_check(spec)
            and spec.get("healthCheckNodePort") != old_spec.get("healthCheckNodePort")
        ):
            errors.append(forbidden("spec.healthCheckNodePort", "field is immutable"))
        return errors + validate_service(new)

    def validate_status_update(self, new: Object, old: Object) -> list[FieldError]:
        spec = as_dict(new.get("spec"))
        ingresses = as_list(as_dict(as_dict(new.get("status")).get("loadBalancer")).get("ingress"))
        errors: list[FieldError] = []
        if spec.get("type") != "LoadBalancer" and ingresses:
            return [
                forbidden(
                    "status.loadBalancer.ingress",
                    "may only be used when `spec.type` is 'LoadBalancer'",
                )
            ]
        for i, ingress in enumerate(ingresses):
            ingress = as_dict(ingress)
            path = index("status.loadBalancer.ingress", i)
            if ingress.get("ip"):
                errors += validate_ip(ingress.get("ip"), f"{path}.ip")
            if ingress.get("ipMode") is None:
                if ingress.get("ip"):
                    errors.append(required(f"{path}.ipMode", "must be specified when `ip` is set"))
            elif not ingress.get("ip"):
                errors.append(
                    forbidden(f"{path}.ipMode", "may not be specified when `ip` is not set")
                )
            elif ingress.get("ipMode") not in ("Proxy", "VIP"):
                errors.append(
                    not_supported(f"{path}.ipMode", ingress.get("ipMode"), ["Proxy", "VIP"])
                )
            hostname = ingress.get("hostname")
            if hostname:
                errors += validate_dns1123_subdomain(as_str(hostname), f"{path}.hostname")
                if parse_ip(hostname) is not None:
                    errors.append(
                        invalid_value(
                            f"{path}.hostname", hostname, "must be a DNS name, not an IP address"
                        )
                    )
        return errors

    # -- reading -----------------------------------------------------------------------

    def table_row(self, obj: Object) -> list[Any]:
        meta = as_dict(obj.get("metadata"))
        spec = as_dict(obj.get("spec"))
        cluster_ips = as_list(spec.get("clusterIPs"))
        return [
            meta.get("name", ""),
            as_str(spec.get("type")),
            as_str(cluster_ips[0]) if cluster_ips else "<none>",
            service_external_ip(obj),
            service_ports_cell(spec.get("ports")) or "<none>",
            creation_age(obj),
            format_map_selector(spec.get("selector")),
        ]

    def selectable_fields(self, obj: Object) -> dict[str, str]:
        fields = super().selectable_fields(obj)
        spec = as_dict(obj.get("spec"))
        fields["spec.clusterIP"] = as_str(spec.get("clusterIP"))
        fields["spec.type"] = as_str(spec.get("type"))
        return fields


# ======================================================================================
# defaults
# ======================================================================================


def externally_accessible(spec: dict[str, Any]) -> bool:
    kind = spec.get("type")
    return kind in ("LoadBalancer", "NodePort") or (
        kind == "ClusterIP" and bool(as_list(spec.get("externalIPs")))
    )


def needs_health_check(spec: dict[str, Any]) -> bool:
    return spec.get("type") == "LoadBalancer" and spec.get("externalTrafficPolicy") == "Local"


def is_headless(spec: dict[str, Any]) -> bool:
    ips = as_list(spec.get("clusterIPs"))
    return len(ips) == 1 and ips[0] == "None"


def default_service_spec(spec: dict[str, Any]) -> None:
    """SetDefaults_Service, and the IP family fields kube-apiserver's service storage fills
    in before allocating (single-stack cluster)."""
    if not spec.get("sessionAffinity"):
        spec["sessionAffinity"] = "None"
    if spec["sessionAffinity"] == "None":
        spec.pop("sessionAffinityConfig", None)
    elif spec["sessionAffinity"] == "ClientIP":
        timeout = as_dict(as_dict(spec.get("sessionAffinityConfig")).get("clientIP")).get(
            "timeoutSeconds"
        )
        if timeout is None:
            spec["sessionAffinityConfig"] = {
                "clientIP": {"timeoutSeconds": DEFAULT_SESSION_AFFINITY_SECONDS}
            }
    if not spec.get("type"):
        spec["type"] = "ClusterIP"
    for port in as_list(spec.get("ports")):
        if not isinstance(port, dict):
            continue
        if not port.get("protocol"):
            port["protocol"] = "TCP"
        if port.get("targetPort") in (None, 0, ""):
            port["targetPort"] = port.get("port", 0)
    if externally_accessible(spec) and not spec.get("externalTrafficPolicy"):
        spec["externalTrafficPolicy"] = "Cluster"
    if spec.get("internalTrafficPolicy") is None and spec["type"] in (
        "ClusterIP",
        "NodePort",
        "LoadBalancer",
    ):
        spec["internalTrafficPolicy"] = "Cluster"
    if spec["type"] == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is None:
        spec["allocateLoadBalancerNodePorts"] = True
    default_ip_families(spec)


def default_ip_families(spec: dict[str, Any]) -> None:
    """clusterIPs follow clusterIP; ipFamilies and ipFamilyPolicy follow the addresses.
    Headless services without a selector take both families (RequireDualStack), as
    kube-apiserver does on any cluster."""
    if spec.get("type") == "ExternalName":
        return
    cluster_ip = spec.get("clusterIP")
    if cluster_ip and not as_list(spec.get("clusterIPs")):
        spec["clusterIPs"] = [cluster_ip]
    families = [f for f in as_list(spec.get("ipFamilies")) if f in ("IPv4", "IPv6")]
    policy = spec.get("ipFamilyPolicy")
    if is_headless(spec):
        if not spec.get("selector"):
            if policy is None:
                policy = "RequireDualStack"
            if not families:
                families = ["IPv4"]
            if policy != "SingleStack" and len(families) == 1:
                families.append("IPv6" if families[0] == "IPv4" else "IPv4")
        else:
            if policy is None:
                policy = "SingleStack" if len(families) < 2 else "RequireDualStack"
            if not families:
                families = ["IPv4"]
    else:
        if not families:
            families = [
                "IPv6" if is_ipv6(ip) else "IPv4" for ip in as_list(spec.get("clusterIPs"))
            ][:2] or ["IPv4"]
        if policy is None:
            policy = "SingleStack" if len(families) == 1 else "RequireDualStack"
    spec["ipFamilyPolicy"] = policy
    spec["ipFamilies"] = families


def normalize_cluster_ips(spec: dict[str, Any], old_spec: dict[str, Any] | None) -> None:
    """NormalizeClusterIPs: keep the singular and plural fields in step when a client sets
    only one of them."""
    cluster_ip = as_str(spec.get("clusterIP"))
    cluster_ips = as_list(spec.get("clusterIPs"))
    if old_spec is None:
        if cluster_ip and not cluster_ips:
            spec["clusterIPs"] = [cluster_ip]
        return
    old_ip = as_str(old_spec.get("clusterIP"))
    old_ips = as_list(old_spec.get("clusterIPs"))
    if cluster_ip != old_ip:
        if cluster_ip and cluster_ips == old_ips:
            spec["clusterIPs"] = [cluster_ip]
        if not cluster_ip and cluster_ips == old_ips:
            spec.pop("clusterIPs", None)
    if cluster_ip == old_ip and cluster_ips != old_ips:
        if not cluster_ips and cluster_ip:
            spec.pop("clusterIP", None)
        elif cluster_ips and cluster_ips[0] != cluster_ip:
            spec["clusterIP"] = cluster_ips[0]


def needs_cluster_ip_field(spec: dict[str, Any]) -> bool:
    return spec.get("type") != "ExternalName"


def patch_allocated_values(spec: dict[str, Any], old_spec: dict[str, Any]) -> None:
    """patchAllocatedValues: an update that leaves allocated values out keeps them."""
    if needs_cluster_ip_field(old_spec) and needs_cluster_ip_field(spec):
        if not spec.get("clusterIP") and old_spec.get("clusterIP"):
            spec["clusterIP"] = old_spec["clusterIP"]
        if not as_list(spec.get("clusterIPs")) and as_list(old_spec.get("clusterIPs")):
            spec["clusterIPs"] = list(old_spec["clusterIPs"])
    if service_needs_node_ports({"spec": old_spec}) and service_needs_node_ports({"spec": spec}):
        old_ports = [as_dict(p) for p in as_list(old_spec.get("ports"))]
        for port in as_list(spec.get("ports")):
            if not isinstance(port, dict) or port.get("nodePort"):
                continue
            for old_port in old_ports:
                if old_port.get("port") == port.get("port") and old_port.get(
                    "protocol"
                ) == port.get("protocol"):
                    if old_port.get("nodePort"):
                        port["nodePort"] = old_port["nodePort"]
                    break
    if (
        needs_health_check(old_spec)
        and needs_health_check(spec)
        and not spec.get("healthCheckNodePort")
        and old_spec.get("healthCheckNodePort")
    ):
        spec["healthCheckNodePort"] = old_spec["healthCheckNodePort"]


def drop_type_dependent_fields(new: Object, old: Object) -> None:
    """dropTypeDependentFields: fields a type change makes meaningless go away, unless the
    user set them in this very update."""
    spec = new.setdefault("spec", {})
    old_spec = as_dict(old.get("spec"))
    if needs_cluster_ip_field(old_spec) and not needs_cluster_ip_field(spec):
        if spec.get("clusterIP") == old_spec.get("clusterIP") and spec.get(
            "clusterIPs"
        ) == old_spec.get("clusterIPs"):
            spec.pop("clusterIP", None)
            spec.pop("clusterIPs", None)
        if spec.get("ipFamilies") == old_spec.get("ipFamilies"):
            spec.pop("ipFamilies", None)
        if spec.get("ipFamilyPolicy") == old_spec.get("ipFamilyPolicy"):
            spec.pop("ipFamilyPolicy", None)
    if service_needs_node_ports({"spec": old_spec}) and not service_needs_node_ports(
        {"spec": spec}
    ):
        new_node_ports = [as_dict(p).get("nodePort") for p in as_list(spec.get("ports"))]
        old_node_ports = [as_dict(p).get("nodePort") for p in as_list(old_spec.get("ports"))]
        if new_node_ports == old_node_ports:
            for port in as_list(spec.get("ports")):
                if isinstance(port, dict):
                    port.pop("nodePort", None)
    if (
        needs_health_check(old_spec)
        and not needs_health_check(spec)
        and spec.get("healthCheckNodePort") == old_spec.get("healthCheckNodePort")
    ):
        spec.pop("healthCheckNodePort", None)
    if old_spec.get("type") == "LoadBalancer" and spec.get("type") != "LoadBalancer":
        allocate = spec.get("allocateLoadBalancerNodePorts")
        if allocate is not None and allocate == old_spec.get("allocateLoadBalancerNodePorts"):
            spec.pop("allocateLoadBalancerNodePorts", None)
        if spec.get("loadBalancerClass") == old_spec.get("loadBalancerClass"):
            spec.pop("loadBalancerClass", None)
    if (
        externally_accessible(old_spec)
        and not externally_accessible(spec)
        and spec.get("externalTrafficPolicy") == old_spec.get("externalTrafficPolicy")
    ):
        spec.pop("externalTrafficPolicy", None)
    if spec.get("type") != "LoadBalancer":
        new.setdefault("status", {})["loadBalancer"] = {}


# ======================================================================================
# allocation decisions
# ======================================================================================


def service_needs_cluster_ip(service: Object) -> bool:
    """A ClusterIP address is to be allocated: neither ExternalName nor headless."""
    spec = as_dict(service.get("spec"))
    return spec.get("type", "ClusterIP") != "ExternalName" and spec.get("clusterIP") != "None"


def service_requested_cluster_ips(service: Object) -> list[str]:
    """The addresses the user asked for ("" for the primary when none was given)."""
    spec = as_dict(service.get("spec"))
    ips = [as_str(ip) for ip in as_list(spec.get("clusterIPs"))]
    if not ips and spec.get("clusterIP"):
        ips = [as_str(spec.get("clusterIP"))]
    return ips or [""]


def service_needs_node_ports(service: Object) -> bool:
    spec = as_dict(service.get("spec"))
    kind = spec.get("type")
    return kind == "NodePort" or (
        kind == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is not False
    )


def service_node_ports_needed(service: Object) -> list[int]:
    """Indexes of the ports that still need a NodePort."""
    if not service_needs_node_ports(service):
        return []
    ports = as_list(as_dict(service.get("spec")).get("ports"))
    return [i for i, port in enumerate(ports) if not as_dict(port).get("nodePort")]


def service_needs_health_check_node_port(service: Object) -> bool:
    spec = as_dict(service.get("spec"))
    return needs_health_check(spec) and not spec.get("healthCheckNodePort")


# ======================================================================================
# validation
# ======================================================================================


def validate_service(service: Object) -> list[FieldError]:
    """ValidateService, less object metadata."""
    spec = as_dict(service.get("spec"))
    annotations = as_dict(as_dict(service.get("metadata")).get("annotations"))
    errors: list[FieldError] = []
    hints = annotations.get("service.kubernetes.io/topology-aware-hints")
    mode = annotations.get("service.kubernetes.io/topology-mode")
    if hints is not None and mode is not None and hints != mode:
        errors.append(
            invalid_value(
                "metadata.annotations[service.kubernetes.io/topology-mode]",
                mode,
                "must match annotations[service.kubernetes.io/topology-aware-hints] when both are specified",
            )
        )
    kind = spec.get("type")
    ports = [as_dict(p) for p in as_list(spec.get("ports"))]
    headless = is_headless(spec)
    if not ports and not headless and kind != "ExternalName":
        errors.append(required("spec.ports"))
    cluster_ips = as_list(spec.get("clusterIPs"))
    if kind in ("LoadBalancer", "NodePort") and headless:
        errors.append(
            invalid_value(
                "spec.clusterIPs[0]",
                cluster_ips[0],
                f"may not be set to 'None' for {kind} services",
            )
        )
    elif kind == "ExternalName":
        if cluster_ips:
            errors.append(forbidden("spec.clusterIPs", "may not be set for ExternalName services"))
        if as_list(spec.get("ipFamilies")):
            errors.append(forbidden("spec.ipFamilies", "may not be set for ExternalName services"))
        if spec.get("ipFamilyPolicy") is not None:
            errors.append(
                forbidden("spec.ipFamilyPolicy", "may not be set for ExternalName services")
            )
        cname = as_str(spec.get("externalName")).removesuffix(".")
        if cname:
            errors += validate_dns1123_subdomain(cname, "spec.externalName")
        else:
            errors.append(required("spec.externalName"))
    names: set[str] = set()
    for i, port in enumerate(ports):
        errors += _validate_service_port(port, len(ports) > 1, names, index("spec.ports", i))
    if spec.get("selector") is not None:
        errors += validate_labels(spec.get("selector"), "spec.selector")
    affinity = spec.get("sessionAffinity")
    if not affinity:
        errors.append(required("spec.sessionAffinity"))
    elif affinity not in ("ClientIP", "None"):
        errors.append(not_supported("spec.sessionAffinity", affinity, ["ClientIP", "None"]))
    if affinity == "ClientIP":
        errors += _validate_client_ip_affinity(spec.get("sessionAffinityConfig"))
    elif affinity == "None" and spec.get("sessionAffinityConfig") is not None:
        errors.append(
            forbidden("spec.sessionAffinityConfig", "must not be set when session affinity is None")
        )
    errors += validate_cluster_ip_fields(spec)
    for i, ip in enumerate(as_list(spec.get("externalIPs"))):
        path = index("spec.externalIPs", i)
        ip_errors = validate_ip(ip, path)
        errors += ip_errors or validate_non_special_ip(ip, path)
    if not kind:
        errors.append(required("spec.type"))
    elif kind not in SERVICE_TYPES:
        errors.append(not_supported("spec.type", kind, SERVICE_TYPES))
    if kind == "ClusterIP":
        for i, port in enumerate(ports):
            if port.get("nodePort"):
                errors.append(
                    forbidden(
                        f"spec.ports[{i}].nodePort", "may not be used when `type` is 'ClusterIP'"
                    )
                )
    seen_node_ports: set[tuple[Any, Any]] = set()
    for i, port in enumerate(ports):
        if not port.get("nodePort"):
            continue
        pair = (port.get("protocol"), port.get("nodePort"))
        if pair in seen_node_ports:
            errors.append(duplicate(f"spec.ports[{i}].nodePort", port.get("nodePort")))
        seen_node_ports.add(pair)
    seen_ports: set[tuple[Any, Any]] = set()
    for i, port in enumerate(ports):
        pair = (port.get("protocol"), port.get("port"))
        if pair in seen_ports:
            errors.append(duplicate(index("spec.ports", i), _go_service_port(port)))
        seen_ports.add(pair)
    source_ranges = as_list(spec.get("loadBalancerSourceRanges"))
    if source_ranges:
        if kind != "LoadBalancer":
            errors.append(
                forbidden(
                    "spec.LoadBalancerSourceRanges",
                    "may only be used when `type` is 'LoadBalancer'",
                )
            )
        for i, value in enumerate(source_ranges):
            errors += validate_cidr(
                as_str(value).strip(), index("spec.LoadBalancerSourceRanges", i)
            )
    elif "service.beta.kubernetes.io/load-balancer-source-ranges" in annotations:
        path = "metadata.annotations[service.beta.kubernetes.io/load-balancer-source-ranges]"
        if kind != "LoadBalancer":
            errors.append(forbidden(path, "may only be used when `type` is 'LoadBalancer'"))
        text = as_str(annotations["service.beta.kubernetes.io/load-balancer-source-ranges"]).strip()
        for value in text.split(",") if text else []:
            errors += validate_cidr(value.strip(), path)
    if spec.get("allocateLoadBalancerNodePorts") is not None and kind != "LoadBalancer":
        errors.append(
            forbidden(
                "spec.allocateLoadBalancerNodePorts",
                "may only be used when `type` is 'LoadBalancer'",
            )
        )
    if kind == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is None:
        errors.append(required("allocateLoadBalancerNodePorts"))
    errors += _validate_load_balancer_class(None, spec)
    errors += _validate_external_traffic_policy(spec)
    internal = spec.get("internalTrafficPolicy")
    if internal is None:
        if kind in ("NodePort", "LoadBalancer", "ClusterIP"):
            errors.append(required("spec.internalTrafficPolicy"))
    elif internal not in ("Cluster", "Local"):
        errors.append(not_supported("spec.internalTrafficPolicy", internal, ["Cluster", "Local"]))
    distribution = spec.get("trafficDistribution")
    if distribution is not None and distribution != "PreferClose":
        errors.append(not_supported("spec.trafficDistribution", distribution, ["PreferClose"]))
    return errors


def _go_service_port(port: dict[str, Any]) -> RawValue:
    """The key of a duplicate port as Go prints it (only protocol and port are set)."""
    return RawValue(
        f'core.ServicePort{{Name:"", Protocol:"{as_str(port.get("protocol"))}", AppProtocol:(*string)(nil), '
        f'Port:{port.get("port", 0)}, TargetPort:intstr.IntOrString{{Type:0, IntVal:0, StrVal:""}}, NodePort:0}}'
    )


def _validate_service_port(
    port: dict[str, Any], require_name: bool, names: set[str], path: str
) -> list[FieldError]:
    errors: list[FieldError] = []
    name = as_str(port.get("name"))
    if require_name and not name:
        errors.append(required(f"{path}.name"))
    elif name:
        errors += validate_dns1123_label(name, f"{path}.name")
        if name in names:
            errors.append(duplicate(f"{path}.name", name))
        else:
            names.add(name)
    errors += validate_port_number(port.get("port"), f"{path}.port")
    errors += validate_protocol(port.get("protocol"), f"{path}.protocol")
    errors += validate_port_num_or_name(port.get("targetPort"), f"{path}.targetPort")
    if port.get("appProtocol") is not None:
        errors += validate_qualified_name(as_str(port.get("appProtocol")), f"{path}.appProtocol")
    return errors


def _validate_client_ip_affinity(config: Any) -> list[FieldError]:
    detail = "when session affinity type is ClientIP"
    if config is None:
        return [required("spec.sessionAffinityConfig", detail)]
    client_ip = as_dict(config).get("clientIP")
    if client_ip is None:
        return [required("spec.sessionAffinityConfig.clientIP", detail)]
    timeout = as_dict(client_ip).get("timeoutSeconds")
    if timeout is None:
        return [required("spec.sessionAffinityConfig.clientIP.timeoutSeconds", detail)]
    if not is_int(timeout) or not 0 < timeout <= MAX_SESSION_AFFINITY_SECONDS:
        return [
            invalid_value(
                "spec.sessionAffinityConfig.clientIP.timeoutSeconds",
                timeout,
                f"must be greater than 0 and less than {MAX_SESSION_AFFINITY_SECONDS}",
            )
        ]
    return []


def validate_cluster_ip_fields(spec: dict[str, Any]) -> list[FieldError]:
    """ValidateServiceClusterIPsRelatedFields: clusterIP(s), ipFamilies, ipFamilyPolicy."""
    if spec.get("type") == "ExternalName":
        return []
    errors: list[FieldError] = []
    cluster_ip = as_str(spec.get("clusterIP"))
    cluster_ips = [as_str(ip) for ip in as_list(spec.get("clusterIPs"))]
    if cluster_ip:
        if not cluster_ips:
            errors.append(required("spec.clusterIPs"))
        elif cluster_ips[0] != cluster_ip:
            errors.append(
                invalid_value(
                    "spec.clusterIPs", go_strings(cluster_ips), "first value must match `clusterIP`"
                )
            )
    elif cluster_ips:
        errors.append(
            invalid_value(
                "spec.clusterIPs",
                go_strings(cluster_ips),
                "must be empty when `clusterIP` is not specified",
            )
        )
    seen: set[str] = set()
    for i, family in enumerate(as_list(spec.get("ipFamilies"))):
        if family not in ("IPv4", "IPv6"):
            errors.append(not_supported(index("spec.ipFamilies", i), family, ["IPv4", "IPv6"]))
        if family in seen:
            errors.append(duplicate(index("spec.ipFamilies", i), family))
        seen.add(as_str(family))
    policy = spec.get("ipFamilyPolicy")
    if policy is not None and policy not in IP_FAMILY_POLICIES:
        errors.append(not_supported("spec.ipFamilyPolicy", policy, IP_FAMILY_POLICIES))
    invalid_ips = False
    for i, ip in enumerate(cluster_ips):
        if i == 0 and ip == "None":
            if len(cluster_ips) > 1:
                invalid_ips = True
                errors.append(
                    invalid_value(
                        "spec.clusterIPs",
                        go_strings(cluster_ips),
                        "'None' must be the first and only value",
                    )
                )
            continue
        ip_errors = validate_ip(ip, index("spec.clusterIPs", i))
        invalid_ips = invalid_ips or bool(ip_errors)
        errors += ip_errors
    if len(cluster_ips) > 2:
        errors.append(
            invalid_value(
                "spec.clusterIPs", go_strings(cluster_ips), "may only hold up to 2 values"
            )
        )
    if invalid_ips:
        return errors
    if len(cluster_ips) > 1 and not is_dual_stack(cluster_ips):
        errors.append(
            invalid_value(
                "spec.clusterIPs",
                go_strings(cluster_ips),
                "may specify no more than one IP for each IP family",
            )
        )
    families = as_list(spec.get("ipFamilies"))
    if not is_headless(spec) and cluster_ips and families:
        for i, ip in enumerate(cluster_ips[: len(families)]):
            if families[i] == "IPv4" and is_ipv6(ip):
                errors.append(
                    invalid_value(
                        index("spec.clusterIPs", i),
                        ip,
                        f"expected an IPv4 value as indicated by `ipFamilies[{i}]`",
                    )
                )
            if families[i] == "IPv6" and not is_ipv6(ip):
                errors.append(
                    invalid_value(
                        index("spec.clusterIPs", i),
                        ip,
                        f"expected an IPv6 value as indicated by `ipFamilies[{i}]`",
                    )
                )
    return errors


def _validate_cluster_ip_changes(old: dict[str, Any], new: dict[str, Any]) -> list[FieldError]:
    """validateUpgradeDowngradeClusterIPs: a ClusterIP may not change once set."""
    if "ExternalName" in (new.get("type"), old.get("type")):
        return []
    if is_headless(old) and is_headless(new):
        return []
    old_ips = as_list(old.get("clusterIPs"))
    new_ips = as_list(new.get("clusterIPs"))
    value = go_strings(new.get("clusterIPs"))
    errors: list[FieldError] = []
    if len(old_ips) == len(new_ips):
        for i, ip in enumerate(old_ips):
            if ip != new_ips[i]:
                errors.append(
                    invalid_value(index("spec.clusterIPs", i), value, "may not change once set")
                )
    elif len(old_ips) > len(new_ips):
        if not new_ips:
            errors.append(
                invalid_value("spec.clusterIPs[0]", value, "primary clusterIP can not be unset")
            )
        if old_ips and new_ips and new_ips[0] != old_ips[0]:
            errors.append(invalid_value("spec.clusterIPs[0]", value, "may not change once set"))
        if len(new_ips) == 1 and new.get("ipFamilyPolicy") != "SingleStack":
            errors.append(
                invalid_value(
                    "spec.ipFamilyPolicy",
                    new.get("ipFamilyPolicy"),
                    "must be set to 'SingleStack' when releasing the secondary clusterIP",
                )
            )
    elif old_ips and new_ips[0] != old_ips[0]:
        errors.append(invalid_value("spec.clusterIPs[0]", value, "may not change once set"))
    return errors


def _validate_ip_family_changes(old: dict[str, Any], new: dict[str, Any]) -> list[FieldError]:
    if "ExternalName" in (new.get("type"), old.get("type")):
        return []
    if is_headless(old) != is_headless(new) or is_headless(new):
        return []
    old_families = as_list(old.get("ipFamilies"))
    families = as_list(new.get("ipFamilies"))
    rendered = (
        RawValue("[]core.IPFamily{" + ", ".join(f'"{f}"' for f in families) + "}")
        if families
        else (RawValue("[]core.IPFamily(nil)"))
    )
    errors: list[FieldError] = []
    if len(old_families) == len(families):
        for i, family in enumerate(old_families):
            if family != families[i]:
                errors.append(
                    invalid_value("spec.ipFamilies[0]", rendered, "may not change once set")
                )
    elif len(old_families) > len(families):
        if not as_list(new.get("clusterIPs")):
            errors.append(
                invalid_value("spec.ipFamilies[0]", rendered, "primary ipFamily can not be unset")
            )
        if families and families[0] != old_families[0]:
            errors.append(
                invalid_value(
                    "spec.ipFamilies[0]",
                    go_strings(new.get("clusterIPs")),
                    "may not change once set",
                )
            )
        if len(families) == 1 and new.get("ipFamilyPolicy") != "SingleStack":
            errors.append(
                invalid_value(
                    "spec.ipFamilyPolicy",
                    new.get("ipFamilyPolicy"),
                    "must be set to 'SingleStack' when releasing the secondary ipFamily",
                )
            )
    elif old_families and families and families[0] != old_families[0]:
        errors.append(
            invalid_value(
                "spec.ipFamilies[0]", go_strings(new.get("clusterIPs")), "may not change once set"
            )
        )
    return errors


def _validate_load_balancer_class(
    old: dict[str, Any] | None, new: dict[str, Any]
) -> list[FieldError]:
    errors: list[FieldError] = []
    lb_class = new.get("loadBalancerClass")
    if (
        old is not None
        and old.get("type") == "LoadBalancer"
        and new.get("type") == "LoadBalancer"
        and old.get("loadBalancerClass") != lb_class
    ):
        errors.append(invalid_value("spec.loadBalancerClass", lb_class, "may not change once set"))
    if old is not None:
        return errors
    if new.get("type") == "LoadBalancer":
        if lb_class is not None:
            errors += validate_qualified_name(as_str(lb_class), "spec.loadBalancerClass")
    elif lb_class is not None:
        errors.append(
            forbidden("spec.loadBalancerClass", "may only be used when `type` is 'LoadBalancer'")
        )
    return errors


def _validate_external_traffic_policy(spec: dict[str, Any]) -> list[FieldError]:
    errors: list[FieldError] = []
    policy = spec.get("externalTrafficPolicy")
    if not externally_accessible(spec):
        if policy:
            errors.append(
                invalid_value(
                    "spec.externalTrafficPolicy",
                    policy,
                    "may only be set for externally-accessible services",
                )
            )
    elif not policy:
        errors.append(required("spec.externalTrafficPolicy"))
    elif policy not in ("Cluster", "Local"):
        errors.append(not_supported("spec.externalTrafficPolicy", policy, ["Cluster", "Local"]))
    health_port = spec.get("healthCheckNodePort")
    if not needs_health_check(spec):
        if health_port:
            errors.append(
                invalid_value(
                    "spec.healthCheckNodePort",
                    health_port,
                    "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'",
                )
            )
    elif not health_port:
        errors.append(required("spec.healthCheckNodePort"))
    else:
        errors += validate_port_number(health_port, "spec.healthCheckNodePort")
    return errors


# ======================================================================================
# table
# ======================================================================================


def service_ports_cell(ports: Any) -> str:
    """makePortString: `80/TCP`, `80:30080/TCP`, comma-separated."""
    pieces = []
    for port in as_list(ports):
        port = as_dict(port)
        protocol = as_str(port.get("protocol"))
        node_port = port.get("nodePort")
        if is_int(node_port) and node_port > 0:
            pieces.append(f"{port.get('port', 0)}:{node_port}/{protocol}")
        else:
            pieces.append(f"{port.get('port', 0)}/{protocol}")
    return ",".join(pieces)


def service_external_ip(service: Object) -> str:
    """getServiceExternalIP (wide): external IPs, load balancer ingress, `<pending>`."""
    spec = as_dict(service.get("spec"))
    kind = spec.get("type")
    external_ips = [as_str(ip) for ip in as_list(spec.get("externalIPs"))]
    if kind in ("ClusterIP", "NodePort"):
        return ",".join(external_ips) if external_ips else "<none>"
    if kind == "LoadBalancer":
        ingress_ips = sorted(
            {
                as_str(as_dict(i).get("ip")) or as_str(as_dict(i).get("hostname"))
                for i in as_list(
                    as_dict(as_dict(service.get("status")).get("loadBalancer")).get("ingress")
                )
                if as_dict(i).get("ip") or as_dict(i).get("hostname")
            }
        )
        if external_ips:
            return ",".join(ingress_ips + external_ips)
        return ",".join(ingress_ips) if ingress_ips else "<pending>"
    if kind == "ExternalName":
        return as_str(spec.get("externalName"))
    return "<unknown>"
