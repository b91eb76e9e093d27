"""Job strategy: defaults, the generated selector, validation, updates and table."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest
import yaml

from timonel.kinds.batch.job import (
    JobStrategy,
    completions_cell,
    duration_cell,
    job_status_cell,
)

STRATEGY = JobStrategy()
UID = "4dc6ef71-c2eb-44af-9b73-bb77ab6463db"

# The pi Job of the Kubernetes documentation.
PI = """
apiVersion: batch/v1
kind: Job
metadata:
  name: pi
  namespace: default
spec:
  template:
    spec:
      containers:
      - name: pi
        image: perl:5.34.0
        command: ["perl",  "-Mbignum=bpi", "-wle", "print bpi(2000)"]
      restartPolicy: Never
  backoffLimit: 4
"""

# What a 1.32 cluster returns for it (server-set metadata left out).
PI_STORED = """
metadata:
  labels:
    batch.kubernetes.io/controller-uid: 4dc6ef71-c2eb-44af-9b73-bb77ab6463db
    batch.kubernetes.io/job-name: pi
    controller-uid: 4dc6ef71-c2eb-44af-9b73-bb77ab6463db
    job-name: pi
spec:
  backoffLimit: 4
  completionMode: NonIndexed
  completions: 1
  manualSelector: false
  parallelism: 1
  podReplacementPolicy: TerminatingOrFailed
  selector:
    matchLabels:
      batch.kubernetes.io/controller-uid: 4dc6ef71-c2eb-44af-9b73-bb77ab6463db
  suspend: false
  template:
    metadata:
      creationTimestamp: null
      labels:
        batch.kubernetes.io/controller-uid: 4dc6ef71-c2eb-44af-9b73-bb77ab6463db
        batch.kubernetes.io/job-name: pi
        controller-uid: 4dc6ef71-c2eb-44af-9b73-bb77ab6463db
        job-name: pi
    spec:
      containers:
      - command: ["perl",  "-Mbignum=bpi", "-wle", "print bpi(2000)"]
        image: perl:5.34.0
        imagePullPolicy: IfNotPresent
        name: pi
        resources: {}
        terminationMessagePath: /dev/termination-log
        terminationMessagePolicy: File
      dnsPolicy: ClusterFirst
      restartPolicy: Never
      schedulerName: default-scheduler
      securityContext: {}
      terminationGracePeriodSeconds: 30
"""


def pi() -> dict[str, Any]:
    obj: dict[str, Any] = yaml.safe_load(PI)
    obj["metadata"]["uid"] = UID
    return obj


def created(obj: dict[str, Any] | None = None) -> dict[str, Any]:
    obj = obj if obj is not None else pi()
    STRATEGY.default(obj)
    STRATEGY.prepare_for_create(obj)
    return obj


def messages(obj: dict[str, Any]) -> list[str]:
    return [e.message() for e in STRATEGY.validate(obj)]


def test_pi_job_comes_back_as_a_real_cluster_returns_it() -> None:
    obj = created()
    stored = yaml.safe_load(PI_STORED)
    assert obj["spec"] == stored["spec"]
    assert obj["metadata"]["labels"] == stored["metadata"]["labels"]
    assert obj["status"] == {}
    assert obj["metadata"]["generation"] == 1
    assert STRATEGY.validate(obj) == []


def test_defaulting_is_idempotent() -> None:
    obj = created()
    again = copy.deepcopy(obj)
    STRATEGY.default(again)
    assert again == obj


def test_job_labels_come_from_the_template_only_when_it_has_none() -> None:
    obj = pi()
    obj["spec"]["template"]["metadata"] = {"labels": {"app": "pi"}}
    obj["metadata"]["labels"] = {"team": "math"}
    created(obj)
    assert obj["metadata"]["labels"] == {"team": "math"}

    bare = pi()
    bare["spec"]["template"]["metadata"] = {"labels": {"app": "pi"}}
    created(bare)
    # Defaulting copies the client's template labels before the generated ones exist.
    assert bare["metadata"]["labels"] == {"app": "pi"}


@pytest.mark.parametrize(
    ("given", "completions", "parallelism"),
    [({}, 1, 1), ({"parallelism": 3}, None, 3), ({"completions": 5}, 5, 1)],
)
def test_completions_and_parallelism_defaults(
    given: dict[str, int], completions: int | None, parallelism: int
) -> None:
    obj = pi()
    obj["spec"].update(given)
    STRATEGY.default(obj)
    assert obj["spec"].get("completions") == completions
    assert obj["spec"]["parallelism"] == parallelism


def test_pod_failure_policy_defaults() -> None:
    obj = pi()
    obj["spec"]["podFailurePolicy"] = {
        "rules": [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]
    }
    STRATEGY.default(obj)
    assert obj["spec"]["podReplacementPolicy"] == "Failed"
    assert obj["spec"]["podFailurePolicy"]["rules"][0]["onPodConditions"][0]["status"] == "True"


def test_backoff_limit_per_index_raises_the_backoff_limit() -> None:
    obj = pi()
    del obj["spec"]["backoffLimit"]
    obj["spec"].update(backoffLimitPerIndex=1, completionMode="Indexed", completions=3)
    STRATEGY.default(obj)
    assert obj["spec"]["backoffLimit"] == 2**31 - 1


def test_manual_selector_is_left_alone() -> None:
    obj = pi()
    obj["spec"]["manualSelector"] = True
    obj["spec"]["selector"] = {"matchLabels": {"app": "pi"}}
    obj["spec"]["template"]["metadata"] = {"labels": {"app": "pi"}}
    created(obj)
    assert obj["spec"]["selector"] == {"matchLabels": {"app": "pi"}}
    assert obj["spec"]["template"]["metadata"]["labels"] == {"app": "pi"}
    assert STRATEGY.validate(obj) == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda s: s["template"]["spec"].update(restartPolicy="Always"),
            [
                'spec.template.spec.restartPolicy: Required value: valid values: "OnFailure", "Never"'
            ],
        ),
        (
            lambda s: s.update(parallelism=-1),
            ["spec.parallelism: Invalid value: -1: must be greater than or equal to 0"],
        ),
        (
            lambda s: s.update(completionMode="Sometimes"),
            [
                'spec.completionMode: Unsupported value: "Sometimes": supported values: "NonIndexed", "Indexed"'
            ],
        ),
        (
            lambda s: s.update(backoffLimitPerIndex=1),
            ["spec.backoffLimitPerIndex: Invalid value: 1: requires indexed completion mode"],
        ),
        (
            lambda s: s.update(podReplacementPolicy="Never"),
            [
                'spec.podReplacementPolicy: Unsupported value: "Never": supported values: "Failed", "TerminatingOrFailed"'
            ],
        ),
        (
            lambda s: s.update(podFailurePolicy={"rules": [{"action": "FailJob"}]}),
            [
                "spec.podFailurePolicy.rules[0]: Invalid value: specifying one of OnExitCodes and "
                "OnPodConditions is required",
            ],
        ),
        (
            lambda s: s.update(
                podFailurePolicy={
                    "rules": [
                        {
                            "action": "FailJob",
                            "onExitCodes": {"operator": "In", "values": [3, 0, 3]},
                        }
                    ]
                }
            ),
            [
                "spec.podFailurePolicy.rules[0].onExitCodes.values[1]: Invalid value: 0: must not be 0 for the In operator",
                "spec.podFailurePolicy.rules[0].onExitCodes.values[2]: Duplicate value: 3",
                "spec.podFailurePolicy.rules[0].onExitCodes.values: Invalid value: [3,0,3]: must be ordered",
            ],
        ),
        (
            lambda s: s.update(managedBy="my-controller"),
            [
                'spec.managedBy: Invalid value: "my-controller": must be a domain-prefixed path (such as "acme.io/foo")'
            ],
        ),
        (
            lambda s: s.update(successPolicy={"rules": [{"succeededCount": 1}]}),
            [
                'spec.successPolicy: Invalid value: {"rules":[{"succeededCount":1}]}: requires indexed completion mode'
            ],
        ),
    ],
)
def test_validation_messages(change: Any, expected: list[str]) -> None:
    obj = pi()
    change(obj["spec"])
    created(obj)
    assert messages(obj) == expected


def test_generated_labels_must_not_be_overridden() -> None:
    obj = pi()
    obj["spec"]["template"]["metadata"] = {"labels": {"controller-uid": "other"}}
    created(obj)
    found = messages(obj)
    assert found[0] == (
        "spec.template.metadata.labels[controller-uid]: Invalid value: map[string]string{"
        '"batch.kubernetes.io/controller-uid":"4dc6ef71-c2eb-44af-9b73-bb77ab6463db", '
        '"batch.kubernetes.io/job-name":"pi", "controller-uid":"other", "job-name":"pi"}: '
        f"must be '{UID}'"
    )


def test_indexed_job_pod_hostnames_must_be_dns_labels() -> None:
    obj = pi()
    obj["metadata"]["name"] = "a" * 62
    obj["spec"].update(completionMode="Indexed", completions=20)
    created(obj)
    assert messages(obj)[-1] == (
        f'metadata.name: Invalid value: "{"a" * 62}": will not able to create pod with invalid '
        f"DNS label: {'a' * 62}-19"
    )


def test_selector_completions_and_template_are_immutable() -> None:
    old = created()
    new = copy.deepcopy(old)
    new["spec"]["completions"] = 3
    new["spec"]["template"]["spec"]["containers"][0]["image"] = "perl:5.36"
    STRATEGY.prepare_for_update(new, old)
    assert [(e.field, e.detail) for e in STRATEGY.validate_update(new, old)] == [
        ("spec.completions", "field is immutable"),
        ("spec.template", "field is immutable"),
    ]


def test_scheduling_directives_change_while_suspended_and_never_started() -> None:
    job = pi()
    job["spec"]["suspend"] = True
    old = created(job)
    new = copy.deepcopy(old)
    new["spec"]["template"]["spec"]["nodeSelector"] = {"zone": "a"}
    new["spec"]["template"]["metadata"]["annotations"] = {"queue": "big"}
    assert STRATEGY.validate_update(new, old) == []
    new["spec"]["template"]["spec"]["containers"][0]["image"] = "perl:5.36"
    assert [e.field for e in STRATEGY.validate_update(new, old)] == ["spec.template"]
    started = copy.deepcopy(old)
    started["status"] = {"startTime": "2024-01-01T00:00:00Z"}
    moved = copy.deepcopy(started)
    moved["spec"]["template"]["spec"]["nodeSelector"] = {"zone": "a"}
    assert [e.field for e in STRATEGY.validate_update(moved, started)] == ["spec.template"]


def test_elastic_indexed_job_scales_completions_with_parallelism() -> None:
    job = pi()
    job["spec"].update(completionMode="Indexed", completions=3, parallelism=3)
    old = created(job)
    new = copy.deepcopy(old)
    new["spec"].update(completions=5, parallelism=5)
    assert STRATEGY.validate_update(new, old) == []
    new["spec"]["parallelism"] = 4
    assert [e.message() for e in STRATEGY.validate_update(new, old)] == [
        "spec.completions: Invalid value: 5: can only be modified in tandem with spec.parallelism"
    ]


def finished(conditions: list[dict[str, str]], **status: Any) -> dict[str, Any]:
    obj = created()
    obj["status"] = {"conditions": conditions, **status}
    return obj


@pytest.mark.parametrize(
    ("conditions", "deleting", "expected"),
    [
        ([{"type": "Complete", "status": "True"}], False, "Complete"),
        ([{"type": "Failed", "status": "True"}], False, "Failed"),
        ([], True, "Terminating"),
        ([{"type": "Suspended", "status": "True"}], False, "Suspended"),
        ([{"type": "FailureTarget", "status": "True"}], False, "FailureTarget"),
        ([{"type": "Suspended", "status": "False"}], False, "Running"),
    ],
)
def test_status_cell(conditions: list[dict[str, str]], deleting: bool, expected: str) -> None:
    obj = finished(conditions)
    if deleting:
        obj["metadata"]["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    assert job_status_cell(obj) == expected


def test_completions_and_duration_cells() -> None:
    obj = finished(
        [], succeeded=1, startTime="2024-01-01T00:00:00Z", completionTime="2024-01-01T00:00:42Z"
    )
    assert completions_cell(obj) == "1/1"
    assert duration_cell(obj) == "42s"
    del obj["spec"]["completions"]
    obj["spec"]["parallelism"] = 4
    assert completions_cell(obj) == "1/1 of 4"
    del obj["status"]["completionTime"]
    assert duration_cell(obj, now=datetime(2024, 1, 1, 0, 10, tzinfo=UTC)) == "10m"
    del obj["status"]["startTime"]
    assert duration_cell(obj) == ""


def test_table_row_columns_and_field_selector() -> None:
    obj = finished([{"type": "Complete", "status": "True"}], succeeded=1)
    row = STRATEGY.table_row(obj)
    assert row[:4] == ["pi", "Complete", "1/1", ""]
    assert row[5:] == ["pi", "perl:5.34.0", f"batch.kubernetes.io/controller-uid={UID}"]
    assert [c.name for c in STRATEGY.columns] == [
        "Name",
        "Status",
        "Completions",
        "Duration",
        "Age",
        "Containers",
        "Images",
        "Selector",
    ]
    assert STRATEGY.field_labels == ("status.successful",)
    assert STRATEGY.selectable_fields(obj)["status.successful"] == "1"
    assert STRATEGY.categories == ("all",)
