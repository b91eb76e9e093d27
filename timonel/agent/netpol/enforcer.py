"""Enforcing NetworkPolicies on one node: informers → `render_policies` → iptables.

`NetworkPolicyEnforcer` holds the policies, pods and namespaces the rules are made from and
syncs them with the shared `RuleSyncer` loop (at most one sync per 100 ms; the first change
after a quiet spell at once). Pod updates that change nothing a policy looks at (status
heartbeats, conditions) do not cause a sync. `NodeNetworkPolicy` feeds it from informers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from timonel.agent.netpol.rules import (
    CANARY_CHAIN,
    JUMP,
    PodView,
    PolicyOptions,
    owns_chain,
    pod_view,
    render_policies,
)
from timonel.agent.proxy.iptables import Iptables, RulesetApplier
from timonel.agent.proxy.ruleset import Ruleset
from timonel.agent.proxy.syncloop import RuleSyncer, SyncSettings
from timonel.api.objects import Object, object_key
from timonel.client.informer import Informer
from timonel.client.resources import NAMESPACES, PODS, Resource
from timonel.client.rest import ApiClient

NETWORKPOLICIES: Final = Resource("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy")

PolicySnapshot = tuple[list[Object], list[Object], list[Object]]


class NetworkPolicyEnforcer(RuleSyncer[PolicySnapshot]):
    component = "network policy rules"
    lock_name = "netpol"

    def __init__(
        self,
        node_name: str,
        *,
        iptables: Iptables | None = None,
        options: PolicyOptions | None = None,
        settings: SyncSettings | None = None,
        cleanup_on_exit: bool = True,
    ) -> None:
        self.node_name = node_name
        self.iptables = iptables or Iptables()
        self.options = options or PolicyOptions()
        super().__init__(
            RulesetApplier(self.iptables, owns=owns_chain, jumps=(JUMP,), canary=CANARY_CHAIN),
            settings=settings,
            cleanup_on_exit=cleanup_on_exit,
        )
        self.policies: dict[str, Object] = {}
        self.pods: dict[str, Object] = {}
        self.namespaces: dict[str, Object] = {}
        self._views: dict[str, PodView | None] = {}

    def set_policy(self, policy: Object) -> None:
        self.policies[object_key(policy)] = policy
        self.changed()

    def delete_policy(self, policy: Object) -> None:
        if self.policies.pop(object_key(policy), None) is not None:
            self.changed()

    def set_pod(self, pod: Object) -> None:
        key = object_key(pod)
        self.pods[key] = pod
        view = pod_view(pod)
        if key not in self._views or self._views[key] != view:
            self._views[key] = view
            self.changed()

    def delete_pod(self, pod: Object) -> None:
        key = object_key(pod)
        self.pods.pop(key, None)
        if self._views.pop(key, None) is not None:
            self.changed()

    def set_namespace(self, namespace: Object) -> None:
        key = object_key(namespace)
        before = self.namespaces.get(key)
        self.namespaces[key] = namespace
        labels = (namespace.get("metadata") or {}).get("labels")
        if before is None or (before.get("metadata") or {}).get("labels") != labels:
            self.changed()

    def delete_namespace(self, namespace: Object) -> None:
        if self.namespaces.pop(object_key(namespace), None) is not None:
            self.changed()

    def snapshot(self) -> PolicySnapshot:
        return (
            list(self.policies.values()),
            list(self.pods.values()),
            list(self.namespaces.values()),
        )

    def render(self, snapshot: PolicySnapshot) -> Ruleset:
        policies, pods, namespaces = snapshot
        return render_policies(policies, pods, namespaces, self.node_name, self.options)

    async def prepare(self) -> None:
        # Bridged pod-to-pod traffic reaches FORWARD only through br_netfilter.
        await self.iptables.set_sysctl("net.bridge.bridge-nf-call-iptables", "1")


def _updated(put: Callable[[Object], None]) -> Callable[[Object, Object], None]:
    def on_update(_old: Object, new: Object) -> None:
        put(new)

    return on_update


@dataclass
class NodeNetworkPolicy:
    """A `NetworkPolicyEnforcer` fed by informers on NetworkPolicies, Pods and Namespaces."""

    client: ApiClient
    node_name: str
    options: PolicyOptions = field(default_factory=PolicyOptions)
    iptables: Iptables = field(default_factory=Iptables)
    settings: SyncSettings = field(default_factory=SyncSettings)

    def __post_init__(self) -> None:
        self.enforcer = NetworkPolicyEnforcer(
            self.node_name, iptables=self.iptables, options=self.options, settings=self.settings
        )
        enforcer = self.enforcer
        self.policies = Informer(self.client, NETWORKPOLICIES)
        self.pods = Informer(self.client, PODS)
        self.namespaces = Informer(self.client, NAMESPACES)
        feeds: tuple[tuple[Informer, Callable[[Object], None], Callable[[Object], None]], ...] = (
            (self.policies, enforcer.set_policy, enforcer.delete_policy),
            (self.pods, enforcer.set_pod, enforcer.delete_pod),
            (self.namespaces, enforcer.set_namespace, enforcer.delete_namespace),
        )
        for informer, put, drop in feeds:
            informer.add_handlers(on_add=put, on_update=_updated(put), on_delete=drop)

    async def run(self) -> None:
        informers = (self.policies, self.pods, self.namespaces)
        tasks = [
            asyncio.create_task(i.run(), name=f"netpol-{i.resource.plural}") for i in informers
        ]
        try:
            await asyncio.gather(*(i.synced.wait() for i in informers))
            self.enforcer.ready.set()
            await self.enforcer.run()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
