"""The node agent end to end: `timonel server` with its agent runs real pods on containerd.

One server (and node) for the whole module; each test works in its own namespace. Pods use
the node's built-in busybox image, short probe periods and short grace periods.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from tests.conftest import free_port
from tests.e2e.kubelet.conftest import (
    AIRGAP_IMAGE,
    MIRRORED_HOST,
    Cluster,
    condition,
    container_status,
    wait_for,
)
from timonel.agent.kubelet.runtimestate import (
    NODE_LABEL,
    POD_NAME_LABEL,
    POD_NAMESPACE_LABEL,
    POD_UID_LABEL,
)
from timonel.agent.runtime.cri import CriClient, CriError, api

BUSYBOX = "localhost/timonel/busybox:1"
WAIT_FOREVER = "trap 'exit 0' TERM; sleep 3600 & wait"


def pod_manifest(name: str, containers: list[dict[str, Any]], **spec: Any) -> str:
    for container in [*containers, *spec.get("initContainers", [])]:
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
    cluster.kubectl("delete", "pod", "crasher", "-n", namespace, "--wait=false")
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
    cluster.kubectl("delete", "pod", "sick", "-n", namespace, "--wait=false")


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


def test_an_empty_dir_over_its_size_limit_gets_the_pod_evicted(cluster: Cluster) -> None:
    namespace = cluster.namespace()
    filler = {
        "name": "main",
        "command": ["sh", "-c", f"dd if=/dev/zero of=/scratch/fill bs=1M count=3; {WAIT_FOREVER}"],
        "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}],
    }
    volumes = [{"name": "scratch", "emptyDir": {"sizeLimit": "1Mi"}}]
    cluster.apply(pod_manifest("filler", [filler], volumes=volumes), namespace)

    def evicted() -> dict[str, Any] | None:
        pod = cluster.pod("filler", namespace)
        return pod if pod["status"].get("reason") == "Evicted" else None

    pod = wait_for(evicted, timeout=40, what="the pod to be evicted")
    assert pod["status"]["phase"] == "Failed"
    assert (
        pod["status"]["message"] == 'Usage of EmptyDir volume "scratch" exceeds the limit "1Mi". '
    )
    assert condition(pod, "DisruptionTarget") == "True"
    assert "terminated" in container_status(pod, "main")["state"]


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


def http_body(address: str, port: int = 80) -> bytes:
    with urllib.request.urlopen(f"http://{address}:{port}/", timeout=5) as response:
        return bytes(response.read())


SERVE = ["httpd", "-f", "-p", "80", "-h", "/www"]


def test_images_are_pulled_through_mirrors_with_credentials(cluster: Cluster) -> None:
    namespace = cluster.namespace()
    first, second = cluster.registries["first"], cluster.registries["second"]
    images = {
        "plain-http": f"{first.address}/e2e/pulled:1",
        "mirrored": f"{MIRRORED_HOST}/e2e/pulled:1",
        "file-credentials": f"{first.address}/private/creds:1",
    }
    for name, reference in images.items():
        container = {
            "name": "main",
            "image": reference,
            "imagePullPolicy": "Always",
            "command": SERVE,
        }
        cluster.apply(pod_manifest(name, [container]), namespace)
    # Always: once the pod with the secret has pulled the image, IfNotPresent would use it.
    no_secret = {
        "name": "main",
        "image": f"{second.address}/private/secret:1",
        "imagePullPolicy": "Always",
        "command": SERVE,
    }
    cluster.apply(pod_manifest("no-secret", [dict(no_secret)]), namespace)
    missing = {"name": "main", "image": f"{first.address}/e2e/missing:1", "command": SERVE}
    cluster.apply(pod_manifest("missing", [missing]), namespace)
    never = {"name": "main", "image": f"{first.address}/e2e/absent:1", "imagePullPolicy": "Never"}
    cluster.apply(pod_manifest("never", [never]), namespace)
    auth = base64.b64encode(f"{second.username}:{second.password}".encode()).decode()
    docker_config = json.dumps({"auths": {second.address: {"auth": auth}}})
    cluster.kubectl(
        "create", "secret", "generic", "pull", "-n", namespace, "--type=kubernetes.io/dockerconfigjson",
        f"--from-literal=.dockerconfigjson={docker_config}",
    )  # fmt: skip
    cluster.apply(
        pod_manifest("with-secret", [dict(no_secret)], imagePullSecrets=[{"name": "pull"}]),
        namespace,
    )

    expected = {
        "plain-http": b"pulled from the registry\n",
        "mirrored": b"pulled from the registry\n",
        "file-credentials": b"pulled with the registries file's credentials\n",
        "with-secret": b"pulled with a pull secret\n",
    }
    for name, body in expected.items():
        pod = running_pod(cluster, namespace, name, timeout=60)
        assert http_body(pod["status"]["podIP"]) == body, name
    pulled = [
        e["message"] for e in cluster.events(namespace, "plain-http") if e["reason"] == "Pulled"
    ]
    assert pulled and pulled[0].startswith(
        f'Successfully pulled image "{images["plain-http"]}" in '
    )
    assert any(
        r.startswith("GET /v2/e2e/pulled/manifests/")
        or r.startswith("HEAD /v2/e2e/pulled/manifests/")
        for r in first.requests
    )

    def waiting(name: str, *reasons: str) -> dict[str, Any] | None:
        state = container_status(cluster.pod(name, namespace), "main")["state"].get("waiting") or {}
        return state if state.get("reason") in reasons else None

    wait_for(
        lambda: waiting("no-secret", "ErrImagePull", "ImagePullBackOff"),
        timeout=30,
        what="no-secret",
    )
    backoff = wait_for(lambda: waiting("missing", "ImagePullBackOff"), timeout=30, what="missing")
    assert backoff["message"].startswith(f'Back-off pulling image "{first.address}/e2e/missing:1"')
    never_waiting = wait_for(
        lambda: waiting("never", "ErrImageNeverPull"), timeout=30, what="never"
    )
    assert (
        never_waiting["message"]
        == f'Container image "{first.address}/e2e/absent:1" is not present with pull policy of Never'
    )


def test_image_archives_in_the_images_directory_are_imported(cluster: Cluster) -> None:
    namespace = cluster.namespace()
    container = {
        "name": "main",
        "image": AIRGAP_IMAGE,
        "imagePullPolicy": "Never",
        "command": SERVE,
    }
    cluster.apply(pod_manifest("airgap", [container]), namespace)
    pod = running_pod(cluster, namespace, "airgap")
    assert http_body(pod["status"]["podIP"]) == b"imported from an archive\n"
    names = {
        n
        for image in cluster.get("node", cluster.node_name)["status"]["images"]
        for n in image["names"]
    }
    assert AIRGAP_IMAGE in names


def test_security_context_and_resource_limits(cluster: Cluster) -> None:
    namespace = cluster.namespace()
    container = {
        "name": "main",
        "command": ["sh", "-c", WAIT_FOREVER],
        "resources": {
            "limits": {"cpu": "500m", "memory": "64Mi"},
            "requests": {"cpu": "250m", "memory": "32Mi"},
        },
        "securityContext": {
            "runAsUser": 1000,
            "runAsGroup": 3000,
            "readOnlyRootFilesystem": True,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}],
    }
    spec = {"securityContext": {"fsGroup": 2000}, "volumes": [{"name": "scratch", "emptyDir": {}}]}
    cluster.apply(pod_manifest("locked", [container], **spec), namespace)
    root = {
        "name": "main",
        "command": ["sh", "-c", WAIT_FOREVER],
        "securityContext": {"runAsNonRoot": True},
    }
    cluster.apply(pod_manifest("rootless", [root]), namespace)
    running_pod(cluster, namespace, "locked")

    def run(*command: str) -> tuple[int, str]:
        result = cluster.exec(namespace, "locked", "main", *command)
        return result.exit_code, (result.stdout + result.stderr).decode()

    assert run("id") == (0, "uid=1000 gid=3000 groups=2000,3000\n")
    assert run("touch", "/root-fs")[0] != 0
    assert run("touch", "/scratch/ok")[0] == 0
    status = run("cat", "/proc/self/status")[1]
    assert "NoNewPrivs:\t1" in status
    assert "CapEff:\t0000000000000000" in status
    quota = run(
        "sh",
        "-c",
        "cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us"
        " /sys/fs/cgroup/cpu.max 2>/dev/null",
    )
    assert quota[1].split()[0] == "50000"
    memory = run(
        "sh",
        "-c",
        "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max",
    )
    assert memory[1].strip() == str(64 * 1024 * 1024)

    def refused() -> dict[str, Any] | None:
        state = (
            container_status(cluster.pod("rootless", namespace), "main")["state"].get("waiting")
            or {}
        )
        return state if state.get("reason") == "CreateContainerConfigError" else None

    message = wait_for(refused, timeout=20, what="runAsNonRoot to refuse a root image")["message"]
    assert message.startswith("container has runAsNonRoot and image will run as root")


def test_init_containers_sidecars_and_a_shared_process_namespace(cluster: Cluster) -> None:
    namespace = cluster.namespace()
    mount = [{"name": "work", "mountPath": "/work"}]
    init = [
        {
            "name": "first",
            "command": ["sh", "-c", "echo first >> /work/order"],
            "volumeMounts": mount,
        },
        {
            "name": "sidecar",
            "restartPolicy": "Always",
            "command": ["sh", "-c", "echo sidecar >> /work/order; exec sleep 3601"],
            "volumeMounts": mount,
        },
        {
            "name": "second",
            "command": ["sh", "-c", "echo second >> /work/order"],
            "volumeMounts": mount,
        },
    ]
    main = {
        "name": "main",
        "command": ["sh", "-c", f"echo main >> /work/order; {WAIT_FOREVER}"],
        "volumeMounts": mount,
    }
    manifest = pod_manifest(
        "ordered",
        [main],
        initContainers=init,
        shareProcessNamespace=True,
        volumes=[{"name": "work", "emptyDir": {}}],
    )
    for container in json.loads(manifest)["spec"]["initContainers"]:
        assert container["image"] == BUSYBOX
    cluster.apply(manifest, namespace)
    pod = running_pod(cluster, namespace, "ordered")
    assert (
        cluster.exec(namespace, "ordered", "main", "cat", "/work/order").stdout
        == b"first\nsidecar\nsecond\nmain\n"
    )
    assert b"sleep 3601" in cluster.exec(namespace, "ordered", "main", "ps").stdout
    statuses = {s["name"]: s for s in pod["status"]["initContainerStatuses"]}
    assert [s["name"] for s in pod["status"]["initContainerStatuses"]] == [
        "first",
        "sidecar",
        "second",
    ]
    assert statuses["first"]["state"]["terminated"]["exitCode"] == 0
    assert "running" in statuses["sidecar"]["state"] and statuses["sidecar"]["started"] is True
    assert condition(pod, "Initialized") == "True"


def test_host_network_and_host_ports(cluster: Cluster) -> None:
    namespace = cluster.namespace()
    node_ip = cluster.get("node", cluster.node_name)["status"]["addresses"][0]["address"]
    cluster.apply(
        pod_manifest(
            "on-host", [{"name": "main", "command": ["sh", "-c", WAIT_FOREVER]}], hostNetwork=True
        ),
        namespace,
    )
    host_port = free_port()
    serving = {
        "name": "main",
        "command": SERVE,
        "ports": [{"containerPort": 80, "hostPort": host_port}],
    }
    cluster.apply(pod_manifest("published", [serving]), namespace)
    pod = running_pod(cluster, namespace, "on-host")
    assert pod["status"]["podIP"] == node_ip
    assert (
        cluster.exec(namespace, "on-host", "main", "hostname").stdout.decode().strip()
        == os.uname().nodename
    )
    running_pod(cluster, namespace, "published")
    assert (
        wait_for(lambda: http_body(node_ip, host_port), timeout=10)
        == b"hello from timonel busybox\n"
    )


def test_downward_api_projected_and_persistent_volumes(cluster: Cluster, tmp_path: Path) -> None:
    namespace = cluster.namespace()
    disk = tmp_path / "disk"
    disk.mkdir()
    (disk / "data").write_text("persistent\n")
    volume_name = f"pv-{namespace}"
    cluster.kubectl("apply", "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": volume_name},
        "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "hostPath": {"path": str(disk)},
                 "claimRef": {"name": "claim", "namespace": namespace}},
    }))  # fmt: skip
    cluster.apply(json.dumps({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "claim"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}, "volumeName": volume_name},
    }), namespace)  # fmt: skip
    cluster.kubectl("create", "configmap", "info", "-n", namespace, "--from-literal=color=blue")
    container = {
        "name": "main",
        "command": ["sh", "-c", WAIT_FOREVER],
        "resources": {"limits": {"memory": "32Mi"}},
        "volumeMounts": [
            {"name": "disk", "mountPath": "/disk"},
            {"name": "facts", "mountPath": "/facts"},
            {"name": "bundle", "mountPath": "/bundle"},
        ],
    }
    volumes = [
        {"name": "disk", "persistentVolumeClaim": {"claimName": "claim"}},
        {
            "name": "facts",
            "downwardAPI": {
                "items": [
                    {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
                    {
                        "path": "memory",
                        "resourceFieldRef": {
                            "containerName": "main",
                            "resource": "limits.memory",
                            "divisor": "1Mi",
                        },
                    },
                ]
            },
        },
        {
            "name": "bundle",
            "projected": {
                "sources": [
                    {"configMap": {"name": "info"}},
                    {
                        "downwardAPI": {
                            "items": [
                                {
                                    "path": "namespace",
                                    "fieldRef": {"fieldPath": "metadata.namespace"},
                                }
                            ]
                        }
                    },
                ]
            },
        },
    ]
    manifest = json.loads(pod_manifest("volumes", [container], volumes=volumes))
    manifest["metadata"]["labels"] = {"app": "facts"}
    cluster.apply(json.dumps(manifest), namespace)
    running_pod(cluster, namespace, "volumes")

    def read(path: str) -> bytes:
        return cluster.exec(namespace, "volumes", "main", "cat", path).stdout

    assert read("/disk/data") == b"persistent\n"
    assert (
        cluster.exec(namespace, "volumes", "main", "sh", "-c", "echo written > /disk/out").exit_code
        == 0
    )
    assert (disk / "out").read_text() == "written\n"
    assert read("/facts/labels") == b'app="facts"'
    assert read("/facts/memory") == b"32"
    assert read("/bundle/color") == b"blue"
    assert read("/bundle/namespace") == namespace.encode()
    cluster.kubectl("delete", "pod", "volumes", "-n", namespace, "--wait=true")
    cluster.kubectl("delete", "pv", volume_name, "--wait=false")


def test_sandboxes_of_pods_the_api_does_not_know_are_removed(
    cluster: Cluster, tmp_path: Path
) -> None:
    import asyncio

    async def orphan() -> str:
        async with CriClient(cluster.socket, timeout=30) as cri:
            uid = str(uuid.uuid4())
            config = api.PodSandboxConfig(
                metadata=api.PodSandboxMetadata(name="ghost", uid=uid, namespace="nowhere"),
                hostname="ghost",
                log_directory=str(tmp_path),
                labels={
                    POD_UID_LABEL: uid,
                    POD_NAME_LABEL: "ghost",
                    POD_NAMESPACE_LABEL: "nowhere",
                    NODE_LABEL: cluster.node_name,
                },
                linux=api.LinuxPodSandboxConfig(
                    cgroup_parent=f"/timonel-{cluster.node_name}/besteffort/pod{uid}"
                ),
            )
            return await cri.run_pod_sandbox(config)

    sandbox_id = asyncio.run(orphan())

    async def exists() -> bool:
        async with CriClient(cluster.socket, timeout=10) as cri:
            return any(s.id == sandbox_id for s in await cri.list_pod_sandbox())

    wait_for(
        lambda: not asyncio.run(exists()), timeout=20, what="the orphaned sandbox to be removed"
    )


def test_a_restarted_containerd_keeps_the_pods_running(cluster: Cluster) -> None:
    namespace = cluster.namespace()
    cluster.apply(pod_manifest("steady", [{"name": "main", "command": SERVE}]), namespace)
    before = container_status(running_pod(cluster, namespace, "steady"), "main")
    old_pid = cluster.containerd_pid()
    os.kill(old_pid, signal.SIGKILL)

    def restarted() -> int | None:
        pid = cluster.containerd_pid()
        if pid == old_pid:
            return None
        try:
            return pid if cluster.sandbox_count() > 0 else None
        except CriError:  # still loading its state
            return None

    wait_for(restarted, timeout=30, what="containerd to be restarted")
    time.sleep(2)  # relists of the agent against the new containerd
    after = container_status(running_pod(cluster, namespace, "steady"), "main")
    assert (after["containerID"], after["restartCount"]) == (before["containerID"], 0)
    cluster.apply(pod_manifest("fresh", [{"name": "main", "command": SERVE}]), namespace)
    fresh = running_pod(cluster, namespace, "fresh")
    assert http_body(fresh["status"]["podIP"]) == b"hello from timonel busybox\n"


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
