"""One query in, one reply out: flags, errors, EDNS, truncation, forwarding, CNAME chasing."""

from __future__ import annotations

from timonel.agent.dns.records import FORWARD, Answer
from timonel.agent.dns.server import Forwarder, QueryHandler, Reply, UpstreamError
from timonel.agent.dns.wire import (
    FLAG_AA,
    FLAG_QR,
    FLAG_RD,
    FLAG_TC,
    RCODE_BADVERS,
    RCODE_FORMERR,
    RCODE_NOERROR,
    RCODE_NOTIMP,
    RCODE_NXDOMAIN,
    RCODE_SERVFAIL,
    TYPE_A,
    TYPE_CNAME,
    Edns,
    Message,
    Question,
    Record,
    decode,
    encode,
    query,
)

WEB = "web.default.svc.cluster.local"
MANY = "many.default.svc.cluster.local"
EXTERNAL = "search.default.svc.cluster.local"


def resolve(name: str, qtype: int) -> Answer:
    if name.lower() == WEB:
        return Answer(answers=(Record(name, TYPE_A, 5, "10.43.0.20"),))
    if name == MANY:
        addresses = [f"10.42.{i // 200}.{i % 200 + 1}" for i in range(300)]
        return Answer(answers=tuple(Record(name, TYPE_A, 5, a) for a in addresses))
    if name == EXTERNAL:
        return Answer(
            answers=(Record(name, TYPE_CNAME, 5, "www.example.com"),), chase="www.example.com"
        )
    if name.endswith(".cluster.local"):
        return Answer(rcode=RCODE_NXDOMAIN)
    return FORWARD


class FakeUpstream(Forwarder):
    """Answers every query with one A record 192.0.2.1 (or fails)."""

    def __init__(self, *, fail: bool = False) -> None:
        super().__init__([("192.0.2.53", 53)])
        self.fail = fail
        self.seen: list[tuple[Message, bool]] = []

    async def exchange(self, data: bytes, *, tcp: bool = False) -> bytes:
        message = decode(data)
        self.seen.append((message, tcp))
        if self.fail:
            raise UpstreamError("timed out")
        question = message.questions[0]
        reply = Message(
            id=message.id,
            flags=FLAG_QR | FLAG_RD | 0x0080,
            questions=message.questions,
            answers=[Record(question.name, TYPE_A, 300, "192.0.2.1")],
            edns=message.edns,
        )
        return encode(reply)


async def settle(reply: Reply) -> Message | None:
    """The reply decoded, awaited first when it is forwarded."""
    if reply is None:
        return None
    data = reply if isinstance(reply, bytes) else await reply
    return decode(data) if data is not None else None


async def test_authoritative_answer_echoes_id_question_and_rd() -> None:
    handler = QueryHandler(resolve)
    reply = handler.handle(query("Web.Default.svc.cluster.local", TYPE_A, ident=77), tcp=False)
    assert isinstance(reply, bytes)  # answered without a task
    message = decode(reply)
    assert message.id == 77
    assert message.flags & (FLAG_QR | FLAG_AA | FLAG_RD) == FLAG_QR | FLAG_AA | FLAG_RD
    assert message.rcode == RCODE_NOERROR
    assert message.questions == [Question("Web.Default.svc.cluster.local", TYPE_A)]
    assert [r.data for r in message.answers] == ["10.43.0.20"]
    assert handler.metrics.requests[("udp", "A")] == 1
    assert handler.metrics.responses["NOERROR"] == 1


async def test_nxdomain_is_authoritative() -> None:
    message = await settle(
        QueryHandler(resolve).handle(query("x.default.svc.cluster.local", TYPE_A), tcp=False)
    )
    assert message is not None and message.rcode == RCODE_NXDOMAIN and message.has(FLAG_AA)


async def test_malformed_queries_get_formerr_or_nothing() -> None:
    handler = QueryHandler(resolve)
    garbage = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07exa"
    message = await settle(handler.handle(garbage, tcp=False))
    assert message is not None and message.id == 0x1234 and message.rcode == RCODE_FORMERR
    assert handler.handle(b"\x01", tcp=False) is None
    response = encode(Message(id=1, flags=FLAG_QR, questions=[Question(WEB, TYPE_A)]))
    assert handler.handle(response, tcp=False) is None  # never answer an answer
    two = encode(Message(id=2, questions=[Question(WEB, TYPE_A), Question(WEB, TYPE_A)]))
    formerr = await settle(handler.handle(two, tcp=False))
    assert formerr is not None and formerr.rcode == RCODE_FORMERR


async def test_other_opcodes_are_not_implemented() -> None:
    status = encode(Message(id=3, flags=2 << 11, questions=[Question(WEB, TYPE_A)]))
    message = await settle(QueryHandler(resolve).handle(status, tcp=False))
    assert message is not None and message.rcode == RCODE_NOTIMP and message.opcode == 2


async def test_edns_is_answered_with_edns_and_unknown_versions_with_badvers() -> None:
    handler = QueryHandler(resolve)
    asked = query(WEB, TYPE_A, edns=Edns(udp_size=4096, dnssec_ok=True))
    message = await settle(handler.handle(asked, tcp=False))
    assert message is not None and message.edns is not None
    assert message.edns.udp_size == 1232 and message.edns.dnssec_ok
    assert (await settle(handler.handle(query(WEB, TYPE_A), tcp=False))).edns is None  # type: ignore[union-attr]
    future = query(WEB, TYPE_A, edns=Edns(version=1))
    bad = await settle(handler.handle(future, tcp=False))
    assert bad is not None and bad.rcode == RCODE_BADVERS and not bad.answers


async def test_udp_replies_fit_the_payload_size_and_tcp_gets_everything() -> None:
    handler = QueryHandler(resolve)
    plain = await settle(handler.handle(query(MANY, TYPE_A), tcp=False))
    assert plain is not None and plain.has(FLAG_TC) and len(plain.answers) < 300
    large = await settle(handler.handle(query(MANY, TYPE_A, edns=Edns(udp_size=8192)), tcp=False))
    assert large is not None and not large.has(FLAG_TC) and len(large.answers) == 300
    over_tcp = await settle(handler.handle(query(MANY, TYPE_A), tcp=True))
    assert over_tcp is not None and not over_tcp.has(FLAG_TC) and len(over_tcp.answers) == 300


async def test_address_records_are_shuffled() -> None:
    handler = QueryHandler(resolve)
    firsts = set()
    for _ in range(20):
        message = await settle(handler.handle(query(MANY, TYPE_A), tcp=True))
        assert message is not None
        firsts.add(message.answers[0].data)
    assert len(firsts) > 1


async def test_other_names_are_forwarded_as_sent() -> None:
    upstream = FakeUpstream()
    handler = QueryHandler(resolve, upstream)
    options = bytes.fromhex("000a00080102030405060708")
    asked = query("example.com", TYPE_A, ident=5, edns=Edns(udp_size=1400, options=options))
    message = await settle(handler.handle(asked, tcp=True))
    assert (
        message is not None
        and message.id == 5
        and [r.data for r in message.answers] == ["192.0.2.1"]
    )
    forwarded, over_tcp = upstream.seen[0]
    assert over_tcp and forwarded.edns is not None and forwarded.edns.options == options
    assert not message.has(FLAG_AA)


async def test_upstream_failure_is_servfail() -> None:
    handler = QueryHandler(resolve, FakeUpstream(fail=True))
    message = await settle(handler.handle(query("example.com", TYPE_A, ident=9), tcp=False))
    assert message is not None and message.id == 9 and message.rcode == RCODE_SERVFAIL
    none = await settle(QueryHandler(resolve).handle(query("example.com", TYPE_A), tcp=False))
    assert none is not None and none.rcode == RCODE_SERVFAIL


async def test_external_name_cname_is_followed_upstream() -> None:
    upstream = FakeUpstream()
    message = await settle(
        QueryHandler(resolve, upstream).handle(query(EXTERNAL, TYPE_A), tcp=False)
    )
    assert message is not None
    assert [(r.name, r.type, r.data) for r in message.answers] == [
        (EXTERNAL, TYPE_CNAME, "www.example.com"),
        ("www.example.com", TYPE_A, "192.0.2.1"),
    ]
    assert upstream.seen[0][0].questions == [Question("www.example.com", TYPE_A)]
    alone = await settle(
        QueryHandler(resolve, FakeUpstream(fail=True)).handle(query(EXTERNAL, TYPE_A), tcp=False)
    )
    assert alone is not None and [r.type for r in alone.answers] == [TYPE_CNAME]


async def test_replies_are_reused_until_the_records_change() -> None:
    calls: list[str] = []
    version = [1]

    def counting(name: str, qtype: int) -> Answer:
        calls.append(name)
        return Answer(answers=(Record(name, TYPE_A, 5, f"10.43.0.{version[0]}"),))

    handler = QueryHandler(counting, generation=lambda: version[0])
    first = await settle(handler.handle(query(WEB, TYPE_A, ident=1), tcp=False))
    second = await settle(handler.handle(query(WEB, TYPE_A, ident=2), tcp=False))
    assert first is not None and second is not None and second.id == 2
    assert second.answers == first.answers and len(calls) == 1
    assert handler.metrics.requests[("udp", "A")] == 2
    version[0] = 2
    third = await settle(handler.handle(query(WEB, TYPE_A, ident=3), tcp=False))
    assert third is not None and [r.data for r in third.answers] == ["10.43.0.2"]
    assert len(calls) == 2
    shuffling = QueryHandler(resolve, generation=lambda: 1)
    firsts = set()
    for _ in range(20):
        reply = await settle(shuffling.handle(query(MANY, TYPE_A), tcp=True))
        assert reply is not None
        firsts.add(reply.answers[0].data)
    assert len(firsts) > 1  # shuffled replies are made afresh


async def test_metrics_count_requests_responses_and_forwards() -> None:
    upstream = FakeUpstream(fail=True)
    handler = QueryHandler(resolve, upstream)
    handler.handle(query(WEB, TYPE_A), tcp=False)
    await settle(handler.handle(query("example.com", TYPE_A), tcp=True))
    text = handler.metrics.render()
    assert 'proto="udp",family="1",type="A"} 1' in text
    assert 'proto="tcp",family="1",type="A"} 1' in text
    assert (
        'coredns_dns_responses_total{server="dns://:53",zone=".",view="",rcode="NOERROR",plugin=""} 1'
        in text
    )
    assert 'rcode="SERVFAIL",plugin=""} 1' in text
