"""The API server: one `handle(request) -> response` over every served resource.

Request path: authenticate → authorize (RBAC, impersonation) → route (discovery, health,
OpenAPI, or a resource verb) → the generic handlers (handlers.py) with the kind's
strategy → storage; the audit log, when configured, records the outcome. Every failure
becomes a Kubernetes Status; nothing escapes as a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import Any

from timonel.api import errors
from timonel.api.objects import Object, now_rfc3339
from timonel.api.selectors import label_selector_from_object, label_selector_from_set
from timonel.apiserver import (
    audit,
    discovery,
    metricsapi,
    nodecerts,
    nodeproxy,
    serviceaccounts,
)
from timonel.apiserver.allocators import NodePortAllocator, ServiceIPAllocator
from timonel.apiserver.authn import Authenticator
from timonel.apiserver.authorization.authorizer import RBACAuthorizer
from timonel.apiserver.context import (
    ApiRequest,
    ApiResponse,
    json_response,
    status_response,
    success_status,
)
from timonel.apiserver.eviction import evict as evict_pod
from timonel.apiserver.handlers import ResourceHandlers
from timonel.apiserver.metrics import RequestMetrics
from timonel.apiserver.negotiation import (
    JSON,
    MAX_BODY_BYTES,
    check_acceptable,
    decode_object,
    decode_patch,
    media_type,
)
from timonel.apiserver.requestinfo import RequestInfo, parse_request_info
from timonel.apiserver.store import (
    ResourceStore,
    decode_from_storage,
    encode_for_storage,
    storage_prefix,
)
from timonel.apiserver.watchcache import WatchCache
from timonel.kinds.apiextensions.custom import custom_resource_strategies
from timonel.kinds.base import Strategy
from timonel.kinds.core import pod as pod_kind
from timonel.kinds.registry import ResourceRegistry
from timonel.patch import jsonpatch, mergepatch
from timonel.schema import fields as schema_fields
from timonel.schema import openapi, openapiv2
from timonel.schema.definitions import SchemaNode, kubernetes_definitions
from timonel.storage.interface import KeyNotFound, RevisionMismatch, Storage

log = logging.getLogger(__name__)

_CRD_KEY = ("apiextensions.k8s.io", "customresourcedefinitions")


@dataclass(frozen=True)
class ApiServerConfig:
    service_cidr: str = "10.43.0.0/16"
    # What /api's serverAddressByClientCIDRs and the `kubernetes` endpoints report.
    advertise_address: str = "127.0.0.1"
    secure_port: int = 6443
    # Served unauthenticated at /cacerts (as k3s does) so that a joining node can fetch the
    # CA and check it against the hash its join token pins.
    ca_cert_pem: bytes = b""


class ApiServer:
    def __init__(
        self,
        *,
        storage: Storage,
        registry: ResourceRegistry,
        authenticator: Authenticator,
        config: ApiServerConfig = ApiServerConfig(),
    ) -> None:
        self.storage = storage
        self.registry = registry
        self.authenticator = authenticator
        self.config = config
        self.metrics = RequestMetrics()
        self.handlers = ResourceHandlers(self)
        self.service_ips = ServiceIPAllocator(storage, config.service_cidr)
        self.node_ports = NodePortAllocator(storage)
        self._caches: dict[str, WatchCache] = {}
        self._stores: dict[tuple[str, str, str], ResourceStore] = {}
        self._schemas: dict[tuple[str, str, str], SchemaNode | None] = {}
        self._custom_schemas: dict[tuple[str, str, str], SchemaNode | None] = {}
        self.openapi = openapi.OpenAPIV3(
            lambda: list(self.registry), schema_for=self._openapi_schema_for
        )
        self._crd_task: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()
        self.ready = asyncio.Event()
        self.token_issuer: serviceaccounts.TokenIssuer | None = None
        # Set by the control plane: the client that reaches kubelets (logs, exec,
        # port-forward, node proxy, metrics) and the signer of their serving certificates.
        self.kubelets: nodeproxy.KubeletClient | None = None
        self.kubelet_signer: nodecerts.KubeletServingSigner | None = None
        # Set by the control plane; None: every authenticated user may do everything.
        self.authorizer: RBACAuthorizer | None = None
        # Set by the control plane when --audit-log-path and --audit-policy-file are given.
        self.audit: audit.AuditLog | None = None

    # -- life cycle -------------------------------------------------------------------

    async def start(self) -> None:
        for strategy in list(self.registry):
            self._add_store(strategy)
        await asyncio.gather(*(cache.start() for cache in self._caches.values()))
        await asyncio.gather(*(cache.ready.wait() for cache in self._caches.values()))
        self._crd_task = asyncio.create_task(self._serve_custom_resources(), name="crd-registrar")
        self.ready.set()

    async def stop(self) -> None:
        if self._crd_task is not None:
            self._crd_task.cancel()
            await asyncio.gather(self._crd_task, return_exceptions=True)
        await asyncio.gather(
            *(cache.stop() for cache in self._caches.values()), return_exceptions=True
        )
        if self.kubelets is not None:
            await self.kubelets.close()

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _add_store(self, strategy: Strategy) -> ResourceStore:
        group, plural = strategy.storage_resource or (strategy.group, strategy.plural)
        prefix = storage_prefix(group, plural)
        cache = self._caches.get(prefix)
        if cache is None:
            cache = WatchCache(self.storage, prefix, decode_from_storage)
            self._caches[prefix] = cache
        store = ResourceStore(strategy, self.storage, cache)
        self._stores[(strategy.group, strategy.version, strategy.plural)] = store
        return store

    def store_for(self, group: str, version: str, plural: str) -> ResourceStore | None:
        return self._stores.get((group, version, plural))

    async def get_namespace(self, name: str) -> Object | None:
        """A namespace from the watch cache (admission reads one on every namespaced
        create); from storage when the cache has not seen it yet."""
        store = self._stores.get(("", "v1", "namespaces"))
        if store is None:
            return None
        cached = store.cache.get(name)
        if cached is not None:
            return cached
        obj, _ = await store.read_optional("", name)
        return obj

    async def get_object(self, group: str, plural: str, namespace: str, name: str) -> Object | None:
        for (g, _, p), store in self._stores.items():
            if g == group and p == plural:
                obj, _ = await store.read_optional(namespace, name)
                return obj
        return None

    async def list_objects(self, group: str, plural: str, namespace: str) -> list[Object]:
        """The objects of a resource in a namespace, from the watch cache (copies)."""
        for (g, _, p), store in self._stores.items():
            if g == group and p == plural:
                items = store.cache.list(key_prefix=f"{namespace}/" if namespace else "").items
                return [store.to_api(copy.deepcopy(item)) for item in items]
        return []

    async def store_object(self, group: str, plural: str, obj: Object) -> Object:
        """Write `obj` over the version its resourceVersion names, without its strategy:
        for what the server keeps itself (quota usage, disruption budgets). Raises
        RevisionMismatch when the object changed since that version."""
        store = next(s for (g, _, p), s in self._stores.items() if g == group and p == plural)
        meta = obj.get("metadata") or {}
        revision = int(meta["resourceVersion"])
        kv = await self.storage.update(
            store.key(meta.get("namespace", ""), meta["name"]),
            encode_for_storage(store.to_stored(obj)),
            expected_revision=revision,
        )
        return {**obj, "metadata": {**meta, "resourceVersion": str(kv.mod_revision)}}

    def schema_for(self, strategy: Strategy) -> SchemaNode | None:
        key = (strategy.group, strategy.version, strategy.kind)
        if key in self._custom_schemas:
            return self._custom_schemas[key]
        if key not in self._schemas:
            self._schemas[key] = kubernetes_definitions().for_kind(*key)
        return self._schemas[key]

    def _openapi_schema_for(self, resource: Any) -> SchemaNode | None:
        return self.schema_for(resource)

    # -- custom resources -------------------------------------------------------------

    async def _serve_custom_resources(self) -> None:
        """Keep the served custom resources in step with the stored CRDs."""
        store = next((s for (g, _, p), s in self._stores.items() if (g, p) == _CRD_KEY), None)
        if store is None:
            return
        served: dict[str, list[Strategy]] = {}
        while True:
            try:
                items, revision, _, _ = store.cache.list()
                self._sync_crds(items, served)
                async for event in store.cache.watch(after=revision):
                    if event.type == "BOOKMARK":
                        continue
                    items, _, _, _ = store.cache.list()
                    self._sync_crds(items, served)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("custom resource registration failed; retrying")
                await asyncio.sleep(1)

    def _sync_crds(self, crds: Iterable[Object], served: dict[str, list[Strategy]]) -> None:
        wanted: dict[str, Object] = {}
        for crd in crds:
            meta = crd.get("metadata") or {}
            if not meta.get("deletionTimestamp"):
                wanted[meta.get("name", "")] = crd
        for name in list(served):
            if name not in wanted:
                for strategy in served.pop(name):
                    self._remove_custom(strategy)
        for name, crd in wanted.items():
            previous = served.get(name)
            strategies = custom_resource_strategies(crd)
            if previous is not None:
                for strategy in previous:
                    self._remove_custom(strategy, keep_cache=True)
            for strategy in strategies:
                self.registry.register(strategy)
                store = self._add_store(strategy)
                if not store.cache.ready.is_set():
                    self._spawn(store.cache.start())
                self._custom_schemas[(strategy.group, strategy.version, strategy.kind)] = getattr(
                    strategy, "schema", None
                )
            served[name] = strategies
        self.openapi.invalidate()

    def _remove_custom(self, strategy: Strategy, *, keep_cache: bool = False) -> None:
        self.registry.unregister(strategy.group, strategy.version, strategy.plural)
        store = self._stores.pop((strategy.group, strategy.version, strategy.plural), None)
        self._custom_schemas.pop((strategy.group, strategy.version, strategy.kind), None)
        if store is not None and not keep_cache:
            cache = self._caches.pop(store.prefix, None)
            if cache is not None:
                self._spawn(cache.stop())
        self.openapi.invalidate()

    # -- request handling -------------------------------------------------------------

    async def handle(self, request: ApiRequest) -> ApiResponse:
        started = time.perf_counter()
        info = parse_request_info(request.method, request.path, request.query.get("watch"))
        received = audit.utc_now() if self.audit is not None else None
        try:
            response = await self._handle(request, info)
        except errors.StatusError as exc:
            response = status_response(exc)
        except KeyNotFound:
            # The object went between reading and writing it (a concurrent delete).
            response = status_response(errors.not_found(info.resource, info.group, info.name))
        except RevisionMismatch:
            response = status_response(errors.conflict(info.resource, info.group, info.name))
        except Exception as exc:
            log.exception("internal error serving %s %s", request.method, request.path)
            response = status_response(errors.internal_error(type(exc).__name__))
        if request.warnings:
            response.headers = {
                **response.headers,
                "Warning": ", ".join(
                    '299 - "' + w.replace('"', '\\"') + '"' for w in request.warnings
                ),
            }
        verb = info.verb.upper() if info.is_resource else request.method
        self.metrics.observe(
            verb,
            info.group,
            info.resource if info.is_resource else "",
            response.status,
            time.perf_counter() - started,
        )
        if self.audit is not None and received is not None:
            return self.audit.record(request, info, response, received)
        return response

    async def _handle(self, request: ApiRequest, info: RequestInfo) -> ApiResponse:
        if len(request.body) > MAX_BODY_BYTES:
            raise errors.request_entity_too_large(MAX_BODY_BYTES)
        path = request.path
        # Resource paths (/api/..., /apis/...) are none of the other endpoints.
        if not info.is_resource:
            path = path.rstrip("/") or "/"
            if path in ("/healthz", "/livez", "/readyz") or path.startswith(
                ("/healthz/", "/livez/", "/readyz/")
            ):
                if path.startswith("/readyz") and not self.ready.is_set():
                    return ApiResponse(
                        503,
                        b"[-]informer-sync failed: not ready\nreadyz check failed",
                        "text/plain",
                    )
                return ApiResponse(200, b"ok", "text/plain; charset=utf-8")
            if path == "/cacerts" and self.config.ca_cert_pem:
                return ApiResponse(200, self.config.ca_cert_pem, "text/plain")
        request.user = self.authenticator.authenticate(
            request.peercert, request.headers.get("Authorization")
        )
        if request.user is None:
            raise errors.unauthorized()
        if self.authorizer is not None:
            self.authorizer.admit(request, info)
        if info.is_resource:
            check_acceptable(request.headers.get("Accept"))
            return await self._resource(request, info)
        if path == nodecerts.PATH and self.kubelet_signer is not None:
            return await self.kubelet_signer.serve(request)
        if path == "/version":
            return json_response(discovery.KUBERNETES_VERSION)
        if path == "/metrics":
            return ApiResponse(200, self.metrics.render().encode(), "text/plain; version=0.0.4")
        if path.startswith("/openapi/"):
            return self._openapi(request, path)
        return self._discovery(request, info, path)

    # -- non-resource endpoints -------------------------------------------------------

    def _discovery(self, request: ApiRequest, info: RequestInfo, path: str) -> ApiResponse:
        accept = request.headers.get("Accept")
        if path in ("/api", "/apis"):
            if discovery.wants_aggregated(accept):
                body = discovery.encode(discovery.aggregated(self.registry, core=path == "/api"))
                content_type = discovery.AGGREGATED_CONTENT_TYPE
            else:
                value = (
                    discovery.api_versions(
                        f"{self.config.advertise_address}:{self.config.secure_port}"
                    )
                    if path == "/api"
                    else discovery.api_group_list(self.registry)
                )
                body, content_type = discovery.encode(value), "application/json"
            tag = discovery.etag(body)
            if request.headers.get("If-None-Match") == tag:
                return ApiResponse(304, b"", content_type, {"ETag": tag})
            return ApiResponse(200, body, content_type, {"ETag": tag})
        if info.version:
            listing = discovery.resource_list(self.registry, info.group, info.version)
            if listing is not None:
                return json_response(listing)
        elif info.group and path.startswith("/apis/"):
            group = discovery.api_group(self.registry, info.group)
            if group is not None:
                return json_response(group)
        if path == "/":
            paths = [
                "/api",
                "/api/v1",
                "/apis",
                "/healthz",
                "/livez",
                "/metrics",
                "/openapi/v2",
                "/openapi/v3",
                "/readyz",
                "/version",
            ]
            return json_response({"paths": paths})
        raise errors.StatusError(
            404,
            "NotFound",
            "the server could not find the requested resource",
            details={
                "causes": [{"reason": "UnexpectedServerResponse", "message": "404 page not found"}]
            },
        )

    def _openapi(self, request: ApiRequest, path: str) -> ApiResponse:
        content_type = "application/json"
        if path == "/openapi/v2":
            as_json, as_protobuf, tag = self.openapi.swagger()
            if openapiv2.wants_protobuf(request.headers.get("Accept")):
                body, content_type = as_protobuf, openapiv2.PROTOBUF_CONTENT_TYPE
            else:
                body = as_json
        elif path == "/openapi/v3":
            body, tag = self.openapi.root()
        elif path.startswith("/openapi/v3/"):
            found = self.openapi.document(path.removeprefix("/openapi/v3/"))
            if found is None:
                raise errors.StatusError(
                    404, "NotFound", "the server could not find the requested resource"
                )
            body, tag = found
        else:
            raise errors.StatusError(
                404, "NotFound", "the server could not find the requested resource"
            )
        etag = f'"{tag}"'
        if request.headers.get("If-None-Match") == etag:
            return ApiResponse(304, b"", content_type, {"ETag": etag})
        return ApiResponse(200, body, content_type, {"ETag": etag})

    # -- resources --------------------------------------------------------------------

    async def _resource(self, request: ApiRequest, info: RequestInfo) -> ApiResponse:
        if info.group == metricsapi.API_GROUP:
            return await metricsapi.serve(self, request, info)
        store = self.store_for(info.group, info.version, info.resource)
        if store is None:
            raise errors.StatusError(
                404,
                "NotFound",
                "the server could not find the requested resource",
                details={
                    "causes": [
                        {"reason": "UnexpectedServerResponse", "message": "404 page not found"}
                    ]
                },
            )
        strategy = store.strategy
        namespace = info.namespace
        if strategy.namespaced is False and namespace:
            raise errors.StatusError(
                404, "NotFound", "the server could not find the requested resource"
            )
        if info.verb not in strategy.verbs and not info.subresource:
            raise errors.method_not_allowed(
                "the server does not allow this method on the requested resource"
            )
        handlers = self.handlers
        if info.subresource:
            return await self._subresource(request, info, store)
        if strategy.namespaced and not namespace and info.verb not in ("list", "watch"):
            if info.verb == "create":
                body_ns = ""
                with contextlib.suppress(errors.StatusError):
                    body_ns = (
                        decode_object(request.body, request.headers.get("Content-Type")).get(
                            "metadata"
                        )
                        or {}
                    ).get("namespace", "")
                if not body_ns:
                    raise errors.bad_request("the namespace of the object cannot be empty")
                namespace = body_ns
            else:
                raise errors.StatusError(
                    404, "NotFound", "the server could not find the requested resource"
                )
        if info.verb == "get":
            return await handlers.get(request, store, namespace, info.name)
        if info.verb == "list":
            return await handlers.list_objects(request, store, namespace)
        if info.verb == "watch":
            return await handlers.watch(request, store, namespace)
        if info.verb == "create":
            if info.name:
                raise errors.method_not_allowed("POST is not supported on a named resource")
            return await handlers.create(request, store, namespace)
        if info.verb == "update":
            return await handlers.update(request, store, namespace, info.name, "")
        if info.verb == "patch":
            return await handlers.patch(request, store, namespace, info.name, "")
        if info.verb == "delete":
            return await handlers.delete(request, store, namespace, info.name)
        if info.verb == "deletecollection":
            return await handlers.delete_collection(request, store, namespace)
        raise errors.method_not_allowed(f"{request.method} is not supported")

    async def _subresource(
        self, request: ApiRequest, info: RequestInfo, store: ResourceStore
    ) -> ApiResponse:
        strategy = store.strategy
        handlers = self.handlers
        sub = info.subresource
        if (strategy.group, strategy.plural, sub) in nodeproxy.SUBRESOURCES:
            return await nodeproxy.serve(self, request, info)
        if (sub == "status" and strategy.has_status) or (
            sub == "finalize" and strategy.kind == "Namespace" and not strategy.group
        ):
            mode = "status" if sub == "status" else "finalize"
            if info.verb == "get":
                return await handlers.get(request, store, info.namespace, info.name)
            if info.verb == "update":
                return await handlers.update(request, store, info.namespace, info.name, mode)
            if info.verb == "patch":
                return await handlers.patch(request, store, info.namespace, info.name, mode)
            raise errors.method_not_allowed(f"{request.method} is not supported on {sub}")
        if sub == "scale" and strategy.scale is not None:
            return await self._scale(request, info, store)
        action = _CREATE_SUBRESOURCES.get((strategy.group, strategy.plural, sub))
        if action is not None and info.verb == "create":
            return await action(self, request, info, store)
        raise errors.StatusError(
            404, "NotFound", "the server could not find the requested resource"
        )

    async def _scale(
        self, request: ApiRequest, info: RequestInfo, store: ResourceStore
    ) -> ApiResponse:
        strategy = store.strategy
        spec = strategy.scale
        assert spec is not None
        for _ in range(10):
            current, revision = await store.read(info.namespace, info.name)
            scale = scale_of(current, strategy)
            if info.verb == "get":
                return json_response(scale)
            if info.verb == "update":
                wanted = decode_object(request.body, request.headers.get("Content-Type"))
            elif info.verb == "patch":
                patch_type, patch = decode_patch(request.body, request.headers.get("Content-Type"))
                if patch_type.name == "JSON":
                    wanted = jsonpatch.apply_json_patch(copy.deepcopy(scale), patch)
                else:
                    wanted = mergepatch.apply_merge_patch(copy.deepcopy(scale), patch)
            else:
                raise errors.method_not_allowed(f"{request.method} is not supported on scale")
            wanted_rv = (wanted.get("metadata") or {}).get("resourceVersion")
            if wanted_rv and wanted_rv != str(revision):
                raise errors.conflict(strategy.plural, strategy.group, info.name)
            replicas = (wanted.get("spec") or {}).get("replicas", 0)
            if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
                raise errors.invalid(
                    "Scale",
                    "autoscaling",
                    info.name,
                    [
                        errors.invalid_value(
                            "spec.replicas", replicas, "must be greater than or equal to 0"
                        )
                    ],
                )
            new = copy.deepcopy(current)
            _set_path(new, spec.spec_replicas, replicas)
            try:
                result, _ = await self.handlers.update_object(
                    request,
                    store,
                    new,
                    current,
                    revision,
                    manager=request.param("fieldManager") or "kubectl",
                    subresource="scale",
                    dry_run=False,
                )
            except RevisionMismatch:
                if wanted_rv:
                    raise errors.conflict(strategy.plural, strategy.group, info.name) from None
                continue
            return json_response(scale_of(result, strategy))
        raise errors.conflict(strategy.plural, strategy.group, info.name)

    async def _bind(
        self, request: ApiRequest, info: RequestInfo, store: ResourceStore
    ) -> ApiResponse:
        """Set a pod's node. Binding is not an update of the pod: no strategy, validation
        or field manager runs, only the rule that a pod is bound once (as kube-apiserver's
        BindingREST, a guaranteed update in storage). The first attempt starts from the
        watch cache's copy of the pod, as kube-apiserver's cacher suggests its cached
        object; a lost race or a refusal based on that copy is retried from storage."""
        binding = decode_object(request.body, request.headers.get("Content-Type"))
        self._check_binding_fields(request, binding)
        native = media_type(request.headers.get("Content-Type")) in (JSON, "", "*/*")
        key = store.key(info.namespace, info.name)
        cached = store.cache.get(store.cache_key(info.namespace, info.name))
        for _ in range(10):
            if cached is not None:
                current, revision = cached, int(cached["metadata"]["resourceVersion"])
            else:
                current, revision = await store.read(info.namespace, info.name)
            try:
                new = pod_kind.bind_pod(copy_for_binding(current), binding)
            except errors.StatusError:
                if cached is None:
                    raise
                cached = None  # the cache may be behind: decide on the stored pod
                continue
            new["metadata"].pop("resourceVersion", None)
            try:
                await self.storage.update(
                    key,
                    encode_for_storage(new),
                    expected_revision=revision,
                    # The pod is parsed JSON; so are the binding's values if it was JSON.
                    decoded=new if native else None,
                )
            except RevisionMismatch:
                cached = None
                continue
            except KeyNotFound:
                if cached is None:
                    raise
                cached = None  # gone since the cache saw it: the stored state answers
                continue
            return json_response(success_status(), 201)
        raise errors.conflict("pods", "", info.name)

    def _check_binding_fields(self, request: ApiRequest, binding: Object) -> None:
        """A Binding body decodes as kube-apiserver decodes it: a mistyped field is a 400
        (nothing mistyped reaches the stored pod), an unknown one under Strict too."""
        key = ("", "v1", "Binding")
        if key not in self._schemas:
            self._schemas[key] = kubernetes_definitions().for_kind(*key)
        node = self._schemas[key]
        if node is None:
            return
        check = schema_fields.check_object(node, binding)
        error = check.status_error("Binding", "v1", request.param("fieldValidation"))
        if error is not None:
            raise error

    def service_account_uid(self, namespace: str, name: str) -> str | None:
        store = self.store_for("", "v1", "serviceaccounts")
        account = store.cache.get(f"{namespace}/{name}") if store is not None else None
        return (account.get("metadata") or {}).get("uid") if account else None

    async def _token(
        self, request: ApiRequest, info: RequestInfo, store: ResourceStore
    ) -> ApiResponse:
        """TokenRequest: a signed token for the service account (kubectl create token)."""
        if self.token_issuer is None:
            raise errors.StatusError(
                404, "NotFound", "the server could not find the requested resource"
            )
        token_request = decode_object(request.body, request.headers.get("Content-Type"))
        account, _ = await store.read(info.namespace, info.name)
        spec = token_request.get("spec") or {}
        seconds = spec.get("expirationSeconds") or serviceaccounts.DEFAULT_EXPIRATION
        if not isinstance(seconds, int) or seconds < serviceaccounts.MIN_EXPIRATION:
            raise errors.invalid(
                "TokenRequest",
                "authentication.k8s.io",
                info.name,
                [
                    errors.invalid_value(
                        "spec.expirationSeconds",
                        seconds,
                        "may not specify a duration less than 10 minutes",
                    )
                ],
            )
        seconds = min(seconds, serviceaccounts.MAX_EXPIRATION)
        bound = spec.get("boundObjectRef") or None
        token, expires = self.token_issuer.issue(
            namespace=info.namespace,
            name=info.name,
            uid=(account.get("metadata") or {}).get("uid", ""),
            audiences=list(spec.get("audiences") or []),
            expiration_seconds=seconds,
            bound=bound,
        )
        response = {
            "kind": "TokenRequest",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {
                "name": info.name,
                "namespace": info.namespace,
                "creationTimestamp": now_rfc3339(),
            },
            "spec": {
                "audiences": list(spec.get("audiences") or [serviceaccounts.ISSUER]),
                "expirationSeconds": seconds,
                "boundObjectRef": bound,
            },
            "status": {
                "token": token,
                "expirationTimestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(expires)),
            },
        }
        return json_response(response, 201)

    async def _evict(
        self, request: ApiRequest, info: RequestInfo, store: ResourceStore
    ) -> ApiResponse:
        eviction = decode_object(request.body, request.headers.get("Content-Type"))
        dry_run = bool(
            request.param("dryRun") or (eviction.get("deleteOptions") or {}).get("dryRun")
        )
        await evict_pod(self, store, info.namespace, info.name, eviction, dry_run=dry_run)
        return json_response(success_status(), 201)


_SubresourceAction = Callable[
    [ApiServer, ApiRequest, RequestInfo, ResourceStore], Awaitable[ApiResponse]
]
# POST-only subresources served besides status and scale.
_CREATE_SUBRESOURCES: dict[tuple[str, str, str], _SubresourceAction] = {
    ("", "pods", "binding"): ApiServer._bind,
    ("", "pods", "eviction"): ApiServer._evict,
    ("", "serviceaccounts", "token"): ApiServer._token,
}


def copy_for_binding(pod: Object) -> Object:
    """A copy of `pod` that `bind_pod` may change without touching `pod`: only what it
    writes (metadata and its annotations, spec, status and its conditions list) is copied,
    the rest is shared with `pod`."""
    copied = dict(pod)
    meta = dict(pod.get("metadata") or {})
    if isinstance(meta.get("annotations"), dict):
        meta["annotations"] = dict(meta["annotations"])
    copied["metadata"] = meta
    copied["spec"] = dict(pod.get("spec") or {})
    status = dict(pod.get("status") or {})
    if isinstance(status.get("conditions"), list):
        status["conditions"] = list(status["conditions"])
    copied["status"] = status
    return copied


def scale_of(obj: Object, strategy: Strategy) -> Object:
    """The autoscaling/v1 Scale view of a scalable object."""
    spec = strategy.scale
    assert spec is not None
    meta = obj.get("metadata") or {}
    # An empty selector path: the kind names no selector (a CRD without labelSelectorPath).
    selector: Any = _get_path(obj, spec.selector) if spec.selector else None
    if spec.selector_is_map:
        selector = str(label_selector_from_set(selector)) if selector else ""
    elif not spec.selector_is_string:
        selector = str(label_selector_from_object(selector)) if selector else ""
    status: dict[str, Any] = {"replicas": _get_path(obj, spec.status_replicas) or 0}
    if selector:
        status["selector"] = selector
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            k: meta[k]
            for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
            if k in meta
        },
        "spec": {"replicas": _get_path(obj, spec.spec_replicas) or 0},
        "status": status,
    }


def _get_path(obj: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(part)
    return obj


def _set_path(obj: Object, path: tuple[str, ...], value: Any) -> None:
    for part in path[:-1]:
        obj = obj.setdefault(part, {})
    obj[path[-1]] = value


__all__ = ["ApiServer", "ApiServerConfig", "now_rfc3339"]
