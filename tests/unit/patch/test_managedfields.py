"""Field ownership: FieldsV1 sets, Update entries, and server-side apply."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from timonel.api.errors import StatusError
from timonel.patch import managedfields
from timonel.patch.managedfields import (
    LAST_APPLIED_ANNOTATION,
    apply,
    decode_managed_fields,
    encode_managed_fields,
    fields_v1,
    manager_name,
    record_update,
    reset_fields_for,
)
from timonel.schema.definitions import SchemaNode, kubernetes_definitions, schema_from_openapi

TESTDATA = Path(__file__).parent / "testdata"
FIELDS_V1_CASES: list[dict[str, Any]] = yaml.safe_load((TESTDATA / "fieldsv1.yaml").read_text())
T0, T1, T2 = "2024-05-01T10:00:00Z", "2024-05-01T11:00:00Z", "2024-05-01T12:00:00Z"


def schema_for(group: str, version: str, kind: str) -> SchemaNode:
    schema = kubernetes_definitions().for_kind(group, version, kind)
    assert schema is not None
    return schema


DEPLOYMENT = schema_for("apps", "v1", "Deployment")
POD = schema_for("", "v1", "Pod")
MAIN = reset_fields_for(has_status=True)

SEED: dict[str, Any] = yaml.safe_load(
    """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: nginx-deployment
spec:
  selector:
    matchLabels:
      app: nginx
  minReadySeconds: 5
  template:
    metadata:
      labels:
        app: nginx
    spec:
      containers:
      - name: nginx
        image: nginx:1.14.2
        ports:
        - containerPort: 80
"""
)
SEED_APPLY_FIELDS = FIELDS_V1_CASES[0]["expected"]


def defaulted_seed(**annotations: str) -> dict[str, Any]:
    """The seed Deployment as kube-apiserver has it after defaulting (what an Update compares)."""
    obj = copy.deepcopy(SEED)
    obj["metadata"]["namespace"] = "default"
    if annotations:
        obj["metadata"]["annotations"] = dict(annotations)
    spec = obj["spec"]
    spec.update(
        replicas=1,
        revisionHistoryLimit=10,
        progressDeadlineSeconds=600,
        strategy={
            "type": "RollingUpdate",
            "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
        },
    )
    spec["template"]["metadata"]["creationTimestamp"] = None
    pod = spec["template"]["spec"]
    pod.update(
        restartPolicy="Always",
        terminationGracePeriodSeconds=30,
        dnsPolicy="ClusterFirst",
        securityContext={},
        schedulerName="default-scheduler",
    )
    container = pod["containers"][0]
    container["ports"][0]["protocol"] = "TCP"
    container.update(
        resources={},
        terminationMessagePath="/dev/termination-log",
        terminationMessagePolicy="File",
        imagePullPolicy="IfNotPresent",
    )
    return obj


def entries(obj: dict[str, Any]) -> list[dict[str, Any]]:
    managed: list[dict[str, Any]] = obj["metadata"]["managedFields"]
    return managed


def entry(obj: dict[str, Any], manager: str) -> dict[str, Any]:
    found = [e for e in entries(obj) if e["manager"] == manager]
    assert len(found) == 1, f"{manager} has {len(found)} entries"
    return found[0]


def stored(obj: dict[str, Any], uid: str = "b7c4") -> dict[str, Any]:
    """What storage hands back: the object with a uid (and so a live object)."""
    obj = copy.deepcopy(obj)
    obj["metadata"]["uid"] = uid
    return obj


def created(obj: dict[str, Any], manager: str, schema: SchemaNode = DEPLOYMENT) -> dict[str, Any]:
    new = copy.deepcopy(obj)
    record_update(
        None, new, manager=manager, api_version="apps/v1", schema=schema, reset_fields=MAIN, now=T0
    )
    return stored(new)


# -- FieldsV1 -------------------------------------------------------------------------


@pytest.mark.parametrize("case", FIELDS_V1_CASES, ids=[c["name"] for c in FIELDS_V1_CASES])
def test_fields_v1(case: dict[str, Any]) -> None:
    schema = schema_for(*case["kind"])
    reset = tuple(tuple(path) for path in case.get("reset", ()))
    assert fields_v1(case["object"], schema, reset_fields=reset) == case["expected"]


def test_fields_v1_is_written_in_kubernetes_order() -> None:
    written = fields_v1(SEED, DEPLOYMENT)
    container = written["f:spec"]["f:template"]["f:spec"]["f:containers"]['k:{"name":"nginx"}']
    assert list(container) == [".", "f:image", "f:name", "f:ports"]
    assert json.dumps(written, separators=(",", ":")).startswith(
        '{"f:spec":{"f:minReadySeconds":{},'
    )


def test_fields_v1_of_a_custom_resource_follows_its_schema() -> None:
    crd_schema = schema_from_openapi(
        {
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "properties": {
                        "hosts": {
                            "type": "array",
                            "items": {"type": "string"},
                            "x-kubernetes-list-type": "set",
                        },
                        "routes": {
                            "type": "array",
                            "x-kubernetes-list-type": "map",
                            "x-kubernetes-list-map-keys": ["path"],
                            "items": {
                                "type": "object",
                                "properties": {
                                    "path": {"type": "string"},
                                    "to": {"type": "string"},
                                },
                            },
                        },
                        "args": {"type": "array", "items": {"type": "string"}},
                        "config": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                    },
                }
            },
        },
        group="example.com",
        version="v1",
        kind="Site",
    )
    obj = {
        "apiVersion": "example.com/v1",
        "kind": "Site",
        "metadata": {"name": "s", "labels": {"team": "a"}},
        "spec": {
            "hosts": ["a.example.com"],
            "routes": [{"path": "/", "to": "web"}],
            "args": ["-v"],
            "config": {"log": {"level": "debug"}},
        },
    }
    assert fields_v1(obj, crd_schema) == {
        "f:metadata": {"f:labels": {"f:team": {}}},
        "f:spec": {
            "f:args": {},
            "f:config": {"f:log": {".": {}, "f:level": {}}},
            "f:hosts": {'v:"a.example.com"': {}},
            "f:routes": {'k:{"path":"/"}': {".": {}, "f:path": {}, "f:to": {}}},
        },
    }


# -- Update ---------------------------------------------------------------------------


def test_kubectl_create_pod_records_what_kube_apiserver_records() -> None:
    # A Pod created with `kubectl create`, defaulted; the managedFields kube-apiserver 1.18+ wrote
    # for it are published in many places (the fields defaulting added are owned by the creator).
    pod: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "myfirstpod", "namespace": "default"},
        "spec": {
            "containers": [
                {
                    "name": "container1",
                    "image": "nginx",
                    "ports": [{"containerPort": 80, "protocol": "TCP"}],
                    "resources": {},
                    "terminationMessagePath": "/dev/termination-log",
                    "terminationMessagePolicy": "File",
                    "imagePullPolicy": "Always",
                }
            ],
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst",
            "securityContext": {},
            "schedulerName": "default-scheduler",
            "enableServiceLinks": True,
        },
        "status": {"phase": "Pending"},
    }
    record_update(
        None, pod, manager="kubectl", api_version="v1", schema=POD, reset_fields=MAIN, now=T0
    )
    assert pod["metadata"]["managedFields"] == [
        {
            "manager": "kubectl",
            "operation": "Update",
            "apiVersion": "v1",
            "time": T0,
            "fieldsType": "FieldsV1",
            "fieldsV1": {
                "f:spec": {
                    "f:containers": {
                        'k:{"name":"container1"}': {
                            ".": {},
                            "f:image": {},
                            "f:imagePullPolicy": {},
                            "f:name": {},
                            "f:ports": {
                                ".": {},
                                'k:{"containerPort":80,"protocol":"TCP"}': {
                                    ".": {},
                                    "f:containerPort": {},
                                    "f:protocol": {},
                                },
                            },
                            "f:resources": {},
                            "f:terminationMessagePath": {},
                            "f:terminationMessagePolicy": {},
                        }
                    },
                    "f:dnsPolicy": {},
                    "f:enableServiceLinks": {},
                    "f:restartPolicy": {},
                    "f:schedulerName": {},
                    "f:securityContext": {},
                    "f:terminationGracePeriodSeconds": {},
                }
            },
        }
    ]


def test_client_side_apply_create_of_the_seed_deployment() -> None:
    obj = defaulted_seed(**{LAST_APPLIED_ANNOTATION: "{}\n"})
    record_update(
        None,
        obj,
        manager="kubectl-client-side-apply",
        api_version="apps/v1",
        schema=DEPLOYMENT,
        reset_fields=MAIN,
        now=T0,
    )
    container: dict[str, Any] = {
        ".": {},
        "f:image": {},
        "f:imagePullPolicy": {},
        "f:name": {},
        "f:ports": {
            ".": {},
            'k:{"containerPort":80,"protocol":"TCP"}': {
                ".": {},
                "f:containerPort": {},
                "f:protocol": {},
            },
        },
        "f:resources": {},
        "f:terminationMessagePath": {},
        "f:terminationMessagePolicy": {},
    }
    assert entry(obj, "kubectl-client-side-apply")["fieldsV1"] == {
        "f:metadata": {"f:annotations": {".": {}, f"f:{LAST_APPLIED_ANNOTATION}": {}}},
        "f:spec": {
            "f:minReadySeconds": {},
            "f:progressDeadlineSeconds": {},
            "f:replicas": {},
            "f:revisionHistoryLimit": {},
            "f:selector": {},
            "f:strategy": {
                "f:rollingUpdate": {".": {}, "f:maxSurge": {}, "f:maxUnavailable": {}},
                "f:type": {},
            },
            "f:template": {
                "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
                "f:spec": {
                    "f:containers": {'k:{"name":"nginx"}': container},
                    "f:dnsPolicy": {},
                    "f:restartPolicy": {},
                    "f:schedulerName": {},
                    "f:securityContext": {},
                    "f:terminationGracePeriodSeconds": {},
                },
            },
        },
    }


def test_an_update_moves_changed_fields_to_their_new_manager() -> None:
    live = created(defaulted_seed(), "kubectl-create")
    new = copy.deepcopy(live)
    new["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1.29"
    record_update(
        live,
        new,
        manager="kubectl-set",
        api_version="apps/v1",
        schema=DEPLOYMENT,
        reset_fields=MAIN,
        now=T1,
    )

    setter = entry(new, "kubectl-set")
    assert setter["time"] == T1
    assert setter["fieldsV1"] == {
        "f:spec": {
            "f:template": {"f:spec": {"f:containers": {'k:{"name":"nginx"}': {"f:image": {}}}}}
        }
    }
    creator = entry(new, "kubectl-create")
    assert creator["time"] == T0
    assert (
        "f:image"
        not in creator["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"][
            'k:{"name":"nginx"}'
        ]
    )


def test_an_update_that_changes_nothing_records_nothing() -> None:
    live = created(defaulted_seed(), "kubectl-create")
    new = copy.deepcopy(live)
    record_update(
        live,
        new,
        manager="someone",
        api_version="apps/v1",
        schema=DEPLOYMENT,
        reset_fields=MAIN,
        now=T1,
    )
    assert [e["manager"] for e in entries(new)] == ["kubectl-create"]
    assert entries(new) == entries(live)


def test_removed_fields_leave_their_owner_and_empty_entries_go() -> None:
    live = created(defaulted_seed(), "kubectl-create")
    step = copy.deepcopy(live)
    step["spec"]["paused"] = True
    record_update(
        live,
        step,
        manager="pauser",
        api_version="apps/v1",
        schema=DEPLOYMENT,
        reset_fields=MAIN,
        now=T1,
    )
    assert entry(step, "pauser")["fieldsV1"] == {"f:spec": {"f:paused": {}}}

    live, new = stored(step), copy.deepcopy(step)
    del new["spec"]["paused"]
    record_update(
        live,
        new,
        manager="editor",
        api_version="apps/v1",
        schema=DEPLOYMENT,
        reset_fields=MAIN,
        now=T2,
    )
    assert [e["manager"] for e in entries(new)] == ["kubectl-create"]


def test_status_changes_through_the_status_subresource_are_owned_apart() -> None:
    live = created(defaulted_seed(), "kubectl-create")
    new = copy.deepcopy(live)
    new["status"] = {"replicas": 1, "observedGeneration": 1}
    new["spec"]["replicas"] = 5  # reset by the status strategy; never owned here
    record_update(
        live,
        new,
        manager="kube-controller-manager",
        api_version="apps/v1",
        schema=DEPLOYMENT,
        subresource="status",
        reset_fields=reset_fields_for(has_status=True, subresource="status"),
        now=T1,
    )
    controller = entry(new, "kube-controller-manager")
    assert controller["subresource"] == "status"
    assert controller["fieldsV1"] == {"f:status": {"f:observedGeneration": {}, "f:replicas": {}}}
    assert list(controller) == [
        "manager",
        "operation",
        "apiVersion",
        "time",
        "fieldsType",
        "fieldsV1",
        "subresource",
    ]


def test_an_existing_object_without_managed_fields_stays_untracked() -> None:
    live = stored(defaulted_seed())
    new = copy.deepcopy(live)
    new["spec"]["replicas"] = 4
    record_update(
        live, new, manager="x", api_version="apps/v1", schema=DEPLOYMENT, reset_fields=MAIN, now=T1
    )
    assert "managedFields" not in new["metadata"]


def test_an_empty_managed_fields_list_in_the_request_clears_them() -> None:
    live = created(defaulted_seed(), "kubectl-create")
    new = copy.deepcopy(live)
    new["metadata"]["managedFields"] = []
    new["spec"]["replicas"] = 4
    record_update(
        live, new, manager="x", api_version="apps/v1", schema=DEPLOYMENT, reset_fields=MAIN, now=T1
    )
    assert "managedFields" not in new["metadata"]


def test_a_request_without_managed_fields_keeps_the_live_ones() -> None:
    live = created(defaulted_seed(), "kubectl-create")
    new = copy.deepcopy(live)
    del new["metadata"]["managedFields"]  # `kubectl replace` of a file without them
    new["spec"]["replicas"] = 4
    record_update(
        live,
        new,
        manager="kubectl-replace",
        api_version="apps/v1",
        schema=DEPLOYMENT,
        reset_fields=MAIN,
        now=T1,
    )
    assert [e["manager"] for e in entries(new)] == ["kubectl-create", "kubectl-replace"]


def test_more_than_ten_updaters_fold_the_oldest_into_ancient_changes() -> None:
    obj = created(defaulted_seed(), "creator")
    for index in range(11):
        new = copy.deepcopy(obj)
        new["metadata"].setdefault("labels", {})[f"l{index}"] = "x"
        record_update(
            obj,
            new,
            manager=f"m{index:02d}",
            api_version="apps/v1",
            schema=DEPLOYMENT,
            reset_fields=MAIN,
            now=f"2024-05-02T00:00:{index:02d}Z",
        )
        obj = stored(new)
    managers = [e["manager"] for e in entries(obj)]
    assert len(managers) == 10
    assert managers[0] == "ancient-changes"
    assert "creator" not in managers and "m00" not in managers and "m01" not in managers
    ancient = entry(obj, "ancient-changes")
    assert set(ancient["fieldsV1"]["f:metadata"]["f:labels"]) >= {"f:l0", "f:l1"}
    assert "f:spec" in ancient["fieldsV1"]


# -- Apply ----------------------------------------------------------------------------


def run_apply(
    live: dict[str, Any] | None,
    config: dict[str, Any],
    manager: str,
    *,
    force: bool = False,
    now: str = T1,
) -> dict[str, Any]:
    return apply(
        live,
        config,
        manager=manager,
        force=force,
        api_version="apps/v1",
        schema=DEPLOYMENT,
        kind="Deployment",
        reset_fields=MAIN,
        now=now,
    )


def test_apply_creates_the_seed_deployment() -> None:
    result = run_apply(None, SEED, "kubectl", now=T0)
    assert result["metadata"]["managedFields"] == [
        {
            "manager": "kubectl",
            "operation": "Apply",
            "apiVersion": "apps/v1",
            "time": T0,
            "fieldsType": "FieldsV1",
            "fieldsV1": SEED_APPLY_FIELDS,
        }
    ]
    del result["metadata"]["managedFields"]
    assert result == SEED


def test_apply_again_with_a_change_updates_the_object_and_the_time() -> None:
    live = stored(run_apply(None, SEED, "kubectl", now=T0))
    config = copy.deepcopy(SEED)
    config["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1.28"
    result = run_apply(live, config, "kubectl", now=T1)
    assert result["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.28"
    assert entry(result, "kubectl")["time"] == T1


def test_apply_of_the_same_configuration_keeps_the_time() -> None:
    live = stored(run_apply(None, SEED, "kubectl", now=T0))
    result = run_apply(live, SEED, "kubectl", now=T2)
    assert entry(result, "kubectl")["time"] == T0
    assert result == live


def conflict_case() -> tuple[dict[str, Any], dict[str, Any]]:
    """A Deployment created by client-side apply, and a configuration changing its replicas."""
    live = created(defaulted_seed(), "kubectl-client-side-apply")
    config = copy.deepcopy(SEED)
    config["spec"]["replicas"] = 3
    return live, config


def test_apply_conflict_is_worded_as_kube_apiserver_words_it() -> None:
    live, config = conflict_case()
    with pytest.raises(StatusError) as raised:
        run_apply(live, config, "argocd-controller")
    assert raised.value.status() == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using apps/v1: .spec.replicas',
        "reason": "Conflict",
        "details": {
            "causes": [
                {
                    "reason": "FieldManagerConflict",
                    "message": 'conflict with "kubectl-client-side-apply" using apps/v1',
                    "field": ".spec.replicas",
                }
            ]
        },
        "code": 409,
    }


def test_several_conflicts_are_listed_per_manager() -> None:
    live, config = conflict_case()
    config["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1.28"
    with pytest.raises(StatusError) as raised:
        run_apply(live, config, "argocd-controller")
    assert raised.value.message == (
        'Apply failed with 2 conflicts: conflicts with "kubectl-client-side-apply" using apps/v1:\n'
        "- .spec.replicas\n"
        '- .spec.template.spec.containers[name="nginx"].image'
    )
    assert [cause["field"] for cause in raised.value.details["causes"]] == [  # type: ignore[index]
        ".spec.replicas",
        '.spec.template.spec.containers[name="nginx"].image',
    ]


def test_applying_an_owned_field_with_its_current_value_shares_it() -> None:
    live, config = conflict_case()
    config["spec"]["replicas"] = 1  # the value it already has
    result = run_apply(live, config, "argocd-controller")
    assert "f:replicas" in entry(result, "argocd-controller")["fieldsV1"]["f:spec"]
    assert "f:replicas" in entry(result, "kubectl-client-side-apply")["fieldsV1"]["f:spec"]


def test_forced_apply_takes_ownership() -> None:
    live, config = conflict_case()
    result = run_apply(live, config, "argocd-controller", force=True)
    assert result["spec"]["replicas"] == 3
    assert "f:replicas" in entry(result, "argocd-controller")["fieldsV1"]["f:spec"]
    assert "f:replicas" not in entry(result, "kubectl-client-side-apply")["fieldsV1"]["f:spec"]
    assert [e["operation"] for e in entries(result)] == ["Apply", "Update"]


def test_a_field_no_longer_applied_is_removed_unless_someone_else_owns_it() -> None:
    config = copy.deepcopy(SEED)
    config["spec"]["paused"] = True
    config["spec"]["template"]["spec"]["containers"].append({"name": "sidecar", "image": "busybox"})
    live = stored(run_apply(None, config, "ci", now=T0))

    result = run_apply(live, SEED, "ci", now=T1)
    assert "paused" not in result["spec"]
    assert [c["name"] for c in result["spec"]["template"]["spec"]["containers"]] == ["nginx"]

    co_owned = stored(
        apply(
            live,
            {**config, "spec": {"paused": True}},
            manager="other",
            force=False,
            api_version="apps/v1",
            schema=DEPLOYMENT,
            reset_fields=MAIN,
            now=T1,
        )
    )
    result = run_apply(co_owned, SEED, "ci", now=T2)
    assert result["spec"]["paused"] is True
    assert entry(result, "other")["fieldsV1"] == {"f:spec": {"f:paused": {}}}


def test_apply_keeps_the_fields_and_items_it_does_not_mention() -> None:
    live = created(defaulted_seed(), "kubectl-create")
    config = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "nginx-deployment", "labels": {"team": "web"}},
        "spec": {"template": {"spec": {"containers": [{"name": "sidecar", "image": "busybox"}]}}},
    }
    result = run_apply(live, config, "team-tool")
    assert [c["name"] for c in result["spec"]["template"]["spec"]["containers"]] == [
        "nginx",
        "sidecar",
    ]
    assert result["spec"]["replicas"] == 1
    assert result["metadata"]["labels"] == {"team": "web"}


def test_kubectl_takes_over_from_client_side_apply_without_conflict() -> None:
    # `kubectl apply --server-side` on an object `kubectl apply` made: the fields its
    # last-applied annotation still describes are taken over, and the annotation follows.
    original = defaulted_seed()
    last_applied = json.dumps(SEED, separators=(",", ":"), sort_keys=True) + "\n"
    original["metadata"]["annotations"] = {LAST_APPLIED_ANNOTATION: last_applied}
    live = created(original, "kubectl-client-side-apply")
    config = copy.deepcopy(SEED)
    config["spec"]["minReadySeconds"] = 10
    result = run_apply(live, config, "kubectl")
    assert result["spec"]["minReadySeconds"] == 10
    assert (
        "f:minReadySeconds" not in entry(result, "kubectl-client-side-apply")["fieldsV1"]["f:spec"]
    )
    expected_annotation = (
        '{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"nginx-deployment"},'
        '"spec":{"minReadySeconds":10,"selector":{"matchLabels":{"app":"nginx"}},'
        '"template":{"metadata":{"labels":{"app":"nginx"}},"spec":{"containers":[{"image":"nginx:1.14.2",'
        '"name":"nginx","ports":[{"containerPort":80}]}]}}}}\n'
    )
    assert result["metadata"]["annotations"][LAST_APPLIED_ANNOTATION] == expected_annotation


def test_kubectl_still_conflicts_on_fields_changed_since_the_last_client_side_apply() -> None:
    original = defaulted_seed()
    original["metadata"]["annotations"] = {LAST_APPLIED_ANNOTATION: json.dumps(SEED) + "\n"}
    live = created(original, "kubectl-client-side-apply")
    scaled = copy.deepcopy(live)
    scaled["spec"]["replicas"] = 4
    record_update(
        live,
        scaled,
        manager="kubectl-scale",
        api_version="apps/v1",
        schema=DEPLOYMENT,
        reset_fields=MAIN,
        now=T1,
    )
    config = copy.deepcopy(SEED)
    config["spec"]["replicas"] = 2
    config["spec"]["minReadySeconds"] = 10
    with pytest.raises(StatusError) as raised:
        run_apply(stored(scaled), config, "kubectl", now=T2)
    assert raised.value.message == (
        'Apply failed with 1 conflict: conflict with "kubectl-scale" using apps/v1: .spec.replicas'
    )


def test_an_object_without_managed_fields_is_owned_by_before_first_apply() -> None:
    live = stored(defaulted_seed())
    config = copy.deepcopy(SEED)
    config["spec"]["replicas"] = 3
    with pytest.raises(StatusError) as raised:
        run_apply(live, config, "ci")
    assert raised.value.message == (
        'Apply failed with 1 conflict: conflict with "before-first-apply" using apps/v1: .spec.replicas'
    )


@pytest.mark.parametrize(
    ("change", "code", "reason", "message"),
    [
        (
            {"metadata": {"name": "x", "managedFields": []}},
            400,
            "BadRequest",
            "metadata.managedFields must be nil",
        ),
        (
            {"kind": "ReplicaSet"},
            400,
            "BadRequest",
            "invalid object type: apps/v1, Kind=ReplicaSet",
        ),
        ({"apiVersion": "v1"}, 400, "BadRequest", "invalid object type: /v1, Kind=Deployment"),
        (
            {"spec": {"replicaCount": 3}},
            500,
            "",
            "failed to create typed patch object (/nginx-deployment; apps/v1, Kind=Deployment): "
            ".spec.replicaCount: field not declared in schema",
        ),
        (
            {"spec": {"template": {"spec": {"containers": [{"name": "a"}, {"name": "a"}]}}}},
            500,
            "",
            "failed to create typed patch object (/nginx-deployment; apps/v1, Kind=Deployment): "
            '.spec.template.spec.containers: duplicate entries for key [name="a"]',
        ),
        (
            {"spec": {"replicas": "three"}},
            500,
            "",
            "failed to create typed patch object (/nginx-deployment; apps/v1, Kind=Deployment): "
            ".spec.replicas: expected numeric (int or float), got string",
        ),
    ],
    ids=["managedFields", "kind", "apiVersion", "unknown field", "duplicate key", "wrong type"],
)
def test_apply_refuses_bad_configurations(
    change: dict[str, Any], code: int, reason: str, message: str
) -> None:
    config = {**copy.deepcopy(SEED), **change}
    with pytest.raises(StatusError) as raised:
        run_apply(None, config, "kubectl")
    assert (raised.value.code, raised.value.reason, raised.value.message) == (code, reason, message)


def test_apply_does_not_modify_its_inputs() -> None:
    live, config = conflict_case()
    before = copy.deepcopy((live, config))
    result = run_apply(live, config, "ci", force=True)
    result["spec"]["template"]["spec"]["containers"][0]["image"] = "changed"
    assert (live, config) == before


# -- encoding and names ---------------------------------------------------------------


def test_entries_sort_apply_first_then_oldest() -> None:
    raw = [
        {
            "manager": "b",
            "operation": "Update",
            "apiVersion": "v1",
            "time": T1,
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:a": {}},
        },
        {
            "manager": "a",
            "operation": "Update",
            "apiVersion": "v1",
            "time": T2,
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:b": {}},
        },
        {
            "manager": "z",
            "operation": "Apply",
            "apiVersion": "v1",
            "time": T2,
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:c": {}},
        },
        {
            "manager": "c",
            "operation": "Update",
            "apiVersion": "v1",
            "time": "2024-05-01T12:00:00+02:00",
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:d": {}},
        },
    ]
    encoded = encode_managed_fields(decode_managed_fields(raw))
    assert [(e["manager"], e["time"]) for e in encoded] == [
        ("z", T2),
        ("c", "2024-05-01T10:00:00Z"),
        ("b", T1),
        ("a", T2),
    ]


@pytest.mark.parametrize(
    ("entry_value", "message"),
    [
        (
            {"manager": "a", "operation": "Patch", "apiVersion": "v1", "fieldsType": "FieldsV1"},
            "operation must be `Apply` or `Update`",
        ),
        (
            {"manager": "a", "operation": "Update", "fieldsType": "FieldsV1"},
            "apiVersion must not be empty",
        ),
        (
            {"manager": "a", "operation": "Update", "apiVersion": "v1"},
            "missing fieldsType in managed fields entry 0",
        ),
        (
            {"manager": "a", "operation": "Update", "apiVersion": "v1", "fieldsType": "FieldsV2"},
            'invalid fieldsType "FieldsV2" in managed fields entry 0',
        ),
    ],
)
def test_malformed_managed_fields_are_refused(entry_value: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match="^" + message.replace("`", "`") + "$"):
        decode_managed_fields([entry_value])


@pytest.mark.parametrize(
    ("field_manager", "user_agent", "expected"),
    [
        (
            "kubectl-client-side-apply",
            "kubectl/v1.32.0 (linux/amd64) kubernetes/abc",
            "kubectl-client-side-apply",
        ),
        (None, "kubectl/v1.32.0 (linux/amd64) kubernetes/abc", "kubectl"),
        (None, "python-requests/2.32.3", "python-requests"),
        ("", "Go-http-client/1.1", "Go-http-client"),
        (None, "OpenAPI-Generator/31.0.0/python", "OpenAPI-Generator"),
        (None, "tab\there/1", "tabhere"),
        (None, "x" * 200, "x" * 128),
        (None, None, ""),
    ],
)
def test_manager_name(field_manager: str | None, user_agent: str | None, expected: str) -> None:
    assert manager_name(field_manager, user_agent) == expected


# -- custom resources -----------------------------------------------------------------

SITE = schema_from_openapi(
    {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "properties": {
                    "routes": {
                        "type": "array",
                        "x-kubernetes-list-type": "map",
                        "x-kubernetes-list-map-keys": ["path"],
                        "items": {
                            "type": "object",
                            "properties": {"path": {"type": "string"}, "to": {"type": "string"}},
                        },
                    },
                    "args": {"type": "array", "items": {"type": "string"}},
                },
            }
        },
    },
    group="example.com",
    version="v1",
    kind="Site",
)


def site(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "example.com/v1", "kind": "Site", "metadata": {"name": "s"}, "spec": spec}


def apply_site(live: dict[str, Any] | None, config: dict[str, Any], manager: str) -> dict[str, Any]:
    return apply(
        live,
        config,
        manager=manager,
        force=False,
        api_version="example.com/v1",
        schema=SITE,
        kind="Site",
        now=T1,
    )


def test_apply_to_a_custom_resource_merges_list_maps_and_owns_atomic_lists_whole() -> None:
    live = stored(apply_site(None, site(routes=[{"path": "/", "to": "web"}], args=["-v"]), "a"))
    live = stored(apply_site(live, site(routes=[{"path": "/api", "to": "api"}]), "b"))
    assert live["spec"]["routes"] == [{"path": "/", "to": "web"}, {"path": "/api", "to": "api"}]
    assert entry(live, "b")["fieldsV1"] == {
        "f:spec": {"f:routes": {'k:{"path":"/api"}': {".": {}, "f:path": {}, "f:to": {}}}}
    }
    with pytest.raises(StatusError) as raised:
        apply_site(live, site(args=["-q"]), "b")
    assert raised.value.message == 'Apply failed with 1 conflict: conflict with "a": .spec.args'


def test_creating_a_custom_resource_adds_its_spec_as_a_whole() -> None:
    # Unlike a built-in kind, a custom resource's empty object has no spec, so the
    # creator owns `.spec` itself too (`.` in FieldsV1).
    obj = site(args=["-v"])
    record_update(
        None, obj, manager="kubectl-create", api_version="example.com/v1", schema=SITE, now=T0
    )
    assert entry(obj, "kubectl-create")["fieldsV1"] == {"f:spec": {".": {}, "f:args": {}}}


# -- entries read from storage --------------------------------------------------------


def _stored_at(obj: dict[str, Any], revision: int) -> dict[str, Any]:
    live = stored(obj)
    live["metadata"]["resourceVersion"] = str(revision + 2)
    return live


def _write_sequence(monkeypatch: pytest.MonkeyPatch | None) -> list[dict[str, Any]]:
    """A Deployment created, its status written twice, its spec changed, its managed
    fields sent back as read: each write's result."""
    if monkeypatch is not None:
        # Every stored entry parsed and validated up front, as a request's are.
        monkeypatch.setattr(managedfields, "_decode_stored", managedfields._decode_or_empty)
    results: list[dict[str, Any]] = []
    live = _stored_at(created(defaulted_seed(), "kubectl-create"), 0)
    status_reset = reset_fields_for(has_status=True, subresource="status")
    for when, replicas in ((T1, 1), (T2, 2)):
        new = copy.deepcopy(live)
        del new["metadata"]["resourceVersion"]  # as the update path leaves it
        new["status"] = {"replicas": replicas, "observedGeneration": 1}
        record_update(
            live,
            new,
            manager="kube-controller-manager",
            api_version="apps/v1",
            schema=DEPLOYMENT,
            subresource="status",
            reset_fields=status_reset,
            now=when,
        )
        results.append(new)
        live = _stored_at(new, len(results))
    for manager, change in (("kubectl-edit", 7), ("kubectl-edit", 8)):
        new = copy.deepcopy(live)  # carries the live managed fields back
        del new["metadata"]["resourceVersion"]
        new["spec"]["replicas"] = change
        record_update(live, new, manager=manager, api_version="apps/v1", schema=DEPLOYMENT, now=T2)
        results.append(new)
        live = _stored_at(new, len(results))
    return results


def test_stored_entries_kept_as_read_give_what_parsing_them_gives(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    kept = _write_sequence(None)
    parsed = _write_sequence(monkeypatch)
    assert kept == parsed
    assert [e["manager"] for e in entries(kept[-1])] == [
        "kubectl-create",
        "kube-controller-manager",
        "kubectl-edit",
    ]


def test_stored_fields_that_do_not_parse_leave_the_object_untracked() -> None:
    live = created(defaulted_seed(), "kubectl-create")
    live["metadata"]["managedFields"][0]["fieldsV1"] = {"x:bad": {}}
    new = copy.deepcopy(live)
    del new["metadata"]["managedFields"]
    new["spec"]["replicas"] = 3
    record_update(live, new, manager="editor", api_version="apps/v1", schema=DEPLOYMENT, now=T1)
    # Unparseable managed fields read as none: the object stays untracked.
    assert "managedFields" not in new["metadata"]
