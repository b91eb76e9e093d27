"""Configuration of `timonel agent --simulate N`: the node template, address ranges,
periods, concurrency and the stage table, from `--simulate-config FILE` (YAML) and the
`--simulate-*` flags, which win over the file.

    capacity: {cpu: "32", memory: 256Gi, pods: "110", ephemeral-storage: 100Gi}
    labels: {topology.kubernetes.io/zone: zone-a}      # added to the kubelet's labels
    annotations: {}
    taints: [{key: dedicated, value: sim, effect: NoSchedule}]
    nodeIPRange: 172.16.0.0/12     # node i gets the i-th host address
    podIPRange: 10.128.0.0/9       # node i's /24 when it has no spec.podCIDR
    leaseDurationSeconds: 40
    heartbeatPeriod: 10s           # lease renewal (and status check) period per node
    statusReportPeriod: 5m         # a status write at least this often
    concurrency: 32                # pod status writes and deletes in flight
    heartbeatConcurrency: 64       # lease renewals in flight (on connections of their own)
    stages: [...]                  # replaces the built-in stage table (see stages.py)
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import yaml

from timonel.agent.simulate.nodes import DEFAULT_CAPACITY, NodeTemplate
from timonel.agent.simulate.stages import (
    DEFAULT_STAGES,
    Stage,
    StageError,
    parse_duration,
    parse_stages,
)
from timonel.api.objects import Object
from timonel.api.quantity import QuantityError, canonical_quantity

TAINT_EFFECTS: Final = ("NoSchedule", "PreferNoSchedule", "NoExecute")


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class SimulateConfig:
    node: NodeTemplate = field(default_factory=NodeTemplate)
    node_ip_range: str = "172.16.0.0/12"
    pod_ip_range: str = "10.128.0.0/9"
    lease_duration_seconds: int = 40
    heartbeat_period: float = 10.0
    status_report_period: float = 300.0
    concurrency: int = 32
    heartbeat_concurrency: int = 64
    stages: tuple[Stage, ...] = DEFAULT_STAGES


def parse_taint(text: str) -> Object:
    """`key[=value]:Effect`, as kubelet's --register-with-taints."""
    key_value, colon, effect = text.rpartition(":")
    if not colon or effect not in TAINT_EFFECTS:
        raise ConfigError(
            f"invalid taint {text!r}: expected key[=value]:Effect with Effect one of "
            + ", ".join(TAINT_EFFECTS)
        )
    key, _, value = key_value.partition("=")
    if not key:
        raise ConfigError(f"invalid taint {text!r}: empty key")
    taint: Object = {"key": key, "effect": effect}
    if value:
        taint["value"] = value
    return taint


def parse_label(text: str) -> tuple[str, str]:
    key, equals, value = text.partition("=")
    if not equals or not key:
        raise ConfigError(f"invalid label {text!r}: expected key=value")
    return key, value


def parse_resource_list(text: str) -> dict[str, str]:
    """`cpu=32,memory=256Gi` into a resource list."""
    resources: dict[str, str] = {}
    for item in text.split(","):
        if item.strip():
            name, value = parse_label(item.strip())
            resources[name] = value
    return resources


def _quantities(values: Mapping[str, Any]) -> dict[str, str]:
    capacity: dict[str, str] = {}
    for name, value in values.items():
        try:
            capacity[str(name)] = canonical_quantity(str(value))
        except (QuantityError, ValueError):
            raise ConfigError(f"capacity.{name}: invalid quantity {value!r}") from None
    return capacity


def _taint(value: Any, where: str) -> Object:
    if isinstance(value, str):
        return parse_taint(value)
    if not isinstance(value, Mapping) or not value.get("key"):
        raise ConfigError(f"{where}: expected {{key, value, effect}}")
    if value.get("effect") not in TAINT_EFFECTS:
        raise ConfigError(f"{where}.effect: must be one of {', '.join(TAINT_EFFECTS)}")
    taint: Object = {"key": str(value["key"]), "effect": str(value["effect"])}
    if value.get("value"):
        taint["value"] = str(value["value"])
    return taint


def _string_map(value: Any, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}: expected a mapping")
    return {str(k): "" if v is None else str(v) for k, v in value.items()}


def _network(value: Any, where: str) -> str:
    try:
        return str(ipaddress.ip_network(str(value), strict=False))
    except ValueError:
        raise ConfigError(f"{where}: invalid CIDR {value!r}") from None


_KNOWN_KEYS: Final = frozenset(
    {
        "capacity", "labels", "annotations", "taints", "nodeIPRange", "podIPRange",
        "leaseDurationSeconds", "heartbeatPeriod", "statusReportPeriod", "concurrency",
        "heartbeatConcurrency", "stages",
    }
)  # fmt: skip


def config_from_data(data: Any) -> SimulateConfig:
    if data is None:
        return SimulateConfig()
    if not isinstance(data, Mapping):
        raise ConfigError("expected a mapping at the top level")
    unknown = sorted(set(data) - _KNOWN_KEYS)
    if unknown:
        raise ConfigError(f"unknown keys: {', '.join(map(str, unknown))}")
    config = SimulateConfig()
    node = NodeTemplate(
        capacity={
            **DEFAULT_CAPACITY,
            **_quantities(_string_map(data.get("capacity"), "capacity")),
        },
        labels=_string_map(data.get("labels"), "labels"),
        annotations=_string_map(data.get("annotations"), "annotations"),
        taints=tuple(_taint(t, f"taints[{i}]") for i, t in enumerate(data.get("taints") or [])),
    )
    try:
        changes: dict[str, Any] = {
            "node": node,
            "node_ip_range": _network(data.get("nodeIPRange", config.node_ip_range), "nodeIPRange"),
            "pod_ip_range": _network(data.get("podIPRange", config.pod_ip_range), "podIPRange"),
            "lease_duration_seconds": int(
                data.get("leaseDurationSeconds", config.lease_duration_seconds)
            ),
            "heartbeat_period": parse_duration(
                data.get("heartbeatPeriod", config.heartbeat_period)
            ),
            "status_report_period": parse_duration(
                data.get("statusReportPeriod", config.status_report_period)
            ),
            "concurrency": int(data.get("concurrency", config.concurrency)),
            "heartbeat_concurrency": int(
                data.get("heartbeatConcurrency", config.heartbeat_concurrency)
            ),
        }
    except (TypeError, ValueError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(str(exc)) from None
    if "stages" in data:
        try:
            changes["stages"] = parse_stages(data["stages"])
        except StageError as exc:
            raise ConfigError(str(exc)) from None
    if changes["heartbeat_period"] <= 0:
        raise ConfigError("heartbeatPeriod: must be positive")
    if changes["concurrency"] < 1 or changes["heartbeat_concurrency"] < 1:
        raise ConfigError("concurrency, heartbeatConcurrency: must be at least 1")
    return dataclasses.replace(config, **changes)


def load_config(text: str) -> SimulateConfig:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"not YAML: {exc}") from None
    return config_from_data(data)


def with_flags(
    config: SimulateConfig,
    *,
    capacity: str = "",
    labels: list[str] | None = None,
    taints: list[str] | None = None,
) -> SimulateConfig:
    """The configuration with the `--simulate-capacity/-label/-taint` flags applied."""
    node = config.node
    if capacity:
        node = dataclasses.replace(
            node, capacity={**node.capacity, **_quantities(parse_resource_list(capacity))}
        )
    if labels:
        node = dataclasses.replace(node, labels={**node.labels, **dict(map(parse_label, labels))})
    if taints:
        node = dataclasses.replace(node, taints=node.taints + tuple(map(parse_taint, taints)))
    return dataclasses.replace(config, node=node)
