"""Every namespace gets a `default` ServiceAccount and the `kube-root-ca.crt` ConfigMap."""

from __future__ import annotations

import base64

import yaml

from tests.conftest import RunningServer
from tests.integration.controllers.harness import get, wait_for


def cluster_ca(server: RunningServer) -> str:
    config = yaml.safe_load(server.kubeconfig.read_text())
    data = config["clusters"][0]["cluster"]["certificate-authority-data"]
    return base64.b64decode(data).decode()


def test_new_namespace_gets_default_service_account_and_root_ca(
    server: RunningServer, namespace: str
) -> None:
    wait_for(
        lambda: get(server, "serviceaccount", "default", namespace) is not None, what="default SA"
    )
    wait_for(
        lambda: get(server, "configmap", "kube-root-ca.crt", namespace) is not None, what="root CA"
    )
    configmap = get(server, "configmap", "kube-root-ca.crt", namespace)
    assert configmap is not None
    assert configmap["data"] == {"ca.crt": cluster_ca(server)}
    assert configmap["metadata"]["annotations"]["kubernetes.io/description"].startswith(
        "Contains a CA bundle that can be used to verify the kube-apiserver"
    )


def test_system_namespaces_have_them_too(server: RunningServer) -> None:
    for name in ("default", "kube-system", "kube-public", "kube-node-lease"):
        wait_for(
            lambda name=name: get(server, "serviceaccount", "default", name) is not None, what=name
        )
        wait_for(
            lambda name=name: get(server, "configmap", "kube-root-ca.crt", name) is not None,
            what=name,
        )


def test_deleted_or_changed_ones_come_back(server: RunningServer, namespace: str) -> None:
    wait_for(
        lambda: get(server, "serviceaccount", "default", namespace) is not None, what="default SA"
    )
    wait_for(
        lambda: get(server, "configmap", "kube-root-ca.crt", namespace) is not None, what="root CA"
    )
    account = get(server, "serviceaccount", "default", namespace)
    assert account is not None
    server.kubectl("delete", "serviceaccount", "default", "-n", namespace)

    def recreated() -> bool:
        again = get(server, "serviceaccount", "default", namespace)
        return again is not None and again["metadata"]["uid"] != account["metadata"]["uid"]

    wait_for(recreated, what="default SA recreated")

    server.kubectl("delete", "configmap", "kube-root-ca.crt", "-n", namespace)
    wait_for(
        lambda: get(server, "configmap", "kube-root-ca.crt", namespace) is not None,
        what="root CA back",
    )
    server.kubectl(
        "patch",
        "configmap",
        "kube-root-ca.crt",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        '{"data":{"ca.crt":"x"}}',
    )
    wait_for(
        lambda: (
            (get(server, "configmap", "kube-root-ca.crt", namespace) or {}).get("data")
            == {"ca.crt": cluster_ca(server)}
        ),
        what="root CA restored",
    )
