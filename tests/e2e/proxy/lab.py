"""A node made of network namespaces, for proxy and network policy tests.

    ext netns (192.168.77.1) ── veth ── node netns (192.168.77.2, default route via ext)
                                          └ bridge cbr0 10.244.1.1/24 (hairpin ports)
                                             ├ pod netns 10.244.1.11  (veth, default via .1)
                                             ├ pod netns 10.244.1.12
                                             └ ...

Every name carries a random suffix, so labs never collide with each other or with anything
on the host; the host's own tables and routes are never touched (iptables runs inside the
node namespace through `nsenter --net`). `Lab.remove()` kills the processes it started (by
PID) and deletes its namespaces, which takes their interfaces and rules with them; it runs
even when a test fails.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from timonel.agent.proxy.iptables import Iptables

HERE = Path(__file__).parent
NODE_IP = "192.168.77.2"
EXTERNAL_IP = "192.168.77.1"
POD_CIDR = "10.244.1.0/24"
GATEWAY = "10.244.1.1"
CLUSTER_CIDR = "10.244.0.0/16"
NODE_NAME = "lab-node"


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


def netns_path(name: str) -> str:
    return f"/run/netns/{name}"


@dataclass
class Pod:
    name: str
    netns: str
    ip: str
    labels: dict[str, str] = field(default_factory=dict)
    namespace: str = "default"

    def object(self, node_name: str = NODE_NAME) -> dict[str, Any]:
        """The Pod as the API would list it (for network policy rules)."""
        return {
            "metadata": {"namespace": self.namespace, "name": self.name, "labels": self.labels},
            "spec": {
                "nodeName": node_name,
                "containers": [{"name": "c", "ports": [{"name": "http", "containerPort": 8080}]}],
            },
            "status": {"phase": "Running", "podIP": self.ip, "podIPs": [{"ip": self.ip}]},
        }


@dataclass
class Lab:
    suffix: str = field(default_factory=lambda: uuid.uuid4().hex[:6])
    pods: list[Pod] = field(default_factory=list)
    processes: list[subprocess.Popen[str]] = field(default_factory=list)
    namespaces: list[str] = field(default_factory=list)

    @property
    def node(self) -> str:
        return f"tpn-{self.suffix}"

    @property
    def external(self) -> str:
        return f"tpx-{self.suffix}"

    @property
    def iptables(self) -> Iptables:
        return Iptables(netns=netns_path(self.node))

    def _add_netns(self, name: str) -> None:
        ip("netns", "add", name)
        self.namespaces.append(name)
        ip("-n", name, "link", "set", "lo", "up")

    def create(self) -> Lab:
        self._add_netns(self.node)
        self._add_netns(self.external)
        ip("-n", self.node, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0",
           "netns", self.external)  # fmt: skip
        ip("-n", self.node, "addr", "add", f"{NODE_IP}/24", "dev", "eth0")
        ip("-n", self.node, "link", "set", "eth0", "up")
        ip("-n", self.node, "route", "add", "default", "via", EXTERNAL_IP)
        ip("-n", self.external, "addr", "add", f"{EXTERNAL_IP}/24", "dev", "eth0")
        ip("-n", self.external, "link", "set", "eth0", "up")
        ip("-n", self.node, "link", "add", "cbr0", "type", "bridge")
        ip("-n", self.node, "addr", "add", f"{GATEWAY}/24", "dev", "cbr0")
        ip("-n", self.node, "link", "set", "cbr0", "up")
        return self

    def add_pod(self, name: str, labels: dict[str, str] | None = None) -> Pod:
        number = len(self.pods) + 1
        netns = f"tpp-{self.suffix}-{number}"
        address = f"10.244.1.{10 + number}"
        self._add_netns(netns)
        port = f"vp{number}"
        ip("-n", self.node, "link", "add", port, "type", "veth", "peer", "name", "eth0",
           "netns", netns)  # fmt: skip
        ip("-n", self.node, "link", "set", port, "master", "cbr0")
        ip("-n", self.node, "link", "set", port, "type", "bridge_slave", "hairpin", "on")
        ip("-n", self.node, "link", "set", port, "up")
        ip("-n", netns, "addr", "add", f"{address}/24", "dev", "eth0")
        ip("-n", netns, "link", "set", "eth0", "up")
        ip("-n", netns, "route", "add", "default", "via", GATEWAY)
        pod = Pod(name, netns, address, dict(labels or {}))
        self.pods.append(pod)
        return pod

    def serve(self, pod: Pod, *, tcp: int = 8080, udp: int = 0) -> None:
        """Start the backend in `pod`: HTTP on `tcp` (and UDP echo on `udp`) answering with
        the pod's name."""
        command = ["nsenter", f"--net={netns_path(pod.netns)}", sys.executable,
                   str(HERE / "backend.py"), "--name", pod.name, "--tcp", str(tcp),
                   "--udp", str(udp)]  # fmt: skip
        process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        self.processes.append(process)
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.strip() == "ready", f"backend in {pod.name} did not start: {line!r}"

    def remove(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait(5)
        for name in reversed(self.namespaces):
            subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)
        self.namespaces.clear()


async def request(
    netns: str,
    url: str,
    *,
    count: int = 1,
    timeout: float = 2.0,
    udp: bool = False,
) -> dict[str, Any]:
    """Run the client in namespace `netns`: `count` requests to `url` ("IP:PORT" for UDP).
    → {"answers": {name: n}, "errors": {kind: n}, "seconds": [per request]}."""
    command = ["nsenter", f"--net={netns_path(netns)}", sys.executable, str(HERE / "client.py"),
               "--count", str(count), "--timeout", str(timeout),
               *(["--udp"] if udp else []), url]  # fmt: skip
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await process.communicate()
    if process.returncode != 0:
        raise AssertionError(f"client failed: {err.decode()}")
    result: dict[str, Any] = json.loads(out)
    return result
