"""The Job controller: pods run to completion, as kube-controller-manager's
job-controller (1.32) runs them.

A Job keeps up to `parallelism` pods active until `completions` of them succeeded (any
one, when completions is unset). Indexed Jobs give each pod a completion index (an
annotation and a label, `JOB_COMPLETION_INDEX` in every container, hostname
`<job>-<index>`) and count succeeded indexes. Failed pods count against
`backoffLimit`, and their replacements wait 10s·2^(failures-1), capped; a Job past its
backoff limit or its `activeDeadlineSeconds` fails. Suspending deletes the active pods.

Pods are counted through the `batch.kubernetes.io/job-tracking` finalizer: a finished
pod's uid first goes to `status.uncountedTerminatedPods`, then its finalizer is removed,
then it moves into the `succeeded` / `failed` counters, so no pod is counted twice or
lost even if the pod is deleted right after finishing. A Job that met its success
criteria, or is to fail, first gets the interim SuccessCriteriaMet / FailureTarget
condition; Complete / Failed follow once no pod is left terminating.
"""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from timonel.api.errors import StatusError
from timonel.api.objects import Object, object_key
from timonel.client.resources import JOBS, PODS
from timonel.client.rest import STRATEGIC_MERGE_PATCH
from timonel.controllers.base import Controller, Requeue
from timonel.controllers.expectations import Expectations
from timonel.controllers.manager import ControllerContext
from timonel.controllers.ownership import (
    ControllerRefManager,
    cached_controller,
    controller_of,
    controller_reference,
    recheck_owner,
)
from timonel.controllers.pods import is_active, is_ready, meta, ready_since, timestamp
from timonel.controllers.workloads import (
    in_slow_start_batches,
    namespace_terminating,
    pod_from_template,
    selector_matches,
    with_kind,
)
from timonel.util.clock import clock_option

API_VERSION = "batch/v1"
KIND = "Job"
COMPONENT = "job-controller"
CONTROLLER_NAME = "kubernetes.io/job-controller"
TRACKING_FINALIZER = "batch.kubernetes.io/job-tracking"
COMPLETION_INDEX_KEY = "batch.kubernetes.io/job-completion-index"
COMPLETION_INDEX_ENV = "JOB_COMPLETION_INDEX"
DEFAULT_POD_FAILURE_BACKOFF = 10.0
# kube 1.32's MaxJobPodFailureBackOff (the documentation's "six minutes" is older).
MAX_POD_FAILURE_BACKOFF = 600.0
MAX_UNCOUNTED_PODS = 500
MAX_POD_CREATE_DELETE_PER_SYNC = 500
# Pod events wake a Job up after this long, so that bursts of them make one sync.
SYNC_BATCH_PERIOD = 1.0
MAX_GENERATED_NAME_LENGTH = 58
UNKNOWN_INDEX = -1
_INDEX = re.compile(r"^[0-9]+$")

COMPLETE = "Complete"
FAILED = "Failed"
SUSPENDED = "Suspended"
FAILURE_TARGET = "FailureTarget"
SUCCESS_CRITERIA_MET = "SuccessCriteriaMet"
REASON_BACKOFF_LIMIT = "BackoffLimitExceeded"
MESSAGE_BACKOFF_LIMIT = "Job has reached the specified backoff limit"
REASON_DEADLINE = "DeadlineExceeded"
MESSAGE_DEADLINE = "Job was active longer than specified deadline"
REASON_COMPLETIONS_REACHED = "CompletionsReached"
MESSAGE_COMPLETIONS_REACHED = "Reached expected number of succeeded pods"


# -- reading a Job and its pods -------------------------------------------------------------


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def spec_of(job: Object) -> dict[str, Any]:
    spec = job.get("spec")
    return spec if isinstance(spec, dict) else {}


def is_indexed(job: Object) -> bool:
    return spec_of(job).get("completionMode") == "Indexed"


def completions(job: Object) -> int | None:
    return _int(spec_of(job).get("completions"))


def parallelism(job: Object) -> int:
    value = _int(spec_of(job).get("parallelism"))
    return 1 if value is None else value


def backoff_limit(job: Object) -> int:
    value = _int(spec_of(job).get("backoffLimit"))
    return 6 if value is None else value


def is_suspended(job: Object) -> bool:
    return spec_of(job).get("suspend") is True


def find_condition(job: Object, condition_type: str) -> dict[str, Any] | None:
    for condition in (job.get("status") or {}).get("conditions") or []:
        if isinstance(condition, dict) and condition.get("type") == condition_type:
            return condition
    return None


def condition_true(job: Object, condition_type: str) -> bool:
    condition = find_condition(job, condition_type)
    return condition is not None and condition.get("status") == "True"


def is_finished(job: Object) -> bool:
    """IsJobFinished: Complete or Failed is true."""
    return condition_true(job, COMPLETE) or condition_true(job, FAILED)


def finish_time(job: Object) -> datetime | None:
    """When the Job finished: the transition time of its Complete or Failed condition."""
    for condition_type in (COMPLETE, FAILED):
        condition = find_condition(job, condition_type)
        if condition is not None and condition.get("status") == "True":
            return timestamp(condition.get("lastTransitionTime"))
    return None


def completion_index(pod: Object) -> int:
    """The pod's completion index annotation, UNKNOWN_INDEX when absent or unreadable."""
    value = (meta(pod).get("annotations") or {}).get(COMPLETION_INDEX_KEY)
    if not isinstance(value, str) or not _INDEX.match(value):
        return UNKNOWN_INDEX
    return int(value)


def has_tracking_finalizer(pod: Object) -> bool:
    return TRACKING_FINALIZER in (meta(pod).get("finalizers") or [])


def only_replace_failed_pods(job: Object) -> bool:
    spec = spec_of(job)
    return spec.get("podReplacementPolicy") == "Failed" or spec.get("podFailurePolicy") is not None


def is_pod_failed(pod: Object, job: Object) -> bool:
    """isPodFailed: failed, or (unless only failed pods are replaced) deleted before it
    could succeed."""
    phase = (pod.get("status") or {}).get("phase")
    if phase == "Failed":
        return True
    if only_replace_failed_pods(job):
        return False
    return bool(meta(pod).get("deletionTimestamp")) and phase != "Succeeded"


def is_terminating(pod: Object) -> bool:
    """controller.CountTerminatingPods counts these."""
    return bool(meta(pod).get("deletionTimestamp")) and (pod.get("status") or {}).get(
        "phase"
    ) not in (
        "Succeeded",
        "Failed",
    )


def pod_finish_time(pod: Object) -> datetime:
    """getFinishedTime: when the last container terminated, else when the pod stopped
    being ready, else its deletion, else its creation."""
    status = pod.get("status") or {}
    latest: datetime | None = None
    statuses = [s for s in status.get("containerStatuses") or [] if isinstance(s, dict)]
    for container in statuses:
        finished = timestamp(
            ((container.get("state") or {}).get("terminated") or {}).get("finishedAt")
        )
        if finished is None:
            latest = None
            break
        latest = finished if latest is None or finished > latest else latest
    if latest is not None:
        return latest
    for condition in status.get("conditions") or []:
        if (
            isinstance(condition, dict)
            and condition.get("type") == "Ready"
            and condition.get("status") == "False"
        ):
            changed = timestamp(condition.get("lastTransitionTime"))
            if changed is not None:
                return changed
    deleted = timestamp(meta(pod).get("deletionTimestamp"))
    if deleted is not None:
        return deleted
    return timestamp(meta(pod).get("creationTimestamp")) or datetime.min.replace(tzinfo=UTC)


# -- completed indexes ------------------------------------------------------------------

Interval = tuple[int, int]


def parse_indexes(text: str, limit: int) -> list[Interval]:
    """parseIndexesFromString: "1,3-5,7" as intervals, dropping indexes >= limit."""
    intervals: list[Interval] = []
    for part in (text or "").split(","):
        if not part:
            continue
        first_text, _, last_text = part.partition("-")
        try:
            first = int(first_text)
            last = int(last_text) if last_text else first
        except ValueError:
            continue
        if first >= limit:
            break
        intervals.append((first, min(last, limit - 1)))
    return intervals


def format_indexes(intervals: list[Interval]) -> str:
    """orderedIntervals.String: a run of two is written "3,4", longer runs "3-5"."""
    parts: list[str] = []
    for first, last in intervals:
        if last == first:
            parts.append(str(first))
        elif last == first + 1:
            parts.append(f"{first},{last}")
        else:
            parts.append(f"{first}-{last}")
    return ",".join(parts)


def with_indexes(intervals: list[Interval], indexes: Iterable[int]) -> list[Interval]:
    """The union of the intervals and the indexes, as sorted, merged intervals."""
    points = sorted(set(indexes))
    merged: list[Interval] = []
    for first, last in sorted([*intervals, *((i, i) for i in points)]):
        if merged and first <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], last))
        else:
            merged.append((first, last))
    return merged


def count_indexes(intervals: list[Interval]) -> int:
    return sum(last - first + 1 for first, last in intervals)


def has_index(intervals: list[Interval], index: int) -> bool:
    return any(first <= index <= last for first, last in intervals)


def first_pending_indexes(
    succeeded: list[Interval], active_pods: list[Object], count: int, limit: int
) -> list[int]:
    """The lowest `count` indexes below `limit` that neither succeeded nor run."""
    taken = with_indexes(
        succeeded, (completion_index(p) for p in active_pods if completion_index(p) >= 0)
    )
    pending: list[int] = []
    candidate = 0
    while candidate < limit and len(pending) < count:
        if has_index(taken, candidate):
            candidate = next(last for first, last in taken if first <= candidate <= last) + 1
            continue
        pending.append(candidate)
        candidate += 1
    return pending


def succeeded_indexes(job: Object, pods: list[Object]) -> tuple[list[Interval], list[Interval]]:
    """calculateSucceededIndexes: (indexes already in status, those plus the indexes of
    succeeded pods not yet counted)."""
    limit = completions(job) or 0
    previous = parse_indexes(str((job.get("status") or {}).get("completedIndexes") or ""), limit)
    new = [
        completion_index(p)
        for p in pods
        if (p.get("status") or {}).get("phase") == "Succeeded"
        and 0 <= completion_index(p) < limit
        and has_tracking_finalizer(p)
    ]
    return previous, with_indexes(previous, new)


# -- pod failure backoff ----------------------------------------------------------------


@dataclass(frozen=True)
class BackoffRecord:
    """Pod failures since the last success, and when the latest of them failed."""

    failures_after_last_success: int = 0
    last_failure_time: datetime | None = None


def new_backoff_record(
    previous: BackoffRecord | None, new_succeeded: list[Object], new_failed: list[Object]
) -> BackoffRecord:
    """backoffStore.newBackoffRecord: update the record with newly finished pods."""
    record = previous or BackoffRecord()
    failed = sorted(new_failed, key=pod_finish_time)
    if not new_succeeded:
        if not failed:
            return record
        return BackoffRecord(
            record.failures_after_last_success + len(failed), pod_finish_time(failed[-1])
        )
    if not failed:
        return BackoffRecord()
    last_success = max(pod_finish_time(p) for p in new_succeeded)
    after = [p for p in failed if pod_finish_time(p) > last_success]
    if not after:
        return BackoffRecord()
    return BackoffRecord(len(after), pod_finish_time(after[-1]))


def failure_backoff(failures: int) -> float:
    """10s, 20s, 40s, ... capped, for the given number of consecutive failures."""
    if failures <= 0:
        return 0.0
    delay = DEFAULT_POD_FAILURE_BACKOFF
    for _ in range(1, failures):
        delay *= 2
        if delay >= MAX_POD_FAILURE_BACKOFF:
            return MAX_POD_FAILURE_BACKOFF
    return delay


def remaining_backoff(record: BackoffRecord, now: datetime) -> float:
    """How long until a replacement pod may be created."""
    if record.failures_after_last_success == 0 or record.last_failure_time is None:
        return 0.0
    delay = failure_backoff(record.failures_after_last_success)
    elapsed = (now - record.last_failure_time).total_seconds()
    return 0.0 if delay < elapsed else delay - elapsed


# -- decisions --------------------------------------------------------------------------


def wanted_active(job: Object, succeeded: int, active: int) -> int:
    """How many pods should be active: parallelism, but never more than the completions
    still missing; without completions, whatever runs once one pod succeeded."""
    wanted_completions = completions(job)
    if wanted_completions is None:
        return active if succeeded > 0 else parallelism(job)
    return max(min(wanted_completions - succeeded, parallelism(job)), 0)


_PHASE_RANK = {"Pending": 0, "Unknown": 1, "Running": 2}


def _removal_order(a: Object, b: Object) -> int:
    """controller.ActivePods: the pod to remove first sorts first (unscheduled, pending,
    not ready, ready for less time, restarted more, newer)."""
    a_node, b_node = (a.get("spec") or {}).get("nodeName"), (b.get("spec") or {}).get("nodeName")
    if a_node != b_node and (not a_node or not b_node):
        return -1 if not a_node else 1
    a_rank = _PHASE_RANK.get(str((a.get("status") or {}).get("phase")), 0)
    b_rank = _PHASE_RANK.get(str((b.get("status") or {}).get("phase")), 0)
    if a_rank != b_rank:
        return -1 if a_rank < b_rank else 1
    if is_ready(a) != is_ready(b):
        return -1 if not is_ready(a) else 1
    if is_ready(a) and is_ready(b):
        a_since, b_since = ready_since(a), ready_since(b)
        if a_since != b_since and a_since is not None and b_since is not None:
            return -1 if a_since > b_since else 1
    a_restarts, b_restarts = _restarts(a), _restarts(b)
    if a_restarts != b_restarts:
        return -1 if a_restarts > b_restarts else 1
    a_created, b_created = (
        timestamp(meta(a).get("creationTimestamp")),
        timestamp(meta(b).get("creationTimestamp")),
    )
    if a_created != b_created and a_created is not None and b_created is not None:
        return -1 if a_created > b_created else 1
    return 0


def _restarts(pod: Object) -> int:
    counts = [
        _int(s.get("restartCount")) or 0
        for s in (pod.get("status") or {}).get("containerStatuses") or []
        if isinstance(s, dict)
    ]
    return max(counts, default=0)


def removal_order(pods: list[Object]) -> list[Object]:
    return sorted(pods, key=functools.cmp_to_key(_removal_order))


def active_pods_for_removal(job: Object, active: list[Object], at_least: int) -> list[Object]:
    """activePodsForRemoval: for Indexed Jobs every pod with no or an out-of-range index
    and all but one pod of each repeated index; then the first pods in removal order
    until `at_least` are chosen."""
    remove: list[Object] = []
    left: list[Object] = list(active)
    if is_indexed(job):
        limit = completions(job) or 0
        left = []
        by_index: dict[int, list[Object]] = {}
        for pod in active:
            index = completion_index(pod)
            if index == UNKNOWN_INDEX or index >= limit:
                remove.append(pod)
            else:
                by_index.setdefault(index, []).append(pod)
        for index in sorted(by_index):
            pods = removal_order(by_index[index])
            remove.extend(pods[:-1])
            left.append(pods[-1])
    if len(remove) < at_least:
        remove.extend(removal_order(left)[: at_least - len(remove)])
    return remove


def past_backoff_limit_on_failure(job: Object, pods: list[Object]) -> bool:
    """With restartPolicy OnFailure, container restarts of running pods count too."""
    template_spec = (spec_of(job).get("template") or {}).get("spec") or {}
    if template_spec.get("restartPolicy") != "OnFailure":
        return False
    restarts = 0
    for pod in pods:
        status = pod.get("status") or {}
        if status.get("phase") not in ("Running", "Pending"):
            continue
        for group in ("initContainerStatuses", "containerStatuses"):
            restarts += sum(
                _int(s.get("restartCount")) or 0
                for s in status.get(group) or []
                if isinstance(s, dict)
            )
    limit = backoff_limit(job)
    return restarts > 0 if limit == 0 else restarts >= limit


def past_active_deadline(job: Object, now: datetime) -> bool:
    deadline = _int(spec_of(job).get("activeDeadlineSeconds"))
    started = timestamp((job.get("status") or {}).get("startTime"))
    if deadline is None or started is None or is_suspended(job):
        return False
    return (now - started).total_seconds() >= deadline


def rfc3339(moment: datetime) -> str:
    return (
        moment.strftime("%Y-%m-%dT%H:%M:%SZ")
        if moment.utcoffset() == timedelta(0)
        else moment.isoformat()
    )


def new_condition(
    condition_type: str, reason: str, message: str, now: datetime, status: str = "True"
) -> dict[str, Any]:
    stamp = rfc3339(now)
    condition: dict[str, Any] = {
        "type": condition_type,
        "status": status,
        "lastProbeTime": stamp,
        "lastTransitionTime": stamp,
    }
    if reason:
        condition["reason"] = reason
    if message:
        condition["message"] = message
    return condition


def ensure_condition(
    conditions: list[dict[str, Any]],
    condition_type: str,
    status: str,
    reason: str,
    message: str,
    now: datetime,
) -> bool:
    """ensureJobConditionStatus: set the condition (never adding a False one); True if
    the list changed."""
    for index, condition in enumerate(conditions):
        if condition.get("type") == condition_type:
            if (
                condition.get("status"),
                condition.get("reason", ""),
                condition.get("message", ""),
            ) != (
                status,
                reason,
                message,
            ):
                conditions[index] = new_condition(condition_type, reason, message, now, status)
                return True
            return False
    if status != "False":
        conditions.append(new_condition(condition_type, reason, message, now, status))
        return True
    return False


def indexed_generate_name(job_name: str, index: int) -> str:
    """podGenerateNameWithIndex: `<job>-<index>-`, the job name cut to fit."""
    appendix = f"-{index}-"
    prefix = job_name + appendix
    if len(prefix) > MAX_GENERATED_NAME_LENGTH:
        prefix = prefix[: MAX_GENERATED_NAME_LENGTH - len(appendix)] + appendix
    return prefix


def add_completion_index_env(template: Object) -> None:
    """addCompletionIndexEnvVariables: JOB_COMPLETION_INDEX from the downward API in
    every container and init container that does not set it."""
    spec = template.setdefault("spec", {})
    for group in ("initContainers", "containers"):
        for container in spec.get(group) or []:
            if not isinstance(container, dict):
                continue
            env = container.get("env")
            if not isinstance(env, list):
                env = []
            if any(isinstance(e, dict) and e.get("name") == COMPLETION_INDEX_ENV for e in env):
                continue
            env.append(
                {
                    "name": COMPLETION_INDEX_ENV,
                    "valueFrom": {
                        "fieldRef": {"fieldPath": f"metadata.labels['{COMPLETION_INDEX_KEY}']"}
                    },
                }
            )
            container["env"] = env


def job_pod(job: Object, index: int | None) -> Object:
    """A pod of the Job's template: tracked by the finalizer, and for an index, named,
    annotated, labelled and hostnamed after it."""
    template = copy.deepcopy(spec_of(job).get("template") or {})
    template_meta = template.setdefault("metadata", {})
    if is_indexed(job):
        add_completion_index_env(template)
    finalizers = list(template_meta.get("finalizers") or [])
    if TRACKING_FINALIZER not in finalizers:
        finalizers.append(TRACKING_FINALIZER)
    template_meta["finalizers"] = finalizers
    job_name = str(meta(job).get("name", ""))
    generate_name: str | None = None
    if index is not None:
        template_meta["annotations"] = {
            **(template_meta.get("annotations") or {}),
            COMPLETION_INDEX_KEY: str(index),
        }
        template_meta["labels"] = {
            **(template_meta.get("labels") or {}),
            COMPLETION_INDEX_KEY: str(index),
        }
        template.setdefault("spec", {})["hostname"] = f"{job_name}-{index}"
        generate_name = indexed_generate_name(job_name, index)
    return pod_from_template(
        template, job, controller_reference(job, API_VERSION, KIND), generate_name=generate_name
    )


# -- the controller ---------------------------------------------------------------------


# Pods whose finalizer must go although no unfinished Job of theirs syncs them (orphans,
# pods of finished or deleted Jobs) share the work queue under keys with this prefix.
ORPHAN_PREFIX = "orphan-pod:"


@dataclass
class _SyncState:
    """What one sync of a Job works out (kube's syncJobCtx)."""

    job: Object
    pods: list[Object]
    active_pods: list[Object]
    ready: int
    terminating: int
    succeeded: int
    failed: int
    uncounted_succeeded: set[str]
    uncounted_failed: set[str]
    expected_removals: set[str]
    backoff: BackoffRecord
    finished: dict[str, Any] | None = None
    previous_indexes: list[Interval] = field(default_factory=list)
    indexes: list[Interval] = field(default_factory=list)


def _status(job: Object) -> dict[str, Any]:
    status = job.get("status")
    if not isinstance(status, dict):
        status = {}
        job["status"] = status
    return status


def _uncounted(status: dict[str, Any]) -> dict[str, list[str]]:
    uncounted = status.get("uncountedTerminatedPods")
    if not isinstance(uncounted, dict):
        uncounted = {}
        status["uncountedTerminatedPods"] = uncounted
    for group in ("succeeded", "failed"):
        if not isinstance(uncounted.get(group), list):
            uncounted[group] = []
    return uncounted


def count_removed_finalizers(status: dict[str, Any], with_finalizer: set[str]) -> bool:
    """cleanUncountedPodsWithoutFinalizers: uncounted pods whose finalizer is gone move
    into the counters. True if anything moved."""
    uncounted = _uncounted(status)
    changed = False
    for group in ("succeeded", "failed"):
        keep = [uid for uid in uncounted[group] if uid in with_finalizer]
        if len(keep) != len(uncounted[group]):
            status[group] = (_int(status.get(group)) or 0) + len(uncounted[group]) - len(keep)
            uncounted[group] = keep
            changed = True
    return changed


def clean_status(status: dict[str, Any]) -> dict[str, Any]:
    """The status as kube serialises it: zero counters and empty lists left out."""
    cleaned = dict(status)
    for name in ("active", "succeeded", "failed"):
        if not cleaned.get(name):
            cleaned.pop(name, None)
    if not cleaned.get("completedIndexes"):
        cleaned.pop("completedIndexes", None)
    uncounted = cleaned.get("uncountedTerminatedPods")
    if isinstance(uncounted, dict):
        cleaned["uncountedTerminatedPods"] = {k: v for k, v in uncounted.items() if v}
    if not cleaned.get("conditions"):
        cleaned.pop("conditions", None)
    return cleaned


class JobController(Controller):
    name: ClassVar[str] = COMPONENT
    # kube-controller-manager's default --concurrent-*-syncs.
    workers: ClassVar[int] = 5

    def __init__(self, context: ControllerContext) -> None:
        self.client = context.client
        self.recorder = context.recorder(COMPONENT)
        self.clock = clock_option(context.options)
        batch_period = context.options.get("job_sync_batch_period", SYNC_BATCH_PERIOD)
        self.batch_period = (
            float(batch_period) if isinstance(batch_period, (int, float)) else SYNC_BATCH_PERIOD
        )
        self.jobs = context.informers.informer(JOBS)
        self.pods = context.informers.informer(PODS)
        super().__init__([self.jobs, self.pods])
        self.expectations = Expectations()
        # Per Job, the uids of pods whose finalizer removal is asked for but not yet seen.
        self.finalizer_expectations: dict[str, set[str]] = {}
        self.backoff_records: dict[str, BackoffRecord] = {}
        self.jobs.add_handlers(
            on_add=self._enqueue_now, on_update=self._on_job_update, on_delete=self._on_job_delete
        )
        self.pods.add_handlers(
            on_add=self._on_pod_add, on_update=self._on_pod_update, on_delete=self._on_pod_delete
        )

    # -- handlers: only keys ----------------------------------------------------------

    def _enqueue_now(self, job: Object) -> None:
        self.queue.add(object_key(job))

    def _enqueue_batched(self, job: Object) -> None:
        self.queue.add_after(object_key(job), self.batch_period)

    def _enqueue_orphan(self, pod: Object) -> None:
        self.queue.add(ORPHAN_PREFIX + object_key(pod))

    def _owner(self, obj: Object) -> Object | None:
        return cached_controller(obj, KIND, self.jobs)

    def _selecting(self, pod: Object) -> list[Object]:
        return [
            job
            for job in self.jobs.indexer.by_index("namespace", meta(pod).get("namespace", ""))
            if selector_matches(spec_of(job).get("selector"), meta(pod).get("labels"))
        ]

    def _removal_observed(self, job: Object, pod: Object) -> None:
        uids = self.finalizer_expectations.get(object_key(job))
        if uids is not None:
            uids.discard(str(meta(pod).get("uid", "")))

    def _on_job_update(self, old: Object, new: Object) -> None:
        if meta(old).get("generation") == meta(new).get("generation"):
            self._enqueue_batched(new)
        else:
            self._enqueue_now(new)
        if is_finished(new):
            self._cleanup_finalizers(new)
        started = timestamp((new.get("status") or {}).get("startTime"))
        deadline = _int(spec_of(new).get("activeDeadlineSeconds"))
        if (
            started is not None
            and deadline is not None
            and deadline != _int(spec_of(old).get("activeDeadlineSeconds"))
        ):
            remaining = deadline - (self.clock.now() - started).total_seconds()
            self.queue.add_after(object_key(new), self.clock.delay(remaining))

    def _on_job_delete(self, job: Object) -> None:
        self._enqueue_now(job)
        self._cleanup_finalizers(job)

    def _cleanup_finalizers(self, job: Object) -> None:
        """Pods of a finished or deleted Job still holding the finalizer lose it."""
        for pod in self.pods.indexer.by_index("namespace", meta(job).get("namespace", "")):
            reference = controller_of(pod)
            if (
                reference is not None
                and reference.get("uid") == meta(job).get("uid")
                and has_tracking_finalizer(pod)
            ):
                self._enqueue_orphan(pod)

    def _on_pod_add(self, pod: Object) -> None:
        if meta(pod).get("deletionTimestamp"):
            self._on_pod_gone(pod, final=False)
            return
        if controller_of(pod) is not None:
            job = self._owner(pod)
            if job is not None:
                self.expectations.creation_observed(object_key(job))
                self._enqueue_batched(job)
            return
        if has_tracking_finalizer(pod):
            self._enqueue_orphan(pod)
        for job in self._selecting(pod):
            self._enqueue_batched(job)

    def _on_pod_update(self, old: Object, new: Object) -> None:
        if meta(new).get("deletionTimestamp"):
            self._on_pod_gone(new, final=False)
            return
        finalizer_removed = not has_tracking_finalizer(new)
        old_reference, new_reference = controller_of(old), controller_of(new)
        if old_reference != new_reference and old_reference is not None:
            previous = self._owner(old)
            if previous is not None:
                if finalizer_removed:
                    self._removal_observed(previous, new)
                self._enqueue_batched(previous)
        if new_reference is not None:
            job = self._owner(new)
            if job is None:
                return
            if finalizer_removed:
                self._removal_observed(job, new)
            self._enqueue_batched(job)
            return
        if has_tracking_finalizer(new):
            self._enqueue_orphan(new)
        if meta(old).get("labels") != meta(new).get("labels") or old_reference != new_reference:
            for job in self._selecting(new):
                self._enqueue_batched(job)

    def _on_pod_delete(self, pod: Object) -> None:
        self._on_pod_gone(pod, final=True)

    def _on_pod_gone(self, pod: Object, *, final: bool) -> None:
        if controller_of(pod) is None:
            if has_tracking_finalizer(pod):
                self._enqueue_orphan(pod)
            return
        job = self._owner(pod)
        if job is None or is_finished(job):
            if has_tracking_finalizer(pod):
                self._enqueue_orphan(pod)
            return
        self.expectations.deletion_observed(object_key(job), object_key(pod))
        if final or not has_tracking_finalizer(pod):
            self._removal_observed(job, pod)
        self._enqueue_batched(job)

    # -- orphan pods --------------------------------------------------------------------

    async def _sync_orphan(self, pod_key: str) -> None:
        """syncOrphanPod: drop the finalizer of a pod no unfinished Job owns."""
        pod = self.pods.get(pod_key)
        if pod is None or not has_tracking_finalizer(pod):
            return
        reference = controller_of(pod)
        if reference is not None:
            if reference.get("kind") != KIND or reference.get("apiVersion") != API_VERSION:
                return
            job = self._owner(pod)
            if job is not None and spec_of(job).get("managedBy") not in (None, CONTROLLER_NAME):
                return
            if job is not None and not is_finished(job):
                return
        await self._remove_finalizer(pod)

    async def _remove_finalizer(self, pod: Object) -> None:
        patch = {"metadata": {"$deleteFromPrimitiveList/finalizers": [TRACKING_FINALIZER]}}
        try:
            await self.client.patch(
                PODS,
                str(meta(pod)["name"]),
                patch,
                str(meta(pod).get("namespace", "")),
                patch_type=STRATEGIC_MERGE_PATCH,
            )
        except StatusError as error:
            if error.code != 404:
                raise

    # -- sync ---------------------------------------------------------------------------

    async def sync(self, key: str) -> None:
        if key.startswith(ORPHAN_PREFIX):
            await self._sync_orphan(key.removeprefix(ORPHAN_PREFIX))
            return
        shared = self.jobs.get(key)
        if shared is None:
            self.expectations.delete(key)
            self.finalizer_expectations.pop(key, None)
            self.backoff_records.pop(key, None)
            return
        if spec_of(shared).get("managedBy") not in (None, CONTROLLER_NAME):
            return
        job = with_kind(copy.deepcopy(shared), API_VERSION, KIND)
        if is_finished(job):
            self.backoff_records.pop(key, None)
            return
        if spec_of(job).get("completionMode") not in (None, "NonIndexed", "Indexed"):
            self.recorder.event(
                job,
                "Warning",
                "UnknownCompletionMode",
                "Skipped Job sync because completion mode is unknown",
            )
            return
        status = _status(job)
        uncounted = _uncounted(status)
        satisfied = self.expectations.satisfied(key)
        pods = await self._claimed_pods(job)
        active_pods = [p for p in pods if is_active(p)]
        expected_removals = set(self.finalizer_expectations.get(key, set()))
        state = _SyncState(
            job=job,
            pods=pods,
            active_pods=active_pods,
            ready=sum(1 for p in active_pods if is_ready(p)),
            terminating=sum(1 for p in pods if is_terminating(p)),
            succeeded=0,
            failed=0,
            uncounted_succeeded=set(uncounted["succeeded"]),
            uncounted_failed=set(uncounted["failed"]),
            expected_removals=expected_removals,
            backoff=BackoffRecord(),
        )
        active = len(active_pods)
        new_succeeded, new_failed = self._new_finished_pods(state)
        state.succeeded = (
            (_int(status.get("succeeded")) or 0)
            + len(new_succeeded)
            + len(state.uncounted_succeeded)
        )
        state.failed = (
            (_int(status.get("failed")) or 0) + len(new_failed) + len(state.uncounted_failed)
        )
        now = self.clock.now()
        if status.get("startTime") is None and not is_suspended(job):
            status["startTime"] = rfc3339(now)
        state.backoff = new_backoff_record(self.backoff_records.get(key), new_succeeded, new_failed)
        requeue_after: float | None = None

        criteria = find_condition(job, SUCCESS_CRITERIA_MET)
        if criteria is not None and criteria.get("status") == "True":
            state.finished = criteria
        else:
            target = find_condition(job, FAILURE_TARGET)
            if target is not None and target.get("status") == "True":
                state.finished = new_condition(
                    FAILED, target.get("reason", ""), target.get("message", ""), now
                )
        if state.finished is None:
            if state.failed > backoff_limit(job) or past_backoff_limit_on_failure(job, pods):
                state.finished = new_condition(
                    FAILURE_TARGET, REASON_BACKOFF_LIMIT, MESSAGE_BACKOFF_LIMIT, now
                )
            elif past_active_deadline(job, now):
                state.finished = new_condition(
                    FAILURE_TARGET, REASON_DEADLINE, MESSAGE_DEADLINE, now
                )
            elif _int(spec_of(job).get("activeDeadlineSeconds")) is not None and not is_suspended(
                job
            ):
                started = timestamp(status.get("startTime")) or now
                remaining = _int(spec_of(job)["activeDeadlineSeconds"]) or 0
                requeue_after = self.clock.delay(remaining - (now - started).total_seconds())
        if is_indexed(job):
            state.previous_indexes, state.indexes = succeeded_indexes(job, pods)
            state.succeeded = count_indexes(state.indexes)

        suspend_changed = False
        manage_error: Exception | None = None
        if state.finished is not None:
            deleted_ready, deleted, manage_error = await self._delete_active_pods(
                job, state.active_pods
            )
            if deleted != active or not satisfied:
                # Pods may be left to delete, or not in the informer yet: not finished yet.
                state.finished = None
            active -= deleted
            state.terminating += deleted
            state.ready -= deleted_ready
        else:
            manage_called = False
            if satisfied and not meta(job).get("deletionTimestamp"):
                try:
                    active, wait = await self._manage(key, state)
                except Exception as error:
                    active, wait = len(state.active_pods), None
                    manage_error = error
                if wait is not None:
                    requeue_after = wait if requeue_after is None else min(requeue_after, wait)
                manage_called = True
            wanted = completions(job)
            complete = (
                state.succeeded > 0 if wanted is None else state.succeeded >= wanted
            ) and active == 0
            if complete:
                state.finished = new_condition(
                    SUCCESS_CRITERIA_MET,
                    REASON_COMPLETIONS_REACHED,
                    MESSAGE_COMPLETIONS_REACHED,
                    now,
                )
            elif manage_called:
                conditions = status.setdefault("conditions", [])
                if is_suspended(job):
                    if ensure_condition(
                        conditions, SUSPENDED, "True", "JobSuspended", "Job suspended", now
                    ):
                        suspend_changed = True
                        self.recorder.event(job, "Normal", "Suspended", "Job suspended")
                elif ensure_condition(
                    conditions, SUSPENDED, "False", "JobResumed", "Job resumed", now
                ):
                    suspend_changed = True
                    self.recorder.event(job, "Normal", "Resumed", "Job resumed")
                    # The deadline counts from the resumption.
                    status["startTime"] = rfc3339(now)

        needs_update = (
            suspend_changed
            or active != (_int(status.get("active")) or 0)
            or state.ready != status.get("ready")
            or state.terminating != status.get("terminating")
        )
        status["active"] = active
        status["ready"] = state.ready
        status["terminating"] = state.terminating
        await self._track_status(key, state, needs_update, now)
        if manage_error is not None:
            raise manage_error
        if requeue_after is not None:
            raise Requeue(max(requeue_after, 0.0))

    def _new_finished_pods(self, state: _SyncState) -> tuple[list[Object], list[Object]]:
        """getNewFinishedPods: finished pods still holding the finalizer and not yet in
        the uncounted lists."""
        job = state.job
        limit = completions(job) or 0

        def candidates(uncounted: set[str]) -> list[Object]:
            found = []
            for pod in state.pods:
                uid = str(meta(pod).get("uid", ""))
                if (
                    not has_tracking_finalizer(pod)
                    or uid in uncounted
                    or uid in state.expected_removals
                ):
                    continue
                if is_indexed(job) and not 0 <= completion_index(pod) < limit:
                    continue
                found.append(pod)
            return found

        succeeded = [
            p
            for p in candidates(state.uncounted_succeeded)
            if (p.get("status") or {}).get("phase") == "Succeeded"
        ]
        failed = [p for p in candidates(state.uncounted_failed) if is_pod_failed(p, job)]
        return succeeded, failed

    async def _claimed_pods(self, job: Object) -> list[Object]:
        selector = spec_of(job).get("selector")
        manager = ControllerRefManager(
            self.client,
            PODS,
            job,
            controller_reference(job, API_VERSION, KIND),
            recheck_owner(self.client, JOBS, job),
        )
        candidates = self.pods.indexer.by_index("namespace", meta(job).get("namespace", ""))
        return await manager.claim(
            candidates, lambda pod: selector_matches(selector, meta(pod).get("labels"))
        )

    async def _manage(self, key: str, state: _SyncState) -> tuple[int, float | None]:
        """manageJob: (active pods after this round, seconds until a replacement may be
        created when in backoff)."""
        job = state.job
        active = len(state.active_pods)
        if is_suspended(job):
            doomed = active_pods_for_removal(job, state.active_pods, active)
            self.expectations.expect_deletions(key, [object_key(p) for p in doomed])
            removed_ready, removed, error = await self._delete_job_pods(key, job, doomed)
            state.terminating += removed
            state.ready -= removed_ready
            if error is not None:
                raise error
            return active - removed, None
        wanted = wanted_active(job, state.succeeded, active)
        doomed = active_pods_for_removal(job, state.active_pods, max(active - wanted, 0))[
            :MAX_POD_CREATE_DELETE_PER_SYNC
        ]
        if doomed:
            self.expectations.expect_deletions(key, [object_key(p) for p in doomed])
            removed_ready, removed, error = await self._delete_job_pods(key, job, doomed)
            state.terminating += removed
            state.ready -= removed_ready
            if error is not None:
                raise error
            return active - removed, None
        terminating = state.terminating if only_replace_failed_pods(job) else 0
        diff = min(wanted - terminating - active, MAX_POD_CREATE_DELETE_PER_SYNC)
        if diff <= 0:
            return active, None
        remaining = remaining_backoff(state.backoff, self.clock.now())
        if remaining > 0:
            return active, max(self.clock.delay(remaining), self.batch_period)
        indexes: list[int | None] = [None] * diff
        if is_indexed(job):
            indexes = list(
                first_pending_indexes(state.indexes, state.active_pods, diff, completions(job) or 0)
            )
            diff = len(indexes)
        if diff <= 0:
            return active, None
        self.expectations.expect_creations(key, diff)
        namespace = str(meta(job).get("namespace", ""))
        failures = 0

        async def create(position: int) -> None:
            nonlocal failures
            pod = job_pod(job, indexes[position])
            try:
                created = await self.client.create(PODS, pod, namespace)
            except Exception as error:
                if namespace_terminating(error):
                    return
                self.expectations.creation_observed(key)
                failures += 1
                self.recorder.event(job, "Warning", "FailedCreate", f"Error creating: {error}")
                raise
            self.recorder.event(
                job, "Normal", "SuccessfulCreate", f"Created pod: {meta(created).get('name', '')}"
            )

        result = await in_slow_start_batches(diff, create)
        for _ in range(result.skipped):
            self.expectations.creation_observed(key)
        active += diff - failures - result.skipped
        if result.errors:
            first = result.errors[0]
            raise first if isinstance(first, Exception) else RuntimeError(str(first))
        return active, None

    async def _delete_job_pods(
        self, key: str, job: Object, pods: list[Object]
    ) -> tuple[int, int, Exception | None]:
        """deleteJobPods: finalizer off, then delete; (ready removed, removed, error)."""
        removed_ready = removed = 0
        failure: Exception | None = None
        for pod in pods:
            try:
                if has_tracking_finalizer(pod):
                    await self._remove_finalizer(pod)
                await self._delete_pod(job, pod)
            except StatusError as error:
                self.expectations.deletion_observed(key, object_key(pod))
                if error.code != 404:
                    failure = failure or error
                    continue
            removed += 1
            if is_ready(pod):
                removed_ready += 1
        return removed_ready, removed, failure

    async def _delete_active_pods(
        self, job: Object, pods: list[Object]
    ) -> tuple[int, int, Exception | None]:
        """deleteActivePods: delete, keeping finalizers (the tracking removes them)."""
        removed_ready = removed = 0
        failure: Exception | None = None
        for pod in pods:
            try:
                await self._delete_pod(job, pod)
            except StatusError as error:
                if error.code != 404:
                    failure = failure or error
                    continue
            removed += 1
            if is_ready(pod):
                removed_ready += 1
        return removed_ready, removed, failure

    async def _delete_pod(self, job: Object, pod: Object) -> None:
        name = str(meta(pod)["name"])
        try:
            await self.client.delete(PODS, name, str(meta(pod).get("namespace", "")))
        except StatusError as error:
            if error.code != 404:
                self.recorder.event(job, "Warning", "FailedDelete", f"Error deleting: {error}")
            raise
        self.recorder.event(job, "Normal", "SuccessfulDelete", f"Deleted pod: {name}")

    # -- counting pods through their finalizers -----------------------------------------

    async def _track_status(
        self, key: str, state: _SyncState, needs_flush: bool, now: datetime
    ) -> None:
        """trackJobStatusAndRemoveFinalizers."""
        job = state.job
        indexed = is_indexed(job)
        limit = completions(job) or 0
        pods = sorted(state.pods, key=completion_index) if indexed else state.pods
        with_finalizer = {
            str(meta(p).get("uid", ""))
            for p in pods
            if has_tracking_finalizer(p)
            and str(meta(p).get("uid", "")) not in state.expected_removals
        }
        status = _status(job)
        if count_removed_finalizers(status, with_finalizer):
            needs_flush = True
        uncounted = _uncounted(status)
        to_release: list[Object] = []
        new_indexes: list[int] = []
        reached_max = False
        finished = state.finished
        for pod in pods:
            uid = str(meta(pod).get("uid", ""))
            if not has_tracking_finalizer(pod) or uid in state.expected_removals:
                continue
            failed = is_pod_failed(pod, job)
            phase = (pod.get("status") or {}).get("phase")
            if not (
                meta(job).get("deletionTimestamp")
                or finished is not None
                or phase == "Succeeded"
                or failed
            ):
                continue
            to_release.append(pod)
            if phase == "Succeeded" and uid not in state.uncounted_failed:
                if indexed:
                    index = completion_index(pod)
                    if 0 <= index < limit and not has_index(state.previous_indexes, index):
                        new_indexes.append(index)
                        needs_flush = True
                elif uid not in state.uncounted_succeeded:
                    uncounted["succeeded"].append(uid)
                    needs_flush = True
            elif failed or (finished is not None and finished.get("type") != SUCCESS_CRITERIA_MET):
                index = completion_index(pod)
                if uid not in state.uncounted_failed and (not indexed or 0 <= index < limit):
                    uncounted["failed"].append(uid)
                    needs_flush = True
            if (
                len(new_indexes) + len(uncounted["succeeded"]) + len(uncounted["failed"])
                >= MAX_UNCOUNTED_PODS
            ):
                reached_max = True
                break
        if indexed:
            state.indexes = with_indexes(state.indexes, new_indexes)
            text = format_indexes(state.indexes)
            if text != (status.get("completedIndexes") or ""):
                needs_flush = True
            status["succeeded"] = count_indexes(state.indexes)
            status["completedIndexes"] = text
        if finished is not None and finished.get("type") == FAILURE_TARGET:
            status.setdefault("conditions", []).append(finished)
            needs_flush = True
            finished = new_condition(
                FAILED, finished.get("reason", ""), finished.get("message", ""), now
            )
        elif finished is not None and finished.get("type") == SUCCESS_CRITERIA_MET:
            if not condition_true(job, SUCCESS_CRITERIA_MET):
                status.setdefault("conditions", []).append(finished)
                needs_flush = True
            finished = new_condition(
                COMPLETE, finished.get("reason", ""), finished.get("message", ""), now
            )

        if needs_flush:
            job = await self._write_status(job)
            self.backoff_records[key] = state.backoff
            needs_flush = False
        removal_error: Exception | None = None
        if to_release:
            released, removal_error = await self._release_pods(key, to_release)
            with_finalizer -= released
        status = _status(job)
        if count_removed_finalizers(status, with_finalizer):
            needs_flush = True
        if removal_error is not None:
            if needs_flush:
                await self._write_status(job)
            raise removal_error
        finishing = not reached_max and self._enact_finished(job, finished, state.terminating)
        if finishing or needs_flush:
            job = await self._write_status(job)
            if finishing and finished is not None:
                self._record_finished(job, finished)

    def _enact_finished(
        self, job: Object, finished: dict[str, Any] | None, terminating: int
    ) -> bool:
        """enactJobFinished: the Complete / Failed condition, once every pod is counted
        and none is still terminating."""
        if finished is None:
            return False
        status = _status(job)
        uncounted = _uncounted(status)
        if uncounted["succeeded"] or uncounted["failed"] or terminating > 0:
            return False
        conditions = status.setdefault("conditions", [])
        now = self.clock.now()
        ensure_condition(
            conditions,
            finished["type"],
            "True",
            finished.get("reason", ""),
            finished.get("message", ""),
            now,
        )
        if finished["type"] == COMPLETE:
            transition = next(c for c in conditions if c.get("type") == COMPLETE)
            status["completionTime"] = transition["lastTransitionTime"]
        return True

    def _record_finished(self, job: Object, finished: dict[str, Any]) -> None:
        typed = with_kind(job, API_VERSION, KIND)
        if finished["type"] == COMPLETE:
            wanted = completions(job)
            succeeded = _int(_status(job).get("succeeded")) or 0
            if wanted is not None and succeeded > wanted:
                self.recorder.event(
                    typed,
                    "Warning",
                    "TooManySucceededPods",
                    "Too many succeeded pods running after completion count reached",
                )
            self.recorder.event(typed, "Normal", "Completed", "Job completed")
        else:
            self.recorder.event(
                typed, "Warning", str(finished.get("reason", "")), str(finished.get("message", ""))
            )

    async def _release_pods(
        self, key: str, pods: list[Object]
    ) -> tuple[set[str], Exception | None]:
        """removeTrackingFinalizerFromPods: (uids whose finalizer is gone, first error)."""
        uids = {str(meta(p).get("uid", "")) for p in pods}
        self.finalizer_expectations.setdefault(key, set()).update(uids)
        released: set[str] = set()
        failure: Exception | None = None
        for pod in pods:
            uid = str(meta(pod).get("uid", ""))
            try:
                await self._remove_finalizer(pod)
            except StatusError as error:
                self.finalizer_expectations.get(key, set()).discard(uid)
                failure = failure or error
                continue
            released.add(uid)
        return released, failure

    async def _write_status(self, job: Object) -> Object:
        updated = dict(job)
        updated["status"] = clean_status(_status(job))
        written = await self.client.update_status(JOBS, updated)
        written = with_kind(written, API_VERSION, KIND)
        _uncounted(_status(written))
        return written
