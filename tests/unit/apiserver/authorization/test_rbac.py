"""RBAC evaluation: rule matching, subjects, bindings, aggregation, and the 403 wording."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from timonel.api.user import UserInfo
from timonel.apiserver.authorization.authorizer import request_attributes
from timonel.apiserver.authorization.bootstrap import bootstrap_objects, reconcile
from timonel.apiserver.authorization.rbac import (
    Attributes,
    PolicyIndex,
    Rule,
    forbidden_message,
)
from timonel.apiserver.requestinfo import parse_request_info

ROBOT = UserInfo(
    "system:serviceaccount:team:robot",
    ("system:serviceaccounts", "system:serviceaccounts:team", "system:authenticated"),
)
ALICE = UserInfo("alice", ("devs", "system:authenticated"))


def role(name: str, rules: list[dict[str, Any]], namespace: str = "") -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    return {"metadata": meta, "rules": rules}


def binding(
    name: str, kind: str, role_name: str, subjects: list[dict[str, Any]], namespace: str = ""
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    return {
        "metadata": meta,
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": role_name},
        "subjects": subjects,
    }


@pytest.mark.parametrize(
    ("rule", "attributes", "allowed"),
    [
        (
            {"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]},
            Attributes("get", resource="pods"),
            True,
        ),
        (
            {"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]},
            Attributes("list", resource="pods"),
            False,
        ),
        (
            {"verbs": ["*"], "apiGroups": [""], "resources": ["pods"]},
            Attributes("delete", resource="pods"),
            True,
        ),
        (
            {"verbs": ["get"], "apiGroups": ["apps"], "resources": ["pods"]},
            Attributes("get", resource="pods"),
            False,
        ),
        (
            {"verbs": ["get"], "apiGroups": ["*"], "resources": ["deployments"]},
            Attributes("get", group="apps", resource="deployments"),
            True,
        ),
        # A subresource needs its own grant: "pods" does not cover "pods/log".
        (
            {"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]},
            Attributes("get", resource="pods", subresource="log"),
            False,
        ),
        (
            {"verbs": ["get"], "apiGroups": [""], "resources": ["pods/log"]},
            Attributes("get", resource="pods", subresource="log"),
            True,
        ),
        (
            {"verbs": ["get"], "apiGroups": [""], "resources": ["*/status"]},
            Attributes("get", resource="nodes", subresource="status"),
            True,
        ),
        (
            {"verbs": ["get"], "apiGroups": [""], "resources": ["*/status"]},
            Attributes("get", resource="nodes"),
            False,
        ),
        (
            {"verbs": ["get"], "apiGroups": [""], "resources": ["*"]},
            Attributes("get", resource="pods", subresource="exec"),
            True,
        ),
        (
            {"verbs": ["get"], "apiGroups": [""], "resources": ["pods"], "resourceNames": ["web"]},
            Attributes("get", resource="pods", name="web"),
            True,
        ),
        (
            {"verbs": ["get"], "apiGroups": [""], "resources": ["pods"], "resourceNames": ["web"]},
            Attributes("get", resource="pods", name="db"),
            False,
        ),
        # A list has no name: resourceNames never allow it.
        (
            {"verbs": ["list"], "apiGroups": [""], "resources": ["pods"], "resourceNames": ["web"]},
            Attributes("list", resource="pods"),
            False,
        ),
        (
            {"verbs": ["get"], "nonResourceURLs": ["/healthz"]},
            Attributes("get", is_resource=False, path="/healthz"),
            True,
        ),
        (
            {"verbs": ["get"], "nonResourceURLs": ["/healthz"]},
            Attributes("get", is_resource=False, path="/healthz/etcd"),
            False,
        ),
        (
            {"verbs": ["get"], "nonResourceURLs": ["/apis/*"]},
            Attributes("get", is_resource=False, path="/apis/apps/v1"),
            True,
        ),
        (
            {"verbs": ["get"], "nonResourceURLs": ["*"]},
            Attributes("get", is_resource=False, path="/metrics"),
            True,
        ),
        (
            {"verbs": ["get"], "nonResourceURLs": ["/metrics"]},
            Attributes("post", is_resource=False, path="/metrics"),
            False,
        ),
        # Resource rules never match non-resource requests, and the reverse.
        (
            {"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]},
            Attributes("get", is_resource=False, path="/metrics"),
            False,
        ),
        ({"verbs": ["*"], "nonResourceURLs": ["*"]}, Attributes("get", resource="pods"), False),
    ],
)
def test_rule_allows(rule: dict[str, Any], attributes: Attributes, allowed: bool) -> None:
    assert Rule.from_object(rule).allows(attributes) is allowed


def index(**objects: list[dict[str, Any]]) -> PolicyIndex:
    return PolicyIndex.build(
        roles=objects.get("roles", []),
        cluster_roles=objects.get("cluster_roles", []),
        role_bindings=objects.get("role_bindings", []),
        cluster_role_bindings=objects.get("cluster_role_bindings", []),
    )


POD_READER = role(
    "pod-reader", [{"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"]}]
)


def test_role_binding_grants_only_in_its_namespace() -> None:
    policy = index(
        cluster_roles=[POD_READER],
        role_bindings=[
            binding(
                "read",
                "ClusterRole",
                "pod-reader",
                [{"kind": "ServiceAccount", "name": "robot"}],
                "team",
            )
        ],
    )
    allowed, reason = policy.authorize(ROBOT, Attributes("list", resource="pods", namespace="team"))
    assert allowed
    assert reason == (
        'RBAC: allowed by RoleBinding "read/team" of ClusterRole "pod-reader" '
        'to ServiceAccount "team/robot"'
    )
    assert not policy.authorize(ROBOT, Attributes("list", resource="pods", namespace="other"))[0]
    assert not policy.authorize(ROBOT, Attributes("list", resource="pods"))[0]


def test_service_account_subject_names_its_namespace() -> None:
    subject = {"kind": "ServiceAccount", "name": "robot", "namespace": "elsewhere"}
    policy = index(
        cluster_roles=[POD_READER],
        cluster_role_bindings=[binding("read", "ClusterRole", "pod-reader", [subject])],
    )
    assert not policy.authorize(ROBOT, Attributes("get", resource="pods", namespace="team"))[0]
    moved = UserInfo("system:serviceaccount:elsewhere:robot")
    assert policy.authorize(moved, Attributes("get", resource="pods", namespace="team"))[0]


@pytest.mark.parametrize(
    ("subject", "user", "allowed"),
    [
        ({"kind": "User", "name": "alice"}, ALICE, True),
        ({"kind": "User", "name": "alice"}, ROBOT, False),
        ({"kind": "Group", "name": "devs"}, ALICE, True),
        ({"kind": "Group", "name": "system:serviceaccounts:team"}, ROBOT, True),
        ({"kind": "Group", "name": "system:serviceaccounts"}, ROBOT, True),
        ({"kind": "Group", "name": "system:authenticated"}, ALICE, True),
        ({"kind": "Group", "name": "system:serviceaccounts"}, ALICE, False),
    ],
)
def test_subjects(subject: dict[str, Any], user: UserInfo, allowed: bool) -> None:
    policy = index(
        cluster_roles=[POD_READER],
        cluster_role_bindings=[binding("b", "ClusterRole", "pod-reader", [subject])],
    )
    assert policy.authorize(user, Attributes("get", resource="pods", namespace="x"))[0] is allowed


def test_namespaced_role_and_missing_roles() -> None:
    secrets = role(
        "secrets", [{"verbs": ["get"], "apiGroups": [""], "resources": ["secrets"]}], "team"
    )
    policy = index(
        roles=[secrets],
        role_bindings=[
            binding("s", "Role", "secrets", [{"kind": "User", "name": "alice"}], "team"),
            binding("gone", "Role", "gone", [{"kind": "User", "name": "alice"}], "team"),
            # The Role lives in "team", not in "other".
            binding("s", "Role", "secrets", [{"kind": "User", "name": "alice"}], "other"),
        ],
    )
    assert policy.authorize(ALICE, Attributes("get", resource="secrets", namespace="team"))[0]
    allowed, reason = policy.authorize(
        ALICE, Attributes("list", resource="secrets", namespace="team")
    )
    assert (allowed, reason) == (False, 'RBAC: role.rbac.authorization.k8s.io "gone" not found')
    assert policy.authorize(ALICE, Attributes("get", resource="secrets", namespace="other")) == (
        False,
        'RBAC: role.rbac.authorization.k8s.io "secrets" not found',
    )


def test_aggregated_cluster_role() -> None:
    aggregate = {
        "metadata": {"name": "monitoring"},
        "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"monitor": "true"}}]},
        "rules": [],
    }
    part = {
        "metadata": {"name": "monitor-pods", "labels": {"monitor": "true"}},
        "rules": [{"verbs": ["list"], "apiGroups": [""], "resources": ["pods"]}],
    }
    policy = index(
        cluster_roles=[aggregate, part],
        cluster_role_bindings=[
            binding("m", "ClusterRole", "monitoring", [{"kind": "User", "name": "alice"}])
        ],
    )
    assert policy.authorize(ALICE, Attributes("list", resource="pods", namespace="a"))[0]
    assert not policy.authorize(ALICE, Attributes("delete", resource="pods", namespace="a"))[0]


def test_bootstrap_view_edit_admin_aggregate() -> None:
    cluster_roles = [obj for plural, obj in bootstrap_objects() if plural == "clusterroles"]
    grants = [
        binding(r, "ClusterRole", r, [{"kind": "User", "name": r}], "team")
        for r in ("view", "edit", "admin")
    ]
    policy = index(cluster_roles=cluster_roles, role_bindings=grants)

    def may(user: str, verb: str, resource: str, group: str = "", subresource: str = "") -> bool:
        attributes = Attributes(
            verb, group=group, resource=resource, subresource=subresource, namespace="team"
        )
        return policy.authorize(UserInfo(user), attributes)[0]

    assert may("view", "list", "pods") and may("view", "get", "deployments", "apps")
    assert not may("view", "get", "secrets") and not may("view", "create", "pods")
    assert may("edit", "create", "deployments", "apps") and may("edit", "get", "secrets")
    assert may("edit", "list", "pods") and not may(
        "edit", "create", "rolebindings", "rbac.authorization.k8s.io"
    )
    assert may("admin", "create", "rolebindings", "rbac.authorization.k8s.io")
    assert may("admin", "get", "pods", subresource="log")


def test_rules_for_a_user() -> None:
    policy = index(
        cluster_roles=[POD_READER],
        role_bindings=[
            binding("r", "ClusterRole", "pod-reader", [{"kind": "User", "name": "alice"}], "a")
        ],
    )
    rules, missing = policy.rules(ALICE, "a")
    assert [r.as_object() for r in rules] == [
        {"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"]}
    ]
    assert missing == []
    assert policy.rules(ALICE, "b") == ([], [])


@pytest.mark.parametrize(
    ("attributes", "message"),
    [
        (
            Attributes("list", resource="pods", namespace="default"),
            'pods is forbidden: User "u" cannot list resource "pods" in API group "" '
            'in the namespace "default"',
        ),
        (
            Attributes("get", group="apps", resource="deployments", namespace="a", name="web"),
            'deployments.apps "web" is forbidden: User "u" cannot get resource "deployments" '
            'in API group "apps" in the namespace "a"',
        ),
        (
            Attributes("get", resource="pods", subresource="log", namespace="a", name="p"),
            'pods "p" is forbidden: User "u" cannot get resource "pods/log" in API group "" '
            'in the namespace "a"',
        ),
        (
            Attributes("list", resource="nodes"),
            'nodes is forbidden: User "u" cannot list resource "nodes" in API group "" '
            "at the cluster scope",
        ),
        (
            Attributes("get", is_resource=False, path="/metrics"),
            'forbidden: User "u" cannot get path "/metrics"',
        ),
    ],
)
def test_forbidden_message(attributes: Attributes, message: str) -> None:
    assert forbidden_message(UserInfo("u"), attributes) == message


@pytest.mark.parametrize(
    ("method", "path", "watch", "expected"),
    [
        (
            "GET",
            "/api/v1/namespaces/a/pods",
            None,
            Attributes("list", resource="pods", namespace="a", version="v1"),
        ),
        (
            "GET",
            "/api/v1/namespaces/a/pods",
            "true",
            Attributes("watch", resource="pods", namespace="a", version="v1"),
        ),
        (
            "POST",
            "/apis/apps/v1/namespaces/a/deployments",
            None,
            Attributes("create", group="apps", version="v1", resource="deployments", namespace="a"),
        ),
        (
            "DELETE",
            "/api/v1/namespaces/a/pods",
            None,
            Attributes("deletecollection", resource="pods", namespace="a", version="v1"),
        ),
        (
            "PATCH",
            "/api/v1/namespaces/a/pods/p/status",
            None,
            Attributes(
                "patch",
                resource="pods",
                subresource="status",
                namespace="a",
                name="p",
                version="v1",
            ),
        ),
        # A namespace is its own namespace.
        (
            "GET",
            "/api/v1/namespaces/a",
            None,
            Attributes("get", resource="namespaces", namespace="a", name="a", version="v1"),
        ),
        ("GET", "/apis", None, Attributes("get", is_resource=False, path="/apis")),
    ],
)
def test_request_attributes(
    method: str, path: str, watch: str | None, expected: Attributes
) -> None:
    attributes = request_attributes(parse_request_info(method, path, watch))
    assert attributes == dataclasses.replace(expected, path=path)


def test_reconcile_adds_back_what_is_missing_and_keeps_additions() -> None:
    wanted = next(
        obj for _, obj in bootstrap_objects() if obj["metadata"]["name"] == "system:discovery"
    )
    edited = {
        **wanted,
        "metadata": {**wanted["metadata"], "labels": {"mine": "yes"}},
        "rules": [{"verbs": ["get"], "nonResourceURLs": ["/custom"]}],
    }
    updated = reconcile(edited, wanted)
    assert updated is not None
    assert updated["rules"][0] == {"verbs": ["get"], "nonResourceURLs": ["/custom"]}
    assert wanted["rules"][0] in updated["rules"]
    assert updated["metadata"]["labels"]["mine"] == "yes"
    assert reconcile(updated, wanted) is None
    opted_out = {
        **edited,
        "metadata": {
            **edited["metadata"],
            "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "false"},
        },
    }
    assert reconcile(opted_out, wanted) is None


def test_reconcile_binding_adds_subjects() -> None:
    wanted = next(
        obj
        for _, obj in bootstrap_objects()
        if obj["metadata"]["name"] == "system:node" and obj["kind"] == "ClusterRoleBinding"
    )
    updated = reconcile(
        {
            **wanted,
            "subjects": [
                {"kind": "User", "name": "extra", "apiGroup": "rbac.authorization.k8s.io"}
            ],
        },
        wanted,
    )
    assert updated is not None
    assert [s["name"] for s in updated["subjects"]] == ["extra", "system:nodes"]
