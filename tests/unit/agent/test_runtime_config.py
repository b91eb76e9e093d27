"""containerd configuration and process identity: pure functions, no containerd needed."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from timonel.agent.runtime.containerd import (
    ContainerdError,
    ContainerdPaths,
    ContainerdSettings,
    PidRecord,
    containerd_command,
    parse_start_time,
    render_containerd_config,
)

CRI = "io.containerd.grpc.v1.cri"


def settings(state: str = "/var/lib/t/node1", run: str = "/run/t/node1") -> ContainerdSettings:
    return ContainerdSettings(
        paths=ContainerdPaths(Path(state), Path(run)),
        sandbox_image="localhost/timonel/pause:1",
        cni_conf_dir=Path(state) / "cni" / "net.d",
        stream_address="172.31.250.11",
    )


def test_config_keeps_every_path_of_the_instance_private() -> None:
    config = tomllib.loads(render_containerd_config(settings()))
    assert config["version"] == 2
    assert config["root"] == "/var/lib/t/node1/root"
    assert config["state"] == "/run/t/node1/state"
    assert config["grpc"]["address"] == "/run/t/node1/containerd.sock"
    assert config["ttrpc"]["address"] == "/run/t/node1/containerd.sock.ttrpc"
    assert config["plugins"]["io.containerd.internal.v1.opt"]["path"] == "/var/lib/t/node1/opt"
    runc = config["plugins"][CRI]["containerd"]["runtimes"]["runc"]
    assert runc["runtime_type"] == "io.containerd.runc.v2"
    assert runc["options"] == {
        "BinaryName": "/usr/sbin/runc",
        "Root": "/run/t/node1/state/runc",
        "SystemdCgroup": False,
    }


def test_config_cri_settings() -> None:
    cri = tomllib.loads(render_containerd_config(settings()))["plugins"][CRI]
    assert cri["sandbox_image"] == "localhost/timonel/pause:1"
    assert cri["restrict_oom_score_adj"] is True
    assert cri["netns_mounts_under_state_dir"] is True
    assert (cri["stream_server_address"], cri["stream_server_port"]) == ("172.31.250.11", "0")
    assert cri["containerd"]["snapshotter"] == "overlayfs"
    assert cri["containerd"]["default_runtime_name"] == "runc"
    assert cri["cni"] == {
        "bin_dir": "/usr/lib/cni",
        "conf_dir": "/var/lib/t/node1/cni/net.d",
        "max_conf_num": 1,
    }


def test_config_disables_unused_snapshotters_and_tracing() -> None:
    disabled = tomllib.loads(render_containerd_config(settings()))["disabled_plugins"]
    assert "io.containerd.snapshotter.v1.btrfs" in disabled
    assert "io.containerd.snapshotter.v1.devmapper" in disabled
    assert "io.containerd.internal.v1.tracing" in disabled
    assert "io.containerd.snapshotter.v1.overlayfs" not in disabled


def test_config_quotes_paths() -> None:
    config = tomllib.loads(render_containerd_config(settings(state='/var/lib/a "b"\\c')))
    assert config["root"] == '/var/lib/a "b"\\c/root'


def test_socket_path_must_fit_a_unix_socket() -> None:
    with pytest.raises(ContainerdError, match="too long"):
        render_containerd_config(settings(run="/run/" + "x" * 100))


def test_command_enters_the_network_namespace_by_name_or_path() -> None:
    config = Path("/s/config.toml")
    assert containerd_command(config) == ["containerd", "--config", "/s/config.toml"]
    assert containerd_command(config, netns="node1")[:3] == [
        "nsenter",
        "--net=/run/netns/node1",
        "--",
    ]
    assert containerd_command(config, netns="/proc/42/ns/net")[1] == "--net=/proc/42/ns/net"


def test_pid_record_round_trip_and_garbage() -> None:
    record = PidRecord(pid=123, start_time=456, config_sha256="ab")
    assert PidRecord.decode(record.encode()) == record
    assert PidRecord.decode("123") is None
    assert PidRecord.decode("{}") is None


def test_start_time_from_stat_with_an_awkward_command_name() -> None:
    tail = " 1 1 0 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 987654 100 10"
    assert parse_start_time("42 (a) b (c)) S" + tail) == 987654
    assert parse_start_time("42 (containerd) Z" + tail) is None
