"""events.k8s.io/v1 Event: conversion to and from the stored core/v1 Event, the strict
validation of the new API, the shared events table and field selectors."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml

from timonel.kinds.events.event import EventStrategy, from_core_event, to_core_event

STRATEGY = EventStrategy()

# What client-go's events.k8s.io recorder (kube-scheduler) sends.
NEW_EVENT = """
apiVersion: events.k8s.io/v1
kind: Event
metadata:
  name: web-1.17c9a3b1f2d0e8a4
  namespace: default
eventTime: "2024-05-01T10:00:00.123456Z"
reportingController: default-scheduler
reportingInstance: default-scheduler-node-1
action: Binding
reason: Scheduled
regarding:
  apiVersion: v1
  kind: Pod
  name: web-1
  namespace: default
  uid: 5c1e7c2e-1d7b-4a55-9f0e-2d4c5b3a9e10
  resourceVersion: "1234"
note: Successfully assigned default/web-1 to node-1
type: Normal
"""

# The same event as kube-apiserver serves it through core/v1.
CORE_EVENT = """
apiVersion: v1
kind: Event
metadata:
  name: web-1.17c9a3b1f2d0e8a4
  namespace: default
involvedObject:
  apiVersion: v1
  kind: Pod
  name: web-1
  namespace: default
  uid: 5c1e7c2e-1d7b-4a55-9f0e-2d4c5b3a9e10
  resourceVersion: "1234"
reason: Scheduled
message: Successfully assigned default/web-1 to node-1
source: {}
firstTimestamp: null
lastTimestamp: null
type: Normal
eventTime: "2024-05-01T10:00:00.123456Z"
action: Binding
reportingComponent: default-scheduler
reportingInstance: default-scheduler-node-1
"""

# A core/v1 event written by a kubelet (old recorder), as events.k8s.io serves it.
KUBELET_CORE = """
apiVersion: v1
kind: Event
metadata: {name: web-1.pulled, namespace: default}
involvedObject: {apiVersion: v1, kind: Pod, name: web-1, namespace: default, fieldPath: "spec.containers{web}"}
reason: Pulled
message: Container image "nginx:1.27" already present on machine
source: {component: kubelet, host: node-1}
firstTimestamp: "2024-05-01T10:00:01Z"
lastTimestamp: "2024-05-01T10:00:05Z"
count: 3
type: Normal
eventTime: null
reportingComponent: kubelet
reportingInstance: node-1
"""

KUBELET_NEW = """
apiVersion: events.k8s.io/v1
kind: Event
metadata: {name: web-1.pulled, namespace: default}
eventTime: null
reportingController: kubelet
reportingInstance: node-1
reason: Pulled
regarding: {apiVersion: v1, kind: Pod, name: web-1, namespace: default, fieldPath: "spec.containers{web}"}
note: Container image "nginx:1.27" already present on machine
type: Normal
deprecatedSource: {component: kubelet, host: node-1}
deprecatedFirstTimestamp: "2024-05-01T10:00:01Z"
deprecatedLastTimestamp: "2024-05-01T10:00:05Z"
deprecatedCount: 3
"""


def load(text: str) -> dict[str, Any]:
    obj: dict[str, Any] = yaml.safe_load(text)
    return obj


def test_serves_over_the_core_events_store() -> None:
    assert STRATEGY.storage_resource == ("", "events")
    assert (STRATEGY.group, STRATEGY.version, STRATEGY.plural) == ("events.k8s.io", "v1", "events")


def test_new_event_converts_to_the_core_event() -> None:
    assert STRATEGY.to_storage(load(NEW_EVENT)) == load(CORE_EVENT)


def test_core_event_converts_to_the_new_event() -> None:
    assert STRATEGY.from_storage(load(KUBELET_CORE)) == load(KUBELET_NEW)
    new = from_core_event(load(CORE_EVENT))
    expected = load(NEW_EVENT)
    expected.update(
        {"deprecatedSource": {}, "deprecatedFirstTimestamp": None, "deprecatedLastTimestamp": None}
    )
    assert new == expected


def test_conversion_round_trips() -> None:
    for core in (load(CORE_EVENT), load(KUBELET_CORE)):
        assert to_core_event(from_core_event(copy.deepcopy(core))) == core


def test_series_and_related_carry_over() -> None:
    new = load(NEW_EVENT)
    new["series"] = {"count": 4, "lastObservedTime": "2024-05-01T10:05:00.000000Z"}
    new["related"] = {"kind": "Node", "name": "node-1"}
    core = to_core_event(new)
    assert core["series"] == new["series"]
    assert core["related"] == new["related"]
    assert from_core_event(core)["series"] == new["series"]


def test_valid_new_event() -> None:
    assert STRATEGY.validate(load(NEW_EVENT)) == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"eventTime": None}, ["eventTime: Required value"]),
        ({"type": "Info"}, ['type: Invalid value: "": has invalid value: Info']),
        (
            {"reportingController": ""},
            [
                "reportingComponent: Required value",
                'reportingComponent: Invalid value: "": name part must be non-empty',
                "reportingComponent: Invalid value: \"\": name part must consist of alphanumeric characters, '-', "
                "'_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or "
                "'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
            ],
        ),
        ({"action": ""}, ["action: Required value"]),
        ({"note": "x" * 1025}, ['message: Invalid value: "": can have at most 1024 characters']),
        ({"deprecatedCount": 2}, ['count: Invalid value: "": needs to be unset']),
        (
            {"deprecatedSource": {"component": "kubelet"}},
            ['source: Invalid value: "": needs to be unset'],
        ),
        (
            {"series": {"count": 1}},
            [
                'series.count: Invalid value: "": should be at least 2',
                "series.lastObservedTime: Required value",
            ],
        ),
        # A cluster-scoped object's events belong in default or kube-system.
        (
            {
                "regarding": {"kind": "Node", "name": "node-1"},
                "metadata": {"name": "n", "namespace": "apps"},
            },
            ['involvedObject.namespace: Invalid value: "": does not match event.namespace'],
        ),
    ],
)
def test_strict_validation(change: dict[str, Any], expected: list[str]) -> None:
    event = load(NEW_EVENT)
    event.update(change)
    assert [e.message() for e in STRATEGY.validate(event)] == expected


def test_updates_may_only_touch_the_series() -> None:
    old = load(NEW_EVENT)
    bumped = copy.deepcopy(old)
    bumped["series"] = {"count": 2, "lastObservedTime": "2024-05-01T10:01:00.000000Z"}
    assert STRATEGY.validate_update(bumped, old) == []

    changed = copy.deepcopy(old)
    changed["note"] = "something else"
    changed["reason"] = "Other"
    assert [e.message() for e in STRATEGY.validate_update(changed, old)] == [
        'reason: Invalid value: "Other": field is immutable',
        'message: Invalid value: "something else": field is immutable',
        'reason: Invalid value: "Other": field is immutable',
    ]

    moved = copy.deepcopy(old)
    moved["regarding"]["name"] = "web-2"
    [error] = STRATEGY.validate_update(moved, old)
    assert error.message().startswith(
        'involvedObject: Invalid value: core.ObjectReference{Kind:"Pod", '
    )
    assert error.message().endswith("field is immutable")


def stamp(seconds_ago: int) -> str:
    return (datetime.now(UTC) - timedelta(seconds=seconds_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_table_row_of_a_legacy_event() -> None:
    event = load(KUBELET_NEW)
    event["deprecatedFirstTimestamp"] = stamp(600)
    event["deprecatedLastTimestamp"] = stamp(30)
    assert STRATEGY.table_row(event) == [
        "30s",
        "Normal",
        "Pulled",
        "pod/web-1",
        "spec.containers{web}",
        "kubelet, node-1",
        'Container image "nginx:1.27" already present on machine',
        "10m",
        3,
        "web-1.pulled",
    ]


def test_table_row_of_a_new_event() -> None:
    event = load(NEW_EVENT)
    event["eventTime"] = stamp(90)
    row = STRATEGY.table_row(event)
    # Last seen falls back to the event time, the count of a singleton is 1.
    assert row[0] == "90s" and row[7] == "90s" and row[8] == 1
    assert row[5] == "default-scheduler, default-scheduler-node-1"
    event["series"] = {"count": 5, "lastObservedTime": stamp(5)}
    row = STRATEGY.table_row(event)
    assert (row[0], row[8]) == ("5s", 5)
    assert [c.name for c in STRATEGY.columns if c.priority == 0] == [
        "Last Seen",
        "Type",
        "Reason",
        "Object",
        "Message",
    ]


def test_selectable_fields_use_core_names() -> None:
    fields = STRATEGY.selectable_fields(load(NEW_EVENT))
    assert fields["involvedObject.kind"] == "Pod"
    assert fields["involvedObject.name"] == "web-1"
    assert fields["involvedObject.uid"] == "5c1e7c2e-1d7b-4a55-9f0e-2d4c5b3a9e10"
    assert fields["reportingComponent"] == "default-scheduler"
    assert fields["source"] == "default-scheduler"
    assert fields["metadata.namespace"] == "default"
    assert set(STRATEGY.field_labels) <= set(fields)
    assert STRATEGY.selectable_fields(load(KUBELET_NEW))["source"] == "kubelet"
