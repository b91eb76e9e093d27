"""Strategies of the discovery API group."""

from timonel.kinds.base import Strategy
from timonel.kinds.discovery.endpointslice import EndpointSliceStrategy

STRATEGIES: tuple[type[Strategy], ...] = (EndpointSliceStrategy,)
