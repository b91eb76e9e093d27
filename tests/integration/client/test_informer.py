"""Informers and leader election against an in-process control plane."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from timonel.api.objects import Object
from timonel.client.informer import Informer, strip_managed_fields
from timonel.client.leaderelection import LeaderElector
from timonel.client.resources import CONFIGMAPS
from timonel.client.rest import ApiClient
from timonel.server import ControlPlane, ServerOptions


@pytest.fixture
async def plane(tmp_path: Path) -> AsyncIterator[ControlPlane]:
    control_plane = ControlPlane(
        ServerOptions(data_dir=tmp_path, bind_address="127.0.0.1", https_listen_port=0)
    )
    await control_plane.start()
    try:
        yield control_plane
    finally:
        await control_plane.stop()


def _cm(name: str, value: str = "1") -> Object:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "default"},
        "data": {"v": value},
    }


async def _until(condition: object, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():  # type: ignore[operator]
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


async def test_informer_lists_then_follows_changes(plane: ControlPlane) -> None:
    client = plane.in_process_client("test")
    await client.create(CONFIGMAPS, _cm("before"))
    events: list[tuple[str, str]] = []
    informer = Informer(client, CONFIGMAPS, "default", label_selector="")
    informer.add_handlers(
        on_add=lambda o: events.append(("add", o["metadata"]["name"])),
        on_update=lambda old, new: events.append(("update", new["metadata"]["name"])),
        on_delete=lambda o: events.append(("delete", o["metadata"]["name"])),
    )
    task = asyncio.create_task(informer.run())
    try:
        await asyncio.wait_for(informer.synced.wait(), 5)
        assert informer.get("default/before") is not None
        await client.create(CONFIGMAPS, _cm("after"))
        current = await client.get(CONFIGMAPS, "after", "default")
        current["data"]["v"] = "2"
        await client.update(CONFIGMAPS, current)
        await client.delete(CONFIGMAPS, "before", "default")
        await _until(lambda: ("delete", "before") in events)
        assert events[:1] == [("add", "before")]
        assert ("add", "after") in events and ("update", "after") in events
        assert informer.get("default/before") is None
        assert informer.get("default/after")["data"] == {"v": "2"}  # type: ignore[index]
    finally:
        task.cancel()


async def test_informer_without_managed_fields_leaves_the_servers_alone(
    plane: ControlPlane,
) -> None:
    client = plane.in_process_client("first-writer")
    await client.create(CONFIGMAPS, _cm("trimmed"))
    informer = Informer(client, CONFIGMAPS, "default", transform=strip_managed_fields)
    task = asyncio.create_task(informer.run())
    try:
        await asyncio.wait_for(informer.synced.wait(), 5)
        cached = informer.get("default/trimmed")
        assert cached is not None and "managedFields" not in cached["metadata"]
        # A controller's update built from the cached object, as controllers write.
        changed = {**cached, "data": {"v": "2"}}
        await plane.in_process_client("second-writer").update(CONFIGMAPS, changed)
        await _until(lambda: (informer.get("default/trimmed") or {}).get("data") == {"v": "2"})
        assert "managedFields" not in informer.get("default/trimmed")["metadata"]  # type: ignore[index]
    finally:
        task.cancel()
    stored = await client.get(CONFIGMAPS, "trimmed", "default")
    managers = {entry["manager"] for entry in stored["metadata"]["managedFields"]}
    assert managers == {"first-writer", "second-writer"}


async def test_only_one_leader_at_a_time(plane: ControlPlane) -> None:
    leading: list[str] = []
    overlaps = 0

    def elector(identity: str, client: ApiClient) -> LeaderElector:
        return LeaderElector(
            client,
            "test-lock",
            identity,
            namespace="default",
            lease_duration=1.0,
            renew_deadline=0.6,
            retry_period=0.1,
        )

    async def lead(identity: str) -> None:
        nonlocal overlaps
        leading.append(identity)
        if len(leading) > 1:
            overlaps += 1
        try:
            await asyncio.sleep(0.5)
        finally:
            leading.remove(identity)

    first = asyncio.create_task(elector("a", plane.in_process_client("a")).run(lambda: lead("a")))
    second = asyncio.create_task(elector("b", plane.in_process_client("b")).run(lambda: lead("b")))
    await asyncio.wait_for(asyncio.gather(first, second), 10)
    assert overlaps == 0


async def test_an_informer_without_handlers_follows_and_releases_its_watch(
    plane: ControlPlane,
) -> None:
    assert plane.api is not None
    cache = plane.api.store_for("", "v1", "configmaps").cache  # type: ignore[union-attr]

    def watching_default() -> int:
        # The control plane's own informers watch every namespace, not just this one.
        return sum(1 for watcher in cache._watchers if watcher.key_prefix == "default/")

    client = plane.in_process_client("test")
    informer = Informer(client, CONFIGMAPS, "default")
    task = asyncio.create_task(informer.run())
    try:
        await asyncio.wait_for(informer.synced.wait(), 5)
        await client.create(CONFIGMAPS, _cm("listed-later"))
        await _until(lambda: informer.get("default/listed-later") is not None)
        current = await client.get(CONFIGMAPS, "listed-later", "default")
        await client.update(CONFIGMAPS, {**current, "data": {"v": "2"}})
        await _until(lambda: (informer.get("default/listed-later") or {}).get("data") == {"v": "2"})
        assert watching_default() == 1
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    await _until(lambda: watching_default() == 0)
