"""Volume contents (pure rendering), the atomic writer and hostPath checks."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from tests.unit.agent.kubelet.podfixtures import make_pod
from timonel.agent.kubelet.env import ContainerConfigError
from timonel.agent.kubelet.volumes import (
    check_host_path,
    read_atomic_dir,
    references,
    render_config_map,
    render_downward_api,
    render_projected,
    render_secret,
    write_atomic_dir,
)

CONFIG_MAP = {
    "metadata": {"name": "cfg"},
    "data": {"a": "1", "b": "2"},
    "binaryData": {"bin": base64.b64encode(b"\x00\x01").decode()},
}
SECRET = {"metadata": {"name": "sec"}, "data": {"password": base64.b64encode(b"s3cret").decode()}}


def test_config_map_files_with_items_and_modes() -> None:
    assert render_config_map(CONFIG_MAP, {"name": "cfg"}, 0o644) == {
        "a": (b"1", 0o644),
        "b": (b"2", 0o644),
        "bin": (b"\x00\x01", 0o644),
    }
    items = {"name": "cfg", "items": [{"key": "a", "path": "dir/alpha", "mode": 0o600}]}
    assert render_config_map(CONFIG_MAP, items, 0o644) == {"dir/alpha": (b"1", 0o600)}
    with pytest.raises(ContainerConfigError, match="non-existent config key: z"):
        render_config_map(CONFIG_MAP, {"name": "cfg", "items": [{"key": "z", "path": "z"}]}, 0o644)
    with pytest.raises(ContainerConfigError, match='configmap "cfg" not found'):
        render_config_map(None, {"name": "cfg"}, 0o644)
    assert render_config_map(None, {"name": "cfg", "optional": True}, 0o644) == {}


def test_secret_files() -> None:
    assert render_secret(SECRET, {"secretName": "sec", "defaultMode": 0o400}, 0o400) == {
        "password": (b"s3cret", 0o400)
    }
    with pytest.raises(ContainerConfigError, match='secret "sec" not found'):
        render_secret(None, {"secretName": "sec"}, 0o644)


def test_downward_api_files() -> None:
    pod = make_pod({"name": "c", "image": "x", "resources": {"limits": {"memory": "32Mi"}}})
    pod["metadata"]["labels"] = {"app": "web", "tier": "front"}
    source = {
        "items": [
            {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
            {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}},
            {
                "path": "mem",
                "resourceFieldRef": {
                    "containerName": "c",
                    "resource": "limits.memory",
                    "divisor": "1Mi",
                },
            },
        ]
    }
    assert render_downward_api(pod, source, 0o644, {}) == {
        "labels": (b'app="web"\ntier="front"', 0o644),
        "name": (b"p", 0o644),
        "mem": (b"32", 0o644),
    }


def test_projected_volume_combines_sources() -> None:
    pod = make_pod()
    source = {
        "defaultMode": 0o440,
        "sources": [
            {"serviceAccountToken": {"path": "token"}},
            {"configMap": {"name": "cfg", "items": [{"key": "a", "path": "ca.crt"}]}},
            {"secret": {"name": "sec"}},
            {
                "downwardAPI": {
                    "items": [
                        {"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}}
                    ]
                }
            },
        ],
    }
    files = render_projected(
        pod,
        source,
        config_maps=lambda ns, name: CONFIG_MAP,
        secrets=lambda ns, name: SECRET,
        tokens={"token": "jwt"},
        node_allocatable={},
    )
    assert files == {
        "token": (b"jwt", 0o440),
        "ca.crt": (b"1", 0o440),
        "password": (b"s3cret", 0o440),
        "namespace": (b"ns", 0o440),
    }


def test_atomic_writer_swaps_contents(tmp_path: Path) -> None:
    target = tmp_path / "vol"
    assert write_atomic_dir(target, {"a": (b"1", 0o644), "d/b": (b"2", 0o600)})
    assert (target / "a").read_text() == "1"
    assert (target / "d" / "b").read_text() == "2"
    assert os.readlink(target / "a") == "..data/a"
    assert not write_atomic_dir(target, {"a": (b"1", 0o644), "d/b": (b"2", 0o600)})
    first = os.readlink(target / "..data")
    assert write_atomic_dir(target, {"a": (b"changed", 0o644)})
    assert (target / "a").read_text() == "changed"
    assert not (target / "d").exists()
    assert not (target / first).exists()
    assert read_atomic_dir(target) == {"a": (b"changed", 0o644)}
    assert sorted(p.name for p in target.iterdir() if not p.name.startswith("..")) == ["a"]


def test_host_path_types(tmp_path: Path) -> None:
    check_host_path(str(tmp_path / "new"), "DirectoryOrCreate")
    assert (tmp_path / "new").is_dir()
    check_host_path(str(tmp_path / "new" / "f"), "FileOrCreate")
    assert (tmp_path / "new" / "f").is_file()
    check_host_path(str(tmp_path / "anything"), "")
    with pytest.raises(ContainerConfigError, match="is not a directory"):
        check_host_path(str(tmp_path / "new" / "f"), "Directory")
    with pytest.raises(ContainerConfigError, match="is not a file"):
        check_host_path(str(tmp_path / "missing"), "File")


def test_references_from_volumes_env_and_pull_secrets() -> None:
    pod = make_pod(
        {
            "name": "c",
            "image": "x",
            "envFrom": [{"configMapRef": {"name": "env-cfg"}}],
            "env": [{"name": "S", "valueFrom": {"secretKeyRef": {"name": "env-sec", "key": "k"}}}],
        },
        volumes=[
            {"name": "v1", "configMap": {"name": "vol-cfg"}},
            {"name": "v2", "projected": {"sources": [{"secret": {"name": "proj-sec"}}]}},
        ],
        imagePullSecrets=[{"name": "pull"}],
    )
    assert references(pod) == ({"env-cfg", "vol-cfg"}, {"env-sec", "proj-sec", "pull"})
