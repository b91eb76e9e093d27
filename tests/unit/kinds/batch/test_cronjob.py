"""CronJob strategy: defaults, schedule and time zone validation, table."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from timonel.kinds.batch.cronjob import CronJobStrategy

STRATEGY = CronJobStrategy()

# The hello CronJob of the Kubernetes documentation.
HELLO = """
apiVersion: batch/v1
kind: CronJob
metadata:
  name: hello
  namespace: default
spec:
  schedule: "* * * * *"
  jobTemplate:
    spec:
      template:
        spec:
          containers:
          - name: hello
            image: busybox:1.28
            imagePullPolicy: IfNotPresent
            command:
            - /bin/sh
            - -c
            - date; echo Hello from the Kubernetes cluster
          restartPolicy: OnFailure
"""

HELLO_STORED_SPEC = """
concurrencyPolicy: Allow
failedJobsHistoryLimit: 1
jobTemplate:
  metadata:
    creationTimestamp: null
  spec:
    template:
      metadata:
        creationTimestamp: null
      spec:
        containers:
        - command:
          - /bin/sh
          - -c
          - date; echo Hello from the Kubernetes cluster
          image: busybox:1.28
          imagePullPolicy: IfNotPresent
          name: hello
          resources: {}
          terminationMessagePath: /dev/termination-log
          terminationMessagePolicy: File
        dnsPolicy: ClusterFirst
        restartPolicy: OnFailure
        schedulerName: default-scheduler
        securityContext: {}
        terminationGracePeriodSeconds: 30
schedule: '* * * * *'
successfulJobsHistoryLimit: 3
suspend: false
"""


def hello() -> dict[str, Any]:
    obj: dict[str, Any] = yaml.safe_load(HELLO)
    return obj


def created(obj: dict[str, Any] | None = None) -> dict[str, Any]:
    obj = obj if obj is not None else hello()
    STRATEGY.default(obj)
    STRATEGY.prepare_for_create(obj)
    return obj


def messages(obj: dict[str, Any]) -> list[str]:
    return [e.message() for e in STRATEGY.validate(obj)]


def test_hello_comes_back_as_a_real_cluster_returns_it() -> None:
    obj = created()
    # The job template gets only its pod template's defaults, not a Job's.
    assert obj["spec"] == yaml.safe_load(HELLO_STORED_SPEC)
    assert obj["status"] == {}
    assert obj["metadata"]["generation"] == 1
    assert STRATEGY.validate(obj) == []


def test_defaulting_is_idempotent() -> None:
    obj = created()
    again = copy.deepcopy(obj)
    STRATEGY.default(again)
    assert again == obj


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda s: s.update(schedule="* * * *"),
            [
                'spec.schedule: Invalid value: "* * * *": expected exactly 5 fields, found 4: [* * * *]'
            ],
        ),
        (lambda s: s.update(schedule=""), ["spec.schedule: Required value"]),
        (
            lambda s: s.update(schedule="TZ=UTC 0 * * * *"),
            [
                'spec.schedule: Invalid value: "TZ=UTC 0 * * * *": cannot use TZ or CRON_TZ in '
                "schedule, use timeZone field instead"
            ],
        ),
        (
            lambda s: s.update(timeZone="Mars/Olympus"),
            ['spec.timeZone: Invalid value: "Mars/Olympus": unknown time zone Mars/Olympus'],
        ),
        (
            lambda s: s.update(timeZone="Local"),
            [
                'spec.timeZone: Invalid value: "Local": timeZone must be an explicit time zone as '
                "defined in https://www.iana.org/time-zones"
            ],
        ),
        (
            lambda s: s.update(timeZone=""),
            ['spec.timeZone: Invalid value: "": timeZone must be nil or non-empty string'],
        ),
        (
            lambda s: s.update(concurrencyPolicy="Sometimes"),
            [
                'spec.concurrencyPolicy: Unsupported value: "Sometimes": supported values: "Allow", "Forbid", "Replace"'
            ],
        ),
        (
            lambda s: s["jobTemplate"]["spec"].update(selector={"matchLabels": {"a": "b"}}),
            [
                "spec.jobTemplate.spec.selector: Invalid value: v1.LabelSelector{MatchLabels:"
                'map[string]string{"a":"b"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: '
                "`selector` will be auto-generated"
            ],
        ),
        (
            lambda s: s["jobTemplate"]["spec"].update(manualSelector=True),
            [
                'spec.jobTemplate.spec.manualSelector: Unsupported value: true: supported values: "nil", "false"'
            ],
        ),
        (
            lambda s: s["jobTemplate"]["spec"]["template"]["spec"].update(restartPolicy="Always"),
            [
                'spec.jobTemplate.spec.template.spec.restartPolicy: Required value: valid values: "OnFailure", "Never"'
            ],
        ),
        (
            lambda s: s.update(successfulJobsHistoryLimit=-1),
            [
                "spec.successfulJobsHistoryLimit: Invalid value: -1: must be greater than or equal to 0"
            ],
        ),
    ],
)
def test_validation_messages(change: Any, expected: list[str]) -> None:
    obj = hello()
    change(obj["spec"])
    STRATEGY.default(obj)
    assert messages(obj) == expected


def test_valid_time_zone_and_descriptor() -> None:
    obj = hello()
    obj["spec"].update(schedule="@hourly", timeZone="Europe/Madrid")
    STRATEGY.default(obj)
    assert messages(obj) == []


def test_long_names_fail_on_create_only() -> None:
    obj = created()
    obj["metadata"]["name"] = "x" * 53
    assert messages(obj) == [
        f'metadata.name: Invalid value: "{"x" * 53}": must be no more than 52 characters'
    ]
    assert STRATEGY.validate_update(obj, copy.deepcopy(obj)) == []


def test_tz_in_schedule_survives_only_where_it_already_was() -> None:
    old = created()
    old["spec"]["schedule"] = "TZ=UTC 0 * * * *"
    new = copy.deepcopy(old)
    new["spec"]["schedule"] = "TZ=UTC 5 * * * *"
    assert STRATEGY.validate_update(new, old) == []
    new["spec"]["timeZone"] = "UTC"
    assert [e.detail for e in STRATEGY.validate_update(new, old)] == [
        "cannot use both timeZone field and TZ or CRON_TZ in schedule"
    ]


def test_table_row_and_columns() -> None:
    obj = created()
    obj["status"] = {"active": [{"name": "hello-1"}], "lastScheduleTime": None}
    row = STRATEGY.table_row(obj)
    assert row[:6] == ["hello", "* * * * *", "<none>", "False", 1, "<none>"]
    assert row[7:] == ["hello", "busybox:1.28", "<none>"]
    obj["spec"]["timeZone"] = "Etc/UTC"
    obj["spec"]["suspend"] = True
    assert STRATEGY.table_row(obj)[2:4] == ["Etc/UTC", "True"]
    assert [c.name for c in STRATEGY.columns] == [
        "Name",
        "Schedule",
        "Timezone",
        "Suspend",
        "Active",
        "Last Schedule",
        "Age",
        "Containers",
        "Images",
        "Selector",
    ]
    assert [c.type for c in STRATEGY.columns[3:5]] == ["boolean", "integer"]
    assert STRATEGY.short_names == ("cj",)
