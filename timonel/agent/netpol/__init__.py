"""NetworkPolicy enforcement on one node, with iptables (filter table, FORWARD).

- `rules`: pure; NetworkPolicies + Pods + Namespaces → the node's ruleset.
- `enforcer`: `NetworkPolicyEnforcer` (objects → sync loop) and `NodeNetworkPolicy`
  (informers), installed through the proxy's `RulesetApplier`.
"""

from timonel.agent.netpol.enforcer import NetworkPolicyEnforcer, NodeNetworkPolicy
from timonel.agent.netpol.rules import PolicyOptions, render_policies

__all__ = ["NetworkPolicyEnforcer", "NodeNetworkPolicy", "PolicyOptions", "render_policies"]
