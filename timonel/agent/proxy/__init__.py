"""The node's service proxy: kube-proxy's iptables mode, with chains named TIMONEL-*.

- `rules`: pure; Services + EndpointSlices + the node → the nat and filter ruleset.
- `ruleset`: pure; rulesets as data and the iptables-restore text that installs them.
- `iptables`: the I/O; run iptables (in a network namespace), apply rulesets, clean up.
- `syncloop`: `RuleSyncer`, the debounced render-and-apply loop (shared with netpol).
- `proxier`: `Proxier` (Services and EndpointSlices → rules) and `NodeProxy` (informers).
"""

from timonel.agent.proxy.iptables import Iptables, IptablesError, RulesetApplier
from timonel.agent.proxy.proxier import NodeProxy, Proxier
from timonel.agent.proxy.rules import NodeView, ProxyOptions, render_rules
from timonel.agent.proxy.ruleset import Jump, Ruleset
from timonel.agent.proxy.syncloop import RuleSyncer, SyncResult, SyncSettings

__all__ = [
    "Iptables",
    "IptablesError",
    "Jump",
    "NodeProxy",
    "NodeView",
    "Proxier",
    "ProxyOptions",
    "RuleSyncer",
    "Ruleset",
    "RulesetApplier",
    "SyncResult",
    "SyncSettings",
    "render_rules",
]
