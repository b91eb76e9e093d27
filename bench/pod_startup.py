"""Pod startup through the node agent, next to the same pods started straight through CRI.

Starts `timonel server --disable-agent` and a separate `timonel agent` process (so the
agent's own memory and CPU can be read) on a fresh data directory, with a unique node
name and cluster CIDR, and waits for the node to be Ready. Then, in one run:

- agent idle: RSS and CPU of the agent process (and containerd's RSS) over `--idle`
  seconds with no pods (bench/agent_idle.py measures this in detail, also with pods);
- the same pod three ways, in the same run: through the API server and the agent
  (latency from just before its POST to the first watch event showing every container
  running, the image already on the node; the scheduler's binding is part of it and
  reported separately; and the agent's CPU time per pod, start and teardown); straight
  through CRI on the agent's own containerd (same image, command and CNI bridge, with
  bench/cri_pod_start.py's PodBench: the floor a kubelet on this node can reach); and
  `podman kube play` (bench/podman_peer.py, private storage and configuration) when podman
  is installed. `--pods` pods one after another, the three ways taking turns pod by pod
  (so that other load on this shared machine falls on all of them alike), each pod
  removed before the next; then `--concurrent` pods created at once, each way in turn.

The closing `summary` gives p50 / p99 in ms per way and the aims (sequential p99 under
0.5 s, within 1.3x of CRI, faster than podman), also printed as a table. Everything is
removed at the end, also on failure. Run as root from the repository:

    .venv/bin/python bench/pod_startup.py [--pods 50] [--concurrent 20] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import harness
import podman_peer
from cri_pod_start import WORKLOAD, PodBench, Timings, rss_kib

from timonel.agent.kubelet.agent import default_run_dir
from timonel.agent.runtime.cri import CriClient
from timonel.agent.runtime.images import BUSYBOX_IMAGE
from timonel.agent.runtime.node import NodeRuntime

NAMESPACE = "bench"


def free_cluster_cidr() -> str:
    routes = json.loads(
        subprocess.run(["ip", "-j", "route"], capture_output=True, check=True).stdout
    )
    taken = [ipaddress.ip_network(r["dst"], strict=False) for r in routes if r["dst"] != "default"]
    for candidate in ipaddress.ip_network("10.208.0.0/13").subnets(new_prefix=16):
        if not any(candidate.overlaps(network) for network in taken):
            return str(candidate)
    raise SystemExit("no free /16 for the cluster CIDR under 10.208.0.0/13")


def pod_body(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "terminationGracePeriodSeconds": 2,
            "containers": [
                {
                    "name": "main",
                    "image": BUSYBOX_IMAGE,
                    "imagePullPolicy": "IfNotPresent",
                    "command": WORKLOAD,
                }
            ],
        },
    }


@dataclass
class Processes:
    base: Path
    node_name: str
    cluster_cidr: str
    port: int
    server: subprocess.Popen[bytes] | None = None
    agent: subprocess.Popen[bytes] | None = None
    ready_s: float = 0.0

    @property
    def server_dir(self) -> Path:
        return self.base / "server"

    @property
    def agent_dir(self) -> Path:
        return self.base / "agent"

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def start_server(self) -> None:
        log = (self.base / "server.log").open("ab")
        self.server = subprocess.Popen(
            [
                sys.executable, "-m", "timonel", "server", "--disable-agent",
                "--data-dir", str(self.server_dir), "--bind-address", "127.0.0.1",
                "--https-listen-port", str(self.port), "--cluster-cidr", self.cluster_cidr,
            ],
            stdout=log, stderr=subprocess.STDOUT, cwd=harness.REPO,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while (
            harness.readyz_status(self.port) != 200
            or not (self.server_dir / "kubeconfig.yaml").exists()
        ):
            if self.server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the server did not start; see {self.base / 'server.log'}")
            time.sleep(0.05)

    def start_agent(self) -> None:
        token = (self.server_dir / "token").read_text().strip()
        log = (self.base / "agent.log").open("ab")
        self.agent = subprocess.Popen(
            [
                sys.executable, "-m", "timonel", "agent", "--server", self.url, "--token", token,
                "--data-dir", str(self.agent_dir), "--node-name", self.node_name,
            ],
            stdout=log, stderr=subprocess.STDOUT, cwd=harness.REPO,
        )  # fmt: skip

    def stop(self) -> None:
        for process in (self.agent, self.server):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(10)


def containerd_pid(agent_dir: Path) -> int | None:
    try:
        return int(json.loads((default_run_dir(agent_dir) / "containerd.pid").read_text())["pid"])
    except (OSError, ValueError, KeyError):
        return None


class PodWatcher:
    """When each pod of the namespace was first seen bound, running, and gone."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self.session = session
        self.bound: dict[str, float] = {}
        self.running: dict[str, float] = {}
        self.gone: dict[str, float] = {}
        self.changed = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def run(self) -> None:
        path = f"/api/v1/namespaces/{NAMESPACE}/pods"
        while True:
            listed = json.loads(await harness.call(self.session, "GET", path))
            version = listed["metadata"]["resourceVersion"]
            query = f"?watch=1&resourceVersion={version}&allowWatchBookmarks=true"
            async with self.session.get(
                path + query, timeout=aiohttp.ClientTimeout(total=None)
            ) as response:
                async for line in response.content:
                    if line.strip():
                        self._observe(json.loads(line), time.perf_counter())

    def _observe(self, event: dict[str, Any], now: float) -> None:
        pod = event["object"]
        name = pod.get("metadata", {}).get("name", "")
        if event["type"] == "DELETED":
            self.gone.setdefault(name, now)
        elif event["type"] in ("ADDED", "MODIFIED"):
            if pod.get("spec", {}).get("nodeName"):
                self.bound.setdefault(name, now)
            statuses = pod.get("status", {}).get("containerStatuses") or []
            if statuses and all("running" in s.get("state", {}) for s in statuses):
                self.running.setdefault(name, now)
        self.changed.set()

    async def wait(self, table: dict[str, float], names: list[str], timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while not all(name in table for name in names):
            self.changed.clear()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                missing = [n for n in names if n not in table]
                raise TimeoutError(f"pods {missing[:5]} did not get there in {timeout} s")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), remaining)


async def create(session: aiohttp.ClientSession, name: str) -> float:
    started = time.perf_counter()
    await harness.call(
        session, "POST", f"/api/v1/namespaces/{NAMESPACE}/pods", body=pod_body(name), expect=(201,)
    )
    return started


async def delete(session: aiohttp.ClientSession, name: str) -> float:
    started = time.perf_counter()
    await harness.call(
        session, "DELETE", f"/api/v1/namespaces/{NAMESPACE}/pods/{name}", expect=(200, 202)
    )
    return started


@dataclass
class _NodeShim:
    """What PodBench needs of a node: where pods' cgroups go."""

    cgroup_parent: str


@dataclass
class AgentWay:
    """Pods through the API server and the node agent."""

    session: aiohttp.ClientSession
    watcher: PodWatcher
    agent_pid: int
    start: list[float] = field(default_factory=list)
    bind: list[float] = field(default_factory=list)
    teardown: list[float] = field(default_factory=list)
    cpu_seconds: float = 0.0

    async def one(self, name: str) -> None:
        cpu_before = harness.pid_cpu_seconds(self.agent_pid)
        created = await create(self.session, name)
        await self.watcher.wait(self.watcher.running, [name])
        self.start.append(self.watcher.running[name] - created)
        self.bind.append(self.watcher.bound[name] - created)
        deleted = await delete(self.session, name)
        await self.watcher.wait(self.watcher.gone, [name])
        self.teardown.append(self.watcher.gone[name] - deleted)
        self.cpu_seconds += harness.pid_cpu_seconds(self.agent_pid) - cpu_before

    def sequential(self) -> dict[str, Any]:
        return {
            "pods": len(self.start),
            "agent_cpu_ms_per_pod": round(1000 * self.cpu_seconds / len(self.start), 1),
            "created_to_running": harness.latency_summary(self.start),
            "created_to_bound": harness.latency_summary(self.bind),
            "delete_to_gone": harness.latency_summary(self.teardown),
        }

    async def at_once(self, names: list[str]) -> dict[str, Any]:
        watcher = self.watcher
        round_started = time.perf_counter()
        created = await asyncio.gather(*(create(self.session, name) for name in names))
        await watcher.wait(watcher.running, names)
        all_running = max(watcher.running[n] for n in names) - round_started
        deleted = await asyncio.gather(*(delete(self.session, name) for name in names))
        await watcher.wait(watcher.gone, names)
        return {
            "pods": len(names),
            "all_running_s": round(all_running, 2),
            "all_gone_s": round(max(watcher.gone[n] for n in names) - min(deleted), 2),
            "created_to_running": harness.latency_summary(
                [watcher.running[n] - c for n, c in zip(names, created, strict=True)]
            ),
            "created_to_bound": harness.latency_summary(
                [watcher.bound[n] - c for n, c in zip(names, created, strict=True)]
            ),
        }


async def compare(
    agent: AgentWay,
    cri: PodBench,
    podman: podman_peer.Podman | None,
    pods: int,
    concurrent: int,
) -> dict[str, Any]:
    """The three ways side by side. One after another, the ways take turns pod by pod, so
    that other load on the machine falls on all of them alike; then `concurrent` pods at
    once, each way in turn."""
    await agent.one("warm-up")
    await cri.stop(*await cri.start("cri-warm-up", Timings()), Timings())
    cri_sequential = Timings()
    podman_times: list[tuple[float, float, float]] = []
    for index in range(pods):
        await agent.one(f"seq-{index}")
        await cri.stop(*await cri.start(f"cri-seq-{index}", cri_sequential), cri_sequential)
        if podman is not None:
            podman_times.append(await podman.one(f"seq-{index}"))
    report: dict[str, Any] = {
        "through_agent": {"sequential": agent.sequential()},
        "through_cri": {"sequential": {"pods": pods, "phases_ms": cri_sequential.summary()}},
    }
    report["through_agent"]["concurrent"] = await agent.at_once(
        [f"con-{i}" for i in range(concurrent)]
    )
    parallel = Timings()
    started = time.perf_counter()
    running = await asyncio.gather(
        *(cri.start(f"cri-con-{i}", parallel) for i in range(concurrent))
    )
    all_running = time.perf_counter() - started
    await asyncio.gather(*(cri.stop(*pod, parallel) for pod in running))
    report["through_cri"]["concurrent"] = {
        "pods": concurrent,
        "all_running_s": round(all_running, 2),
        "phases_ms": parallel.summary(),
    }
    if podman is not None:
        report["podman"] = {
            "version": podman.version,
            "sequential": podman_peer.sequential_report(podman_times),
            "concurrent": await podman.at_once([f"con-{i}" for i in range(concurrent)]),
        }
    return report


def idle_sample(agent_pid: int, seconds: float) -> dict[str, float]:
    cpu_before = harness.pid_cpu_seconds(agent_pid)
    time.sleep(seconds)
    cpu = harness.pid_cpu_seconds(agent_pid) - cpu_before
    return {
        "agent_rss_mib": round(rss_kib(agent_pid) / 1024, 1),
        "agent_cpu_percent": round(100 * cpu / seconds, 2),
        "seconds": seconds,
    }


@contextlib.asynccontextmanager
async def agent_cluster(base: Path) -> AsyncIterator[tuple[Processes, aiohttp.ClientSession]]:
    """A server and a real agent on a fresh data dir under `base`, the node Ready and the
    bench namespace there; everything stopped and purged afterwards, also on failure."""
    processes = Processes(
        base, f"bench-{uuid.uuid4().hex[:6]}", free_cluster_cidr(), harness.free_port()
    )
    try:
        processes.start_server()
        processes.start_agent()
        context = harness.client_ssl_context(processes.server_dir / "kubeconfig.yaml")
        connector = aiohttp.TCPConnector(ssl=context, limit=64)
        async with aiohttp.ClientSession(
            base_url=processes.url, connector=connector, timeout=aiohttp.ClientTimeout(total=120)
        ) as session:
            processes.ready_s = await wait_node_ready(session, processes)
            await harness.ensure_namespace(session, NAMESPACE)
            yield processes, session
    finally:
        processes.stop()
        await purge_node(processes)


async def wait_node_ready(session: aiohttp.ClientSession, processes: Processes) -> float:
    started = time.perf_counter()
    while True:
        with contextlib.suppress(harness.RequestFailed):
            node = json.loads(
                await harness.call(session, "GET", f"/api/v1/nodes/{processes.node_name}")
            )
            conditions = {c["type"]: c["status"] for c in node["status"].get("conditions", [])}
            if conditions.get("Ready") == "True":
                return round(time.perf_counter() - started, 2)
        if processes.agent is not None and processes.agent.poll() is not None:
            raise SystemExit(f"the agent exited; see {processes.base / 'agent.log'}")
        await asyncio.sleep(0.1)


async def purge_node(processes: Processes) -> None:
    """Remove the agent's containerd, pods, cgroups and CNI state."""
    node = NodeRuntime(
        node_name=processes.node_name,
        state_dir=processes.agent_dir / "agent",
        run_dir=default_run_dir(processes.agent_dir),
    )
    node.configure_network(
        str(next(ipaddress.ip_network(processes.cluster_cidr).subnets(new_prefix=24)))
    )
    with contextlib.suppress(Exception):
        await node.containerd.start()
    await node.purge()


async def run(arguments: argparse.Namespace) -> dict[str, Any]:
    base = Path(tempfile.mkdtemp(prefix="timonel-podbench-"))
    report: dict[str, Any] = {}
    try:
        async with agent_cluster(base) as (processes, session):
            report.update(node=processes.node_name, cluster_cidr=processes.cluster_cidr)
            report["agent_start_to_node_ready_s"] = processes.ready_s
            assert processes.agent is not None
            await asyncio.sleep(arguments.settle)
            report["idle_no_pods"] = idle_sample(processes.agent.pid, arguments.idle)
            pid = containerd_pid(processes.agent_dir)
            if pid is not None:
                report["idle_no_pods"]["containerd_rss_mib"] = round(rss_kib(pid) / 1024, 1)

            watcher = PodWatcher(session)
            watcher.task = asyncio.create_task(watcher.run())
            try:
                async with contextlib.AsyncExitStack() as stack:
                    cri = await stack.enter_async_context(
                        CriClient(
                            default_run_dir(processes.agent_dir) / "containerd.sock", timeout=60
                        )
                    )
                    shim = _NodeShim(f"/timonel-{processes.node_name}")
                    bench = PodBench(shim, cri, base / "cri-logs")  # type: ignore[arg-type]
                    podman = None
                    if arguments.no_podman:
                        report["podman"] = "not measured (--no-podman)"
                    elif not podman_peer.available():
                        report["podman"] = "not measured (apt-get install -y podman)"
                    else:
                        podman = await stack.enter_async_context(podman_peer.private_podman())
                    agent = AgentWay(session, watcher, processes.agent.pid)
                    report.update(
                        await compare(agent, bench, podman, arguments.pods, arguments.concurrent)
                    )
            finally:
                watcher.task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await watcher.task
    finally:
        shutil.rmtree(base, ignore_errors=True)
    report["summary"] = summary(report)
    return report


def summary(report: dict[str, Any]) -> dict[str, Any]:
    """p50 / p99 (ms) of created -> running for each way, and timonel against the aims."""
    rows: dict[str, Any] = {}
    agent = report.get("through_agent", {})
    cri = report.get("through_cri", {})
    podman = report.get("podman")
    for mode in ("sequential", "concurrent"):
        row: dict[str, Any] = {}
        if mode in agent:
            latency = agent[mode]["created_to_running"]
            row["timonel"] = (round(latency["p50_ms"]), round(latency["p99_ms"]))
        if mode in cri:
            latency = cri[mode]["phases_ms"]["pod start (sum)"]
            row["cri"] = (round(latency["p50"]), round(latency["p99"]))
        if isinstance(podman, dict) and mode in podman:
            latency = podman[mode]["created_to_running"]
            row["podman"] = (round(latency["p50_ms"]), round(latency["p99_ms"]))
        if "timonel" in row and "cri" in row:
            row["timonel_over_cri_p50"] = round(row["timonel"][0] / row["cri"][0], 2)
            row["timonel_over_cri_p99"] = round(row["timonel"][1] / row["cri"][1], 2)
        rows[mode] = row
    sequential = rows.get("sequential", {})
    if "timonel" in sequential:
        rows["aims"] = {
            "sequential p99 < 500 ms": sequential["timonel"][1] < 500,
            "within 1.3x of CRI (p50)": sequential.get("timonel_over_cri_p50", 99) <= 1.3,
            "faster than podman (p50)": "podman" not in sequential
            or sequential["timonel"][0] < sequential["podman"][0],
        }
    return rows


def print_summary(rows: dict[str, Any]) -> None:
    table = []
    for mode in ("sequential", "concurrent"):
        row = rows.get(mode, {})
        cells = [mode]
        for way in ("timonel", "cri", "podman"):
            cells.append(" / ".join(str(v) for v in row[way]) if way in row else "n/a")
        cells.append(
            f"{row.get('timonel_over_cri_p50', 'n/a')} / {row.get('timonel_over_cri_p99', 'n/a')}"
        )
        table.append(cells)
    harness.print_table(
        "created -> running, p50 / p99 ms (aims: sequential p99 < 500; <= 1.3x CRI; < podman)",
        table,
        ["pods", "timonel", "CRI", "podman", "timonel / CRI"],
    )
    for aim, met in rows.get("aims", {}).items():
        print(f"  {aim}: {'yes' if met else 'NO'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=50, help="pods created one after another")
    parser.add_argument("--concurrent", type=int, default=20, help="pods created at once")
    parser.add_argument("--idle", type=float, default=20.0, help="seconds of idle CPU sampling")
    parser.add_argument("--settle", type=float, default=3.0, help="seconds before idle samples")
    parser.add_argument("--no-podman", action="store_true", help="skip podman kube play")
    parser.add_argument("--json", type=Path, help="also write the report here")
    arguments = parser.parse_args()
    report = asyncio.run(run(arguments))
    text = json.dumps(report, indent=2)
    print(text)
    print_summary(report["summary"])
    if arguments.json:
        arguments.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
