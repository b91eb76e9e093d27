"""Node lifecycle and taint eviction inside `timonel server`, with short monitoring
periods (hidden flags). The test is the nodes' kubelets: it registers Nodes with a
Ready condition and renews their Leases in kube-node-lease, then stops renewing one."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config

from tests.conftest import RunningServer, start_server
from tests.integration.controllers.harness import events, get, now, wait_for

UNREACHABLE = "node.kubernetes.io/unreachable"
NOT_READY = "node.kubernetes.io/not-ready"


@pytest.fixture(scope="module")
def fast_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    root: Path = tmp_path_factory.mktemp("lifecycle")
    running = start_server(
        root / "data",
        root / "cache",
        "--node-monitor-grace-period",
        "2s",
        "--node-monitor-period",
        "500ms",
    )
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def core(fast_server: RunningServer) -> Iterator[client.CoreV1Api]:
    configuration = client.Configuration()
    config.load_kube_config(
        config_file=str(fast_server.kubeconfig), client_configuration=configuration
    )
    with client.ApiClient(configuration) as api:
        yield client.CoreV1Api(api)


class Kubelets:
    """Renews the Lease of every node it keeps alive, as kubelets do."""

    def __init__(self, api: client.ApiClient) -> None:
        self.leases = client.CoordinationV1Api(api)
        self.alive: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew, daemon=True)
        self._thread.start()

    def register(self, core: client.CoreV1Api, name: str, zone: str) -> None:
        condition = {"lastHeartbeatTime": now(), "lastTransitionTime": now()}
        core.create_node(
            {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {"name": name, "labels": {"topology.kubernetes.io/zone": zone}},
                "status": {
                    "conditions": [
                        {
                            "type": "MemoryPressure",
                            "status": "False",
                            "reason": "KubeletHasSufficientMemory",
                            "message": "ok",
                            **condition,
                        },
                        {
                            "type": "Ready",
                            "status": "True",
                            "reason": "KubeletReady",
                            "message": "kubelet is posting ready status",
                            **condition,
                        },
                    ]
                },
            }
        )
        self.leases.create_namespaced_lease(
            "kube-node-lease",
            {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": name},
                "spec": {
                    "holderIdentity": name,
                    "leaseDurationSeconds": 40,
                    "renewTime": datetime.now(UTC),
                },
            },
        )
        self.alive.add(name)

    def _renew(self) -> None:
        while not self._stop.wait(0.3):
            for name in list(self.alive):
                try:
                    lease = self.leases.read_namespaced_lease(name, "kube-node-lease")
                    lease.spec.renew_time = datetime.now(UTC)
                    self.leases.replace_namespaced_lease(name, "kube-node-lease", lease)
                except client.ApiException:
                    continue

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


@pytest.fixture(scope="module")
def kubelets(core: client.CoreV1Api) -> Iterator[Kubelets]:
    running = Kubelets(core.api_client)
    # A node that stays healthy throughout, in a zone of its own: the cluster is never
    # entirely down (which would stop all tainting, as kube's controller does).
    running.register(core, "steady", "zone-steady")
    yield running
    running.stop()


def condition(node: dict[str, Any] | None, kind: str) -> dict[str, Any]:
    return next(
        c for c in ((node or {}).get("status") or {}).get("conditions") or [] if c["type"] == kind
    )


def taints(server: RunningServer, name: str) -> set[tuple[str, str]]:
    node = get(server, "node", name) or {}
    return {(t["key"], t["effect"]) for t in (node.get("spec") or {}).get("taints") or []}


def bound_pod(name: str, node: str, tolerations: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "nodeName": node,
            "tolerations": tolerations,
            "containers": [{"name": "c", "image": "nginx"}],
        },
    }


def running(core: client.CoreV1Api, namespace: str, name: str) -> None:
    core.patch_namespaced_pod_status(
        name,
        namespace,
        {
            "status": {
                "phase": "Running",
                "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": now()}],
            }
        },
    )


def test_a_node_that_stops_renewing_is_unknown_tainted_and_emptied(
    fast_server: RunningServer, core: client.CoreV1Api, kubelets: Kubelets
) -> None:
    lost = f"lost-{uuid.uuid4().hex[:6]}"
    kubelets.register(core, lost, "zone-lost")
    namespace = f"t-{uuid.uuid4().hex[:8]}"
    fast_server.kubectl("create", "namespace", namespace)
    unreachable_for = {"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute"}
    pods = {
        "short": bound_pod("short", lost, [{**unreachable_for, "tolerationSeconds": 2}]),
        "forever": bound_pod("forever", lost, [unreachable_for]),
        "safe": bound_pod("safe", "steady", []),
    }
    for pod in pods.values():
        core.create_namespaced_pod(namespace, pod)
        running(core, namespace, pod["metadata"]["name"])
    # Admission gave the pods without tolerations kube's default 300 s ones.
    safe = get(fast_server, "pod", "safe", namespace)
    assert {(t["key"], t.get("tolerationSeconds")) for t in safe["spec"]["tolerations"]} == {  # type: ignore[index]
        (UNREACHABLE, 300),
        (NOT_READY, 300),
    }

    kubelets.alive.discard(lost)
    unknown = wait_for(
        lambda: (
            (node := get(fast_server, "node", lost))
            and condition(node, "Ready")["status"] == "Unknown"
            and node
        ),
        what="Ready=Unknown",
    )
    ready = condition(unknown, "Ready")
    assert (ready["reason"], ready["message"]) == (
        "NodeStatusUnknown",
        "Kubelet stopped posting node status.",
    )
    assert condition(unknown, "MemoryPressure")["status"] == "Unknown"
    assert condition(unknown, "DiskPressure")["reason"] == "NodeStatusNeverUpdated"
    wait_for(
        lambda: (
            {(UNREACHABLE, "NoExecute"), (UNREACHABLE, "NoSchedule")} <= taints(fast_server, lost)
        ),
        what="unreachable taints",
    )
    assert ("NodeNotReady", f"Node {lost} status is now: NodeNotReady") in events(
        fast_server, "default", "Node", lost
    )

    # The pods on the lost node are marked not ready; the one tolerating for 2 s goes.
    wait_for(
        lambda: (
            condition(get(fast_server, "pod", "forever", namespace), "Ready")["status"] == "False"
        ),
        what="pod marked not ready",
    )
    deleted = wait_for(
        lambda: (
            (pod := get(fast_server, "pod", "short", namespace)) is None
            or (pod["metadata"].get("deletionTimestamp") and pod)
        ),
        timeout=15,
        what="short-toleration pod deleted",
    )
    if isinstance(deleted, dict):
        target = condition(deleted, "DisruptionTarget")
        assert (target["status"], target["reason"]) == ("True", "DeletionByTaintManager")
    assert ("TaintManagerEviction", f"Marking for deletion Pod {namespace}/short") in events(
        fast_server, namespace, "Pod", "short"
    )
    assert not get(fast_server, "pod", "forever", namespace)["metadata"].get("deletionTimestamp")  # type: ignore[index]
    steady_pod = get(fast_server, "pod", "safe", namespace)
    assert steady_pod is not None and not steady_pod["metadata"].get("deletionTimestamp")
    assert condition(steady_pod, "Ready")["status"] == "True"


def test_a_not_ready_node_is_tainted_until_it_is_ready_again(
    fast_server: RunningServer, core: client.CoreV1Api, kubelets: Kubelets
) -> None:
    sick = f"sick-{uuid.uuid4().hex[:6]}"
    kubelets.register(core, sick, "zone-sick")

    def report(status: str) -> None:
        """Post the Ready condition (again, should the controller's write come first)."""
        for _ in range(10):
            node = core.read_node(sick)
            for entry in node.status.conditions:
                if entry.type == "Ready":
                    entry.status = status
                    entry.reason = "KubeletReady" if status == "True" else "KubeletNotReady"
                    entry.last_heartbeat_time = datetime.now(UTC)
                    entry.last_transition_time = datetime.now(UTC)
            try:
                core.replace_node_status(sick, node)
                return
            except client.ApiException as error:
                if error.status != 409:
                    raise
        raise AssertionError("could not post node status")

    report("False")
    wait_for(
        lambda: {(NOT_READY, "NoSchedule"), (NOT_READY, "NoExecute")} <= taints(fast_server, sick),
        what="not-ready taints",
    )
    assert not {(UNREACHABLE, "NoExecute"), (UNREACHABLE, "NoSchedule")} & taints(fast_server, sick)
    report("True")
    wait_for(
        lambda: not {t for t in taints(fast_server, sick) if t[0] == NOT_READY},
        what="taints removed",
    )
