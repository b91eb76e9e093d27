"""Logs, exec, attach, cp, port-forward and top through the API server, as kubectl 1.32 and
the official Python client use them, against pods on a real node (containerd).

kubectl speaks WebSocket v5 (exec, attach, cp) and SPDY tunnelled in WebSocket
(port-forward) first; the SPDY fallbacks are exercised by turning those off
(KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false, PORT_FORWARD_WEBSOCKETS=false).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import pty
import select
import signal
import ssl
import struct
import subprocess
import termios
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import free_port, stop_process
from tests.e2e.kubelet.conftest import Cluster, container_status, wait_for
from tests.e2e.streaming.conftest import (
    kubectl_command,
    pod_manifest,
    run_kubectl,
    start_pod,
)
from timonel import pki

WAIT_FOREVER = "trap 'exit 0' TERM; while true; do sleep 1; done"
NO_WEBSOCKET_EXEC = {"KUBECTL_REMOTE_COMMAND_WEBSOCKETS": "false"}
NO_WEBSOCKET_PORT_FORWARD = {"PORT_FORWARD_WEBSOCKETS": "false"}


def sleeper(name: str, **spec: Any) -> dict[str, Any]:
    return pod_manifest(name, [{"name": "main", "command": ["sh", "-c", WAIT_FOREVER]}], **spec)


class Background:
    """A kubectl left running (logs -f, attach, port-forward); stopped by its PID."""

    def __init__(self, command: list[str], env: dict[str, str] | None = None) -> None:
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, **(env or {})},
        )
        assert self.process.stdout is not None
        os.set_blocking(self.process.stdout.fileno(), False)
        self.output = b""

    def read_until(self, wanted: bytes, timeout: float = 20) -> bytes:
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout
        while wanted not in self.output and time.monotonic() < deadline:
            ready, _, _ = select.select([self.process.stdout], [], [], 0.1)
            if ready:
                chunk = self.process.stdout.read()
                if chunk:
                    self.output += chunk
                elif self.process.poll() is not None:
                    break
        assert wanted in self.output, f"{wanted!r} not in {self.output!r}"
        return self.output

    def write(self, data: bytes) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(data)
        self.process.stdin.flush()

    def stop(self) -> None:
        stop_process(self.process)
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


# -- logs --------------------------------------------------------------------------------------


def test_logs_with_tail_timestamps_limit_and_follow(cluster: Cluster) -> None:
    namespace = cluster.namespace()
    script = "i=0; while true; do i=$((i+1)); echo line $i; sleep 0.2; done"
    start_pod(
        cluster,
        namespace,
        pod_manifest("talker", [{"name": "main", "command": ["sh", "-c", script]}]),
    )
    wait_for(
        lambda: "line 5\n" in cluster.kubectl("logs", "-n", namespace, "talker").stdout,
        what="five lines of log",
    )
    lines = cluster.kubectl("logs", "-n", namespace, "talker").stdout.splitlines()
    assert lines[:5] == [f"line {i}" for i in range(1, 6)]

    tail = cluster.kubectl("logs", "-n", namespace, "talker", "--tail=2").stdout.splitlines()
    assert len(tail) == 2 and all(t.startswith("line ") for t in tail)
    stamped = cluster.kubectl("logs", "-n", namespace, "talker", "--timestamps", "--tail=1").stdout
    stamp, _, message = stamped.strip().partition(" ")
    assert message.startswith("line ")
    assert len(stamp) == len("2026-01-02T15:04:05.123456789Z") and stamp.endswith("Z")
    limited = cluster.kubectl("logs", "-n", namespace, "talker", "--limit-bytes=9").stdout
    assert limited == "line 1\nli"
    recent = cluster.kubectl("logs", "-n", namespace, "talker", "--since=1s").stdout.splitlines()
    # One second of a line every 0.2 s, long after the first line.
    assert recent and recent[0] != "line 1" and len(recent) <= 8

    follower = Background(
        kubectl_command(cluster, "logs", "-f", "-n", namespace, "talker", "--tail=1")
    )
    try:
        first = int(follower.read_until(b"\n").split()[1])
        follower.read_until(f"line {first + 5}\n".encode())
    finally:
        follower.stop()

    # Through the node proxy, as kube-apiserver offers it.
    node_log = cluster.kubectl(
        "get",
        "--raw",
        f"/api/v1/nodes/{cluster.node_name}/proxy/containerLogs/{namespace}/talker/main",
    ).stdout
    assert node_log.startswith("line 1\nline 2\n")


def _open_logs(pid: int, pod_name: str) -> int:
    """How many of the process's file descriptors are container log files of the pod."""
    count = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if f"_{pod_name}_" in target and target.endswith(".log"):
            count += 1
    return count


def test_an_abandoned_follow_lets_go_of_the_log(cluster: Cluster) -> None:
    namespace = cluster.namespace()
    quiet = {"name": "main", "command": ["sh", "-c", f"echo hi; {WAIT_FOREVER}"]}
    start_pod(cluster, namespace, pod_manifest("quiet", [quiet]))
    assert cluster.process is not None
    server = cluster.process.pid  # the node agent runs inside the server
    follower = Background(kubectl_command(cluster, "logs", "-f", "-n", namespace, "quiet"))
    try:
        follower.read_until(b"hi\n")
        assert _open_logs(server, "quiet") == 1
    finally:
        follower.stop()
    # The log is idle, so no write fails: the API server notices the client's departure
    # itself, ends its stream from the kubelet, and the kubelet closes the file.
    wait_for(lambda: _open_logs(server, "quiet") == 0, timeout=10, what="the log to be closed")


def test_following_a_container_that_exits_ends_with_it(cluster: Cluster) -> None:
    namespace = cluster.namespace()
    script = "sleep 2; for i in 1 2 3; do echo step $i; sleep 0.5; done"
    cluster.apply(
        json.dumps(
            pod_manifest(
                "finisher",
                [{"name": "main", "command": ["sh", "-c", script]}],
                restartPolicy="Never",
            )
        ),
        namespace,
    )
    wait_for(
        lambda: container_status(cluster.pod("finisher", namespace), "main")["state"].get(
            "running"
        ),
        what="the container to run",
    )
    started = time.monotonic()
    done = run_kubectl(cluster, "logs", "-f", "-n", namespace, "finisher", timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stdout == b"step 1\nstep 2\nstep 3\n"
    assert time.monotonic() - started < 15


def test_previous_logs_after_a_restart(cluster: Cluster) -> None:
    namespace = cluster.namespace()
    script = (
        "n=$(cat /data/runs 2>/dev/null || echo 0); n=$((n+1)); echo $n > /data/runs; "
        f'echo "run $n"; if [ $n -lt 2 ]; then exit 1; fi; {WAIT_FOREVER}'
    )
    manifest = pod_manifest(
        "restarter",
        [
            {
                "name": "main",
                "command": ["sh", "-c", script],
                "volumeMounts": [{"name": "data", "mountPath": "/data"}],
            }
        ],
        volumes=[{"name": "data", "emptyDir": {}}],
    )
    cluster.apply(json.dumps(manifest), namespace)

    def second_run() -> bool:
        status = container_status(cluster.pod("restarter", namespace), "main")
        return status["restartCount"] >= 1 and "running" in status["state"]

    wait_for(second_run, timeout=60, what="the container to run again")
    assert cluster.kubectl("logs", "-n", namespace, "restarter").stdout == "run 2\n"
    previous = cluster.kubectl("logs", "-n", namespace, "restarter", "--previous").stdout
    assert previous == "run 1\n"


def test_log_errors_are_api_errors(cluster: Cluster) -> None:
    namespace = cluster.namespace()
    start_pod(cluster, namespace, sleeper("quiet"))
    wrong = cluster.kubectl("logs", "-n", namespace, "quiet", "-c", "nope", check=False)
    assert wrong.returncode == 1
    assert "container nope is not valid for pod quiet" in wrong.stderr
    never = cluster.kubectl("logs", "-n", namespace, "quiet", "--previous", check=False)
    assert never.returncode == 1
    assert 'previous terminated container "main" in pod "quiet" not found' in never.stderr


# -- exec, cp, attach ---------------------------------------------------------------------------


@pytest.mark.parametrize("env", [{}, NO_WEBSOCKET_EXEC], ids=["websocket", "spdy"])
def test_exec_propagates_output_and_exit_code(cluster: Cluster, env: dict[str, str]) -> None:
    namespace = cluster.namespace()
    start_pod(cluster, namespace, sleeper("shell"))
    done = run_kubectl(
        cluster,
        "exec",
        "-n",
        namespace,
        "shell",
        "--",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
        env=env,
    )
    assert done.returncode == 3
    assert done.stdout == b"out\n"
    assert b"err\n" in done.stderr
    assert b"command terminated with exit code 3" in done.stderr
    ok = run_kubectl(cluster, "exec", "-n", namespace, "shell", "--", "true", env=env)
    assert (ok.returncode, ok.stdout, ok.stderr) == (0, b"", b"")


@pytest.mark.parametrize("env", [{}, NO_WEBSOCKET_EXEC], ids=["websocket", "spdy"])
def test_exec_with_stdin_sees_its_end(cluster: Cluster, env: dict[str, str]) -> None:
    namespace = cluster.namespace()
    start_pod(cluster, namespace, sleeper("shell"))
    payload = os.urandom(300_000)
    done = run_kubectl(
        cluster, "exec", "-i", "-n", namespace, "shell", "--", "sha256sum", input=payload, env=env
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[0].decode() == hashlib.sha256(payload).hexdigest()


def _run_in_terminal(
    command: list[str], keys: bytes, rows: int = 40, columns: int = 120
) -> tuple[bytes, int]:
    """Run `command` on a pseudo-terminal of the given size, type `keys` once it printed
    something, and return (everything it printed, its exit code)."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: exec kubectl on the terminal
        os.execvp(command[0], command)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    output = b""
    typed = False
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(fd, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                output += chunk
            if not typed and output:
                os.write(fd, keys)
                typed = True
    finally:
        if time.monotonic() >= deadline:
            os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    return output, os.waitstatus_to_exitcode(status)


@pytest.mark.parametrize("env", [{}, NO_WEBSOCKET_EXEC], ids=["websocket", "spdy"])
def test_exec_with_a_terminal(
    cluster: Cluster, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    namespace = cluster.namespace()
    start_pod(cluster, namespace, sleeper("shell"))
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    output, code = _run_in_terminal(
        kubectl_command(cluster, "exec", "-it", "-n", namespace, "shell", "--", "sh"),
        b"tty; stty size; echo typed-$((6*7)); exit 5\r",
    )
    assert code == 5, output
    text = output.decode(errors="replace")
    assert "/dev/pts/" in text
    assert "40 120" in text
    assert "typed-42" in text


def test_cp_both_ways(cluster: Cluster, tmp_path: Path) -> None:
    namespace = cluster.namespace()
    start_pod(cluster, namespace, sleeper("files"))
    source = tmp_path / "upload"
    source.mkdir()
    (source / "data.bin").write_bytes(os.urandom(200_000))
    (source / "notes.txt").write_text("hello from the host\n")
    cluster.kubectl("cp", str(source), f"{namespace}/files:/tmp/upload")
    remote = cluster.kubectl(
        "exec", "-n", namespace, "files", "--", "sha256sum", "/tmp/upload/data.bin"
    )
    assert (
        remote.stdout.split()[0] == hashlib.sha256((source / "data.bin").read_bytes()).hexdigest()
    )

    cluster.kubectl(
        "exec",
        "-n",
        namespace,
        "files",
        "--",
        "sh",
        "-c",
        "echo made in the pod > /tmp/upload/pod.txt",
    )
    back = tmp_path / "download"
    cluster.kubectl("cp", f"{namespace}/files:/tmp/upload", str(back))
    assert (back / "data.bin").read_bytes() == (source / "data.bin").read_bytes()
    assert (back / "notes.txt").read_text() == "hello from the host\n"
    assert (back / "pod.txt").read_text() == "made in the pod\n"


def test_attach_to_output_and_to_stdin(cluster: Cluster) -> None:
    namespace = cluster.namespace()
    script = "i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.3; done"
    start_pod(
        cluster,
        namespace,
        pod_manifest("ticker", [{"name": "main", "command": ["sh", "-c", script]}]),
    )
    watcher = Background(kubectl_command(cluster, "attach", "-n", namespace, "ticker"))
    try:
        output = watcher.read_until(b"tick")
        first = int(output.split(b"tick ")[1].split()[0])
        watcher.read_until(f"tick {first + 3}\n".encode())
    finally:
        watcher.stop()

    echo = 'while read line; do echo "got $line"; done'
    start_pod(
        cluster,
        namespace,
        pod_manifest("reader", [{"name": "main", "command": ["sh", "-c", echo], "stdin": True}]),
    )
    talker = Background(kubectl_command(cluster, "attach", "-i", "-n", namespace, "reader"))
    try:
        # The attach is live once kubectl said so; only then is what we type delivered.
        time.sleep(1)
        talker.write(b"hello\n")
        talker.read_until(b"got hello\n")
        talker.write(b"again\n")
        talker.read_until(b"got again\n")
    finally:
        talker.stop()


def test_exec_into_a_completed_pod_is_refused(cluster: Cluster) -> None:
    namespace = cluster.namespace()
    cluster.apply(
        json.dumps(
            pod_manifest("done", [{"name": "main", "command": ["true"]}], restartPolicy="Never")
        ),
        namespace,
    )
    wait_for(
        lambda: cluster.pod("done", namespace)["status"].get("phase") == "Succeeded",
        what="the pod to finish",
    )
    refused = cluster.kubectl("exec", "-n", namespace, "done", "--", "true", check=False)
    assert refused.returncode == 1
    assert (
        "cannot exec into a container in a completed pod; current phase is Succeeded"
        in refused.stderr
    )


def test_the_python_client_streams_exec(cluster: Cluster) -> None:
    from kubernetes import client, config
    from kubernetes.stream import stream

    namespace = cluster.namespace()
    start_pod(cluster, namespace, sleeper("shell"))
    api = client.CoreV1Api(config.new_client_from_config(str(cluster.kubeconfig)))
    output = stream(
        api.connect_get_namespaced_pod_exec,
        "shell",
        namespace,
        command=["sh", "-c", "echo py-$((40+2))"],
        stdout=True,
        stderr=True,
        stdin=False,
        tty=False,
    )
    assert output == "py-42\n"
    session = stream(
        api.connect_get_namespaced_pod_exec,
        "shell",
        namespace,
        command=["sh", "-c", "read line; echo got-$line; echo oops >&2; exit 7"],
        stdout=True,
        stderr=True,
        stdin=True,
        tty=False,
        _preload_content=False,
    )
    try:
        session.write_stdin("hello\n")
        session.run_forever(timeout=20)
        assert session.read_stdout() == "got-hello\n"
        assert session.read_stderr() == "oops\n"
        assert session.returncode == 7
    finally:
        session.close()


# -- port-forward ------------------------------------------------------------------------------


@pytest.mark.parametrize("env", [{}, NO_WEBSOCKET_PORT_FORWARD], ids=["websocket", "spdy"])
def test_port_forward_serves_http_from_the_pod(cluster: Cluster, env: dict[str, str]) -> None:
    namespace = cluster.namespace()
    server = {"name": "web", "command": ["httpd", "-f", "-p", "8080", "-h", "/www"]}
    start_pod(cluster, namespace, pod_manifest("web", [server]))
    cluster.kubectl(
        "exec",
        "-n",
        namespace,
        "web",
        "--",
        "sh",
        "-c",
        "head -c 100000 /dev/zero | tr '\\0' x > /www/big.txt",
    )
    port = free_port()
    forward = Background(
        kubectl_command(cluster, "port-forward", "-n", namespace, "pod/web", f"{port}:8080"),
        env=env,
    )
    try:
        forward.read_until(b"Forwarding from 127.0.0.1")
        for _ in range(3):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as response:
                assert response.read() == b"hello from timonel busybox\n"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/big.txt", timeout=10) as response:
            assert response.read() == b"x" * 100_000
    finally:
        forward.stop()


def test_the_python_client_port_forwards(cluster: Cluster) -> None:
    from kubernetes import client, config
    from kubernetes.stream import portforward

    namespace = cluster.namespace()
    server = {"name": "web", "command": ["httpd", "-f", "-p", "8080", "-h", "/www"]}
    start_pod(cluster, namespace, pod_manifest("web", [server]))
    api = client.CoreV1Api(config.new_client_from_config(str(cluster.kubeconfig)))
    forward = portforward(
        api.connect_get_namespaced_pod_portforward, "web", namespace, ports="8080"
    )
    try:
        connection = forward.socket(8080)
        connection.setblocking(True)
        connection.settimeout(10)
        connection.sendall(b"GET / HTTP/1.0\r\n\r\n")
        answer = b""
        while chunk := connection.recv(4096):
            answer += chunk
        connection.close()
        assert answer.startswith(b"HTTP/1.")
        assert answer.endswith(b"hello from timonel busybox\n")
        assert forward.error(8080) is None
    finally:
        forward.close()


# -- metrics and the kubelet API ----------------------------------------------------------------


def test_top_pod_and_node(cluster: Cluster) -> None:
    namespace = cluster.namespace()
    start_pod(cluster, namespace, sleeper("idle"))
    burner = {"name": "burner", "command": ["sh", "-c", "while true; do :; done"]}
    start_pod(
        cluster,
        namespace,
        pod_manifest("busy", [burner, {"name": "idle", "command": ["sh", "-c", WAIT_FOREVER]}]),
    )

    def rows() -> dict[str, list[str]] | None:
        done = cluster.kubectl("top", "pod", "-n", namespace, check=False)
        table = {line.split()[0]: line.split() for line in done.stdout.splitlines()[1:]}
        return table if {"idle", "busy"} <= set(table) else None

    table = wait_for(rows, timeout=30, what="pod metrics")
    assert table["busy"][1].endswith("m") and int(table["busy"][1][:-1]) > 100
    assert table["idle"][2].endswith("Mi")
    containers = cluster.kubectl("top", "pod", "busy", "-n", namespace, "--containers").stdout
    assert {line.split()[1] for line in containers.splitlines()[1:]} == {"burner", "idle"}

    node = cluster.kubectl("top", "node", cluster.node_name).stdout.splitlines()
    assert node[0].split() == ["NAME", "CPU(cores)", "CPU(%)", "MEMORY(bytes)", "MEMORY(%)"]
    name, cpu, cpu_percent, memory, memory_percent = node[1].split()
    assert name == cluster.node_name
    assert cpu.endswith("m") and cpu_percent.endswith("%")
    assert memory.endswith("Mi") and memory_percent.endswith("%")

    missing = cluster.kubectl("top", "pod", "nope", "-n", namespace, check=False)
    assert f'podmetrics.metrics.k8s.io "{namespace}/nope" not found' in missing.stderr


def test_the_kubelet_api_admits_only_the_api_server_and_administrators(cluster: Cluster) -> None:
    node = cluster.get("node", cluster.node_name)
    port = node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"]
    address = next(a["address"] for a in node["status"]["addresses"] if a["type"] == "InternalIP")
    summary = json.loads(
        cluster.kubectl(
            "get", "--raw", f"/api/v1/nodes/{cluster.node_name}/proxy/stats/summary"
        ).stdout
    )
    assert summary["node"]["nodeName"] == cluster.node_name

    tls = cluster.data_dir / "tls"
    cluster_pki = pki.ClusterPKI(
        tls_dir=tls,
        ca_cert_pem=(tls / "ca.crt").read_bytes(),
        ca_key_pem=(tls / "ca.key").read_bytes(),
        serving_cert_pem=b"",
        serving_key_pem=b"",
        admin_cert_pem=(tls / "admin.crt").read_bytes(),
        admin_key_pem=(tls / "admin.key").read_bytes(),
    )

    def get(cert: tuple[bytes, bytes] | None) -> int:
        context = ssl.create_default_context(cadata=cluster_pki.ca_cert_pem.decode())
        if cert is not None:
            (cluster.data_dir / "probe.crt").write_bytes(cert[0])
            (cluster.data_dir / "probe.key").write_bytes(cert[1])
            context.load_cert_chain(cluster.data_dir / "probe.crt", cluster.data_dir / "probe.key")
        try:
            with urllib.request.urlopen(
                f"https://{address}:{port}/healthz", context=context, timeout=5
            ) as answer:
                return int(answer.status)
        except urllib.error.HTTPError as error:
            return error.code

    assert get((cluster_pki.admin_cert_pem, cluster_pki.admin_key_pem)) == 200
    assert get(pki.issue_client_cert(cluster_pki, "system:node:other", ["system:nodes"])) == 403
    with pytest.raises((ssl.SSLError, urllib.error.URLError, ConnectionError)):
        get(None)
