"""Liveness, readiness and startup probes: one asyncio task per (pod, container, probe).

A worker probes every periodSeconds once the container has run initialDelaySeconds. A
result changes only after failureThreshold failures in a row (successThreshold successes
for readiness); until a startup probe succeeds the other probes do not run, and once it
has it stops. Readiness starts as failure, liveness as success. When liveness or startup
turns to failure the worker holds until the container is replaced (the pod worker kills
and restarts it). Every failed probe records an Unhealthy event.

Results are kept by container ID; a change wakes the pod's worker (`on_change`), which
recomputes the pod's actions and status. `ProbeState.observe` is the pure threshold rule.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from timonel.agent.kubelet.actions import FAILURE, SUCCESS, containers, init_containers, is_sidecar
from timonel.agent.kubelet.handlers import ERROR, WARNING, HandlerResult, Target, run_action
from timonel.agent.kubelet.runtimestate import RUNNING, ContainerState, PodRuntime
from timonel.agent.runtime.cri import CriClient
from timonel.api.objects import Object

log = logging.getLogger(__name__)

LIVENESS: Final = "liveness"
READINESS: Final = "readiness"
STARTUP: Final = "startup"
KINDS: Final = {LIVENESS: "livenessProbe", READINESS: "readinessProbe", STARTUP: "startupProbe"}
TITLES: Final = {LIVENESS: "Liveness", READINESS: "Readiness", STARTUP: "Startup"}


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


@dataclass
class ProbeState:
    """The threshold rule of one probe: consecutive results move the reported result."""

    kind: str
    success_threshold: int = 1
    failure_threshold: int = 3
    result: str | None = None
    last: str | None = None
    run: int = 0

    def __post_init__(self) -> None:
        if self.result is None and self.kind == READINESS:
            self.result = FAILURE
        elif self.result is None and self.kind == LIVENESS:
            self.result = SUCCESS

    def observe(self, outcome: str) -> bool:
        """Count one probe outcome (success or failure); True when the result changed."""
        if outcome == self.last:
            self.run += 1
        else:
            self.last = outcome
            self.run = 1
        threshold = self.failure_threshold if outcome == FAILURE else self.success_threshold
        if self.run < threshold or self.result == outcome:
            return False
        self.result = outcome
        if outcome == FAILURE and self.kind in (LIVENESS, STARTUP):
            self.run = 0
        return True


EventSink = Callable[[Object, Mapping[str, Any], str, str, str], None]
"""(pod, container spec, type, reason, message)."""


@dataclass
class _Worker:
    kind: str
    pod_uid: str
    container_name: str
    container_id: str
    started_at: float
    task: asyncio.Task[None] | None = None


@dataclass
class ProbeManager:
    cri: Callable[[], CriClient]
    on_change: Callable[[str], None]
    record: EventSink
    readiness: dict[str, bool] = field(default_factory=dict)
    liveness: dict[str, str] = field(default_factory=dict)
    startup: dict[str, str] = field(default_factory=dict)
    _workers: dict[tuple[str, str, str], _Worker] = field(default_factory=dict)
    _pods: dict[str, Object] = field(default_factory=dict)
    _pod_ips: dict[str, str] = field(default_factory=dict)

    def seed(self, container_id: str, *, ready: bool | None, started: bool | None) -> None:
        """Results a previous agent reported for a running container (adoption): kept until
        the first probe of this agent says otherwise, so pods do not flap on restart."""
        if ready is not None and container_id not in self.readiness:
            self.readiness[container_id] = ready
        if started and container_id not in self.startup:
            self.startup[container_id] = SUCCESS

    def sync_pod(self, pod: Object, runtime: PodRuntime, pod_ip: str) -> None:
        """Run a worker for each probe of each running container; stop the others."""
        uid = str(_dict(pod.get("metadata")).get("uid", ""))
        self._pods[uid] = pod
        self._pod_ips[uid] = pod_ip
        wanted: set[tuple[str, str, str]] = set()
        probed = [c for c in init_containers(pod) if is_sidecar(c)] + containers(pod)
        for container in probed:
            name = str(container.get("name", ""))
            status = runtime.latest(name)
            if status is None or status.state != RUNNING:
                continue
            for kind, field_name in KINDS.items():
                if not container.get(field_name):
                    continue
                key = (uid, name, kind)
                wanted.add(key)
                worker = self._workers.get(key)
                if worker is not None and worker.container_id == status.id:
                    continue
                if worker is not None and worker.task is not None:
                    worker.task.cancel()
                self._start(key, container, status)
        for key in [k for k in self._workers if k[0] == uid and k not in wanted]:
            self._stop(key)

    def remove_pod(self, uid: str) -> None:
        for key in [k for k in self._workers if k[0] == uid]:
            self._stop(key)
        self._pods.pop(uid, None)
        self._pod_ips.pop(uid, None)

    def forget_containers(self, container_ids: set[str]) -> None:
        for results in (self.readiness, self.liveness, self.startup):
            for container_id in container_ids & set(results):
                del results[container_id]

    def _stop(self, key: tuple[str, str, str]) -> None:
        worker = self._workers.pop(key, None)
        if worker is not None and worker.task is not None:
            worker.task.cancel()

    async def stop(self) -> None:
        tasks = [w.task for w in self._workers.values() if w.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._workers.clear()

    def _start(
        self, key: tuple[str, str, str], container: Mapping[str, Any], status: ContainerState
    ) -> None:
        uid, name, kind = key
        worker = _Worker(kind, uid, name, status.id, status.started_at / 1e9)
        worker.task = asyncio.create_task(
            self._run(worker, dict(container)), name=f"probe-{kind}-{uid[:8]}-{name}"
        )
        self._workers[key] = worker

    def _results(self, kind: str) -> dict[str, Any]:
        if kind == LIVENESS:
            return self.liveness
        if kind == READINESS:
            return self.readiness
        return self.startup

    def _set(self, worker: _Worker, result: str) -> None:
        results = self._results(worker.kind)
        value: Any = result == SUCCESS if worker.kind == READINESS else result
        if results.get(worker.container_id) != value:
            results[worker.container_id] = value
            self.on_change(worker.pod_uid)

    async def _run(self, worker: _Worker, container: dict[str, Any]) -> None:
        spec = _dict(container.get(KINDS[worker.kind]))
        period = max(1, int(spec.get("periodSeconds") or 10))
        timeout = max(1, int(spec.get("timeoutSeconds") or 1))
        initial_delay = int(spec.get("initialDelaySeconds") or 0)
        state = ProbeState(
            worker.kind,
            success_threshold=max(1, int(spec.get("successThreshold") or 1)),
            failure_threshold=max(1, int(spec.get("failureThreshold") or 3)),
        )
        seeded = self._results(worker.kind).get(worker.container_id)
        if worker.kind == READINESS and seeded is not None:
            state.result = SUCCESS if seeded else FAILURE
        elif worker.kind == STARTUP and seeded == SUCCESS:
            state.result = SUCCESS
        if worker.kind != STARTUP or state.result is not None:
            self._set(worker, state.result or FAILURE)
        # Spread probes of containers started together, as kubelet does after a restart.
        elapsed = time.time() - worker.started_at
        if elapsed > period:
            await asyncio.sleep(random.uniform(0, period))
        try:
            while True:
                if not await self._probe_once(
                    worker, container, spec, state, timeout, initial_delay
                ):
                    return
                await asyncio.sleep(period)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception(
                "probe worker %s/%s %s failed", worker.pod_uid, worker.container_name, worker.kind
            )

    async def _probe_once(
        self,
        worker: _Worker,
        container: dict[str, Any],
        spec: dict[str, Any],
        state: ProbeState,
        timeout: int,
        initial_delay: int,
    ) -> bool:
        """One round; False when the worker should stop."""
        if worker.kind in (LIVENESS, STARTUP) and state.result == FAILURE:
            return True  # on hold: the container is being restarted
        started = self.startup.get(worker.container_id) == SUCCESS or not container.get(
            "startupProbe"
        )
        if worker.kind == STARTUP and started and state.result == SUCCESS:
            return False
        if worker.kind != STARTUP and not started:
            return True
        if time.time() - worker.started_at < initial_delay:
            return True
        pod = self._pods.get(worker.pod_uid)
        if pod is None:
            return False
        target = Target(
            self.cri, worker.container_id, self._pod_ips.get(worker.pod_uid, ""), container
        )
        outcome: HandlerResult = await run_action(spec, target, timeout)
        title = TITLES[worker.kind]
        if outcome.result == ERROR:
            self.record(
                pod, container, "Warning", "Unhealthy", f"{title} probe errored: {outcome.output}"
            )
            return True
        if outcome.result == WARNING:
            self.record(
                pod,
                container,
                "Warning",
                "ProbeWarning",
                f"{title} probe warning: {outcome.output}",
            )
        result = FAILURE if outcome.result == "failure" else SUCCESS
        if result == FAILURE:
            self.record(
                pod, container, "Warning", "Unhealthy", f"{title} probe failed: {outcome.output}"
            )
        state.observe(result)
        if state.result is not None:
            self._set(worker, state.result)
        return True
