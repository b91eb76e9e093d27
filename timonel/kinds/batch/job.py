"""batch/v1 Job: defaults, the generated selector, validation and table as kube-apiserver
1.32 has them.

Unless `spec.manualSelector` is true, kube-apiserver owns the selector: at creation it labels
the pod template with the Job's uid and name (both the legacy and the
`batch.kubernetes.io/` keys) and selects the uid.
"""

from __future__ import annotations

import copy
import itertools
import re
from datetime import UTC, datetime
from typing import Any, ClassVar

from timonel.api.errors import (
    ErrorType,
    FieldError,
    duplicate,
    invalid_value,
    not_supported,
    required,
    too_long,
)
from timonel.api.objects import Object, metadata, parse_rfc3339
from timonel.api.validation import (
    dns1123_label_problems,
    dns1123_subdomain_problems,
    qualified_name_problems,
)
from timonel.kinds.apps.deployment import validate_selector_unchanged
from timonel.kinds.apps.intstr import is_int, validate_nonnegative
from timonel.kinds.apps.selector import (
    convert_selector,
    format_label_selector,
    go_label_selector,
    go_string_map,
    validate_label_selector,
)
from timonel.kinds.apps.workload import (
    CONTAINERS_COLUMN,
    IMAGES_COLUMN,
    as_dict,
    container_cells,
    default_template,
    pod_name_warning,
    semantic_equal,
    spec_of,
    status_of,
    validate_selector_matches_template,
)
from timonel.kinds.base import AGE_COLUMN, NAME_COLUMN, Column, Strategy, dig
from timonel.kinds.core.podspec import validate_pod_template
from timonel.kinds.printing import creation_age, human_duration

CONTROLLER_UID_LABEL = "batch.kubernetes.io/controller-uid"
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
LEGACY_CONTROLLER_UID_LABEL = "controller-uid"
LEGACY_JOB_NAME_LABEL = "job-name"

COMPLETION_MODES = ["NonIndexed", "Indexed"]
POD_REPLACEMENT_POLICIES = ["Failed", "TerminatingOrFailed"]
POD_FAILURE_ACTIONS = ["Count", "FailIndex", "FailJob", "Ignore"]
EXIT_CODE_OPERATORS = ["In", "NotIn"]
CONDITION_STATUSES = ["False", "True", "Unknown"]
MAX_PARALLELISM_FOR_INDEXED = 100_000
MAX_FAILED_INDEXES = 100_000
COMPLETIONS_SOFT_LIMIT = 100_000
PARALLELISM_LIMIT_FOR_HIGH_COMPLETIONS = 10_000
MAX_FAILED_INDEXES_FOR_HIGH_COMPLETIONS = 10_000
MAX_POD_FAILURE_RULES = 20
MAX_EXIT_CODE_VALUES = 255
MAX_CONDITION_PATTERNS = 20
MAX_MANAGED_BY_LENGTH = 63
MAX_SUCCESS_POLICY_RULES = 20
MAX_INT32 = 2**31 - 1

JOB_SELECTOR_COLUMN = Column(
    "Selector",
    priority=1,
    description="A label query over pods that should match the pod count. Normally, the system "
    "sets this field for you. More info: https://kubernetes.io/docs/concepts/overview/"
    "working-with-objects/labels/#label-selectors",
)


# -- defaults -------------------------------------------------------------------------------


def default_pod_failure_policy(spec: dict[str, Any]) -> None:
    policy = spec.get("podFailurePolicy")
    if not isinstance(policy, dict):
        return
    for rule in policy.get("rules") or []:
        for pattern in (rule.get("onPodConditions") or []) if isinstance(rule, dict) else []:
            if isinstance(pattern, dict) and not pattern.get("status"):
                pattern["status"] = "True"


def default_job_spec_template(spec: dict[str, Any]) -> None:
    """Defaults a JobSpec gets inside a CronJob's jobTemplate: only its pod template's."""
    if not isinstance(spec.get("template"), dict):
        spec["template"] = {}
    default_template(spec["template"])
    default_pod_failure_policy(spec)


def default_job(obj: Object) -> None:
    """SetDefaults_Job plus the pod template's defaults."""
    spec = spec_of(obj)
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
        spec["parallelism"] = 1
    if spec.get("parallelism") is None:
        spec["parallelism"] = 1
    if spec.get("backoffLimit") is None:
        spec["backoffLimit"] = MAX_INT32 if spec.get("backoffLimitPerIndex") is not None else 6
    template_labels = dig(spec, "template", "metadata", "labels")
    if isinstance(template_labels, dict) and not (obj.get("metadata") or {}).get("labels"):
        metadata(obj)["labels"] = dict(template_labels)
    if spec.get("completionMode") is None:
        spec["completionMode"] = "NonIndexed"
    if spec.get("suspend") is None:
        spec["suspend"] = False
    if spec.get("podReplacementPolicy") is None:
        has_failure_policy = spec.get("podFailurePolicy") is not None
        spec["podReplacementPolicy"] = "Failed" if has_failure_policy else "TerminatingOrFailed"
    if spec.get("manualSelector") is None:
        spec["manualSelector"] = False
    default_job_spec_template(spec)


def generate_selector(obj: Object) -> None:
    """Label the pod template with the Job's uid and name and select the uid, keeping
    whatever the client already set (validation rejects a mismatch)."""
    meta = obj.get("metadata") or {}
    name, uid = str(meta.get("name", "")), str(meta.get("uid", ""))
    spec = spec_of(obj)
    template = spec.setdefault("template", {})
    template_meta = template.get("metadata")
    if not isinstance(template_meta, dict):
        template_meta = {}
        template["metadata"] = template_meta
    labels = template_meta.get("labels")
    if not isinstance(labels, dict):
        labels = {}
        template_meta["labels"] = labels
    for key in (LEGACY_JOB_NAME_LABEL, JOB_NAME_LABEL):
        labels.setdefault(key, name)
    for key in (LEGACY_CONTROLLER_UID_LABEL, CONTROLLER_UID_LABEL):
        labels.setdefault(key, uid)
    selector = spec.get("selector")
    if not isinstance(selector, dict):
        selector = {}
        spec["selector"] = selector
    match_labels = selector.get("matchLabels")
    if not isinstance(match_labels, dict):
        match_labels = {}
        selector["matchLabels"] = match_labels
    match_labels.setdefault(CONTROLLER_UID_LABEL, uid)


# -- validation -----------------------------------------------------------------------------


def too_many(path: str, count: int, limit: int) -> FieldError:
    """field.TooMany: `Too many: 30: must have at most 20 items`."""
    return FieldError(ErrorType.TOO_MANY, path, f"{count}: must have at most {limit} items")


def _has_label(template: Any, key: str, expected: str, path: str) -> list[FieldError]:
    """ValidateHasLabel on the template's metadata."""
    labels = dig(template, "metadata", "labels")
    labels = labels if isinstance(labels, dict) else {}
    label_path = f"{path}.labels[{key}]"
    if key not in labels:
        return [required(label_path, expected)]
    if labels[key] != expected:
        return [invalid_value(label_path, go_string_map(labels), f"must be '{expected}'")]
    return []


def validate_generated_selector(obj: Object, require_prefixed_labels: bool) -> list[FieldError]:
    spec = obj.get("spec") or {}
    if spec.get("manualSelector") is True or spec.get("selector") is None:
        return []
    meta = obj.get("metadata") or {}
    uid, name = str(meta.get("uid", "")), str(meta.get("name", ""))
    errors: list[FieldError] = []
    if not uid:
        errors.append(required("metadata.uid"))
    template = spec.get("template")
    path = "spec.template.metadata"
    errors += _has_label(template, LEGACY_CONTROLLER_UID_LABEL, uid, path)
    errors += _has_label(template, LEGACY_JOB_NAME_LABEL, name, path)
    expected = {LEGACY_CONTROLLER_UID_LABEL: uid, LEGACY_JOB_NAME_LABEL: name}
    if require_prefixed_labels:
        errors += _has_label(template, CONTROLLER_UID_LABEL, uid, path)
        errors += _has_label(template, JOB_NAME_LABEL, name, path)
        expected.update({CONTROLLER_UID_LABEL: uid, JOB_NAME_LABEL: name})
    converted = convert_selector(spec.get("selector"))
    if converted is not None and not converted.matches(expected):
        errors.append(
            invalid_value(
                "spec.selector",
                go_label_selector(spec.get("selector")),
                "`selector` not auto-generated",
            )
        )
    return errors


def _validate_exit_codes(
    requirement: dict[str, Any], path: str, container_names: set[str]
) -> list[FieldError]:
    errors: list[FieldError] = []
    operator = requirement.get("operator") or ""
    if not operator:
        errors.append(required(f"{path}.operator", 'valid values: ["In" "NotIn"]'))
    elif operator not in EXIT_CODE_OPERATORS:
        errors.append(not_supported(f"{path}.operator", operator, EXIT_CODE_OPERATORS))
    container = requirement.get("containerName")
    if container is not None and container not in container_names:
        errors.append(
            invalid_value(
                f"{path}.containerName",
                container,
                "must be one of the container or initContainer names in the pod template",
            )
        )
    values = requirement.get("values") or []
    values_path = f"{path}.values"
    if not values:
        errors.append(invalid_value(values_path, values, "at least one value is required"))
    elif len(values) > MAX_EXIT_CODE_VALUES:
        errors.append(too_many(values_path, len(values), MAX_EXIT_CODE_VALUES))
    seen: set[Any] = set()
    for index, value in enumerate(values):
        if operator == "In" and value == 0:
            errors.append(
                invalid_value(f"{values_path}[{index}]", value, "must not be 0 for the In operator")
            )
        if value in seen:
            errors.append(duplicate(f"{values_path}[{index}]", value))
        seen.add(value)
    if any(is_int(a) and is_int(b) and a > b for a, b in itertools.pairwise(values)):
        errors.append(invalid_value(values_path, values, "must be ordered"))
    return errors


def _validate_pod_conditions(patterns: list[Any], path: str) -> list[FieldError]:
    errors: list[FieldError] = []
    if len(patterns) > MAX_CONDITION_PATTERNS:
        errors.append(too_many(path, len(patterns), MAX_CONDITION_PATTERNS))
    for index, pattern in enumerate(patterns):
        pattern = pattern if isinstance(pattern, dict) else {}
        pattern_path = f"{path}[{index}]"
        condition_type = str(pattern.get("type") or "")
        for problem in qualified_name_problems(condition_type):
            errors.append(invalid_value(f"{pattern_path}.type", condition_type, problem))
        status = pattern.get("status") or ""
        if not status:
            errors.append(
                required(f"{pattern_path}.status", 'valid values: ["False" "True" "Unknown"]')
            )
        elif status not in CONDITION_STATUSES:
            errors.append(not_supported(f"{pattern_path}.status", status, CONDITION_STATUSES))
    return errors


def _validate_pod_failure_policy(spec: dict[str, Any], path: str) -> list[FieldError]:
    policy = spec.get("podFailurePolicy")
    rules = (policy.get("rules") if isinstance(policy, dict) else None) or []
    rules_path = f"{path}.rules"
    errors: list[FieldError] = []
    if len(rules) > MAX_POD_FAILURE_RULES:
        errors.append(too_many(rules_path, len(rules), MAX_POD_FAILURE_RULES))
    pod_spec = dig(spec, "template", "spec", default={})
    container_names = {
        str(c.get("name"))
        for field in ("containers", "initContainers")
        for c in (pod_spec.get(field) or [] if isinstance(pod_spec, dict) else [])
        if isinstance(c, dict)
    }
    for index, rule in enumerate(rules):
        rule = rule if isinstance(rule, dict) else {}
        rule_path = f"{rules_path}[{index}]"
        action = rule.get("action") or ""
        if not action:
            errors.append(
                required(
                    f"{rule_path}.action", 'valid values: ["Count" "FailIndex" "FailJob" "Ignore"]'
                )
            )
        elif action == "FailIndex":
            if spec.get("backoffLimitPerIndex") is None:
                errors.append(
                    invalid_value(
                        f"{rule_path}.action", action, "requires the backoffLimitPerIndex to be set"
                    )
                )
        elif action not in POD_FAILURE_ACTIONS:
            errors.append(not_supported(f"{rule_path}.action", action, POD_FAILURE_ACTIONS))
        exit_codes = rule.get("onExitCodes")
        conditions = rule.get("onPodConditions") or []
        if isinstance(exit_codes, dict):
            errors += _validate_exit_codes(exit_codes, f"{rule_path}.onExitCodes", container_names)
        if conditions:
            errors += _validate_pod_conditions(conditions, f"{rule_path}.onPodConditions")
        if exit_codes is not None and conditions:
            errors.append(
                FieldError(
                    ErrorType.INVALID,
                    rule_path,
                    "specifying both OnExitCodes and OnPodConditions is not supported",
                )
            )
        if exit_codes is None and not conditions:
            errors.append(
                FieldError(
                    ErrorType.INVALID,
                    rule_path,
                    "specifying one of OnExitCodes and OnPodConditions is required",
                )
            )
    return errors


def _validate_success_policy(spec: dict[str, Any], path: str) -> list[FieldError]:
    policy = spec.get("successPolicy")
    if policy is None:
        return []
    policy = policy if isinstance(policy, dict) else {}
    errors: list[FieldError] = []
    if spec.get("completionMode") != "Indexed":
        errors.append(invalid_value(path, policy, "requires indexed completion mode"))
    rules = policy.get("rules") or []
    if not rules:
        errors.append(
            required(
                f"{path}.rules",
                "at least one rules must be specified when the successPolicy is specified",
            )
        )
    if len(rules) > MAX_SUCCESS_POLICY_RULES:
        errors.append(too_many(f"{path}.rules", len(rules), MAX_SUCCESS_POLICY_RULES))
    completions = spec.get("completions")
    for index, rule in enumerate(rules):
        rule = rule if isinstance(rule, dict) else {}
        rule_path = f"{path}.rules[{index}]"
        count = rule.get("succeededCount")
        if rule.get("succeededIndexes") is None and count is None:
            errors.append(
                required(
                    rule_path,
                    "at least one of succeededCount or succeededIndexes must be specified",
                )
            )
        if count is not None:
            errors += validate_nonnegative(count, f"{rule_path}.succeededCount")
            if is_int(count) and is_int(completions) and count > completions:
                errors.append(
                    invalid_value(
                        f"{rule_path}.succeededCount",
                        count,
                        f"must be less than or equal to {completions} "
                        "(the number of specified completions)",
                    )
                )
    return errors


_HTTP_PATH = re.compile(r"^[A-Za-z0-9/\-._~%!$&'()*+,;=:]+$")


def _validate_managed_by(value: Any, path: str) -> list[FieldError]:
    """IsDomainPrefixedPath and a length limit."""
    text = str(value)
    host, slash, rest = text.partition("/")
    if not slash or not host or not rest:
        return [invalid_value(path, text, 'must be a domain-prefixed path (such as "acme.io/foo")')]
    errors = [invalid_value(path, host, problem) for problem in dns1123_subdomain_problems(host)]
    if not _HTTP_PATH.match(rest):
        errors.append(
            invalid_value(
                path,
                rest,
                "Invalid path: regex used for validation is '[A-Za-z0-9/\\-._~%!$&'()*+,;=:]+'",
            )
        )
    if len(text) > MAX_MANAGED_BY_LENGTH:
        errors.append(too_long(path, MAX_MANAGED_BY_LENGTH))
    return errors


def validate_job_spec_common(spec: Any, path: str) -> list[FieldError]:
    """validateJobSpec: what a Job and a CronJob's job template both must satisfy (the
    selector aside)."""
    spec = spec if isinstance(spec, dict) else {}
    errors: list[FieldError] = []
    for name in (
        "parallelism",
        "completions",
        "activeDeadlineSeconds",
        "backoffLimit",
        "ttlSecondsAfterFinished",
        "backoffLimitPerIndex",
    ):
        errors += validate_nonnegative(spec.get(name), f"{path}.{name}")
    parallelism, completions = spec.get("parallelism"), spec.get("completions")
    max_failed = spec.get("maxFailedIndexes")
    per_index = spec.get("backoffLimitPerIndex")
    if max_failed is not None:
        errors += validate_nonnegative(max_failed, f"{path}.maxFailedIndexes")
        if per_index is None:
            errors.append(
                required(f"{path}.backoffLimitPerIndex", "when maxFailedIndexes is specified")
            )
    mode = spec.get("completionMode")
    if mode is not None:
        if mode not in COMPLETION_MODES:
            errors.append(not_supported(f"{path}.completionMode", mode, COMPLETION_MODES))
        if mode == "Indexed":
            if completions is None:
                errors.append(required(f"{path}.completions", "when completion mode is Indexed"))
            if is_int(parallelism) and parallelism > MAX_PARALLELISM_FOR_INDEXED:
                errors.append(
                    invalid_value(
                        f"{path}.parallelism",
                        parallelism,
                        f"must be less than or equal to {MAX_PARALLELISM_FOR_INDEXED} "
                        "when completion mode is Indexed",
                    )
                )
            if is_int(completions) and is_int(max_failed) and max_failed > completions:
                errors.append(
                    invalid_value(
                        f"{path}.maxFailedIndexes",
                        max_failed,
                        "must be less than or equal to completions",
                    )
                )
            if is_int(max_failed) and max_failed > MAX_FAILED_INDEXES:
                errors.append(
                    invalid_value(
                        f"{path}.maxFailedIndexes",
                        max_failed,
                        f"must be less than or equal to {MAX_FAILED_INDEXES}",
                    )
                )
            if (
                is_int(completions)
                and completions > COMPLETIONS_SOFT_LIMIT
                and per_index is not None
            ):
                suffix = (
                    f"when completions are above {COMPLETIONS_SOFT_LIMIT} and used with "
                    "backoff limit per index"
                )
                if max_failed is None:
                    errors.append(
                        required(
                            f"{path}.maxFailedIndexes",
                            f"must be specified when completions is above {COMPLETIONS_SOFT_LIMIT}",
                        )
                    )
                if is_int(parallelism) and parallelism > PARALLELISM_LIMIT_FOR_HIGH_COMPLETIONS:
                    errors.append(
                        invalid_value(
                            f"{path}.parallelism",
                            parallelism,
                            f"must be less than or equal to "
                            f"{PARALLELISM_LIMIT_FOR_HIGH_COMPLETIONS} {suffix}",
                        )
                    )
                if is_int(max_failed) and max_failed > MAX_FAILED_INDEXES_FOR_HIGH_COMPLETIONS:
                    errors.append(
                        invalid_value(
                            f"{path}.maxFailedIndexes",
                            max_failed,
                            f"must be less than or equal to "
                            f"{MAX_FAILED_INDEXES_FOR_HIGH_COMPLETIONS} {suffix}",
                        )
                    )
    if mode in (None, "NonIndexed"):
        if per_index is not None:
            errors.append(
                invalid_value(
                    f"{path}.backoffLimitPerIndex", per_index, "requires indexed completion mode"
                )
            )
        if max_failed is not None:
            errors.append(
                invalid_value(
                    f"{path}.maxFailedIndexes", max_failed, "requires indexed completion mode"
                )
            )
    if spec.get("podFailurePolicy") is not None:
        errors += _validate_pod_failure_policy(spec, f"{path}.podFailurePolicy")
    errors += _validate_success_policy(spec, f"{path}.successPolicy")
    replacement = spec.get("podReplacementPolicy")
    if replacement is not None:
        if spec.get("podFailurePolicy") is not None:
            if replacement != "Failed":
                errors.append(
                    not_supported(f"{path}.podReplacementPolicy", replacement, ["Failed"])
                )
        elif replacement not in POD_REPLACEMENT_POLICIES:
            errors.append(
                not_supported(f"{path}.podReplacementPolicy", replacement, POD_REPLACEMENT_POLICIES)
            )
    if spec.get("managedBy") is not None:
        errors += _validate_managed_by(spec["managedBy"], f"{path}.managedBy")
    template = as_dict(spec.get("template"))
    template_path = f"{path}.template"
    errors += validate_pod_template(template, template_path)
    restart_policy = dig(template, "spec", "restartPolicy", default="")
    restart_path = f"{template_path}.spec.restartPolicy"
    if restart_policy in ("Always", ""):
        errors.append(required(restart_path, 'valid values: "OnFailure", "Never"'))
    elif restart_policy not in ("OnFailure", "Never"):
        errors.append(not_supported(restart_path, restart_policy, ["OnFailure", "Never"]))
    elif spec.get("podFailurePolicy") is not None and restart_policy != "Never":
        errors.append(
            invalid_value(
                restart_path,
                restart_policy,
                'only "Never" is supported when podFailurePolicy is specified',
            )
        )
    return errors


def validate_job_spec(spec: Any) -> list[FieldError]:
    """ValidateJobSpec: the common rules, and a selector that selects the template."""
    spec = spec if isinstance(spec, dict) else {}
    errors = validate_job_spec_common(spec, "spec")
    selector = spec.get("selector")
    if selector is None:
        errors.append(required("spec.selector"))
    else:
        errors += validate_label_selector(selector, "spec.selector")
    if selector is not None and convert_selector(selector) is not None:
        errors += validate_selector_matches_template(
            selector, spec.get("template"), "spec.template.metadata.labels"
        )
    return errors


def validate_job(obj: Object, *, require_prefixed_labels: bool = True) -> list[FieldError]:
    """ValidateJob (object metadata aside)."""
    spec = as_dict(obj.get("spec"))
    errors = validate_generated_selector(obj, require_prefixed_labels)
    errors += validate_job_spec(spec)
    completions = spec.get("completions")
    if spec.get("completionMode") == "Indexed" and is_int(completions) and completions > 0:
        name = str((obj.get("metadata") or {}).get("name", ""))
        hostname = f"{name}-{completions - 1}"
        if dns1123_label_problems(hostname):
            errors.append(
                invalid_value(
                    "metadata.name",
                    name,
                    f"will not able to create pod with invalid DNS label: {hostname}",
                )
            )
    return errors


def _immutable(path: str, new: Any, old: Any, shown: Any = None) -> list[FieldError]:
    if semantic_equal(new, old):
        return []
    return [invalid_value(path, new if shown is None else shown, "field is immutable")]


def _template_for_comparison(template: Any, other: Any) -> Any:
    """The old template with the fields a suspended, never-started Job may change taken
    from the new one (node affinity, node selector, tolerations, labels, annotations,
    scheduling gates)."""
    old = copy.deepcopy(template) if isinstance(template, dict) else {}
    new = other if isinstance(other, dict) else {}
    old_meta = old.setdefault("metadata", {})
    new_meta = new.get("metadata") or {}
    for name in ("labels", "annotations"):
        old_meta[name] = new_meta.get(name)
    old_spec = old.setdefault("spec", {})
    new_spec = new.get("spec") or {}
    for name in ("nodeSelector", "tolerations", "schedulingGates"):
        old_spec[name] = new_spec.get(name)
    old_affinity, new_affinity = old_spec.get("affinity"), new_spec.get("affinity")
    if new_affinity is None and isinstance(old_affinity, dict):
        rest = {k: v for k, v in old_affinity.items() if k != "nodeAffinity"}
        old_spec["affinity"] = rest or None
    elif isinstance(new_affinity, dict):
        merged = dict(old_affinity) if isinstance(old_affinity, dict) else {}
        merged["nodeAffinity"] = new_affinity.get("nodeAffinity")
        old_spec["affinity"] = merged
    return old


def validate_job_update(new: Object, old: Object) -> list[FieldError]:
    """ValidateJobSpecUpdate: what may not change once a Job exists."""
    spec = as_dict(new.get("spec"))
    old_spec = as_dict(old.get("spec"))
    errors: list[FieldError] = []
    completions, old_completions = spec.get("completions"), old_spec.get("completions")
    if spec.get("completionMode") != "Indexed":
        errors += _immutable("spec.completions", completions, old_completions)
    elif completions not in (old_completions, None, spec.get("parallelism")):
        # Elastic Indexed Jobs scale completions and parallelism together.
        errors.append(
            invalid_value(
                "spec.completions",
                completions,
                "can only be modified in tandem with spec.parallelism",
            )
        )
    errors += validate_selector_unchanged(new, old)
    old_template = old_spec.get("template")
    suspended = old_spec.get("suspend") is True
    never_started = status_of(old).get("startTime") is None
    if suspended and never_started:
        old_template = _template_for_comparison(old_template, spec.get("template"))
    errors += _immutable("spec.template", spec.get("template"), old_template)
    for name in (
        "completionMode",
        "podFailurePolicy",
        "backoffLimitPerIndex",
        "managedBy",
        "successPolicy",
    ):
        errors += _immutable(f"spec.{name}", spec.get(name), old_spec.get(name))
    return errors


def validate_job_status(status: Any) -> list[FieldError]:
    status = status if isinstance(status, dict) else {}
    errors: list[FieldError] = []
    for name in ("active", "succeeded", "failed", "ready", "terminating"):
        errors += validate_nonnegative(status.get(name), f"status.{name}")
    uncounted = status.get("uncountedTerminatedPods")
    if isinstance(uncounted, dict):
        seen: set[str] = set()
        for group in ("succeeded", "failed"):
            for index, uid in enumerate(uncounted.get(group) or []):
                path = f"status.uncountedTerminatedPods.{group}[{index}]"
                if uid == "":
                    errors.append(invalid_value(path, uid, "must not be empty"))
                elif uid in seen:
                    errors.append(duplicate(path, uid))
                else:
                    seen.add(uid)
    return errors


# -- reading --------------------------------------------------------------------------------


def _condition_true(status: dict[str, Any], condition_type: str) -> bool:
    for condition in status.get("conditions") or []:
        if isinstance(condition, dict) and condition.get("type") == condition_type:
            return condition.get("status") == "True"
    return False


def job_status_cell(obj: Object) -> str:
    """The STATUS column: Complete, Failed, Terminating, Suspended, FailureTarget, Running."""
    status = status_of(obj)
    if _condition_true(status, "Complete"):
        return "Complete"
    if _condition_true(status, "Failed"):
        return "Failed"
    if (obj.get("metadata") or {}).get("deletionTimestamp"):
        return "Terminating"
    if _condition_true(status, "Suspended"):
        return "Suspended"
    if _condition_true(status, "FailureTarget"):
        return "FailureTarget"
    return "Running"


def completions_cell(obj: Object) -> str:
    """ "2/3", or for a Job without completions "0/1", "0/1 of 4" when parallel."""
    spec = obj.get("spec") or {}
    succeeded = status_of(obj).get("succeeded")
    succeeded = succeeded if is_int(succeeded) else 0
    completions = spec.get("completions")
    if is_int(completions):
        return f"{succeeded}/{completions}"
    parallelism = spec.get("parallelism")
    if is_int(parallelism) and parallelism > 1:
        return f"{succeeded}/1 of {parallelism}"
    return f"{succeeded}/1"


def duration_cell(obj: Object, now: datetime | None = None) -> str:
    status = status_of(obj)
    started = status.get("startTime")
    if not started:
        return ""
    try:
        start = parse_rfc3339(started)
        completed = status.get("completionTime")
        end = parse_rfc3339(completed) if completed else (now or datetime.now(UTC))
    except ValueError:
        return ""
    return human_duration((end - start).total_seconds())


class JobStrategy(Strategy):
    group: ClassVar[str] = "batch"
    version: ClassVar[str] = "v1"
    kind: ClassVar[str] = "Job"
    plural: ClassVar[str] = "jobs"
    singular: ClassVar[str] = "job"
    categories: ClassVar[tuple[str, ...]] = ("all",)
    has_status: ClassVar[bool] = True
    tracks_generation: ClassVar[bool] = True
    field_labels: ClassVar[tuple[str, ...]] = ("status.successful",)
    # Checked by validate_update, with kube-apiserver's wording; the template is partly
    # mutable while suspended, and completions scale with parallelism on Indexed Jobs.
    immutable_fields: ClassVar[tuple[str, ...]] = (
        "spec.selector",
        "spec.completionMode",
        "spec.podFailurePolicy",
        "spec.backoffLimitPerIndex",
        "spec.managedBy",
        "spec.successPolicy",
    )
    columns: ClassVar[tuple[Column, ...]] = (
        NAME_COLUMN,
        Column("Status", description="Status of the job."),
        Column(
            "Completions",
            description="The number of pods which reached phase Succeeded. The value increases "
            "monotonically for a given spec. However, it may decrease in reaction to scale down "
            "of elastic indexed jobs.",
        ),
        Column("Duration", description="Time required to complete the job."),
        AGE_COLUMN,
        CONTAINERS_COLUMN,
        IMAGES_COLUMN,
        JOB_SELECTOR_COLUMN,
    )

    def default(self, obj: Object) -> None:
        default_job(obj)

    def prepare_for_create(self, obj: Object) -> None:
        super().prepare_for_create(obj)
        if (obj.get("spec") or {}).get("manualSelector") is not True:
            generate_selector(obj)
        # kube-apiserver answers with the object as read back from storage, which runs the
        # defaults again: a Job without labels takes its template's, generated ones included.
        template_labels = dig(obj, "spec", "template", "metadata", "labels")
        if isinstance(template_labels, dict) and not metadata(obj).get("labels"):
            metadata(obj)["labels"] = dict(template_labels)
        obj["status"] = {}

    def validate(self, obj: Object) -> list[FieldError]:
        return validate_job(obj)

    def validate_update(self, new: Object, old: Object) -> list[FieldError]:
        labels = dig(old, "spec", "template", "metadata", "labels", default={})
        require_prefixed = JOB_NAME_LABEL in labels and CONTROLLER_UID_LABEL in labels
        return validate_job(new, require_prefixed_labels=require_prefixed) + validate_job_update(
            new, old
        )

    def validate_status_update(self, new: Object, old: Object) -> list[FieldError]:
        return validate_job_status(new.get("status"))

    def warnings(self, obj: Object) -> list[str]:
        return pod_name_warning(obj)

    def table_row(self, obj: Object) -> list[Any]:
        spec = obj.get("spec") or {}
        names, images = container_cells(spec.get("template"))
        return [
            (obj.get("metadata") or {}).get("name", ""),
            job_status_cell(obj),
            completions_cell(obj),
            duration_cell(obj),
            creation_age(obj),
            names,
            images,
            format_label_selector(spec.get("selector")),
        ]

    def selectable_fields(self, obj: Object) -> dict[str, str]:
        fields = super().selectable_fields(obj)
        succeeded = status_of(obj).get("succeeded")
        fields["status.successful"] = str(succeeded if is_int(succeeded) else 0)
        return fields
