"""generate_pod_status and pod_phase: a pod's status as kubelet computes it."""

from __future__ import annotations

from typing import Any

from tests.unit.agent.kubelet.podfixtures import exited, make_pod, running, runtime, sandbox
from timonel.agent.kubelet.runtimestate import PodRuntime
from timonel.agent.kubelet.status import (
    PodStatusInputs,
    generate_pod_status,
    normalized_image_name,
    qos_class,
)

NOW = "2024-05-01T10:00:00Z"


def status_of(pod: dict[str, Any], state: PodRuntime, **inputs: Any) -> dict[str, Any]:
    return generate_pod_status(
        pod, state, PodStatusInputs(now=NOW, host_ips=["192.168.1.2"], **inputs)
    )


def conditions(status: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c.get("reason", "")) for c in status["conditions"]}


def test_a_pod_without_containers_yet_is_pending_and_container_creating() -> None:
    pod = make_pod()
    status = status_of(pod, PodRuntime(uid="uid-1"))
    assert status["phase"] == "Pending"
    assert status["containerStatuses"] == [
        {
            "name": "c",
            "image": "busybox",
            "imageID": "",
            "lastState": {},
            "ready": False,
            "restartCount": 0,
            "started": False,
            "state": {"waiting": {"reason": "ContainerCreating"}},
        }
    ]
    assert conditions(status) == {
        "PodReadyToStartContainers": ("False", ""),
        "Initialized": ("True", ""),
        "Ready": ("False", "ContainersNotReady"),
        "ContainersReady": ("False", "ContainersNotReady"),
        "PodScheduled": ("True", ""),
    }
    assert status["startTime"] == NOW
    assert status["hostIP"] == "192.168.1.2"
    assert "podIP" not in status


def test_a_running_pod_is_ready_with_its_addresses() -> None:
    pod = make_pod()
    status = status_of(pod, runtime(running(pod, "c")))
    assert status["phase"] == "Running"
    [container] = status["containerStatuses"]
    assert container["ready"] is True and container["started"] is True
    assert container["containerID"] == "containerd://c-0"
    assert container["image"] == "docker.io/library/busybox:latest"
    assert container["state"] == {"running": {"startedAt": "2023-11-14T22:13:21Z"}}
    assert status["podIP"] == "10.1.0.5"
    assert status["podIPs"] == [{"ip": "10.1.0.5"}]
    assert all(value == "True" for value, _ in conditions(status).values())
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["lastProbeTime"] is None and ready["lastTransitionTime"] == NOW


def test_conditions_keep_their_transition_time_while_unchanged() -> None:
    pod = make_pod()
    before = status_of(pod, runtime(running(pod, "c")))
    for condition in before["conditions"]:
        condition["lastTransitionTime"] = "2020-01-01T00:00:00Z"
    pod["status"] = before
    after = generate_pod_status(
        pod, runtime(running(pod, "c")), PodStatusInputs(now="2030-01-01T00:00:00Z")
    )
    assert {c["lastTransitionTime"] for c in after["conditions"]} == {"2020-01-01T00:00:00Z"}
    assert after["startTime"] == before["startTime"]


def test_readiness_and_startup_probes_decide_ready_and_started() -> None:
    probe = {"exec": {"command": ["true"]}}
    pod = make_pod({"name": "c", "image": "x", "readinessProbe": probe, "startupProbe": probe})
    state = runtime(running(pod, "c"))
    unstarted = status_of(pod, state)["containerStatuses"][0]
    assert (unstarted["started"], unstarted["ready"]) == (False, False)
    started_only = status_of(pod, state, startup={"c-0": True})["containerStatuses"][0]
    assert (started_only["started"], started_only["ready"]) == (True, False)
    both = status_of(pod, state, startup={"c-0": True}, readiness={"c-0": True})
    assert (both["containerStatuses"][0]["started"], both["containerStatuses"][0]["ready"]) == (
        True,
        True,
    )
    assert conditions(both)["Ready"] == ("True", "")
    unready = status_of(pod, state, startup={"c-0": True}, readiness={"c-0": False})
    ready = next(c for c in unready["conditions"] if c["type"] == "Ready")
    assert ready["message"] == "containers with unready status: [c]"


def test_a_crash_looping_container_waits_with_its_last_termination() -> None:
    pod = make_pod()
    state = runtime(exited(pod, "c", 3, restarts=2, message="bye"))
    status = status_of(
        pod,
        state,
        waiting_reasons={"c": ("CrashLoopBackOff", "back-off 20s restarting failed container=c")},
    )
    [container] = status["containerStatuses"]
    assert container["state"] == {
        "waiting": {
            "reason": "CrashLoopBackOff",
            "message": "back-off 20s restarting failed container=c",
        }
    }
    assert container["lastState"]["terminated"]["exitCode"] == 3
    assert container["lastState"]["terminated"]["message"] == "bye"
    assert container["restartCount"] == 2
    assert status["phase"] == "Running"


def test_the_previous_container_is_the_last_state() -> None:
    pod = make_pod()
    state = runtime(
        exited(pod, "c", 137, id="old", created=1, reason="OOMKilled"),
        running(pod, "c", id="new", restarts=1, created=5),
    )
    [container] = status_of(pod, state)["containerStatuses"]
    assert "running" in container["state"]
    assert container["lastState"]["terminated"]["reason"] == "OOMKilled"
    assert container["lastState"]["terminated"]["containerID"] == "containerd://old"
    assert container["restartCount"] == 1


def test_phases_of_finished_pods() -> None:
    never = make_pod(
        {"name": "a", "image": "x"}, {"name": "b", "image": "x"}, restart_policy="Never"
    )
    assert (
        status_of(never, runtime(exited(never, "a", 0), exited(never, "b", 0)))["phase"]
        == "Succeeded"
    )
    assert (
        status_of(never, runtime(exited(never, "a", 0), exited(never, "b", 2)))["phase"] == "Failed"
    )
    assert (
        status_of(never, runtime(exited(never, "a", 0), running(never, "b")))["phase"] == "Running"
    )
    on_failure = make_pod(restart_policy="OnFailure")
    assert status_of(on_failure, runtime(exited(on_failure, "c", 1)))["phase"] == "Running"
    always = make_pod()
    assert status_of(always, runtime(exited(always, "c", 0)))["phase"] == "Running"
    assert status_of(always, runtime(exited(always, "c", 0)), terminal=True)["phase"] == "Succeeded"
    assert status_of(always, runtime(exited(always, "c", 143)), terminal=True)["phase"] == "Failed"


def test_a_terminal_phase_never_goes_back() -> None:
    pod = make_pod(restart_policy="Never")
    pod["status"]["phase"] = "Failed"
    assert status_of(pod, runtime(running(pod, "c")))["phase"] == "Failed"


def test_a_succeeded_pod_reports_pod_completed() -> None:
    pod = make_pod(restart_policy="Never")
    status = status_of(pod, runtime(exited(pod, "c", 0), sandboxes=(sandbox(ready=False),)))
    assert conditions(status)["Ready"] == ("False", "PodCompleted")
    assert conditions(status)["ContainersReady"] == ("False", "PodCompleted")
    assert conditions(status)["PodReadyToStartContainers"] == ("False", "")
    assert status["podIP"] == "10.1.0.5"


def test_init_containers_keep_the_pod_pending_and_uninitialized() -> None:
    pod = make_pod(init=[{"name": "i1", "image": "x"}, {"name": "i2", "image": "x"}])
    status = status_of(pod, runtime(exited(pod, "i1", 0), running(pod, "i2", created=3)))
    assert status["phase"] == "Pending"
    assert [s["name"] for s in status["initContainerStatuses"]] == ["i1", "i2"]
    assert status["initContainerStatuses"][0]["ready"] is True
    initialized = next(c for c in status["conditions"] if c["type"] == "Initialized")
    assert initialized["status"] == "False"
    assert initialized["message"] == "containers with incomplete status: [i2]"
    assert status["containerStatuses"][0]["state"] == {"waiting": {"reason": "PodInitializing"}}


def test_a_failed_init_container_fails_a_pod_that_never_restarts() -> None:
    pod = make_pod(init=[{"name": "i1", "image": "x"}], restart_policy="Never")
    assert status_of(pod, runtime(exited(pod, "i1", 1)))["phase"] == "Failed"


def test_container_statuses_are_sorted_by_name() -> None:
    pod = make_pod({"name": "zeta", "image": "x"}, {"name": "alpha", "image": "x"})
    names = [s["name"] for s in status_of(pod, PodRuntime(uid="uid-1"))["containerStatuses"]]
    assert names == ["alpha", "zeta"]


def test_readiness_gates_must_be_true() -> None:
    pod = make_pod(readinessGates=[{"conditionType": "example.com/gate"}])
    status = status_of(pod, runtime(running(pod, "c")))
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["reason"] == "ReadinessGatesNotReady"
    pod["status"]["conditions"] = [{"type": "example.com/gate", "status": "True"}]
    status = status_of(pod, runtime(running(pod, "c")))
    assert conditions(status)["Ready"] == ("True", "")
    assert conditions(status)["example.com/gate"] == ("True", "")


def test_host_network_pods_have_the_node_address() -> None:
    pod = make_pod(hostNetwork=True)
    status = status_of(
        pod, runtime(running(pod, "c"), sandboxes=(sandbox(ip="", host_network=True),))
    )
    assert status["podIP"] == "192.168.1.2"


def test_volume_mounts_are_reported_with_recursive_read_only() -> None:
    pod = make_pod(
        {
            "name": "c",
            "image": "x",
            "volumeMounts": [
                {"name": "a", "mountPath": "/a", "readOnly": True},
                {"name": "b", "mountPath": "/b"},
            ],
        }
    )
    [container] = status_of(pod, runtime(running(pod, "c")))["containerStatuses"]
    assert container["volumeMounts"] == [
        {"name": "a", "mountPath": "/a", "readOnly": True, "recursiveReadOnly": "Disabled"},
        {"name": "b", "mountPath": "/b"},
    ]


def test_qos_classes() -> None:
    def pod_with(resources: dict[str, Any]) -> dict[str, Any]:
        return make_pod({"name": "c", "image": "x", "resources": resources})

    assert qos_class(pod_with({})) == "BestEffort"
    guaranteed = {"cpu": "1", "memory": "1Gi"}
    assert qos_class(pod_with({"limits": guaranteed, "requests": guaranteed})) == "Guaranteed"
    assert (
        qos_class(pod_with({"limits": {"memory": "1Gi"}, "requests": {"memory": "1Gi"}}))
        == "Burstable"
    )
    assert qos_class(pod_with({"requests": {"cpu": "100m"}})) == "Burstable"


def test_image_names_as_containerd_spells_them() -> None:
    assert normalized_image_name("busybox") == "docker.io/library/busybox:latest"
    assert normalized_image_name("library/busybox:1.36") == "docker.io/library/busybox:1.36"
    assert normalized_image_name("localhost/timonel/busybox:1") == "localhost/timonel/busybox:1"
    assert normalized_image_name("registry.local:5000/app") == "registry.local:5000/app:latest"
    assert normalized_image_name("quay.io/x/y@sha256:abcd") == "quay.io/x/y@sha256:abcd"


def test_an_evicted_pod_fails_with_the_reason() -> None:
    pod = make_pod()
    message = 'Usage of EmptyDir volume "scratch" exceeds the limit "1Mi". '
    status = status_of(pod, runtime(exited(pod, "c", 137)), eviction=message)
    assert (status["phase"], status["reason"], status["message"]) == ("Failed", "Evicted", message)
    disruption = next(c for c in status["conditions"] if c["type"] == "DisruptionTarget")
    assert (disruption["status"], disruption["reason"]) == ("True", "TerminationByKubelet")
    assert conditions(status)["Ready"] == ("False", "PodFailed")
