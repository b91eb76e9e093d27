"""Deployment strategy: kube-apiserver 1.32's defaults, validation and table."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml

from timonel.api.errors import FieldError
from timonel.kinds.apps.deployment import DeploymentStrategy

STRATEGY = DeploymentStrategy()

# The Deployment of the Kubernetes documentation, as `kubectl apply` sends it.
NGINX = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: nginx-deployment
  namespace: default
  labels:
    app: nginx
spec:
  replicas: 3
  selector:
    matchLabels:
      app: nginx
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

# What a 1.32 cluster returns for it (server-set metadata left out).
NGINX_STORED_SPEC = """
progressDeadlineSeconds: 600
replicas: 3
revisionHistoryLimit: 10
selector:
  matchLabels:
    app: nginx
strategy:
  rollingUpdate:
    maxSurge: 25%
    maxUnavailable: 25%
  type: RollingUpdate
template:
  metadata:
    creationTimestamp: null
    labels:
      app: nginx
  spec:
    containers:
    - image: nginx:1.14.2
      imagePullPolicy: IfNotPresent
      name: nginx
      ports:
      - containerPort: 80
        protocol: TCP
      resources: {}
      terminationMessagePath: /dev/termination-log
      terminationMessagePolicy: File
    dnsPolicy: ClusterFirst
    restartPolicy: Always
    schedulerName: default-scheduler
    securityContext: {}
    terminationGracePeriodSeconds: 30
"""


def nginx() -> dict[str, Any]:
    obj: dict[str, Any] = yaml.safe_load(NGINX)
    obj["metadata"]["uid"] = "4c5e1f0a-0000-4000-8000-000000000001"
    obj["metadata"]["creationTimestamp"] = "2024-05-01T10:00:00Z"
    return obj


def created(obj: dict[str, Any] | None = None) -> dict[str, Any]:
    obj = obj if obj is not None else nginx()
    STRATEGY.default(obj)
    STRATEGY.prepare_for_create(obj)
    return obj


def messages(errors: list[FieldError]) -> list[str]:
    return [e.message() for e in errors]


def test_seed_manifest_comes_back_with_the_defaults_of_a_real_cluster() -> None:
    obj = created()
    assert obj["spec"] == yaml.safe_load(NGINX_STORED_SPEC)
    assert obj["status"] == {}
    assert obj["metadata"]["generation"] == 1
    assert STRATEGY.validate(obj) == []


def test_defaulting_is_idempotent() -> None:
    obj = created()
    again = copy.deepcopy(obj)
    STRATEGY.default(again)
    assert again == obj


def test_recreate_strategy_gets_no_rolling_update() -> None:
    obj = nginx()
    obj["spec"]["strategy"] = {"type": "Recreate"}
    STRATEGY.default(obj)
    assert obj["spec"]["strategy"] == {"type": "Recreate"}


def test_partial_rolling_update_is_completed() -> None:
    obj = nginx()
    obj["spec"]["strategy"] = {"rollingUpdate": {"maxSurge": 1}}
    STRATEGY.default(obj)
    assert obj["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": "25%"},
    }


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda s: s.update(selector={"matchLabels": {"app": "other"}}),
            [
                'spec.template.metadata.labels: Invalid value: map[string]string{"app":"nginx"}: '
                "`selector` does not match template `labels`"
            ],
        ),
        (
            lambda s: s.pop("selector"),
            [
                "spec.selector: Required value",
                'spec.template.metadata.labels: Invalid value: map[string]string{"app":"nginx"}: '
                "`selector` does not match template `labels`",
            ],
        ),
        (
            lambda s: s.update(selector={}),
            [
                "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), "
                "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: "
                "empty selector is invalid for deployment"
            ],
        ),
        (
            lambda s: s.update(replicas=-1),
            ["spec.replicas: Invalid value: -1: must be greater than or equal to 0"],
        ),
        (
            lambda s: s.update(minReadySeconds=-5),
            ["spec.minReadySeconds: Invalid value: -5: must be greater than or equal to 0"],
        ),
        (
            lambda s: s.update(minReadySeconds=600),
            [
                "spec.progressDeadlineSeconds: Invalid value: 600: must be greater than "
                "minReadySeconds"
            ],
        ),
        (
            lambda s: s["template"]["spec"].update(restartPolicy="Never"),
            [
                'spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: '
                '"Always"'
            ],
        ),
        (
            lambda s: s["template"]["spec"].update(activeDeadlineSeconds=10),
            [
                "spec.template.spec.activeDeadlineSeconds: Forbidden: activeDeadlineSeconds in "
                "Deployment is not Supported"
            ],
        ),
        (
            lambda s: s.update(strategy={"type": "Recreate", "rollingUpdate": {"maxSurge": 1}}),
            [
                "spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy "
                "`type` is 'Recreate'"
            ],
        ),
        (
            lambda s: s.update(
                strategy={
                    "type": "RollingUpdate",
                    "rollingUpdate": {"maxSurge": 0, "maxUnavailable": "0%"},
                }
            ),
            [
                "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: "
                'intstr.IntOrString{Type:1, IntVal:0, StrVal:"0%"}: may not be 0 when `maxSurge` is 0'
            ],
        ),
        (
            lambda s: s.update(
                strategy={
                    "type": "RollingUpdate",
                    "rollingUpdate": {"maxSurge": "10", "maxUnavailable": "120%"},
                }
            ),
            [
                "spec.strategy.rollingUpdate.maxSurge: Invalid value: "
                'intstr.IntOrString{Type:1, IntVal:0, StrVal:"10"}: a valid percent string must be '
                "a numeric string followed by an ending '%' (e.g. '1%',  or '93%')",
                "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: "
                'intstr.IntOrString{Type:1, IntVal:0, StrVal:"120%"}: must not be greater than 100%',
            ],
        ),
        (
            lambda s: s.update(strategy={"type": "BlueGreen"}),
            [
                'spec.strategy: Unsupported value: apps.DeploymentStrategy{Type:"BlueGreen", '
                "RollingUpdate:(*apps.RollingUpdateDeployment)(nil)}: supported values: "
                '"Recreate", "RollingUpdate"'
            ],
        ),
    ],
)
def test_validation_messages(change: Any, expected: list[str]) -> None:
    obj = nginx()
    change(obj["spec"])
    STRATEGY.default(obj)
    assert messages(STRATEGY.validate(obj)) == expected


def test_template_pod_spec_is_validated() -> None:
    obj = nginx()
    obj["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = 70000
    STRATEGY.default(obj)
    found = messages(STRATEGY.validate(obj))
    assert any(
        m.startswith("spec.template.spec.containers[0].ports[0].containerPort") for m in found
    )


def test_selector_is_immutable() -> None:
    old = created()
    new = copy.deepcopy(old)
    new["spec"]["selector"] = {"matchLabels": {"app": "nginx", "tier": "web"}}
    new["spec"]["template"]["metadata"]["labels"]["tier"] = "web"
    STRATEGY.default(new)
    STRATEGY.prepare_for_update(new, old)
    assert messages(STRATEGY.validate_update(new, old)) == [
        'spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{"app":"nginx", '
        '"tier":"web"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable'
    ]


def test_unchanged_selector_passes_update_validation() -> None:
    old = created()
    new = copy.deepcopy(old)
    new["spec"]["replicas"] = 5
    STRATEGY.prepare_for_update(new, old)
    assert STRATEGY.validate_update(new, old) == []


def test_generation_follows_spec_and_annotation_changes() -> None:
    old = created()
    old["status"] = {"replicas": 3, "observedGeneration": 1}
    same = copy.deepcopy(old)
    same["status"] = {"replicas": 99}
    STRATEGY.prepare_for_update(same, old)
    assert same["metadata"]["generation"] == 1
    assert same["status"] == {"replicas": 3, "observedGeneration": 1}

    scaled = copy.deepcopy(old)
    scaled["spec"]["replicas"] = 5
    STRATEGY.prepare_for_update(scaled, old)
    assert scaled["metadata"]["generation"] == 2

    annotated = copy.deepcopy(old)
    annotated["metadata"]["annotations"] = {"kubernetes.io/change-cause": "bump"}
    STRATEGY.prepare_for_update(annotated, old)
    assert annotated["metadata"]["generation"] == 2


def test_status_update_takes_annotations_but_not_spec_or_labels() -> None:
    """The deployment controller writes the revision annotation with the status."""
    old = created()
    new = copy.deepcopy(old)
    new["metadata"]["annotations"] = {"deployment.kubernetes.io/revision": "2"}
    new["metadata"]["labels"] = {"changed": "yes"}
    new["spec"]["replicas"] = 7
    new["status"] = {"replicas": 3}
    STRATEGY.prepare_for_status_update(new, old)
    assert new["metadata"]["annotations"] == {"deployment.kubernetes.io/revision": "2"}
    assert new["metadata"].get("labels") == old["metadata"].get("labels")
    assert new["spec"] == old["spec"]
    assert new["metadata"]["generation"] == old["metadata"]["generation"]
    assert new["status"] == {"replicas": 3}


def test_status_validation() -> None:
    obj = created()
    new = copy.deepcopy(obj)
    new["status"] = {"replicas": 1, "readyReplicas": 2, "availableReplicas": 1}
    STRATEGY.prepare_for_status_update(new, obj)
    assert messages(STRATEGY.validate_status_update(new, obj)) == [
        "status.readyReplicas: Invalid value: 2: cannot be greater than status.replicas"
    ]
    old = copy.deepcopy(obj)
    old["status"] = {"collisionCount": 3}
    new["status"] = {"collisionCount": 2}
    assert messages(STRATEGY.validate_status_update(new, old)) == [
        "status.collisionCount: Invalid value: 2: cannot be decremented"
    ]


def test_table_row_and_columns() -> None:
    obj = created()
    obj["metadata"]["creationTimestamp"] = (datetime.now(UTC) - timedelta(minutes=5)).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    obj["status"] = {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}
    assert [c.name for c in STRATEGY.columns] == [
        "Name",
        "Ready",
        "Up-to-date",
        "Available",
        "Age",
        "Containers",
        "Images",
        "Selector",
    ]
    assert [c.priority for c in STRATEGY.columns] == [0, 0, 0, 0, 0, 1, 1, 1]
    assert STRATEGY.table_row(obj) == [
        "nginx-deployment",
        "2/3",
        3,
        2,
        "5m",
        "nginx",
        "nginx:1.14.2",
        "app=nginx",
    ]


def test_table_selector_sorts_requirements_by_key() -> None:
    obj = created()
    obj["spec"]["selector"] = {
        "matchLabels": {"tier": "web"},
        "matchExpressions": [{"key": "app", "operator": "In", "values": ["b", "a"]}],
    }
    assert STRATEGY.table_row(obj)[-1] == "app in (a,b),tier=web"


def test_kind_attributes() -> None:
    assert (STRATEGY.group, STRATEGY.version, STRATEGY.plural) == ("apps", "v1", "deployments")
    assert STRATEGY.short_names == ("deploy",)
    assert STRATEGY.categories == ("all",)
    assert STRATEGY.has_status and STRATEGY.tracks_generation
    assert STRATEGY.scale is not None
    assert STRATEGY.field_labels == ()


def test_names_that_are_not_dns_labels_warn() -> None:
    obj = created()
    assert STRATEGY.warnings(obj) == []
    obj["metadata"]["name"] = "nginx.v1"
    assert STRATEGY.warnings(obj) == [
        "metadata.name: this is used in Pod names and hostnames, which can result in surprising "
        "behavior; a DNS label is recommended: [must not contain dots]"
    ]


@pytest.mark.parametrize(
    ("a", "b", "equal"),
    [
        (
            {"matchLabels": {"app": "x"}},
            {"matchLabels": {"app": "x"}, "matchExpressions": []},
            True,
        ),
        ({"matchLabels": {}}, None, True),
        ({"matchLabels": {"app": "x"}}, {"matchLabels": {"app": "y"}}, False),
    ],
)
def test_selector_comparison_ignores_empty_fields(a: Any, b: Any, equal: bool) -> None:
    from timonel.kinds.apps.workload import semantic_equal

    assert semantic_equal(a, b) is equal
