"""compute_pod_actions: what a pod worker does to bring the runtime to the pod's spec."""

from __future__ import annotations

from dataclasses import replace

from tests.unit.agent.kubelet.podfixtures import exited, make_pod, running, runtime, sandbox
from timonel.agent.kubelet.actions import (
    FAILURE,
    SUCCESS,
    ProbeResults,
    compute_pod_actions,
    should_restart,
)
from timonel.agent.kubelet.runtimestate import PodRuntime


def test_a_new_pod_gets_a_sandbox_and_all_its_containers() -> None:
    pod = make_pod({"name": "a", "image": "x"}, {"name": "b", "image": "x"})
    actions = compute_pod_actions(pod, PodRuntime(uid="uid-1"))
    assert actions.create_sandbox and actions.kill_pod
    assert actions.attempt == 0
    assert actions.containers_to_start == [0, 1]


def test_a_pod_with_init_containers_starts_the_first_init_container_only() -> None:
    pod = make_pod(init=[{"name": "i1", "image": "x"}, {"name": "i2", "image": "x"}])
    actions = compute_pod_actions(pod, PodRuntime(uid="uid-1"))
    assert actions.create_sandbox
    assert actions.init_containers_to_start == [0]
    assert actions.containers_to_start == []


def test_init_containers_run_one_after_the_other_then_the_containers() -> None:
    pod = make_pod(init=[{"name": "i1", "image": "x"}, {"name": "i2", "image": "x"}])
    after_first = compute_pod_actions(pod, runtime(exited(pod, "i1", 0)))
    assert after_first.init_containers_to_start == [1]
    assert after_first.containers_to_start == []
    both_done = runtime(exited(pod, "i1", 0, created=1), exited(pod, "i2", 0, created=2))
    done = compute_pod_actions(pod, both_done)
    assert done.init_containers_to_start == []
    assert done.containers_to_start == [0]


def test_a_running_init_container_is_waited_for() -> None:
    pod = make_pod(init=[{"name": "i1", "image": "x"}])
    actions = compute_pod_actions(pod, runtime(running(pod, "i1")))
    assert actions.is_noop


def test_a_failed_init_container_is_retried_unless_the_pod_never_restarts() -> None:
    init = [{"name": "i1", "image": "x"}]
    always = make_pod(init=init)
    assert compute_pod_actions(
        always, runtime(exited(always, "i1", 1))
    ).init_containers_to_start == [0]
    never = make_pod(init=init, restart_policy="Never")
    actions = compute_pod_actions(never, runtime(exited(never, "i1", 1)))
    assert actions.kill_pod
    assert actions.init_containers_to_start == []


def test_a_sidecar_must_start_before_the_next_init_container() -> None:
    sidecar = {
        "name": "side",
        "image": "x",
        "restartPolicy": "Always",
        "startupProbe": {"exec": {}},
    }
    pod = make_pod(init=[sidecar, {"name": "i2", "image": "x"}])
    container = running(pod, "side")
    waiting = compute_pod_actions(pod, runtime(container))
    assert waiting.init_containers_to_start == []
    started = compute_pod_actions(
        pod, runtime(container), ProbeResults(startup={container.id: SUCCESS})
    )
    assert started.init_containers_to_start == [1]


def test_a_sidecar_that_exited_is_restarted_alongside_the_containers() -> None:
    pod = make_pod(init=[{"name": "side", "image": "x", "restartPolicy": "Always"}])
    state = runtime(exited(pod, "side", 1, created=1), running(pod, "c", created=2))
    actions = compute_pod_actions(pod, state)
    assert actions.init_containers_to_start == [0]
    assert not actions.kill_pod


def test_exited_containers_restart_as_the_restart_policy_says() -> None:
    for policy, code, restarts in (
        ("Always", 0, True),
        ("Always", 1, True),
        ("OnFailure", 0, False),
        ("OnFailure", 1, True),
        ("Never", 1, False),
    ):
        pod = make_pod(restart_policy=policy)
        state = runtime(exited(pod, "c", code))
        assert should_restart(pod["spec"]["containers"][0], pod, state) is restarts, policy
        actions = compute_pod_actions(pod, state)
        assert (actions.containers_to_start == [0]) is restarts
        assert actions.kill_pod is not restarts


def test_a_deleted_pod_restarts_nothing() -> None:
    pod = make_pod()
    pod["metadata"]["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    assert not should_restart(pod["spec"]["containers"][0], pod, runtime(exited(pod, "c", 1)))


def test_a_failed_liveness_probe_kills_and_restarts_the_container() -> None:
    pod = make_pod({"name": "a", "image": "x"}, {"name": "b", "image": "x"})
    a, b = running(pod, "a"), running(pod, "b")
    actions = compute_pod_actions(pod, runtime(a, b), ProbeResults(liveness={a.id: FAILURE}))
    assert actions.containers_to_start == [0]
    assert list(actions.containers_to_kill) == [a.id]
    assert (
        actions.containers_to_kill[a.id].message
        == "Container a failed liveness probe, will be restarted"
    )
    assert not actions.kill_pod


def test_a_failed_liveness_probe_with_restart_policy_never_ends_the_pod() -> None:
    pod = make_pod(restart_policy="Never")
    container = running(pod, "c")
    actions = compute_pod_actions(
        pod, runtime(container), ProbeResults(liveness={container.id: FAILURE})
    )
    assert actions.containers_to_kill[container.id].message == "Container c failed liveness probe"
    assert actions.kill_pod


def test_a_changed_container_spec_restarts_the_container() -> None:
    pod = make_pod()
    container = replace(running(pod, "c"), hash="stale")
    actions = compute_pod_actions(pod, runtime(container))
    assert actions.containers_to_start == [0]
    assert (
        actions.containers_to_kill[container.id].message
        == "Container c definition changed, will be restarted"
    )


def test_a_sandbox_that_is_not_ready_is_replaced_with_the_next_attempt() -> None:
    pod = make_pod()
    state = runtime(exited(pod, "c", 137), sandboxes=(sandbox(ready=False, attempt=2),))
    actions = compute_pod_actions(pod, state)
    assert actions.create_sandbox and actions.kill_pod
    assert actions.attempt == 3


def test_a_pod_that_never_restarts_gets_no_new_sandbox_once_its_containers_ran() -> None:
    pod = make_pod(restart_policy="Never")
    state = runtime(exited(pod, "c", 0), sandboxes=(sandbox(ready=False),))
    actions = compute_pod_actions(pod, state)
    assert actions.kill_pod
    assert not actions.create_sandbox


def test_a_sandbox_without_an_ip_is_replaced_but_host_network_needs_none() -> None:
    pod = make_pod()
    state = runtime(sandboxes=(sandbox(ip=""),))
    assert compute_pod_actions(pod, state).create_sandbox
    host = make_pod(hostNetwork=True)
    host_state = runtime(running(host, "c"), sandboxes=(sandbox(ip="", host_network=True),))
    assert compute_pod_actions(host, host_state).is_noop


def test_running_containers_are_left_alone() -> None:
    pod = make_pod()
    assert compute_pod_actions(pod, runtime(running(pod, "c"))).is_noop
