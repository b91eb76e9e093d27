"""EndpointSlice strategy: kube-apiserver 1.32's defaults, validation, generation and table."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml

from timonel.kinds.discovery.endpointslice import EndpointSliceStrategy, service_name

STRATEGY = EndpointSliceStrategy()

# A slice as the endpointslice controller writes it for a two-pod Service.
SLICE = """
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-abc12
  namespace: default
  labels:
    kubernetes.io/service-name: web
    endpointslice.kubernetes.io/managed-by: endpointslice-controller.k8s.io
addressType: IPv4
endpoints:
- addresses: ["10.42.0.5"]
  conditions: {ready: true, serving: true, terminating: false}
  nodeName: node-1
  targetRef: {kind: Pod, name: web-1, namespace: default}
- addresses: ["10.42.1.7"]
ports:
- name: http
  port: 80
- port: 443
  protocol: TCP
"""


def load(text: str = SLICE) -> dict[str, Any]:
    obj: dict[str, Any] = yaml.safe_load(text)
    STRATEGY.default(obj)
    return obj


def messages(obj: dict[str, Any]) -> list[str]:
    return [e.message() for e in STRATEGY.validate(obj)]


def test_defaults_port_names_protocols_and_conditions() -> None:
    obj = load()
    assert obj["ports"] == [
        {"name": "http", "port": 80, "protocol": "TCP"},
        {"port": 443, "protocol": "TCP", "name": ""},
    ]
    assert obj["endpoints"][1]["conditions"] == {}
    assert obj["endpoints"][0]["conditions"] == {
        "ready": True,
        "serving": True,
        "terminating": False,
    }


def test_no_endpoints_read_back_as_null() -> None:
    obj = load("addressType: IPv4\nendpoints: []\n")
    assert obj["endpoints"] is None
    assert messages(obj) == []


def test_defaults_are_idempotent() -> None:
    once = load()
    twice = copy.deepcopy(once)
    STRATEGY.default(twice)
    assert twice == once


def test_valid_slice_has_no_errors() -> None:
    assert messages(load()) == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"addressType": None}, ["addressType: Required value"]),
        (
            {"addressType": "IP"},
            ['addressType: Unsupported value: "IP": supported values: "FQDN", "IPv4", "IPv6"'],
        ),
        (
            {"endpoints": [{"addresses": []}]},
            ["endpoints[0].addresses: Required value: must contain at least 1 address"],
        ),
        (
            {"endpoints": [{"addresses": ["fd00::1"]}]},
            ['endpoints[0].addresses[0]: Invalid value: "fd00::1": must be a valid IPv4 address'],
        ),
        (
            {"endpoints": [{"addresses": ["127.0.0.1"]}]},
            [
                'endpoints[0].addresses[0]: Invalid value: "127.0.0.1": '
                "may not be in the loopback range (127.0.0.0/8, ::1/128)"
            ],
        ),
        (
            {"endpoints": [{"addresses": ["0.0.0.0"]}]},
            [
                'endpoints[0].addresses[0]: Invalid value: "0.0.0.0": may not be unspecified (0.0.0.0)'
            ],
        ),
        (
            {"endpoints": [{"addresses": ["169.254.169.254"]}]},
            [
                'endpoints[0].addresses[0]: Invalid value: "169.254.169.254": '
                "may not be in the link-local range (169.254.0.0/16, fe80::/10)"
            ],
        ),
        (
            {"endpoints": [{"addresses": ["10.0.0.1"], "hostname": "Web.1"}]},
            [
                'endpoints[0].hostname: Invalid value: "Web.1": a lowercase RFC 1123 label must consist '
                "of lower case alphanumeric characters or '-', and must start and end with an "
                "alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
                "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
            ],
        ),
        (
            {"ports": [{"name": "http", "port": 80}, {"name": "http", "port": 81}]},
            ['ports[1].name: Duplicate value: "http"'],
        ),
        (
            {"ports": [{"port": 53, "protocol": "ICMP"}]},
            [
                'ports[0].protocol: Unsupported value: "ICMP": supported values: "SCTP", "TCP", "UDP"'
            ],
        ),
    ],
)
def test_validation_errors(change: dict[str, Any], expected: list[str]) -> None:
    obj = load()
    for key, value in change.items():
        if value is None:
            obj.pop(key)
        else:
            obj[key] = value
    STRATEGY.default(obj)
    assert messages(obj) == expected


def test_fqdn_addresses() -> None:
    obj = load("addressType: FQDN\nendpoints:\n- addresses: [example.com., db]\n")
    assert messages(obj) == [
        'endpoints[0].addresses[1]: Invalid value: "db": should be a domain with at least two '
        "segments separated by dots"
    ]


def test_ipv6_slice() -> None:
    obj = load("addressType: IPv6\nendpoints:\n- addresses: ['fd00:10:42::5', '10.0.0.1']\n")
    assert messages(obj) == [
        'endpoints[0].addresses[1]: Invalid value: "10.0.0.1": must be a valid IPv6 address'
    ]


def test_too_many_endpoints() -> None:
    obj = load()
    obj["endpoints"] = [{"addresses": ["10.0.0.1"]}] * 1001
    assert messages(obj) == ["endpoints: Too many: 1001: must have at most 1000 items"]


def test_address_type_is_immutable() -> None:
    old = load()
    new = copy.deepcopy(old)
    new["addressType"] = "IPv6"
    new["endpoints"] = None
    errors = [e.message() for e in STRATEGY.validate_update(new, old)]
    assert errors == ['addressType: Invalid value: "IPv6": field is immutable']


def test_generation_follows_content_and_labels() -> None:
    obj = load()
    obj["metadata"]["uid"] = "u"
    STRATEGY.prepare_for_create(obj)
    assert obj["metadata"]["generation"] == 1

    annotated = copy.deepcopy(obj)
    annotated["metadata"]["annotations"] = {"note": "x"}
    STRATEGY.prepare_for_update(annotated, obj)
    assert annotated["metadata"]["generation"] == 1

    relabelled = copy.deepcopy(obj)
    relabelled["metadata"]["labels"]["kubernetes.io/service-name"] = "api"
    STRATEGY.prepare_for_update(relabelled, obj)
    assert relabelled["metadata"]["generation"] == 2

    moved = copy.deepcopy(obj)
    moved["endpoints"][0]["addresses"] = ["10.42.0.9"]
    STRATEGY.prepare_for_update(moved, obj)
    assert moved["metadata"]["generation"] == 2


def test_deprecated_topology_is_cleared_on_write() -> None:
    obj = load()
    obj["endpoints"][0]["deprecatedTopology"] = {"kubernetes.io/hostname": "node-1"}
    STRATEGY.prepare_for_create(obj)
    assert "deprecatedTopology" not in obj["endpoints"][0]


def test_table_row() -> None:
    obj = load()
    created = datetime.now(UTC) - timedelta(minutes=5)
    obj["metadata"]["creationTimestamp"] = created.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert STRATEGY.table_row(obj) == ["web-abc12", "IPv4", "80,443", "10.42.0.5,10.42.1.7", "5m"]
    assert [c.name for c in STRATEGY.columns] == [
        "Name",
        "AddressType",
        "Ports",
        "Endpoints",
        "Age",
    ]


def test_table_cells_cut_after_three() -> None:
    obj = load()
    obj["ports"] = [{"port": p, "name": f"p{p}", "protocol": "TCP"} for p in (1, 2, 3, 4, 5)]
    obj["endpoints"] = [{"addresses": [f"10.0.0.{i}"]} for i in range(1, 5)]
    row = STRATEGY.table_row(obj)
    assert row[2] == "1,2,3 + 2 more..."
    assert row[3] == "10.0.0.1,10.0.0.2,10.0.0.3 + 1 more..."


def test_table_cells_of_an_empty_slice() -> None:
    obj = load("metadata: {name: empty}\naddressType: IPv4\nendpoints: null\n")
    assert STRATEGY.table_row(obj)[1:4] == ["IPv4", "<unset>", "<unset>"]


def test_service_name_comes_from_the_label() -> None:
    assert service_name(load()) == "web"
    assert service_name(load("metadata: {name: x}\naddressType: IPv4\n")) is None
