"""The cluster's certificates, created on first start and reused afterwards, as k3s does.

Under `<data-dir>/tls/`:

    ca.crt, ca.key            the cluster CA: signs every certificate below; clients trust it
                              and the join token carries its hash
    serving.crt, serving.key  the API server (SANs: loopback, this host's names and addresses,
                              the in-cluster `kubernetes` names, the first service address)
    admin.crt, admin.key      system:admin in system:masters, for the admin kubeconfig
    checked.json              facts last read from the leaf certificates (SANs, expiry),
                              keyed by the digest of the files they were read from

A restart reads the files, hashes them and compares with `checked.json`; only when they
differ (or on first start) does it load `cryptography`, which costs more than the whole
reuse path. A serving certificate whose SANs differ from the wanted ones, a leaf within
90 days of expiry, or a leaf not issued by the current CA is issued again.

Keys are ECDSA P-256 (fast to generate and to handshake with), written 0600, atomically.
The join token is k3s's: `K10<sha256 of ca.crt>::server:<secret>`.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import os
import re
import secrets
import socket
import ssl
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec

CA_VALIDITY: Final = timedelta(days=3650)
LEAF_VALIDITY: Final = timedelta(days=365)
RENEW_BEFORE: Final = timedelta(days=90)
# Certificates start an hour in the past so that nodes with a slightly late clock accept them.
BACKDATE: Final = timedelta(hours=1)
ADMIN_NAME: Final = "system:admin"
ADMIN_GROUP: Final = "system:masters"
SERVING_NAME: Final = "kube-apiserver"
TOKEN_PREFIX: Final = "K10"
TOKEN_USER: Final = "server"

_FACTS_FILE: Final = "checked.json"


@dataclass(frozen=True)
class ClusterPKI:
    """The certificates of one cluster, as PEM bytes, and where they live."""

    tls_dir: Path
    ca_cert_pem: bytes
    ca_key_pem: bytes = field(repr=False)
    serving_cert_pem: bytes
    serving_key_pem: bytes = field(repr=False)
    admin_cert_pem: bytes
    admin_key_pem: bytes = field(repr=False)

    @property
    def ca_cert_path(self) -> Path:
        return self.tls_dir / "ca.crt"

    @property
    def ca_key_path(self) -> Path:
        return self.tls_dir / "ca.key"

    @property
    def serving_cert_path(self) -> Path:
        return self.tls_dir / "serving.crt"

    @property
    def serving_key_path(self) -> Path:
        return self.tls_dir / "serving.key"

    @property
    def admin_cert_path(self) -> Path:
        return self.tls_dir / "admin.crt"

    @property
    def admin_key_path(self) -> Path:
        return self.tls_dir / "admin.key"

    @property
    def ca_hash(self) -> str:
        return ca_hash(self.ca_cert_pem)


@dataclass(frozen=True)
class _Pair:
    cert_pem: bytes
    key_pem: bytes


@dataclass(frozen=True)
class _LeafFacts:
    """What the reuse decision needs to know about a leaf certificate."""

    digest: str
    issued_by_ca: bool
    not_after: float
    sans: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "digest": self.digest,
            "issuedByCA": self.issued_by_ca,
            "notAfter": self.not_after,
            "sans": list(self.sans),
        }

    @classmethod
    def from_json(cls, data: Any) -> _LeafFacts | None:
        try:
            return cls(
                digest=str(data["digest"]),
                issued_by_ca=bool(data["issuedByCA"]),
                not_after=float(data["notAfter"]),
                sans=tuple(str(s) for s in data["sans"]),
            )
        except (KeyError, TypeError, ValueError):
            return None


# -- what the serving certificate must name --------------------------------------------------


def serving_sans(
    hosts: Iterable[str], service_ip: str, *, cluster_domain: str = "cluster.local"
) -> tuple[str, ...]:
    """The subject alternative names the API server's certificate must carry, as sorted
    `DNS:name` / `IP:address` strings (the form they are compared in)."""
    wanted = {"IP:127.0.0.1", "IP:::1", "DNS:localhost", f"IP:{_normal_ip(service_ip)}"}
    wanted.update(
        f"DNS:{name}"
        for name in (
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            f"kubernetes.default.svc.{cluster_domain}",
        )
    )
    for host in hosts:
        san = _san_of(host)
        if san:
            wanted.add(san)
    return tuple(sorted(wanted))


def _normal_ip(text: str) -> str:
    return str(ipaddress.ip_address(text.split("%", 1)[0].strip("[]")))


def _san_of(host: str) -> str | None:
    host = host.strip()
    try:
        return f"IP:{_normal_ip(host)}"
    except ValueError:
        pass
    name = host.rstrip(".").lower()
    if not name or not name.isascii() or any(c.isspace() for c in name):
        return None
    return f"DNS:{name}"


def first_service_ip(service_cidr: str) -> str:
    """The first address of the (first) service CIDR: the `kubernetes` Service's
    ClusterIP, which the serving certificate must name."""
    network = ipaddress.ip_network(service_cidr.split(",", 1)[0].strip(), strict=False)
    return str(network.network_address + 1)


def primary_address() -> str:
    """The address this host reaches other machines from: the source address of the
    default route (connecting a UDP socket picks a route and sends nothing). Falls back
    to the first local IPv4 address, then to 127.0.0.1."""
    for family, target in ((socket.AF_INET, "192.0.2.1"), (socket.AF_INET6, "2001:db8::1")):
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as probe:
                probe.connect((target, 9))
                address = str(probe.getsockname()[0])
        except OSError:
            continue
        if not ipaddress.ip_address(address).is_loopback:
            return address
    addresses = _ipv4_addresses(_read_text(Path("/proc/net/fib_trie")))
    return addresses[0] if addresses else "127.0.0.1"


def local_hosts(
    *, hosts_file: Path = Path("/etc/hosts"), proc_net: Path = Path("/proc/net")
) -> list[str]:
    """This machine's hostname, its FQDN and its non-loopback addresses, read locally:
    no DNS query, no packet sent (the FQDN comes from /etc/hosts, addresses from /proc)."""
    hostname = socket.gethostname()
    found = [hostname]
    fqdn = _fqdn_from_hosts(hostname, _read_text(hosts_file))
    if fqdn:
        found.append(fqdn)
    found.extend(_ipv4_addresses(_read_text(proc_net / "fib_trie")))
    found.extend(_ipv6_addresses(_read_text(proc_net / "if_inet6")))
    return list(dict.fromkeys(h for h in found if h))


def _read_text(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def _fqdn_from_hosts(hostname: str, hosts_text: str) -> str | None:
    """As `hostname -f` resolves through /etc/hosts: the first name on the line that lists
    this host, when it is a dotted name."""
    if "." in hostname:
        return hostname
    for line in hosts_text.splitlines():
        names = line.split("#", 1)[0].split()[1:]
        if hostname in names and "." in names[0]:
            return names[0]
    return None


def _ipv4_addresses(fib_trie: str) -> list[str]:
    """Local IPv4 addresses: the `/32 host LOCAL` leaves of the kernel's routing trie."""
    found: list[str] = []
    last = ""
    for line in fib_trie.splitlines():
        text = line.strip()
        if text.startswith("|-- "):
            last = text[4:]
        elif text.startswith("/32 host LOCAL") and last:
            try:
                address = ipaddress.IPv4Address(last)
            except ValueError:
                continue
            if not address.is_loopback:
                found.append(str(address))
    return list(dict.fromkeys(found))


def _ipv6_addresses(if_inet6: str) -> list[str]:
    """Global-scope IPv6 addresses (link-local ones cannot be dialled without a zone)."""
    found: list[str] = []
    for line in if_inet6.splitlines():
        fields = line.split()
        if len(fields) < 4 or fields[3] != "00":
            continue
        try:
            address = ipaddress.IPv6Address(int(fields[0], 16))
        except ValueError:
            continue
        if not address.is_loopback:
            found.append(str(address))
    return list(dict.fromkeys(found))


# -- creating and reusing the certificates ---------------------------------------------------


def ensure_cluster_pki(
    data_dir: Path,
    *,
    hosts: list[str],
    service_ip: str,
    cluster_domain: str = "cluster.local",
    now: datetime | None = None,
) -> ClusterPKI:
    """Create the CA, the serving and the admin certificates on first run; afterwards
    reuse them, issuing again only the leaves that are stale (see the module docstring)."""
    moment = now or datetime.now(UTC)
    tls_dir = data_dir / "tls"
    tls_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    wanted_sans = serving_sans(hosts, service_ip, cluster_domain=cluster_domain)

    ca = _read_pair(tls_dir, "ca")
    if ca is None:
        ca = _create_ca(moment)
        _write_pair(tls_dir, "ca", ca)

    leaves = (
        _Leaf("serving", SERVING_NAME, (), wanted_sans, server=True),
        _Leaf("admin", ADMIN_NAME, (ADMIN_GROUP,), None, server=False),
    )
    recorded = _read_facts(tls_dir)
    facts: dict[str, _LeafFacts] = {}
    pairs: dict[str, _Pair] = {}
    for leaf in leaves:
        pair = _read_pair(tls_dir, leaf.stem)
        leaf_facts = _current_facts(ca, pair, recorded.get(leaf.stem))
        if pair is None or _needs_issuing(leaf_facts, moment, leaf.sans):
            pair = _issue(
                ca,
                common_name=leaf.common_name,
                organizations=leaf.organizations,
                sans=leaf.sans or (),
                server=leaf.server,
                moment=moment,
            )
            _write_pair(tls_dir, leaf.stem, pair)
            leaf_facts = _current_facts(ca, pair, None)
        pairs[leaf.stem] = pair
        if leaf_facts is not None:
            facts[leaf.stem] = leaf_facts
    if facts != recorded:
        _write_facts(tls_dir, facts)
    serving, admin = pairs["serving"], pairs["admin"]
    return ClusterPKI(
        tls_dir=tls_dir,
        ca_cert_pem=ca.cert_pem,
        ca_key_pem=ca.key_pem,
        serving_cert_pem=serving.cert_pem,
        serving_key_pem=serving.key_pem,
        admin_cert_pem=admin.cert_pem,
        admin_key_pem=admin.key_pem,
    )


@dataclass(frozen=True)
class _Leaf:
    """A certificate the cluster keeps issued. `sans` None: no names to check."""

    stem: str
    common_name: str
    organizations: tuple[str, ...]
    sans: tuple[str, ...] | None
    server: bool


def _needs_issuing(
    facts: _LeafFacts | None, moment: datetime, wanted_sans: tuple[str, ...] | None
) -> bool:
    if facts is None or not facts.issued_by_ca:
        return True
    if facts.not_after - moment.timestamp() < RENEW_BEFORE.total_seconds():
        return True
    return wanted_sans is not None and facts.sans != wanted_sans


def _digest(ca: _Pair, leaf: _Pair) -> str:
    hasher = hashlib.sha256()
    for part in (ca.cert_pem, leaf.cert_pem, leaf.key_pem):
        hasher.update(len(part).to_bytes(8, "big"))
        hasher.update(part)
    return hasher.hexdigest()


def _current_facts(ca: _Pair, leaf: _Pair | None, recorded: _LeafFacts | None) -> _LeafFacts | None:
    """Facts about `leaf`: the recorded ones when the files are unchanged, else read anew."""
    if leaf is None:
        return None
    digest = _digest(ca, leaf)
    if recorded is not None and recorded.digest == digest:
        return recorded
    return _inspect(ca, leaf, digest)


def _inspect(ca: _Pair, leaf: _Pair, digest: str) -> _LeafFacts | None:
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import serialization

    try:
        ca_cert = x509.load_pem_x509_certificate(ca.cert_pem)
        cert = x509.load_pem_x509_certificate(leaf.cert_pem)
        key = serialization.load_pem_private_key(leaf.key_pem, password=None)
    except ValueError:
        return None
    if cert.public_key() != key.public_key():
        return None
    try:
        cert.verify_directly_issued_by(ca_cert)
        issued_by_ca = True
    except (ValueError, TypeError, InvalidSignature):
        issued_by_ca = False
    sans: list[str] = []
    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        sans.extend(f"DNS:{n}" for n in names.get_values_for_type(x509.DNSName))
        sans.extend(f"IP:{a}" for a in names.get_values_for_type(x509.IPAddress))
    except x509.ExtensionNotFound:
        pass
    return _LeafFacts(
        digest=digest,
        issued_by_ca=issued_by_ca,
        not_after=cert.not_valid_after_utc.timestamp(),
        sans=tuple(sorted(sans)),
    )


def _new_key() -> ec.EllipticCurvePrivateKey:
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


def _create_ca(moment: datetime) -> _Pair:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import NameOID

    key = _new_key()
    # A timestamped name, as k3s does, tells CA generations apart.
    name = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, f"timonel-ca@{int(moment.timestamp())}")]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(moment - BACKDATE)
        .not_valid_after(moment + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return _Pair(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    from cryptography import x509

    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _issue(
    ca: _Pair,
    *,
    common_name: str,
    organizations: Iterable[str],
    sans: Iterable[str],
    server: bool,
    moment: datetime,
) -> _Pair:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem)
    ca_key = serialization.load_pem_private_key(ca.key_pem, password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise ValueError("the cluster CA key is not an ECDSA key")
    key = _new_key()
    attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in organizations]
    attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
    ca_key_id = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name(attributes))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(moment - BACKDATE)
        .not_valid_after(min(moment + LEAF_VALIDITY, ca_cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_key_id),
            critical=False,
        )
    )
    general_names = [_general_name(san) for san in sans]
    if general_names:
        builder = builder.add_extension(x509.SubjectAlternativeName(general_names), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    return _Pair(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def _general_name(san: str) -> x509.GeneralName:
    from cryptography import x509

    kind, _, value = san.partition(":")
    if kind == "IP":
        return x509.IPAddress(ipaddress.ip_address(value))
    return x509.DNSName(value)


def issue_client_cert(
    pki: ClusterPKI,
    common_name: str,
    organizations: Iterable[str],
    *,
    now: datetime | None = None,
) -> tuple[bytes, bytes]:
    """A new client certificate signed by the cluster CA: the API server authenticates it
    as user `common_name` in groups `organizations` (e.g. `system:node:<name>` in
    `system:nodes`). Returns (cert PEM, key PEM); nothing is written."""
    pair = _issue(
        _Pair(pki.ca_cert_pem, pki.ca_key_pem),
        common_name=common_name,
        organizations=tuple(organizations),
        sans=(),
        server=False,
        moment=now or datetime.now(UTC),
    )
    return pair.cert_pem, pair.key_pem


def sign_certificate_request(
    pki: ClusterPKI,
    csr_pem: bytes,
    *,
    sans: Iterable[str],
    server: bool,
    now: datetime | None = None,
) -> bytes:
    """A certificate for the subject and public key of a PKCS#10 request, signed by the
    cluster CA, naming `sans` (`DNS:name` / `IP:address`). Whether to honour the request
    is the caller's decision; a malformed or badly signed one raises ValueError."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID

    request = x509.load_pem_x509_csr(csr_pem)
    if not request.is_signature_valid:
        raise ValueError("the certificate request's signature is invalid")
    ca_cert = x509.load_pem_x509_certificate(pki.ca_cert_pem)
    ca_key = serialization.load_pem_private_key(pki.ca_key_pem, password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise ValueError("the cluster CA key is not an ECDSA key")
    moment = now or datetime.now(UTC)
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
    ca_key_id = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = (
        x509.CertificateBuilder()
        .subject_name(request.subject)
        .issuer_name(ca_cert.subject)
        .public_key(request.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(moment - BACKDATE)
        .not_valid_after(min(moment + LEAF_VALIDITY, ca_cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_key_id),
            critical=False,
        )
    )
    general_names = [_general_name(san) for san in sans]
    if general_names:
        builder = builder.add_extension(x509.SubjectAlternativeName(general_names), critical=False)
    return builder.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


# -- files -------------------------------------------------------------------------------------


def _read_pair(tls_dir: Path, stem: str) -> _Pair | None:
    try:
        return _Pair((tls_dir / f"{stem}.crt").read_bytes(), (tls_dir / f"{stem}.key").read_bytes())
    except FileNotFoundError:
        return None


def _write_pair(tls_dir: Path, stem: str, pair: _Pair) -> None:
    # The key first: a crash in between leaves a mismatched pair, which is issued again.
    write_file_atomic(tls_dir / f"{stem}.key", pair.key_pem, mode=0o600)
    write_file_atomic(tls_dir / f"{stem}.crt", pair.cert_pem, mode=0o644)


def _read_facts(tls_dir: Path) -> dict[str, _LeafFacts]:
    try:
        data = json.loads((tls_dir / _FACTS_FILE).read_bytes())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    facts = {name: _LeafFacts.from_json(value) for name, value in data.items()}
    return {name: value for name, value in facts.items() if value is not None}


def _write_facts(tls_dir: Path, facts: dict[str, _LeafFacts]) -> None:
    data = {name: value.to_json() for name, value in sorted(facts.items())}
    write_file_atomic(
        tls_dir / _FACTS_FILE, json.dumps(data, indent=2).encode() + b"\n", mode=0o600
    )


def write_file_atomic(path: Path, data: bytes | str, *, mode: int = 0o600) -> None:
    """Readers see the old content or the new one, never a part; `mode` is exact
    (not narrowed by the umask) and set before the content appears."""
    if isinstance(data, str):
        data = data.encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.fchmod(descriptor, mode)
        with os.fdopen(descriptor, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


# -- kubeconfig ----------------------------------------------------------------------------------

_PLAIN_SCALAR = re.compile(r"[A-Za-z][A-Za-z0-9._/:@-]*")
_YAML_WORDS: Final = frozenset({"true", "false", "yes", "no", "on", "off", "null", "y", "n"})


def _yaml_scalar(text: str) -> str:
    """A YAML scalar for `text`: plain when unambiguous, else double-quoted (JSON quoting
    is valid YAML)."""
    if _PLAIN_SCALAR.fullmatch(text) and text.lower() not in _YAML_WORDS and ": " not in text:
        return text
    return json.dumps(text)


def _as_bytes(pem: bytes | str) -> bytes:
    return pem.encode("ascii") if isinstance(pem, str) else pem


def render_kubeconfig(
    *,
    server_url: str,
    ca_pem: bytes | str,
    client_cert_pem: bytes | str,
    client_key_pem: bytes | str,
    cluster_name: str = "default",
    user: str = "default",
) -> str:
    """A kubeconfig with embedded credentials and one context, `default`, selected."""

    def b64(pem: bytes | str) -> str:
        return base64.b64encode(_as_bytes(pem)).decode("ascii")

    return (
        "apiVersion: v1\n"
        "kind: Config\n"
        "clusters:\n"
        "- cluster:\n"
        f"    certificate-authority-data: {b64(ca_pem)}\n"
        f"    server: {_yaml_scalar(server_url)}\n"
        f"  name: {_yaml_scalar(cluster_name)}\n"
        "contexts:\n"
        "- context:\n"
        f"    cluster: {_yaml_scalar(cluster_name)}\n"
        f"    user: {_yaml_scalar(user)}\n"
        "  name: default\n"
        "current-context: default\n"
        "preferences: {}\n"
        "users:\n"
        f"- name: {_yaml_scalar(user)}\n"
        "  user:\n"
        f"    client-certificate-data: {b64(client_cert_pem)}\n"
        f"    client-key-data: {b64(client_key_pem)}\n"
    )


def kubeconfig_yaml(*, server_url: str, pki: ClusterPKI) -> str:
    """The admin kubeconfig (system:admin) for a server at `server_url`."""
    return render_kubeconfig(
        server_url=server_url,
        ca_pem=pki.ca_cert_pem,
        client_cert_pem=pki.admin_cert_pem,
        client_key_pem=pki.admin_key_pem,
    )


def write_kubeconfig(
    path: Path,
    *,
    server_url: str,
    ca_pem: bytes | str,
    client_cert_pem: bytes | str,
    client_key_pem: bytes | str,
    cluster_name: str = "default",
    user: str = "default",
) -> None:
    """Write the kubeconfig (mode 0600, atomically): it holds a private key."""
    text = render_kubeconfig(
        server_url=server_url,
        ca_pem=ca_pem,
        client_cert_pem=client_cert_pem,
        client_key_pem=client_key_pem,
        cluster_name=cluster_name,
        user=user,
    )
    write_file_atomic(path, text.encode(), mode=0o600)


# -- the join token ------------------------------------------------------------------------------


def ca_hash(ca_pem: bytes) -> str:
    """The hex SHA-256 of the CA file's bytes: what a k3s-style token pins."""
    return hashlib.sha256(ca_pem).hexdigest()


@dataclass(frozen=True)
class JoinToken:
    """A parsed join token. `ca_hash` is None for a bare secret (a short token)."""

    ca_hash: str | None
    username: str
    password: str

    def __str__(self) -> str:
        if self.ca_hash is None:
            return self.password
        return f"{TOKEN_PREFIX}{self.ca_hash}::{self.username}:{self.password}"


def parse_token(token: str) -> JoinToken:
    """`K10<ca hash>::<user>:<secret>`, or a bare secret (then the user is `server`)."""
    token = token.strip()
    if token.startswith(TOKEN_PREFIX) and "::" in token:
        digest, _, credentials = token[len(TOKEN_PREFIX) :].partition("::")
        username, colon, password = credentials.partition(":")
        if colon and username and password:
            return JoinToken(digest, username, password)
    return JoinToken(None, TOKEN_USER, token)


def ensure_token(data_dir: Path) -> str:
    """The node join token at `data_dir/token`, created once (after `ensure_cluster_pki`).
    If the CA changed since, the token keeps its secret and pins the new CA."""
    path = data_dir / "token"
    digest = ca_hash((data_dir / "tls" / "ca.crt").read_bytes())
    try:
        existing = path.read_text().strip()
    except FileNotFoundError:
        existing = ""
    if existing:
        parsed = parse_token(existing)
        if parsed.ca_hash == digest:
            return existing
        token = str(JoinToken(digest, parsed.username, parsed.password))
    else:
        token = str(JoinToken(digest, TOKEN_USER, secrets.token_hex(16)))
    write_file_atomic(path, token.encode() + b"\n", mode=0o600)
    return token


# -- TLS -----------------------------------------------------------------------------------------


def server_ssl_context(pki: ClusterPKI) -> ssl.SSLContext:
    """The API server's TLS context: TLS 1.2+, the serving certificate, and client
    certificates checked against the cluster CA when offered. They are optional so that
    bearer-token and anonymous clients still connect; `getpeercert()` then returns the
    verified certificate, or None."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(pki.serving_cert_path, pki.serving_key_path)
    context.load_verify_locations(cadata=pki.ca_cert_pem.decode("ascii"))
    context.verify_mode = ssl.CERT_OPTIONAL
    # HTTP/1.1 only; clients offering h2 (kubectl does) fall back to it.
    context.set_alpn_protocols(["http/1.1"])
    return context


def client_ssl_context(pki: ClusterPKI, *, as_admin: bool = True) -> ssl.SSLContext:
    """A client context trusting the cluster CA and, unless `as_admin` is False,
    presenting the admin certificate."""
    context = ssl.create_default_context(cadata=pki.ca_cert_pem.decode("ascii"))
    if as_admin:
        context.load_cert_chain(pki.admin_cert_path, pki.admin_key_path)
    return context
