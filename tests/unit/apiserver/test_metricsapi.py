"""metrics.k8s.io objects built from kubelet summaries."""

from __future__ import annotations

from typing import Any

from timonel.apiserver import metricsapi
from timonel.kinds.metrics import NodeMetricsStrategy, PodMetricsStrategy


def test_usage_is_written_as_canonical_quantities() -> None:
    assert metricsapi.cpu_quantity(1_000_000) == "1m"
    assert metricsapi.cpu_quantity(1_234_567) == "1234567n"
    assert metricsapi.cpu_quantity(2_000_000_000) == "2"
    assert metricsapi.cpu_quantity(-5) == "0"
    assert metricsapi.memory_quantity(3 * 1024 * 1024) == "3Mi"
    assert metricsapi.memory_quantity(580 * 1024) == "580Ki"
    assert metricsapi.memory_quantity(1000) == "1k"
    assert metricsapi.memory_quantity(0) == "0"


NODE = {"metadata": {"name": "node-1", "labels": {"zone": "a"}}}
POD = {"metadata": {"name": "web", "namespace": "shop", "uid": "u1", "labels": {"app": "web"}}}
SUMMARY: dict[str, Any] = {
    "node": {
        "nodeName": "node-1",
        "cpu": {"time": "2026-01-02T15:04:05Z", "usageNanoCores": 250_000_000},
        "memory": {"time": "2026-01-02T15:04:05Z", "workingSetBytes": 512 * 1024 * 1024},
    },
    "pods": [
        {
            "podRef": {"name": "web", "namespace": "shop", "uid": "u1"},
            "containers": [
                {
                    "name": "sidecar",
                    "cpu": {"time": "2026-01-02T15:04:06Z", "usageNanoCores": 1_000_000},
                    "memory": {"workingSetBytes": 1024 * 1024},
                },
                {
                    "name": "app",
                    "cpu": {"time": "2026-01-02T15:04:06Z", "usageNanoCores": 3_000_000},
                    "memory": {"workingSetBytes": 3 * 1024 * 1024},
                },
                {"name": "starting", "cpu": {}, "memory": {}},
            ],
        }
    ],
}


def test_node_metrics() -> None:
    metrics = metricsapi.node_metrics(NODE, SUMMARY)
    assert metrics is not None
    assert metrics["kind"] == "NodeMetrics"
    assert metrics["apiVersion"] == "metrics.k8s.io/v1beta1"
    assert metrics["metadata"]["name"] == "node-1"
    assert metrics["metadata"]["labels"] == {"zone": "a"}
    assert metrics["timestamp"] == "2026-01-02T15:04:05Z"
    assert metrics["usage"] == {"cpu": "250m", "memory": "512Mi"}
    assert metricsapi.node_metrics(NODE, {"node": {"cpu": {}}}) is None
    assert NodeMetricsStrategy().table_row(metrics) == ["node-1", "250m", "512Mi", "10s"]


def test_pod_metrics_list_the_containers_that_report_usage() -> None:
    stats = metricsapi.pod_stats_by_uid([SUMMARY])["u1"]
    metrics = metricsapi.pod_metrics(POD, stats)
    assert metrics is not None
    assert metrics["metadata"] == {
        "name": "web",
        "namespace": "shop",
        "creationTimestamp": metrics["metadata"]["creationTimestamp"],
        "labels": {"app": "web"},
    }
    assert metrics["containers"] == [
        {"name": "app", "usage": {"cpu": "3m", "memory": "3Mi"}},
        {"name": "sidecar", "usage": {"cpu": "1m", "memory": "1Mi"}},
    ]
    assert PodMetricsStrategy().table_row(metrics) == ["web", "4m", "4Mi", "10s"]
    assert metricsapi.pod_metrics(POD, {"containers": [{"name": "x", "cpu": {}}]}) is None
