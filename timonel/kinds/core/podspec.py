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
import re
from typing import Any

from timonel.api.errors import (
    ErrorType,
    FieldError,
    duplicate,
    forbidden,
    invalid_value,
    not_supported,
    required,
)
from timonel.api.quantity import QuantityError, canonical_quantity, canonical_resource_list
from timonel.api.validation import (
    dns1123_label_problems,
    dns1123_subdomain_problems,
    validate_annotations,
    validate_label_selector,
    validate_labels,
)
from timonel.kinds.core.common import (
    as_dict,
    as_list,
    as_str,
    child,
    config_key_problems,
    env_var_name_problems,
    http_header_problems,
    index,
    is_hugepages,
    is_int,
    is_overcommit_allowed,
    key,
    parse_resource_list,
    port_name_problems,
    quantity_or_error,
    validate_container_resource_name,
    validate_dns1123_label,
    validate_dns1123_subdomain,
    validate_ip,
    validate_label_value,
    validate_nonnegative,
    validate_port_num_or_name,
    validate_port_number,
    validate_protocol,
    validate_qualified_name,
    validate_resource_quantity,
)

DEFAULT_SCHEDULER_NAME = "default-scheduler"
DEFAULT_TERMINATION_GRACE_PERIOD = 30
TERMINATION_MESSAGE_PATH = "/dev/termination-log"
DEFAULT_FILE_MODE = 0o644  # 420: secret, configMap, downwardAPI and projected volumes
MAX_INT32 = 2**31 - 1

RESTART_POLICIES = ["Always", "OnFailure", "Never"]
DNS_POLICIES = ["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"]
PULL_POLICIES = ["Always", "IfNotPresent", "Never"]
TERMINATION_MESSAGE_POLICIES = ["File", "FallbackToLogsOnError"]
PREEMPTION_POLICIES = ["PreemptLowerPriority", "Never"]
TAINT_EFFECTS = ["NoSchedule", "PreferNoSchedule", "NoExecute"]

CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")

# Every VolumeSource member, in the order validation.go checks them: a volume names exactly one.
VOLUME_SOURCES = (
    "emptyDir", "hostPath", "gitRepo", "gcePersistentDisk", "awsElasticBlockStore", "secret", "nfs",
    "iscsi", "glusterfs", "flocker", "persistentVolumeClaim", "rbd", "cinder", "cephfs", "quobyte",
    "downwardAPI", "fc", "flexVolume", "configMap", "azureFile", "vsphereVolume",
    "photonPersistentDisk", "portworxVolume", "azureDisk", "storageos", "projected", "scaleIO",
    "csi", "ephemeral", "image",
)  # fmt: skip

# The field names validation.go reports for each source (some differ from the JSON names).
_SOURCE_ERROR_NAMES = {"cephfs": "cephFS", "downwardAPI": "downwarAPI"}


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


# ======================================================================================
# validation
# ======================================================================================


def not_found(path: str, value: Any, detail: str = "") -> FieldError:
    return FieldError(ErrorType.NOT_FOUND, path, detail, value)


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
    security = as_dict(spec.get("securityContext"))
    host_users = security.get("hostUsers") is not False and spec.get("hostUsers") is not False
    volumes, volume_errors = validate_volumes(
        spec.get("volumes"), child(path, "volumes"), pod_name=pod_name, is_pod=is_pod
    )
    errors += volume_errors
    claim_names = {as_str(as_dict(c).get("name")) for c in as_list(spec.get("resourceClaims"))} - {
        ""
    }
    errors += _validate_resource_claims(spec.get("resourceClaims"), child(path, "resourceClaims"))
    restart_policy = spec.get("restartPolicy")
    errors += _validate_containers(
        spec, volumes, claim_names, grace_period, path, restart_policy, host_users
    )
    errors += _validate_init_containers(
        spec, volumes, claim_names, grace_period, path, restart_policy, host_users
    )
    errors += _validate_ephemeral_containers(
        spec, volumes, claim_names, path, restart_policy, host_users
    )
    errors += _validate_host_network_ports(spec, path, is_pod=is_pod)
    errors += _validate_enum_required(
        restart_policy, child(path, "restartPolicy"), RESTART_POLICIES
    )
    errors += _validate_enum_required(spec.get("dnsPolicy"), child(path, "dnsPolicy"), DNS_POLICIES)
    errors += validate_labels(spec.get("nodeSelector"), child(path, "nodeSelector"))
    errors += _validate_pod_security_context(spec, path)
    errors += _validate_image_pull_secrets(
        spec.get("imagePullSecrets"), child(path, "imagePullSecrets")
    )
    errors += _validate_affinity(spec.get("affinity"), child(path, "affinity"))
    errors += _validate_dns_config(
        spec.get("dnsConfig"), spec.get("dnsPolicy"), child(path, "dnsConfig")
    )
    for i, gate in enumerate(as_list(spec.get("readinessGates"))):
        errors += validate_qualified_name(
            as_str(as_dict(gate).get("conditionType")),
            child(index(child(path, "readinessGates"), i), "conditionType"),
        )
    errors += _validate_scheduling_gates(
        spec.get("schedulingGates"), child(path, "schedulingGates")
    )
    errors += _validate_topology_spread(
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
    errors += validate_tolerations(spec.get("tolerations"), child(path, "tolerations"))
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
        errors += _validate_enum_required(
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


def _validate_enum_required(value: Any, path: str, supported: list[str]) -> list[FieldError]:
    if value in (None, ""):
        return [required(path)]
    if value not in supported:
        return [not_supported(path, value, supported)]
    return []


# -- volumes ---------------------------------------------------------------------------


def validate_volumes(
    volumes: Any,
    path: str,
    *,
    pod_name: str = "",
    is_pod: bool = False,
) -> tuple[dict[str, dict[str, Any]], list[FieldError]]:
    """ValidateVolumes: the valid volumes by name (only those without errors, as mounts
    can reference only those), and the errors."""
    errors: list[FieldError] = []
    valid: dict[str, dict[str, Any]] = {}
    seen: set[str] = set()
    volumes = as_list(volumes)
    created_claims = {
        f"{pod_name}-{as_str(as_dict(v).get('name'))}"
        for v in volumes
        if pod_name and as_dict(v).get("ephemeral") is not None
    }
    for i, volume in enumerate(volumes):
        volume = as_dict(volume)
        volume_path = index(path, i)
        name = as_str(volume.get("name"))
        volume_errors = _validate_volume_source(
            volume, volume_path, name, pod_name=pod_name, is_pod=is_pod
        )
        if not name:
            volume_errors.append(required(child(volume_path, "name")))
        else:
            volume_errors += validate_dns1123_label(name, child(volume_path, "name"))
        if name in seen:
            volume_errors.append(duplicate(child(volume_path, "name"), name))
        if volume_errors:
            errors += volume_errors
        else:
            seen.add(name)
            valid[name] = volume
        claim = as_dict(volume.get("persistentVolumeClaim"))
        if claim and claim.get("claimName") in created_claims:
            errors.append(
                invalid_value(
                    child(child(volume_path, "persistentVolumeClaim"), "claimName"),
                    claim.get("claimName"),
                    "must not reference a PVC that gets created for an ephemeral volume",
                )
            )
    return valid, errors


def _validate_volume_source(
    volume: dict[str, Any],
    path: str,
    name: str,
    *,
    pod_name: str,
    is_pod: bool,
) -> list[FieldError]:
    errors: list[FieldError] = []
    count = 0
    for source in VOLUME_SOURCES:
        value = volume.get(source)
        if value is None:
            continue
        if count > 0:
            errors.append(
                forbidden(
                    child(path, _SOURCE_ERROR_NAMES.get(source, source)),
                    "may not specify more than 1 volume type",
                )
            )
            continue
        count += 1
        errors += _validate_one_source(
            source, as_dict(value), child(path, source), name, pod_name=pod_name, is_pod=is_pod
        )
    if count == 0:
        errors.append(required(path, "must specify a volume type"))
    return errors


def _validate_one_source(
    source: str,
    value: dict[str, Any],
    path: str,
    volume_name: str,
    *,
    pod_name: str,
    is_pod: bool,
) -> list[FieldError]:
    errors: list[FieldError] = []
    if source == "emptyDir":
        limit = value.get("sizeLimit")
        if limit is not None:
            quantity = quantity_or_error(limit, child(path, "sizeLimit"), errors)
            if quantity is not None and quantity.sign() < 0:
                errors.append(
                    forbidden(
                        child(path, "sizeLimit"),
                        "SizeLimit field must be a valid resource quantity",
                    )
                )
    elif source == "hostPath":
        host_path = as_str(value.get("path"))
        if not host_path:
            return [required(child(path, "path"))]
        errors += _validate_no_backsteps(host_path, child(path, "path"))
        kind = value.get("type")
        if kind is not None and kind not in HOST_PATH_TYPES:
            errors.append(not_supported(child(path, "type"), kind, HOST_PATH_TYPES))
    elif source == "secret":
        if not value.get("secretName"):
            errors.append(required(child(path, "secretName")))
        errors += _validate_mode(value.get("defaultMode"), child(path, "defaultMode"))
        for i, item in enumerate(as_list(value.get("items"))):
            errors += _validate_key_to_path(as_dict(item), index(child(path, "items"), i))
    elif source == "configMap":
        if not value.get("name"):
            errors.append(required(child(path, "name")))
        errors += _validate_mode(value.get("defaultMode"), child(path, "defaultMode"))
        for i, item in enumerate(as_list(value.get("items"))):
            errors += _validate_key_to_path(as_dict(item), index(child(path, "items"), i))
    elif source == "persistentVolumeClaim":
        if not value.get("claimName"):
            errors.append(required(child(path, "claimName")))
    elif source == "nfs":
        if not value.get("server"):
            errors.append(required(child(path, "server")))
        nfs_path = as_str(value.get("path"))
        if not nfs_path:
            errors.append(required(child(path, "path")))
        if not nfs_path.startswith("/"):
            errors.append(invalid_value(child(path, "path"), nfs_path, "must be an absolute path"))
    elif source == "downwardAPI":
        errors += _validate_mode(value.get("defaultMode"), child(path, "defaultMode"))
        for item in as_list(value.get("items")):
            errors += _validate_downward_api_file(as_dict(item), path)
    elif source == "projected":
        errors += _validate_mode(value.get("defaultMode"), child(path, "defaultMode"))
        errors += _validate_projections(value, path)
    elif source == "gitRepo":
        if not value.get("repository"):
            errors.append(required(child(path, "repository")))
        errors += _validate_local_descending_path(
            as_str(value.get("directory")), child(path, "directory")
        )
    elif source == "csi":
        driver = as_str(value.get("driver"))
        if not driver:
            errors.append(required(child(path, "driver")))
        if len(driver) > 63:
            errors.append(
                FieldError(
                    ErrorType.TOO_LONG, child(path, "driver"), "may not be more than 63 bytes"
                )
            )
        errors += [
            invalid_value(child(path, "driver"), driver, p)
            for p in dns1123_subdomain_problems(driver.lower())
        ]
    elif source == "ephemeral":
        template = value.get("volumeClaimTemplate")
        if template is None:
            errors.append(required(child(path, "volumeClaimTemplate")))
        else:
            errors += validate_claim_template(as_dict(template), child(path, "volumeClaimTemplate"))
            if pod_name and volume_name:
                claim_name = f"{pod_name}-{volume_name}"
                for problem in dns1123_subdomain_problems(claim_name):
                    errors.append(
                        invalid_value(
                            child(path.rsplit(".", 1)[0], "name"),
                            volume_name,
                            f'PVC name "{claim_name}": {problem}',
                        )
                    )
    elif source == "image":
        if is_pod and not value.get("reference"):
            errors.append(required(child(path, "reference")))
        errors += _validate_enum_required(
            value.get("pullPolicy"), child(path, "pullPolicy"), PULL_POLICIES
        )
    return errors


HOST_PATH_TYPES = [
    "",
    "BlockDevice",
    "CharDevice",
    "Directory",
    "DirectoryOrCreate",
    "File",
    "FileOrCreate",
    "Socket",
]
_FILE_MODE_ERROR = "must be a number between 0 and 0777 (octal), both inclusive"


def _validate_mode(mode: Any, path: str) -> list[FieldError]:
    if mode is not None and (not is_int(mode) or not 0 <= mode <= 0o777):
        return [invalid_value(path, mode, _FILE_MODE_ERROR)]
    return []


def _validate_key_to_path(item: dict[str, Any], path: str) -> list[FieldError]:
    errors: list[FieldError] = []
    if not item.get("key"):
        errors.append(required(child(path, "key")))
    target = as_str(item.get("path"))
    if not target:
        errors.append(required(child(path, "path")))
    errors += _validate_local_non_reserved_path(target, child(path, "path"))
    errors += _validate_mode(item.get("mode"), child(path, "mode"))
    return errors


def _validate_no_backsteps(target: str, path: str) -> list[FieldError]:
    if ".." in target.split("/"):
        return [invalid_value(path, target, "must not contain '..'")]
    return []


def _validate_local_descending_path(target: str, path: str) -> list[FieldError]:
    errors: list[FieldError] = []
    if target.startswith("/"):
        errors.append(invalid_value(path, target, "must be a relative path"))
    errors += _validate_no_backsteps(target, path)
    return errors


def _validate_local_non_reserved_path(target: str, path: str) -> list[FieldError]:
    errors = _validate_local_descending_path(target, path)
    if target.startswith("..") and not target.startswith("../"):
        errors.append(invalid_value(path, target, "must not start with '..'"))
    return errors


_VOLUME_FIELD_PATHS = [
    "metadata.annotations",
    "metadata.labels",
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
]
_ENV_FIELD_PATHS = [
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.serviceAccountName",
    "status.hostIP",
    "status.hostIPs",
    "status.podIP",
    "status.podIPs",
]
_RESOURCE_FIELD_PATHS = [
    "limits.cpu",
    "limits.ephemeral-storage",
    "limits.memory",
    "requests.cpu",
    "requests.ephemeral-storage",
    "requests.memory",
]


def _validate_downward_api_file(item: dict[str, Any], path: str) -> list[FieldError]:
    errors: list[FieldError] = []
    target = as_str(item.get("path"))
    if not target:
        errors.append(required(child(path, "path")))
    errors += _validate_local_non_reserved_path(target, child(path, "path"))
    if item.get("fieldRef") is not None:
        errors += _validate_object_field_selector(
            as_dict(item.get("fieldRef")), _VOLUME_FIELD_PATHS, child(path, "fieldRef")
        )
        if item.get("resourceFieldRef") is not None:
            errors.append(
                invalid_value(
                    path,
                    "resource",
                    "fieldRef and resourceFieldRef can not be specified simultaneously",
                )
            )
    elif item.get("resourceFieldRef") is not None:
        errors += _validate_resource_field_selector(
            as_dict(item.get("resourceFieldRef")), child(path, "resourceFieldRef"), volume=True
        )
    else:
        errors.append(required(path, "one of fieldRef and resourceFieldRef is required"))
    errors += _validate_mode(item.get("mode"), child(path, "mode"))
    return errors


def _validate_projections(projected: dict[str, Any], path: str) -> list[FieldError]:
    errors: list[FieldError] = []
    paths: set[str] = set()

    def note_path(target: str, value: Any) -> None:
        if target in paths:
            errors.append(invalid_value(path, value, "conflicting duplicate paths"))
        paths.add(target)

    for i, source in enumerate(as_list(projected.get("sources"))):
        source = as_dict(source)
        source_path = index(child(path, "sources"), i)
        count = 0
        for kind in ("secret", "configMap"):
            if source.get(kind) is None:
                continue
            count += 1
            projection = as_dict(source.get(kind))
            if not projection.get("name"):
                errors.append(required(child(child(source_path, kind), "name")))
            for j, item in enumerate(as_list(projection.get("items"))):
                item = as_dict(item)
                errors += _validate_key_to_path(
                    item, index(child(child(source_path, kind), "items"), j)
                )
                if item.get("path"):
                    note_path(as_str(item.get("path")), projection.get("name", ""))
        if source.get("downwardAPI") is not None:
            count += 1
            for item in as_list(as_dict(source.get("downwardAPI")).get("items")):
                item = as_dict(item)
                errors += _validate_downward_api_file(item, child(source_path, "downwardAPI"))
                if item.get("path"):
                    note_path(as_str(item.get("path")), item.get("path"))
        if source.get("serviceAccountToken") is not None:
            count += 1
            token = as_dict(source.get("serviceAccountToken"))
            token_path = child(source_path, "serviceAccountToken")
            seconds = token.get("expirationSeconds")
            if is_int(seconds) and seconds < 600:
                errors.append(
                    invalid_value(
                        child(token_path, "expirationSeconds"),
                        seconds,
                        "may not specify a duration less than 10 minutes",
                    )
                )
            if is_int(seconds) and seconds > 1 << 32:
                errors.append(
                    invalid_value(
                        child(token_path, "expirationSeconds"),
                        seconds,
                        "may not specify a duration larger than 2^32 seconds",
                    )
                )
            if not token.get("path"):
                errors.append(required(child(path, "path")))
            else:
                errors += _validate_local_non_reserved_path(
                    as_str(token.get("path")), child(path, "path")
                )
        if source.get("clusterTrustBundle") is not None:
            count += 1
            bundle = as_dict(source.get("clusterTrustBundle"))
            bundle_path = child(source_path, "clusterTrustBundle")
            if not bundle.get("path"):
                errors.append(required(child(bundle_path, "path")))
            errors += _validate_local_non_reserved_path(
                as_str(bundle.get("path")), child(bundle_path, "path")
            )
        if count > 1:
            errors.append(
                forbidden(source_path, "may not specify more than 1 volume type per source")
            )
    return errors


def validate_claim_template(template: dict[str, Any], path: str) -> list[FieldError]:
    """ValidatePersistentVolumeClaimTemplate: labels and annotations only, then the spec."""
    meta = as_dict(template.get("metadata"))
    meta_path = child(path, "metadata")
    errors = validate_annotations(meta.get("annotations"), child(meta_path, "annotations"))
    errors += validate_labels(meta.get("labels"), child(meta_path, "labels"))
    for field, value in meta.items():
        if field not in ("labels", "annotations") and value not in (None, "", {}, []):
            errors.append(forbidden(child(meta_path, field), "cannot be set"))
    errors += validate_claim_spec(as_dict(template.get("spec")), child(path, "spec"))
    return errors


ACCESS_MODES = ["ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"]
VOLUME_MODES = ["Block", "Filesystem"]


def validate_claim_spec(spec: dict[str, Any], path: str) -> list[FieldError]:
    """ValidatePersistentVolumeClaimSpec."""
    errors: list[FieldError] = []
    modes = as_list(spec.get("accessModes"))
    if not modes:
        errors.append(required(child(path, "accessModes"), "at least 1 access mode is required"))
    if spec.get("selector") is not None:
        errors += validate_label_selector(spec.get("selector"), child(path, "selector"))
    once_pod = other = False
    for mode in modes:
        if mode not in ACCESS_MODES:
            errors.append(not_supported(child(path, "accessModes"), mode, ACCESS_MODES))
        elif mode == "ReadWriteOncePod":
            once_pod = True
        else:
            other = True
    if once_pod and other:
        errors.append(
            forbidden(
                child(path, "accessModes"), "may not use ReadWriteOncePod with other access modes"
            )
        )
    requests = as_dict(as_dict(spec.get("resources")).get("requests"))
    storage_path = key(child(path, "resources"), "storage")
    if "storage" not in requests:
        errors.append(required(storage_path))
    else:
        storage = quantity_or_error(requests["storage"], storage_path, errors)
        if storage is not None:
            if storage.sign() <= 0:
                errors.append(
                    invalid_value(storage_path, str(storage), "must be greater than zero")
                )
            else:
                errors += validate_resource_quantity("storage", storage, storage_path)
    class_name = spec.get("storageClassName")
    if class_name:
        errors += [
            invalid_value(child(path, "storageClassName"), class_name, p)
            for p in dns1123_subdomain_problems(as_str(class_name))
        ]
    mode = spec.get("volumeMode")
    if mode is not None and mode not in VOLUME_MODES:
        errors.append(not_supported(child(path, "volumeMode"), mode, VOLUME_MODES))
    for field in ("dataSource", "dataSourceRef"):
        source = spec.get(field)
        if source is None:
            continue
        source = as_dict(source)
        source_path = child(path, field)
        if not source.get("name"):
            errors.append(required(child(source_path, "name")))
        if not source.get("kind"):
            errors.append(required(child(source_path, "kind")))
        group = as_str(source.get("apiGroup"))
        if not group and source.get("kind") != "PersistentVolumeClaim":
            errors.append(
                invalid_value(
                    source_path,
                    source.get("kind", ""),
                    "must be 'PersistentVolumeClaim' when referencing the default apiGroup",
                )
            )
        if group:
            errors += [
                invalid_value(child(source_path, "apiGroup"), group, p)
                for p in dns1123_subdomain_problems(group)
            ]
    attributes_class = spec.get("volumeAttributesClassName")
    if attributes_class:
        errors += [
            invalid_value(child(path, "volumeAttributesClassName"), attributes_class, p)
            for p in dns1123_subdomain_problems(as_str(attributes_class))
        ]
    return errors


# -- containers ------------------------------------------------------------------------


def _validate_containers(
    spec: dict[str, Any],
    volumes: dict[str, dict[str, Any]],
    claims: set[str],
    grace_period: Any,
    path: str,
    restart_policy: Any,
    host_users: bool,
) -> list[FieldError]:
    containers = as_list(spec.get("containers"))
    list_path = child(path, "containers")
    if not containers:
        return [required(list_path)]
    errors: list[FieldError] = []
    names: set[str] = set()
    for i, container in enumerate(containers):
        container = as_dict(container)
        container_path = index(list_path, i)
        errors += _validate_container_common(
            container, volumes, claims, container_path, restart_policy, host_users
        )
        name = as_str(container.get("name"))
        if name in names:
            errors.append(duplicate(child(container_path, "name"), name))
        else:
            names.add(name)
        if container.get("lifecycle") is not None:
            errors += _validate_lifecycle(
                as_dict(container.get("lifecycle")),
                grace_period,
                child(container_path, "lifecycle"),
            )
        errors += _validate_probes(container, grace_period, container_path)
        if container.get("restartPolicy") is not None:
            errors.append(
                forbidden(
                    child(container_path, "restartPolicy"), "may not be set for non-init containers"
                )
            )
    errors += _host_port_conflicts(containers, list_path)
    return errors


def _validate_init_containers(
    spec: dict[str, Any],
    volumes: dict[str, dict[str, Any]],
    claims: set[str],
    grace_period: Any,
    path: str,
    restart_policy: Any,
    host_users: bool,
) -> list[FieldError]:
    errors: list[FieldError] = []
    list_path = child(path, "initContainers")
    names = {as_str(as_dict(c).get("name")) for c in as_list(spec.get("containers"))}
    for i, container in enumerate(as_list(spec.get("initContainers"))):
        container = as_dict(container)
        container_path = index(list_path, i)
        errors += _validate_container_common(
            container, volumes, claims, container_path, restart_policy, host_users
        )
        sidecar = False
        own_policy = container.get("restartPolicy")
        if own_policy is not None:
            if own_policy != "Always":
                errors.append(
                    not_supported(child(container_path, "restartPolicy"), own_policy, ["Always"])
                )
            sidecar = own_policy == "Always"
        name = as_str(container.get("name"))
        if name in names:
            errors.append(duplicate(child(container_path, "name"), name))
        elif name:
            names.add(name)
        errors += _host_port_conflicts([container], list_path)
        if sidecar:
            if container.get("lifecycle") is not None:
                errors += _validate_lifecycle(
                    as_dict(container.get("lifecycle")),
                    grace_period,
                    child(container_path, "lifecycle"),
                )
            errors += _validate_probes(container, grace_period, container_path)
        else:
            for field in ("lifecycle", "livenessProbe", "readinessProbe", "startupProbe"):
                if container.get(field) is not None:
                    errors.append(
                        forbidden(
                            child(container_path, field),
                            "may not be set for init containers without restartPolicy=Always",
                        )
                    )
        if as_list(container.get("resizePolicy")):
            errors.append(
                invalid_value(
                    child(container_path, "resizePolicy"),
                    container.get("resizePolicy"),
                    "must not be set for init containers",
                )
            )
    return errors


_EPHEMERAL_ALLOWED = frozenset(
    {
        "name",
        "image",
        "command",
        "args",
        "workingDir",
        "envFrom",
        "env",
        "volumeMounts",
        "volumeDevices",
        "terminationMessagePath",
        "terminationMessagePolicy",
        "imagePullPolicy",
        "securityContext",
        "stdin",
        "stdinOnce",
        "tty",
        "targetContainerName",
    }
)


def _validate_ephemeral_containers(
    spec: dict[str, Any],
    volumes: dict[str, dict[str, Any]],
    claims: set[str],
    path: str,
    restart_policy: Any,
    host_users: bool,
) -> list[FieldError]:
    containers = as_list(spec.get("ephemeralContainers"))
    if not containers:
        return []
    errors: list[FieldError] = []
    list_path = child(path, "ephemeralContainers")
    others = {
        as_str(as_dict(c).get("name"))
        for field in ("containers", "initContainers")
        for c in as_list(spec.get(field))
    }
    names = set(others)
    for i, container in enumerate(containers):
        container = as_dict(container)
        container_path = index(list_path, i)
        errors += _validate_container_common(
            container, volumes, claims, container_path, restart_policy, host_users
        )
        errors += _validate_image_whitespace(container, container_path)
        name = as_str(container.get("name"))
        if name in names:
            errors.append(duplicate(child(container_path, "name"), name))
        else:
            names.add(name)
        target = container.get("targetContainerName")
        if target and target not in others:
            errors.append(not_found(child(container_path, "targetContainerName"), target))
        for field, value in container.items():
            if field in _EPHEMERAL_ALLOWED or value in (None, "", {}, [], False, 0):
                continue
            errors.append(
                forbidden(child(container_path, field), "cannot be set for an Ephemeral Container")
            )
        for j, mount in enumerate(as_list(container.get("volumeMounts"))):
            for field in ("subPath", "subPathExpr"):
                if as_dict(mount).get(field):
                    errors.append(
                        forbidden(
                            child(index(child(container_path, "volumeMounts"), j), field),
                            "cannot be set for an Ephemeral Container",
                        )
                    )
    return errors


def _validate_image_whitespace(container: dict[str, Any], path: str) -> list[FieldError]:
    image = as_str(container.get("image"))
    if image != image.strip():
        return [
            invalid_value(
                child(path, "image"), image, "must not have leading or trailing whitespace"
            )
        ]
    return []


def validate_containers_for_pod(spec: dict[str, Any], path: str) -> list[FieldError]:
    """validateContainersOnlyForPod: images of a Pod's containers carry no surrounding space."""
    errors: list[FieldError] = []
    for field in ("containers", "initContainers"):
        for i, container in enumerate(as_list(spec.get(field))):
            errors += _validate_image_whitespace(as_dict(container), index(child(path, field), i))
    return errors


def _validate_container_common(
    container: dict[str, Any],
    volumes: dict[str, dict[str, Any]],
    claims: set[str],
    path: str,
    restart_policy: Any,
    host_users: bool,
) -> list[FieldError]:
    errors: list[FieldError] = []
    name = as_str(container.get("name"))
    if not name:
        errors.append(required(child(path, "name")))
    else:
        errors += validate_dns1123_label(name, child(path, "name"))
    if not container.get("image"):
        errors.append(required(child(path, "image")))
    errors += _validate_enum_required(
        container.get("terminationMessagePolicy"),
        child(path, "terminationMessagePolicy"),
        TERMINATION_MESSAGE_POLICIES,
    )
    mounts = {
        as_str(as_dict(m).get("name")): as_str(as_dict(m).get("mountPath"))
        for m in as_list(container.get("volumeMounts"))
    }
    devices = {
        as_str(as_dict(d).get("name")): as_str(as_dict(d).get("devicePath"))
        for d in as_list(container.get("volumeDevices"))
    }
    errors += _validate_container_ports(container.get("ports"), child(path, "ports"))
    errors += _validate_env(container.get("env"), child(path, "env"))
    errors += _validate_env_from(container.get("envFrom"), child(path, "envFrom"))
    errors += _validate_volume_mounts(container, devices, volumes, child(path, "volumeMounts"))
    errors += _validate_volume_devices(
        container.get("volumeDevices"), mounts, volumes, child(path, "volumeDevices")
    )
    errors += _validate_enum_required(
        container.get("imagePullPolicy"), child(path, "imagePullPolicy"), PULL_POLICIES
    )
    errors += validate_resource_requirements(
        container.get("resources"), child(path, "resources"), claims
    )
    errors += _validate_resize_policy(
        container.get("resizePolicy"), child(path, "resizePolicy"), restart_policy
    )
    errors += _validate_security_context(
        container.get("securityContext"), child(path, "securityContext"), host_users
    )
    return errors


def _validate_container_ports(ports: Any, path: str) -> list[FieldError]:
    errors: list[FieldError] = []
    names: set[str] = set()
    for i, port in enumerate(as_list(ports)):
        port = as_dict(port)
        port_path = index(path, i)
        name = port.get("name")
        if name:
            problems = port_name_problems(as_str(name))
            if problems:
                errors += [invalid_value(child(port_path, "name"), name, p) for p in problems]
            elif name in names:
                errors.append(duplicate(child(port_path, "name"), name))
            else:
                names.add(as_str(name))
        container_port = port.get("containerPort")
        if not container_port:
            errors.append(required(child(port_path, "containerPort")))
        else:
            errors += validate_port_number(container_port, child(port_path, "containerPort"))
        if port.get("hostPort"):
            errors += validate_port_number(port.get("hostPort"), child(port_path, "hostPort"))
        errors += validate_protocol(port.get("protocol"), child(port_path, "protocol"))
    return errors


def _host_port_conflicts(containers: list[Any], path: str) -> list[FieldError]:
    errors: list[FieldError] = []
    seen: set[str] = set()
    for i, container in enumerate(containers):
        for j, port in enumerate(as_list(as_dict(container).get("ports"))):
            port = as_dict(port)
            host_port = port.get("hostPort")
            if not host_port:
                continue
            signature = f"{port.get('protocol', '')}/{port.get('hostIP', '')}/{host_port}"
            if signature in seen:
                errors.append(
                    duplicate(
                        child(index(child(index(path, i), "ports"), j), "hostPort"), signature
                    )
                )
            seen.add(signature)
    return errors


def _validate_env(env: Any, path: str) -> list[FieldError]:
    errors: list[FieldError] = []
    for i, variable in enumerate(as_list(env)):
        variable = as_dict(variable)
        variable_path = index(path, i)
        name = as_str(variable.get("name"))
        if not name:
            errors.append(required(child(variable_path, "name")))
        else:
            errors += [
                invalid_value(child(variable_path, "name"), name, p)
                for p in env_var_name_problems(name)
            ]
        errors += _validate_env_value_from(variable, child(variable_path, "valueFrom"))
    return errors


def _validate_env_value_from(variable: dict[str, Any], path: str) -> list[FieldError]:
    value_from = variable.get("valueFrom")
    if value_from is None:
        return []
    value_from = as_dict(value_from)
    errors: list[FieldError] = []
    count = 0
    if value_from.get("fieldRef") is not None:
        count += 1
        errors += _validate_object_field_selector(
            as_dict(value_from.get("fieldRef")), _ENV_FIELD_PATHS, child(path, "fieldRef")
        )
    if value_from.get("resourceFieldRef") is not None:
        count += 1
        errors += _validate_resource_field_selector(
            as_dict(value_from.get("resourceFieldRef")),
            child(path, "resourceFieldRef"),
            volume=False,
        )
    for field in ("configMapKeyRef", "secretKeyRef"):
        if value_from.get(field) is not None:
            count += 1
            errors += _validate_key_selector(as_dict(value_from.get(field)), child(path, field))
    if count == 0:
        errors.append(
            invalid_value(
                path,
                "",
                "must specify one of: `fieldRef`, `resourceFieldRef`, "
                "`configMapKeyRef` or `secretKeyRef`",
            )
        )
    elif variable.get("value"):
        errors.append(invalid_value(path, "", "may not be specified when `value` is not empty"))
    elif count > 1:
        errors.append(
            invalid_value(path, "", "may not have more than one field specified at a time")
        )
    return errors


_SUBSCRIPTED = re.compile(r"^(metadata\.(?:annotations|labels))\['(.*)'\]$")


def _validate_object_field_selector(
    selector: dict[str, Any], allowed: list[str], path: str
) -> list[FieldError]:
    if not selector.get("apiVersion"):
        return [required(child(path, "apiVersion"))]
    field_path = as_str(selector.get("fieldPath"))
    if not field_path:
        return [required(child(path, "fieldPath"))]
    if selector.get("apiVersion") != "v1":
        return [
            invalid_value(
                child(path, "fieldPath"),
                field_path,
                f"error converting fieldPath: unsupported version: {selector.get('apiVersion')}",
            )
        ]
    subscripted = _SUBSCRIPTED.match(field_path)
    if subscripted:
        field, subscript = subscripted.groups()
        return validate_qualified_name(
            subscript.lower() if field.endswith("annotations") else subscript, path
        )
    if "[" in field_path:
        return [invalid_value(path, field_path.split("[", 1)[0], "does not support subscript")]
    if field_path not in allowed:
        return [not_supported(child(path, "fieldPath"), field_path, allowed)]
    return []


def _validate_resource_field_selector(
    selector: dict[str, Any], path: str, *, volume: bool
) -> list[FieldError]:
    errors: list[FieldError] = []
    resource = as_str(selector.get("resource"))
    if volume and not selector.get("containerName"):
        errors.append(required(child(path, "containerName")))
    elif not resource:
        errors.append(required(child(path, "resource")))
    elif resource not in _RESOURCE_FIELD_PATHS and not resource.startswith(
        ("requests.hugepages-", "limits.hugepages-")
    ):
        errors.append(not_supported(child(path, "resource"), resource, _RESOURCE_FIELD_PATHS))
    divisor = selector.get("divisor")
    if divisor is not None:
        quantity = quantity_or_error(divisor, child(path, "divisor"), errors)
        if quantity is not None and not quantity.is_zero():
            text = str(quantity)
            if resource in ("limits.cpu", "requests.cpu") and text not in ("1m", "1"):
                errors.append(
                    invalid_value(
                        child(path, "divisor"),
                        resource,
                        "only divisor's values 1m and 1 are supported with the cpu resource",
                    )
                )
            elif resource in ("limits.memory", "requests.memory") and text not in _BYTE_DIVISORS:
                errors.append(
                    invalid_value(
                        child(path, "divisor"),
                        resource,
                        "only divisor's values 1, 1k, 1M, 1G, 1T, 1P, 1E, 1Ki, 1Mi, 1Gi, 1Ti, "
                        "1Pi, 1Ei are supported with the memory resource",
                    )
                )
    return errors


_BYTE_DIVISORS = frozenset(
    {"1", "1k", "1M", "1G", "1T", "1P", "1E", "1Ki", "1Mi", "1Gi", "1Ti", "1Pi", "1Ei"}
)


def _validate_key_selector(selector: dict[str, Any], path: str) -> list[FieldError]:
    errors = [
        invalid_value(child(path, "name"), selector.get("name", ""), p)
        for p in dns1123_subdomain_problems(as_str(selector.get("name")))
    ]
    selector_key = as_str(selector.get("key"))
    if not selector_key:
        errors.append(required(child(path, "key")))
    else:
        errors += [
            invalid_value(child(path, "key"), selector_key, p)
            for p in config_key_problems(selector_key)
        ]
    return errors


def _validate_env_from(sources: Any, path: str) -> list[FieldError]:
    errors: list[FieldError] = []
    for i, source in enumerate(as_list(sources)):
        source = as_dict(source)
        source_path = index(path, i)
        prefix = as_str(source.get("prefix"))
        if prefix:
            errors += [
                invalid_value(child(source_path, "prefix"), prefix, p)
                for p in env_var_name_problems(prefix)
            ]
        count = 0
        for field in ("configMapRef", "secretRef"):
            if source.get(field) is None:
                continue
            count += 1
            name = as_str(as_dict(source.get(field)).get("name"))
            if not name:
                errors.append(required(child(child(source_path, field), "name")))
            else:
                errors += [
                    invalid_value(child(child(source_path, field), "name"), name, p)
                    for p in _name_prefix_problems(name)
                ]
        if count == 0:
            errors.append(
                invalid_value(path, "", "must specify one of: `configMapRef` or `secretRef`")
            )
        elif count > 1:
            errors.append(
                invalid_value(path, "", "may not have more than one field specified at a time")
            )
    return errors


def _name_prefix_problems(name: str) -> list[str]:
    """NameIsDNSSubdomain with prefix=true: a trailing '-' is allowed."""
    return dns1123_subdomain_problems(name[:-1] if name.endswith("-") else name)


MOUNT_PROPAGATIONS = ["Bidirectional", "HostToContainer", "None"]


def _validate_volume_mounts(
    container: dict[str, Any],
    devices: dict[str, str],
    volumes: dict[str, dict[str, Any]],
    path: str,
) -> list[FieldError]:
    errors: list[FieldError] = []
    mount_points: set[str] = set()
    for i, mount in enumerate(as_list(container.get("volumeMounts"))):
        mount = as_dict(mount)
        mount_path_str = as_str(mount.get("mountPath"))
        name = as_str(mount.get("name"))
        mount_path = index(path, i)
        if not name:
            errors.append(required(child(mount_path, "name")))
        if name not in volumes:
            errors.append(not_found(child(mount_path, "name"), name))
        if not mount_path_str:
            errors.append(required(child(mount_path, "mountPath")))
        if mount_path_str in mount_points:
            errors.append(
                invalid_value(child(mount_path, "mountPath"), mount_path_str, "must be unique")
            )
        mount_points.add(mount_path_str)
        if name in devices:
            errors.append(
                invalid_value(
                    child(mount_path, "name"), name, "must not already exist in volumeDevices"
                )
            )
        if mount_path_str in devices.values():
            errors.append(
                invalid_value(
                    child(mount_path, "mountPath"),
                    mount_path_str,
                    "must not already exist as a path in volumeDevices",
                )
            )
        if name in volumes and volumes[name].get("image") is not None:
            for field in ("subPath", "subPathExpr"):
                if mount.get(field):
                    errors.append(
                        invalid_value(
                            child(mount_path, field),
                            mount.get(field),
                            "not allowed in image volume sources",
                        )
                    )
        if mount.get("subPath"):
            errors += _validate_local_descending_path(
                as_str(mount.get("subPath")), child(path, "subPath")
            )
        if mount.get("subPathExpr"):
            if mount.get("subPath"):
                errors.append(
                    invalid_value(
                        child(mount_path, "subPathExpr"),
                        mount.get("subPathExpr"),
                        "subPathExpr and subPath are mutually exclusive",
                    )
                )
            errors += _validate_local_descending_path(
                as_str(mount.get("subPathExpr")), child(path, "subPathExpr")
            )
        propagation = mount.get("mountPropagation")
        if propagation is not None:
            propagation_path = child(path, "mountPropagation")
            if propagation not in MOUNT_PROPAGATIONS:
                errors.append(not_supported(propagation_path, propagation, MOUNT_PROPAGATIONS))
            privileged = as_dict(container.get("securityContext")).get("privileged") is True
            if propagation == "Bidirectional" and not privileged:
                errors.append(
                    forbidden(
                        propagation_path,
                        "Bidirectional mount propagation is available only to privileged containers",
                    )
                )
        recursive = mount.get("recursiveReadOnly")
        if recursive is not None and recursive != "Disabled":
            recursive_path = child(path, "recursiveReadOnly")
            if recursive in ("Enabled", "IfPossible"):
                if mount.get("readOnly") is not True:
                    errors.append(
                        forbidden(recursive_path, "may only be specified when readOnly is true")
                    )
                if propagation not in (None, "None"):
                    errors.append(
                        forbidden(
                            recursive_path,
                            "may only be specified when mountPropagation is None or not specified",
                        )
                    )
            else:
                errors.append(
                    not_supported(recursive_path, recursive, ["Disabled", "Enabled", "IfPossible"])
                )
    return errors


def _validate_volume_devices(
    devices: Any,
    mounts: dict[str, str],
    volumes: dict[str, dict[str, Any]],
    path: str,
) -> list[FieldError]:
    errors: list[FieldError] = []
    device_paths: set[str] = set()
    device_names: set[str] = set()
    for i, device in enumerate(as_list(devices)):
        device = as_dict(device)
        device_path = index(path, i)
        name = as_str(device.get("name"))
        target = as_str(device.get("devicePath"))
        volume = volumes.get(name)
        if not name:
            errors.append(required(child(device_path, "name")))
        if name in device_names:
            errors.append(invalid_value(child(device_path, "name"), name, "must be unique"))
        if (
            volume is not None
            and volume.get("persistentVolumeClaim") is None
            and volume.get("ephemeral") is None
        ):
            errors.append(
                invalid_value(
                    child(device_path, "name"),
                    name,
                    "can only use volume source type of PersistentVolumeClaim or Ephemeral for block mode",
                )
            )
        if volume is None:
            errors.append(not_found(child(device_path, "name"), name))
        if not target:
            errors.append(required(child(device_path, "devicePath")))
        if target in device_paths:
            errors.append(invalid_value(child(device_path, "devicePath"), target, "must be unique"))
        if target and ".." in target.split("/"):
            errors.append(
                invalid_value(
                    child(device_path, "devicePath"), target, "can not contain backsteps ('..')"
                )
            )
        else:
            device_paths.add(target)
        if name in mounts:
            errors.append(
                invalid_value(
                    child(device_path, "name"), name, "must not already exist in volumeMounts"
                )
            )
        if target in mounts.values():
            errors.append(
                invalid_value(
                    child(device_path, "devicePath"),
                    target,
                    "must not already exist as a path in volumeMounts",
                )
            )
        if name:
            device_names.add(name)
    return errors


def validate_resource_requirements(resources: Any, path: str, claims: set[str]) -> list[FieldError]:
    """validateResourceRequirements for a container: names, quantities, requests <= limits."""
    resources = as_dict(resources)
    errors: list[FieldError] = []
    limits_path = child(path, "limits")
    requests_path = child(path, "requests")
    limits = parse_resource_list(resources.get("limits"), limits_path, errors)
    requests = parse_resource_list(resources.get("requests"), requests_path, errors)
    compute = {"cpu", "memory"}
    limits_compute = requests_compute = limits_huge = requests_huge = False
    for name, quantity in limits.items():
        name_path = key(limits_path, name)
        errors += validate_container_resource_name(name, name_path)
        errors += validate_resource_quantity(name, quantity, name_path)
        if is_hugepages(name):
            limits_huge = True
        limits_compute = limits_compute or name in compute
    for name, quantity in requests.items():
        name_path = key(requests_path, name)
        errors += validate_container_resource_name(name, name_path)
        errors += validate_resource_quantity(name, quantity, name_path)
        limit = limits.get(name)
        if limit is not None:
            if quantity != limit and not is_overcommit_allowed(name):
                errors.append(
                    invalid_value(
                        requests_path, str(quantity), f"must be equal to {name} limit of {limit}"
                    )
                )
            elif quantity > limit:
                errors.append(
                    invalid_value(
                        requests_path,
                        str(quantity),
                        f"must be less than or equal to {name} limit of {limit}",
                    )
                )
        elif not is_overcommit_allowed(name):
            errors.append(
                required(limits_path, "Limit must be set for non overcommitable resources")
            )
        if is_hugepages(name):
            requests_huge = True
        requests_compute = requests_compute or name in compute
    if not limits_compute and not requests_compute and (limits_huge or requests_huge):
        errors.append(forbidden(path, "HugePages require cpu or memory"))
    names: set[str] = set()
    for i, claim in enumerate(as_list(resources.get("claims"))):
        name = as_str(as_dict(claim).get("name"))
        claim_path = index(child(path, "claims"), i)
        if not name:
            errors.append(required(claim_path))
            continue
        if name in names:
            errors.append(duplicate(claim_path, name))
        names.add(name)
        if name not in claims:
            detail = "must be one of the names in pod.spec.resourceClaims"
            detail += ": " + ", ".join(sorted(claims)) if claims else " which is empty"
            errors.append(not_found(claim_path, name, detail))
    return errors


def _validate_resize_policy(policies: Any, path: str, restart_policy: Any) -> list[FieldError]:
    errors: list[FieldError] = []
    seen: set[str] = set()
    for i, policy in enumerate(as_list(policies)):
        policy = as_dict(policy)
        resource = policy.get("resourceName")
        if resource in seen:
            errors.append(duplicate(index(path, i), resource))
        seen.add(as_str(resource))
        if not resource:
            errors.append(required(path))
        elif resource not in ("cpu", "memory"):
            errors.append(not_supported(path, resource, ["cpu", "memory"]))
        restart = policy.get("restartPolicy")
        if not restart:
            errors.append(required(path))
        elif restart not in ("NotRequired", "RestartContainer"):
            errors.append(not_supported(path, restart, ["NotRequired", "RestartContainer"]))
        if restart_policy == "Never" and restart != "NotRequired":
            errors.append(
                invalid_value(
                    path, restart, "must be 'NotRequired' when `restartPolicy` is 'Never'"
                )
            )
    return errors


# -- probes and hooks ------------------------------------------------------------------


def _validate_probes(container: dict[str, Any], grace_period: Any, path: str) -> list[FieldError]:
    errors: list[FieldError] = []
    for field in ("livenessProbe", "readinessProbe", "startupProbe"):
        probe = container.get(field)
        if probe is None:
            continue
        probe = as_dict(probe)
        probe_path = child(path, field)
        errors += _validate_handler(
            probe, ("exec", "httpGet", "tcpSocket", "grpc"), grace_period, probe_path
        )
        for number in (
            "initialDelaySeconds",
            "timeoutSeconds",
            "periodSeconds",
            "successThreshold",
            "failureThreshold",
        ):
            errors += validate_nonnegative(probe.get(number), child(probe_path, number))
        grace = probe.get("terminationGracePeriodSeconds")
        if is_int(grace) and grace <= 0:
            errors.append(
                invalid_value(
                    child(probe_path, "terminationGracePeriodSeconds"),
                    grace,
                    "must be greater than 0",
                )
            )
        if field == "readinessProbe":
            if grace is not None:
                errors.append(
                    invalid_value(
                        child(probe_path, "terminationGracePeriodSeconds"),
                        grace,
                        "must not be set for readinessProbes",
                    )
                )
        elif probe.get("successThreshold", 1) != 1:
            errors.append(
                invalid_value(
                    child(probe_path, "successThreshold"),
                    probe.get("successThreshold"),
                    "must be 1",
                )
            )
    return errors


def _validate_lifecycle(
    lifecycle: dict[str, Any], grace_period: Any, path: str
) -> list[FieldError]:
    errors: list[FieldError] = []
    for hook in ("postStart", "preStop"):
        if lifecycle.get(hook) is not None:
            errors += _validate_handler(
                as_dict(lifecycle.get(hook)),
                ("exec", "httpGet", "tcpSocket", "sleep"),
                grace_period,
                child(path, hook),
            )
    return errors


def _validate_handler(
    handler: dict[str, Any], kinds: tuple[str, ...], grace_period: Any, path: str
) -> list[FieldError]:
    errors: list[FieldError] = []
    count = 0
    for kind in ("exec", "httpGet", "tcpSocket", "grpc", "sleep"):
        if kind not in kinds or handler.get(kind) is None:
            continue
        if count > 0:
            errors.append(forbidden(child(path, kind), "may not specify more than 1 handler type"))
            continue
        count += 1
        action = as_dict(handler.get(kind))
        action_path = child(path, kind)
        if kind == "exec":
            if not as_list(action.get("command")):
                errors.append(required(child(action_path, "command")))
        elif kind == "httpGet":
            if not action.get("path"):
                errors.append(required(child(action_path, "path")))
            errors += validate_port_num_or_name(action.get("port"), child(action_path, "port"))
            if action.get("scheme") not in ("HTTP", "HTTPS"):
                errors.append(
                    not_supported(
                        child(action_path, "scheme"), action.get("scheme", ""), ["HTTP", "HTTPS"]
                    )
                )
            for header in as_list(action.get("httpHeaders")):
                header_name = as_str(as_dict(header).get("name"))
                errors += [
                    invalid_value(child(action_path, "httpHeaders"), header_name, p)
                    for p in http_header_problems(header_name)
                ]
        elif kind == "tcpSocket":
            errors += validate_port_num_or_name(action.get("port"), child(action_path, "port"))
        elif kind == "grpc":
            errors += validate_port_number(action.get("port"), child(action_path, "port"))
        elif kind == "sleep":
            seconds = action.get("seconds")
            if is_int(grace_period) and (
                not is_int(seconds) or seconds <= 0 or seconds > grace_period
            ):
                errors.append(
                    invalid_value(
                        action_path,
                        seconds,
                        f"must be greater than 0 and less than terminationGracePeriodSeconds "
                        f"({grace_period}). Enable AllowPodLifecycleSleepActionZeroValue "
                        "feature gate for zero sleep.",
                    )
                )
    if count == 0:
        errors.append(required(path, "must specify a handler type"))
    return errors


# -- security --------------------------------------------------------------------------

_ID_RANGE = f"must be between 0 and {MAX_INT32}, inclusive"


def _validate_id(value: Any, path: str) -> list[FieldError]:
    if value is not None and (not is_int(value) or not 0 <= value <= MAX_INT32):
        return [invalid_value(path, value, _ID_RANGE)]
    return []


def _validate_security_context(context: Any, path: str, host_users: bool) -> list[FieldError]:
    if context is None:
        return []
    context = as_dict(context)
    errors: list[FieldError] = []
    errors += _validate_id(context.get("runAsUser"), child(path, "runAsUser"))
    errors += _validate_id(context.get("runAsGroup"), child(path, "runAsGroup"))
    proc_mount = context.get("procMount")
    if proc_mount is not None:
        if proc_mount not in ("Default", "Unmasked"):
            errors.append(
                not_supported(child(path, "procMount"), proc_mount, ["Default", "Unmasked"])
            )
        if host_users and proc_mount == "Unmasked":
            errors.append(
                invalid_value(
                    child(path, "procMount"),
                    proc_mount,
                    "`hostUsers` must be false to use `Unmasked`",
                )
            )
    errors += _validate_seccomp_profile(
        context.get("seccompProfile"), child(path, "seccompProfile")
    )
    if context.get("allowPrivilegeEscalation") is False:
        if context.get("privileged") is True:
            errors.append(
                invalid_value(
                    path,
                    context,
                    "cannot set `allowPrivilegeEscalation` to false and `privileged` to true",
                )
            )
        if "CAP_SYS_ADMIN" in as_list(as_dict(context.get("capabilities")).get("add")):
            errors.append(
                invalid_value(
                    path,
                    context,
                    "cannot set `allowPrivilegeEscalation` to false and `capabilities.Add` CAP_SYS_ADMIN",
                )
            )
    errors += _validate_app_armor_profile(
        context.get("appArmorProfile"), child(path, "appArmorProfile")
    )
    return errors


def _validate_pod_security_context(spec: dict[str, Any], path: str) -> list[FieldError]:
    context = spec.get("securityContext")
    if context is None:
        return []
    context = as_dict(context)
    context_path = child(path, "securityContext")
    errors: list[FieldError] = []
    errors += _validate_id(context.get("fsGroup"), child(context_path, "fsGroup"))
    errors += _validate_id(context.get("runAsUser"), child(context_path, "runAsUser"))
    errors += _validate_id(context.get("runAsGroup"), child(context_path, "runAsGroup"))
    for i, group in enumerate(as_list(context.get("supplementalGroups"))):
        errors += _validate_id(group, index(child(context_path, "supplementalGroups"), i))
    if spec.get("shareProcessNamespace") is True and spec.get("hostPID") is True:
        errors.append(
            invalid_value(
                child(context_path, "shareProcessNamespace"),
                True,
                "ShareProcessNamespace and HostPID cannot both be enabled",
            )
        )
    seen: set[str] = set()
    for i, sysctl in enumerate(as_list(context.get("sysctls"))):
        name = as_str(as_dict(sysctl).get("name"))
        name_path = child(index(child(context_path, "sysctls"), i), "name")
        if not name:
            errors.append(required(name_path))
        elif len(name) > 253 or not _SYSCTL.match(name):
            errors.append(
                invalid_value(
                    name_path,
                    name,
                    f"must have at most 253 characters and match regex {_SYSCTL.pattern}",
                )
            )
        elif name in seen:
            errors.append(duplicate(name_path, name))
        seen.add(name)
        if spec.get("hostNetwork") is True and name.startswith(("net.", "net/")):
            errors.append(
                invalid_value(name_path, name, "may not be specified when 'hostNetwork' is true")
            )
        elif spec.get("hostIPC") is True and (
            name.startswith(("kernel.shm", "kernel.msg", "kernel.sem", "fs.mqueue."))
        ):
            errors.append(
                invalid_value(name_path, name, "may not be specified when 'hostIPC' is true")
            )
    policy = context.get("fsGroupChangePolicy")
    if policy is not None and policy not in ("Always", "OnRootMismatch"):
        errors.append(
            not_supported(
                child(context_path, "fsGroupChangePolicy"), policy, ["Always", "OnRootMismatch"]
            )
        )
    errors += _validate_seccomp_profile(
        context.get("seccompProfile"), child(context_path, "seccompProfile")
    )
    errors += _validate_app_armor_profile(
        context.get("appArmorProfile"), child(context_path, "appArmorProfile")
    )
    groups_policy = context.get("supplementalGroupsPolicy")
    if groups_policy is not None and groups_policy not in ("Merge", "Strict"):
        errors.append(
            not_supported(
                child(context_path, "supplementalGroupsPolicy"), groups_policy, ["Merge", "Strict"]
            )
        )
    change_policy = context.get("seLinuxChangePolicy")
    if change_policy is not None and change_policy not in ("MountOption", "Recursive"):
        errors.append(
            not_supported(
                child(context_path, "seLinuxChangePolicy"),
                change_policy,
                ["MountOption", "Recursive"],
            )
        )
    return errors


_SYSCTL_SEGMENT = "[a-z0-9]([-_a-z0-9]*[a-z0-9])?"
_SYSCTL = re.compile(f"^({_SYSCTL_SEGMENT}[\\./])*{_SYSCTL_SEGMENT}$")


def _validate_seccomp_profile(profile: Any, path: str) -> list[FieldError]:
    if profile is None:
        return []
    profile = as_dict(profile)
    errors: list[FieldError] = []
    kind = profile.get("type")
    kinds = ["Localhost", "RuntimeDefault", "Unconfined"]
    if not kind:
        errors.append(required(child(path, "type"), "type is required when seccompProfile is set"))
    elif kind not in kinds:
        errors.append(not_supported(child(path, "type"), kind, kinds))
    if kind == "Localhost":
        if profile.get("localhostProfile") is None:
            errors.append(
                required(
                    child(path, "localhostProfile"), "must be set when seccomp type is Localhost"
                )
            )
        else:
            errors += _validate_local_descending_path(
                as_str(profile.get("localhostProfile")), child(path, "localhostProfile")
            )
    elif profile.get("localhostProfile") is not None:
        errors.append(
            invalid_value(
                child(path, "localhostProfile"),
                profile,
                "can only be set when seccomp type is Localhost",
            )
        )
    return errors


def _validate_app_armor_profile(profile: Any, path: str) -> list[FieldError]:
    if profile is None:
        return []
    profile = as_dict(profile)
    kind = profile.get("type")
    local = profile.get("localhostProfile")
    if kind == "Localhost":
        if local is None or not as_str(local).strip():
            return [
                required(
                    child(path, "localhostProfile"), "must be set when AppArmor type is Localhost"
                )
            ]
        if as_str(local).strip() != local:
            return [
                invalid_value(
                    child(path, "localhostProfile"), local, "must not be padded with whitespace"
                )
            ]
        return []
    if kind in ("RuntimeDefault", "Unconfined"):
        if local is not None:
            return [
                invalid_value(
                    child(path, "localhostProfile"),
                    local,
                    "can only be set when AppArmor type is Localhost",
                )
            ]
        return []
    if not kind:
        return [required(child(path, "type"), "type is required when appArmorProfile is set")]
    return [not_supported(child(path, "type"), kind, ["Localhost", "RuntimeDefault", "Unconfined"])]


# -- scheduling ------------------------------------------------------------------------


def _validate_host_network_ports(
    spec: dict[str, Any], path: str, *, is_pod: bool
) -> list[FieldError]:
    if spec.get("hostNetwork") is not True:
        return []
    errors: list[FieldError] = []
    for i, container in enumerate(as_list(spec.get("containers"))):
        for j, port in enumerate(as_list(as_dict(container).get("ports"))):
            port = as_dict(port)
            host_port = port.get("hostPort") or 0
            if (is_pod or host_port != 0) and host_port != port.get("containerPort"):
                errors.append(
                    invalid_value(
                        child(
                            index(child(index(child(path, "containers"), i), "ports"), j),
                            "hostPort",
                        ),
                        host_port,
                        "must match `containerPort` when `hostNetwork` is true",
                    )
                )
    return errors


def _validate_image_pull_secrets(secrets: Any, path: str) -> list[FieldError]:
    errors: list[FieldError] = []
    for i, secret in enumerate(as_list(secrets)):
        if not isinstance(secret, dict) or set(secret) - {"name"}:
            errors.append(invalid_value(index(path, i), secret, "only name may be set"))
    return errors


def validate_tolerations(tolerations: Any, path: str) -> list[FieldError]:
    errors: list[FieldError] = []
    for i, toleration in enumerate(as_list(tolerations)):
        toleration = as_dict(toleration)
        toleration_path = index(path, i)
        toleration_key = as_str(toleration.get("key"))
        operator = toleration.get("operator") or ""
        if toleration_key:
            errors += validate_qualified_name(toleration_key, child(toleration_path, "key"))
        if not toleration_key and operator != "Exists":
            errors.append(
                invalid_value(
                    child(toleration_path, "operator"),
                    operator,
                    'operator must be Exists when `key` is empty, which means "match all '
                    'values and all keys"',
                )
            )
        effect = toleration.get("effect") or ""
        if toleration.get("tolerationSeconds") is not None and effect != "NoExecute":
            errors.append(
                invalid_value(
                    child(toleration_path, "effect"),
                    effect,
                    "effect must be 'NoExecute' when `tolerationSeconds` is set",
                )
            )
        value = as_str(toleration.get("value"))
        if operator in ("Equal", ""):
            problems = validate_label_value(value, child(toleration_path, "operator"))
            if problems:
                errors.append(
                    invalid_value(
                        child(toleration_path, "operator"),
                        value,
                        ";".join(p.detail for p in problems),
                    )
                )
        elif operator == "Exists":
            if value:
                errors.append(
                    invalid_value(
                        child(toleration_path, "operator"),
                        value,
                        "value must be empty when `operator` is 'Exists'",
                    )
                )
        else:
            errors.append(
                not_supported(child(toleration_path, "operator"), operator, ["Equal", "Exists"])
            )
        if effect and effect not in TAINT_EFFECTS:
            errors.append(not_supported(child(toleration_path, "effect"), effect, TAINT_EFFECTS))
    return errors


def _validate_affinity(affinity: Any, path: str) -> list[FieldError]:
    affinity = as_dict(affinity)
    errors: list[FieldError] = []
    node_affinity = affinity.get("nodeAffinity")
    if node_affinity is not None:
        node_affinity = as_dict(node_affinity)
        node_path = child(path, "nodeAffinity")
        required_terms = node_affinity.get("requiredDuringSchedulingIgnoredDuringExecution")
        if required_terms is not None:
            errors += validate_node_selector(
                as_dict(required_terms),
                child(node_path, "requiredDuringSchedulingIgnoredDuringExecution"),
            )
        for i, term in enumerate(
            as_list(node_affinity.get("preferredDuringSchedulingIgnoredDuringExecution"))
        ):
            term = as_dict(term)
            term_path = index(
                child(node_path, "preferredDuringSchedulingIgnoredDuringExecution"), i
            )
            weight = term.get("weight")
            if not is_int(weight) or not 1 <= weight <= 100:
                errors.append(
                    invalid_value(child(term_path, "weight"), weight, "must be in the range 1-100")
                )
            errors += _validate_node_selector_term(
                as_dict(term.get("preference")), child(term_path, "preference"), check_values=False
            )
    for field in ("podAffinity", "podAntiAffinity"):
        pod_affinity = affinity.get(field)
        if pod_affinity is None:
            continue
        pod_affinity = as_dict(pod_affinity)
        field_path = child(path, field)
        for i, term in enumerate(
            as_list(pod_affinity.get("requiredDuringSchedulingIgnoredDuringExecution"))
        ):
            errors += _validate_pod_affinity_term(
                as_dict(term),
                index(child(field_path, "requiredDuringSchedulingIgnoredDuringExecution"), i),
            )
        for i, weighted in enumerate(
            as_list(pod_affinity.get("preferredDuringSchedulingIgnoredDuringExecution"))
        ):
            weighted = as_dict(weighted)
            term_path = index(
                child(field_path, "preferredDuringSchedulingIgnoredDuringExecution"), i
            )
            weight = weighted.get("weight")
            if not is_int(weight) or not 1 <= weight <= 100:
                errors.append(
                    invalid_value(child(term_path, "weight"), weight, "must be in the range 1-100")
                )
            errors += _validate_pod_affinity_term(
                as_dict(weighted.get("podAffinityTerm")), child(term_path, "podAffinityTerm")
            )
    return errors


def validate_node_selector(selector: dict[str, Any], path: str) -> list[FieldError]:
    terms_path = child(path, "nodeSelectorTerms")
    terms = as_list(selector.get("nodeSelectorTerms"))
    if not terms:
        return [required(terms_path, "must have at least one node selector term")]
    errors: list[FieldError] = []
    for i, term in enumerate(terms):
        errors += _validate_node_selector_term(
            as_dict(term), index(terms_path, i), check_values=True
        )
    return errors


def _validate_node_selector_term(
    term: dict[str, Any], path: str, *, check_values: bool
) -> list[FieldError]:
    errors: list[FieldError] = []
    for i, requirement in enumerate(as_list(term.get("matchExpressions"))):
        requirement = as_dict(requirement)
        requirement_path = index(child(path, "matchExpressions"), i)
        operator = requirement.get("operator")
        values = as_list(requirement.get("values"))
        if operator in ("In", "NotIn"):
            if not values:
                errors.append(
                    required(
                        child(requirement_path, "values"),
                        "must be specified when `operator` is 'In' or 'NotIn'",
                    )
                )
        elif operator in ("Exists", "DoesNotExist"):
            if values:
                errors.append(
                    forbidden(
                        child(requirement_path, "values"),
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    )
                )
        elif operator in ("Gt", "Lt"):
            if len(values) != 1:
                errors.append(
                    required(
                        child(requirement_path, "values"),
                        "must be specified single value when `operator` is 'Lt' or 'Gt'",
                    )
                )
        else:
            errors.append(
                invalid_value(
                    child(requirement_path, "operator"), operator, "not a valid selector operator"
                )
            )
        errors += validate_qualified_name(
            as_str(requirement.get("key")), child(requirement_path, "key")
        )
        if check_values:
            for j, value in enumerate(values):
                errors += validate_label_value(value, index(child(requirement_path, "values"), j))
    for i, requirement in enumerate(as_list(term.get("matchFields"))):
        requirement = as_dict(requirement)
        requirement_path = index(child(path, "matchFields"), i)
        values = as_list(requirement.get("values"))
        if requirement.get("operator") in ("In", "NotIn"):
            if len(values) != 1:
                errors.append(
                    required(
                        child(requirement_path, "values"),
                        "must be only one value when `operator` is 'In' or 'NotIn' for node field selector",
                    )
                )
        else:
            errors.append(
                invalid_value(
                    child(requirement_path, "operator"),
                    requirement.get("operator"),
                    "not a valid selector operator",
                )
            )
        if requirement.get("key") != "metadata.name":
            errors.append(
                invalid_value(
                    child(requirement_path, "key"),
                    requirement.get("key"),
                    "not a valid field selector key",
                )
            )
        else:
            for j, value in enumerate(values):
                errors += [
                    invalid_value(index(child(requirement_path, "values"), j), value, p)
                    for p in dns1123_subdomain_problems(as_str(value))
                ]
    return errors


def _validate_pod_affinity_term(term: dict[str, Any], path: str) -> list[FieldError]:
    errors = validate_label_selector(term.get("labelSelector"), child(path, "labelSelector"))
    errors += validate_label_selector(
        term.get("namespaceSelector"), child(path, "namespaceSelector")
    )
    for namespace in as_list(term.get("namespaces")):
        errors += [
            invalid_value(child(path, "namespace"), namespace, p)
            for p in dns1123_label_problems(as_str(namespace))
        ]
    selector = term.get("labelSelector")
    for field in ("matchLabelKeys", "mismatchLabelKeys"):
        label_keys = as_list(term.get(field))
        if not label_keys:
            continue
        if selector is None:
            errors.append(
                forbidden(child(path, field), "must not be specified when labelSelector is not set")
            )
            continue
        for i, label_key in enumerate(label_keys):
            errors += validate_qualified_name(as_str(label_key), index(child(path, field), i))
    mismatch = set(as_list(term.get("mismatchLabelKeys")))
    for i, label_key in enumerate(as_list(term.get("matchLabelKeys"))):
        if label_key in mismatch:
            errors.append(
                invalid_value(
                    index(child(path, "matchLabelKeys"), i),
                    label_key,
                    "exists in both matchLabelKeys and mismatchLabelKeys",
                )
            )
    topology_key = as_str(term.get("topologyKey"))
    if not topology_key:
        errors.append(required(child(path, "topologyKey"), "can not be empty"))
    errors += validate_qualified_name(topology_key, child(path, "topologyKey"))
    return errors


def _validate_dns_config(config: Any, policy: Any, path: str) -> list[FieldError]:
    if policy == "None":
        if config is None:
            return [required(path, "must provide `dnsConfig` when `dnsPolicy` is None")]
        if not as_list(as_dict(config).get("nameservers")):
            return [
                required(
                    child(path, "nameservers"),
                    "must provide at least one DNS nameserver when `dnsPolicy` is None",
                )
            ]
    if config is None:
        return []
    config = as_dict(config)
    errors: list[FieldError] = []
    nameservers = as_list(config.get("nameservers"))
    if len(nameservers) > 3:
        errors.append(
            invalid_value(
                child(path, "nameservers"), nameservers, "must not have more than 3 nameservers"
            )
        )
    for i, server in enumerate(nameservers):
        errors += validate_ip(server, index(child(path, "nameservers"), i))
    searches = as_list(config.get("searches"))
    if len(searches) > 32:
        errors.append(
            invalid_value(
                child(path, "searches"), searches, "must not have more than 32 search paths"
            )
        )
    if len(" ".join(as_str(s) for s in searches)) > 2048:
        errors.append(
            invalid_value(
                child(path, "searches"),
                searches,
                "must not have more than 2048 characters (including spaces) in the search list",
            )
        )
    for i, search in enumerate(searches):
        search = as_str(search)
        if search == ".":
            continue
        errors += validate_dns1123_subdomain(
            search.removesuffix("."), index(child(path, "searches"), i)
        )
    for i, option in enumerate(as_list(config.get("options"))):
        if not as_dict(option).get("name"):
            errors.append(required(index(child(path, "options"), i), "must not be empty"))
    return errors


def _validate_scheduling_gates(gates: Any, path: str) -> list[FieldError]:
    errors: list[FieldError] = []
    seen: set[str] = set()
    for i, gate in enumerate(as_list(gates)):
        name = as_str(as_dict(gate).get("name"))
        errors += validate_qualified_name(name, index(path, i))
        if name in seen:
            errors.append(duplicate(index(path, i), name))
        seen.add(name)
    return errors


def _validate_topology_spread(constraints: Any, path: str) -> list[FieldError]:
    errors: list[FieldError] = []
    constraints = as_list(constraints)
    for i, constraint in enumerate(constraints):
        constraint = as_dict(constraint)
        constraint_path = index(path, i)
        max_skew = constraint.get("maxSkew")
        if not is_int(max_skew) or max_skew <= 0:
            errors.append(
                invalid_value(
                    child(constraint_path, "maxSkew"), max_skew, "must be greater than zero"
                )
            )
        topology_key = constraint.get("topologyKey")
        if not topology_key:
            errors.append(required(child(constraint_path, "topologyKey"), "can not be empty"))
        action = constraint.get("whenUnsatisfiable")
        if action not in ("DoNotSchedule", "ScheduleAnyway"):
            errors.append(
                not_supported(
                    child(constraint_path, "whenUnsatisfiable"),
                    action or "",
                    ["DoNotSchedule", "ScheduleAnyway"],
                )
            )
        for later in constraints[i + 1 :]:
            later = as_dict(later)
            if (
                later.get("topologyKey") == topology_key
                and later.get("whenUnsatisfiable") == action
            ):
                errors.append(
                    duplicate(
                        child(constraint_path, "{topologyKey, whenUnsatisfiable}"),
                        f"{{{topology_key or ''}, {action or ''}}}",
                    )
                )
                break
        min_domains = constraint.get("minDomains")
        if min_domains is not None:
            if not is_int(min_domains) or min_domains <= 0:
                errors.append(
                    invalid_value(
                        child(constraint_path, "minDomains"),
                        min_domains,
                        "must be greater than zero",
                    )
                )
            if action != "DoNotSchedule":
                errors.append(
                    invalid_value(
                        child(constraint_path, "minDomains"),
                        min_domains,
                        f"can only use minDomains if whenUnsatisfiable=DoNotSchedule, not {action or ''}",
                    )
                )
        for field in ("nodeAffinityPolicy", "nodeTaintsPolicy"):
            policy = constraint.get(field)
            if policy is not None and policy not in ("Honor", "Ignore"):
                errors.append(
                    not_supported(child(constraint_path, field), policy, ["Honor", "Ignore"])
                )
        selector = constraint.get("labelSelector")
        label_keys = as_list(constraint.get("matchLabelKeys"))
        if label_keys:
            keys_path = child(constraint_path, "matchLabelKeys")
            selector_keys: set[str] = set()
            if selector is None:
                errors.append(
                    forbidden(keys_path, "must not be specified when labelSelector is not set")
                )
            else:
                selector_keys = set(as_dict(as_dict(selector).get("matchLabels")))
                selector_keys |= {
                    as_str(as_dict(e).get("key"))
                    for e in as_list(as_dict(selector).get("matchExpressions"))
                }
            for j, label_key in enumerate(label_keys):
                errors += validate_qualified_name(as_str(label_key), index(keys_path, j))
                if label_key in selector_keys:
                    errors.append(
                        invalid_value(
                            index(keys_path, j),
                            label_key,
                            "exists in both matchLabelKeys and labelSelector",
                        )
                    )
        errors += validate_label_selector(selector, child(constraint_path, "labelSelector"))
    return errors


def _validate_resource_claims(claims: Any, path: str) -> list[FieldError]:
    errors: list[FieldError] = []
    names: set[str] = set()
    for i, claim in enumerate(as_list(claims)):
        claim = as_dict(claim)
        claim_path = index(path, i)
        name = as_str(claim.get("name"))
        if not name:
            errors.append(required(child(claim_path, "name")))
        elif name in names:
            errors.append(duplicate(child(claim_path, "name"), name))
        else:
            errors += validate_dns1123_label(name, child(claim_path, "name"))
            names.add(name)
        claim_name = claim.get("resourceClaimName")
        template_name = claim.get("resourceClaimTemplateName")
        if claim_name is not None and template_name is not None:
            errors.append(
                invalid_value(
                    claim_path,
                    claim,
                    "at most one of `resourceClaimName` or `resourceClaimTemplateName` may be specified",
                )
            )
        if claim_name is None and template_name is None:
            errors.append(
                invalid_value(
                    claim_path,
                    claim,
                    "must specify one of: `resourceClaimName`, `resourceClaimTemplateName`",
                )
            )
    return errors


# -- helpers the scheduler, kubelet and controllers share -------------------------------


def all_containers(spec: Any) -> list[dict[str, Any]]:
    """Init, regular and ephemeral containers, in that order."""
    spec = as_dict(spec)
    return [as_dict(c) for field in CONTAINER_LISTS for c in as_list(spec.get(field))]


def is_restartable_init_container(container: Any) -> bool:
    return as_dict(container).get("restartPolicy") == "Always"
