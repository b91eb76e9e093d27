"""Read-modify-write with optimistic concurrency, as the API server's GuaranteedUpdate.

`try_update` sees the key's current value (None when absent) and returns the bytes to
store, or None to leave the key alone. The write is conditional on the revision that was
read; when another writer got there first the loop reads again and calls `try_update`
again, so `try_update` must be a pure function of what it is given (plus its closure).
Errors it raises (a validation failure, a precondition the caller checks) end the loop.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Final

from timonel.storage.interface import (
    KeyExists,
    KeyNotFound,
    KeyValue,
    RevisionMismatch,
    Storage,
    StorageError,
)

DEFAULT_MAX_RETRIES: Final = 16

TryUpdate = Callable[[KeyValue | None], Awaitable[bytes | None]]


async def guaranteed_update(
    storage: Storage,
    key: str,
    try_update: TryUpdate,
    *,
    max_retries: int = DEFAULT_MAX_RETRIES,
) -> KeyValue | None:
    """Apply `try_update` until a write lands; returns what the key holds afterwards.

    A value equal to the current one is not written (the revision does not move). When
    every attempt loses a race, the last conflict is raised (RevisionMismatch, KeyExists, or
    KeyNotFound when the key was deleted between the read and the write).
    """
    conflict: StorageError | None = None
    for _ in range(max_retries + 1):
        current = await storage.get(key)
        value = await try_update(current)
        if value is None or (current is not None and value == current.value):
            return current
        try:
            if current is None:
                return await storage.create(key, value)
            return await storage.update(key, value, expected_revision=current.mod_revision)
        except (RevisionMismatch, KeyExists, KeyNotFound) as error:
            conflict = error
    assert conflict is not None
    raise conflict
