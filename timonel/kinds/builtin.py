"""The built-in kinds, in discovery order (each API group's package lists its own)."""

from __future__ import annotations

from timonel.kinds import (
    apiextensions,
    apps,
    authentication,
    authorization,
    autoscaling,
    batch,
    coordination,
    core,
    discovery,
    events,
    metrics,
    networking,
    policy,
    rbac,
    storage,
)
from timonel.kinds.base import Strategy

STRATEGIES: tuple[type[Strategy], ...] = (
    *core.STRATEGIES,
    *apps.STRATEGIES,
    *batch.STRATEGIES,
    *autoscaling.STRATEGIES,
    *policy.STRATEGIES,
    *discovery.STRATEGIES,
    *coordination.STRATEGIES,
    *events.STRATEGIES,
    *networking.STRATEGIES,
    *storage.STRATEGIES,
    *rbac.STRATEGIES,
    *apiextensions.STRATEGIES,
    *authorization.STRATEGIES,
    *authentication.STRATEGIES,
    *metrics.STRATEGIES,
)
