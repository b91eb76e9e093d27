"""Pod and container security contexts: user and group IDs, sysctls, seccomp and AppArmor."""

from __future__ import annotations

import re
from typing import Any

from timonel.api.errors import (
    FieldError,
    duplicate,
    invalid_value,
    not_supported,
    required,
)
from timonel.kinds.core.common import (
    MAX_INT32,
    as_dict,
    as_list,
    as_str,
    child,
    index,
    is_int,
)
from timonel.kinds.core.podvolumes import (
    validate_local_descending_path,
)

# -- security --------------------------------------------------------------------------

_ID_RANGE = f"must be between 0 and {MAX_INT32}, inclusive"


def _validate_id(value: Any, path: str) -> list[FieldError]:
    if value is not None and (not is_int(value) or not 0 <= value <= MAX_INT32):
        return [invalid_value(path, value, _ID_RANGE)]
    return []


def validate_security_context(context: Any, path: str, host_users: bool) -> list[FieldError]:
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


def validate_pod_security_context(spec: dict[str, Any], path: str) -> list[FieldError]:
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
            errors += validate_local_descending_path(
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
