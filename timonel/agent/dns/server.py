"""The DNS server: UDP and TCP (RFC 1035 §4.2, RFC 7766) on one address and port.

Each query is answered by a `Resolver` (the cluster's records); what is not the cluster's
goes, as the client sent it (EDNS options included), to the node's upstream resolvers,
and their reply goes back with the client's message id; upstream replies are not
cached. An ExternalName's CNAME is followed through the upstream resolvers
(`Answer.chase`). A reply made here is kept for the same query octets (the id aside)
until the records change, unless its addresses are shuffled.

A reply over UDP fits the client's EDNS payload size (512 octets without EDNS); what
does not fit is cut and the TC bit set, and the client asks again over TCP, where
messages go up to 65535 octets. A TCP connection may carry many queries; it is closed
after `TCP_IDLE_TIMEOUT` seconds without one.

Answers without an upstream step are sent from the datagram callback itself; only
forwarded queries become tasks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
import struct
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final, cast

from timonel.agent.dns.records import Answer
from timonel.agent.dns.wire import (
    CLASS_IN,
    FLAG_QR,
    MAX_MESSAGE,
    MAX_UDP_PLAIN,
    OPCODE_QUERY,
    RCODE_BADVERS,
    RCODE_FORMERR,
    RCODE_NAMES,
    RCODE_NOTIMP,
    RCODE_SERVFAIL,
    TYPE_A,
    TYPE_AAAA,
    TYPE_NAMES,
    Edns,
    Message,
    Question,
    Record,
    WireError,
    decode,
    decode_header,
    encode,
    query,
    response_flags,
)

log = logging.getLogger(__name__)

Resolver = Callable[[str, int], Answer]
Upstream = tuple[str, int]

SERVER_UDP_SIZE: Final = 1232
"""The EDNS payload size this server advertises (the DNS flag day 2020 value)."""
UPSTREAM_ATTEMPT_TIMEOUT: Final = 2.0
UPSTREAM_TOTAL_TIMEOUT: Final = 5.0
TCP_IDLE_TIMEOUT: Final = 10.0
REPLY_CACHE_SIZE: Final = 10000
_LENGTH = struct.Struct("!H")


def upstream_servers(
    nameservers: Iterable[str], *, exclude: Iterable[str] = (), port: int = 53
) -> list[Upstream]:
    """The resolvers to forward to: the node's nameservers (resolv.conf order) without
    the cluster DNS addresses, which would send queries back here."""
    excluded = set(exclude)
    found: list[Upstream] = []
    for server in nameservers:
        address = server.split("%", 1)[0]  # an IPv6 zone index
        if address and address not in excluded and (address, port) not in found:
            found.append((address, port))
    return found


# -- metrics -----------------------------------------------------------------------------


@dataclass
class DnsMetrics:
    """Counters for the `metrics` port, in CoreDNS's metric names where CoreDNS has the
    same counter."""

    requests: Counter[tuple[str, str]] = field(default_factory=Counter)
    responses: Counter[str] = field(default_factory=Counter)
    forwards: Counter[str] = field(default_factory=Counter)
    forward_failures: Counter[str] = field(default_factory=Counter)

    def request(self, proto: str, qtype: int) -> None:
        self.requests[(proto, TYPE_NAMES.get(qtype, str(qtype)))] += 1

    def response(self, rcode: int) -> None:
        self.responses[RCODE_NAMES.get(rcode, str(rcode))] += 1

    def render(self) -> str:
        lines = [
            "# HELP coredns_dns_requests_total Counter of DNS requests made per zone, protocol and family.",
            "# TYPE coredns_dns_requests_total counter",
        ]
        for (proto, qtype), count in sorted(self.requests.items()):
            lines.append(
                f'coredns_dns_requests_total{{server="dns://:53",zone=".",view="",'
                f'proto="{proto}",family="1",type="{qtype}"}} {count}'
            )
        lines += [
            "# HELP coredns_dns_responses_total Counter of response status codes.",
            "# TYPE coredns_dns_responses_total counter",
        ]
        for rcode, count in sorted(self.responses.items()):
            lines.append(
                f'coredns_dns_responses_total{{server="dns://:53",zone=".",view="",'
                f'rcode="{rcode}",plugin=""}} {count}'
            )
        lines += [
            "# HELP coredns_forward_requests_total Counter of requests made per upstream.",
            "# TYPE coredns_forward_requests_total counter",
        ]
        lines += [
            f'coredns_forward_requests_total{{to="{to}"}} {n}'
            for to, n in sorted(self.forwards.items())
        ]
        lines += [
            "# HELP timonel_dns_forward_failures_total Counter of upstream requests that failed.",
            "# TYPE timonel_dns_forward_failures_total counter",
        ]
        lines += [
            f'timonel_dns_forward_failures_total{{to="{to}"}} {n}'
            for to, n in sorted(self.forward_failures.items())
        ]
        return "\n".join(lines) + "\n"


# -- upstream ----------------------------------------------------------------------------


class UpstreamError(Exception):
    """No upstream resolver answered."""


class _OneReply(asyncio.DatagramProtocol):
    """A connected UDP socket waiting for the reply with one id and question."""

    def __init__(self, ident: int, question: bytes) -> None:
        self.ident = ident
        self.question = question
        self.reply: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        ident, flags = decode_header(data)
        # A reply to this query: its id, QR set, and the same question section.
        if (
            ident == self.ident
            and flags & FLAG_QR
            and data[12 : 12 + len(self.question)].lower() == self.question
            and not self.reply.done()
        ):
            self.reply.set_result(data)

    def error_received(self, exc: Exception) -> None:
        if not self.reply.done():
            self.reply.set_exception(exc)


def _question_section(data: bytes) -> bytes:
    """The query's question section as sent (lowercased, for a case-blind match)."""
    offset = 12
    while offset < len(data):
        count = data[offset]
        if count == 0:
            return data[12 : offset + 5].lower()
        if count & 0xC0:
            return data[12 : offset + 6].lower()
        offset += count + 1
    return data[12:].lower()


@dataclass
class Forwarder:
    """Sends queries to the upstream resolvers in order, each with a fresh id and, over
    UDP, a fresh source port; the first answer wins."""

    upstreams: Sequence[Upstream]
    attempt_timeout: float = UPSTREAM_ATTEMPT_TIMEOUT
    total_timeout: float = UPSTREAM_TOTAL_TIMEOUT
    metrics: DnsMetrics | None = None

    async def exchange(self, data: bytes, *, tcp: bool = False) -> bytes:
        """The upstream reply to the query `data`, with `data`'s id."""
        if not self.upstreams:
            raise UpstreamError("no upstream resolvers")
        original = data[:2]
        deadline = time.monotonic() + self.total_timeout
        failures = []
        for upstream in self.upstreams:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            ident = secrets.randbelow(0x10000)
            outgoing = _LENGTH.pack(ident) + data[2:]
            target = f"{upstream[0]}:{upstream[1]}"
            if self.metrics is not None:
                self.metrics.forwards[target] += 1
            try:
                timeout = min(self.attempt_timeout, remaining)
                exchange = self._tcp if tcp else self._udp
                reply = await asyncio.wait_for(exchange(upstream, outgoing, ident), timeout)
            except (OSError, TimeoutError, asyncio.IncompleteReadError, UpstreamError) as error:
                if self.metrics is not None:
                    self.metrics.forward_failures[target] += 1
                failures.append(f"{target}: {str(error) or type(error).__name__}")
                continue
            return original + reply[2:]
        raise UpstreamError("; ".join(failures) or "upstream resolvers timed out")

    async def _udp(self, upstream: Upstream, data: bytes, ident: int) -> bytes:
        loop = asyncio.get_running_loop()
        transport, protocol = await loop.create_datagram_endpoint(
            lambda: _OneReply(ident, _question_section(data)), remote_addr=upstream
        )
        try:
            transport.sendto(data)
            return await protocol.reply
        finally:
            transport.close()

    async def _tcp(self, upstream: Upstream, data: bytes, ident: int) -> bytes:
        reader, writer = await asyncio.open_connection(*upstream)
        try:
            writer.write(_LENGTH.pack(len(data)) + data)
            await writer.drain()
            while True:
                (length,) = _LENGTH.unpack(await reader.readexactly(2))
                reply = await reader.readexactly(length)
                if decode_header(reply)[0] == ident:
                    return reply
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


# -- answering ---------------------------------------------------------------------------

Reply = bytes | Awaitable[bytes | None] | None
"""What a query gets: reply bytes now, a reply later (forwarded), or nothing (ignored)."""


def _error_reply(ident: int, flags: int, rcode: int, questions: list[Question]) -> bytes:
    return encode(
        Message(
            id=ident,
            flags=response_flags(flags, rcode, authoritative=False),
            questions=questions,
        )
    )


def _shuffles(answer: Answer) -> bool:
    return sum(1 for r in answer.answers if r.type in (TYPE_A, TYPE_AAAA)) > 1


def _shuffled(records: tuple[Record, ...]) -> list[Record]:
    """Address records in random order, as CoreDNS's `loadbalance` gives them, so that
    clients taking the first address spread over a headless Service's endpoints."""
    answers = list(records)
    addresses = [i for i, r in enumerate(answers) if r.type in (TYPE_A, TYPE_AAAA)]
    if len(addresses) > 1:
        picked = [answers[i] for i in addresses]
        random.shuffle(picked)
        for i, record in zip(addresses, picked, strict=True):
            answers[i] = record
    return answers


class QueryHandler:
    """One query in, one reply out (see the module's docstring)."""

    def __init__(
        self,
        resolve: Resolver,
        forwarder: Forwarder | None = None,
        *,
        metrics: DnsMetrics | None = None,
        generation: Callable[[], int] | None = None,
    ) -> None:
        self.resolve = resolve
        self.forwarder = forwarder
        self.metrics = metrics or DnsMetrics()
        if forwarder is not None and forwarder.metrics is None:
            forwarder.metrics = self.metrics
        # Replies made here, by the query's octets after its id, while `generation()` (the
        # records' version) stays the same. Not for shuffled or forwarded replies.
        self.generation = generation
        self._replies: dict[bytes, tuple[bytes, int]] = {}
        self._replies_generation = -1

    def handle(self, data: bytes, *, tcp: bool) -> Reply:
        key = b""
        if self.generation is not None:
            generation = self.generation()
            if generation != self._replies_generation:
                self._replies.clear()
                self._replies_generation = generation
            key = (b"T" if tcp else b"U") + data[2:]
            known = self._replies.get(key)
            if known is not None:
                reply, qtype = known
                self.metrics.request("tcp" if tcp else "udp", qtype)
                return self._count(data[:2] + reply[2:])
        try:
            query = decode(data)
        except WireError:
            ident, flags = decode_header(data)
            if ident < 0 or flags & FLAG_QR:
                return None
            return self._count(_error_reply(ident, flags, RCODE_FORMERR, []))
        if query.flags & FLAG_QR:
            return None
        if query.opcode != OPCODE_QUERY:
            return self._count(_error_reply(query.id, query.flags, RCODE_NOTIMP, query.questions))
        if len(query.questions) != 1:
            return self._count(_error_reply(query.id, query.flags, RCODE_FORMERR, []))
        question = query.questions[0]
        self.metrics.request("tcp" if tcp else "udp", question.type)
        edns = query.edns
        reply_edns = None
        if edns is not None:
            reply_edns = Edns(udp_size=SERVER_UDP_SIZE, dnssec_ok=edns.dnssec_ok)
            if edns.version != 0:
                return self._count(self._badvers(query, reply_edns))
        limit = MAX_MESSAGE if tcp else max(MAX_UDP_PLAIN, edns.udp_size if edns else 0)
        if question.rclass != CLASS_IN:
            return self._forward(data, tcp=tcp, limit=limit)
        try:
            answer = self.resolve(question.name, question.type)
        except Exception:
            log.exception("resolving %s failed", question.name)
            return self._count(self._servfail(query, reply_edns))
        if answer.forward:
            return self._forward(data, tcp=tcp, limit=limit)
        if answer.chase:
            return self._chase(query, answer, reply_edns, limit, tcp=tcp)
        reply = self._reply(query, answer, reply_edns, limit)
        if key and len(self._replies) < REPLY_CACHE_SIZE and not _shuffles(answer):
            self._replies[key] = (reply, question.type)
        return self._count(reply)

    def _count(self, reply: bytes) -> bytes:
        self.metrics.response(reply[3] & 0xF)
        return reply

    def _reply(
        self,
        query: Message,
        answer: Answer,
        edns: Edns | None,
        limit: int,
        extra: Sequence[Record] = (),
    ) -> bytes:
        message = Message(
            id=query.id,
            flags=response_flags(query.flags, answer.rcode, authoritative=True),
            questions=query.questions,
            answers=[*_shuffled(answer.answers), *extra],
            authorities=list(answer.authorities),
            additionals=list(answer.additionals),
            edns=edns,
        )
        try:
            return encode(message, limit)
        except WireError:
            log.exception("encoding the answer to %s failed", query.questions[0].name)
            return self._servfail(query, edns)

    def _servfail(self, query: Message, edns: Edns | None) -> bytes:
        message = Message(
            id=query.id,
            flags=response_flags(query.flags, RCODE_SERVFAIL, authoritative=False),
            questions=query.questions,
            edns=edns,
        )
        return encode(message)

    def _badvers(self, query: Message, edns: Edns) -> bytes:
        flags = response_flags(query.flags, RCODE_BADVERS, authoritative=False)
        upper = Edns(edns.udp_size, dnssec_ok=edns.dnssec_ok, extended_rcode=RCODE_BADVERS >> 4)
        return encode(Message(id=query.id, flags=flags, questions=query.questions, edns=upper))

    async def _forward(self, data: bytes, *, tcp: bool, limit: int) -> bytes | None:
        try:
            if self.forwarder is None:
                raise UpstreamError("no upstream resolvers")
            reply = await self.forwarder.exchange(data, tcp=tcp)
        except UpstreamError as error:
            log.debug("forwarding failed: %s", error)
            query = decode(data)
            edns = Edns(SERVER_UDP_SIZE, dnssec_ok=query.edns.dnssec_ok) if query.edns else None
            return self._count(self._servfail(query, edns))
        if len(reply) > limit:
            # The upstream ignored the client's payload size: cut it here.
            with contextlib.suppress(WireError):
                reply = encode(decode(reply), limit)
        return self._count(reply)

    async def _chase(
        self, query: Message, answer: Answer, edns: Edns | None, limit: int, *, tcp: bool
    ) -> bytes:
        question = query.questions[0]
        extra: list[Record] = []
        if self.forwarder is not None:
            outgoing = encode(
                Message(
                    id=query.id,
                    flags=query.flags & 0x0110,  # RD and CD as the client asked
                    questions=[Question(answer.chase, question.type, question.rclass)],
                    edns=Edns(SERVER_UDP_SIZE) if not tcp else None,
                )
            )
            try:
                reply = decode(await self.forwarder.exchange(outgoing, tcp=tcp))
                extra = reply.answers
            except (UpstreamError, WireError) as error:
                log.debug("following CNAME %s failed: %s", answer.chase, error)
        return self._count(self._reply(query, answer, edns, limit, extra))


# -- listeners ---------------------------------------------------------------------------


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, handler: QueryHandler, tasks: set[asyncio.Task[None]]) -> None:
        self.handler = handler
        self.tasks = tasks
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        reply = self.handler.handle(data, tcp=False)
        if reply is None:
            return
        if isinstance(reply, bytes):
            assert self.transport is not None
            self.transport.sendto(reply, addr)
            return
        task = asyncio.ensure_future(self._send_later(reply, addr))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _send_later(
        self, reply: Awaitable[bytes | None], addr: tuple[str | int, ...]
    ) -> None:
        data = await reply
        if data is not None and self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(data, addr)

    def error_received(self, exc: Exception) -> None:
        log.debug("DNS UDP socket error: %s", exc)


class DnsServer:
    """Serves `handler` over UDP and TCP on `host:port` (port 0: any free port, the same
    for both)."""

    def __init__(self, handler: QueryHandler, *, host: str, port: int) -> None:
        self.handler = handler
        self.host = host
        self.port = port
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        for _ in range(20):
            transport, _protocol = await loop.create_datagram_endpoint(
                lambda: _UdpProtocol(self.handler, self._tasks), local_addr=(self.host, self.port)
            )
            port = int(transport.get_extra_info("sockname")[1])
            try:
                self._tcp = await asyncio.start_server(self._serve_tcp, self.host, port)
            except OSError:
                transport.close()
                if self.port:
                    raise
                continue  # the TCP side of an ephemeral UDP port was taken: another port
            self._udp = transport
            self.port = port
            return
        raise OSError(f"no port free for both UDP and TCP on {self.host}")

    async def stop(self) -> None:
        if self._udp is not None:
            self._udp.close()
        if self._tcp is not None:
            self._tcp.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._tcp is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._tcp.wait_closed(), 2)

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            while True:
                prefix = await asyncio.wait_for(reader.readexactly(2), TCP_IDLE_TIMEOUT)
                (length,) = _LENGTH.unpack(prefix)
                data = await asyncio.wait_for(reader.readexactly(length), TCP_IDLE_TIMEOUT)
                reply = self.handler.handle(data, tcp=True)
                if reply is not None and not isinstance(reply, bytes):
                    reply = await reply
                if reply is None:
                    continue
                writer.write(_LENGTH.pack(len(reply)) + reply)
                await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            if task is not None:
                self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


# -- a small client (tests, benchmarks, health checks) -------------------------------------


async def ask(
    server: Upstream,
    name: str,
    rtype: int,
    *,
    tcp: bool = False,
    edns: Edns | None = None,
    timeout: float = 2.0,
) -> Message:
    """One query to `server`, its decoded reply."""
    ident = secrets.randbelow(0x10000)
    data = query(name, rtype, ident=ident, edns=edns)
    forwarder = Forwarder([server], attempt_timeout=timeout, total_timeout=timeout)
    return decode(await forwarder.exchange(data, tcp=tcp))
