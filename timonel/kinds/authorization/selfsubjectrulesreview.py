"""authorization.k8s.io/v1 SelfSubjectRulesReview: "what may I do here?"
(`kubectl auth can-i --list`)."""

from __future__ import annotations

from typing import ClassVar

from timonel.api import errors
from timonel.api.objects import Object
from timonel.api.user import UserInfo
from timonel.kinds.authorization.authorizer import RulesResolver, everything_rules
from timonel.kinds.base import Strategy

GROUP = "authorization.k8s.io"


class SelfSubjectRulesReviewStrategy(Strategy):
    group: ClassVar[str] = GROUP
    version: ClassVar[str] = "v1"
    kind: ClassVar[str] = "SelfSubjectRulesReview"
    plural: ClassVar[str] = "selfsubjectrulesreviews"
    singular: ClassVar[str] = "selfsubjectrulesreview"
    namespaced: ClassVar[bool] = False
    verbs: ClassVar[tuple[str, ...]] = ("create",)
    virtual: ClassVar[bool] = True

    def __init__(self, rules_resolver: RulesResolver | None = None) -> None:
        # None: no authorization yet, every authenticated user is allowed everything.
        self.rules_resolver = rules_resolver

    def respond(self, obj: Object, user: UserInfo) -> Object:
        namespace = str((obj.get("spec") or {}).get("namespace") or "")
        if not namespace:
            raise errors.bad_request("no namespace on request")
        rules = (self.rules_resolver or everything_rules)(user, namespace)
        # kube-apiserver answers with a fresh review: the spec does not come back.
        return {
            "kind": self.kind,
            "apiVersion": self.api_version,
            "metadata": {"creationTimestamp": None},
            "spec": {},
            "status": rules.status(),
        }
