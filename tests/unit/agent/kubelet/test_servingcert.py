"""The kubelet obtains its serving certificate from the API server and reuses it; its TLS
then admits the API server's kubelet client certificate and refuses others."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Mapping
from pathlib import Path

import pytest
from multidict import CIMultiDict, MultiDict

from timonel import pki
from timonel.agent.kubelet import server, servingcert
from timonel.api.user import UserInfo
from timonel.apiserver.context import ApiRequest
from timonel.apiserver.nodecerts import KubeletServingSigner
from timonel.client.rest import ApiClient
from timonel.client.transport import Query, RawResponse


class SigningTransport:
    """The two API calls the kubelet makes, answered as the API server would."""

    def __init__(self, cluster: pki.ClusterPKI) -> None:
        self.cluster = cluster
        self.signer = KubeletServingSigner(cluster)
        self.signed = 0

    async def request(
        self,
        method: str,
        path: str,
        *,
        query: Query | None = None,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> RawResponse:
        if path == "/cacerts":
            return RawResponse(200, self.cluster.ca_cert_pem, "text/plain")
        request = ApiRequest(method, path, MultiDict(), CIMultiDict(headers or {}), body or b"")
        request.user = UserInfo("system:bootstrap:server", ("system:nodes",))
        response = await self.signer.serve(request)
        self.signed += 1
        return RawResponse(response.status, response.body, response.content_type)

    def stream(self, *args: object, **kwargs: object) -> object:
        raise NotImplementedError

    async def close(self) -> None:
        return None


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> pki.ClusterPKI:
    return pki.ensure_cluster_pki(
        tmp_path_factory.mktemp("pki"), hosts=["127.0.0.1"], service_ip="10.43.0.1"
    )


async def _ensure(
    transport: SigningTransport, tls_dir: Path, addresses: list[str]
) -> servingcert.ServingFiles:
    return await servingcert.ensure_serving_certificate(
        ApiClient(transport),  # type: ignore[arg-type]
        tls_dir,
        node_name="node-1",
        addresses=addresses,
        hostnames=["node-1"],
    )


async def test_the_certificate_is_obtained_once_and_reused(
    cluster: pki.ClusterPKI, tmp_path: Path
) -> None:
    transport = SigningTransport(cluster)
    files = await _ensure(transport, tmp_path, ["127.0.0.1"])
    assert files.ca_path.read_bytes() == cluster.ca_cert_pem
    assert files.key_path.stat().st_mode & 0o777 == 0o600
    assert transport.signed == 1
    await _ensure(transport, tmp_path, ["127.0.0.1"])
    assert transport.signed == 1
    # A new address: a new certificate.
    await _ensure(transport, tmp_path, ["127.0.0.1", "10.0.0.5"])
    assert transport.signed == 2


def _handshake(
    server_context: ssl.SSLContext, client_context: ssl.SSLContext, hostname: str
) -> tuple[dict[str, object] | None, BaseException | None]:
    """(the client certificate the server saw, the client's error)."""
    left, right = socket.socketpair()
    seen: dict[str, object] = {}

    def serve() -> None:
        try:
            with server_context.wrap_socket(right, server_side=True) as tls:
                seen["peercert"] = tls.getpeercert()
                tls.recv(1)
        except (ssl.SSLError, OSError):
            pass

    thread = threading.Thread(target=serve)
    thread.start()
    error: BaseException | None = None
    try:
        with client_context.wrap_socket(left, server_hostname=hostname) as tls:
            tls.sendall(b"x")
            tls.recv(1)
    except (ssl.SSLError, OSError) as exc:
        error = exc
    thread.join(5)
    return seen.get("peercert"), error  # type: ignore[return-value]


async def test_the_api_server_verifies_the_kubelet_and_the_kubelet_admits_it(
    cluster: pki.ClusterPKI, tmp_path: Path
) -> None:
    files = await _ensure(SigningTransport(cluster), tmp_path, ["127.0.0.1"])
    kubelet = servingcert.server_context(files)
    cert_pem, key_pem = pki.issue_client_cert(
        cluster, servingcert.KUBELET_CLIENT_NAME, ["system:masters"]
    )
    (tmp_path / "client.crt").write_bytes(cert_pem)
    (tmp_path / "client.key").write_bytes(key_pem)
    apiserver = ssl.create_default_context(cadata=cluster.ca_cert_pem.decode())
    apiserver.load_cert_chain(tmp_path / "client.crt", tmp_path / "client.key")
    peercert, error = _handshake(kubelet, apiserver, "127.0.0.1")
    assert error is None
    assert server.may_call(*server.caller(peercert))  # type: ignore[arg-type]
    # The kubelet's certificate names its addresses only.
    _, error = _handshake(servingcert.server_context(files), apiserver, "10.9.9.9")
    assert isinstance(error, ssl.SSLCertVerificationError)
    # No client certificate: the handshake fails.
    anonymous = ssl.create_default_context(cadata=cluster.ca_cert_pem.decode())
    peercert, error = _handshake(servingcert.server_context(files), anonymous, "127.0.0.1")
    assert peercert is None
