"""Strategies of the networking API group."""

from timonel.kinds.base import Strategy

STRATEGIES: tuple[type[Strategy], ...] = ()
