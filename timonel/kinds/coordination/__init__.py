"""Strategies of the coordination API group."""

from timonel.kinds.base import Strategy
from timonel.kinds.coordination.lease import LeaseStrategy

STRATEGIES: tuple[type[Strategy], ...] = (LeaseStrategy,)
