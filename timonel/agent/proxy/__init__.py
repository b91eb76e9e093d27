"""The node's service proxy: kube-proxy's iptables mode, with chains named TIMONEL-*.

- `rules`: pure; Services + EndpointSlices + the node → the nat and filter ruleset.
- `ruleset`: pure; rulesets as data and the iptables-restore text that installs them.
- `iptables`: the I/O; run iptables (in a network namespace), apply rulesets, clean up.
- `proxier`: `Proxier` (objects → debounced sync loop) and `NodeProxy` (fed by informers).
"""

from timonel.agent.proxy.iptables import Iptables, IptablesError, RulesetApplier
from timonel.agent.proxy.proxier import NodeProxy, Proxier, SyncResult, SyncSettings
from timonel.agent.proxy.rules import NodeView, ProxyOptions, render_rules
from timonel.agent.proxy.ruleset import Jump, Ruleset

__all__ = [
    "Iptables",
    "IptablesError",
    "Jump",
    "NodeProxy",
    "NodeView",
    "Proxier",
    "ProxyOptions",
    "Ruleset",
    "RulesetApplier",
    "SyncResult",
    "SyncSettings",
    "render_rules",
]
