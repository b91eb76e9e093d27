from __future__ import annotations

from typing import Any

import pytest

from timonel import pki
from timonel.api.user import UserInfo
from timonel.apiserver.authn import Authenticator, join_token_user

LOOPBACK_TOKEN = "0f" * 32


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> pki.ClusterPKI:
    return pki.ensure_cluster_pki(tmp_path_factory.mktemp("data"), hosts=[], service_ip="10.43.0.1")


@pytest.fixture(scope="module")
def ca_subject(cluster: pki.ClusterPKI) -> Any:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    subject = x509.load_pem_x509_certificate(cluster.ca_cert_pem).subject
    common_name = subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    return ((("commonName", common_name),),)


@pytest.fixture(scope="module")
def join_token(cluster: pki.ClusterPKI) -> str:
    return f"K10{cluster.ca_hash}::server:{'ab' * 16}"


@pytest.fixture
def authenticator(cluster: pki.ClusterPKI, join_token: str) -> Authenticator:
    tokens = {LOOPBACK_TOKEN: UserInfo("system:apiserver", ("system:masters",))}
    return Authenticator(cluster.ca_cert_pem, tokens, join_token=join_token)


def peercert(issuer: Any, *attributes: tuple[str, str]) -> dict[str, Any]:
    """Shaped as ssl.SSLSocket.getpeercert() reports a verified certificate."""
    return {
        "subject": tuple(((key, value),) for key, value in attributes),
        "issuer": issuer,
        "version": 3,
        "serialNumber": "01",
        "notBefore": "Jan  1 00:00:00 2025 GMT",
        "notAfter": "Jan  1 00:00:00 2035 GMT",
    }


def test_certificate_user_and_groups(authenticator: Authenticator, ca_subject: Any) -> None:
    cert = peercert(
        ca_subject,
        ("organizationName", "system:nodes"),
        ("organizationName", "team-a"),
        ("commonName", "system:node:node-1"),
    )
    user = authenticator.authenticate(cert, None)
    assert user == UserInfo(
        "system:node:node-1", ("system:nodes", "team-a", "system:authenticated")
    )


def test_certificate_wins_over_a_bearer_token(
    authenticator: Authenticator, ca_subject: Any
) -> None:
    cert = peercert(ca_subject, ("commonName", "alice"))
    user = authenticator.authenticate(cert, f"Bearer {LOOPBACK_TOKEN}")
    assert user == UserInfo("alice", ("system:authenticated",))
    assert authenticator.authenticate(cert, "Bearer wrong") == user


@pytest.mark.parametrize(
    "subject",
    [
        (),
        (("organizationName", "system:masters"),),
        (("commonName", ""),),
    ],
)
def test_certificate_without_a_name_is_not_a_user(
    authenticator: Authenticator, ca_subject: Any, subject: tuple[tuple[str, str], ...]
) -> None:
    assert authenticator.authenticate(peercert(ca_subject, *subject), None) is None


def test_certificate_from_another_issuer_is_not_a_user(authenticator: Authenticator) -> None:
    other = ((("commonName", "some-other-ca"),),)
    cert = peercert(other, ("organizationName", "system:masters"), ("commonName", "mallory"))
    assert authenticator.authenticate(cert, None) is None
    assert authenticator.authenticate(cert, f"Bearer {LOOPBACK_TOKEN}") is not None


@pytest.mark.parametrize(
    "header",
    [f"Bearer {LOOPBACK_TOKEN}", f"bearer {LOOPBACK_TOKEN}", f"  Bearer {LOOPBACK_TOKEN} extra"],
)
def test_known_bearer_token(authenticator: Authenticator, header: str) -> None:
    user = authenticator.authenticate(None, header)
    assert user == UserInfo("system:apiserver", ("system:masters", "system:authenticated"))


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        f"Bearer  {LOOPBACK_TOKEN}",
        f"Basic {LOOPBACK_TOKEN}",
        f"Bearer {LOOPBACK_TOKEN[:-1]}",
        f"Bearer {LOOPBACK_TOKEN}0",
        "Bearer wrong",
    ],
)
def test_anything_else_is_unauthenticated(authenticator: Authenticator, header: str | None) -> None:
    assert authenticator.authenticate(None, header) is None
    assert authenticator.authenticate({}, header) is None


def test_join_token_is_a_bootstrapping_node(authenticator: Authenticator, join_token: str) -> None:
    expected = UserInfo(
        "system:bootstrap:server",
        ("system:bootstrappers", "system:nodes", "system:authenticated"),
    )
    assert authenticator.authenticate(None, f"Bearer {join_token}") == expected
    # The bare secret is the short form of the same token.
    assert authenticator.authenticate(None, f"Bearer {'ab' * 16}") == expected
    assert authenticator.authenticate(None, f"Bearer {join_token[:-1]}") is None
    assert join_token_user(join_token).name == "system:bootstrap:server"


def test_no_join_token_means_none_accepted(cluster: pki.ClusterPKI, join_token: str) -> None:
    authenticator = Authenticator(cluster.ca_cert_pem, {})
    assert authenticator.authenticate(None, f"Bearer {join_token}") is None
    assert authenticator.authenticate(None, "Bearer ") is None


def test_ca_given_as_text(cluster: pki.ClusterPKI, ca_subject: Any) -> None:
    authenticator = Authenticator(cluster.ca_cert_pem.decode(), {})
    user = authenticator.authenticate(peercert(ca_subject, ("commonName", "bob")), None)
    assert user is not None and user.name == "bob"


def test_each_connections_certificate_keeps_its_own_user(
    authenticator: Authenticator, ca_subject: Any
) -> None:
    # A connection presents the same getpeercert() dict on every request.
    alice = peercert(ca_subject, ("commonName", "alice"))
    bob = peercert(ca_subject, ("organizationName", "team-b"), ("commonName", "bob"))
    stranger = peercert(((("commonName", "some-other-ca"),),), ("commonName", "mallory"))
    for _ in range(3):
        assert authenticator.authenticate(alice, None) == UserInfo(
            "alice", ("system:authenticated",)
        )
        assert authenticator.authenticate(bob, None) == UserInfo(
            "bob", ("team-b", "system:authenticated")
        )
        assert authenticator.authenticate(stranger, None) is None
    # Certificates that come and go (connections closing) are each decided afresh.
    for n in range(50):
        cert = peercert(ca_subject, ("commonName", f"user-{n}"))
        assert authenticator.authenticate(cert, None) == UserInfo(
            f"user-{n}", ("system:authenticated",)
        )
