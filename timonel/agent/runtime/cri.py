"""An asyncio client for the Kubernetes Container Runtime Interface (CRI v1) over gRPC.

Thin and typed: each method sends one request built from its arguments and returns the
protobuf response (or the one field of it that matters, such as an ID or a URL). Requests and
responses are the `cri_api.v1.api_pb2` messages, re-exported here as `api`, so callers build
`api.PodSandboxConfig(...)` and `api.ContainerConfig(...)` directly. The calls go over
`grpcwire.GrpcChannel` (unary gRPC on asyncio), which keeps grpcio out of the node agent.

Every call has a deadline: the client's `timeout` unless the method says otherwise (calls that
wait on purpose, StopContainer and ExecSync, add their own timeout to it; PullImage has its own).
Failures are raised as `CriError`s:

    CriError                any failed call; `.code` is the gRPC status code (`StatusCode`)
     ├── NotFound           the sandbox, container or image does not exist
     ├── Unavailable        the runtime is not reachable (not started, restarting)
     ├── DeadlineExceeded   the call's deadline passed (also ExecSync's own timeout)
     └── RuntimeError_      anything else the runtime reported
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Final, Protocol, TypeVar

from timonel.agent.runtime.grpcwire import GrpcChannel, RpcError, StatusCode

__all__ = [
    "CriClient",
    "CriError",
    "DeadlineExceeded",
    "ExecSyncResult",
    "NotFound",
    "RuntimeError_",
    "StatusCode",
    "Unavailable",
    "api",
    "remove_all_pod_sandboxes",
]


def _load_cri_messages() -> ModuleType:
    """`cri_api.v1.api_pb2` without running the `cri_api` package's __init__, which imports
    grpcio's service stubs (and so grpcio) that this client does not use."""
    name = "cri_api.v1.api_pb2"
    if name in sys.modules:
        return sys.modules[name]
    package = importlib.util.find_spec("cri_api")
    assert package is not None and package.submodule_search_locations
    location = Path(next(iter(package.submodule_search_locations))) / "v1" / "api_pb2.py"
    spec = importlib.util.spec_from_file_location(name, location)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


if TYPE_CHECKING:
    from cri_api.v1 import api_pb2 as api
else:
    api = _load_cri_messages()

DEFAULT_TIMEOUT: Final = 10.0
DEFAULT_PULL_TIMEOUT: Final = 600.0
MAX_MESSAGE_SIZE: Final = 16 * 1024 * 1024  # as kubelet: large ListContainers answers
RUNTIME_SERVICE: Final = "/runtime.v1.RuntimeService/"
IMAGE_SERVICE: Final = "/runtime.v1.ImageService/"
IMAGE_METHODS: Final = frozenset(
    {"ListImages", "ImageStatus", "PullImage", "RemoveImage", "ImageFsInfo"}
)


class _Message(Protocol):
    def SerializeToString(self) -> bytes: ...


Response = TypeVar("Response")


class CriError(Exception):
    def __init__(self, method: str, code: StatusCode, details: str) -> None:
        super().__init__(f"{method}: {code.name}: {details}")
        self.method = method
        self.code = code
        self.details = details


class NotFound(CriError):
    pass


class Unavailable(CriError):
    pass


class DeadlineExceeded(CriError):
    pass


class RuntimeError_(CriError):
    """Any other failure the runtime reported (the underscore keeps the builtin usable)."""


_ERRORS_BY_CODE: Final[Mapping[StatusCode, type[CriError]]] = {
    StatusCode.NOT_FOUND: NotFound,
    StatusCode.UNAVAILABLE: Unavailable,
    StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
}


def error_from_status(method: str, code: StatusCode, details: str) -> CriError:
    return _ERRORS_BY_CODE.get(code, RuntimeError_)(method, code, details)


@dataclass(frozen=True)
class ExecSyncResult:
    exit_code: int
    stdout: bytes
    stderr: bytes


def endpoint_target(endpoint: str | Path) -> str:
    """A gRPC target for `unix:///path`, a bare socket path, or a gRPC target as is."""
    text = str(endpoint)
    if text.startswith("/"):
        return f"unix://{text}"
    return text


class CriClient:
    """Both CRI services over one channel. Create it inside the event loop that uses it."""

    def __init__(self, endpoint: str | Path, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.endpoint = endpoint_target(endpoint)
        self.timeout = timeout
        self._channel = GrpcChannel(self.endpoint, max_message_size=MAX_MESSAGE_SIZE)

    async def close(self) -> None:
        await self._channel.close()

    async def __aenter__(self) -> CriClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def _call(
        self, request: _Message, response_type: type[Response], deadline: float | None
    ) -> Response:
        """The one call path: the method is named by the response type (VersionResponse ->
        Version), its service follows from the method."""
        method = response_type.__name__.removesuffix("Response")
        service = IMAGE_SERVICE if method in IMAGE_METHODS else RUNTIME_SERVICE
        try:
            answer = await self._channel.unary(
                service + method, request.SerializeToString(), deadline
            )
        except RpcError as error:
            raise error_from_status(method, error.code, error.details) from None
        return response_type.FromString(answer)  # type: ignore[attr-defined,no-any-return]

    def _deadline(self, timeout: float | None) -> float:
        return self.timeout if timeout is None else timeout

    # --- RuntimeService: runtime ---

    async def version(self, *, timeout: float | None = None) -> api.VersionResponse:
        request = api.VersionRequest(version="v1")
        return await self._call(request, api.VersionResponse, self._deadline(timeout))

    async def status(
        self, *, verbose: bool = False, timeout: float | None = None
    ) -> api.StatusResponse:
        return await self._call(
            api.StatusRequest(verbose=verbose), api.StatusResponse, self._deadline(timeout)
        )

    # --- RuntimeService: pod sandboxes ---

    async def run_pod_sandbox(
        self,
        config: api.PodSandboxConfig,
        *,
        runtime_handler: str = "",
        timeout: float | None = None,
    ) -> str:
        """Create and start a sandbox (network included); returns its ID."""
        request = api.RunPodSandboxRequest(config=config, runtime_handler=runtime_handler)
        response = await self._call(request, api.RunPodSandboxResponse, self._deadline(timeout))
        return response.pod_sandbox_id

    async def stop_pod_sandbox(self, pod_sandbox_id: str, *, timeout: float | None = None) -> None:
        await self._call(
            api.StopPodSandboxRequest(pod_sandbox_id=pod_sandbox_id),
            api.StopPodSandboxResponse,
            self._deadline(timeout),
        )

    async def remove_pod_sandbox(
        self, pod_sandbox_id: str, *, timeout: float | None = None
    ) -> None:
        await self._call(
            api.RemovePodSandboxRequest(pod_sandbox_id=pod_sandbox_id),
            api.RemovePodSandboxResponse,
            self._deadline(timeout),
        )

    async def pod_sandbox_status(
        self, pod_sandbox_id: str, *, verbose: bool = False, timeout: float | None = None
    ) -> api.PodSandboxStatusResponse:
        return await self._call(
            api.PodSandboxStatusRequest(pod_sandbox_id=pod_sandbox_id, verbose=verbose),
            api.PodSandboxStatusResponse,
            self._deadline(timeout),
        )

    async def list_pod_sandbox(
        self, filter: api.PodSandboxFilter | None = None, *, timeout: float | None = None
    ) -> list[api.PodSandbox]:
        response = await self._call(
            api.ListPodSandboxRequest(filter=filter),
            api.ListPodSandboxResponse,
            self._deadline(timeout),
        )
        return list(response.items)

    async def pod_sandbox_stats(
        self, pod_sandbox_id: str, *, timeout: float | None = None
    ) -> api.PodSandboxStats:
        """Needs the sandbox to have a `cgroup_parent` (containerd 1.6 fails without one)."""
        response = await self._call(
            api.PodSandboxStatsRequest(pod_sandbox_id=pod_sandbox_id),
            api.PodSandboxStatsResponse,
            self._deadline(timeout),
        )
        return response.stats

    # --- RuntimeService: containers ---

    async def create_container(
        self,
        pod_sandbox_id: str,
        config: api.ContainerConfig,
        sandbox_config: api.PodSandboxConfig,
        *,
        timeout: float | None = None,
    ) -> str:
        """Create a container in a sandbox; returns its ID. `sandbox_config` is the one the
        sandbox was run with (the runtime takes log directory, labels and security from it)."""
        request = api.CreateContainerRequest(
            pod_sandbox_id=pod_sandbox_id, config=config, sandbox_config=sandbox_config
        )
        response = await self._call(request, api.CreateContainerResponse, self._deadline(timeout))
        return response.container_id

    async def start_container(self, container_id: str, *, timeout: float | None = None) -> None:
        await self._call(
            api.StartContainerRequest(container_id=container_id),
            api.StartContainerResponse,
            self._deadline(timeout),
        )

    async def stop_container(
        self, container_id: str, timeout_seconds: int, *, timeout: float | None = None
    ) -> None:
        """Stop with a grace period of `timeout_seconds` (SIGTERM or the image's StopSignal,
        then SIGKILL). The call's deadline is the grace period plus the client's timeout."""
        await self._call(
            api.StopContainerRequest(container_id=container_id, timeout=timeout_seconds),
            api.StopContainerResponse,
            timeout_seconds + self._deadline(timeout),
        )

    async def remove_container(self, container_id: str, *, timeout: float | None = None) -> None:
        await self._call(
            api.RemoveContainerRequest(container_id=container_id),
            api.RemoveContainerResponse,
            self._deadline(timeout),
        )

    async def list_containers(
        self, filter: api.ContainerFilter | None = None, *, timeout: float | None = None
    ) -> list[api.Container]:
        response = await self._call(
            api.ListContainersRequest(filter=filter),
            api.ListContainersResponse,
            self._deadline(timeout),
        )
        return list(response.containers)

    async def container_status(
        self, container_id: str, *, verbose: bool = False, timeout: float | None = None
    ) -> api.ContainerStatusResponse:
        return await self._call(
            api.ContainerStatusRequest(container_id=container_id, verbose=verbose),
            api.ContainerStatusResponse,
            self._deadline(timeout),
        )

    async def update_container_resources(
        self,
        container_id: str,
        linux: api.LinuxContainerResources,
        *,
        annotations: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> None:
        request = api.UpdateContainerResourcesRequest(
            container_id=container_id, linux=linux, annotations=annotations
        )
        await self._call(request, api.UpdateContainerResourcesResponse, self._deadline(timeout))

    async def reopen_container_log(
        self, container_id: str, *, timeout: float | None = None
    ) -> None:
        """Make the runtime reopen the container's log file (after it was rotated away)."""
        await self._call(
            api.ReopenContainerLogRequest(container_id=container_id),
            api.ReopenContainerLogResponse,
            self._deadline(timeout),
        )

    async def container_stats(
        self, container_id: str, *, timeout: float | None = None
    ) -> api.ContainerStats:
        response = await self._call(
            api.ContainerStatsRequest(container_id=container_id),
            api.ContainerStatsResponse,
            self._deadline(timeout),
        )
        return response.stats

    async def list_container_stats(
        self, filter: api.ContainerStatsFilter | None = None, *, timeout: float | None = None
    ) -> list[api.ContainerStats]:
        response = await self._call(
            api.ListContainerStatsRequest(filter=filter),
            api.ListContainerStatsResponse,
            self._deadline(timeout),
        )
        return list(response.stats)

    # --- RuntimeService: exec, attach, port-forward ---

    async def exec_sync(
        self,
        container_id: str,
        cmd: Sequence[str],
        *,
        timeout_seconds: int = 0,
        rpc_timeout: float | None = None,
    ) -> ExecSyncResult:
        """Run `cmd` in the container and wait for it.

        A command still running after `timeout_seconds` raises DeadlineExceeded (containerd
        reports no exit code then). With `timeout_seconds=0` the command may run for ever:
        the call has no deadline unless `rpc_timeout` sets one.
        """
        if rpc_timeout is None and timeout_seconds > 0:
            rpc_timeout = timeout_seconds + self.timeout
        response = await self._call(
            api.ExecSyncRequest(container_id=container_id, cmd=cmd, timeout=timeout_seconds),
            api.ExecSyncResponse,
            rpc_timeout,
        )
        return ExecSyncResult(response.exit_code, response.stdout, response.stderr)

    async def exec(
        self,
        container_id: str,
        cmd: Sequence[str],
        *,
        stdin: bool = False,
        stdout: bool = True,
        stderr: bool = True,
        tty: bool = False,
        timeout: float | None = None,
    ) -> str:
        """A single-use streaming URL (the runtime's streaming server) that runs `cmd`."""
        request = api.ExecRequest(
            container_id=container_id,
            cmd=cmd,
            stdin=stdin,
            stdout=stdout,
            stderr=stderr and not tty,
            tty=tty,
        )
        response = await self._call(request, api.ExecResponse, self._deadline(timeout))
        return response.url

    async def attach(
        self,
        container_id: str,
        *,
        stdin: bool = False,
        stdout: bool = True,
        stderr: bool = True,
        tty: bool = False,
        timeout: float | None = None,
    ) -> str:
        """A single-use streaming URL attached to the container's main process."""
        request = api.AttachRequest(
            container_id=container_id,
            stdin=stdin,
            stdout=stdout,
            stderr=stderr and not tty,
            tty=tty,
        )
        response = await self._call(request, api.AttachResponse, self._deadline(timeout))
        return response.url

    async def port_forward(
        self, pod_sandbox_id: str, ports: Iterable[int], *, timeout: float | None = None
    ) -> str:
        """A single-use streaming URL forwarding to `ports` in the sandbox's network."""
        request = api.PortForwardRequest(pod_sandbox_id=pod_sandbox_id, port=list(ports))
        response = await self._call(request, api.PortForwardResponse, self._deadline(timeout))
        return response.url

    # --- ImageService ---

    async def list_images(
        self, filter: api.ImageFilter | None = None, *, timeout: float | None = None
    ) -> list[api.Image]:
        response = await self._call(
            api.ListImagesRequest(filter=filter), api.ListImagesResponse, self._deadline(timeout)
        )
        return list(response.images)

    async def image_status(
        self, image: str, *, verbose: bool = False, timeout: float | None = None
    ) -> api.Image | None:
        """The image named `image` (a reference or an ID), or None if the runtime lacks it."""
        response = await self._call(
            api.ImageStatusRequest(image=api.ImageSpec(image=image), verbose=verbose),
            api.ImageStatusResponse,
            self._deadline(timeout),
        )
        return response.image if response.HasField("image") and response.image.id else None

    async def pull_image(
        self,
        image: str,
        *,
        auth: api.AuthConfig | None = None,
        sandbox_config: api.PodSandboxConfig | None = None,
        timeout: float = DEFAULT_PULL_TIMEOUT,
    ) -> str:
        """Pull `image` (with registry credentials if given); returns the image reference
        the runtime stored (its ID or digest reference)."""
        request = api.PullImageRequest(
            image=api.ImageSpec(image=image), auth=auth, sandbox_config=sandbox_config
        )
        response = await self._call(request, api.PullImageResponse, timeout)
        return response.image_ref

    async def remove_image(self, image: str, *, timeout: float | None = None) -> None:
        """Remove an image; removing one that is absent succeeds, as CRI specifies."""
        await self._call(
            api.RemoveImageRequest(image=api.ImageSpec(image=image)),
            api.RemoveImageResponse,
            self._deadline(timeout),
        )

    async def image_fs_info(self, *, timeout: float | None = None) -> api.ImageFsInfoResponse:
        return await self._call(
            api.ImageFsInfoRequest(), api.ImageFsInfoResponse, self._deadline(timeout)
        )


async def remove_all_pod_sandboxes(
    client: CriClient, *, stop_timeout_seconds: int = 10, concurrency: int = 4
) -> int:
    """Stop and remove every container and sandbox the runtime has; returns how many sandboxes.

    For taking a node (or a test's runtime) down to nothing. Already-gone objects are fine.
    """
    limit = asyncio.Semaphore(concurrency)

    async def remove_container(container: api.Container) -> None:
        async with limit:
            with contextlib.suppress(NotFound):
                if container.state == api.CONTAINER_RUNNING:
                    await client.stop_container(container.id, stop_timeout_seconds)
                await client.remove_container(container.id)

    async def remove_sandbox(sandbox: api.PodSandbox) -> None:
        async with limit:
            with contextlib.suppress(NotFound):
                await client.stop_pod_sandbox(sandbox.id)
                await client.remove_pod_sandbox(sandbox.id)

    await asyncio.gather(*(remove_container(c) for c in await client.list_containers()))
    sandboxes = await client.list_pod_sandbox()
    await asyncio.gather(*(remove_sandbox(s) for s in sandboxes))
    return len(sandboxes)
