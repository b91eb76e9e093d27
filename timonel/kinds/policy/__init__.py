"""Strategies of the policy API group."""

from timonel.kinds.base import Strategy
from timonel.kinds.policy.poddisruptionbudget import PodDisruptionBudgetStrategy

STRATEGIES: tuple[type[Strategy], ...] = (PodDisruptionBudgetStrategy,)
