"""Unary gRPC calls over HTTP/2 (cleartext, prior knowledge) on asyncio.

The node agent makes only unary calls to one local runtime, so it speaks the wire protocol
itself instead of loading grpcio (whose core and threads are most of an idle agent's
memory). What is implemented is what unary gRPC needs (RFC 9113, RFC 7541, gRPC's
PROTOCOL-HTTP2.md): one connection per channel, opened on first use and again after it
broke; concurrent streams; flow control both ways; HPACK decoding with the dynamic table
and Huffman strings (requests are encoded as plain literals); SETTINGS, PING, GOAWAY,
RST_STREAM. Messages are not compressed.

    channel = GrpcChannel("unix:///run/containerd/containerd.sock")
    answer = await channel.unary("/runtime.v1.RuntimeService/Version", request_bytes, 10.0)

Failures raise `RpcError` with the gRPC status code the server sent, or UNAVAILABLE when
the server cannot be reached or the connection broke, DEADLINE_EXCEEDED when the timeout
passed, RESOURCE_EXHAUSTED for an answer larger than `max_message_size`.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import struct
from collections import deque
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import unquote

__all__ = ["GrpcChannel", "RpcError", "StatusCode"]


class StatusCode(enum.IntEnum):
    OK = 0
    CANCELLED = 1
    UNKNOWN = 2
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    ABORTED = 10
    OUT_OF_RANGE = 11
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    DATA_LOSS = 15
    UNAUTHENTICATED = 16


class RpcError(Exception):
    def __init__(self, code: StatusCode, details: str) -> None:
        super().__init__(f"{code.name}: {details}")
        self.code = code
        self.details = details


# -- HPACK (RFC 7541) ----------------------------------------------------------------------

STATIC_TABLE: Final[tuple[tuple[str, str], ...]] = (
    (":authority", ""),
    (":method", "GET"),
    (":method", "POST"),
    (":path", "/"),
    (":path", "/index.html"),
    (":scheme", "http"),
    (":scheme", "https"),
    (":status", "200"),
    (":status", "204"),
    (":status", "206"),
    (":status", "304"),
    (":status", "400"),
    (":status", "404"),
    (":status", "500"),
    ("accept-charset", ""),
    ("accept-encoding", "gzip, deflate"),
    ("accept-language", ""),
    ("accept-ranges", ""),
    ("accept", ""),
    ("access-control-allow-origin", ""),
    ("age", ""),
    ("allow", ""),
    ("authorization", ""),
    ("cache-control", ""),
    ("content-disposition", ""),
    ("content-encoding", ""),
    ("content-language", ""),
    ("content-length", ""),
    ("content-location", ""),
    ("content-range", ""),
    ("content-type", ""),
    ("cookie", ""),
    ("date", ""),
    ("etag", ""),
    ("expect", ""),
    ("expires", ""),
    ("from", ""),
    ("host", ""),
    ("if-match", ""),
    ("if-modified-since", ""),
    ("if-none-match", ""),
    ("if-range", ""),
    ("if-unmodified-since", ""),
    ("last-modified", ""),
    ("link", ""),
    ("location", ""),
    ("max-forwards", ""),
    ("proxy-authenticate", ""),
    ("proxy-authorization", ""),
    ("range", ""),
    ("referer", ""),
    ("refresh", ""),
    ("retry-after", ""),
    ("server", ""),
    ("set-cookie", ""),
    ("strict-transport-security", ""),
    ("transfer-encoding", ""),
    ("user-agent", ""),
    ("vary", ""),
    ("via", ""),
    ("www-authenticate", ""),
)

# The Huffman code of RFC 7541 Appendix B is canonical: codes are assigned in order of
# (length, symbol), so the bit length of each of the 256 symbols defines it. One letter per
# symbol: "a" is 5 bits ... "z" is 30. EOS (256) is the 30-bit code of all ones.
_HUFFMAN_LENGTHS: Final = (
    "isxxxxxxxtzxxzxxxxxxxxzxxxxxxxxxbffhibdgffdgdbbbaaabbbbbbbcdkbhfibcccccccccccccc"
    "ccccccccdcdioijbkabababbbaccbbbabcbaabccccckgjixprpprrrsrssssststtrstssssqrsrsst"
    "rqprrssqsrrtqrssqqrqsrssprrrsrrsvvporsruvvvwwvtuoqvwwvwtqqvvxwwwptpqrqqsrruuttvs"
    "vwvvwwwwwxwwwwwv"
)


def _huffman_decode_table() -> dict[tuple[int, int], int]:
    lengths = [ord(letter) - ord("a") + 5 for letter in _HUFFMAN_LENGTHS]
    symbols = sorted(range(256), key=lambda symbol: (lengths[symbol], symbol))
    table: dict[tuple[int, int], int] = {}
    code = 0
    previous = lengths[symbols[0]]
    for position, symbol in enumerate(symbols):
        if position:
            code = (code + 1) << (lengths[symbol] - previous)
        previous = lengths[symbol]
        table[(lengths[symbol], code)] = symbol
    return table


_HUFFMAN: dict[tuple[int, int], int] | None = None


class HpackError(Exception):
    pass


def huffman_decode(data: bytes) -> bytes:
    global _HUFFMAN
    if _HUFFMAN is None:
        _HUFFMAN = _huffman_decode_table()
    table = _HUFFMAN
    out = bytearray()
    code = length = 0
    for byte in data:
        for shift in range(7, -1, -1):
            code = (code << 1) | ((byte >> shift) & 1)
            length += 1
            symbol = table.get((length, code))
            if symbol is not None:
                out.append(symbol)
                code = length = 0
            elif length > 30:
                raise HpackError("invalid Huffman code")
    # What is left is padding: fewer than 8 bits, all ones (a prefix of EOS).
    if length > 7 or code != (1 << length) - 1:
        raise HpackError("invalid Huffman padding")
    return bytes(out)


def decode_integer(block: bytes, position: int, prefix_bits: int) -> tuple[int, int]:
    mask = (1 << prefix_bits) - 1
    value = block[position] & mask
    position += 1
    if value < mask:
        return value, position
    shift = 0
    while True:
        if position >= len(block):
            raise HpackError("truncated integer")
        byte = block[position]
        position += 1
        value += (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, position


def encode_integer(value: int, prefix_bits: int, first_byte_flags: int = 0) -> bytes:
    mask = (1 << prefix_bits) - 1
    if value < mask:
        return bytes([first_byte_flags | value])
    out = bytearray([first_byte_flags | mask])
    value -= mask
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def encode_headers(headers: list[tuple[str, str]]) -> bytes:
    """A header block of literals without indexing (the decoder keeps no state for them)."""
    out = bytearray()
    for name, value in headers:
        raw_name, raw_value = name.encode("latin-1"), value.encode("latin-1")
        out.append(0x00)
        out += encode_integer(len(raw_name), 7) + raw_name
        out += encode_integer(len(raw_value), 7) + raw_value
    return bytes(out)


class HpackDecoder:
    """Header blocks to (name, value) lists, keeping the dynamic table across blocks."""

    def __init__(self, max_table_size: int = 4096) -> None:
        self.limit = max_table_size
        self.max_size = max_table_size
        self.size = 0
        self.dynamic: deque[tuple[str, str]] = deque()

    def decode(self, block: bytes) -> list[tuple[str, str]]:
        headers: list[tuple[str, str]] = []
        position = 0
        while position < len(block):
            byte = block[position]
            if byte & 0x80:  # indexed field
                index, position = decode_integer(block, position, 7)
                headers.append(self._entry(index))
            elif byte & 0x40:  # literal, added to the dynamic table
                header, position = self._literal(block, position, 6)
                self._add(header)
                headers.append(header)
            elif byte & 0x20:  # dynamic table size update
                size, position = decode_integer(block, position, 5)
                if size > self.limit:
                    raise HpackError("table size update above the advertised limit")
                self.max_size = size
                self._evict()
            else:  # literal without indexing or never indexed
                header, position = self._literal(block, position, 4)
                headers.append(header)
        return headers

    def _entry(self, index: int) -> tuple[str, str]:
        if 1 <= index <= len(STATIC_TABLE):
            return STATIC_TABLE[index - 1]
        dynamic = index - len(STATIC_TABLE) - 1
        if 0 <= dynamic < len(self.dynamic):
            return self.dynamic[dynamic]
        raise HpackError(f"header index {index} out of range")

    def _literal(
        self, block: bytes, position: int, prefix_bits: int
    ) -> tuple[tuple[str, str], int]:
        index, position = decode_integer(block, position, prefix_bits)
        if index:
            name = self._entry(index)[0]
        else:
            name, position = self._string(block, position)
        value, position = self._string(block, position)
        return (name, value), position

    def _string(self, block: bytes, position: int) -> tuple[str, int]:
        if position >= len(block):
            raise HpackError("truncated string")
        huffman = block[position] & 0x80
        length, position = decode_integer(block, position, 7)
        raw = block[position : position + length]
        if len(raw) != length:
            raise HpackError("truncated string")
        if huffman:
            raw = huffman_decode(raw)
        return raw.decode("latin-1"), position + length

    def _add(self, header: tuple[str, str]) -> None:
        self.dynamic.appendleft(header)
        self.size += len(header[0]) + len(header[1]) + 32
        self._evict()

    def _evict(self) -> None:
        while self.size > self.max_size and self.dynamic:
            name, value = self.dynamic.pop()
            self.size -= len(name) + len(value) + 32


# -- HTTP/2 framing (RFC 9113) -------------------------------------------------------------

PREFACE: Final = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = (
    0x0,
    0x1,
    0x3,
    0x4,
    0x6,
    0x7,
    0x8,
    0x9,
)
FLAG_END_STREAM, FLAG_ACK, FLAG_END_HEADERS, FLAG_PADDED, FLAG_PRIORITY = 0x1, 0x1, 0x4, 0x8, 0x20
SETTING_HEADER_TABLE_SIZE, SETTING_ENABLE_PUSH, SETTING_INITIAL_WINDOW_SIZE = 0x1, 0x2, 0x4
SETTING_MAX_FRAME_SIZE = 0x5
DEFAULT_WINDOW: Final = 65_535
RECEIVE_WINDOW: Final = 1 << 24
CANCEL: Final = 0x8
REFUSED_STREAM: Final = 0x7


def frame(kind: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    return (
        struct.pack(">I", len(payload))[1:]
        + bytes([kind, flags])
        + struct.pack(">I", stream_id & 0x7FFFFFFF)
        + payload
    )


def grpc_timeout(seconds: float) -> str:
    """The grpc-timeout header: at most 8 digits and a unit."""
    millis = max(1, int(seconds * 1000))
    return f"{millis}m" if millis < 10**8 else f"{max(1, int(seconds))}S"


@dataclass
class _Stream:
    send_window: int
    done: asyncio.Future[None]
    headers: list[tuple[str, str]] = field(default_factory=list)
    trailers: list[tuple[str, str]] = field(default_factory=list)
    data: bytearray = field(default_factory=bytearray)
    unacknowledged: int = 0
    error: RpcError | None = None

    def finish(self, error: RpcError | None = None) -> None:
        if not self.done.done():
            self.error = error
            self.done.set_result(None)


class _Connection:
    """One HTTP/2 connection and the task that reads it."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.streams: dict[int, _Stream] = {}
        self.next_stream_id = 1
        self.send_window = DEFAULT_WINDOW
        self.peer_initial_window = DEFAULT_WINDOW
        self.peer_max_frame = 16_384
        self.window_opened = asyncio.Event()
        self.decoder = HpackDecoder()
        self.unacknowledged = 0
        self.closed = False
        self.going_away = False
        self.header_fragments: tuple[int, int, bytearray] | None = None
        settings = struct.pack(
            ">HIHIHI",
            SETTING_ENABLE_PUSH,
            0,
            SETTING_INITIAL_WINDOW_SIZE,
            RECEIVE_WINDOW,
            SETTING_HEADER_TABLE_SIZE,
            4096,
        )
        writer.write(
            PREFACE
            + frame(SETTINGS, 0, 0, settings)
            + frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", RECEIVE_WINDOW - DEFAULT_WINDOW))
        )
        self.reading = asyncio.create_task(self._read_frames(), name="grpc-connection")

    @property
    def usable(self) -> bool:
        return not self.closed and not self.going_away and self.next_stream_id < 2**31 - 1

    def open_stream(self) -> tuple[int, _Stream]:
        stream_id = self.next_stream_id
        self.next_stream_id += 2
        stream = _Stream(self.peer_initial_window, asyncio.get_running_loop().create_future())
        self.streams[stream_id] = stream
        return stream_id, stream

    async def send_request(
        self, stream_id: int, stream: _Stream, headers: bytes, body: bytes
    ) -> None:
        """The HEADERS frame, then DATA frames for the whole body (the last one ending the
        stream) within the peer's flow-control windows; frames that may go are written
        together (a small call is one write)."""
        pending = [frame(HEADERS, FLAG_END_HEADERS, stream_id, headers)]
        view = memoryview(body)
        while True:
            if self.closed or stream.done.done():
                return
            size = min(len(view), self.send_window, stream.send_window, self.peer_max_frame)
            if size <= 0 and view:
                self.writer.write(b"".join(pending))
                pending.clear()
                # Wait for a WINDOW_UPDATE (also set when the connection or stream ends).
                self.window_opened.clear()
                await self.window_opened.wait()
                continue
            last = size == len(view)
            flags = FLAG_END_STREAM if last else 0
            pending.append(frame(DATA, flags, stream_id, bytes(view[:size])))
            self.send_window -= size
            stream.send_window -= size
            view = view[size:]
            if last:
                self.writer.write(b"".join(pending))
                await self.writer.drain()
                return

    def cancel(self, stream_id: int) -> None:
        self.window_opened.set()
        if self.streams.pop(stream_id, None) is not None and not self.closed:
            self.writer.write(frame(RST_STREAM, 0, stream_id, struct.pack(">I", CANCEL)))

    async def close(self) -> None:
        self._fail_all(RpcError(StatusCode.UNAVAILABLE, "channel closed"))
        self.reading.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self.reading
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()

    def _fail_all(self, error: RpcError) -> None:
        self.closed = True
        for stream in self.streams.values():
            stream.finish(error)
        self.streams.clear()
        self.window_opened.set()

    async def _read_frames(self) -> None:
        try:
            while True:
                head = await self.reader.readexactly(9)
                length = int.from_bytes(head[:3], "big")
                kind, flags = head[3], head[4]
                stream_id = int.from_bytes(head[5:9], "big") & 0x7FFFFFFF
                payload = await self.reader.readexactly(length) if length else b""
                self._on_frame(kind, flags, stream_id, payload)
        except (asyncio.IncompleteReadError, ConnectionError, OSError) as error:
            reason = (
                "connection closed"
                if isinstance(error, asyncio.IncompleteReadError)
                else str(error)
            )
            self._fail_all(RpcError(StatusCode.UNAVAILABLE, reason))
        except (HpackError, struct.error, IndexError, ValueError) as error:
            self._fail_all(RpcError(StatusCode.INTERNAL, f"HTTP/2 protocol error: {error}"))
            self.writer.close()

    def _on_frame(self, kind: int, flags: int, stream_id: int, payload: bytes) -> None:
        if self.header_fragments is not None and kind != CONTINUATION:
            raise HpackError("header block interrupted")
        if kind == DATA:
            self._on_data(flags, stream_id, payload)
        elif kind == HEADERS:
            if flags & FLAG_PADDED:
                payload = payload[1 : len(payload) - payload[0]]
            if flags & FLAG_PRIORITY:
                payload = payload[5:]
            self.header_fragments = (stream_id, flags, bytearray(payload))
            if flags & FLAG_END_HEADERS:
                self._on_header_block()
        elif kind == CONTINUATION:
            if self.header_fragments is None or self.header_fragments[0] != stream_id:
                raise HpackError("unexpected CONTINUATION")
            self.header_fragments[2].extend(payload)
            if flags & FLAG_END_HEADERS:
                self._on_header_block()
        elif kind == RST_STREAM:
            stream = self.streams.pop(stream_id, None)
            if stream is not None:
                code = int.from_bytes(payload[:4], "big")
                status = StatusCode.UNAVAILABLE if code == REFUSED_STREAM else StatusCode.INTERNAL
                if code == CANCEL:
                    status = StatusCode.CANCELLED
                stream.finish(RpcError(status, f"stream reset by the server (code {code})"))
                self.window_opened.set()
        elif kind == SETTINGS and not flags & FLAG_ACK:
            self._on_settings(payload)
        elif kind == PING and not flags & FLAG_ACK:
            self.writer.write(frame(PING, FLAG_ACK, 0, payload))
        elif kind == GOAWAY:
            self.going_away = True
            last_stream = int.from_bytes(payload[:4], "big") & 0x7FFFFFFF
            for other in [s for s in self.streams if s > last_stream]:
                self.streams.pop(other).finish(
                    RpcError(StatusCode.UNAVAILABLE, "the server is going away")
                )
            self.window_opened.set()
        elif kind == WINDOW_UPDATE:
            increment = int.from_bytes(payload[:4], "big") & 0x7FFFFFFF
            if stream_id == 0:
                self.send_window += increment
            elif (stream := self.streams.get(stream_id)) is not None:
                stream.send_window += increment
            self.window_opened.set()

    def _on_data(self, flags: int, stream_id: int, payload: bytes) -> None:
        received = len(payload)
        if flags & FLAG_PADDED:
            payload = payload[1 : len(payload) - payload[0]]
        self.unacknowledged += received
        if self.unacknowledged >= RECEIVE_WINDOW // 2:
            self.writer.write(frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", self.unacknowledged)))
            self.unacknowledged = 0
        stream = self.streams.get(stream_id)
        if stream is None:
            return
        stream.data += payload
        stream.unacknowledged += received
        if stream.unacknowledged >= RECEIVE_WINDOW // 2 and not flags & FLAG_END_STREAM:
            self.writer.write(
                frame(WINDOW_UPDATE, 0, stream_id, struct.pack(">I", stream.unacknowledged))
            )
            stream.unacknowledged = 0
        if flags & FLAG_END_STREAM:
            self.streams.pop(stream_id, None)
            stream.finish()

    def _on_header_block(self) -> None:
        assert self.header_fragments is not None
        stream_id, flags, block = self.header_fragments
        self.header_fragments = None
        headers = self.decoder.decode(bytes(block))  # always, to keep the table in step
        stream = self.streams.get(stream_id)
        if stream is None:
            return
        if stream.headers:
            stream.trailers = headers
        else:
            stream.headers = headers
        if flags & FLAG_END_STREAM:
            self.streams.pop(stream_id, None)
            stream.finish()

    def _on_settings(self, payload: bytes) -> None:
        for offset in range(0, len(payload) - len(payload) % 6, 6):
            key, value = struct.unpack_from(">HI", payload, offset)
            if key == SETTING_INITIAL_WINDOW_SIZE:
                delta = value - self.peer_initial_window
                self.peer_initial_window = value
                for stream in self.streams.values():
                    stream.send_window += delta
            elif key == SETTING_MAX_FRAME_SIZE:
                self.peer_max_frame = value
        self.writer.write(frame(SETTINGS, FLAG_ACK, 0))
        self.window_opened.set()


def _status_of(stream: _Stream, max_message_size: int) -> bytes:
    """The response message, or the RpcError the stream ended with."""
    if stream.error is not None:
        raise stream.error
    headers = dict(stream.headers)
    if headers.get(":status") != "200":
        raise RpcError(
            StatusCode.UNKNOWN if headers.get(":status") else StatusCode.INTERNAL,
            f"unexpected HTTP status {headers.get(':status')!r}",
        )
    ending = dict(stream.trailers) if stream.trailers else headers
    status = ending.get("grpc-status")
    if status is None:
        raise RpcError(StatusCode.INTERNAL, "the server sent no grpc-status")
    try:
        code = StatusCode(int(status))
    except ValueError:
        code = StatusCode.UNKNOWN
    if code != StatusCode.OK:
        raise RpcError(code, unquote(ending.get("grpc-message", "")))
    data = stream.data
    if len(data) < 5:
        raise RpcError(StatusCode.INTERNAL, "the server sent no message")
    if data[0]:
        raise RpcError(StatusCode.INTERNAL, "compressed message without a negotiated encoding")
    size = int.from_bytes(data[1:5], "big")
    if size > max_message_size:
        raise RpcError(
            StatusCode.RESOURCE_EXHAUSTED,
            f"received message larger than max ({size} vs. {max_message_size})",
        )
    if len(data) != 5 + size:
        raise RpcError(StatusCode.INTERNAL, "the answer's length does not match its message")
    return bytes(data[5:])


class GrpcChannel:
    """Unary calls to one gRPC server (`unix:///path`, `/path` or `host:port`). Create and
    use it in one event loop; the connection opens on the first call."""

    def __init__(
        self, target: str, *, max_message_size: int = 4 * 1024 * 1024, authority: str = ""
    ) -> None:
        self.target = target
        self.max_message_size = max_message_size
        self.authority = authority or ("localhost" if self._unix_path() else target)
        self._connection: _Connection | None = None
        self._connecting = asyncio.Lock()

    def _unix_path(self) -> str:
        if self.target.startswith("unix://"):
            return self.target[len("unix://") :]
        if self.target.startswith("unix:"):
            return self.target[len("unix:") :]
        return self.target if self.target.startswith("/") else ""

    async def _connect(self) -> _Connection:
        connection = self._connection
        if connection is not None and connection.usable:
            return connection
        async with self._connecting:
            connection = self._connection
            if connection is not None and connection.usable:
                return connection
            if connection is not None and not connection.streams:
                await connection.close()
            try:
                path = self._unix_path()
                if path:
                    reader, writer = await asyncio.open_unix_connection(path)
                else:
                    host, _, port = self.target.rpartition(":")
                    reader, writer = await asyncio.open_connection(host.strip("[]"), int(port))
            except (OSError, ValueError) as error:
                raise RpcError(
                    StatusCode.UNAVAILABLE, f"connection to {self.target}: {error}"
                ) from None
            self._connection = _Connection(reader, writer)
            return self._connection

    async def unary(self, path: str, request: bytes, timeout: float | None) -> bytes:
        """Call `path` ("/package.Service/Method") with a serialized request message and
        return the serialized answer."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        try:
            async with asyncio.timeout_at(deadline):
                connection = await self._connect()
                stream_id, stream = connection.open_stream()
                try:
                    headers = [
                        (":method", "POST"),
                        (":scheme", "http"),
                        (":path", path),
                        (":authority", self.authority),
                        ("content-type", "application/grpc"),
                        ("te", "trailers"),
                    ]
                    if deadline is not None:
                        headers.append(("grpc-timeout", grpc_timeout(deadline - loop.time())))
                    body = b"\x00" + len(request).to_bytes(4, "big") + request
                    await connection.send_request(stream_id, stream, encode_headers(headers), body)
                    await asyncio.shield(stream.done)
                finally:
                    connection.cancel(stream_id)
        except TimeoutError:
            raise RpcError(StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded") from None
        except (ConnectionError, OSError) as error:
            raise RpcError(StatusCode.UNAVAILABLE, str(error)) from None
        return _status_of(stream, self.max_message_size)

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()
            self._connection = None
