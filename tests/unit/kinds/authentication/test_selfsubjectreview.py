"""SelfSubjectReview: `kubectl auth whoami` reads back the authenticated user."""

from __future__ import annotations

from timonel.api.user import UserInfo
from timonel.kinds.authentication.selfsubjectreview import SelfSubjectReviewStrategy

STRATEGY = SelfSubjectReviewStrategy()

# What kubectl 1.32 sends.
WHOAMI = {
    "kind": "SelfSubjectReview",
    "apiVersion": "authentication.k8s.io/v1",
    "metadata": {"creationTimestamp": None},
    "status": {"userInfo": {}},
}


def test_answers_with_the_user() -> None:
    user = UserInfo(
        "system:serviceaccount:default:ci",
        ("system:serviceaccounts", "system:authenticated"),
        uid="0b1f",
        extra={"authentication.kubernetes.io/pod-name": ("ci-1",)},
    )
    answer = STRATEGY.respond(WHOAMI, user)
    assert answer["kind"] == "SelfSubjectReview"
    assert answer["apiVersion"] == "authentication.k8s.io/v1"
    assert answer["status"] == {
        "userInfo": {
            "username": "system:serviceaccount:default:ci",
            "uid": "0b1f",
            "groups": ["system:serviceaccounts", "system:authenticated"],
            "extra": {"authentication.kubernetes.io/pod-name": ["ci-1"]},
        }
    }
    assert answer["metadata"]["creationTimestamp"]


def test_empty_fields_are_left_out() -> None:
    assert STRATEGY.respond(WHOAMI, UserInfo("admin"))["status"] == {
        "userInfo": {"username": "admin"}
    }
    assert STRATEGY.verbs == ("create",)
    assert STRATEGY.virtual
