"""LIST of 10,000 pods: as JSON and as a Table (what `kubectl get pods` asks for), with
and without a label selector.

The pods look like a Deployment's: four labels, an annotation, one container with ports,
env, resources, probes and a volume, bound to one of ten Node objects and given a
Running status (through the status subresource), so the listed bytes and the Table rows
are what a real cluster returns. Each LIST is repeated serially by one client.

    .venv/bin/python bench/list_pods.py [--pods 10000] [--repeats 10] [--out FILE]
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import harness
import orjson
from harness import TABLE_ACCEPT, Figure, ServerProcess, call

NAMESPACE = "bench-pods"
NODES = 10
APPS = 20  # app=app-3 selects 1/20 of the pods
LIST_RSS_AIM = None


def node(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
    }


def pod(index: int) -> dict[str, Any]:
    app = f"app-{index % APPS}"
    template_hash = f"{(index % APPS) * 7919 % 100000:05d}abc"
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"{app}-{template_hash}-{index:05d}",
            "namespace": NAMESPACE,
            "labels": {
                "app": app,
                "tier": "frontend" if index % 3 else "backend",
                "pod-template-hash": template_hash,
                "environment": "production" if index % 2 else "staging",
            },
            "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": "9090"},
        },
        "spec": {
            "nodeName": f"bench-node-{index % NODES}",
            "containers": [
                {
                    "name": "app",
                    "image": f"registry.example.com/team/{app}:1.{index % 7}.3",
                    "ports": [
                        {"name": "http", "containerPort": 8080, "protocol": "TCP"},
                        {"name": "metrics", "containerPort": 9090, "protocol": "TCP"},
                    ],
                    "env": [
                        {"name": "APP_NAME", "value": app},
                        {"name": "LOG_LEVEL", "value": "info"},
                        {
                            "name": "POD_IP",
                            "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}},
                        },
                    ],
                    "resources": {
                        "requests": {"cpu": "100m", "memory": "128Mi"},
                        "limits": {"cpu": "500m", "memory": "256Mi"},
                    },
                    "readinessProbe": {
                        "httpGet": {"path": "/healthz", "port": "http"},
                        "periodSeconds": 10,
                    },
                    "livenessProbe": {
                        "tcpSocket": {"port": 8080},
                        "initialDelaySeconds": 15,
                    },
                    "volumeMounts": [{"name": "config", "mountPath": "/etc/app"}],
                }
            ],
            "volumes": [{"name": "config", "configMap": {"name": f"{app}-config"}}],
        },
    }


def running_status(index: int) -> dict[str, Any]:
    started = "2026-01-01T00:00:00Z"
    ip = f"10.42.{index // 250}.{index % 250 + 2}"
    return {
        "status": {
            "phase": "Running",
            "hostIP": f"192.0.2.{index % NODES + 10}",
            "podIP": ip,
            "podIPs": [{"ip": ip}],
            "startTime": started,
            "qosClass": "Burstable",
            "conditions": [
                {"type": kind, "status": "True", "lastTransitionTime": started}
                for kind in ("PodScheduled", "Initialized", "ContainersReady", "Ready")
            ],
            "containerStatuses": [
                {
                    "name": "app",
                    "ready": True,
                    "started": True,
                    "restartCount": index % 3,
                    "image": f"registry.example.com/team/app-{index % APPS}:1.{index % 7}.3",
                    "imageID": "registry.example.com/team/app@sha256:" + "0" * 64,
                    "containerID": f"containerd://{index:064x}",
                    "state": {"running": {"startedAt": started}},
                }
            ],
        }
    }


async def populate(session: aiohttp.ClientSession, count: int) -> dict[str, float]:
    await harness.ensure_namespace(session, NAMESPACE)
    for i in range(NODES):
        await call(session, "POST", "/api/v1/nodes", body=node(f"bench-node-{i}"), expect=(201,))
    bodies = [pod(i) for i in range(count)]
    create_s = await harness.create_many(
        session, f"/api/v1/namespaces/{NAMESPACE}/pods", bodies, concurrency=20
    )
    statuses = iter(enumerate(bodies))
    started = time.monotonic()

    async def set_status() -> None:
        for index, body in statuses:
            await call(
                session,
                "PATCH",
                f"/api/v1/namespaces/{NAMESPACE}/pods/{body['metadata']['name']}/status",
                body=running_status(index),
                content_type="application/merge-patch+json",
            )

    await asyncio.gather(*(set_status() for _ in range(20)))
    return {
        "create_s": create_s,
        "creates_per_s": count / create_s,
        "status_s": time.monotonic() - started,
    }


def cases(count: int) -> list[tuple[str, str, str | None]]:
    """(label, path, Accept) for each LIST measured."""
    base = f"/api/v1/namespaces/{NAMESPACE}/pods"
    selector = "?labelSelector=app%3Dapp-3"
    return [
        (f"JSON, all {count}", base, None),
        (f"Table, all {count}", base, TABLE_ACCEPT),
        ("JSON, app=app-3", base + selector, None),
        ("Table, app=app-3", base + selector, TABLE_ACCEPT),
        (
            "JSON, tier=backend,environment=staging",
            base + "?labelSelector=tier%3Dbackend%2Cenvironment%3Dstaging",
            None,
        ),
        ("Table, limit=500 (kubectl's first page)", base + "?limit=500", TABLE_ACCEPT),
        ("JSON, all namespaces", "/api/v1/pods", None),
    ]


async def measure_lists(
    server: ServerProcess, count: int, repeats: int
) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    async with harness.client_session(server, connections=4) as session:
        for label, path, accept in cases(count):
            times: list[float] = []
            body = await call(session, "GET", path, accept=accept)  # warm-up
            with harness.CpuWindow(server) as cpu:
                for _ in range(repeats):
                    started = time.monotonic()
                    body = await call(session, "GET", path, accept=accept)
                    times.append(time.monotonic() - started)
            document = orjson.loads(body)
            items = document.get("rows") if accept else document.get("items")
            found[label] = {
                "path": path,
                "accept": accept or "application/json",
                **harness.latency_summary(times),
                "items": len(items or []),
                "bytes": len(body),
                "server_cpu_ms_per_list": cpu.server_cpu / repeats * 1000,
                **cpu.cores(),
            }
    return found


async def load(server: ServerProcess, count: int) -> dict[str, float]:
    async with harness.client_session(server, connections=20) as session:
        return await populate(session, count)


def main() -> None:
    parser = harness.base_arguments("list_pods", __doc__ or "")
    parser.add_argument("--pods", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=10, help="LISTs per case (default 10)")
    args = harness.parse_arguments(parser)
    count = 1000 if args.quick else args.pods
    repeats = 3 if args.quick else args.repeats
    harness.stop_servers_on_signal()
    results = harness.Results("list_pods", {"pods": count, "repeats": repeats})

    with harness.work_dir(args.work_dir) as work, harness.running_server(work / "pods") as server:
        rss_before = server.rss_mb()
        populated = asyncio.run(load(server, count))
        time.sleep(2)
        rss_loaded = server.rss_mb()
        lists = asyncio.run(measure_lists(server, count, repeats))
        time.sleep(2)
        memory_after = server.memory_kb()

    results.details = {
        "populate": populated,
        "lists": lists,
        "rss_empty_mb": rss_before,
        "rss_loaded_mb": rss_loaded,
        "rss_after_lists_mb": memory_after["VmRSS"] / 1024,
        "peak_rss_mb": memory_after["VmHWM"] / 1024,
    }
    labels = [label for label, _, _ in cases(count)]
    results.figures = [
        Figure(
            "list_json_p50_ms", f"LIST {count} pods as JSON, p50", lists[labels[0]]["p50_ms"], "ms"
        ),
        Figure(
            "list_table_p50_ms",
            f"LIST {count} pods as Table, p50",
            lists[labels[1]]["p50_ms"],
            "ms",
        ),
        Figure(
            "list_json_selector_p50_ms",
            f"LIST {count // APPS} of {count} pods by label, JSON, p50",
            lists[labels[2]]["p50_ms"],
            "ms",
        ),
        Figure(
            "list_table_selector_p50_ms",
            f"LIST {count // APPS} of {count} pods by label, Table, p50",
            lists[labels[3]]["p50_ms"],
            "ms",
        ),
        Figure(
            "list_table_first_page_p50_ms",
            "LIST pods as Table, limit=500, p50",
            lists[labels[5]]["p50_ms"],
            "ms",
        ),
        Figure(
            "pod_creates_per_s",
            "pod CREATE throughput, 20 clients",
            populated["creates_per_s"],
            "req/s",
        ),
        Figure(
            "rss_with_pods_mb",
            f"RSS holding {count} pods, after the LISTs",
            memory_after["VmRSS"] / 1024,
            "MB",
        ),
        Figure(
            "peak_rss_with_pods_mb",
            f"peak RSS (VmHWM) with {count} pods",
            memory_after["VmHWM"] / 1024,
            "MB",
        ),
    ]

    rows = [
        [
            label,
            str(s["items"]),
            f"{s['bytes'] / 1e6:.2f}",
            f"{s['p50_ms']:.1f}",
            f"{s['max_ms']:.1f}",
            f"{s['server_cpu_ms_per_list']:.0f}",
            f"{s['other_cpu_cores']:.2f}",
        ]
        for label, s in lists.items()
    ]
    harness.print_table(
        f"LIST pods ({repeats} serial requests per case, after one warm-up)",
        rows,
        ["case", "items", "MB", "p50 ms", "max ms", "server CPU ms", "other cores"],
    )
    print(
        f"\npopulate: {count} pods in {populated['create_s']:.1f} s "
        f"({populated['creates_per_s']:.0f}/s), status in {populated['status_s']:.1f} s; "
        f"RSS empty {rss_before:.0f} MB, loaded {rss_loaded:.0f} MB"
    )
    harness.print_figures("list pods", results.figures)
    results.write(args.out)


if __name__ == "__main__":
    main()
