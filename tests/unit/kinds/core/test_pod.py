"""Pods: create path (defaults, admission, QoS), binding, updates, table and selectors."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from timonel.api.errors import StatusError
from timonel.kinds.core.pod import (
    PodStrategy,
    admit_pod,
    bind_pod,
    can_ignore_disruption_budget,
    eviction_denied,
    mount_service_account_token,
    pod_row,
    pod_status_cell,
    qos_class,
    record_disruption,
    set_pod_condition,
)

NOW = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)


def ago(**delta: int) -> str:
    return (NOW - timedelta(**delta)).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_pod(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "web",
            "namespace": "default",
            "uid": "u1",
            "creationTimestamp": ago(minutes=5),
        },
        "spec": {"containers": [{"name": "nginx", "image": "nginx:1.27"}], **spec},
    }


def create(pod: dict[str, Any]) -> dict[str, Any]:
    """The API server's create path for a pod: default, admit, prepare, validate."""
    strategy = PodStrategy()
    strategy.default(pod)
    admit_pod(pod)
    strategy.prepare_for_create(pod)
    assert [e.message() for e in strategy.validate(pod)] == []
    return pod


def test_created_pod_matches_kube_apiserver() -> None:
    pod = create(new_pod())
    spec = pod["spec"]
    assert spec["serviceAccountName"] == spec["serviceAccount"] == "default"
    assert spec["enableServiceLinks"] is True
    assert spec["priority"] == 0
    assert spec["preemptionPolicy"] == "PreemptLowerPriority"
    assert spec["tolerations"] == [
        {
            "key": "node.kubernetes.io/not-ready",
            "operator": "Exists",
            "effect": "NoExecute",
            "tolerationSeconds": 300,
        },
        {
            "key": "node.kubernetes.io/unreachable",
            "operator": "Exists",
            "effect": "NoExecute",
            "tolerationSeconds": 300,
        },
    ]
    assert spec["containers"][0]["resources"] == {}
    assert pod["status"] == {"phase": "Pending", "qosClass": "BestEffort"}
    assert "generation" not in pod["metadata"]


def test_admission_keeps_what_is_tolerated_already() -> None:
    pod = new_pod(tolerations=[{"operator": "Exists"}], serviceAccountName="builder")
    admit_pod(pod)
    assert pod["spec"]["tolerations"] == [{"operator": "Exists"}]
    assert pod["spec"]["serviceAccount"] == "builder"


def test_priority_admission() -> None:
    pod = new_pod(priorityClassName="system-node-critical")
    admit_pod(pod)
    assert pod["spec"]["priority"] == 2000001000
    pod = new_pod(priorityClassName="high")
    admit_pod(
        pod,
        priority_class={"metadata": {"name": "high"}, "value": 1000, "preemptionPolicy": "Never"},
    )
    assert (pod["spec"]["priority"], pod["spec"]["preemptionPolicy"]) == (1000, "Never")
    pod = new_pod()
    admit_pod(pod, default_priority_class={"metadata": {"name": "base"}, "value": 7})
    assert (pod["spec"]["priorityClassName"], pod["spec"]["priority"]) == ("base", 7)
    with pytest.raises(StatusError) as caught:
        admit_pod(new_pod(priorityClassName="missing"))
    assert caught.value.code == 403
    assert (
        caught.value.message
        == 'pods "web" is forbidden: no PriorityClass with name missing was found'
    )
    with pytest.raises(StatusError) as caught:
        admit_pod(new_pod(priority=5))
    assert caught.value.message == (
        'pods "web" is forbidden: the integer value of priority (5) must not be provided in pod spec; '
        "priority admission controller computed 0 from the given PriorityClass name"
    )


def test_service_account_token_volume() -> None:
    pod = new_pod(serviceAccountName="default")
    mount_service_account_token(pod, "x7k2p")
    assert pod["spec"]["volumes"][0]["name"] == "kube-api-access-x7k2p"
    assert pod["spec"]["containers"][0]["volumeMounts"] == [
        {
            "name": "kube-api-access-x7k2p",
            "readOnly": True,
            "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
        }
    ]
    opted_out = new_pod(automountServiceAccountToken=False)
    mount_service_account_token(opted_out, "x")
    assert "volumes" not in opted_out["spec"]


def resources(
    requests: dict[str, str] | None = None, limits: dict[str, str] | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if requests:
        out["requests"] = requests
    if limits:
        out["limits"] = limits
    return out


@pytest.mark.parametrize(
    ("containers", "expected"),
    [
        ([resources()], "BestEffort"),
        ([resources(requests={"cpu": "100m"})], "Burstable"),
        (
            [
                resources(
                    limits={"cpu": "1", "memory": "1Gi"}, requests={"cpu": "1", "memory": "1Gi"}
                )
            ],
            "Guaranteed",
        ),
        (
            [
                resources(
                    limits={"cpu": "1", "memory": "1Gi"}, requests={"cpu": "500m", "memory": "1Gi"}
                )
            ],
            "Burstable",
        ),
        ([resources(limits={"cpu": "1"}, requests={"cpu": "1"})], "Burstable"),
        (
            [
                resources(
                    limits={"cpu": "1", "memory": "1Gi"}, requests={"cpu": "1", "memory": "1Gi"}
                ),
                resources(),
            ],
            "Burstable",
        ),
        ([resources(requests={"ephemeral-storage": "1Gi"})], "BestEffort"),
        ([resources(requests={"cpu": "0"})], "BestEffort"),
    ],
)
def test_qos_class(containers: list[dict[str, Any]], expected: str) -> None:
    pod = {
        "spec": {
            "containers": [{"name": f"c{i}", "resources": r} for i, r in enumerate(containers)]
        }
    }
    assert qos_class(pod) == expected


def test_limits_default_requests_so_the_pod_is_guaranteed() -> None:
    pod = create(
        new_pod(
            containers=[
                {
                    "name": "a",
                    "image": "a:1",
                    "resources": {"limits": {"cpu": "0.5", "memory": "256Mi"}},
                }
            ]
        )
    )
    assert pod["spec"]["containers"][0]["resources"] == {
        "limits": {"cpu": "500m", "memory": "256Mi"},
        "requests": {"cpu": "500m", "memory": "256Mi"},
    }
    assert pod["status"]["qosClass"] == "Guaranteed"


def test_scheduling_gates_mark_the_pod_gated() -> None:
    pod = create(new_pod(schedulingGates=[{"name": "example.com/wait"}]))
    assert pod["status"]["conditions"] == [
        {
            "type": "PodScheduled",
            "status": "False",
            "lastProbeTime": None,
            "lastTransitionTime": None,
            "reason": "SchedulingGated",
            "message": "Scheduling is blocked due to non-empty scheduling gates",
        }
    ]
    assert pod_status_cell(pod) == "SchedulingGated"


def test_bind() -> None:
    pod = create(new_pod())
    bind_pod(
        pod,
        {"metadata": {"name": "web"}, "target": {"kind": "Node", "name": "node-1"}},
        now="2025-01-01T12:00:00Z",
    )
    assert pod["spec"]["nodeName"] == "node-1"
    assert pod["status"]["conditions"] == [
        {
            "type": "PodScheduled",
            "status": "True",
            "lastProbeTime": None,
            "lastTransitionTime": "2025-01-01T12:00:00Z",
        }
    ]
    with pytest.raises(StatusError) as caught:
        bind_pod(pod, {"metadata": {"name": "web"}, "target": {"name": "node-2"}})
    assert (caught.value.code, caught.value.reason) == (409, "Conflict")
    assert caught.value.message == (
        'Operation cannot be fulfilled on pods "web": pod web is already assigned to node "node-1"'
    )


@pytest.mark.parametrize(
    ("binding", "code", "message"),
    [
        (
            {"metadata": {"name": "other"}, "target": {"name": "n"}},
            400,
            "name in URL does not match name in Binding object",
        ),
        (
            {"metadata": {"name": "web"}, "target": {}},
            500,
            "Internal error occurred: target.name: Required value",
        ),
        (
            {"metadata": {"name": "web"}, "target": {"kind": "Pod", "name": "n"}},
            500,
            'Internal error occurred: target.kind: Unsupported value: "Pod": supported values: "Node", "<empty>"',
        ),
        (
            {"metadata": {"name": "web", "uid": "other"}, "target": {"name": "n"}},
            409,
            'Operation cannot be fulfilled on pods "web": pod UID mismatch',
        ),
    ],
)
def test_bind_refusals(binding: dict[str, Any], code: int, message: str) -> None:
    with pytest.raises(StatusError) as caught:
        bind_pod(create(new_pod()), binding)
    assert (caught.value.code, caught.value.message) == (code, message)


def test_gated_pod_cannot_be_bound() -> None:
    with pytest.raises(StatusError) as caught:
        bind_pod(create(new_pod(schedulingGates=[{"name": "g"}])), {"target": {"name": "n"}})
    assert (
        caught.value.message
        == 'Operation cannot be fulfilled on pods "web": pod web has non-empty .spec.schedulingGates'
    )


def test_condition_transition_time_moves_only_on_change() -> None:
    pod: dict[str, Any] = {}
    assert set_pod_condition(pod, {"type": "Ready", "status": "False"}, now="t1")
    assert not set_pod_condition(pod, {"type": "Ready", "status": "False"}, now="t2")
    assert pod["status"]["conditions"][0]["lastTransitionTime"] == "t1"
    assert set_pod_condition(pod, {"type": "Ready", "status": "True"}, now="t3")
    assert pod["status"]["conditions"][0]["lastTransitionTime"] == "t3"


def test_eviction_helpers() -> None:
    running = {"status": {"phase": "Running"}, "metadata": {}}
    assert not can_ignore_disruption_budget(running)
    assert can_ignore_disruption_budget({"status": {"phase": "Pending"}})
    budget = {
        "metadata": {"name": "pdb", "generation": 2},
        "status": {
            "observedGeneration": 2,
            "disruptionsAllowed": 0,
            "desiredHealthy": 3,
            "currentHealthy": 3,
        },
    }
    denied = eviction_denied(budget)
    assert denied is not None
    assert (denied.code, denied.reason) == (429, "TooManyRequests")
    assert denied.details == {
        "causes": [
            {
                "reason": "DisruptionBudget",
                "message": "The disruption budget pdb needs 3 healthy pods and has 3 currently",
            }
        ]
    }
    budget["status"]["disruptionsAllowed"] = 1
    assert eviction_denied(budget) is None
    record_disruption(budget, "web", now="t")
    assert budget["status"]["disruptionsAllowed"] == 0
    assert budget["status"]["disruptedPods"] == {"web": "t"}


def update_errors(change: Any) -> list[str]:
    old = create(new_pod(activeDeadlineSeconds=100))
    new = copy.deepcopy(old)
    change(new["spec"])
    strategy = PodStrategy()
    strategy.default(new)
    strategy.prepare_for_update(new, old)
    return [e.message() for e in strategy.validate_update(new, old)]


def test_allowed_pod_updates() -> None:
    def allowed(spec: dict[str, Any]) -> None:
        spec["containers"][0]["image"] = "nginx:1.28"
        spec["activeDeadlineSeconds"] = 50
        spec["tolerations"].append({"key": "k", "operator": "Exists"})

    assert update_errors(allowed) == []


def test_forbidden_pod_updates() -> None:
    def change_restart(spec: dict[str, Any]) -> None:
        spec["restartPolicy"] = "Never"

    errors = update_errors(change_restart)
    assert len(errors) == 1
    assert errors[0].startswith(
        "spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`,"
        "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to "
        "existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was "
        "previously negative)\n"
    )
    assert '- spec.restartPolicy: "Always"' in errors[0]
    assert '+ spec.restartPolicy: "Never"' in errors[0]

    def add_container(spec: dict[str, Any]) -> None:
        spec["containers"].append({"name": "b", "image": "b"})

    assert update_errors(add_container) == [
        "spec.containers: Forbidden: pod updates may not add or remove containers"
    ]

    def raise_deadline(spec: dict[str, Any]) -> None:
        spec["activeDeadlineSeconds"] = 200

    assert update_errors(raise_deadline) == [
        "spec.activeDeadlineSeconds: Invalid value: 200: must be less than or equal to previous value"
    ]

    def drop_toleration(spec: dict[str, Any]) -> None:
        spec["tolerations"].pop()

    assert update_errors(drop_toleration) == [
        "spec.tolerations: Forbidden: existing toleration can not be modified except its tolerationSeconds"
    ]


def test_status_updates() -> None:
    strategy = PodStrategy()
    old = create(new_pod())
    new = copy.deepcopy(old)
    new["spec"]["nodeName"] = "sneaky"
    new["metadata"]["labels"] = {"seen": "yes"}
    new["status"] = {"phase": "Running", "podIP": "10.42.0.5", "qosClass": ""}
    strategy.default(new)
    strategy.prepare_for_status_update(new, old)
    assert "nodeName" not in new["spec"]
    assert new["metadata"]["labels"] == {"seen": "yes"}
    assert new["status"]["qosClass"] == "BestEffort"
    assert new["status"]["podIPs"] == [{"ip": "10.42.0.5"}]
    assert strategy.validate_status_update(new, old) == []
    new["status"]["qosClass"] = "Guaranteed"
    assert [e.message() for e in strategy.validate_status_update(new, old)] == [
        'status.qosClass: Invalid value: "Guaranteed": field is immutable'
    ]


def running(
    name: str = "nginx", *, ready: bool = True, restarts: int = 0, **extra: Any
) -> dict[str, Any]:
    return {
        "name": name,
        "ready": ready,
        "restartCount": restarts,
        "state": {"running": {}},
        **extra,
    }


def with_status(status: dict[str, Any], **spec: Any) -> dict[str, Any]:
    pod = new_pod(**spec)
    pod["status"] = status
    return pod


@pytest.mark.parametrize(
    ("pod", "cell"),
    [
        (with_status({"phase": "Pending"}), "Pending"),
        (with_status({"phase": "Running", "containerStatuses": [running()]}), "Running"),
        (
            with_status(
                {
                    "phase": "Pending",
                    "containerStatuses": [
                        {"name": "nginx", "state": {"waiting": {"reason": "ContainerCreating"}}}
                    ],
                }
            ),
            "ContainerCreating",
        ),
        (
            with_status(
                {
                    "phase": "Running",
                    "containerStatuses": [
                        {
                            "name": "nginx",
                            "restartCount": 5,
                            "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                        }
                    ],
                }
            ),
            "CrashLoopBackOff",
        ),
        (
            with_status(
                {
                    "phase": "Succeeded",
                    "containerStatuses": [
                        {
                            "name": "nginx",
                            "state": {"terminated": {"exitCode": 0, "reason": "Completed"}},
                        }
                    ],
                }
            ),
            "Completed",
        ),
        (
            with_status(
                {
                    "phase": "Failed",
                    "containerStatuses": [
                        {"name": "nginx", "state": {"terminated": {"exitCode": 137}}}
                    ],
                }
            ),
            "ExitCode:137",
        ),
        (
            with_status(
                {
                    "phase": "Failed",
                    "containerStatuses": [
                        {"name": "nginx", "state": {"terminated": {"exitCode": 0, "signal": 9}}}
                    ],
                }
            ),
            "Signal:9",
        ),
        (
            with_status(
                {
                    "phase": "Pending",
                    "initContainerStatuses": [
                        {"name": "init", "state": {"terminated": {"exitCode": 0}}},
                        {"name": "init2", "state": {"running": {}}},
                    ],
                },
                initContainers=[{"name": "init", "image": "i"}, {"name": "init2", "image": "i"}],
            ),
            "Init:1/2",
        ),
        (
            with_status(
                {
                    "phase": "Pending",
                    "initContainerStatuses": [
                        {"name": "init", "state": {"waiting": {"reason": "ImagePullBackOff"}}}
                    ],
                },
                initContainers=[{"name": "init", "image": "i"}],
            ),
            "Init:ImagePullBackOff",
        ),
        (
            with_status(
                {
                    "phase": "Pending",
                    "initContainerStatuses": [
                        {
                            "name": "init",
                            "state": {"terminated": {"exitCode": 1, "reason": "Error"}},
                        }
                    ],
                },
                initContainers=[{"name": "init", "image": "i"}],
            ),
            "Init:Error",
        ),
        (with_status({"phase": "Running", "reason": "Evicted"}), "Evicted"),
        (
            with_status(
                {
                    "phase": "Running",
                    "containerStatuses": [
                        running("a", ready=True),
                        {
                            "name": "b",
                            "state": {"terminated": {"exitCode": 0, "reason": "Completed"}},
                        },
                    ],
                    "conditions": [{"type": "Ready", "status": "True"}],
                }
            ),
            "Running",
        ),
        (
            with_status(
                {
                    "phase": "Running",
                    "containerStatuses": [
                        running("a", ready=True),
                        {
                            "name": "b",
                            "state": {"terminated": {"exitCode": 0, "reason": "Completed"}},
                        },
                    ],
                }
            ),
            "NotReady",
        ),
    ],
)
def test_status_cell(pod: dict[str, Any], cell: str) -> None:
    assert pod_status_cell(pod) == cell


def test_terminating_and_node_lost() -> None:
    pod = with_status({"phase": "Running", "containerStatuses": [running()]})
    pod["metadata"]["deletionTimestamp"] = ago(seconds=3)
    assert pod_status_cell(pod) == "Terminating"
    pod["status"]["reason"] = "NodeLost"
    assert pod_status_cell(pod) == "Unknown"
    done = with_status({"phase": "Succeeded"})
    done["metadata"]["deletionTimestamp"] = ago(seconds=3)
    assert pod_status_cell(done) == "Succeeded"


def test_row() -> None:
    pod = with_status(
        {
            "phase": "Running",
            "podIPs": [{"ip": "10.42.0.7"}],
            "conditions": [
                {"type": "Ready", "status": "True"},
                {"type": "example.com/gate", "status": "True"},
            ],
            "containerStatuses": [
                running("a", restarts=3, lastState={"terminated": {"finishedAt": ago(minutes=5)}}),
                running("b", ready=False),
            ],
        },
        nodeName="node-1",
        readinessGates=[{"conditionType": "example.com/gate"}, {"conditionType": "other"}],
    )
    pod["spec"]["containers"].append({"name": "b", "image": "b"})
    assert pod_row(pod, NOW) == [
        "web",
        "1/2",
        "Running",
        "3 (5m ago)",
        "5m",
        "10.42.0.7",
        "node-1",
        "<none>",
        "1/2",
    ]
    bare = new_pod()
    assert pod_row(bare, NOW) == [
        "web",
        "0/1",
        "",
        "0",
        "5m",
        "<none>",
        "<none>",
        "<none>",
        "<none>",
    ]


def test_columns_and_conditions() -> None:
    strategy = PodStrategy()
    assert [c.name for c in strategy.columns] == [
        "Name",
        "Ready",
        "Status",
        "Restarts",
        "Age",
        "IP",
        "Node",
        "Nominated Node",
        "Readiness Gates",
    ]
    assert [c.priority for c in strategy.columns] == [0, 0, 0, 0, 0, 1, 1, 1, 1]
    assert strategy.columns[5].description.startswith("podIP address allocated to the pod.")
    assert strategy.row_conditions(with_status({"phase": "Succeeded"})) == [
        {
            "type": "Completed",
            "status": "True",
            "reason": "Succeeded",
            "message": "The pod has completed successfully.",
        }
    ]
    assert (
        strategy.row_conditions(with_status({"phase": "Failed"}))[0]["message"] == "The pod failed."
    )  # type: ignore[index]
    assert strategy.row_conditions(with_status({"phase": "Running"})) is None


def test_selectable_fields() -> None:
    pod = create(new_pod(hostNetwork=True, nodeName="n1"))
    pod["status"].update({"phase": "Running", "podIPs": [{"ip": "10.0.0.1"}]})
    fields = PodStrategy().selectable_fields(pod)
    assert fields == {
        "metadata.name": "web",
        "metadata.namespace": "default",
        "spec.nodeName": "n1",
        "spec.restartPolicy": "Always",
        "spec.schedulerName": "default-scheduler",
        "spec.serviceAccountName": "default",
        "spec.hostNetwork": "true",
        "status.phase": "Running",
        "status.podIP": "10.0.0.1",
        "status.nominatedNodeName": "",
    }
    assert set(PodStrategy.field_labels) == set(fields) - {"metadata.name", "metadata.namespace"}


def test_pod_only_rules() -> None:
    strategy = PodStrategy()
    pod = new_pod(ephemeralContainers=[{"name": "dbg", "image": "busybox"}])
    strategy.default(pod)
    assert [e.message() for e in strategy.validate(pod)] == [
        "spec.ephemeralContainers: Forbidden: cannot be set on create"
    ]
    pod = new_pod(containers=[{"name": "a", "image": " a "}])
    strategy.default(pod)
    assert [e.message() for e in strategy.validate(pod)] == [
        'spec.containers[0].image: Invalid value: " a ": must not have leading or trailing whitespace'
    ]


def test_name_warning() -> None:
    pod = new_pod()
    pod["metadata"]["name"] = "web.1"
    assert PodStrategy().warnings(pod) == [
        "metadata.name: this is used in the Pod's hostname, which can result in surprising behavior; "
        "a DNS label is recommended: [must not contain dots]"
    ]
    assert PodStrategy().warnings(new_pod()) == []


IP_PROBLEM = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"


@pytest.mark.parametrize(
    ("ips", "invalid"),
    [
        (["10.42.0.5"], []),
        (["010.042.000.005"], []),  # leading zeros, as netutils.ParseIPSloppy reads them
        (["255.255.255.255", "fd00::5"], []),
        (["256.1.1.1"], ["256.1.1.1"]),
        (["10.42.0"], ["10.42.0"]),
        (["10.42.0.5 "], ["10.42.0.5 "]),
        (["0x1.2.3.4"], ["0x1.2.3.4"]),
    ],
)
def test_status_pod_ips_are_validated(ips: list[str], invalid: list[str]) -> None:
    strategy = PodStrategy()
    old = create(new_pod())
    new = copy.deepcopy(old)
    new["status"] = {"podIPs": [{"ip": ip} for ip in ips]}
    strategy.prepare_for_status_update(new, old)
    assert [e.message() for e in strategy.validate_status_update(new, old)] == [
        f'status.podIPs[{ips.index(ip)}]: Invalid value: "{ip}": {IP_PROBLEM}' for ip in invalid
    ]


def test_status_condition_types_are_checked_each_time() -> None:
    strategy = PodStrategy()
    old = create(new_pod())
    for _ in range(2):
        new = copy.deepcopy(old)
        new["status"] = {
            "conditions": [
                {"type": "ContainersReady", "status": "True"},
                {"type": "bad type", "status": "True"},
            ]
        }
        strategy.prepare_for_status_update(new, old)
        assert [e.field for e in strategy.validate_status_update(new, old)] == [
            "metadata.conditions[1].Type"
        ]
