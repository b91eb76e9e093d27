"""authentication.k8s.io/v1 SelfSubjectReview: "who am I?" (`kubectl auth whoami`)."""

from __future__ import annotations

from typing import Any, ClassVar

from timonel.api.objects import Object, now_rfc3339
from timonel.api.user import UserInfo
from timonel.kinds.base import Strategy

GROUP = "authentication.k8s.io"


def user_info(user: UserInfo) -> dict[str, Any]:
    """authentication/v1 UserInfo: empty fields are left out."""
    info: dict[str, Any] = {}
    if user.name:
        info["username"] = user.name
    if user.uid:
        info["uid"] = user.uid
    if user.groups:
        info["groups"] = list(user.groups)
    if user.extra:
        info["extra"] = {key: list(values) for key, values in user.extra.items()}
    return info


class SelfSubjectReviewStrategy(Strategy):
    group: ClassVar[str] = GROUP
    version: ClassVar[str] = "v1"
    kind: ClassVar[str] = "SelfSubjectReview"
    plural: ClassVar[str] = "selfsubjectreviews"
    singular: ClassVar[str] = "selfsubjectreview"
    namespaced: ClassVar[bool] = False
    verbs: ClassVar[tuple[str, ...]] = ("create",)
    virtual: ClassVar[bool] = True

    def respond(self, obj: Object, user: UserInfo) -> Object:
        return {
            "kind": self.kind,
            "apiVersion": self.api_version,
            "metadata": {"creationTimestamp": now_rfc3339()},
            "status": {"userInfo": user_info(user)},
        }
