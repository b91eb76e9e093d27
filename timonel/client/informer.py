"""Informers: a local, eventually consistent copy of one resource kept by list + watch.

Contract (as client-go's SharedInformer states it): the indexer converges to the server's
state; events for one object arrive in order; handlers run on the informer's task and
must be fast — they should only enqueue keys into a work queue. Handlers receive typed
(old, new) pairs: `on_add(new)`, `on_update(old, new)`, `on_delete(old)`. A watch that
expires (410 Gone) or breaks is followed by a fresh list, and handlers see the
difference as adds, updates and deletes. Objects in the indexer are shared: never
mutate them, copy first.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from timonel.api.errors import StatusError
from timonel.api.objects import Object, ObjectKey, object_key
from timonel.client.resources import Resource
from timonel.client.rest import ApiClient
from timonel.client.transport import Query

log = logging.getLogger(__name__)

IndexFunc = Callable[[Object], Iterable[str]]
AddHandler = Callable[[Object], None]
UpdateHandler = Callable[[Object, Object], None]
DeleteHandler = Callable[[Object], None]
# Applied to each object as it arrives, before it is stored or handed to handlers (as
# client-go's TransformFunc). Returns the object to keep; must not change its argument.
Transform = Callable[[Object], Object]


def strip_managed_fields(obj: Object) -> Object:
    """The object without metadata.managedFields, as kube-controller-manager and
    kube-scheduler keep their informers' objects: often half of an object's size, and no
    controller reads them. An update sent without them leaves the server's as they are.
    Only the top level and the metadata are copied."""
    metadata = obj.get("metadata")
    if not isinstance(metadata, dict) or "managedFields" not in metadata:
        return obj
    return {
        **obj,
        "metadata": {key: value for key, value in metadata.items() if key != "managedFields"},
    }


def namespace_index(obj: Object) -> list[str]:
    return [(obj.get("metadata") or {}).get("namespace", "")]


class Indexer:
    """Objects by key plus named secondary indexes (`index name → value → keys`)."""

    def __init__(self) -> None:
        self._items: dict[ObjectKey, Object] = {}
        self._index_funcs: dict[str, IndexFunc] = {"namespace": namespace_index}
        self._indexes: dict[str, dict[str, set[ObjectKey]]] = {"namespace": {}}

    def add_index(self, name: str, func: IndexFunc) -> None:
        self._index_funcs[name] = func
        index: dict[str, set[ObjectKey]] = {}
        for key, obj in self._items.items():
            for value in func(obj):
                index.setdefault(value, set()).add(key)
        self._indexes[name] = index

    def get(self, key: str) -> Object | None:
        return self._items.get(ObjectKey(key))

    def all(self) -> list[Object]:
        return list(self._items.values())

    def keys(self) -> list[ObjectKey]:
        return list(self._items)

    def by_index(self, name: str, value: str) -> list[Object]:
        return [self._items[k] for k in self._indexes[name].get(value, ())]

    def __len__(self) -> int:
        return len(self._items)

    def put(self, obj: Object) -> Object | None:
        key = object_key(obj)
        old = self._items.get(key)
        self._items[key] = obj
        for name, func in self._index_funcs.items():
            values = tuple(func(obj))
            if old is not None:
                # An update seldom moves an object between index values (a Lease
                # renewal never does): then the index stays as it is.
                old_values = tuple(func(old))
                if old_values == values:
                    continue
                self._drop_from_index(name, key, old_values)
            index = self._indexes[name]
            for value in values:
                index.setdefault(value, set()).add(key)
        return old

    def remove(self, key: ObjectKey) -> Object | None:
        old = self._items.pop(key, None)
        if old is not None:
            self._unindex(key, old)
        return old

    def _unindex(self, key: ObjectKey, obj: Object) -> None:
        for name, func in self._index_funcs.items():
            self._drop_from_index(name, key, func(obj))

    def _drop_from_index(self, name: str, key: ObjectKey, values: Iterable[str]) -> None:
        index = self._indexes[name]
        for value in values:
            keys = index.get(value)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del index[value]


@dataclass
class _Handlers:
    on_add: AddHandler | None = None
    on_update: UpdateHandler | None = None
    on_delete: DeleteHandler | None = None


@dataclass
class Informer:
    client: ApiClient
    resource: Resource
    namespace: str = ""
    label_selector: str = ""
    field_selector: str = ""
    # Every `resync` seconds handlers get on_update(obj, obj) for every object (0: never).
    resync: float = 0.0
    transform: Transform | None = None
    indexer: Indexer = field(default_factory=Indexer)
    synced: asyncio.Event = field(default_factory=asyncio.Event)
    _handlers: list[_Handlers] = field(default_factory=list)
    _resource_version: str = ""

    def add_handlers(
        self,
        *,
        on_add: AddHandler | None = None,
        on_update: UpdateHandler | None = None,
        on_delete: DeleteHandler | None = None,
    ) -> None:
        self._handlers.append(_Handlers(on_add, on_update, on_delete))

    def get(self, key: str) -> Object | None:
        return self.indexer.get(key)

    def all(self) -> list[Object]:
        return self.indexer.all()

    async def run(self) -> None:
        """List, then watch from the list's resourceVersion, forever (cancel to stop)."""
        backoff = 0.2
        resync_task = asyncio.create_task(self._resync_loop()) if self.resync > 0 else None
        try:
            while True:
                try:
                    await self._list()
                    backoff = 0.2
                    while await self._watch():
                        pass
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.debug(
                        "informer %s: %s; relisting in %.1fs", self.resource.plural, exc, backoff
                    )
                    await asyncio.sleep(backoff * (1 + random.random() / 2))
                    backoff = min(backoff * 2, 10.0)
        finally:
            if resync_task is not None:
                resync_task.cancel()

    async def _list(self) -> None:
        listed = await self.client.list_all(
            self.resource,
            self.namespace,
            label_selector=self.label_selector,
            field_selector=self.field_selector,
        )
        items = listed.get("items") or []
        if self.transform is not None:
            items = [self.transform(item) for item in items]
        fresh = {object_key(item): item for item in items}
        for key in [k for k in self.indexer.keys() if k not in fresh]:  # noqa: SIM118 - Indexer.keys() is a method, not a dict
            old = self.indexer.remove(key)
            if old is not None:
                self._deleted(old)
        for item in fresh.values():
            self._apply(item)
        self._resource_version = (listed.get("metadata") or {}).get("resourceVersion", "")
        self.synced.set()

    async def _watch(self) -> bool:
        """One watch request; True to watch again from where it ended, False to relist.
        Inside the server (a transport with `open_watch`) events arrive decoded: the
        watch cache's objects themselves, shared and read-only as everything in the
        indexer already is."""
        timeout_seconds = random.randint(300, 600)
        transport = self.client.transport
        try:
            if isinstance(transport, DecodedWatchTransport):
                events = await transport.open_watch(
                    self.resource.path(self.namespace), query=self._watch_query(timeout_seconds)
                )
                try:
                    async for type_, obj in events:
                        if not self._receive(type_, obj):
                            return False
                finally:
                    close = getattr(events, "aclose", None)
                    if close is not None:
                        await close()
                return True
            async for event in self.client.watch(
                self.resource,
                self.namespace,
                resource_version=self._resource_version,
                label_selector=self.label_selector,
                field_selector=self.field_selector,
                timeout_seconds=timeout_seconds,
            ):
                if not self._receive(event.type, event.object):
                    return False
        except StatusError as exc:
            if exc.code == 410:
                return False
            raise
        return True

    def _watch_query(self, timeout_seconds: int) -> dict[str, str | list[str]]:
        query: dict[str, str | list[str]] = {
            "watch": "true",
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(timeout_seconds),
        }
        if self._resource_version:
            query["resourceVersion"] = self._resource_version
        if self.label_selector:
            query["labelSelector"] = self.label_selector
        if self.field_selector:
            query["fieldSelector"] = self.field_selector
        return query

    def _receive(self, type_: str, event_object: Object) -> bool:
        """Apply one watch event; False when the watch must end for a relist."""
        if type_ == "ERROR":
            return False
        rv = (event_object.get("metadata") or {}).get("resourceVersion", "")
        if type_ == "BOOKMARK":
            self._resource_version = rv or self._resource_version
            return True
        obj = event_object if self.transform is None else self.transform(event_object)
        if type_ == "DELETED":
            old = self.indexer.remove(object_key(obj))
            self._deleted(old if old is not None else obj)
        else:
            self._apply(obj)
        if rv:
            self._resource_version = rv
        return True

    def _apply(self, obj: Object) -> None:
        old = self.indexer.put(obj)
        if not self._handlers:
            return  # only read through the lister: storing it is all there is to do
        if old is None:
            for handlers in self._handlers:
                if handlers.on_add:
                    self._safely(handlers.on_add, obj)
        elif (old.get("metadata") or {}).get("resourceVersion") != (obj.get("metadata") or {}).get(
            "resourceVersion"
        ):
            for handlers in self._handlers:
                if handlers.on_update:
                    self._safely(handlers.on_update, old, obj)

    def _deleted(self, obj: Object) -> None:
        for handlers in self._handlers:
            if handlers.on_delete:
                self._safely(handlers.on_delete, obj)

    async def _resync_loop(self) -> None:
        while True:
            await asyncio.sleep(self.resync)
            for obj in self.indexer.all():
                for handlers in self._handlers:
                    if handlers.on_update:
                        self._safely(handlers.on_update, obj, obj)

    def _safely(self, handler: Callable[..., None], *args: Object) -> None:
        try:
            handler(*args)
        except Exception:
            log.exception("informer %s handler failed", self.resource.plural)


@runtime_checkable
class DecodedWatchTransport(Protocol):
    """A transport that hands watch events over as objects (the in-process one)."""

    async def open_watch(
        self, path: str, *, query: Query | None = None, headers: Mapping[str, str] | None = None
    ) -> AsyncIterator[tuple[str, Object]]: ...


class InformerFactory:
    """One informer per (resource, namespace, selectors), shared by every controller of
    a process, so each resource is listed and watched once."""

    def __init__(self, client: ApiClient, *, transform: Transform | None = None) -> None:
        self.client = client
        self.transform = transform
        self._informers: dict[tuple[Resource, str, str, str], Informer] = {}
        self._tasks: dict[tuple[Resource, str, str, str], asyncio.Task[None]] = {}
        self._started = False

    def informer(
        self,
        resource: Resource,
        namespace: str = "",
        *,
        label_selector: str = "",
        field_selector: str = "",
    ) -> Informer:
        key = (resource, namespace, label_selector, field_selector)
        found = self._informers.get(key)
        if found is None:
            found = Informer(
                self.client,
                resource,
                namespace,
                label_selector,
                field_selector,
                transform=self.transform,
            )
            self._informers[key] = found
            if self._started:
                self._run(key, found)
        return found

    def _run(self, key: tuple[Resource, str, str, str], informer: Informer) -> None:
        self._tasks[key] = asyncio.create_task(informer.run(), name=f"informer-{key[0].plural}")

    def start(self) -> None:
        """Run every informer made so far, and from now on each one made later."""
        self._started = True
        for key, informer in self._informers.items():
            if key not in self._tasks:
                self._run(key, informer)

    async def wait_for_sync(self) -> None:
        await asyncio.gather(*(i.synced.wait() for i in self._informers.values()))

    async def stop(self) -> None:
        for task in self._tasks.values():
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)
        self._tasks.clear()
        self._started = False
