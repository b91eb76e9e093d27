"""`timonel agent --simulate N` against a real server: nodes register Ready, bound pods
run and get addresses, deletions complete, jobs' pods complete when asked to, and a
paused node stops renewing its Lease."""

from __future__ import annotations

import ipaddress
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.conftest import REPO, RunningServer, stop_process

T = TypeVar("T")

# Short periods so that lease renewals can be watched within a test.
CONFIG = """
heartbeatPeriod: 500ms
capacity: {cpu: "16"}
"""


@dataclass
class SimulatedAgent:
    prefix: str
    data_dir: Path
    process: subprocess.Popen[bytes]
    log: Path

    def name(self, index: int) -> str:
        return f"{self.prefix}-{index}"

    def pause(self, *names: str) -> None:
        (self.data_dir / "paused-nodes").write_text("".join(f"{n}\n" for n in names))


def eventually(probe: Callable[[], T | None], *, timeout: float = 10.0, what: str = "") -> T:
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or probe}")
        time.sleep(0.1)


def get_json(server: RunningServer, *args: str) -> Any:
    return json.loads(server.kubectl("get", *args, "-o", "json").stdout)


@pytest.fixture(scope="module")
def agent(
    server: RunningServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SimulatedAgent]:
    data_dir = tmp_path_factory.mktemp("simulate")
    config = data_dir / "simulate.yaml"
    config.write_text(CONFIG)
    prefix = f"sim{uuid.uuid4().hex[:6]}"
    log = data_dir / "agent.log"
    token = (server.data_dir / "token").read_text().strip()
    with log.open("ab") as output:
        process = subprocess.Popen(
            [
                sys.executable, "-m", "timonel", "agent",
                "--simulate", "3",
                "--server", server.url,
                "--token", token,
                "--data-dir", str(data_dir),
                "--node-name", prefix,
                "--simulate-config", str(config),
                "--simulate-label", "pool=simulated-test",
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )  # fmt: skip
    running = SimulatedAgent(prefix, data_dir, process, log)
    try:
        yield running
    finally:
        stop_process(process)
        # Leave no Ready-looking nodes behind for other tests' schedulers.
        names = [running.name(i) for i in range(3)]
        server.kubectl("delete", "node", "--ignore-not-found", *names, check=False)
        server.kubectl(
            "delete", "lease", "-n", "kube-node-lease", "--ignore-not-found", *names, check=False
        )


def _ready(node: dict[str, Any]) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in node.get("status", {}).get("conditions", [])
    )


def test_nodes_register_ready(server: RunningServer, agent: SimulatedAgent) -> None:
    names = {agent.name(i) for i in range(3)}

    def registered() -> list[dict[str, Any]] | None:
        nodes = get_json(server, "nodes", "-l", "pool=simulated-test")["items"]
        mine = [n for n in nodes if n["metadata"]["name"] in names]
        return mine if len(mine) == 3 and all(map(_ready, mine)) else None

    nodes = eventually(registered, what="3 Ready simulated nodes")
    for node in nodes:
        assert node["metadata"]["labels"]["type"] == "simulated"
        assert node["status"]["capacity"]["cpu"] == "16"
        assert node["status"]["allocatable"]["memory"] == "256Gi"
        assert node["status"]["nodeInfo"]["kubeletVersion"] == "v1.32.0-timonel-sim"
    table = server.kubectl("get", "nodes", "-l", "pool=simulated-test", "--no-headers").stdout
    rows = [line.split() for line in table.splitlines() if line.split()[0] in names]
    assert [row[1] for row in rows] == ["Ready"] * 3


def _pod(name: str, node: str, **extra: Any) -> str:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, **extra.pop("metadata", {})},
        "spec": {"nodeName": node, "containers": [{"name": "c", "image": "nginx:1.27"}], **extra},
    }
    return json.dumps(pod)


def test_bound_pod_runs_and_deletion_completes(
    server: RunningServer, agent: SimulatedAgent, namespace: str
) -> None:
    node = agent.name(1)
    server.kubectl("apply", "-n", namespace, "-f", "-", input=_pod("web", node))

    def running() -> dict[str, Any] | None:
        pod = get_json(server, "pod", "web", "-n", namespace)
        status = pod.get("status", {})
        ready = any(
            c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions", [])
        )
        return pod if status.get("phase") == "Running" and ready and status.get("podIP") else None

    pod = eventually(running, what="the pod Running and Ready")
    status = pod["status"]
    node_obj = get_json(server, "node", node)
    internal_ip = next(
        a["address"] for a in node_obj["status"]["addresses"] if a["type"] == "InternalIP"
    )
    assert status["hostIP"] == internal_ip
    assert status["podIPs"] == [{"ip": status["podIP"]}]
    assert status["qosClass"] == "BestEffort"
    assert status["containerStatuses"][0]["state"]["running"]["startedAt"]
    assert status["containerStatuses"][0]["ready"] is True
    table = server.kubectl("get", "pod", "web", "-n", namespace, "--no-headers").stdout.split()
    assert table[1:3] == ["1/1", "Running"]

    started = time.monotonic()
    server.kubectl("delete", "pod", "web", "-n", namespace, "--timeout=15s")
    assert time.monotonic() - started < 15
    gone = server.kubectl("get", "pod", "web", "-n", namespace, check=False)
    assert gone.returncode != 0 and "NotFound" in gone.stderr


def test_finalizers_are_left_to_their_owners(
    server: RunningServer, agent: SimulatedAgent, namespace: str
) -> None:
    manifest = _pod("held", agent.name(1), metadata={"finalizers": ["example.com/hold"]})
    server.kubectl("apply", "-n", namespace, "-f", "-", input=manifest)
    eventually(
        lambda: get_json(server, "pod", "held", "-n", namespace)["status"].get("podIP"),
        what="the pod running",
    )
    server.kubectl("delete", "pod", "held", "-n", namespace, "--wait=false")

    def finished_by_kubelet() -> dict[str, Any] | None:
        pod = get_json(server, "pod", "held", "-n", namespace)
        return pod if pod["metadata"].get("deletionGracePeriodSeconds") == 0 else None

    pod = eventually(finished_by_kubelet, what="the simulated kubelet's delete")
    assert pod["metadata"]["finalizers"] == ["example.com/hold"]
    time.sleep(0.5)  # nothing more happens to it: no delete loop
    again = get_json(server, "pod", "held", "-n", namespace)
    assert again["metadata"]["resourceVersion"] == pod["metadata"]["resourceVersion"]
    server.kubectl(
        "patch",
        "pod",
        "held",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        '{"metadata":{"finalizers":null}}',
    )
    eventually(
        lambda: server.kubectl("get", "pod", "held", "-n", namespace, check=False).returncode != 0,
        what="the pod gone",
    )


def test_pods_on_one_node_get_distinct_addresses(
    server: RunningServer, agent: SimulatedAgent, namespace: str
) -> None:
    for i in range(3):
        server.kubectl("apply", "-n", namespace, "-f", "-", input=_pod(f"p{i}", agent.name(0)))

    def addresses() -> list[str] | None:
        pods = get_json(server, "pods", "-n", namespace)["items"]
        ips = [p.get("status", {}).get("podIP") for p in pods if p["metadata"]["name"] != "host"]
        return ips if len(ips) == 3 and all(ips) else None

    ips = eventually(addresses, what="three pod IPs")
    assert len(set(ips)) == 3
    # From the node's spec.podCIDR once the node IPAM controller set it, else from the
    # agent's fallback range.
    node = get_json(server, "node", agent.name(0))
    ranges = [ipaddress.ip_network("10.128.0.0/9")]
    if node["spec"].get("podCIDR"):
        ranges.append(ipaddress.ip_network(node["spec"]["podCIDR"]))
    for ip in ips:
        assert any(ipaddress.ip_address(ip) in network for network in ranges), ip

    host = _pod("host", agent.name(0), hostNetwork=True)
    server.kubectl("apply", "-n", namespace, "-f", "-", input=host)

    def addressed() -> dict[str, Any] | None:
        pod = get_json(server, "pod", "host", "-n", namespace)
        return pod if pod["status"].get("podIP") else None

    pod = eventually(addressed, what="the host-network pod's address")
    assert pod["status"]["podIP"] == pod["status"]["hostIP"]


def test_job_pod_completes_when_asked(
    server: RunningServer, agent: SimulatedAgent, namespace: str
) -> None:
    manifest = _pod(
        "once",
        agent.name(2),
        restartPolicy="Never",
        metadata={"annotations": {"simulate.timonel.io/complete-after": "200ms"}},
    )
    server.kubectl("apply", "-n", namespace, "-f", "-", input=manifest)

    def succeeded() -> dict[str, Any] | None:
        pod = get_json(server, "pod", "once", "-n", namespace)
        return pod if pod.get("status", {}).get("phase") == "Succeeded" else None

    pod = eventually(succeeded, what="the pod Succeeded")
    terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert terminated["exitCode"] == 0
    assert terminated["reason"] == "Completed"


def _renew_times(server: RunningServer, names: list[str]) -> dict[str, str]:
    leases = get_json(server, "leases", "-n", "kube-node-lease")["items"]
    return {
        lease["metadata"]["name"]: lease["spec"].get("renewTime", "")
        for lease in leases
        if lease["metadata"]["name"] in names
    }


def test_paused_node_stops_renewing_its_lease(server: RunningServer, agent: SimulatedAgent) -> None:
    names = [agent.name(i) for i in range(3)]
    leases = get_json(server, "leases", "-n", "kube-node-lease")["items"]
    lease = next(item for item in leases if item["metadata"]["name"] == names[0])
    assert lease["spec"]["holderIdentity"] == names[0]
    assert lease["spec"]["leaseDurationSeconds"] == 40
    node_uid = get_json(server, "node", names[0])["metadata"]["uid"]
    assert lease["metadata"]["ownerReferences"] == [
        {"apiVersion": "v1", "kind": "Node", "name": names[0], "uid": node_uid}
    ]

    paused = names[2]
    agent.pause(paused)
    time.sleep(1.0)  # the file is read within 0.5 s; a renewal in flight may still land
    before = _renew_times(server, names)
    time.sleep(1.5)  # three heartbeat periods
    after = _renew_times(server, names)
    assert after[paused] == before[paused]
    assert after[names[0]] != before[names[0]]
    assert after[names[1]] != before[names[1]]

    agent.pause()
    eventually(
        lambda: _renew_times(server, [paused])[paused] != after[paused],
        timeout=3,
        what="the resumed node to renew its lease",
    )


def test_agent_refuses_a_server_whose_ca_the_token_does_not_pin(
    server: RunningServer, tmp_path: Path
) -> None:
    token = (server.data_dir / "token").read_text().strip()
    wrong = "K10" + "0" * 64 + "::" + token.split("::", 1)[1]
    done = subprocess.run(
        [sys.executable, "-m", "timonel", "agent", "--simulate", "1", "--server", server.url,
         "--token", wrong, "--data-dir", str(tmp_path), "--node-name", "untrusted"],
        capture_output=True, text=True, cwd=REPO, timeout=30,
    )  # fmt: skip
    assert done.returncode == 1
    assert "does not match" in done.stderr
    assert server.kubectl("get", "node", "untrusted-0", check=False).returncode != 0
