"""HPACK decoding (RFC 7541 Appendix C examples) and gRPC header values of grpcwire."""

from __future__ import annotations

import pytest

from timonel.agent.runtime.grpcwire import (
    HpackDecoder,
    HpackError,
    decode_integer,
    encode_headers,
    encode_integer,
    grpc_timeout,
    huffman_decode,
)


def test_huffman_strings() -> None:
    assert huffman_decode(bytes.fromhex("f1e3c2e5f23a6ba0ab90f4ff")) == b"www.example.com"
    assert huffman_decode(bytes.fromhex("a8eb10649cbf")) == b"no-cache"
    assert huffman_decode(bytes.fromhex("6402")) == b"302"
    with pytest.raises(HpackError):
        huffman_decode(bytes.fromhex("f1e3c2e5f23a6ba0ab90f400"))  # padding not all ones


def test_integers_round_trip() -> None:
    for value in (0, 10, 30, 31, 127, 1337, 2**20):
        encoded = encode_integer(value, 5)
        assert decode_integer(encoded, 0, 5) == (value, len(encoded))
    assert encode_integer(1337, 5) == bytes([31, 154, 10])  # RFC 7541 C.1.2


def test_header_blocks_share_the_dynamic_table() -> None:
    decoder = HpackDecoder()
    authority = (":authority", "www.example.com")
    assert decoder.decode(bytes.fromhex("828684418cf1e3c2e5f23a6ba0ab90f4ff")) == [
        (":method", "GET"),
        (":scheme", "http"),
        (":path", "/"),
        authority,
    ]
    second = decoder.decode(bytes.fromhex("828684be5886a8eb10649cbf"))
    assert second[3:] == [authority, ("cache-control", "no-cache")]
    third = decoder.decode(bytes.fromhex("828785bf408825a849e95ba97d7f8925a849e95bb8e8b4bf"))
    assert third[1:] == [
        (":scheme", "https"),
        (":path", "/index.html"),
        authority,
        ("custom-key", "custom-value"),
    ]
    assert decoder.size == 164


def test_evicts_beyond_the_table_size() -> None:
    decoder = HpackDecoder(max_table_size=256)
    # RFC 7541 C.5: three responses with a 256-byte table evict the oldest entries.
    decoder.decode(
        bytes.fromhex(
            "4803333032580770726976617465611d4d6f6e2c203231204f637420323031332032303a31333a"
            "323120474d546e1768747470733a2f2f7777772e6578616d706c652e636f6d"
        )
    )
    assert decoder.size == 222
    decoder.decode(bytes.fromhex("4803333037c1c0bf"))
    assert decoder.size == 222 and decoder.dynamic[0] == (":status", "307")
    with pytest.raises(HpackError):
        decoder.decode(bytes.fromhex("3fe11f"))  # size update above the limit


def test_own_header_blocks_decode() -> None:
    headers = [(":path", "/runtime.v1.RuntimeService/Version"), ("x-long", "v" * 300)]
    assert HpackDecoder().decode(encode_headers(headers)) == headers


def test_grpc_timeout_values() -> None:
    assert grpc_timeout(10) == "10000m"
    assert grpc_timeout(0.0001) == "1m"
    assert grpc_timeout(200_000) == "200000S"
