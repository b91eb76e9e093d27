"""The generic REST verbs over any kind: get, list, watch, create, update, patch, delete.

Each verb runs the same fixed pipeline whatever the kind (the kind's own behaviour is in
its strategy, see timonel/kinds/base.py):

    create: decode → check fields → system fields → default → admit → prepare → validate → store
    update: decode → check fields → read → preconditions → default → prepare → validate → store
    patch:  read → apply the patch → (as update), retried when a concurrent write wins
    delete: read → preconditions → admit → finalizers / graceful deletion or remove

Nothing is stored unless every step succeeded; a lost race is retried or answered 409.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import random
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import orjson

from timonel.api import errors
from timonel.api.objects import Object
from timonel.api.selectors import (
    FieldSelector,
    LabelSelector,
    convert_field_labels,
    parse_field_selector,
    parse_label_selector,
)
from timonel.apiserver import admission
from timonel.apiserver.context import ApiRequest, ApiResponse, json_response
from timonel.apiserver.negotiation import (
    JSON,
    PatchType,
    decode_object,
    decode_patch,
    media_type,
    wants_table,
)
from timonel.apiserver.store import (
    ResourceStore,
    decode_from_storage,
    encode_for_storage,
    fill_system_fields,
    generate_name,
    meta_of,
)
from timonel.apiserver.tables import TABLE_CONTENT_TYPE, table
from timonel.apiserver.watchcache import CacheEvent
from timonel.kinds.base import Strategy
from timonel.patch import jsonpatch, managedfields, mergepatch, strategic
from timonel.schema import fields as schema_fields
from timonel.storage.interface import Compacted, FutureRevision, KeyExists, RevisionMismatch

if TYPE_CHECKING:
    from timonel.apiserver.server import ApiServer

_PATCH_RETRIES = 10
_GENERATE_NAME_RETRIES = 8
_WATCH_MIN_TIMEOUT = 1800.0
_BOOKMARK_INTERVAL = 10.0


# Whether the update being decided started from the watch cache's object.
_FROM_CACHE: ContextVar[bool] = ContextVar("update_from_watch_cache", default=False)


class _CachedStateUnchanged(Exception):
    """An update that would write nothing, decided on the watch cache's object: decide
    again on the stored one, which may be newer."""


# -- helpers shared by the verbs ------------------------------------------------------


def _continue_token(revision: int, start_key: str) -> str:
    raw = orjson.dumps({"v": "meta.k8s.io/v1", "rv": revision, "start": start_key})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _parse_continue(token: str) -> tuple[int, str]:
    try:
        padded = token + "=" * (-len(token) % 4)
        data = orjson.loads(base64.urlsafe_b64decode(padded))
        return int(data["rv"]), str(data["start"])
    except Exception:
        raise errors.bad_request("continue key is not valid: invalid continue token") from None


def _dry_run(request: ApiRequest, body_dry_run: Any = None) -> bool:
    values = request.query.getall("dryRun", [])
    if isinstance(body_dry_run, list):
        values = [*values, *body_dry_run]
    for value in values:
        if value != "All":
            raise errors.bad_request(f'Invalid dryRun value: "{value}", only "All" is supported')
    return bool(values)


def _field_validation(request: ApiRequest) -> str:
    value = request.param("fieldValidation", "Warn") or "Warn"
    if value not in ("Strict", "Warn", "Ignore"):
        raise errors.bad_request(
            f'fieldValidation parameter unsupported value: "{value}"; '
            'supported values: "Ignore", "Strict", "Warn"'
        )
    return value


def _field_manager(request: ApiRequest, *, required: bool = False) -> str:
    manager = request.param("fieldManager")
    if manager:
        if len(manager) > 128:
            raise errors.bad_request("fieldManager: Too long: may not be more than 128 bytes")
        return manager
    if required:
        raise errors.bad_request(
            'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: '
            "is required for apply patch"
        )
    agent = request.headers.get("User-Agent", "")
    return agent.split("/", 1)[0][:128] or "unknown"


class Selection:
    """What a list or watch is restricted to: namespace, labels and fields."""

    def __init__(self, strategy: Strategy, request: ApiRequest, namespace: str) -> None:
        self.strategy = strategy
        self.namespace = namespace
        self.labels: LabelSelector | None = None
        self.fields: FieldSelector | None = None
        label_text = request.param("labelSelector")
        if label_text:
            parsed = parse_label_selector(label_text)
            self.labels = None if parsed.empty else parsed
        field_text = request.param("fieldSelector")
        if field_text:
            supported = {"metadata.name", *strategy.field_labels}
            if strategy.namespaced:
                supported.add("metadata.namespace")
            parsed_fields = convert_field_labels(
                parse_field_selector(field_text), supported, generic=not strategy.field_labels
            )
            self.fields = None if parsed_fields.empty else parsed_fields

    @property
    def key_prefix(self) -> str:
        return f"{self.namespace}/" if self.namespace else ""

    def predicate(self) -> Callable[[Object], bool] | None:
        if self.labels is None and self.fields is None:
            return None
        labels, fields, strategy = self.labels, self.fields, self.strategy

        def matches(obj: Object) -> bool:
            if labels is not None and not labels.matches((obj.get("metadata") or {}).get("labels")):
                return False
            return fields is None or fields.matches(strategy.selectable_fields(obj))

        return matches


def _list_kind(strategy: Strategy) -> str:
    return f"{strategy.kind}List"


class ResourceHandlers:
    """The verbs of one API server, dispatched by `ApiServer.handle`."""

    def __init__(self, api: ApiServer) -> None:
        self.api = api

    # -- reading ----------------------------------------------------------------------

    async def get(
        self, request: ApiRequest, store: ResourceStore, namespace: str, name: str
    ) -> ApiResponse:
        obj, _ = await store.read(namespace, name)
        return self.object_response(request, store.strategy, obj)

    def object_response(
        self, request: ApiRequest, strategy: Strategy, obj: Object, status: int = 200
    ) -> ApiResponse:
        if wants_table(request.headers.get("Accept")):
            include = request.param("includeObject", "Metadata")
            rv = (obj.get("metadata") or {}).get("resourceVersion", "")
            return json_response(
                table(strategy, [obj], include=include, resource_version=rv),
                status,
                TABLE_CONTENT_TYPE,
            )
        return json_response(obj, status)

    async def list_objects(
        self, request: ApiRequest, store: ResourceStore, namespace: str
    ) -> ApiResponse:
        strategy = store.strategy
        selection = Selection(strategy, request, namespace)
        predicate = selection.predicate()
        limit = request.int_param("limit") or 0
        if limit < 0:
            limit = 0
        token = request.param("continue")
        rv_param = request.param("resourceVersion")
        rv_match = request.param("resourceVersionMatch")
        if rv_match and rv_match not in ("NotOlderThan", "Exact"):
            raise errors.bad_request(f'resourceVersionMatch: Unsupported value: "{rv_match}"')
        if rv_match and not rv_param:
            raise errors.bad_request(
                "resourceVersionMatch is forbidden unless resourceVersion is provided"
            )
        if token and rv_param not in ("", "0"):
            raise errors.bad_request(
                "specifying resource version is not allowed when using continue"
            )

        cache = store.cache
        items: list[Object]
        next_key: str | None
        remaining: int | None
        if token:
            revision, start_key = _parse_continue(token)
            if revision == cache.revision:
                items, revision, next_key, remaining = cache.list(
                    key_prefix=selection.key_prefix,
                    start_key=start_key,
                    limit=limit,
                    predicate=predicate,
                )
            else:
                items, next_key, remaining = await self._list_from_storage(
                    store, selection, revision, start_key, limit, predicate
                )
        elif rv_match == "Exact":
            revision = self._parse_rv(rv_param)
            items, next_key, remaining = await self._list_from_storage(
                store, selection, revision, "", limit, predicate
            )
        else:
            if rv_param in ("", None):
                await cache.wait_until_fresh(3.0)
            elif rv_param != "0":
                await cache.wait_for_revision(self._parse_rv(rv_param), 3.0)
            items, revision, next_key, remaining = cache.list(
                key_prefix=selection.key_prefix, limit=limit, predicate=predicate
            )
        items = [store.to_api(item) for item in items] if strategy.storage_resource else items
        continue_token = _continue_token(revision, next_key) if next_key else ""
        if wants_table(request.headers.get("Accept")):
            include = request.param("includeObject", "Metadata")
            return json_response(
                table(
                    strategy,
                    items,
                    include=include,
                    resource_version=str(revision),
                    continue_token=continue_token,
                    remaining=remaining if next_key else None,
                ),
                content_type=TABLE_CONTENT_TYPE,
            )
        metadata: dict[str, Any] = {"resourceVersion": str(revision)}
        if continue_token:
            metadata["continue"] = continue_token
            if remaining:
                metadata["remainingItemCount"] = remaining
        return json_response(
            {
                "kind": _list_kind(strategy),
                "apiVersion": strategy.api_version,
                "metadata": metadata,
                "items": items,
            }
        )

    @staticmethod
    def _parse_rv(value: str) -> int:
        try:
            revision = int(value)
        except ValueError:
            raise errors.bad_request(f'invalid resource version "{value}"') from None
        if revision < 0:
            raise errors.bad_request(f'invalid resource version "{value}"')
        return revision

    async def _list_from_storage(
        self,
        store: ResourceStore,
        selection: Selection,
        revision: int,
        start_key: str,
        limit: int,
        predicate: Callable[[Object], bool] | None,
    ) -> tuple[list[Object], str | None, int | None]:
        prefix = store.prefix + selection.key_prefix
        start = store.prefix + start_key if start_key else ""
        items: list[Object] = []
        next_key: str | None = None
        try:
            while True:
                batch = await store.storage.list(
                    prefix,
                    revision=revision,
                    start_key=start,
                    limit=max(limit, 100) if limit else 0,
                )
                for kv in batch.items:
                    obj = decode_from_storage(kv)
                    if predicate is None or predicate(obj):
                        if limit and len(items) == limit:
                            next_key = kv.key.removeprefix(store.prefix)
                            break
                        items.append(obj)
                if next_key is not None or not batch.more or not batch.items:
                    break
                start = batch.items[-1].key + "\x00"
        except Compacted:
            raise errors.gone(
                "The provided continue parameter is too old to display a consistent list result. "
                "You can start a new list without the continue parameter, or use the continue token "
                "in this response to retrieve the remainder of the results. Continuing with the "
                "provided token results in an inconsistent list - objects that were created, "
                "modified, or deleted between the time the first chunk was returned and now may "
                "show up in the list."
            ) from None
        except FutureRevision as exc:
            raise errors.StatusError(
                504,
                "Timeout",
                f"Too large resource version: {exc.requested}, current: {exc.current}",
            ) from None
        remaining: int | None = None
        if next_key is not None and predicate is None:
            remaining = max(await store.storage.count(prefix) - len(items), 0)
        return items, next_key, remaining

    async def watch(self, request: ApiRequest, store: ResourceStore, namespace: str) -> ApiResponse:
        strategy = store.strategy
        selection = Selection(strategy, request, namespace)
        rv_param = request.param("resourceVersion")
        after = 0 if rv_param in ("", "0") else self._parse_rv(rv_param)
        if rv_param == "":
            await store.cache.wait_until_fresh(3.0)
        elif after:
            await store.cache.wait_for_revision(after, 3.0)
        bookmarks = request.flag("allowWatchBookmarks")
        timeout_param = request.int_param("timeoutSeconds")
        timeout = (
            float(timeout_param) if timeout_param else _WATCH_MIN_TIMEOUT * (1 + random.random())
        )
        as_table = wants_table(request.headers.get("Accept"))
        include = request.param("includeObject", "Metadata")
        # The watch ends when it would wait for an event past its timeout.
        events = store.cache.watch(
            after=after,
            key_prefix=selection.key_prefix,
            predicate=selection.predicate(),
            bookmark_interval=_BOOKMARK_INTERVAL if bookmarks else None,
            deadline=asyncio.get_running_loop().time() + timeout,
        )

        # The encoded form of a cache event is the same for every watcher of this
        # resource version (Tables are per watcher: only the first has the columns).
        encoding_key = (strategy.group, strategy.version) if strategy.storage_resource else None

        async def produce() -> AsyncGenerator[tuple[str, Any, CacheEvent | None]]:
            """(type, object, the cache event when its encoding can be shared)."""
            first_table = True
            try:
                while True:
                    try:
                        event = await anext(events)
                    except StopAsyncIteration:
                        return
                    if event.type == "BOOKMARK":
                        bookmark = {
                            "kind": strategy.kind,
                            "apiVersion": strategy.api_version,
                            "metadata": {"resourceVersion": str(event.revision)},
                        }
                        yield event.type, bookmark, None
                        continue
                    obj: Any = (
                        store.to_api(event.object) if strategy.storage_resource else event.object
                    )
                    if as_table:
                        obj = table(
                            strategy,
                            [obj],
                            include=include,
                            resource_version=str(event.revision),
                            with_columns=first_table,
                        )
                        first_table = False
                        yield event.type, obj, None
                    else:
                        yield event.type, obj, event
            except errors.StatusError as exc:
                yield "ERROR", exc.status(), None
            finally:
                events.close()

        produced = produce()

        async def stream() -> AsyncIterator[bytes]:
            try:
                async for type_, obj, source in produced:
                    if source is None:
                        yield orjson.dumps({"type": type_, "object": obj}) + b"\n"
                        continue
                    line = source.encoded.get(encoding_key)
                    if line is None:
                        line = orjson.dumps({"type": type_, "object": obj}) + b"\n"
                        source.encoded[encoding_key] = line
                    yield line
            finally:
                await produced.aclose()

        async def decoded() -> AsyncIterator[tuple[str, Any]]:
            try:
                async for type_, obj, _ in produced:
                    yield type_, obj
            finally:
                await produced.aclose()

        content_type = TABLE_CONTENT_TYPE if as_table else "application/json"
        return ApiResponse(
            200,
            content_type=content_type,
            stream=stream(),
            events=decoded(),
            stream_ready=events.ready,
        )

    # -- writing ----------------------------------------------------------------------

    def _check_fields(
        self,
        request: ApiRequest,
        strategy: Strategy,
        obj: Object,
        *,
        apply: bool = False,
        patched: bool = False,
        unchanged_from: Object | None = None,
    ) -> None:
        """Unknown and mistyped fields, per fieldValidation (Strict, Warn or Ignore).
        `unchanged_from`: a stored version of the object, whose unchanged parts need no
        second check (see check_object)."""
        node = self.api.schema_for(strategy)
        if node is None:
            return
        check = schema_fields.check_object(node, obj, unchanged_from=unchanged_from)
        if check.ok:
            return
        mode = (
            "Strict"
            if apply and not request.param("fieldValidation")
            else _field_validation(request)
        )
        if patched:
            error = check.patch_status_error(orjson.dumps(obj).decode(), mode)
        else:
            error = check.status_error(strategy.kind, strategy.version, mode)
        if error is not None:
            raise error
        if check.unknown:
            if mode == "Warn":
                request.warnings.extend(check.unknown_field_messages())
            schema_fields.prune_unknown(node, obj)

    def _check_type_meta(self, strategy: Strategy, obj: Object) -> None:
        api_version = obj.get("apiVersion")
        kind = obj.get("kind")
        if not api_version and not kind:
            obj["apiVersion"], obj["kind"] = strategy.api_version, strategy.kind
            return
        if kind != strategy.kind or api_version != strategy.api_version:
            if not kind:
                raise errors.bad_request(
                    "Object 'Kind' is missing in '" + orjson.dumps(obj).decode()[:200] + "'"
                )
            raise errors.bad_request(
                f"the API version in the data ({api_version}) does not match the expected API version "
                f"({strategy.api_version})"
                if kind == strategy.kind
                else f'{kind} in version "{api_version}" cannot be handled as a {strategy.kind}: '
                f'no kind "{kind}" is registered for version "{api_version}" in scheme'
            )

    def _check_namespace(self, strategy: Strategy, obj: Object, namespace: str) -> None:
        meta = meta_of(obj)
        if strategy.namespaced:
            body_namespace = meta.get("namespace")
            if body_namespace and namespace and body_namespace != namespace:
                raise errors.bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            meta["namespace"] = namespace or body_namespace or ""
        else:
            meta.pop("namespace", None)

    async def create(
        self, request: ApiRequest, store: ResourceStore, namespace: str
    ) -> ApiResponse:
        strategy = store.strategy
        obj = decode_object(request.body, request.headers.get("Content-Type"))
        self._check_type_meta(strategy, obj)
        if strategy.virtual:
            assert request.user is not None
            return json_response(strategy.respond(obj, request.user), 201)
        self._check_fields(request, strategy, obj)
        dry_run = _dry_run(request)
        self._check_namespace(strategy, obj, namespace)
        manager = _field_manager(request)
        created = await self.create_object(
            request, store, obj, manager=manager, dry_run=dry_run, native=_json_body(request)
        )
        return self.object_response(request, strategy, created, 201)

    async def create_object(
        self,
        request: ApiRequest,
        store: ResourceStore,
        obj: Object,
        *,
        manager: str,
        dry_run: bool,
        apply_config: Object | None = None,
        native: bool = False,
    ) -> Object:
        """Create `obj` (changed in place and returned). `native`: it is made of what JSON
        parses to, so storage may hand it to the watch cache as it is."""
        strategy = store.strategy
        meta = meta_of(obj)
        if meta.get("resourceVersion"):
            raise errors.bad_request("resourceVersion should not be set on objects to be created")
        fill_system_fields(obj)
        strategy.default(obj)
        schema = self.api.schema_for(strategy)
        if apply_config is None:
            managedfields.record_update(
                None,
                obj,
                manager=manager,
                api_version=strategy.api_version,
                schema=schema,
                reset_fields=managedfields.reset_fields_for(has_status=strategy.has_status),
            )
        await admission.admit_create(self.api, strategy, obj, dry_run=dry_run)
        strategy.prepare_for_create(obj)
        generate = not meta.get("name") and meta.get("generateName")
        if generate:
            meta["name"] = generate_name(str(meta["generateName"]))
        field_errors = strategy.validate_meta(obj) + strategy.validate(obj)
        if field_errors:
            raise errors.invalid(
                strategy.kind,
                strategy.group,
                meta.get("name") or meta.get("generateName", ""),
                field_errors,
            )
        request.warnings.extend(strategy.warnings(obj))
        await admission.reserve_create(self.api, strategy, obj, dry_run=dry_run)
        if dry_run:
            return obj
        for attempt in range(_GENERATE_NAME_RETRIES):
            try:
                stored = store.to_stored(obj)
                kv = await store.storage.create(
                    store.key(meta.get("namespace", ""), meta["name"]),
                    encode_for_storage(stored),
                    decoded=stored if native else None,
                )
                break
            except KeyExists:
                if generate and attempt + 1 < _GENERATE_NAME_RETRIES:
                    meta["name"] = generate_name(str(meta["generateName"]))
                    continue
                await admission.release_create(self.api, strategy, obj)
                raise errors.already_exists(strategy.plural, strategy.group, meta["name"]) from None
            except BaseException:
                await admission.release_create(self.api, strategy, obj)
                raise
        meta["resourceVersion"] = str(kv.mod_revision)
        return obj

    async def update(
        self, request: ApiRequest, store: ResourceStore, namespace: str, name: str, subresource: str
    ) -> ApiResponse:
        strategy = store.strategy
        obj = decode_object(request.body, request.headers.get("Content-Type"))
        self._check_type_meta(strategy, obj)
        # The cached object, as stored, passed the same checks: what the body keeps of it
        # is not checked again (a Lease renewal changes one field).
        stored = (
            None if strategy.storage_resource else store.cache.get(store.cache_key(namespace, name))
        )
        self._check_fields(request, strategy, obj, unchanged_from=stored)
        dry_run = _dry_run(request)
        self._check_namespace(strategy, obj, namespace)
        meta = meta_of(obj)
        if meta.get("name") != name:
            if not meta.get("name"):
                raise errors.bad_request("name is required")
            raise errors.bad_request(
                f"the name of the object ({meta.get('name')}) does not match the name on the URL ({name})"
            )
        manager = _field_manager(request)
        expected_rv = meta.get("resourceVersion") or ""
        native = _json_body(request)

        # Each attempt changes its own copy. What JSON parsed to is copied by a round
        # trip through orjson, many times faster than deepcopy; the first attempt (most
        # often the only one) takes the body itself.
        pristine = orjson.dumps(obj) if native else b""
        unused: list[Object] = [obj] if native else []

        async def replace(current: Object | None, revision: int) -> ApiResponse:
            if current is None:
                raise store.not_found(name)
            if unused:
                attempt = unused.pop()
            else:
                attempt = orjson.loads(pristine) if native else copy.deepcopy(obj)
            result, status = await self.update_object(
                request,
                store,
                attempt,
                current,
                revision,
                manager=manager,
                subresource=subresource,
                dry_run=dry_run,
                native=native,
            )
            return self.object_response(request, strategy, result, status)

        return await self._guaranteed(store, namespace, name, replace, precondition=expected_rv)

    async def _guaranteed(
        self,
        store: ResourceStore,
        namespace: str,
        name: str,
        write: Callable[[Object | None, int], Awaitable[ApiResponse]],
        *,
        precondition: str,
    ) -> ApiResponse:
        """Read the object, let `write` produce and store its successor, and start over
        while concurrent writes win the race. A resourceVersion the client gave makes a
        lost race (or a stale read) a 409 instead.

        The first attempt starts from the watch cache's object (shared: `write` must not
        change it), as kube-apiserver's cacher suggests its cached object to a guaranteed
        update. The cache may be behind storage, so anything decided on it (a lost race, a
        precondition or a refusal) is decided again on the stored object."""
        strategy = store.strategy
        cached = store.cache.get(store.cache_key(namespace, name))
        for _ in range(_PATCH_RETRIES):
            current: Object | None
            if cached is not None:
                current = store.to_api(cached)
                revision = int(cached["metadata"]["resourceVersion"])
            else:
                current, revision = await store.read_optional(namespace, name)
            if current is not None and precondition and precondition != str(revision):
                if cached is not None:
                    cached = None
                    continue
                raise errors.conflict(strategy.plural, strategy.group, name)
            token = _FROM_CACHE.set(cached is not None)
            try:
                return await write(current, revision)
            except RevisionMismatch:
                if precondition and cached is None:
                    raise errors.conflict(strategy.plural, strategy.group, name) from None
            except (errors.StatusError, _CachedStateUnchanged):
                if cached is None:
                    raise
            finally:
                _FROM_CACHE.reset(token)
            cached = None
        raise errors.conflict(strategy.plural, strategy.group, name)

    async def update_object(
        self,
        request: ApiRequest,
        store: ResourceStore,
        new: Object,
        current: Object,
        revision: int,
        *,
        manager: str,
        subresource: str,
        dry_run: bool,
        managed_by_apply: bool = False,
        native: bool = False,
    ) -> tuple[Object, int]:
        """Validate and store `new` as the successor of `current` (read at `revision`).
        Raises RevisionMismatch when another write won the race. `native`: `new` is made
        of what JSON parses to (see create_object)."""
        strategy = store.strategy
        meta = meta_of(new)
        old_meta = current.get("metadata") or {}
        for field in (
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "namespace",
            "name",
        ):
            if field in old_meta:
                meta[field] = old_meta[field]
            else:
                meta.pop(field, None)
        meta.pop("resourceVersion", None)
        if not strategy.tracks_generation and "generation" in old_meta:
            meta["generation"] = old_meta["generation"]
        strategy.default(new)
        if not managed_by_apply:
            track = "status" if subresource == "status" else ""
            managedfields.record_update(
                current,
                new,
                manager=manager,
                api_version=strategy.api_version,
                schema=self.api.schema_for(strategy),
                subresource=subresource,
                reset_fields=managedfields.reset_fields_for(
                    has_status=strategy.has_status, subresource=track
                ),
            )
        if subresource == "status":
            strategy.prepare_for_status_update(new, current)
            field_errors = strategy.validate_status_update(new, current)
        elif (
            subresource == "finalize"
            and hasattr(strategy, "prepare_for_finalize")
            and hasattr(strategy, "validate_finalize")
        ):
            # The namespace `finalize` subresource owns spec.finalizers and nothing else.
            strategy.prepare_for_finalize(new, current)
            field_errors = strategy.validate_meta(new) + strategy.validate_finalize(new, current)
        else:
            strategy.prepare_for_update(new, current)
            field_errors = strategy.validate_meta(new) + strategy.validate_update(new, current)
        field_errors += admission.validate_meta_update(new, current)
        if field_errors:
            raise errors.invalid(
                strategy.kind, strategy.group, old_meta.get("name", ""), field_errors
            )
        # Deleting objects may only lose finalizers, never gain new ones.
        if old_meta.get("deletionTimestamp"):
            added = set(meta.get("finalizers") or []) - set(old_meta.get("finalizers") or [])
            if added:
                raise errors.invalid(
                    strategy.kind,
                    strategy.group,
                    old_meta.get("name", ""),
                    [
                        errors.forbidden(
                            "metadata.finalizers",
                            f"no new finalizers can be added if the object is being deleted, found new finalizers {sorted(added)!r}",
                        )
                    ],
                )
        await admission.admit_update(self.api, strategy, new, current, dry_run=dry_run)
        request.warnings.extend(strategy.warnings(new))
        current_rv = old_meta.get("resourceVersion")
        unchanged_candidate = dict(new)
        unchanged_candidate["metadata"] = {**meta, "resourceVersion": current_rv}
        unchanged = unchanged_candidate == current or (
            # Only metadata may differ (timestamps of managed fields): the rest, compared
            # first, rules most writes out without copying metadata.
            new.keys() == current.keys()
            and all(new[key] == current[key] for key in new if key != "metadata")
            and _same_ignoring_time(new, current)
        )
        if (unchanged or dry_run) and _FROM_CACHE.get():
            # Nothing is written, so no lost race would show that `current` was behind.
            raise _CachedStateUnchanged
        if unchanged:
            return current, 200
        if dry_run:
            meta["resourceVersion"] = current_rv
            return new, 200
        if (
            meta.get("deletionTimestamp")
            and not meta.get("finalizers")
            and _may_finish_deletion(strategy, new)
        ):
            deleted = await store.storage.delete(
                store.key(meta.get("namespace", ""), meta["name"]), expected_revision=revision
            )
            await admission.after_delete(self.api, strategy, new)
            meta["resourceVersion"] = str(deleted.mod_revision)
            return new, 200
        stored = store.to_stored(new)
        kv = await store.storage.update(
            store.key(meta.get("namespace", ""), meta["name"]),
            encode_for_storage(stored),
            expected_revision=revision,
            decoded=stored if native else None,
        )
        meta["resourceVersion"] = str(kv.mod_revision)
        return new, 200

    async def patch(
        self, request: ApiRequest, store: ResourceStore, namespace: str, name: str, subresource: str
    ) -> ApiResponse:
        strategy = store.strategy
        patch_type, patch = decode_patch(request.body, request.headers.get("Content-Type"))
        dry_run = _dry_run(request)
        is_apply = patch_type is PatchType.APPLY
        manager = _field_manager(request, required=is_apply)
        force = request.flag("force")
        if request.query.get("force") and not is_apply:
            raise errors.bad_request(
                "force: Invalid value: true: may not be specified for non-apply patch"
            )
        schema = self.api.schema_for(strategy)
        if patch_type is PatchType.STRATEGIC and schema is None:
            raise errors.unsupported_media_type(patch_type.value)
        patch_rv = ""
        if isinstance(patch, dict):
            patch_rv = str((patch.get("metadata") or {}).get("resourceVersion") or "")
        if is_apply:
            self._check_type_meta(strategy, patch)
            self._check_fields(request, strategy, patch, apply=True)
            self._check_namespace(strategy, patch, namespace)
            if (patch.get("metadata") or {}).get("name") not in (None, name):
                raise errors.bad_request(
                    f"the name of the object ({patch['metadata']['name']}) does not match the name on the URL ({name})"
                )
            meta_of(patch)["name"] = name

        async def patch_current(current: Object | None, revision: int) -> ApiResponse:
            if current is None:
                if not is_apply:
                    raise store.not_found(name)
                created = managedfields.apply(
                    None,
                    patch,
                    manager=manager,
                    force=force,
                    api_version=strategy.api_version,
                    schema=schema,
                    kind=strategy.kind,
                    reset_fields=managedfields.reset_fields_for(
                        has_status=strategy.has_status, subresource=subresource
                    ),
                )
                created = await self.create_object(
                    request, store, created, manager=manager, dry_run=dry_run, apply_config=patch
                )
                return self.object_response(request, strategy, created, 201)
            new = self._apply_patch(
                patch_type, patch, current, schema, manager, force, strategy, subresource
            )
            if not is_apply:
                self._check_type_meta(strategy, new)
                self._check_fields(request, strategy, new, patched=True)
            if meta_of(new).get("name") != name:
                raise errors.bad_request(
                    "metadata.name: Invalid value: the name of the object does not match the name on the URL"
                )
            result, status = await self.update_object(
                request,
                store,
                new,
                current,
                revision,
                manager=manager,
                subresource=subresource,
                dry_run=dry_run,
                managed_by_apply=is_apply,
                # JSON, merge and strategic patches are JSON applied to parsed JSON.
                native=not is_apply,
            )
            return self.object_response(request, strategy, result, status)

        return await self._guaranteed(store, namespace, name, patch_current, precondition=patch_rv)

    @staticmethod
    def _apply_patch(
        patch_type: PatchType,
        patch: Any,
        current: Object,
        schema: Any,
        manager: str,
        force: bool,
        strategy: Strategy,
        subresource: str,
    ) -> Object:
        # `current` is decoded JSON (storage or the watch cache): a round trip copies it
        # faster than deepcopy.
        original = orjson.loads(orjson.dumps(current))
        if patch_type is PatchType.JSON:
            result = jsonpatch.apply_json_patch(original, patch)
        elif patch_type is PatchType.MERGE:
            result = mergepatch.apply_merge_patch(original, patch)
        elif patch_type is PatchType.STRATEGIC:
            result = strategic.apply_strategic_merge_patch(original, patch, schema)
        else:
            result = managedfields.apply(
                original,
                patch,
                manager=manager,
                force=force,
                api_version=strategy.api_version,
                schema=schema,
                kind=strategy.kind,
                subresource=subresource,
                reset_fields=managedfields.reset_fields_for(
                    has_status=strategy.has_status, subresource=subresource
                ),
            )
        if not isinstance(result, dict):
            raise errors.bad_request("the patch did not produce an object")
        return result

    async def delete(
        self, request: ApiRequest, store: ResourceStore, namespace: str, name: str
    ) -> ApiResponse:
        options = self._delete_options(request)
        dry_run = _dry_run(request, options.get("dryRun"))
        result, status = await self.delete_object(store, namespace, name, options, dry_run=dry_run)
        return json_response(result, status)

    def _delete_options(self, request: ApiRequest) -> dict[str, Any]:
        options: dict[str, Any] = {}
        if request.body.strip():
            options = decode_object(request.body, request.headers.get("Content-Type"))
        grace = request.int_param("gracePeriodSeconds")
        if grace is not None:
            options["gracePeriodSeconds"] = grace
        if request.param("propagationPolicy"):
            options["propagationPolicy"] = request.param("propagationPolicy")
        if request.param("orphanDependents"):
            options["orphanDependents"] = request.flag("orphanDependents")
        policy = options.get("propagationPolicy")
        if policy is not None and policy not in ("Orphan", "Background", "Foreground"):
            raise errors.invalid(
                "DeleteOptions",
                "meta.k8s.io",
                "",
                [
                    errors.not_supported(
                        "propagationPolicy", policy, ["Foreground", "Background", "Orphan", "nil"]
                    )
                ],
            )
        return options

    async def delete_object(
        self,
        store: ResourceStore,
        namespace: str,
        name: str,
        options: dict[str, Any],
        *,
        dry_run: bool,
    ) -> tuple[Object, int]:
        strategy = store.strategy
        for _ in range(_PATCH_RETRIES):
            current, revision = await store.read(namespace, name)
            meta = meta_of(current)
            preconditions = options.get("preconditions") or {}
            if preconditions.get("uid") and preconditions["uid"] != meta.get("uid"):
                raise errors.conflict(
                    strategy.plural,
                    strategy.group,
                    name,
                    f"Precondition failed: UID in precondition: {preconditions['uid']}, "
                    f"UID in object meta: {meta.get('uid')}",
                )
            if preconditions.get("resourceVersion") and preconditions[
                "resourceVersion"
            ] != meta.get("resourceVersion"):
                raise errors.conflict(
                    strategy.plural,
                    strategy.group,
                    name,
                    f"Precondition failed: ResourceVersion in precondition: "
                    f"{preconditions['resourceVersion']}, ResourceVersion in object meta: "
                    f"{meta.get('resourceVersion')}",
                )
            await admission.admit_delete(self.api, strategy, current)
            updated = copy.deepcopy(current)
            pending = _begin_deletion(strategy, updated, options)
            if dry_run:
                return (updated if pending else current), 200
            try:
                if pending:
                    if updated == current:
                        return current, 200
                    umeta = meta_of(updated)
                    umeta.pop("resourceVersion", None)
                    stored = store.to_stored(updated)
                    kv = await store.storage.update(
                        store.key(namespace, name),
                        encode_for_storage(stored),
                        expected_revision=revision,
                        decoded=stored,  # the stored object with deletion marks
                    )
                    umeta["resourceVersion"] = str(kv.mod_revision)
                    return updated, 202
                deleted = await store.storage.delete(
                    store.key(namespace, name), expected_revision=revision
                )
            except RevisionMismatch:
                continue
            await admission.after_delete(self.api, strategy, current)
            meta["resourceVersion"] = str(deleted.mod_revision)
            return current, 200
        raise errors.conflict(strategy.plural, strategy.group, name)

    async def delete_collection(
        self, request: ApiRequest, store: ResourceStore, namespace: str
    ) -> ApiResponse:
        strategy = store.strategy
        options = self._delete_options(request)
        dry_run = _dry_run(request, options.get("dryRun"))
        selection = Selection(strategy, request, namespace)
        await store.cache.wait_until_fresh(3.0)
        items, revision, _, _ = store.cache.list(
            key_prefix=selection.key_prefix, predicate=selection.predicate()
        )
        deleted = []
        for item in items:
            meta = item.get("metadata") or {}
            try:
                obj, _ = await self.delete_object(
                    store, meta.get("namespace", ""), meta["name"], options, dry_run=dry_run
                )
                deleted.append(obj)
            except errors.StatusError as exc:
                if exc.code != 404:
                    raise
        return json_response(
            {
                "kind": _list_kind(strategy),
                "apiVersion": strategy.api_version,
                "metadata": {"resourceVersion": str(revision)},
                "items": deleted,
            }
        )


def _json_body(request: ApiRequest) -> bool:
    """Whether the request's body was JSON (so what it decoded to is what JSON parses to)."""
    return media_type(request.headers.get("Content-Type")) in (JSON, "", "*/*")


def _same_ignoring_time(new: Object, current: Object) -> bool:
    """An update that changes nothing but managedFields timestamps is not written."""
    new_meta = dict(new.get("metadata") or {})
    cur_meta = dict(current.get("metadata") or {})
    for meta in (new_meta, cur_meta):
        meta.pop("resourceVersion", None)
        entries = meta.get("managedFields")
        if isinstance(entries, list):
            meta["managedFields"] = [
                {k: v for k, v in e.items() if k != "time"} for e in entries if isinstance(e, dict)
            ]
    return {**new, "metadata": new_meta} == {**current, "metadata": cur_meta}


def _may_finish_deletion(strategy: Strategy, obj: Object) -> bool:
    """An object being deleted goes once its last finalizer is gone, unless it waits for
    graceful termination (pods) or namespace finalization."""
    meta = obj.get("metadata") or {}
    if strategy.kind == "Namespace" and (obj.get("spec") or {}).get("finalizers"):
        return False
    return not meta.get("deletionGracePeriodSeconds")


def _begin_deletion(strategy: Strategy, obj: Object, options: dict[str, Any]) -> bool:
    """Mark `obj` as being deleted when it cannot go at once (finalizers, graceful pod
    termination, namespace finalization). Returns True when the object stays for now."""
    meta = meta_of(obj)
    now = datetime.now(UTC)
    policy = options.get("propagationPolicy")
    if policy is None and options.get("orphanDependents") is not None:
        policy = "Orphan" if options["orphanDependents"] else "Background"
    finalizers: list[str] = list(meta.get("finalizers") or [])
    if policy == "Foreground" and "foregroundDeletion" not in finalizers:
        finalizers = [f for f in finalizers if f != "orphan"] + ["foregroundDeletion"]
    elif policy == "Orphan" and "orphan" not in finalizers:
        finalizers = [f for f in finalizers if f != "foregroundDeletion"] + ["orphan"]
    grace = _graceful_period(strategy, obj, options)
    namespace_pending = strategy.kind == "Namespace" and bool(
        (obj.get("spec") or {}).get("finalizers")
    )
    if not finalizers and grace == 0 and not namespace_pending:
        return False
    if finalizers != list(meta.get("finalizers") or []):
        meta["finalizers"] = finalizers
    if not finalizers:
        meta.pop("finalizers", None)
    existing = meta.get("deletionTimestamp")
    if grace > 0:
        deadline = now + timedelta(seconds=grace)
        current_grace = meta.get("deletionGracePeriodSeconds")
        if existing is None or current_grace is None or grace < int(current_grace):
            meta["deletionTimestamp"] = deadline.strftime("%Y-%m-%dT%H:%M:%SZ")
            meta["deletionGracePeriodSeconds"] = grace
    elif existing is None:
        meta["deletionTimestamp"] = now.strftime("%Y-%m-%dT%H:%M:%SZ")
        meta["deletionGracePeriodSeconds"] = 0
    elif meta.get("deletionGracePeriodSeconds"):
        meta["deletionGracePeriodSeconds"] = 0
    if namespace_pending:
        obj.setdefault("status", {})["phase"] = "Terminating"
    return not (
        meta.get("deletionGracePeriodSeconds") == 0 and not finalizers and not namespace_pending
    )


def _graceful_period(strategy: Strategy, obj: Object, options: dict[str, Any]) -> int:
    """Pods bound to a node terminate gracefully; everything else goes at once."""
    if strategy.kind != "Pod" or strategy.group:
        return 0
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    if not spec.get("nodeName") or status.get("phase") in ("Succeeded", "Failed"):
        return 0
    grace = options.get("gracePeriodSeconds")
    if grace is None:
        grace = spec.get("terminationGracePeriodSeconds", 30)
    grace = int(grace)
    if grace < 0:
        grace = 1
    return grace
