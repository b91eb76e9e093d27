"""core/v1 Events: Go-written fields, validation of old and new style events, the table."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from timonel.kinds.core.event import EventStrategy, event_row

NOW = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)


def event(**fields: Any) -> dict[str, Any]:
    obj = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": "web.17", "namespace": "default"},
        "involvedObject": {
            "kind": "Pod",
            "name": "web",
            "namespace": "default",
            "uid": "u1",
            "apiVersion": "v1",
            "fieldPath": "spec.containers{nginx}",
        },
        "reason": "Pulled",
        "message": 'Successfully pulled image "nginx"\n',
        "type": "Normal",
        "source": {"component": "kubelet", "host": "node-1"},
        **fields,
    }
    EventStrategy().default(obj)
    return obj


def test_go_fields() -> None:
    obj = event()
    assert (
        obj["eventTime"] is None and obj["firstTimestamp"] is None and obj["lastTimestamp"] is None
    )
    assert obj["reportingComponent"] == "" and obj["reportingInstance"] == ""


def test_row_wide() -> None:
    obj = event(
        firstTimestamp="2025-01-01T11:50:00Z", lastTimestamp="2025-01-01T11:58:00Z", count=4
    )
    assert event_row(obj, NOW) == [
        "2m",
        "Normal",
        "Pulled",
        "pod/web",
        "spec.containers{nginx}",
        "kubelet, node-1",
        'Successfully pulled image "nginx"',
        "10m",
        4,
        "web.17",
    ]
    assert len(EventStrategy.columns) == 10
    assert [c.name for c in EventStrategy.columns if c.priority == 0] == [
        "Last Seen",
        "Type",
        "Reason",
        "Object",
        "Message",
    ]


def test_row_of_new_style_event() -> None:
    obj = event(
        eventTime="2025-01-01T11:59:30.000000Z",
        source={},
        reportingComponent="default-scheduler",
        reportingInstance="",
        involvedObject={"kind": "Node"},
    )
    row = event_row(obj, NOW)
    assert row[0] == "30s" and row[7] == "30s"
    assert row[3] == "node"
    assert row[5] == "default-scheduler"
    assert row[8] == 1
    series = event(series={"count": 7, "lastObservedTime": "2025-01-01T11:59:00.000000Z"})
    assert event_row(series, NOW)[0] == "60s" and event_row(series, NOW)[8] == 7
    assert event_row(event(), NOW)[0] == "<unknown>"


def test_validation() -> None:
    strategy = EventStrategy()
    assert strategy.validate(event()) == []
    elsewhere = event(involvedObject={"kind": "Pod", "name": "web", "namespace": "other"})
    assert [e.message() for e in strategy.validate(elsewhere)] == [
        'involvedObject.namespace: Invalid value: "other": does not match event.namespace'
    ]
    new_style = event(eventTime="2025-01-01T11:59:30.000000Z", reason="", action="")
    assert [e.message() for e in strategy.validate(new_style)] == [
        "reportingComponent: Required value",
        'reportingComponent: Invalid value: "": name part must be non-empty',
        "reportingComponent: Invalid value: \"\": name part must consist of alphanumeric characters, '-', '_' or "
        "'.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or "
        "'123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
        "reportingInstance: Required value",
        "action: Required value",
        "reason: Required value",
    ]


def test_field_selectors() -> None:
    fields = EventStrategy().selectable_fields(event())
    assert fields["involvedObject.name"] == "web"
    assert fields["involvedObject.uid"] == "u1"
    assert fields["source"] == "kubelet"
    assert fields["reportingComponent"] == ""
    assert set(EventStrategy.field_labels) <= set(fields)
