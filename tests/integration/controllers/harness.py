"""Helpers for driving workload controllers inside `timonel server` with kubectl.

With no node agent, nothing runs the pods: tests stand in for the kubelet by writing
pod status (`mark_pod`), and keep the scheduler out with a scheduler name nobody serves.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from tests.conftest import RunningServer

# Pods for a scheduler that does not exist stay unbound: the controllers under test,
# not the scheduler or a kubelet, decide what happens to them.
NO_SCHEDULER = "timonel-tests-no-scheduler"


def wait_for(condition: Callable[[], Any], timeout: float = 15.0, what: str = "condition") -> Any:
    """Poll until `condition()` returns something truthy, and return it."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met in {timeout}s")
        time.sleep(0.1)


def get(server: RunningServer, kind: str, name: str, namespace: str = "") -> dict[str, Any] | None:
    args = ["get", kind, name, "-o", "json"]
    if namespace:
        args += ["-n", namespace]
    result = server.kubectl(*args, check=False)
    if result.returncode != 0:
        assert "NotFound" in result.stderr, result.stderr
        return None
    found: dict[str, Any] = result.json()
    return found


def items(
    server: RunningServer, kind: str, namespace: str = "", selector: str = ""
) -> list[dict[str, Any]]:
    args = ["get", kind, "-o", "json"]
    args += ["-n", namespace] if namespace else []
    args += ["-l", selector] if selector else []
    listed: list[dict[str, Any]] = server.kubectl(*args).json()["items"]
    return listed


def live_pods(server: RunningServer, namespace: str, selector: str = "") -> list[dict[str, Any]]:
    """Pods not on their way out."""
    return [
        p
        for p in items(server, "pods", namespace, selector)
        if not p["metadata"].get("deletionTimestamp")
    ]


def apply(server: RunningServer, obj: dict[str, Any], namespace: str = "") -> None:
    args = ["apply", "-f", "-"]
    args += ["-n", namespace] if namespace else []
    server.kubectl(*args, input=json.dumps(obj))


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def mark_pod(
    server: RunningServer, namespace: str, name: str, phase: str, *, ready: bool | None = None
) -> None:
    """Write the status a kubelet would: the phase, and Ready when running."""
    ready = phase == "Running" if ready is None else ready
    stamp = now()
    status: dict[str, Any] = {
        "phase": phase,
        "conditions": [
            {"type": "Initialized", "status": "True", "lastTransitionTime": stamp},
            {"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": stamp},
            {
                "type": "ContainersReady",
                "status": "True" if ready else "False",
                "lastTransitionTime": stamp,
            },
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": stamp},
        ],
    }
    server.kubectl(
        "patch",
        "pod",
        name,
        "-n",
        namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": status}),
    )


def events(server: RunningServer, namespace: str, kind: str, name: str) -> list[tuple[str, str]]:
    """(reason, message) of the events about one object, oldest first."""
    found = [
        e
        for e in items(server, "events", namespace)
        if e["involvedObject"].get("kind") == kind and e["involvedObject"].get("name") == name
    ]
    found.sort(
        key=lambda e: (
            e.get("firstTimestamp") or "",
            int(e["metadata"].get("resourceVersion") or 0),
        )
    )
    return [(e["reason"], e["message"]) for e in found]
