"""A real `timonel server` with its node agent, shared by the tests of a module.

Runs as root: the agent starts its own containerd, a CNI bridge, real pods. Everything
is unique per run (node name, cluster CIDR, port, data directory) and removed at the end,
also when a test fails: the test namespaces' pods are force-deleted and the agent removes
them, the server is stopped by its PID, then whatever is left (containerd, shims, mounts,
bridge, cgroups) is purged.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.conftest import (
    KUBECTL,
    REPO,
    KubectlResult,
    assert_no_shared_object_changed,
    free_port,
    stop_process,
)
from tests.e2e.kubelet.registry import Registry
from tests.e2e.runtime.conftest import runtime_unavailable
from tests.e2e.runtime.hosttools import force_cleanup, wait_for_no_leftovers
from timonel.agent.kubelet.agent import default_run_dir
from timonel.agent.runtime.cri import CriClient, ExecSyncResult, api
from timonel.agent.runtime.images import ImageSpec, Layer, busybox_layer, write_image_archive
from timonel.agent.runtime.node import NodeRuntime

AIRGAP_IMAGE = "localhost/e2e/airgap:1"
MIRRORED_HOST = "mirror.invalid"

T = TypeVar("T")


def free_cluster_cidr() -> str:
    """A /16 under 10.200.0.0/13 that no route on this host overlaps."""
    routes = json.loads(
        subprocess.run(["ip", "-j", "route"], capture_output=True, check=True).stdout
    )
    taken = [ipaddress.ip_network(r["dst"], strict=False) for r in routes if r["dst"] != "default"]
    for candidate in ipaddress.ip_network("10.200.0.0/13").subnets(new_prefix=16):
        if not any(candidate.overlaps(network) for network in taken):
            return str(candidate)
    raise RuntimeError("no free /16 for the cluster CIDR under 10.200.0.0/13")


def wait_for(
    check: Callable[[], T | None], *, timeout: float = 30, interval: float = 0.25, what: str = ""
) -> T:
    """Poll `check` until it returns something truthy; fail with the last value after `timeout`."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except (AssertionError, KeyError, IndexError, TypeError, StopIteration) as error:
            last = error
        else:
            if last:
                return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what or check}: last {last!r}")


@dataclass
class Cluster:
    data_dir: Path
    node_name: str
    cluster_cidr: str
    port: int
    cache_dir: Path
    log_path: Path
    private_registry: Path | None = None
    registries: dict[str, Registry] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    namespaces: list[str] = field(default_factory=list)

    @property
    def kubeconfig(self) -> Path:
        return self.data_dir / "kubeconfig.yaml"

    @property
    def agent_data_dir(self) -> Path:
        """The node agent's --data-dir (the server's own when the agent runs inside it)."""
        return self.data_dir

    @property
    def socket(self) -> Path:
        return default_run_dir(self.agent_data_dir) / "containerd.sock"

    def containerd_pid(self) -> int:
        record = default_run_dir(self.agent_data_dir) / "containerd.pid"
        return int(json.loads(record.read_text())["pid"])

    def command(self) -> list[str]:
        return [
            sys.executable, "-m", "timonel", "server",
            "--data-dir", str(self.data_dir),
            "--bind-address", "127.0.0.1",
            "--https-listen-port", str(self.port),
            "--node-name", self.node_name,
            "--cluster-cidr", self.cluster_cidr,
            *(["--private-registry", str(self.private_registry)] if self.private_registry else []),
        ]  # fmt: skip

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.command(), stdout=log, stderr=subprocess.STDOUT, cwd=REPO
        )
        log.close()

        def api_up() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"timonel server exited with {self.process.returncode}; see {self.log_path}"
                )
            return (
                self.kubeconfig.exists()
                and self.kubectl("get", "--raw", "/readyz", check=False).returncode == 0
            )

        wait_for(api_up, timeout=60, what="the API server")

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, grace=20)
            assert_no_shared_object_changed(self.log_path)

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 60
    ) -> KubectlResult:
        command = [
            KUBECTL,
            "--kubeconfig",
            str(self.kubeconfig),
            "--cache-dir",
            str(self.cache_dir),
            *args,
        ]
        done = subprocess.run(command, input=input, capture_output=True, text=True, timeout=timeout)
        result = KubectlResult(done.returncode, done.stdout, done.stderr)
        if check and done.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} failed ({done.returncode}):\n{done.stderr}\n{done.stdout}"
            )
        return result

    def apply(self, manifest: str, namespace: str) -> None:
        self.kubectl("apply", "-n", namespace, "-f", "-", input=manifest)

    def get(self, kind: str, name: str = "", namespace: str = "") -> dict[str, Any]:
        args = ["get", kind, *([name] if name else []), "-o", "json"]
        if namespace:
            args[1:1] = ["-n", namespace]
        return dict(self.kubectl(*args).json())

    def pod(self, name: str, namespace: str) -> dict[str, Any]:
        return self.get("pod", name, namespace)

    def namespace(self) -> str:
        name = f"k-{uuid.uuid4().hex[:8]}"
        self.kubectl("create", "namespace", name)
        self.namespaces.append(name)
        return name

    def events(self, namespace: str, name: str) -> list[dict[str, Any]]:
        items = self.get("events", namespace=namespace)["items"]
        return [e for e in items if e["involvedObject"].get("name") == name]

    def exec(
        self, namespace: str, pod: str, container: str, *command: str, timeout: int = 10
    ) -> ExecSyncResult:
        """Run a command in a container through the node's CRI (the agent's containerd)."""
        status = self.pod(pod, namespace)["status"]
        entries = [*status.get("containerStatuses", []), *status.get("initContainerStatuses", [])]
        container_id = next(s["containerID"] for s in entries if s["name"] == container).partition(
            "://"
        )[2]

        async def run() -> ExecSyncResult:
            async with CriClient(self.socket) as cri:
                return await cri.exec_sync(container_id, list(command), timeout_seconds=timeout)

        return asyncio.run(run())

    def sandbox_count(self) -> int:
        async def count() -> int:
            async with CriClient(self.socket, timeout=5) as cri:
                return len(await cri.list_pod_sandbox(api.PodSandboxFilter()))

        return asyncio.run(count())


C = TypeVar("C", bound=Cluster)


def container_status(pod: dict[str, Any], name: str) -> dict[str, Any]:
    statuses = [
        *pod["status"].get("containerStatuses", []),
        *pod["status"].get("initContainerStatuses", []),
    ]
    return next(s for s in statuses if s["name"] == name)


def condition(pod: dict[str, Any], kind: str) -> str:
    for entry in pod["status"].get("conditions", []):
        if entry["type"] == kind:
            return str(entry["status"])
    return ""


def _remove_pods(cluster: Cluster) -> None:
    for namespace in cluster.namespaces:
        cluster.kubectl(
            "delete",
            "pods",
            "--all",
            "-n",
            namespace,
            "--grace-period=0",
            "--force",
            "--wait=false",
            check=False,
        )
    with contextlib.suppress(AssertionError, OSError):
        wait_for(
            lambda: cluster.sandbox_count() == 0, timeout=60, what="the agent to remove every pod"
        )


async def _purge(cluster: Cluster) -> list[str]:
    node = NodeRuntime(
        node_name=cluster.node_name,
        state_dir=cluster.agent_data_dir / "agent",
        run_dir=default_run_dir(cluster.agent_data_dir),
    )
    cidr = ipaddress.ip_network(cluster.cluster_cidr)
    node.configure_network(str(next(cidr.subnets(new_prefix=24))))
    with contextlib.suppress(Exception):
        await node.containerd.start()
    await node.purge()
    found = await wait_for_no_leftovers(node)
    if found:
        force_cleanup(node)
    return found


def image(name: str, text: str, base: Layer) -> ImageSpec:
    """A busybox image whose httpd serves `text` from /www."""
    return ImageSpec(
        names=(name,), layers=(base, Layer.from_files({"www/index.html": text})), cmd=("sh",)
    )


def prepare_images(base: Path, data_dir: Path) -> tuple[dict[str, Registry], Path]:
    """Two test registries (the first one's credentials in the registries file, the
    second one's only in a pull secret, a mirror for `mirror.invalid`) and an air-gap
    archive in the agent's image directory."""
    layer = busybox_layer()
    first = Registry(
        [
            image("r/e2e/pulled:1", "pulled from the registry\n", layer),
            image("r/private/creds:1", "pulled with the registries file's credentials\n", layer),
        ]
    )
    second = Registry(
        [image("r/private/secret:1", "pulled with a pull secret\n", layer)], password="other"
    )
    for registry in (first, second):
        registry.start()
    config = base / "registries.yaml"
    config.write_text(
        json.dumps(
            {
                "mirrors": {
                    first.address: {"endpoint": [f"http://{first.address}"]},
                    second.address: {"endpoint": [f"http://{second.address}"]},
                    MIRRORED_HOST: {"endpoint": [f"http://{first.address}"]},
                },
                "configs": {
                    first.address: {
                        "auth": {"username": first.username, "password": first.password}
                    }
                },
            }
        )
    )
    images_dir = data_dir / "agent" / "images"
    images_dir.mkdir(parents=True)
    write_image_archive(
        images_dir / "airgap.tar", [image(AIRGAP_IMAGE, "imported from an archive\n", layer)]
    )
    return {"first": first, "second": second}, config


@contextlib.contextmanager
def cleaned_up(running: Cluster) -> Iterator[Cluster]:
    """Yield the started cluster; afterwards remove its pods, stop it and purge the node."""
    try:
        running.start()
        wait_for(
            lambda: condition(running.get("node", running.node_name), "Ready") == "True",
            timeout=60,
            what="the node to be Ready",
        )
        yield running
    finally:
        try:
            if running.process is not None and running.process.poll() is None:
                _remove_pods(running)
        finally:
            running.stop()
            for registry in running.registries.values():
                registry.stop()
            leftovers = asyncio.run(_purge(running))
            assert leftovers == [], f"the node left {leftovers}"


def new_cluster(base: Path, kind: type[C]) -> C:
    """A single-node cluster (not started) with its files under `base`, a unique node
    name, a cluster CIDR no route overlaps and a free port."""
    if runtime_unavailable() is not None:
        pytest.skip(str(runtime_unavailable()))
    return kind(
        data_dir=base / "data",
        node_name=f"e2e-{uuid.uuid4().hex[:8]}",
        cluster_cidr=free_cluster_cidr(),
        port=free_port(),
        cache_dir=base / "kubectl-cache",
        log_path=base / "server.log",
    )


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    base = tmp_path_factory.mktemp("kubelet")
    running = new_cluster(base, Cluster)
    running.registries, running.private_registry = prepare_images(base, running.data_dir)
    with cleaned_up(running):
        yield running
