"""authorization.k8s.io/v1 SelfSubjectAccessReview: "may I do this?" (`kubectl auth can-i`).

A review is answered, never stored: the response is the request with its status filled.
"""

from __future__ import annotations

from typing import Any, ClassVar

from timonel.api import errors
from timonel.api.errors import FieldError, RawValue, invalid_value
from timonel.api.objects import Object
from timonel.api.user import UserInfo
from timonel.kinds.authorization.authorizer import Authorizer, allow_everything
from timonel.kinds.base import Strategy

GROUP = "authorization.k8s.io"


def empty_metadata(meta: Any) -> bool:
    """A review's metadata must be empty (kubectl sends `creationTimestamp: null`)."""
    if not isinstance(meta, dict):
        return meta is None
    return all(
        value in (None, "", {}, []) for name, value in meta.items() if name != "managedFields"
    )


def validate_review_spec(spec: dict[str, Any], path: str = "spec") -> list[FieldError]:
    """ValidateSelfSubjectAccessReviewSpec: exactly one kind of attributes."""
    resource, non_resource = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
    if resource is not None and non_resource is not None:
        shown = RawValue(
            f'authorization.NonResourceAttributes{{Path:"{non_resource.get("path") or ""}", '
            f'Verb:"{non_resource.get("verb") or ""}"}}'
        )
        return [
            invalid_value(
                f"{path}.nonResourceAttributes",
                shown,
                "cannot be specified in combination with resourceAttributes",
            )
        ]
    if resource is None and non_resource is None:
        # apimachinery prints a nil value as the string "null".
        return [
            invalid_value(
                f"{path}.resourceAttributes",
                "null",
                "exactly one of nonResourceAttributes or resourceAttributes must be specified",
            )
        ]
    return []


class SelfSubjectAccessReviewStrategy(Strategy):
    group: ClassVar[str] = GROUP
    version: ClassVar[str] = "v1"
    kind: ClassVar[str] = "SelfSubjectAccessReview"
    plural: ClassVar[str] = "selfsubjectaccessreviews"
    singular: ClassVar[str] = "selfsubjectaccessreview"
    namespaced: ClassVar[bool] = False
    verbs: ClassVar[tuple[str, ...]] = ("create",)
    virtual: ClassVar[bool] = True

    def __init__(self, authorizer: Authorizer | None = None) -> None:
        # None: no authorization yet, every authenticated user is allowed everything.
        self.authorizer = authorizer

    def subject(self, spec: dict[str, Any], user: UserInfo) -> UserInfo:
        """Whom the review asks about: the requester."""
        return user

    def spec_problems(self, spec: dict[str, Any]) -> list[FieldError]:
        return validate_review_spec(spec)

    def respond(self, obj: Object, user: UserInfo) -> Object:
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            spec = {}
        problems = self.spec_problems(spec)
        meta = obj.get("metadata")
        if not empty_metadata(meta):
            problems.append(invalid_value("metadata", meta, "must be empty"))
        if problems:
            raise errors.invalid(self.kind, self.group, "", problems)
        decision = (self.authorizer or allow_everything)(self.subject(spec, user), spec)
        return {
            "kind": self.kind,
            "apiVersion": self.api_version,
            "metadata": {"creationTimestamp": None},
            "spec": spec,
            "status": decision.status(),
        }
