"""NetworkPolicies enforced in a network-namespace node (see lab.py), next to the proxy's
rules: a default deny blocks pod traffic, direct and through a ClusterIP; an allow rule for
one label lets exactly those pods in; egress policies hold pods back."""

from __future__ import annotations

from typing import Any

from tests.e2e.proxy.lab import EXTERNAL_IP, NODE_NAME, Lab, Pod, request
from tests.e2e.proxy.test_proxy import CLUSTER_IP, endpoint_slice, http_port, proxier_for, service
from timonel.agent.netpol.enforcer import NetworkPolicyEnforcer


def policy(name: str, **spec: Any) -> dict[str, Any]:
    spec.setdefault("podSelector", {})
    return {"metadata": {"namespace": "default", "name": name}, "spec": spec}


DENY_INGRESS = policy("deny", policyTypes=["Ingress"])
ALLOW_CLIENTS = policy(
    "allow-clients",
    podSelector={"matchLabels": {"app": "web"}},
    ingress=[
        {
            "from": [{"podSelector": {"matchLabels": {"role": "client"}}}],
            "ports": [{"protocol": "TCP", "port": "http"}],
        }
    ],
)


async def enforcer_for(lab: Lab, *policies: dict[str, Any]) -> NetworkPolicyEnforcer:
    enforcer = NetworkPolicyEnforcer(NODE_NAME, iptables=lab.iptables)
    enforcer.set_namespace({"metadata": {"name": "default"}})
    for pod in lab.pods:
        enforcer.set_pod(pod.object())
    for item in policies:
        enforcer.set_policy(item)
    await enforcer.sync()
    return enforcer


async def answers(client: Pod, target: str) -> dict[str, int]:
    result = await request(client.netns, target, count=3, timeout=1)
    return dict(result["answers"])


async def test_default_deny_then_allow_one_label(lab: Lab) -> None:
    web = lab.add_pod("web", {"app": "web"})
    lab.serve(web)
    client = lab.add_pod("client", {"role": "client"})
    stranger = lab.add_pod("stranger", {"role": "other"})
    await proxier_for(lab, service("web", CLUSTER_IP, http_port()), endpoint_slice("web", [web]))
    enforcer = await enforcer_for(lab)
    targets = (f"{web.ip}:8080", f"{CLUSTER_IP}:80")
    for target in targets:
        assert await answers(client, target) == {"web": 3}
        assert await answers(stranger, target) == {"web": 3}

    enforcer.set_policy(DENY_INGRESS)
    await enforcer.sync()
    for target in targets:
        for pod in (client, stranger):
            result = await request(pod.netns, target, count=2, timeout=1)
            assert result["answers"] == {}
            assert result["errors"] == {"refused": 2}, target

    enforcer.set_policy(ALLOW_CLIENTS)
    await enforcer.sync()
    for target in targets:
        assert await answers(client, target) == {"web": 3}
        assert await answers(stranger, target) == {}

    # The policy chain stays ahead of the proxy's forwarding rules.
    _, listing, _ = await lab.iptables.run("-t", "filter", "-S", "FORWARD")
    rules = [line for line in listing.splitlines() if line.startswith("-A ")]
    assert "TIMONEL-NETPOL" in rules[0]
    assert any("TIMONEL-FORWARD" in line for line in rules[1:])

    enforcer.delete_policy(DENY_INGRESS)
    enforcer.delete_policy(ALLOW_CLIENTS)
    await enforcer.sync()
    assert await answers(stranger, targets[0]) == {"web": 3}
    await enforcer.applier.remove()
    saved = await lab.iptables.save("filter")
    assert "TIMONEL-NETPOL" not in saved and "TIMONEL-NP" not in saved


async def test_egress_policy_holds_a_pod_back(lab: Lab) -> None:
    web = lab.add_pod("web", {"app": "web"})
    lab.serve(web)
    client = lab.add_pod("client", {"role": "client"})
    outside = Pod("outside", lab.external, EXTERNAL_IP)
    lab.serve(outside, tcp=9090)
    await proxier_for(lab)
    egress_only_web = policy(
        "client-out",
        podSelector={"matchLabels": {"role": "client"}},
        policyTypes=["Egress"],
        egress=[{"to": [{"podSelector": {"matchLabels": {"app": "web"}}}]}],
    )
    await enforcer_for(lab, egress_only_web)
    assert await answers(client, f"{web.ip}:8080") == {"web": 3}
    assert await answers(client, f"{EXTERNAL_IP}:9090") == {}
    # The web pod itself is not selected: it still reaches the outside.
    assert await answers(web, f"{EXTERNAL_IP}:9090") == {"outside": 3}
