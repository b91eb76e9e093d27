"""OCI image archives: layout, contents and byte-for-byte reproducibility."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest

from timonel.agent.runtime.images import (
    BUSYBOX_PATH,
    CATATONIT_PATH,
    Directory,
    File,
    ImageSpec,
    Layer,
    Symlink,
    build_image,
    builtin_images,
    busybox_image,
    busybox_root_entries,
    pause_image,
    render_image_archive,
    write_builtin_archive,
)


def members(tar_bytes: bytes) -> dict[str, tuple[tarfile.TarInfo, bytes]]:
    found: dict[str, tuple[tarfile.TarInfo, bytes]] = {}
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
        for info in tar.getmembers():
            data = tar.extractfile(info).read() if info.isfile() else b""  # type: ignore[union-attr]
            found[info.name] = (info, data)
    return found


def blob(archive: dict[str, tuple[tarfile.TarInfo, bytes]], digest: str) -> bytes:
    data = archive[f"blobs/sha256/{digest.removeprefix('sha256:')}"][1]
    assert f"sha256:{hashlib.sha256(data).hexdigest()}" == digest
    return data


def manifest_and_config(archive: bytes, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    contents = members(archive)
    index = json.loads(contents["index.json"][1])
    (entry,) = [
        m for m in index["manifests"] if m["annotations"]["io.containerd.image.name"] == name
    ]
    manifest = json.loads(blob(contents, entry["digest"]))
    config = json.loads(blob(contents, manifest["config"]["digest"]))
    return manifest, config


def test_layer_is_sorted_owned_by_root_at_epoch_with_parents() -> None:
    layer = Layer.of(
        [File("usr/share/x.txt", b"x"), Symlink("/bin/sh", "busybox"), Directory("tmp", 0o1777)]
    )
    contents = members(layer.tar())
    assert list(contents) == ["bin", "bin/sh", "tmp", "usr", "usr/share", "usr/share/x.txt"]
    for info, _ in contents.values():
        assert (info.mtime, info.uid, info.gid, info.uname) == (0, 0, 0, "root")
    assert contents["tmp"][0].mode == 0o1777
    assert contents["bin/sh"][0].linkname == "busybox"
    assert contents["usr/share/x.txt"][1] == b"x"


def test_layer_bytes_do_not_depend_on_entry_order() -> None:
    entries = [File("a", b"1"), File("b/c", b"2", 0o755), Symlink("d", "a")]
    assert Layer.of(entries).tar() == Layer.of(reversed(entries)).tar()


@pytest.mark.parametrize("path", ["../etc/passwd", "/", "a/../../b"])
def test_paths_outside_the_root_are_refused(path: str) -> None:
    with pytest.raises(ValueError):
        Layer.of([File(path, b"")]).tar()


def test_conflicting_entries_are_refused() -> None:
    with pytest.raises(ValueError, match="two different"):
        Layer.of([File("a", b"1"), File("/a", b"2")]).tar()


def test_archive_is_an_oci_layout_named_for_containerd() -> None:
    image = ImageSpec(
        names=("localhost/app:1", "docker.io/library/app:latest"),
        layers=(Layer.from_files({"srv/index.html": "hi"}),),
        entrypoint=("httpd", "-f"),
        cmd=("-p", "80"),
        env=("PATH=/bin", "MODE=test"),
        workdir="/srv",
        exposed_ports=("80/tcp",),
        user="33",
        architecture="amd64",
    )
    archive, (built,) = render_image_archive([image])
    contents = members(archive)
    assert json.loads(contents["oci-layout"][1]) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads(contents["index.json"][1])
    assert [m["annotations"] for m in index["manifests"]] == [
        {"io.containerd.image.name": "localhost/app:1", "org.opencontainers.image.ref.name": "1"},
        {
            "io.containerd.image.name": "docker.io/library/app:latest",
            "org.opencontainers.image.ref.name": "latest",
        },
    ]
    assert {m["digest"] for m in index["manifests"]} == {built.manifest_digest}
    assert index["manifests"][0]["platform"] == {"architecture": "amd64", "os": "linux"}

    manifest, config = manifest_and_config(archive, "localhost/app:1")
    assert manifest["config"]["digest"] == built.config_digest
    assert config["config"] == {
        "Entrypoint": ["httpd", "-f"],
        "Cmd": ["-p", "80"],
        "Env": ["PATH=/bin", "MODE=test"],
        "WorkingDir": "/srv",
        "ExposedPorts": {"80/tcp": {}},
        "User": "33",
    }
    (layer,) = manifest["layers"]
    assert layer["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip"
    plain = gzip.decompress(blob(contents, layer["digest"]))
    assert config["rootfs"]["diff_ids"] == [f"sha256:{hashlib.sha256(plain).hexdigest()}"]
    assert members(plain)["srv/index.html"][1] == b"hi"


def test_images_sharing_a_layer_store_it_once() -> None:
    base = Layer.from_files({"bin/tool": b"\x7fELF"}, mode=0o755)
    first = ImageSpec(names=("a:1",), layers=(base,))
    second = ImageSpec(names=("b:1",), layers=(base, Layer.from_files({"x": "y"})))
    archive, _ = render_image_archive([first, second])
    blobs = [name for name in members(archive) if name.startswith("blobs/sha256/")]
    assert len(blobs) == 2 + 2 + 2  # layers base and x; a config and a manifest per image


def test_same_inputs_give_the_same_bytes() -> None:
    def spec() -> ImageSpec:
        return ImageSpec(
            names=("r:1",),
            layers=(Layer.from_files({"a": "1", "b/c": "2"}),),
            cmd=("sh",),
            architecture="amd64",
        )

    assert render_image_archive([spec()]) == render_image_archive([spec()])


def test_busybox_root_has_every_applet_in_bin_and_at_its_own_path() -> None:
    entries = {
        entry.path: entry
        for entry in busybox_root_entries(b"ELF", ["bin/sh", "usr/sbin/httpd", "sbin/ip"])
    }
    assert entries["bin/busybox"] == File("bin/busybox", b"ELF", 0o755)
    assert entries["bin/sh"] == Symlink("bin/sh", "busybox")
    assert entries["bin/httpd"] == Symlink("bin/httpd", "busybox")
    assert entries["usr/sbin/httpd"] == Symlink("usr/sbin/httpd", "/bin/busybox")
    assert entries["sbin/ip"] == Symlink("sbin/ip", "/bin/busybox")
    assert entries["tmp"] == Directory("tmp", 0o1777)
    assert isinstance(entries["etc/passwd"], File)
    assert entries["etc/passwd"].data.startswith(b"root:x:0:0:")
    assert isinstance(entries["www/index.html"], File)


def test_build_image_writes_an_archive(tmp_path: Path) -> None:
    path = tmp_path / "out" / "app.tar"
    built = build_image(
        path, name="localhost/app:2", layers=[Layer.from_files({"f": "x"})], env={"A": "b"}
    )
    _, config = manifest_and_config(path.read_bytes(), "localhost/app:2")
    assert config["config"]["Env"] == ["A=b"]
    assert built.names == ("localhost/app:2",)
    assert [p.name for p in path.parent.iterdir()] == ["app.tar"]


@pytest.mark.skipif(not CATATONIT_PATH.exists(), reason="catatonit is not installed")
def test_pause_image_runs_catatonit_in_pause_mode() -> None:
    archive, _ = render_image_archive([pause_image()])
    manifest, config = manifest_and_config(archive, "localhost/timonel/pause:1")
    assert config["config"] == {"Entrypoint": ["/pause", "-P"], "Env": []}
    layer = gzip.decompress(blob(members(archive), manifest["layers"][0]["digest"]))
    info, data = members(layer)["pause"]
    assert info.mode == 0o755 and data == CATATONIT_PATH.read_bytes()


@pytest.mark.skipif(not BUSYBOX_PATH.exists(), reason="busybox-static is not installed")
def test_busybox_image_is_reproducible_from_the_installed_binary() -> None:
    first_archive, first = render_image_archive([busybox_image()])
    second_archive, second = render_image_archive([busybox_image()])
    assert first == second
    assert hashlib.sha256(first_archive).digest() == hashlib.sha256(second_archive).digest()
    manifest, _ = manifest_and_config(first_archive, "docker.io/library/busybox:latest")
    root = members(gzip.decompress(blob(members(first_archive), manifest["layers"][0]["digest"])))
    assert root["bin/httpd"][0].linkname == "busybox"
    assert root["usr/sbin/httpd"][0].linkname == "/bin/busybox"


@pytest.mark.skipif(
    not (BUSYBOX_PATH.exists() and CATATONIT_PATH.exists()),
    reason="busybox-static or catatonit is not installed",
)
async def test_builtin_archive_built_in_a_child_is_the_same(tmp_path: Path) -> None:
    path = tmp_path / "images" / "builtin.tar"
    built = await write_builtin_archive(path)
    archive, expected = render_image_archive(builtin_images())
    assert built == expected
    assert path.read_bytes() == archive


async def test_builtin_archive_failure_is_reported(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(OSError, match="building the built-in images failed"):
        await write_builtin_archive(blocker / "builtin.tar")
