"""OCI image archives built locally, byte for byte reproducible, and their import into containerd.

A node needs a pause (sandbox) image before its first pod and, air-gapped, a small base image for
workloads. Both are built here from Debian binaries that are static, with no registry involved:

- `PAUSE_IMAGE` holds `/pause`, Debian's static `catatonit`, run as `/pause -P` (pause mode: it
  does nothing but reap zombies, which matters for pods that share a process namespace).
- `BUSYBOX_IMAGE` (also named `BUSYBOX_ALIASES`, so manifests saying `image: busybox` run
  without a pull) holds Debian's static `/bin/busybox`, a symlink for every applet both in /bin
  and at busybox's own path (`/usr/sbin/httpd`, ...), /etc/passwd, /etc/group, /tmp (1777) and
  /www/index.html.

Reproducible means the same inputs give the same bytes: entries are sorted, every mtime is
`EPOCH`, owners are root, gzip carries no name or time, JSON is written with sorted keys and no
creation date. Image names go into the OCI index as `io.containerd.image.name` annotations,
which is what `ctr images import` names the images after.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import io
import json
import os
import platform
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Final

PAUSE_IMAGE: Final = "localhost/timonel/pause:1"
BUSYBOX_IMAGE: Final = "localhost/timonel/busybox:1"
BUSYBOX_ALIASES: Final = ("docker.io/library/busybox:latest",)

CATATONIT_PATH: Final = Path("/usr/bin/catatonit")
BUSYBOX_PATH: Final = Path("/bin/busybox")

EPOCH: Final = 0
DEFAULT_PATH_ENV: Final = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

MEDIA_TYPE_INDEX: Final = "application/vnd.oci.image.index.v1+json"
MEDIA_TYPE_MANIFEST: Final = "application/vnd.oci.image.manifest.v1+json"
MEDIA_TYPE_CONFIG: Final = "application/vnd.oci.image.config.v1+json"
MEDIA_TYPE_LAYER_GZIP: Final = "application/vnd.oci.image.layer.v1.tar+gzip"
ANNOTATION_CONTAINERD_NAME: Final = "io.containerd.image.name"
ANNOTATION_REF_NAME: Final = "org.opencontainers.image.ref.name"

PASSWD: Final = (
    "root:x:0:0:root:/root:/bin/sh\n"
    "daemon:x:1:1:daemon:/usr/sbin:/bin/false\n"
    "www-data:x:33:33:www-data:/www:/bin/false\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
)
GROUP: Final = "root:x:0:\ndaemon:x:1:\nwww-data:x:33:\nnogroup:x:65534:\n"
INDEX_HTML: Final = "hello from timonel busybox\n"


# --- layer contents ------------------------------------------------------------------------------


@dataclass(frozen=True)
class File:
    path: str
    data: bytes
    mode: int = 0o644


@dataclass(frozen=True)
class Symlink:
    path: str
    target: str


@dataclass(frozen=True)
class Directory:
    path: str
    mode: int = 0o755


Entry = File | Symlink | Directory


@dataclass(frozen=True)
class Layer:
    """One filesystem layer. Parent directories missing from `entries` are added (0755)."""

    entries: tuple[Entry, ...]

    def tar(self) -> bytes:
        """The uncompressed layer tar; its sha256 is the layer's diff ID."""
        return _layer_tar(self.entries)

    @classmethod
    def of(cls, entries: Iterable[Entry]) -> Layer:
        return cls(tuple(entries))

    @classmethod
    def from_files(cls, files: Mapping[str, bytes | str], *, mode: int = 0o644) -> Layer:
        """A layer of regular files, given as {path: content}."""
        return cls(
            tuple(
                File(path, content.encode() if isinstance(content, str) else content, mode)
                for path, content in files.items()
            )
        )


def _normalize(path: str) -> str:
    relative = PurePosixPath("/", path).relative_to("/")
    if ".." in relative.parts or not relative.parts:
        raise ValueError(f"invalid path in layer: {path!r}")
    return str(relative)


def _layer_tar(entries: Iterable[Entry]) -> bytes:
    by_path: dict[str, Entry] = {}
    for entry in entries:
        path = _normalize(entry.path)
        if path in by_path and by_path[path] != entry:
            raise ValueError(f"two different entries for {path} in one layer")
        by_path[path] = entry
    for path in list(by_path):
        for parent in PurePosixPath(path).parents:
            if str(parent) != "." and str(parent) not in by_path:
                by_path[str(parent)] = Directory(str(parent))

    buffer = io.BytesIO()
    import tarfile  # only image builds need it (see write_builtin_archive)

    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(by_path):
            entry = by_path[path]
            info = tarfile.TarInfo(path)
            info.mtime = EPOCH
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            if isinstance(entry, File):
                info.type = tarfile.REGTYPE
                info.mode = entry.mode
                info.size = len(entry.data)
                tar.addfile(info, io.BytesIO(entry.data))
            elif isinstance(entry, Symlink):
                info.type = tarfile.SYMTYPE
                info.mode = 0o777
                info.linkname = entry.target
                tar.addfile(info)
            else:
                info.type = tarfile.DIRTYPE
                info.mode = entry.mode
                tar.addfile(info)
    return buffer.getvalue()


# --- images --------------------------------------------------------------------------------------


def host_architecture() -> str:
    """The OCI architecture name of this machine."""
    machine = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm"}.get(machine, machine)


@dataclass(frozen=True)
class ImageSpec:
    """An image to build: layers (lowest first) plus the OCI runtime configuration."""

    names: tuple[str, ...]
    layers: tuple[Layer, ...]
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    env: tuple[str, ...] = (DEFAULT_PATH_ENV,)
    workdir: str = ""
    exposed_ports: tuple[str, ...] = ()
    user: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    stop_signal: str = ""
    architecture: str = field(default_factory=host_architecture)


@dataclass(frozen=True)
class BuiltImage:
    names: tuple[str, ...]
    manifest_digest: str
    config_digest: str
    """The image ID as CRI reports it (`Image.id`)."""


def _canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def _digest(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def _descriptor(media_type: str, data: bytes) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": _digest(data), "size": len(data)}


def _ref_name(name: str) -> str:
    """The tag of a reference (`latest` if it has none), for `org.opencontainers.image.ref.name`."""
    last = name.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else "latest"


def render_image_archive(images: Sequence[ImageSpec]) -> tuple[bytes, list[BuiltImage]]:
    """One OCI layout tar holding `images` (blobs shared between them are stored once)."""
    blobs: dict[str, bytes] = {}
    index_entries: list[dict[str, Any]] = []
    built: list[BuiltImage] = []

    def add_blob(data: bytes) -> None:
        blobs[_digest(data)] = data

    for image in images:
        if not image.names:
            raise ValueError("an image needs at least one name")
        layer_descriptors: list[dict[str, Any]] = []
        diff_ids: list[str] = []
        for layer in image.layers:
            plain = layer.tar()
            import gzip

            compressed = gzip.compress(plain, compresslevel=6, mtime=EPOCH)
            diff_ids.append(_digest(plain))
            add_blob(compressed)
            layer_descriptors.append(_descriptor(MEDIA_TYPE_LAYER_GZIP, compressed))
        runtime_config: dict[str, Any] = {"Env": list(image.env)}
        if image.entrypoint:
            runtime_config["Entrypoint"] = list(image.entrypoint)
        if image.cmd:
            runtime_config["Cmd"] = list(image.cmd)
        if image.workdir:
            runtime_config["WorkingDir"] = image.workdir
        if image.exposed_ports:
            runtime_config["ExposedPorts"] = {port: {} for port in image.exposed_ports}
        if image.user:
            runtime_config["User"] = image.user
        if image.labels:
            runtime_config["Labels"] = dict(image.labels)
        if image.stop_signal:
            runtime_config["StopSignal"] = image.stop_signal
        config = _canonical_json(
            {
                "architecture": image.architecture,
                "os": "linux",
                "config": runtime_config,
                "rootfs": {"type": "layers", "diff_ids": diff_ids},
            }
        )
        add_blob(config)
        manifest = _canonical_json(
            {
                "schemaVersion": 2,
                "mediaType": MEDIA_TYPE_MANIFEST,
                "config": _descriptor(MEDIA_TYPE_CONFIG, config),
                "layers": layer_descriptors,
            }
        )
        add_blob(manifest)
        for name in image.names:
            entry = _descriptor(MEDIA_TYPE_MANIFEST, manifest)
            entry["platform"] = {"architecture": image.architecture, "os": "linux"}
            entry["annotations"] = {
                ANNOTATION_CONTAINERD_NAME: name,
                ANNOTATION_REF_NAME: _ref_name(name),
            }
            index_entries.append(entry)
        built.append(BuiltImage(image.names, _digest(manifest), _digest(config)))

    files: dict[str, bytes] = {
        "oci-layout": _canonical_json({"imageLayoutVersion": "1.0.0"}),
        "index.json": _canonical_json(
            {"schemaVersion": 2, "mediaType": MEDIA_TYPE_INDEX, "manifests": index_entries}
        ),
    }
    for digest, data in blobs.items():
        files[f"blobs/sha256/{digest.removeprefix('sha256:')}"] = data
    archive = _layer_tar(File(path, data) for path, data in files.items())
    return archive, built


def write_image_archive(path: Path, images: Sequence[ImageSpec]) -> list[BuiltImage]:
    """Write `images` as one OCI layout tar at `path` (atomically)."""
    archive, built = render_image_archive(images)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_bytes(archive)
    os.replace(temporary, path)
    return built


async def write_builtin_archive(path: Path) -> list[BuiltImage]:
    """`write_image_archive(path, builtin_images())` in a child process: reading the
    binaries, tarring and compressing them takes a few MB that the node agent would
    otherwise keep (as freed heap and loaded modules) for its whole life."""
    # Run as a plain script (standard library only, isolated from the environment): it
    # needs nothing of the package, whose __init__ would load the CRI client.
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-I",
        "-S",
        __file__,
        str(path),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    output, errors = await process.communicate()
    if process.returncode != 0:
        raise OSError(f"building the built-in images failed: {errors.decode().strip()[-500:]}")
    return [
        BuiltImage(tuple(image["names"]), image["manifest_digest"], image["config_digest"])
        for image in json.loads(output)
    ]


def build_image(
    path: Path,
    *,
    name: str,
    layers: Sequence[Layer],
    entrypoint: Sequence[str] = (),
    cmd: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    workdir: str = "",
    exposed_ports: Sequence[str] = (),
    user: str = "",
    extra_names: Sequence[str] = (),
) -> BuiltImage:
    """Build one image into an archive at `path`; `env` replaces the default PATH if given.

    An application image is usually `busybox_layer()` plus a layer of its own files.
    """
    environment = (DEFAULT_PATH_ENV,) if env is None else tuple(f"{k}={v}" for k, v in env.items())
    spec = ImageSpec(
        names=(name, *extra_names),
        layers=tuple(layers),
        entrypoint=tuple(entrypoint),
        cmd=tuple(cmd),
        env=environment,
        workdir=workdir,
        exposed_ports=tuple(exposed_ports),
        user=user,
    )
    return write_image_archive(path, [spec])[0]


# --- the built-in images -------------------------------------------------------------------------


def busybox_applet_paths(busybox: Path = BUSYBOX_PATH) -> list[str]:
    """Where busybox installs each applet (`busybox --list-full`: `usr/sbin/httpd`, ...)."""
    done = subprocess.run(
        [str(busybox), "--list-full"], capture_output=True, text=True, check=True, timeout=10
    )
    return [line.strip() for line in done.stdout.splitlines() if line.strip()]


def busybox_root_entries(busybox_binary: bytes, applet_paths: Iterable[str]) -> list[Entry]:
    """A minimal root filesystem around a static busybox."""
    entries: dict[str, Entry] = {"bin/busybox": File("bin/busybox", busybox_binary, 0o755)}
    for applet_path in applet_paths:
        path = _normalize(applet_path)
        applet = PurePosixPath(path).name
        # Every applet is in /bin (so PATH order never matters), and also where busybox puts it
        # (/usr/sbin/httpd), since images and scripts name applets by those paths.
        entries.setdefault(f"bin/{applet}", Symlink(f"bin/{applet}", "busybox"))
        entries.setdefault(path, Symlink(path, "/bin/busybox"))
    for directory in ("root", "home", "var", "usr/bin", "usr/sbin", "sbin"):
        entries.setdefault(directory, Directory(directory, 0o700 if directory == "root" else 0o755))
    entries["tmp"] = Directory("tmp", 0o1777)
    entries["etc/passwd"] = File("etc/passwd", PASSWD.encode())
    entries["etc/group"] = File("etc/group", GROUP.encode())
    entries["www/index.html"] = File("www/index.html", INDEX_HTML.encode())
    return list(entries.values())


def busybox_layer(busybox: Path = BUSYBOX_PATH) -> Layer:
    return Layer.of(busybox_root_entries(busybox.read_bytes(), busybox_applet_paths(busybox)))


def busybox_image(
    names: Sequence[str] = (BUSYBOX_IMAGE, *BUSYBOX_ALIASES), busybox: Path = BUSYBOX_PATH
) -> ImageSpec:
    return ImageSpec(names=tuple(names), layers=(busybox_layer(busybox),), cmd=("sh",))


def pause_image(name: str = PAUSE_IMAGE, catatonit: Path = CATATONIT_PATH) -> ImageSpec:
    layer = Layer.of([File("pause", catatonit.read_bytes(), 0o755)])
    return ImageSpec(names=(name,), layers=(layer,), entrypoint=("/pause", "-P"), env=())


def builtin_images() -> list[ImageSpec]:
    """The images every node has without pulling: pause and busybox."""
    return [pause_image(), busybox_image()]


# --- import --------------------------------------------------------------------------------------


class ImageImportError(Exception):
    pass


async def import_image_archive(
    containerd_socket: Path | str,
    path: Path,
    namespace: str = "k8s.io",
    *,
    ctr: str = "ctr",
    timeout: float = 120.0,
) -> None:
    """Import (and unpack, as CRI needs) every image of an OCI archive into containerd."""
    process = await asyncio.create_subprocess_exec(
        ctr,
        "--address",
        str(containerd_socket),
        "--namespace",
        namespace,
        "images",
        "import",
        str(path),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), timeout)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise ImageImportError(f"importing {path} took longer than {timeout} s") from None
    if process.returncode != 0:
        raise ImageImportError(
            f"ctr images import {path} failed ({process.returncode}): {output.decode().strip()}"
        )


def main() -> None:
    """`python images.py PATH`: write the built-in images' archive at PATH and print what
    was built as JSON."""
    built = write_image_archive(Path(sys.argv[1]), builtin_images())
    json.dump([dataclasses.asdict(image) for image in built], sys.stdout)


if __name__ == "__main__":
    main()
