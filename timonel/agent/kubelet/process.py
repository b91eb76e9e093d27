"""Process-wide settings of the `timonel agent` process, for its memory and CPU.

Only the standalone agent applies them (`run_agent`, and the CLI before it imports the
agent); an agent inside `timonel server` shares that process and leaves it as it is.
Standard library only, so the CLI can use it before aiohttp is imported.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import sys
from collections.abc import Iterator
from typing import Final

TLS_READ_BUFFER: Final = 32 * 1024
_CA_BUNDLE_VARIABLES: Final = ("SSL_CERT_FILE", "SSL_CERT_DIR")


@contextlib.contextmanager
def without_system_ca_bundle() -> Iterator[None]:
    """OpenSSL pointed at no CA bundle while the body runs, the environment restored after.

    A default TLS context loads the system bundle (about 2 MB of certificates, and the
    heap it fragments stays with the process). The agent never verifies anyone with it:
    it trusts only the cluster CA its join token pins, and pulls images through the
    runtime. aiohttp makes such contexts when imported, and joining makes one to fetch
    the cluster CA unverified. Children started later (containerd) see the usual
    environment."""
    saved = {name: os.environ.get(name) for name in _CA_BUNDLE_VARIABLES}
    for name in _CA_BUNDLE_VARIABLES:
        os.environ[name] = os.devnull
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def import_http_client() -> None:
    """Import aiohttp without the system CA bundle (see `without_system_ca_bundle`)."""
    if "aiohttp" in sys.modules:
        return
    with without_system_ca_bundle():
        import aiohttp  # noqa: F401


def use_small_tls_read_buffers() -> None:
    """asyncio gives every TLS connection a 256 KiB read buffer, allocated and zeroed up
    front; the agent holds one connection per watch (about 15), which made those buffers
    the largest single item of its memory. TLS records carry at most 16 KiB, so reads of
    32 KiB cost nothing measurable."""
    from asyncio import sslproto

    sslproto.SSLProtocol.max_size = min(sslproto.SSLProtocol.max_size, TLS_READ_BUFFER)


def use_pidfd_child_watcher() -> None:
    """asyncio (3.11) waits for every child process (iptables-restore, ctr, mount, ...)
    with a thread started for it; a pidfd watched by the event loop does the same
    without. The node changes iptables for every pod, so this is per pod start. (Python
    3.12 does this by itself and deprecates child watchers.)"""
    if sys.version_info >= (3, 12) or not hasattr(os, "pidfd_open"):
        return
    try:
        os.close(os.pidfd_open(os.getpid()))
    except OSError:
        return
    watcher = asyncio.PidfdChildWatcher()
    watcher.attach_loop(asyncio.get_running_loop())
    asyncio.set_child_watcher(watcher)


async def settle_after_start(started: asyncio.Event, delay: float = 5.0) -> None:
    """Once the node runs (and its first watch events are handled): collect the start's
    garbage, move the objects that live as long as the process out of the collector's
    generations (later collections do not walk them again), and give the heap that start-up
    used (image archive, first lists) back to the system."""
    await started.wait()
    await asyncio.sleep(delay)
    gc.collect()
    gc.freeze()
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
