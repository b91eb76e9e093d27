"""metrics.k8s.io/v1beta1 served from the kubelets, as metrics-server serves it.

    GET /apis/metrics.k8s.io/v1beta1/nodes[/{name}]
    GET /apis/metrics.k8s.io/v1beta1/pods
    GET /apis/metrics.k8s.io/v1beta1/namespaces/{namespace}/pods[/{name}]

Each request reads `/stats/summary` from the kubelets of the nodes concerned (in
parallel, a few seconds at most each; a node that does not answer has no metrics) and
reports CPU as nanocores and memory as the working set, in canonical quantities ("1m",
"3Mi"). Pods are listed from the API's own store, so label and field selectors work
as on pods; a pod without a running container has no metrics, as in metrics-server.

Pure: `node_metrics`, `pod_metrics`, `pod_stats_by_uid`, `cpu_quantity`, `memory_quantity`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final

from timonel.api import errors
from timonel.api.objects import Object, now_rfc3339
from timonel.api.quantity import canonical_quantity
from timonel.api.selectors import parse_field_selector, parse_label_selector
from timonel.apiserver.context import ApiRequest, ApiResponse, json_response
from timonel.apiserver.negotiation import wants_table
from timonel.apiserver.nodeproxy import KubeletLocation, kubelet_location
from timonel.apiserver.requestinfo import RequestInfo
from timonel.apiserver.tables import TABLE_CONTENT_TYPE, table
from timonel.kinds.metrics import GROUP, VERSION, NodeMetricsStrategy, PodMetricsStrategy

if TYPE_CHECKING:
    from timonel.apiserver.server import ApiServer

log = logging.getLogger(__name__)

API_GROUP: Final = GROUP
API_VERSION: Final = f"{GROUP}/{VERSION}"
SUMMARY_PATH: Final = "/stats/summary"
SUMMARY_TIMEOUT: Final = 5.0
# The kubelets sample usage every 10 s: the window a rate was measured over.
WINDOW: Final = "10s"


def cpu_quantity(nano_cores: int) -> str:
    return canonical_quantity(f"{max(0, nano_cores)}n")


def memory_quantity(bytes_: int) -> str:
    kibibytes, rest = divmod(max(0, bytes_), 1024)
    return canonical_quantity(f"{kibibytes}Ki" if not rest else str(bytes_))


def _usage(stats: Mapping[str, Any]) -> dict[str, str] | None:
    cpu = (stats.get("cpu") or {}).get("usageNanoCores")
    memory = (stats.get("memory") or {}).get("workingSetBytes")
    if cpu is None or memory is None:
        return None
    return {"cpu": cpu_quantity(int(cpu)), "memory": memory_quantity(int(memory))}


def _timestamp(stats: Mapping[str, Any]) -> str:
    return str((stats.get("cpu") or {}).get("time") or now_rfc3339())


def node_metrics(node: Object, summary: Mapping[str, Any]) -> Object | None:
    stats = summary.get("node") or {}
    usage = _usage(stats)
    if usage is None:
        return None
    meta = node.get("metadata") or {}
    return {
        "kind": "NodeMetrics",
        "apiVersion": API_VERSION,
        "metadata": {
            "name": meta.get("name", ""),
            "creationTimestamp": now_rfc3339(),
            "labels": dict(meta.get("labels") or {}),
        },
        "timestamp": _timestamp(stats),
        "window": WINDOW,
        "usage": usage,
    }


def pod_metrics(pod: Object, stats: Mapping[str, Any]) -> Object | None:
    containers = []
    for container in stats.get("containers") or []:
        usage = _usage(container)
        if usage is not None:
            containers.append({"name": container.get("name", ""), "usage": usage})
    if not containers:
        return None
    meta = pod.get("metadata") or {}
    return {
        "kind": "PodMetrics",
        "apiVersion": API_VERSION,
        "metadata": {
            "name": meta.get("name", ""),
            "namespace": meta.get("namespace", ""),
            "creationTimestamp": now_rfc3339(),
            "labels": dict(meta.get("labels") or {}),
        },
        "timestamp": _timestamp(stats),
        "window": WINDOW,
        "containers": sorted(containers, key=lambda c: str(c["name"])),
    }


def pod_stats_by_uid(summaries: Iterable[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    found: dict[str, Mapping[str, Any]] = {}
    for summary in summaries:
        for entry in summary.get("pods") or []:
            uid = (entry.get("podRef") or {}).get("uid")
            if uid:
                found[str(uid)] = entry
    return found


async def _summaries(
    api: ApiServer, nodes: Iterable[Object]
) -> list[tuple[Object, Mapping[str, Any]]]:
    client = api.kubelets
    if client is None:
        return []

    async def one(node: Object) -> tuple[Object, Mapping[str, Any]] | None:
        try:
            location: KubeletLocation = kubelet_location(node)
            summary = await client.get_json(location, SUMMARY_PATH, SUMMARY_TIMEOUT)
        except (errors.StatusError, TimeoutError, ValueError) as error:
            log.debug("no usage from node %s: %s", (node.get("metadata") or {}).get("name"), error)
            return None
        return (node, summary) if isinstance(summary, dict) else None

    results = await asyncio.gather(*(one(node) for node in nodes))
    return [r for r in results if r is not None]


def _selected(objects: list[Object], request: ApiRequest, namespaced: bool) -> list[Object]:
    labels = parse_label_selector(request.param("labelSelector"))
    fields = parse_field_selector(request.param("fieldSelector"))
    chosen = []
    for obj in objects:
        meta = obj.get("metadata") or {}
        values = {"metadata.name": meta.get("name", "")}
        if namespaced:
            values["metadata.namespace"] = meta.get("namespace", "")
        if labels.matches(meta.get("labels") or {}) and fields.matches(values):
            chosen.append(obj)
    return chosen


def _respond(
    request: ApiRequest, strategy: NodeMetricsStrategy | PodMetricsStrategy, items: list[Object]
) -> ApiResponse:
    if wants_table(request.headers.get("Accept")):
        include = request.param("includeObject", "Metadata")
        return json_response(table(strategy, items, include=include), 200, TABLE_CONTENT_TYPE)
    return json_response(
        {"kind": f"{strategy.kind}List", "apiVersion": API_VERSION, "metadata": {}, "items": items}
    )


def _one(
    request: ApiRequest,
    strategy: NodeMetricsStrategy | PodMetricsStrategy,
    item: Object | None,
    info: RequestInfo,
) -> ApiResponse:
    if item is None:
        # As metrics-server words it: podmetrics.metrics.k8s.io "default/web" not found.
        name = f"{info.namespace}/{info.name}" if info.namespace else info.name
        raise errors.not_found(strategy.kind.lower(), GROUP, name)
    if wants_table(request.headers.get("Accept")):
        include = request.param("includeObject", "Metadata")
        return json_response(table(strategy, [item], include=include), 200, TABLE_CONTENT_TYPE)
    return json_response(item)


async def serve(api: ApiServer, request: ApiRequest, info: RequestInfo) -> ApiResponse:
    if info.version != VERSION or info.resource not in ("nodes", "pods") or info.subresource:
        raise errors.StatusError(
            404, "NotFound", "the server could not find the requested resource"
        )
    if info.verb not in ("get", "list"):
        raise errors.method_not_allowed(f"{request.method} is not supported on {info.resource}")
    if info.resource == "nodes":
        return await _nodes(api, request, info)
    return await _pods(api, request, info)


async def _nodes(api: ApiServer, request: ApiRequest, info: RequestInfo) -> ApiResponse:
    strategy = NodeMetricsStrategy()
    if info.namespace:
        raise errors.StatusError(
            404, "NotFound", "the server could not find the requested resource"
        )
    if info.name:
        node = await api.get_object("", "nodes", "", info.name)
        found = await _summaries(api, [node] if node is not None else [])
        return _one(request, strategy, node_metrics(*found[0]) if found else None, info)
    nodes = _selected(await api.list_objects("", "nodes", ""), request, namespaced=False)
    items = [
        m for node, summary in await _summaries(api, nodes) if (m := node_metrics(node, summary))
    ]
    items.sort(key=lambda m: str(m["metadata"]["name"]))
    return _respond(request, strategy, items)


async def _pods(api: ApiServer, request: ApiRequest, info: RequestInfo) -> ApiResponse:
    strategy = PodMetricsStrategy()
    if info.name:
        pod = await api.get_object("", "pods", info.namespace, info.name)
        pods = [pod] if pod is not None else []
    else:
        pods = _selected(await api.list_objects("", "pods", info.namespace), request, True)
    node_names = {str((p.get("spec") or {}).get("nodeName") or "") for p in pods} - {""}
    nodes = [n for name in sorted(node_names) if (n := await api.get_object("", "nodes", "", name))]
    by_uid = pod_stats_by_uid(summary for _, summary in await _summaries(api, nodes))
    items = []
    for pod in pods:
        stats = by_uid.get(str((pod.get("metadata") or {}).get("uid", "")))
        metrics = pod_metrics(pod, stats) if stats is not None else None
        if metrics is not None:
            items.append(metrics)
    if info.name:
        return _one(request, strategy, items[0] if items else None, info)
    items.sort(key=lambda m: (str(m["metadata"]["namespace"]), str(m["metadata"]["name"])))
    return _respond(request, strategy, items)
