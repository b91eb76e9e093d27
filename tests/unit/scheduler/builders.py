"""Pods, nodes and one-plugin runs for the scheduler's unit tests."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from timonel.scheduler.cache import Cache
from timonel.scheduler.framework import (
    SKIP,
    CycleState,
    FilterPlugin,
    Handle,
    NormalizeScorePlugin,
    PodInfo,
    PreFilterPlugin,
    PreScorePlugin,
    ScorePlugin,
)
from timonel.scheduler.plugins import REGISTRY

Obj = dict[str, Any]
_uids = iter(range(1, 10**9))


def node(
    name: str,
    *,
    cpu: str = "4",
    memory: str = "8Gi",
    pods: str = "110",
    labels: Mapping[str, str] | None = None,
    taints: Sequence[Mapping[str, str]] = (),
    unschedulable: bool = False,
    images: Sequence[tuple[Sequence[str], int]] = (),
    extra: Mapping[str, str] | None = None,
) -> Obj:
    allocatable = {"cpu": cpu, "memory": memory, "pods": pods, **(extra or {})}
    spec: Obj = {}
    if taints:
        spec["taints"] = [dict(t) for t in taints]
    if unschedulable:
        spec["unschedulable"] = True
    return {
        "metadata": {
            "name": name,
            "uid": f"node-{name}",
            "labels": {"kubernetes.io/hostname": name, **(labels or {})},
        },
        "spec": spec,
        "status": {
            "allocatable": allocatable,
            "capacity": dict(allocatable),
            "images": [{"names": list(names), "sizeBytes": size} for names, size in images],
        },
    }


def pod(
    name: str = "p",
    *,
    namespace: str = "default",
    cpu: str | None = None,
    memory: str | None = None,
    requests: Mapping[str, str] | None = None,
    labels: Mapping[str, str] | None = None,
    node_name: str | None = None,
    node_selector: Mapping[str, str] | None = None,
    affinity: Obj | None = None,
    tolerations: Sequence[Obj] = (),
    host_ports: Sequence[int] = (),
    spread: Sequence[Obj] = (),
    priority: int | None = None,
    preemption_policy: str | None = None,
    scheduler_name: str | None = None,
    image: str = "registry.k8s.io/pause:3.10",
    owner: tuple[str, str] | None = None,
    init_containers: Sequence[Obj] = (),
    overhead: Mapping[str, str] | None = None,
    uid: str | None = None,
) -> Obj:
    container_requests = dict(requests or {})
    if cpu is not None:
        container_requests["cpu"] = cpu
    if memory is not None:
        container_requests["memory"] = memory
    container: Obj = {"name": "c", "image": image}
    if container_requests:
        container["resources"] = {"requests": container_requests}
    if host_ports:
        container["ports"] = [
            {"containerPort": port, "hostPort": port, "protocol": "TCP"} for port in host_ports
        ]
    spec: Obj = {"containers": [container]}
    if init_containers:
        spec["initContainers"] = [dict(c) for c in init_containers]
    if overhead:
        spec["overhead"] = dict(overhead)
    if node_name:
        spec["nodeName"] = node_name
    if node_selector is not None:
        spec["nodeSelector"] = dict(node_selector)
    if affinity is not None:
        spec["affinity"] = affinity
    if tolerations:
        spec["tolerations"] = [dict(t) for t in tolerations]
    if spread:
        spec["topologySpreadConstraints"] = [dict(c) for c in spread]
    if priority is not None:
        spec["priority"] = priority
    if preemption_policy is not None:
        spec["preemptionPolicy"] = preemption_policy
    if scheduler_name is not None:
        spec["schedulerName"] = scheduler_name
    metadata: Obj = {
        "name": name,
        "namespace": namespace,
        "uid": uid or f"uid-{name}-{next(_uids)}",
        "labels": dict(labels or {}),
    }
    if owner is not None:
        kind, owner_name = owner
        api_version = "v1" if kind == "ReplicationController" else "apps/v1"
        metadata["ownerReferences"] = [
            {"apiVersion": api_version, "kind": kind, "name": owner_name, "controller": True}
        ]
    return {"metadata": metadata, "spec": spec, "status": {"phase": "Pending"}}


def on(node_name: str, obj: Obj) -> Obj:
    """`obj` bound to `node_name`."""
    obj["spec"]["nodeName"] = node_name
    obj["status"]["phase"] = "Running"
    return obj


def cache_with(nodes: Iterable[Obj], placed: Iterable[Obj] = ()) -> Cache:
    cache = Cache()
    for item in nodes:
        cache.add_node(item)
    for item in placed:
        cache.add_pod(item)
    return cache


def plugin(name: str, cache: Cache, args: Mapping[str, Any] | None = None) -> Any:
    return REGISTRY[name](args or {}, Handle(cache))


def filter_verdicts(
    plugin_name: str,
    pending: Obj,
    nodes: Sequence[Obj],
    placed: Iterable[Obj] = (),
    *,
    cache: Cache | None = None,
    args: Mapping[str, Any] | None = None,
) -> dict[str, tuple[str, ...]]:
    """Node name -> the plugin's rejection reasons (() when the node passes)."""
    cache = cache if cache is not None else cache_with(nodes, placed)
    instance = plugin(plugin_name, cache, args)
    assert isinstance(instance, FilterPlugin)
    snapshot = cache.snapshot()
    state = CycleState(snapshot)
    info = PodInfo(pending)
    if isinstance(instance, PreFilterPlugin):
        _, status = instance.pre_filter(state, info, snapshot.nodes)
        if status is SKIP:
            return {n.name: () for n in snapshot.nodes}
        if not status.is_success:
            return {n.name: status.reasons for n in snapshot.nodes}
    rejections = instance.filter(state, info, snapshot.nodes)
    return {
        n.name: rejections[i].reasons if i in rejections else ()
        for i, n in enumerate(snapshot.nodes)
    }


def feasible(
    plugin_name: str, pending: Obj, nodes: Sequence[Obj], placed: Iterable[Obj] = ()
) -> list[str]:
    verdicts = filter_verdicts(plugin_name, pending, nodes, placed)
    return sorted(name for name, reasons in verdicts.items() if not reasons)


def scores(
    plugin_name: str,
    pending: Obj,
    nodes: Sequence[Obj],
    placed: Iterable[Obj] = (),
    *,
    scored: Sequence[str] | None = None,
    args: Mapping[str, Any] | None = None,
) -> dict[str, int]:
    """Node name -> the plugin's normalised score (0..100), over `scored` nodes (all by
    default); None when the plugin's PreScore skips."""
    cache = cache_with(nodes, placed)
    instance = plugin(plugin_name, cache, args)
    assert isinstance(instance, ScorePlugin)
    snapshot = cache.snapshot()
    state = CycleState(snapshot)
    info = PodInfo(pending)
    candidates = [n for n in snapshot.nodes if scored is None or n.name in scored]
    if isinstance(instance, PreScorePlugin):
        status = instance.pre_score(state, info, candidates)
        if status is SKIP:
            return {}
    raw = instance.score(state, info, candidates)
    if isinstance(instance, NormalizeScorePlugin):
        instance.normalize(state, info, candidates, raw)
    return {n.name: s for n, s in zip(candidates, raw, strict=True)}
