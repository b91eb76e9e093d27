"""A whole cluster for end-to-end tests: a real `timonel server --disable-agent` process
(API server, controller manager, scheduler) and `timonel agent --simulate N` processes
whose nodes register, heartbeat and run the pods the scheduler binds to them.

Both kinds of process are started here and ended by PID. `PodWatch` follows pods through
a watch, so that a test can check a property at every step of a change, not only at the
end of it.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client, config, watch

from tests.conftest import REPO, RunningServer, start_server, stop_process
from tests.integration.controllers.harness import items, wait_for


@dataclass
class SimulatedNodes:
    """One `timonel agent --simulate N` process: nodes PREFIX-0 .. PREFIX-(N-1)."""

    prefix: str
    count: int
    data_dir: Path
    process: subprocess.Popen[bytes]

    @property
    def names(self) -> list[str]:
        return [f"{self.prefix}-{i}" for i in range(self.count)]

    def pause(self, *names: str) -> None:
        """Stop these nodes' heartbeats and pod updates, as dead kubelets (none: resume all)."""
        (self.data_dir / "paused-nodes").write_text("".join(f"{n}\n" for n in names))

    def stop(self) -> None:
        stop_process(self.process)


@dataclass
class Cluster:
    server: RunningServer
    root: Path
    agents: list[SimulatedNodes] = field(default_factory=list)

    @property
    def token(self) -> str:
        return (self.server.data_dir / "token").read_text().strip()

    def add_nodes(
        self,
        count: int,
        *,
        prefix: str = "",
        heartbeat: str = "1s",
        wait: bool = True,
        config: str = "",
    ) -> SimulatedNodes:
        """Start a simulated-nodes process and (by default) wait for its nodes to be Ready;
        `config` adds to its --simulate-config (a `stages:` table, say)."""
        prefix = prefix or f"sim{uuid.uuid4().hex[:4]}"
        data_dir = self.root / f"agent-{prefix}"
        data_dir.mkdir()
        (data_dir / "simulate.yaml").write_text(f"heartbeatPeriod: {heartbeat}\n{config}")
        with (data_dir / "agent.log").open("ab") as output:
            process = subprocess.Popen(
                [
                    sys.executable, "-m", "timonel", "agent",
                    "--simulate", str(count),
                    "--server", self.server.url,
                    "--token", self.token,
                    "--data-dir", str(data_dir),
                    "--node-name", prefix,
                    "--simulate-config", str(data_dir / "simulate.yaml"),
                ],
                stdout=output,
                stderr=subprocess.STDOUT,
                cwd=REPO,
            )  # fmt: skip
        nodes = SimulatedNodes(prefix, count, data_dir, process)
        self.agents.append(nodes)
        if wait:
            wanted = set(nodes.names)
            wait_for(
                lambda: wanted <= {n["metadata"]["name"] for n in self.nodes() if node_ready(n)},
                timeout=30,
                what=f"nodes {sorted(wanted)} Ready",
            )
        return nodes

    def nodes(self) -> list[dict[str, Any]]:
        return items(self.server, "nodes")

    def api(self) -> client.ApiClient:
        configuration = client.Configuration()
        config.load_kube_config(
            config_file=str(self.server.kubeconfig), client_configuration=configuration
        )
        return client.ApiClient(configuration)

    def stop(self) -> None:
        for agent in self.agents:
            agent.stop()
        self.server.stop()


def node_ready(node: dict[str, Any]) -> bool:
    return condition_true(node, "Ready")


def pod_ready(pod: dict[str, Any]) -> bool:
    return condition_true(pod, "Ready")


def condition_true(obj: dict[str, Any], kind: str) -> bool:
    return any(
        c.get("type") == kind and c.get("status") == "True"
        for c in (obj.get("status") or {}).get("conditions") or []
    )


@contextlib.contextmanager
def running_cluster(root: Path, *server_flags: str) -> Iterator[Cluster]:
    """A server (with `server_flags`) and no nodes yet; everything ends with the block."""
    data_dir = root / "data"
    server = start_server(data_dir, root / "kubectl-cache", *server_flags)
    cluster = Cluster(server, root)
    try:
        yield cluster
    finally:
        cluster.stop()


Check = Callable[[dict[str, dict[str, Any]]], str | None]


class PodWatch:
    """The pods of a namespace followed through a watch from the moment `start()` lists
    them. After every event `check(pods)` sees every pod then present (by name) and may
    return what is wrong; `violations` collects those. `added` is the order pods were
    first seen in, `snapshots` the pods after each event (for the test's own checks)."""

    def __init__(
        self, cluster: Cluster, namespace: str, *, selector: str = "", check: Check | None = None
    ) -> None:
        self.namespace = namespace
        self.selector = selector
        self.check = check
        self.pods: dict[str, dict[str, Any]] = {}
        self.added: list[str] = []
        self.snapshots: list[dict[str, dict[str, Any]]] = []
        self.violations: list[str] = []
        self.failure: BaseException | None = None
        self._api = cluster.api()
        self._core = client.CoreV1Api(self._api)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._version = ""

    def start(self) -> PodWatch:
        response: Any = self._core.list_namespaced_pod(
            self.namespace, label_selector=self.selector, _preload_content=False
        )
        listed = json.loads(response.data)
        self._version = listed["metadata"]["resourceVersion"]
        for pod in listed["items"]:
            self.pods[pod["metadata"]["name"]] = pod
            self.added.append(pod["metadata"]["name"])
        self._apply("LISTED", None)
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            while not self._stopping.is_set():
                stream = watch.Watch().stream(
                    self._core.list_namespaced_pod,
                    self.namespace,
                    label_selector=self.selector,
                    resource_version=self._version,
                    allow_watch_bookmarks=False,
                    timeout_seconds=1,
                    deserialize=False,
                )
                for event in stream:
                    pod = event["object"]
                    self._version = pod["metadata"]["resourceVersion"]
                    self._apply(event["type"], pod)
        except BaseException as exc:  # surfaced by stop()
            self.failure = exc

    def _apply(self, kind: str, pod: dict[str, Any] | None) -> None:
        name = pod["metadata"]["name"] if pod is not None else ""
        if pod is None:
            pass
        elif kind == "DELETED":
            self.pods.pop(name, None)
        else:
            if name not in self.pods and name not in self.added:
                self.added.append(name)
            self.pods[name] = pod
        snapshot = dict(self.pods)
        self.snapshots.append(snapshot)
        if self.check is not None:
            problem = self.check(snapshot)
            if problem:
                self.violations.append(f"after {kind} {name}: {problem}")

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(10)
        self._api.close()
        if self.failure is not None:
            raise AssertionError(f"the pod watch failed: {self.failure!r}") from self.failure

    def __enter__(self) -> PodWatch:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
