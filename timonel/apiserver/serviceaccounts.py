"""Service account tokens: JWTs the API server signs (ES256) and later accepts as bearer
tokens, as kube-apiserver's TokenRequest API and service account authenticator do.

A token names its service account (and, when bound, a pod or secret); it is accepted only
while it is unexpired and the service account it names still exists with the same uid.
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from timonel.api.user import SYSTEM_AUTHENTICATED, UserInfo

ISSUER = "https://kubernetes.default.svc.cluster.local"
DEFAULT_EXPIRATION = 3600
MIN_EXPIRATION = 600
MAX_EXPIRATION = 2**32


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def ensure_signing_key(data_dir: Path) -> bytes:
    """The service-account signing key (PEM), created once under DATA_DIR/tls."""
    path = data_dir / "tls" / "service-account.key"
    if path.exists():
        return path.read_bytes()
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from timonel.pki import write_file_atomic

    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    write_file_atomic(path, pem)
    return pem


# Looks up a service account's uid by (namespace, name); None when it does not exist.
AccountLookup = Callable[[str, str], str | None]


class TokenIssuer:
    def __init__(self, private_key_pem: bytes, lookup: AccountLookup) -> None:
        from cryptography.hazmat.primitives import serialization

        self._key: Any = serialization.load_pem_private_key(private_key_pem, password=None)
        self._public: Any = self._key.public_key()
        self._lookup = lookup
        der = self._public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        import hashlib

        self.key_id = _b64(hashlib.sha256(der).digest())

    def issue(
        self,
        *,
        namespace: str,
        name: str,
        uid: str,
        audiences: list[str],
        expiration_seconds: int,
        bound: dict[str, str] | None = None,
    ) -> tuple[str, int]:
        """A signed token and its expiry (seconds since the epoch)."""
        now = int(time.time())
        expires = now + expiration_seconds
        claims: dict[str, Any] = {
            "aud": audiences or [ISSUER],
            "exp": expires,
            "iat": now,
            "iss": ISSUER,
            "jti": str(uuid.uuid4()),
            "kubernetes.io": {"namespace": namespace, "serviceaccount": {"name": name, "uid": uid}},
            "nbf": now,
            "sub": f"system:serviceaccount:{namespace}:{name}",
        }
        if bound:
            claims["kubernetes.io"][bound["kind"].lower()] = {
                "name": bound["name"],
                "uid": bound.get("uid", ""),
            }
        header = {"alg": "ES256", "kid": self.key_id}
        signing_input = _b64(orjson.dumps(header)) + "." + _b64(orjson.dumps(claims))
        return signing_input + "." + _b64(self._sign(signing_input.encode())), expires

    def _sign(self, data: bytes) -> bytes:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

        r, s = decode_dss_signature(self._key.sign(data, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")

    def verify(self, token: str) -> UserInfo | None:
        """The service account a token authenticates, or None."""
        parts = token.split(".")
        if len(parts) != 3:
            return None
        try:
            header = orjson.loads(_unb64(parts[0]))
            claims = orjson.loads(_unb64(parts[1]))
            signature = _unb64(parts[2])
        except (ValueError, orjson.JSONDecodeError):
            return None
        if not isinstance(header, dict) or header.get("alg") != "ES256" or len(signature) != 64:
            return None
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

        der = encode_dss_signature(
            int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
        )
        try:
            self._public.verify(der, f"{parts[0]}.{parts[1]}".encode(), ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            return None
        if not isinstance(claims, dict) or claims.get("iss") != ISSUER:
            return None
        now = time.time()
        if (
            not isinstance(claims.get("exp"), int)
            or claims["exp"] < now
            or claims.get("nbf", 0) > now + 60
        ):
            return None
        info = claims.get("kubernetes.io") or {}
        namespace = info.get("namespace", "")
        account = info.get("serviceaccount") or {}
        if not namespace or not account.get("name"):
            return None
        if self._lookup(namespace, account["name"]) != account.get("uid"):
            return None
        return UserInfo(
            f"system:serviceaccount:{namespace}:{account['name']}",
            ("system:serviceaccounts", f"system:serviceaccounts:{namespace}", SYSTEM_AUTHENTICATED),
            uid=account.get("uid", ""),
        )
