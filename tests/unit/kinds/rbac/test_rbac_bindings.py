"""RoleBinding and ClusterRoleBinding strategies: defaults, validation, the immutable
roleRef and the table."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from timonel.kinds.rbac.clusterrolebinding import ClusterRoleBindingStrategy
from timonel.kinds.rbac.rolebinding import RoleBindingStrategy

BINDING = RoleBindingStrategy()
CLUSTER_BINDING = ClusterRoleBindingStrategy()

# `kubectl create rolebinding read-pods --role=pod-reader --user=jane --group=devs
#  --serviceaccount=default:ci` sends apiGroup only on the roleRef.
READ_PODS = """
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: read-pods
  namespace: default
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: pod-reader
subjects:
- kind: User
  name: jane
- kind: Group
  name: devs
- kind: ServiceAccount
  name: ci
  namespace: default
"""


def load(text: str = READ_PODS) -> dict[str, Any]:
    obj: dict[str, Any] = yaml.safe_load(text)
    BINDING.default(obj)
    return obj


def test_subject_api_groups_are_defaulted() -> None:
    obj = load()
    assert [s.get("apiGroup") for s in obj["subjects"]] == [
        "rbac.authorization.k8s.io",
        "rbac.authorization.k8s.io",
        "",
    ]
    assert BINDING.validate(obj) == []


def test_role_ref_api_group_is_defaulted() -> None:
    obj = load()
    del obj["roleRef"]["apiGroup"]
    BINDING.default(obj)
    assert obj["roleRef"]["apiGroup"] == "rbac.authorization.k8s.io"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {"roleRef": {"apiGroup": "example.com", "kind": "Role", "name": "x"}},
            [
                'roleRef.apiGroup: Unsupported value: "example.com": supported values: "rbac.authorization.k8s.io"'
            ],
        ),
        (
            {"roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Thing", "name": "x"}},
            ['roleRef.kind: Unsupported value: "Thing": supported values: "Role", "ClusterRole"'],
        ),
        (
            {"roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role"}},
            ["roleRef.name: Required value"],
        ),
        (
            {"subjects": [{"kind": "Robot", "name": "r2"}]},
            [
                'subjects[0].kind: Unsupported value: "Robot": supported values: "ServiceAccount", "User", "Group"'
            ],
        ),
        (
            {"subjects": [{"kind": "User", "name": "", "apiGroup": "rbac.authorization.k8s.io"}]},
            [
                "subjects[0].name: Required value",
                'subjects[0].name: Invalid value: "": user name cannot be empty',
            ],
        ),
        (
            {"subjects": [{"kind": "ServiceAccount", "name": "ci", "apiGroup": "v1"}]},
            ['subjects[0].apiGroup: Unsupported value: "v1": supported values: ""'],
        ),
    ],
)
def test_binding_errors(change: dict[str, Any], expected: list[str]) -> None:
    obj = load()
    obj.update(change)
    assert [e.message() for e in BINDING.validate(obj)] == expected


def test_cluster_binding_needs_service_account_namespace_and_cluster_role() -> None:
    obj = {
        "metadata": {"name": "ci"},
        "roleRef": {"kind": "Role", "name": "x"},
        "subjects": [{"kind": "ServiceAccount", "name": "ci"}],
    }
    CLUSTER_BINDING.default(obj)
    assert [e.message() for e in CLUSTER_BINDING.validate(obj)] == [
        'roleRef.kind: Unsupported value: "Role": supported values: "ClusterRole"',
        "subjects[0].namespace: Required value",
    ]


@pytest.mark.parametrize("strategy", [BINDING, CLUSTER_BINDING])
def test_role_ref_cannot_change(strategy: Any) -> None:
    old = load()
    if strategy is CLUSTER_BINDING:
        old["roleRef"]["kind"] = "ClusterRole"
        old["subjects"] = old["subjects"][:2]
    new = copy.deepcopy(old)
    new["roleRef"]["name"] = "admin"
    assert [e.message() for e in strategy.validate_update(new, old)] == [
        f'roleRef: Invalid value: rbac.RoleRef{{APIGroup:"rbac.authorization.k8s.io", '
        f'Kind:"{old["roleRef"]["kind"]}", Name:"admin"}}: cannot change roleRef'
    ]
    subjects_only = copy.deepcopy(old)
    subjects_only["subjects"] = subjects_only["subjects"][:1]
    assert strategy.validate_update(subjects_only, old) == []


def test_table_row() -> None:
    row = BINDING.table_row(load())
    assert row[:2] == ["read-pods", "Role/pod-reader"]
    assert row[3:] == ["jane", "devs", "default/ci"]
    assert [(c.name, c.priority) for c in BINDING.columns] == [
        ("Name", 0),
        ("Role", 0),
        ("Age", 0),
        ("Users", 1),
        ("Groups", 1),
        ("ServiceAccounts", 1),
    ]
    assert CLUSTER_BINDING.columns[3].description == "Users in the clusterRoleBinding"
