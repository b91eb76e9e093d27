"""Validators shared by every kind: names, labels, annotations, object metadata.

Wording follows apimachinery's `validation` package so that messages read as kubectl
users know them.
"""

from __future__ import annotations

import re
from typing import Any

from timonel.api.errors import FieldError, forbidden, invalid_value, required, too_long

DNS1123_LABEL_MAX = 63
DNS1123_SUBDOMAIN_MAX = 253
LABEL_VALUE_MAX = 63
TOTAL_ANNOTATION_SIZE_MAX = 256 * 1024

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)
_DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_C_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

DNS1123_LABEL_ERROR = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', "
    "regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
DNS1123_SUBDOMAIN_ERROR = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
DNS1035_LABEL_ERROR = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or "
    "'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)
QUALIFIED_NAME_ERROR = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
    "with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used "
    "for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
QUALIFIED_NAME_WITH_PREFIX_ERROR = (
    "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start "
    "and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex "
    "used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS "
    "subdomain prefix and '/' (e.g. 'example.com/MyName')"
)
LABEL_VALUE_ERROR = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
    "'my_value',  or '12345', regex used for validation is "
    "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)


def dns1123_label_problems(value: str) -> list[str]:
    problems = []
    if len(value) > DNS1123_LABEL_MAX:
        problems.append(f"must be no more than {DNS1123_LABEL_MAX} characters")
    if not _DNS1123_LABEL.fullmatch(value):
        # A valid subdomain that is not a label can only be wrong by its dots.
        if _DNS1123_SUBDOMAIN.fullmatch(value):
            problems.append("must not contain dots")
        else:
            problems.append(DNS1123_LABEL_ERROR)
    return problems


def dns1123_subdomain_problems(value: str) -> list[str]:
    problems = []
    if len(value) > DNS1123_SUBDOMAIN_MAX:
        problems.append(f"must be no more than {DNS1123_SUBDOMAIN_MAX} characters")
    if not _DNS1123_SUBDOMAIN.fullmatch(value):
        problems.append(DNS1123_SUBDOMAIN_ERROR)
    return problems


def dns1035_label_problems(value: str) -> list[str]:
    problems = []
    if len(value) > DNS1123_LABEL_MAX:
        problems.append(f"must be no more than {DNS1123_LABEL_MAX} characters")
    if not _DNS1035_LABEL.fullmatch(value):
        problems.append(DNS1035_LABEL_ERROR)
    return problems


def qualified_name_problems(value: str) -> list[str]:
    """A label or annotation key: an optional DNS subdomain prefix and a name part."""
    parts = value.split("/")
    if len(parts) > 2:
        return [QUALIFIED_NAME_WITH_PREFIX_ERROR]
    name = parts[-1]
    problems: list[str] = []
    if len(parts) == 2:
        prefix = parts[0]
        if not prefix:
            problems.append("prefix part must be non-empty")
        else:
            problems.extend("prefix part " + p for p in dns1123_subdomain_problems(prefix))
    if not name:
        problems.append("name part must be non-empty")
    elif len(name) > 63:
        problems.append("name part must be no more than 63 characters")
    # Checked apart from the length: an empty name part gets both messages, as upstream.
    if not _QUALIFIED_NAME.fullmatch(name):
        problems.append(QUALIFIED_NAME_ERROR)
    return problems


def label_value_problems(value: str) -> list[str]:
    problems = []
    if len(value) > LABEL_VALUE_MAX:
        problems.append(f"must be no more than {LABEL_VALUE_MAX} characters")
    if not _LABEL_VALUE.fullmatch(value):
        problems.append(LABEL_VALUE_ERROR)
    return problems


def c_identifier_problems(value: str) -> list[str]:
    if _C_IDENTIFIER.fullmatch(value):
        return []
    return [
        "a valid C identifier must start with alphabetic character or '_', followed by a "
        "string of alphanumeric characters or '_' (e.g. 'my_name',  or 'MY_NAME',  or "
        "'MyName', regex used for validation is '[A-Za-z_][A-Za-z0-9_]*')"
    ]


def validate_labels(labels: Any, path: str) -> list[FieldError]:
    errors: list[FieldError] = []
    if labels is None:
        return errors
    if not isinstance(labels, dict):
        return [invalid_value(path, labels, "must be a map of strings")]
    for key, value in labels.items():
        for problem in qualified_name_problems(key):
            errors.append(invalid_value(path, key, problem))
        if not isinstance(value, str):
            errors.append(invalid_value(f"{path}.{key}", value, "must be a string"))
            continue
        for problem in label_value_problems(value):
            errors.append(invalid_value(path, value, problem))
    return errors


def validate_annotations(annotations: Any, path: str) -> list[FieldError]:
    errors: list[FieldError] = []
    if annotations is None:
        return errors
    if not isinstance(annotations, dict):
        return [invalid_value(path, annotations, "must be a map of strings")]
    total = 0
    for key, value in annotations.items():
        for problem in qualified_name_problems(key.lower()):
            errors.append(invalid_value(path, key, problem))
        total += len(key) + len(value if isinstance(value, str) else "")
    if total > TOTAL_ANNOTATION_SIZE_MAX:
        errors.append(too_long(path, TOTAL_ANNOTATION_SIZE_MAX))
    return errors


def validate_object_meta(
    meta: Any,
    *,
    namespaced: bool,
    name_problems: Any = dns1123_subdomain_problems,
) -> list[FieldError]:
    """What apimachinery's ValidateObjectMeta checks, for any kind."""
    if not isinstance(meta, dict):
        return [required("metadata")]
    errors: list[FieldError] = []
    name = meta.get("name")
    if not name and not meta.get("generateName"):
        errors.append(required("metadata.name", "name or generateName is required"))
    elif name:
        for problem in name_problems(name):
            errors.append(invalid_value("metadata.name", name, problem))
    namespace = meta.get("namespace")
    if namespaced:
        if not namespace:
            errors.append(required("metadata.namespace"))
        else:
            for problem in dns1123_label_problems(namespace):
                errors.append(invalid_value("metadata.namespace", namespace, problem))
    elif namespace:
        errors.append(forbidden("metadata.namespace", "not allowed on this type"))
    errors.extend(validate_labels(meta.get("labels"), "metadata.labels"))
    errors.extend(validate_annotations(meta.get("annotations"), "metadata.annotations"))
    return errors


def validate_label_name(name: str, path: str) -> list[FieldError]:
    """metav1 validation.ValidateLabelName: a label key is a qualified name."""
    return [invalid_value(path, name, problem) for problem in qualified_name_problems(name)]


def validate_label_selector(
    selector: Any, path: str, *, allow_invalid_label_value: bool = False
) -> list[FieldError]:
    """metav1 validation.ValidateLabelSelector: matchLabels and matchExpressions."""
    if not isinstance(selector, dict):
        return []
    errors = validate_labels(selector.get("matchLabels"), f"{path}.matchLabels")
    for i, requirement in enumerate(selector.get("matchExpressions") or []):
        req_path = f"{path}.matchExpressions[{i}]"
        if not isinstance(requirement, dict):
            errors.append(invalid_value(req_path, requirement, "must be an object"))
            continue
        operator = requirement.get("operator", "")
        values = requirement.get("values") or []
        if operator in ("In", "NotIn"):
            if not values:
                errors.append(
                    required(
                        f"{req_path}.values", "must be specified when `operator` is 'In' or 'NotIn'"
                    )
                )
        elif operator in ("Exists", "DoesNotExist"):
            if values:
                errors.append(
                    forbidden(
                        f"{req_path}.values",
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    )
                )
        else:
            errors.append(
                invalid_value(f"{req_path}.operator", operator, "not a valid selector operator")
            )
        errors.extend(validate_label_name(str(requirement.get("key", "")), f"{req_path}.key"))
        if not allow_invalid_label_value:
            for j, value in enumerate(values):
                for problem in label_value_problems(str(value)):
                    errors.append(invalid_value(f"{req_path}.values[{j}]", value, problem))
    return errors
