"""Parsing a pod's requests, tolerations and selectors once, as kube-scheduler reads them."""

from __future__ import annotations

from typing import Any

import pytest

from timonel.scheduler.podspec import (
    Taint,
    Toleration,
    compute_non_zero_requests,
    compute_pod_requests,
    normalized_image_name,
    parse_node_selector_term,
)

GI = 2**30


def _container(cpu: str | None = None, memory: str | None = None, **extra: Any) -> dict[str, Any]:
    requests = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v is not None}
    return {"name": "c", "resources": {"requests": requests}, **extra}


@pytest.mark.parametrize(
    ("spec", "cpu", "memory"),
    [
        ({"containers": [_container("1", "1Gi"), _container("500m", "1Gi")]}, 1500, 2 * GI),
        # init containers: the largest one, or the sum of the regular ones
        (
            {
                "containers": [_container("2", "1Gi"), _container("1", "1Gi")],
                "initContainers": [_container("2", "1Gi"), _container("2", "3Gi")],
            },
            3000,
            3 * GI,
        ),
        # a sidecar runs beside the later init containers and the regular ones
        (
            {
                "containers": [_container("1")],
                "initContainers": [_container("1", restartPolicy="Always"), _container("3")],
            },
            4000,
            0,
        ),
        (
            {"containers": [_container("100m")], "overhead": {"cpu": "250m", "memory": "120Mi"}},
            350,
            120 * 2**20,
        ),
        ({"containers": [_container("0.1m")]}, 1, 0),  # rounded up to a millicore
    ],
)
def test_requests(spec: dict[str, Any], cpu: int, memory: int) -> None:
    requests = compute_pod_requests(spec)
    assert (requests.milli_cpu, requests.memory) == (cpu, memory)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"containers": [{"name": "c"}]}, (100, 200 * 2**20)),
        ({"containers": [_container("0", "0")]}, (0, 0)),  # explicit zero stays zero
        ({"containers": [_container("2"), {"name": "d"}]}, (2100, 400 * 2**20)),
    ],
)
def test_non_zero_requests(spec: dict[str, Any], expected: tuple[int, int]) -> None:
    assert compute_non_zero_requests(spec) == expected


def test_extended_resources_are_tracked_by_name() -> None:
    spec = {
        "containers": [
            {
                "name": "c",
                "resources": {
                    "requests": {
                        "example.com/gpu": "2",
                        "hugepages-2Mi": "4Mi",
                        "kubernetes.io/other": "1",
                    }
                },
            }
        ]
    }
    assert dict(compute_pod_requests(spec).scalar) == {
        "example.com/gpu": 2,
        "hugepages-2Mi": 4 * 2**20,
    }


@pytest.mark.parametrize(
    ("toleration", "taint", "tolerated"),
    [
        (Toleration("k", "Equal", "v", "NoSchedule"), Taint("k", "v", "NoSchedule"), True),
        (Toleration("k", "", "v", ""), Taint("k", "v", "NoExecute"), True),
        (Toleration("k", "Equal", "w", ""), Taint("k", "v", "NoSchedule"), False),
        (Toleration("", "Exists", "", ""), Taint("any", "x", "NoSchedule"), True),
        (Toleration("k", "Exists", "", "NoExecute"), Taint("k", "x", "NoSchedule"), False),
        (Toleration("k", "Unknown", "v", ""), Taint("k", "v", "NoSchedule"), False),
    ],
)
def test_toleration(toleration: Toleration, taint: Taint, tolerated: bool) -> None:
    assert toleration.tolerates(taint) is tolerated


def test_node_selector_terms() -> None:
    assert parse_node_selector_term({}) is None  # empty terms select nothing and are dropped
    broken = parse_node_selector_term({"matchExpressions": [{"key": "a", "operator": "Like"}]})
    assert broken is not None and not broken.matches({"a": "1"}, "n")
    by_name = parse_node_selector_term(
        {"matchFields": [{"key": "metadata.name", "operator": "NotIn", "values": ["n"]}]}
    )
    assert by_name is not None
    assert not by_name.matches({}, "n") and by_name.matches({}, "m")


@pytest.mark.parametrize(
    ("name", "normalized"),
    [
        ("nginx", "nginx:latest"),
        ("nginx:1.27", "nginx:1.27"),
        ("localhost:5000/app", "localhost:5000/app:latest"),
        ("localhost:5000/app:2", "localhost:5000/app:2"),
    ],
)
def test_image_names(name: str, normalized: str) -> None:
    assert normalized_image_name(name) == normalized
