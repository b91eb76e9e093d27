"""Request latency and throughput of the API server: GET, LIST, CREATE and PATCH.

Closed loop: 1, 10 and 50 clients, each sending its next request as soon as the last one
is answered, over keep-alive HTTPS connections with the admin client certificate:

- GET    one ConfigMap by name (every client reads the same object)
- LIST   a namespace holding 100 ConfigMaps
- CREATE a new ConfigMap (unique names)
- PATCH  a JSON merge patch on a ConfigMap (one object per client, so no conflicts)

Open loop: CREATE and GET started at a fixed 100 requests/s whatever the answers do;
latency counts from each request's scheduled start, so stalls are not hidden.

One core: a second server pinned with `taskset -c 1`, this load generator on core 0,
closed-loop GETs: how many a single core serves per second.

The server's RSS is read after all of this and a few idle seconds.

    .venv/bin/python bench/api_latency.py [--duration 5] [--out FILE]
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import aiohttp
import harness
from harness import Figure, ServerProcess, call

GET_P99_AIM = ("<", 5.0)
CREATE_P99_AIM = ("<", 15.0)
ONE_CORE_GETS_AIM = (">", 2000.0)
IDLE_RSS_AIM = ("<", 60.0)

NAMESPACE = "bench"
LIST_NAMESPACE = "bench-list"
CREATE_NAMESPACE = "bench-create"
LIST_SIZE = 100
CONCURRENCIES = (1, 10, 50)
MAX_CLIENTS = max(CONCURRENCIES)


class Workload:
    """The four request kinds against one server, each an `Operation` for the loops."""

    def __init__(self, session: aiohttp.ClientSession, tag: str) -> None:
        self.session = session
        self.tag = tag  # keeps created names unique across phases

    async def prepare(self) -> None:
        for namespace in (NAMESPACE, LIST_NAMESPACE, CREATE_NAMESPACE):
            await harness.ensure_namespace(self.session, namespace)
        bodies = [harness.configmap("get-target", NAMESPACE)]
        bodies += [harness.configmap(f"patch-{i}", NAMESPACE) for i in range(MAX_CLIENTS)]
        await harness.create_many(
            self.session, f"/api/v1/namespaces/{NAMESPACE}/configmaps", bodies, concurrency=10
        )
        listed = [harness.configmap(f"item-{i}", LIST_NAMESPACE) for i in range(LIST_SIZE)]
        await harness.create_many(
            self.session,
            f"/api/v1/namespaces/{LIST_NAMESPACE}/configmaps",
            listed,
            concurrency=10,
        )

    async def get(self, worker: int, sequence: int) -> bytes:
        return await call(
            self.session, "GET", f"/api/v1/namespaces/{NAMESPACE}/configmaps/get-target"
        )

    async def list(self, worker: int, sequence: int) -> bytes:
        return await call(self.session, "GET", f"/api/v1/namespaces/{LIST_NAMESPACE}/configmaps")

    async def create(self, worker: int, sequence: int) -> bytes:
        name = f"c-{self.tag}-{worker}-{sequence}"
        return await call(
            self.session,
            "POST",
            f"/api/v1/namespaces/{CREATE_NAMESPACE}/configmaps",
            body=harness.configmap(name, CREATE_NAMESPACE),
            expect=(201,),
        )

    async def patch(self, worker: int, sequence: int) -> bytes:
        return await call(
            self.session,
            "PATCH",
            f"/api/v1/namespaces/{NAMESPACE}/configmaps/patch-{worker}",
            body={"data": {"counter": str(sequence)}},
            content_type="application/merge-patch+json",
        )

    def operation(self, name: str) -> harness.Operation:
        operation: harness.Operation = getattr(self, name)
        return operation


async def closed_loop_matrix(
    server: ServerProcess, *, duration: float, warmup: float
) -> dict[str, dict[int, dict[str, Any]]]:
    matrix: dict[str, dict[int, dict[str, Any]]] = {}
    async with harness.client_session(server, connections=MAX_CLIENTS) as session:
        workload = Workload(session, "closed")
        await workload.prepare()
        for verb in ("get", "list", "create", "patch"):
            matrix[verb] = {}
            for clients in CONCURRENCIES:
                workload.tag = f"closed{clients}"
                result = await harness.closed_loop(
                    server,
                    workload.operation(verb),
                    concurrency=clients,
                    duration=duration,
                    warmup=warmup,
                )
                matrix[verb][clients] = result.summary()
    return matrix


async def open_loop_runs(
    server: ServerProcess, *, rate: float, seconds: float
) -> dict[str, dict[str, Any]]:
    runs: dict[str, dict[str, Any]] = {}
    async with harness.client_session(server, connections=MAX_CLIENTS) as session:
        workload = Workload(session, "open")
        for verb in ("get", "create"):
            workload.tag = f"open-warm-{verb}"
            await harness.open_loop(
                server, workload.operation(verb), rate=rate, count=int(rate / 2)
            )
            workload.tag = f"open-{verb}"
            result = await harness.open_loop(
                server, workload.operation(verb), rate=rate, count=int(rate * seconds)
            )
            runs[verb] = {"rate_per_s": rate, **result.summary()}
    return runs


async def one_core_gets(
    server: ServerProcess, *, duration: float, warmup: float
) -> dict[int, dict[str, Any]]:
    found: dict[int, dict[str, Any]] = {}
    async with harness.client_session(server, connections=MAX_CLIENTS) as session:
        workload = Workload(session, "pinned")
        await workload.prepare()
        for clients in (10, 50):
            result = await harness.closed_loop(
                server, workload.get, concurrency=clients, duration=duration, warmup=warmup
            )
            found[clients] = result.summary()
    return found


def matrix_rows(matrix: dict[str, dict[int, dict[str, Any]]]) -> list[list[str]]:
    rows = []
    for verb, by_clients in matrix.items():
        for clients, s in by_clients.items():
            rows.append(
                [
                    verb.upper(),
                    str(clients),
                    f"{s['p50_ms']:.2f}",
                    f"{s['p99_ms']:.2f}",
                    f"{s['max_ms']:.1f}",
                    f"{s['throughput_per_s']:.0f}",
                    f"{s['server_cpu_us_per_request']:.0f}",
                    f"{s['server_cpu_cores']:.2f}",
                    f"{s['client_cpu_cores']:.2f}",
                    f"{s['other_cpu_cores']:.2f}",
                    str(s["errors"]),
                ]
            )
    return rows


MATRIX_HEADER = [
    "verb",
    "clients",
    "p50 ms",
    "p99 ms",
    "max ms",
    "req/s",
    "server CPU us/req",
    "server cores",
    "client cores",
    "other cores",
    "errors",
]


def main() -> None:
    parser = harness.base_arguments("api_latency", __doc__ or "")
    parser.add_argument(
        "--duration", type=float, default=5.0, help="seconds measured per case (default 5)"
    )
    parser.add_argument(
        "--open-seconds", type=float, default=10.0, help="seconds of each open-loop run"
    )
    parser.add_argument("--rate", type=float, default=100.0, help="open-loop requests/s")
    args = harness.parse_arguments(parser)
    duration = 1.0 if args.quick else args.duration
    warmup = 0.3 if args.quick else 1.0
    open_seconds = 2.0 if args.quick else args.open_seconds
    harness.stop_servers_on_signal()
    results = harness.Results(
        "api_latency",
        {
            "duration_s": duration,
            "warmup_s": warmup,
            "open_loop_rate_per_s": args.rate,
            "open_loop_seconds": open_seconds,
            "list_size": LIST_SIZE,
        },
    )

    with harness.work_dir(args.work_dir) as work:
        with harness.running_server(work / "shared-cores") as server:
            matrix = asyncio.run(closed_loop_matrix(server, duration=duration, warmup=warmup))
            open_runs = asyncio.run(open_loop_runs(server, rate=args.rate, seconds=open_seconds))
            time.sleep(3)
            memory_after = server.memory_kb()

        # The server on core 1, this process on core 0.
        own_cpus = os.sched_getaffinity(0)
        with harness.running_server(work / "one-core", cpus="1") as pinned:
            os.sched_setaffinity(0, {0})
            try:
                one_core = asyncio.run(one_core_gets(pinned, duration=duration, warmup=warmup))
            finally:
                os.sched_setaffinity(0, own_cpus)

    best_one_core = max(one_core.values(), key=lambda s: s["throughput_per_s"])
    results.details = {
        "closed_loop": matrix,
        "open_loop": open_runs,
        "one_core_get": one_core,
        "rss_after_workload_mb": memory_after["VmRSS"] / 1024,
        "peak_rss_mb": memory_after["VmHWM"] / 1024,
    }
    results.figures = [
        Figure(
            "get_p99_open_100_ms",
            f"single-object GET p99 at {args.rate:.0f} req/s (open loop)",
            open_runs["get"]["p99_ms"],
            "ms",
            GET_P99_AIM,
        ),
        Figure(
            "get_p99_1_client_ms",
            "single-object GET p99, 1 client (closed loop)",
            matrix["get"][1]["p99_ms"],
            "ms",
            GET_P99_AIM,
        ),
        Figure(
            "create_p99_open_100_ms",
            f"CREATE p99 at {args.rate:.0f} req/s (open loop)",
            open_runs["create"]["p99_ms"],
            "ms",
            CREATE_P99_AIM,
        ),
        Figure(
            "create_p50_open_100_ms",
            f"CREATE p50 at {args.rate:.0f} req/s (open loop)",
            open_runs["create"]["p50_ms"],
            "ms",
        ),
        Figure(
            "gets_per_s_one_core",
            "GETs/s, server pinned to one core",
            best_one_core["throughput_per_s"],
            "req/s",
            ONE_CORE_GETS_AIM,
        ),
        *(
            Figure(
                f"{verb}_per_s_{clients}_clients",
                f"{verb.upper()} throughput, {clients} clients",
                matrix[verb][clients]["throughput_per_s"],
                "req/s",
            )
            for verb in ("get", "list", "create", "patch")
            for clients in (1, 50)
        ),
        *(
            Figure(
                f"{verb}_server_cpu_us",
                f"server CPU per {verb.upper()}, 10 clients",
                matrix[verb][10]["server_cpu_us_per_request"],
                "us",
            )
            for verb in ("get", "list", "create", "patch")
        ),
        Figure(
            "rss_after_requests_mb",
            "RSS after the request workloads, idle",
            memory_after["VmRSS"] / 1024,
            "MB",
            IDLE_RSS_AIM,
        ),
    ]

    harness.print_table(
        f"closed loop ({duration:.0f} s per case; cores = CPU time / wall time; "
        "other = the rest of the machine)",
        matrix_rows(matrix),
        MATRIX_HEADER,
    )
    harness.print_table(
        f"open loop at {args.rate:.0f} req/s",
        matrix_rows({verb: {0: s} for verb, s in open_runs.items()}),
        MATRIX_HEADER,
    )
    harness.print_table(
        "server pinned to core 1, load generator on core 0",
        matrix_rows({"get": one_core}),
        MATRIX_HEADER,
    )
    harness.print_figures("api latency", results.figures)
    results.write(args.out)


if __name__ == "__main__":
    main()
