"""The service LB controller inside `timonel server`: LoadBalancer Services get the
addresses of the nodes that serve them, port conflicts leave the younger Service pending,
and a Service that stops being a LoadBalancer loses its ingress.

The nodes here are Node objects written by the test; they carry the enablelb label, so
only they serve load balancers (nodes of other tests are left out)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import RunningServer
from tests.integration.controllers.harness import apply, get, wait_for

ENABLE_LB = "svccontroller.k3s.cattle.io/enablelb"


@pytest.fixture
def lb_nodes(server: RunningServer) -> Iterator[list[str]]:
    tag = uuid.uuid4().hex[:6]
    names = [f"lb-{tag}-{i}" for i in range(2)]
    for number, name in enumerate(names):
        node = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": name, "labels": {ENABLE_LB: "true"}},
            "status": {
                "addresses": [{"type": "InternalIP", "address": f"192.0.2.{10 + number}"}],
                "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
            },
        }
        server.kubectl("create", "-f", "-", input=json.dumps(node))
    try:
        yield names
    finally:
        server.kubectl("delete", "node", *names, "--wait=false", check=False)


def lb_service(name: str, port: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {
            "type": "LoadBalancer",
            "selector": {"app": name},
            "ports": [{"name": "http", "port": port, "targetPort": 8080}],
        },
    }


def ingress(server: RunningServer, name: str, namespace: str) -> list[str]:
    service = get(server, "service", name, namespace) or {}
    entries = service.get("status", {}).get("loadBalancer", {}).get("ingress") or []
    return [entry["ip"] for entry in entries]


def reasons(server: RunningServer, name: str, namespace: str) -> list[str]:
    events = server.kubectl("get", "events", "-n", namespace, "-o", "json").json()["items"]
    return [e["reason"] for e in events if e["involvedObject"].get("name") == name]


def test_load_balancers_get_the_addresses_of_their_nodes(
    server: RunningServer, namespace: str, lb_nodes: list[str]
) -> None:
    expected = ["192.0.2.10", "192.0.2.11"]
    apply(server, lb_service("first", 18080), namespace)
    wait_for(lambda: ingress(server, "first", namespace) == expected, what="first's ingress")
    wait_for(
        lambda: "UpdatedLoadBalancer" in reasons(server, "first", namespace),
        what="the UpdatedLoadBalancer event",
    )
    columns = server.kubectl("get", "service", "first", "-n", namespace).stdout
    assert "192.0.2.10,192.0.2.11" in columns

    # The same port: the younger Service waits (k3s's svclb pods stay Pending).
    apply(server, lb_service("second", 18080), namespace)
    apply(server, lb_service("third", 18081), namespace)
    wait_for(lambda: ingress(server, "third", namespace) == expected, what="third's ingress")
    assert ingress(server, "second", namespace) == []

    server.kubectl("delete", "service", "first", "-n", namespace)
    wait_for(lambda: ingress(server, "second", namespace) == expected, what="second's ingress")

    server.kubectl(
        "patch", "service", "second", "-n", namespace, "--type=merge",
        "-p", json.dumps({"spec": {"type": "ClusterIP"}}),
    )  # fmt: skip
    wait_for(lambda: ingress(server, "second", namespace) == [], what="the ingress to be cleared")

    # No node left to serve "third": its ingress goes, with k3s's warning.
    server.kubectl("label", "node", *lb_nodes, f"{ENABLE_LB}=false", "--overwrite")
    wait_for(lambda: ingress(server, "third", namespace) == [], what="third to lose its nodes")
    wait_for(
        lambda: "UnAvailableLoadBalancer" in reasons(server, "third", namespace),
        what="the UnAvailableLoadBalancer event",
    )
