"""Scheduler throughput, in memory: no API server, bindings succeed at once.

    .venv/bin/python bench/scheduler_cycle.py [--pods 10000] [--nodes 1000 5000] [--profile]

For each cluster size it feeds the nodes, then the pods, through the scheduler's informer
handlers and times scheduling every pod (each cycle: filter, score, assume; then the
binding is confirmed as the informer would report it). Two workloads:

- plain: pods with cpu/memory requests and no owner (kube's scheduler_perf
  "SchedulingBasic": nodes with 4 cpu, 32Gi, 110 pods);
- replicaset: the same pods owned by ReplicaSets, so default topology spreading (by
  hostname and zone) scores every cycle; nodes spread over 3 zones.

`--shell` runs the same through `Scheduler.run()` instead: the asyncio loop, one binding
task per pod (an in-memory bind that reports the pod bound through `on_pod_update`).

kube-scheduler does about 1,150 pods/s on SchedulingBasic 5000 nodes / 10000 pods.
Rates are given per wall-clock second and per second of this process's CPU time (the
latter is the steadier figure on a shared machine).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import random
import time
from typing import Any

from timonel.scheduler.scheduler import Scheduler


def make_node(index: int, zones: int) -> dict[str, Any]:
    name = f"node-{index}"
    labels = {"kubernetes.io/hostname": name}
    if zones:
        labels["topology.kubernetes.io/zone"] = f"zone-{index % zones}"
    return {
        "metadata": {"name": name, "uid": f"node-uid-{index}", "labels": labels},
        "spec": {},
        "status": {
            "allocatable": {"cpu": "4", "memory": "32Gi", "pods": "110"},
            "capacity": {"cpu": "4", "memory": "32Gi", "pods": "110"},
        },
    }


def make_pod(index: int, owner: str | None) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "name": f"pod-{index}",
        "namespace": "default",
        "uid": f"pod-uid-{index}",
        "labels": {"app": owner or "plain"},
    }
    if owner is not None:
        metadata["ownerReferences"] = [
            {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": owner, "controller": True}
        ]
    return {
        "metadata": metadata,
        "spec": {
            "schedulerName": "default-scheduler",
            "containers": [
                {
                    "name": "pause",
                    "image": "registry.k8s.io/pause:3.10",
                    "resources": {"requests": {"cpu": "100m", "memory": "500Mi"}},
                }
            ],
        },
        "status": {"phase": "Pending"},
    }


async def _never(pod: dict[str, Any], node: str) -> None:
    raise AssertionError("bindings are confirmed synchronously in this benchmark")


async def _ignore(pod: dict[str, Any], message: str) -> None:
    return None


def run(pods: int, nodes: int, workload: str, profile: bool, shell: bool) -> tuple[float, float]:
    scheduler = Scheduler(bind=_never, on_unschedulable=_ignore, rng=random.Random(1))
    if shell:
        return asyncio.run(_run_shell(pods, nodes, workload))
    owners = _populate(scheduler, nodes, workload)
    objects = [make_pod(i, owners[i % len(owners)]) for i in range(pods)]
    profiler = cProfile.Profile() if profile else None
    started = time.perf_counter()
    cpu_started = time.process_time()
    if profiler:
        profiler.enable()
    for pod in objects:
        scheduler.on_pod_add(pod)
    scheduled = 0
    while (queued := scheduler.queue.try_pop()) is not None:
        binding = scheduler.schedule_one(queued)
        if binding is None:
            continue
        # What a successful binding leads to: bound, then confirmed by the informer.
        scheduler.cache.finish_binding(queued.pod)
        scheduler.queue.done(queued.pod.uid)
        bound = dict(queued.pod.pod)
        bound["spec"] = {**bound["spec"], "nodeName": binding.node_name}
        scheduler.on_pod_update(queued.pod.pod, bound)
        scheduled += 1
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    if profiler:
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
    assert scheduled == pods, (scheduled, pods)
    return pods / elapsed, pods / cpu


def _populate(scheduler: Scheduler, nodes: int, workload: str) -> list[str | None]:
    zones = 3 if workload == "replicaset" else 0
    for index in range(nodes):
        scheduler.on_node_add(make_node(index, zones))
    owners: list[str | None] = (
        [f"web-{i}" for i in range(10)] if workload == "replicaset" else [None]
    )
    for owner in owners:
        if owner is not None:
            scheduler.on_replica_set(
                None,
                {
                    "metadata": {"name": owner, "namespace": "default"},
                    "spec": {"selector": {"matchLabels": {"app": owner}}},
                },
            )
    return owners


async def _run_shell(pods: int, nodes: int, workload: str) -> tuple[float, float]:
    done = asyncio.Event()
    bound = 0

    async def bind(pod: dict[str, Any], node_name: str) -> None:
        nonlocal bound
        confirmed = dict(pod)
        confirmed["spec"] = {**pod["spec"], "nodeName": node_name}
        scheduler.on_pod_update(pod, confirmed)
        bound += 1
        if bound == pods:
            done.set()

    scheduler = Scheduler(bind=bind, on_unschedulable=_ignore, rng=random.Random(1))
    owners = _populate(scheduler, nodes, workload)
    objects = [make_pod(i, owners[i % len(owners)]) for i in range(pods)]
    started = time.perf_counter()
    cpu_started = time.process_time()
    runner = asyncio.create_task(scheduler.run())
    for pod in objects:
        scheduler.on_pod_add(pod)
    await done.wait()
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    runner.cancel()
    await asyncio.gather(runner, return_exceptions=True)
    return pods / elapsed, pods / cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=10_000)
    parser.add_argument("--nodes", type=int, nargs="+", default=[1_000, 5_000])
    parser.add_argument(
        "--workload", choices=["plain", "replicaset"], nargs="+", default=["plain", "replicaset"]
    )
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--shell", action="store_true", help="drive Scheduler.run()")
    args = parser.parse_args()
    for workload in args.workload:
        for nodes in args.nodes:
            wall, cpu = run(args.pods, nodes, workload, args.profile, args.shell)
            print(
                f"{workload:>10}  {args.pods} pods on {nodes:>5} nodes: "
                f"{wall:6.0f} pods/s wall clock, {cpu:6.0f} pods/s of CPU time"
            )


if __name__ == "__main__":
    main()
