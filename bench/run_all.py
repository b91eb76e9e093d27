"""Run every API server benchmark, several times, and print one summary table: each
headline figure's median over the repeats, its spread, and the aim it is held to.

Each benchmark runs as its own process (so each starts and ends its own servers) and
writes its JSON to OUT_DIR/runs/<name>-<repeat>.json; the summary goes to
OUT_DIR/summary.json.

    .venv/bin/python bench/run_all.py [--repeat 3] [--only startup,api_latency]
                                      [--out-dir /tmp/timonel-bench] [--quick]
"""

from __future__ import annotations

import argparse
import json
import math
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import harness

BENCHMARKS = ("startup", "api_latency", "list_pods", "watch_fanout")
HERE = Path(__file__).resolve().parent


def run_one(name: str, out: Path, args: argparse.Namespace) -> bool:
    command = [sys.executable, str(HERE / f"{name}.py"), "--out", str(out)]
    if args.quick:
        command.append("--quick")
    if args.work_dir is not None:
        command += ["--work-dir", str(args.work_dir / out.stem)]
    if args.server_args:
        command += ["--server-args", args.server_args]
    child = subprocess.Popen(command)

    def forward(signum: int, _frame: Any) -> None:
        # The benchmark ends its own servers on SIGTERM.
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
            child.wait(30)
        raise SystemExit(128 + signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        return child.wait() == 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def summarize(documents: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """One row per figure: the median of its values over the repeats."""
    rows: list[dict[str, Any]] = []
    for name, runs in documents.items():
        order: list[str] = []
        by_key: dict[str, list[dict[str, Any]]] = {}
        for document in runs:
            for figure in document["figures"]:
                if figure["key"] not in by_key:
                    order.append(figure["key"])
                by_key.setdefault(figure["key"], []).append(figure)
        for key in order:
            figures = by_key[key]
            values = [f["value"] for f in figures if f["value"] is not None]
            value = harness.median(values)
            aim = figures[0]["aim"]
            met: bool | None = None
            if aim and not math.isnan(value):
                met = value < aim[1] if aim[0] == "<" else value > aim[1]
            rows.append(
                {
                    "benchmark": name,
                    "key": key,
                    "label": figures[0]["label"],
                    "unit": figures[0]["unit"],
                    "median": value,
                    "min": min(values) if values else math.nan,
                    "max": max(values) if values else math.nan,
                    "runs": len(values),
                    "aim": aim,
                    "met": met,
                }
            )
    return rows


def print_summary(rows: list[dict[str, Any]], repeats: int) -> None:
    table = []
    for row in rows:
        spread = (
            f"{harness.format_value(row['min'])} .. {harness.format_value(row['max'])}"
            if row["runs"] > 1
            else ""
        )
        verdict = "" if row["met"] is None else ("met" if row["met"] else "MISSED")
        table.append(
            [
                row["benchmark"],
                row["label"],
                harness.format_value(row["median"]),
                row["unit"],
                spread,
                harness.aim_text(row["aim"], row["unit"]),
                verdict,
            ]
        )
    harness.print_table(
        f"summary: median of {repeats} run(s) of each benchmark",
        table,
        ["benchmark", "figure", "median", "unit", "min .. max", "aim", ""],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each benchmark")
    parser.add_argument("--only", default="", help="comma-separated benchmark names")
    parser.add_argument("--out-dir", type=Path, default=harness.DEFAULT_OUT_DIR)
    parser.add_argument("--work-dir", type=Path, default=None)
    parser.add_argument("--quick", action="store_true", help="short smoke runs, not figures")
    parser.add_argument(
        "--server-args",
        default="",
        help="more `timonel server` flags for every server, e.g. "
        "'--disable-scheduler --disable-controller-manager' to measure the API server alone",
    )
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=120.0,
        help="before each run, wait up to this many seconds for other work on the machine "
        "to stop (default 120; 0 to not wait)",
    )
    args = parser.parse_args()
    names = [n for n in args.only.split(",") if n] or list(BENCHMARKS)
    unknown = set(names) - set(BENCHMARKS)
    if unknown:
        parser.error(f"unknown benchmarks: {', '.join(sorted(unknown))}")

    documents: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    failed: list[str] = []
    started = time.monotonic()
    for repeat in range(1, args.repeat + 1):
        for name in names:
            print(f"\n=== {name} (run {repeat} of {args.repeat}) ===", flush=True)
            if args.wait_quiet > 0:
                harness.wait_for_quiet(args.wait_quiet)
            out = args.out_dir / "runs" / f"{name}-{repeat}.json"
            out.unlink(missing_ok=True)
            if run_one(name, out, args) and out.exists():
                documents[name].append(json.loads(out.read_text()))
            else:
                failed.append(f"{name} run {repeat}")

    rows = summarize({name: runs for name, runs in documents.items() if runs})
    print_summary(rows, args.repeat)
    noisy = [
        f"{name} run {i + 1}"
        for name, runs in documents.items()
        for i, document in enumerate(runs)
        if document["machine"].get("max_other_cpu_cores", 0) > harness.NOISY_OTHER_CORES
    ]
    if noisy:
        print(f"\nruns during which other processes were busy (noisier): {', '.join(noisy)}")
    if failed:
        print(f"\nFAILED: {', '.join(failed)}")
    summary = args.out_dir / "summary.json"
    summary.parent.mkdir(parents=True, exist_ok=True)
    summary.write_text(
        json.dumps(
            {
                "repeats": args.repeat,
                "minutes": (time.monotonic() - started) / 60,
                "machine": harness.machine_facts(),
                "figures": harness.clean_json(rows),
                "failed": failed,
                "noisy_runs": noisy,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"\nsummary: {summary}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
