"""Scheduler throughput end to end through the API: pods created → every pod bound.

    .venv/bin/python bench/scheduler_throughput.py [--nodes 1000 5000] [--pods 10000]
        [--clients 32] [--create pods|replicaset] [--hold-scheduler] [--no-pod-lifecycle]
        [--py-spy DIR]

For each cluster size: a fresh `timonel server --disable-agent --cluster-cidr 10.0.0.0/8`
(API server, controllers, scheduler in one process) and a `timonel agent --simulate N`
process whose nodes register, renew their Leases every 10 s and report bound pods
Running. Once every node is Ready, the benchmark watches the namespace's pods and
creates the pods:

- `--create pods` (default): POSTed by `--clients` concurrent keep-alive connections,
  each pod like kube's scheduler_perf SchedulingBasic pod (one container requesting
  100m cpu and 500Mi memory);
- `--create replicaset`: one ReplicaSet of that many replicas; the replicaset controller
  creates the pods (in its slow-start batches) inside the server.

The figure is pods / (last pod bound - first create sent), every time taken from the
watch in the benchmark's process. `--hold-scheduler` measures the scheduler alone as
well: the benchmark takes the `kube-scheduler` lease away first (the in-server scheduler
stops), creates every pod, then releases the lease; the rate is then pods / (last bound -
lease released).

The simulated nodes write each bound pod's Running status (a second write per pod the
scheduler competes with); `--no-pod-lifecycle` gives them a stage table without it, as
scheduler_perf runs with no kubelets.

kube-scheduler reaches about 1,150 pods/s in scheduler_perf SchedulingBasic 5000 nodes /
10000 pods (many cores, no kubelets, an etcd of its own). This machine has 2 cores for
the server, the simulated nodes and the load generator together.
"""

from __future__ import annotations

import asyncio
import math
import subprocess
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import harness
import orjson
import simcluster
from harness import Figure, ServerProcess, call

NAMESPACE = "bench-sched"
KUBE_SCHEDULER_RATE = 1150.0
# Simulated nodes that never start pods: only terminating pods are finished off.
NO_POD_LIFECYCLE_STAGES = """\
stages:
- name: pod-delete
  selector:
    matchExpressions:
    - {key: .metadata.deletionTimestamp, operator: Exists}
  delay: {seconds: 0.1}
  next: {delete: true}
"""


def pod(index: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": f"pod-{index:05d}", "namespace": NAMESPACE, "labels": {"app": "p"}},
        "spec": {"containers": [_container()]},
    }


def _container() -> dict[str, Any]:
    return {
        "name": "pause",
        "image": "registry.k8s.io/pause:3.10",
        "resources": {"requests": {"cpu": "100m", "memory": "500Mi"}},
    }


def replica_set(replicas: int) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": "bench", "namespace": NAMESPACE},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "bench"}},
            "template": {
                "metadata": {"labels": {"app": "bench"}},
                "spec": {"containers": [_container()]},
            },
        },
    }


def _micro_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


async def hold_scheduler_lease(session: aiohttp.ClientSession, holder: str) -> None:
    """Make `holder` ("" releases) the kube-scheduler lease's holder for an hour."""
    path = "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/kube-scheduler"
    for _ in range(20):
        lease = orjson.loads(await call(session, "GET", path))
        lease["spec"].update(
            {"holderIdentity": holder, "leaseDurationSeconds": 3600, "renewTime": _micro_now()}
        )
        try:
            await call(session, "PUT", path, body=lease)
            return
        except harness.RequestFailed as exc:
            if " 409 " not in str(exc):
                raise
    raise RuntimeError("could not take the kube-scheduler lease")


async def wait_scheduler_stopped(server: ServerProcess, timeout: float = 30.0) -> None:
    """The scheduler gives up its informers once it cannot renew for 10 s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if "lost leadership of kube-scheduler" in server.log_path.read_text(errors="replace"):
            return
        await asyncio.sleep(0.5)
    raise RuntimeError("the scheduler did not let go of its lease")


def start_py_spy(server: ServerProcess, out: Path, seconds: float) -> subprocess.Popen[bytes]:
    out.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [
            str(harness.REPO / ".venv/bin/py-spy"), "record",
            "-p", str(server.pid), "-r", "100", "-f", "raw",
            "-d", str(int(seconds)), "-o", str(out), "--nonblocking",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip


async def measure(
    server: ServerProcess,
    agent: simcluster.SimulatedAgent,
    args: Any,
    nodes: int,
    profile_out: Path | None,
) -> dict[str, Any]:
    result: dict[str, Any] = {"nodes": nodes, "pods": args.pods, "create": args.create}
    async with harness.client_session(server, connections=args.clients + 4) as session:
        result["nodes_ready_s"] = await simcluster.wait_nodes_ready(session, nodes)
        # Let registration settle (node IPAM, first status reports) before measuring.
        await asyncio.sleep(args.settle)
        await harness.ensure_namespace(session, NAMESPACE)
        with simcluster.ProcessSampler({"server": server.pid, "agent": agent.pid}) as idle:
            await asyncio.sleep(3)
        result["background"] = idle.cores()
        if args.hold_scheduler:
            await hold_scheduler_lease(session, "benchmark")
            await wait_scheduler_stopped(server)

        watch = await simcluster.PodWatch(session, NAMESPACE).start()
        spy = start_py_spy(server, profile_out, 600) if profile_out else None
        with simcluster.ProcessSampler({"server": server.pid, "agent": agent.pid}) as cpu:
            wall_started = time.time()
            started = time.monotonic()
            if args.create == "pods":
                await harness.create_many(
                    session,
                    f"/api/v1/namespaces/{NAMESPACE}/pods",
                    [pod(i) for i in range(args.pods)],
                    concurrency=args.clients,
                )
            else:
                await call(
                    session,
                    "POST",
                    f"/apis/apps/v1/namespaces/{NAMESPACE}/replicasets",
                    body=replica_set(args.pods),
                )
            created = time.monotonic()
            released = math.nan
            if args.hold_scheduler:
                while len(watch.pods) < args.pods:
                    await asyncio.sleep(0.2)
                created = time.monotonic()
                released = time.monotonic()
                await hold_scheduler_lease(session, "")
            await watch.wait_bound(args.pods, timeout=args.timeout)
            last_bound = time.monotonic()
            gc = simcluster.gc_pauses(server.data_dir.parent, wall_started, time.time())
        if spy is not None:
            spy.send_signal(2)  # SIGINT: py-spy writes what it has
            spy.wait(60)
        seen = watch.times("seen")
        bound = watch.times("bound")
        result.update(
            {
                "create_s": created - started,
                "create_rate": args.pods / (seen[-1] - started),
                "first_bound_after_s": bound[0] - started,
                "last_bound_after_s": last_bound - started,
                "throughput": args.pods / (bound[-1] - started),
                "scheduling_best_5s_rate": simcluster.best_window_rate(bound),
                "sampled_throughput": simcluster.sampled_throughput(
                    bound, released if args.hold_scheduler else started
                ),
                "bound_per_second": simcluster.per_second(bound, started),
                "create_to_bound": harness.latency_summary(
                    [t.bound - t.seen for t in watch.pods.values()]
                ),
                "cpu": cpu.cores(),
                # The steadier figure on a shared machine: server CPU (event loop and
                # SQLite thread) from the first create to the last binding, per pod.
                "server_cpu_ms_per_pod": 1000 * cpu.used["server"] / args.pods,
                "server_rss_mb": server.rss_mb(),
                "agent_rss_mb": agent.rss_mb(),
                "watch_events": watch.events,
                "gc_pauses": gc,
            }
        )
        if args.hold_scheduler:
            result["scheduler_only_throughput"] = args.pods / (bound[-1] - released)
            result["first_bound_after_release_s"] = bound[0] - released
        per_node = Counter(t.node for t in watch.pods.values())
        result["pods_per_node"] = {
            "nodes_used": len(per_node),
            "min": min(per_node.values()),
            "max": max(per_node.values()),
        }
        await watch.stop()
    return result


def print_results(runs: list[dict[str, Any]]) -> None:
    rows = []
    for run in runs:
        cpu = run["cpu"]
        rows.append(
            [
                f"{run['nodes']:,}",
                f"{run['pods']:,}",
                run["create"],
                f"{run['create_rate']:,.0f}",
                f"{run['last_bound_after_s']:.1f}",
                f"{run['throughput']:,.0f}",
                f"{run['scheduling_best_5s_rate']:,.0f}",
                f"{run['sampled_throughput']:,.0f}",
                f"{run.get('scheduler_only_throughput', math.nan):,.0f}",
                f"{run['create_to_bound']['p50_ms']:,.0f}",
                f"{run['create_to_bound']['p99_ms']:,.0f}",
                f"{cpu.get('server_cores', math.nan):.2f}",
                f"{run['server_cpu_ms_per_pod']:.2f}",
                f"{cpu.get('agent_cores', math.nan):.2f}",
                f"{cpu.get('benchmark_cores', math.nan):.2f}",
                f"{cpu.get('other_cores', math.nan):.2f}",
                f"{run['server_rss_mb']:,.0f}",
                f"{run['gc_pauses']['total_s']:.1f} ({run['gc_pauses']['max_s']:.1f})",
                f"{run['pods_per_node']['min']}..{run['pods_per_node']['max']}",
            ]
        )
    harness.print_table(
        "scheduler throughput end to end (pods created -> all bound, timed by a watch)",
        rows,
        [
            "nodes", "pods", "create", "creates/s", "all bound s", "pods/s",
            "best 5s/s", "sampled/s", "sched only/s", "p50 ms", "p99 ms",
            "server cores", "server ms/pod", "agent cores", "bench cores", "other cores", "server MB",
            "GC s (max)", "pods/node",
        ],
    )  # fmt: skip
    print(
        f"\npods/s: pods / (last bound - first create). kube-scheduler: about "
        f"{KUBE_SCHEDULER_RATE:,.0f} pods/s (scheduler_perf, 5000 nodes, 10000 pods). "
        "sampled/s: as scheduler_perf's SchedulingThroughput Average (pods bound per 1 s "
        "tick, the first tick with a binding only starts the count, the last partial "
        "second dropped). p50/p99: from a pod's creation to its binding, as the watch saw them. GC s: "
        "the server's garbage collector pauses (of 20 ms or more) during the run, in "
        "total and the longest. server ms/pod: the server's CPU time (event loop and "
        "SQLite thread) from the first create to the last binding, per pod: the figure to "
        "compare on a shared machine."
    )


def main() -> None:
    parser = harness.base_arguments("scheduler_throughput", __doc__ or "")
    parser.add_argument("--nodes", type=int, nargs="+", default=[1000, 5000])
    parser.add_argument("--pods", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--create", choices=["pods", "replicaset"], default="pods")
    parser.add_argument("--hold-scheduler", action="store_true")
    parser.add_argument("--no-pod-lifecycle", action="store_true")
    parser.add_argument("--heartbeat", default="10s", help="the simulated nodes' Lease period")
    parser.add_argument("--settle", type=float, default=10.0)
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--py-spy", type=Path, default=None, metavar="DIR")
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=60.0,
        help="wait up to this long for other work on the machine to stop before a run",
    )
    args = harness.parse_arguments(parser)
    if args.quick:
        args.nodes, args.pods, args.settle = [50], 500, 2.0
    harness.extra_server_args.extend(["--cluster-cidr", simcluster.WIDE_CLUSTER_CIDR])
    simcluster.stop_everything_on_signal()
    config = f"heartbeatPeriod: {args.heartbeat}\n"
    if args.no_pod_lifecycle:
        config += NO_POD_LIFECYCLE_STAGES
    results = harness.Results(
        "scheduler_throughput",
        {
            "pods": args.pods,
            "nodes": args.nodes,
            "clients": args.clients,
            "create": args.create,
            "hold_scheduler": args.hold_scheduler,
            "pod_lifecycle": not args.no_pod_lifecycle,
            "heartbeat": args.heartbeat,
        },
    )
    runs = []
    with harness.work_dir(args.work_dir) as work:
        for nodes in args.nodes:
            harness.wait_for_quiet(args.wait_quiet)
            run_dir = work / f"nodes-{nodes}"
            with (
                harness.running_server(
                    run_dir / "server", env=simcluster.gc_probe_environment(run_dir)
                ) as server,
                simcluster.simulated_nodes(server, nodes, run_dir, config=config) as agent,
            ):
                profile = args.py_spy / f"server-{nodes}.txt" if args.py_spy else None
                run = asyncio.run(measure(server, agent, args, nodes, profile))
            runs.append(run)
            results.figures.append(
                Figure(
                    f"throughput_{nodes}",
                    f"pods/s, {args.pods:,} pods on {nodes:,} nodes",
                    run["throughput"],
                    "pods/s",
                    (">", KUBE_SCHEDULER_RATE),
                )
            )
            results.figures.append(
                Figure(
                    f"sampled_throughput_{nodes}",
                    f"pods/s sampled as scheduler_perf, {args.pods:,} pods on {nodes:,} nodes",
                    run["sampled_throughput"],
                    "pods/s",
                    (">", KUBE_SCHEDULER_RATE),
                )
            )
    results.details["runs"] = runs
    print_results(runs)
    harness.print_figures("scheduler throughput", results.figures)
    results.write(args.out)


if __name__ == "__main__":
    main()
