"""DNS messages on the wire (RFC 1035 §4, EDNS0 per RFC 6891), parsed and built.

Names are kept in presentation form without the final dot (the root is ""); a label
byte that is a dot, a backslash or not printable ASCII is written `\\.`, `\\\\` or
`\\DDD`, so any name read can be written back unchanged. Names are compared without
regard to ASCII case; their case is preserved.

`encode` compresses names (RFC 1035 §4.1.4; a name is only pointed at by an identical,
same-case name suffix, so the question's spelling comes back in the answers) and, given a
size limit, keeps whole records until the limit: answer or authority records that do not
fit set the TC bit (the client retries over TCP, RFC 2181 §9); additional records are
dropped silently. An EDNS OPT record is never dropped.

Record data is typed for the types whose data holds names (they may be compressed, so
they must be decoded to be re-encoded elsewhere) and for A, AAAA, SRV and TXT; any other
type keeps its data as bytes.
"""

from __future__ import annotations

import functools
import socket
import struct
from dataclasses import dataclass, field
from typing import Final

# -- numbers ---------------------------------------------------------------------------

TYPE_A: Final = 1
TYPE_NS: Final = 2
TYPE_CNAME: Final = 5
TYPE_SOA: Final = 6
TYPE_PTR: Final = 12
TYPE_MX: Final = 15
TYPE_TXT: Final = 16
TYPE_AAAA: Final = 28
TYPE_SRV: Final = 33
TYPE_OPT: Final = 41
TYPE_ANY: Final = 255

CLASS_IN: Final = 1

OPCODE_QUERY: Final = 0

RCODE_NOERROR: Final = 0
RCODE_FORMERR: Final = 1
RCODE_SERVFAIL: Final = 2
RCODE_NXDOMAIN: Final = 3
RCODE_NOTIMP: Final = 4
RCODE_REFUSED: Final = 5
RCODE_BADVERS: Final = 16  # extended (EDNS) rcode

FLAG_QR: Final = 0x8000
FLAG_AA: Final = 0x0400
FLAG_TC: Final = 0x0200
FLAG_RD: Final = 0x0100
FLAG_RA: Final = 0x0080
FLAG_AD: Final = 0x0020
FLAG_CD: Final = 0x0010
EDNS_FLAG_DO: Final = 0x8000

HEADER_SIZE: Final = 12
MAX_UDP_PLAIN: Final = 512  # a UDP message without EDNS (RFC 1035 §4.2.1)
MAX_MESSAGE: Final = 65535
MAX_NAME: Final = 255
MAX_LABEL: Final = 63
MAX_POINTER_OFFSET: Final = 0x3FFF

TYPE_NAMES: Final = {
    TYPE_A: "A",
    TYPE_NS: "NS",
    TYPE_CNAME: "CNAME",
    TYPE_SOA: "SOA",
    TYPE_PTR: "PTR",
    TYPE_MX: "MX",
    TYPE_TXT: "TXT",
    TYPE_AAAA: "AAAA",
    TYPE_SRV: "SRV",
    TYPE_OPT: "OPT",
    TYPE_ANY: "ANY",
}
RCODE_NAMES: Final = {
    RCODE_NOERROR: "NOERROR",
    RCODE_FORMERR: "FORMERR",
    RCODE_SERVFAIL: "SERVFAIL",
    RCODE_NXDOMAIN: "NXDOMAIN",
    RCODE_NOTIMP: "NOTIMP",
    RCODE_REFUSED: "REFUSED",
    RCODE_BADVERS: "BADVERS",
}

_HEADER = struct.Struct("!HHHHHH")
_QUESTION_TAIL = struct.Struct("!HH")
_RECORD_HEAD = struct.Struct("!HHIH")
_SRV_HEAD = struct.Struct("!HHH")
_SOA_TAIL = struct.Struct("!IIIII")
_U16 = struct.Struct("!H")


class WireError(ValueError):
    """A message that cannot be read or written (the server answers FORMERR)."""


# -- data ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Question:
    name: str
    type: int
    rclass: int = CLASS_IN


@dataclass(frozen=True, slots=True)
class Srv:
    priority: int
    weight: int
    port: int
    target: str


@dataclass(frozen=True, slots=True)
class Mx:
    preference: int
    exchange: str


@dataclass(frozen=True, slots=True)
class Soa:
    mname: str
    rname: str
    serial: int
    refresh: int
    retry: int
    expire: int
    minimum: int


# A/AAAA: the address as text; CNAME/NS/PTR: a name; TXT: the character strings;
# anything else: the raw data.
RData = str | bytes | Srv | Mx | Soa | tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class Record:
    name: str
    type: int
    ttl: int
    data: RData
    rclass: int = CLASS_IN


@dataclass(frozen=True, slots=True)
class Edns:
    """The OPT pseudo-record: the sender's UDP payload size, version, DO bit, the upper
    8 bits of an extended rcode, and the options (raw, passed through untouched)."""

    udp_size: int = 1232
    version: int = 0
    dnssec_ok: bool = False
    extended_rcode: int = 0
    options: bytes = b""


@dataclass(slots=True)
class Message:
    id: int = 0
    flags: int = 0
    """The header's second 16 bits: QR, opcode, AA, TC, RD, RA, AD, CD, low rcode bits."""
    questions: list[Question] = field(default_factory=list)
    answers: list[Record] = field(default_factory=list)
    authorities: list[Record] = field(default_factory=list)
    additionals: list[Record] = field(default_factory=list)
    edns: Edns | None = None

    @property
    def opcode(self) -> int:
        return (self.flags >> 11) & 0xF

    @property
    def rcode(self) -> int:
        """The full rcode: the header's 4 bits plus the OPT record's upper bits."""
        upper = self.edns.extended_rcode if self.edns is not None else 0
        return (upper << 4) | (self.flags & 0xF)

    def has(self, flag: int) -> bool:
        return bool(self.flags & flag)


def response_flags(query_flags: int, rcode: int, *, authoritative: bool) -> int:
    """A reply's flags: QR set, the query's opcode, RD and CD copied, the rcode's low bits."""
    flags = FLAG_QR | (query_flags & (0x7800 | FLAG_RD | FLAG_CD)) | (rcode & 0xF)
    if authoritative:
        flags |= FLAG_AA
    return flags


# -- names -----------------------------------------------------------------------------

_PLAIN_BYTES: Final = frozenset(range(0x21, 0x7F)) - {ord("."), ord("\\")}
_PLAIN: Final = bytes(sorted(_PLAIN_BYTES))


def _label_text(raw: bytes) -> str:
    if not raw.translate(None, _PLAIN):
        return raw.decode("ascii")
    parts = []
    for b in raw:
        if b in _PLAIN_BYTES:
            parts.append(chr(b))
        elif b in (0x2E, 0x5C):
            parts.append("\\" + chr(b))
        else:
            parts.append(f"\\{b:03d}")
    return "".join(parts)


def name_labels(name: str) -> list[bytes]:
    """A presentation-form name as its labels ("" and "." are the root: no labels)."""
    if name in ("", "."):
        return []
    if "\\" not in name:
        text = name[:-1] if name.endswith(".") else name
        try:
            labels = [label.encode("ascii") for label in text.split(".")]
        except UnicodeEncodeError:
            raise WireError(f"name {name!r} is not ASCII") from None
    else:
        labels = _escaped_labels(name)
    for label in labels:
        if not label or len(label) > MAX_LABEL:
            raise WireError(f"name {name!r} has an empty or over-long label")
    if sum(len(label) + 1 for label in labels) + 1 > MAX_NAME:
        raise WireError(f"name {name!r} is longer than {MAX_NAME} octets")
    return labels


def _escaped_labels(name: str) -> list[bytes]:
    labels: list[bytes] = []
    current = bytearray()
    index = 0
    while index < len(name):
        char = name[index]
        if char == "\\":
            digits = name[index + 1 : index + 4]
            if len(digits) == 3 and digits.isdigit():
                value = int(digits)
                if value > 255:
                    raise WireError(f"bad escape in name {name!r}")
                current.append(value)
                index += 4
                continue
            if index + 1 >= len(name):
                raise WireError(f"bad escape in name {name!r}")
            current.extend(name[index + 1].encode("ascii", "strict"))
            index += 2
            continue
        if char == ".":
            labels.append(bytes(current))
            current = bytearray()
            index += 1
            if index == len(name):
                return labels  # the final dot
            continue
        try:
            current.extend(char.encode("ascii"))
        except UnicodeEncodeError:
            raise WireError(f"name {name!r} is not ASCII") from None
        index += 1
    labels.append(bytes(current))
    return labels


def _read_name(data: bytes, offset: int) -> tuple[str, int]:
    """The name at `offset` and the offset after it (after the first pointer, if any)."""
    labels: list[str] = []
    length = 1
    end = -1
    jumps = 0
    size = len(data)
    while True:
        if offset >= size:
            raise WireError("name runs past the end of the message")
        count = data[offset]
        if count == 0:
            offset += 1
            break
        kind = count & 0xC0
        if kind == 0xC0:
            if offset + 1 >= size:
                raise WireError("truncated compression pointer")
            target = ((count & 0x3F) << 8) | data[offset + 1]
            if end < 0:
                end = offset + 2
            jumps += 1
            if target >= offset or jumps > 127:
                raise WireError("compression pointer does not point backwards")
            offset = target
            continue
        if kind:
            raise WireError(f"unsupported label type 0x{kind:02x}")
        start = offset + 1
        offset = start + count
        if offset > size:
            raise WireError("label runs past the end of the message")
        length += count + 1
        if length > MAX_NAME:
            raise WireError("name longer than 255 octets")
        labels.append(_label_text(data[start:offset]))
    return ".".join(labels), (end if end >= 0 else offset)


@functools.lru_cache(maxsize=4096)
def _name_parts(name: str) -> tuple[tuple[bytes, bytes], ...]:
    """For each label of `name`: the wire form of the suffix starting there (the key a
    pointer is found by: same octets, same case) and of the label itself."""
    wire = [bytes((len(label),)) + label for label in name_labels(name)]
    return tuple((b"".join(wire[index:]), wire[index]) for index in range(len(wire)))


class _Writer:
    """A message being built: the bytes and where each name suffix already is."""

    __slots__ = ("added", "buffer", "offsets")

    def __init__(self) -> None:
        self.buffer = bytearray(HEADER_SIZE)
        self.offsets: dict[bytes, int] = {}
        self.added: list[bytes] = []

    def name(self, name: str, *, compress: bool = True) -> None:
        buffer = self.buffer
        offsets = self.offsets
        for suffix, label in _name_parts(name):
            if compress:
                pointer = offsets.get(suffix)
                if pointer is not None:
                    buffer += _U16.pack(0xC000 | pointer)
                    return
            position = len(buffer)
            if position <= MAX_POINTER_OFFSET and suffix not in offsets:
                offsets[suffix] = position
                self.added.append(suffix)
            buffer += label
        buffer.append(0)

    def mark(self) -> tuple[int, int]:
        return len(self.buffer), len(self.added)

    def rollback(self, mark: tuple[int, int]) -> None:
        size, added = mark
        del self.buffer[size:]
        for suffix in self.added[added:]:
            del self.offsets[suffix]
        del self.added[added:]


# -- records ---------------------------------------------------------------------------


def _write_record(writer: _Writer, record: Record) -> None:
    writer.name(record.name)
    buffer = writer.buffer
    head = len(buffer)
    buffer += _RECORD_HEAD.pack(record.type, record.rclass, record.ttl & 0xFFFFFFFF, 0)
    start = len(buffer)
    _write_rdata(writer, record.type, record.data)
    length = len(buffer) - start
    if length > 0xFFFF:
        raise WireError("record data longer than 65535 octets")
    buffer[head + 8 : head + 10] = _U16.pack(length)


def _write_rdata(writer: _Writer, rtype: int, data: RData) -> None:
    buffer = writer.buffer
    try:
        if isinstance(data, bytes):
            buffer += data
        elif rtype == TYPE_A and isinstance(data, str):
            buffer += socket.inet_pton(socket.AF_INET, data)
        elif rtype == TYPE_AAAA and isinstance(data, str):
            buffer += socket.inet_pton(socket.AF_INET6, data)
        elif rtype in (TYPE_CNAME, TYPE_NS, TYPE_PTR) and isinstance(data, str):
            writer.name(data)
        elif isinstance(data, Srv):
            buffer += _SRV_HEAD.pack(data.priority, data.weight, data.port)
            writer.name(data.target, compress=False)  # RFC 2782: never compressed
        elif isinstance(data, Mx):
            buffer += _U16.pack(data.preference)
            writer.name(data.exchange)
        elif isinstance(data, Soa):
            writer.name(data.mname)
            writer.name(data.rname)
            buffer += _SOA_TAIL.pack(
                data.serial & 0xFFFFFFFF, data.refresh, data.retry, data.expire, data.minimum
            )
        elif isinstance(data, tuple):
            for text in data:
                if len(text) > 255:
                    raise WireError("TXT string longer than 255 octets")
                buffer.append(len(text))
                buffer += text
        else:
            raise WireError(f"no encoding for {TYPE_NAMES.get(rtype, rtype)} data {data!r}")
    except (OSError, struct.error) as error:
        raise WireError(f"bad {TYPE_NAMES.get(rtype, rtype)} data {data!r}: {error}") from None


def _read_rdata(data: bytes, rtype: int, start: int, end: int) -> RData:
    if rtype == TYPE_A:
        if end - start != 4:
            raise WireError("A data is not 4 octets")
        return socket.inet_ntop(socket.AF_INET, data[start:end])
    if rtype == TYPE_AAAA:
        if end - start != 16:
            raise WireError("AAAA data is not 16 octets")
        return socket.inet_ntop(socket.AF_INET6, data[start:end])
    if rtype in (TYPE_CNAME, TYPE_NS, TYPE_PTR):
        name, after = _read_name(data, start)
        _expect_end(after, end)
        return name
    if rtype == TYPE_SRV:
        if end - start < 7:
            raise WireError("SRV data too short")
        priority, weight, port = _SRV_HEAD.unpack_from(data, start)
        target, after = _read_name(data, start + 6)
        _expect_end(after, end)
        return Srv(priority, weight, port, target)
    if rtype == TYPE_MX:
        if end - start < 3:
            raise WireError("MX data too short")
        exchange, after = _read_name(data, start + 2)
        _expect_end(after, end)
        return Mx(_U16.unpack_from(data, start)[0], exchange)
    if rtype == TYPE_SOA:
        mname, offset = _read_name(data, start)
        rname, offset = _read_name(data, offset)
        _expect_end(offset + _SOA_TAIL.size, end)
        return Soa(mname, rname, *_SOA_TAIL.unpack_from(data, offset))
    if rtype == TYPE_TXT:
        strings = []
        offset = start
        while offset < end:
            length = data[offset]
            if offset + 1 + length > end:
                raise WireError("TXT string runs past its record")
            strings.append(bytes(data[offset + 1 : offset + 1 + length]))
            offset += 1 + length
        return tuple(strings)
    return bytes(data[start:end])


def _expect_end(offset: int, end: int) -> None:
    if offset != end:
        raise WireError("record data length does not match its content")


# -- messages --------------------------------------------------------------------------


def _opt_record(edns: Edns) -> bytes:
    ttl = (edns.extended_rcode & 0xFF) << 24 | (edns.version & 0xFF) << 16
    if edns.dnssec_ok:
        ttl |= EDNS_FLAG_DO
    return (
        b"\x00"
        + _RECORD_HEAD.pack(TYPE_OPT, max(edns.udp_size, MAX_UDP_PLAIN), ttl, len(edns.options))
        + edns.options
    )


def encode(message: Message, limit: int = MAX_MESSAGE) -> bytes:
    """The message's wire form, at most `limit` octets (see the module's docstring for
    what is dropped and when TC is set). An `edns` sets the OPT record; the rcode's upper
    bits come from `edns.extended_rcode`."""
    writer = _Writer()
    for question in message.questions:
        writer.name(question.name)
        writer.buffer += _QUESTION_TAIL.pack(question.type, question.rclass)
    opt = b""
    flags = message.flags
    if message.edns is not None:
        opt = _opt_record(message.edns)
    room = limit - len(opt)
    if len(writer.buffer) > room:
        raise WireError("the question alone exceeds the size limit")
    counts = [0, 0, 0]
    truncated = False
    for section, records in enumerate((message.answers, message.authorities, message.additionals)):
        for record in records:
            mark = writer.mark()
            _write_record(writer, record)
            if len(writer.buffer) > room:
                writer.rollback(mark)
                truncated = section < 2
                break
            counts[section] += 1
        else:
            continue
        break
    if truncated:
        flags |= FLAG_TC
    buffer = writer.buffer
    additional = counts[2]
    if opt:
        buffer += opt
        additional += 1
    buffer[:HEADER_SIZE] = _HEADER.pack(
        message.id & 0xFFFF,
        flags & 0xFFFF,
        len(message.questions),
        counts[0],
        counts[1],
        additional,
    )
    return bytes(buffer)


def decode(data: bytes) -> Message:
    """A message from its wire form; `WireError` when it is malformed."""
    if len(data) < HEADER_SIZE:
        raise WireError("message shorter than its header")
    ident, flags, qdcount, ancount, nscount, arcount = _HEADER.unpack_from(data)
    message = Message(id=ident, flags=flags)
    offset = HEADER_SIZE
    for _ in range(qdcount):
        name, offset = _read_name(data, offset)
        if offset + 4 > len(data):
            raise WireError("question runs past the end of the message")
        qtype, qclass = _QUESTION_TAIL.unpack_from(data, offset)
        offset += 4
        message.questions.append(Question(name, qtype, qclass))
    sections = (message.answers, message.authorities, message.additionals)
    for section, count in zip(sections, (ancount, nscount, arcount), strict=True):
        for _ in range(count):
            name, offset = _read_name(data, offset)
            if offset + _RECORD_HEAD.size > len(data):
                raise WireError("record runs past the end of the message")
            rtype, rclass, ttl, length = _RECORD_HEAD.unpack_from(data, offset)
            start = offset + _RECORD_HEAD.size
            offset = start + length
            if offset > len(data):
                raise WireError("record data runs past the end of the message")
            if rtype == TYPE_OPT:
                if section is not message.additionals or message.edns is not None or name:
                    raise WireError("misplaced or repeated OPT record")
                message.edns = Edns(
                    udp_size=rclass,
                    version=(ttl >> 16) & 0xFF,
                    dnssec_ok=bool(ttl & EDNS_FLAG_DO),
                    extended_rcode=(ttl >> 24) & 0xFF,
                    options=bytes(data[start:offset]),
                )
                continue
            section.append(
                Record(name, rtype, ttl, _read_rdata(data, rtype, start, offset), rclass)
            )
    return message


def decode_header(data: bytes) -> tuple[int, int]:
    """The id and flags of something that may not be a whole message ((-1, 0) if it is
    shorter than 4 octets)."""
    if len(data) < 4:
        return -1, 0
    ident, flags = struct.unpack_from("!HH", data)
    return ident, flags


def query(
    name: str,
    rtype: int,
    *,
    ident: int = 0,
    recursion_desired: bool = True,
    edns: Edns | None = None,
) -> bytes:
    """A standard query for one name and type."""
    return encode(
        Message(
            id=ident,
            flags=FLAG_RD if recursion_desired else 0,
            questions=[Question(name, rtype)],
            edns=edns,
        )
    )
