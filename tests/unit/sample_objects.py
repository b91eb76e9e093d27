"""Realistic stored objects for tests that compare a fast path with the general one."""

from __future__ import annotations

from typing import Any

_MANAGED_FIELDS = [
    {
        "manager": "m",
        "operation": "Update",
        "apiVersion": "v1",
        "time": "2026-01-01T00:00:00Z",
        "fieldsType": "FieldsV1",
        "fieldsV1": {"f:metadata": {"f:labels": {".": {}, "f:app": {}}}},
    }
]


def metadata(name: str, *, managed: bool = False) -> dict[str, Any]:
    """An object's metadata as stored; `managed`: with a managedFields entry."""
    meta: dict[str, Any] = {
        "name": name,
        "namespace": "ns",
        "uid": "5d0c8d9e-0c1f-4a0e-9b1a-3f6f8b1d2c3e",
        "resourceVersion": "7",
        "creationTimestamp": "2026-01-01T00:00:00Z",
        "labels": {"app": name},
    }
    if managed:
        meta["managedFields"] = [dict(entry) for entry in _MANAGED_FIELDS]
    return meta


def lease(*, managed: bool = False) -> dict[str, Any]:
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": metadata("n1", managed=managed),
        "spec": {
            "holderIdentity": "n1",
            "leaseDurationSeconds": 40,
            "renewTime": "2026-01-01T00:00:00.000000Z",
        },
    }


def deployment(*, managed: bool = False) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata("web", managed=managed),
        "spec": {
            "replicas": 1,
            "progressDeadlineSeconds": 600,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "nginx"}]},
            },
        },
    }
