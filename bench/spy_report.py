"""Summarise a py-spy profile (`py-spy record -f raw`, collapsed stacks): where the
samples went, by activity (who made the request: an HTTP client, a controller, the
scheduler, an event recorder; or which server part ran: watch fan-out, storage), by
function inclusive of callees, and by function's own time.

    .venv/bin/python bench/spy_report.py PROFILE.txt [--top 30] [--match timonel/]
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

# First match wins: (activity, pattern searched in the whole stack).
ACTIVITIES: list[tuple[str, str]] = [
    (
        "idle (event loop waiting)",
        r"select \(selectors\.py|epoll|_run_once \(asyncio/base_events\.py:\d+\)$",
    ),
    (
        "storage thread (SQLite)",
        r"timonel/storage/sqlite[^;]*$|sqlite3|_worker \(concurrent/futures",
    ),
    ("scheduler: scheduling cycle", r"Scheduler\.schedule_one"),
    ("scheduler: bind", r"DefaultBinder|SchedulerComponent\._bind"),
    ("scheduler: failure report", r"SchedulerComponent\._report_failure"),
    ("scheduler: informer handlers", r"timonel/scheduler/(cache|queue|scheduler)\.py"),
    ("event recorder", r"EventRecorder"),
    ("controller: replicaset", r"timonel/controllers/(replicaset|replicas)\.py"),
    ("controller: deployment", r"timonel/controllers/(deployment|rollout)\.py"),
    ("controller: nodelifecycle", r"timonel/controllers/nodelifecycle\.py"),
    ("controller: nodeipam", r"timonel/controllers/nodeipam\.py"),
    ("controller: garbage collector", r"timonel/controllers/garbagecollector\.py"),
    (
        "controller: endpoints/slices",
        r"timonel/controllers/(endpoints|endpointslice|podendpoints)\.py",
    ),
    ("controller: taint eviction", r"timonel/controllers/tainteviction\.py"),
    ("controller: other", r"timonel/controllers/"),
    ("informers (in-process clients)", r"timonel/client/informer\.py"),
    (
        "watch fan-out (server)",
        r"timonel/apiserver/watch|timonel/storage/watchcache|WatchCache|_dispatch",
    ),
    (
        "HTTP: status update (kubelets)",
        r"web_protocol\.py.*ApiServer\._subresource.*ResourceHandlers\.update",
    ),
    ("HTTP: update (Lease renewals)", r"web_protocol\.py.*ResourceHandlers\.update"),
    ("HTTP: create", r"web_protocol\.py.*ResourceHandlers\.create"),
    ("HTTP: patch", r"web_protocol\.py.*ResourceHandlers\.patch"),
    ("HTTP: watch streams", r"web_protocol\.py.*ResourceHandlers\.watch"),
    ("HTTP: other requests", r"web_protocol\.py"),
    ("in-process requests (other)", r"InProcessTransport"),
    ("garbage collection (Python)", r"\(gc\)|gc_collect"),
]


def frames(stack: str) -> list[str]:
    return stack.split(";")


def function_of(frame: str) -> str:
    """'Name (path/file.py:123)' without the line number."""
    return re.sub(r":\d+\)$", ")", frame)


def load(path: Path) -> Counter[str]:
    stacks: Counter[str] = Counter()
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks[stack] += int(count)
    return stacks


def classify(stack: str) -> str:
    for activity, pattern in ACTIVITIES:
        if re.search(pattern, stack):
            return activity
    return "other"


def report(stacks: Counter[str], top: int, match: str) -> None:
    total = sum(stacks.values())
    print(f"{total} samples")
    by_activity: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    for stack, count in stacks.items():
        by_activity[classify(stack)] += count
        seen = {function_of(f) for f in frames(stack)}
        for function in seen:
            if match in function:
                inclusive[function] += count
        own[function_of(frames(stack)[-1])] += count
    print("\nby activity")
    for activity, count in by_activity.most_common():
        print(f"  {100 * count / total:5.1f}%  {activity}")
    print(f"\ninclusive (functions matching {match!r})")
    for function, count in inclusive.most_common(top):
        print(f"  {100 * count / total:5.1f}%  {function}")
    print("\nown time")
    for function, count in own.most_common(top):
        print(f"  {100 * count / total:5.1f}%  {function}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("profile", type=Path)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--match", default="timonel/")
    args = parser.parse_args()
    report(load(args.profile), args.top, args.match)


if __name__ == "__main__":
    main()
