"""The endpoints and endpointslice controllers inside `timonel server`, driven with
kubectl; the test writes pod status as a kubelet would."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import RunningServer
from tests.integration.controllers.harness import apply, get, items, now, wait_for


@pytest.fixture
def node(server: RunningServer) -> Iterator[str]:
    """A Node for the pods to be bound to (slices leave out pods of unknown nodes)."""
    name = f"ep-{uuid.uuid4().hex[:8]}"
    apply(
        server,
        {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": name, "labels": {"topology.kubernetes.io/zone": "zone-a"}},
        },
    )
    yield name
    server.kubectl("delete", "node", name, "--wait=false")


def bound_pod(
    name: str, node: str, port: int, labels: dict[str, str] | None = None
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels or {"app": "web"}},
        "spec": {
            "nodeName": node,
            "containers": [
                {
                    "name": "web",
                    "image": "nginx",
                    "ports": [{"name": "http", "containerPort": port}],
                }
            ],
        },
    }


def set_status(server: RunningServer, namespace: str, name: str, ip: str, *, ready: bool) -> None:
    stamp = now()
    status = {
        "phase": "Running",
        "podIP": ip,
        "podIPs": [{"ip": ip}],
        "conditions": [
            {"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": stamp}
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


def service(name: str = "web", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "labels": {"tier": "front"}},
        "spec": {
            "selector": {"app": "web"},
            "ports": [{"name": "http", "port": 80, "targetPort": "http"}],
            **spec,
        },
    }


def slice_endpoints(server: RunningServer, namespace: str, service_name: str) -> dict[str, Any]:
    """IP → (port, endpoint) over the Service's slices."""
    found: dict[str, Any] = {}
    for endpoint_slice in items(
        server, "endpointslices", namespace, f"kubernetes.io/service-name={service_name}"
    ):
        for endpoint in endpoint_slice.get("endpoints") or []:
            found[endpoint["addresses"][0]] = (endpoint_slice["ports"][0]["port"], endpoint)
    return found


def test_ready_and_not_ready_pods_with_named_ports(
    server: RunningServer, namespace: str, node: str
) -> None:
    apply(server, bound_pod("web-1", node, 8080), namespace)
    apply(server, bound_pod("web-2", node, 9090), namespace)
    apply(server, bound_pod("other", node, 8080, {"app": "other"}), namespace)
    apply(server, service(), namespace)
    set_status(server, namespace, "web-1", "10.42.7.1", ready=True)
    set_status(server, namespace, "web-2", "10.42.7.2", ready=False)
    set_status(server, namespace, "other", "10.42.7.3", ready=True)

    def endpoints_listed() -> dict[str, Any] | None:
        found = get(server, "endpoints", "web", namespace)
        subsets = (found or {}).get("subsets") or []
        done = any(s.get("addresses") for s in subsets) and any(
            s.get("notReadyAddresses") for s in subsets
        )
        return found if done else None

    endpoints = wait_for(endpoints_listed, what="endpoints with both pods")
    assert endpoints["metadata"]["labels"] == {"tier": "front"}
    assert endpoints["metadata"]["annotations"]["endpoints.kubernetes.io/last-change-trigger-time"]
    by_port = {s["ports"][0]["port"]: s for s in endpoints["subsets"]}
    assert sorted(by_port) == [8080, 9090]
    ready = by_port[8080]["addresses"][0]
    assert ready["ip"] == "10.42.7.1" and ready["nodeName"] == node
    assert ready["targetRef"]["kind"] == "Pod" and ready["targetRef"]["name"] == "web-1"
    assert by_port[8080]["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    assert [a["ip"] for a in by_port[9090]["notReadyAddresses"]] == ["10.42.7.2"]
    assert "addresses" not in by_port[9090]

    endpoints_in_slices = wait_for(
        lambda: (found := slice_endpoints(server, namespace, "web")) and len(found) == 2 and found,
        what="slices with both pods",
    )
    port_1, first = endpoints_in_slices["10.42.7.1"]
    port_2, second = endpoints_in_slices["10.42.7.2"]
    assert (port_1, port_2) == (8080, 9090)
    assert first["conditions"] == {"ready": True, "serving": True, "terminating": False}
    assert second["conditions"] == {"ready": False, "serving": False, "terminating": False}
    assert first["nodeName"] == node and first["zone"] == "zone-a"
    slices = items(server, "endpointslices", namespace, "kubernetes.io/service-name=web")
    service_uid = get(server, "service", "web", namespace)["metadata"]["uid"]  # type: ignore[index]
    for endpoint_slice in slices:
        assert endpoint_slice["addressType"] == "IPv4"
        assert endpoint_slice["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"] == (
            "endpointslice-controller.k8s.io"
        )
        assert endpoint_slice["metadata"]["ownerReferences"][0]["uid"] == service_uid

    # web-2 turns ready: it moves to the ready addresses, and its slice is updated in place.
    names_before = sorted(s["metadata"]["name"] for s in slices)
    set_status(server, namespace, "web-2", "10.42.7.2", ready=True)
    wait_for(
        lambda: all(
            s.get("addresses")
            for s in (get(server, "endpoints", "web", namespace) or {}).get("subsets", [])
        ),
        what="both pods ready",
    )
    wait_for(
        lambda: slice_endpoints(server, namespace, "web")["10.42.7.2"][1]["conditions"]["ready"],
        what="slice endpoint ready",
    )
    names_after = sorted(
        s["metadata"]["name"]
        for s in items(server, "endpointslices", namespace, "kubernetes.io/service-name=web")
    )
    assert names_after == names_before


def test_publish_not_ready_and_headless_hostnames(
    server: RunningServer, namespace: str, node: str
) -> None:
    pod = bound_pod("db-0", node, 5432)
    pod["spec"].update(hostname="db-0", subdomain="db")
    apply(server, pod, namespace)
    apply(server, service("db", clusterIP="None", publishNotReadyAddresses=True), namespace)
    set_status(server, namespace, "db-0", "10.42.8.1", ready=False)
    endpoints = wait_for(
        lambda: ((get(server, "endpoints", "db", namespace) or {}).get("subsets") or [None])[0],
        what="headless endpoints",
    )
    assert endpoints["addresses"][0]["hostname"] == "db-0"
    assert endpoints["addresses"][0]["ip"] == "10.42.8.1"
    labels = get(server, "endpoints", "db", namespace)["metadata"]["labels"]  # type: ignore[index]
    assert labels["service.kubernetes.io/headless"] == ""
    _, endpoint = wait_for(
        lambda: slice_endpoints(server, namespace, "db").get("10.42.8.1"), what="db slice"
    )
    assert endpoint["hostname"] == "db-0"
    assert endpoint["conditions"] == {"ready": True, "serving": False, "terminating": False}


def test_services_without_selector_keep_their_endpoints(
    server: RunningServer, namespace: str
) -> None:
    manual = service("manual")
    del manual["spec"]["selector"]
    apply(server, manual, namespace)
    apply(
        server,
        {
            "apiVersion": "v1",
            "kind": "Endpoints",
            "metadata": {"name": "manual"},
            "subsets": [
                {"addresses": [{"ip": "192.0.2.10"}], "ports": [{"name": "http", "port": 80}]}
            ],
        },
        namespace,
    )
    apply(server, service("empty"), namespace)
    # The selected Service's (empty) objects appear; the manual one is left as written.
    wait_for(
        lambda: get(server, "endpoints", "empty", namespace),
        what="endpoints of a Service without pods",
    )
    wait_for(
        lambda: items(server, "endpointslices", namespace, "kubernetes.io/service-name=empty"),
        what="placeholder slice",
    )
    manual_endpoints = get(server, "endpoints", "manual", namespace)
    assert manual_endpoints is not None
    assert manual_endpoints["subsets"][0]["addresses"] == [{"ip": "192.0.2.10"}]
    assert not items(server, "endpointslices", namespace, "kubernetes.io/service-name=manual")
    kubernetes = get(server, "endpoints", "kubernetes", "default")
    assert kubernetes is not None and kubernetes["subsets"][0]["ports"][0]["name"] == "https"


def test_endpoints_follow_the_service_away(
    server: RunningServer, namespace: str, node: str
) -> None:
    apply(server, bound_pod("web-1", node, 8080), namespace)
    apply(server, service(), namespace)
    set_status(server, namespace, "web-1", "10.42.9.1", ready=True)
    wait_for(lambda: get(server, "endpoints", "web", namespace), what="endpoints")
    wait_for(lambda: slice_endpoints(server, namespace, "web"), what="slice")
    server.kubectl("delete", "service", "web", "-n", namespace)
    wait_for(lambda: get(server, "endpoints", "web", namespace) is None, what="endpoints deleted")
    wait_for(
        lambda: not items(server, "endpointslices", namespace, "kubernetes.io/service-name=web"),
        what="slices collected",
    )
