"""The event recorder's spam filter."""

from __future__ import annotations

from timonel.client.events import SPAM_BURST, EventRecorder


def test_spam_filter_allows_a_burst_per_object_then_drops() -> None:
    recorder = EventRecorder(client=None, component="test")  # type: ignore[arg-type]
    pod = {"kind": "Pod", "metadata": {"namespace": "ns", "name": "p", "uid": "u1"}}
    other = {"kind": "Pod", "metadata": {"namespace": "ns", "name": "q", "uid": "u2"}}
    allowed = [recorder._allowed(pod) for _ in range(SPAM_BURST + 5)]
    assert allowed == [True] * SPAM_BURST + [False] * 5
    assert recorder._allowed(other)
