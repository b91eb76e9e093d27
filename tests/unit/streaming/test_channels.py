"""The WebSocket channel protocol of exec and attach."""

from __future__ import annotations

import orjson

from timonel.streaming import channels


def test_the_first_offered_supported_protocol_wins() -> None:
    offered = channels.offered_protocols(["v5.channel.k8s.io, v4.channel.k8s.io", "channel.k8s.io"])
    assert offered == ["v5.channel.k8s.io", "v4.channel.k8s.io", "channel.k8s.io"]
    assert channels.choose_protocol(offered, [channels.V4, channels.V5]) == channels.V5
    assert (
        channels.choose_protocol(["v4.channel.k8s.io"], [channels.V5, channels.V4]) == channels.V4
    )
    assert channels.choose_protocol(["base64.channel.k8s.io"], [channels.V5]) is None


def test_messages_are_a_channel_byte_and_a_payload() -> None:
    assert channels.frame(channels.STDOUT, b"out") == b"\x01out"
    assert channels.parse(b"\x00in") == (channels.STDIN, b"in")
    assert channels.parse(b"") == (-1, b"")
    assert channels.close_message(channels.STDIN) == b"\xff\x00"
    channel, payload = channels.parse(channels.close_message(channels.STDIN))
    assert channel == channels.CLOSE
    assert channels.closed_channel(payload) == channels.STDIN
    assert channels.closed_channel(b"") is None


def test_resize_messages() -> None:
    assert channels.parse_resize(b'{"Width":120,"Height":40}\n') == (120, 40)
    assert channels.parse_resize(b'{"Width":0,"Height":0}') == (0, 0)
    assert channels.parse_resize(b"not json") is None
    assert channels.parse_resize(b'{"Width":-1,"Height":3}') is None
    assert channels.parse_resize(b'{"Height":3}') is None


def test_status_payloads_carry_the_exit_code() -> None:
    assert orjson.loads(channels.success_status()) == {"metadata": {}, "status": "Success"}
    failed = orjson.loads(channels.exit_code_status(3, "sh -c exit 3"))
    assert failed["reason"] == "NonZeroExitCode"
    assert failed["details"]["causes"] == [{"reason": "ExitCode", "message": "3"}]
    assert failed["message"] == (
        "command terminated with non-zero exit code: error executing command "
        "[sh -c exit 3], exit code 3"
    )
    assert channels.exit_code_of(channels.exit_code_status(42)) == 42
    assert channels.exit_code_of(channels.success_status()) == 0
    assert channels.exit_code_of(b"") == 0
    assert channels.exit_code_of(channels.failure_status("no such container")) is None
    assert channels.exit_code_of(b"garbage") is None
