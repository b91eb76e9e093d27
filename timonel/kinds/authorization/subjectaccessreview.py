"""authorization.k8s.io/v1 SubjectAccessReview: "may this user do this?", asked by a
component (a webhook, an aggregated server) on someone else's behalf."""

from __future__ import annotations

from typing import Any, ClassVar

from timonel.api import errors
from timonel.api.errors import invalid_value
from timonel.api.objects import Object
from timonel.api.user import UserInfo
from timonel.kinds.authorization.authorizer import Authorizer, allow_everything
from timonel.kinds.authorization.selfsubjectaccessreview import (
    GROUP,
    empty_metadata,
    validate_review_spec,
)
from timonel.kinds.base import Strategy


def subject_of(spec: dict[str, Any]) -> UserInfo:
    """The user a SubjectAccessReviewSpec asks about."""
    extra = spec.get("extra") or {}
    return UserInfo(
        name=str(spec.get("user") or ""),
        groups=tuple(str(g) for g in spec.get("groups") or ()),
        uid=str(spec.get("uid") or ""),
        extra={str(k): tuple(str(v) for v in values or ()) for k, values in extra.items()},
    )


class SubjectAccessReviewStrategy(Strategy):
    group: ClassVar[str] = GROUP
    version: ClassVar[str] = "v1"
    kind: ClassVar[str] = "SubjectAccessReview"
    plural: ClassVar[str] = "subjectaccessreviews"
    singular: ClassVar[str] = "subjectaccessreview"
    namespaced: ClassVar[bool] = False
    verbs: ClassVar[tuple[str, ...]] = ("create",)
    virtual: ClassVar[bool] = True

    def __init__(self, authorizer: Authorizer | None = None) -> None:
        self.authorizer = authorizer

    def respond(self, obj: Object, user: UserInfo) -> Object:
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            spec = {}
        problems = validate_review_spec(spec)
        if not spec.get("user") and not spec.get("groups"):
            problems.append(
                invalid_value("spec.user", "", "at least one of user or group must be specified")
            )
        meta = obj.get("metadata")
        if not empty_metadata(meta):
            problems.append(invalid_value("metadata", meta, "must be empty"))
        if problems:
            raise errors.invalid(self.kind, self.group, "", problems)
        decision = (self.authorizer or allow_everything)(subject_of(spec), spec)
        return {
            "kind": self.kind,
            "apiVersion": self.api_version,
            "metadata": {"creationTimestamp": None},
            "spec": spec,
            "status": decision.status(),
        }
