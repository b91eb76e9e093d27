"""DefaultBinder: binds the pod through the API (`pods/binding`), via the injected call."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from timonel.scheduler.framework import (
    SUCCESS,
    BindFunc,
    CycleState,
    Handle,
    PodInfo,
    Status,
    error,
)

NAME: Final = "DefaultBinder"


class DefaultBinder:
    name = NAME

    def __init__(self, bind: BindFunc | None) -> None:
        self._bind = bind

    async def bind(self, state: CycleState, pod: PodInfo, node_name: str) -> Status:
        if self._bind is None:
            return error(NAME, "no binding function configured")
        try:
            await self._bind(pod.pod, node_name)
        except Exception as failure:  # reported on the pod, then retried with backoff
            return error(NAME, str(failure) or type(failure).__name__)
        return SUCCESS


def new(args: Mapping[str, Any], handle: Handle) -> DefaultBinder:
    return DefaultBinder(handle.bind)
