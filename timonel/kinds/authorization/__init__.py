"""Strategies of the authorization API group."""

from timonel.kinds.authorization.selfsubjectaccessreview import SelfSubjectAccessReviewStrategy
from timonel.kinds.authorization.selfsubjectrulesreview import SelfSubjectRulesReviewStrategy
from timonel.kinds.authorization.subjectaccessreview import SubjectAccessReviewStrategy
from timonel.kinds.base import Strategy

STRATEGIES: tuple[type[Strategy], ...] = (
    SelfSubjectAccessReviewStrategy,
    SelfSubjectRulesReviewStrategy,
    SubjectAccessReviewStrategy,
)
