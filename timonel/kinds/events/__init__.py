"""Strategies of the events API group."""

from timonel.kinds.base import Strategy

STRATEGIES: tuple[type[Strategy], ...] = ()
