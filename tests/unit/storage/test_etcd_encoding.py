"""Endpoint parsing and the translation of etcd's JSON into the Storage protocol's terms."""

from __future__ import annotations

import base64

import pytest

from timonel.storage.etcd import (
    EtcdEndpoints,
    is_etcd_endpoint,
    key_value,
    parse_endpoint,
    watch_events,
)
from timonel.storage.interface import EventType, KeyValue


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    ("endpoint", "expected"),
    [
        ("etcd://127.0.0.1:2379", EtcdEndpoints(("http://127.0.0.1:2379",))),
        (
            "etcd://h1:1,h2,[::1]:3",
            EtcdEndpoints(("http://h1:1", "http://h2:2379", "http://[::1]:3")),
        ),
        (
            "etcds://h1:1,h2:2?cacert=/ca.pem&cert=/c.pem&key=/k.pem",
            EtcdEndpoints(("https://h1:1", "https://h2:2"), "/ca.pem", "/c.pem", "/k.pem"),
        ),
        ("http://h1:1,http://h2:2/", EtcdEndpoints(("http://h1:1", "http://h2:2"))),
        (
            "https://h1:1,https://h2:2?cacert=/ca.pem",
            EtcdEndpoints(("https://h1:1", "https://h2:2"), "/ca.pem"),
        ),
    ],
)
def test_endpoints_parse(endpoint: str, expected: EtcdEndpoints) -> None:
    assert parse_endpoint(endpoint) == expected
    assert is_etcd_endpoint(endpoint)


@pytest.mark.parametrize(
    "endpoint",
    [
        "etcd://",
        "etcd://h1:1,",
        "etcd://h1:1?cacert=/ca.pem",  # TLS options without TLS
        "etcds://h1:1?ca=/ca.pem",  # unknown option
        "http://h1:1,https://h2:2",
        "etcd://h1:1/prefix",
        "h1:2379",
    ],
)
def test_bad_endpoints_are_refused(endpoint: str) -> None:
    with pytest.raises(ValueError):
        parse_endpoint(endpoint)


def test_sqlite_is_not_an_etcd_endpoint() -> None:
    assert not is_etcd_endpoint("sqlite:///var/lib/timonel/state.db")


def test_key_value_reads_int64_strings_and_absent_zero_fields() -> None:
    document = {"key": b64("/r/a"), "create_revision": "2", "mod_revision": "5", "version": "3"}
    assert key_value(document) == KeyValue("/r/a", b"", 2, 5)


def test_watch_events_in_protocol_terms() -> None:
    created = {"key": b64("/r/a"), "create_revision": "2", "mod_revision": "2", "value": b64("1")}
    updated = {**created, "mod_revision": "3", "value": b64("2")}
    result = {
        "header": {"revision": "4"},
        "events": [
            {"kv": created},
            # etcd sends the previous value only when asked; a create has none.
            {"kv": updated, "prev_kv": created},
            {"type": "DELETE", "kv": {"key": b64("/r/a"), "mod_revision": "4"}, "prev_kv": updated},
        ],
    }
    events = watch_events(result)
    assert [(e.type, e.kv, e.prev) for e in events] == [
        (EventType.PUT, KeyValue("/r/a", b"1", 2, 2), None),
        (EventType.PUT, KeyValue("/r/a", b"2", 2, 3), KeyValue("/r/a", b"1", 2, 2)),
        # A delete reports the value the key held, at the deletion's revision.
        (EventType.DELETE, KeyValue("/r/a", b"2", 2, 4), KeyValue("/r/a", b"2", 2, 3)),
    ]
    assert [e.is_create for e in events] == [True, False, False]
    assert watch_events({"header": {"revision": "4"}}) == []
