"""`timonel server --datastore-endpoint etcd://...` with the real kubectl: objects live in
etcd, survive a server restart, and watches work."""

from __future__ import annotations

import base64
import json
import queue
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import KUBECTL, RunningServer, start_server
from tests.integration.storage.etcd_process import ETCD, MISSING_REASON, EtcdProcess

pytestmark = pytest.mark.skipif(not ETCD.exists(), reason=MISSING_REASON)

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: web
        image: nginx:1.14.2
"""


@pytest.fixture
def etcd(tmp_path: Path) -> Iterator[EtcdProcess]:
    process = EtcdProcess(tmp_path)
    process.start()
    try:
        yield process
    finally:
        process.remove()


def _etcd_keys(etcd: EtcdProcess, prefix: str) -> list[str]:
    end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    answer = etcd.post(
        "kv/range",
        {
            "key": base64.b64encode(prefix.encode()).decode(),
            "range_end": base64.b64encode(end.encode()).decode(),
            "keys_only": True,
        },
    )
    return [base64.b64decode(kv["key"]).decode() for kv in answer.get("kvs", [])]


def _start(tmp_path: Path, etcd: EtcdProcess, port: int | None = None) -> RunningServer:
    return start_server(
        tmp_path / "data",
        tmp_path / "kubectl-cache",
        # Two endpoints, the first one unreachable: the server moves on to the next.
        "--datastore-endpoint",
        f"etcd://127.0.0.1:1,127.0.0.1:{etcd.client_port}",
        port=port,
    )


def test_objects_live_in_etcd_and_survive_a_restart(tmp_path: Path, etcd: EtcdProcess) -> None:
    server = _start(tmp_path, etcd)
    try:
        server.kubectl("apply", "-f", "-", input=DEPLOYMENT)
        created = server.kubectl("get", "deployment", "web", "-o", "json").json()
        assert created["spec"]["replicas"] == 2
        # The deployment controller runs: the ReplicaSet it makes is in etcd too.
        deadline = time.monotonic() + 30
        while not _etcd_keys(etcd, "/registry/apps/replicasets/default/"):
            assert time.monotonic() < deadline, "no ReplicaSet reached etcd"
            time.sleep(0.1)
        assert any(key.endswith("/default/web") for key in _etcd_keys(etcd, "/registry/"))
        assert not (tmp_path / "data" / "server" / "db").exists(), "SQLite was used"
    finally:
        server.stop()

    server = _start(tmp_path, etcd, port=server.port)
    try:
        again = server.kubectl("get", "deployment", "web", "-o", "json").json()
        assert again["metadata"]["uid"] == created["metadata"]["uid"]
        assert int(again["metadata"]["resourceVersion"]) >= int(
            created["metadata"]["resourceVersion"]
        )
        names = server.kubectl("get", "deployments", "-o", "name").stdout.split()
        assert names == ["deployment.apps/web"]
    finally:
        server.stop()


def _pump(process: subprocess.Popen[str], into: queue.Queue[str]) -> None:
    """Lines of `process`'s output into a queue (an empty string at the end)."""
    assert process.stdout is not None
    for line in process.stdout:
        into.put(line)
    into.put("")


def test_kubectl_watch_sees_changes(tmp_path: Path, etcd: EtcdProcess) -> None:
    server = _start(tmp_path, etcd)
    watcher: subprocess.Popen[str] | None = None
    try:
        server.kubectl("create", "configmap", "watched", "--from-literal=step=0")
        watcher = subprocess.Popen(
            [
                KUBECTL,
                "--kubeconfig",
                str(server.kubeconfig),
                "--cache-dir",
                str(server.cache_dir),
                "get",
                "configmap",
                "watched",
                "--watch",
                "--output-watch-events",
                "-o",
                "json",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=_pump, args=(watcher, lines), daemon=True).start()
        decoder = json.JSONDecoder()
        buffer = ""
        events: list[tuple[str, str]] = []

        def next_event() -> tuple[str, str]:
            nonlocal buffer
            while True:
                stripped = buffer.lstrip()
                if stripped:
                    try:
                        event, end = decoder.raw_decode(stripped)
                    except json.JSONDecodeError:
                        pass
                    else:
                        buffer = stripped[end:]
                        return event["type"], event["object"].get("data", {}).get("step", "")
                line = lines.get(timeout=30)
                assert line, "kubectl watch ended"
                buffer += line

        events.append(next_event())  # the initial state
        server.kubectl("patch", "configmap", "watched", "-p", '{"data":{"step":"1"}}')
        events.append(next_event())
        server.kubectl("delete", "configmap", "watched")
        events.append(next_event())
        assert events == [("ADDED", "0"), ("MODIFIED", "1"), ("DELETED", "1")]
    finally:
        if watcher is not None:
            watcher.kill()
            watcher.wait(5)
        server.stop()
