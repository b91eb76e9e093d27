"""The request authorizer: masters bypass RBAC, refusals are kube's 403, impersonation
asks for the `impersonate` verb on each part of the identity."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from multidict import CIMultiDict, MultiDict

from timonel.api.errors import StatusError
from timonel.api.user import UserInfo
from timonel.apiserver.authorization.authorizer import RBACAuthorizer
from timonel.apiserver.context import ApiRequest
from timonel.apiserver.requestinfo import parse_request_info

ADMIN = UserInfo("system:admin", ("system:masters", "system:authenticated"))
BOB = UserInfo("bob", ("system:authenticated",))


def authorizer(**objects: list[dict[str, Any]]) -> RBACAuthorizer:
    def cache(group: str, version: str, plural: str) -> Any:
        return SimpleNamespace(list=lambda: SimpleNamespace(items=objects.get(plural, [])))

    return RBACAuthorizer(cache)


IMPERSONATOR = {
    "clusterroles": [
        {
            "metadata": {"name": "impersonate-alice"},
            "rules": [
                {
                    "verbs": ["impersonate"],
                    "apiGroups": [""],
                    "resources": ["users"],
                    "resourceNames": ["alice"],
                }
            ],
        }
    ],
    "clusterrolebindings": [
        {
            "metadata": {"name": "bob-impersonates"},
            "roleRef": {"kind": "ClusterRole", "name": "impersonate-alice"},
            "subjects": [{"kind": "User", "name": "bob"}],
        }
    ],
}


def admit(
    rbac: RBACAuthorizer, user: UserInfo, path: str, headers: dict[str, str] | None = None
) -> ApiRequest:
    request = ApiRequest("GET", path, MultiDict(), CIMultiDict(headers or {}), user=user)
    rbac.admit(request, parse_request_info("GET", path, None))
    return request


def test_masters_bypass_rbac() -> None:
    request = admit(authorizer(), ADMIN, "/api/v1/namespaces/a/secrets")
    assert request.authorization == (True, "")


def test_refusal_is_kubes_forbidden_status() -> None:
    with pytest.raises(StatusError) as refused:
        admit(authorizer(), BOB, "/apis/apps/v1/namespaces/a/deployments/web")
    status = refused.value.status()
    assert status["code"] == 403
    assert status["reason"] == "Forbidden"
    assert status["message"] == (
        'deployments.apps "web" is forbidden: User "bob" cannot get resource "deployments" '
        'in API group "apps" in the namespace "a"'
    )
    assert status["details"] == {"name": "web", "group": "apps", "kind": "deployments"}


def test_impersonation() -> None:
    rbac = authorizer(**IMPERSONATOR)
    with pytest.raises(StatusError) as refused:
        admit(rbac, BOB, "/api", {"Impersonate-User": "carol"})
    assert refused.value.status()["message"] == (
        'users "carol" is forbidden: User "bob" cannot impersonate resource "users" '
        'in API group "" at the cluster scope'
    )
    with pytest.raises(StatusError):
        admit(rbac, BOB, "/api", {"Impersonate-User": "alice", "Impersonate-Group": "admins"})
    # /api is open to nobody here: the impersonated alice is refused, not bob.
    with pytest.raises(StatusError) as as_alice:
        admit(rbac, BOB, "/api", {"Impersonate-User": "alice"})
    assert as_alice.value.status()["message"] == 'forbidden: User "alice" cannot get path "/api"'
    request = ApiRequest(
        "GET",
        "/api",
        MultiDict(),
        CIMultiDict({"Impersonate-User": "system:serviceaccount:ns:robot"}),
        user=ADMIN,
    )
    with pytest.raises(StatusError):  # the robot may not read /api here
        rbac.admit(request, parse_request_info("GET", "/api", None))
    assert request.impersonator == ADMIN
    assert request.user == UserInfo(
        "system:serviceaccount:ns:robot",
        ("system:serviceaccounts", "system:serviceaccounts:ns", "system:authenticated"),
    )


def test_answers_follow_rbac_changes() -> None:
    objects: dict[str, list[dict[str, Any]]] = {}

    def cache(group: str, version: str, plural: str) -> Any:
        return SimpleNamespace(list=lambda: SimpleNamespace(items=objects.get(plural, [])))

    rbac = RBACAuthorizer(cache)
    path = "/api/v1/namespaces/a/pods/web"
    with pytest.raises(StatusError):
        admit(rbac, BOB, path)
    objects.update(
        clusterroles=[
            {
                "metadata": {"name": "pod-reader"},
                "rules": [{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}],
            }
        ],
        clusterrolebindings=[
            {
                "metadata": {"name": "bob-reads-pods"},
                "roleRef": {"kind": "ClusterRole", "name": "pod-reader"},
                "subjects": [{"kind": "User", "name": "bob"}],
            }
        ],
    )
    rbac.policy_changed()
    allowed, reason = admit(rbac, BOB, path).authorization or (False, "")
    assert allowed
    assert "bob-reads-pods" in reason
    # Another user is decided on its own.
    with pytest.raises(StatusError):
        admit(rbac, UserInfo("carol", ("system:authenticated",)), path)
    objects.clear()
    rbac.policy_changed()
    with pytest.raises(StatusError):
        admit(rbac, BOB, path)
