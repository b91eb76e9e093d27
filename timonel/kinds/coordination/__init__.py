"""Strategies of the coordination API group."""

from timonel.kinds.base import Strategy

STRATEGIES: tuple[type[Strategy], ...] = ()
