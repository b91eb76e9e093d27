"""Cold start and idle memory of `timonel server`.

Cold start: time from spawning the process to the first 200 from /readyz (a fresh TLS
connection polled every 5 ms), with a fresh data directory (certificates generated, an
empty database) and with a warm one (everything already there). Idle RSS: VmRSS of the
server process a few seconds after start, with nothing connected.

Python's bytecode cache matters as much as anything the server does, so it is pinned
down rather than left to whatever the checkout holds: the servers read and write their
.pyc files under a private PYTHONPYCACHEPREFIX, filled by one uncounted start, as a
`pip install` would have compiled them. One more series removes timonel's own .pyc
files from that cache and forbids writing them, which is how a source checkout starts
when PYTHONDONTWRITEBYTECODE is set (as it is on the development machines).

    .venv/bin/python bench/startup.py [--runs 7] [--out FILE]
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import harness
from harness import Figure

READYZ_AIM = ("<", 0.5)
IDLE_RSS_AIM = ("<", 60.0)


def bytecode_env(cache: Path, *, write: bool) -> dict[str, str]:
    return {"PYTHONPYCACHEPREFIX": str(cache), "PYTHONDONTWRITEBYTECODE": "" if write else "1"}


def import_seconds(env: dict[str, str]) -> float:
    """Interpreter start plus importing what `timonel server` imports before serving."""
    environment = harness.child_environment(env)
    started = time.monotonic()
    subprocess.run(
        [sys.executable, "-c", "import timonel.cli, timonel.server, timonel.kinds.registry"],
        check=True,
        cwd=harness.REPO,
        env=environment,
    )
    return time.monotonic() - started


def one_start(data_dir: Path, env: dict[str, str], *, settle: float) -> dict[str, Any]:
    with harness.running_server(data_dir, env=env) as server:
        kubeconfig_after = time.monotonic() - server.spawned_at
        cpu_before = server.cpu_seconds()
        time.sleep(settle)
        idle_cpu = (server.cpu_seconds() - cpu_before) / settle if settle else float("nan")
        memory = server.memory_kb()
        return {
            "first_answer_s": server.answering_after,
            "readyz_s": server.ready_after,
            "cpu_to_ready_s": server.cpu_at_ready,
            "kubeconfig_s": kubeconfig_after,
            "server_reported_ms": server.reported_start_ms(),
            "idle_rss_mb": memory["VmRSS"] / 1024,
            "peak_rss_mb": memory["VmHWM"] / 1024,
            "idle_cpu_cores": idle_cpu,
        }


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    readyz = [r["readyz_s"] for r in runs]
    return {
        "runs": runs,
        "readyz_median_s": harness.median(readyz),
        "readyz_max_s": max(readyz),
        "readyz_min_s": min(readyz),
        "first_answer_median_s": harness.median([r["first_answer_s"] for r in runs]),
        "cpu_to_ready_median_s": harness.median([r["cpu_to_ready_s"] for r in runs]),
        "idle_rss_median_mb": harness.median([r["idle_rss_mb"] for r in runs]),
        "peak_rss_median_mb": harness.median([r["peak_rss_mb"] for r in runs]),
        "idle_cpu_median_cores": harness.median([r["idle_cpu_cores"] for r in runs]),
    }


def main() -> None:
    parser = harness.base_arguments("startup", __doc__ or "")
    parser.add_argument("--runs", type=int, default=7, help="starts of each kind (default 7)")
    parser.add_argument(
        "--settle", type=float, default=3.0, help="seconds idle before reading RSS (default 3)"
    )
    args = harness.parse_arguments(parser)
    runs = 2 if args.quick else args.runs
    settle = 1.0 if args.quick else args.settle
    harness.stop_servers_on_signal()
    results = harness.Results("startup", {"runs": runs, "settle_s": settle, "poll_ms": 5})

    with harness.work_dir(args.work_dir) as work:
        cache = work / "pycache"
        compiled = bytecode_env(cache, write=True)
        # Fills the bytecode cache and the page cache; not counted.
        one_start(work / "priming", compiled, settle=0)
        imports = [import_seconds(compiled) for _ in range(3)]
        fresh = [one_start(work / f"fresh-{i}", compiled, settle=settle) for i in range(runs)]
        warm_dir = work / "warm"
        one_start(warm_dir, compiled, settle=0)  # creates the data directory
        warm = [one_start(warm_dir, compiled, settle=settle) for _ in range(runs)]

        # timonel's own modules compiled at every start, the rest still cached.
        shutil.rmtree(cache / harness.REPO.relative_to("/") / "timonel", ignore_errors=True)
        source_only = bytecode_env(cache, write=False)
        imports_uncompiled = [import_seconds(source_only) for _ in range(3)]
        uncompiled = [one_start(warm_dir, source_only, settle=0) for _ in range(runs)]

    fresh_summary, warm_summary = summarize(fresh), summarize(warm)
    uncompiled_summary = summarize(uncompiled)
    results.details = {
        "fresh_data_dir": fresh_summary,
        "warm_data_dir": warm_summary,
        "warm_data_dir_timonel_not_compiled": uncompiled_summary,
        "python_import_s": imports,
        "python_import_timonel_not_compiled_s": imports_uncompiled,
    }
    results.figures = [
        Figure(
            "readyz_fresh_median_s",
            "/readyz 200 after spawn, fresh data dir, median",
            fresh_summary["readyz_median_s"],
            "s",
            READYZ_AIM,
        ),
        Figure(
            "readyz_fresh_max_s",
            "/readyz 200 after spawn, fresh data dir, max",
            fresh_summary["readyz_max_s"],
            "s",
        ),
        Figure(
            "readyz_warm_median_s",
            "/readyz 200 after spawn, warm data dir, median",
            warm_summary["readyz_median_s"],
            "s",
            READYZ_AIM,
        ),
        Figure(
            "readyz_warm_max_s",
            "/readyz 200 after spawn, warm data dir, max",
            warm_summary["readyz_max_s"],
            "s",
        ),
        Figure(
            "cpu_to_ready_fresh_median_s",
            "  server CPU time until /readyz 200, fresh, median",
            fresh_summary["cpu_to_ready_median_s"],
            "s",
        ),
        Figure(
            "cpu_to_ready_warm_median_s",
            "  server CPU time until /readyz 200, warm, median",
            warm_summary["cpu_to_ready_median_s"],
            "s",
        ),
        Figure(
            "python_import_median_s",
            "  of which interpreter + imports (python -c import ...)",
            harness.median(imports),
            "s",
        ),
        Figure(
            "readyz_warm_uncompiled_median_s",
            "/readyz 200, warm, timonel .pyc not cached, median",
            uncompiled_summary["readyz_median_s"],
            "s",
            READYZ_AIM,
        ),
        Figure(
            "idle_rss_after_start_mb",
            "idle RSS after start (warm data dir, median)",
            warm_summary["idle_rss_median_mb"],
            "MB",
            IDLE_RSS_AIM,
        ),
        Figure(
            "idle_cpu_after_start_cores",
            "idle CPU after start (warm data dir, median)",
            warm_summary["idle_cpu_median_cores"],
            "cores",
        ),
        Figure(
            "idle_rss_after_fresh_start_mb",
            "idle RSS after start (fresh data dir, median)",
            fresh_summary["idle_rss_median_mb"],
            "MB",
            IDLE_RSS_AIM,
        ),
    ]

    rows = []
    series = (("fresh", fresh_summary), ("warm", warm_summary), ("no-pyc", uncompiled_summary))
    for label, summary in series:
        for i, run in enumerate(summary["runs"]):
            rows.append(
                [
                    f"{label} #{i + 1}",
                    f"{run['first_answer_s'] * 1000:.0f}",
                    f"{run['readyz_s'] * 1000:.0f}",
                    f"{run['cpu_to_ready_s'] * 1000:.0f}",
                    f"{run['kubeconfig_s'] * 1000:.0f}",
                    f"{run['server_reported_ms'] or float('nan'):.0f}",
                    f"{run['idle_rss_mb']:.1f}",
                    f"{run['peak_rss_mb']:.1f}",
                    f"{run['idle_cpu_cores']:.3f}",
                ]
            )
    harness.print_table(
        "startup runs (ms after spawn; CPU = server CPU time until ready; server-reported = "
        "inside `serve`, imports excluded)",
        rows,
        [
            "run",
            "first answer",
            "readyz 200",
            "CPU to ready",
            "kubeconfig",
            "server-reported",
            "RSS MB",
            "peak RSS MB",
            "idle CPU cores",
        ],
    )
    harness.print_figures("startup", results.figures)
    results.write(args.out)


if __name__ == "__main__":
    main()
