"""NetworkPolicy strategy: kube-apiserver 1.32's defaults, validation and table."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from timonel.kinds.networking.networkpolicy import NetworkPolicyStrategy

STRATEGY = NetworkPolicyStrategy()

# The test-network-policy of the Kubernetes documentation.
POLICY = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: test-network-policy
  namespace: default
spec:
  podSelector:
    matchLabels:
      role: db
  policyTypes:
  - Ingress
  - Egress
  ingress:
  - from:
    - ipBlock:
        cidr: 172.17.0.0/16
        except:
        - 172.17.1.0/24
    - namespaceSelector:
        matchLabels:
          project: myproject
    - podSelector:
        matchLabels:
          role: frontend
    ports:
    - protocol: TCP
      port: 6379
  egress:
  - to:
    - ipBlock:
        cidr: 10.0.0.0/24
    ports:
    - port: 5978
"""


def load(text: str = POLICY) -> dict[str, Any]:
    obj: dict[str, Any] = yaml.safe_load(text)
    STRATEGY.default(obj)
    return obj


def messages(obj: dict[str, Any]) -> list[str]:
    return [e.message() for e in STRATEGY.validate(obj)]


def test_documented_policy_is_valid_and_defaulted() -> None:
    obj = load()
    assert messages(obj) == []
    assert obj["spec"]["egress"][0]["ports"] == [{"port": 5978, "protocol": "TCP"}]


@pytest.mark.parametrize(
    ("spec", "policy_types"),
    [
        ({"podSelector": {}}, ["Ingress"]),
        ({"podSelector": {}, "egress": [{}]}, ["Ingress", "Egress"]),
        ({"podSelector": {}, "policyTypes": ["Egress"]}, ["Egress"]),
    ],
)
def test_policy_types_default(spec: dict[str, Any], policy_types: list[str]) -> None:
    obj = {"metadata": {"name": "p", "namespace": "default"}, "spec": spec}
    STRATEGY.default(obj)
    assert obj["spec"]["policyTypes"] == policy_types


@pytest.mark.parametrize(
    ("peer", "expected"),
    [
        ({}, ["spec.ingress[0].from[0]: Required value: must specify a peer"]),
        (
            {"ipBlock": {"cidr": "10.0.0.0/8"}, "podSelector": {}},
            ["spec.ingress[0].from[0]: Forbidden: may not specify both ipBlock and another peer"],
        ),
        (
            {"ipBlock": {"cidr": "10.0.0.0/33"}},
            [
                'spec.ingress[0].from[0].ipBlock.cidr: Invalid value: "10.0.0.0/33": not a valid CIDR'
            ],
        ),
        ({"ipBlock": {}}, ["spec.ingress[0].from[0].ipBlock.cidr: Required value"]),
        (
            {"ipBlock": {"cidr": "10.0.0.0/16", "except": ["10.1.0.0/24"]}},
            [
                'spec.ingress[0].from[0].ipBlock.except[0]: Invalid value: "10.1.0.0/24": '
                "must be a strict subset of `cidr`"
            ],
        ),
        (
            {"ipBlock": {"cidr": "10.0.0.0/16", "except": ["10.0.0.0/16"]}},
            [
                'spec.ingress[0].from[0].ipBlock.except[0]: Invalid value: "10.0.0.0/16": '
                "must be a strict subset of `cidr`"
            ],
        ),
        (
            {"ipBlock": {"cidr": "10.0.0.0/16", "except": ["bogus"]}},
            ['spec.ingress[0].from[0].ipBlock.except[0]: Invalid value: "bogus": not a valid CIDR'],
        ),
        (
            {"podSelector": {"matchExpressions": [{"key": "role", "operator": "In"}]}},
            [
                "spec.ingress[0].from[0].podSelector.matchExpressions[0].values: Required value: "
                "must be specified when `operator` is 'In' or 'NotIn'"
            ],
        ),
    ],
)
def test_peer_validation(peer: dict[str, Any], expected: list[str]) -> None:
    obj = load("metadata: {name: p, namespace: default}\nspec: {podSelector: {}}\n")
    obj["spec"]["ingress"] = [{"from": [peer]}]
    assert messages(obj) == expected


def test_ipv6_and_host_bits_cidrs() -> None:
    obj = load("metadata: {name: p, namespace: default}\nspec: {podSelector: {}}\n")
    obj["spec"]["egress"] = [
        {
            "to": [
                {"ipBlock": {"cidr": "fd00::/64", "except": ["fd00::/96"]}},
                {"ipBlock": {"cidr": "10.0.0.1/24"}},
            ]
        }
    ]
    STRATEGY.default(obj)
    assert messages(obj) == []


@pytest.mark.parametrize(
    ("port", "expected"),
    [
        (
            {"protocol": "ICMP"},
            [
                'spec.ingress[0].ports[0].protocol: Unsupported value: "ICMP": supported values: "TCP", "UDP", "SCTP"'
            ],
        ),
        (
            {"port": 0},
            [
                "spec.ingress[0].ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive"
            ],
        ),
        (
            {"port": 80, "endPort": 70},
            [
                "spec.ingress[0].ports[0].endPort: Invalid value: 70: must be greater than or equal to `port`"
            ],
        ),
        (
            {"port": "http", "endPort": 90},
            [
                "spec.ingress[0].ports[0].endPort: Invalid value: 90: may not be specified when `port` is non-numeric"
            ],
        ),
        (
            {"endPort": 90},
            [
                "spec.ingress[0].ports[0].endPort: Invalid value: 90: may not be specified when `port` is not specified"
            ],
        ),
        (
            {"port": "HTTP"},
            [
                'spec.ingress[0].ports[0].port: Invalid value: "HTTP": '
                "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)",
                'spec.ingress[0].ports[0].port: Invalid value: "HTTP": must contain at least one letter (a-z)',
            ],
        ),
    ],
)
def test_port_validation(port: dict[str, Any], expected: list[str]) -> None:
    obj = load("metadata: {name: p, namespace: default}\nspec: {podSelector: {}}\n")
    obj["spec"]["ingress"] = [{"ports": [port]}]
    assert messages(obj) == expected


def test_policy_types_validation() -> None:
    obj = load()
    obj["spec"]["policyTypes"] = ["Ingress", "Sideways"]
    assert messages(obj) == [
        'spec.policyTypes[1]: Unsupported value: "Sideways": supported values: "Ingress", "Egress"'
    ]
    obj["spec"]["policyTypes"] = ["Ingress", "Egress", "Ingress"]
    assert messages(obj) == [
        'spec.policyTypes: Invalid value: &[]networking.PolicyType{"Ingress", "Egress", "Ingress"}: '
        "may not specify more than two policyTypes"
    ]


def test_generation_and_table() -> None:
    old = load()
    STRATEGY.prepare_for_create(old)
    assert old["metadata"]["generation"] == 1
    new = copy.deepcopy(old)
    new["spec"]["podSelector"] = {
        "matchLabels": {"role": "cache"},
        "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}],
    }
    STRATEGY.prepare_for_update(new, old)
    assert new["metadata"]["generation"] == 2
    assert STRATEGY.table_row(new)[:2] == ["test-network-policy", "role=cache,tier in (a,b)"]
    assert (
        STRATEGY.table_row(load("metadata: {name: all}\nspec: {podSelector: {}}\n"))[1] == "<none>"
    )
    assert STRATEGY.short_names == ("netpol",)
