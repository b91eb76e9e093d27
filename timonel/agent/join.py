"""Joining a cluster with only its URL and join token, as a k3s agent does.

The token `K10<sha256 of the CA>::<user>:<secret>` pins the cluster CA: the agent fetches
`GET /cacerts` without verifying the server (it has nothing to verify with yet), checks
the bytes against the pinned hash, and from then on trusts only that CA. The token
itself is the bearer credential. A bare secret pins nothing; the CA is then taken on
first use, with a warning, as k3s does.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import ssl

import aiohttp

from timonel.client.rest import ApiClient
from timonel.client.transport import HttpsTransport
from timonel.pki import ca_hash, parse_token

log = logging.getLogger(__name__)


class JoinError(Exception):
    """The server cannot be reached with this URL (yet)."""


class UntrustedServer(JoinError):
    """The server presents a CA other than the one the join token pins."""


def check_cluster_ca(ca_pem: bytes, token: str) -> None:
    """Raise UntrustedServer unless `ca_pem` is the CA `token` pins (a bare secret pins none)."""
    pinned = parse_token(token).ca_hash
    if pinned is None:
        log.warning("the join token pins no CA hash; trusting the CA the server presents")
        return
    if not hmac.compare_digest(ca_hash(ca_pem), pinned.lower()):
        raise UntrustedServer("the server's CA does not match the hash in the join token")
    if b"-----BEGIN CERTIFICATE-----" not in ca_pem:
        raise UntrustedServer("the server's /cacerts answer is not a PEM certificate")


def trusting(ca_pem: bytes) -> ssl.SSLContext:
    """A client TLS context that trusts exactly the cluster CA."""
    return ssl.create_default_context(cadata=ca_pem.decode("ascii"))


async def fetch_cluster_ca(server: str, *, timeout: float = 10.0) -> bytes:
    """The PEM the server publishes at /cacerts, fetched without verification (the caller
    checks it against the token)."""
    insecure = ssl.create_default_context()
    insecure.check_hostname = False
    insecure.verify_mode = ssl.CERT_NONE
    url = server.rstrip("/") + "/cacerts"
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session,
            session.get(url, ssl=insecure) as response,
        ):
            body = await response.read()
            if response.status != 200:
                raise JoinError(f"GET {url}: HTTP {response.status}")
            return body
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        raise JoinError(f"GET {url}: {exc}") from None


async def join(server: str, token: str, *, user_agent: str, field_manager: str) -> ApiClient:
    """An API client for `server` that trusts the cluster CA the token pins and
    authenticates with the token."""
    ca_pem = await fetch_cluster_ca(server)
    check_cluster_ca(ca_pem, token)
    transport = HttpsTransport(server, trusting(ca_pem), token=token, user_agent=user_agent)
    return ApiClient(transport, field_manager=field_manager)


async def join_when_reachable(
    server: str, token: str, *, user_agent: str, field_manager: str, max_backoff: float = 5.0
) -> ApiClient:
    """`join`, retried with backoff while the server cannot be reached; a server whose CA
    the token does not pin is refused at once."""
    backoff = 0.5
    while True:
        try:
            return await join(server, token, user_agent=user_agent, field_manager=field_manager)
        except UntrustedServer:
            raise
        except JoinError as exc:
            log.warning("waiting for the server: %s; retrying in %.1f s", exc, backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, max_backoff)
