"""The real `timonel server` with its node agent, run inside a network namespace of its own
(`nsenter --net`), so its proxy and policy rules, bridge, routes and sysctls live there and
the host's tables are never touched; kubectl and the clients enter the namespace too.

    outside netns (192.168.78.1) ── veth ── node netns (192.168.78.2, default route via outside)
                                              └ the server, its agent, containerd, the pods

Also here: what the tests around it share (pods, endpoints, a prober that sends requests
without pause and records who answered when, a watch on EndpointSlices).
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.conftest import KUBECTL, KubectlResult, free_port
from tests.e2e.kubelet.conftest import Cluster, cleaned_up, wait_for
from tests.e2e.proxy.lab import ip, netns_path

HERE = Path(__file__).parent
BUSYBOX = "localhost/timonel/busybox:1"
NODE_IP = "192.168.78.2"
OUTSIDE_IP = "192.168.78.1"


@dataclass
class NetnsCluster(Cluster):
    netns: str = ""
    outside: str = ""
    """The namespace standing for the network outside the node."""

    def _enter(self) -> list[str]:
        return ["nsenter", f"--net={netns_path(self.netns)}"]

    def command(self) -> list[str]:
        return [*self._enter(), *super().command()]

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 60
    ) -> KubectlResult:
        done = subprocess.run(
            self.kubectl_command(*args), input=input, capture_output=True, text=True,
            timeout=timeout,
        )  # fmt: skip
        result = KubectlResult(done.returncode, done.stdout, done.stderr)
        if check and done.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed:\n{done.stderr}{done.stdout}")
        return result

    def kubectl_command(self, *args: str) -> list[str]:
        return [*self._enter(), KUBECTL, "--kubeconfig", str(self.kubeconfig),
                "--cache-dir", str(self.cache_dir), *args]  # fmt: skip


@contextlib.contextmanager
def netns_cluster(base: Path) -> Iterator[NetnsCluster]:
    """A started cluster in fresh namespaces; everything is removed afterwards, also when
    the test fails."""
    suffix = uuid.uuid4().hex[:6]
    netns, outside = f"tsv-{suffix}", f"tsx-{suffix}"
    try:
        # The node's link: a veth to a namespace standing for the network outside, with the
        # default route, so the agent finds its address as on a real host.
        for name in (netns, outside):
            ip("netns", "add", name)
            ip("-n", name, "link", "set", "lo", "up")
        ip("-n", netns, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0",
           "netns", outside)  # fmt: skip
        ip("-n", netns, "addr", "add", f"{NODE_IP}/24", "dev", "eth0")
        ip("-n", outside, "addr", "add", f"{OUTSIDE_IP}/24", "dev", "eth0")
        for name in (netns, outside):
            ip("-n", name, "link", "set", "eth0", "up")
        ip("-n", netns, "route", "add", "default", "via", OUTSIDE_IP)
        running = NetnsCluster(
            data_dir=base / "data",
            node_name=f"e2e-proxy-{suffix}",
            cluster_cidr="10.42.0.0/16",
            port=free_port(),
            cache_dir=base / "kubectl-cache",
            log_path=base / "server.log",
            netns=netns,
            outside=outside,
        )
        with cleaned_up(running):
            try:
                yield running
            finally:
                # Without their Deployments, the pods removed at cleanup stay removed.
                for namespace in running.namespaces:
                    running.kubectl(
                        "delete", "deployments", "--all", "-n", namespace, "--wait=false",
                        check=False,
                    )  # fmt: skip
    finally:
        for name in (netns, outside):
            subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)


# -- objects ---------------------------------------------------------------------------------


def ready_endpoints(cluster: Cluster, namespace: str, name: str) -> set[str]:
    slices = cluster.get("endpointslices", namespace=namespace)["items"]
    return {
        endpoint["targetRef"]["name"]
        for item in slices
        if item["metadata"]["labels"].get("kubernetes.io/service-name") == name
        for endpoint in item.get("endpoints") or []
        if endpoint.get("conditions", {}).get("ready")
    }


def wait_for_ready_endpoints(
    cluster: Cluster, namespace: str, name: str, count: int, timeout: float = 90
) -> set[str]:
    def found() -> set[str] | None:
        ready = ready_endpoints(cluster, namespace, name)
        return ready if len(ready) == count else None

    return wait_for(found, timeout=timeout, what=f"{count} ready endpoints of {name}")


def client_pods(
    cluster: Cluster,
    namespace: str,
    labels: dict[str, dict[str, str]],
    spec: dict[str, Any] | None = None,
) -> None:
    """Busybox pods that sleep (name → labels; `spec` added to each pod's), created
    together; returns when all run."""
    for name, pod_labels in labels.items():
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "labels": pod_labels},
            "spec": {
                **(spec or {}),
                "terminationGracePeriodSeconds": 1,
                "containers": [
                    {
                        "name": "client",
                        "image": BUSYBOX,
                        "command": ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"],
                    }
                ],
            },
        }
        cluster.apply(json.dumps(pod), namespace)
    for name in labels:

        def running(name: str = name) -> bool:
            return bool(cluster.pod(name, namespace)["status"].get("phase") == "Running")

        wait_for(running, timeout=60, what=f"the pod {name}")


def client_pod(cluster: Cluster, namespace: str) -> None:
    client_pods(cluster, namespace, {"client": {"role": "client"}})


def fetch_from_pod(cluster: Cluster, namespace: str, url: str, pod: str = "client") -> str:
    # busybox 1.35's `wget -T` crashes: bound the request with `timeout` instead.
    result = cluster.exec(namespace, pod, "client", "timeout", "3", "wget", "-q", "-O-", url)
    return result.stdout.decode().strip() if result.exit_code == 0 else ""


# -- traffic over time -----------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    started: float
    """time.monotonic() when the request began (the clock is the machine's, so it compares
    with the test's own)."""
    answer: str = ""
    """The backend that answered ("" when the request failed)."""
    error: str = ""


@dataclass
class Prober:
    """Requests to `target` from the node's namespace, back to back on `concurrency`
    connections, each one a new connection, until stopped; `outcomes` grows meanwhile."""

    netns: str
    target: str
    concurrency: int = 1
    interval: float = 0.01
    outcomes: list[Outcome] = field(default_factory=list)
    _process: subprocess.Popen[str] | None = None
    _reader: threading.Thread | None = None

    def __enter__(self) -> Prober:
        command = ["nsenter", f"--net={netns_path(self.netns)}", sys.executable,
                   str(HERE / "prober.py"), "--concurrency", str(self.concurrency),
                   "--interval", str(self.interval), self.target]  # fmt: skip
        self._process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        return self

    def _read(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        for line in self._process.stdout:
            record = json.loads(line)
            self.outcomes.append(Outcome(record["t"], record.get("a", ""), record.get("e", "")))

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(5)
        if self._reader is not None:
            self._reader.join(5)

    def since(self, moment: float) -> list[Outcome]:
        return [o for o in list(self.outcomes) if o.started >= moment]

    def answered_since(self, moment: float) -> set[str]:
        return {o.answer for o in self.since(moment) if o.answer}

    def failures(self) -> list[Outcome]:
        return [o for o in list(self.outcomes) if o.error]


@dataclass(frozen=True)
class SliceEvent:
    seen: float
    """time.monotonic() when the event arrived."""
    type: str
    endpoints: dict[str, dict[str, Any]]
    """Pod name → the endpoint's conditions (this slice only)."""


@dataclass
class SliceWatch:
    """`kubectl get endpointslices --watch` for one Service, with arrival times."""

    cluster: NetnsCluster
    namespace: str
    service: str
    events: list[SliceEvent] = field(default_factory=list)
    _process: subprocess.Popen[str] | None = None
    _reader: threading.Thread | None = None

    def __enter__(self) -> SliceWatch:
        command = self.cluster.kubectl_command(
            "get", "endpointslices", "-n", self.namespace, "--watch", "--output-watch-events",
            "-l", f"kubernetes.io/service-name={self.service}", "-o", "json",
        )  # fmt: skip
        self._process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        return self

    def _read(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        for line in self._process.stdout:  # kubectl prints one event per line
            if not line.strip():
                continue
            event = json.loads(line)
            endpoints = {
                (e.get("targetRef") or {}).get("name", ""): e.get("conditions") or {}
                for e in event["object"].get("endpoints") or []
            }
            self.events.append(SliceEvent(time.monotonic(), event["type"], endpoints))

    def __exit__(self, *_exc: object) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            self._process.wait(5)
        if self._reader is not None:
            self._reader.join(5)

    def first(self, check: Any, after: float = 0.0, timeout: float = 60) -> SliceEvent:
        """The first event after `after` for which `check(event)` holds (waiting for it)."""
        return wait_for(
            lambda: next((e for e in list(self.events) if e.seen >= after and check(e)), None),
            timeout=timeout,
            interval=0.05,
            what=f"an EndpointSlice event of {self.service}",
        )
