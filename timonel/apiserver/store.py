"""Generic storage of one resource: keys, encoding, the watch cache and the system fields.

Nothing here knows a particular kind; the strategy and the handlers decide, the store
reads and writes.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

import orjson

from timonel.api import errors
from timonel.api.objects import Object, now_rfc3339
from timonel.apiserver.watchcache import WatchCache
from timonel.kinds.base import Strategy
from timonel.storage.interface import KeyValue, Storage

# generateName suffixes use the same alphabet as apimachinery (no vowels, no confusables).
_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
# Bytes at or above this would make some letters likelier than others.
_NAME_BYTE_LIMIT = 256 - 256 % len(_NAME_ALPHABET)


class _RandomPool:
    """Bytes from the operating system's random source, drawn a page at a time: every
    create needs a uid, and one system call per create showed in profiles."""

    def __init__(self, page: int = 4096) -> None:
        self._page = page
        self._buffer = b""
        self._offset = 0

    def take(self, count: int) -> bytes:
        if self._offset + count > len(self._buffer):
            self._buffer = os.urandom(max(self._page, count))
            self._offset = 0
        start = self._offset
        self._offset += count
        return self._buffer[start : self._offset]


_random = _RandomPool()


def new_uid() -> str:
    """A random (version 4) UUID, as uuid.uuid4() makes them."""
    return str(uuid.UUID(bytes=_random.take(16), version=4))


def generate_name(prefix: str) -> str:
    letters: list[str] = []
    while len(letters) < 5:
        letters.extend(
            _NAME_ALPHABET[byte % len(_NAME_ALPHABET)]
            for byte in _random.take(5 - len(letters))
            if byte < _NAME_BYTE_LIMIT
        )
    return prefix + "".join(letters)


def storage_prefix(group: str, plural: str) -> str:
    return f"/registry/{group or 'core'}/{plural}/"


def encode_for_storage(obj: Object) -> bytes:
    """The stored form: the object without its resourceVersion (the revision is)."""
    meta = obj.get("metadata")
    if isinstance(meta, dict) and "resourceVersion" in meta:
        meta = dict(meta)
        del meta["resourceVersion"]
        obj = {**obj, "metadata": meta}
    return orjson.dumps(obj)


def decode_from_storage(kv: KeyValue) -> Object:
    """The object with its resourceVersion. When the writer handed its object along
    (`kv.decoded`, in a live watch event) that is taken instead of parsing the bytes: a
    copy of its top level and metadata, the rest shared with the writer's object."""
    if kv.decoded is not None:
        return with_stored_revision(kv.decoded, kv.mod_revision)
    obj: Object = orjson.loads(kv.value)
    obj.setdefault("metadata", {})["resourceVersion"] = str(kv.mod_revision)
    return obj


def with_stored_revision(stored: Object, revision: int) -> Object:
    """What parsing `encode_for_storage(stored)` and setting the revision gives, keys in
    the same order, without parsing: the writer may since have set its own
    metadata.resourceVersion (the only change it may make), which is left out."""
    meta = stored.get("metadata")
    copy = dict(stored)
    if isinstance(meta, dict):
        meta = {key: value for key, value in meta.items() if key != "resourceVersion"}
        copy["metadata"] = meta
    else:
        meta = copy.setdefault("metadata", {})
    meta["resourceVersion"] = str(revision)
    return copy


def fill_system_fields(obj: Object) -> None:
    """What every object gets on create: uid and creation time (resourceVersion comes
    from storage)."""
    meta = obj.setdefault("metadata", {})
    meta["uid"] = new_uid()
    meta["creationTimestamp"] = now_rfc3339()
    meta.pop("resourceVersion", None)
    meta.pop("deletionTimestamp", None)
    meta.pop("deletionGracePeriodSeconds", None)
    meta.pop("selfLink", None)
    if "generation" in meta:
        del meta["generation"]


class ResourceStore:
    """One resource's keys in storage and its watch cache."""

    def __init__(self, strategy: Strategy, storage: Storage, cache: WatchCache) -> None:
        self.strategy = strategy
        self.storage = storage
        self.cache = cache
        group, plural = strategy.storage_resource or (strategy.group, strategy.plural)
        self.prefix = storage_prefix(group, plural)

    def key(self, namespace: str, name: str) -> str:
        if self.strategy.namespaced:
            return f"{self.prefix}{namespace}/{name}"
        return f"{self.prefix}{name}"

    def cache_key(self, namespace: str, name: str) -> str:
        return f"{namespace}/{name}" if self.strategy.namespaced else name

    def not_found(self, name: str) -> errors.StatusError:
        return errors.not_found(self.strategy.plural, self.strategy.group, name)

    def to_api(self, stored: Object) -> Object:
        return self.strategy.from_storage(stored) if self.strategy.storage_resource else stored

    def to_stored(self, obj: Object) -> Object:
        return self.strategy.to_storage(obj) if self.strategy.storage_resource else obj

    async def read(self, namespace: str, name: str) -> tuple[Object, int]:
        """The current object and its revision; NotFound when absent."""
        kv = await self.storage.get(self.key(namespace, name))
        if kv is None:
            raise self.not_found(name)
        return self.to_api(decode_from_storage(kv)), kv.mod_revision

    async def read_optional(self, namespace: str, name: str) -> tuple[Object | None, int]:
        kv = await self.storage.get(self.key(namespace, name))
        if kv is None:
            return None, 0
        return self.to_api(decode_from_storage(kv)), kv.mod_revision


def meta_of(obj: Object) -> dict[str, Any]:
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        meta = {}
        obj["metadata"] = meta
    return meta
