"""A throwaway single-member etcd on loopback for tests: free ports, a temporary data
directory, ended by its PID and removed afterwards."""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.conftest import free_port, stop_process

ETCD = Path("/usr/bin/etcd")
MISSING_REASON = f"etcd is not installed ({ETCD}); scripts/install-runtime installs etcd-server"


@dataclass(frozen=True)
class EtcdTLS:
    """Files for an etcd serving HTTPS that asks clients for a certificate."""

    ca_file: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


class EtcdProcess:
    def __init__(self, directory: Path, tls: EtcdTLS | None = None) -> None:
        self.directory = directory
        self.tls = tls
        self.data_dir = directory / "etcd-data"
        self.client_port = free_port()
        self.peer_port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self.client_port}"

    @property
    def endpoint(self) -> str:
        if self.tls is None:
            return f"etcd://127.0.0.1:{self.client_port}"
        return (
            f"etcds://127.0.0.1:{self.client_port}?cacert={self.tls.ca_file}"
            f"&cert={self.tls.client_cert}&key={self.tls.client_key}"
        )

    def start(self, timeout: float = 30.0) -> None:
        peer = f"http://127.0.0.1:{self.peer_port}"
        log = open(self.directory / "etcd.log", "ab")  # noqa: SIM115 - lives with the process
        self.process = subprocess.Popen(
            [
                str(ETCD),
                "--name",
                "test",
                "--data-dir",
                str(self.data_dir),
                "--listen-client-urls",
                self.url,
                "--advertise-client-urls",
                self.url,
                "--listen-peer-urls",
                peer,
                "--initial-advertise-peer-urls",
                peer,
                "--initial-cluster",
                f"test={peer}",
                *self._tls_flags(),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"etcd exited with {self.process.returncode}; see {log.name}")
            try:
                if self.post("kv/range", {"key": "AA=="}).get("header"):
                    return
            except (OSError, urllib.error.URLError, ValueError):
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"etcd did not answer within {timeout} s")

    def _tls_flags(self) -> list[str]:
        if self.tls is None:
            return []
        return [
            "--cert-file",
            str(self.tls.server_cert),
            "--key-file",
            str(self.tls.server_key),
            "--trusted-ca-file",
            str(self.tls.ca_file),
            "--client-cert-auth",
        ]

    def _ssl_context(self) -> ssl.SSLContext | None:
        if self.tls is None:
            return None
        context = ssl.create_default_context(cafile=str(self.tls.ca_file))
        context.load_cert_chain(str(self.tls.client_cert), str(self.tls.client_key))
        return context

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        request = urllib.request.Request(
            f"{self.url}/v3/{path}",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30, context=self._ssl_context()) as response:
            answer: dict[str, Any] = json.loads(response.read())
        return answer

    def defragmented_db_size(self) -> int:
        """Bytes of the backend database once defragmented. etcd keeps the pages that
        compaction frees in its file for reuse; giving them back to the file system is
        an operator's `etcdctl defrag`, which this does first."""
        self.post("maintenance/defragment", {})
        return int(self.post("maintenance/status", {})["dbSize"])

    def wipe(self) -> None:
        """Delete every key (revisions and compactions carry on)."""
        self.post("kv/deleterange", {"key": "AA==", "range_end": "AA=="})

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)
