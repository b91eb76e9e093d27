"""Serving certificates for kubelets: `POST /v1-timonel/serving-kubelet.crt`.

A node agent makes its own key and sends a PKCS#10 request for the subject
`CN=system:node:<node name>, O=system:nodes` with the node's addresses and names as
subject alternative names; the cluster CA signs it for server authentication, so the
API server can verify the kubelet it proxies to (as k3s agents get theirs from
`/v1-k3s/serving-kubelet.crt`). Only node identities (the join token, node
certificates) and cluster administrators may ask.

`review_request` is the pure decision; `serve` answers the HTTP request.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Final

from timonel import pki
from timonel.api import errors
from timonel.api.user import SYSTEM_MASTERS, SYSTEM_NODES, UserInfo
from timonel.api.validation import dns1123_subdomain_problems
from timonel.apiserver.context import ApiRequest, ApiResponse

PATH: Final = "/v1-timonel/serving-kubelet.crt"
NODE_USER_PREFIX: Final = "system:node:"
MAX_NAMES: Final = 32
MAX_REQUEST_BYTES: Final = 16 * 1024


@dataclass(frozen=True)
class ServingRequest:
    node_name: str
    sans: tuple[str, ...]
    """`DNS:name` / `IP:address`."""


def review_request(csr_pem: bytes) -> ServingRequest:
    """What a kubelet serving certificate request asks for, or a 400 saying why it is not
    one: the node subject exactly, and only DNS names and IP addresses as other names."""
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    try:
        request = x509.load_pem_x509_csr(csr_pem)
    except ValueError:
        raise errors.bad_request("the body is not a PEM certificate request") from None
    if not request.is_signature_valid:
        raise errors.bad_request("the certificate request's signature is invalid")
    common_names = request.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    organizations = request.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    others = [
        a for a in request.subject if a.oid not in (NameOID.COMMON_NAME, NameOID.ORGANIZATION_NAME)
    ]
    common_name = str(common_names[0].value) if len(common_names) == 1 else ""
    node_name = common_name.removeprefix(NODE_USER_PREFIX)
    if (
        not common_name.startswith(NODE_USER_PREFIX)
        or not node_name
        or dns1123_subdomain_problems(node_name)
        or [str(o.value) for o in organizations] != [SYSTEM_NODES]
        or others
    ):
        raise errors.bad_request(
            f'a kubelet serving certificate must be for "CN={NODE_USER_PREFIX}<node name>, '
            f'O={SYSTEM_NODES}"'
        )
    sans: list[str] = []
    try:
        extension = request.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        extension = None
    if extension is not None:
        for name in extension.value:
            if isinstance(name, x509.DNSName):
                sans.append(f"DNS:{name.value}")
            elif isinstance(name, x509.IPAddress) and isinstance(
                name.value, ipaddress.IPv4Address | ipaddress.IPv6Address
            ):
                sans.append(f"IP:{name.value}")
            else:
                raise errors.bad_request(
                    "a kubelet serving certificate may name only DNS names and IP addresses"
                )
    if not sans or len(sans) > MAX_NAMES:
        raise errors.bad_request(
            f"a kubelet serving certificate must name between 1 and {MAX_NAMES} addresses"
        )
    return ServingRequest(node_name, tuple(sans))


def may_request(user: UserInfo) -> bool:
    return SYSTEM_NODES in user.groups or SYSTEM_MASTERS in user.groups


class KubeletServingSigner:
    def __init__(self, cluster_pki: pki.ClusterPKI) -> None:
        self._pki = cluster_pki

    def sign(self, csr_pem: bytes) -> bytes:
        wanted = review_request(csr_pem)
        return pki.sign_certificate_request(self._pki, csr_pem, sans=wanted.sans, server=True)

    async def serve(self, request: ApiRequest) -> ApiResponse:
        if request.method != "POST":
            raise errors.method_not_allowed(f"{request.method} is not supported on {PATH}")
        user = request.user
        if user is None or not may_request(user):
            name = user.name if user is not None else "system:anonymous"
            raise errors.forbidden_request(
                f'User "{name}" cannot request kubelet serving certificates'
            )
        if len(request.body) > MAX_REQUEST_BYTES:
            raise errors.request_entity_too_large(MAX_REQUEST_BYTES)
        return ApiResponse(200, self.sign(request.body), "application/x-pem-file")
