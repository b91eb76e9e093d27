"""What the cluster benchmarks share: simulated nodes (`timonel agent --simulate N`, a
process of its own, started here and ended by PID), waiting for them to be Ready, a pod
watch that timestamps every pod's way from created to bound to Ready, and sampling a
process's CPU and memory.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import json
import math
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import harness
import orjson
from harness import REPO, ServerProcess

# A cluster CIDR with room for a /24 per node however many nodes there are.
WIDE_CLUSTER_CIDR = "10.0.0.0/8"


@dataclass
class SimulatedAgent:
    process: subprocess.Popen[bytes]
    count: int
    prefix: str
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def cpu_seconds(self) -> float:
        return harness.pid_cpu_seconds(self.pid)

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return math.nan

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


_agents: list[SimulatedAgent] = []


@contextlib.contextmanager
def simulated_nodes(
    server: ServerProcess,
    count: int,
    work: Path,
    *,
    prefix: str = "sim",
    config: str = "",
) -> Iterator[SimulatedAgent]:
    """`timonel agent --simulate COUNT` against `server`; `config` is its YAML
    (--simulate-config). Ended however the block exits."""
    data_dir = work / f"agent-{prefix}"
    data_dir.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable, "-m", "timonel", "agent",
        "--simulate", str(count),
        "--server", server.url,
        "--token", (server.data_dir / "token").read_text().strip(),
        "--data-dir", str(data_dir),
        "--node-name", prefix,
    ]  # fmt: skip
    if config:
        (data_dir / "simulate.yaml").write_text(config)
        command += ["--simulate-config", str(data_dir / "simulate.yaml")]
    log_path = work / f"agent-{prefix}.log"
    with open(log_path, "ab") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
    agent = SimulatedAgent(process, count, prefix, log_path)
    _agents.append(agent)
    try:
        yield agent
    finally:
        agent.stop()
        _agents.remove(agent)


def stop_everything_on_signal() -> None:
    """SIGTERM/SIGINT end the agents and the servers this benchmark started."""

    def on_signal(signum: int, _frame: Any) -> None:
        for agent in list(_agents):
            agent.stop()
        for server in list(harness._running):
            server.stop()
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)


def is_ready(obj: dict[str, Any]) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (obj.get("status") or {}).get("conditions") or []
    )


async def wait_nodes_ready(
    session: aiohttp.ClientSession, count: int, *, timeout: float = 600.0
) -> float:
    """Wait until `count` nodes are Ready; returns the seconds it took."""
    started = time.monotonic()
    while True:
        body = orjson.loads(await harness.call(session, "GET", "/api/v1/nodes"))
        ready = sum(1 for node in body["items"] if is_ready(node))
        if ready >= count:
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise RuntimeError(f"only {ready} of {count} nodes Ready after {timeout:.0f} s")
        await asyncio.sleep(1.0)


@dataclass
class PodTimes:
    seen: float = math.nan
    bound: float = math.nan
    ready: float = math.nan
    node: str = ""


@dataclass
class PodWatch:
    """Timestamps (time.monotonic) of each pod of a namespace: first seen, first seen
    bound to a node, first seen Ready. `wait_bound(n)` / `wait_ready(n)` return once n
    pods got there."""

    session: aiohttp.ClientSession
    namespace: str
    pods: dict[str, PodTimes] = field(default_factory=dict)
    bound_count: int = 0
    ready_count: int = 0
    events: int = 0
    _changed: asyncio.Event = field(default_factory=asyncio.Event)
    _task: asyncio.Task[None] | None = None

    async def start(self) -> PodWatch:
        listed = orjson.loads(
            await harness.call(
                self.session, "GET", f"/api/v1/namespaces/{self.namespace}/pods?limit=1"
            )
        )
        version = listed["metadata"]["resourceVersion"]
        opened = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._run(version, opened))
        await opened
        return self

    async def _run(self, version: str, opened: asyncio.Future[None]) -> None:
        path = (
            f"/api/v1/namespaces/{self.namespace}/pods?watch=1&resourceVersion={version}"
            "&timeoutSeconds=3600"
        )
        async with self.session.get(
            path, timeout=aiohttp.ClientTimeout(total=None, sock_read=None)
        ) as response:
            if response.status != 200:
                raise harness.RequestFailed(f"watch: {response.status}")
            opened.set_result(None)
            buffer = b""
            async for chunk in response.content.iter_any():
                now = time.monotonic()
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    if line.strip():
                        self._apply(orjson.loads(line), now)
                self._changed.set()

    def _apply(self, event: dict[str, Any], now: float) -> None:
        self.events += 1
        pod = event["object"]
        if event["type"] not in ("ADDED", "MODIFIED"):
            return
        times = self.pods.get(pod["metadata"]["name"])
        if times is None:
            times = self.pods[pod["metadata"]["name"]] = PodTimes(seen=now)
        node = (pod.get("spec") or {}).get("nodeName")
        if node and math.isnan(times.bound):
            times.bound, times.node = now, node
            self.bound_count += 1
        if math.isnan(times.ready) and is_ready(pod):
            times.ready = now
            self.ready_count += 1

    async def _wait(self, attribute: str, count: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while getattr(self, attribute) < count:
            if self._task is not None and self._task.done():
                self._task.result()
                raise RuntimeError("the pod watch ended")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{attribute} {getattr(self, attribute)} of {count}")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(remaining, 1.0))

    async def wait_bound(self, count: int, timeout: float = 600.0) -> None:
        await self._wait("bound_count", count, timeout)

    async def wait_ready(self, count: int, timeout: float = 600.0) -> None:
        await self._wait("ready_count", count, timeout)

    def times(self, attribute: str) -> list[float]:
        return sorted(
            value for t in self.pods.values() if not math.isnan(value := getattr(t, attribute))
        )

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


def per_second(stamps: list[float], since: float) -> list[int]:
    """How many of `stamps` fall in each whole second after `since`."""
    if not stamps:
        return []
    counts = [0] * (int(max(stamps) - since) + 1)
    for stamp in stamps:
        counts[max(0, int(stamp - since))] += 1
    return counts


def best_window_rate(stamps: list[float], window: float = 5.0) -> float:
    """The highest rate of `stamps` over any `window` seconds (sliding)."""
    if len(stamps) < 2:
        return math.nan
    best, start = 0, 0
    for end in range(len(stamps)):
        while stamps[end] - stamps[start] > window:
            start += 1
        best = max(best, end - start + 1)
    span = min(window, stamps[-1] - stamps[0])
    return best / span if span > 0 else math.nan


def sampled_throughput(stamps: list[float], since: float, interval: float = 1.0) -> float:
    """scheduler_perf's SchedulingThroughput "Average": a tick every `interval` from
    `since`; the first tick that sees a pod bound only starts the count, every later tick
    samples the pods bound since the previous one, and sampling ends with the last tick
    before the last binding (the collector stops when every pod is bound). NaN with no
    whole sample."""
    if not stamps:
        return math.nan
    ordered = sorted(stamps)
    first_tick = since + (math.floor((ordered[0] - since) / interval) + 1) * interval
    ticks = int((ordered[-1] - first_tick) // interval)
    if ticks < 1:
        return math.nan
    counted = bisect.bisect_left(ordered, first_tick + ticks * interval) - bisect.bisect_left(
        ordered, first_tick
    )
    return counted / (ticks * interval)


class ProcessSampler:
    """CPU seconds of some processes over a window, by name."""

    def __init__(self, processes: dict[str, int]) -> None:
        self.processes = processes
        self.start: dict[str, float] = {}
        self.used: dict[str, float] = {}
        self.wall = 0.0

    def __enter__(self) -> ProcessSampler:
        self._wall = time.monotonic()
        self._machine = harness.machine_busy_seconds()
        self._own = harness.process_cpu_seconds()
        self.start = {n: harness.pid_cpu_seconds(p) for n, p in self.processes.items()}
        return self

    def __exit__(self, *_: object) -> None:
        self.wall = time.monotonic() - self._wall
        self.used = {
            n: harness.pid_cpu_seconds(p) - self.start[n] for n, p in self.processes.items()
        }
        self.used["benchmark"] = harness.process_cpu_seconds() - self._own
        machine = harness.machine_busy_seconds() - self._machine
        self.used["other"] = max(0.0, machine - sum(self.used.values()))

    def cores(self) -> dict[str, float]:
        if not self.wall:
            return {}
        cores = {f"{n}_cores": v / self.wall for n, v in self.used.items()}
        # The key harness.Results looks for to call a run noisy.
        cores["other_cpu_cores"] = cores["other_cores"]
        return cores


# Installed into the server's interpreter through PYTHONPATH: every collection of the
# cyclic garbage collector taking 20 ms or more is appended to GC_PAUSES_FILE as
# [wall-clock start, seconds, generation].
_GC_PROBE = """\
import gc, json, os, time

_path = os.environ.get("GC_PAUSES_FILE")
if _path:
    _started = [0.0, 0.0]

    def _timed(phase, info):
        if phase == "start":
            _started[:] = [time.time(), time.perf_counter()]
            return
        spent = time.perf_counter() - _started[1]
        if spent >= 0.02:
            with open(_path, "a") as out:
                out.write(json.dumps([_started[0], spent, info["generation"]]) + "\\n")

    gc.callbacks.append(_timed)
"""


def gc_probe_environment(work: Path) -> dict[str, str]:
    """Environment for a server whose garbage collection pauses are to be recorded
    (read them with `gc_pauses`)."""
    site = work / "gc-probe"
    site.mkdir(parents=True, exist_ok=True)
    (site / "sitecustomize.py").write_text(_GC_PROBE)
    pauses = work / "gc-pauses.jsonl"
    pauses.unlink(missing_ok=True)
    return {"PYTHONPATH": str(site), "GC_PAUSES_FILE": str(pauses)}


def gc_pauses(work: Path, since: float, until: float) -> dict[str, float]:
    """Collector pauses (of 20 ms or more) that started between the wall-clock times
    `since` and `until`: how many, their total and the longest, in seconds."""
    found: list[tuple[float, float, int]] = []
    with contextlib.suppress(OSError):
        for line in (work / "gc-pauses.jsonl").read_text().splitlines():
            started, spent, generation = json.loads(line)
            if since <= started <= until:
                found.append((started, spent, generation))
    return {
        "count": len(found),
        "total_s": sum(spent for _, spent, _ in found),
        "max_s": max((spent for _, spent, _ in found), default=0.0),
        "full_collections": sum(1 for *_, generation in found if generation == 2),
    }
