"""Expectations: what a controller has asked the API server to create or delete and
not yet seen come back through its informers (kube's UIDTrackingControllerExpectations).

Until they are met, the controller does not act on the count of its objects again: its
informer may lag behind its own writes, and acting on the stale count would create or
delete twice. Creations are counted; deletions are tracked by object key, so a deletion
seen twice (a deletionTimestamp, then the delete) counts once. Expectations older than
`timeout` are considered met, so a lost event cannot stall a controller forever.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

EXPECTATIONS_TIMEOUT = 300.0


@dataclass
class _Pending:
    creations: int
    deletions: set[str] = field(default_factory=set)
    since: float = 0.0

    def fulfilled(self) -> bool:
        return self.creations <= 0 and not self.deletions


class Expectations:
    def __init__(
        self, *, clock: Callable[[], float] = time.monotonic, timeout: float = EXPECTATIONS_TIMEOUT
    ) -> None:
        self._pending: dict[str, _Pending] = {}
        self._clock = clock
        self._timeout = timeout

    def satisfied(self, key: str) -> bool:
        """True when the controller may act on `key` again: nothing pending, all seen,
        or the expectations expired."""
        pending = self._pending.get(key)
        if pending is None:
            return True
        return pending.fulfilled() or self._clock() - pending.since > self._timeout

    def expect_creations(self, key: str, count: int) -> None:
        self._pending[key] = _Pending(count, since=self._clock())

    def expect_deletions(self, key: str, object_keys: Iterable[str]) -> None:
        self._pending[key] = _Pending(0, set(object_keys), since=self._clock())

    def expect(self, key: str, creations: int, object_keys: Iterable[str]) -> None:
        """Creations and deletions at once, for a controller that does both in one sync."""
        self._pending[key] = _Pending(creations, set(object_keys), since=self._clock())

    def creation_observed(self, key: str) -> None:
        pending = self._pending.get(key)
        if pending is not None:
            pending.creations -= 1

    def deletion_observed(self, key: str, object_key: str) -> None:
        pending = self._pending.get(key)
        if pending is not None:
            pending.deletions.discard(object_key)

    def delete(self, key: str) -> None:
        self._pending.pop(key, None)
