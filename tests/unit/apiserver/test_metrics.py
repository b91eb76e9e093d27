"""The API server's Prometheus metrics: counts per code, latency histograms per verb."""

from __future__ import annotations

from timonel.apiserver.metrics import BUCKETS, RequestMetrics


def test_counts_and_histograms_render_in_kube_apiservers_shape() -> None:
    metrics = RequestMetrics()
    metrics.observe("GET", "coordination.k8s.io", "leases", 200, 0.003)
    metrics.observe("GET", "coordination.k8s.io", "leases", 200, 0.03)
    metrics.observe("GET", "coordination.k8s.io", "leases", 404, 0.25)
    metrics.observe("WATCH", "", "pods", 200, 100.0)
    metrics.observe("CREATE", "", "configmaps", 201, 61.0)
    lines = metrics.render().splitlines()
    counts = [line for line in lines if line.startswith("apiserver_request_total{")]
    assert counts == [
        'apiserver_request_total{code="201",group="",resource="configmaps",verb="CREATE"} 1',
        'apiserver_request_total{code="200",group="coordination.k8s.io",resource="leases",verb="GET"} 2',
        'apiserver_request_total{code="404",group="coordination.k8s.io",resource="leases",verb="GET"} 1',
        'apiserver_request_total{code="200",group="",resource="pods",verb="WATCH"} 1',
    ]
    leases = 'group="coordination.k8s.io",resource="leases",verb="GET"'
    buckets = [
        line
        for line in lines
        if line.startswith(f"apiserver_request_duration_seconds_bucket{{{leases}")
    ]
    assert len(buckets) == len(BUCKETS) + 1
    assert buckets[0] == f'apiserver_request_duration_seconds_bucket{{{leases},le="0.005"}} 1'
    assert buckets[1] == f'apiserver_request_duration_seconds_bucket{{{leases},le="0.025"}} 1'
    assert buckets[2] == f'apiserver_request_duration_seconds_bucket{{{leases},le="0.05"}} 2'
    assert buckets[5] == f'apiserver_request_duration_seconds_bucket{{{leases},le="0.4"}} 3'
    assert buckets[-1] == f'apiserver_request_duration_seconds_bucket{{{leases},le="+Inf"}} 3'
    assert f"apiserver_request_duration_seconds_sum{{{leases}}} {0.003 + 0.03 + 0.25}" in lines
    assert f"apiserver_request_duration_seconds_count{{{leases}}} 3" in lines
    # Beyond the last bucket: counted in +Inf, the sum and the count only.
    creates = 'group="",resource="configmaps",verb="CREATE"'
    assert f'apiserver_request_duration_seconds_bucket{{{creates},le="60.0"}} 0' in lines
    assert f'apiserver_request_duration_seconds_bucket{{{creates},le="+Inf"}} 1' in lines
    # A watch is counted, but its duration is no latency.
    assert not any('verb="WATCH"' in line for line in lines if "duration" in line)
    assert lines[-1] == f"apiserver_request_duration_seconds_count{{{leases}}} 3"
