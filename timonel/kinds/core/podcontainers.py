"""The containers of a PodSpec: names, images, ports, env, mounts, resources, probes and
lifecycle hooks, as `validateContainers` and friends check them."""

from __future__ import annotations

import functools
from typing import Any

from timonel.api.errors import (
    FieldError,
    duplicate,
    forbidden,
    invalid_value,
    not_supported,
    required,
)
from timonel.api.validation import (
    dns1123_subdomain_problems,
)
from timonel.kinds.core.common import (
    PULL_POLICIES,
    TERMINATION_MESSAGE_POLICIES,
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
    not_found,
    parse_resource_list,
    port_name_problems,
    validate_container_resource_name,
    validate_dns1123_label,
    validate_enum_required,
    validate_nonnegative,
    validate_port_num_or_name,
    validate_port_number,
    validate_protocol,
    validate_resource_quantity,
)
from timonel.kinds.core.podsecurity import (
    validate_security_context,
)
from timonel.kinds.core.podvolumes import (
    ENV_FIELD_PATHS,
    validate_local_descending_path,
    validate_object_field_selector,
    validate_resource_field_selector,
)

# -- containers ------------------------------------------------------------------------


def validate_containers(
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


def validate_init_containers(
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


def validate_ephemeral_containers(
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
            image = as_str(as_dict(container).get("image"))
            if image != image.strip():
                errors += _validate_image_whitespace(
                    as_dict(container), index(child(path, field), i)
                )
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
    message_policy = container.get("terminationMessagePolicy")
    if message_policy not in TERMINATION_MESSAGE_POLICIES:
        errors += validate_enum_required(
            message_policy, child(path, "terminationMessagePolicy"), TERMINATION_MESSAGE_POLICIES
        )
    # The lists below are checked only when present: an absent one holds no error.
    mount_list = as_list(container.get("volumeMounts"))
    device_list = as_list(container.get("volumeDevices"))
    mounts = {
        as_str(as_dict(m).get("name")): as_str(as_dict(m).get("mountPath")) for m in mount_list
    }
    devices = {
        as_str(as_dict(d).get("name")): as_str(as_dict(d).get("devicePath")) for d in device_list
    }
    if as_list(container.get("ports")):
        errors += _validate_container_ports(container.get("ports"), child(path, "ports"))
    if as_list(container.get("env")):
        errors += _validate_env(container.get("env"), child(path, "env"))
    if as_list(container.get("envFrom")):
        errors += _validate_env_from(container.get("envFrom"), child(path, "envFrom"))
    if mount_list:
        errors += _validate_volume_mounts(container, devices, volumes, child(path, "volumeMounts"))
    if device_list:
        errors += _validate_volume_devices(
            device_list, mounts, volumes, child(path, "volumeDevices")
        )
    pull_policy = container.get("imagePullPolicy")
    if pull_policy not in PULL_POLICIES:
        errors += validate_enum_required(pull_policy, child(path, "imagePullPolicy"), PULL_POLICIES)
    resources = container.get("resources")
    if as_dict(resources):
        errors += validate_resource_requirements(resources, child(path, "resources"), claims)
    if as_list(container.get("resizePolicy")):
        errors += _validate_resize_policy(
            container.get("resizePolicy"), child(path, "resizePolicy"), restart_policy
        )
    if container.get("securityContext") is not None:
        errors += validate_security_context(
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
        errors += validate_object_field_selector(
            as_dict(value_from.get("fieldRef")), ENV_FIELD_PATHS, child(path, "fieldRef")
        )
    if value_from.get("resourceFieldRef") is not None:
        count += 1
        errors += validate_resource_field_selector(
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
            errors += validate_local_descending_path(
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
            errors += validate_local_descending_path(
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
        errors += _container_resource_name_errors(name, name_path)
        errors += validate_resource_quantity(name, quantity, name_path)
        if is_hugepages(name):
            limits_huge = True
        limits_compute = limits_compute or name in compute
    for name, quantity in requests.items():
        name_path = key(requests_path, name)
        errors += _container_resource_name_errors(name, name_path)
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


# The same few resource names come with every pod; validity depends on the name alone
# (the path only words the error).
@functools.lru_cache(maxsize=1024)
def _valid_container_resource_name(name: str) -> bool:
    return not validate_container_resource_name(name, "")


def _container_resource_name_errors(name: str, path: str) -> list[FieldError]:
    return (
        [] if _valid_container_resource_name(name) else validate_container_resource_name(name, path)
    )


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
