"""The replicaset controller against an in-process control plane whose pod creations
can be refused: slow-start batches, expectations, FailedCreate and ReplicaFailure."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import orjson
import pytest

from timonel.api.errors import StatusError
from timonel.api.objects import Object
from timonel.client.events import EventRecorder
from timonel.client.informer import InformerFactory
from timonel.client.resources import EVENTS, NAMESPACES, PODS, REPLICASETS
from timonel.client.rest import ApiClient
from timonel.client.transport import Query, RawResponse, Transport
from timonel.controllers.manager import ControllerContext
from timonel.controllers.replicaset import ReplicaSetController
from timonel.server import ControlPlane, ServerOptions

REFUSAL = 'pods "web-" is forbidden: exceeded quota: compute, requested: pods=1, used: pods=2, limited: pods=2'


class RefusingPodCreates:
    """A transport that lets `allowed` pod creations through and refuses the rest."""

    def __init__(self, inner: Transport, allowed: int) -> None:
        self.inner = inner
        self.allowed = allowed
        self.attempts = 0

    async def request(
        self,
        method: str,
        path: str,
        *,
        query: Query | None = None,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> RawResponse:
        if method == "POST" and path.endswith("/pods"):
            self.attempts += 1
            if self.allowed <= 0:
                status = {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "status": "Failure",
                    "message": REFUSAL,
                    "reason": "Forbidden",
                    "code": 403,
                }
                return RawResponse(403, orjson.dumps(status), "application/json")
            self.allowed -= 1
        return await self.inner.request(method, path, query=query, body=body, headers=headers)

    def stream(
        self, path: str, *, query: Query | None = None, headers: Mapping[str, str] | None = None
    ) -> AsyncIterator[bytes]:
        return self.inner.stream(path, query=query, headers=headers)

    async def close(self) -> None:
        await self.inner.close()


@pytest.fixture
async def plane(tmp_path: Path) -> AsyncIterator[ControlPlane]:
    control_plane = ControlPlane(
        ServerOptions(data_dir=tmp_path, bind_address="127.0.0.1", https_listen_port=0)
    )
    await control_plane.start()
    # The test runs its own replicaset controller: the built-in controllers must not act.
    for task in control_plane._components:
        task.cancel()
    await asyncio.gather(*control_plane._components, return_exceptions=True)
    try:
        yield control_plane
    finally:
        await control_plane.stop()


async def until(condition: object, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await condition():  # type: ignore[operator]
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


def replica_set(replicas: int) -> Object:
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "nginx:1.14.2"}]},
            },
        },
    }


async def test_creations_start_slow_and_failures_are_reported(plane: ControlPlane) -> None:
    admin = plane.in_process_client("test")
    await until(lambda: _exists(admin, "default"))
    transport = RefusingPodCreates(
        plane.in_process_client("kube-controller-manager").transport, allowed=2
    )
    client = ApiClient(transport, field_manager="kube-controller-manager")
    informers = InformerFactory(client)
    context = ControllerContext(
        client=client,
        informers=informers,
        recorder=lambda component: EventRecorder(client, component),
    )
    controller = ReplicaSetController(context)
    running = [asyncio.create_task(informer.run()) for informer in controller.informers]
    try:
        await asyncio.wait_for(asyncio.gather(*(i.synced.wait() for i in controller.informers)), 5)
        await admin.create(REPLICASETS, replica_set(10))
        await until(lambda: _present(controller, "default/web"))

        # Batches of 1, then 2: the second batch has one refusal, and nothing more is tried.
        with pytest.raises(StatusError):
            await controller.sync("default/web")
        assert transport.attempts == 3
        assert len((await admin.list(PODS, "default"))["items"]) == 2
        status = (await admin.get(REPLICASETS, "web", "default"))["status"]
        [failure] = status["conditions"]
        assert (failure["type"], failure["status"], failure["reason"], failure["message"]) == (
            "ReplicaFailure",
            "True",
            "FailedCreate",
            REFUSAL,
        )

        async def refused_event() -> bool:
            events = (await admin.list(EVENTS, "default"))["items"]
            return any(
                e["reason"] == "FailedCreate"
                and e["message"] == f"Error creating: {REFUSAL}"
                and e["involvedObject"]["kind"] == "ReplicaSet"
                and e["type"] == "Warning"
                for e in events
            )

        await until(refused_event)

        # The next sync waits until the informer has seen both pods it created.
        await until(lambda: _pods_seen(controller, 2))
        assert controller.expectations.satisfied("default/web")
        with pytest.raises(StatusError):
            await controller.sync("default/web")
        assert transport.attempts == 4  # a batch of one, refused

        # Creations work again: the rest are made, and the failure condition goes.
        transport.allowed = 100
        await controller.sync("default/web")
        assert transport.attempts == 12
        assert len((await admin.list(PODS, "default"))["items"]) == 10
        await until(lambda: _pods_seen(controller, 10))
        await controller.sync("default/web")
        status = (await admin.get(REPLICASETS, "web", "default"))["status"]
        assert "conditions" not in status
        assert status["replicas"] == 10
    finally:
        await cancel_all(running)


async def cancel_all(tasks: list[asyncio.Task[None]]) -> None:
    # A cancellation can be lost by a watch handing out an event at that very moment: insist.
    while not all(task.done() for task in tasks):
        for task in tasks:
            task.cancel()
        await asyncio.wait(tasks, timeout=0.1)


async def _exists(client: ApiClient, namespace: str) -> bool:
    try:
        await client.get(NAMESPACES, namespace)
        return True
    except StatusError:
        return False


async def _present(controller: ReplicaSetController, key: str) -> bool:
    return controller.replica_sets.get(key) is not None


async def _pods_seen(controller: ReplicaSetController, count: int) -> bool:
    return len(controller.pods.indexer.by_index("namespace", "default")) == count
