"""Strategies of the networking API group."""

from timonel.kinds.base import Strategy
from timonel.kinds.networking.ingress import IngressClassStrategy, IngressStrategy
from timonel.kinds.networking.networkpolicy import NetworkPolicyStrategy

STRATEGIES: tuple[type[Strategy], ...] = (
    IngressClassStrategy,
    IngressStrategy,
    NetworkPolicyStrategy,
)
