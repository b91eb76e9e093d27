"""authorization.k8s.io/v1 SubjectAccessReview: "may this user do this?", asked by a
component (a webhook, an aggregated server) on someone else's behalf."""

from __future__ import annotations

from typing import Any, ClassVar

from timonel.api.errors import FieldError, invalid_value
from timonel.api.user import UserInfo
from timonel.kinds.authorization.selfsubjectaccessreview import (
    SelfSubjectAccessReviewStrategy,
    validate_review_spec,
)


def subject_of(spec: dict[str, Any]) -> UserInfo:
    """The user a SubjectAccessReviewSpec asks about."""
    extra = spec.get("extra") or {}
    return UserInfo(
        name=str(spec.get("user") or ""),
        groups=tuple(str(g) for g in spec.get("groups") or ()),
        uid=str(spec.get("uid") or ""),
        extra={str(k): tuple(str(v) for v in values or ()) for k, values in extra.items()},
    )


class SubjectAccessReviewStrategy(SelfSubjectAccessReviewStrategy):
    kind: ClassVar[str] = "SubjectAccessReview"
    plural: ClassVar[str] = "subjectaccessreviews"
    singular: ClassVar[str] = "subjectaccessreview"

    def subject(self, spec: dict[str, Any], user: UserInfo) -> UserInfo:
        return subject_of(spec)

    def spec_problems(self, spec: dict[str, Any]) -> list[FieldError]:
        problems = validate_review_spec(spec)
        if not spec.get("user") and not spec.get("groups"):
            problems.append(
                invalid_value("spec.user", "", "at least one of user or group must be specified")
            )
        return problems
