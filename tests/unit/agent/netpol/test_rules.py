"""NetworkPolicy rules: decisions checked by running the rendered chains on packets (a small
evaluator of the rule vocabulary the renderer uses), plus one golden text."""

from __future__ import annotations

import ipaddress
import os
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from timonel.agent.netpol.rules import (
    NETPOL_CHAIN,
    PolicyOptions,
    owns_chain,
    pod_view,
    render_policies,
)
from timonel.agent.proxy.ruleset import Ruleset

NODE = "node-a"
TESTDATA = Path(__file__).parent / "testdata"


# -- an evaluator for the rules ------------------------------------------------------------------


@dataclass(frozen=True)
class Packet:
    source: str
    destination: str
    port: int = 8080
    protocol: str = "tcp"
    established: bool = False


def _matches(words: list[str], packet: Packet, mark: int) -> tuple[bool, list[str]]:
    """Whether the match part of a rule matches; returns the target words."""
    i = 0
    negate = False
    while i < len(words):
        word = words[i]
        if word == "-j":
            return True, words[i + 1 :]
        if word == "!":
            negate = True
            i += 1
            continue
        if word in ("-s", "-d"):
            network = ipaddress.ip_network(words[i + 1], strict=False)
            address = packet.source if word == "-s" else packet.destination
            ok = ipaddress.ip_address(address) in network
            i += 2
        elif word == "-p":
            ok = packet.protocol == words[i + 1]
            i += 2
        elif word == "--dport":
            low, _, high = words[i + 1].partition(":")
            ok = int(low) <= packet.port <= int(high or low)
            i += 2
        elif word == "--ctstate":
            ok = packet.established == ("ESTABLISHED" in words[i + 1])
            i += 2
        elif word == "--mark":
            value, _, bits = words[i + 1].partition("/")
            ok = mark & int(bits, 16) == int(value, 16)
            i += 2
        elif word == "--comment":
            ok = True
            i += 2
        elif word == "-m":
            i += 2
            continue
        else:
            raise AssertionError(f"unknown match {word} in {words}")
        if ok == negate:
            return False, []
        negate = False
    return True, []


def verdict(ruleset: Ruleset, packet: Packet) -> str:
    """ACCEPT (fell through to the rest of FORWARD), REJECT or DROP."""
    chains = ruleset.chains("filter")
    mark = 0

    def run(chain: str) -> str | None:
        nonlocal mark
        for rule in chains[chain]:
            matched, target = _matches(shlex.split(rule), packet, mark)
            if not matched or not target:
                continue
            if target[0] == "RETURN":
                return None
            if target[0] in ("REJECT", "DROP", "ACCEPT"):
                return target[0]
            if target[0] == "MARK":
                value, _, bits = target[2].partition("/")
                mark = (mark & ~int(bits, 16)) | int(value, 16)
                continue
            outcome = run(target[0])
            if outcome is not None:
                return outcome
        return None

    return run(NETPOL_CHAIN) or "ACCEPT"


# -- objects ---------------------------------------------------------------------------------------


def pod(
    name: str,
    ip: str,
    labels: dict[str, str] | None = None,
    *,
    namespace: str = "default",
    node: str = NODE,
    ports: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "metadata": {"namespace": namespace, "name": name, "labels": labels or {}},
        "spec": {"nodeName": node, "containers": [{"name": "c", "ports": ports or []}]},
        "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}]},
    }


def policy(name: str, namespace: str = "default", **spec: Any) -> dict[str, Any]:
    spec.setdefault("podSelector", {})
    return {"metadata": {"namespace": namespace, "name": name}, "spec": spec}


def namespace(name: str, **labels: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels}}


WEB = pod("web", "10.42.0.10", {"app": "web"}, ports=[{"name": "http", "containerPort": 8080}])
CLIENT = pod("client", "10.42.0.11", {"role": "client"})
STRANGER = pod("stranger", "10.42.0.12", {"role": "other"})
REMOTE_CLIENT = pod("remote", "10.42.1.20", {"role": "client"}, node="node-b")
PROD_CLIENT = pod("prod", "10.42.1.21", {"role": "client"}, namespace="prod", node="node-b")
PODS = [WEB, CLIENT, STRANGER, REMOTE_CLIENT, PROD_CLIENT]
NAMESPACES = [namespace("default"), namespace("prod", env="prod")]


def decide(policies: list[Any], packet: Packet, **options: Any) -> str:
    ruleset = render_policies(policies, PODS, NAMESPACES, NODE, PolicyOptions(**options))
    return verdict(ruleset, packet)


def to_web(source: dict[str, Any], port: int = 8080, protocol: str = "tcp") -> Packet:
    return Packet(source["status"]["podIP"], WEB["status"]["podIP"], port, protocol)


# -- decisions -------------------------------------------------------------------------------------


def test_without_policies_everything_passes() -> None:
    assert decide([], to_web(STRANGER)) == "ACCEPT"


def test_default_deny_ingress_rejects_new_connections_but_not_replies() -> None:
    deny = [policy("deny", policyTypes=["Ingress"])]
    assert decide(deny, to_web(CLIENT)) == "REJECT"
    assert decide(deny, to_web(CLIENT), reject=False) == "DROP"
    reply = Packet(CLIENT["status"]["podIP"], WEB["status"]["podIP"], established=True)
    assert decide(deny, reply) == "ACCEPT"
    # The pod reaching itself (through its own Service) is never blocked.
    assert decide(deny, Packet("10.42.0.10", "10.42.0.10")) == "ACCEPT"


def test_allow_by_pod_label_lets_exactly_those_pods_in() -> None:
    policies = [
        policy("deny", policyTypes=["Ingress"]),
        policy(
            "allow-clients",
            podSelector={"matchLabels": {"app": "web"}},
            ingress=[{"from": [{"podSelector": {"matchLabels": {"role": "client"}}}]}],
        ),
    ]
    assert decide(policies, to_web(CLIENT)) == "ACCEPT"
    assert decide(policies, to_web(REMOTE_CLIENT)) == "ACCEPT"
    assert decide(policies, to_web(STRANGER)) == "REJECT"
    # A client in another namespace is not chosen by a bare podSelector.
    assert decide(policies, to_web(PROD_CLIENT)) == "REJECT"


def test_namespace_selector_alone_and_with_a_pod_selector() -> None:
    by_namespace = [
        policy(
            "from-prod",
            ingress=[{"from": [{"namespaceSelector": {"matchLabels": {"env": "prod"}}}]}],
        )
    ]
    assert decide(by_namespace, to_web(PROD_CLIENT)) == "ACCEPT"
    assert decide(by_namespace, to_web(CLIENT)) == "REJECT"
    by_name = [
        policy(
            "from-default-clients",
            ingress=[
                {
                    "from": [
                        {
                            "namespaceSelector": {
                                "matchLabels": {"kubernetes.io/metadata.name": "default"}
                            },
                            "podSelector": {"matchLabels": {"role": "client"}},
                        }
                    ]
                }
            ],
        )
    ]
    assert decide(by_name, to_web(CLIENT)) == "ACCEPT"
    assert decide(by_name, to_web(STRANGER)) == "REJECT"
    assert decide(by_name, to_web(PROD_CLIENT)) == "REJECT"


def test_ip_block_with_except() -> None:
    policies = [
        policy(
            "office",
            ingress=[
                {"from": [{"ipBlock": {"cidr": "192.168.0.0/16", "except": ["192.168.5.0/24"]}}]}
            ],
        )
    ]
    web_ip = WEB["status"]["podIP"]
    assert decide(policies, Packet("192.168.1.1", web_ip)) == "ACCEPT"
    assert decide(policies, Packet("192.168.5.9", web_ip)) == "REJECT"
    assert decide(policies, Packet("10.9.9.9", web_ip)) == "REJECT"


def test_ports_protocols_and_port_ranges() -> None:
    policies = [
        policy(
            "ports",
            ingress=[
                {
                    "ports": [
                        {"protocol": "TCP", "port": 8080},
                        {"protocol": "UDP", "port": 5000, "endPort": 5010},
                        {"protocol": "TCP", "port": "http"},
                    ]
                }
            ],
        )
    ]
    assert decide(policies, to_web(STRANGER, 8080)) == "ACCEPT"
    assert decide(policies, to_web(STRANGER, 8081)) == "REJECT"
    assert decide(policies, to_web(STRANGER, 5005, "udp")) == "ACCEPT"
    assert decide(policies, to_web(STRANGER, 5011, "udp")) == "REJECT"
    assert decide(policies, to_web(STRANGER, 8080, "udp")) == "REJECT"


def test_named_ports_resolve_against_the_selected_pod() -> None:
    named = [policy("named", ingress=[{"ports": [{"protocol": "TCP", "port": "http"}]}])]
    assert decide(named, to_web(STRANGER, 8080)) == "ACCEPT"
    assert decide(named, to_web(STRANGER, 80)) == "REJECT"
    # CLIENT has no port called http: the rule allows nothing into it.
    to_client = Packet(WEB["status"]["podIP"], CLIENT["status"]["podIP"], 8080)
    assert decide(named, to_client) == "REJECT"


def test_default_deny_egress_and_an_egress_allow() -> None:
    from_client = Packet(CLIENT["status"]["podIP"], WEB["status"]["podIP"], 8080)
    to_world = Packet(CLIENT["status"]["podIP"], "8.8.8.8", 53, "udp")
    deny = [
        policy("deny-out", podSelector={"matchLabels": {"role": "client"}}, policyTypes=["Egress"])
    ]
    assert decide(deny, from_client) == "REJECT"
    assert decide(deny, to_world) == "REJECT"
    allow = [
        *deny,
        policy(
            "dns-and-web",
            podSelector={"matchLabels": {"role": "client"}},
            policyTypes=["Egress"],
            egress=[
                {"ports": [{"protocol": "UDP", "port": 53}]},
                {
                    "to": [{"podSelector": {"matchLabels": {"app": "web"}}}],
                    "ports": [{"protocol": "TCP", "port": "http"}],
                },
            ],
        ),
    ]
    assert decide(allow, from_client) == "ACCEPT"
    assert decide(allow, to_world) == "ACCEPT"
    assert decide(allow, Packet(CLIENT["status"]["podIP"], "8.8.8.8", 443)) == "REJECT"
    assert decide(allow, Packet(CLIENT["status"]["podIP"], STRANGER["status"]["podIP"])) == (
        "REJECT"
    )


def test_both_directions_must_allow() -> None:
    policies = [
        policy("in", podSelector={"matchLabels": {"app": "web"}}, ingress=[{}]),
        policy("out", podSelector={"matchLabels": {"role": "client"}}, policyTypes=["Egress"]),
    ]
    assert decide(policies, to_web(CLIENT)) == "REJECT"
    assert decide(policies, to_web(STRANGER)) == "ACCEPT"


def test_only_this_nodes_pods_get_chains() -> None:
    ruleset = render_policies([policy("deny")], PODS, NAMESPACES, NODE)
    jumps = ruleset.chains("filter")[NETPOL_CHAIN]
    assert sum("-d " in rule for rule in jumps) == 3
    assert not any("10.42.1." in rule for rule in jumps)
    assert all(owns_chain(name) for name in ruleset.chains("filter"))


def test_pods_without_policy_relevance() -> None:
    host = pod("host", "192.168.1.10")
    host["spec"]["hostNetwork"] = True
    done = pod("done", "10.42.0.99")
    done["status"]["phase"] = "Succeeded"
    pending = pod("pending", "")
    assert pod_view(host) is None and pod_view(done) is None and pod_view(pending) is None
    assert pod_view(WEB) is not None


def test_golden_default_deny_with_an_allow() -> None:
    policies = [
        policy("deny", policyTypes=["Ingress"]),
        policy(
            "allow-clients",
            podSelector={"matchLabels": {"app": "web"}},
            ingress=[
                {
                    "from": [
                        {"podSelector": {"matchLabels": {"role": "client"}}},
                        {"ipBlock": {"cidr": "192.168.0.0/16", "except": ["192.168.5.0/24"]}},
                    ],
                    "ports": [{"protocol": "TCP", "port": "http"}],
                }
            ],
        ),
    ]
    rendered = render_policies(policies, PODS, NAMESPACES, NODE).render()
    golden = TESTDATA / "default-deny-allow.rules"
    if os.environ.get("TIMONEL_UPDATE_GOLDEN"):
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(rendered)
    assert rendered == golden.read_text()


@pytest.mark.parametrize("reject", [True, False])
def test_verdict_option(reject: bool) -> None:
    text = render_policies([policy("deny")], PODS, NAMESPACES, NODE, PolicyOptions(reject=reject))
    assert ("-j REJECT" in text.render()) == reject
