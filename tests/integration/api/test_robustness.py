"""Bad input, concurrency and durability of the API server, over real HTTPS."""

from __future__ import annotations

import base64
import http.client
import json
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib import request as urlrequest
from urllib.error import HTTPError

import pytest
import yaml

from tests.conftest import RunningServer, start_server


class Client:
    """A minimal HTTPS client with the admin certificate from the kubeconfig; one kept-alive
    connection per thread."""

    def __init__(self, server: RunningServer, directory: Path) -> None:
        kubeconfig = yaml.safe_load(server.kubeconfig.read_text())
        user = kubeconfig["users"][0]["user"]
        cluster = kubeconfig["clusters"][0]["cluster"]
        (directory / "ca.crt").write_bytes(base64.b64decode(cluster["certificate-authority-data"]))
        (directory / "client.crt").write_bytes(base64.b64decode(user["client-certificate-data"]))
        (directory / "client.key").write_bytes(base64.b64decode(user["client-key-data"]))
        self.context = ssl.create_default_context(cafile=str(directory / "ca.crt"))
        self.context.load_cert_chain(str(directory / "client.crt"), str(directory / "client.key"))
        self.port = server.port
        self._local = threading.local()

    def _connection(self) -> http.client.HTTPSConnection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = http.client.HTTPSConnection(
                "127.0.0.1", self.port, context=self.context, timeout=30
            )
            self._local.connection = connection
        return connection

    def call(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        content_type: str = "application/json",
    ) -> tuple[int, Any]:
        headers = {"Content-Type": content_type, "Accept": "application/json"}
        for attempt in range(2):
            connection = self._connection()
            try:
                connection.request(method, path, body=body, headers=headers)
                response = connection.getresponse()
                return response.status, json.loads(response.read() or b"null")
            except (http.client.HTTPException, ConnectionError):
                connection.close()
                self._local.connection = None
                if attempt:
                    raise
        raise AssertionError("unreachable")


@pytest.fixture(scope="module")
def api(server: RunningServer, tmp_path_factory: pytest.TempPathFactory) -> Client:
    return Client(server, tmp_path_factory.mktemp("client"))


def _cm(name: str, **extra: Any) -> bytes:
    return json.dumps(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, **extra}
    ).encode()


BAD_INPUT = [
    # (what, method, path suffix, body, content type, code, reason)
    (
        "malformed json",
        "POST",
        "configmaps",
        b'{"apiVersion": "v1", "kind": ',
        "application/json",
        400,
        "BadRequest",
    ),
    (
        "malformed yaml",
        "POST",
        "configmaps",
        b"apiVersion: v1\nkind: [ConfigMap\n",
        "application/yaml",
        400,
        "BadRequest",
    ),
    (
        "malformed protobuf",
        "POST",
        "configmaps",
        b"k8s\x00\x0a\xff\xff",
        "application/vnd.kubernetes.protobuf",
        400,
        "BadRequest",
    ),
    ("not an object", "POST", "configmaps", b"[1, 2]", "application/json", 400, "BadRequest"),
    (
        "wrong type",
        "POST",
        "configmaps",
        _cm("typed", data={"a": 1}),
        "application/json",
        400,
        "BadRequest",
    ),
    ("invalid name", "POST", "configmaps", _cm("Bad_Name"), "application/json", 422, "Invalid"),
    (
        "invalid label",
        "POST",
        "configmaps",
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "l", "labels": {"a": "b c"}},
            }
        ).encode(),
        "application/json",
        422,
        "Invalid",
    ),
    (
        "unknown kind",
        "POST",
        "configmaps",
        json.dumps({"apiVersion": "v1", "kind": "Gizmo", "metadata": {"name": "g"}}).encode(),
        "application/json",
        400,
        "BadRequest",
    ),
    (
        "unsupported media type",
        "POST",
        "configmaps",
        b"<xml/>",
        "application/xml",
        415,
        "UnsupportedMediaType",
    ),
    (
        "oversized body",
        "POST",
        "configmaps",
        _cm("big", data={"k": "x" * (3 * 1024 * 1024 + 10)}),
        "application/json",
        413,
        "RequestEntityTooLarge",
    ),
]


@pytest.mark.parametrize(
    ("what", "method", "suffix", "body", "content_type", "code", "reason"),
    BAD_INPUT,
    ids=[case[0] for case in BAD_INPUT],
)
def test_bad_input_gets_a_status_and_stores_nothing(
    api: Client,
    namespace: str,
    what: str,
    method: str,
    suffix: str,
    body: bytes,
    content_type: str,
    code: int,
    reason: str,
) -> None:
    base = f"/api/v1/namespaces/{namespace}/{suffix}"
    status, answer = api.call(method, base, body, content_type)
    assert status == code, answer
    assert answer["kind"] == "Status"
    assert answer["reason"] == reason
    listed_status, listed = api.call("GET", base)
    assert listed_status == 200
    # Every namespace holds the root CA ConfigMap the controller manager publishes.
    stored = [i for i in listed["items"] if i["metadata"]["name"] != "kube-root-ca.crt"]
    assert stored == []


def test_strict_unknown_field_names_the_field(api: Client, namespace: str) -> None:
    status, answer = api.call(
        "POST",
        f"/api/v1/namespaces/{namespace}/configmaps?fieldValidation=Strict",
        _cm("strict", spec={"x": 1}),
    )
    assert status == 400
    assert 'unknown field "spec"' in answer["message"]


def test_invalid_reports_causes(api: Client, namespace: str) -> None:
    status, answer = api.call("POST", f"/api/v1/namespaces/{namespace}/configmaps", _cm("Bad_Name"))
    assert status == 422
    causes = answer["details"]["causes"]
    assert causes[0]["field"] == "metadata.name"
    assert causes[0]["reason"] == "FieldValueInvalid"


def test_immutable_field_change_is_rejected(api: Client, namespace: str) -> None:
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "nginx"}]},
            },
        },
    }
    path = f"/apis/apps/v1/namespaces/{namespace}/deployments"
    status, created = api.call("POST", path, json.dumps(deployment).encode())
    assert status == 201, created
    patch = {
        "spec": {
            "selector": {"matchLabels": {"app": "other"}},
            "template": {"metadata": {"labels": {"app": "other"}}},
        }
    }
    status, answer = api.call(
        "PATCH", f"{path}/web", json.dumps(patch).encode(), "application/merge-patch+json"
    )
    assert status == 422
    assert any(c["field"] == "spec.selector" for c in answer["details"]["causes"])
    status, current = api.call("GET", f"{path}/web")
    assert current["spec"]["selector"] == {"matchLabels": {"app": "web"}}
    assert current["metadata"]["generation"] == created["metadata"]["generation"]
    assert current["spec"] == created["spec"]


def test_unauthenticated_requests_get_401(server: RunningServer) -> None:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        urlrequest.urlopen(server.url + "/api/v1/namespaces", context=context, timeout=10)
        raise AssertionError("expected 401")
    except HTTPError as error:
        assert error.code == 401
        assert json.loads(error.read())["reason"] == "Unauthorized"


def test_concurrent_read_modify_write_ends_with_exact_count(api: Client, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    status, _ = api.call("POST", path, _cm("counter", data={"n": "0"}))
    assert status == 201
    clients, increments = 8, 200
    failures: list[str] = []

    def worker() -> None:
        for _ in range(increments):
            while True:
                _, current = api.call("GET", f"{path}/counter")
                current["data"]["n"] = str(int(current["data"]["n"]) + 1)
                status, answer = api.call("PUT", f"{path}/counter", json.dumps(current).encode())
                if status == 200:
                    break
                if status != 409:
                    failures.append(f"{status} {answer}")
                    return

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    _, final = api.call("GET", f"{path}/counter")
    assert final["data"]["n"] == str(clients * increments)


WRITER = """
import json, ssl, sys
from urllib import request
base, ca, crt, key, namespace = sys.argv[1:6]
context = ssl.create_default_context(cafile=ca)
context.load_cert_chain(crt, key)
for index in range(100000):
    body = json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"d-{index}"}}).encode()
    req = request.Request(f"{base}/api/v1/namespaces/{namespace}/configmaps", data=body, method="POST",
                          headers={"Content-Type": "application/json"})
    with request.urlopen(req, context=context, timeout=30) as response:
        if response.status == 201:
            print(index, flush=True)
"""


def test_kill_9_loses_no_acknowledged_write(tmp_path: Path) -> None:
    own = start_server(tmp_path / "data", tmp_path / "cache")
    try:
        own.kubectl("create", "namespace", "durable")
        kube = yaml.safe_load(own.kubeconfig.read_text())
        cluster, user = kube["clusters"][0]["cluster"], kube["users"][0]["user"]
        (tmp_path / "ca.crt").write_bytes(base64.b64decode(cluster["certificate-authority-data"]))
        (tmp_path / "client.crt").write_bytes(base64.b64decode(user["client-certificate-data"]))
        (tmp_path / "client.key").write_bytes(base64.b64decode(user["client-key-data"]))
        writer = subprocess.Popen(
            [
                sys.executable,
                "-c",
                WRITER,
                own.url,
                str(tmp_path / "ca.crt"),
                str(tmp_path / "client.crt"),
                str(tmp_path / "client.key"),
                "durable",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        acknowledged: list[int] = []
        assert writer.stdout is not None
        deadline = time.monotonic() + 30
        while len(acknowledged) < 150 and time.monotonic() < deadline:
            line = writer.stdout.readline()
            if line.strip():
                acknowledged.append(int(line))
        own.process.kill()
        own.process.wait()
        writer.kill()
        writer.wait()
        for line in writer.stdout.read().split():
            acknowledged.append(int(line))
        assert len(acknowledged) >= 150
    finally:
        own.stop()
    restarted = start_server(tmp_path / "data", tmp_path / "cache", port=own.port)
    try:
        names = set(restarted.kubectl("get", "cm", "-n", "durable", "-o", "name").stdout.split())
        missing = [i for i in acknowledged if f"configmap/d-{i}" not in names]
        assert missing == []
    finally:
        restarted.stop()
