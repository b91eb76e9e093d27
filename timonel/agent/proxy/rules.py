"""Services and EndpointSlices → the iptables ruleset of kube-proxy's iptables mode.

Pure: `render_rules(services, endpoint_slices, node, options)` returns the `Ruleset` (nat and
filter tables) one node installs; `JUMPS` are the rules in built-in chains that lead into it.
The structure, rule text and chain-name hashes are kube-proxy's (pkg/proxy/iptables), with
the `KUBE-` prefix replaced by `TIMONEL-` so that nothing else on the host is disturbed:

    nat  PREROUTING/OUTPUT → TIMONEL-SERVICES
           -d clusterIP --dport p        → TIMONEL-SVC-<hash>  (or TIMONEL-SVL-<hash>)
           -d externalIP / LB ingress IP → TIMONEL-EXT-<hash>  (or TIMONEL-FW-<hash>)
           addrtype LOCAL (last rule)    → TIMONEL-NODEPORTS --dport nodePort → TIMONEL-EXT-<hash>
         TIMONEL-SVC-<hash>: off-cluster sources → TIMONEL-MARK-MASQ; session affinity
           (`-m recent --rcheck`); then endpoint i of n with `-m statistic --probability
           1/(n-i)` → TIMONEL-SEP-<hash>: source == endpoint (hairpin) → TIMONEL-MARK-MASQ,
           `-m recent --set` for affinity, DNAT to the endpoint
         POSTROUTING → TIMONEL-POSTROUTING: marked traffic is masqueraded; pod traffic leaving
           the cluster is masqueraded (the CNI bridge runs with ipMasq off)
    filter TIMONEL-SERVICES / TIMONEL-EXTERNAL-SERVICES: REJECT for services without endpoints
           (DROP when only a Local traffic policy finds none), TIMONEL-FORWARD accepts marked
           and established forwarded traffic, TIMONEL-FIREWALL guards route_localnet,
           TIMONEL-PROXY-FIREWALL enforces loadBalancerSourceRanges.

Endpoints: ready ones; when a policy finds no ready endpoint, serving terminating ones as a
fallback (kube's CategorizeEndpoints, without topology hints).
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache, lru_cache
from typing import Any, Final

from timonel.agent.proxy.ruleset import Jump, Ruleset, comment
from timonel.api.objects import Object

PREFIX: Final = "TIMONEL"
SERVICES_CHAIN: Final = f"{PREFIX}-SERVICES"
EXTERNAL_SERVICES_CHAIN: Final = f"{PREFIX}-EXTERNAL-SERVICES"
NODEPORTS_CHAIN: Final = f"{PREFIX}-NODEPORTS"
POSTROUTING_CHAIN: Final = f"{PREFIX}-POSTROUTING"
MARK_MASQ_CHAIN: Final = f"{PREFIX}-MARK-MASQ"
FORWARD_CHAIN: Final = f"{PREFIX}-FORWARD"
PROXY_FIREWALL_CHAIN: Final = f"{PREFIX}-PROXY-FIREWALL"
FIREWALL_CHAIN: Final = f"{PREFIX}-FIREWALL"
POD_MASQ_CHAIN: Final = f"{PREFIX}-POD-MASQ"
CANARY_CHAIN: Final = f"{PREFIX}-PROXY-CANARY"

SVC_PREFIX: Final = f"{PREFIX}-SVC-"
SVL_PREFIX: Final = f"{PREFIX}-SVL-"
EXT_PREFIX: Final = f"{PREFIX}-EXT-"
FW_PREFIX: Final = f"{PREFIX}-FW-"
SEP_PREFIX: Final = f"{PREFIX}-SEP-"
_SERVICE_CHAIN_PREFIXES: Final = (SVC_PREFIX, SVL_PREFIX, EXT_PREFIX, FW_PREFIX, SEP_PREFIX)
TOP_LEVEL_CHAINS: Final = frozenset(
    {
        SERVICES_CHAIN,
        EXTERNAL_SERVICES_CHAIN,
        NODEPORTS_CHAIN,
        POSTROUTING_CHAIN,
        MARK_MASQ_CHAIN,
        FORWARD_CHAIN,
        PROXY_FIREWALL_CHAIN,
        FIREWALL_CHAIN,
        POD_MASQ_CHAIN,
    }
)

# kube-proxy's --iptables-masquerade-bit default.
DEFAULT_MASQUERADE_BIT: Final = 14
DEFAULT_STICKY_SECONDS: Final = 10800
# Past this many endpoints the per-endpoint comments are left out (kube-proxy's
# largeClusterEndpointsThreshold): they make up a large part of the restore input.
LARGE_CLUSTER_ENDPOINTS: Final = 1000
MULTICAST: Final = "224.0.0.0/4"
SERVICE_PROXY_NAME_LABEL: Final = "service.kubernetes.io/service-proxy-name"
HEADLESS_LABEL: Final = "service.kubernetes.io/headless"
SERVICE_NAME_LABEL: Final = "kubernetes.io/service-name"
NODEPORTS_COMMENT: Final = (
    "kubernetes service nodeports; NOTE: this must be the last rule in this chain"
)

JUMPS: Final[tuple[Jump, ...]] = (
    Jump(
        "filter",
        "INPUT",
        EXTERNAL_SERVICES_CHAIN,
        "kubernetes externally-visible service portals",
        ("-m", "conntrack", "--ctstate", "NEW"),
    ),
    Jump(
        "filter",
        "FORWARD",
        EXTERNAL_SERVICES_CHAIN,
        "kubernetes externally-visible service portals",
        ("-m", "conntrack", "--ctstate", "NEW"),
    ),
    Jump("filter", "INPUT", NODEPORTS_CHAIN, "kubernetes health check service ports"),
    Jump(
        "filter",
        "FORWARD",
        SERVICES_CHAIN,
        "kubernetes service portals",
        ("-m", "conntrack", "--ctstate", "NEW"),
    ),
    Jump(
        "filter",
        "OUTPUT",
        SERVICES_CHAIN,
        "kubernetes service portals",
        ("-m", "conntrack", "--ctstate", "NEW"),
    ),
    Jump("filter", "FORWARD", FORWARD_CHAIN, "kubernetes forwarding rules"),
    Jump(
        "filter",
        "INPUT",
        PROXY_FIREWALL_CHAIN,
        "kubernetes load balancer firewall",
        ("-m", "conntrack", "--ctstate", "NEW"),
    ),
    Jump(
        "filter",
        "OUTPUT",
        PROXY_FIREWALL_CHAIN,
        "kubernetes load balancer firewall",
        ("-m", "conntrack", "--ctstate", "NEW"),
    ),
    Jump(
        "filter",
        "FORWARD",
        PROXY_FIREWALL_CHAIN,
        "kubernetes load balancer firewall",
        ("-m", "conntrack", "--ctstate", "NEW"),
    ),
    Jump("nat", "OUTPUT", SERVICES_CHAIN, "kubernetes service portals"),
    Jump("nat", "PREROUTING", SERVICES_CHAIN, "kubernetes service portals"),
    Jump("nat", "POSTROUTING", POSTROUTING_CHAIN, "kubernetes postrouting rules"),
)
# The route_localnet guard (kubelet's KUBE-FIREWALL), only with localhost NodePorts.
FIREWALL_JUMPS: Final[tuple[Jump, ...]] = (
    Jump("filter", "INPUT", FIREWALL_CHAIN),
    Jump("filter", "OUTPUT", FIREWALL_CHAIN),
)


def owns_chain(name: str) -> bool:
    """Whether a chain found on the host is one the proxy manages."""
    return name in TOP_LEVEL_CHAINS or name.startswith(_SERVICE_CHAIN_PREFIXES)


def jumps_for(options: ProxyOptions) -> tuple[Jump, ...]:
    return JUMPS + (FIREWALL_JUMPS if options.localhost_node_ports else ())


# -- inputs ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProxyOptions:
    cluster_cidr: str = ""
    """Traffic from this CIDR is pod traffic (kube-proxy --cluster-cidr); empty: the node's
    own podCIDR (--detect-local-mode=NodeCIDR)."""
    masquerade_all: bool = False
    masquerade_bit: int = DEFAULT_MASQUERADE_BIT
    localhost_node_ports: bool = True
    """NodePorts answer on 127.0.0.1 too (needs net.ipv4.conf.all.route_localnet=1)."""
    masquerade_pod_egress: bool = True
    """Masquerade pod traffic leaving the cluster (the CNI bridge runs with ipMasq off)."""
    conntrack_tcp_be_liberal: bool = False
    """nf_conntrack_tcp_be_liberal is set: no DROP rule for INVALID forwarded packets."""

    @property
    def masquerade_mark(self) -> str:
        return f"{1 << self.masquerade_bit:#x}"


@dataclass(frozen=True)
class NodeView:
    """What the rules need to know about the node they are installed on."""

    name: str
    pod_cidrs: tuple[str, ...] = ()
    addresses: tuple[str, ...] = ()
    cluster_pod_cidrs: tuple[str, ...] = ()
    """Every node's podCIDRs: where pod traffic stays inside the cluster when no cluster
    CIDR is configured."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    ip: str
    port: int
    node_name: str = ""
    ready: bool = True
    serving: bool = True
    terminating: bool = False

    @property
    def address(self) -> str:
        return f"{self.ip}:{self.port}"


@dataclass(frozen=True)
class ServicePort:
    """One port of one Service as the proxy sees it (kube's ServicePort)."""

    namespace: str
    name: str
    port_name: str
    protocol: str
    port: int
    cluster_ip: str
    node_port: int = 0
    external_ips: tuple[str, ...] = ()
    load_balancer_ips: tuple[str, ...] = ()
    load_balancer_source_ranges: tuple[str, ...] = ()
    sticky_seconds: int | None = None
    """ClientIP session affinity timeout; None without affinity."""
    external_policy_local: bool = False
    internal_policy_local: bool = False
    health_check_node_port: int = 0

    @property
    def service_key(self) -> tuple[str, str]:
        return (self.namespace, self.name)

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.namespace, self.name, self.port_name, self.protocol)

    @property
    def name_string(self) -> str:
        """ "ns/name:port" (kube's ServicePortName.String(); no ":" for an unnamed port)."""
        suffix = f":{self.port_name}" if self.port_name else ""
        return f"{self.namespace}/{self.name}{suffix}"

    @property
    def externally_accessible(self) -> bool:
        return bool(self.node_port or self.load_balancer_ips or self.external_ips)

    @property
    def uses_cluster_endpoints(self) -> bool:
        return not self.internal_policy_local or (
            self.externally_accessible and not self.external_policy_local
        )

    @property
    def uses_local_endpoints(self) -> bool:
        return self.internal_policy_local or (
            self.externally_accessible and self.external_policy_local
        )


# -- hashes (kube-proxy's, so chains are recognisable across implementations) -----------------


@cache
def _hash16(text: str) -> str:
    digest = hashlib.sha256(text.encode()).digest()
    return base64.b32encode(digest).decode()[:16]


def port_proto_hash(name_string: str, protocol: str) -> str:
    return _hash16(name_string + protocol.lower())


def endpoint_chain(service_port: ServicePort, endpoint: Endpoint) -> str:
    return SEP_PREFIX + _hash16(
        service_port.name_string + service_port.protocol.lower() + endpoint.address
    )


@cache
def probability(n: int) -> str:
    """The chance that rule i of n picks its endpoint, written as 1/(n-i) with 10 decimals
    (kube-proxy's computeProbability): each remaining endpoint is equally likely."""
    return f"{1.0 / n:.10f}"


# -- objects → ServicePorts and Endpoints -----------------------------------------------------


def _ipv4(text: Any) -> str | None:
    return _parse_ipv4(str(text))


@lru_cache(maxsize=65536)
def _parse_ipv4(text: str) -> str | None:
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    return str(address) if address.version == 4 else None


def _ipv4_cidr(text: Any) -> str | None:
    try:
        network = ipaddress.ip_network(str(text).strip(), strict=False)
    except ValueError:
        return None
    return str(network) if network.version == 4 else None


def is_proxied(service: Object) -> bool:
    """Services the proxy installs rules for: with a cluster IP, not ExternalName, not
    claimed by another proxy (service.kubernetes.io/service-proxy-name)."""
    meta = service.get("metadata") or {}
    labels = meta.get("labels") or {}
    if SERVICE_PROXY_NAME_LABEL in labels or HEADLESS_LABEL in labels:
        return False
    spec = service.get("spec") or {}
    if spec.get("type") == "ExternalName":
        return False
    return _cluster_ipv4(spec) is not None


def _cluster_ipv4(spec: Mapping[str, Any]) -> str | None:
    for candidate in [*(spec.get("clusterIPs") or []), spec.get("clusterIP")]:
        if candidate and candidate != "None":
            address = _ipv4(candidate)
            if address is not None:
                return address
    return None


def service_ports(service: Object) -> list[ServicePort]:
    """The proxied ports of one Service (none for headless and ExternalName Services)."""
    if not is_proxied(service):
        return []
    meta = service.get("metadata") or {}
    spec = service.get("spec") or {}
    status = service.get("status") or {}
    service_type = spec.get("type") or "ClusterIP"
    cluster_ip = _cluster_ipv4(spec)
    assert cluster_ip is not None
    external_ips = tuple(ip for ip in map(_ipv4, spec.get("externalIPs") or []) if ip)
    lb_ips: tuple[str, ...] = ()
    source_ranges: tuple[str, ...] = ()
    if service_type == "LoadBalancer":
        ingress = (status.get("loadBalancer") or {}).get("ingress") or []
        lb_ips = tuple(
            ip
            for entry in ingress
            if entry.get("ipMode") != "Proxy" and (ip := _ipv4(entry.get("ip") or ""))
        )
        source_ranges = tuple(
            cidr for cidr in map(_ipv4_cidr, spec.get("loadBalancerSourceRanges") or []) if cidr
        )
    sticky: int | None = None
    if spec.get("sessionAffinity") == "ClientIP":
        config = (spec.get("sessionAffinityConfig") or {}).get("clientIP") or {}
        sticky = int(config.get("timeoutSeconds") or DEFAULT_STICKY_SECONDS)
    external_local = (
        service_type in ("NodePort", "LoadBalancer")
        and spec.get("externalTrafficPolicy") == "Local"
    )
    health_check = (
        int(spec.get("healthCheckNodePort") or 0)
        if service_type == "LoadBalancer" and external_local
        else 0
    )
    ports: list[ServicePort] = []
    for port in spec.get("ports") or []:
        node_port = (
            int(port.get("nodePort") or 0) if service_type in ("NodePort", "LoadBalancer") else 0
        )
        ports.append(
            ServicePort(
                namespace=str(meta.get("namespace", "")),
                name=str(meta.get("name", "")),
                port_name=str(port.get("name") or ""),
                protocol=str(port.get("protocol") or "TCP"),
                port=int(port.get("port") or 0),
                cluster_ip=cluster_ip,
                node_port=node_port,
                external_ips=external_ips,
                load_balancer_ips=lb_ips,
                load_balancer_source_ranges=source_ranges,
                sticky_seconds=sticky,
                external_policy_local=external_local,
                internal_policy_local=spec.get("internalTrafficPolicy") == "Local",
                health_check_node_port=health_check,
            )
        )
    return ports


def _endpoint_rank(endpoint: Endpoint) -> int:
    return 2 if endpoint.ready else 1 if endpoint.serving else 0


EndpointsMap = dict[tuple[str, str, str, str], list[Endpoint]]


def endpoints_map(endpoint_slices: Iterable[Object]) -> EndpointsMap:
    """Endpoints by (namespace, service, port name, protocol), merged over a Service's
    IPv4 slices, sorted by address; an address listed twice keeps its most usable entry."""
    merged: dict[tuple[str, str, str, str], dict[str, Endpoint]] = {}
    for endpoint_slice in endpoint_slices:
        if endpoint_slice.get("addressType", "IPv4") != "IPv4":
            continue
        meta = endpoint_slice.get("metadata") or {}
        labels = meta.get("labels") or {}
        service = labels.get(SERVICE_NAME_LABEL)
        if not service or SERVICE_PROXY_NAME_LABEL in labels or HEADLESS_LABEL in labels:
            continue
        namespace = str(meta.get("namespace", ""))
        for slice_port in endpoint_slice.get("ports") or []:
            number = slice_port.get("port")
            if not number:
                continue
            key = (
                namespace,
                str(service),
                str(slice_port.get("name") or ""),
                str(slice_port.get("protocol") or "TCP"),
            )
            by_address = merged.setdefault(key, {})
            for entry in endpoint_slice.get("endpoints") or []:
                addresses = entry.get("addresses") or []
                ip = _ipv4(addresses[0]) if addresses else None
                if ip is None:
                    continue
                conditions = entry.get("conditions") or {}
                ready = conditions.get("ready") is not False
                serving = conditions.get("serving")
                endpoint = Endpoint(
                    ip=ip,
                    port=int(number),
                    node_name=str(entry.get("nodeName") or ""),
                    ready=ready,
                    serving=ready if serving is None else bool(serving),
                    terminating=conditions.get("terminating") is True,
                )
                known = by_address.get(endpoint.address)
                if known is None or _endpoint_rank(endpoint) > _endpoint_rank(known):
                    by_address[endpoint.address] = endpoint
    return {key: sorted(found.values(), key=lambda e: e.address) for key, found in merged.items()}


@dataclass(frozen=True)
class Categorized:
    cluster: tuple[Endpoint, ...]
    local: tuple[Endpoint, ...]
    reachable: tuple[Endpoint, ...]
    """Every endpoint this node may send to: the union of the two above."""
    has_any: bool
    """Whether the service has usable endpoints anywhere (not only on this node)."""


def categorize_endpoints(
    endpoints: Iterable[Endpoint], service_port: ServicePort, node_name: str
) -> Categorized:
    """kube-proxy's CategorizeEndpoints: ready endpoints for Cluster policy (serving
    terminating ones when none is ready), this node's for Local policy."""
    endpoints = list(endpoints)
    cluster: list[Endpoint] = []
    has_any = False
    if service_port.uses_cluster_endpoints:
        cluster = [e for e in endpoints if e.ready]
        if not cluster:
            cluster = [e for e in endpoints if e.serving and e.terminating]
        has_any = bool(cluster)
    if not service_port.uses_local_endpoints:
        return Categorized(tuple(cluster), (), tuple(cluster), has_any)

    local_ready = False
    local_fallback = False
    for endpoint in endpoints:
        is_local = endpoint.node_name == node_name
        if endpoint.ready:
            has_any = True
            local_ready = local_ready or is_local
        elif endpoint.serving and endpoint.terminating:
            has_any = True
            local_fallback = local_fallback or is_local
    local: list[Endpoint] = []
    if local_ready:
        local = [e for e in endpoints if e.node_name == node_name and e.ready]
    elif local_fallback:
        local = [e for e in endpoints if e.node_name == node_name and e.serving and e.terminating]
    if not service_port.uses_cluster_endpoints:
        return Categorized((), tuple(local), tuple(local), has_any)
    reachable = {e.address: e for e in cluster}
    for endpoint in local:
        reachable.setdefault(endpoint.address, endpoint)
    return Categorized(
        tuple(cluster),
        tuple(local),
        tuple(sorted(reachable.values(), key=lambda e: e.address)),
        has_any,
    )


# -- rendering ----------------------------------------------------------------------------------


@dataclass
class _Detector:
    """Which traffic counts as coming from pods (kube's LocalTrafficDetector)."""

    cidr: str | None

    def if_local(self) -> str:
        return f"-s {self.cidr}"

    def if_not_local(self) -> str:
        return f"! -s {self.cidr}"


def _local_detector(node: NodeView, options: ProxyOptions) -> _Detector:
    if options.cluster_cidr:
        return _Detector(_ipv4_cidr(options.cluster_cidr))
    for cidr in node.pod_cidrs:
        found = _ipv4_cidr(cidr)
        if found is not None:
            return _Detector(found)
    return _Detector(None)


Operation = tuple[str, str, str | None]
"""(table, chain, rule): a rule to append, or with rule None a chain to declare."""


@dataclass
class _Writer:
    """Collects one part of the ruleset as operations, so a service port's part can be
    kept and replayed while its inputs stay the same."""

    options: ProxyOptions
    node: NodeView
    detector: _Detector
    large_cluster: bool
    operations: list[Operation] = field(default_factory=list)

    def declare(self, table: str, chain: str) -> None:
        self.operations.append((table, chain, None))

    def nat(self, chain: str, *parts: str) -> None:
        self.operations.append(("nat", chain, " ".join(part for part in parts if part)))

    def filter(self, chain: str, *parts: str) -> None:
        self.operations.append(("filter", chain, " ".join(part for part in parts if part)))

    def endpoint_comment(self, text: str) -> str:
        return "" if self.large_cluster else comment(text)


def _replay(ruleset: Ruleset, operations: Iterable[Operation]) -> None:
    for table, chain, rule in operations:
        rules = ruleset.chain(table, chain)
        if rule is not None:
            rules.append(rule)


def _declare_top_level(ruleset: Ruleset, options: ProxyOptions) -> None:
    for chain in (
        NODEPORTS_CHAIN,
        SERVICES_CHAIN,
        EXTERNAL_SERVICES_CHAIN,
        FORWARD_CHAIN,
        PROXY_FIREWALL_CHAIN,
    ):
        ruleset.chain("filter", chain)
    if options.localhost_node_ports:
        ruleset.chain("filter", FIREWALL_CHAIN)
    for chain in (NODEPORTS_CHAIN, SERVICES_CHAIN, POSTROUTING_CHAIN, MARK_MASQ_CHAIN):
        ruleset.chain("nat", chain)


def _write_fixed_rules(writer: _Writer) -> None:
    options = writer.options
    mark = options.masquerade_mark
    _write_pod_egress(writer)
    writer.nat(POSTROUTING_CHAIN, f"-m mark ! --mark {mark}/{mark}", "-j RETURN")
    writer.nat(POSTROUTING_CHAIN, f"-j MARK --xor-mark {mark}")
    writer.nat(
        POSTROUTING_CHAIN,
        comment("kubernetes service traffic requiring SNAT"),
        "-j MASQUERADE --random-fully",
    )
    writer.nat(MARK_MASQ_CHAIN, f"-j MARK --or-mark {mark}")
    if options.localhost_node_ports:
        writer.filter(
            FIREWALL_CHAIN,
            comment("block incoming localnet connections"),
            "-d 127.0.0.0/8 ! -s 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT",
            "-j DROP",
        )


def _write_pod_egress(writer: _Writer) -> None:
    """Pod traffic to anywhere outside the cluster leaves with the node's address."""
    options = writer.options
    if not options.masquerade_pod_egress:
        return
    if options.cluster_cidr:
        sources = [c for c in [_ipv4_cidr(options.cluster_cidr)] if c]
        inside = list(sources)
    else:
        sources = [c for c in map(_ipv4_cidr, writer.node.pod_cidrs) if c]
        inside = sorted(
            {c for c in map(_ipv4_cidr, (*writer.node.cluster_pod_cidrs, *sources)) if c}
        )
    if not sources:
        return
    writer.declare("nat", POD_MASQ_CHAIN)
    for source in sources:
        writer.nat(
            POSTROUTING_CHAIN,
            comment("pod traffic leaving the cluster"),
            f"-s {source}",
            f"-j {POD_MASQ_CHAIN}",
        )
    for destination in [*inside, MULTICAST]:
        writer.nat(POD_MASQ_CHAIN, f"-d {destination}", "-j RETURN")
    writer.nat(
        POD_MASQ_CHAIN,
        comment("masquerade pod traffic leaving the cluster"),
        "-j MASQUERADE --random-fully",
    )


def _match(protocol: str) -> str:
    return f"-m {protocol} -p {protocol}"


@dataclass(frozen=True)
class PortPlan:
    """Which chains one service port gets and where its traffic goes (kube-proxy's
    syncProxyRules decisions for one port)."""

    svc_chain: str
    svl_chain: str
    ext_chain: str
    fw_chain: str
    endpoints: Categorized
    internal_chain: str
    """Where cluster IP traffic goes: the SVC chain, or SVL with internalTrafficPolicy Local."""
    external_policy_chain: str
    has_internal: bool
    has_external: bool
    uses_ext_chain: bool
    uses_fw_chain: bool
    internal_verdict: tuple[str, str]
    """(target, comment) for cluster IP traffic that finds no endpoint."""
    external_verdict: tuple[str, str]

    @property
    def has_endpoints(self) -> bool:
        return self.endpoints.has_any

    @property
    def lb_chain(self) -> str:
        return self.fw_chain if self.uses_fw_chain else self.ext_chain


def plan_port(service_port: ServicePort, endpoints: list[Endpoint], node_name: str) -> PortPlan:
    name = service_port.name_string
    port_hash = port_proto_hash(name, service_port.protocol)
    svc_chain, svl_chain = SVC_PREFIX + port_hash, SVL_PREFIX + port_hash
    found = categorize_endpoints(endpoints, service_port, node_name)
    has_internal = found.has_any and (not service_port.internal_policy_local or bool(found.local))
    has_external = found.has_any and (not service_port.external_policy_local or bool(found.local))
    no_endpoints = comment(f"{name} has no endpoints")
    no_local = comment(f"{name} has no local endpoints")
    return PortPlan(
        svc_chain=svc_chain,
        svl_chain=svl_chain,
        ext_chain=EXT_PREFIX + port_hash,
        fw_chain=FW_PREFIX + port_hash,
        endpoints=found,
        internal_chain=svl_chain if service_port.internal_policy_local else svc_chain,
        external_policy_chain=svl_chain if service_port.external_policy_local else svc_chain,
        has_internal=has_internal,
        has_external=has_external,
        uses_ext_chain=found.has_any and service_port.externally_accessible,
        uses_fw_chain=(
            found.has_any
            and bool(service_port.load_balancer_ips)
            and bool(service_port.load_balancer_source_ranges)
        ),
        # No endpoint anywhere: refuse at once; none here for a Local policy: drop.
        internal_verdict=("DROP", no_local) if found.has_any else ("REJECT", no_endpoints),
        external_verdict=("DROP", no_local) if found.has_any else ("REJECT", no_endpoints),
    )


def _write_service_port(
    writer: _Writer, service_port: ServicePort, endpoints: list[Endpoint]
) -> None:
    plan = plan_port(service_port, endpoints, writer.node.name)
    _write_captures(writer, service_port, plan)
    _write_port_chains(writer, service_port, plan)


def _write_captures(writer: _Writer, service_port: ServicePort, plan: PortPlan) -> None:
    """The port's rules in the shared chains: where its addresses are captured (nat) or
    refused (filter)."""
    protocol = service_port.protocol.lower()
    name = service_port.name_string
    match = _match(protocol)
    port = service_port.port
    cluster_ip = f"-d {service_port.cluster_ip} --dport {port}"
    if plan.has_internal:
        writer.nat(
            SERVICES_CHAIN,
            comment(f"{name} cluster IP"),
            match,
            cluster_ip,
            f"-j {plan.internal_chain}",
        )
    else:
        target, why = plan.internal_verdict
        writer.filter(SERVICES_CHAIN, why, match, cluster_ip, f"-j {target}")

    refuse_target, refuse_why = plan.external_verdict
    for external_ip in service_port.external_ips:
        address = f"-d {external_ip} --dport {port}"
        if plan.has_endpoints:
            writer.nat(
                SERVICES_CHAIN,
                comment(f"{name} external IP"),
                match,
                address,
                f"-j {plan.ext_chain}",
            )
        if not plan.has_external:
            writer.filter(
                EXTERNAL_SERVICES_CHAIN, refuse_why, match, address, f"-j {refuse_target}"
            )

    for lb_ip in service_port.load_balancer_ips:
        address = f"-d {lb_ip} --dport {port}"
        if plan.has_endpoints:
            writer.nat(
                SERVICES_CHAIN,
                comment(f"{name} loadbalancer IP"),
                match,
                address,
                f"-j {plan.lb_chain}",
            )
        if plan.uses_fw_chain:
            writer.filter(
                PROXY_FIREWALL_CHAIN,
                comment(f"{name} traffic not accepted by {plan.fw_chain}"),
                match,
                address,
                "-j DROP",
            )
    if not plan.has_external:
        for lb_ip in service_port.load_balancer_ips:
            address = f"-d {lb_ip} --dport {port}"
            writer.filter(
                EXTERNAL_SERVICES_CHAIN, refuse_why, match, address, f"-j {refuse_target}"
            )

    if service_port.node_port:
        node_port = f"--dport {service_port.node_port}"
        if plan.has_endpoints:
            writer.nat(NODEPORTS_CHAIN, comment(name), match, node_port, f"-j {plan.ext_chain}")
        if not plan.has_external:
            writer.filter(
                EXTERNAL_SERVICES_CHAIN,
                refuse_why,
                "-m addrtype --dst-type LOCAL",
                match,
                node_port,
                f"-j {refuse_target}",
            )

    if service_port.health_check_node_port:
        writer.filter(
            NODEPORTS_CHAIN,
            comment(f"{name} health check node port"),
            _match("tcp"),
            f"--dport {service_port.health_check_node_port}",
            "-j ACCEPT",
        )


def _write_port_chains(writer: _Writer, service_port: ServicePort, plan: PortPlan) -> None:
    """The port's own chains: SVC/SVL (balancing), EXT (external traffic), FW (source
    ranges), one SEP per endpoint (hairpin masquerade, affinity, DNAT)."""
    protocol = service_port.protocol.lower()
    name = service_port.name_string
    detector = writer.detector
    if plan.has_internal:
        masquerade_match = (
            comment(f"{name} cluster IP"),
            _match(protocol),
            f"-d {service_port.cluster_ip} --dport {service_port.port}",
        )
        if writer.options.masquerade_all:
            writer.nat(plan.internal_chain, *masquerade_match, f"-j {MARK_MASQ_CHAIN}")
        elif detector.cidr is not None:
            # Off-cluster traffic to a service IP may bounce off-node: masquerade it.
            writer.nat(
                plan.internal_chain,
                *masquerade_match,
                detector.if_not_local(),
                f"-j {MARK_MASQ_CHAIN}",
            )

    if plan.uses_ext_chain:
        ext_chain = plan.ext_chain
        writer.declare("nat", ext_chain)
        if not service_port.external_policy_local:
            # Endpoints on other nodes may answer: the reply must come back through here.
            writer.nat(
                ext_chain,
                comment(f"masquerade traffic for {name} external destinations"),
                f"-j {MARK_MASQ_CHAIN}",
            )
        else:
            # Pods and the node itself are not subject to the Local policy.
            if detector.cidr is not None:
                writer.nat(
                    ext_chain,
                    comment(f"pod traffic for {name} external destinations"),
                    detector.if_local(),
                    f"-j {plan.svc_chain}",
                )
            writer.nat(
                ext_chain,
                comment(f"masquerade LOCAL traffic for {name} external destinations"),
                "-m addrtype --src-type LOCAL",
                f"-j {MARK_MASQ_CHAIN}",
            )
            writer.nat(
                ext_chain,
                comment(f"route LOCAL traffic for {name} external destinations"),
                "-m addrtype --src-type LOCAL",
                f"-j {plan.svc_chain}",
            )
        if plan.has_external:
            writer.nat(ext_chain, f"-j {plan.external_policy_chain}")

    if plan.uses_fw_chain:
        _write_firewall(writer, service_port, plan)

    found = plan.endpoints
    if found.cluster and service_port.uses_cluster_endpoints:
        _write_balancing(writer, service_port, plan.svc_chain, found.cluster)
    if found.local and service_port.uses_local_endpoints:
        _write_balancing(writer, service_port, plan.svl_chain, found.local)

    for endpoint in found.reachable:
        chain = endpoint_chain(service_port, endpoint)
        writer.declare("nat", chain)
        endpoint_comment = writer.endpoint_comment(name)
        writer.nat(chain, endpoint_comment, f"-s {endpoint.ip}", f"-j {MARK_MASQ_CHAIN}")
        affinity = (
            f"-m recent --name {chain} --set" if service_port.sticky_seconds is not None else ""
        )
        writer.nat(
            chain,
            endpoint_comment,
            affinity,
            _match(protocol),
            f"-j DNAT --to-destination {endpoint.address}",
        )


def _write_firewall(writer: _Writer, service_port: ServicePort, plan: PortPlan) -> None:
    """loadBalancerSourceRanges: listed sources go on to the EXT chain; the rest is not
    DNATed and TIMONEL-PROXY-FIREWALL drops it."""
    name = service_port.name_string
    writer.declare("nat", plan.fw_chain)
    lb_comment = comment(f"{name} loadbalancer IP")
    allow_from_node = False
    for cidr in service_port.load_balancer_source_ranges:
        writer.nat(plan.fw_chain, lb_comment, f"-s {cidr}", f"-j {plan.ext_chain}")
        network = ipaddress.ip_network(cidr)
        allow_from_node = allow_from_node or any(
            ipaddress.ip_address(a) in network for a in writer.node.addresses if _ipv4(a)
        )
    if allow_from_node:
        # A node reaching a VIP it holds itself has the VIP as source address.
        for lb_ip in service_port.load_balancer_ips:
            writer.nat(plan.fw_chain, lb_comment, f"-s {lb_ip}", f"-j {plan.ext_chain}")
    writer.nat(
        plan.fw_chain,
        comment(f"other traffic to {name} will be dropped by {PROXY_FIREWALL_CHAIN}"),
    )


def _write_balancing(
    writer: _Writer, service_port: ServicePort, chain: str, endpoints: tuple[Endpoint, ...]
) -> None:
    """Session affinity first (a client seen recently goes back to its endpoint), then one
    rule per endpoint: endpoint i of n matches with probability 1/(n-i), the last always."""
    writer.declare("nat", chain)
    name = service_port.name_string
    if service_port.sticky_seconds is not None:
        for endpoint in endpoints:
            target = endpoint_chain(service_port, endpoint)
            writer.nat(
                chain,
                writer.endpoint_comment(f"{name} -> {endpoint.address}"),
                f"-m recent --name {target} --rcheck --seconds {service_port.sticky_seconds}"
                " --reap",
                f"-j {target}",
            )
    count = len(endpoints)
    for index, endpoint in enumerate(endpoints):
        chance = (
            f"-m statistic --mode random --probability {probability(count - index)}"
            if index < count - 1
            else ""
        )
        writer.nat(
            chain,
            writer.endpoint_comment(f"{name} -> {endpoint.address}"),
            chance,
            f"-j {endpoint_chain(service_port, endpoint)}",
        )


class RenderCache:
    """Makes repeated renders cheap: objects parsed once per resourceVersion, and each
    service port's rules kept while its inputs (the port, its endpoints, the node and the
    options) stay the same. Entries the last render did not use are dropped. The output
    is the same with or without a cache."""

    def __init__(self) -> None:
        self._ports: dict[tuple[str, ...], list[ServicePort]] = {}
        self._slices: dict[tuple[str, ...], EndpointsMap] = {}
        self._rules: dict[tuple[Any, ...], list[Operation]] = {}
        self._used: tuple[set[Any], set[Any], set[Any]] = (set(), set(), set())

    @staticmethod
    def _version_key(obj: Object) -> tuple[str, ...] | None:
        meta = obj.get("metadata") or {}
        version = meta.get("resourceVersion")
        if not version:
            return None
        return (str(meta.get("namespace", "")), str(meta.get("name", "")), str(version))

    def service_ports(self, service: Object) -> list[ServicePort]:
        key = self._version_key(service)
        if key is None:
            return service_ports(service)
        self._used[0].add(key)
        found = self._ports.get(key)
        if found is None:
            found = self._ports[key] = service_ports(service)
        return found

    def slice_endpoints(self, endpoint_slice: Object) -> EndpointsMap:
        key = self._version_key(endpoint_slice)
        if key is None:
            return endpoints_map([endpoint_slice])
        self._used[1].add(key)
        found = self._slices.get(key)
        if found is None:
            found = self._slices[key] = endpoints_map([endpoint_slice])
        return found

    def port_rules(
        self, writer: _Writer, service_port: ServicePort, endpoints: list[Endpoint]
    ) -> list[Operation]:
        key = (
            service_port,
            tuple(endpoints),
            writer.node,
            writer.detector.cidr,
            writer.large_cluster,
            writer.options,
        )
        self._used[2].add(key)
        found = self._rules.get(key)
        if found is None:
            found = self._rules[key] = _port_operations(writer, service_port, endpoints)
        return found

    def sweep(self) -> None:
        """Forget what the render that just finished did not use."""
        stores: tuple[dict[Any, Any], ...] = (self._ports, self._slices, self._rules)
        for store, used in zip(stores, self._used, strict=True):
            for key in [k for k in store if k not in used]:
                del store[key]
            used.clear()


def _merge_endpoints(maps: Iterable[EndpointsMap]) -> EndpointsMap:
    """Several slices' endpoints merged as `endpoints_map` merges them."""
    merged: dict[tuple[str, str, str, str], dict[str, Endpoint]] = {}
    for found in maps:
        for key, endpoints in found.items():
            by_address = merged.setdefault(key, {})
            for endpoint in endpoints:
                known = by_address.get(endpoint.address)
                if known is None or _endpoint_rank(endpoint) > _endpoint_rank(known):
                    by_address[endpoint.address] = endpoint
    return {key: sorted(found.values(), key=lambda e: e.address) for key, found in merged.items()}


def _port_operations(
    writer: _Writer, service_port: ServicePort, endpoints: list[Endpoint]
) -> list[Operation]:
    part = _Writer(
        options=writer.options,
        node=writer.node,
        detector=writer.detector,
        large_cluster=writer.large_cluster,
    )
    _write_service_port(part, service_port, endpoints)
    return part.operations


@dataclass(frozen=True)
class ProxyInputs:
    """What the rules are made of: the proxied Service ports, sorted, and their endpoints."""

    ports: list[ServicePort]
    endpoints: EndpointsMap


def collect_inputs(
    services: Iterable[Object],
    endpoint_slices: Iterable[Object],
    *,
    cache: RenderCache | None = None,
) -> ProxyInputs:
    cache = cache or RenderCache()
    ports = sorted(
        (p for service in services for p in cache.service_ports(service)),
        key=lambda p: (p.namespace, p.name, p.port_name, p.protocol),
    )
    return ProxyInputs(ports, _merge_endpoints(cache.slice_endpoints(s) for s in endpoint_slices))


def render_inputs(
    inputs: ProxyInputs,
    node: NodeView,
    options: ProxyOptions | None = None,
    *,
    cache: RenderCache | None = None,
) -> Ruleset:
    options = options or ProxyOptions()
    cache = cache or RenderCache()
    ports, by_port = inputs.ports, inputs.endpoints
    total_endpoints = sum(len(by_port.get(p.key, ())) for p in ports)
    ruleset = Ruleset()
    _declare_top_level(ruleset, options)
    writer = _Writer(
        options=options,
        node=node,
        detector=_local_detector(node, options),
        large_cluster=total_endpoints > LARGE_CLUSTER_ENDPOINTS,
    )
    _write_fixed_rules(writer)
    _replay(ruleset, writer.operations)
    for service_port in ports:
        _replay(ruleset, cache.port_rules(writer, service_port, by_port.get(service_port.key, [])))
    tail = _Writer(options=options, node=node, detector=writer.detector, large_cluster=False)
    _write_tail(tail)
    _replay(ruleset, tail.operations)
    cache.sweep()
    return ruleset


def render_rules(
    services: Iterable[Object],
    endpoint_slices: Iterable[Object],
    node: NodeView,
    options: ProxyOptions | None = None,
    *,
    cache: RenderCache | None = None,
) -> Ruleset:
    """The node's whole proxy ruleset for these Services and EndpointSlices."""
    cache = cache or RenderCache()
    inputs = collect_inputs(services, endpoint_slices, cache=cache)
    return render_inputs(inputs, node, options, cache=cache)


def _write_tail(writer: _Writer) -> None:
    options = writer.options
    destinations = "-m addrtype --dst-type LOCAL"
    if not options.localhost_node_ports:
        destinations += " ! -d 127.0.0.0/8"
    writer.nat(SERVICES_CHAIN, comment(NODEPORTS_COMMENT), destinations, f"-j {NODEPORTS_CHAIN}")
    mark = options.masquerade_mark
    if not options.conntrack_tcp_be_liberal:
        writer.filter(FORWARD_CHAIN, "-m conntrack --ctstate INVALID", "-j DROP")
    writer.filter(
        FORWARD_CHAIN,
        comment("kubernetes forwarding rules"),
        f"-m mark --mark {mark}/{mark}",
        "-j ACCEPT",
    )
    writer.filter(
        FORWARD_CHAIN,
        comment("kubernetes forwarding conntrack rule"),
        "-m conntrack --ctstate RELATED,ESTABLISHED",
        "-j ACCEPT",
    )
