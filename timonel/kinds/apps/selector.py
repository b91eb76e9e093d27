"""metav1.LabelSelector objects as workload kinds use them, on top of timonel.api.selectors:
conversion that tells "cannot be converted" apart, matching, the two cell formats
kube-apiserver prints, and Go's `%#v` rendering that validation messages quote.
"""

from __future__ import annotations

import json
from typing import Any

from timonel.api.errors import RawValue, StatusError
from timonel.api.selectors import LabelSelector, label_selector_from_object
from timonel.api.selectors import validate_label_selector as validate_label_selector

__all__ = [
    "convert_selector",
    "format_label_selector",
    "go_label_selector",
    "go_string_map",
    "selector_string",
    "validate_label_selector",
]


def convert_selector(selector: Any) -> LabelSelector | None:
    """metav1.LabelSelectorAsSelector, None when it fails (validation reports why). A nil
    selector converts to one that selects nothing, an empty one to one that selects all."""
    if selector is not None and not isinstance(selector, dict):
        return None
    try:
        return label_selector_from_object(selector)
    except (StatusError, AttributeError, TypeError):
        return None


def selector_string(selector: Any) -> str:
    """labels.Selector.String(): "app=web,tier in (a,b)"; "" when nil, empty or invalid."""
    converted = convert_selector(selector)
    return str(converted) if converted is not None else ""


def format_label_selector(selector: Any) -> str:
    """metav1.FormatLabelSelector: the selector string, `<none>` when it is empty,
    `<error>` when it cannot be converted."""
    converted = convert_selector(selector)
    if converted is None:
        return "<error>"
    return str(converted) or "<none>"


# -- Go's %#v, for messages that quote a value the way kube-apiserver does -------------


def go_string_map(value: Any) -> RawValue:
    """`map[string]string{"app":"web"}`, keys sorted as Go prints maps."""
    if not isinstance(value, dict):
        return RawValue("map[string]string(nil)")
    items = ", ".join(
        f"{json.dumps(str(k))}:{json.dumps(str(v))}" for k, v in sorted(value.items())
    )
    return RawValue(f"map[string]string{{{items}}}")


def go_label_selector(selector: Any) -> RawValue:
    """`v1.LabelSelector{MatchLabels:map[string]string{...}, MatchExpressions:[]...(nil)}`."""
    if not isinstance(selector, dict):
        return RawValue("null")
    expressions = selector.get("matchExpressions")
    if expressions is None:
        rendered_expressions = "[]v1.LabelSelectorRequirement(nil)"
    else:
        rendered = []
        for requirement in expressions:
            requirement = requirement if isinstance(requirement, dict) else {}
            values = requirement.get("values")
            rendered_values = (
                "[]string(nil)"
                if values is None
                else "[]string{" + ", ".join(json.dumps(str(v)) for v in values) + "}"
            )
            key = json.dumps(str(requirement.get("key", "")))
            operator = json.dumps(str(requirement.get("operator", "")))
            rendered.append(
                f"v1.LabelSelectorRequirement{{Key:{key}, Operator:{operator}, "
                f"Values:{rendered_values}}}"
            )
        rendered_expressions = "[]v1.LabelSelectorRequirement{" + ", ".join(rendered) + "}"
    match_labels = go_string_map(selector.get("matchLabels"))
    return RawValue(
        f"v1.LabelSelector{{MatchLabels:{match_labels}, MatchExpressions:{rendered_expressions}}}"
    )
