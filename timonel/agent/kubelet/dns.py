"""A pod's resolver configuration and its /etc/hosts, as kubelet writes them (pure).

DNS follows the pod's dnsPolicy: `ClusterFirst` uses the cluster DNS server with the
search path `<ns>.svc.<domain> svc.<domain> <domain>` plus the host's, and `ndots:5`
(a hostNetwork pod falls back to the host's resolver unless it asks for
`ClusterFirstWithHostNet`); `Default` uses the host's resolv.conf; `None` uses only
`dnsConfig`. `dnsConfig` is then merged in: nameservers and searches appended (without
duplicates), options merged by name. At most 3 nameservers and 32 search domains.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from timonel.api.objects import Object

MAX_NAMESERVERS: Final = 3
MAX_SEARCHES: Final = 32
MAX_SEARCH_LINE: Final = 2048
MAX_SEARCH_DOMAIN: Final = 253
MAX_HOSTNAME: Final = 63
CLUSTER_FIRST_OPTIONS: Final = ("ndots:5",)

HOSTS_HEADER: Final = "# Kubernetes-managed hosts file.\n"
HOSTS_HEADER_HOST_NETWORK: Final = "# Kubernetes-managed hosts file (host network).\n"
HOSTS_DEFAULTS: Final = (
    "127.0.0.1\tlocalhost\n"
    "::1\tlocalhost ip6-localhost ip6-loopback\n"
    "fe00::0\tip6-localnet\n"
    "fe00::0\tip6-mcastprefix\n"
    "fe00::1\tip6-allnodes\n"
    "fe00::2\tip6-allrouters\n"
)


@dataclass(frozen=True)
class ResolvConf:
    nameservers: tuple[str, ...] = ()
    searches: tuple[str, ...] = ()
    options: tuple[str, ...] = ()


@dataclass(frozen=True)
class DnsConfig:
    servers: tuple[str, ...] = ()
    searches: tuple[str, ...] = ()
    options: tuple[str, ...] = ()


@dataclass(frozen=True)
class ClusterDns:
    servers: tuple[str, ...] = ()
    domain: str = "cluster.local"
    host: ResolvConf = field(default_factory=ResolvConf)


def parse_resolv_conf(text: str) -> ResolvConf:
    """As kubelet reads it: nameservers accumulate, the last `search` line wins (trailing
    dots dropped, "." ignored), options merge by name (the last wins); `domain` lines are
    ignored."""
    nameservers: list[str] = []
    searches: list[str] = []
    options: list[str] = []
    for line in text.splitlines():
        words = line.split("#", 1)[0].split(";", 1)[0].split()
        if not words:
            continue
        if words[0] == "nameserver" and len(words) > 1:
            nameservers.append(words[1])
        elif words[0] == "search":
            searches = [s.removesuffix(".") for s in words[1:] if s != "."]
        elif words[0] == "options":
            options = _merge_options(options, [_option(word) for word in words[1:]])
    return ResolvConf(tuple(nameservers), tuple(searches), tuple(options))


def _option(text: str) -> dict[str, str]:
    name, _, value = text.partition(":")
    return {"name": name, "value": value} if value else {"name": name}


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _unique(values: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(v for v in values if v))


def _merge_options(existing: Sequence[str], extra: Sequence[Any]) -> list[str]:
    merged: dict[str, str] = {}
    for text in existing:
        merged[text.split(":", 1)[0]] = text
    for entry in extra:
        option = _dict(entry)
        name = str(option.get("name", ""))
        if not name:
            continue
        value = option.get("value")
        merged[name] = f"{name}:{value}" if value else name
    return list(merged.values())


def effective_dns_policy(pod: Object, cluster: ClusterDns) -> str:
    """ "ClusterFirst", "Default" or "None": what the pod's dnsPolicy amounts to here."""
    spec = _dict(pod.get("spec"))
    policy = spec.get("dnsPolicy") or "ClusterFirst"
    if policy == "ClusterFirstWithHostNet":
        policy = "ClusterFirst"
    elif policy == "ClusterFirst" and spec.get("hostNetwork"):
        policy = "Default"
    if policy == "ClusterFirst" and not cluster.servers:
        policy = "Default"
    return str(policy)


def pod_dns_config(pod: Object, cluster: ClusterDns) -> DnsConfig:
    spec = _dict(pod.get("spec"))
    namespace = str(_dict(pod.get("metadata")).get("namespace", ""))
    policy = effective_dns_policy(pod, cluster)
    if policy == "ClusterFirst":
        domain = cluster.domain
        servers = list(cluster.servers)
        cluster_searches = [f"{namespace}.svc.{domain}", f"svc.{domain}", domain] if domain else []
        searches = [*cluster_searches, *cluster.host.searches]
        options = list(CLUSTER_FIRST_OPTIONS)
    elif policy == "None":
        servers, searches, options = [], [], []
    else:
        servers = list(cluster.host.nameservers)
        searches = list(cluster.host.searches)
        options = list(cluster.host.options)
    extra = _dict(spec.get("dnsConfig"))
    servers = _unique([*servers, *[str(s) for s in extra.get("nameservers") or []]])
    searches = _unique([*searches, *[str(s) for s in extra.get("searches") or []]])
    options = _merge_options(options, extra.get("options") or [])
    # glibc aborts on a search domain longer than a DNS name (kubelet drops them).
    searches = [s for s in searches[:MAX_SEARCHES] if len(s) <= MAX_SEARCH_DOMAIN]
    while searches and len(" ".join(searches)) > MAX_SEARCH_LINE:
        searches.pop()
    return DnsConfig(tuple(servers[:MAX_NAMESERVERS]), tuple(searches), tuple(options))


# -- hostname and /etc/hosts --------------------------------------------------------------


def pod_hostname(pod: Object, cluster_domain: str) -> tuple[str, str]:
    """(hostname, host domain): spec.hostname or the pod name (cut to 63 characters), and
    `<subdomain>.<ns>.svc.<domain>` when spec.subdomain is set."""
    meta = _dict(pod.get("metadata"))
    spec = _dict(pod.get("spec"))
    hostname = str(spec.get("hostname") or meta.get("name", ""))[:MAX_HOSTNAME].rstrip("-.")
    domain = ""
    if spec.get("subdomain"):
        domain = f"{spec['subdomain']}.{meta.get('namespace', '')}.svc.{cluster_domain}"
    return hostname, domain


def sandbox_hostname(pod: Object, cluster_domain: str) -> str:
    """The UTS hostname: empty for hostNetwork pods (they keep the node's), the FQDN when
    setHostnameAsFQDN asks for it."""
    spec = _dict(pod.get("spec"))
    if spec.get("hostNetwork"):
        return ""
    hostname, domain = pod_hostname(pod, cluster_domain)
    if spec.get("setHostnameAsFQDN") and domain:
        return f"{hostname}.{domain}"
    return hostname


def _host_aliases(pod: Object) -> str:
    lines = []
    for alias in _dict(pod.get("spec")).get("hostAliases") or []:
        alias = _dict(alias)
        names = [str(n) for n in alias.get("hostnames") or []]
        if alias.get("ip") and names:
            lines.append(f"{alias['ip']}\t{chr(9).join(names)}\n")
    if not lines:
        return ""
    return "\n# Entries added by HostAliases.\n" + "".join(lines)


def hosts_file(pod: Object, pod_ips: Sequence[str], cluster_domain: str) -> str:
    """The pod's /etc/hosts: localhost entries, the pod's own name on each of its
    addresses, then spec.hostAliases."""
    hostname, domain = pod_hostname(pod, cluster_domain)
    lines = [HOSTS_HEADER, HOSTS_DEFAULTS]
    for ip in pod_ips:
        if domain:
            lines.append(f"{ip}\t{hostname}.{domain}\t{hostname}\n")
        else:
            lines.append(f"{ip}\t{hostname}\n")
    return "".join(lines) + _host_aliases(pod)


def host_network_hosts_file(pod: Object, host_hosts: str) -> str:
    """A hostNetwork pod's /etc/hosts: the node's, plus spec.hostAliases."""
    if not host_hosts.endswith("\n") and host_hosts:
        host_hosts += "\n"
    return HOSTS_HEADER_HOST_NETWORK + host_hosts + _host_aliases(pod)
