"""Helpers for table cells, worded as kube-apiserver's printers word them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from timonel.api.objects import Object, parse_rfc3339


def human_duration(seconds: float) -> str:
    """apimachinery's duration.HumanDuration: "5s", "10m", "3h5m", "2d3h", "3y45d"."""
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    s = int(seconds)
    if s < 60 * 2:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        rem = s % 60
        return f"{minutes}m{rem}s" if rem else f"{minutes}m"
    if minutes < 60 * 3:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        rem = minutes % 60
        return f"{hours}h{rem}m" if rem else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rem = hours % 24
        return f"{hours // 24}d{rem}h" if rem else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        return f"{hours // 24 // 365}y{days}d" if days else f"{hours // 24 // 365}y"
    return f"{hours // 24 // 365}y"


def age(timestamp: str | None, now: datetime | None = None) -> str:
    """translateTimestampSince: the age cell of a table row."""
    if not timestamp:
        return "<unknown>"
    try:
        then = parse_rfc3339(timestamp)
    except ValueError:
        return "<unknown>"
    now = now or datetime.now(UTC)
    return human_duration((now - then).total_seconds())


def creation_age(obj: Object) -> str:
    return age((obj.get("metadata") or {}).get("creationTimestamp"))


def none_if_empty(value: str) -> str:
    return value if value else "<none>"


def format_label_selector(selector: Any) -> str:
    """metav1.FormatLabelSelector: "app=nginx,tier in (a,b)", or "<none>"."""
    if not isinstance(selector, dict):
        return "<none>"
    parts: list[str] = [f"{k}={v}" for k, v in (selector.get("matchLabels") or {}).items()]
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key", ""), expr.get("operator", ""), expr.get("values") or []
        if op == "In":
            parts.append(f"{key} in ({','.join(values)})")
        elif op == "NotIn":
            parts.append(f"{key} notin ({','.join(values)})")
        elif op == "Exists":
            parts.append(key)
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
    if not parts:
        return "<none>"
    return ",".join(parts)


def format_map_selector(selector: Any) -> str:
    """labels.FormatLabels for a plain map selector (Services)."""
    if not isinstance(selector, dict) or not selector:
        return "<none>"
    return ",".join(f"{k}={v}" for k, v in sorted(selector.items()))


def field_description(group: str, version: str, kind: str, *path: str) -> str:
    """The OpenAPI description of a field (what printers.go takes from SwaggerDoc), "" when
    the kind or field is unknown."""
    from timonel.schema.definitions import kubernetes_definitions

    node = kubernetes_definitions().for_kind(group, version, kind)
    for part in path:
        if node is None:
            return ""
        node = node.child(part)
    return node.description if node is not None else ""
