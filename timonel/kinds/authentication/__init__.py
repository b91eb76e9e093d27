"""Strategies of the authentication API group."""

from timonel.kinds.authentication.selfsubjectreview import SelfSubjectReviewStrategy
from timonel.kinds.base import Strategy

STRATEGIES: tuple[type[Strategy], ...] = (SelfSubjectReviewStrategy,)
