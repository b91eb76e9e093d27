"""PodSpec and PodTemplateSpec: defaults and validation shared by every kind that embeds a pod
(Pod, PodTemplate, ReplicationController, and the apps and batch workloads).

Defaults are kube-apiserver 1.32's `SetDefaults_PodSpec`, `SetDefaults_Container`,
`SetDefaults_Volume`, probe/handler/ResourceList defaults and the declarative `+default`
markers, plus what Go's JSON encoding adds to every response (`resources: {}` on containers,
`creationTimestamp: null` in template metadata). All defaulting is idempotent.

Validation follows `ValidatePodSpec` / `ValidatePodTemplateSpec` in
`pkg/apis/core/validation`, with the same field paths and wording.
"""

from __future__ import annotations

import contextlib
import functools
import re
from typing import Any

from timonel.api.errors import (
    FieldError,
    forbidden,
    invalid_value,
    not_supported,
    required,
)
from timonel.api.quantity import QuantityError, canonical_quantity, canonical_resource_list
from timonel.api.validation import (
    dns1123_subdomain_problems,
    validate_annotations,
    validate_labels,
)
from timonel.kinds.core.common import (
    DNS_POLICIES,
    MAX_INT32,
    PREEMPTION_POLICIES,
    RESTART_POLICIES,
    as_dict,
    as_list,
    as_str,
    child,
    index,
    is_int,
    key,
    validate_dns1123_label,
    validate_dns1123_subdomain,
    validate_enum_required,
    validate_ip,
    validate_qualified_name,
)
from timonel.kinds.core.podcontainers import (
    validate_containers,
    validate_ephemeral_containers,
    validate_init_containers,
    validate_resource_requirements,
)
from timonel.kinds.core.podscheduling import (
    validate_affinity,
    validate_dns_config,
    validate_host_network_ports,
    validate_image_pull_secrets,
    validate_resource_claims,
    validate_scheduling_gates,
    validate_tolerations,
    validate_topology_spread,
)
from timonel.kinds.core.podsecurity import (
    validate_pod_security_context,
)
from timonel.kinds.core.podvolumes import (
    VOLUME_SOURCES,
    validate_volumes,
)

DEFAULT_SCHEDULER_NAME = "default-scheduler"
DEFAULT_TERMINATION_GRACE_PERIOD = 30
TERMINATION_MESSAGE_PATH = "/dev/termination-log"
DEFAULT_FILE_MODE = 0o644  # 420: secret, configMap, downwardAPI and projected volumes

CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")


# ======================================================================================
# defaults
# ======================================================================================


def default_pod_template(template: dict[str, Any]) -> None:
    """Defaults of a PodTemplateSpec embedded in a workload."""
    meta = template.get("metadata")
    if not isinstance(meta, dict):
        meta = {}
        template["metadata"] = meta
    # A zero metav1.Time is still written by Go's encoder.
    meta.setdefault("creationTimestamp", None)
    spec = template.get("spec")
    if not isinstance(spec, dict):
        spec = {}
        template["spec"] = spec
    default_pod_spec(spec)


def default_pod_spec(spec: dict[str, Any]) -> None:
    """SetDefaults_PodSpec and the defaults of everything a PodSpec holds."""
    # Decoding v1 makes the deprecated serviceAccount an alias of serviceAccountName.
    if not spec.get("serviceAccountName") and spec.get("serviceAccount"):
        spec["serviceAccountName"] = spec["serviceAccount"]
    if spec.get("serviceAccountName"):
        spec["serviceAccount"] = spec["serviceAccountName"]
    else:
        spec.pop("serviceAccount", None)
    for volume in as_list(spec.get("volumes")):
        if isinstance(volume, dict):
            default_volume(volume)
    for field in CONTAINER_LISTS:
        for container in as_list(spec.get(field)):
            if isinstance(container, dict):
                default_container(container)
    _canonicalize_resource_list(spec, "overhead")
    if isinstance(spec.get("resources"), dict):
        _default_resource_requirements(spec["resources"])
    if not spec.get("dnsPolicy"):
        spec["dnsPolicy"] = "ClusterFirst"
    if not spec.get("restartPolicy"):
        spec["restartPolicy"] = "Always"
    if spec.get("securityContext") is None:
        spec["securityContext"] = {}
    if spec.get("terminationGracePeriodSeconds") is None:
        spec["terminationGracePeriodSeconds"] = DEFAULT_TERMINATION_GRACE_PERIOD
    if not spec.get("schedulerName"):
        spec["schedulerName"] = DEFAULT_SCHEDULER_NAME


def default_container(container: dict[str, Any]) -> None:
    """SetDefaults_Container and the defaults of its ports, env, resources, probes and hooks."""
    if not container.get("imagePullPolicy"):
        container["imagePullPolicy"] = default_pull_policy(as_str(container.get("image")))
    if not container.get("terminationMessagePath"):
        container["terminationMessagePath"] = TERMINATION_MESSAGE_PATH
    if not container.get("terminationMessagePolicy"):
        container["terminationMessagePolicy"] = "File"
    for port in as_list(container.get("ports")):
        if isinstance(port, dict) and not port.get("protocol"):
            port["protocol"] = "TCP"
    for env in as_list(container.get("env")):
        field_ref = as_dict(as_dict(as_dict(env).get("valueFrom")).get("fieldRef"))
        if field_ref and not field_ref.get("apiVersion"):
            field_ref["apiVersion"] = "v1"
    # ResourceRequirements is a struct in Go: it is always written, `{}` when empty.
    resources = container.get("resources")
    if not isinstance(resources, dict):
        resources = {}
        container["resources"] = resources
    _default_resource_requirements(resources)
    for probe_field in ("livenessProbe", "readinessProbe", "startupProbe"):
        probe = container.get(probe_field)
        if isinstance(probe, dict):
            _default_probe(probe)
    lifecycle = as_dict(container.get("lifecycle"))
    for hook in ("postStart", "preStop"):
        _default_handler(as_dict(lifecycle.get(hook)))


# A workload's pods name the same images over and over.
@functools.lru_cache(maxsize=1024)
def default_pull_policy(image: str) -> str:
    """Always for `:latest` or an untagged, undigested image; IfNotPresent otherwise (and for
    references that do not parse)."""
    match = _IMAGE_REFERENCE.match(image)
    if match is None or len(match.group(1)) > 255:
        return "IfNotPresent"
    tag, digest = match.group(2), match.group(3)
    if tag == "latest" or (tag is None and digest is None):
        return "Always"
    return "IfNotPresent"


_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?"
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_IMAGE_REFERENCE = re.compile(
    rf"^((?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*)"
    r"(?::([\w][\w.-]{0,127}))?"
    r"(?:@([A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}))?$"
)


def _default_probe(probe: dict[str, Any]) -> None:
    for field, value in (
        ("timeoutSeconds", 1),
        ("periodSeconds", 10),
        ("successThreshold", 1),
        ("failureThreshold", 3),
    ):
        if not probe.get(field):
            probe[field] = value
    _default_handler(probe)
    grpc = probe.get("grpc")
    if isinstance(grpc, dict) and grpc.get("service") is None:
        grpc["service"] = ""


def _default_handler(handler: dict[str, Any]) -> None:
    http_get = handler.get("httpGet")
    if isinstance(http_get, dict):
        if not http_get.get("path"):
            http_get["path"] = "/"
        if not http_get.get("scheme"):
            http_get["scheme"] = "HTTP"


def _default_resource_requirements(resources: dict[str, Any]) -> None:
    for field in ("limits", "requests"):
        _canonicalize_resource_list(resources, field)


def _canonicalize_resource_list(holder: dict[str, Any], field: str) -> None:
    """SetDefaults_ResourceList: canonical quantities rounded up to thousandths. An empty
    map is dropped, as Go's encoder omits it."""
    value = holder.get(field)
    if value is None:
        return
    if isinstance(value, dict) and not value:
        del holder[field]
        return
    if isinstance(value, dict):
        holder[field], _ = canonical_resource_list(value)


def default_volume(volume: dict[str, Any]) -> None:
    """SetDefaults_Volume: an emptyDir when no source is named, then each source's defaults."""
    if not any(volume.get(source) is not None for source in VOLUME_SOURCES):
        volume["emptyDir"] = {}
    for source in ("secret", "configMap", "downwardAPI", "projected"):
        holder = volume.get(source)
        if isinstance(holder, dict) and holder.get("defaultMode") is None:
            holder["defaultMode"] = DEFAULT_FILE_MODE
    for item in as_list(as_dict(volume.get("downwardAPI")).get("items")):
        _default_field_ref(as_dict(item).get("fieldRef"))
    for projection in as_list(as_dict(volume.get("projected")).get("sources")):
        projection = as_dict(projection)
        for item in as_list(as_dict(projection.get("downwardAPI")).get("items")):
            _default_field_ref(as_dict(item).get("fieldRef"))
        token = projection.get("serviceAccountToken")
        if isinstance(token, dict) and token.get("expirationSeconds") is None:
            token["expirationSeconds"] = 3600
    host_path = volume.get("hostPath")
    if isinstance(host_path, dict) and host_path.get("type") is None:
        host_path["type"] = ""
    empty_dir = volume.get("emptyDir")
    if isinstance(empty_dir, dict) and empty_dir.get("sizeLimit") is not None:
        with contextlib.suppress(QuantityError):
            empty_dir["sizeLimit"] = canonical_quantity(empty_dir["sizeLimit"])
    _default_declared(volume.get("iscsi"), {"iscsiInterface": "default"})
    _default_declared(
        volume.get("rbd"), {"pool": "rbd", "user": "admin", "keyring": "/etc/ceph/keyring"}
    )
    _default_declared(
        volume.get("azureDisk"),
        {"cachingMode": "ReadWrite", "fsType": "ext4", "readOnly": False, "kind": "Shared"},
    )
    _default_declared(volume.get("scaleIO"), {"storageMode": "ThinProvisioned", "fsType": "xfs"})
    template = as_dict(volume.get("ephemeral")).get("volumeClaimTemplate")
    if isinstance(template, dict):
        meta = template.get("metadata")
        if not isinstance(meta, dict):
            meta = {}
            template["metadata"] = meta
        meta.setdefault("creationTimestamp", None)
        claim_spec = template.get("spec")
        if not isinstance(claim_spec, dict):
            claim_spec = {}
            template["spec"] = claim_spec
        default_claim_spec(claim_spec)


def default_claim_spec(spec: dict[str, Any]) -> None:
    """SetDefaults_PersistentVolumeClaimSpec, and `resources: {}` as Go writes it."""
    if spec.get("volumeMode") is None:
        spec["volumeMode"] = "Filesystem"
    resources = spec.get("resources")
    if not isinstance(resources, dict):
        resources = {}
        spec["resources"] = resources
    _default_resource_requirements(resources)


def _default_field_ref(field_ref: Any) -> None:
    if isinstance(field_ref, dict) and not field_ref.get("apiVersion"):
        field_ref["apiVersion"] = "v1"


def _default_declared(holder: Any, defaults: dict[str, Any]) -> None:
    if isinstance(holder, dict):
        for field, value in defaults.items():
            if holder.get(field) in (None, ""):
                holder[field] = value


def default_pod_only(spec: dict[str, Any]) -> None:
    """SetDefaults_Pod: what only a Pod (not a template) gets. Requests default to limits,
    service links are on, and host-network pods publish every container port on the host."""
    for field in ("containers", "initContainers"):
        for container in as_list(spec.get(field)):
            resources = as_dict(as_dict(container).get("resources"))
            limits = resources.get("limits")
            if isinstance(limits, dict) and limits:
                requests = resources.get("requests")
                if not isinstance(requests, dict):
                    requests = {}
                    resources["requests"] = requests
                for name, value in limits.items():
                    requests.setdefault(name, value)
    if spec.get("enableServiceLinks") is None:
        spec["enableServiceLinks"] = True
    if spec.get("hostNetwork") is True:
        for field in ("containers", "initContainers"):
            for container in as_list(spec.get(field)):
                for port in as_list(as_dict(container).get("ports")):
                    if isinstance(port, dict) and not port.get("hostPort"):
                        port["hostPort"] = port.get("containerPort")


def validate_pod_template(template: Any, path: str) -> list[FieldError]:
    """ValidatePodTemplateSpec: a workload's pod template (its metadata and spec).

    As upstream, label and annotation errors name `<path>.labels` / `<path>.annotations`
    (the embedded ObjectMeta), not `<path>.metadata.labels`."""
    template = as_dict(template)
    meta = as_dict(template.get("metadata"))
    spec = as_dict(template.get("spec"))
    errors = validate_labels(meta.get("labels"), child(path, "labels"))
    errors += validate_annotations(meta.get("annotations"), child(path, "annotations"))
    errors += validate_pod_annotations(as_dict(meta.get("annotations")), child(path, "annotations"))
    errors += validate_pod_spec(spec, child(path, "spec"))
    if as_list(spec.get("ephemeralContainers")):
        errors.append(
            forbidden(
                child(child(path, "spec"), "ephemeralContainers"),
                "ephemeral containers not allowed in pod template",
            )
        )
    return errors


def validate_pod_annotations(annotations: dict[str, Any], path: str) -> list[FieldError]:
    """ValidatePodSpecificAnnotations, for the annotations kube-apiserver interprets."""
    errors: list[FieldError] = []
    cost = annotations.get("controller.kubernetes.io/pod-deletion-cost")
    if cost is not None:
        try:
            number = int(cost)
            if not -(2**31) <= number <= MAX_INT32 or str(number) != str(cost).lstrip("+"):
                raise ValueError(cost)
        except (TypeError, ValueError):
            errors.append(
                invalid_value(
                    key(path, "controller.kubernetes.io/pod-deletion-cost"),
                    cost,
                    "must be a 32bit integer",
                )
            )
    return errors


def validate_pod_spec(
    spec: Any,
    path: str,
    *,
    pod_name: str = "",
    is_pod: bool = False,
) -> list[FieldError]:
    """ValidatePodSpec. `pod_name` is the Pod's own name (checks names of ephemeral volume
    claims); `is_pod` applies the rules that hold only for Pods, not for templates."""
    spec = as_dict(spec)
    errors: list[FieldError] = []
    grace_period = spec.get("terminationGracePeriodSeconds")
    if grace_period is None:
        errors.append(required(child(path, "terminationGracePeriodSeconds")))
    security_fields = as_dict(spec.get("securityContext"))
    host_users = (
        security_fields.get("hostUsers") is not False and spec.get("hostUsers") is not False
    )
    # Validators of optional parts are called only when the part is there: on an absent
    # one each finds nothing, and most pods leave most parts out.
    volumes: dict[str, dict[str, Any]] = {}
    if as_list(spec.get("volumes")):
        volumes, volume_errors = validate_volumes(
            spec.get("volumes"), child(path, "volumes"), pod_name=pod_name, is_pod=is_pod
        )
        errors += volume_errors
    claim_names: set[str] = set()
    if as_list(spec.get("resourceClaims")):
        claim_names = {
            as_str(as_dict(c).get("name")) for c in as_list(spec.get("resourceClaims"))
        } - {""}
        errors += validate_resource_claims(
            spec.get("resourceClaims"), child(path, "resourceClaims")
        )
    restart_policy = spec.get("restartPolicy")
    errors += validate_containers(
        spec, volumes, claim_names, grace_period, path, restart_policy, host_users
    )
    if as_list(spec.get("initContainers")):
        errors += validate_init_containers(
            spec, volumes, claim_names, grace_period, path, restart_policy, host_users
        )
    if as_list(spec.get("ephemeralContainers")):
        errors += validate_ephemeral_containers(
            spec, volumes, claim_names, path, restart_policy, host_users
        )
    if spec.get("hostNetwork") is True:
        errors += validate_host_network_ports(spec, path, is_pod=is_pod)
    if restart_policy not in RESTART_POLICIES:
        errors += validate_enum_required(
            restart_policy, child(path, "restartPolicy"), RESTART_POLICIES
        )
    dns_policy = spec.get("dnsPolicy")
    if dns_policy not in DNS_POLICIES:
        errors += validate_enum_required(dns_policy, child(path, "dnsPolicy"), DNS_POLICIES)
    if spec.get("nodeSelector") is not None:
        errors += validate_labels(spec.get("nodeSelector"), child(path, "nodeSelector"))
    # An empty securityContext has nothing to check but this pair of pod fields.
    if security_fields or (
        spec.get("shareProcessNamespace") is True and spec.get("hostPID") is True
    ):
        errors += validate_pod_security_context(spec, path)
    if as_list(spec.get("imagePullSecrets")):
        errors += validate_image_pull_secrets(
            spec.get("imagePullSecrets"), child(path, "imagePullSecrets")
        )
    if as_dict(spec.get("affinity")):
        errors += validate_affinity(spec.get("affinity"), child(path, "affinity"))
    if spec.get("dnsConfig") is not None or dns_policy == "None":
        errors += validate_dns_config(spec.get("dnsConfig"), dns_policy, child(path, "dnsConfig"))
    for i, gate in enumerate(as_list(spec.get("readinessGates"))):
        errors += validate_qualified_name(
            as_str(as_dict(gate).get("conditionType")),
            child(index(child(path, "readinessGates"), i), "conditionType"),
        )
    if as_list(spec.get("schedulingGates")):
        errors += validate_scheduling_gates(
            spec.get("schedulingGates"), child(path, "schedulingGates")
        )
    if as_list(spec.get("topologySpreadConstraints")):
        errors += validate_topology_spread(
            spec.get("topologySpreadConstraints"), child(path, "topologySpreadConstraints")
        )
    if spec.get("hostUsers") is False:
        for field, name in (
            ("hostNetwork", "hostNetwork"),
            ("hostPID", "HostPID"),
            ("hostIPC", "HostIPC"),
        ):
            if spec.get(field) is True:
                errors.append(forbidden(child(path, name), "when `pod.Spec.HostUsers` is false"))
    for field in ("serviceAccountName", "nodeName", "priorityClassName"):
        value = spec.get(field)
        if value:
            errors += [
                invalid_value(child(path, field), value, p)
                for p in dns1123_subdomain_problems(as_str(value))
            ]
    deadline = spec.get("activeDeadlineSeconds")
    if deadline is not None and (not is_int(deadline) or not 1 <= deadline <= MAX_INT32):
        errors.append(
            invalid_value(
                child(path, "activeDeadlineSeconds"),
                deadline,
                f"must be between 1 and {MAX_INT32}, inclusive",
            )
        )
    for field in ("hostname", "subdomain"):
        if spec.get(field):
            errors += validate_dns1123_label(as_str(spec.get(field)), child(path, field))
    tolerations = as_list(spec.get("tolerations"))
    if tolerations and not _all_known_valid(tolerations):
        toleration_errors = validate_tolerations(tolerations, child(path, "tolerations"))
        if toleration_errors:
            errors += toleration_errors
        else:
            _remember_valid(tolerations)
    for i, alias in enumerate(as_list(spec.get("hostAliases"))):
        alias = as_dict(alias)
        alias_path = index(child(path, "hostAliases"), i)
        errors += validate_ip(alias.get("ip"), child(alias_path, "ip"))
        for j, hostname in enumerate(as_list(alias.get("hostnames"))):
            errors += validate_dns1123_subdomain(
                as_str(hostname), index(child(alias_path, "hostnames"), j)
            )
    runtime_class = spec.get("runtimeClassName")
    if runtime_class is not None:
        errors += validate_dns1123_subdomain(as_str(runtime_class), child(path, "runtimeClassName"))
    preemption = spec.get("preemptionPolicy")
    if preemption is not None:
        errors += validate_enum_required(
            preemption, child(path, "preemptionPolicy"), PREEMPTION_POLICIES
        )
    if spec.get("overhead") is not None:
        errors += validate_resource_requirements(
            {"limits": spec.get("overhead")}, child(path, "overhead"), set()
        )
    os_spec = spec.get("os")
    if isinstance(os_spec, dict):
        os_name = os_spec.get("name")
        if not os_name:
            errors.append(required(child(child(path, "os"), "name"), "cannot be empty"))
        elif os_name not in ("linux", "windows"):
            errors.append(not_supported(child(path, "os"), os_name, ["linux", "windows"]))
    return errors


# Tolerations found valid, by their fields (with each value's type, as validation tells
# 1 from True): the same few, admission's not-ready and unreachable ones above all, come
# with nearly every pod. validate_tolerations judges each toleration on its own, so one
# found valid is valid in any list. Bounded: forgotten all at once when full.
_VALID_TOLERATIONS: set[tuple[tuple[str, type, Any], ...]] = set()
_VALID_TOLERATIONS_LIMIT = 1024


def _toleration_signature(toleration: Any) -> tuple[tuple[str, type, Any], ...] | None:
    if not isinstance(toleration, dict):
        return None
    return tuple((field, type(value), value) for field, value in toleration.items())


def _all_known_valid(tolerations: list[Any]) -> bool:
    try:
        return all(_toleration_signature(t) in _VALID_TOLERATIONS for t in tolerations)
    except TypeError:  # a field holding a list or a map
        return False


def _remember_valid(tolerations: list[Any]) -> None:
    if len(_VALID_TOLERATIONS) + len(tolerations) > _VALID_TOLERATIONS_LIMIT:
        _VALID_TOLERATIONS.clear()
    for toleration in tolerations:
        signature = _toleration_signature(toleration)
        if signature is None:
            continue
        try:
            _VALID_TOLERATIONS.add(signature)
        except TypeError:
            continue


# -- helpers the scheduler, kubelet and controllers share -------------------------------


def all_containers(spec: Any) -> list[dict[str, Any]]:
    """Init, regular and ephemeral containers, in that order."""
    spec = as_dict(spec)
    return [as_dict(c) for field in CONTAINER_LISTS for c in as_list(spec.get(field))]


def is_restartable_init_container(container: Any) -> bool:
    return as_dict(container).get("restartPolicy") == "Always"
