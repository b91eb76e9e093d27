"""The /openapi/v3 documents: what kubectl apply/create/explain read from them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from timonel.kinds.base import ScaleSpec, Strategy
from timonel.schema.definitions import SchemaNode, kubernetes_definitions, schema_from_openapi
from timonel.schema.openapi import (
    PATCH_CONTENT_TYPES,
    OpenAPIV3,
    ResourceDescriptor,
    document_hash,
    encode_document,
    group_version_document,
    root_document,
)


@dataclass(frozen=True)
class Resource:
    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool = True
    has_status: bool = False
    scale: object | None = None


DEPLOYMENTS = Resource(
    "apps", "v1", "Deployment", "deployments", has_status=True, scale=ScaleSpec()
)
CONFIG_MAPS = Resource("", "v1", "ConfigMap", "configmaps")
PODS = Resource("", "v1", "Pod", "pods", has_status=True)
NAMESPACES = Resource("", "v1", "Namespace", "namespaces", namespaced=False, has_status=True)
CRONTABS = Resource(
    "stable.example.com",
    "v1",
    "CronTab",
    "crontabs",
    has_status=True,
    scale=ScaleSpec(selector=("status", "selector"), selector_is_string=True),
)
CRONTAB_SCHEMA = schema_from_openapi(
    {
        "type": "object",
        "description": "A scheduled job.",
        "properties": {
            "spec": {
                "type": "object",
                "required": ["cronSpec"],
                "properties": {"cronSpec": {"type": "string", "description": "When to run."}},
            }
        },
    },
    group="stable.example.com",
    version="v1",
    kind="CronTab",
)


def schema_for(resource: ResourceDescriptor) -> SchemaNode | None:
    if resource.kind == "CronTab":
        return CRONTAB_SCHEMA
    return kubernetes_definitions().for_kind(resource.group, resource.version, resource.kind)


def refs(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, sub in value.items():
            if key == "$ref":
                yield sub
            else:
                yield from refs(sub)
    elif isinstance(value, list):
        for sub in value:
            yield from refs(sub)


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method != "parameters":
                yield path, method, operation


def test_every_ref_resolves_to_a_component() -> None:
    document = group_version_document("", "v1", [PODS, CONFIG_MAPS, NAMESPACES])
    schemas = document["components"]["schemas"]
    found = set(refs(document))
    assert found
    for ref in found:
        assert ref.startswith("#/components/schemas/")
        assert ref.removeprefix("#/components/schemas/") in schemas, ref
    assert "io.k8s.api.core.v1.Container" in schemas
    assert "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta" in schemas
    assert "io.k8s.api.core.v1.PodList" in schemas


def test_components_are_openapi_3_shaped() -> None:
    document = group_version_document("apps", "v1", [DEPLOYMENTS])
    schemas = document["components"]["schemas"]
    deployment = schemas["io.k8s.api.apps.v1.Deployment"]
    assert deployment["type"] == "object"
    assert deployment["description"].startswith("Deployment enables declarative updates")
    assert deployment["x-kubernetes-group-version-kind"] == [
        {"group": "apps", "kind": "Deployment", "version": "v1"}
    ]
    assert deployment["properties"]["apiVersion"] == {
        "description": deployment["properties"]["apiVersion"]["description"],
        "type": "string",
    }
    # A ref with its own description is wrapped so 3.0 readers keep both.
    spec = deployment["properties"]["spec"]
    assert spec["allOf"] == [{"$ref": "#/components/schemas/io.k8s.api.apps.v1.DeploymentSpec"}]
    assert spec["description"] == "Specification of the desired behavior of the Deployment."
    replicas = schemas["io.k8s.api.apps.v1.DeploymentSpec"]["properties"]["replicas"]
    assert replicas["type"] == "integer" and replicas["format"] == "int32"
    assert schemas["io.k8s.api.apps.v1.DeploymentSpec"]["required"] == ["selector", "template"]
    int_or_string = schemas["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]
    assert "type" not in int_or_string and int_or_string["format"] == "int-or-string"
    assert schemas["io.k8s.api.autoscaling.v1.Scale"]["x-kubernetes-group-version-kind"]


def test_paths_cover_collection_item_status_and_scale() -> None:
    document = group_version_document("apps", "v1", [DEPLOYMENTS])
    paths = document["paths"]
    collection = "/apis/apps/v1/namespaces/{namespace}/deployments"
    assert set(paths[collection]) == {"get", "post", "delete", "parameters"}
    assert set(paths[collection + "/{name}"]) == {"get", "put", "patch", "delete", "parameters"}
    assert set(paths[collection + "/{name}/status"]) == {"get", "put", "patch", "parameters"}
    assert set(paths[collection + "/{name}/scale"]) == {"get", "put", "patch", "parameters"}
    assert set(paths["/apis/apps/v1/deployments"]) == {"get", "parameters"}
    actions = {
        (path, method): op["x-kubernetes-action"] for path, method, op in operations(document)
    }
    assert actions[(collection, "get")] == "list"
    assert actions[(collection, "post")] == "post"
    assert actions[(collection, "delete")] == "deletecollection"
    assert actions[(collection + "/{name}", "get")] == "get"
    assert actions[(collection + "/{name}", "put")] == "put"
    assert actions[(collection + "/{name}", "patch")] == "patch"
    assert actions[(collection + "/{name}", "delete")] == "delete"
    scale = paths[collection + "/{name}/scale"]["get"]
    assert scale["x-kubernetes-group-version-kind"] == {
        "group": "autoscaling",
        "kind": "Scale",
        "version": "v1",
    }
    assert paths[collection + "/{name}"]["get"]["operationId"] == "readAppsV1NamespacedDeployment"


def test_cluster_scoped_paths_have_no_namespace() -> None:
    document = group_version_document("", "v1", [NAMESPACES])
    assert "/api/v1/namespaces" in document["paths"]
    assert "/api/v1/namespaces/{name}/status" in document["paths"]
    names = [p["name"] for p in document["paths"]["/api/v1/namespaces/{name}"]["parameters"]]
    assert "namespace" not in names


def test_every_operation_carries_gvk_and_writes_declare_field_validation() -> None:
    document = group_version_document("", "v1", [PODS, CONFIG_MAPS])
    for path, method, operation in operations(document):
        assert "x-kubernetes-action" in operation
        gvk = operation["x-kubernetes-group-version-kind"]
        assert gvk["version"] == "v1" and gvk["group"] == ""
        names = {p["name"] for p in operation.get("parameters", ())}
        if method in ("post", "put", "patch"):
            assert {"dryRun", "fieldManager", "fieldValidation"} <= names, (path, method)
        if method == "patch":
            assert "force" in names
            assert tuple(operation["requestBody"]["content"]) == PATCH_CONTENT_TYPES


def test_kubectl_query_param_check_finds_field_validation_on_patch() -> None:
    # kubectl looks up a PATCH operation by GVK and checks its parameter list.
    document = group_version_document("apps", "v1", [DEPLOYMENTS])
    wanted = {"group": "apps", "kind": "Deployment", "version": "v1"}
    patches = [
        op
        for _, method, op in operations(document)
        if method == "patch" and op["x-kubernetes-group-version-kind"] == wanted
    ]
    assert patches
    assert all(any(p["name"] == "fieldValidation" for p in op["parameters"]) for op in patches)


def test_verbs_limit_the_operations() -> None:
    reviews = Resource(
        "authorization.k8s.io",
        "v1",
        "SelfSubjectAccessReview",
        "selfsubjectaccessreviews",
        namespaced=False,
    )

    @dataclass(frozen=True)
    class CreateOnly(Resource):
        verbs: tuple[str, ...] = ("create",)

    document = group_version_document(
        "authorization.k8s.io", "v1", [CreateOnly(*vars(reviews).values())]
    )
    assert list(document["paths"]) == ["/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"]
    assert set(document["paths"]["/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"]) == {
        "post",
        "parameters",
    }


def test_strategies_are_resource_descriptors() -> None:
    class Leases(Strategy):
        group = "coordination.k8s.io"
        kind = "Lease"
        plural = "leases"

    document = group_version_document("coordination.k8s.io", "v1", [Leases()])
    assert "io.k8s.api.coordination.v1.Lease" in document["components"]["schemas"]
    assert "/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{name}" in document["paths"]


def test_crd_document_publishes_its_schema_with_gvk_and_list() -> None:
    document = group_version_document("stable.example.com", "v1", [CRONTABS], schema_for=schema_for)
    schemas = document["components"]["schemas"]
    crontab = schemas["com.example.stable.v1.CronTab"]
    assert crontab["x-kubernetes-group-version-kind"] == [
        {"group": "stable.example.com", "kind": "CronTab", "version": "v1"}
    ]
    assert crontab["description"] == "A scheduled job."
    assert crontab["properties"]["metadata"]["allOf"] == [
        {"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}
    ]
    assert crontab["properties"]["spec"]["required"] == ["cronSpec"]
    assert (
        schemas["com.example.stable.v1.CronTabList"]["x-kubernetes-group-version-kind"][0]["kind"]
        == "CronTabList"
    )
    for ref in refs(document):
        assert ref.removeprefix("#/components/schemas/") in schemas
    item = document["paths"]["/apis/stable.example.com/v1/namespaces/{namespace}/crontabs/{name}"]
    assert item["patch"]["x-kubernetes-group-version-kind"]["kind"] == "CronTab"


def test_encoding_and_hash_are_stable_and_follow_content() -> None:
    first = encode_document(group_version_document("", "v1", [PODS, CONFIG_MAPS]))
    again = encode_document(group_version_document("", "v1", [CONFIG_MAPS, PODS]))
    other = encode_document(group_version_document("", "v1", [PODS]))
    assert first == again
    assert document_hash(first) == document_hash(again) != document_hash(other)
    assert len(document_hash(first)) == 128 and document_hash(first).isupper()


def test_root_document_points_at_each_group_version_with_its_hash() -> None:
    root = root_document({("", "v1"): "AA", ("apps", "v1"): "BB"})
    assert root == {
        "paths": {
            "api/v1": {"serverRelativeURL": "/openapi/v3/api/v1?hash=AA"},
            "apis/apps/v1": {"serverRelativeURL": "/openapi/v3/apis/apps/v1?hash=BB"},
        }
    }


def test_service_builds_lazily_caches_and_invalidates() -> None:
    served: list[ResourceDescriptor] = [PODS, DEPLOYMENTS]
    calls = 0

    def resources() -> list[ResourceDescriptor]:
        nonlocal calls
        calls += 1
        return list(served)

    api = OpenAPIV3(resources, schema_for=schema_for)
    assert calls == 0
    found = api.document("apis/apps/v1")
    assert found is not None
    body, digest = found
    assert digest == document_hash(body)
    assert api.document("apis/apps/v1") is found
    assert api.document("apis/nothing/v1") is None
    assert api.document("version") is None

    root_body, _ = api.root()
    urls = {k: v["serverRelativeURL"] for k, v in orjson.loads(root_body)["paths"].items()}
    assert urls["apis/apps/v1"] == f"/openapi/v3/apis/apps/v1?hash={digest}"
    assert set(urls) == {"api/v1", "apis/apps/v1"}

    served.append(CRONTABS)
    assert api.document("apis/stable.example.com/v1") is not None
    api.invalidate("apps")
    rebuilt = api.document("apis/apps/v1")
    assert rebuilt is not None and rebuilt is not found and rebuilt[1] == digest
    root_after, _ = api.root()
    assert "apis/stable.example.com/v1" in orjson.loads(root_after)["paths"]
