"""Pod start latency straight through CRI: the floor a kubelet on this node can reach.

Starts a private containerd (`NodeRuntime`, bridge CNI) in a temporary directory, then times
per pod RunPodSandbox and CreateContainer+StartContainer (a busybox shell that exits on TERM),
and the teardown (StopContainer, StopPodSandbox, RemovePodSandbox): first `--pods` pods one
after another, then `--rounds` rounds of `--concurrent` pods started at once. Also reports how
long containerd takes to start and its resident memory when idle. Everything is removed at
the end, also on failure.

Run as root from the repository: `.venv/bin/python bench/cri_pod_start.py [--json out.json]`.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from timonel.agent.runtime.cri import CriClient, api
from timonel.agent.runtime.images import BUSYBOX_IMAGE
from timonel.agent.runtime.node import NodeRuntime

WORKLOAD = ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]


def free_pod_cidr() -> str:
    routes = json.loads(subprocess.run(["ip", "-j", "route"], capture_output=True).stdout)
    taken = [ipaddress.ip_network(r["dst"], strict=False) for r in routes if r["dst"] != "default"]
    candidates = list(ipaddress.IPv4Network("10.251.0.0/16").subnets(new_prefix=24))
    for candidate in candidates[1:]:
        if not any(candidate.overlaps(network) for network in taken):
            return str(candidate)
    raise SystemExit("no free /24 under 10.251.0.0/16")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


@dataclass
class Timings:
    phases: dict[str, list[float]] = field(default_factory=dict)

    def add(self, phase: str, seconds: float) -> None:
        self.phases.setdefault(phase, []).append(seconds * 1000)

    def summary(self) -> dict[str, dict[str, float]]:
        return {phase: summarize(values) for phase, values in self.phases.items()}


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def summarize(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50": round(statistics.median(values), 1),
        "p90": round(percentile(values, 0.9), 1),
        "p99": round(percentile(values, 0.99), 1),
        "max": round(max(values), 1),
    }


class PodBench:
    def __init__(self, node: NodeRuntime, cri: CriClient, logs: Path) -> None:
        self.node = node
        self.cri = cri
        self.logs = logs

    def sandbox_config(self, name: str) -> api.PodSandboxConfig:
        uid = str(uuid.uuid4())
        return api.PodSandboxConfig(
            metadata=api.PodSandboxMetadata(name=name, uid=uid, namespace="bench"),
            hostname=name,
            log_directory=str(self.logs / uid),
            linux=api.LinuxPodSandboxConfig(cgroup_parent=f"{self.node.cgroup_parent}/pod{uid}"),
        )

    async def start(self, name: str, timings: Timings) -> tuple[str, str]:
        config = self.sandbox_config(name)
        started = time.perf_counter()
        sandbox_id = await self.cri.run_pod_sandbox(config)
        sandbox_ready = time.perf_counter()
        container = api.ContainerConfig(
            metadata=api.ContainerMetadata(name="main"),
            image=api.ImageSpec(image=BUSYBOX_IMAGE),
            command=WORKLOAD,
            log_path="main/0.log",
        )
        container_id = await self.cri.create_container(sandbox_id, container, config)
        await self.cri.start_container(container_id)
        running = time.perf_counter()
        status = await self.cri.container_status(container_id)
        sandbox = await self.cri.pod_sandbox_status(sandbox_id)
        if status.status.state != api.CONTAINER_RUNNING or not sandbox.status.network.ip:
            raise RuntimeError(f"pod {name} is not running with an IP")
        timings.add("RunPodSandbox", sandbox_ready - started)
        timings.add("Create+StartContainer", running - sandbox_ready)
        timings.add("pod start (sum)", running - started)
        return sandbox_id, container_id

    async def stop(self, sandbox_id: str, container_id: str, timings: Timings) -> None:
        started = time.perf_counter()
        await self.cri.stop_container(container_id, 10)
        container_stopped = time.perf_counter()
        await self.cri.stop_pod_sandbox(sandbox_id)
        sandbox_stopped = time.perf_counter()
        await self.cri.remove_pod_sandbox(sandbox_id)
        removed = time.perf_counter()
        timings.add("StopContainer", container_stopped - started)
        timings.add("StopPodSandbox", sandbox_stopped - container_stopped)
        timings.add("RemovePodSandbox", removed - sandbox_stopped)
        timings.add("teardown (sum)", removed - started)


async def run(arguments: argparse.Namespace) -> dict[str, Any]:
    base = Path(tempfile.mkdtemp(prefix="timonel-bench-"))
    node = NodeRuntime(
        node_name=f"bench-{uuid.uuid4().hex[:6]}",
        state_dir=base / "state",
        run_dir=base / "run",
        pod_cidr=free_pod_cidr(),
    )
    report: dict[str, Any] = {}
    try:
        await node.start()
        report["startup_ms"] = {k: round(v * 1000, 1) for k, v in node.startup_seconds.items()}
        pid = node.containerd.pid
        assert pid is not None
        await asyncio.sleep(arguments.settle)
        report["containerd_idle_rss_mib"] = round(rss_kib(pid) / 1024, 1)

        async with node.client(timeout=60) as cri:
            bench = PodBench(node, cri, base / "logs")
            warm_up = await bench.start("warm-up", Timings())
            await bench.stop(*warm_up, Timings())

            sequential = Timings()
            started = time.perf_counter()
            for index in range(arguments.pods):
                pod = await bench.start(f"seq-{index}", sequential)
                await bench.stop(*pod, sequential)
            report["sequential"] = {
                "pods": arguments.pods,
                "wall_s": round(time.perf_counter() - started, 2),
                "phases_ms": sequential.summary(),
            }

            concurrent = Timings()
            rounds: list[dict[str, float]] = []
            for round_index in range(arguments.rounds):
                started = time.perf_counter()
                pods = await asyncio.gather(
                    *(
                        bench.start(f"con-{round_index}-{i}", concurrent)
                        for i in range(arguments.concurrent)
                    )
                )
                all_running = time.perf_counter() - started
                started = time.perf_counter()
                await asyncio.gather(*(bench.stop(*pod, concurrent) for pod in pods))
                rounds.append(
                    {
                        "all_running_s": round(all_running, 2),
                        "all_removed_s": round(time.perf_counter() - started, 2),
                    }
                )
            report["concurrent"] = {
                "pods_per_round": arguments.concurrent,
                "rounds": rounds,
                "phases_ms": concurrent.summary(),
            }
        report["containerd_rss_after_mib"] = round(rss_kib(pid) / 1024, 1)
    finally:
        await node.purge()
        shutil.rmtree(base, ignore_errors=True)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=50, help="sequential pods")
    parser.add_argument("--concurrent", type=int, default=20, help="pods started at once")
    parser.add_argument("--rounds", type=int, default=1, help="rounds of concurrent pods")
    parser.add_argument("--settle", type=float, default=3.0, help="seconds before idle RSS")
    parser.add_argument("--json", type=Path, help="also write the report here")
    arguments = parser.parse_args()
    report = asyncio.run(run(arguments))
    text = json.dumps(report, indent=2)
    print(text)
    if arguments.json:
        arguments.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
