"""Resource usage for the kubelet's Summary API (`/stats/summary`), which the API server's
metrics.k8s.io API reads for `kubectl top`.

Containers' CPU time and memory working set come from CRI (ListContainerStats), the
node's from /proc (/proc/stat CPU time, /proc/meminfo). CRI and /proc report CPU as a
cumulative counter; the rate (nanocores) is the counter's growth over a window of recent
samples (`UsageRates`), which a background loop keeps fresh every SAMPLE_PERIOD.

Pure: `UsageRates`, `parse_proc_stat_cpu`, `parse_meminfo`, `render_summary`.
I/O: `read_node_usage`, `StatsProvider`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from timonel.agent.kubelet.runtimestate import (
    CONTAINER_NAME_LABEL,
    NODE_LABEL,
    POD_NAME_LABEL,
    POD_NAMESPACE_LABEL,
    POD_UID_LABEL,
)
from timonel.agent.runtime.cri import CriClient, CriError, api

log = logging.getLogger(__name__)

SAMPLE_PERIOD: Final = 10.0
MIN_WINDOW_NS: Final = 1_000_000_000
KEEP_NS: Final = 60_000_000_000
NODE_KEY: Final = "node"


class UsageRates:
    """CPU rates from cumulative counters: each observation is compared with the newest
    kept sample at least `min_window_ns` older (or, lacking one, the oldest kept)."""

    def __init__(self, *, min_window_ns: int = MIN_WINDOW_NS, keep_ns: int = KEEP_NS) -> None:
        self.min_window_ns = min_window_ns
        self.keep_ns = keep_ns
        self._samples: dict[str, list[tuple[int, int]]] = {}

    def observe(self, key: str, time_ns: int, cumulative_ns: int) -> tuple[int, int] | None:
        """(nanocores, window in ns) at `time_ns`, or None without an earlier sample (or
        when the counter went backwards: a different process behind the same key)."""
        history = self._samples.setdefault(key, [])
        reference = next(
            ((t, v) for t, v in reversed(history) if time_ns - t >= self.min_window_ns), None
        )
        if reference is None and history and history[0][0] < time_ns:
            reference = history[0]
        if not history or time_ns - history[-1][0] >= self.min_window_ns:
            history.append((time_ns, cumulative_ns))
        while len(history) > 2 and time_ns - history[1][0] > self.keep_ns:
            history.pop(0)
        if reference is None or cumulative_ns < reference[1]:
            return None
        window = time_ns - reference[0]
        return (cumulative_ns - reference[1]) * 1_000_000_000 // window, window

    def retain(self, keys: Iterable[str]) -> None:
        wanted = set(keys)
        for key in list(self._samples):
            if key not in wanted:
                del self._samples[key]


def parse_proc_stat_cpu(text: str, clock_ticks: int) -> int:
    """Busy CPU time of all CPUs in nanoseconds from /proc/stat (everything but idle and
    iowait; guest time is already part of user time)."""
    for line in text.splitlines():
        fields = line.split()
        if fields and fields[0] == "cpu":
            values = [int(v) for v in fields[1:]]
            user, nice, system, _idle, _iowait, irq, softirq, steal = (values + [0] * 8)[:8]
            busy = user + nice + system + irq + softirq + steal
            return busy * 1_000_000_000 // clock_ticks
    raise ValueError("no cpu line in /proc/stat")


def parse_meminfo(text: str) -> dict[str, int]:
    """/proc/meminfo in bytes, by field name."""
    values: dict[str, int] = {}
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            factor = 1024 if len(parts) > 1 and parts[1] == "kB" else 1
            values[name.strip()] = int(parts[0]) * factor
    return values


@dataclass(frozen=True)
class Usage:
    """One sample of a container's or the node's usage."""

    time_ns: int
    cpu_core_ns: int | None = None
    cpu_nano_cores: int | None = None
    memory_working_set: int | None = None
    memory_usage: int | None = None
    memory_available: int | None = None
    memory_rss: int | None = None


@dataclass(frozen=True)
class ContainerUsage:
    pod_uid: str
    pod_name: str
    pod_namespace: str
    name: str
    started_ns: int
    usage: Usage


def _time(ns: int) -> str:
    seconds = ns // 1_000_000_000
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def _cpu(usage: Usage) -> dict[str, Any]:
    cpu: dict[str, Any] = {"time": _time(usage.time_ns)}
    if usage.cpu_nano_cores is not None:
        cpu["usageNanoCores"] = usage.cpu_nano_cores
    if usage.cpu_core_ns is not None:
        cpu["usageCoreNanoSeconds"] = usage.cpu_core_ns
    return cpu


def _memory(usage: Usage) -> dict[str, Any]:
    memory: dict[str, Any] = {"time": _time(usage.time_ns)}
    for key, value in (
        ("availableBytes", usage.memory_available),
        ("usageBytes", usage.memory_usage),
        ("workingSetBytes", usage.memory_working_set),
        ("rssBytes", usage.memory_rss),
    ):
        if value is not None:
            memory[key] = value
    return memory


def _sum(values: Iterable[int | None]) -> int | None:
    present = [v for v in values if v is not None]
    return sum(present) if present else None


def render_summary(
    node_name: str, boot_ns: int, node: Usage, containers: Iterable[ContainerUsage]
) -> dict[str, Any]:
    """The kubelet Summary API document (stats/v1alpha1), CPU and memory only."""
    pods: dict[str, list[ContainerUsage]] = {}
    for container in containers:
        pods.setdefault(container.pod_uid, []).append(container)
    pod_entries: list[dict[str, Any]] = []
    for uid, members in pods.items():
        members.sort(key=lambda c: c.name)
        first = members[0]
        latest = max(c.usage.time_ns for c in members)
        total = Usage(
            time_ns=latest,
            cpu_core_ns=_sum(c.usage.cpu_core_ns for c in members),
            cpu_nano_cores=_sum(c.usage.cpu_nano_cores for c in members),
            memory_working_set=_sum(c.usage.memory_working_set for c in members),
            memory_usage=_sum(c.usage.memory_usage for c in members),
            memory_rss=_sum(c.usage.memory_rss for c in members),
        )
        pod_entries.append(
            {
                "podRef": {"name": first.pod_name, "namespace": first.pod_namespace, "uid": uid},
                "startTime": _time(min(c.started_ns for c in members)),
                "containers": [
                    {
                        "name": c.name,
                        "startTime": _time(c.started_ns),
                        "cpu": _cpu(c.usage),
                        "memory": _memory(c.usage),
                    }
                    for c in members
                ],
                "cpu": _cpu(total),
                "memory": _memory(total),
            }
        )
    pod_entries.sort(key=lambda p: (p["podRef"]["namespace"], p["podRef"]["name"]))
    return {
        "node": {
            "nodeName": node_name,
            "startTime": _time(boot_ns),
            "cpu": _cpu(node),
            "memory": _memory(node),
        },
        "pods": pod_entries,
    }


# -- reading ---------------------------------------------------------------------------------


def read_node_usage(proc: Path = Path("/proc")) -> tuple[Usage, int]:
    """The node's sample (CPU rate not filled in) and its boot time in ns."""
    now = time.time_ns()
    cpu = parse_proc_stat_cpu((proc / "stat").read_text(), os.sysconf("SC_CLK_TCK"))
    memory = parse_meminfo((proc / "meminfo").read_text())
    total = memory.get("MemTotal", 0)
    available = memory.get("MemAvailable", memory.get("MemFree", 0))
    uptime = float((proc / "uptime").read_text().split()[0])
    usage = Usage(
        time_ns=now,
        cpu_core_ns=cpu,
        memory_working_set=max(0, total - available),
        memory_usage=max(0, total - memory.get("MemFree", 0)),
        memory_available=available,
    )
    return usage, now - int(uptime * 1_000_000_000)


def _value(message: Any, name: str) -> int | None:
    return int(getattr(message, name).value) if message.HasField(name) else None


def container_usage(stats: api.ContainerStats, started_ns: int) -> ContainerUsage:
    labels = stats.attributes.labels
    cpu_time = stats.cpu.timestamp if stats.HasField("cpu") else 0
    memory_time = stats.memory.timestamp if stats.HasField("memory") else 0
    return ContainerUsage(
        pod_uid=labels.get(POD_UID_LABEL, ""),
        pod_name=labels.get(POD_NAME_LABEL, ""),
        pod_namespace=labels.get(POD_NAMESPACE_LABEL, ""),
        name=labels.get(CONTAINER_NAME_LABEL) or stats.attributes.metadata.name,
        started_ns=started_ns,
        usage=Usage(
            time_ns=cpu_time or memory_time or time.time_ns(),
            cpu_core_ns=_value(stats.cpu, "usage_core_nano_seconds")
            if stats.HasField("cpu")
            else None,
            memory_working_set=_value(stats.memory, "working_set_bytes")
            if stats.HasField("memory")
            else None,
            memory_usage=_value(stats.memory, "usage_bytes") if stats.HasField("memory") else None,
            memory_rss=_value(stats.memory, "rss_bytes") if stats.HasField("memory") else None,
        ),
    )


def with_rate(usage: Usage, rate: tuple[int, int] | None, fallback_since_ns: int) -> Usage:
    """`usage` with its CPU rate: from `rate`, else the average since `fallback_since_ns`."""
    if usage.cpu_core_ns is None:
        return usage
    if rate is not None:
        nano_cores = rate[0]
    else:
        elapsed = usage.time_ns - fallback_since_ns
        nano_cores = usage.cpu_core_ns * 1_000_000_000 // elapsed if elapsed > 0 else 0
    return dataclasses.replace(usage, cpu_nano_cores=nano_cores)


class StatsProvider:
    """Samples this node's containers (those its agent created) and the node itself."""

    def __init__(
        self,
        cri: Callable[[], CriClient],
        node_name: str,
        *,
        read_node: Callable[[], tuple[Usage, int]] = read_node_usage,
    ) -> None:
        self.cri = cri
        self.node_name = node_name
        self.read_node = read_node
        self.rates = UsageRates()
        self._lock = asyncio.Lock()

    async def summary(self) -> dict[str, Any]:
        async with self._lock:
            node, boot_ns = await asyncio.to_thread(self.read_node)
            node = with_rate(
                node, self.rates.observe(NODE_KEY, node.time_ns, node.cpu_core_ns or 0), boot_ns
            )
            containers = await self._containers()
        return render_summary(self.node_name, boot_ns, node, containers)

    async def _containers(self) -> list[ContainerUsage]:
        selector = {NODE_LABEL: self.node_name}
        cri = self.cri()
        running = await cri.list_containers(
            api.ContainerFilter(
                state=api.ContainerStateValue(state=api.CONTAINER_RUNNING),
                label_selector=selector,
            )
        )
        started = {c.id: int(c.created_at) for c in running}
        stats = await cri.list_container_stats(api.ContainerStatsFilter(label_selector=selector))
        found = []
        for entry in stats:
            container_id = entry.attributes.id
            if container_id not in started:
                continue
            usage = container_usage(entry, started[container_id])
            rate = None
            if usage.usage.cpu_core_ns is not None:
                rate = self.rates.observe(
                    container_id, usage.usage.time_ns, usage.usage.cpu_core_ns
                )
            found.append(
                dataclasses.replace(usage, usage=with_rate(usage.usage, rate, usage.started_ns))
            )
        self.rates.retain([NODE_KEY, *started])
        return found

    async def run(self, period: float = SAMPLE_PERIOD) -> None:
        """Sample forever so that a rate's window is never much longer than `period`."""
        while True:
            try:
                await self.summary()
            except (CriError, OSError, ValueError) as error:
                log.debug("sampling usage failed: %s", error)
            await asyncio.sleep(period)
