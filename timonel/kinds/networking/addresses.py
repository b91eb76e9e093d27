"""IP addresses and CIDRs as Kubernetes validation reads them.

kube-apiserver parses addresses "sloppily" (k8s.io/utils/net ParseIPSloppy): IPv4 octets
may carry leading zeros, which Python's ipaddress rejects. These helpers accept what the
API server accepts and word the problems as apimachinery does.
"""

from __future__ import annotations

import ipaddress

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def _without_leading_zeros(value: str) -> str:
    """ "010.001.0.1" → "10.1.0.1"; anything that is not dotted IPv4 is returned as is."""
    parts = value.split(".")
    if len(parts) != 4 or not all(p.isdigit() and p.isascii() for p in parts):
        return value
    return ".".join(str(int(p)) for p in parts)


def parse_ip_sloppy(value: str) -> IPAddress | None:
    if not isinstance(value, str) or not value or "%" in value:
        return None
    try:
        return ipaddress.ip_address(_without_leading_zeros(value))
    except ValueError:
        return None


def parse_cidr_sloppy(value: str) -> IPNetwork | None:
    """A CIDR with host bits allowed ("10.0.0.1/24" is 10.0.0.0/24), as Go's ParseCIDR."""
    if not isinstance(value, str) or "/" not in value:
        return None
    address, _, prefix = value.partition("/")
    if not prefix.isdigit() or (len(prefix) > 1 and prefix.startswith("0")):
        return None
    try:
        return ipaddress.ip_network(f"{_without_leading_zeros(address)}/{prefix}", strict=False)
    except ValueError:
        return None


def is_ipv4(value: str) -> bool:
    """Go's `ip.To4() != nil`: IPv4, or an IPv4-mapped IPv6 address."""
    ip = parse_ip_sloppy(value)
    if isinstance(ip, ipaddress.IPv4Address):
        return True
    return isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None


def ip_problems(value: str) -> list[str]:
    """validation.IsValidIP."""
    if parse_ip_sloppy(value) is None:
        return ["must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"]
    return []


def ipv4_problems(value: str) -> list[str]:
    if parse_ip_sloppy(value) is None or not is_ipv4(value):
        return ["must be a valid IPv4 address"]
    return []


def ipv6_problems(value: str) -> list[str]:
    if parse_ip_sloppy(value) is None or is_ipv4(value):
        return ["must be a valid IPv6 address"]
    return []


def endpoint_ip_problems(value: str) -> list[str]:
    """core validation.ValidateEndpointIP: addresses that make no sense as a destination."""
    ip = parse_ip_sloppy(value)
    if ip is None:
        return ["must be a valid IP address"]
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    problems = []
    if ip.is_unspecified:
        problems.append(f"may not be unspecified ({value})")
    if ip.is_loopback:
        problems.append("may not be in the loopback range (127.0.0.0/8, ::1/128)")
    if ip.is_link_local and not ip.is_multicast:
        problems.append("may not be in the link-local range (169.254.0.0/16, fe80::/10)")
    if _is_link_local_multicast(ip):
        problems.append("may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)")
    return problems


def _is_link_local_multicast(ip: IPAddress) -> bool:
    if isinstance(ip, ipaddress.IPv4Address):
        return ip in ipaddress.IPv4Network("224.0.0.0/24")
    # Go: multicast with link-local scope (ff02::/16, any flags nibble: ffX2::).
    return ip.packed[0] == 0xFF and ip.packed[1] & 0x0F == 0x02
