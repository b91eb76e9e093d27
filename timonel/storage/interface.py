"""The `Storage` protocol: a revisioned key-value store shaped like etcd v3.

Invariants every backend keeps:

- Every write (create, update, delete) gets the next cluster-wide revision, a positive
  integer that never goes backwards. An object's `mod_revision` is the revision of its
  last write; it becomes the object's `metadata.resourceVersion` at the API edge.
- A write returns only after it is durable.
- Writes to one key are serialised by revision preconditions: `update` and `delete` with
  `expected_revision` fail with `RevisionMismatch` when the key moved on, `create` fails
  with `KeyExists` when the key is live. Nothing is ever silently overwritten.
- `watch(prefix, after=R)` yields every write under `prefix` with revision > R, in
  revision order, none skipped. If R is older than the last compaction it raises
  `Compacted` (the API answers 410 Gone).
- `compact(R)` forgets history at and below R; current values are always kept.

Values are opaque bytes: the API server encodes objects, storage never parses them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Protocol


class StorageError(Exception):
    """Base of the errors a backend raises."""


class KeyExists(StorageError):
    def __init__(self, key: str) -> None:
        super().__init__(f"key exists: {key}")
        self.key = key


class KeyNotFound(StorageError):
    def __init__(self, key: str) -> None:
        super().__init__(f"key not found: {key}")
        self.key = key


class RevisionMismatch(StorageError):
    """The key's current revision is not the one the write was based on."""

    def __init__(self, key: str, expected: int, actual: int) -> None:
        super().__init__(f"revision mismatch on {key}: expected {expected}, found {actual}")
        self.key = key
        self.expected = expected
        self.actual = actual


class Compacted(StorageError):
    """The requested revision is older than the oldest one kept."""

    def __init__(self, requested: int, compacted: int) -> None:
        super().__init__(f"revision {requested} has been compacted (oldest kept: {compacted + 1})")
        self.requested = requested
        self.compacted = compacted


class FutureRevision(StorageError):
    """The requested revision has not happened yet."""

    def __init__(self, requested: int, current: int) -> None:
        super().__init__(f"revision {requested} is newer than the current revision {current}")
        self.requested = requested
        self.current = current


@dataclass(frozen=True, slots=True)
class KeyValue:
    key: str
    value: bytes
    create_revision: int
    mod_revision: int
    # What `value` encodes, when its writer handed it over (see `Storage.create`): watchers
    # in this process take it instead of parsing `value` again. Not part of equality.
    decoded: Any = field(default=None, compare=False, repr=False)


class EventType(Enum):
    PUT = "PUT"
    DELETE = "DELETE"
    # No write: every write under the watched prefix up to `kv.mod_revision` has been
    # yielded (etcd's progress notification). Sent only to watches that ask for it.
    PROGRESS = "PROGRESS"


@dataclass(frozen=True, slots=True)
class WatchEvent:
    """One write. For DELETE, `kv.value` is the value the key held when deleted and
    `kv.mod_revision` is the revision of the deletion."""

    type: EventType
    kv: KeyValue
    prev: KeyValue | None

    @property
    def revision(self) -> int:
        return self.kv.mod_revision

    @property
    def is_create(self) -> bool:
        return self.type is EventType.PUT and self.kv.create_revision == self.kv.mod_revision


@dataclass(frozen=True, slots=True)
class ListResult:
    items: list[KeyValue]
    revision: int  # the store revision the list was read at
    more: bool  # further keys exist after the last item (a limit was hit)


def prefix_end(prefix: str) -> str | None:
    """The smallest key after every key under `prefix` (etcd's range end), or None when
    there is none (the empty prefix). Keys order by code point, as UTF-8 bytes do."""
    trimmed = prefix.rstrip("\U0010ffff")
    if not trimmed:
        return None
    last = ord(trimmed[-1]) + 1
    if 0xD800 <= last <= 0xDFFF:  # surrogates cannot be encoded; skip past them
        last = 0xE000
    return trimmed[:-1] + chr(last)


class Storage(Protocol):
    async def start(self) -> None:
        """Open the store (create it when missing)."""

    async def close(self) -> None: ...

    async def current_revision(self) -> int: ...

    async def get(self, key: str, *, revision: int = 0) -> KeyValue | None:
        """The key's value at `revision` (0: now), or None when absent."""

    async def list(
        self, prefix: str, *, revision: int = 0, start_key: str = "", limit: int = 0
    ) -> ListResult:
        """Live keys under `prefix`, ordered by key, from `start_key` inclusive; at most
        `limit` items when limit > 0. `revision` 0 reads the latest state."""

    async def count(self, prefix: str) -> int: ...

    async def create(self, key: str, value: bytes, *, decoded: Any = None) -> KeyValue:
        """Create `key`; raises KeyExists when it is live.

        `decoded`, when given, is the object `value` encodes, exactly as parsing `value`
        would give it (types included), and nobody changes it afterwards. Storage never
        looks at it: it only hands it on, as `kv.decoded`, in the live watch events of
        this write (events replayed from the log carry None)."""

    async def update(
        self, key: str, value: bytes, *, expected_revision: int, decoded: Any = None
    ) -> KeyValue:
        """Replace `key` if its mod_revision is `expected_revision`; raises KeyNotFound or
        RevisionMismatch. `decoded` as for `create`."""

    async def delete(self, key: str, *, expected_revision: int = 0) -> KeyValue:
        """Delete `key` (if its mod_revision is `expected_revision`, when non-zero) and
        return the deleted value with the deletion's revision as mod_revision."""

    def watch(
        self, prefix: str, *, after: int, progress_notify: bool = False
    ) -> AsyncIterator[WatchEvent]:
        """Every write under `prefix` with revision > `after`, in order, forever.

        Raises Compacted (on first iteration) when `after` is below the compacted
        revision. A consumer too slow to keep up is ended with `WatchDropped`.
        With `progress_notify`, PROGRESS events (kv holds only the revision) also report,
        soon after writes elsewhere, how far the watch is complete, so a cache of one
        prefix can tell it is up to date with the whole store."""

    async def compact(self, revision: int) -> None: ...

    async def compacted_revision(self) -> int: ...


class WatchDropped(StorageError):
    """The watcher fell too far behind and was disconnected; re-list and re-watch."""
