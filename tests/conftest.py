"""Shared test fixtures: a real `timonel server` process and kubectl pointed at it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from timonel.apiserver import sharedguard

REPO = Path(__file__).resolve().parent.parent
KUBECTL = os.environ.get("KUBECTL", "/usr/bin/kubectl")

# Every server the tests start, in this process or as a child, checks that nobody changes
# the watch cache's shared objects in place (see timonel/apiserver/sharedguard.py).
os.environ[sharedguard.ENVIRONMENT_VARIABLE] = "1"


def assert_no_shared_object_changed(log_path: Path) -> None:
    """Fails when a server's log reports a shared object changed in place."""
    if not log_path.exists():
        return
    lines = [
        line
        for line in log_path.read_text(errors="replace").splitlines()
        if sharedguard.SHARED_OBJECT_CHANGED in line
    ]
    assert not lines, "\n".join(lines[:10])


@pytest.fixture(autouse=True)
def no_shared_object_changed(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """The same check for servers run inside the test process."""
    yield
    changed = [
        record.getMessage()
        for record in caplog.get_records("call")
        if record.name == sharedguard.__name__
    ]
    assert not changed, "\n".join(changed[:10])


def stop_process(process: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """SIGTERM (a clean shutdown), SIGKILL after `grace` seconds; only this process."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(grace)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class KubectlResult:
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> dict:  # type: ignore[type-arg]
        return json.loads(self.stdout)


@dataclass
class RunningServer:
    data_dir: Path
    port: int
    process: subprocess.Popen[bytes]
    cache_dir: Path
    log_path: Path | None = None

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def kubeconfig(self) -> Path:
        return self.data_dir / "kubeconfig.yaml"

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 60
    ) -> KubectlResult:
        command = [
            KUBECTL,
            "--kubeconfig",
            str(self.kubeconfig),
            "--cache-dir",
            str(self.cache_dir),
            *args,
        ]
        done = subprocess.run(command, input=input, capture_output=True, text=True, timeout=timeout)
        result = KubectlResult(done.returncode, done.stdout, done.stderr)
        if check and done.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} failed ({done.returncode}):\n{done.stderr}\n{done.stdout}"
            )
        return result

    def stop(self) -> None:
        stop_process(self.process)
        if self.log_path is not None:
            assert_no_shared_object_changed(self.log_path)


def start_server(
    data_dir: Path, cache_dir: Path, *extra: str, port: int | None = None
) -> RunningServer:
    port = port or free_port()
    log = open(data_dir.parent / f"{data_dir.name}-server.log", "ab")  # noqa: SIM115 - lives with the process
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "timonel",
            "server",
            "--data-dir",
            str(data_dir),
            "--bind-address",
            "127.0.0.1",
            "--https-listen-port",
            str(port),
            "--disable-agent",
            *extra,
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=REPO,
    )
    server = RunningServer(data_dir, port, process, cache_dir, Path(log.name))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"timonel server exited with {process.returncode}; see {log.name}")
        if server.kubeconfig.exists():
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    return server
            except OSError:
                pass
        time.sleep(0.05)
    server.stop()
    raise RuntimeError("timonel server did not become ready in 30 s")


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    root = tmp_path_factory.mktemp("timonel")
    running = start_server(root / "data", root / "kubectl-cache")
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def namespace(server: RunningServer) -> Iterator[str]:
    """A fresh namespace for one test."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    server.kubectl("create", "namespace", name)
    yield name
