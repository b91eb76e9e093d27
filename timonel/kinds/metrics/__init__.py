"""metrics.k8s.io/v1beta1: NodeMetrics and PodMetrics, the resource usage `kubectl top`
reads. Nothing is stored: timonel/apiserver/metricsapi.py answers get and list from the
kubelets' usage summaries; these strategies put the kinds in discovery and say their
table columns."""

from __future__ import annotations

from typing import Any, ClassVar

from timonel.api.objects import Object
from timonel.api.quantity import QuantityError, parse_quantity
from timonel.kinds.base import NAME_COLUMN, Column, Strategy

GROUP = "metrics.k8s.io"
VERSION = "v1beta1"

_COLUMNS = (
    NAME_COLUMN,
    Column("CPU", description="CPU usage"),
    Column("Memory", description="Memory usage"),
    Column("Window", description="The window the usage was measured over"),
)


def _total(usages: list[Any], resource: str) -> str:
    total = None
    for usage in usages:
        try:
            value = parse_quantity(str((usage or {}).get(resource, "0")))
        except QuantityError:
            continue
        total = value if total is None else total + value
    return str(total) if total is not None else "0"


class NodeMetricsStrategy(Strategy):
    group: ClassVar[str] = GROUP
    version: ClassVar[str] = VERSION
    kind: ClassVar[str] = "NodeMetrics"
    plural: ClassVar[str] = "nodes"
    singular: ClassVar[str] = ""
    namespaced: ClassVar[bool] = False
    verbs: ClassVar[tuple[str, ...]] = ("get", "list")
    virtual: ClassVar[bool] = True
    columns = _COLUMNS

    def table_row(self, obj: Object) -> list[Any]:
        usage = obj.get("usage") or {}
        name = (obj.get("metadata") or {}).get("name", "")
        return [name, usage.get("cpu", "0"), usage.get("memory", "0"), obj.get("window", "")]


class PodMetricsStrategy(Strategy):
    group: ClassVar[str] = GROUP
    version: ClassVar[str] = VERSION
    kind: ClassVar[str] = "PodMetrics"
    plural: ClassVar[str] = "pods"
    singular: ClassVar[str] = ""
    namespaced: ClassVar[bool] = True
    verbs: ClassVar[tuple[str, ...]] = ("get", "list")
    virtual: ClassVar[bool] = True
    columns = _COLUMNS

    def table_row(self, obj: Object) -> list[Any]:
        usages = [c.get("usage") for c in obj.get("containers") or [] if isinstance(c, dict)]
        name = (obj.get("metadata") or {}).get("name", "")
        return [name, _total(usages, "cpu"), _total(usages, "memory"), obj.get("window", "")]


STRATEGIES: tuple[type[Strategy], ...] = (NodeMetricsStrategy, PodMetricsStrategy)
