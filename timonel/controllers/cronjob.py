"""The CronJob controller: Jobs on a schedule, as kube-controller-manager's
cronjob-controller (v2) makes them.

At each sync the controller works out the most recent scheduled time not yet started
(since the last schedule, or the CronJob's creation, and no earlier than
startingDeadlineSeconds ago) and starts a Job for it, named
`<cronjob>-<scheduled time in minutes since the epoch>` so that the same time never
starts twice. concurrencyPolicy decides what happens while an earlier Job still runs
(Allow: start anyway, Forbid: skip, Replace: delete the running one first). Finished
Jobs beyond successfulJobsHistoryLimit / failedJobsHistoryLimit are deleted, oldest
first. Then the CronJob is looked at again just after its next scheduled time.

Schedules are read in `spec.timeZone`, or else in the controller's local time zone. The
clock is `options["clock"]` (see timonel.util.clock), so tests can run time faster.
"""

from __future__ import annotations

import copy
import functools
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from enum import Enum
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from timonel.api.errors import StatusError
from timonel.api.objects import Object, object_key
from timonel.client.resources import CRONJOBS, JOBS
from timonel.controllers.base import Controller, Requeue
from timonel.controllers.job import is_finished
from timonel.controllers.manager import ControllerContext
from timonel.controllers.ownership import cached_controller, controller_of, controller_reference
from timonel.controllers.pods import meta, timestamp
from timonel.controllers.workloads import namespace_terminating, with_kind
from timonel.kinds.batch.cron import CronError, Schedule, load_time_zone, parse_schedule
from timonel.util.clock import clock_option

API_VERSION = "batch/v1"
KIND = "CronJob"
COMPONENT = "cronjob-controller"
SCHEDULED_TIMESTAMP_ANNOTATION = "batch.kubernetes.io/cronjob-scheduled-timestamp"
# Look again this long after the next scheduled time, against clock skew.
NEXT_SCHEDULE_DELTA = timedelta(milliseconds=100)
TOO_MANY_MISSED = 100


class Missed(Enum):
    NONE = "none"
    FEW = "few"
    MANY = "many"


# -- time and schedules -------------------------------------------------------------------


def local_time_zone() -> tzinfo:
    """The process's time zone, as Go's time.Local: $TZ, else /etc/localtime, else UTC."""
    name = os.environ.get("TZ")
    if name is not None:
        try:
            return load_time_zone(name.lstrip(":"))
        except CronError:
            return UTC
    try:
        with open("/etc/localtime", "rb") as zone_file:
            return ZoneInfo.from_file(zone_file, key="localtime")
    except (OSError, ValueError):
        return UTC


def rfc3339(moment: datetime) -> str:
    """Go's time.RFC3339: "Z" for UTC, the numeric offset otherwise."""
    text = moment.replace(microsecond=0).isoformat()
    return text.removesuffix("+00:00") + "Z" if moment.utcoffset() == timedelta(0) else text


def format_schedule(cj: Object) -> str:
    """formatSchedule: the schedule prefixed with `TZ=<spec.timeZone>` when the zone is
    known (a TZ= in the schedule itself wins)."""
    spec = cj.get("spec") or {}
    schedule = str(spec.get("schedule") or "")
    zone = spec.get("timeZone")
    if "TZ" in schedule or zone is None:
        return schedule
    try:
        load_time_zone(str(zone))
    except CronError:
        return schedule
    return f"TZ={zone} {schedule}"


def most_recent_schedule_time(
    cj: Object, now: datetime, schedule: Schedule, *, include_starting_deadline: bool
) -> tuple[datetime, datetime | None, Missed]:
    """mostRecentScheduleTime: (where the search starts: the last schedule time or the
    creation, the latest scheduled time not after now or None, how many were missed).
    Raises CronError for a schedule whose consecutive times are less than a second
    apart (a date that never comes, like February 31st)."""
    spec = cj.get("spec") or {}
    status = cj.get("status") or {}
    earliest = (
        timestamp(status.get("lastScheduleTime"))
        or timestamp(meta(cj).get("creationTimestamp"))
        or now
    )
    earliest = earliest.astimezone(now.tzinfo)
    deadline = spec.get("startingDeadlineSeconds")
    if include_starting_deadline and isinstance(deadline, int) and not isinstance(deadline, bool):
        scheduling_deadline = now - timedelta(seconds=deadline)
        if scheduling_deadline > earliest:
            earliest = scheduling_deadline
    first = schedule.next_after(earliest)
    if first is None or now < first:
        return earliest, None, Missed.NONE
    second = schedule.next_after(first)
    if second is None or now < second:
        return earliest, first, Missed.NONE
    interval = round((second - first).total_seconds())
    if interval < 1:
        raise CronError("time difference between two schedules is less than 1 second")
    elapsed = int((now - first).total_seconds())
    missed_count = elapsed // interval + 1
    most_recent: datetime | None = None
    candidate = schedule.next_after(first + timedelta(seconds=(missed_count - 2) * interval))
    while candidate is not None and candidate <= now:
        most_recent = candidate
        candidate = schedule.next_after(candidate)
    missed = Missed.MANY if missed_count > TOO_MANY_MISSED else Missed.FEW
    return earliest, most_recent, missed


def next_schedule_delay(cj: Object, now: datetime, schedule: Schedule) -> float:
    """nextScheduleTimeDuration: seconds from now until just after the next scheduled
    time."""
    try:
        earliest, most_recent, missed = most_recent_schedule_time(
            cj, now, schedule, include_starting_deadline=False
        )
    except CronError:
        most_recent, missed, earliest = now, Missed.NONE, now
    if most_recent is None:
        most_recent = earliest if missed is Missed.NONE else now
    following = schedule.next_after(most_recent)
    if following is None:
        return 365 * 24 * 3600.0
    return (following + NEXT_SCHEDULE_DELTA - now).total_seconds()


def job_name(cj: Object, scheduled: datetime) -> str:
    """`<cronjob>-<minutes since the epoch>`: one name per scheduled time."""
    return f"{meta(cj).get('name', '')}-{int(scheduled.timestamp()) // 60}"


def job_from_template(cj: Object, scheduled: datetime) -> Object:
    """getJobFromTemplate2: the job template's labels, annotations (plus the scheduled
    time, written in spec.timeZone or UTC) and spec, controlled by the CronJob."""
    spec = cj.get("spec") or {}
    template = spec.get("jobTemplate") or {}
    template_meta = template.get("metadata") or {}
    zone = spec.get("timeZone")
    location = load_time_zone(str(zone)) if isinstance(zone, str) else UTC
    annotations = dict(template_meta.get("annotations") or {})
    annotations[SCHEDULED_TIMESTAMP_ANNOTATION] = rfc3339(scheduled.astimezone(location))
    job_meta: dict[str, Any] = {
        "name": job_name(cj, scheduled),
        "namespace": meta(cj).get("namespace", ""),
        "annotations": annotations,
        "ownerReferences": [controller_reference(cj, API_VERSION, KIND)],
    }
    if template_meta.get("labels"):
        job_meta["labels"] = dict(template_meta["labels"])
    return {
        "apiVersion": API_VERSION,
        "kind": "Job",
        "metadata": job_meta,
        "spec": copy.deepcopy(template.get("spec") or {}),
    }


def finished_type(job: Object) -> str | None:
    """getFinishedStatus: Complete or Failed, whichever is true first in the list."""
    for condition in (job.get("status") or {}).get("conditions") or []:
        if (
            isinstance(condition, dict)
            and condition.get("type") in ("Complete", "Failed")
            and condition.get("status") == "True"
        ):
            return str(condition["type"])
    return None


def _start_order(a: Object, b: Object) -> int:
    """byJobStartTime: started before not started, earlier first, then by name."""
    a_start = timestamp((a.get("status") or {}).get("startTime"))
    b_start = timestamp((b.get("status") or {}).get("startTime"))
    if (a_start is None) != (b_start is None):
        return 1 if a_start is None else -1
    if a_start != b_start and a_start is not None and b_start is not None:
        return -1 if a_start < b_start else 1
    a_name, b_name = str(meta(a).get("name", "")), str(meta(b).get("name", ""))
    return (a_name > b_name) - (a_name < b_name)


def plan_history_cleanup(cj: Object, jobs: list[Object]) -> list[Object]:
    """cleanupFinishedJobs: the oldest finished Jobs beyond each history limit."""
    spec = cj.get("spec") or {}
    doomed: list[Object] = []
    for finished, limit_field in (
        ("Complete", "successfulJobsHistoryLimit"),
        ("Failed", "failedJobsHistoryLimit"),
    ):
        limit = spec.get(limit_field)
        if not isinstance(limit, int) or isinstance(limit, bool):
            continue
        matching = sorted(
            (j for j in jobs if finished_type(j) == finished),
            key=functools.cmp_to_key(_start_order),
        )
        excess = len(matching) - limit
        if excess > 0:
            doomed.extend(matching[:excess])
    return doomed


def job_reference(job: Object) -> dict[str, Any]:
    """An ObjectReference to a Job, as status.active lists them."""
    job_meta = meta(job)
    reference = {
        "kind": "Job",
        "namespace": job_meta.get("namespace", ""),
        "name": job_meta.get("name", ""),
        "uid": job_meta.get("uid", ""),
        "apiVersion": API_VERSION,
        "resourceVersion": job_meta.get("resourceVersion", ""),
    }
    return {k: v for k, v in reference.items() if v}


@dataclass(frozen=True)
class ScheduleDecision:
    """What the schedule says to do now."""

    scheduled: datetime | None
    too_late: bool
    missed: Missed
    requeue_after: float


def decide_schedule(cj: Object, now: datetime, schedule: Schedule) -> ScheduleDecision:
    """nextScheduleTime and the starting deadline: the time to start a Job for now (if
    any), whether it is too late for it, and when to look again. Raises CronError for
    schedules that never come."""
    _, scheduled, missed = most_recent_schedule_time(
        cj, now, schedule, include_starting_deadline=True
    )
    delay = next_schedule_delay(cj, now, schedule)
    if scheduled is None or scheduled > now:
        return ScheduleDecision(None, False, missed, delay)
    deadline = (cj.get("spec") or {}).get("startingDeadlineSeconds")
    too_late = isinstance(deadline, int) and scheduled + timedelta(seconds=deadline) < now
    return ScheduleDecision(scheduled, too_late, missed, delay)


# -- the controller ---------------------------------------------------------------------


class CronJobController(Controller):
    name: ClassVar[str] = COMPONENT
    # kube-controller-manager's default --concurrent-*-syncs.
    workers: ClassVar[int] = 5

    def __init__(self, context: ControllerContext) -> None:
        self.client = context.client
        self.recorder = context.recorder(COMPONENT)
        self.clock = clock_option(context.options)
        configured_zone = context.options.get("time_zone")
        self.local_zone = (
            configured_zone if isinstance(configured_zone, tzinfo) else local_time_zone()
        )
        self.cronjobs = context.informers.informer(CRONJOBS)
        self.jobs = context.informers.informer(JOBS)
        super().__init__([self.cronjobs, self.jobs])
        self.cronjobs.add_handlers(
            on_add=self._enqueue, on_update=self._on_cronjob_update, on_delete=self._enqueue
        )
        self.jobs.add_handlers(
            on_add=self._on_job_add, on_update=self._on_job_update, on_delete=self._on_job
        )

    def now(self) -> datetime:
        return self.clock.now().astimezone(self.local_zone)

    # -- handlers: only keys ----------------------------------------------------------

    def _enqueue(self, cj: Object) -> None:
        self.queue.add(object_key(cj))

    def _owner(self, job: Object) -> Object | None:
        return cached_controller(job, KIND, self.cronjobs)

    def _on_job(self, job: Object) -> None:
        cj = self._owner(job)
        if cj is not None:
            self._enqueue(cj)

    def _on_job_add(self, job: Object) -> None:
        self._on_job(job)

    def _on_job_update(self, old: Object, new: Object) -> None:
        if controller_of(old) != controller_of(new):
            self._on_job(old)
        self._on_job(new)

    def _on_cronjob_update(self, old: Object, new: Object) -> None:
        old_spec, new_spec = old.get("spec") or {}, new.get("spec") or {}
        if old_spec.get("schedule") == new_spec.get("schedule") and old_spec.get(
            "timeZone"
        ) == new_spec.get("timeZone"):
            self._enqueue(new)
            return
        try:
            schedule = parse_schedule(format_schedule(new))
        except CronError:
            self.recorder.event(
                with_kind(new, API_VERSION, KIND),
                "Warning",
                "UnParseableCronJobSchedule",
                f"unparseable schedule for cronjob: {new_spec.get('schedule')}",
            )
            return
        self.queue.add_after(
            object_key(new), self.clock.delay(next_schedule_delay(new, self.now(), schedule))
        )

    # -- sync -------------------------------------------------------------------------

    async def sync(self, key: str) -> None:
        shared = self.cronjobs.get(key)
        if shared is None:
            return
        cj = with_kind(copy.deepcopy(shared), API_VERSION, KIND)
        name = meta(cj).get("name")
        jobs = [
            job
            for job in self.jobs.indexer.by_index("namespace", meta(cj).get("namespace", ""))
            if (controller_of(job) or {}).get("name") == name
        ]
        update_after_cleanup = await self._cleanup_finished_jobs(cj, jobs)
        requeue_after: float | None = None
        sync_error: Exception | None = None
        update_after_sync = False
        try:
            cj, requeue_after, update_after_sync = await self._sync_cronjob(cj, jobs)
        except Exception as error:
            sync_error = error
        if update_after_cleanup or update_after_sync:
            updated = dict(cj)
            updated["status"] = {
                k: v for k, v in (cj.get("status") or {}).items() if v not in (None, [])
            }
            await self.client.update_status(CRONJOBS, updated)
        if sync_error is not None:
            raise sync_error
        if requeue_after is not None:
            raise Requeue(self.clock.delay(requeue_after))

    async def _sync_cronjob(
        self, cj: Object, jobs: list[Object]
    ) -> tuple[Object, float | None, bool]:
        """syncCronJob: (the CronJob with its new status, seconds until the next look,
        whether the status changed)."""
        now = self.now()
        update = False
        status = cj.setdefault("status", {})
        namespace = str(meta(cj).get("namespace", ""))
        children = set()
        for job in jobs:
            uid = meta(job).get("uid")
            children.add(uid)
            found = any(ref.get("uid") == uid for ref in status.get("active") or [])
            if not found and not is_finished(job):
                fresh = await self.client.get(CRONJOBS, str(meta(cj)["name"]), namespace)
                if any(
                    ref.get("uid") == uid for ref in (fresh.get("status") or {}).get("active") or []
                ):
                    cj = with_kind(fresh, API_VERSION, KIND)
                    status = cj.setdefault("status", {})
                    continue
                self.recorder.event(
                    cj,
                    "Warning",
                    "UnexpectedJob",
                    f"Saw a job that the controller did not create or forgot: {meta(job).get('name')}",
                )
            elif found and is_finished(job):
                status["active"] = [
                    ref for ref in status.get("active") or [] if ref.get("uid") != uid
                ]
                self.recorder.event(
                    cj,
                    "Normal",
                    "SawCompletedJob",
                    f"Saw completed job: {meta(job).get('name')}, status: {finished_type(job)}",
                )
                update = True
            elif finished_type(job) == "Complete":
                # Whether or not it was in the active list, a succeeded Job moves
                # lastSuccessfulTime forward.
                completed = (job.get("status") or {}).get("completionTime")
                if status.get("lastSuccessfulTime") is None:
                    status["lastSuccessfulTime"] = completed
                    update = True
                completed_at, last = (
                    timestamp(completed),
                    timestamp(status.get("lastSuccessfulTime")),
                )
                if completed_at is not None and last is not None and completed_at > last:
                    status["lastSuccessfulTime"] = completed
                    update = True
        for ref in list(status.get("active") or []):
            if ref.get("uid") in children:
                continue
            try:
                await self.client.get(
                    JOBS, str(ref.get("name", "")), str(ref.get("namespace", namespace))
                )
            except StatusError as error:
                if error.code != 404:
                    raise
                self.recorder.event(
                    cj, "Normal", "MissingJob", f"Active job went missing: {ref.get('name')}"
                )
                status["active"] = [
                    r for r in status.get("active") or [] if r.get("uid") != ref.get("uid")
                ]
                update = True

        if meta(cj).get("deletionTimestamp"):
            return cj, None, update
        spec = cj.get("spec") or {}
        zone = spec.get("timeZone")
        if zone is not None:
            try:
                load_time_zone(str(zone))
            except CronError as error:
                self.recorder.event(
                    cj, "Warning", "UnknownTimeZone", f'invalid timeZone: "{zone}": {error}'
                )
                return cj, None, update
        if spec.get("suspend") is True:
            return cj, None, update
        schedule_text = format_schedule(cj)
        if "TZ" in str(spec.get("schedule") or ""):
            self.recorder.event(
                cj,
                "Warning",
                "UnsupportedSchedule",
                f'CRON_TZ or TZ used in schedule "{spec.get("schedule")}" is not officially supported, see '
                "https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/ for more details",
            )
        try:
            schedule = parse_schedule(schedule_text)
        except CronError as error:
            self.recorder.event(
                cj,
                "Warning",
                "UnparseableSchedule",
                f'unparseable schedule: "{spec.get("schedule")}" : {error}',
            )
            return cj, None, update
        try:
            decision = decide_schedule(cj, now, schedule)
        except CronError as error:
            self.recorder.event(
                cj,
                "Warning",
                "InvalidSchedule",
                f"invalid schedule: {spec.get('schedule')} : {error}",
            )
            return cj, None, update
        if decision.scheduled is None:
            return cj, decision.requeue_after, update
        if decision.missed is Missed.MANY:
            self.recorder.event(
                cj,
                "Warning",
                "TooManyMissedTimes",
                "too many missed start times. Set or decrease .spec.startingDeadlineSeconds or check clock skew",
            )
        scheduled = decision.scheduled
        if decision.too_late:
            self.recorder.event(
                cj,
                "Warning",
                "MissSchedule",
                f"Missed scheduled time to start a job: {scheduled.astimezone(UTC).strftime('%a, %d %b %Y %H:%M:%S +0000')}",
            )
            return cj, decision.requeue_after, update
        wanted_name = job_name(cj, scheduled)
        last_schedule = timestamp(status.get("lastScheduleTime"))
        if (
            any(ref.get("name") == wanted_name for ref in status.get("active") or [])
            or last_schedule == scheduled
        ):
            return cj, decision.requeue_after, update
        policy = spec.get("concurrencyPolicy") or "Allow"
        if policy == "Forbid" and status.get("active"):
            self.recorder.event(
                cj,
                "Normal",
                "JobAlreadyActive",
                "Not starting job because prior execution is running and concurrency policy is Forbid",
            )
            return cj, decision.requeue_after, update
        if policy == "Replace":
            for ref in list(status.get("active") or []):
                try:
                    job = await self.client.get(
                        JOBS, str(ref.get("name", "")), str(ref.get("namespace", namespace))
                    )
                except StatusError as error:
                    self.recorder.event(cj, "Warning", "FailedGet", f"Get job: {error}")
                    raise
                if not await self._delete_job(cj, job):
                    raise RuntimeError(
                        f"could not replace job {ref.get('namespace')}/{ref.get('name')}"
                    )
                update = True

        request = job_from_template(cj, scheduled)
        try:
            created = await self.client.create(JOBS, request, namespace)
        except StatusError as error:
            if namespace_terminating(error):
                raise
            if error.code != 409:
                self.recorder.event(cj, "Warning", "FailedCreate", f"Error creating job: {error}")
                raise
            created = await self.client.get(JOBS, wanted_name, namespace)
            reference = controller_of(created)
            if reference is None or reference.get("uid") != meta(cj).get("uid"):
                return cj, None, update
            if any(
                ref.get("uid") == meta(created).get("uid") for ref in status.get("active") or []
            ):
                return cj, None, update
        else:
            self.recorder.event(
                cj, "Normal", "SuccessfulCreate", f"Created job {meta(created).get('name')}"
            )
        status["active"] = [*(status.get("active") or []), job_reference(created)]
        status["lastScheduleTime"] = rfc3339(scheduled.astimezone(UTC))
        return cj, next_schedule_delay(cj, now, schedule), True

    async def _cleanup_finished_jobs(self, cj: Object, jobs: list[Object]) -> bool:
        spec = cj.get("spec") or {}
        if (
            spec.get("successfulJobsHistoryLimit") is None
            and spec.get("failedJobsHistoryLimit") is None
        ):
            return False
        update = False
        for job in plan_history_cleanup(cj, jobs):
            if await self._delete_job(cj, job):
                update = True
        return update

    async def _delete_job(self, cj: Object, job: Object) -> bool:
        """deleteJob: the Job (its pods follow in the background) and its active entry."""
        try:
            await self.client.delete(
                JOBS,
                str(meta(job)["name"]),
                str(meta(job).get("namespace", "")),
                propagation_policy="Background",
            )
        except StatusError as error:
            self.recorder.event(cj, "Warning", "FailedDelete", f"Deleted job: {error}")
            return False
        status = cj.setdefault("status", {})
        status["active"] = [
            r for r in status.get("active") or [] if r.get("uid") != meta(job).get("uid")
        ]
        self.recorder.event(
            cj, "Normal", "SuccessfulDelete", f"Deleted job {meta(job).get('name')}"
        )
        return True
