"""Prometheus metrics of the API server: request counts and latency per verb and resource."""

from __future__ import annotations

import bisect

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


class _Latencies:
    """One (verb, group, resource)'s histogram: per-bucket counts, their sum and total."""

    __slots__ = ("buckets", "seconds", "total")

    def __init__(self) -> None:
        self.buckets = [0] * len(BUCKETS)
        self.seconds = 0.0
        self.total = 0


class RequestMetrics:
    def __init__(self) -> None:
        self._counts: dict[tuple[str, str, str, int], int] = {}
        self._latencies: dict[tuple[str, str, str], _Latencies] = {}

    def observe(self, verb: str, group: str, resource: str, code: int, seconds: float) -> None:
        counted = (verb, group, resource, code)
        self._counts[counted] = self._counts.get(counted, 0) + 1
        if verb == "WATCH":
            return  # a watch lasts as long as the client wants: not a latency
        key = (verb, group, resource)
        latencies = self._latencies.get(key)
        if latencies is None:
            latencies = self._latencies[key] = _Latencies()
        index = bisect.bisect_left(BUCKETS, seconds)
        if index < len(BUCKETS):
            latencies.buckets[index] += 1
        latencies.seconds += seconds
        latencies.total += 1

    def render(self) -> str:
        lines = [
            "# HELP apiserver_request_total Counter of apiserver requests broken out for each verb, group, resource and HTTP response code.",
            "# TYPE apiserver_request_total counter",
        ]
        counts = sorted(((v, g, r, str(c)), n) for (v, g, r, c), n in self._counts.items())
        for (verb, group, resource, code), count in counts:
            lines.append(
                f'apiserver_request_total{{code="{code}",group="{group}",resource="{resource}",verb="{verb}"}} {count}'
            )
        lines += [
            "# HELP apiserver_request_duration_seconds Response latency distribution in seconds for each verb, group and resource.",
            "# TYPE apiserver_request_duration_seconds histogram",
        ]
        for (verb, group, resource), latencies in sorted(
            self._latencies.items(), key=lambda item: item[0]
        ):
            labels = f'group="{group}",resource="{resource}",verb="{verb}"'
            cumulative = 0
            for bound, count in zip(BUCKETS, latencies.buckets, strict=True):
                cumulative += count
                lines.append(
                    f'apiserver_request_duration_seconds_bucket{{{labels},le="{bound}"}} {cumulative}'
                )
            total = latencies.total
            lines.append(f'apiserver_request_duration_seconds_bucket{{{labels},le="+Inf"}} {total}')
            lines.append(f"apiserver_request_duration_seconds_sum{{{labels}}} {latencies.seconds}")
            lines.append(f"apiserver_request_duration_seconds_count{{{labels}}} {total}")
        return "\n".join(lines) + "\n"
