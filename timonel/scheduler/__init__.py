"""kube-scheduler's default profile in Python: a queue, a cache and a framework of small
plugins. See `scheduler.py` for how a cycle runs and how the I/O shell drives it."""

from timonel.scheduler.framework import (
    Code,
    CycleState,
    FitError,
    NodeInfo,
    PodInfo,
    Profile,
    Status,
)
from timonel.scheduler.plugins import DEFAULT_PROFILE, REGISTRY
from timonel.scheduler.scheduler import (
    EVENT_FAILED_SCHEDULING,
    EVENT_SCHEDULED,
    REASON_SCHEDULER_ERROR,
    REASON_UNSCHEDULABLE,
    Scheduler,
    event_note,
    num_feasible_nodes_to_find,
    scheduled_message,
)

__all__ = [
    "DEFAULT_PROFILE",
    "EVENT_FAILED_SCHEDULING",
    "EVENT_SCHEDULED",
    "REASON_SCHEDULER_ERROR",
    "REASON_UNSCHEDULABLE",
    "REGISTRY",
    "Code",
    "CycleState",
    "FitError",
    "NodeInfo",
    "PodInfo",
    "Profile",
    "Scheduler",
    "Status",
    "event_note",
    "num_feasible_nodes_to_find",
    "scheduled_message",
]
