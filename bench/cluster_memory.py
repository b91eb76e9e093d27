"""Memory of the server holding a big cluster: 5,000 simulated nodes and 50,000 pods.

    .venv/bin/python bench/cluster_memory.py [--nodes 5000] [--pods 50000] [--clients 32]

A fresh `timonel server --disable-agent --cluster-cidr 10.0.0.0/8` and `timonel agent
--simulate N` (nodes renewing their Leases every 10 s). The server's RSS (VmRSS) and
peak (VmHWM) are read: idle after start; once every node is Ready and has settled; while
the pods are created (POSTed by `--clients` connections; the scheduler binds them and
the simulated nodes report them Running), every 10 s; and once every pod is Running and
the server has been left alone for `--idle` seconds.

The pods look like a Deployment's: labels, an owner-less spec with one container
(image, port, env, resource requests), spread over 10 namespaces.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import harness
import simcluster
from harness import Figure, ServerProcess

NAMESPACES = 10


def pod(index: int) -> dict[str, Any]:
    app = f"app-{index % 50}"
    namespace = f"mem-{index % NAMESPACES}"
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"{app}-{index:06d}",
            "namespace": namespace,
            "labels": {"app": app, "tier": "backend", "pod-template-hash": "5d59d67564"},
        },
        "spec": {
            "containers": [
                {
                    "name": "app",
                    "image": f"registry.example.com/team/{app}:1.4.2",
                    "ports": [{"containerPort": 8080, "name": "http"}],
                    "env": [{"name": "LOG_LEVEL", "value": "info"}],
                    "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
                }
            ]
        },
    }


def memory(server: ServerProcess) -> dict[str, float]:
    found = server.memory_kb()
    return {"rss_mb": found["VmRSS"] / 1024, "peak_mb": found["VmHWM"] / 1024}


async def fill(
    server: ServerProcess, agent: simcluster.SimulatedAgent, args: Any
) -> dict[str, Any]:
    result: dict[str, Any] = {}
    async with harness.client_session(server, connections=args.clients + 2 * NAMESPACES) as s:
        result["nodes_ready_s"] = await simcluster.wait_nodes_ready(s, args.nodes, timeout=900)
        await asyncio.sleep(args.settle)
        result["nodes_only"] = memory(server)
        print(f"  {args.nodes:,} nodes: {result['nodes_only']['rss_mb']:,.0f} MB", flush=True)
        watches = []
        for n in range(NAMESPACES):
            await harness.ensure_namespace(s, f"mem-{n}")
            watches.append(await simcluster.PodWatch(s, f"mem-{n}").start())
        timeline: list[dict[str, float]] = []
        started = time.monotonic()

        async def sample() -> None:
            while True:
                await asyncio.sleep(10)
                pods = sum(len(w.pods) for w in watches)
                running = sum(w.ready_count for w in watches)
                timeline.append(
                    {"s": time.monotonic() - started, "pods": pods, "ready": running}
                    | memory(server)
                )
                print(
                    f"  {time.monotonic() - started:5.0f} s: {pods:,} pods, {running:,} Ready, "
                    f"{timeline[-1]['rss_mb']:,.0f} MB",
                    flush=True,
                )

        sampler = asyncio.create_task(sample())
        bodies = [pod(i) for i in range(args.pods)]
        by_namespace = [bodies[n::NAMESPACES] for n in range(NAMESPACES)]
        await asyncio.gather(
            *(
                harness.create_many(
                    s,
                    f"/api/v1/namespaces/mem-{n}/pods",
                    chunk,
                    concurrency=max(1, args.clients // NAMESPACES),
                )
                for n, chunk in enumerate(by_namespace)
            )
        )
        result["created_s"] = time.monotonic() - started
        for watch, chunk in zip(watches, by_namespace, strict=True):
            await watch.wait_ready(len(chunk), timeout=3600)
        result["all_running_s"] = time.monotonic() - started
        result["all_running"] = memory(server)
        sampler.cancel()
        for watch in watches:
            await watch.stop()
        result["timeline"] = timeline
    # No clients of ours while the server settles.
    await asyncio.sleep(args.idle)
    result["idle"] = memory(server)
    result["agent_rss_mb"] = agent.rss_mb()
    return result


def main() -> None:
    parser = harness.base_arguments("cluster_memory", __doc__ or "")
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--pods", type=int, default=50_000)
    parser.add_argument("--clients", type=int, default=30)
    parser.add_argument("--settle", type=float, default=30.0)
    parser.add_argument("--idle", type=float, default=30.0)
    args = harness.parse_arguments(parser)
    if args.quick:
        args.nodes, args.pods, args.settle, args.idle = 100, 1000, 5.0, 5.0
    harness.extra_server_args.extend(["--cluster-cidr", simcluster.WIDE_CLUSTER_CIDR])
    simcluster.stop_everything_on_signal()
    results = harness.Results("cluster_memory", {"nodes": args.nodes, "pods": args.pods})
    with (
        harness.work_dir(args.work_dir) as work,
        harness.running_server(
            work / "server", env=simcluster.gc_probe_environment(work)
        ) as server,
    ):
        time.sleep(3)
        started = memory(server)
        with simcluster.simulated_nodes(server, args.nodes, work) as agent:
            run = asyncio.run(fill(server, agent, args))
        run["started"] = started
        run["gc_pauses"] = simcluster.gc_pauses(work, 0, time.time())
    results.details = run
    rows = [
        ["idle after start", f"{started['rss_mb']:,.0f}", f"{started['peak_mb']:,.0f}"],
        [
            f"{args.nodes:,} nodes Ready",
            f"{run['nodes_only']['rss_mb']:,.0f}",
            f"{run['nodes_only']['peak_mb']:,.0f}",
        ],
        [
            f"+ {args.pods:,} pods Running",
            f"{run['all_running']['rss_mb']:,.0f}",
            f"{run['all_running']['peak_mb']:,.0f}",
        ],
        [
            f"the same after {args.idle:.0f} s idle",
            f"{run['idle']['rss_mb']:,.0f}",
            f"{run['idle']['peak_mb']:,.0f}",
        ],
    ]
    harness.print_table("server memory (MB)", rows, ["state", "RSS", "peak RSS"])
    per_pod_kb = (
        (run["idle"]["rss_mb"] - run["nodes_only"]["rss_mb"]) * 1024 / args.pods
        if args.pods
        else 0.0
    )
    print(
        f"\npods created in {run['created_s']:.0f} s, all Running after "
        f"{run['all_running_s']:.0f} s; about {per_pod_kb:.1f} kB of server RSS per pod; "
        f"simulated nodes' process: {run['agent_rss_mb']:,.0f} MB; server garbage "
        f"collector pauses: {run['gc_pauses']['total_s']:.0f} s in total, the longest "
        f"{run['gc_pauses']['max_s']:.1f} s"
    )
    results.figures += [
        Figure("rss_nodes_mb", f"RSS with {args.nodes:,} nodes", run["nodes_only"]["rss_mb"], "MB"),
        Figure(
            "rss_cluster_mb",
            f"RSS with {args.nodes:,} nodes and {args.pods:,} pods",
            run["idle"]["rss_mb"],
            "MB",
        ),
        Figure("peak_rss_mb", "peak RSS", run["idle"]["peak_mb"], "MB"),
    ]
    harness.print_figures("cluster memory", results.figures)
    results.write(args.out)


if __name__ == "__main__":
    main()
