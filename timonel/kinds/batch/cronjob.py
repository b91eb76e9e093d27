"""batch/v1 CronJob: defaults, validation and table as kube-apiserver 1.32 has them."""

from __future__ import annotations

import re
from typing import Any, ClassVar

from timonel.api.errors import FieldError, invalid_value, not_supported, required
from timonel.api.objects import Object
from timonel.kinds.apps.intstr import validate_nonnegative
from timonel.kinds.apps.selector import format_label_selector, go_label_selector
from timonel.kinds.apps.workload import (
    CONTAINERS_COLUMN,
    IMAGES_COLUMN,
    as_dict,
    container_cells,
    pod_name_warning,
    spec_of,
    status_of,
)
from timonel.kinds.base import AGE_COLUMN, NAME_COLUMN, Column, Strategy, dig
from timonel.kinds.batch.cron import CronError, load_time_zone, parse_schedule
from timonel.kinds.batch.job import (
    JOB_SELECTOR_COLUMN,
    default_job_spec_template,
    validate_job_spec_common,
)
from timonel.kinds.printing import age, creation_age

CONCURRENCY_POLICIES = ["Allow", "Forbid", "Replace"]
# Job names are the CronJob's name and an 11-character suffix, within a DNS label.
MAX_NAME_LENGTH = 52
_TIME_ZONE_COMPONENT = re.compile(r"^[A-Za-z\.\-_0-9+]{1,14}$")


def default_cron_job(obj: Object) -> None:
    spec = spec_of(obj)
    if not spec.get("concurrencyPolicy"):
        spec["concurrencyPolicy"] = "Allow"
    if spec.get("suspend") is None:
        spec["suspend"] = False
    if spec.get("successfulJobsHistoryLimit") is None:
        spec["successfulJobsHistoryLimit"] = 3
    if spec.get("failedJobsHistoryLimit") is None:
        spec["failedJobsHistoryLimit"] = 1
    job_template = spec.get("jobTemplate")
    if not isinstance(job_template, dict):
        job_template = {}
        spec["jobTemplate"] = job_template
    template_meta = job_template.get("metadata")
    if not isinstance(template_meta, dict):
        template_meta = {}
        job_template["metadata"] = template_meta
    # A zero metav1.Time is still written by Go's encoder.
    template_meta.setdefault("creationTimestamp", None)
    job_spec = job_template.get("spec")
    if not isinstance(job_spec, dict):
        job_spec = {}
        job_template["spec"] = job_spec
    default_job_spec_template(job_spec)


def validate_schedule(schedule: str, *, tz_allowed: bool, time_zone: Any) -> list[FieldError]:
    """The schedule parses; TZ= prefixes only survive on CronJobs created before they were
    forbidden, and never next to spec.timeZone."""
    errors: list[FieldError] = []
    try:
        parse_schedule(schedule)
    except CronError as error:
        errors.append(invalid_value("spec.schedule", schedule, str(error)))
    if "TZ" in schedule:
        if not tz_allowed:
            errors.append(
                invalid_value(
                    "spec.schedule",
                    schedule,
                    "cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
                )
            )
        elif time_zone is not None:
            errors.append(
                invalid_value(
                    "spec.schedule",
                    schedule,
                    "cannot use both timeZone field and TZ or CRON_TZ in schedule",
                )
            )
    return errors


def validate_time_zone(time_zone: Any) -> list[FieldError]:
    if time_zone is None:
        return []
    path = "spec.timeZone"
    if time_zone == "":
        return [invalid_value(path, time_zone, "timeZone must be nil or non-empty string")]
    text = str(time_zone)
    for part in text.split("/"):
        if part in (".", "..") or part.startswith("-") or not _TIME_ZONE_COMPONENT.match(part):
            return [invalid_value(path, time_zone, f"unknown time zone {text}")]
    if text.lower() == "local":
        return [
            invalid_value(
                path,
                time_zone,
                "timeZone must be an explicit time zone as defined in "
                "https://www.iana.org/time-zones",
            )
        ]
    try:
        load_time_zone(text)
    except CronError as error:
        return [invalid_value(path, time_zone, str(error))]
    return []


def validate_job_template(job_template: Any) -> list[FieldError]:
    """ValidateJobTemplateSpec: a valid JobSpec whose selector the controller will own."""
    path = "spec.jobTemplate.spec"
    job_spec = as_dict(dig(job_template, "spec"))
    errors = validate_job_spec_common(job_spec, path)
    if job_spec.get("selector") is not None:
        errors.append(
            invalid_value(
                f"{path}.selector",
                go_label_selector(job_spec["selector"]),
                "`selector` will be auto-generated",
            )
        )
    if job_spec.get("manualSelector") is True:
        errors.append(not_supported(f"{path}.manualSelector", True, ["nil", "false"]))
    return errors


def validate_cron_job_spec(spec: Any, old_spec: Any = None) -> list[FieldError]:
    """validateCronJobSpec; `old_spec` is the stored spec on update."""
    spec = as_dict(spec)
    errors: list[FieldError] = []
    schedule = spec.get("schedule") or ""
    if not schedule:
        errors.append(required("spec.schedule"))
    else:
        old_schedule = str(as_dict(old_spec).get("schedule") or "")
        errors += validate_schedule(
            str(schedule), tz_allowed="TZ" in old_schedule, time_zone=spec.get("timeZone")
        )
    errors += validate_nonnegative(
        spec.get("startingDeadlineSeconds"), "spec.startingDeadlineSeconds"
    )
    if old_spec is None or as_dict(old_spec).get("timeZone") != spec.get("timeZone"):
        errors += validate_time_zone(spec.get("timeZone"))
    policy = spec.get("concurrencyPolicy") or ""
    if not policy:
        errors.append(required("spec.concurrencyPolicy"))
    elif policy not in CONCURRENCY_POLICIES:
        errors.append(not_supported("spec.concurrencyPolicy", policy, CONCURRENCY_POLICIES))
    errors += validate_job_template(spec.get("jobTemplate"))
    for name in ("successfulJobsHistoryLimit", "failedJobsHistoryLimit"):
        errors += validate_nonnegative(spec.get(name), f"spec.{name}")
    return errors


class CronJobStrategy(Strategy):
    group: ClassVar[str] = "batch"
    version: ClassVar[str] = "v1"
    kind: ClassVar[str] = "CronJob"
    plural: ClassVar[str] = "cronjobs"
    singular: ClassVar[str] = "cronjob"
    short_names: ClassVar[tuple[str, ...]] = ("cj",)
    categories: ClassVar[tuple[str, ...]] = ("all",)
    has_status: ClassVar[bool] = True
    tracks_generation: ClassVar[bool] = True
    columns: ClassVar[tuple[Column, ...]] = (
        NAME_COLUMN,
        Column(
            "Schedule",
            description="The schedule in Cron format, see https://en.wikipedia.org/wiki/Cron.",
        ),
        Column(
            "Timezone",
            description="The time zone name for the given schedule, see "
            "https://en.wikipedia.org/wiki/List_of_tz_database_time_zones. If not specified, "
            "this will default to the time zone of the kube-controller-manager process. The set "
            "of valid time zone names and the time zone offset is loaded from the system-wide "
            "time zone database by the API server during CronJob validation and the controller "
            "manager during execution. If no system-wide time zone database can be found a "
            "bundled version of the database is used instead. If the time zone name becomes "
            "invalid during the lifetime of a CronJob or due to a change in host configuration, "
            "the controller will stop creating new new Jobs and will create a system event with "
            "the reason UnknownTimeZone. More information can be found in "
            "https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/#time-zones",
        ),
        Column(
            "Suspend",
            type="boolean",
            description="This flag tells the controller to suspend subsequent executions, it "
            "does not apply to already started executions.  Defaults to false.",
        ),
        Column(
            "Active",
            type="integer",
            description="A list of pointers to currently running jobs.",
        ),
        Column(
            "Last Schedule",
            description="Information when was the last time the job was successfully scheduled.",
        ),
        AGE_COLUMN,
        CONTAINERS_COLUMN,
        IMAGES_COLUMN,
        JOB_SELECTOR_COLUMN,
    )

    def default(self, obj: Object) -> None:
        default_cron_job(obj)

    def prepare_for_create(self, obj: Object) -> None:
        super().prepare_for_create(obj)
        obj["status"] = {}

    def validate(self, obj: Object) -> list[FieldError]:
        errors = validate_cron_job_spec(obj.get("spec"))
        name = str((obj.get("metadata") or {}).get("name") or "")
        if len(name) > MAX_NAME_LENGTH:
            errors.append(
                invalid_value("metadata.name", name, "must be no more than 52 characters")
            )
        return errors

    def validate_update(self, new: Object, old: Object) -> list[FieldError]:
        # Names too long for new CronJobs stay valid on ones that already exist.
        return validate_cron_job_spec(new.get("spec"), as_dict(old.get("spec")))

    def warnings(self, obj: Object) -> list[str]:
        return pod_name_warning(obj)

    def table_row(self, obj: Object) -> list[Any]:
        spec = as_dict(obj.get("spec"))
        status = status_of(obj)
        job_spec = as_dict(dig(spec, "jobTemplate", "spec"))
        names, images = container_cells(job_spec.get("template"))
        suspend = spec.get("suspend")
        last_schedule = status.get("lastScheduleTime")
        active = status.get("active")
        time_zone = spec.get("timeZone")
        return [
            (obj.get("metadata") or {}).get("name", ""),
            str(spec.get("schedule") or ""),
            "<none>" if time_zone is None else str(time_zone),
            "<unset>" if suspend is None else ("True" if suspend else "False"),
            len(active) if isinstance(active, list) else 0,
            age(last_schedule) if last_schedule else "<none>",
            creation_age(obj),
            names,
            images,
            format_label_selector(job_spec.get("selector")),
        ]
