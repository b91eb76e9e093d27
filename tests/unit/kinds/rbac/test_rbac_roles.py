"""Role and ClusterRole strategies: kube-apiserver 1.32's validation and default table."""

from __future__ import annotations

from typing import Any

import pytest

from timonel.kinds.rbac.clusterrole import ClusterRoleStrategy
from timonel.kinds.rbac.role import RoleStrategy

ROLE = RoleStrategy()
CLUSTER_ROLE = ClusterRoleStrategy()


def role(*rules: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": "pod-reader", "namespace": "default"}, "rules": list(rules)}


def test_pod_reader_is_valid() -> None:
    obj = role({"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "watch", "list"]})
    assert ROLE.validate(obj) == []


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        (
            {"apiGroups": [""], "resources": ["pods"]},
            ["rules[0].verbs: Required value: verbs must contain at least one value"],
        ),
        (
            {"verbs": ["get"], "resources": ["pods"]},
            [
                "rules[0].apiGroups: Required value: resource rules must supply at least one api group"
            ],
        ),
        (
            {"verbs": ["get"], "apiGroups": [""]},
            [
                "rules[0].resources: Required value: resource rules must supply at least one resource"
            ],
        ),
        (
            {
                "verbs": ["get"],
                "apiGroups": [""],
                "resources": ["pods", "services"],
                "resourceNames": ["x"],
            },
            [
                "rules[0].resourceNames: Required value: resource names cannot apply to multiple resources"
            ],
        ),
        (
            {"verbs": ["get"], "nonResourceURLs": ["/healthz"]},
            [
                'rules[0].nonResourceURLs: Invalid value: []string{"/healthz"}: '
                "namespaced rules cannot apply to non-resource URLs"
            ],
        ),
    ],
)
def test_role_rule_errors(rule: dict[str, Any], expected: list[str]) -> None:
    assert [e.message() for e in ROLE.validate(role(rule))] == expected


def test_cluster_role_non_resource_rules() -> None:
    ok = {
        "metadata": {"name": "health"},
        "rules": [{"verbs": ["get"], "nonResourceURLs": ["/healthz"]}],
    }
    assert CLUSTER_ROLE.validate(ok) == []
    mixed = {
        "metadata": {"name": "x"},
        "rules": [{"verbs": ["get"], "nonResourceURLs": ["/healthz"], "resources": ["pods"]}],
    }
    assert [e.message() for e in CLUSTER_ROLE.validate(mixed)] == [
        'rules[0].nonResourceURLs: Invalid value: []string{"/healthz"}: '
        "rules cannot apply to both regular resources and non-resource URLs"
    ]


def test_cluster_role_aggregation_rule() -> None:
    aggregated = {
        "metadata": {"name": "monitoring"},
        "aggregationRule": {
            "clusterRoleSelectors": [
                {"matchLabels": {"rbac.example.com/aggregate-to-monitoring": "true"}}
            ]
        },
        "rules": [],
    }
    assert CLUSTER_ROLE.validate(aggregated) == []
    empty = {"metadata": {"name": "monitoring"}, "aggregationRule": {}}
    assert [e.message() for e in CLUSTER_ROLE.validate(empty)] == [
        "aggregationRule.clusterRoleSelectors: Required value: "
        "at least one clusterRoleSelector required if aggregationRule is non-nil"
    ]


def test_rbac_names_are_path_segments() -> None:
    assert CLUSTER_ROLE.name_problems("system:controller:job-controller") == []
    assert ROLE.name_problems("a/b") == ["may not contain '/'"]
    assert CLUSTER_ROLE.name_problems("..") == ["may not be '..'"]


def test_roles_print_name_and_created_at() -> None:
    obj = role()
    obj["metadata"]["creationTimestamp"] = "2024-05-01T10:00:00Z"
    for strategy in (ROLE, CLUSTER_ROLE):
        assert [c.name for c in strategy.columns] == ["Name", "Created At"]
        assert strategy.columns[1].type == "date"
        assert strategy.table_row(obj) == ["pod-reader", "2024-05-01T10:00:00Z"]
    assert (ROLE.namespaced, CLUSTER_ROLE.namespaced) == (True, False)
