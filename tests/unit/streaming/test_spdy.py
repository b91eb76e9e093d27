"""SPDY/3.1 framing, header compression and sessions."""

from __future__ import annotations

import asyncio
import socket
import zlib
from collections.abc import AsyncIterator

import pytest

from timonel.streaming import spdy


def test_the_header_dictionary_is_the_one_spdy3_specifies() -> None:
    assert len(spdy.HEADER_DICTIONARY) == 1423
    assert zlib.adler32(spdy.HEADER_DICTIONARY) == 0xE3C6A7C2


def test_control_and_data_frames_have_the_spdy3_layout() -> None:
    encoder = spdy.FrameEncoder()
    assert encoder.encode(spdy.Ping(1)) == bytes.fromhex("80030006 00000004 00000001")
    assert (
        encoder.encode(spdy.Data(3, b"hi", fin=True)) == bytes.fromhex("00000003 01000002") + b"hi"
    )
    assert encoder.encode(spdy.RstStream(5, spdy.CANCEL)) == bytes.fromhex(
        "80030003 00000008 00000005 00000005"
    )
    assert encoder.encode(spdy.GoAway(7, 0)) == bytes.fromhex("80030007 00000008 00000007 00000000")
    assert encoder.encode(spdy.WindowUpdate(1, 65536)) == bytes.fromhex(
        "80030009 00000008 00000001 00010000"
    )


def test_syn_stream_carries_flags_ids_priority_and_a_compressed_block() -> None:
    wire = spdy.FrameEncoder().encode(
        spdy.SynStream(1, {"streamType": "error"}, fin=True, associated_to=0, priority=2)
    )
    assert wire[:4] == bytes.fromhex("80030001")
    assert wire[4] == spdy.FLAG_FIN
    assert int.from_bytes(wire[5:8], "big") == len(wire) - 8
    assert wire[8:12] == (1).to_bytes(4, "big")
    assert wire[12:16] == (0).to_bytes(4, "big")
    assert wire[16] == 2 << 5
    # The block is zlib with the SPDY dictionary: any zlib reader given it can read it.
    reader = zlib.decompressobj(zdict=spdy.HEADER_DICTIONARY)
    block = reader.decompress(wire[18:])
    assert block == spdy.encode_header_block({"streamtype": "error"})
    assert spdy.decode_header_block(block) == {"streamtype": "error"}


def test_header_names_are_lower_cased_and_values_keep_nul_joined_lists() -> None:
    block = spdy.encode_header_block(
        {"X-Stream-Protocol-Version": spdy.join_values(["v4.channel.k8s.io", "v3.channel.k8s.io"])}
    )
    headers = spdy.decode_header_block(block)
    assert list(headers) == ["x-stream-protocol-version"]
    assert spdy.header_values(headers, "X-Stream-Protocol-Version") == [
        "v4.channel.k8s.io",
        "v3.channel.k8s.io",
    ]


def test_every_frame_type_survives_a_round_trip_fed_one_byte_at_a_time() -> None:
    frames: list[spdy.Frame] = [
        spdy.SynStream(1, {"streamtype": "error", "port": "80", "requestid": "0"}),
        spdy.SynReply(1, {}),
        spdy.Data(1, b"", fin=True),
        spdy.SynStream(3, {"streamtype": "data", "port": "80", "requestid": "0"}),
        spdy.SynReply(3, {"x": "y"}, fin=False),
        spdy.Data(3, b"GET / HTTP/1.1\r\n\r\n"),
        spdy.Headers(3, {"trailer": "1"}, fin=True),
        spdy.Settings(((0, 7, 65536), (1, 4, 100))),
        spdy.Ping(2),
        spdy.WindowUpdate(3, 1024),
        spdy.RstStream(3, spdy.REFUSED_STREAM),
        spdy.GoAway(3, 0),
    ]
    encoder, decoder = spdy.FrameEncoder(), spdy.FrameDecoder()
    wire = b"".join(encoder.encode(frame) for frame in frames)
    decoded: list[spdy.Frame] = []
    for i in range(len(wire)):
        decoded += decoder.feed(wire[i : i + 1])
    assert decoded == frames


def test_header_compression_context_spans_frames() -> None:
    encoder = spdy.FrameEncoder()
    headers = {"streamtype": "data", "port": "8080", "requestid": "17"}
    first = encoder.encode(spdy.SynStream(1, headers))
    second = encoder.encode(spdy.SynStream(3, headers))
    # The second block refers back to the first: smaller, and unreadable on its own.
    assert len(second) < len(first)
    fresh = spdy.FrameDecoder()
    with pytest.raises(spdy.ProtocolError):
        fresh.feed(second)
    shared = spdy.FrameDecoder()
    assert [f.headers for f in shared.feed(first + second)] == [headers, headers]  # type: ignore[union-attr]


def test_blocks_compressed_by_another_implementation_are_read() -> None:
    # What a Go peer sends: its own zlib stream primed with the dictionary.
    compressor = zlib.compressobj(zlib.Z_BEST_COMPRESSION, zdict=spdy.HEADER_DICTIONARY)
    block = compressor.compress(spdy.encode_header_block({"streamtype": "stdout"}))
    block += compressor.flush(zlib.Z_SYNC_FLUSH)
    payload = (5).to_bytes(4, "big") + block
    wire = bytes.fromhex("80030002") + len(payload).to_bytes(4, "big") + payload
    assert spdy.FrameDecoder().feed(wire) == [spdy.SynReply(5, {"streamtype": "stdout"})]


def test_unknown_control_frames_are_skipped_and_other_versions_refused() -> None:
    decoder = spdy.FrameDecoder()
    unknown = bytes.fromhex("8003000a 00000002 abcd")
    assert decoder.feed(unknown + spdy.FrameEncoder().encode(spdy.Ping(4))) == [spdy.Ping(4)]
    with pytest.raises(spdy.ProtocolError):
        spdy.FrameDecoder().feed(bytes.fromhex("80020006 00000004 00000001"))


def test_malformed_header_blocks_are_protocol_errors() -> None:
    with pytest.raises(spdy.ProtocolError):
        spdy.decode_header_block((1).to_bytes(4, "big") + (10).to_bytes(4, "big") + b"short")
    with pytest.raises(spdy.ProtocolError):
        spdy.decode_header_block(spdy.encode_header_block({"a": "b"}) + b"extra")


# -- sessions --------------------------------------------------------------------------------


async def _connected_pair() -> tuple[spdy.SpdySession, spdy.SpdySession]:
    left, right = socket.socketpair()
    client = spdy.SpdySession(*await asyncio.open_connection(sock=left), client=True)
    server = spdy.SpdySession(*await asyncio.open_connection(sock=right), client=False)
    client.start()
    server.start()
    return client, server


@pytest.fixture
async def sessions() -> AsyncIterator[tuple[spdy.SpdySession, spdy.SpdySession]]:
    client, server = await _connected_pair()
    try:
        yield client, server
    finally:
        await client.close()
        await server.close()


async def test_streams_carry_data_both_ways_and_half_close(
    sessions: tuple[spdy.SpdySession, spdy.SpdySession],
) -> None:
    client, server = sessions
    outgoing = await client.open_stream({"streamType": "stdin"})
    incoming = await asyncio.wait_for(server.accept(), 2)
    assert incoming is not None
    assert incoming.id == outgoing.id == 1
    assert incoming.headers == {"streamtype": "stdin"}
    await asyncio.wait_for(outgoing.replied.wait(), 2)

    await outgoing.write(b"x" * 100_000)
    await outgoing.close()
    assert await asyncio.wait_for(incoming.read_all(), 2) == b"x" * 100_000
    # Half-closed: the other direction still works, and reads past the end stay empty.
    await incoming.write(b"reply")
    await incoming.close()
    assert await asyncio.wait_for(outgoing.read_all(), 2) == b"reply"
    assert await outgoing.read() == b""
    with pytest.raises(ConnectionError):
        await outgoing.write(b"late")


async def test_stream_ids_follow_the_client_and_server_parity(
    sessions: tuple[spdy.SpdySession, spdy.SpdySession],
) -> None:
    client, server = sessions
    ids = [(await client.open_stream({"n": str(i)})).id for i in range(3)]
    assert ids == [1, 3, 5]
    assert (await server.open_stream({})).id == 2


async def test_a_reset_ends_the_peers_stream(
    sessions: tuple[spdy.SpdySession, spdy.SpdySession],
) -> None:
    client, server = sessions
    outgoing = await client.open_stream({"streamtype": "data"})
    incoming = await asyncio.wait_for(server.accept(), 2)
    assert incoming is not None
    incoming.reset(spdy.REFUSED_STREAM)
    assert await asyncio.wait_for(outgoing.read(), 2) == b""
    assert outgoing.reset_status == spdy.REFUSED_STREAM


async def test_pings_from_the_peer_are_echoed_and_a_closed_connection_ends_streams() -> None:
    left, right = socket.socketpair()
    session = spdy.SpdySession(*await asyncio.open_connection(sock=left), client=True)
    session.start()
    reader, writer = await asyncio.open_connection(sock=right)
    encoder, decoder = spdy.FrameEncoder(), spdy.FrameDecoder()
    stream = await session.open_stream({"streamtype": "error"})
    writer.write(encoder.encode(spdy.Ping(2)))  # a server's ping: even
    await writer.drain()
    frames: list[spdy.Frame] = []
    while spdy.Ping(2) not in frames:
        frames += decoder.feed(await asyncio.wait_for(reader.read(1024), 2))
    assert isinstance(frames[0], spdy.SynStream)
    writer.close()
    assert await asyncio.wait_for(stream.read(), 2) == b""
    await asyncio.wait_for(session.closed.wait(), 2)
    await session.close()
