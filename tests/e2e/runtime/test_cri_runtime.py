"""A private containerd driven over CRI: pods with CNI networking, exec, logs, images, restarts.

Runs as root and touches the host (processes, mounts, a bridge); the `node_runtime` fixture
gives every test unique names and removes all of it afterwards, also on failure.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.runtime.hosttools import force_cleanup, route_device, wait_for_no_leftovers
from timonel.agent.runtime.containerd import (
    ContainerdError,
    ManagedContainerd,
    process_start_time,
)
from timonel.agent.runtime.cri import (
    CriClient,
    CriError,
    DeadlineExceeded,
    NotFound,
    Unavailable,
    api,
)
from timonel.agent.runtime.images import (
    BUSYBOX_ALIASES,
    BUSYBOX_IMAGE,
    PAUSE_IMAGE,
    Layer,
    build_image,
    busybox_layer,
    import_image_archive,
)
from timonel.agent.runtime.node import NodeRuntime

REPO = Path(__file__).resolve().parents[3]
WEB_IMAGE = "localhost/timonel-test/web:1"
CRI_LOG_LINE = re.compile(
    r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)) (stdout|stderr) ([FP]) (.*)$"
)


def sandbox_config(node: NodeRuntime, name: str, log_directory: Path) -> api.PodSandboxConfig:
    uid = str(uuid.uuid4())
    return api.PodSandboxConfig(
        metadata=api.PodSandboxMetadata(name=name, uid=uid, namespace="e2e", attempt=0),
        hostname=name,
        log_directory=str(log_directory),
        labels={"io.kubernetes.pod.name": name},
        linux=api.LinuxPodSandboxConfig(cgroup_parent=f"{node.cgroup_parent}/pod{uid}"),
    )


def container_config(
    name: str, image: str, *, command: list[str] | None = None, args: list[str] | None = None
) -> api.ContainerConfig:
    return api.ContainerConfig(
        metadata=api.ContainerMetadata(name=name, attempt=0),
        image=api.ImageSpec(image=image),
        command=command or [],
        args=args or [],
        log_path=f"{name}/0.log",
        linux=api.LinuxContainerConfig(),
    )


async def http_get(address: str, port: int, path: str = "/") -> tuple[int, bytes]:
    reader, writer = await asyncio.wait_for(asyncio.open_connection(address, port), 5)
    writer.write(f"GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n".encode())
    await writer.drain()
    response = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    status_line, _, rest = response.partition(b"\r\n")
    body = rest.partition(b"\r\n\r\n")[2]
    return int(status_line.split()[1]), body


async def wait_for_log_lines(path: Path, count: int, timeout: float = 10) -> list[str]:
    deadline = time.monotonic() + timeout
    lines: list[str] = []
    while time.monotonic() < deadline:
        if path.exists():
            lines = path.read_text().splitlines()
            if len(lines) >= count:
                return lines
        await asyncio.sleep(0.05)
    raise AssertionError(f"{path} has {lines!r}, wanted {count} lines")


async def test_pod_runs_serves_http_execs_and_logs(
    node_runtime: NodeRuntime, tmp_path: Path
) -> None:
    assert node_runtime.network is not None
    archive = tmp_path / "web.tar"
    build_image(
        archive,
        name=WEB_IMAGE,
        layers=[busybox_layer(), Layer.from_files({"srv/index.html": "hello from a pod\n"})],
        entrypoint=["httpd", "-f", "-p", "8080", "-h", "/srv"],
        exposed_ports=["8080/tcp"],
    )
    await import_image_archive(node_runtime.socket, archive)

    async with node_runtime.client() as cri:
        status = await cri.status()
        ready = {condition.type: condition.status for condition in status.status.conditions}
        assert ready == {"RuntimeReady": True, "NetworkReady": True}

        pod_config = sandbox_config(node_runtime, "web", tmp_path / "pod-logs")
        sandbox_id = await cri.run_pod_sandbox(pod_config)
        sandbox = await cri.pod_sandbox_status(sandbox_id)
        assert sandbox.status.state == api.SANDBOX_READY
        pod_ip = sandbox.status.network.ip
        assert ipaddress.ip_address(pod_ip) in ipaddress.ip_network(node_runtime.network.pod_cidr)

        web_id = await cri.create_container(
            sandbox_id, container_config("web", WEB_IMAGE), pod_config
        )
        await cri.start_container(web_id)
        logger_id = await cri.create_container(
            sandbox_id,
            container_config(
                "logger",
                BUSYBOX_IMAGE,
                command=["sh", "-c"],
                args=["echo out-1; echo err-1 >&2; trap 'exit 0' TERM; sleep 3600 & wait"],
            ),
            pod_config,
        )
        await cri.start_container(logger_id)

        for container_id in (web_id, logger_id):
            container = await cri.container_status(container_id)
            assert container.status.state == api.CONTAINER_RUNNING
        assert {c.id for c in await cri.list_containers()} == {web_id, logger_id}
        assert [s.id for s in await cri.list_pod_sandbox()] == [sandbox_id]

        # Only ever over the node's own bridge: the pod CIDR is private and must not leave.
        assert route_device(pod_ip) == node_runtime.network.bridge_name
        for _ in range(50):
            try:
                code, body = await http_get(pod_ip, 8080)
                break
            except ConnectionRefusedError:
                await asyncio.sleep(0.05)
        assert (code, body) == (200, b"hello from a pod\n")

        result = await cri.exec_sync(web_id, ["sh", "-c", "echo hi; echo oops >&2; exit 7"])
        assert (result.exit_code, result.stdout, result.stderr) == (7, b"hi\n", b"oops\n")
        assert (await cri.exec_sync(web_id, ["hostname"], timeout_seconds=5)).stdout == b"web\n"
        with pytest.raises(DeadlineExceeded):
            await cri.exec_sync(web_id, ["sleep", "5"], timeout_seconds=1)

        for url in (
            await cri.exec(web_id, ["sh"], stdin=True, tty=True),
            await cri.attach(logger_id),
            await cri.port_forward(sandbox_id, [8080]),
        ):
            assert re.match(r"^http://127\.0\.0\.1:\d+/(exec|attach|portforward)/\S+$", url)

        log_path = tmp_path / "pod-logs" / "logger" / "0.log"
        lines = await wait_for_log_lines(log_path, 2)
        parsed = sorted((m[4], m[5], m[6]) for m in map(CRI_LOG_LINE.match, lines) if m)
        assert parsed == [("stderr", "F", "err-1"), ("stdout", "F", "out-1")]
        log_path.rename(log_path.with_suffix(".log.1"))
        await cri.reopen_container_log(logger_id)
        assert log_path.exists()

        pod_stats = await cri.pod_sandbox_stats(sandbox_id)
        assert pod_stats.attributes.id == sandbox_id
        assert pod_stats.linux.memory.working_set_bytes.value > 0
        stats = await cri.container_stats(web_id)
        assert stats.attributes.id == web_id and stats.memory.working_set_bytes.value > 0
        assert {s.attributes.id for s in await cri.list_container_stats()} == {web_id, logger_id}
        await cri.update_container_resources(
            web_id, api.LinuxContainerResources(cpu_period=100000, cpu_quota=50000)
        )
        quota = await cri.exec_sync(web_id, ["cat", "/sys/fs/cgroup/cpu/cpu.cfs_quota_us"])
        if quota.exit_code == 0:
            assert quota.stdout.strip() == b"50000"

        started = time.monotonic()
        await cri.stop_container(logger_id, 10)
        assert time.monotonic() - started < 5, "the TERM trap should end it at once"
        await cri.stop_container(web_id, 1)
        stopped = await cri.container_status(web_id)
        assert stopped.status.state == api.CONTAINER_EXITED
        await cri.remove_container(web_id)
        await cri.remove_container(logger_id)
        await cri.stop_pod_sandbox(sandbox_id)
        await cri.remove_pod_sandbox(sandbox_id)

        with pytest.raises(NotFound):
            await cri.container_status(web_id)
        with pytest.raises(NotFound):
            await cri.pod_sandbox_status(sandbox_id)
        assert await cri.list_pod_sandbox() == []
        assert await cri.list_containers() == []


async def test_image_service(node_runtime: NodeRuntime) -> None:
    async with node_runtime.client() as cri:
        tags = {tag for image in await cri.list_images() for tag in image.repo_tags}
        assert {PAUSE_IMAGE, BUSYBOX_IMAGE, *BUSYBOX_ALIASES} <= tags

        busybox = await cri.image_status("busybox")
        assert busybox is not None and BUSYBOX_IMAGE in busybox.repo_tags
        assert await cri.image_status("localhost/timonel/absent:1") is None

        # containerd samples usage periodically, so only where it is can be checked at once.
        filesystems = await cri.image_fs_info()
        mountpoint = Path(filesystems.image_filesystems[0].fs_id.mountpoint)
        assert mountpoint.is_relative_to(node_runtime.state_dir)

        # No registry is reachable: the pull fails (over loopback only), with credentials sent.
        with pytest.raises(CriError) as failure:
            await cri.pull_image(
                "127.0.0.1:9/nothing/here:1",
                auth=api.AuthConfig(username="user", password="secret"),
                timeout=30,
            )
        assert not isinstance(failure.value, NotFound)

        # CRI removes the image behind a reference, with every name it has.
        await cri.remove_image(BUSYBOX_ALIASES[0])
        assert await cri.image_status(BUSYBOX_IMAGE) is None
        assert await cri.image_status(PAUSE_IMAGE) is not None
        await cri.remove_image("localhost/timonel/absent:1")


async def test_containerd_is_restarted_and_running_pods_survive(
    node_runtime: NodeRuntime, tmp_path: Path
) -> None:
    containerd = node_runtime.containerd
    async with node_runtime.client() as cri:
        pod_config = sandbox_config(node_runtime, "survivor", tmp_path / "logs")
        sandbox_id = await cri.run_pod_sandbox(pod_config)
        container_id = await cri.create_container(
            sandbox_id,
            container_config("main", BUSYBOX_IMAGE, command=["sleep", "3600"]),
            pod_config,
        )
        await cri.start_container(container_id)

        first_pid = containerd.pid
        assert first_pid is not None
        os.kill(first_pid, signal.SIGKILL)
        with pytest.raises(Unavailable):
            for _ in range(100):
                await cri.version(timeout=1)
                await asyncio.sleep(0.01)

        for _ in range(200):
            if containerd.restarts:
                break
            await asyncio.sleep(0.05)
        await containerd.wait_ready(timeout=1)
        assert containerd.restarts == 1
        assert containerd.pid not in (None, first_pid)

    async with node_runtime.client() as cri:
        restored = await cri.container_status(container_id)
        assert restored.status.state == api.CONTAINER_RUNNING


ORPHANING_AGENT = textwrap.dedent(
    """
    import asyncio, json, os, sys
    from pathlib import Path
    from timonel.agent.runtime.containerd import ManagedContainerd

    async def main() -> None:
        state, run, conf = (Path(p) for p in sys.argv[1:4])
        containerd = ManagedContainerd(
            state, run, name="orphan", sandbox_image="localhost/timonel/pause:1", cni_conf_dir=conf
        )
        await containerd.start()
        print(json.dumps({"pid": containerd.pid}), flush=True)
        os._exit(0)  # the agent dies without stopping containerd

    asyncio.run(main())
    """
)


async def test_agent_restart_adopts_its_containerd_and_stops_it(tmp_path: Path) -> None:
    state, run, conf = tmp_path / "state", tmp_path / "run", tmp_path / "net.d"
    done = subprocess.run(
        [sys.executable, "-c", ORPHANING_AGENT, str(state), str(run), str(conf)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        check=True,
    )
    orphan_pid = json.loads(done.stdout)["pid"]
    containerd = ManagedContainerd(
        state, run, name="orphan", sandbox_image=PAUSE_IMAGE, cni_conf_dir=conf
    )
    try:
        await containerd.start()
        assert containerd.pid == orphan_pid
        async with CriClient(containerd.socket) as cri:
            assert (await cri.version()).runtime_name == "containerd"
        await containerd.stop()
        assert process_start_time(orphan_pid) is None
    finally:
        await containerd.stop()
        if process_start_time(orphan_pid) is not None:
            os.kill(orphan_pid, signal.SIGKILL)


async def test_refuses_a_socket_served_by_someone_else(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    server = await asyncio.start_unix_server(
        lambda r, w: w.close(), path=str(run / "containerd.sock")
    )
    try:
        containerd = ManagedContainerd(
            tmp_path / "state",
            run,
            name="taken",
            sandbox_image=PAUSE_IMAGE,
            cni_conf_dir=tmp_path / "net.d",
        )
        with pytest.raises(ContainerdError, match="did not start"):
            await containerd.start()
        assert containerd.pid is None
    finally:
        server.close()
        await server.wait_closed()


async def test_stopped_node_starts_again_with_its_pods_and_images(
    node_runtime: NodeRuntime, tmp_path: Path
) -> None:
    async with node_runtime.client() as cri:
        pod_config = sandbox_config(node_runtime, "keeper", tmp_path / "logs")
        sandbox_id = await cri.run_pod_sandbox(pod_config)

    await node_runtime.stop()
    assert node_runtime.containerd.pid is None
    await node_runtime.start()
    # The images were still there: nothing to import the second time.
    assert node_runtime.startup_seconds["import_images"] < 0.2
    async with node_runtime.client() as cri:
        sandbox = await cri.pod_sandbox_status(sandbox_id)
        assert sandbox.status.state == api.SANDBOX_READY


@pytest.fixture
def network_namespace() -> Iterator[str]:
    name = f"tmnl-e2e-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=True)


async def test_node_in_its_own_network_namespace(
    network_namespace: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    base = tmp_path_factory.mktemp("netns-node")
    node = NodeRuntime(
        node_name=network_namespace,
        state_dir=base / "state",
        run_dir=base / "run",
        pod_cidr="10.244.1.0/24",  # private to the namespace: no clash with the host's routes
        netns=network_namespace,
    )
    try:
        await node.start()
        assert node.network is not None
        async with node.client() as cri:
            pod_config = sandbox_config(node, "inside", tmp_path_factory.mktemp("logs"))
            sandbox_id = await cri.run_pod_sandbox(pod_config)
            sandbox = await cri.pod_sandbox_status(sandbox_id)
            assert sandbox.status.network.ip.startswith("10.244.1.")
            container_id = await cri.create_container(
                sandbox_id,
                container_config("main", BUSYBOX_IMAGE, command=["sleep", "3600"]),
                pod_config,
            )
            await cri.start_container(container_id)
            assert (await cri.exec_sync(container_id, ["true"])).exit_code == 0

        links = subprocess.run(
            ["ip", "-n", network_namespace, "-j", "link"], capture_output=True, check=True
        ).stdout
        assert node.network.bridge_name in {link["ifname"] for link in json.loads(links)}
        host_link = subprocess.run(
            ["ip", "link", "show", node.network.bridge_name], capture_output=True, check=False
        )
        assert host_link.returncode != 0, "the bridge belongs in the node's namespace"
    finally:
        await node.purge()
        found = await wait_for_no_leftovers(node)
        if found:
            force_cleanup(node)
    assert found == []
