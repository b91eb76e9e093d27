"""The service proxy: how fast rules follow endpoint changes, and what a ClusterIP costs.

    sudo .venv/bin/python bench/proxy_rules.py [--services 1000] [--endpoints 10] [--quick]

Runs as root, in a node made of network namespaces (the e2e lab: tests/e2e/proxy/lab.py),
so the host's tables are never touched. The proxy (`Proxier`, the code the node agent runs,
fed directly instead of through informers) holds `--services` ClusterIP Services with
`--endpoints` endpoints each, plus one Service whose endpoint is a real backend pod.

Measured:

- the first (full) sync: render time (cold), iptables-restore time, rules and bytes;
- a full rewrite with everything already installed (what a resync costs);
- endpoint change → rules in place: one Service's endpoint replaced, timed from the
  change handed to the proxy to the end of its iptables-restore (the sync loop running,
  100 ms minimum between syncs), `--changes` times: p50 / p99 / max, and the render and
  iptables-restore time of those partial syncs;
- requests per second through the ClusterIP vs. the pod IP directly: a new TCP connection
  per HTTP request (connection setup is where the rules are walked), `--concurrency`
  connections at a time for `--seconds`, from another pod; with all Services installed and
  with only the one (its rule is the last of TIMONEL-SERVICES: the worst case);
- TCP handshake time (connect, close) to the pod IP and through the ClusterIP, alternating
  one to one for `--rounds` each, p50: the steadier comparison on a shared machine.

The backend and the load generator are small asyncio Python programs, so requests/s are bound by them, not by the kernel: the ratio is the figure to
look at. Each comparison alternates direct and ClusterIP runs, four each; medians.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from harness import Figure, Results, base_arguments, parse_arguments, percentile, print_figures

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.e2e.proxy.lab import (  # noqa: E402
    CLUSTER_CIDR,
    NODE_NAME,
    POD_CIDR,
    Lab,
    Pod,
    ip,
    netns_path,
)
from timonel.agent.proxy.iptables import ensure_forwarding_sysctls  # noqa: E402
from timonel.agent.proxy.proxier import Proxier, SyncSettings  # noqa: E402
from timonel.agent.proxy.rules import ProxyOptions  # noqa: E402

REAL_IP = "10.96.255.1"
# Services are matched in name order: the measured one comes last (the worst case).
REAL_NAMESPACE = "zz-bench"
SECOND_SOURCE = "10.244.1.200"


def service(number: int) -> dict[str, Any]:
    return {
        "metadata": {
            "namespace": f"ns{number % 50}",
            "name": f"svc{number}",
            "resourceVersion": "1",
        },
        "spec": {
            "type": "ClusterIP",
            "clusterIP": f"10.96.{number // 250}.{number % 250 + 1}",
            "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}],
        },
    }


def endpoint_slice(number: int, count: int, version: int = 1, first: int = 0) -> dict[str, Any]:
    base = number * count
    return {
        "metadata": {
            "namespace": f"ns{number % 50}",
            "name": f"svc{number}-abcde",
            "labels": {"kubernetes.io/service-name": f"svc{number}"},
            "resourceVersion": str(version),
        },
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
        "endpoints": [
            {
                "addresses": [
                    f"10.{100 + (base + i) // 62500}.{(base + i) // 250 % 250}.{(base + i) % 250 + 1}"
                ],
                "conditions": {"ready": True},
                "nodeName": "elsewhere",
            }
            for i in range(first, first + count)
        ],
    }


def real_service(backend_ip: str) -> tuple[dict[str, Any], dict[str, Any]]:
    svc = {
        "metadata": {"namespace": REAL_NAMESPACE, "name": "real", "resourceVersion": "1"},
        "spec": {
            "clusterIP": REAL_IP,
            "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}],
        },
    }
    eps = {
        "metadata": {
            "namespace": REAL_NAMESPACE,
            "name": "real-1",
            "labels": {"kubernetes.io/service-name": "real"},
            "resourceVersion": "1",
        },
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
        "endpoints": [
            {"addresses": [backend_ip], "conditions": {"ready": True}, "nodeName": NODE_NAME}
        ],
    }
    return svc, eps


async def load(client_netns: str, target: str, seconds: float, concurrency: int) -> dict[str, Any]:
    command = [
        "nsenter", f"--net={netns_path(client_netns)}", sys.executable,
        str(REPO / "tests/e2e/proxy/client.py"), "--duration", str(seconds),
        "--concurrency", str(concurrency), target,
    ]  # fmt: skip
    process = await asyncio.create_subprocess_exec(*command, stdout=asyncio.subprocess.PIPE)
    out, _ = await process.communicate()
    result: dict[str, Any] = json.loads(out)
    return result


async def handshakes(client: Pod, backend_ip: str, rounds: int) -> dict[str, Any]:
    command = [
        "nsenter", f"--net={netns_path(client.netns)}", sys.executable,
        str(REPO / "tests/e2e/proxy/client.py"), "--rounds", str(rounds),
        "--versus", f"{REAL_IP}:80", "--sources", f"{client.ip},{SECOND_SOURCE}",
        f"{backend_ip}:8080",
    ]  # fmt: skip
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"handshake client failed: {err.decode()[-500:]}")
    found = json.loads(out)
    return {"direct": found[f"{backend_ip}:8080"], "via": found[f"{REAL_IP}:80"]}


async def compare(
    clients: dict[str, Pod], backend_ip: str, args: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Direct and through the ClusterIP, four runs each, alternating which goes first (the
    machine is shared, and conntrack fills up over the runs); the median of each."""
    runs: dict[str, list[dict[str, Any]]] = {"direct": [], "via": []}
    targets = {"direct": f"{backend_ip}:8080", "via": f"{REAL_IP}:80"}
    for number in range(4):
        # Each goes first every other time: conntrack fills up over the runs.
        for kind in ("direct", "via") if number % 2 == 0 else ("via", "direct"):
            runs[kind].append(
                await load(clients[kind].netns, targets[kind], args.seconds, args.concurrency)
            )
    return tuple(  # type: ignore[return-value]
        {
            "rps": statistics.median(r["rps"] for r in found),
            "failed": sum(r["failed"] for r in found),
            "runs": found,
        }
        for found in (runs["direct"], runs["via"])
    )


async def measure(args: Any) -> Results:
    results = Results(
        "proxy_rules",
        {
            "services": args.services,
            "endpoints": args.endpoints,
            "changes": args.changes,
            "seconds": args.seconds,
            "concurrency": args.concurrency,
        },
    )
    lab = Lab().create()
    try:
        backend = lab.add_pod("backend")
        # Separate clients for the two paths: a pod reached directly and through its
        # Service from the same source ports makes conntrack entries clash (dropped SYNs).
        client = lab.add_pod("client")
        clients = {"direct": client, "via": lab.add_pod("client-via")}
        ip("-n", client.netns, "addr", "add", f"{SECOND_SOURCE}/24", "dev", "eth0")
        lab.serve(backend)
        proxier = Proxier(
            NODE_NAME,
            iptables=lab.iptables,
            options=ProxyOptions(cluster_cidr=CLUSTER_CIDR),
            settings=SyncSettings(sync_period=3600),
        )
        await ensure_forwarding_sysctls(lab.iptables, route_localnet=True)
        proxier.set_node(
            {
                "metadata": {"name": NODE_NAME},
                "spec": {"podCIDR": POD_CIDR, "podCIDRs": [POD_CIDR]},
            }
        )
        real, real_slice = real_service(backend.ip)
        proxier.set_service(real)
        proxier.set_endpoint_slice(real_slice)

        # Only the real Service: the baseline for requests/s.
        await proxier.sync(full=True)
        direct_small, via_small = await compare(clients, backend.ip, args)
        handshake_small = await handshakes(client, backend.ip, args.rounds)

        for number in range(args.services):
            proxier.set_service(service(number))
            proxier.set_endpoint_slice(endpoint_slice(number, args.endpoints))
        first = await proxier.sync(full=True)
        print(
            f"first sync: {first.rules} rules, render {first.render_seconds * 1000:.0f} ms, "
            f"restore {first.restore_seconds * 1000:.0f} ms"
        )
        rewrite = await proxier.sync(full=True)
        text = proxier.applier.installed.render() if proxier.applier.installed else ""

        # Endpoint changes with the sync loop running.
        proxier.ready.set()
        running = asyncio.create_task(proxier.run())
        latencies: list[float] = []
        renders: list[float] = []
        restores: list[float] = []
        try:
            await asyncio.sleep(0.5)
            for change in range(args.changes):
                number = (change * 37) % args.services
                done = asyncio.Event()
                finished: list[float] = []

                def on_sync(
                    result: Any, finished: list[float] = finished, done: asyncio.Event = done
                ) -> None:
                    finished.append(result.finished)
                    renders.append(result.render_seconds)
                    restores.append(result.restore_seconds)
                    done.set()

                proxier.listeners.append(on_sync)
                started = time.monotonic()
                proxier.set_endpoint_slice(
                    endpoint_slice(number, args.endpoints, version=2, first=1)
                )
                await asyncio.wait_for(done.wait(), 10)
                latencies.append(finished[0] - started)
                proxier.listeners.remove(on_sync)
                await asyncio.sleep(0.15)
            direct, via = await compare(clients, backend.ip, args)
            handshake = await handshakes(client, backend.ip, args.rounds)
        finally:
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
    finally:
        lab.remove()

    p50 = statistics.median(latencies)
    results.figures = [
        Figure("first_render_ms", "first sync: render (cold)", first.render_seconds * 1000, "ms"),
        Figure(
            "first_restore_ms", "first sync: iptables-restore", first.restore_seconds * 1000, "ms"
        ),
        Figure(
            "rewrite_render_ms", "full rewrite: render (warm)", rewrite.render_seconds * 1000, "ms"
        ),
        Figure(
            "rewrite_restore_ms",
            "full rewrite: iptables-restore",
            rewrite.restore_seconds * 1000,
            "ms",
        ),
        Figure(
            "change_p50_ms", "endpoint change → rules in place, p50", p50 * 1000, "ms", ("<", 1000)
        ),
        Figure(
            "change_p99_ms",
            "endpoint change → rules in place, p99",
            percentile(latencies, 99) * 1000,
            "ms",
            ("<", 1000),
        ),
        Figure(
            "change_max_ms", "endpoint change → rules in place, max", max(latencies) * 1000, "ms"
        ),
        Figure(
            "partial_render_ms",
            "partial sync: render, p50",
            statistics.median(renders) * 1000,
            "ms",
        ),
        Figure(
            "partial_restore_ms",
            "partial sync: iptables-restore, p50",
            statistics.median(restores) * 1000,
            "ms",
        ),
        Figure("rps_direct", "requests/s to the pod IP", direct["rps"], "req/s"),
        Figure(
            "rps_cluster_ip",
            f"requests/s via ClusterIP ({args.services + 1} Services)",
            via["rps"],
            "req/s",
        ),
        Figure(
            "rps_direct_small", "requests/s to the pod IP (1 Service)", direct_small["rps"], "req/s"
        ),
        Figure(
            "rps_cluster_ip_small",
            "requests/s via ClusterIP (1 Service)",
            via_small["rps"],
            "req/s",
        ),
        Figure(
            "handshake_direct_us",
            "TCP handshake to the pod IP, p50",
            handshake["direct"]["p50_us"],
            "µs",
        ),
        Figure(
            "handshake_cluster_ip_us",
            f"TCP handshake via ClusterIP ({args.services + 1} Services), p50",
            handshake["via"]["p50_us"],
            "µs",
        ),
        Figure(
            "handshake_direct_small_us",
            "TCP handshake to the pod IP (1 Service), p50",
            handshake_small["direct"]["p50_us"],
            "µs",
        ),
        Figure(
            "handshake_cluster_ip_small_us",
            "TCP handshake via ClusterIP (1 Service), p50",
            handshake_small["via"]["p50_us"],
            "µs",
        ),
    ]
    results.details = {
        "rules": first.rules,
        "restore_bytes": len(text),
        "latencies_ms": [round(v * 1000, 1) for v in latencies],
        "loads": {
            "direct": direct,
            "via": via,
            "direct_small": direct_small,
            "via_small": via_small,
        },
        "handshakes": {"all": handshake, "one_service": handshake_small},
    }
    return results


def main() -> None:
    parser = base_arguments("proxy_rules", __doc__ or "")
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--endpoints", type=int, default=10)
    parser.add_argument("--changes", type=int, default=30)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2000, help="handshakes per target")
    args = parse_arguments(parser)
    if os.geteuid() != 0:
        raise SystemExit("proxy_rules: needs root (network namespaces and iptables)")
    if args.quick:
        args.services, args.changes, args.seconds, args.rounds = 100, 5, 1.0, 200
    results = asyncio.run(measure(args))
    print_figures(
        f"service proxy: {args.services} Services x {args.endpoints} endpoints",
        results.figures,
    )
    print(
        f"rules: {results.details['rules']}, restore input {results.details['restore_bytes']:,} bytes"
    )
    results.write(args.out)


if __name__ == "__main__":
    main()
