"""The seam between the review kinds and whatever decides access.

The API server's RBAC authorizer (timonel.apiserver.authorization) plugs into the review
strategies through their `authorizer` and `rules_resolver` attributes. An API server built
without one (as some tests do) lets every authenticated user do everything: the defaults
below say so truthfully.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from timonel.api.user import UserInfo

ALLOW_ALL_REASON = "no authorizer is configured: every authenticated user may do everything"


@dataclass(frozen=True)
class Decision:
    """An authorizer's answer (SubjectAccessReviewStatus)."""

    allowed: bool
    denied: bool = False
    reason: str = ""
    evaluation_error: str = ""

    def status(self) -> dict[str, Any]:
        status: dict[str, Any] = {"allowed": self.allowed}
        if self.denied:
            status["denied"] = True
        if self.reason:
            status["reason"] = self.reason
        if self.evaluation_error:
            status["evaluationError"] = self.evaluation_error
        return status


@dataclass(frozen=True)
class RulesResult:
    """What a user may do in a namespace (SubjectRulesReviewStatus)."""

    resource_rules: tuple[dict[str, Any], ...]
    non_resource_rules: tuple[dict[str, Any], ...]
    incomplete: bool = False
    evaluation_error: str = ""

    def status(self) -> dict[str, Any]:
        status: dict[str, Any] = {
            "resourceRules": [dict(rule) for rule in self.resource_rules],
            "nonResourceRules": [dict(rule) for rule in self.non_resource_rules],
            "incomplete": self.incomplete,
        }
        if self.evaluation_error:
            status["evaluationError"] = self.evaluation_error
        return status


# (user, SubjectAccessReviewSpec-shaped attributes: `resourceAttributes` or
# `nonResourceAttributes`) → decision.
Authorizer = Callable[[UserInfo, dict[str, Any]], Decision]
# (user, namespace) → the rules that apply.
RulesResolver = Callable[[UserInfo, str], RulesResult]


def allow_everything(user: UserInfo, attributes: dict[str, Any]) -> Decision:
    return Decision(allowed=True, reason=ALLOW_ALL_REASON)


def everything_rules(user: UserInfo, namespace: str) -> RulesResult:
    return RulesResult(
        resource_rules=({"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]},),
        non_resource_rules=({"verbs": ["*"], "nonResourceURLs": ["*"]},),
    )
