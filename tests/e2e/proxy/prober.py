"""HTTP requests to IP:PORT without end, each on a new connection, from `--concurrency`
workers; one JSON line per request as it completes: {"t": time.monotonic() at its start,
"a": the answer} or {"t": ..., "e": the error}. Stops on SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time

from client import _kind, http_once  # type: ignore[import-not-found]


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("target", help="IP:PORT")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--interval", type=float, default=0.01)
    parser.add_argument("--timeout", type=float, default=2.0)
    args = parser.parse_args()
    host, _, port = args.target.rpartition(":")
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)

    async def worker() -> None:
        while not stop.is_set():
            started = time.monotonic()
            try:
                record = {"t": started, "a": await http_once(host, int(port), args.timeout)}
            except (TimeoutError, OSError) as error:
                record = {"t": started, "e": _kind(error)}
            sys.stdout.write(json.dumps(record) + "\n")
            sys.stdout.flush()
            await asyncio.sleep(args.interval)

    await asyncio.gather(*(worker() for _ in range(args.concurrency)))


if __name__ == "__main__":
    asyncio.run(main())
