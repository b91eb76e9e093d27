"""What every benchmark shares: a timonel server process, a client TLS context from its
kubeconfig, latency statistics, load loops, and the JSON result file.

The server always runs in its own process (started here, ended here by PID); the load
generator is the benchmark's own process, talking HTTPS over loopback with keep-alive
connections, as a real client would.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import math
import os
import platform
import shlex
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import yaml

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT_DIR = Path(tempfile.gettempdir()) / "timonel-bench"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
TABLE_ACCEPT = "application/json;as=Table;v=v1;g=meta.k8s.io"


# -- the server process ----------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def readyz_status(port: int, timeout: float = 0.5) -> int | None:
    """One fresh TLS connection, one GET /readyz: its status, or None when nothing
    answers. /readyz needs no credentials, and the CA may not exist yet, so the
    certificate is not checked."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=timeout) as raw,
            context.wrap_socket(raw) as tls,
        ):
            tls.sendall(b"GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            status_line = tls.recv(64)
    except OSError:
        return None
    parts = status_line.split(b" ", 2)
    if len(parts) < 2 or not parts[1].isdigit():
        return None
    return int(parts[1])


@dataclass
class ServerProcess:
    """A `timonel server` started by this benchmark. `stop()` ends it by PID."""

    data_dir: Path
    port: int
    process: subprocess.Popen[bytes]
    spawned_at: float  # time.monotonic() just before the spawn
    log_path: Path
    ready_after: float = math.nan  # seconds from spawn to the first /readyz 200
    answering_after: float = math.nan  # seconds from spawn to the first HTTP answer
    # CPU seconds the server had used when /readyz first answered 200: unlike the wall
    # time, hardly moved by other work on the machine.
    cpu_at_ready: float = math.nan

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def kubeconfig(self) -> Path:
        return self.data_dir / "kubeconfig.yaml"

    def wait_ready(self, *, timeout: float = 30.0, poll_interval: float = 0.005) -> float:
        """Poll /readyz until it answers 200; returns (and keeps) seconds since spawn."""
        deadline = self.spawned_at + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"timonel server exited with {self.process.returncode}; see {self.log_path}"
                )
            status = readyz_status(self.port)
            if status is not None and math.isnan(self.answering_after):
                self.answering_after = time.monotonic() - self.spawned_at
            if status == 200:
                self.ready_after = time.monotonic() - self.spawned_at
                with contextlib.suppress(OSError):
                    self.cpu_at_ready = self.cpu_seconds()
                return self.ready_after
            time.sleep(poll_interval)
        raise RuntimeError(f"timonel server not ready within {timeout} s; see {self.log_path}")

    def wait_kubeconfig(self, timeout: float = 30.0) -> None:
        """The kubeconfig is written after /readyz turns 200 (built-in objects first)."""
        deadline = time.monotonic() + timeout
        while not self.kubeconfig.exists():
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError(f"no kubeconfig from the server; see {self.log_path}")
            time.sleep(0.01)

    def reported_start_ms(self) -> float | None:
        """The server's own 'ready ... in N ms' (time inside `serve`, imports excluded)."""
        with contextlib.suppress(OSError):
            for line in self.log_path.read_text(errors="replace").splitlines():
                if "timonel server ready at" in line and " in " in line:
                    with contextlib.suppress(ValueError, IndexError):
                        return float(line.rsplit(" in ", 1)[1].split(" ms", 1)[0])
        return None

    def memory_kb(self) -> dict[str, int]:
        """VmRSS and VmHWM (peak RSS) of the server process, in kB."""
        found: dict[str, int] = {}
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                found[key] = int(value.split()[0])
        return found

    def rss_mb(self) -> float:
        return self.memory_kb()["VmRSS"] / 1024

    def cpu_seconds(self) -> float:
        """User plus system CPU time the server has used, all threads."""
        return pid_cpu_seconds(self.pid)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def pid_cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a running process, all threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def spawn_server(
    data_dir: Path,
    *,
    cpus: str | None = None,
    port: int | None = None,
    env: dict[str, str] | None = None,
) -> ServerProcess:
    """Start `timonel server` on a fresh port. `cpus` pins it (taskset -c); `env` adds
    to (or, with an empty value, removes from) the environment."""
    port = port or free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir.parent / f"{data_dir.name}-server.log"
    profiler: list[str] = []
    if profile_dir is not None:
        profile_dir.mkdir(parents=True, exist_ok=True)
        profile = profile_dir / f"{data_dir.name}-{port}.prof"
        profiler = ["-m", "cProfile", "-o", str(profile)]
    command = [
        sys.executable,
        *profiler,
        "-m",
        "timonel",
        "server",
        "--disable-agent",
        "--data-dir",
        str(data_dir),
        "--bind-address",
        "127.0.0.1",
        "--https-listen-port",
        str(port),
        *extra_server_args,
    ]
    if cpus is not None:
        # taskset execs the server, so the PID we hold is the server's own.
        command = ["taskset", "-c", cpus, *command]
    environment = child_environment(env or {})
    with open(log_path, "ab") as log:
        spawned_at = time.monotonic()
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, cwd=REPO, env=environment
        )
    return ServerProcess(data_dir, port, process, spawned_at, log_path)


def child_environment(changes: dict[str, str]) -> dict[str, str]:
    """This process's environment with `changes` applied; an empty value removes."""
    environment = dict(os.environ)
    for key, value in changes.items():
        if value:
            environment[key] = value
        else:
            environment.pop(key, None)
    return environment


_running: list[ServerProcess] = []
# When set (--profile-dir), servers run under cProfile and leave a .prof file there.
profile_dir: Path | None = None
# More `timonel server` flags for every server (--server-args).
extra_server_args: list[str] = []


@contextlib.contextmanager
def running_server(
    data_dir: Path,
    *,
    cpus: str | None = None,
    env: dict[str, str] | None = None,
    wait_kubeconfig: bool = True,
) -> Iterator[ServerProcess]:
    """A started, ready server that is ended however the block exits."""
    server = spawn_server(data_dir, cpus=cpus, env=env)
    _running.append(server)
    try:
        server.wait_ready()
        if wait_kubeconfig:
            server.wait_kubeconfig()
        yield server
    finally:
        server.stop()
        _running.remove(server)


def stop_servers_on_signal() -> None:
    """SIGTERM/SIGINT to the benchmark end its servers before it exits."""

    def on_signal(signum: int, _frame: Any) -> None:
        for server in list(_running):
            server.stop()
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)


# -- the client side -------------------------------------------------------------------


def client_ssl_context(kubeconfig: Path) -> ssl.SSLContext:
    """TLS with the kubeconfig's CA and admin client certificate."""
    config = yaml.safe_load(kubeconfig.read_text())
    cluster = config["clusters"][0]["cluster"]
    user = config["users"][0]["user"]
    context = ssl.create_default_context(
        cadata=base64.b64decode(cluster["certificate-authority-data"]).decode()
    )
    # load_cert_chain wants files; they live only for the call.
    with tempfile.TemporaryDirectory() as scratch:
        cert = Path(scratch) / "client.crt"
        key = Path(scratch) / "client.key"
        cert.write_bytes(base64.b64decode(user["client-certificate-data"]))
        key.write_bytes(base64.b64decode(user["client-key-data"]))
        key.chmod(0o600)
        context.load_cert_chain(cert, key)
    return context


def client_session(server: ServerProcess, *, connections: int) -> aiohttp.ClientSession:
    """A keep-alive session holding at most `connections` connections to the server."""
    connector = aiohttp.TCPConnector(
        ssl=client_ssl_context(server.kubeconfig), limit=connections, force_close=False
    )
    return aiohttp.ClientSession(
        base_url=server.url,
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=120),
        headers={"Accept": "application/json", "User-Agent": "timonel-bench"},
    )


class RequestFailed(Exception):
    pass


async def call(
    session: aiohttp.ClientSession,
    method: str,
    path: str,
    *,
    body: Any = None,
    content_type: str = "application/json",
    accept: str | None = None,
    expect: tuple[int, ...] = (200, 201),
) -> bytes:
    """One request, the whole body read; raises RequestFailed on an unexpected status."""
    headers = {"Content-Type": content_type} if body is not None else {}
    if accept is not None:
        headers["Accept"] = accept
    data = json.dumps(body).encode() if body is not None else None
    async with session.request(method, path, data=data, headers=headers) as response:
        payload = await response.read()
        if response.status not in expect:
            raise RequestFailed(f"{method} {path}: {response.status} {payload[:300]!r}")
        return payload


async def ensure_namespace(session: aiohttp.ClientSession, name: str) -> None:
    await call(
        session,
        "POST",
        "/api/v1/namespaces",
        body={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}},
        expect=(201, 409),
    )


def configmap(name: str, namespace: str, size: int = 3) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace, "labels": {"bench": "timonel"}},
        "data": {f"key-{i}": f"value-{i}-{name}" for i in range(size)},
    }


async def create_many(
    session: aiohttp.ClientSession,
    path: str,
    bodies: list[dict[str, Any]],
    *,
    concurrency: int,
) -> float:
    """POST every body with `concurrency` requests in flight; returns seconds taken."""
    queue = iter(bodies)
    started = time.monotonic()

    async def worker() -> None:
        for body in queue:
            await call(session, "POST", path, body=body, expect=(201,))

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.monotonic() - started


# -- statistics ------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of unsorted values; NaN for none."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def latency_summary(seconds: list[float]) -> dict[str, float]:
    """Milliseconds: p50, p90, p99, max and mean over the samples."""
    ms = [s * 1000 for s in seconds]
    return {
        "count": len(ms),
        "p50_ms": percentile(ms, 50),
        "p90_ms": percentile(ms, 90),
        "p99_ms": percentile(ms, 99),
        "max_ms": max(ms) if ms else math.nan,
        "mean_ms": sum(ms) / len(ms) if ms else math.nan,
    }


def median(values: list[float]) -> float:
    return percentile(values, 50) if values else math.nan


# -- load loops ------------------------------------------------------------------------


Operation = Callable[[int, int], Awaitable[Any]]  # (worker index, request index) -> response


@dataclass
class LoadResult:
    latencies: list[float]
    errors: int
    elapsed: float
    cpu: CpuWindow
    first_error: str = ""
    start_lag_p99_ms: float = math.nan  # open loop: how late requests left, p99

    def summary(self) -> dict[str, Any]:
        return {
            "start_lag_p99_ms": self.start_lag_p99_ms,
            **latency_summary(self.latencies),
            "throughput_per_s": len(self.latencies) / self.elapsed if self.elapsed else math.nan,
            "errors": self.errors,
            "first_error": self.first_error,
            "elapsed_s": self.elapsed,
            **self.cpu.cores(),
            # Robust to a busy machine, unlike latency: what one request costs the server.
            "server_cpu_us_per_request": self.cpu.server_cpu / len(self.latencies) * 1e6
            if self.latencies
            else math.nan,
        }


def process_cpu_seconds() -> float:
    """CPU time of this process and of its children that have ended."""
    times = os.times()
    return times.user + times.system


def machine_busy_seconds() -> float:
    """CPU seconds every core of the machine spent busy (not idle, not waiting on I/O)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    busy = sum(fields[:8]) - idle  # user nice system idle iowait irq softirq steal
    return busy / CLOCK_TICKS


def load_average() -> float:
    return os.getloadavg()[0]


def busy_cores(over: float = 2.0) -> float:
    """How many cores the machine keeps busy right now, measured over `over` seconds."""
    before = machine_busy_seconds()
    time.sleep(over)
    return (machine_busy_seconds() - before) / over


def wait_for_quiet(max_wait: float, *, threshold: float = 0.25) -> float:
    """Wait (up to `max_wait` seconds) until other work uses under `threshold` cores;
    returns the last reading. Other sessions share this machine, so figures taken while
    they run are noise."""
    deadline = time.monotonic() + max_wait
    reading = busy_cores()
    while reading >= threshold and time.monotonic() < deadline:
        print(f"  machine busy ({reading:.2f} cores in use by others); waiting", flush=True)
        time.sleep(5)
        reading = busy_cores()
    return reading


@dataclass
class CpuWindow:
    """CPU used by the server, by this process and by everything else over a window:
    the last one tells how noisy the machine was."""

    server: ServerProcess
    client_pids: tuple[int, ...] = ()  # more load-generating processes, counted as client
    wall: float = 0.0
    server_cpu: float = 0.0
    client_cpu: float = 0.0
    machine_cpu: float = 0.0

    def _client_seconds(self) -> float:
        return process_cpu_seconds() + sum(pid_cpu_seconds(pid) for pid in self.client_pids)

    def __enter__(self) -> CpuWindow:
        self._start = (
            time.monotonic(),
            self.server.cpu_seconds(),
            self._client_seconds(),
            machine_busy_seconds(),
        )
        return self

    def __exit__(self, *_: object) -> None:
        wall, server, client, machine = self._start
        self.wall = time.monotonic() - wall
        self.server_cpu = self.server.cpu_seconds() - server
        self.client_cpu = self._client_seconds() - client
        self.machine_cpu = machine_busy_seconds() - machine

    def cores(self) -> dict[str, float]:
        if self.wall <= 0:
            return {"server_cpu_cores": math.nan, "client_cpu_cores": math.nan}
        return {
            # Above 1.0 the server used its storage thread as well.
            "server_cpu_cores": self.server_cpu / self.wall,
            "client_cpu_cores": self.client_cpu / self.wall,
            # Other processes on the machine: noise in every figure measured meanwhile.
            "other_cpu_cores": max(0.0, self.machine_cpu - self.server_cpu - self.client_cpu)
            / self.wall,
        }


async def closed_loop(
    server: ServerProcess,
    operation: Operation,
    *,
    concurrency: int,
    duration: float,
    warmup: float,
    client_pids: tuple[int, ...] = (),
) -> LoadResult:
    """`concurrency` workers, each sending its next request as soon as the last answers;
    only requests started inside the measured window (after the warm-up) count."""
    latencies: list[float] = []
    errors = 0
    first_error = ""
    loop = asyncio.get_running_loop()
    measure_from = loop.time() + warmup
    stop_at = measure_from + duration

    async def worker(index: int) -> None:
        nonlocal errors, first_error
        sequence = 0
        while True:
            started = loop.time()
            if started >= stop_at:
                return
            try:
                await operation(index, sequence)
            except Exception as exc:  # counted, not fatal: a benchmark reports failures
                errors += 1
                first_error = first_error or repr(exc)[:300]
            else:
                if started >= measure_from:
                    latencies.append(loop.time() - started)
            sequence += 1

    await asyncio.sleep(0)
    tasks = [asyncio.create_task(worker(i)) for i in range(concurrency)]
    await asyncio.sleep(max(0.0, measure_from - loop.time()))
    with CpuWindow(server, client_pids) as cpu:
        await asyncio.gather(*tasks)
    return LoadResult(latencies, errors, cpu.wall, cpu, first_error)


async def open_loop(
    server: ServerProcess,
    operation: Operation,
    *,
    rate: float,
    count: int,
    client_pids: tuple[int, ...] = (),
) -> LoadResult:
    """Requests started at a fixed rate whatever the answers do (no coordinated
    omission): latency runs from each request's scheduled start, so a stall shows up in
    every request queued behind it. The last 2 ms before each start are spun rather than
    slept, as the event loop's timers wake up to a millisecond late."""
    latencies: list[float] = []
    lags: list[float] = []
    errors = 0
    first_error = ""
    loop = asyncio.get_running_loop()
    interval = 1.0 / rate
    start = loop.time() + 0.05

    async def one(index: int, scheduled: float) -> None:
        nonlocal errors, first_error
        lags.append(loop.time() - scheduled)
        try:
            await operation(0, index)
        except Exception as exc:
            errors += 1
            first_error = first_error or repr(exc)[:300]
        else:
            latencies.append(loop.time() - scheduled)

    tasks = []
    with CpuWindow(server, client_pids) as cpu:
        for index in range(count):
            scheduled = start + index * interval
            delay = scheduled - loop.time() - 0.002
            if delay > 0:
                await asyncio.sleep(delay)
            while loop.time() < scheduled:
                await asyncio.sleep(0)
            tasks.append(asyncio.create_task(one(index, scheduled)))
            await asyncio.sleep(0)  # let it send before the next wait
        await asyncio.gather(*tasks)
    result = LoadResult(latencies, errors, cpu.wall, cpu, first_error)
    result.start_lag_p99_ms = percentile(lags, 99) * 1000
    return result


# -- results ---------------------------------------------------------------------------


@dataclass
class Figure:
    """One headline number; `aim` is (comparison, threshold) such as ("<", 0.5)."""

    key: str
    label: str
    value: float
    unit: str
    aim: tuple[str, float] | None = None

    def meets_aim(self) -> bool | None:
        if self.aim is None or math.isnan(self.value):
            return None
        comparison, threshold = self.aim
        return self.value < threshold if comparison == "<" else self.value > threshold


def format_value(value: float) -> str:
    if math.isnan(value):
        return "n/a"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def aim_text(aim: tuple[str, float] | list[Any] | None, unit: str) -> str:
    if not aim:
        return ""
    comparison, threshold = aim
    return f"{comparison} {format_value(float(threshold))} {unit}"


def print_table(title: str, rows: list[list[str]], header: list[str]) -> None:
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    print(f"\n{title}")
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        cells = [
            cell.rjust(w) if i and _numeric(cell) else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ]
        print("  ".join(cells).rstrip())


def _numeric(cell: str) -> bool:
    return bool(cell) and (cell[0].isdigit() or cell[0] == "-" or cell == "n/a")


def print_figures(title: str, figures: list[Figure]) -> None:
    rows = []
    for figure in figures:
        met = figure.meets_aim()
        verdict = "" if met is None else ("met" if met else "MISSED")
        rows.append(
            [
                figure.label,
                format_value(figure.value),
                figure.unit,
                aim_text(figure.aim, figure.unit),
                verdict,
            ]
        )
    print_table(title, rows, ["figure", "value", "unit", "aim", ""])


def machine_facts() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "kernel": platform.release(),
        "aiohttp": aiohttp.__version__,
    }


# Above these the machine was doing enough else to move the figures.
NOISY_OTHER_CORES = 0.3
NOISY_LOAD = 1.5


def max_other_cores(details: Any) -> float:
    """The most CPU other processes used during any measured case in `details`."""
    if isinstance(details, dict):
        own = details.get("other_cpu_cores")
        found = own if isinstance(own, float) and math.isfinite(own) else 0.0
        return max([found, *(max_other_cores(v) for v in details.values())])
    if isinstance(details, list):
        return max([0.0, *(max_other_cores(v) for v in details)])
    return 0.0


@dataclass
class Results:
    name: str
    config: dict[str, Any]
    figures: list[Figure] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    load_average_at_start: float = field(default_factory=load_average)

    def write(self, out: Path) -> None:
        out.parent.mkdir(parents=True, exist_ok=True)
        busiest = max_other_cores(self.details)
        if busiest > NOISY_OTHER_CORES or self.load_average_at_start > NOISY_LOAD:
            print(
                f"\nnote: the machine was busy with other work (load average "
                f"{self.load_average_at_start:.1f} at start, other processes up to "
                f"{busiest:.2f} cores during a case): these figures are noisy"
            )
        document = {
            "benchmark": self.name,
            "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "machine": {
                **machine_facts(),
                "load_average_at_start": self.load_average_at_start,
                "load_average_at_end": load_average(),
                "max_other_cpu_cores": busiest,
            },
            "config": {**self.config, "server_args": extra_server_args},
            "figures": [
                {
                    "key": f.key,
                    "label": f.label,
                    "value": None if math.isnan(f.value) else f.value,
                    "unit": f.unit,
                    "aim": list(f.aim) if f.aim else None,
                    "met": f.meets_aim(),
                }
                for f in self.figures
            ],
            "details": self.details,
        }
        out.write_text(json.dumps(clean_json(document), indent=2, allow_nan=False) + "\n")
        print(f"\nresults: {out}")


def clean_json(value: Any) -> Any:
    """Strict JSON: NaN becomes null, paths become strings."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {str(k): clean_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean_json(v) for v in value]
    return value


def base_arguments(name: str, description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT_DIR / f"{name}.json",
        help=f"where to write the JSON results (default {DEFAULT_OUT_DIR}/{name}.json)",
    )
    parser.add_argument(
        "--work-dir",
        type=Path,
        default=None,
        help="where server data directories go (default: a new temporary directory)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="shorter runs: a smoke test, not figures"
    )
    parser.add_argument(
        "--server-args",
        default="",
        help="more `timonel server` flags, e.g. '--disable-scheduler --disable-controller-manager'",
    )
    parser.add_argument(
        "--profile-dir",
        type=Path,
        default=None,
        help="run the servers under cProfile, writing .prof files here (slows them down)",
    )
    return parser


def parse_arguments(parser: argparse.ArgumentParser) -> argparse.Namespace:
    """Parse, and apply the options every benchmark shares."""
    global profile_dir
    args = parser.parse_args()
    profile_dir = args.profile_dir
    extra_server_args[:] = shlex.split(args.server_args)
    return args


@contextlib.contextmanager
def work_dir(given: Path | None) -> Iterator[Path]:
    if given is not None:
        given.mkdir(parents=True, exist_ok=True)
        yield given
        return
    with tempfile.TemporaryDirectory(prefix="timonel-bench-") as scratch:
        yield Path(scratch)
