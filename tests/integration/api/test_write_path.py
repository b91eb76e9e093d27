"""The API server's write and watch paths inside one process: pods/binding, watch events
handed to in-process callers as objects, and watch events encoded once for all watchers."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from timonel.api.errors import StatusError
from timonel.api.objects import Object
from timonel.apiserver.inprocess import InProcessTransport
from timonel.apiserver.store import decode_from_storage
from timonel.client.informer import Informer
from timonel.client.resources import CONFIGMAPS, PODS
from timonel.server import ControlPlane, ServerOptions

NAMESPACE = "default"


@pytest.fixture
async def plane(tmp_path: Path) -> AsyncIterator[ControlPlane]:
    control_plane = ControlPlane(
        ServerOptions(
            data_dir=tmp_path,
            bind_address="127.0.0.1",
            https_listen_port=0,
            disable_agent=True,
            disable_scheduler=True,
            disable_controller_manager=True,
        )
    )
    await control_plane.start()
    try:
        yield control_plane
    finally:
        await control_plane.stop()


def _transport(plane: ControlPlane) -> InProcessTransport:
    transport = plane.in_process_client("tests").transport
    assert isinstance(transport, InProcessTransport)
    return transport


def _pod(name: str) -> Object:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}]},
    }


def _binding(name: str, node: str, **meta: Any) -> Object:
    return {
        "apiVersion": "v1",
        "kind": "Binding",
        "metadata": {"name": name, **meta},
        "target": {"kind": "Node", "name": node},
    }


def _pods_cache(plane: ControlPlane) -> Any:
    assert plane.api is not None
    store = plane.api.store_for("", "v1", "pods")
    assert store is not None
    return store.cache


async def _cached(plane: ControlPlane, name: str) -> Object:
    cache = _pods_cache(plane)
    await cache.wait_until_fresh()
    found = cache.get(f"{NAMESPACE}/{name}")
    assert found is not None
    return found  # type: ignore[no-any-return]


async def test_binding_sets_node_condition_and_annotations_only(plane: ControlPlane) -> None:
    client = plane.in_process_client("tests")
    created = await client.create(PODS, _pod("web"))
    cached_before = await _cached(plane, "web")
    snapshot = copy.deepcopy(cached_before)
    binding = _binding("web", "node-1", annotations={"scheduled-by": "tests"})
    answer = await client.create_subresource(PODS, "web", "binding", binding, NAMESPACE)
    assert answer["kind"] == "Status" and answer["status"] == "Success"
    bound = await client.get(PODS, "web", NAMESPACE)

    assert bound["spec"] == {**created["spec"], "nodeName": "node-1"}
    assert bound["metadata"]["annotations"] == {"scheduled-by": "tests"}
    [condition] = bound["status"]["conditions"]
    assert condition["type"] == "PodScheduled" and condition["status"] == "True"
    assert condition["lastProbeTime"] is None and condition["lastTransitionTime"]
    # A binding is not an update through a field manager (as kube-apiserver's BindingREST).
    assert bound["metadata"]["managedFields"] == created["metadata"]["managedFields"]
    assert int(bound["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])
    # The watch cache's object the binding started from is left as it was.
    assert cached_before == snapshot


async def test_binding_refusals_are_unchanged(plane: ControlPlane) -> None:
    client = plane.in_process_client("tests")
    created = await client.create(PODS, _pod("web"))
    with pytest.raises(StatusError) as wrong_uid:
        await client.create_subresource(
            PODS, "web", "binding", _binding("web", "n", uid="not-the-uid"), NAMESPACE
        )
    assert wrong_uid.value.code == 409
    stale_rv = created["metadata"]["resourceVersion"]
    await client.create_subresource(PODS, "web", "binding", _binding("web", "node-1"), NAMESPACE)
    with pytest.raises(StatusError) as again:
        await client.create_subresource(
            PODS, "web", "binding", _binding("web", "node-2"), NAMESPACE
        )
    assert again.value.code == 409
    assert (
        again.value.message
        == 'Operation cannot be fulfilled on pods "web": pod web is already assigned to node "node-1"'
    )
    with pytest.raises(StatusError) as stale:
        await client.create_subresource(
            PODS, "web", "binding", _binding("web", "n", resourceVersion=stale_rv), NAMESPACE
        )
    assert stale.value.code == 409
    with pytest.raises(StatusError) as missing:
        await client.create_subresource(
            PODS, "nothing", "binding", _binding("nothing", "n"), NAMESPACE
        )
    assert missing.value.code == 404


async def test_a_mistyped_binding_is_refused_and_the_pod_stays_unbound(plane: ControlPlane) -> None:
    client = plane.in_process_client("tests")
    await client.create(PODS, _pod("web"))
    mistyped = {**_binding("web", "node-1"), "target": {"kind": "Node", "name": 7}}
    with pytest.raises(StatusError) as refused:
        await client.create_subresource(PODS, "web", "binding", mistyped, NAMESPACE)
    assert refused.value.code == 400
    assert refused.value.message.startswith(
        'Binding in version "v1" cannot be handled as a Binding: json: cannot unmarshal number'
    )
    assert "nodeName" not in (await client.get(PODS, "web", NAMESPACE))["spec"]


async def test_binding_decides_on_the_stored_pod_when_the_cache_is_behind(
    plane: ControlPlane,
) -> None:
    client = plane.in_process_client("tests")
    await client.create(PODS, _pod("web"))
    cached = await _cached(plane, "web")
    # The cache still shows the pod unbound while storage has it bound elsewhere.
    assert plane.api is not None
    store = plane.api.store_for("", "v1", "pods")
    assert store is not None
    await client.create_subresource(PODS, "web", "binding", _binding("web", "node-1"), NAMESPACE)
    cache = _pods_cache(plane)
    await cache.wait_until_fresh()
    key = f"{NAMESPACE}/web"
    fresh = cache._objects[key]
    cache._objects[key] = (cached, int(cached["metadata"]["resourceVersion"]))
    try:
        with pytest.raises(StatusError) as refused:
            await client.create_subresource(
                PODS, "web", "binding", _binding("web", "node-2"), NAMESPACE
            )
    finally:
        cache._objects[key] = fresh
    assert refused.value.code == 409 and "already assigned" in refused.value.message
    assert (await client.get(PODS, "web", NAMESPACE))["spec"]["nodeName"] == "node-1"


async def _collect_stream(
    transport: InProcessTransport, path: str, query: dict[str, str | list[str]], count: int
) -> list[bytes]:
    lines: list[bytes] = []
    async for line in transport.stream(path, query=query):
        lines.append(line)
        if len(lines) == count:
            break
    return lines


async def _collect_events(
    transport: InProcessTransport, path: str, query: dict[str, str | list[str]], count: int
) -> list[tuple[str, Object]]:
    events: list[tuple[str, Object]] = []
    watch = await transport.open_watch(path, query=query)
    try:
        async for event in watch:
            events.append(event)
            if len(events) == count:
                break
    finally:
        await watch.aclose()  # type: ignore[attr-defined]
    return events


async def test_in_process_watch_events_equal_the_encoded_stream(plane: ControlPlane) -> None:
    client = plane.in_process_client("tests")
    transport = _transport(plane)
    assert plane.api is not None
    start = str(plane.api.store_for("", "v1", "configmaps").cache.revision)  # type: ignore[union-attr]
    path = CONFIGMAPS.path(NAMESPACE)
    query: dict[str, str | list[str]] = {"watch": "true", "resourceVersion": start}
    selected = {**query, "labelSelector": "app=x"}
    streams = asyncio.gather(
        _collect_stream(transport, path, query, 4),
        _collect_events(transport, path, query, 4),
        _collect_stream(transport, path, selected, 3),
        _collect_events(transport, path, selected, 3),
    )
    await asyncio.sleep(0.05)
    cm = {"metadata": {"name": "a", "namespace": NAMESPACE, "labels": {"app": "x"}}, "data": {}}
    created = await client.create(CONFIGMAPS, {"apiVersion": "v1", "kind": "ConfigMap", **cm})
    await client.patch(CONFIGMAPS, "a", {"data": {"k": "v"}}, NAMESPACE)
    await client.patch(CONFIGMAPS, "a", {"metadata": {"labels": {"app": "y"}}}, NAMESPACE)
    await client.delete(CONFIGMAPS, "a", NAMESPACE)
    lines, events, selected_lines, selected_events = await asyncio.wait_for(streams, 10)

    assert [orjson.loads(line) for line in lines] == [{"type": t, "object": o} for t, o in events]
    assert [t for t, _ in events] == ["ADDED", "MODIFIED", "MODIFIED", "DELETED"]
    assert events[0][1] == created
    # Leaving a label selector is a DELETED event for that watcher only.
    assert [orjson.loads(line) for line in selected_lines] == [
        {"type": t, "object": o} for t, o in selected_events
    ]
    assert [t for t, _ in selected_events] == ["ADDED", "MODIFIED", "DELETED"]
    assert selected_events[2][1]["metadata"]["labels"] == {"app": "x"}


async def test_every_watcher_gets_the_same_bytes_and_each_version_its_own(
    plane: ControlPlane,
) -> None:
    client = plane.in_process_client("tests")
    transport = _transport(plane)
    core = "/api/v1/namespaces/default/events"
    events_v1 = "/apis/events.k8s.io/v1/namespaces/default/events"
    query: dict[str, str | list[str]] = {"watch": "true", "resourceVersion": "1"}
    assert plane.api is not None
    query["resourceVersion"] = str(plane.api.store_for("", "v1", "events").cache.revision)  # type: ignore[union-attr]
    watches = asyncio.gather(
        _collect_stream(transport, core, query, 1),
        _collect_stream(transport, core, query, 1),
        _collect_stream(transport, events_v1, query, 1),
        _collect_stream(transport, events_v1, query, 1),
    )
    await asyncio.sleep(0.05)
    event = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": "e1", "namespace": NAMESPACE},
        "involvedObject": {"kind": "Pod", "name": "web", "namespace": NAMESPACE},
        "reason": "Tested",
        "message": "hello",
        "type": "Normal",
    }
    created = await client._call("POST", core, body=event)
    core_a, core_b, new_a, new_b = await asyncio.wait_for(watches, 10)
    assert core_a == core_b and new_a == new_b
    assert orjson.loads(core_a[0]) == {"type": "ADDED", "object": created}
    assert orjson.loads(new_a[0])["object"]["apiVersion"] == "events.k8s.io/v1"


async def test_in_process_informer_holds_objects_equal_to_the_server_s(
    plane: ControlPlane,
) -> None:
    client = plane.in_process_client("tests")
    informer = Informer(client, CONFIGMAPS, NAMESPACE)
    task = asyncio.create_task(informer.run())
    try:
        await asyncio.wait_for(informer.synced.wait(), 5)
        body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {}}
        await client.create(CONFIGMAPS, body, NAMESPACE)
        patched = await client.patch(CONFIGMAPS, "a", {"data": {"k": "v"}}, NAMESPACE)
        for _ in range(500):
            held = informer.get(f"{NAMESPACE}/a")
            if (
                held is not None
                and held["metadata"]["resourceVersion"] == patched["metadata"]["resourceVersion"]
            ):
                break
            await asyncio.sleep(0.01)
        assert informer.get(f"{NAMESPACE}/a") == patched
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_refused_in_process_watch_raises_the_server_s_status(
    plane: ControlPlane,
) -> None:
    transport = _transport(plane)
    with pytest.raises(StatusError) as refused:
        await transport.open_watch(
            CONFIGMAPS.path(NAMESPACE), query={"watch": "true", "resourceVersion": "x"}
        )
    assert refused.value.code == 400


async def test_watch_events_are_the_stored_objects_byte_for_byte(plane: ControlPlane) -> None:
    """Writers hand their objects to the watch cache instead of it parsing the stored
    bytes: what watchers receive must be what the bytes give."""
    client = plane.in_process_client("tests")
    transport = _transport(plane)
    assert plane.api is not None
    storage = plane.api.storage
    cache = _pods_cache(plane)
    query: dict[str, str | list[str]] = {"watch": "true", "resourceVersion": str(cache.revision)}
    watch = asyncio.create_task(_collect_stream(transport, PODS.path(NAMESPACE), query, 5))
    await asyncio.sleep(0.05)
    created = await client.create(PODS, _pod("web"))
    await client.create_subresource(PODS, "web", "binding", _binding("web", "node-1"), NAMESPACE)
    bound = await client.get(PODS, "web", NAMESPACE)
    bound["status"]["phase"] = "Running"
    await client.update_status(PODS, bound)
    await client.patch(PODS, "web", {"metadata": {"labels": {"x": "y"}}}, NAMESPACE)
    await client.delete(PODS, "web", NAMESPACE, grace_period_seconds=30)
    lines = await asyncio.wait_for(watch, 10)
    assert created["metadata"]["uid"]
    for line in lines:
        event = orjson.loads(line)
        revision = int(event["object"]["metadata"]["resourceVersion"])
        kv = await storage.get(f"/registry/core/pods/{NAMESPACE}/web", revision=revision)
        assert kv is not None
        expected = decode_from_storage(kv)
        assert line == orjson.dumps({"type": event["type"], "object": expected}) + b"\n"
    assert [orjson.loads(line)["type"] for line in lines] == ["ADDED"] + ["MODIFIED"] * 4


async def test_only_recent_events_keep_their_encoding(plane: ControlPlane) -> None:
    client = plane.in_process_client("tests")
    transport = _transport(plane)
    assert plane.api is not None
    store = plane.api.store_for("", "v1", "configmaps")
    assert store is not None
    cache = store.cache
    query: dict[str, str | list[str]] = {"watch": "true", "resourceVersion": str(cache.revision)}
    count = 100
    watch = asyncio.create_task(
        _collect_stream(transport, CONFIGMAPS.path(NAMESPACE), query, count)
    )
    await asyncio.sleep(0.05)
    for index in range(count):
        body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"c{index}"}}
        await client.create(CONFIGMAPS, body, NAMESPACE)
    lines = await asyncio.wait_for(watch, 10)
    assert len(lines) == count
    history = list(cache._history)[-count:]
    assert all(not change.event.encoded for change in history[:-64])
    assert history[-1].event.encoded == {None: lines[-1]}
