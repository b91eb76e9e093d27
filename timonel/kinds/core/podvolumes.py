"""Pod volumes and the claim templates of ephemeral volumes: `ValidateVolumes`,
`ValidatePersistentVolumeClaimSpec` and the downward API selectors volumes and env share."""

from __future__ import annotations

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
from timonel.api.validation import (
    dns1123_subdomain_problems,
    validate_annotations,
    validate_label_selector,
    validate_labels,
)
from timonel.kinds.core.common import (
    PULL_POLICIES,
    as_dict,
    as_list,
    as_str,
    child,
    index,
    is_int,
    key,
    quantity_or_error,
    validate_dns1123_label,
    validate_enum_required,
    validate_qualified_name,
    validate_resource_quantity,
)

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
        errors += validate_local_descending_path(
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
        errors += validate_enum_required(
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


def validate_local_descending_path(target: str, path: str) -> list[FieldError]:
    errors: list[FieldError] = []
    if target.startswith("/"):
        errors.append(invalid_value(path, target, "must be a relative path"))
    errors += _validate_no_backsteps(target, path)
    return errors


def _validate_local_non_reserved_path(target: str, path: str) -> list[FieldError]:
    errors = validate_local_descending_path(target, path)
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
ENV_FIELD_PATHS = [
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
        errors += validate_object_field_selector(
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
        errors += validate_resource_field_selector(
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


def access_mode_errors(modes: list[Any], path: str) -> list[FieldError]:
    """Known access modes, and ReadWriteOncePod alone (volumes and claims alike)."""
    errors: list[FieldError] = []
    once_pod = other = False
    for mode in modes:
        if mode not in ACCESS_MODES:
            errors.append(not_supported(path, mode, ACCESS_MODES))
        elif mode == "ReadWriteOncePod":
            once_pod = True
        else:
            other = True
    if once_pod and other:
        errors.append(forbidden(path, "may not use ReadWriteOncePod with other access modes"))
    return errors


def class_and_mode_errors(spec: dict[str, Any], path: str) -> list[FieldError]:
    """storageClassName a DNS subdomain, volumeMode a known one (volumes and claims alike)."""
    errors: list[FieldError] = []
    class_name = spec.get("storageClassName")
    if class_name:
        errors += [
            invalid_value(child(path, "storageClassName"), class_name, p)
            for p in dns1123_subdomain_problems(as_str(class_name))
        ]
    mode = spec.get("volumeMode")
    if mode is not None and mode not in VOLUME_MODES:
        errors.append(not_supported(child(path, "volumeMode"), mode, VOLUME_MODES))
    return errors


def validate_claim_spec(spec: dict[str, Any], path: str) -> list[FieldError]:
    """ValidatePersistentVolumeClaimSpec."""
    errors: list[FieldError] = []
    modes = as_list(spec.get("accessModes"))
    if not modes:
        errors.append(required(child(path, "accessModes"), "at least 1 access mode is required"))
    if spec.get("selector") is not None:
        errors += validate_label_selector(spec.get("selector"), child(path, "selector"))
    errors += access_mode_errors(modes, child(path, "accessModes"))
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
    errors += class_and_mode_errors(spec, path)
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


_SUBSCRIPTED = re.compile(r"^(metadata\.(?:annotations|labels))\['(.*)'\]$")


def validate_object_field_selector(
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


def validate_resource_field_selector(
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
