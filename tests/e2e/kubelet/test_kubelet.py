"""The node agent end to end: `timonel server` with its agent runs real pods on containerd.

One server (and node) for the whole module; each test works in its own namespace. Pods use
the node's built-in busybox image, short probe periods and short grace periods.
"""

from __future__ import annotations

import json
import os
import signal
import time
import urllib.request
from pathlib import Path
from typing import Any

from tests.e2e.kubelet.conftest import Cluster, condition, container_status, wait_for
from timonel.agent.runtime.cri import CriClient

BUSYBOX = "localhost/timonel/busybox:1"
WAIT_FOREVER = "trap 'exit 0' TERM; sleep 3600 & wait"


def pod_manifest(name: str, containers: list[dict[str, Any]], **spec: Any) -> str:
    for container in containers:
        container.setdefault("image", BUSYBOX)
    spec.setdefault("terminationGracePeriodSeconds", 2)
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name},
            "spec": {"containers": containers, **spec},
        }
    )


def running_pod(cluster: Cluster, namespace: str, name: str, timeout: float = 30) -> dict[str, Any]:
    def ready() -> dict[str, Any] | None:
        pod = cluster.pod(name, namespace)
        return pod if condition(pod, "Ready") == "True" else None

    return wait_for(ready, timeout=timeout, what=f"pod {name} to be Ready")


def test_node_registers_ready_with_capacity_lease_and_images(cluster: Cluster) -> None:
    node = cluster.get("node", cluster.node_name)
    status = node["status"]
    assert status["capacity"]["pods"] == "110"
    assert status["allocatable"]["cpu"] == str(len(os.sched_getaffinity(0)))
    assert {"cpu", "memory", "ephemeral-storage", "pods"} <= set(status["allocatable"])
    assert {c["type"]: c["status"] for c in status["conditions"]} == {
        "MemoryPressure": "False",
        "DiskPressure": "False",
        "PIDPressure": "False",
        "Ready": "True",
    }
    assert [a["type"] for a in status["addresses"]] == ["InternalIP", "Hostname"]
    info = status["nodeInfo"]
    assert info["containerRuntimeVersion"].startswith("containerd://")
    assert info["kubeletVersion"].startswith("v1.32")
    assert info["kernelVersion"] == os.uname().release
    names = {name for image in status["images"] for name in image["names"]}
    assert {"localhost/timonel/busybox:1", "docker.io/library/busybox:latest"} <= names
    assert node["spec"]["podCIDR"].endswith("/24")
    lease = cluster.get("lease", cluster.node_name, "kube-node-lease")
    assert lease["spec"]["holderIdentity"] == cluster.node_name
    assert lease["metadata"]["ownerReferences"][0]["uid"] == node["metadata"]["uid"]
    renewed = lease["spec"]["renewTime"]
    wait_for(
        lambda: (
            cluster.get("lease", cluster.node_name, "kube-node-lease")["spec"]["renewTime"]
            != renewed
        ),
        timeout=15,
        what="the lease to be renewed",
    )


DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: nginx-deployment
spec:
  replicas: 3
  selector:
    matchLabels:
      app: nginx
  minReadySeconds: 5
  template:
    metadata:
      labels:
        app: nginx
    spec:
      terminationGracePeriodSeconds: 2
      containers:
      - name: nginx
        image: localhost/timonel/busybox:1
        command: ["httpd", "-f", "-p", "80", "-h", "/www"]
        ports:
        - containerPort: 80
"""


def test_deployment_pods_serve_http_on_their_pod_ips(cluster: Cluster) -> None:
    namespace = cluster.namespace()
    cluster.apply(DEPLOYMENT, namespace)

    def available() -> dict[str, Any] | None:
        deployment = cluster.get("deployment", "nginx-deployment", namespace)
        return deployment if deployment["status"].get("availableReplicas") == 3 else None

    wait_for(available, timeout=60, what="3 available replicas")
    pods = cluster.get("pods", namespace=namespace)["items"]
    assert len(pods) == 3
    addresses = {pod["status"]["podIP"] for pod in pods}
    assert len(addresses) == 3
    for pod in pods:
        assert pod["status"]["phase"] == "Running"
        assert pod["spec"]["nodeName"] == cluster.node_name
        assert (
            pod["status"]["hostIP"]
            == cluster.get("node", cluster.node_name)["status"]["addresses"][0]["address"]
        )
        statuses = pod["status"]["containerStatuses"]
        assert statuses[0]["ready"] and statuses[0]["containerID"].startswith("containerd://")
    for address in addresses:
        with urllib.request.urlopen(f"http://{address}/", timeout=5) as response:
            assert response.read() == b"hello from timonel busybox\n"


def test_containers_of_a_pod_reach_each_other_on_localhost(cluster: Cluster) -> None:
    namespace = cluster.namespace()
    client = (
        "until wget -q -O /tmp/page http://127.0.0.1:8080/; do sleep 0.2; done; "
        "cat /tmp/page > /dev/termination-log"
    )
    cluster.apply(
        pod_manifest(
            "pair",
            [
                {"name": "server", "command": ["httpd", "-f", "-p", "8080", "-h", "/www"]},
                {"name": "client", "command": ["sh", "-c", client]},
            ],
            restartPolicy="Never",
        ),
        namespace,
    )

    def client_done() -> dict[str, Any] | None:
        status = container_status(cluster.pod("pair", namespace), "client")
        return status["state"].get("terminated")

    terminated = wait_for(client_done, timeout=30, what="the client to fetch the page")
    assert terminated["exitCode"] == 0
    assert terminated["message"] == "hello from timonel busybox\n"


def test_a_killed_main_process_is_restarted(cluster: Cluster) -> None:
    namespace = cluster.namespace()
    cluster.apply(
        pod_manifest("victim", [{"name": "main", "command": ["sh", "-c", "sleep 3600"]}]), namespace
    )
    pod = running_pod(cluster, namespace, "victim")
    first = container_status(pod, "main")
    pid = container_pid(cluster, first["containerID"])
    os.kill(pid, signal.SIGKILL)

    def restarted() -> dict[str, Any] | None:
        status = container_status(cluster.pod("victim", namespace), "main")
        return status if status["restartCount"] == 1 and "running" in status["state"] else None

    status = wait_for(restarted, timeout=30, what="the container to be restarted")
    assert status["containerID"] != first["containerID"]
    assert status["lastState"]["terminated"]["exitCode"] == 137
    assert status["lastState"]["terminated"]["containerID"] == first["containerID"]


def container_pid(cluster: Cluster, container_id: str) -> int:
    import asyncio

    async def pid() -> int:
        async with CriClient(cluster.socket) as cri:
            status = await cri.container_status(container_id.partition("://")[2], verbose=True)
            return int(json.loads(status.info["info"])["pid"])

    return asyncio.run(pid())


def test_a_failing_container_goes_into_crash_loop_backoff_with_growing_delays(
    cluster: Cluster,
) -> None:
    namespace = cluster.namespace()
    cluster.apply(
        pod_manifest(
            "crasher",
            [{"name": "main", "command": ["sh", "-c", "echo oops > /dev/termination-log; exit 3"]}],
        ),
        namespace,
    )
    messages: set[str] = set()

    def third_restart() -> dict[str, Any] | None:
        status = container_status(cluster.pod("crasher", namespace), "main")
        waiting = status["state"].get("waiting") or {}
        if waiting.get("reason") == "CrashLoopBackOff":
            messages.add(waiting["message"].split(" restarting")[0])
        return status if status["restartCount"] >= 3 else None

    status = wait_for(third_restart, timeout=60, interval=0.5, what="three restarts")
    assert {"back-off 10s", "back-off 20s"} <= messages
    assert status["lastState"]["terminated"]["exitCode"] == 3
    assert status["lastState"]["terminated"]["message"] == "oops\n"
    assert cluster.pod("crasher", namespace)["status"]["phase"] == "Running"
    backoffs = [e for e in cluster.events(namespace, "crasher") if e["reason"] == "BackOff"]
    assert backoffs and backoffs[0]["message"].startswith(
        "Back-off restarting failed container main in pod crasher_"
    )


def test_a_failing_liveness_probe_restarts_the_container(cluster: Cluster) -> None:
    namespace = cluster.namespace()
    command = f"touch /tmp/healthy; (sleep 3; rm /tmp/healthy) & {WAIT_FOREVER}"
    probe = {
        "exec": {"command": ["test", "-e", "/tmp/healthy"]},
        "periodSeconds": 1,
        "failureThreshold": 2,
    }
    cluster.apply(
        pod_manifest(
            "sick", [{"name": "main", "command": ["sh", "-c", command], "livenessProbe": probe}]
        ),
        namespace,
    )

    def restarted() -> bool:
        return container_status(cluster.pod("sick", namespace), "main")["restartCount"] >= 1

    wait_for(restarted, timeout=30, what="a liveness restart")
    events = cluster.events(namespace, "sick")
    reasons = {(e["reason"], e["message"]) for e in events}
    assert ("Killing", "Container main failed liveness probe, will be restarted") in reasons
    assert any(r == "Unhealthy" and m.startswith("Liveness probe failed") for r, m in reasons)
    unhealthy = next(e for e in events if e["reason"] == "Unhealthy")
    assert unhealthy["involvedObject"]["fieldPath"] == "spec.containers{main}"


def test_a_failing_readiness_probe_flips_ready_and_back(cluster: Cluster) -> None:
    namespace = cluster.namespace()
    command = f"touch /tmp/ready; {WAIT_FOREVER}"
    probe = {
        "exec": {"command": ["test", "-e", "/tmp/ready"]},
        "periodSeconds": 1,
        "failureThreshold": 1,
    }
    cluster.apply(
        pod_manifest(
            "flappy", [{"name": "main", "command": ["sh", "-c", command], "readinessProbe": probe}]
        ),
        namespace,
    )
    running_pod(cluster, namespace, "flappy")
    assert cluster.exec(namespace, "flappy", "main", "rm", "/tmp/ready").exit_code == 0
    wait_for(
        lambda: condition(cluster.pod("flappy", namespace), "Ready") == "False",
        timeout=10,
        what="Ready=False",
    )
    pod = cluster.pod("flappy", namespace)
    assert container_status(pod, "main")["ready"] is False
    assert container_status(pod, "main")["restartCount"] == 0
    assert cluster.exec(namespace, "flappy", "main", "touch", "/tmp/ready").exit_code == 0
    running_pod(cluster, namespace, "flappy", timeout=10)


def test_a_startup_probe_holds_the_other_probes_off(cluster: Cluster) -> None:
    namespace = cluster.namespace()
    command = f"(sleep 4; touch /tmp/started) & {WAIT_FOREVER}"
    started = {
        "exec": {"command": ["test", "-e", "/tmp/started"]},
        "periodSeconds": 1,
        "failureThreshold": 30,
    }
    container = {
        "name": "main",
        "command": ["sh", "-c", command],
        "startupProbe": started,
        "livenessProbe": {**started, "failureThreshold": 1},
        "readinessProbe": {**started, "failureThreshold": 1},
    }
    cluster.apply(pod_manifest("slow", [container]), namespace)

    def running_unstarted() -> dict[str, Any] | None:
        status = container_status(cluster.pod("slow", namespace), "main")
        return status if "running" in status["state"] else None

    early = wait_for(running_unstarted, timeout=20, what="the container to run")
    assert early["started"] is False and early["ready"] is False
    pod = running_pod(cluster, namespace, "slow", timeout=20)
    status = container_status(pod, "main")
    assert status["started"] is True
    assert status["restartCount"] == 0


CONFIG = """
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {greeting: hello, mode: fast}
---
apiVersion: v1
kind: Secret
metadata: {name: credentials}
stringData: {password: s3cret}
"""


def test_config_maps_and_secrets_as_env_and_volumes(cluster: Cluster) -> None:
    namespace = cluster.namespace()
    cluster.apply(CONFIG, namespace)
    container = {
        "name": "main",
        "command": ["sh", "-c", WAIT_FOREVER],
        "env": [
            {
                "name": "GREETING",
                "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "greeting"}},
            },
            {
                "name": "PASSWORD",
                "valueFrom": {"secretKeyRef": {"name": "credentials", "key": "password"}},
            },
            {"name": "MESSAGE", "value": "$(GREETING) world"},
        ],
        "envFrom": [{"configMapRef": {"name": "settings"}, "prefix": "CFG_"}],
        "volumeMounts": [
            {"name": "settings", "mountPath": "/etc/settings"},
            {"name": "credentials", "mountPath": "/etc/credentials"},
        ],
    }
    volumes = [
        {"name": "settings", "configMap": {"name": "settings"}},
        {"name": "credentials", "secret": {"secretName": "credentials", "defaultMode": 0o400}},
    ]
    cluster.apply(pod_manifest("configured", [container], volumes=volumes), namespace)
    running_pod(cluster, namespace, "configured")
    env = dict(
        line.split("=", 1)
        for line in cluster.exec(namespace, "configured", "main", "env")
        .stdout.decode()
        .splitlines()
        if "=" in line
    )
    assert env["GREETING"] == "hello" and env["PASSWORD"] == "s3cret"
    assert env["MESSAGE"] == "hello world" and env["CFG_mode"] == "fast"
    assert env["KUBERNETES_SERVICE_PORT"] == "443"
    read = cluster.exec(
        namespace,
        "configured",
        "main",
        "cat",
        "/etc/settings/greeting",
        "/etc/credentials/password",
    )
    assert read.stdout == b"hellos3cret"
    mode = cluster.exec(
        namespace, "configured", "main", "stat", "-L", "-c", "%a", "/etc/credentials/password"
    )
    assert mode.stdout.strip() == b"400"
    written = cluster.exec(
        namespace, "configured", "main", "sh", "-c", "echo x > /etc/settings/new"
    )
    assert written.exit_code != 0, "configMap volumes are read-only"

    cluster.kubectl(
        "patch",
        "configmap",
        "settings",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        '{"data": {"greeting": "bonjour"}}',
    )

    def updated() -> bool:
        return (
            cluster.exec(namespace, "configured", "main", "cat", "/etc/settings/greeting").stdout
            == b"bonjour"
        )

    wait_for(updated, timeout=20, what="the ConfigMap update to reach the volume")


def test_missing_config_map_is_a_config_error_until_it_exists(cluster: Cluster) -> None:
    namespace = cluster.namespace()
    env = [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "later", "key": "x"}}}]
    cluster.apply(
        pod_manifest(
            "waits", [{"name": "main", "command": ["sh", "-c", WAIT_FOREVER], "env": env}]
        ),
        namespace,
    )

    def config_error() -> dict[str, Any] | None:
        waiting = (
            container_status(cluster.pod("waits", namespace), "main")["state"].get("waiting") or {}
        )
        return waiting if waiting.get("reason") == "CreateContainerConfigError" else None

    assert wait_for(config_error, timeout=20)["message"] == 'configmap "later" not found'
    cluster.kubectl("create", "configmap", "later", "-n", namespace, "--from-literal=x=1")
    running_pod(cluster, namespace, "waits")


def test_an_empty_dir_is_shared_between_containers(cluster: Cluster) -> None:
    namespace = cluster.namespace()
    mount = [{"name": "shared", "mountPath": "/shared"}]
    cluster.apply(
        pod_manifest(
            "sharing",
            [
                {
                    "name": "writer",
                    "command": ["sh", "-c", f"echo from-writer > /shared/note; {WAIT_FOREVER}"],
                    "volumeMounts": mount,
                },
                {"name": "reader", "command": ["sh", "-c", WAIT_FOREVER], "volumeMounts": mount},
            ],
            volumes=[
                {"name": "shared", "emptyDir": {}},
                {"name": "scratch", "emptyDir": {"medium": "Memory", "sizeLimit": "4Mi"}},
            ],
        ),
        namespace,
    )
    running_pod(cluster, namespace, "sharing")
    wait_for(
        lambda: (
            cluster.exec(namespace, "sharing", "reader", "cat", "/shared/note").stdout
            == b"from-writer\n"
        ),
        timeout=10,
        what="the note",
    )


def test_exceeding_the_memory_limit_ends_in_oom_killed(cluster: Cluster) -> None:
    namespace = cluster.namespace()
    hog = {
        "name": "hog",
        "command": ["dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"],
        "resources": {"limits": {"memory": "16Mi"}},
    }
    cluster.apply(pod_manifest("hog", [hog], restartPolicy="Never"), namespace)

    def failed() -> dict[str, Any] | None:
        pod = cluster.pod("hog", namespace)
        return pod if pod["status"]["phase"] == "Failed" else None

    pod = wait_for(failed, timeout=30, what="the pod to fail")
    terminated = container_status(pod, "hog")["state"]["terminated"]
    assert terminated["reason"] == "OOMKilled"
    assert terminated["exitCode"] == 137
    assert pod["status"]["qosClass"] == "Burstable"


def test_graceful_deletion_runs_pre_stop_and_respects_the_grace_period(
    cluster: Cluster, tmp_path: Path
) -> None:
    namespace = cluster.namespace()
    out = tmp_path / "out"
    volume = [{"name": "out", "hostPath": {"path": str(out), "type": "DirectoryOrCreate"}}]
    mount = [{"name": "out", "mountPath": "/out"}]
    polite = {
        "name": "main",
        "command": ["sh", "-c", "trap 'echo TERM >> /out/polite; exit 0' TERM; sleep 3600 & wait"],
        "volumeMounts": mount,
        "lifecycle": {
            "preStop": {"exec": {"command": ["sh", "-c", "echo preStop >> /out/polite"]}}
        },
    }
    stubborn = {"name": "main", "command": ["sh", "-c", "sleep 3600"]}
    cluster.apply(
        pod_manifest("polite", [polite], volumes=volume, terminationGracePeriodSeconds=10),
        namespace,
    )
    cluster.apply(pod_manifest("stubborn", [stubborn], terminationGracePeriodSeconds=3), namespace)
    running_pod(cluster, namespace, "polite")
    running_pod(cluster, namespace, "stubborn")

    started = time.monotonic()
    cluster.kubectl("delete", "pod", "polite", "-n", namespace, "--wait=true", timeout=30)
    assert time.monotonic() - started < 8
    assert (out / "polite").read_text() == "preStop\nTERM\n"

    started = time.monotonic()
    cluster.kubectl("delete", "pod", "stubborn", "-n", namespace, "--wait=false")
    terminating = cluster.pod("stubborn", namespace)
    assert terminating["metadata"]["deletionGracePeriodSeconds"] == 3
    wait_for(
        lambda: (
            cluster.kubectl("get", "pod", "stubborn", "-n", namespace, check=False).returncode != 0
        ),
        timeout=20,
        what="the pod to be gone",
    )
    took = time.monotonic() - started
    assert 3 <= took < 10, took
    killing = [e for e in cluster.events(namespace, "stubborn") if e["reason"] == "Killing"]
    assert killing and killing[0]["message"] == "Stopping container main"


def test_agent_restart_adopts_running_pods(cluster: Cluster) -> None:
    namespace = cluster.namespace()
    cluster.apply(DEPLOYMENT.replace("replicas: 3", "replicas: 2"), namespace)
    wait_for(
        lambda: (
            cluster.get("deployment", "nginx-deployment", namespace)["status"].get("readyReplicas")
            == 2
        ),
        timeout=60,
        what="2 ready replicas",
    )

    def snapshot() -> dict[str, tuple[str, int]]:
        found = {}
        for name in cluster.namespaces:
            for pod in cluster.get("pods", namespace=name)["items"]:
                for status in pod["status"].get("containerStatuses", []):
                    if "running" in status["state"]:
                        key = f"{name}/{pod['metadata']['name']}/{status['name']}"
                        found[key] = (status["containerID"], status["restartCount"])
        return found

    before = snapshot()
    assert len(before) >= 2
    sandboxes = cluster.sandbox_count()
    cluster.stop()
    cluster.start()
    wait_for(
        lambda: condition(cluster.get("node", cluster.node_name), "Ready") == "True",
        timeout=60,
        what="Ready",
    )
    time.sleep(3)  # a few relist and resync rounds of the new agent
    after = snapshot()
    for key, (container_id, restarts) in before.items():
        assert after.get(key) == (container_id, restarts), key
    assert cluster.sandbox_count() == sandboxes
    for pod in cluster.get("pods", namespace=namespace)["items"]:
        with urllib.request.urlopen(f"http://{pod['status']['podIP']}/", timeout=5) as response:
            assert response.status == 200
