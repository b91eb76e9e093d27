"""The cluster's DNS records, as the Kubernetes DNS specification and CoreDNS's
`kubernetes` plugin (`pods insecure`, TTL 5) give them (pure: no I/O, no clock).

`ClusterIndex` holds what answers need from Services, EndpointSlices and Namespaces,
updated object by object from informers; `lookup(index, zone, name, type)` answers one
question. Under the cluster domain (`cluster.local`):

- `<svc>.<ns>.svc`: A/AAAA with the Service's cluster IPs; for a headless Service, the
  addresses of its ready endpoints (NXDOMAIN when there is none); for an ExternalName
  Service, a CNAME to the external name (its records are the upstream resolvers' to give:
  `Answer.chase`).
- `<hostname>.<svc>.<ns>.svc`: the endpoints of `<svc>` with that hostname: the
  endpoint's `hostname` (a pod's `spec.hostname` when its `spec.subdomain` names the
  Service) or else its address with dashes (`10-42-0-5`).
- `_<port>._<proto>.<svc>.<ns>.svc` SRV: priority 0, weight 100/N, the port, and the
  Service's name (or, headless, each endpoint's name), whose addresses go in the
  additional section. `<svc>.<ns>.svc` SRV lists every port.
- `<a>-<b>-<c>-<d>.<ns>.pod` A: that address, without checking a pod has it (IPv6: the
  address with `-` for `:`).
- `dns-version` TXT "1.1.0"; the zone's SOA and NS (`ns.dns.<zone>`, the cluster DNS
  addresses); `svc`, `<ns>.svc`, `pod`, `<ns>.pod` exist without records.
- Reverse names (`in-addr.arpa`, `ip6.arpa`) PTR: a Service's cluster IP names the
  Service; a ready endpoint's address names `<hostname>.<svc>.<ns>.svc`.

Names in a namespace that does not exist, and anything else under the zone, are
NXDOMAIN; a name that exists without records of the type asked is NODATA (NOERROR, no
answer); both carry the zone's SOA. Names outside the zone, and reverse names the
cluster does not know, are the upstream resolvers' (`Answer.forward`). Comparisons
ignore case; answers carry the question's spelling.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final

from timonel.agent.dns.wire import (
    RCODE_NOERROR,
    RCODE_NXDOMAIN,
    TYPE_A,
    TYPE_AAAA,
    TYPE_ANY,
    TYPE_CNAME,
    TYPE_NS,
    TYPE_PTR,
    TYPE_SOA,
    TYPE_SRV,
    TYPE_TXT,
    Record,
    Soa,
    Srv,
)
from timonel.api.objects import Object

DEFAULT_TTL: Final = 5
SCHEMA_VERSION: Final = "1.1.0"
SCHEMA_VERSION_TTL: Final = 28800
SERVICE_NAME_LABEL: Final = "kubernetes.io/service-name"
SOA_REFRESH: Final = 7200
SOA_RETRY: Final = 1800
SOA_EXPIRE: Final = 86400
MAX_CNAME_CHAIN: Final = 8
REVERSE_V4: Final = "in-addr.arpa"
REVERSE_V6: Final = "ip6.arpa"


@dataclass(frozen=True)
class Zone:
    domain: str = "cluster.local"
    ttl: int = DEFAULT_TTL
    nameservers: tuple[str, ...] = ("10.43.0.10",)
    """The cluster DNS Service's addresses: `ns.dns.<domain>`."""


@dataclass(frozen=True, slots=True)
class Port:
    name: str
    protocol: str
    port: int


NO_PORT: Final = Port("", "", -1)
"""What an EndpointSlice without ports contributes: addresses, no SRV records."""


@dataclass(frozen=True, slots=True)
class ServiceEntry:
    namespace: str
    name: str
    cluster_ips: tuple[str, ...] = ()
    headless: bool = False
    external_name: str = ""
    ports: tuple[Port, ...] = ()


@dataclass(frozen=True, slots=True)
class EndpointEntry:
    addresses: tuple[str, ...]
    hostname: str = ""


@dataclass(frozen=True, slots=True)
class SliceEntry:
    namespace: str
    name: str
    service: str
    ports: tuple[Port, ...] = ()
    endpoints: tuple[EndpointEntry, ...] = ()
    """Ready endpoints only."""


@dataclass(frozen=True, slots=True)
class Answer:
    rcode: int = RCODE_NOERROR
    answers: tuple[Record, ...] = ()
    authorities: tuple[Record, ...] = ()
    additionals: tuple[Record, ...] = ()
    forward: bool = False
    """Not the cluster's name: the upstream resolvers answer the question as asked."""
    chase: str = ""
    """The answers end in a CNAME to this name outside the cluster: the upstream
    resolvers' records for it (same type) follow."""


FORWARD: Final = Answer(forward=True)


# -- objects → entries -------------------------------------------------------------------


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def normal_address(text: str) -> str | None:
    """An IP address in its canonical text form, or None if `text` is not one."""
    try:
        return ipaddress.ip_address(text).compressed
    except ValueError:
        return None


def _ports(items: Any) -> tuple[Port, ...]:
    ports = []
    for item in items or ():
        item = _dict(item)
        number = item.get("port")
        ports.append(
            Port(
                str(item.get("name") or "").lower(),
                str(item.get("protocol") or "TCP").lower(),
                int(number) if isinstance(number, int) else -1,
            )
        )
    return tuple(ports)


def service_entry(service: Object) -> ServiceEntry:
    meta = _dict(service.get("metadata"))
    spec = _dict(service.get("spec"))
    namespace, name = str(meta.get("namespace", "")), str(meta.get("name", ""))
    if spec.get("type") == "ExternalName":
        return ServiceEntry(namespace, name, external_name=str(spec.get("externalName") or ""))
    ips = [str(ip) for ip in spec.get("clusterIPs") or [spec.get("clusterIP") or ""] if ip]
    if ips and ips[0] == "None":
        return ServiceEntry(namespace, name, headless=True, ports=_ports(spec.get("ports")))
    addresses = tuple(a for a in (normal_address(ip) for ip in ips) if a is not None)
    return ServiceEntry(namespace, name, cluster_ips=addresses, ports=_ports(spec.get("ports")))


def slice_entry(endpoint_slice: Object) -> SliceEntry | None:
    """The ready endpoints of an IPv4 or IPv6 EndpointSlice of a Service (None for FQDN
    slices and slices of no Service)."""
    meta = _dict(endpoint_slice.get("metadata"))
    service = str(_dict(meta.get("labels")).get(SERVICE_NAME_LABEL) or "")
    if not service or endpoint_slice.get("addressType") not in ("IPv4", "IPv6"):
        return None
    endpoints = []
    for item in endpoint_slice.get("endpoints") or ():
        item = _dict(item)
        if _dict(item.get("conditions")).get("ready") is False:
            continue
        addresses = tuple(
            a for a in (normal_address(str(x)) for x in item.get("addresses") or ()) if a
        )
        if addresses:
            endpoints.append(EndpointEntry(addresses, str(item.get("hostname") or "").lower()))
    return SliceEntry(
        namespace=str(meta.get("namespace", "")),
        name=str(meta.get("name", "")),
        service=service,
        ports=_ports(endpoint_slice.get("ports")),
        endpoints=tuple(endpoints),
    )


def _object_name(obj: Object) -> tuple[str, str]:
    meta = _dict(obj.get("metadata"))
    return str(meta.get("namespace", "")), str(meta.get("name", ""))


# -- the index ---------------------------------------------------------------------------

ServiceKey = tuple[str, str]  # (namespace, service name)
SliceKey = tuple[str, str]  # (namespace, slice name)


@dataclass
class ClusterIndex:
    """Services, EndpointSlices and Namespaces as lookups need them. `generation` grows
    with every change; `serial` is the zone's SOA serial (set by the owner)."""

    services: dict[ServiceKey, ServiceEntry] = field(default_factory=dict)
    slices: dict[ServiceKey, dict[str, SliceEntry]] = field(default_factory=dict)
    namespaces: set[str] = field(default_factory=set)
    serial: int = 1
    generation: int = 0
    _slice_service: dict[SliceKey, ServiceKey] = field(default_factory=dict)
    _service_ips: dict[str, set[ServiceKey]] = field(default_factory=dict)
    _endpoint_ips: dict[str, set[SliceKey]] = field(default_factory=dict)

    # Services

    def put_service(self, service: Object) -> None:
        entry = service_entry(service)
        key = (entry.namespace, entry.name)
        self._forget_service(key)
        self.services[key] = entry
        for ip in entry.cluster_ips:
            self._service_ips.setdefault(ip, set()).add(key)
        self.generation += 1

    def delete_service(self, service: Object) -> None:
        self._forget_service(_object_name(service))
        self.generation += 1

    def _forget_service(self, key: ServiceKey) -> None:
        old = self.services.pop(key, None)
        if old is not None:
            for ip in old.cluster_ips:
                _discard(self._service_ips, ip, key)

    # EndpointSlices

    def put_slice(self, endpoint_slice: Object) -> None:
        key = _object_name(endpoint_slice)
        self._forget_slice(key)
        entry = slice_entry(endpoint_slice)
        if entry is not None:
            owner = (entry.namespace, entry.service)
            self.slices.setdefault(owner, {})[entry.name] = entry
            self._slice_service[key] = owner
            for endpoint in entry.endpoints:
                for address in endpoint.addresses:
                    self._endpoint_ips.setdefault(address, set()).add(key)
        self.generation += 1

    def delete_slice(self, endpoint_slice: Object) -> None:
        self._forget_slice(_object_name(endpoint_slice))
        self.generation += 1

    def _forget_slice(self, key: SliceKey) -> None:
        owner = self._slice_service.pop(key, None)
        if owner is None:
            return
        by_name = self.slices.get(owner, {})
        old = by_name.pop(key[1], None)
        if not by_name:
            self.slices.pop(owner, None)
        if old is not None:
            for endpoint in old.endpoints:
                for address in endpoint.addresses:
                    _discard(self._endpoint_ips, address, key)

    # Namespaces

    def put_namespace(self, namespace: Object) -> None:
        self.namespaces.add(_object_name(namespace)[1])
        self.generation += 1

    def delete_namespace(self, namespace: Object) -> None:
        self.namespaces.discard(_object_name(namespace)[1])
        self.generation += 1

    # reverse lookups

    def services_with_ip(self, address: str) -> list[ServiceEntry]:
        return [self.services[key] for key in sorted(self._service_ips.get(address, ()))]

    def slices_with_ip(self, address: str) -> list[SliceEntry]:
        found = []
        for key in sorted(self._endpoint_ips.get(address, ())):
            owner = self._slice_service.get(key)
            entry = self.slices.get(owner, {}).get(key[1]) if owner else None
            if entry is not None:
                found.append(entry)
        return found


def _discard(index: dict[str, set[Any]], value: str, key: Any) -> None:
    keys = index.get(value)
    if keys is not None:
        keys.discard(key)
        if not keys:
            del index[value]


def build_index(
    services: Iterable[Object] = (),
    endpoint_slices: Iterable[Object] = (),
    namespaces: Iterable[Object] = (),
) -> ClusterIndex:
    index = ClusterIndex()
    for namespace in namespaces:
        index.put_namespace(namespace)
    for service in services:
        index.put_service(service)
    for endpoint_slice in endpoint_slices:
        index.put_slice(endpoint_slice)
    return index


# -- lookups -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Target:
    """One address (or CNAME) a service name stands for, with the port and the name an
    SRV record would point at."""

    address: str
    port: int
    name: str
    cname: str = ""


def lookup(index: ClusterIndex, zone: Zone, qname: str, qtype: int) -> Answer:
    """The answer to `qname qtype` (class IN); see the module's docstring."""
    return _lookup(index, zone, qname.removesuffix("."), qtype, depth=0)


def _lookup(index: ClusterIndex, zone: Zone, qname: str, qtype: int, depth: int) -> Answer:
    name = qname.rstrip(".").lower()
    if name.endswith(REVERSE_V4) or name.endswith(REVERSE_V6):
        return _reverse(index, zone, qname, name, qtype)
    domain = zone.domain.rstrip(".").lower()
    if name == domain:
        return _apex(index, zone, qname, qtype)
    if not name.endswith("." + domain):
        return FORWARD
    labels = name[: -len(domain) - 1].split(".")
    return _in_zone(index, zone, qname, labels, qtype, depth)


def _soa(index: ClusterIndex, zone: Zone) -> Record:
    domain = zone.domain.rstrip(".").lower()
    return Record(
        domain,
        TYPE_SOA,
        min(zone.ttl, 300),
        Soa(
            mname=f"ns.dns.{domain}",
            rname=f"hostmaster.{domain}",
            serial=index.serial,
            refresh=SOA_REFRESH,
            retry=SOA_RETRY,
            expire=SOA_EXPIRE,
            minimum=zone.ttl,
        ),
    )


def _negative(index: ClusterIndex, zone: Zone, rcode: int) -> Answer:
    return Answer(rcode=rcode, authorities=(_soa(index, zone),))


def _nodata(index: ClusterIndex, zone: Zone) -> Answer:
    return _negative(index, zone, RCODE_NOERROR)


def _nxdomain(index: ClusterIndex, zone: Zone) -> Answer:
    return _negative(index, zone, RCODE_NXDOMAIN)


def _positive(
    index: ClusterIndex,
    zone: Zone,
    answers: list[Record],
    additionals: Iterable[Record] = (),
) -> Answer:
    if not answers:
        return _nodata(index, zone)
    return Answer(answers=tuple(answers), additionals=tuple(additionals))


def _address_records(owner: str, addresses: Iterable[str], qtype: int, ttl: int) -> list[Record]:
    """A and/or AAAA records (as `qtype` asks; ANY: both) for distinct addresses."""
    records = []
    seen = set()
    for address in addresses:
        if address in seen:
            continue
        seen.add(address)
        rtype = TYPE_AAAA if ":" in address else TYPE_A
        if qtype in (rtype, TYPE_ANY):
            records.append(Record(owner, rtype, ttl, address))
    return records


def _apex(index: ClusterIndex, zone: Zone, qname: str, qtype: int) -> Answer:
    domain = zone.domain.rstrip(".").lower()
    if qtype == TYPE_SOA:
        soa = _soa(index, zone)
        return Answer(answers=(Record(qname, TYPE_SOA, soa.ttl, soa.data),))
    if qtype == TYPE_NS:
        nameserver = f"ns.dns.{domain}"
        glue = _address_records(nameserver, zone.nameservers, TYPE_ANY, zone.ttl)
        return _positive(index, zone, [Record(qname, TYPE_NS, zone.ttl, nameserver)], glue)
    return _nodata(index, zone)


def _in_zone(
    index: ClusterIndex, zone: Zone, qname: str, labels: list[str], qtype: int, depth: int
) -> Answer:
    if labels == ["dns-version"]:
        if qtype != TYPE_TXT:
            return _nodata(index, zone)
        text = (SCHEMA_VERSION.encode(),)
        return Answer(answers=(Record(qname, TYPE_TXT, SCHEMA_VERSION_TTL, text),))
    if labels == ["ns", "dns"]:
        return _positive(index, zone, _address_records(qname, zone.nameservers, qtype, zone.ttl))
    if labels == ["dns"]:
        return _nodata(index, zone)
    kind = labels[-1]
    if kind not in ("svc", "pod"):
        return _nxdomain(index, zone)
    if len(labels) == 1:
        return _nodata(index, zone)
    namespace = labels[-2]
    if namespace not in index.namespaces:
        return _nxdomain(index, zone)
    if len(labels) == 2:
        return _nodata(index, zone)
    if kind == "pod":
        return _pod(index, zone, qname, labels, qtype)
    rest = labels[:-2]
    endpoint = port = protocol = ""
    if len(rest) == 2:
        endpoint = rest[0]
    elif len(rest) == 3:
        port, protocol = rest[0].removeprefix("_"), rest[1].removeprefix("_")
    elif len(rest) > 3:
        return _nxdomain(index, zone)
    targets = _service_targets(index, zone, namespace, rest[-1], endpoint, port, protocol)
    if targets is None:
        return _nxdomain(index, zone)
    if targets and targets[0].cname:
        return _cname(index, zone, qname, targets[0].cname, qtype, depth)
    if qtype == TYPE_SRV:
        return _srv(index, zone, qname, targets)
    addresses = (target.address for target in targets)
    return _positive(index, zone, _address_records(qname, addresses, qtype, zone.ttl))


def _pod(index: ClusterIndex, zone: Zone, qname: str, labels: list[str], qtype: int) -> Answer:
    if len(labels) != 3:
        return _nxdomain(index, zone)
    dashed = labels[0]
    if dashed.count("-") == 3 and "--" not in dashed:
        text = dashed.replace("-", ".")
    else:
        text = dashed.replace("-", ":")
    address = normal_address(text)
    if address is None:
        return _nxdomain(index, zone)
    return _positive(index, zone, _address_records(qname, [address], qtype, zone.ttl))


def _port_matches(port: str, protocol: str, candidate: Port) -> bool:
    return (not port or port == candidate.name) and (not protocol or protocol == candidate.protocol)


def endpoint_hostname(endpoint: EndpointEntry, address: str) -> str:
    """An endpoint's name within its Service: its hostname, else its address with
    dashes."""
    return endpoint.hostname or address.replace(".", "-").replace(":", "-")


def _service_targets(
    index: ClusterIndex,
    zone: Zone,
    namespace: str,
    service: str,
    endpoint: str,
    port: str,
    protocol: str,
) -> list[_Target] | None:
    """What `[endpoint.|_port._proto.]service.namespace.svc` stands for; None when the
    name does not exist."""
    entry = index.services.get((namespace, service))
    if entry is None:
        return None
    domain = zone.domain.rstrip(".").lower()
    service_name = f"{service}.{namespace}.svc.{domain}"
    if entry.external_name:
        target = entry.external_name.rstrip(".")
        if endpoint or port or protocol or not target or normal_address(target) is not None:
            return None
        return [_Target("", -1, service_name, cname=target)]
    targets = []
    if entry.headless or endpoint:
        for endpoint_slice in index.slices.get((namespace, service), {}).values():
            for ready in endpoint_slice.endpoints:
                for address in ready.addresses:
                    hostname = endpoint_hostname(ready, address)
                    if endpoint and hostname != endpoint:
                        continue
                    for candidate in endpoint_slice.ports or (NO_PORT,):
                        if _port_matches(port, protocol, candidate):
                            name = f"{hostname}.{service_name}"
                            targets.append(_Target(address, candidate.port, name))
        return targets or None
    matched = False
    for candidate in entry.ports:
        if _port_matches(port, protocol, candidate):
            matched = True
            targets += [_Target(ip, candidate.port, service_name) for ip in entry.cluster_ips]
    return targets if matched else None


def _srv(index: ClusterIndex, zone: Zone, qname: str, targets: list[_Target]) -> Answer:
    # CoreDNS's weights: 100 shared by every record of the same priority (all 0 here).
    weight = max(1, 100 // len(targets)) if targets else 0
    answers: list[Record] = []
    additionals: list[Record] = []
    seen_srv: set[tuple[str, int]] = set()
    seen_address: set[tuple[str, str]] = set()
    for target in targets:
        if target.port < 0:
            continue
        if (target.name, target.port) not in seen_srv:
            seen_srv.add((target.name, target.port))
            data = Srv(priority=0, weight=weight, port=target.port, target=target.name)
            answers.append(Record(qname, TYPE_SRV, zone.ttl, data))
        if (target.name, target.address) not in seen_address:
            seen_address.add((target.name, target.address))
            additionals += _address_records(target.name, [target.address], TYPE_ANY, zone.ttl)
    return _positive(index, zone, answers, additionals)


def _cname(
    index: ClusterIndex, zone: Zone, qname: str, target: str, qtype: int, depth: int
) -> Answer:
    if qtype == TYPE_SRV:
        return _nodata(index, zone)
    record = Record(qname, TYPE_CNAME, zone.ttl, target)
    if qtype == TYPE_CNAME:
        return Answer(answers=(record,))
    if depth >= MAX_CNAME_CHAIN:
        return Answer(answers=(record,))
    then = _lookup(index, zone, target, qtype, depth + 1)
    if then.forward:
        return Answer(answers=(record,), chase=target)
    return Answer(
        rcode=then.rcode,
        answers=(record, *then.answers),
        authorities=then.authorities,
        additionals=then.additionals,
        chase=then.chase,
    )


def _reverse_address(name: str) -> str | None:
    """The address a full reverse name (`4.3.2.1.in-addr.arpa`, 32 nibbles under
    `ip6.arpa`) stands for."""
    if name.endswith("." + REVERSE_V4):
        parts = name[: -len(REVERSE_V4) - 1].split(".")
        if len(parts) != 4:
            return None
        return normal_address(".".join(reversed(parts)))
    if name.endswith("." + REVERSE_V6):
        nibbles = name[: -len(REVERSE_V6) - 1].split(".")
        if len(nibbles) != 32 or any(len(n) != 1 for n in nibbles):
            return None
        digits = "".join(reversed(nibbles))
        return normal_address(":".join(digits[i : i + 4] for i in range(0, 32, 4)))
    return None


def _reverse(index: ClusterIndex, zone: Zone, qname: str, name: str, qtype: int) -> Answer:
    address = _reverse_address(name) if qtype == TYPE_PTR else None
    if address is None:
        return FORWARD
    domain = zone.domain.rstrip(".").lower()
    for service in index.services_with_ip(address):
        target = f"{service.name}.{service.namespace}.svc.{domain}"
        return Answer(answers=(Record(qname, TYPE_PTR, zone.ttl, target),))
    answers = []
    for endpoint_slice in index.slices_with_ip(address):
        for endpoint in endpoint_slice.endpoints:
            if address in endpoint.addresses:
                hostname = endpoint_hostname(endpoint, address)
                target = (
                    f"{hostname}.{endpoint_slice.service}.{endpoint_slice.namespace}.svc.{domain}"
                )
                answers.append(Record(qname, TYPE_PTR, zone.ttl, target))
    if not answers:
        return FORWARD
    return Answer(answers=tuple(dict.fromkeys(answers)))
