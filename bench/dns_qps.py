"""Cluster DNS: queries per second answered over UDP on loopback.

    .venv/bin/python bench/dns_qps.py [--services 1000] [--seconds 5] [--window 32] [--quick]

Starts a `timonel server --disable-agent`, creates `--services` ClusterIP Services and a
headless Service with 10 ready endpoints in one namespace, then runs a node's cluster DNS
(`NodeDns`, the same code the node agent runs, watching that server) in a process of its
own, pinned to core 1, with the load generator in this process on core 0. The load
generator keeps `--window` queries in flight on one UDP socket and, for `--seconds` each,
asks:

- `a`: A for a ClusterIP Service (a different one each query);
- `headless`: A for the headless Service (10 records, shuffled each time);
- `srv`: SRV for a Service's named port (answer plus additional record);
- `ptr`: PTR for a Service's cluster IP;
- `nxdomain`: A for a Service that does not exist (answer: the zone's SOA);
- `mix`: the five in turn.

Reported per kind: replies/s, latency p50/p99 (in flight, so it includes queueing), the
DNS process's CPU (cores) and replies per CPU-second. A reply with an unexpected rcode
counts as an error. Forwarding is not measured (it is bound by the upstream resolver).
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from harness import (
    Figure,
    Results,
    base_arguments,
    call,
    client_session,
    ensure_namespace,
    latency_summary,
    machine_busy_seconds,
    parse_arguments,
    pid_cpu_seconds,
    print_figures,
    print_table,
    process_cpu_seconds,
    running_server,
    stop_servers_on_signal,
    work_dir,
)

from timonel.agent.dns.wire import (
    RCODE_NOERROR,
    RCODE_NXDOMAIN,
    TYPE_A,
    TYPE_PTR,
    TYPE_SRV,
    query,
)

NAMESPACE = "dnsbench"
HEADLESS_ENDPOINTS = 10


# -- the DNS process -------------------------------------------------------------------------


async def serve(url: str, token: str, port_file: Path) -> None:
    """`--serve`: a node's cluster DNS on 127.0.0.1, its port written to `port_file`."""
    from timonel.agent.dns.node import NodeDns, NodeDnsOptions
    from timonel.agent.join import join

    client = await join(url, token, user_agent="dns-bench", field_manager="dns-bench")
    dns = NodeDns(
        client,
        NodeDnsOptions(
            node_name="bench",
            address="127.0.0.1",
            port=0,
            metrics_port=0,
            upstreams=(),
            publish=False,
            sync_timeout=60,
        ),
    )
    task = asyncio.create_task(dns.run())
    await dns.ready.wait()
    port_file.write_text(str(dns.server.port))
    await task


# -- populating the cluster ------------------------------------------------------------------


async def populate(server: Any, services: int) -> list[str]:
    """The Services; returns their cluster IPs."""
    async with client_session(server, connections=8) as session:
        await ensure_namespace(session, NAMESPACE)
        path = f"/api/v1/namespaces/{NAMESPACE}/services"
        ips: list[str] = []

        async def create(index: int) -> None:
            body = {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": f"svc-{index}"},
                "spec": {"ports": [{"name": "http", "port": 80, "protocol": "TCP"}]},
            }
            created = json.loads(await call(session, "POST", path, body=body))
            ips.append(created["spec"]["clusterIP"])

        for start in range(0, services, 50):
            await asyncio.gather(*(create(i) for i in range(start, min(start + 50, services))))
        await call(
            session,
            "POST",
            path,
            body={
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "db"},
                "spec": {"clusterIP": "None", "ports": [{"name": "pg", "port": 5432}]},
            },
        )
        await call(
            session,
            "POST",
            f"/apis/discovery.k8s.io/v1/namespaces/{NAMESPACE}/endpointslices",
            body={
                "apiVersion": "discovery.k8s.io/v1",
                "kind": "EndpointSlice",
                "metadata": {"name": "db-1", "labels": {"kubernetes.io/service-name": "db"}},
                "addressType": "IPv4",
                "ports": [{"name": "pg", "port": 5432, "protocol": "TCP"}],
                "endpoints": [
                    {"addresses": [f"10.42.0.{i + 1}"], "conditions": {"ready": True}}
                    for i in range(HEADLESS_ENDPOINTS)
                ],
            },
        )
        return ips


# -- load --------------------------------------------------------------------------------------


def query_set(kind: str, services: int, ips: list[str]) -> list[tuple[bytes, int]]:
    """Queries (with the rcode each should get) for one kind of load."""
    suffix = f"{NAMESPACE}.svc.cluster.local"
    count = min(services, 200)
    if kind == "a":
        return [(query(f"svc-{i}.{suffix}", TYPE_A), RCODE_NOERROR) for i in range(count)]
    if kind == "headless":
        return [(query(f"db.{suffix}", TYPE_A), RCODE_NOERROR)]
    if kind == "srv":
        return [
            (query(f"_http._tcp.svc-{i}.{suffix}", TYPE_SRV), RCODE_NOERROR) for i in range(count)
        ]
    if kind == "ptr":
        return [
            (query(".".join(reversed(ip.split("."))) + ".in-addr.arpa", TYPE_PTR), RCODE_NOERROR)
            for ip in ips[:count]
        ]
    if kind == "nxdomain":
        return [(query(f"missing-{i}.{suffix}", TYPE_A), RCODE_NXDOMAIN) for i in range(count)]
    mixed: list[tuple[bytes, int]] = []
    for part in ("a", "headless", "srv", "ptr", "nxdomain"):
        mixed += query_set(part, services, ips)[:20]
    return mixed


def blast(
    port: int, queries: list[tuple[bytes, int]], seconds: float, window: int
) -> dict[str, Any]:
    """Keep `window` queries in flight for `seconds`; count replies and their latency."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.connect(("127.0.0.1", port))
    sock.settimeout(0.2)
    sent_at: dict[int, tuple[float, int]] = {}
    latencies: list[float] = []
    errors = lost = 0
    next_query = 0
    next_id = 0

    def send() -> None:
        nonlocal next_query, next_id
        template, rcode = queries[next_query]
        next_query = (next_query + 1) % len(queries)
        next_id = (next_id + 1) & 0xFFFF
        sent_at[next_id] = (time.perf_counter(), rcode)
        sock.send(next_id.to_bytes(2, "big") + template[2:])

    for _ in range(window):
        send()
    started = time.perf_counter()
    deadline = started + seconds
    while True:
        now = time.perf_counter()
        if now >= deadline:
            break
        try:
            reply = sock.recv(65535)
        except TimeoutError:
            lost += len(sent_at)
            sent_at.clear()
            for _ in range(window):
                send()
            continue
        received = time.perf_counter()
        pending = sent_at.pop(int.from_bytes(reply[:2], "big"), None)
        if pending is not None:
            latencies.append(received - pending[0])
            if reply[3] & 0xF != pending[1]:
                errors += 1
        send()
    elapsed = time.perf_counter() - started
    sock.close()
    return {
        "replies": len(latencies),
        "replies_per_second": len(latencies) / elapsed,
        "errors": errors,
        "lost": lost,
        "latency": latency_summary(latencies),
        "seconds": elapsed,
    }


def main() -> None:
    parser = base_arguments("dns_qps", __doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--window", type=int, default=32)
    parser.add_argument("--serve", nargs=3, metavar=("URL", "TOKEN", "PORT_FILE"))
    args = parse_arguments(parser)
    if args.serve:
        asyncio.run(serve(args.serve[0], args.serve[1], Path(args.serve[2])))
        return
    services = 50 if args.quick else args.services
    seconds = 1.0 if args.quick else args.seconds
    stop_servers_on_signal()
    pinned = (os.cpu_count() or 1) >= 2
    if pinned:
        os.sched_setaffinity(0, {0})
    results = Results(
        "dns_qps",
        {"services": services, "seconds": seconds, "window": args.window, "pinned": pinned},
    )
    with work_dir(args.work_dir) as work, running_server(work / "server") as server:
        started = time.monotonic()
        ips = asyncio.run(populate(server, services))
        print(f"created {services} services in {time.monotonic() - started:.1f} s")
        port_file = work / "dns.port"
        token = (server.data_dir / "token").read_text().strip()
        command = [sys.executable, __file__, "--serve", server.url, token, str(port_file)]
        if pinned:
            command = ["taskset", "-c", "1", *command]
        with open(work / "dns.log", "ab") as log:
            dns = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 60
            while not port_file.exists():
                if dns.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"the DNS process did not start; see {work / 'dns.log'}")
                time.sleep(0.05)
            time.sleep(0.2)
            port = int(port_file.read_text())
            rows = []
            for kind in ("a", "headless", "srv", "ptr", "nxdomain", "mix"):
                queries = query_set(kind, services, ips)
                blast(port, queries, min(0.5, seconds), args.window)  # warm-up
                before = (pid_cpu_seconds(dns.pid), process_cpu_seconds(), machine_busy_seconds())
                measured = blast(port, queries, seconds, args.window)
                dns_cpu = pid_cpu_seconds(dns.pid) - before[0]
                client_cpu = process_cpu_seconds() - before[1]
                other_cpu = machine_busy_seconds() - before[2] - dns_cpu - client_cpu
                cores = dns_cpu / measured["seconds"]
                measured["dns_cpu_cores"] = cores
                measured["client_cpu_cores"] = client_cpu / measured["seconds"]
                measured["other_cpu_cores"] = max(0.0, other_cpu / measured["seconds"])
                measured["replies_per_cpu_second"] = (
                    measured["replies_per_second"] / cores if cores else float("nan")
                )
                results.details[kind] = measured
                rows.append(
                    [
                        kind,
                        f"{measured['replies_per_second']:,.0f}",
                        f"{measured['latency']['p50_ms']:.2f}",
                        f"{measured['latency']['p99_ms']:.2f}",
                        f"{cores:.2f}",
                        f"{measured['client_cpu_cores']:.2f}",
                        f"{measured['other_cpu_cores']:.2f}",
                        f"{measured['replies_per_cpu_second']:,.0f}",
                        str(measured["errors"]),
                        str(measured["lost"]),
                    ]
                )
            print_table(
                f"UDP, {args.window} in flight, {seconds:g} s each",
                rows,
                [
                    "query",
                    "replies/s",
                    "p50 ms",
                    "p99 ms",
                    "dns cores",
                    "client cores",
                    "other cores",
                    "per dns cpu-s",
                    "errors",
                    "lost",
                ],
            )
        finally:
            dns.terminate()
            try:
                dns.wait(10)
            except subprocess.TimeoutExpired:
                dns.kill()
                dns.wait(5)
    for kind in ("a", "mix"):
        results.figures.append(
            Figure(
                f"{kind}_qps",
                f"{kind} replies/s (UDP, loopback)",
                results.details[kind]["replies_per_second"],
                "replies/s",
            )
        )
    print_figures("dns_qps", results.figures)
    results.write(args.out)


if __name__ == "__main__":
    main()
