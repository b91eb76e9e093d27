"""Joining a cluster with its URL and join token: see timonel/agent/join.py (shared by the
real node agent and the simulated nodes)."""

from timonel.agent.join import (
    JoinError,
    UntrustedServer,
    check_cluster_ca,
    fetch_cluster_ca,
    join,
    trusting,
)

__all__ = [
    "JoinError",
    "UntrustedServer",
    "check_cluster_ca",
    "fetch_cluster_ca",
    "join",
    "trusting",
]
