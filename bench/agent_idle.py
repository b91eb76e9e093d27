"""Idle memory and CPU of a real node agent (`timonel agent --server URL --token T`).

Starts `timonel server --disable-agent` and a separate `timonel agent` (its own containerd)
on a fresh data directory, waits for the node to be Ready, then samples the agent process
alone (containerd and the shims are not counted) over `--idle` seconds: first with no
pods, then with `--pods` pods running. RSS is `VmRSS` from /proc/PID/status, split into
anonymous and file-backed pages (smaps_rollup); CPU is the process's user + system time
over the window. Everything is removed at the end, also on failure. Run as root:

    .venv/bin/python bench/agent_idle.py [--idle 30] [--pods 10] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness
from cri_pod_start import rss_kib
from pod_startup import PodWatcher, agent_cluster, containerd_pid, create, delete

RSS_AIM_MIB = 40.0
CPU_AIM_PERCENT = 0.5


def memory_breakdown(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM, and the resident pages split into anonymous and file-backed."""
    fields: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM", "Threads"):
            fields[key] = int(value.split()[0])
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        key, _, value = line.partition(":")
        if key in ("Anonymous", "Rss", "Pss"):
            fields[key] = int(value.split()[0])
    return {
        "rss_mib": round(fields["VmRSS"] / 1024, 1),
        "peak_rss_mib": round(fields["VmHWM"] / 1024, 1),
        "anonymous_mib": round(fields.get("Anonymous", 0) / 1024, 1),
        "file_backed_mib": round((fields.get("Rss", 0) - fields.get("Anonymous", 0)) / 1024, 1),
        "threads": fields["Threads"],
    }


async def idle_window(pid: int, seconds: float) -> dict[str, float]:
    cpu_before = harness.pid_cpu_seconds(pid)
    started = time.monotonic()
    await asyncio.sleep(seconds)
    elapsed = time.monotonic() - started
    cpu = harness.pid_cpu_seconds(pid) - cpu_before
    return {
        "seconds": round(elapsed, 1),
        "cpu_s": round(cpu, 3),
        "cpu_percent": round(100 * cpu / elapsed, 2),
        **memory_breakdown(pid),
    }


async def run(arguments: argparse.Namespace) -> dict[str, Any]:
    base = Path(tempfile.mkdtemp(prefix="timonel-agentidle-"))
    report: dict[str, Any] = {"aims": {"rss_mib": RSS_AIM_MIB, "cpu_percent": CPU_AIM_PERCENT}}
    try:
        async with agent_cluster(base) as (processes, session):
            assert processes.agent is not None
            pid = processes.agent.pid
            report["node"] = processes.node_name
            report["agent_start_to_node_ready_s"] = processes.ready_s
            await asyncio.sleep(arguments.settle)
            report["no_pods"] = await idle_window(pid, arguments.idle)
            runtime_pid = containerd_pid(processes.agent_dir)
            if runtime_pid is not None:
                report["containerd_rss_mib"] = round(rss_kib(runtime_pid) / 1024, 1)

            watcher = PodWatcher(session)
            watcher.task = asyncio.create_task(watcher.run())
            try:
                names = [f"idle-{index}" for index in range(arguments.pods)]
                await asyncio.gather(*(create(session, name) for name in names))
                await watcher.wait(watcher.running, names)
                await asyncio.sleep(arguments.settle)
                report["with_pods"] = {
                    "pods": len(names),
                    **await idle_window(pid, arguments.idle),
                }
                await asyncio.gather(*(delete(session, name) for name in names))
                await watcher.wait(watcher.gone, names)
            finally:
                watcher.task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await watcher.task
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return report


def print_summary(report: dict[str, Any]) -> None:
    rows = []
    for key in ("no_pods", "with_pods"):
        sample = report.get(key)
        if sample:
            rows.append(
                [
                    key.replace("_", " "),
                    f"{sample['rss_mib']}",
                    f"{sample['anonymous_mib']} / {sample['file_backed_mib']}",
                    f"{sample['peak_rss_mib']}",
                    f"{sample['cpu_percent']}",
                    str(sample["threads"]),
                ]
            )
    harness.print_table(
        f"agent idle (aims: RSS < {RSS_AIM_MIB:g} MiB, CPU < {CPU_AIM_PERCENT:g} % of a core)",
        rows,
        ["state", "RSS MiB", "anon / file MiB", "peak MiB", "CPU %", "threads"],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idle", type=float, default=30.0, help="seconds per idle window")
    parser.add_argument("--pods", type=int, default=10, help="pods running in the second window")
    parser.add_argument("--settle", type=float, default=5.0, help="seconds before each window")
    parser.add_argument("--json", type=Path, help="also write the report here")
    arguments = parser.parse_args()
    report = asyncio.run(run(arguments))
    print(json.dumps(report, indent=2))
    print_summary(report)
    if arguments.json:
        arguments.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
