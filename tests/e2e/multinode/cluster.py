"""A cluster of one server and three node agents on this machine, each a host of its own.

    lan netns: bridge br0 192.168.93.1/24
      ├ veth ── server netns 192.168.93.2   `timonel server --disable-agent`
      ├ veth ── node netns   192.168.93.11  `timonel agent --node-ip 192.168.93.11`
      ├ veth ── node netns   192.168.93.12    (each with its own data dir, so its own
      └ veth ── node netns   192.168.93.13     containerd, CNI bridge and pod subnet)

Every process runs in its namespace through `nsenter --net` (not `ip netns exec`, which
remounts /sys), so routes, iptables rules and sysctls stay there and the host's are never
touched; kubectl enters the server's namespace; `exec` goes to the pod's node's containerd
socket. Names carry a random suffix. `multinode_cluster()` removes everything afterwards,
also when a test fails: pods, then the processes by PID, then each node's runtime, then the
namespaces.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.conftest import KUBECTL, REPO, KubectlResult, stop_process
from tests.e2e.kubelet.conftest import Cluster, cleaned_up, condition, free_cluster_cidr, wait_for
from tests.e2e.proxy.lab import ip, netns_path
from tests.e2e.runtime.hosttools import force_cleanup, wait_for_no_leftovers
from timonel.agent.kubelet.agent import default_run_dir
from timonel.agent.runtime.cri import CriClient, ExecSyncResult, api
from timonel.agent.runtime.node import NodeRuntime

BUSYBOX = "localhost/timonel/busybox:1"
LAN = "192.168.93"
GATEWAY = f"{LAN}.1"
SERVER_IP = f"{LAN}.2"
API_PORT = 6443
NODE_COUNT = 3
# Node failure is noticed after NODE_GRACE without a Lease renewal (every HEARTBEAT).
HEARTBEAT = "1s"
NODE_GRACE = "6s"


def enter(netns: str) -> list[str]:
    return ["nsenter", f"--net={netns_path(netns)}"]


def _attach(lan: str, netns: str, port: str, address: str) -> None:
    """A veth from `netns` (eth0, `address`, default route via the lan) to the lan bridge."""
    ip("netns", "add", netns)
    ip("-n", netns, "link", "set", "lo", "up")
    ip("-n", lan, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", netns)
    ip("-n", lan, "link", "set", port, "master", "br0")
    ip("-n", lan, "link", "set", port, "up")
    ip("-n", netns, "addr", "add", f"{address}/24", "dev", "eth0")
    ip("-n", netns, "link", "set", "eth0", "up")
    ip("-n", netns, "route", "add", "default", "via", GATEWAY)


@dataclass
class Node:
    """One node: a `timonel agent` process in its own network namespace."""

    name: str
    netns: str
    address: str
    data_dir: Path
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def socket(self) -> Path:
        return default_run_dir(self.data_dir) / "containerd.sock"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def containerd_pid(self) -> int | None:
        record = default_run_dir(self.data_dir) / "containerd.pid"
        try:
            return int(json.loads(record.read_text())["pid"])
        except (OSError, ValueError, KeyError):
            return None

    def start(self, server: str, token: str) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    *enter(self.netns), sys.executable, "-m", "timonel", "agent",
                    "--server", server, "--token", token, "--node-ip", self.address,
                    "--node-name", self.name, "--data-dir", str(self.data_dir),
                    "--heartbeat-period", HEARTBEAT,
                ],
                stdout=log, stderr=subprocess.STDOUT, cwd=REPO,
            )  # fmt: skip

    def stop(self) -> None:
        """SIGTERM (a clean shutdown), SIGKILL if it takes too long."""
        if self.process is not None:
            stop_process(self.process, grace=30)

    def kill(self) -> None:
        """The agent and its containerd die at once; the pods' processes keep running, as
        when a kubelet and its runtime crash."""
        containerd = self.containerd_pid()
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        if containerd is not None and self._ours(containerd):
            with contextlib.suppress(ProcessLookupError):
                os.kill(containerd, signal.SIGKILL)

    def _ours(self, pid: int) -> bool:
        """Whether `pid` is still this node's containerd (its command names the node's
        directories)."""
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            return False
        return str(default_run_dir(self.data_dir)) in command or str(self.data_dir) in command

    def routes(self, protocol: int) -> list[dict[str, Any]]:
        done = subprocess.run(
            ["ip", "-n", self.netns, "-j", "route", "show", "proto", str(protocol)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        found: list[dict[str, Any]] = json.loads(done.stdout or "[]")
        return found

    async def purge(self, cluster_cidr: str) -> list[str]:
        """Remove what the node left on the host (pods, containerd, mounts, files)."""
        node = NodeRuntime(
            node_name=self.name,
            state_dir=self.data_dir / "agent",
            run_dir=default_run_dir(self.data_dir),
        )
        node.configure_network(str(next(ipaddress.ip_network(cluster_cidr).subnets(new_prefix=24))))
        with contextlib.suppress(Exception):
            await node.containerd.start()
        await node.purge()
        found = await wait_for_no_leftovers(node)
        if found:
            force_cleanup(node)
        return found


@dataclass
class MultiNodeCluster(Cluster):
    """The server (in its own namespace) and its nodes; `node_name` is the first node's."""

    suffix: str = ""
    lan: str = ""
    netns: str = ""
    nodes: list[Node] = field(default_factory=list)

    @property
    def agent_data_dir(self) -> Path:
        return self.nodes[0].data_dir

    @property
    def url(self) -> str:
        return f"https://{SERVER_IP}:{self.port}"

    def command(self) -> list[str]:
        return [
            *enter(self.netns), sys.executable, "-m", "timonel", "server",
            "--data-dir", str(self.data_dir), "--bind-address", "0.0.0.0",
            "--https-listen-port", str(self.port), "--disable-agent",
            "--cluster-cidr", self.cluster_cidr,
            "--node-monitor-grace-period", NODE_GRACE, "--node-monitor-period", "500ms",
        ]  # fmt: skip

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 60
    ) -> KubectlResult:
        command = [*enter(self.netns), KUBECTL, "--kubeconfig", str(self.kubeconfig),
                   "--cache-dir", str(self.cache_dir), *args]  # fmt: skip
        done = subprocess.run(command, input=input, capture_output=True, text=True, timeout=timeout)
        result = KubectlResult(done.returncode, done.stdout, done.stderr)
        if check and done.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed:\n{done.stderr}{done.stdout}")
        return result

    def start(self) -> None:
        super().start()
        token = (self.data_dir / "token").read_text().strip()
        for node in self.nodes:
            node.start(self.url, token)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
        super().stop()

    def node(self, name: str) -> Node:
        return next(n for n in self.nodes if n.name == name)

    def exec(
        self, namespace: str, pod: str, container: str, *command: str, timeout: int = 10
    ) -> ExecSyncResult:
        """Run a command in a container through its node's containerd."""
        found = self.pod(pod, namespace)
        statuses = found["status"].get("containerStatuses", [])
        container_id = next(s["containerID"] for s in statuses if s["name"] == container)
        socket = self.node(found["spec"]["nodeName"]).socket

        async def run() -> ExecSyncResult:
            async with CriClient(socket) as cri:
                return await cri.exec_sync(
                    container_id.partition("://")[2], list(command), timeout_seconds=timeout
                )

        return asyncio.run(run())

    def sandbox_count(self) -> int:
        """Pods of the nodes whose agent still runs (the others remove none)."""

        async def count(socket: Path) -> int:
            async with CriClient(socket, timeout=5) as cri:
                return len(await cri.list_pod_sandbox(api.PodSandboxFilter()))

        return sum(asyncio.run(count(n.socket)) for n in self.nodes if n.running)


async def _purge_all(nodes: list[Node], cluster_cidr: str) -> dict[str, list[str]]:
    found = await asyncio.gather(*(node.purge(cluster_cidr) for node in nodes))
    return {node.name: leftovers for node, leftovers in zip(nodes, found, strict=True)}


@contextlib.contextmanager
def multinode_cluster(base: Path) -> Iterator[MultiNodeCluster]:
    suffix = uuid.uuid4().hex[:6]
    lan, server_ns = f"tmn-{suffix}-lan", f"tmn-{suffix}-srv"
    nodes = [
        Node(
            name=f"mn{i}-{suffix}",
            netns=f"tmn-{suffix}-n{i}",
            address=f"{LAN}.{11 + i}",
            data_dir=base / f"node{i}",
            log_path=base / f"node{i}.log",
        )
        for i in range(NODE_COUNT)
    ]
    cluster = MultiNodeCluster(
        data_dir=base / "server",
        node_name=nodes[0].name,
        cluster_cidr=free_cluster_cidr(),
        port=API_PORT,
        cache_dir=base / "kubectl-cache",
        log_path=base / "server.log",
        suffix=suffix,
        lan=lan,
        netns=server_ns,
        nodes=nodes,
    )
    created: list[str] = []
    try:
        ip("netns", "add", lan)
        created.append(lan)
        ip("-n", lan, "link", "set", "lo", "up")
        ip("-n", lan, "link", "add", "br0", "type", "bridge")
        ip("-n", lan, "addr", "add", f"{GATEWAY}/24", "dev", "br0")
        ip("-n", lan, "link", "set", "br0", "up")
        created.append(server_ns)
        _attach(lan, server_ns, f"v{suffix}s", SERVER_IP)
        for number, node in enumerate(nodes):
            created.append(node.netns)
            _attach(lan, node.netns, f"v{suffix}n{number}", node.address)
            subprocess.run(
                [*enter(node.netns), "sysctl", "-qw", "net.ipv4.ip_forward=1"], check=True
            )
        with cleaned_up(cluster):
            try:
                wait_for(
                    lambda: all(
                        condition(cluster.get("node", n.name), "Ready") == "True" for n in nodes
                    ),
                    timeout=90,
                    what="every node Ready",
                )
                yield cluster
            finally:
                # Without their Deployments, the pods removed at cleanup stay removed.
                for namespace in cluster.namespaces:
                    cluster.kubectl(
                        "delete", "deployments", "--all", "-n", namespace, "--wait=false",
                        check=False,
                    )  # fmt: skip
    finally:
        try:
            for node in nodes:  # cleaned_up purged the first one
                node.stop()
            leftovers = asyncio.run(_purge_all(nodes[1:], cluster.cluster_cidr))
        finally:
            for name in reversed(created):
                subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)
        assert not any(leftovers.values()), f"the nodes left {leftovers}"
