"""A stand-in for the node's upstream resolver, run in a test namespace: answers A queries
for the `--record NAME=IP` names, NXDOMAIN for any other name; prints "ready" once it
listens on UDP ADDRESS:53, then one JSON line per query it gets ({"name", "type"}).

    python -m tests.e2e.proxy.upstream_dns --listen 10.255.255.53 --record www.example.test=192.0.2.80
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from timonel.agent.dns.wire import (
    RCODE_NOERROR,
    RCODE_NXDOMAIN,
    TYPE_A,
    Message,
    Record,
    decode,
    encode,
    response_flags,
)

FLAG_RA = 0x0080


def reply(query: bytes, records: dict[str, str]) -> bytes:
    message = decode(query)
    question = message.questions[0]
    name = question.name.rstrip(".").lower()
    print(json.dumps({"name": name, "type": question.type}), flush=True)
    if name not in records:
        rcode, answers = RCODE_NXDOMAIN, []
    else:
        rcode = RCODE_NOERROR
        answers = (
            [Record(question.name, TYPE_A, 30, records[name])] if question.type == TYPE_A else []
        )
    flags = response_flags(message.flags, rcode, authoritative=False) | FLAG_RA
    return encode(Message(id=message.id, flags=flags, questions=[question], answers=answers))


class Upstream(asyncio.DatagramProtocol):
    def __init__(self, records: dict[str, str]) -> None:
        self.records = records

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.transport.sendto(reply(data, self.records), addr)  # type: ignore[attr-defined]


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--listen", action="append", required=True, metavar="ADDRESS")
    parser.add_argument("--record", action="append", default=[], metavar="NAME=IP")
    args = parser.parse_args()
    records = dict(entry.lower().split("=", 1) for entry in args.record)
    loop = asyncio.get_running_loop()
    for address in args.listen:
        await loop.create_datagram_endpoint(lambda: Upstream(records), local_addr=(address, 53))
    print("ready", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
