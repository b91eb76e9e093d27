"""Request paths to what they address; repeated paths answer alike."""

from __future__ import annotations

import pytest

from timonel.apiserver.requestinfo import RequestInfo, parse_request_info

LEASES = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"


@pytest.mark.parametrize("repeat", [1, 2])
def test_resource_paths(repeat: int) -> None:
    for _ in range(repeat):
        assert parse_request_info("PUT", f"{LEASES}/node-1", None) == RequestInfo(
            True,
            f"{LEASES}/node-1",
            "update",
            group="coordination.k8s.io",
            version="v1",
            namespace="kube-node-lease",
            resource="leases",
            name="node-1",
        )
        status = parse_request_info("GET", "/api/v1/namespaces/default/status", None)
        assert (status.resource, status.name, status.subresource) == (
            "namespaces",
            "default",
            "status",
        )
        assert parse_request_info("GET", "/livez", None) == RequestInfo(False, "/livez", "get")


def test_the_same_path_is_a_list_or_a_watch_by_its_query() -> None:
    for _ in range(2):
        assert parse_request_info("GET", LEASES, None).verb == "list"
        assert parse_request_info("GET", LEASES, "true").verb == "watch"
        assert parse_request_info("GET", LEASES, "1").verb == "watch"
        assert parse_request_info("GET", LEASES, "false").verb == "list"
        assert parse_request_info("DELETE", LEASES, None).verb == "deletecollection"
        assert parse_request_info("DELETE", f"{LEASES}/x", None).verb == "delete"


def test_long_and_many_paths_parse_alike() -> None:
    long_name = "n" * 300
    info = parse_request_info("GET", f"{LEASES}/{long_name}", None)
    assert info.name == long_name
    for n in range(100):
        assert parse_request_info("POST", f"/api/v1/namespaces/ns-{n}/pods", None).namespace == (
            f"ns-{n}"
        )
