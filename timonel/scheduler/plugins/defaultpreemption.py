"""DefaultPreemption, as far as timonel goes: it never evicts pods, but it words the
`preemption: ...` part of the FailedScheduling message as kube-scheduler does.

Nodes rejected as UnschedulableAndUnresolvable are ones preemption cannot help. On the
others, the lower-priority pods are the would-be victims: with none, the node says "No
preemption victims found for incoming pod"; with some, the node's resource and port
checks are rerun as if they were gone, and a node that still fails gives its reasons.
When some node would fit after evicting, kube-scheduler would preempt and print no
`preemption:` part; timonel prints none either (and does not evict).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from timonel.scheduler.framework import (
    SUCCESS,
    Code,
    CycleState,
    Diagnosis,
    Handle,
    NodeInfo,
    PodInfo,
    Status,
    fit_error_message,
    unresolvable,
    unschedulable,
)
from timonel.scheduler.plugins.nodeports import NAME as NODE_PORTS
from timonel.scheduler.plugins.noderesources import FIT_NAME, insufficient_resources

NAME: Final = "DefaultPreemption"
NOT_HELPFUL: Final = "Preemption is not helpful for scheduling"
NO_VICTIMS: Final = "No preemption victims found for incoming pod"
NOT_ELIGIBLE: Final = "not eligible due to preemptionPolicy=Never."

_NOT_HELPFUL_STATUS: Final = unresolvable(NAME, NOT_HELPFUL)
_NO_VICTIMS_STATUS: Final = unresolvable(NAME, NO_VICTIMS)


class DefaultPreemption:
    name = NAME

    def post_filter(self, state: CycleState, pod: PodInfo, diagnosis: Diagnosis) -> Status:
        if pod.preemption_never:
            return unschedulable(NAME, "preemption: " + NOT_ELIGIBLE)
        nodes = state.snapshot.nodes
        if not nodes:
            return unschedulable(NAME, "preemption: no nodes available")
        outcome = Diagnosis(absent_status=_NOT_HELPFUL_STATUS)
        for node in nodes:
            status = diagnosis.status_of(node.name)
            if status is None or status.code is not Code.UNSCHEDULABLE:
                continue
            verdict = _dry_run(pod, node, status)
            if verdict is None:
                return SUCCESS
            outcome.node_statuses[node.name] = verdict
        return unschedulable(NAME, "preemption: " + fit_error_message(len(nodes), outcome))


def _dry_run(pod: PodInfo, node: NodeInfo, status: Status) -> Status | None:
    """The node's status with every lower-priority pod gone; None when the pod would fit."""
    victims = [p for p in node.pods.values() if p.priority < pod.priority]
    if not victims:
        return _NO_VICTIMS_STATUS
    if status.plugin == FIT_NAME:
        reasons = _fit_without(pod, node, victims)
        return unschedulable(FIT_NAME, *reasons) if reasons else None
    if status.plugin == NODE_PORTS:
        remaining = {port for p in node.pods.values() if p not in victims for port in p.host_ports}
        clash = any(
            (ip, protocol, port) in remaining
            or ("0.0.0.0", protocol, port) in remaining
            or (ip == "0.0.0.0" and any(r[1:] == (protocol, port) for r in remaining))
            for ip, protocol, port in pod.host_ports
        )
        return status if clash else None
    return status


def _fit_without(pod: PodInfo, node: NodeInfo, victims: Sequence[PodInfo]) -> tuple[str, ...]:
    freed = NodeInfo(node.node)
    for other in node.pods.values():
        if other not in victims:
            freed.add_pod(other)
    requests = pod.requests
    scalar = sorted((k, v) for k, v in requests.scalar.items() if v)
    return insufficient_resources(
        freed, requests.milli_cpu, requests.memory, requests.ephemeral_storage, scalar
    )


def new(args: Mapping[str, Any], handle: Handle) -> DefaultPreemption:
    return DefaultPreemption()
