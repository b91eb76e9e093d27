"""The event recorder's spam filter."""

from __future__ import annotations

import asyncio
import copy
import re
import time
from typing import Any

from timonel.api.objects import Object
from timonel.client.events import SPAM_BURST, EventRecorder
from timonel.client.resources import Resource


def test_spam_filter_allows_a_burst_per_object_then_drops() -> None:
    recorder = EventRecorder(client=None, component="test")  # type: ignore[arg-type]
    pod = {"kind": "Pod", "metadata": {"namespace": "ns", "name": "p", "uid": "u1"}}
    other = {"kind": "Pod", "metadata": {"namespace": "ns", "name": "q", "uid": "u2"}}
    allowed = [recorder._allowed(pod) for _ in range(SPAM_BURST + 5)]
    assert allowed == [True] * SPAM_BURST + [False] * 5
    assert recorder._allowed(other)


class RecordingClient:
    """Stands in for ApiClient: keeps what was written and echoes it back stored."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, Any]]] = []

    async def create(self, resource: Resource, obj: Object, namespace: str = "") -> Object:
        self.calls.append(("create", resource.api_version, copy.deepcopy(obj)))
        return {**obj, "metadata": {**obj["metadata"], "resourceVersion": "1"}}

    async def update(self, resource: Resource, obj: Object) -> Object:
        self.calls.append(("update", resource.api_version, copy.deepcopy(obj)))
        return obj


POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"namespace": "ns", "name": "p", "uid": "u1", "resourceVersion": "7"},
}


async def settle(recorder: EventRecorder) -> None:
    while recorder._tasks:
        await asyncio.gather(*recorder._tasks)


async def test_events_api_recorder_writes_action_reporting_fields_and_series() -> None:
    client = RecordingClient()
    recorder = EventRecorder(
        client,  # type: ignore[arg-type]
        "default-scheduler",
        host="node-a",
        events_api=True,
    )
    recorder.event(POD, "Warning", "FailedScheduling", "0/1 nodes", action="Scheduling")
    await settle(recorder)
    recorder.event(POD, "Warning", "FailedScheduling", "0/1 nodes", action="Scheduling")
    await settle(recorder)
    recorder.event(POD, "Warning", "FailedScheduling", "0/1 nodes", action="Scheduling")
    await settle(recorder)

    (verb, api_version, created), *repeats = client.calls
    assert (verb, api_version) == ("create", "events.k8s.io/v1")
    assert created["action"] == "Scheduling"
    assert created["reportingController"] == "default-scheduler"
    assert created["reportingInstance"] == "default-scheduler-node-a"
    assert created["regarding"]["name"] == "p"
    assert created["note"] == "0/1 nodes"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", created["eventTime"])
    assert "source" not in created and "count" not in created
    assert [(verb, event["series"]["count"]) for verb, _, event in repeats] == [
        ("update", 2),
        ("update", 3),
    ]


async def test_core_recorder_reports_component_and_host_without_action() -> None:
    client = RecordingClient()
    recorder = EventRecorder(client, "replicaset-controller")  # type: ignore[arg-type]
    recorder.event(POD, "Normal", "SuccessfulCreate", "Created pod: p")
    await settle(recorder)
    ((verb, api_version, created),) = client.calls
    assert (verb, api_version) == ("create", "v1")
    assert created["source"] == {"component": "replicaset-controller"}
    assert created["reportingComponent"] == "replicaset-controller"
    assert created["reportingInstance"] == ""
    assert "action" not in created and "eventTime" not in created


async def test_events_are_named_as_client_go_names_them_and_never_twice() -> None:
    client = RecordingClient()
    recorder = EventRecorder(client=client, component="default-scheduler", events_api=True)  # type: ignore[arg-type]
    before = time.time_ns()
    for reason in ("Scheduled", "Pulled", "Started"):  # distinct events, written at once
        recorder.event(POD, "Normal", reason, "m")
    await recorder.close()
    names = [obj["metadata"]["name"] for _, _, obj in client.calls]
    assert len(set(names)) == 3
    for name in names:
        prefix, stamp = name.split(".")
        assert prefix == "p"
        assert re.fullmatch("[0-9a-f]+", stamp)
        assert before <= int(stamp, 16) <= time.time_ns() + 10
