"""Strategies of the apps API group."""

from timonel.kinds.base import Strategy

STRATEGIES: tuple[type[Strategy], ...] = ()
