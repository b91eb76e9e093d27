"""A test client for a network namespace. Prints JSON. Modes:

- `--count N`: N requests one after the other, tallied by answer (the backend's name) or
  by error kind;
- `--duration S --concurrency C`: load, a new connection per request, as requests/s;
- `--udp-stream S`: one UDP socket for S seconds, who answered when;
- `--rounds N --versus IP:PORT`: TCP handshake times to the target and to the other one,
  alternating, p50/p90."""

from __future__ import annotations

import argparse
import asyncio
import errno
import json
import socket
import time
from collections import Counter


def _kind(error: BaseException) -> str:
    if isinstance(error, ConnectionRefusedError):
        return "refused"
    if isinstance(error, TimeoutError):
        return "timeout"
    if isinstance(error, ConnectionResetError):
        return "reset"
    if isinstance(error, OSError) and error.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
        return "unreachable"
    return type(error).__name__


async def http_once(host: str, port: int, timeout: float) -> str:
    async def exchange() -> str:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(b"GET / HTTP/1.0\r\nHost: test\r\n\r\n")
            data = await reader.read()
        finally:
            writer.close()
        head, _, body = data.partition(b"\r\n\r\n")
        if not head.startswith((b"HTTP/1.0 200", b"HTTP/1.1 200")):
            raise ConnectionResetError("no answer")
        return body.decode().strip()

    return await asyncio.wait_for(exchange(), timeout)


def udp_once(host: str, port: int, timeout: float) -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.connect((host, port))
        sock.send(b"hello")
        return sock.recv(512).decode()


async def tally(host: str, port: int, count: int, timeout: float, udp: bool) -> dict[str, object]:
    answers: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    seconds: list[float] = []
    for _ in range(count):
        started = time.perf_counter()
        try:
            if udp:
                answers[udp_once(host, port, timeout)] += 1
            else:
                answers[await http_once(host, port, timeout)] += 1
        except (TimeoutError, OSError) as error:
            errors[_kind(error)] += 1
        seconds.append(round(time.perf_counter() - started, 4))
    return {"answers": dict(answers), "errors": dict(errors), "seconds": seconds}


def udp_stream(host: str, port: int, seconds: float, interval: float) -> dict[str, object]:
    """One socket (one conntrack entry) sending for `seconds`: who answered when."""
    timeline: list[tuple[float, str]] = []
    started = time.perf_counter()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(interval)
        sock.connect((host, port))
        while (now := time.perf_counter() - started) < seconds:
            try:
                sock.send(b"hello")
                timeline.append((round(now, 3), sock.recv(512).decode()))
            except OSError as error:
                timeline.append((round(now, 3), f"error:{_kind(error)}"))
            time.sleep(max(0.0, interval - (time.perf_counter() - started - now)))
    return {"timeline": timeline}


async def load(
    host: str, port: int, duration: float, concurrency: int, timeout: float
) -> dict[str, object]:
    done = 0
    failed = 0
    deadline = time.perf_counter() + duration

    async def worker() -> None:
        nonlocal done, failed
        while time.perf_counter() < deadline:
            try:
                await http_once(host, port, timeout)
                done += 1
            except (TimeoutError, OSError):
                failed += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    return {"requests": done, "failed": failed, "seconds": elapsed, "rps": done / elapsed}


def connect_pairs(
    targets: list[tuple[str, int]], rounds: int, sources: list[str]
) -> dict[str, object]:
    """TCP handshakes to each target in turn (connect, then close), `rounds` times: the
    targets are measured under the same conditions, whatever else the machine does. With
    `sources`, target i is reached from source address i: connections to a pod and to a
    Service in front of it must not share source ports, or their conntrack entries clash."""
    seconds: dict[str, list[float]] = {f"{h}:{p}": [] for h, p in targets}
    failed: Counter[str] = Counter()
    for round_number in range(rounds):
        # Each target goes first every other round: no order effect.
        order = list(enumerate(targets))
        for index, (host, port) in order if round_number % 2 == 0 else order[::-1]:
            with socket.socket() as sock:
                sock.settimeout(2)
                if sources:
                    sock.bind((sources[index], 0))
                started = time.perf_counter()
                try:
                    sock.connect((host, port))
                except OSError as error:
                    failed[f"{host}:{port} {_kind(error)}"] += 1
                    continue
                seconds[f"{host}:{port}"].append(time.perf_counter() - started)
    summary: dict[str, object] = {"failed": dict(failed)}
    for target, values in seconds.items():
        values.sort()
        summary[target] = {
            "p50_us": values[len(values) // 2] * 1e6 if values else float("nan"),
            "p90_us": values[int(len(values) * 0.9)] * 1e6 if values else float("nan"),
        }
    return summary


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("target", help="IP:PORT, or http://IP:PORT/")
    parser.add_argument("--count", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=2.0)
    parser.add_argument("--udp", action="store_true")
    parser.add_argument("--duration", type=float, default=0.0)
    parser.add_argument("--udp-stream", type=float, default=0.0, metavar="SECONDS")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--versus", default="", metavar="IP:PORT")
    parser.add_argument("--rounds", type=int, default=0)
    parser.add_argument("--sources", default="", metavar="IP,IP")
    args = parser.parse_args()
    target = args.target.removeprefix("http://").rstrip("/")
    host, _, port = target.rpartition(":")
    if args.rounds:
        other_host, _, other_port = args.versus.rpartition(":")
        pairs = [(host, int(port)), (other_host, int(other_port))]
        sources = [a for a in args.sources.split(",") if a]
        result = connect_pairs(pairs, args.rounds, sources)
    elif args.udp_stream:
        result = udp_stream(host, int(port), args.udp_stream, 0.05)
    elif args.duration:
        result = asyncio.run(load(host, int(port), args.duration, args.concurrency, args.timeout))
    else:
        result = asyncio.run(tally(host, int(port), args.count, args.timeout, args.udp))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
