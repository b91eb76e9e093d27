"""Strategies of the events API group."""

from timonel.kinds.base import Strategy
from timonel.kinds.events.event import EventStrategy

STRATEGIES: tuple[type[Strategy], ...] = (EventStrategy,)
