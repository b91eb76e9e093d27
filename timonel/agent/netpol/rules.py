"""NetworkPolicies → filter-table rules for the pods of one node.

Pure: `render_policies(policies, pods, namespaces, node_name)` returns the `Ruleset`.

Traffic between pods, and between pods and the outside, is forwarded by the node (bridged
traffic goes through iptables with br_netfilter), so the rules hang off FORWARD, ahead of
everything else (`JUMP`, kept first). Traffic to and from the node itself (INPUT/OUTPUT:
kubelet probes, host processes) is never filtered, as Kubernetes requires.

    TIMONEL-NETPOL      established and related traffic passes (policies are stateful);
                        then, per local pod isolated for ingress, `-d podIP` → its ingress
                        chain; per local pod isolated for egress, `-s podIP` → its egress chain
    TIMONEL-NPI-<pod>   ingress: the pod's own traffic (hairpin) passes; each rule of each
                        policy that selects the pod allows its ports from its peers; what no
                        rule allows is rejected
    TIMONEL-NPE-<pod>   egress: the same, towards peers
    TIMONEL-NPS-<set>   a set of peers (pod IPs, ipBlocks), shared by every rule that names
                        the same peers: a matching packet gets the "allowed" mark bit
    TIMONEL-NPB-<block> an ipBlock with `except`: the excepted ranges return, the rest is marked

A pod is isolated for a direction when any policy in its namespace selects it with that
policy type; it then accepts exactly the union of those policies' rules. Peers are pods
chosen by podSelector (in the policy's namespace), namespaceSelector, or both, and ipBlocks;
an empty `from`/`to` allows everyone and empty `ports` every port. Named ports resolve to the
container ports of the destination pod: the selected pod for ingress, each peer pod for
egress (ipBlock peers have no names, so a named port never matches them).
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Final

from timonel.agent.proxy.ruleset import Jump, Ruleset, comment
from timonel.api.objects import Object
from timonel.api.selectors import LabelSelector, label_selector_from_object

PREFIX: Final = "TIMONEL"
NETPOL_CHAIN: Final = f"{PREFIX}-NETPOL"
INGRESS_PREFIX: Final = f"{PREFIX}-NPI-"
EGRESS_PREFIX: Final = f"{PREFIX}-NPE-"
PEERS_PREFIX: Final = f"{PREFIX}-NPS-"
BLOCK_PREFIX: Final = f"{PREFIX}-NPB-"
CANARY_CHAIN: Final = f"{PREFIX}-NETPOL-CANARY"
NAMESPACE_NAME_LABEL: Final = "kubernetes.io/metadata.name"

JUMP: Final = Jump("filter", "FORWARD", NETPOL_CHAIN, "kubernetes network policies", first=True)


def owns_chain(name: str) -> bool:
    return name == NETPOL_CHAIN or name.startswith(
        (INGRESS_PREFIX, EGRESS_PREFIX, PEERS_PREFIX, BLOCK_PREFIX)
    )


@dataclass(frozen=True)
class PolicyOptions:
    reject: bool = True
    """Refuse denied connections at once (REJECT); False drops them silently."""
    allow_mark_bit: int = 16

    @property
    def allow_mark(self) -> str:
        return f"{1 << self.allow_mark_bit:#x}"


@cache
def _hash16(text: str) -> str:
    return base64.b32encode(hashlib.sha256(text.encode()).digest()).decode()[:16]


# -- the pods ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PodView:
    namespace: str
    name: str
    ip: str
    labels: Mapping[str, str]
    node_name: str
    ports: tuple[tuple[str, str, int], ...]
    """Named container ports: (name, protocol, number)."""

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def named_port(self, name: str, protocol: str) -> int | None:
        for port_name, port_protocol, number in self.ports:
            if port_name == name and port_protocol == protocol:
                return number
        return None


def pod_view(pod: Object) -> PodView | None:
    """The pod as policies see it; None for pods without an IPv4 address, host-network
    pods and finished pods (no policy applies to them)."""
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    if spec.get("hostNetwork") or status.get("phase") in ("Succeeded", "Failed"):
        return None
    candidates = [entry.get("ip") for entry in status.get("podIPs") or []]
    candidates.append(status.get("podIP"))
    address = next((a for a in candidates if a and _is_ipv4(a)), None)
    if address is None:
        return None
    ports = tuple(
        (str(port["name"]), str(port.get("protocol") or "TCP"), int(port["containerPort"]))
        for container in [*(spec.get("containers") or []), *(spec.get("initContainers") or [])]
        for port in container.get("ports") or []
        if port.get("name") and port.get("containerPort")
    )
    return PodView(
        namespace=str(meta.get("namespace", "")),
        name=str(meta.get("name", "")),
        ip=address,
        labels=dict(meta.get("labels") or {}),
        node_name=str(spec.get("nodeName") or ""),
        ports=ports,
    )


def _is_ipv4(text: str) -> bool:
    try:
        return ipaddress.ip_address(text).version == 4
    except ValueError:
        return False


def _ipv4_network(text: Any) -> str | None:
    try:
        network = ipaddress.ip_network(str(text).strip(), strict=False)
    except ValueError:
        return None
    return str(network) if network.version == 4 else None


# -- the policies ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Block:
    cidr: str
    excepts: tuple[str, ...] = ()


@dataclass(frozen=True)
class PortMatch:
    protocol: str
    port: int | str | None = None
    end_port: int | None = None


@dataclass
class Peers:
    """Whom a rule lets in (or out to): everyone, or these pods and blocks."""

    everyone: bool = False
    pods: list[PodView] = field(default_factory=list)
    blocks: list[Block] = field(default_factory=list)


@dataclass
class _Policy:
    namespace: str
    name: str
    selector: LabelSelector
    ingress: list[Any] | None
    egress: list[Any] | None

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


def _policy(policy: Object) -> _Policy | None:
    meta = policy.get("metadata") or {}
    spec = policy.get("spec") or {}
    types = spec.get("policyTypes") or (
        ["Ingress", "Egress"] if spec.get("egress") else ["Ingress"]
    )
    try:
        selector = label_selector_from_object(spec.get("podSelector") or {})
    except Exception:
        return None
    return _Policy(
        namespace=str(meta.get("namespace", "")),
        name=str(meta.get("name", "")),
        selector=selector,
        ingress=list(spec.get("ingress") or []) if "Ingress" in types else None,
        egress=list(spec.get("egress") or []) if "Egress" in types else None,
    )


def _ports(rule: Mapping[str, Any]) -> list[PortMatch] | None:
    """None: every port."""
    entries = rule.get("ports") or []
    if not entries:
        return None
    return [
        PortMatch(
            protocol=str(entry.get("protocol") or "TCP"),
            port=entry.get("port"),
            end_port=entry.get("endPort"),
        )
        for entry in entries
    ]


@dataclass
class _Cluster:
    pods: list[PodView]
    namespace_labels: dict[str, dict[str, str]]

    def peers(self, policy: _Policy, entries: list[Any] | None) -> Peers:
        if not entries:
            return Peers(everyone=True)
        found = Peers()
        seen: set[str] = set()
        for entry in entries:
            block = entry.get("ipBlock")
            if block:
                cidr = _ipv4_network(block.get("cidr"))
                if cidr is not None:
                    excepts = tuple(e for e in map(_ipv4_network, block.get("except") or []) if e)
                    found.blocks.append(Block(cidr, excepts))
                continue
            for pod in self._selected_peers(policy, entry):
                if pod.key not in seen:
                    seen.add(pod.key)
                    found.pods.append(pod)
        return found

    def _selected_peers(self, policy: _Policy, entry: Mapping[str, Any]) -> list[PodView]:
        try:
            pod_selector = (
                label_selector_from_object(entry["podSelector"])
                if entry.get("podSelector") is not None
                else None
            )
            namespace_selector = (
                label_selector_from_object(entry["namespaceSelector"])
                if entry.get("namespaceSelector") is not None
                else None
            )
        except Exception:
            return []
        if pod_selector is None and namespace_selector is None:
            return []
        chosen: list[PodView] = []
        for pod in self.pods:
            if namespace_selector is None:
                if pod.namespace != policy.namespace:
                    continue
            elif not namespace_selector.matches(self._namespace_labels(pod.namespace)):
                continue
            if pod_selector is not None and not pod_selector.matches(pod.labels):
                continue
            chosen.append(pod)
        return chosen

    def _namespace_labels(self, namespace: str) -> dict[str, str]:
        labels = dict(self.namespace_labels.get(namespace, {}))
        labels.setdefault(NAMESPACE_NAME_LABEL, namespace)
        return labels


def _namespace_labels(namespaces: Iterable[Object]) -> dict[str, dict[str, str]]:
    return {
        str((ns.get("metadata") or {}).get("name", "")): dict(
            (ns.get("metadata") or {}).get("labels") or {}
        )
        for ns in namespaces
    }


# -- rendering ------------------------------------------------------------------------------------


def _port_match(protocol: str, port: int | None = None, end_port: int | None = None) -> str:
    protocol = protocol.lower()
    if port is None:
        return f"-p {protocol}"
    ports = f"{port}:{end_port}" if end_port and end_port > port else str(port)
    return f"-p {protocol} -m {protocol} --dport {ports}"


def _numeric_ports(ports: list[PortMatch] | None, destination: PodView | None) -> list[str] | None:
    """Port matches for one destination; None: every port. Named ports resolve against
    `destination` (no destination: named ports match nothing)."""
    if ports is None:
        return None
    matches: list[str] = []
    for entry in ports:
        if entry.port is None:
            matches.append(_port_match(entry.protocol))
        elif isinstance(entry.port, int):
            matches.append(_port_match(entry.protocol, entry.port, entry.end_port))
        elif str(entry.port).isdigit():
            matches.append(_port_match(entry.protocol, int(entry.port), entry.end_port))
        elif destination is not None:
            number = destination.named_port(str(entry.port), entry.protocol)
            if number is not None:
                matches.append(_port_match(entry.protocol, number))
    return matches


def _has_named_ports(ports: list[PortMatch] | None) -> bool:
    return any(
        isinstance(p.port, str) and not p.port.isdigit() for p in ports or [] if p.port is not None
    )


@dataclass
class _Writer:
    ruleset: Ruleset
    options: PolicyOptions

    def add(self, chain: str, *parts: str) -> None:
        self.ruleset.add("filter", chain, *parts)

    @property
    def mark_allowed(self) -> str:
        mark = self.options.allow_mark
        return f"-j MARK --set-xmark {mark}/{mark}"

    @property
    def verdict(self) -> str:
        return "-j REJECT" if self.options.reject else "-j DROP"

    def block_chain(self, block: Block, flag: str) -> str:
        name = BLOCK_PREFIX + _hash16(f"{flag} {block.cidr} {' '.join(block.excepts)}")
        if name not in self.ruleset.chains("filter"):
            for excepted in block.excepts:
                self.add(name, f"{flag} {excepted}", "-j RETURN")
            self.add(name, self.mark_allowed)
        return name

    def peer_chain(self, peers: Peers, flag: str) -> str | None:
        """The shared chain marking traffic from (flag -s) or to (-d) these peers; None
        when the peers are nobody."""
        entries = sorted({pod.ip for pod in peers.pods})
        if not entries and not peers.blocks:
            return None
        signature = " ".join(
            [flag, *entries, *(f"{b.cidr}!{','.join(b.excepts)}" for b in peers.blocks)]
        )
        name = PEERS_PREFIX + _hash16(signature)
        if name in self.ruleset.chains("filter"):
            return name
        self.ruleset.chain("filter", name)
        for address in entries:
            self.add(name, f"{flag} {address}", self.mark_allowed)
        for block in peers.blocks:
            if block.excepts:
                self.add(name, f"{flag} {block.cidr}", f"-j {self.block_chain(block, flag)}")
            else:
                self.add(name, f"{flag} {block.cidr}", self.mark_allowed)
        return name


def _write_pod_chain(
    writer: _Writer,
    cluster: _Cluster,
    pod: PodView,
    policies: list[_Policy],
    *,
    ingress: bool,
) -> str:
    direction = "ingress" if ingress else "egress"
    chain = (INGRESS_PREFIX if ingress else EGRESS_PREFIX) + _hash16(pod.key)
    peer_flag = "-s" if ingress else "-d"
    writer.ruleset.chain("filter", chain)
    mark = writer.options.allow_mark
    writer.add(chain, f"-j MARK --set-xmark 0x0/{mark}")
    writer.add(chain, comment(f"{pod.key} to itself"), f"{peer_flag} {pod.ip}", "-j RETURN")
    for policy in policies:
        rules = policy.ingress if ingress else policy.egress
        for index, rule in enumerate(rules or []):
            label = comment(f"{policy.key} {direction} rule {index}")
            rule = rule or {}
            peers = cluster.peers(policy, rule.get("from" if ingress else "to"))
            ports = _ports(rule)
            if not ingress and _has_named_ports(ports):
                _write_expanded(writer, chain, label, peers, ports, peer_flag)
                continue
            matches = _numeric_ports(ports, pod if ingress else None)
            port_matches: list[str] = [""] if matches is None else matches
            if peers.everyone:
                for match in port_matches:
                    writer.add(chain, label, match, "-j RETURN")
                continue
            target = writer.peer_chain(peers, peer_flag)
            if target is None:
                continue
            for match in port_matches:
                writer.add(chain, label, match, f"-j {target}")
    writer.add(chain, f"-m mark --mark {mark}/{mark}", "-j RETURN")
    writer.add(chain, comment(f"{pod.key} {direction} not allowed by a policy"), writer.verdict)
    return chain


def _write_expanded(
    writer: _Writer,
    chain: str,
    label: str,
    peers: Peers,
    ports: list[PortMatch] | None,
    peer_flag: str,
) -> None:
    """An egress rule with named ports: each peer pod with its own port numbers."""
    destinations: list[tuple[str, PodView | None]] = []
    if peers.everyone:
        destinations = [("", None)]
    destinations += [(f"{peer_flag} {pod.ip}", pod) for pod in peers.pods]
    for match, destination in destinations:
        for port in _numeric_ports(ports, destination) or []:
            writer.add(chain, label, match, port, "-j RETURN")
    numeric_only = [p for p in ports or [] if not isinstance(p.port, str) or p.port.isdigit()]
    if peers.blocks and numeric_only:
        target = writer.peer_chain(Peers(blocks=peers.blocks), peer_flag)
        for port in _numeric_ports(numeric_only, None) or []:
            writer.add(chain, label, port, f"-j {target}")


def render_policies(
    policies: Iterable[Object],
    pods: Iterable[Object],
    namespaces: Iterable[Object],
    node_name: str,
    options: PolicyOptions | None = None,
) -> Ruleset:
    """The filter-table ruleset enforcing `policies` for the pods on `node_name`."""
    options = options or PolicyOptions()
    views = sorted((view for view in map(pod_view, pods) if view is not None), key=lambda p: p.key)
    cluster = _Cluster(views, _namespace_labels(namespaces))
    parsed = sorted(
        (p for p in map(_policy, policies) if p is not None), key=lambda p: (p.namespace, p.name)
    )
    ruleset = Ruleset()
    writer = _Writer(ruleset, options)
    ruleset.chain("filter", NETPOL_CHAIN)
    writer.add(NETPOL_CHAIN, "-m conntrack --ctstate RELATED,ESTABLISHED", "-j RETURN")
    egress_jumps: list[tuple[str, ...]] = []
    for pod in views:
        if pod.node_name != node_name:
            continue
        selecting = [
            p for p in parsed if p.namespace == pod.namespace and p.selector.matches(pod.labels)
        ]
        ingress = [p for p in selecting if p.ingress is not None]
        egress = [p for p in selecting if p.egress is not None]
        if ingress:
            chain = _write_pod_chain(writer, cluster, pod, ingress, ingress=True)
            writer.add(NETPOL_CHAIN, comment(f"{pod.key} ingress"), f"-d {pod.ip}", f"-j {chain}")
        if egress:
            chain = _write_pod_chain(writer, cluster, pod, egress, ingress=False)
            egress_jumps.append((comment(f"{pod.key} egress"), f"-s {pod.ip}", f"-j {chain}"))
    for jump in egress_jumps:
        writer.add(NETPOL_CHAIN, *jump)
    return ruleset
