"""Reading discovery documents into resources, preferred versions and a REST mapper."""

from __future__ import annotations

from timonel.client.discovery import (
    RestMapper,
    ServerResources,
    group_versions,
    parse_resource_list,
    preferred_resources,
)
from timonel.client.resources import Resource

API_VERSIONS = {"kind": "APIVersions", "versions": ["v1"]}
GROUPS = {
    "kind": "APIGroupList",
    "groups": [
        {
            "name": "autoscaling",
            "versions": [
                {"groupVersion": "autoscaling/v1", "version": "v1"},
                {"groupVersion": "autoscaling/v2", "version": "v2"},
            ],
            "preferredVersion": {"groupVersion": "autoscaling/v2", "version": "v2"},
        }
    ],
}
HPA_V1 = {
    "groupVersion": "autoscaling/v1",
    "resources": [
        {
            "name": "horizontalpodautoscalers",
            "namespaced": True,
            "kind": "HorizontalPodAutoscaler",
            "verbs": ["get"],
        },
        {
            "name": "horizontalpodautoscalers/status",
            "namespaced": True,
            "kind": "HorizontalPodAutoscaler",
        },
        {"name": "legacythings", "namespaced": False, "kind": "LegacyThing", "verbs": ["delete"]},
    ],
}
HPA_V2 = {
    "groupVersion": "autoscaling/v2",
    "resources": [
        {
            "name": "horizontalpodautoscalers",
            "namespaced": True,
            "kind": "HorizontalPodAutoscaler",
            "verbs": ["get", "list", "watch", "delete"],
        }
    ],
}


def test_group_versions_put_the_preferred_version_first() -> None:
    assert group_versions(API_VERSIONS, GROUPS) == ["v1", "autoscaling/v2", "autoscaling/v1"]


def test_parse_resource_list_leaves_out_subresources() -> None:
    parsed = parse_resource_list(HPA_V1)
    assert [entry.resource.plural for entry in parsed] == [
        "horizontalpodautoscalers",
        "legacythings",
    ]
    assert parsed[1].resource == Resource(
        "autoscaling", "v1", "legacythings", "LegacyThing", namespaced=False
    )
    assert parsed[1].supports("delete") and not parsed[1].supports("delete", "list")


def test_preferred_resources_take_the_preferred_version_else_the_one_that_serves_it() -> None:
    lists = {
        "autoscaling/v1": parse_resource_list(HPA_V1),
        "autoscaling/v2": parse_resource_list(HPA_V2),
    }
    preferred = preferred_resources(["autoscaling/v2", "autoscaling/v1"], lists)
    assert [(e.resource.version, e.resource.plural) for e in preferred] == [
        ("v2", "horizontalpodautoscalers"),
        ("v1", "legacythings"),
    ]


def test_rest_mapper_falls_back_to_the_preferred_version_of_the_kind() -> None:
    lists = {
        "autoscaling/v1": parse_resource_list(HPA_V1),
        "autoscaling/v2": parse_resource_list(HPA_V2),
    }
    resources = ServerResources(
        served=lists["autoscaling/v1"] + lists["autoscaling/v2"],
        preferred=preferred_resources(["autoscaling/v2", "autoscaling/v1"], lists),
    )
    mapper = RestMapper(resources)
    v1 = mapper.resource_for("autoscaling/v1", "HorizontalPodAutoscaler")
    assert v1 is not None and v1.version == "v1"
    old = mapper.resource_for("autoscaling/v2beta1", "HorizontalPodAutoscaler")
    assert old is not None and old.version == "v2"
    assert mapper.resource_for("v1", "HorizontalPodAutoscaler") is None


def test_failure_message_names_every_failing_group_version() -> None:
    resources = ServerResources(failed={"b.example/v1": "boom", "a.example/v1": "down"})
    assert resources.failure_message() == (
        "unable to retrieve the complete list of server APIs: a.example/v1: down, b.example/v1: boom"
    )
