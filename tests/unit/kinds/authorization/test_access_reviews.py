"""SelfSubjectAccessReview and SelfSubjectRulesReview: answered, never stored; until an
authorizer exists every authenticated user may do everything."""

from __future__ import annotations

from typing import Any

import pytest

from timonel.api.errors import StatusError
from timonel.api.user import UserInfo
from timonel.kinds.authorization.authorizer import Decision, RulesResult
from timonel.kinds.authorization.selfsubjectaccessreview import SelfSubjectAccessReviewStrategy
from timonel.kinds.authorization.selfsubjectrulesreview import SelfSubjectRulesReviewStrategy

ADMIN = UserInfo("kubernetes-admin", ("system:masters", "system:authenticated"))

# What `kubectl auth can-i create deployments` sends (decoded from its protobuf body).
CAN_I = {
    "kind": "SelfSubjectAccessReview",
    "apiVersion": "authorization.k8s.io/v1",
    "metadata": {"creationTimestamp": None},
    "spec": {
        "resourceAttributes": {
            "namespace": "default",
            "verb": "create",
            "group": "apps",
            "resource": "deployments",
        }
    },
    "status": {"allowed": False},
}


def test_review_kinds_are_create_only_and_virtual() -> None:
    for strategy in (SelfSubjectAccessReviewStrategy(), SelfSubjectRulesReviewStrategy()):
        assert strategy.verbs == ("create",)
        assert strategy.virtual
        assert not strategy.namespaced


def test_everyone_is_allowed_without_an_authorizer() -> None:
    answer = SelfSubjectAccessReviewStrategy().respond(CAN_I, ADMIN)
    assert answer["kind"] == "SelfSubjectAccessReview"
    assert answer["apiVersion"] == "authorization.k8s.io/v1"
    assert answer["spec"] == CAN_I["spec"]
    assert answer["status"]["allowed"] is True
    assert answer["status"]["reason"]
    assert "denied" not in answer["status"]


def test_an_authorizer_decides_when_given() -> None:
    seen: list[tuple[UserInfo, dict[str, Any]]] = []

    def deny_deployments(user: UserInfo, attributes: dict[str, Any]) -> Decision:
        seen.append((user, attributes))
        return Decision(allowed=False, denied=True, reason="no deployments for you")

    answer = SelfSubjectAccessReviewStrategy(authorizer=deny_deployments).respond(CAN_I, ADMIN)
    assert answer["status"] == {
        "allowed": False,
        "denied": True,
        "reason": "no deployments for you",
    }
    assert seen == [(ADMIN, CAN_I["spec"])]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {},
            'spec.resourceAttributes: Invalid value: "null": exactly one of nonResourceAttributes or '
            "resourceAttributes must be specified",
        ),
        (
            {
                "resourceAttributes": {"verb": "get"},
                "nonResourceAttributes": {"path": "/healthz", "verb": "get"},
            },
            'spec.nonResourceAttributes: Invalid value: authorization.NonResourceAttributes{Path:"/healthz", '
            'Verb:"get"}: cannot be specified in combination with resourceAttributes',
        ),
    ],
)
def test_review_spec_is_validated(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(StatusError) as raised:
        SelfSubjectAccessReviewStrategy().respond({**CAN_I, "spec": spec}, ADMIN)
    assert raised.value.code == 422
    assert (
        raised.value.message
        == f'SelfSubjectAccessReview.authorization.k8s.io "" is invalid: {message}'
    )


def test_rules_review_lists_everything() -> None:
    review = {
        "kind": "SelfSubjectRulesReview",
        "apiVersion": "authorization.k8s.io/v1",
        "metadata": {"creationTimestamp": None},
        "spec": {"namespace": "default"},
    }
    answer = SelfSubjectRulesReviewStrategy().respond(review, ADMIN)
    assert answer["status"] == {
        "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
        "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
        "incomplete": False,
    }
    assert answer["spec"] == {}


def test_rules_review_uses_a_given_resolver_and_needs_a_namespace() -> None:
    def nothing(user: UserInfo, namespace: str) -> RulesResult:
        return RulesResult((), (), incomplete=True, evaluation_error=f"no rules in {namespace}")

    strategy = SelfSubjectRulesReviewStrategy(rules_resolver=nothing)
    answer = strategy.respond({"spec": {"namespace": "apps"}}, ADMIN)
    assert answer["status"] == {
        "resourceRules": [],
        "nonResourceRules": [],
        "incomplete": True,
        "evaluationError": "no rules in apps",
    }
    with pytest.raises(StatusError) as raised:
        strategy.respond({"spec": {}}, ADMIN)
    assert (raised.value.code, raised.value.message) == (400, "no namespace on request")
