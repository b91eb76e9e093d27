"""Kubernetes objects as plain JSON-shaped dicts, and the few accessors everything needs.

timonel keeps one version per kind and handles objects in their JSON form: the API
server decodes a body once into an `Object` and every layer above storage works on it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, NewType

Object = dict[str, Any]

# "namespace/name" for namespaced objects, "name" for cluster-scoped ones.
ObjectKey = NewType("ObjectKey", str)


def metadata(obj: Object) -> dict[str, Any]:
    """The object's metadata, created empty when missing."""
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        meta = {}
        obj["metadata"] = meta
    return meta


def object_key(obj: Object) -> ObjectKey:
    meta = obj.get("metadata") or {}
    namespace = meta.get("namespace") or ""
    name = meta.get("name") or ""
    return ObjectKey(f"{namespace}/{name}" if namespace else name)


def now_rfc3339() -> str:
    """The current time as Kubernetes writes timestamps: RFC 3339, UTC, whole seconds."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))
