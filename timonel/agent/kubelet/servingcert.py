"""The kubelet's serving certificate and the CA its clients must present certificates of.

Under `DATA_DIR/agent/tls/`: `ca.crt` (the cluster CA, from the API server's /cacerts),
`serving-kubelet.key` (made here, never sent anywhere) and `serving-kubelet.crt` (the
API server signs a request for `CN=system:node:<node>, O=system:nodes` naming the node's
addresses and hostnames; see timonel/apiserver/nodecerts.py). A restart reuses them
while the certificate is the current CA's, names the same addresses and has more than
30 days left.

The checks and the key and request are made with `cryptography` in a short-lived child
process (`python -m timonel.agent.kubelet.servingcert`): the agent needs them once at start,
and keeping the library out of the agent saves several MB of resident memory for its
whole life.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import ssl
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Final

from timonel.api.errors import StatusError
from timonel.pki import write_file_atomic

if TYPE_CHECKING:
    from timonel.client.rest import ApiClient

log = logging.getLogger(__name__)

SIGNING_PATH: Final = "/v1-timonel/serving-kubelet.crt"
RENEW_BEFORE: Final = timedelta(days=30)
# The API server's identity when it calls kubelets; cluster administrators may too.
KUBELET_CLIENT_NAME: Final = "kube-apiserver-kubelet-client"
ALLOWED_GROUP: Final = "system:masters"


@dataclass(frozen=True)
class ServingFiles:
    ca_path: Path
    cert_path: Path
    key_path: Path


def wanted_sans(addresses: Iterable[str], hostnames: Iterable[str]) -> tuple[str, ...]:
    names = {f"IP:{ipaddress.ip_address(a)}" for a in addresses if a}
    names |= {f"DNS:{h.lower()}" for h in hostnames if h}
    return tuple(sorted(names))


def _certificate_fits(
    ca_pem: bytes, cert_pem: bytes, key_pem: bytes, sans: tuple[str, ...], now: datetime
) -> bool:
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import serialization

    try:
        ca = x509.load_pem_x509_certificate(ca_pem)
        cert = x509.load_pem_x509_certificate(cert_pem)
        key = serialization.load_pem_private_key(key_pem, password=None)
        cert.verify_directly_issued_by(ca)
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, TypeError, InvalidSignature, x509.ExtensionNotFound):
        return False
    found = {f"DNS:{n}" for n in names.get_values_for_type(x509.DNSName)}
    found |= {f"IP:{a}" for a in names.get_values_for_type(x509.IPAddress)}
    return (
        cert.public_key() == key.public_key()
        and tuple(sorted(found)) == sans
        and cert.not_valid_after_utc - now > RENEW_BEFORE
    )


def certificate_request(node_name: str, sans: Iterable[str]) -> tuple[bytes, bytes]:
    """(CSR PEM, key PEM) for a kubelet serving certificate."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = []
    for san in sans:
        kind, _, value = san.partition(":")
        if kind == "IP":
            names.append(x509.IPAddress(ipaddress.ip_address(value)))
        else:
            names.append(x509.DNSName(value))
    request = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:nodes"),
                    x509.NameAttribute(NameOID.COMMON_NAME, f"system:node:{node_name}"),
                ]
            )
        )
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    return request.public_bytes(serialization.Encoding.PEM), key_pem


def prepare(
    ca_pem: bytes, cert_pem: bytes, key_pem: bytes, node_name: str, sans: tuple[str, ...]
) -> tuple[bytes, bytes] | None:
    """None when the present certificate fits, else a new (CSR PEM, key PEM)."""
    if _certificate_fits(ca_pem, cert_pem, key_pem, sans, datetime.now(UTC)):
        return None
    return certificate_request(node_name, sans)


async def prepare_in_child(
    ca_pem: bytes, cert_pem: bytes, key_pem: bytes, node_name: str, sans: tuple[str, ...]
) -> tuple[bytes, bytes] | None:
    """`prepare` run by a child process (see the module docstring)."""
    question = {
        "ca": ca_pem.decode("ascii", "replace"),
        "cert": cert_pem.decode("ascii", "replace"),
        "key": key_pem.decode("ascii", "replace"),
        "node": node_name,
        "sans": list(sans),
    }
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        __name__,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await child.communicate(json.dumps(question).encode())
    if child.returncode != 0:
        raise ValueError(f"making the serving key failed: {err.decode(errors='replace')[-500:]}")
    answer = json.loads(out)
    if answer.get("fits"):
        return None
    return answer["csr"].encode("ascii"), answer["key"].encode("ascii")


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""


async def ensure_serving_certificate(
    client: ApiClient,
    tls_dir: Path,
    *,
    node_name: str,
    addresses: Iterable[str],
    hostnames: Iterable[str],
) -> ServingFiles:
    """Reuse or obtain the kubelet's serving certificate (see the module docstring)."""
    files = ServingFiles(
        tls_dir / "ca.crt", tls_dir / "serving-kubelet.crt", tls_dir / "serving-kubelet.key"
    )
    response = await client.transport.request("GET", "/cacerts")
    if response.status != 200 or b"BEGIN CERTIFICATE" not in response.body:
        raise StatusError(response.status, "", "the API server did not publish its CA")
    ca_pem = response.body
    sans = wanted_sans(addresses, hostnames)
    if _read(files.ca_path) != ca_pem:
        write_file_atomic(files.ca_path, ca_pem, mode=0o644)
    prepared = await prepare_in_child(
        ca_pem, _read(files.cert_path), _read(files.key_path), node_name, sans
    )
    if prepared is None:
        return files
    csr_pem, key_pem = prepared
    signed = await client.transport.request(
        "POST",
        SIGNING_PATH,
        body=csr_pem,
        headers={"Content-Type": "application/pkcs10", "Accept": "application/x-pem-file"},
    )
    if signed.status != 200:
        answer = signed.body[:300].decode(errors="replace")
        raise StatusError(
            signed.status, "", f"the API server refused the serving certificate: {answer}"
        )
    write_file_atomic(files.key_path, key_pem, mode=0o600)
    write_file_atomic(files.cert_path, signed.body, mode=0o644)
    log.info("obtained a serving certificate for node %s (%s)", node_name, ", ".join(sans))
    return files


def server_context(files: ServingFiles) -> ssl.SSLContext:
    """TLS for the kubelet's API: its serving certificate, and a client certificate from
    the cluster CA required of every caller."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(files.cert_path, files.key_path)
    context.load_verify_locations(cafile=str(files.ca_path))
    context.verify_mode = ssl.CERT_REQUIRED
    context.set_alpn_protocols(["http/1.1"])
    return context


def main() -> None:
    question = json.load(sys.stdin)
    prepared = prepare(
        question["ca"].encode("ascii"),
        question["cert"].encode("ascii"),
        question["key"].encode("ascii"),
        question["node"],
        tuple(question["sans"]),
    )
    if prepared is None:
        answer: dict[str, object] = {"fits": True}
    else:
        answer = {"csr": prepared[0].decode("ascii"), "key": prepared[1].decode("ascii")}
    json.dump(answer, sys.stdout)


if __name__ == "__main__":
    main()
