"""host-gw route decisions: every other node's podCIDR via its InternalIP, only our own
routes changed, others' routes left alone."""

from __future__ import annotations

from typing import Any

from timonel.agent.podnetwork.routes import (
    ROUTE_PROTOCOL,
    ListedRoute,
    Route,
    desired_routes,
    parse_route_listing,
    plan_routes,
    routing_facts,
    routing_view,
)

OURS = str(ROUTE_PROTOCOL)


def node(name: str, cidr: str | None, address: str | None, **extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"podCIDR": cidr, "podCIDRs": [cidr]} if cidr else {}
    addresses = [{"type": "Hostname", "address": name}]
    if address:
        addresses.insert(0, {"type": "InternalIP", "address": address})
    return {
        "metadata": {"name": name, "resourceVersion": "1"},
        "spec": spec,
        "status": {"addresses": addresses, **extra},
    }


NODES = [
    node("a", "10.42.1.0/24", "172.31.0.11"),
    node("b", "10.42.2.0/24", "172.31.0.12"),
    node("c", "10.42.3.0/24", "172.31.0.13"),
]


def test_every_other_node_is_reached_through_its_internal_ip() -> None:
    assert desired_routes("a", NODES) == [
        Route("10.42.2.0/24", "172.31.0.12"),
        Route("10.42.3.0/24", "172.31.0.13"),
    ]
    assert desired_routes("c", NODES) == [
        Route("10.42.1.0/24", "172.31.0.11"),
        Route("10.42.2.0/24", "172.31.0.12"),
    ]


def test_nodes_without_a_pod_cidr_or_an_internal_ip_are_skipped() -> None:
    nodes = [
        *NODES,
        node("d", None, "172.31.0.14"),
        node("e", "10.42.5.0/24", None),
        node("f", "fd00:42:6::/64", "172.31.0.16"),
        node("g", "10.42.7.0/24", "fd00::7"),
    ]
    assert [r.destination for r in desired_routes("a", nodes)] == [
        "10.42.2.0/24",
        "10.42.3.0/24",
    ]


def test_a_pod_cidr_is_routed_once_and_never_over_our_own() -> None:
    nodes = [
        *NODES,
        node("b2", "10.42.2.0/24", "172.31.0.22"),  # b (earlier by name) keeps it
        node("z", "10.42.1.128/25", "172.31.0.26"),  # inside a's own podCIDR
        node("y", "10.42.9.0/24", "172.31.0.11"),  # our own address
    ]
    assert desired_routes("a", nodes) == [
        Route("10.42.2.0/24", "172.31.0.12"),
        Route("10.42.3.0/24", "172.31.0.13"),
    ]


def test_the_plan_adds_repoints_and_removes_only_our_routes() -> None:
    listed = [
        ListedRoute("default", "172.31.0.1", "boot"),
        ListedRoute("172.31.0.0/24", "", "kernel"),
        ListedRoute("10.42.2.0/24", "172.31.0.99", OURS),  # b moved
        ListedRoute("10.42.3.0/24", "172.31.0.13", OURS),  # as wanted
        ListedRoute("10.42.4.0/24", "172.31.0.14", OURS),  # node gone
        ListedRoute("10.99.0.0/16", "172.31.0.50", "boot"),  # not ours: kept
    ]
    plan = plan_routes(desired_routes("a", NODES), listed)
    assert plan.replace == (Route("10.42.2.0/24", "172.31.0.12"),)
    assert plan.delete == (Route("10.42.4.0/24", "172.31.0.14"),)
    assert plan.conflicts == ()
    assert plan


def test_nothing_to_do_when_the_routes_are_in_place() -> None:
    listed = [ListedRoute(r.destination, r.gateway, OURS) for r in desired_routes("b", NODES)]
    plan = plan_routes(desired_routes("b", NODES), listed)
    assert not plan
    assert plan.replace == plan.delete == plan.conflicts == ()


def test_a_destination_someone_else_routes_is_a_conflict_not_a_change() -> None:
    listed = [ListedRoute("10.42.2.0/24", "10.0.0.1", "boot")]
    plan = plan_routes(desired_routes("a", NODES), listed)
    assert plan.conflicts == (Route("10.42.2.0/24", "172.31.0.12"),)
    assert plan.replace == (Route("10.42.3.0/24", "172.31.0.13"),)


def test_removing_everything_deletes_only_our_routes() -> None:
    listed = [
        ListedRoute("10.42.2.0/24", "172.31.0.12", OURS),
        ListedRoute("10.42.3.0/24", "172.31.0.13", "boot"),
    ]
    plan = plan_routes([], listed)
    assert plan.delete == (Route("10.42.2.0/24", "172.31.0.12"),)
    assert plan.replace == ()


def test_ip_route_listing_is_parsed() -> None:
    text = (
        '[{"dst":"default","gateway":"172.31.0.1","dev":"eth0","flags":[]},'
        '{"dst":"10.42.2.0/24","gateway":"172.31.0.12","dev":"eth0","protocol":"116","flags":[]},'
        '{"dst":"172.31.0.0/24","dev":"eth0","protocol":"kernel","scope":"link",'
        '"prefsrc":"172.31.0.11","flags":[]},'
        '{"dst":"10.1.2.3","gateway":"172.31.0.9","dev":"eth0","flags":[]}]'
    )
    assert parse_route_listing(text) == [
        ListedRoute("default", "172.31.0.1", "boot"),
        ListedRoute("10.42.2.0/24", "172.31.0.12", "116"),
        ListedRoute("172.31.0.0/24", "", "kernel"),
        ListedRoute("10.1.2.3/32", "172.31.0.9", "boot"),
    ]
    assert parse_route_listing("") == []


def test_the_routing_view_keeps_only_what_routes_depend_on() -> None:
    full = node("b", "10.42.2.0/24", "172.31.0.12", images=[{"names": ["x"]}], conditions=[])
    full["metadata"]["labels"] = {"x": "y"}
    view = routing_view(full)
    assert view == {
        "metadata": {"name": "b", "resourceVersion": "1"},
        "spec": {"podCIDR": "10.42.2.0/24", "podCIDRs": ["10.42.2.0/24"]},
        "status": {"addresses": full["status"]["addresses"]},
    }
    assert routing_facts(view) == (("10.42.2.0/24",), "172.31.0.12")
    moved = node("b", "10.42.2.0/24", "172.31.0.77")
    assert routing_facts(moved) != routing_facts(view)
