"""A minimal plain-HTTP OCI registry for tests: serves images built with
timonel.agent.runtime.images, optionally behind HTTP basic authentication, on loopback.

Implements what a pull needs: `GET /v2/`, `HEAD|GET /v2/<name>/manifests/<tag or digest>`
and `GET /v2/<name>/blobs/<digest>`. Repositories under `private/` need the credentials.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import tarfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

from aiohttp import web

from tests.conftest import free_port
from timonel.agent.runtime.images import ImageSpec, render_image_archive

MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"


@dataclass
class Registry:
    """Images served by repository path (`e2e/app:1`), started on 127.0.0.1 in a thread."""

    images: Sequence[ImageSpec]
    username: str = "tester"
    password: str = "let-me-in"
    host: str = "127.0.0.1"
    port: int = 0
    requests: list[str] = field(default_factory=list)
    _manifests: dict[str, bytes] = field(default_factory=dict)
    _blobs: dict[str, bytes] = field(default_factory=dict)
    _loop: asyncio.AbstractEventLoop | None = None
    _runner: web.AppRunner | None = None
    _thread: threading.Thread | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def _load(self) -> None:
        archive, _ = render_image_archive(self.images)
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            files = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]
        for path, data in files.items():
            if path.startswith("blobs/sha256/"):
                self._blobs["sha256:" + path.rsplit("/", 1)[1]] = data
        for entry in json.loads(files["index.json"])["manifests"]:
            name = entry["annotations"]["io.containerd.image.name"]
            repository, _, tag = name.partition("/")[2].rpartition(":")
            manifest = self._blobs[entry["digest"]]
            self._manifests[f"{repository}:{tag}"] = manifest
            self._manifests[f"{repository}@{entry['digest']}"] = manifest

    def _authorized(self, request: web.Request, repository: str) -> bool:
        if not repository.startswith("private/"):
            return True
        expected = "Basic " + base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        return request.headers.get("Authorization") == expected

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        self.requests.append(f"{request.method} {path}")
        challenge = {"WWW-Authenticate": 'Basic realm="timonel-test"'}
        if path in ("/v2", "/v2/"):
            return web.Response(
                status=200, headers={"Docker-Distribution-API-Version": "registry/2.0"}
            )
        rest = path.removeprefix("/v2/")
        for kind in ("/manifests/", "/blobs/"):
            if kind in rest:
                repository, reference = rest.split(kind, 1)
                break
        else:
            return web.Response(status=404)
        if not self._authorized(request, repository):
            return web.Response(status=401, headers=challenge)
        if kind == "/blobs/":
            blob = self._blobs.get(reference)
            if blob is None:
                return web.Response(status=404)
            return web.Response(
                body=blob,
                headers={
                    "Docker-Content-Digest": reference,
                    "Content-Type": "application/octet-stream",
                },
            )
        separator = "@" if reference.startswith("sha256:") else ":"
        manifest = self._manifests.get(f"{repository}{separator}{reference}")
        if manifest is None:
            return web.json_response({"errors": [{"code": "MANIFEST_UNKNOWN"}]}, status=404)
        headers = {
            "Docker-Content-Digest": "sha256:" + hashlib.sha256(manifest).hexdigest(),
            "Content-Type": MANIFEST_TYPE,
            "Content-Length": str(len(manifest)),
        }
        if request.method == "HEAD":
            return web.Response(status=200, headers=headers)
        return web.Response(body=manifest, headers=headers)

    def start(self) -> None:
        self._load()
        if not self.port:
            self.port = free_port()
        ready = threading.Event()

        def serve() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            app = web.Application()
            app.router.add_route("*", "/{tail:.*}", self._handle)
            runner = web.AppRunner(app, access_log=None)
            self._runner = runner
            loop.run_until_complete(runner.setup())
            site = web.TCPSite(runner, self.host, self.port)
            loop.run_until_complete(site.start())
            ready.set()
            loop.run_forever()
            loop.run_until_complete(runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=serve, name="test-registry", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the test registry did not start")

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)
