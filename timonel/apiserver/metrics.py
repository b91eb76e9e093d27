"""Prometheus metrics of the API server: request counts and latency per verb and resource."""

from __future__ import annotations

import bisect
from collections import defaultdict

# kube-apiserver's apiserver_request_duration_seconds buckets.
BUCKETS = (
    0.005,
    0.025,
    0.05,
    0.1,
    0.2,
    0.4,
    0.6,
    0.8,
    1.0,
    1.25,
    1.5,
    2.0,
    3.0,
    4.0,
    5.0,
    6.0,
    8.0,
    10.0,
    15.0,
    20.0,
    30.0,
    45.0,
    60.0,
)


class RequestMetrics:
    def __init__(self) -> None:
        self._counts: dict[tuple[str, str, str, str], int] = defaultdict(int)
        self._buckets: dict[tuple[str, str, str], list[int]] = {}
        self._sums: dict[tuple[str, str, str], float] = defaultdict(float)
        self._totals: dict[tuple[str, str, str], int] = defaultdict(int)

    def observe(self, verb: str, group: str, resource: str, code: int, seconds: float) -> None:
        self._counts[(verb, group, resource, str(code))] += 1
        if verb == "WATCH":
            return  # a watch lasts as long as the client wants: not a latency
        key = (verb, group, resource)
        buckets = self._buckets.get(key)
        if buckets is None:
            buckets = self._buckets[key] = [0] * len(BUCKETS)
        index = bisect.bisect_left(BUCKETS, seconds)
        if index < len(BUCKETS):
            buckets[index] += 1
        self._sums[key] += seconds
        self._totals[key] += 1

    def render(self) -> str:
        lines = [
            "# HELP apiserver_request_total Counter of apiserver requests broken out for each verb, group, resource and HTTP response code.",
            "# TYPE apiserver_request_total counter",
        ]
        for (verb, group, resource, code), count in sorted(self._counts.items()):
            lines.append(
                f'apiserver_request_total{{code="{code}",group="{group}",resource="{resource}",verb="{verb}"}} {count}'
            )
        lines += [
            "# HELP apiserver_request_duration_seconds Response latency distribution in seconds for each verb, group and resource.",
            "# TYPE apiserver_request_duration_seconds histogram",
        ]
        for (verb, group, resource), buckets in sorted(self._buckets.items()):
            labels = f'group="{group}",resource="{resource}",verb="{verb}"'
            cumulative = 0
            for bound, count in zip(BUCKETS, buckets, strict=True):
                cumulative += count
                lines.append(
                    f'apiserver_request_duration_seconds_bucket{{{labels},le="{bound}"}} {cumulative}'
                )
            total = self._totals[(verb, group, resource)]
            lines.append(f'apiserver_request_duration_seconds_bucket{{{labels},le="+Inf"}} {total}')
            lines.append(
                f"apiserver_request_duration_seconds_sum{{{labels}}} {self._sums[(verb, group, resource)]}"
            )
            lines.append(f"apiserver_request_duration_seconds_count{{{labels}}} {total}")
        return "\n".join(lines) + "\n"
