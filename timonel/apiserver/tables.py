"""meta.k8s.io/v1 Tables: the server-side rows `kubectl get` prints.

kube-apiserver always fills the wide (priority 1) cells; kubectl hides them without
`-o wide`. A row's `object` is the object's metadata (PartialObjectMetadata) unless the
client asks `includeObject=Object` or `None`.
"""

from __future__ import annotations

from typing import Any

from timonel.api.objects import Object
from timonel.kinds.base import Strategy

TABLE_CONTENT_TYPE = "application/json;as=Table;v=v1;g=meta.k8s.io"


def _row_object(obj: Object, include: str) -> Any:
    if include == "None":
        return None
    if include == "Object":
        return obj
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata", {}),
    }


def table_row(strategy: Strategy, obj: Object, include: str) -> dict[str, Any]:
    row: dict[str, Any] = {"cells": strategy.table_row(obj)}
    conditions = strategy.row_conditions(obj)
    if conditions:
        row["conditions"] = conditions
    row_object = _row_object(obj, include)
    if row_object is not None:
        row["object"] = row_object
    return row


def table(
    strategy: Strategy,
    objects: list[Object],
    *,
    include: str = "Metadata",
    resource_version: str = "",
    continue_token: str = "",
    remaining: int | None = None,
    with_columns: bool = True,
) -> dict[str, Any]:
    metadata: dict[str, Any] = {}
    if resource_version:
        metadata["resourceVersion"] = resource_version
    if continue_token:
        metadata["continue"] = continue_token
    if remaining:
        metadata["remainingItemCount"] = remaining
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": [c.definition() for c in strategy.columns] if with_columns else None,
        "rows": [table_row(strategy, obj, include) for obj in objects],
    }
