from __future__ import annotations

import base64
import re
import socket
import ssl
import stat
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from timonel import pki
from timonel.apiserver.authn import Authenticator

SERVICE_IP = "10.43.0.1"
HOSTS = ["node-1", "node-1.example.com", "192.0.2.10", "2001:db8::10"]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> pki.ClusterPKI:
    return pki.ensure_cluster_pki(
        tmp_path_factory.mktemp("data"), hosts=HOSTS, service_ip=SERVICE_IP
    )


def handshake(
    server: ssl.SSLContext, client: ssl.SSLContext, server_hostname: str = "localhost"
) -> dict[str, Any]:
    """One TLS connection over loopback. Returns the server's view (`peercert`) or the
    errors each side saw (`server_error`, `client_error`)."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    seen: dict[str, Any] = {}

    def serve() -> None:
        connection, _ = listener.accept()
        try:
            with server.wrap_socket(connection, server_side=True) as tls:
                seen["peercert"] = tls.getpeercert()
                tls.sendall(b"k")
        except (ssl.SSLError, OSError) as error:
            seen["server_error"] = error
        finally:
            listener.close()

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
            client.wrap_socket(raw, server_hostname=server_hostname) as tls,
        ):
            assert tls.recv(1) == b"k"
    except (ssl.SSLError, OSError) as error:
        seen["client_error"] = error
    thread.join(5)
    return seen


def load(pem: bytes) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem)


def sans(pem: bytes) -> set[str]:
    names = load(pem).extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return {
        *names.get_values_for_type(x509.DNSName),
        *map(str, names.get_values_for_type(x509.IPAddress)),
    }


# -- the certificates ----------------------------------------------------------------------------


def test_files_and_modes(cluster: pki.ClusterPKI) -> None:
    assert stat.S_IMODE(cluster.tls_dir.stat().st_mode) == 0o700
    for path in (cluster.ca_key_path, cluster.serving_key_path, cluster.admin_key_path):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for path in (cluster.ca_cert_path, cluster.serving_cert_path, cluster.admin_cert_path):
        assert path.read_bytes().startswith(b"-----BEGIN CERTIFICATE-----")
    assert cluster.ca_key_path.read_bytes() == cluster.ca_key_pem
    key = serialization.load_pem_private_key(cluster.admin_key_pem, password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"


def test_serving_certificate_names(cluster: pki.ClusterPKI) -> None:
    assert sans(cluster.serving_cert_pem) == {
        "127.0.0.1",
        "::1",
        "localhost",
        SERVICE_IP,
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
        "node-1",
        "node-1.example.com",
        "192.0.2.10",
        "2001:db8::10",
    }
    serving = load(cluster.serving_cert_pem)
    usage = serving.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.SERVER_AUTH]
    serving.verify_directly_issued_by(load(cluster.ca_cert_pem))


def test_admin_certificate_identity(cluster: pki.ClusterPKI) -> None:
    admin = load(cluster.admin_cert_pem)
    assert admin.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "system:admin"
    assert [a.value for a in admin.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)] == [
        "system:masters"
    ]
    admin.verify_directly_issued_by(load(cluster.ca_cert_pem))
    assert admin.not_valid_after_utc - admin.not_valid_before_utc > timedelta(days=360)


@pytest.mark.parametrize("server_hostname", ["localhost", "127.0.0.1", "kubernetes.default.svc"])
def test_admin_client_completes_a_handshake(cluster: pki.ClusterPKI, server_hostname: str) -> None:
    seen = handshake(
        pki.server_ssl_context(cluster), pki.client_ssl_context(cluster), server_hostname
    )
    assert "client_error" not in seen and "server_error" not in seen
    user = Authenticator(cluster.ca_cert_pem, {}).authenticate(seen["peercert"], None)
    assert user is not None
    assert (user.name, user.groups) == ("system:admin", ("system:masters", "system:authenticated"))


def test_clients_without_a_certificate_still_connect(cluster: pki.ClusterPKI) -> None:
    seen = handshake(
        pki.server_ssl_context(cluster), pki.client_ssl_context(cluster, as_admin=False)
    )
    assert "client_error" not in seen
    assert seen["peercert"] is None


def test_foreign_and_unfit_certificates_are_refused(
    cluster: pki.ClusterPKI, tmp_path: Path
) -> None:
    other = pki.ensure_cluster_pki(tmp_path, hosts=[], service_ip=SERVICE_IP)
    foreign = ssl.create_default_context(cadata=cluster.ca_cert_pem.decode())
    foreign.load_cert_chain(other.admin_cert_path, other.admin_key_path)
    assert "server_error" in handshake(pki.server_ssl_context(cluster), foreign)
    # The serving certificate is for servers only: not accepted as a client's.
    serving_as_client = ssl.create_default_context(cadata=cluster.ca_cert_pem.decode())
    serving_as_client.load_cert_chain(cluster.serving_cert_path, cluster.serving_key_path)
    assert "server_error" in handshake(pki.server_ssl_context(cluster), serving_as_client)


def test_tls_versions(cluster: pki.ClusterPKI) -> None:
    server = pki.server_ssl_context(cluster)
    assert server.minimum_version == ssl.TLSVersion.TLSv1_2
    tls12_client = pki.client_ssl_context(cluster)
    tls12_client.maximum_version = ssl.TLSVersion.TLSv1_2
    assert handshake(server, tls12_client).get("peercert") is not None


def test_wrong_host_name_fails_verification(cluster: pki.ClusterPKI) -> None:
    seen = handshake(
        pki.server_ssl_context(cluster), pki.client_ssl_context(cluster), "example.com"
    )
    assert isinstance(seen.get("client_error"), ssl.SSLCertVerificationError)


def test_issued_client_certificate(cluster: pki.ClusterPKI, tmp_path: Path) -> None:
    cert_pem, key_pem = pki.issue_client_cert(cluster, "system:node:node-1", ["system:nodes"])
    (tmp_path / "node.crt").write_bytes(cert_pem)
    (tmp_path / "node.key").write_bytes(key_pem)
    client = ssl.create_default_context(cadata=cluster.ca_cert_pem.decode())
    client.load_cert_chain(tmp_path / "node.crt", tmp_path / "node.key")
    seen = handshake(pki.server_ssl_context(cluster), client)
    user = Authenticator(cluster.ca_cert_pem, {}).authenticate(seen["peercert"], None)
    assert user is not None
    assert (user.name, user.groups) == (
        "system:node:node-1",
        ("system:nodes", "system:authenticated"),
    )


# -- reuse and renewal --------------------------------------------------------------------------


def snapshot(tls_dir: Path) -> dict[str, bytes]:
    return {
        p.name: p.read_bytes() for p in sorted(tls_dir.iterdir()) if p.suffix in (".crt", ".key")
    }


def test_second_start_reuses_everything_without_parsing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = pki.ensure_cluster_pki(tmp_path, hosts=HOSTS, service_ip=SERVICE_IP)
    before = snapshot(first.tls_dir)

    def no_parsing(*_: object) -> None:
        raise AssertionError("certificates parsed on a restart with nothing changed")

    monkeypatch.setattr(pki, "_inspect", no_parsing)
    second = pki.ensure_cluster_pki(tmp_path, hosts=list(reversed(HOSTS)), service_ip=SERVICE_IP)
    assert second == first
    assert snapshot(first.tls_dir) == before


def test_changed_names_issue_a_new_serving_certificate_only(tmp_path: Path) -> None:
    first = pki.ensure_cluster_pki(tmp_path, hosts=HOSTS, service_ip=SERVICE_IP)
    second = pki.ensure_cluster_pki(tmp_path, hosts=["node-2"], service_ip="10.96.0.1")
    assert second.serving_cert_pem != first.serving_cert_pem
    assert {"node-2", "10.96.0.1"} <= sans(second.serving_cert_pem)
    assert "node-1" not in sans(second.serving_cert_pem)
    assert (second.ca_cert_pem, second.admin_cert_pem) == (first.ca_cert_pem, first.admin_cert_pem)


def test_leaves_are_renewed_near_expiry(tmp_path: Path) -> None:
    first = pki.ensure_cluster_pki(tmp_path, hosts=HOSTS, service_ip=SERVICE_IP)
    later = datetime.now(UTC) + timedelta(days=200)
    still = pki.ensure_cluster_pki(tmp_path, hosts=HOSTS, service_ip=SERVICE_IP, now=later)
    assert still == first
    near_expiry = datetime.now(UTC) + timedelta(days=300)
    renewed = pki.ensure_cluster_pki(tmp_path, hosts=HOSTS, service_ip=SERVICE_IP, now=near_expiry)
    assert renewed.ca_cert_pem == first.ca_cert_pem
    assert renewed.serving_cert_pem != first.serving_cert_pem
    assert renewed.admin_cert_pem != first.admin_cert_pem
    assert load(renewed.admin_cert_pem).not_valid_after_utc > near_expiry + timedelta(days=300)


def test_a_new_ca_reissues_the_leaves(tmp_path: Path) -> None:
    first = pki.ensure_cluster_pki(tmp_path, hosts=HOSTS, service_ip=SERVICE_IP)
    first.ca_cert_path.unlink()
    second = pki.ensure_cluster_pki(tmp_path, hosts=HOSTS, service_ip=SERVICE_IP)
    assert second.ca_cert_pem != first.ca_cert_pem
    load(second.serving_cert_pem).verify_directly_issued_by(load(second.ca_cert_pem))
    load(second.admin_cert_pem).verify_directly_issued_by(load(second.ca_cert_pem))


def test_a_replaced_key_reissues_its_certificate(tmp_path: Path) -> None:
    first = pki.ensure_cluster_pki(tmp_path, hosts=HOSTS, service_ip=SERVICE_IP)
    _, stranger_key = pki.issue_client_cert(first, "x", [])
    first.serving_key_path.write_bytes(stranger_key)
    second = pki.ensure_cluster_pki(tmp_path, hosts=HOSTS, service_ip=SERVICE_IP)
    assert second.serving_cert_pem != first.serving_cert_pem
    assert second.serving_key_pem != stranger_key
    assert handshake(pki.server_ssl_context(second), pki.client_ssl_context(second)).get("peercert")


# -- kubeconfig ---------------------------------------------------------------------------------


def test_kubeconfig(cluster: pki.ClusterPKI, tmp_path: Path) -> None:
    path = tmp_path / "sub" / "kubeconfig.yaml"
    pki.write_kubeconfig(
        path,
        server_url="https://127.0.0.1:6443",
        ca_pem=cluster.ca_cert_pem,
        client_cert_pem=cluster.admin_cert_pem,
        client_key_pem=cluster.admin_key_pem,
        cluster_name="timonel",
        user="true",
    )
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    config = yaml.safe_load(path.read_text())
    assert config["current-context"] == "default"
    assert config["contexts"] == [
        {"name": "default", "context": {"cluster": "timonel", "user": "true"}}
    ]
    (entry,) = config["clusters"]
    assert entry["name"] == "timonel"
    assert entry["cluster"]["server"] == "https://127.0.0.1:6443"
    assert base64.b64decode(entry["cluster"]["certificate-authority-data"]) == cluster.ca_cert_pem
    (user,) = config["users"]
    assert user["name"] == "true"
    assert base64.b64decode(user["user"]["client-certificate-data"]) == cluster.admin_cert_pem
    assert base64.b64decode(user["user"]["client-key-data"]) == cluster.admin_key_pem
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]


def test_admin_kubeconfig_matches_the_written_one(cluster: pki.ClusterPKI) -> None:
    text = pki.kubeconfig_yaml(server_url="https://10.0.0.1:6443", pki=cluster)
    assert text == pki.render_kubeconfig(
        server_url="https://10.0.0.1:6443",
        ca_pem=cluster.ca_cert_pem,
        client_cert_pem=cluster.admin_cert_pem,
        client_key_pem=cluster.admin_key_pem,
    )


# -- the join token -----------------------------------------------------------------------------


def test_join_token_is_created_once(tmp_path: Path) -> None:
    cluster = pki.ensure_cluster_pki(tmp_path, hosts=[], service_ip=SERVICE_IP)
    token = pki.ensure_token(tmp_path)
    assert re.fullmatch(r"K10[0-9a-f]{64}::server:[0-9a-f]{32}", token)
    assert token[3:67] == cluster.ca_hash == pki.ca_hash(cluster.ca_cert_path.read_bytes())
    assert (tmp_path / "token").read_text().strip() == token
    assert stat.S_IMODE((tmp_path / "token").stat().st_mode) == 0o600
    assert pki.ensure_token(tmp_path) == token


def test_join_token_follows_a_new_ca_and_keeps_its_secret(tmp_path: Path) -> None:
    pki.ensure_cluster_pki(tmp_path, hosts=[], service_ip=SERVICE_IP)
    token = pki.ensure_token(tmp_path)
    (tmp_path / "tls" / "ca.crt").unlink()
    cluster = pki.ensure_cluster_pki(tmp_path, hosts=[], service_ip=SERVICE_IP)
    renewed = pki.ensure_token(tmp_path)
    assert pki.parse_token(renewed) == pki.JoinToken(
        cluster.ca_hash, "server", pki.parse_token(token).password
    )


def test_a_short_token_becomes_a_full_one(tmp_path: Path) -> None:
    cluster = pki.ensure_cluster_pki(tmp_path, hosts=[], service_ip=SERVICE_IP)
    (tmp_path / "token").write_text("my-secret\n")
    assert pki.ensure_token(tmp_path) == f"K10{cluster.ca_hash}::server:my-secret"


@pytest.mark.parametrize(
    ("token", "parsed"),
    [
        ("K10abc::server:s3cret", pki.JoinToken("abc", "server", "s3cret")),
        ("K10abc::node:a:b", pki.JoinToken("abc", "node", "a:b")),
        ("s3cret", pki.JoinToken(None, "server", "s3cret")),
        ("K10abc::nocolon", pki.JoinToken(None, "server", "K10abc::nocolon")),
    ],
)
def test_parse_token(token: str, parsed: pki.JoinToken) -> None:
    assert pki.parse_token(token) == parsed
    assert str(parsed) == token


# -- this host ----------------------------------------------------------------------------------

FIB_TRIE = """Main:
  +-- 0.0.0.0/0 3 0 5
     |-- 0.0.0.0
        /0 universe UNICAST
     +-- 127.0.0.0/8 2 0 2
        +-- 127.0.0.0/31 1 0 0
           |-- 127.0.0.0
              /8 host LOCAL
           |-- 127.0.0.1
              /32 host LOCAL
     +-- 192.0.2.0/24 2 0 2
           |-- 192.0.2.0
              /24 link UNICAST
           |-- 192.0.2.2
              /32 host LOCAL
        |-- 192.0.2.255
           /32 link BROADCAST
     |-- 10.42.0.1
        /32 host LOCAL
Local:
     |-- 192.0.2.2
        /32 host LOCAL
"""
IF_INET6 = """00000000000000000000000000000001 01 80 10 80       lo
fe8000000000000000fc00fffe000001 04 40 20 80     eth0
fd000000000000000000000000000002 04 40 00 82     eth0
"""


def test_local_hosts_reads_hosts_file_and_proc(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(socket, "gethostname", lambda: "node-1")
    (tmp_path / "hosts").write_text(
        "127.0.0.1 localhost\n# 10.0.0.9 node-1.wrong.example node-1\n"
        "127.0.1.1 node-1.example.com node-1  # local\n"
    )
    (tmp_path / "net").mkdir()
    (tmp_path / "net" / "fib_trie").write_text(FIB_TRIE)
    (tmp_path / "net" / "if_inet6").write_text(IF_INET6)
    assert pki.local_hosts(hosts_file=tmp_path / "hosts", proc_net=tmp_path / "net") == [
        "node-1",
        "node-1.example.com",
        "192.0.2.2",
        "10.42.0.1",
        "fd00::2",
    ]
    missing = tmp_path / "missing"
    assert pki.local_hosts(hosts_file=missing, proc_net=missing) == ["node-1"]


def test_serving_sans_normalises_hosts() -> None:
    assert pki.serving_sans(
        ["Node-1.", "fe80::1%eth0", "[2001:db8::1]", "", "with space", "127.0.0.1"],
        "10.43.0.1",
        cluster_domain="corp.local",
    ) == (
        "DNS:kubernetes",
        "DNS:kubernetes.default",
        "DNS:kubernetes.default.svc",
        "DNS:kubernetes.default.svc.corp.local",
        "DNS:localhost",
        "DNS:node-1",
        "IP:10.43.0.1",
        "IP:127.0.0.1",
        "IP:2001:db8::1",
        "IP:::1",
        "IP:fe80::1",
    )


def test_first_service_ip() -> None:
    assert pki.first_service_ip("10.43.0.0/16") == "10.43.0.1"
    assert pki.first_service_ip("fd00:43::/108,10.43.0.0/16") == "fd00:43::1"
