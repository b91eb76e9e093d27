"""Reading one pod's runtime state: which statuses are asked for, and objects that vanish."""

from __future__ import annotations

import asyncio
from typing import Any

from timonel.agent.kubelet.runtimestate import (
    CONTAINER_NAME_LABEL,
    POD_NAME_LABEL,
    POD_NAMESPACE_LABEL,
    POD_UID_LABEL,
    RUNNING,
    read_pod_runtime,
)
from timonel.agent.runtime.cri import NotFound, StatusCode, api

LABELS = {POD_UID_LABEL: "u1", POD_NAME_LABEL: "web", POD_NAMESPACE_LABEL: "default"}


class FakeCri:
    """Two sandboxes (an old stopped one, a ready one) and three containers, one of which
    is removed between the list and its status."""

    def __init__(self) -> None:
        self.status_calls: list[str] = []
        self.in_flight = 0
        self.most_in_flight = 0

    async def _answer(self, name: str) -> None:
        self.status_calls.append(name)
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        await asyncio.sleep(0.01)
        self.in_flight -= 1

    async def list_pod_sandbox(self, filter: Any) -> list[api.PodSandbox]:
        assert dict(filter.label_selector) == {POD_UID_LABEL: "u1"}
        return [
            api.PodSandbox(id="old", state=api.SANDBOX_NOTREADY, created_at=1, labels=LABELS),
            api.PodSandbox(id="new", state=api.SANDBOX_READY, created_at=2, labels=LABELS),
        ]

    async def list_containers(self, filter: Any) -> list[api.Container]:
        return [api.Container(id=f"c{i}", pod_sandbox_id="new", labels=LABELS) for i in range(3)]

    async def pod_sandbox_status(self, sandbox_id: str) -> api.PodSandboxStatusResponse:
        await self._answer(sandbox_id)
        return api.PodSandboxStatusResponse(
            status=api.PodSandboxStatus(
                id=sandbox_id,
                state=api.SANDBOX_READY,
                created_at=2,
                network=api.PodSandboxNetworkStatus(ip="10.0.0.7"),
            )
        )

    async def container_status(self, container_id: str) -> api.ContainerStatusResponse:
        await self._answer(container_id)
        if container_id == "c1":
            raise NotFound("ContainerStatus", StatusCode.NOT_FOUND, "gone")
        return api.ContainerStatusResponse(
            status=api.ContainerStatus(
                id=container_id,
                state=api.CONTAINER_RUNNING,
                created_at=int(container_id[1:]),
                labels={CONTAINER_NAME_LABEL: "main"},
            )
        )


async def test_reads_statuses_at_once_and_skips_vanished_containers() -> None:
    cri = FakeCri()
    runtime = await read_pod_runtime(cri, "u1")  # type: ignore[arg-type]
    assert (runtime.name, runtime.namespace) == ("web", "default")
    # Newest sandbox first, with its full status; the stopped one only from the list.
    assert [s.id for s in runtime.sandboxes] == ["new", "old"]
    assert runtime.sandboxes[0].ip == "10.0.0.7" and not runtime.sandboxes[1].ready
    assert "old" not in cri.status_calls
    assert sorted(c.id for c in runtime.containers) == ["c0", "c2"]
    assert all(c.state == RUNNING and c.sandbox_id == "new" for c in runtime.containers)
    assert cri.most_in_flight == 4  # the sandbox's and the three containers' statuses
