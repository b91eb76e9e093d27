"""Strategies of the authorization API group."""

from timonel.kinds.base import Strategy

STRATEGIES: tuple[type[Strategy], ...] = ()
