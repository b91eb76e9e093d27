"""`ApiClient`: typed verbs over a transport. Failures raise `StatusError` built from the
server's Status, so callers test `error.code == 409` as client-go callers test IsConflict."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Final

import orjson

from timonel.api.errors import StatusError
from timonel.api.objects import Object
from timonel.client.resources import Resource
from timonel.client.transport import Query, RawResponse, StreamRefused, Transport

JSON = "application/json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"


def _headers_for(content_type: str) -> dict[str, str]:
    return {"Content-Type": content_type, "Accept": JSON}


# Shared by every JSON request: transports copy the headers they are given.
_JSON_HEADERS: Final = _headers_for(JSON)


@dataclass(frozen=True, slots=True)
class WatchEvent:
    type: str  # ADDED, MODIFIED, DELETED, BOOKMARK, ERROR
    object: Object


def _error(response: RawResponse) -> StatusError:
    try:
        status = orjson.loads(response.body)
    except orjson.JSONDecodeError:
        status = None
    if isinstance(status, dict) and status.get("kind") == "Status":
        return StatusError(
            int(status.get("code") or response.status),
            str(status.get("reason", "")),
            str(status.get("message", "")),
            details=status.get("details"),
        )
    return StatusError(response.status, "", response.body[:200].decode(errors="replace"))


def is_not_found(error: BaseException) -> bool:
    return isinstance(error, StatusError) and error.code == 404


def is_conflict(error: BaseException) -> bool:
    return isinstance(error, StatusError) and error.code == 409


class ApiClient:
    def __init__(self, transport: Transport, *, field_manager: str = "") -> None:
        self.transport = transport
        self.field_manager = field_manager

    async def close(self) -> None:
        await self.transport.close()

    async def _call(
        self,
        method: str,
        path: str,
        *,
        query: Query | None = None,
        body: Any = None,
        content_type: str = JSON,
    ) -> Object:
        raw = (
            body if isinstance(body, bytes) else (orjson.dumps(body) if body is not None else None)
        )
        headers = _JSON_HEADERS if content_type == JSON else _headers_for(content_type)
        response = await self.transport.request(
            method, path, query=query, body=raw, headers=headers
        )
        if response.status >= 400:
            raise _error(response)
        result: Object = orjson.loads(response.body) if response.body else {}
        return result

    def _write_query(
        self, dry_run: bool = False, field_manager: str = ""
    ) -> dict[str, str | list[str]]:
        query: dict[str, str | list[str]] = {}
        manager = field_manager or self.field_manager
        if manager:
            query["fieldManager"] = manager
        if dry_run:
            query["dryRun"] = "All"
        return query

    async def get_path(self, path: str) -> Object:
        """GET any path answered with JSON (discovery: /api/v1, /apis, /apis/GROUP/VERSION)."""
        return await self._call("GET", path)

    async def get(
        self, resource: Resource, name: str, namespace: str = "", *, subresource: str = ""
    ) -> Object:
        return await self._call("GET", resource.path(namespace, name, subresource))

    async def list(
        self,
        resource: Resource,
        namespace: str = "",
        *,
        label_selector: str = "",
        field_selector: str = "",
        limit: int = 0,
        continue_token: str = "",
        resource_version: str = "",
    ) -> Object:
        query: dict[str, str | list[str]] = {}
        if label_selector:
            query["labelSelector"] = label_selector
        if field_selector:
            query["fieldSelector"] = field_selector
        if limit:
            query["limit"] = str(limit)
        if continue_token:
            query["continue"] = continue_token
        if resource_version:
            query["resourceVersion"] = resource_version
        return await self._call("GET", resource.path(namespace), query=query)

    async def list_all(self, resource: Resource, namespace: str = "", **selectors: str) -> Object:
        """Every item, fetched in pages; the result carries the first page's resourceVersion."""
        first = await self.list(resource, namespace, limit=500, **selectors)
        items = list(first.get("items") or [])
        token = (first.get("metadata") or {}).get("continue", "")
        while token:
            page = await self.list(
                resource, namespace, limit=500, continue_token=token, **selectors
            )
            items.extend(page.get("items") or [])
            token = (page.get("metadata") or {}).get("continue", "")
        first["items"] = items
        return first

    async def watch(
        self,
        resource: Resource,
        namespace: str = "",
        *,
        resource_version: str = "",
        label_selector: str = "",
        field_selector: str = "",
        timeout_seconds: int = 0,
        allow_bookmarks: bool = True,
    ) -> AsyncIterator[WatchEvent]:
        query: dict[str, str | list[str]] = {"watch": "true"}
        if resource_version:
            query["resourceVersion"] = resource_version
        if label_selector:
            query["labelSelector"] = label_selector
        if field_selector:
            query["fieldSelector"] = field_selector
        if timeout_seconds:
            query["timeoutSeconds"] = str(timeout_seconds)
        if allow_bookmarks:
            query["allowWatchBookmarks"] = "true"
        try:
            async for line in self.transport.stream(resource.path(namespace), query=query):
                event = orjson.loads(line)
                yield WatchEvent(event["type"], event["object"])
        except StreamRefused as refused:
            raise _error(refused.response) from None

    async def create(
        self,
        resource: Resource,
        obj: Object,
        namespace: str = "",
        *,
        dry_run: bool = False,
        field_manager: str = "",
    ) -> Object:
        namespace = namespace or (obj.get("metadata") or {}).get("namespace", "")
        return await self._call(
            "POST",
            resource.path(namespace),
            query=self._write_query(dry_run, field_manager),
            body=obj,
        )

    async def create_subresource(
        self, resource: Resource, name: str, subresource: str, obj: Object, namespace: str = ""
    ) -> Object:
        return await self._call("POST", resource.path(namespace, name, subresource), body=obj)

    async def update(
        self, resource: Resource, obj: Object, *, subresource: str = "", field_manager: str = ""
    ) -> Object:
        meta = obj.get("metadata") or {}
        path = resource.path(meta.get("namespace", ""), meta["name"], subresource)
        return await self._call(
            "PUT", path, query=self._write_query(False, field_manager), body=obj
        )

    async def update_status(
        self, resource: Resource, obj: Object, *, field_manager: str = ""
    ) -> Object:
        return await self.update(resource, obj, subresource="status", field_manager=field_manager)

    async def patch(
        self,
        resource: Resource,
        name: str,
        patch: Any,
        namespace: str = "",
        *,
        patch_type: str = MERGE_PATCH,
        subresource: str = "",
        field_manager: str = "",
        force: bool = False,
    ) -> Object:
        query = self._write_query(False, field_manager)
        if force:
            query["force"] = "true"
        return await self._call(
            "PATCH",
            resource.path(namespace, name, subresource),
            query=query,
            body=patch,
            content_type=patch_type,
        )

    async def delete(
        self,
        resource: Resource,
        name: str,
        namespace: str = "",
        *,
        propagation_policy: str = "",
        grace_period_seconds: int | None = None,
        preconditions: dict[str, str] | None = None,
        dry_run: bool = False,
    ) -> Object:
        options: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if propagation_policy:
            options["propagationPolicy"] = propagation_policy
        if grace_period_seconds is not None:
            options["gracePeriodSeconds"] = grace_period_seconds
        if preconditions:
            options["preconditions"] = preconditions
        if dry_run:
            options["dryRun"] = ["All"]
        return await self._call("DELETE", resource.path(namespace, name), body=options)

    async def delete_collection(
        self,
        resource: Resource,
        namespace: str = "",
        *,
        propagation_policy: str = "",
        label_selector: str = "",
    ) -> Object:
        """DELETE on the collection: every object (matching the selector) is deleted."""
        options: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if propagation_policy:
            options["propagationPolicy"] = propagation_policy
        query: dict[str, str | list[str]] = {}
        if label_selector:
            query["labelSelector"] = label_selector
        return await self._call("DELETE", resource.path(namespace), query=query, body=options)
