"""Stale conntrack entries of UDP and SCTP Services.

A UDP "connection" is a conntrack entry; NAT rules apply to its first packet only. When an
endpoint goes away, a client that keeps sending from the same socket keeps being DNATed to
the old endpoint until the entry times out, whatever the new rules say. kube-proxy deletes
those entries after a sync (pkg/proxy/conntrack/cleanup.go); so does the proxy here:

- pure: `service_frontends` lists where each UDP/SCTP Service port is reached (cluster IP,
  external IPs, load balancer IPs, NodePort on the node's addresses) and the endpoints it
  may be sent to; `stale_flows` picks the entries whose original destination is such a
  frontend and whose reply comes from anything but one of those endpoints;
- I/O: `Conntrack` dumps and deletes entries over ctnetlink (AF_NETLINK, NETLINK_NETFILTER)
  in the proxy's network namespace.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import logging
import os
import socket
import struct
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Final

from timonel.agent.proxy.rules import (
    Endpoint,
    NodeView,
    ServicePort,
    categorize_endpoints,
)

log = logging.getLogger(__name__)

PROTOCOL_NUMBERS: Final = {"UDP": 17, "SCTP": 132}


@dataclass(frozen=True)
class Frontend:
    protocol: int
    ip: str
    port: int


@dataclass(frozen=True)
class Flow:
    """One conntrack entry: the original direction and where replies come from."""

    protocol: int
    source: str
    destination: str
    source_port: int
    destination_port: int
    reply_source: str
    reply_source_port: int
    zone: int = 0


Frontends = dict[Frontend, frozenset[str]]


def service_frontends(
    ports: Iterable[ServicePort],
    endpoints: Mapping[tuple[str, str, str, str], list[Endpoint]],
    node: NodeView,
) -> Frontends:
    """Every address a UDP/SCTP Service port answers on → the endpoints ("ip:port") this
    node sends its traffic to."""
    found: Frontends = {}
    for port in ports:
        number = PROTOCOL_NUMBERS.get(port.protocol)
        if number is None:
            continue
        reachable = categorize_endpoints(endpoints.get(port.key, []), port, node.name).reachable
        serving = frozenset(endpoint.address for endpoint in reachable)
        addresses = [port.cluster_ip, *port.external_ips, *port.load_balancer_ips]
        for address in addresses:
            found[Frontend(number, address, port.port)] = serving
        if port.node_port:
            for address in (*node.addresses, "127.0.0.1"):
                found[Frontend(number, address, port.node_port)] = serving
    return found


def lost_endpoints(before: Frontends, after: Frontends) -> set[Frontend]:
    """Frontends whose traffic may now go somewhere else: an endpoint went away, or the
    first endpoints arrived (entries created before were never DNATed)."""
    changed: set[Frontend] = set()
    for frontend, serving in after.items():
        old = before.get(frontend)
        if old is None or old - serving or (serving and not old):
            changed.add(frontend)
    return changed


def stale_flows(flows: Iterable[Flow], frontends: Frontends, changed: set[Frontend]) -> list[Flow]:
    stale: list[Flow] = []
    for flow in flows:
        frontend = Frontend(flow.protocol, flow.destination, flow.destination_port)
        if frontend not in changed:
            continue
        if f"{flow.reply_source}:{flow.reply_source_port}" not in frontends.get(frontend, ()):
            stale.append(flow)
    return stale


# -- ctnetlink -----------------------------------------------------------------------------------

NETLINK_NETFILTER: Final = 12
CTNETLINK: Final = 1
MSG_GET: Final = 1
MSG_DELETE: Final = 2
NLM_F_REQUEST: Final = 0x1
NLM_F_ACK: Final = 0x4
NLM_F_DUMP: Final = 0x300
NLMSG_ERROR: Final = 2
NLMSG_DONE: Final = 3
NLA_F_NESTED: Final = 0x8000
NLA_TYPE_MASK: Final = 0x3FFF
CTA_TUPLE_ORIG: Final = 1
CTA_TUPLE_REPLY: Final = 2
CTA_ZONE: Final = 18
CTA_TUPLE_IP: Final = 1
CTA_TUPLE_PROTO: Final = 2
CTA_IP_V4_SRC: Final = 1
CTA_IP_V4_DST: Final = 2
CTA_PROTO_NUM: Final = 1
CTA_PROTO_SRC_PORT: Final = 2
CTA_PROTO_DST_PORT: Final = 3
CLONE_NEWNET: Final = 0x40000000


def _attribute(kind: int, payload: bytes) -> bytes:
    header = struct.pack("=HH", 4 + len(payload), kind)
    padding = b"\0" * (-len(payload) % 4)
    return header + payload + padding


def _attributes(data: bytes) -> Iterator[tuple[int, bytes]]:
    offset = 0
    while offset + 4 <= len(data):
        length, kind = struct.unpack_from("=HH", data, offset)
        if length < 4:
            return
        yield kind & NLA_TYPE_MASK, data[offset + 4 : offset + length]
        offset += (length + 3) & ~3


def _message(kind: int, flags: int, sequence: int, payload: bytes) -> bytes:
    body = struct.pack("=BBH", socket.AF_INET, 0, 0) + payload
    return struct.pack("=IHHII", 16 + len(body), (CTNETLINK << 8) | kind, flags, sequence, 0) + body


def _tuple(data: bytes) -> tuple[str, str, int, int, int]:
    source = destination = ""
    protocol = source_port = destination_port = 0
    for kind, value in _attributes(data):
        if kind == CTA_TUPLE_IP:
            for ip_kind, address in _attributes(value):
                if ip_kind == CTA_IP_V4_SRC:
                    source = socket.inet_ntoa(address)
                elif ip_kind == CTA_IP_V4_DST:
                    destination = socket.inet_ntoa(address)
        elif kind == CTA_TUPLE_PROTO:
            for proto_kind, field in _attributes(value):
                if proto_kind == CTA_PROTO_NUM:
                    protocol = field[0]
                elif proto_kind == CTA_PROTO_SRC_PORT:
                    source_port = struct.unpack("!H", field)[0]
                elif proto_kind == CTA_PROTO_DST_PORT:
                    destination_port = struct.unpack("!H", field)[0]
    return source, destination, protocol, source_port, destination_port


def parse_flow(payload: bytes) -> Flow | None:
    """One ctnetlink entry (after the nfgenmsg header) → a Flow (None if incomplete)."""
    original = reply = None
    zone = 0
    for kind, value in _attributes(payload):
        if kind == CTA_TUPLE_ORIG:
            original = _tuple(value)
        elif kind == CTA_TUPLE_REPLY:
            reply = _tuple(value)
        elif kind == CTA_ZONE and len(value) >= 2:
            zone = struct.unpack("!H", value[:2])[0]
    if original is None or reply is None or not original[0] or not reply[0]:
        return None
    return Flow(
        protocol=original[2],
        source=original[0],
        destination=original[1],
        source_port=original[3],
        destination_port=original[4],
        reply_source=reply[0],
        reply_source_port=reply[3],
        zone=zone,
    )


def delete_request(flow: Flow, sequence: int) -> bytes:
    addresses = _attribute(CTA_IP_V4_SRC, socket.inet_aton(flow.source)) + _attribute(
        CTA_IP_V4_DST, socket.inet_aton(flow.destination)
    )
    protocol = (
        _attribute(CTA_PROTO_NUM, bytes([flow.protocol]))
        + _attribute(CTA_PROTO_SRC_PORT, struct.pack("!H", flow.source_port))
        + _attribute(CTA_PROTO_DST_PORT, struct.pack("!H", flow.destination_port))
    )
    original = _attribute(CTA_TUPLE_IP | NLA_F_NESTED, addresses) + _attribute(
        CTA_TUPLE_PROTO | NLA_F_NESTED, protocol
    )
    payload = _attribute(CTA_TUPLE_ORIG | NLA_F_NESTED, original)
    if flow.zone:
        payload += _attribute(CTA_ZONE, struct.pack("!H", flow.zone))
    return _message(MSG_DELETE, NLM_F_REQUEST | NLM_F_ACK, sequence, payload)


def _messages(data: bytes) -> Iterator[tuple[int, int, bytes]]:
    offset = 0
    while offset + 16 <= len(data):
        length, kind, _flags, sequence, _pid = struct.unpack_from("=IHHII", data, offset)
        if length < 16:
            return
        yield kind, sequence, data[offset + 16 : offset + length]
        offset += (length + 3) & ~3


class Conntrack:
    """ctnetlink in a network namespace (None: this process's)."""

    def __init__(self, netns: str | None = None) -> None:
        self.netns = netns

    def _socket(self) -> socket.socket:
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        sock.bind((0, 0))
        sock.settimeout(5)
        return sock

    def _in_namespace(self) -> socket.socket:
        """A netlink socket of the target namespace: created on a thread of its own that
        enters the namespace (setns applies to the calling thread only) and then ends."""
        if self.netns is None:
            return self._socket()
        created: list[socket.socket | BaseException] = []

        def enter() -> None:
            try:
                libc = ctypes.CDLL(None, use_errno=True)
                fd = os.open(str(self.netns), os.O_RDONLY)
                try:
                    if libc.setns(fd, CLONE_NEWNET) != 0:
                        code = ctypes.get_errno()
                        raise OSError(code, os.strerror(code))
                finally:
                    os.close(fd)
                created.append(self._socket())
            except BaseException as error:
                created.append(error)

        thread = threading.Thread(target=enter, name="conntrack-netns")
        thread.start()
        thread.join()
        result = created[0]
        if isinstance(result, BaseException):
            raise result
        return result

    def flows(self) -> list[Flow]:
        """Every IPv4 entry of the table."""
        with contextlib.closing(self._in_namespace()) as sock:
            sock.send(_message(MSG_GET, NLM_F_REQUEST | NLM_F_DUMP, 1, b""))
            found: list[Flow] = []
            while True:
                data = sock.recv(1 << 20)
                for kind, _sequence, payload in _messages(data):
                    if kind == NLMSG_DONE:
                        return found
                    if kind == NLMSG_ERROR:
                        code = -struct.unpack_from("=i", payload)[0]
                        if code:
                            raise OSError(code, os.strerror(code))
                        continue
                    flow = parse_flow(payload[4:])
                    if flow is not None:
                        found.append(flow)

    def delete(self, flows: Iterable[Flow]) -> int:
        """Delete `flows`; entries already gone are not an error. → how many were deleted."""
        deleted = 0
        with contextlib.closing(self._in_namespace()) as sock:
            for sequence, flow in enumerate(flows, start=2):
                sock.send(delete_request(flow, sequence))
                for kind, _seq, payload in _messages(sock.recv(65536)):
                    if kind != NLMSG_ERROR:
                        continue
                    code = -struct.unpack_from("=i", payload)[0]
                    if code == 0:
                        deleted += 1
                    elif code != errno.ENOENT:
                        log.warning(
                            "deleting conntrack entry %s failed: %s", flow, os.strerror(code)
                        )
        return deleted


def clean_stale_entries(conntrack: Conntrack, frontends: Frontends, changed: set[Frontend]) -> int:
    """Delete the entries that would keep traffic of `changed` frontends on old endpoints."""
    if not changed:
        return 0
    stale = stale_flows(conntrack.flows(), frontends, changed)
    return conntrack.delete(stale) if stale else 0
