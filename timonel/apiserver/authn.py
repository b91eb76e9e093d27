"""Authentication: who is making a request, from its client certificate or bearer token.

Tried in kube-apiserver's order, the first that succeeds wins:

1. a client certificate the TLS layer verified against the cluster CA: the user is the
   subject's CN, the groups its O values (the admin certificate is `system:admin` in
   `system:masters`; node certificates are `system:node:<name>` in `system:nodes`);
2. `Authorization: Bearer <token>` naming a known token: the in-process components'
   token (mapped by the caller, e.g. to `system:apiserver` in `system:masters`) or the
   node join token.

The join token (`K10<ca hash>::server:<secret>`, or its bare secret as k3s accepts)
authenticates as `system:bootstrap:<token user>` in `system:bootstrappers` and
`system:nodes`: a node agent holds only this token until it has a certificate of its
own, and meanwhile acts as a node.

Anything else is unauthenticated: `authenticate` returns None and the API answers 401.
Every authenticated user is also in `system:authenticated`.
"""

from __future__ import annotations

import hashlib
import ssl
from collections.abc import Callable, Mapping
from typing import Any, Final

from timonel.api.user import SYSTEM_AUTHENTICATED, SYSTEM_NODES, UserInfo
from timonel.pki import parse_token

SYSTEM_BOOTSTRAPPERS: Final = "system:bootstrappers"


def join_token_user(join_token: str) -> UserInfo:
    """The identity the join token authenticates as."""
    return UserInfo(
        name=f"system:bootstrap:{parse_token(join_token).username}",
        groups=(SYSTEM_BOOTSTRAPPERS, SYSTEM_NODES),
    )


def _with_authenticated_group(user: UserInfo) -> UserInfo:
    if SYSTEM_AUTHENTICATED in user.groups:
        return user
    return UserInfo(user.name, (*user.groups, SYSTEM_AUTHENTICATED), user.uid, user.extra)


def _ca_subjects(ca_pem: bytes | str) -> list[Any]:
    """The CA subjects in the form `getpeercert()` reports issuers in."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(
        cadata=ca_pem.decode("ascii") if isinstance(ca_pem, bytes) else ca_pem
    )
    return [cert["subject"] for cert in context.get_ca_certs()]


def _subject_values(name: Any, attribute: str) -> list[str]:
    """The values of `attribute` in a getpeercert() name: a tuple of RDNs, each a tuple
    of (attribute, value) pairs."""
    values: list[str] = []
    for rdn in name or ():
        for key, value in rdn:
            if key == attribute:
                values.append(value)
    return values


# The most client certificates whose users are remembered at once.
_CERTIFICATE_USERS_LIMIT = 4096


class Authenticator:
    """Maps a request's credentials to a `UserInfo`; see the module docstring."""

    def __init__(
        self,
        ca_pem: bytes | str,
        tokens: Mapping[str, UserInfo],
        *,
        join_token: str | None = None,
        token_verifier: Callable[[str], UserInfo | None] | None = None,
    ) -> None:
        self._ca_subjects = _ca_subjects(ca_pem)
        # Tokens that carry their own proof (signed service account tokens).
        self.token_verifier = token_verifier
        entries: dict[str, UserInfo] = dict(tokens)
        if join_token:
            bootstrap = join_token_user(join_token)
            entries[join_token] = bootstrap
            entries.setdefault(parse_token(join_token).password, bootstrap)
        # Tokens are kept as SHA-256 digests and looked up by the digest of the one
        # presented: how far a lookup got says nothing about how close a guess came.
        self._tokens = {
            hashlib.sha256(token.encode()).digest(): _with_authenticated_group(user)
            for token, user in entries.items()
            if token
        }
        # The user of the certificate a connection presented, by that connection's
        # `getpeercert()` dict (one per connection, asked again on every request).
        self._certificate_users: dict[int, tuple[dict[str, Any], UserInfo | None]] = {}

    def authenticate(
        self, peercert: dict[str, Any] | None, authorization_header: str | None
    ) -> UserInfo | None:
        """`peercert` is what `SSLSocket.getpeercert()` returned: a certificate the
        server's TLS context already verified, or None."""
        if peercert:
            cached = self._certificate_users.get(id(peercert))
            if cached is not None and cached[0] is peercert:
                user = cached[1]
            else:
                user = self._certificate_user(peercert)
                if len(self._certificate_users) >= _CERTIFICATE_USERS_LIMIT:
                    self._certificate_users.clear()
                # Holding the dict keeps its id from being reused by another.
                self._certificate_users[id(peercert)] = (peercert, user)
            if user is not None:
                return user
        if authorization_header:
            return self._token_user(authorization_header)
        return None

    def _certificate_user(self, peercert: dict[str, Any]) -> UserInfo | None:
        # The TLS layer verified the chain; this only insists that it ends at our CA.
        if peercert.get("issuer") not in self._ca_subjects:
            return None
        common_names = _subject_values(peercert.get("subject"), "commonName")
        if not common_names or not common_names[-1]:
            return None
        groups = _subject_values(peercert.get("subject"), "organizationName")
        return UserInfo(common_names[-1], (*groups, SYSTEM_AUTHENTICATED))

    def _token_user(self, authorization_header: str) -> UserInfo | None:
        # As kube-apiserver splits it: "Bearer <token>[ anything]"; an empty token is none.
        parts = authorization_header.strip().split(" ", 2)
        if len(parts) < 2 or parts[0].lower() != "bearer" or not parts[1]:
            return None
        token = parts[1]
        found = self._tokens.get(hashlib.sha256(token.encode()).digest())
        if found is None and self.token_verifier is not None and token.count(".") == 2:
            found = self.token_verifier(token)
        return found
