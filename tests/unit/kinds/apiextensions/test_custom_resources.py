"""Custom resources: the strategies built from a CRD, one per served version."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import yaml

from timonel.kinds.apiextensions.custom import CustomResourceStrategy, custom_resource_strategies
from timonel.kinds.base import ScaleSpec

# A CRD as a controller project ships it: two versions, status and scale, printer columns,
# a defaulted field and a selectable field.
DATABASES = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: databases.example.com
spec:
  group: example.com
  scope: Namespaced
  names:
    plural: databases
    singular: database
    kind: Database
    listKind: DatabaseList
    shortNames: [db]
    categories: [all]
  versions:
  - name: v1alpha1
    served: false
    storage: false
    schema:
      openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
  - name: v1beta1
    served: true
    storage: false
    schema:
      openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
  - name: v1
    served: true
    storage: true
    selectableFields:
    - jsonPath: .spec.engine
    additionalPrinterColumns:
    - {name: Engine, type: string, jsonPath: .spec.engine}
    - {name: Replicas, type: integer, jsonPath: .spec.replicas}
    - {name: Ready, type: string, jsonPath: '.status.conditions[?(@.type=="Ready")].status'}
    - {name: Storage, type: string, jsonPath: .spec.storage, priority: 1}
    - {name: Age, type: date, jsonPath: .metadata.creationTimestamp}
    subresources:
      status: {}
      scale:
        specReplicasPath: .spec.replicas
        statusReplicasPath: .status.replicas
        labelSelectorPath: .status.selector
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [engine]
            properties:
              engine: {type: string, enum: [postgres, mysql]}
              replicas: {type: integer, minimum: 0, default: 1}
              storage: {type: object, properties: {size: {type: string}}}
          status:
            type: object
            properties:
              replicas: {type: integer}
              selector: {type: string}
              conditions:
                type: array
                items:
                  type: object
                  properties:
                    type: {type: string}
                    status: {type: string}
status:
  acceptedNames:
    plural: databases
    singular: database
    kind: Database
    listKind: DatabaseList
    shortNames: [db]
    categories: [all]
"""

DB = """
apiVersion: example.com/v1
kind: Database
metadata:
  name: orders
  namespace: shop
spec:
  engine: postgres
  storage: {size: 10Gi, class: fast}
  tuning: {shared_buffers: 128MB}
"""


def strategies() -> dict[str, CustomResourceStrategy]:
    built = custom_resource_strategies(yaml.safe_load(DATABASES))
    assert all(isinstance(s, CustomResourceStrategy) for s in built)
    return {s.version: s for s in built if isinstance(s, CustomResourceStrategy)}


V1 = strategies()["v1"]


def database(text: str = DB) -> dict[str, Any]:
    obj: dict[str, Any] = yaml.safe_load(text)
    V1.default(obj)
    return obj


def test_one_strategy_per_served_version() -> None:
    built = strategies()
    assert sorted(built) == ["v1", "v1beta1"]
    for strategy in built.values():
        assert (strategy.group, strategy.kind, strategy.plural, strategy.singular) == (
            "example.com",
            "Database",
            "databases",
            "database",
        )
        assert strategy.namespaced
        assert strategy.short_names == ("db",)
        assert strategy.categories == ("all",)
        assert strategy.tracks_generation
        assert strategy.storage_resource == ("example.com", "databases")
    assert V1.has_status and not built["v1beta1"].has_status
    assert V1.scale == ScaleSpec(
        ("spec", "replicas"), ("status", "replicas"), ("status", "selector"), True
    )
    assert built["v1beta1"].scale is None
    assert V1.field_labels == ("spec.engine",)


def test_cluster_scoped_crd() -> None:
    crd = yaml.safe_load(DATABASES)
    crd["spec"]["scope"] = "Cluster"
    assert not any(s.namespaced for s in custom_resource_strategies(crd))


def test_unknown_fields_are_pruned_and_defaults_applied() -> None:
    obj = database()
    assert obj["spec"] == {"engine": "postgres", "storage": {"size": "10Gi"}, "replicas": 1}
    again = copy.deepcopy(obj)
    V1.default(again)
    assert again == obj


def test_preserve_unknown_fields_versions_keep_everything() -> None:
    beta = strategies()["v1beta1"]
    obj = yaml.safe_load(DB.replace("example.com/v1", "example.com/v1beta1"))
    beta.default(obj)
    assert obj["spec"]["tuning"] == {"shared_buffers": "128MB"}


def test_values_are_validated_against_the_schema() -> None:
    obj = database()
    assert V1.validate(obj) == []
    obj["spec"]["engine"] = "oracle"
    obj["spec"]["replicas"] = -1
    messages = [e.message() for e in V1.validate(obj)]
    assert any(m.startswith('spec.engine: Unsupported value: "oracle"') for m in messages)
    assert any(m.startswith("spec.replicas: Invalid value: -1") for m in messages)
    del obj["spec"]["engine"]
    assert "spec.engine: Required value" in [e.message() for e in V1.validate(obj)]


def test_type_meta_must_match_the_version() -> None:
    obj = database()
    obj["kind"] = "Table"
    obj["apiVersion"] = "example.com/v2"
    assert [e.message() for e in V1.validate(obj)] == [
        'kind: Invalid value: "Table": must be Database',
        'apiVersion: Invalid value: "example.com/v2": must be example.com/v1',
    ]


def test_scale_paths_are_checked() -> None:
    obj = database()
    obj["spec"]["replicas"] = "three"
    assert (
        ".spec.replicas: Invalid value: 0: .spec.replicas accessor error: three is of the type string, "
        "expected int64" in [e.message() for e in V1.validate(obj)]
    )
    obj["spec"]["replicas"] = 2
    obj["status"] = {"replicas": 1, "selector": {"app": "x"}}
    assert [e.message() for e in V1.validate_status_update(obj, obj)] == [
        'status.selector: Invalid value: "object": status.selector in body must be of type string: "object"',
        '.status.selector: Invalid value: "": .status.selector accessor error: map[app:x] is of the type '
        "map[string]interface {}, expected string",
    ]


def test_status_is_owned_by_the_status_subresource() -> None:
    obj = database()
    obj["status"] = {"replicas": 3}
    obj["metadata"]["uid"] = "u"
    V1.prepare_for_create(obj)
    assert "status" not in obj
    assert obj["metadata"]["generation"] == 1

    stored = copy.deepcopy(obj)
    stored["status"] = {"replicas": 1}
    update = copy.deepcopy(stored)
    update["status"] = {"replicas": 9}
    update["metadata"]["labels"] = {"team": "a"}
    V1.prepare_for_update(update, stored)
    assert update["status"] == {"replicas": 1}
    assert update["metadata"]["generation"] == 1

    update["spec"]["replicas"] = 5
    V1.prepare_for_update(update, stored)
    assert update["metadata"]["generation"] == 2


def test_without_status_subresource_any_change_bumps_generation() -> None:
    beta = strategies()["v1beta1"]
    old = {
        "apiVersion": "example.com/v1beta1",
        "kind": "Database",
        "metadata": {"name": "a", "generation": 1},
        "spec": {},
    }
    new = copy.deepcopy(old)
    new["status"] = {"phase": "Ready"}
    beta.prepare_for_update(new, old)
    assert new["status"] == {"phase": "Ready"}
    assert new["metadata"]["generation"] == 2


def test_versions_share_a_store_with_the_storage_apiversion() -> None:
    beta = strategies()["v1beta1"]
    obj = yaml.safe_load(DB.replace("example.com/v1", "example.com/v1beta1"))
    assert beta.to_storage(obj)["apiVersion"] == "example.com/v1"
    assert beta.from_storage(obj)["apiVersion"] == "example.com/v1beta1"


def test_table_columns_and_cells() -> None:
    assert [(c.name, c.type, c.priority) for c in V1.columns] == [
        ("Name", "string", 0),
        ("Engine", "string", 0),
        ("Replicas", "integer", 0),
        ("Ready", "string", 0),
        ("Storage", "string", 1),
        ("Age", "date", 0),
    ]
    assert (
        V1.columns[1].description
        == "Custom resource definition column (in JSONPath format): .spec.engine"
    )
    obj = database()
    obj["metadata"]["creationTimestamp"] = (datetime.now(UTC) - timedelta(days=3)).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    obj["status"] = {"conditions": [{"type": "Ready", "status": "True"}]}
    assert V1.table_row(obj) == ["orders", "postgres", 1, "True", '{"size":"10Gi"}', "3d"]
    obj["metadata"]["creationTimestamp"] = "yesterday"
    del obj["status"]
    assert V1.table_row(obj)[3:] == [None, '{"size":"10Gi"}', "<invalid>"]


def test_versions_without_printer_columns_show_name_and_age() -> None:
    beta = strategies()["v1beta1"]
    assert [(c.name, c.type) for c in beta.columns] == [("Name", "string"), ("Age", "date")]
    obj = {
        "metadata": {
            "name": "a",
            "creationTimestamp": (datetime.now(UTC) - timedelta(minutes=3)).strftime(
                "%Y-%m-%dT%H:%M:%SZ"
            ),
        }
    }
    assert beta.table_row(obj) == ["a", "3m"]


def test_selectable_fields() -> None:
    fields = V1.selectable_fields(database())
    assert fields == {
        "metadata.name": "orders",
        "metadata.namespace": "shop",
        "spec.engine": "postgres",
    }
    assert V1.selectable_fields({"metadata": {"name": "x", "namespace": "a"}})["spec.engine"] == ""


def test_crds_without_names_serve_nothing() -> None:
    assert (
        custom_resource_strategies({"spec": {"group": "example.com", "versions": [{"name": "v1"}]}})
        == []
    )


def test_finalizers_without_a_domain_draw_warnings() -> None:
    obj = database()
    obj["metadata"]["finalizers"] = ["example.com/cleanup", "cleanup", "db.cleanup", "orphan"]
    assert V1.warnings(obj) == [
        'metadata.finalizers: "cleanup": prefer a domain-qualified finalizer name to avoid accidental '
        "conflicts with other finalizer writers",
        'metadata.finalizers: "db.cleanup": prefer a domain-qualified finalizer name including a path (/) '
        "to avoid accidental conflicts with other finalizer writers",
    ]
