"""EndpointSlices from a Service and its pods: the reconciler's pure plan."""

from __future__ import annotations

import copy
from typing import Any

from timonel.api.objects import Object
from timonel.controllers.endpointslice import (
    CONTROLLER_NAME,
    MANAGED_BY_LABEL,
    SERVICE_NAME_LABEL,
    SliceTracker,
    endpoint_identity,
    plan_slices,
    pod_endpoint,
)

NODES = {"n1": {"metadata": {"name": "n1", "labels": {"topology.kubernetes.io/zone": "z1"}}}}


def service(**spec: Any) -> Object:
    return {
        "metadata": {"name": "web", "namespace": "ns", "uid": "svc-uid", "labels": {"team": "a"}},
        "spec": {
            "selector": {"app": "web"},
            "clusterIP": "10.43.0.10",
            "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
            **spec,
        },
    }


def pod(
    name: str, ip: str, *, ready: bool = True, port: int = 8080, node: str = "n1", **meta: Any
) -> Object:
    return {
        "metadata": {
            "name": name,
            "namespace": "ns",
            "uid": f"uid-{name}",
            "labels": {"app": "web"},
            **meta,
        },
        "spec": {
            "nodeName": node,
            "containers": [
                {"name": "c", "ports": [{"name": "http", "containerPort": port, "protocol": "TCP"}]}
            ],
        },
        "status": {
            "phase": "Running",
            "podIP": ip,
            "podIPs": [{"ip": ip}],
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


def stored(plan_slice: Object, name: str, generation: int = 1) -> Object:
    """A planned slice as the API server would return it."""
    result = copy.deepcopy(plan_slice)
    result["metadata"].pop("generateName", None)
    result["metadata"].update(
        name=name, uid=f"uid-{name}", generation=generation, resourceVersion="1"
    )
    return result


def test_endpoint_conditions_node_and_zone() -> None:
    svc = service()
    ready = pod_endpoint(pod("a", "10.0.0.1"), NODES["n1"], svc, "IPv4")
    assert ready == {
        "addresses": ["10.0.0.1"],
        "conditions": {"ready": True, "serving": True, "terminating": False},
        "nodeName": "n1",
        "zone": "z1",
        "targetRef": {"kind": "Pod", "namespace": "ns", "name": "a", "uid": "uid-a"},
    }
    terminating = pod_endpoint(pod("b", "10.0.0.2", deletionTimestamp="t"), None, svc, "IPv4")
    assert terminating["conditions"] == {"ready": False, "serving": True, "terminating": True}
    assert "zone" not in terminating
    published = pod_endpoint(
        pod("c", "10.0.0.3", ready=False), None, service(publishNotReadyAddresses=True), "IPv4"
    )
    assert published["conditions"] == {"ready": True, "serving": False, "terminating": False}


def test_first_sync_creates_one_labelled_owned_slice() -> None:
    plan = plan_slices(
        service(), [pod("a", "10.0.0.1"), pod("b", "10.0.0.2", ready=False)], NODES, []
    )
    assert not plan.update and not plan.delete and len(plan.create) == 1
    created = plan.create[0]
    assert created["metadata"]["generateName"] == "web-"
    assert created["metadata"]["labels"] == {
        "team": "a",
        SERVICE_NAME_LABEL: "web",
        MANAGED_BY_LABEL: CONTROLLER_NAME,
    }
    assert created["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "name": "web",
            "uid": "svc-uid",
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    assert created["addressType"] == "IPv4"
    assert created["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    assert [e["addresses"] for e in created["endpoints"]] == [["10.0.0.1"], ["10.0.0.2"]]
    assert [e["conditions"]["ready"] for e in created["endpoints"]] == [True, False]


def test_pods_with_different_target_ports_get_separate_slices() -> None:
    plan = plan_slices(
        service(), [pod("a", "10.0.0.1", port=8080), pod("b", "10.0.0.2", port=9090)], NODES, []
    )
    assert sorted(s["ports"][0]["port"] for s in plan.create) == [8080, 9090]


def test_at_most_max_endpoints_per_slice() -> None:
    pods = [pod(f"p{i:03d}", f"10.0.{i // 200}.{i % 200 + 1}") for i in range(250)]
    plan = plan_slices(service(), pods, NODES, [], max_per_slice=100)
    assert sorted(len(s["endpoints"]) for s in plan.create) == [50, 100, 100]


def test_unchanged_slices_are_not_written() -> None:
    svc, pods = service(), [pod("a", "10.0.0.1")]
    existing = [stored(plan_slices(svc, pods, NODES, []).create[0], "web-abc")]
    assert not plan_slices(svc, pods, NODES, existing)


def test_a_readiness_change_updates_only_the_slice_holding_it() -> None:
    svc = service()
    pods = [pod(f"p{i:03d}", f"10.0.0.{i + 1}") for i in range(150)]
    first = plan_slices(svc, pods, NODES, [], max_per_slice=100)
    existing = [stored(s, f"web-{i}") for i, s in enumerate(first.create)]
    holder = next(
        s for s in existing if any(e["targetRef"]["name"] == "p120" for e in s["endpoints"])
    )
    pods[120] = pod("p120", "10.0.0.121", ready=False)
    plan = plan_slices(svc, pods, NODES, existing, max_per_slice=100)
    assert not plan.create and not plan.delete
    assert [s["metadata"]["name"] for s in plan.update] == [holder["metadata"]["name"]]
    changed = next(e for e in plan.update[0]["endpoints"] if e["targetRef"]["name"] == "p120")
    assert changed["conditions"]["ready"] is False


def test_new_endpoints_fill_an_existing_slice_and_emptied_slices_go() -> None:
    svc = service()
    existing = [stored(plan_slices(svc, [pod("a", "10.0.0.1")], NODES, []).create[0], "web-a")]
    grown = plan_slices(svc, [pod("a", "10.0.0.1"), pod("b", "10.0.0.2")], NODES, existing)
    assert not grown.create and [s["metadata"]["name"] for s in grown.update] == ["web-a"]
    assert len(grown.update[0]["endpoints"]) == 2
    # The only pod moved to a new port: its old slice is reused for the new port set.
    moved = plan_slices(svc, [pod("a", "10.0.0.1", port=9999)], NODES, existing)
    assert not moved.create and not moved.delete
    assert moved.update[0]["metadata"]["name"] == "web-a"
    assert moved.update[0]["ports"][0]["port"] == 9999


def test_placeholder_slice_when_nothing_is_selected() -> None:
    svc = service()
    plan = plan_slices(svc, [], NODES, [])
    assert len(plan.create) == 1
    placeholder = plan.create[0]
    assert placeholder["endpoints"] == [] and "ports" not in placeholder
    # Kept as is on the next sync (stored with endpoints read back as null).
    kept = stored(placeholder, "web-p")
    kept["endpoints"] = None
    assert not plan_slices(svc, [], NODES, [kept])


def test_pods_on_unknown_nodes_are_skipped_and_reported() -> None:
    plan = plan_slices(service(), [pod("a", "10.0.0.1", node="gone")], NODES, [])
    assert plan.problems and "Node gone Not Found" in plan.problems[0]
    assert plan.create[0]["endpoints"] == []


def test_slices_of_another_owner_or_address_type_are_deleted() -> None:
    svc = service()
    foreign = stored(plan_slices(svc, [pod("a", "10.0.0.1")], NODES, []).create[0], "web-old")
    foreign["metadata"]["ownerReferences"][0]["uid"] = "previous-service"
    ipv6 = stored(plan_slices(svc, [], NODES, []).create[0], "web-v6")
    ipv6["addressType"] = "IPv6"
    plan = plan_slices(svc, [pod("a", "10.0.0.1")], NODES, [foreign, ipv6])
    assert sorted(s["metadata"]["name"] for s in plan.delete) == ["web-old", "web-v6"]
    assert len(plan.create) == 1


def test_endpoint_identity_ignores_conditions() -> None:
    svc = service()
    a = pod_endpoint(pod("a", "10.0.0.1"), None, svc, "IPv4")
    b = pod_endpoint(pod("a", "10.0.0.1", ready=False), None, svc, "IPv4")
    assert endpoint_identity(a) == endpoint_identity(b)


def test_tracker_says_stale_until_the_informer_catches_up() -> None:
    tracker = SliceTracker()
    written = {"metadata": {"uid": "u1", "generation": 3}}
    tracker.written("ns/web", written)
    assert tracker.is_own_write("ns/web", written)
    assert tracker.stale("ns/web", [{"metadata": {"uid": "u1", "generation": 2}}])
    assert tracker.stale("ns/web", [])
    assert not tracker.stale("ns/web", [{"metadata": {"uid": "u1", "generation": 3}}])
    tracker.deleting("ns/web", written)
    assert tracker.stale("ns/web", [{"metadata": {"uid": "u1", "generation": 3}}])
    tracker.deleted("ns/web", written)
    assert not tracker.stale("ns/web", [])
