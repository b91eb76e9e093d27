"""What the RBAC kinds share: rule and subject validation, defaults, and table cells."""

from __future__ import annotations

from typing import Any

from timonel.api.errors import FieldError, RawValue, invalid_value, not_supported, required
from timonel.api.objects import Object
from timonel.api.validation import dns1123_subdomain_problems
from timonel.kinds.base import AGE_COLUMN, NAME_COLUMN, Column
from timonel.kinds.networking.ingress import path_segment_problems
from timonel.kinds.printing import creation_age

GROUP = "rbac.authorization.k8s.io"
SUBJECT_KINDS = ("ServiceAccount", "User", "Group")


def rbac_name_problems(name: str) -> list[str]:
    """RBAC objects accept any name usable as a URL path segment ("system:node")."""
    return path_segment_problems(name)


def validate_policy_rule(rule: Any, namespaced: bool, path: str) -> list[FieldError]:
    rule = rule if isinstance(rule, dict) else {}
    errors: list[FieldError] = []
    if not rule.get("verbs"):
        errors.append(required(f"{path}.verbs", "verbs must contain at least one value"))
    urls = rule.get("nonResourceURLs") or []
    if urls:
        shown = RawValue("[]string{" + ", ".join(f'"{u}"' for u in urls) + "}")
        if namespaced:
            errors.append(
                invalid_value(
                    f"{path}.nonResourceURLs",
                    shown,
                    "namespaced rules cannot apply to non-resource URLs",
                )
            )
        if rule.get("apiGroups") or rule.get("resources") or rule.get("resourceNames"):
            errors.append(
                invalid_value(
                    f"{path}.nonResourceURLs",
                    shown,
                    "rules cannot apply to both regular resources and non-resource URLs",
                )
            )
        return errors
    if not rule.get("apiGroups"):
        errors.append(
            required(f"{path}.apiGroups", "resource rules must supply at least one api group")
        )
    if not rule.get("resources"):
        errors.append(
            required(f"{path}.resources", "resource rules must supply at least one resource")
        )
    if rule.get("resourceNames") and len(rule.get("resources") or []) > 1:
        errors.append(
            required(f"{path}.resourceNames", "resource names cannot apply to multiple resources")
        )
    return errors


def default_binding(binding: Object) -> None:
    """SetDefaults_RoleBinding / ClusterRoleBinding and SetDefaults_Subject."""
    role_ref = binding.get("roleRef")
    if isinstance(role_ref, dict) and not role_ref.get("apiGroup"):
        role_ref["apiGroup"] = GROUP
    for subject in binding.get("subjects") or []:
        if isinstance(subject, dict) and not subject.get("apiGroup"):
            kind = subject.get("kind")
            if kind == "ServiceAccount":
                subject["apiGroup"] = ""
            elif kind in ("User", "Group"):
                subject["apiGroup"] = GROUP


def validate_binding(
    binding: Object, role_kinds: tuple[str, ...], namespaced: bool
) -> list[FieldError]:
    errors: list[FieldError] = []
    role_ref = binding.get("roleRef") or {}
    api_group = role_ref.get("apiGroup") or ""
    if api_group != GROUP:
        errors.append(not_supported("roleRef.apiGroup", api_group, [GROUP]))
    kind = role_ref.get("kind") or ""
    if kind not in role_kinds:
        errors.append(not_supported("roleRef.kind", kind, list(role_kinds)))
    name = str(role_ref.get("name") or "")
    if not name:
        errors.append(required("roleRef.name"))
    else:
        errors.extend(invalid_value("roleRef.name", name, p) for p in rbac_name_problems(name))
    for i, subject in enumerate(binding.get("subjects") or []):
        errors.extend(
            validate_subject(
                subject if isinstance(subject, dict) else {}, namespaced, f"subjects[{i}]"
            )
        )
    return errors


def validate_subject(subject: dict[str, Any], namespaced: bool, path: str) -> list[FieldError]:
    errors: list[FieldError] = []
    name = str(subject.get("name") or "")
    api_group = str(subject.get("apiGroup") or "")
    if not name:
        errors.append(required(f"{path}.name"))
    kind = subject.get("kind") or ""
    if kind == "ServiceAccount":
        if name:
            errors.extend(
                invalid_value(f"{path}.name", name, p) for p in dns1123_subdomain_problems(name)
            )
        if api_group:
            errors.append(not_supported(f"{path}.apiGroup", api_group, [""]))
        if not namespaced and not subject.get("namespace"):
            errors.append(required(f"{path}.namespace"))
    elif kind in ("User", "Group"):
        if not name:
            errors.append(
                invalid_value(f"{path}.name", name, f"{kind.lower()} name cannot be empty")
            )
        if api_group != GROUP:
            errors.append(not_supported(f"{path}.apiGroup", api_group, [GROUP]))
    else:
        errors.append(not_supported(f"{path}.kind", kind, list(SUBJECT_KINDS)))
    return errors


def role_ref_change(new: Object, old: Object) -> list[FieldError]:
    """A binding's roleRef never changes: delete and recreate the binding instead."""
    new_ref, old_ref = new.get("roleRef") or {}, old.get("roleRef") or {}
    fields = ("apiGroup", "kind", "name")
    if all((new_ref.get(f) or "") == (old_ref.get(f) or "") for f in fields):
        return []
    shown = RawValue(
        f'rbac.RoleRef{{APIGroup:"{new_ref.get("apiGroup") or ""}", Kind:"{new_ref.get("kind") or ""}", '
        f'Name:"{new_ref.get("name") or ""}"}}'
    )
    return [invalid_value("roleRef", shown, "cannot change roleRef")]


def binding_columns(role_ref_description: str, holder: str) -> tuple[Column, ...]:
    return (
        NAME_COLUMN,
        Column("Role", description=role_ref_description),
        AGE_COLUMN,
        Column("Users", priority=1, description=f"Users in the {holder}"),
        Column("Groups", priority=1, description=f"Groups in the {holder}"),
        Column("ServiceAccounts", priority=1, description=f"ServiceAccounts in the {holder}"),
    )


def binding_row(binding: Object) -> list[Any]:
    """printRoleBinding: Kind/Name of the role, then the subjects by kind."""
    role_ref = binding.get("roleRef") or {}
    users: list[str] = []
    groups: list[str] = []
    service_accounts: list[str] = []
    for subject in binding.get("subjects") or []:
        kind, name = subject.get("kind"), subject.get("name") or ""
        if kind == "ServiceAccount":
            service_accounts.append(f"{subject.get('namespace') or ''}/{name}")
        elif kind == "User":
            users.append(name)
        elif kind == "Group":
            groups.append(name)
    return [
        (binding.get("metadata") or {}).get("name", ""),
        f"{role_ref.get('kind') or ''}/{role_ref.get('name') or ''}",
        creation_age(binding),
        ", ".join(users),
        ", ".join(groups),
        ", ".join(service_accounts),
    ]
