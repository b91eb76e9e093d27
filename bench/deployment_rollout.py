"""A 1,000-replica Deployment from apply to every pod Ready, on 100 simulated nodes.

    .venv/bin/python bench/deployment_rollout.py [--replicas 1000] [--nodes 100] [--repeat 3]
        [--py-spy DIR]

A fresh `timonel server --disable-agent` and `timonel agent --simulate N` (nodes that
report bound pods Running and Ready 0.4-0.6 s after binding, as the built-in stage table
says). Once every node is Ready, the benchmark POSTs the Deployment (what `kubectl apply`
sends for a new object) and follows it: the watch on the namespace's pods timestamps each
pod's creation, binding and readiness; the Deployment is polled for its status. Each
repeat uses a new namespace on the same cluster (the old one deleted first).

Phases, in seconds from the POST: first pod seen, all pods created, all bound, all Ready,
and the Deployment's status saying every replica is updated and available (what
`kubectl rollout status` waits for).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import harness
import orjson
import simcluster
from harness import Figure, ServerProcess, call

AIM_SECONDS = 10.0


def deployment(name: str, replicas: int) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [
                        {
                            "name": "nginx",
                            "image": "nginx:1.27",
                            "ports": [{"containerPort": 80}],
                            "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
                        }
                    ]
                },
            },
        },
    }


async def rollout(
    server: ServerProcess,
    agent: simcluster.SimulatedAgent,
    replicas: int,
    namespace: str,
    profile_out: Path | None,
) -> dict[str, Any]:
    async with harness.client_session(server, connections=8) as session:
        await harness.ensure_namespace(session, namespace)
        watch = await simcluster.PodWatch(session, namespace).start()
        path = f"/apis/apps/v1/namespaces/{namespace}/deployments"
        spy = None
        if profile_out is not None:
            from scheduler_throughput import start_py_spy

            spy = start_py_spy(server, profile_out, 120)
        with simcluster.ProcessSampler({"server": server.pid, "agent": agent.pid}) as cpu:
            wall_started = time.time()
            started = time.monotonic()
            await call(session, "POST", path, body=deployment("web", replicas))
            rolled_out = await _wait_rolled_out(session, f"{path}/web", replicas, started)
            await watch.wait_ready(replicas, timeout=600)
            gc = simcluster.gc_pauses(server.data_dir.parent, wall_started, time.time())
        if spy is not None:
            spy.send_signal(2)
            spy.wait(60)
        seen, bound, ready = (watch.times(a) for a in ("seen", "bound", "ready"))
        await watch.stop()
    return {
        "first_pod_s": seen[0] - started,
        "all_created_s": seen[-1] - started,
        "all_bound_s": bound[-1] - started,
        "all_ready_s": ready[-1] - started,
        "rolled_out_s": rolled_out,
        "pods_ready_per_second": simcluster.per_second(ready, started),
        "cpu": cpu.cores(),
        "server_rss_mb": server.rss_mb(),
        "gc_pauses": gc,
    }


async def _wait_rolled_out(session: Any, path: str, replicas: int, started: float) -> float:
    """Seconds from `started` until the status says every replica is updated and
    available for the current generation."""
    while True:
        found = orjson.loads(await call(session, "GET", path))
        status = found.get("status") or {}
        if (
            status.get("observedGeneration", 0) >= found["metadata"]["generation"]
            and status.get("updatedReplicas") == replicas
            and status.get("availableReplicas") == replicas
            and status.get("replicas") == replicas
        ):
            return time.monotonic() - started
        await asyncio.sleep(0.1)


async def delete_namespace(server: ServerProcess, namespace: str) -> None:
    async with harness.client_session(server, connections=2) as session:
        await call(session, "DELETE", f"/api/v1/namespaces/{namespace}", expect=(200, 202))
        while True:
            try:
                await call(session, "GET", f"/api/v1/namespaces/{namespace}")
            except harness.RequestFailed:
                return
            await asyncio.sleep(0.5)


async def wait_nodes(server: ServerProcess, nodes: int) -> float:
    async with harness.client_session(server, connections=2) as session:
        return await simcluster.wait_nodes_ready(session, nodes)


def main() -> None:
    parser = harness.base_arguments("deployment_rollout", __doc__ or "")
    parser.add_argument("--replicas", type=int, default=1000)
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--wait-quiet", type=float, default=60.0)
    parser.add_argument("--py-spy", type=Path, default=None, metavar="DIR")
    args = harness.parse_arguments(parser)
    if args.quick:
        args.replicas, args.nodes, args.repeat = 100, 10, 1
    simcluster.stop_everything_on_signal()
    results = harness.Results(
        "deployment_rollout", {"replicas": args.replicas, "nodes": args.nodes}
    )
    runs: list[dict[str, Any]] = []
    with (
        harness.work_dir(args.work_dir) as work,
        harness.running_server(
            work / "server", env=simcluster.gc_probe_environment(work)
        ) as server,
        simcluster.simulated_nodes(server, args.nodes, work) as agent,
    ):
        asyncio.run(wait_nodes(server, args.nodes))
        time.sleep(5)  # node IPAM and the first status reports
        for repeat in range(args.repeat):
            harness.wait_for_quiet(args.wait_quiet)
            namespace = f"rollout-{repeat}"
            profile = args.py_spy / f"rollout-{repeat}.txt" if args.py_spy else None
            run = asyncio.run(rollout(server, agent, args.replicas, namespace, profile))
            runs.append(run)
            print(
                f"  run {repeat + 1}: all Ready in {run['all_ready_s']:.2f} s, rolled out in "
                f"{run['rolled_out_s']:.2f} s (other cores {run['cpu'].get('other_cores', 0):.2f})",
                flush=True,
            )
            asyncio.run(delete_namespace(server, namespace))
    rows = [
        [
            str(i + 1),
            *(
                f"{run[k]:.2f}"
                for k in (
                    "first_pod_s",
                    "all_created_s",
                    "all_bound_s",
                    "all_ready_s",
                    "rolled_out_s",
                )
            ),
            *(
                f"{run['cpu'].get(k, 0):.2f}"
                for k in ("server_cores", "agent_cores", "benchmark_cores", "other_cores")
            ),
            f"{run['server_rss_mb']:,.0f}",
            f"{run['gc_pauses']['total_s']:.2f} ({run['gc_pauses']['max_s']:.2f})",
        ]
        for i, run in enumerate(runs)
    ]
    harness.print_table(
        f"Deployment of {args.replicas:,} replicas on {args.nodes} simulated nodes "
        "(seconds from the POST)",
        rows,
        [
            "run", "first pod", "all created", "all bound", "all Ready", "rolled out",
            "server cores", "agent cores", "bench cores", "other cores", "server MB",
            "GC s (max)",
        ],
    )  # fmt: skip
    results.details["runs"] = runs
    results.figures.append(
        Figure(
            "all_ready_s",
            f"{args.replicas:,} replicas, apply to all Ready (median)",
            harness.median([r["all_ready_s"] for r in runs]),
            "s",
            ("<", AIM_SECONDS),
        )
    )
    results.figures.append(
        Figure(
            "rolled_out_s",
            "apply to rollout complete (median)",
            harness.median([r["rolled_out_s"] for r in runs]),
            "s",
        )
    )
    harness.print_figures("deployment rollout", results.figures)
    results.write(args.out)


if __name__ == "__main__":
    main()
