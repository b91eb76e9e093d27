"""Kubelet serving certificates: what the API server signs, and for whom."""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from multidict import CIMultiDict, MultiDict

from timonel import pki
from timonel.agent.kubelet.servingcert import certificate_request
from timonel.api.errors import StatusError
from timonel.api.user import UserInfo
from timonel.apiserver.context import ApiRequest
from timonel.apiserver.nodecerts import PATH, KubeletServingSigner, review_request


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> pki.ClusterPKI:
    return pki.ensure_cluster_pki(
        tmp_path_factory.mktemp("pki"), hosts=["127.0.0.1"], service_ip="10.43.0.1"
    )


def _csr(names: list[tuple[x509.ObjectIdentifier, str]], sans: list[x509.GeneralName]) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(oid, value) for oid, value in names])
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def test_a_node_request_is_read_back() -> None:
    csr, _ = certificate_request("node-1", ["IP:10.0.0.5", "DNS:node-1"])
    wanted = review_request(csr)
    assert wanted.node_name == "node-1"
    assert sorted(wanted.sans) == ["DNS:node-1", "IP:10.0.0.5"]


@pytest.mark.parametrize(
    ("names", "sans"),
    [
        ([(NameOID.COMMON_NAME, "system:admin"), (NameOID.ORGANIZATION_NAME, "system:nodes")],
         [x509.DNSName("n")]),
        ([(NameOID.COMMON_NAME, "system:node:n"), (NameOID.ORGANIZATION_NAME, "system:masters")],
         [x509.DNSName("n")]),
        ([(NameOID.COMMON_NAME, "system:node:Bad_Name"), (NameOID.ORGANIZATION_NAME, "system:nodes")],
         [x509.DNSName("n")]),
        ([(NameOID.COMMON_NAME, "system:node:n"), (NameOID.ORGANIZATION_NAME, "system:nodes")],
         [x509.UniformResourceIdentifier("spiffe://x")]),
        ([(NameOID.COMMON_NAME, "system:node:n"), (NameOID.ORGANIZATION_NAME, "system:nodes")],
         []),
    ],
)  # fmt: skip
def test_anything_but_a_node_serving_request_is_refused(
    names: list[tuple[x509.ObjectIdentifier, str]], sans: list[x509.GeneralName]
) -> None:
    with pytest.raises(StatusError) as error:
        review_request(_csr(names, sans))
    assert error.value.code == 400


def test_garbage_is_refused() -> None:
    with pytest.raises(StatusError, match="not a PEM certificate request"):
        review_request(
            b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"
        )


def _post(body: bytes, user: UserInfo | None) -> ApiRequest:
    request = ApiRequest("POST", PATH, MultiDict(), CIMultiDict(), body)
    request.user = user
    return request


async def test_nodes_get_a_server_certificate_from_the_cluster_ca(cluster: pki.ClusterPKI) -> None:
    signer = KubeletServingSigner(cluster)
    csr, _ = certificate_request("node-1", ["IP:10.0.0.5", "DNS:node-1"])
    node = UserInfo("system:bootstrap:server", ("system:bootstrappers", "system:nodes"))
    response = await signer.serve(_post(csr, node))
    assert response.status == 200
    cert = x509.load_pem_x509_certificate(response.body)
    cert.verify_directly_issued_by(x509.load_pem_x509_certificate(cluster.ca_cert_pem))
    assert cert.subject.rfc4514_string() == "CN=system:node:node-1,O=system:nodes"
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.SERVER_AUTH]
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["node-1"]
    assert [str(a) for a in names.get_values_for_type(x509.IPAddress)] == ["10.0.0.5"]


async def test_only_nodes_and_administrators_may_ask(cluster: pki.ClusterPKI) -> None:
    signer = KubeletServingSigner(cluster)
    csr, _ = certificate_request("node-1", ["DNS:node-1"])
    with pytest.raises(StatusError) as error:
        await signer.serve(_post(csr, UserInfo("alice", ("system:authenticated",))))
    assert error.value.code == 403
    admin = UserInfo("system:admin", ("system:masters",))
    assert (await signer.serve(_post(csr, admin))).status == 200
    with pytest.raises(StatusError) as error:
        await signer.serve(ApiRequest("GET", PATH, MultiDict(), CIMultiDict(), b"", user=admin))
    assert error.value.code == 405


def test_a_forged_signature_is_refused() -> None:
    csr, _ = certificate_request("node-1", ["DNS:node-1"])
    der = bytearray(x509.load_pem_x509_csr(csr).public_bytes(serialization.Encoding.DER))
    der[-3] ^= 0xFF  # inside the signature
    tampered = x509.load_der_x509_csr(bytes(der)).public_bytes(serialization.Encoding.PEM)
    with pytest.raises(StatusError, match="signature"):
        review_request(tampered)
