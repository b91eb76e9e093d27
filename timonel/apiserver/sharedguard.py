"""A check that the watch cache's objects are never changed in place.

The cache hands the same decoded objects to every reader: LIST and WATCH responses,
in-process informers, the first attempt of every update. Nothing may change them; a
reader that needs a changed version copies first. With TIMONEL_CHECK_SHARED_OBJECTS=1
(the test suite sets it) each cache keeps the encoding of every object it holds and
compares it when it lets the object go (replaced, deleted, listed again, stopped): an
object changed in place is logged as an error naming it, with SHARED_OBJECT_CHANGED in
the message so that test harnesses can look for it. Off, it costs nothing.
"""

from __future__ import annotations

import logging
import os
from typing import Final

import orjson

from timonel.api.objects import Object

log = logging.getLogger(__name__)

ENVIRONMENT_VARIABLE: Final = "TIMONEL_CHECK_SHARED_OBJECTS"
SHARED_OBJECT_CHANGED: Final = "shared object changed in place"


def enabled() -> bool:
    return os.environ.get(ENVIRONMENT_VARIABLE) == "1"


class SharedObjectGuard:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        # id -> (the object, kept alive so the id is not reused; its encoding when held)
        self._held: dict[int, tuple[Object, bytes]] = {}
        self.changed: list[str] = []

    def hold(self, obj: Object) -> None:
        self._held[id(obj)] = (obj, orjson.dumps(obj))

    def release(self, obj: Object) -> None:
        held = self._held.pop(id(obj), None)
        if held is not None and orjson.dumps(obj) != held[1]:
            metadata = obj.get("metadata") or {}
            name = f"{metadata.get('namespace', '')}/{metadata.get('name', '')}".lstrip("/")
            self.changed.append(name)
            log.error(
                "%s: %s under %s (whoever reads the watch cache must copy before changing)",
                SHARED_OBJECT_CHANGED,
                name,
                self.prefix,
            )

    def release_all(self) -> None:
        for obj, _ in list(self._held.values()):
            self.release(obj)
