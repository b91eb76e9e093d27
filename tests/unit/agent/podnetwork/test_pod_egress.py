"""Pod traffic between nodes keeps the pod's address: the one masquerade rule for pod
traffic skips every node's podCIDR (the cluster), so only traffic leaving it is NATed."""

from __future__ import annotations

from tests.unit.agent.podnetwork.test_routes import NODES
from timonel.agent.proxy.proxier import node_view
from timonel.agent.proxy.rules import POD_MASQ_CHAIN, POSTROUTING_CHAIN, render_rules


def test_pods_of_other_nodes_are_reached_without_masquerading() -> None:
    view = node_view("a", {n["metadata"]["name"]: n for n in NODES})
    nat = render_rules([], [], view).chains("nat")
    assert [rule for rule in nat[POSTROUTING_CHAIN] if POD_MASQ_CHAIN in rule] == [
        '-m comment --comment "pod traffic leaving the cluster" -s 10.42.1.0/24'
        f" -j {POD_MASQ_CHAIN}"
    ]
    masquerade = nat[POD_MASQ_CHAIN]
    returns = [rule for rule in masquerade if rule.endswith("-j RETURN")]
    for cidr in ("10.42.1.0/24", "10.42.2.0/24", "10.42.3.0/24"):
        assert f"-d {cidr} -j RETURN" in returns
    # The returns come first; only what is left (off-cluster) is masqueraded.
    assert masquerade[: len(returns)] == returns
    assert masquerade[len(returns) :] == [
        '-m comment --comment "masquerade pod traffic leaving the cluster"'
        " -j MASQUERADE --random-fully"
    ]
