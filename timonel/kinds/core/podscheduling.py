"""What a PodSpec says about placement: host network ports, tolerations, affinity, DNS,
scheduling gates, topology spread, resource claims."""

from __future__ import annotations

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
    dns1123_label_problems,
    dns1123_subdomain_problems,
    validate_label_selector,
)
from timonel.kinds.core.common import (
    TAINT_EFFECTS,
    as_dict,
    as_list,
    as_str,
    child,
    index,
    is_int,
    validate_dns1123_label,
    validate_dns1123_subdomain,
    validate_ip,
    validate_label_value,
    validate_qualified_name,
)

# -- scheduling ------------------------------------------------------------------------


def validate_host_network_ports(
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


def validate_image_pull_secrets(secrets: Any, path: str) -> list[FieldError]:
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


def validate_affinity(affinity: Any, path: str) -> list[FieldError]:
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


def validate_dns_config(config: Any, policy: Any, path: str) -> list[FieldError]:
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


def validate_scheduling_gates(gates: Any, path: str) -> list[FieldError]:
    errors: list[FieldError] = []
    seen: set[str] = set()
    for i, gate in enumerate(as_list(gates)):
        name = as_str(as_dict(gate).get("name"))
        errors += validate_qualified_name(name, index(path, i))
        if name in seen:
            errors.append(duplicate(index(path, i), name))
        seen.add(name)
    return errors


def validate_topology_spread(constraints: Any, path: str) -> list[FieldError]:
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


def validate_resource_claims(claims: Any, path: str) -> list[FieldError]:
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
