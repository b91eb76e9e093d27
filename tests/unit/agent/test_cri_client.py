"""The CRI client against an in-process gRPC server: requests, answers, errors, deadlines."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import pytest
from cri_api.v1 import api_pb2_grpc

from timonel.agent.runtime.cri import (
    CriClient,
    DeadlineExceeded,
    NotFound,
    RuntimeError_,
    StatusCode,
    Unavailable,
    api,
    endpoint_target,
)


class FakeRuntime(api_pb2_grpc.RuntimeServiceServicer):  # type: ignore[misc]
    def __init__(self) -> None:
        self.requests: list[Any] = []

    async def Version(self, request: Any, context: Any) -> api.VersionResponse:
        self.requests.append(request)
        return api.VersionResponse(runtime_name="fake", runtime_api_version="v1")

    async def Status(self, request: Any, context: Any) -> api.StatusResponse:
        await asyncio.sleep(2)
        return api.StatusResponse()

    async def ContainerStatus(self, request: Any, context: Any) -> Any:
        await context.abort(grpc.StatusCode.NOT_FOUND, f"container {request.container_id!r}")

    async def StartContainer(self, request: Any, context: Any) -> Any:
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "bad")

    async def ExecSync(self, request: Any, context: Any) -> api.ExecSyncResponse:
        self.requests.append(request)
        await asyncio.sleep(float(request.cmd[1]) if request.cmd[0] == "sleep" else 0)
        return api.ExecSyncResponse(exit_code=3, stdout=b"out", stderr=b"err")

    async def RunPodSandbox(self, request: Any, context: Any) -> api.RunPodSandboxResponse:
        self.requests.append(request)
        return api.RunPodSandboxResponse(pod_sandbox_id="sandbox-1")

    async def ListContainers(self, request: Any, context: Any) -> api.ListContainersResponse:
        # As many containers as the filter's label asks for, each with a large label.
        count = int(request.filter.label_selector.get("count", "1"))
        await asyncio.sleep(float(request.filter.label_selector.get("delay", "0")))
        return api.ListContainersResponse(
            containers=[
                api.Container(id=f"c{i}", labels={"payload": "x" * 1000}) for i in range(count)
            ]
        )

    async def RemoveContainer(self, request: Any, context: Any) -> Any:
        await context.abort(grpc.StatusCode.FAILED_PRECONDITION, "läuft noch: 100% busy")


class FakeImages(api_pb2_grpc.ImageServiceServicer):  # type: ignore[misc]
    def __init__(self) -> None:
        self.requests: list[Any] = []

    async def ImageStatus(self, request: Any, context: Any) -> api.ImageStatusResponse:
        if request.image.image == "present":
            return api.ImageStatusResponse(image=api.Image(id="sha256:1", repo_tags=["present"]))
        return api.ImageStatusResponse()

    async def PullImage(self, request: Any, context: Any) -> api.PullImageResponse:
        self.requests.append(request)
        return api.PullImageResponse(image_ref="sha256:2")


@pytest.fixture
async def fake(tmp_path: Path) -> AsyncIterator[tuple[Path, FakeRuntime, FakeImages]]:
    socket = tmp_path / "cri.sock"
    server = grpc.aio.server()
    runtime, images = FakeRuntime(), FakeImages()
    api_pb2_grpc.add_RuntimeServiceServicer_to_server(runtime, server)
    api_pb2_grpc.add_ImageServiceServicer_to_server(images, server)
    server.add_insecure_port(f"unix://{socket}")
    await server.start()
    try:
        yield socket, runtime, images
    finally:
        await server.stop(0)


async def test_calls_return_the_answers(fake: tuple[Path, FakeRuntime, FakeImages]) -> None:
    socket, runtime, _ = fake
    async with CriClient(socket) as cri:
        assert (await cri.version()).runtime_name == "fake"
        config = api.PodSandboxConfig(metadata=api.PodSandboxMetadata(name="p", uid="u"))
        assert await cri.run_pod_sandbox(config, runtime_handler="runc") == "sandbox-1"
    assert runtime.requests[0].version == "v1"
    assert runtime.requests[1].config.metadata.name == "p"
    assert runtime.requests[1].runtime_handler == "runc"


async def test_status_codes_become_exceptions(fake: tuple[Path, FakeRuntime, FakeImages]) -> None:
    async with CriClient(fake[0]) as cri:
        with pytest.raises(NotFound) as missing:
            await cri.container_status("c1")
        assert missing.value.code == StatusCode.NOT_FOUND
        assert missing.value.method == "ContainerStatus"
        assert "c1" in missing.value.details
        with pytest.raises(RuntimeError_):
            await cri.start_container("c1")
        with pytest.raises(RuntimeError_) as unimplemented:
            await cri.list_images()
        assert unimplemented.value.code == StatusCode.UNIMPLEMENTED


async def test_no_runtime_is_unavailable(tmp_path: Path) -> None:
    async with CriClient(tmp_path / "absent.sock", timeout=2) as cri:
        with pytest.raises(Unavailable):
            await cri.version()


async def test_exec_sync_result_and_deadline(fake: tuple[Path, FakeRuntime, FakeImages]) -> None:
    socket, runtime, _ = fake
    async with CriClient(socket, timeout=0.2) as cri:
        result = await cri.exec_sync("c1", ["true"], timeout_seconds=1)
        assert (result.exit_code, result.stdout, result.stderr) == (3, b"out", b"err")
        assert runtime.requests[-1].timeout == 1
        # The call waits for the command's own timeout plus the client's.
        await cri.exec_sync("c1", ["sleep", "0.5"], timeout_seconds=1)
        with pytest.raises(DeadlineExceeded):
            await cri.exec_sync("c1", ["sleep", "2"], timeout_seconds=1)
        with pytest.raises(DeadlineExceeded):
            await cri.exec_sync("c1", ["sleep", "2"], rpc_timeout=0.3)
        with pytest.raises(DeadlineExceeded):
            await cri.status()  # every call has the client's deadline by default


async def test_images(fake: tuple[Path, FakeRuntime, FakeImages]) -> None:
    socket, _, images = fake
    async with CriClient(socket) as cri:
        present = await cri.image_status("present")
        assert present is not None and present.id == "sha256:1"
        assert await cri.image_status("absent") is None
        auth = api.AuthConfig(username="u", password="p", server_address="registry.local")
        assert await cri.pull_image("registry.local/app:1", auth=auth) == "sha256:2"
    (pull,) = images.requests
    assert pull.image.image == "registry.local/app:1"
    assert (pull.auth.username, pull.auth.password) == ("u", "p")


def test_endpoint_notations() -> None:
    assert endpoint_target("/run/c.sock") == "unix:///run/c.sock"
    assert endpoint_target(Path("/run/c.sock")) == "unix:///run/c.sock"
    assert endpoint_target("unix:///run/c.sock") == "unix:///run/c.sock"


async def test_large_and_concurrent_calls(fake: tuple[Path, FakeRuntime, FakeImages]) -> None:
    socket, runtime, _ = fake
    async with CriClient(socket) as cri:
        # Answers and requests beyond HTTP/2's default 64 KiB flow-control windows.
        big = await cri.list_containers(api.ContainerFilter(label_selector={"count": "3000"}))
        assert len(big) == 3000 and big[-1].id == "c2999"
        config = api.PodSandboxConfig(
            metadata=api.PodSandboxMetadata(name="p", uid="u"),
            annotations={"large": "y" * 300_000},
        )
        assert await cri.run_pod_sandbox(config) == "sandbox-1"
        assert len(runtime.requests[-1].config.annotations["large"]) == 300_000
        # Calls share the connection; a slow one does not hold up the others.
        answers = await asyncio.gather(
            cri.list_containers(api.ContainerFilter(label_selector={"delay": "0.5"})),
            *(cri.version() for _ in range(20)),
            cri.list_containers(api.ContainerFilter(label_selector={"count": "5"})),
        )
        assert len(answers[0]) == 1 and len(answers[-1]) == 5
        assert {answer.runtime_name for answer in answers[1:-1]} == {"fake"}


async def test_error_details_are_decoded(fake: tuple[Path, FakeRuntime, FakeImages]) -> None:
    async with CriClient(fake[0]) as cri:
        with pytest.raises(RuntimeError_) as failed:
            await cri.remove_container("c1")
    assert failed.value.code == StatusCode.FAILED_PRECONDITION
    assert failed.value.details == "läuft noch: 100% busy"


async def test_reconnects_after_the_runtime_restarts(tmp_path: Path) -> None:
    socket = tmp_path / "cri.sock"

    async def serve() -> grpc.aio.Server:
        server = grpc.aio.server()
        api_pb2_grpc.add_RuntimeServiceServicer_to_server(FakeRuntime(), server)
        server.add_insecure_port(f"unix://{socket}")
        await server.start()
        return server

    server = await serve()
    async with CriClient(socket, timeout=5) as cri:
        assert (await cri.version()).runtime_name == "fake"
        await server.stop(0)
        with pytest.raises(Unavailable):
            await cri.version()
        server = await serve()
        try:
            assert (await cri.version()).runtime_name == "fake"
        finally:
            await server.stop(0)
