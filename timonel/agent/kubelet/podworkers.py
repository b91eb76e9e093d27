"""One worker per pod, and the relister that wakes them (kubelet's pod workers and PLEG).

Each pod on the node has a `PodState` and an asyncio task that runs `PodSyncer.sync` for
it, one pass at a time. A pass is triggered by an event — the pod changed in the API
(informer), its containers changed in the runtime (the relister), a probe result changed,
a ConfigMap or Secret it uses changed — or by a timer: the delay the last pass asked for
(a backoff expiring) or the periodic resync. Triggers that arrive during a pass coalesce
into one more pass. Level-triggered: every pass reads the runtime afresh and does what the
difference calls for, so a missed or repeated trigger does no harm.

The relister lists sandboxes and containers every second (two CRI calls) and wakes the
workers of pods whose containers changed state; a pod the runtime has but the API does not
(deleted while the agent was down) gets a worker that removes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from timonel.agent.kubelet.podsync import PodState, PodSyncer
from timonel.agent.kubelet.runtimestate import RelistedPod, list_node_pods
from timonel.agent.kubelet.status import KUBELET_CONDITIONS
from timonel.agent.runtime.cri import CriClient, CriError
from timonel.api.errors import StatusError
from timonel.api.objects import Object

log = logging.getLogger(__name__)

RESYNC_PERIOD: Final = 30.0
RELIST_PERIOD: Final = 1.0
MAX_RETRY: Final = 30.0


def pod_uid(pod: Object) -> str:
    meta = pod.get("metadata")
    return str(meta.get("uid", "")) if isinstance(meta, dict) else ""


_VOLATILE_META: Final = ("resourceVersion", "managedFields", "generation")


def differs_beyond_status(old: Object, new: Object) -> bool:
    """Whether anything but the status (and bookkeeping metadata) changed."""
    if old.get("spec") != new.get("spec"):
        return True
    old_meta = {k: v for k, v in (old.get("metadata") or {}).items() if k not in _VOLATILE_META}
    new_meta = {k: v for k, v in (new.get("metadata") or {}).items() if k not in _VOLATILE_META}
    if old_meta != new_meta:
        return True
    # Conditions others own (readiness gates) feed the Ready condition.
    old_conditions = (old.get("status") or {}).get("conditions")
    new_conditions = (new.get("status") or {}).get("conditions")
    return _foreign(old_conditions) != _foreign(new_conditions)


def _foreign(conditions: object) -> list[object]:
    if not isinstance(conditions, list):
        return []
    return [
        c for c in conditions if isinstance(c, dict) and c.get("type") not in KUBELET_CONDITIONS
    ]


@dataclass
class _Worker:
    state: PodState
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None


@dataclass
class PodWorkers:
    syncer: PodSyncer
    resync_period: float = RESYNC_PERIOD
    _workers: dict[str, _Worker] = field(default_factory=dict)
    idle: asyncio.Event = field(default_factory=asyncio.Event)

    def __len__(self) -> int:
        return len(self._workers)

    def uids(self) -> list[str]:
        return list(self._workers)

    def state(self, uid: str) -> PodState | None:
        worker = self._workers.get(uid)
        return worker.state if worker is not None else None

    def update(self, pod: Object) -> None:
        """The pod as the API shows it now (added or changed). A change of its status alone
        (usually our own write) is remembered but triggers no sync, as in kubelet."""
        uid = pod_uid(pod)
        if not uid:
            return
        worker = self._workers.get(uid)
        if worker is None:
            worker = self._start(PodState(uid))
        previous = worker.state.pod
        worker.state.pod = pod
        worker.state.last_pod = pod
        if previous is None or differs_beyond_status(previous, pod):
            worker.wake.set()

    def remove(self, pod: Object) -> None:
        """The pod is gone from the API."""
        uid = pod_uid(pod)
        worker = self._workers.get(uid)
        if worker is None:
            worker = self._start(PodState(uid, last_pod=pod))
        worker.state.pod = None
        worker.wake.set()

    def orphan(self, uid: str) -> None:
        """The runtime has a pod the API does not: remove it."""
        if uid not in self._workers:
            self._start(PodState(uid)).wake.set()

    def wake(self, uid: str) -> None:
        worker = self._workers.get(uid)
        if worker is not None:
            worker.wake.set()

    def wake_all(self, predicate: Callable[[Object], bool]) -> None:
        for worker in self._workers.values():
            if worker.state.pod is not None and predicate(worker.state.pod):
                worker.wake.set()

    def _start(self, state: PodState) -> _Worker:
        worker = _Worker(state)
        worker.task = asyncio.create_task(self._run(worker), name=f"pod-worker-{state.uid[:8]}")
        self._workers[state.uid] = worker
        self.idle.clear()
        return worker

    async def _run(self, worker: _Worker) -> None:
        delay: float | None = 0.0
        failures = 0
        try:
            while True:
                timeout = self.resync_period if delay is None else delay
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(worker.wake.wait(), timeout)
                worker.wake.clear()
                try:
                    done, delay = await self.syncer.sync(worker.state)
                    failures = 0
                except (CriError, StatusError, OSError, TimeoutError) as error:
                    failures += 1
                    delay = min(MAX_RETRY, 0.5 * 2 ** min(failures, 8))
                    log.warning(
                        "syncing pod %s failed: %s; retrying in %.1f s",
                        worker.state.uid,
                        error,
                        delay,
                    )
                    continue
                except Exception:
                    failures += 1
                    delay = min(MAX_RETRY, 0.5 * 2 ** min(failures, 8))
                    log.exception(
                        "syncing pod %s failed; retrying in %.1f s", worker.state.uid, delay
                    )
                    continue
                if done and worker.state.pod is None and not worker.wake.is_set():
                    return
        finally:
            if self._workers.get(worker.state.uid) is worker:
                del self._workers[worker.state.uid]
            if not self._workers:
                self.idle.set()

    async def stop(self) -> None:
        tasks = [w.task for w in self._workers.values() if w.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._workers.clear()


async def relist_forever(
    cri: Callable[[], CriClient],
    node_name: str | None,
    workers: PodWorkers,
    known_to_api: Callable[[str], bool],
    *,
    period: float = RELIST_PERIOD,
) -> None:
    """Every `period`, wake the workers of pods whose sandboxes or containers changed, and
    give pods that only the runtime knows a worker that removes them."""
    previous: dict[str, RelistedPod] = {}
    while True:
        try:
            current = await list_node_pods(cri(), node_name)
        except CriError as error:
            log.debug("relisting the runtime failed: %s", error)
            await asyncio.sleep(period)
            continue
        for uid, pod in current.items():
            before = previous.get(uid)
            if before is not None and before.signature == pod.signature and uid in workers.uids():
                continue
            if uid in workers.uids():
                workers.wake(uid)
            elif not known_to_api(uid):
                log.info("removing pod %s/%s (%s): not in the API", pod.namespace, pod.name, uid)
                workers.orphan(uid)
        previous = current
        await asyncio.sleep(period)
