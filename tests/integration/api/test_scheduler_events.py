"""Events the scheduler records, as kubectl reads them from a real server."""

from __future__ import annotations

import socket
import time

from tests.conftest import RunningServer


def test_failed_scheduling_event_carries_action_and_reporter(
    server: RunningServer, namespace: str
) -> None:
    server.kubectl("run", "stuck", "--image=nginx", "-n", namespace)
    deadline = time.monotonic() + 30
    events: list[dict] = []  # type: ignore[type-arg]
    while time.monotonic() < deadline:
        listing = server.kubectl(
            "get", "events.v1.events.k8s.io", "-n", namespace, "-o", "json"
        ).json()
        events = [e for e in listing["items"] if e["reason"] == "FailedScheduling"]
        if events:
            break
        time.sleep(0.2)
    assert events, "no FailedScheduling event recorded"
    (event,) = events
    assert event["action"] == "Scheduling"
    assert event["reportingController"] == "default-scheduler"
    assert event["reportingInstance"] == f"default-scheduler-{socket.gethostname()}"
    assert event["regarding"]["name"] == "stuck"
    assert event["eventTime"]

    wide = server.kubectl("get", "events", "-n", namespace, "-o", "wide").stdout
    assert f"default-scheduler, default-scheduler-{socket.gethostname()}" in wide
