"""Stopping a loaded control plane: its components stop before the API, the listener and
the storage do, so nothing is left running against a closed store and nothing is logged
as an error."""

from __future__ import annotations

import asyncio
import logging
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, start_server
from timonel.api.objects import Object
from timonel.client.resources import DEPLOYMENTS, PODS
from timonel.server import ControlPlane, ServerOptions


def _deployment(name: str, replicas: int) -> Object:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "web", "image": "nginx"}]},
            },
        },
    }


async def test_stop_leaves_no_component_running(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    plane = ControlPlane(
        ServerOptions(
            data_dir=tmp_path, bind_address="127.0.0.1", https_listen_port=0, disable_agent=True
        )
    )
    before = asyncio.all_tasks()
    await plane.start()
    client = plane.in_process_client("tests")
    await client.create(DEPLOYMENTS, _deployment("busy", 60), "default")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        pods = await client.list(PODS, "default")
        if len(pods["items"]) >= 20:
            break
        await asyncio.sleep(0.05)
    with caplog.at_level(logging.WARNING):
        await plane.stop()
        await asyncio.sleep(0.2)  # anything still running gets its chance to fail

    leftover = [
        task.get_coro()
        for task in asyncio.all_tasks() - before
        if task is not asyncio.current_task() and not task.done()
    ]
    assert leftover == []
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


def test_sigterm_under_load_logs_no_errors(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    server = start_server(data_dir, tmp_path / "kubectl-cache")
    log_path = tmp_path / "data-server.log"
    token = (data_dir / "token").read_text().strip()
    agent = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "timonel",
            "agent",
            "--simulate",
            "20",
            "--server",
            server.url,
            "--token",
            token,
            "--data-dir",
            str(tmp_path / "agent"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=REPO,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            nodes = server.kubectl("get", "nodes", "-o", "name", check=False).stdout.split()
            if len(nodes) >= 20:
                break
            time.sleep(0.2)
        server.kubectl("create", "deployment", "load", "--image=nginx", "--replicas=400")
        # Stop while the scheduler binds, the nodes report and the controllers write.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            running = server.kubectl(
                "get", "pods", "--field-selector=status.phase=Running", "-o", "name"
            ).stdout.split()
            if len(running) >= 20:
                break
            time.sleep(0.1)
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(20) == 0
    finally:
        server.stop()
        agent.terminate()
        try:
            agent.wait(10)
        except subprocess.TimeoutExpired:
            agent.kill()
            agent.wait(5)
    log = log_path.read_text()
    problems = [line for line in log.splitlines() if " ERROR " in line or "Traceback" in line]
    assert problems == [], log[-4000:]
