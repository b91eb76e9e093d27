"""The managed-fields clock: kube's whole-second RFC 3339 timestamps, formatted once a second."""

from __future__ import annotations

import time
from typing import Any

from timonel.api.objects import now_rfc3339
from timonel.patch import managedfields


def test_the_clock_reads_as_now_rfc3339_and_follows_the_second(monkeypatch: Any) -> None:
    clock = managedfields._SecondClock()
    before = now_rfc3339()
    reading = clock()
    assert before <= reading <= now_rfc3339()
    monkeypatch.setattr(time, "time", lambda: 1_764_000_000.25)
    assert clock() == "2025-11-24T16:00:00Z"
    monkeypatch.setattr(time, "time", lambda: 1_764_000_000.99)
    assert clock() == "2025-11-24T16:00:00Z"
    monkeypatch.setattr(time, "time", lambda: 1_764_000_001.0)
    assert clock() == "2025-11-24T16:00:01Z"


def test_an_update_is_stamped_with_the_clock(monkeypatch: Any) -> None:
    monkeypatch.setattr(time, "time", lambda: 1_764_000_000.5)
    new: dict[str, Any] = {"metadata": {"name": "a"}, "data": {"k": "v"}}
    managedfields.record_update(None, new, manager="m", api_version="v1", schema=None)
    assert [entry["time"] for entry in new["metadata"]["managedFields"]] == ["2025-11-24T16:00:00Z"]
