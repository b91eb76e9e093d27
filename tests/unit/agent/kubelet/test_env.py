"""Container environments: sources, ordering, expansion, service links, errors."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from tests.unit.agent.kubelet.podfixtures import make_pod
from timonel.agent.kubelet.env import (
    ContainerConfigError,
    EnvContext,
    container_environment,
    expand,
    expand_command,
    format_map,
    service_environment,
)
from timonel.api.objects import Object

CONFIG_MAPS: dict[str, Object] = {
    "ns/cfg": {"metadata": {"name": "cfg"}, "data": {"greeting": "hello", "LEVEL": "debug"}},
}
SECRETS: dict[str, Object] = {
    "ns/sec": {
        "metadata": {"name": "sec"},
        "data": {"password": base64.b64encode(b"s3cret").decode()},
    },
}


def context(**extra: Any) -> EnvContext:
    return EnvContext(
        config_maps=lambda ns, name: CONFIG_MAPS.get(f"{ns}/{name}"),
        secrets=lambda ns, name: SECRETS.get(f"{ns}/{name}"),
        pod_ips=["10.1.0.5"],
        host_ips=["192.168.1.2"],
        node_allocatable={"cpu": "2", "memory": "4Gi"},
        **extra,
    )


def env_of(container: dict[str, Any], **extra: Any) -> list[tuple[str, str]]:
    pod = make_pod(container)
    pod["metadata"]["labels"] = {"app": "web"}
    pod["spec"]["nodeName"] = "node-1"
    return container_environment(pod, container, context(**extra))


def test_expansion_rules() -> None:
    values = {"A": "1", "B": "2"}.get
    assert expand("$(A)-$(B)", values) == "1-2"
    assert expand("$(MISSING)", values) == "$(MISSING)"
    assert expand("$$(A)", values) == "$(A)"
    assert expand("cost: $5 $(A", values) == "cost: $5 $(A"


def test_values_and_sources_in_declaration_order() -> None:
    container = {
        "name": "c",
        "envFrom": [{"configMapRef": {"name": "cfg"}, "prefix": "CFG_"}],
        "env": [
            {
                "name": "GREETING",
                "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "greeting"}},
            },
            {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "password"}}},
            {"name": "COMBINED", "value": "$(GREETING)-$(CFG_LEVEL)"},
            {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
            {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
            {"name": "EMPTY"},
        ],
    }
    assert env_of(container) == [
        ("CFG_greeting", "hello"),
        ("CFG_LEVEL", "debug"),
        ("GREETING", "hello"),
        ("PASSWORD", "s3cret"),
        ("COMBINED", "hello-debug"),
        ("POD", "p"),
        ("IP", "10.1.0.5"),
        ("NODE", "node-1"),
        ("APP", "web"),
        ("EMPTY", ""),
    ]


def test_env_overrides_env_from() -> None:
    container = {
        "name": "c",
        "envFrom": [{"configMapRef": {"name": "cfg"}}],
        "env": [{"name": "LEVEL", "value": "info"}],
    }
    assert dict(env_of(container))["LEVEL"] == "info"


def test_resource_fields_with_divisor_and_node_allocatable_for_missing_limits() -> None:
    container = {
        "name": "c",
        "resources": {"limits": {"memory": "64Mi"}, "requests": {"cpu": "250m"}},
        "env": [
            {
                "name": "MEM",
                "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}},
            },
            {
                "name": "CPU_REQ",
                "valueFrom": {"resourceFieldRef": {"resource": "requests.cpu", "divisor": "1m"}},
            },
            {
                "name": "CPU_REQ_CORES",
                "valueFrom": {"resourceFieldRef": {"resource": "requests.cpu"}},
            },
            {"name": "CPU_LIM", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
        ],
    }
    assert env_of(container) == [
        ("MEM", "64"),
        ("CPU_REQ", "250"),
        ("CPU_REQ_CORES", "1"),
        ("CPU_LIM", "2"),
    ]


def test_missing_sources_fail_unless_optional() -> None:
    missing_map = {
        "name": "c",
        "env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "nope", "key": "k"}}}],
    }
    with pytest.raises(ContainerConfigError, match='configmap "nope" not found'):
        env_of(missing_map)
    missing_key = {
        "name": "c",
        "env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "k"}}}],
    }
    with pytest.raises(ContainerConfigError, match="couldn't find key k in Secret ns/sec"):
        env_of(missing_key)
    optional = {
        "name": "c",
        "envFrom": [{"secretRef": {"name": "nope", "optional": True}}],
        "env": [
            {
                "name": "X",
                "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "k", "optional": True}},
            }
        ],
    }
    assert env_of(optional) == []


def test_service_links() -> None:
    services = [
        {
            "metadata": {"name": "kubernetes", "namespace": "default"},
            "spec": {
                "clusterIP": "10.43.0.1",
                "ports": [{"name": "https", "port": 443, "protocol": "TCP"}],
            },
        },
        {
            "metadata": {"name": "my-db", "namespace": "ns"},
            "spec": {"clusterIP": "10.43.0.9", "ports": [{"port": 5432}]},
        },
        {
            "metadata": {"name": "headless", "namespace": "ns"},
            "spec": {"clusterIP": "None", "ports": [{"port": 1}]},
        },
        {
            "metadata": {"name": "other", "namespace": "elsewhere"},
            "spec": {"clusterIP": "10.43.0.3", "ports": [{"port": 1}]},
        },
    ]
    variables = service_environment(services, "ns")
    assert variables["KUBERNETES_SERVICE_HOST"] == "10.43.0.1"
    assert variables["KUBERNETES_SERVICE_PORT_HTTPS"] == "443"
    assert variables["KUBERNETES_PORT_443_TCP"] == "tcp://10.43.0.1:443"
    assert variables["MY_DB_SERVICE_PORT"] == "5432"
    assert variables["MY_DB_PORT"] == "tcp://10.43.0.9:5432"
    assert not any(k.startswith(("HEADLESS_", "OTHER_")) for k in variables)
    without_links = service_environment(services, "ns", enable_service_links=False)
    assert "MY_DB_SERVICE_HOST" not in without_links and "KUBERNETES_SERVICE_HOST" in without_links
    container = {"name": "c", "env": [{"name": "KUBERNETES_SERVICE_HOST", "value": "mine"}]}
    result = env_of(container, service_env=variables)
    assert result[0] == ("KUBERNETES_SERVICE_HOST", "mine")
    assert [k for k, _ in result].count("KUBERNETES_SERVICE_HOST") == 1


def test_command_expansion_uses_the_environment() -> None:
    command, args = expand_command(["echo", "$(A)"], ["$(B)", "$$(A)"], [("A", "1"), ("B", "2")])
    assert command == ["echo", "1"] and args == ["2", "$(A)"]


def test_labels_as_the_downward_api_writes_them() -> None:
    assert format_map({"b": 'say "hi"', "a": "x\ny"}) == 'a="x\\ny"\nb="say \\"hi\\""'
