"""DNS messages on the wire: golden bytes, compression, EDNS, truncation, bad input."""

from __future__ import annotations

import pytest

from timonel.agent.dns.wire import (
    FLAG_AA,
    FLAG_QR,
    FLAG_RD,
    FLAG_TC,
    MAX_UDP_PLAIN,
    RCODE_BADVERS,
    RCODE_NXDOMAIN,
    TYPE_A,
    TYPE_AAAA,
    TYPE_CNAME,
    TYPE_MX,
    TYPE_SOA,
    TYPE_SRV,
    TYPE_TXT,
    Edns,
    Message,
    Mx,
    Question,
    Record,
    Soa,
    Srv,
    WireError,
    decode,
    encode,
    name_labels,
    query,
    response_flags,
)

EXAMPLE_QUERY = bytes.fromhex(
    "1234 0100 0001 0000 0000 0000"  # id, RD, one question
    "07 6578616d706c65 03 636f6d 00"  # example.com
    "0001 0001"  # A IN
)


def test_a_query_golden_bytes() -> None:
    assert query("example.com", TYPE_A, ident=0x1234) == EXAMPLE_QUERY
    assert query("example.com.", TYPE_A, ident=0x1234) == EXAMPLE_QUERY
    message = decode(EXAMPLE_QUERY)
    assert message.id == 0x1234 and message.has(FLAG_RD) and not message.has(FLAG_QR)
    assert message.questions == [Question("example.com", TYPE_A)]
    assert message.edns is None


def test_answer_owner_is_a_pointer_to_the_question() -> None:
    reply = Message(
        id=0x1234,
        flags=response_flags(FLAG_RD, 0, authoritative=True),
        questions=[Question("example.com", TYPE_A)],
        answers=[Record("example.com", TYPE_A, 5, "10.43.0.10")],
    )
    wire = encode(reply)
    assert wire == bytes.fromhex(
        "1234 8500 0001 0001 0000 0000"
        "07 6578616d706c65 03 636f6d 00 0001 0001"
        "c00c 0001 0001 00000005 0004 0a2b000a"
    )
    assert decode(wire) == reply


def test_suffixes_are_shared_and_case_is_kept() -> None:
    reply = Message(
        id=1,
        flags=FLAG_QR,
        questions=[Question("Web.Default.svc.cluster.local", TYPE_CNAME)],
        answers=[
            Record("Web.Default.svc.cluster.local", TYPE_CNAME, 5, "api.default.svc.cluster.local")
        ],
    )
    wire = encode(reply)
    # The question spells "Default": the target's "default" is written out and only
    # "svc.cluster.local" (at 12 + 4 + 8) is pointed at.
    target = wire.rindex(b"\x03api")
    assert wire[target:] == b"\x03api\x07default\xc0\x18"
    assert decode(wire).answers[0].data == "api.default.svc.cluster.local"
    assert decode(wire).questions[0].name == "Web.Default.svc.cluster.local"
    # The whole name again: one pointer.
    again = encode(
        Message(
            questions=[Question("a.b", TYPE_A)],
            answers=[Record("a.b", TYPE_A, 1, "1.2.3.4"), Record("x.a.b", TYPE_A, 1, "1.2.3.5")],
        )
    )
    assert b"\x01x\xc0\x0c" in again


def test_every_record_type_round_trips() -> None:
    records = [
        Record("h.example", TYPE_AAAA, 5, "fd00::1"),
        Record("example", TYPE_MX, 60, Mx(10, "mail.example")),
        Record("example", TYPE_TXT, 28800, (b"1.1.0", b"")),
        Record(
            "cluster.local",
            TYPE_SOA,
            5,
            Soa("ns.dns.cluster.local", "hostmaster.cluster.local", 7, 7200, 1800, 86400, 5),
        ),
        Record(
            "_dns._udp.kube-dns.kube-system.svc.cluster.local",
            TYPE_SRV,
            5,
            Srv(0, 100, 53, "kube-dns.kube-system.svc.cluster.local"),
        ),
        Record("example", 99, 5, b"\x00\x01opaque"),
    ]
    message = Message(
        id=7, flags=FLAG_QR | FLAG_AA, questions=[Question("example", 255)], answers=records
    )
    assert decode(encode(message)).answers == records


def test_srv_target_is_never_compressed() -> None:
    wire = encode(
        Message(
            questions=[Question("svc.ns.svc.cluster.local", TYPE_SRV)],
            answers=[
                Record(
                    "svc.ns.svc.cluster.local",
                    TYPE_SRV,
                    5,
                    Srv(0, 100, 80, "svc.ns.svc.cluster.local"),
                )
            ],
        )
    )
    assert wire.endswith(b"\x03svc\x02ns\x03svc\x07cluster\x05local\x00")


def test_edns_opt_record_golden_bytes_and_passthrough() -> None:
    options = bytes.fromhex("000a 0008 0102030405060708")  # a COOKIE option
    wire = query("a", TYPE_A, ident=1, edns=Edns(udp_size=1232, dnssec_ok=True, options=options))
    assert wire.endswith(bytes.fromhex("00 0029 04d0 00008000 000c") + options)
    assert wire[10:12] == b"\x00\x01"  # ARCOUNT counts the OPT record
    parsed = decode(wire)
    assert parsed.edns == Edns(udp_size=1232, dnssec_ok=True, options=options)
    assert parsed.additionals == []


def test_extended_rcode_lives_in_the_opt_record() -> None:
    flags = response_flags(0, RCODE_BADVERS, authoritative=False)
    wire = encode(Message(id=1, flags=flags, edns=Edns(extended_rcode=RCODE_BADVERS >> 4)))
    assert decode(wire).rcode == RCODE_BADVERS
    assert decode(encode(Message(flags=RCODE_NXDOMAIN))).rcode == RCODE_NXDOMAIN


def _headless_reply(count: int, *, edns: Edns | None = None) -> Message:
    name = "db.default.svc.cluster.local"
    return Message(
        id=9,
        flags=FLAG_QR,
        questions=[Question(name, TYPE_A)],
        answers=[Record(name, TYPE_A, 5, f"10.42.{i // 250}.{i % 250 + 1}") for i in range(count)],
        additionals=[Record("x", TYPE_A, 5, "1.1.1.1")],
        edns=edns,
    )


def test_truncation_keeps_whole_records_and_sets_tc() -> None:
    wire = encode(_headless_reply(100), MAX_UDP_PLAIN)
    assert len(wire) <= MAX_UDP_PLAIN
    message = decode(wire)
    assert message.has(FLAG_TC)
    # header 12 + question 34 + 16 octets per compressed A record
    assert len(message.answers) == (MAX_UDP_PLAIN - 12 - 34) // 16
    assert message.additionals == []
    assert not decode(encode(_headless_reply(100))).has(FLAG_TC)


def test_truncation_keeps_the_opt_record() -> None:
    wire = encode(_headless_reply(100, edns=Edns(udp_size=1232)), 600)
    message = decode(wire)
    assert len(wire) <= 600 and message.has(FLAG_TC) and message.edns is not None


def test_additional_records_are_dropped_without_tc() -> None:
    reply = _headless_reply(29)  # 12 + 34 + 29 * 16 = 510 octets: the 17 more do not fit
    message = decode(encode(reply, MAX_UDP_PLAIN))
    assert len(message.answers) == 29 and message.additionals == []
    assert not message.has(FLAG_TC)


@pytest.mark.parametrize(
    "wire",
    [
        b"\x00\x01\x00",  # shorter than a header
        bytes.fromhex("0001 0000 0001 0000 0000 0000 c00c 0001 0001"),  # pointer to itself
        bytes.fromhex("0001 0000 0001 0000 0000 0000 c00e 00 0001 0001"),  # forward pointer
        bytes.fromhex("0001 0000 0001 0000 0000 0000 05 6162 00"),  # label past the end
        bytes.fromhex("0001 0000 0001 0000 0000 0000 41 00 0001 0001"),  # label type 0x40
        bytes.fromhex("0001 0000 0000 0001 0000 0000 00 0001 0001 00000005 0003 010203"),
    ],
)
def test_malformed_messages_are_refused(wire: bytes) -> None:
    with pytest.raises(WireError):
        decode(wire)


def test_names_longer_than_255_octets_are_refused() -> None:
    long_name = ".".join(["a" * 63] * 4)  # 4 * 64 + 1 = 257 octets
    with pytest.raises(WireError):
        name_labels(long_name)
    with pytest.raises(WireError):
        name_labels("a" * 64 + ".example")
    with pytest.raises(WireError):
        name_labels("a..b")


def test_odd_label_bytes_survive_as_escapes() -> None:
    wire = bytes.fromhex("0001 0000 0001 0000 0000 0000 03 612e5c 01 ff 00 0001 0001")
    message = decode(wire)
    assert message.questions[0].name == "a\\.\\\\.\\255"
    assert encode(message) == wire
