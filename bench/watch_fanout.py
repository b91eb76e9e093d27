"""Watch fan-out: 100 watchers of the ConfigMaps in one namespace, and writers beside them.

A separate process (this script with --watcher) holds 100 watch streams, each on its own
keep-alive connection, and notes when each ADDED event arrives (CLOCK_MONOTONIC, shared by
every process on the machine). It also holds a few streams it never reads (--stalled),
as a stuck client would. The main process creates ConfigMaps:

- open loop at 20/s (events well apart) and at 100/s, noting when each create's response
  arrived; fan-out latency of one event = the last of the 100 arrivals minus that time
  (negative when the events overtake the response);
- a closed-loop burst of creates by 10 clients, to see whether the watchers slow writers.

The same creates run first with no watchers at all, as the baseline for "writers are not
stalled".

    .venv/bin/python bench/watch_fanout.py [--watchers 100] [--out FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import harness
import orjson
from harness import Figure, ServerProcess, call

NAMESPACE = "bench-watch"
RATES = (20.0, 100.0)


# -- the watcher process ---------------------------------------------------------------


async def watch_stream(
    session: aiohttp.ClientSession,
    path: str,
    arrivals: dict[str, list[int]],
    ended: list[str],
) -> None:
    async with session.get(path) as response:
        if response.status != 200:
            ended.append(f"status {response.status}")
            return
        watch_stream.opened += 1  # type: ignore[attr-defined]
        async for line in response.content:
            arrived = time.monotonic_ns()
            event = orjson.loads(line)
            if event.get("type") == "ADDED":
                name = event["object"]["metadata"]["name"]
                arrivals.setdefault(name, []).append(arrived)
            elif event.get("type") == "ERROR":
                ended.append(str(event.get("object", {}).get("message", "")))
                return
    ended.append("stream closed by the server")


async def stalled_stream(session: aiohttp.ClientSession, path: str, stop: asyncio.Event) -> None:
    """A watch that is opened and never read."""
    async with session.get(path) as response:
        watch_stream.opened += 1  # type: ignore[attr-defined]
        await stop.wait()
        response.close()


async def run_watchers(args: argparse.Namespace) -> None:
    server = ServerProcess(Path(args.data_dir), args.port, None, 0.0, Path())  # type: ignore[arg-type]
    path = (
        f"/api/v1/namespaces/{NAMESPACE}/configmaps?watch=1&allowWatchBookmarks=true"
        f"&timeoutSeconds=1800&resourceVersion={args.resource_version}"
    )
    arrivals: dict[str, list[int]] = {}
    ended: list[str] = []
    stop = asyncio.Event()
    watch_stream.opened = 0  # type: ignore[attr-defined]
    connections = args.watchers + args.stalled
    async with harness.client_session(server, connections=connections) as session:
        tasks = [
            asyncio.create_task(watch_stream(session, path, arrivals, ended))
            for _ in range(args.watchers)
        ]
        tasks += [
            asyncio.create_task(stalled_stream(session, path, stop)) for _ in range(args.stalled)
        ]
        while watch_stream.opened < connections:  # type: ignore[attr-defined]
            await asyncio.sleep(0.01)
        print("ready", flush=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.readline)  # "stop" or EOF
        stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    sys.stdout.write(json.dumps({"arrivals": arrivals, "ended": ended}) + "\n")
    sys.stdout.flush()


# -- the writer (main) process -----------------------------------------------------------


class Creates:
    def __init__(self, session: aiohttp.ClientSession) -> None:
        self.session = session
        self.responded: dict[str, int] = {}  # name -> monotonic ns of the response

    def operation(self, prefix: str) -> harness.Operation:
        async def create(worker: int, sequence: int) -> bytes:
            name = f"{prefix}-{worker}-{sequence}"
            body = await call(
                self.session,
                "POST",
                f"/api/v1/namespaces/{NAMESPACE}/configmaps",
                body=harness.configmap(name, NAMESPACE),
                expect=(201,),
            )
            self.responded[name] = time.monotonic_ns()
            return body

        return create


async def write_phases(
    server: ServerProcess,
    creates: Creates,
    tag: str,
    *,
    seconds: float,
    burst: float,
    watcher_pid: int | None = None,
) -> dict[str, dict[str, Any]]:
    client_pids = (watcher_pid,) if watcher_pid else ()
    phases: dict[str, dict[str, Any]] = {}
    for rate in RATES:
        prefix = f"{tag}-r{rate:.0f}"
        result = await harness.open_loop(
            server,
            creates.operation(prefix),
            rate=rate,
            count=int(rate * seconds),
            client_pids=client_pids,
        )
        phases[f"open {rate:.0f}/s"] = {"prefix": prefix, "rate": rate, **result.summary()}
        await asyncio.sleep(0.5)
    prefix = f"{tag}-burst"
    result = await harness.closed_loop(
        server,
        creates.operation(prefix),
        concurrency=10,
        duration=burst,
        warmup=0.2,
        client_pids=client_pids,
    )
    phases["closed 10 clients"] = {"prefix": prefix, **result.summary()}
    return phases


def fan_out(
    responded: dict[str, int], arrivals: dict[str, list[int]], prefix: str, watchers: int
) -> dict[str, Any]:
    """Per event: when the last (and first) watcher had it, relative to the response."""
    last: list[float] = []
    first: list[float] = []
    every: list[float] = []
    missing = 0
    names = [name for name in responded if name.startswith(prefix + "-")]
    for name in names:
        times = arrivals.get(name, [])
        missing += watchers - len(times)
        if not times:
            continue
        answered = responded[name]
        last.append((max(times) - answered) / 1e9)
        first.append((min(times) - answered) / 1e9)
        every.extend((t - answered) / 1e9 for t in times)
    all_watchers = harness.latency_summary(last)
    return {
        "events": len(names),
        "missing_deliveries": missing,
        "last_watcher": all_watchers,
        "first_watcher": harness.latency_summary(first),
        "every_delivery": harness.latency_summary(every),
    }


async def measure(server: ServerProcess, args: argparse.Namespace) -> dict[str, Any]:
    async with harness.client_session(server, connections=20) as session:
        await harness.ensure_namespace(session, NAMESPACE)
        creates = Creates(session)
        baseline = await write_phases(
            server, creates, "base", seconds=args.seconds, burst=args.burst
        )
        listing = orjson.loads(
            await call(session, "GET", f"/api/v1/namespaces/{NAMESPACE}/configmaps?limit=1")
        )
        revision = listing["metadata"]["resourceVersion"]

        watcher = await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            "--watcher",
            "--data-dir",
            str(server.data_dir),
            "--port",
            str(server.port),
            "--resource-version",
            revision,
            "--watchers",
            str(args.watchers),
            "--stalled",
            str(args.stalled),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        assert watcher.stdin is not None and watcher.stdout is not None
        try:
            ready = await asyncio.wait_for(watcher.stdout.readline(), 60)
            if ready.strip() != b"ready":
                raise RuntimeError(f"watcher process did not start: {ready!r}")
            rss_watched = server.rss_mb()
            with_watchers = await write_phases(
                server,
                creates,
                "watched",
                seconds=args.seconds,
                burst=args.burst,
                watcher_pid=watcher.pid,
            )
            await asyncio.sleep(2)  # let the last events arrive
            watcher.stdin.write(b"stop\n")
            await watcher.stdin.drain()
            report = json.loads(await asyncio.wait_for(watcher.stdout.read(), 120))
        finally:
            if watcher.returncode is None:
                watcher.kill()
            await watcher.wait()

    arrivals: dict[str, list[int]] = report["arrivals"]
    for phase in with_watchers.values():
        phase["fan_out"] = fan_out(creates.responded, arrivals, phase["prefix"], args.watchers)
    return {
        "baseline": baseline,
        "with_watchers": with_watchers,
        "streams_ended": report["ended"],
        "rss_with_watchers_mb": rss_watched,
    }


def main() -> None:
    parser = harness.base_arguments("watch_fanout", __doc__ or "")
    parser.add_argument("--watchers", type=int, default=100)
    parser.add_argument("--stalled", type=int, default=5, help="watches never read (default 5)")
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds per open-loop rate")
    parser.add_argument("--burst", type=float, default=3.0, help="seconds of closed-loop burst")
    parser.add_argument("--watcher", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--resource-version", help=argparse.SUPPRESS)
    args = harness.parse_arguments(parser)
    if args.watcher:
        asyncio.run(run_watchers(args))
        return
    if args.quick:
        args.seconds, args.burst = 2.0, 1.0
    harness.stop_servers_on_signal()
    results = harness.Results(
        "watch_fanout",
        {
            "watchers": args.watchers,
            "stalled_watchers": args.stalled,
            "seconds_per_rate": args.seconds,
            "burst_s": args.burst,
        },
    )
    with harness.work_dir(args.work_dir) as work, harness.running_server(work / "watch") as server:
        found = asyncio.run(measure(server, args))
        time.sleep(2)
        found["rss_after_mb"] = server.rss_mb()
    results.details = found

    base, watched = found["baseline"], found["with_watchers"]
    rows = []
    for phase, measured in watched.items():
        spread = measured["fan_out"]
        rows.append(
            [
                phase,
                f"{base[phase]['p50_ms']:.2f}",
                f"{base[phase]['p99_ms']:.2f}",
                f"{measured['p50_ms']:.2f}",
                f"{measured['p99_ms']:.2f}",
                f"{base[phase]['throughput_per_s']:.0f}",
                f"{measured['throughput_per_s']:.0f}",
                f"{spread['last_watcher']['p50_ms']:.2f}",
                f"{spread['last_watcher']['p99_ms']:.2f}",
                f"{spread['last_watcher']['max_ms']:.1f}",
                str(spread["missing_deliveries"]),
                f"{measured['server_cpu_cores']:.2f}",
                f"{measured['client_cpu_cores']:.2f}",
                f"{max(base[phase]['other_cpu_cores'], measured['other_cpu_cores']):.2f}",
            ]
        )
    harness.print_table(
        f"creates without / with {args.watchers} watchers (+{args.stalled} never read); "
        "fan-out = last watcher's arrival minus the create's response",
        rows,
        [
            "phase",
            "create p50 (no watch)",
            "p99",
            "create p50 (watched)",
            "p99",
            "req/s (no watch)",
            "req/s (watched)",
            "fan-out p50 ms",
            "p99 ms",
            "max ms",
            "missing",
            "server cores",
            "client cores",
            "other cores",
        ],
    )
    if found["streams_ended"]:
        print(f"streams ended early: {len(found['streams_ended'])}: {found['streams_ended'][:3]}")

    low, high = f"open {RATES[0]:.0f}/s", f"open {RATES[1]:.0f}/s"
    results.figures = [
        Figure(
            "fanout_p50_ms",
            f"fan-out to {args.watchers} watchers at {RATES[0]:.0f} creates/s, p50",
            watched[low]["fan_out"]["last_watcher"]["p50_ms"],
            "ms",
        ),
        Figure(
            "fanout_p99_ms",
            f"fan-out to {args.watchers} watchers at {RATES[0]:.0f} creates/s, p99",
            watched[low]["fan_out"]["last_watcher"]["p99_ms"],
            "ms",
        ),
        Figure(
            "fanout_100_p99_ms",
            f"fan-out to {args.watchers} watchers at {RATES[1]:.0f} creates/s, p99",
            watched[high]["fan_out"]["last_watcher"]["p99_ms"],
            "ms",
        ),
        Figure(
            "create_p99_watched_100_ms",
            f"CREATE p99 at {RATES[1]:.0f}/s with {args.watchers} watchers",
            watched[high]["p99_ms"],
            "ms",
            ("<", 15.0),
        ),
        Figure(
            "create_p99_unwatched_100_ms",
            f"CREATE p99 at {RATES[1]:.0f}/s, no watchers",
            base[high]["p99_ms"],
            "ms",
            ("<", 15.0),
        ),
        Figure(
            "burst_creates_watched_per_s",
            f"CREATE throughput, 10 clients, {args.watchers} watchers",
            watched["closed 10 clients"]["throughput_per_s"],
            "req/s",
        ),
        Figure(
            "burst_creates_unwatched_per_s",
            "CREATE throughput, 10 clients, no watchers",
            base["closed 10 clients"]["throughput_per_s"],
            "req/s",
        ),
        Figure(
            "server_cpu_per_create_watched_us",
            f"server CPU per create at {RATES[1]:.0f}/s, {args.watchers} watchers",
            watched[high]["server_cpu_us_per_request"],
            "us",
        ),
        Figure(
            "server_cpu_per_create_unwatched_us",
            f"server CPU per create at {RATES[1]:.0f}/s, no watchers",
            base[high]["server_cpu_us_per_request"],
            "us",
        ),
        Figure(
            "missing_deliveries",
            "events not delivered to a read watcher",
            float(sum(p["fan_out"]["missing_deliveries"] for p in watched.values())),
            "events",
        ),
    ]
    harness.print_figures("watch fan-out", results.figures)
    results.write(args.out)


if __name__ == "__main__":
    main()
