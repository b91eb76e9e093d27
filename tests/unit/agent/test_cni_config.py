"""The node's CNI conflist: pure generation and the writer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from timonel.agent.runtime.cni import (
    CONFLIST_FILE_NAME,
    PodNetwork,
    bridge_name_for,
    pod_network_for,
    render_conflist,
    write_conflist,
)


def test_conflist_is_bridge_with_host_local_and_portmap() -> None:
    network = PodNetwork("timonel-n1", "tmnl-n1", "10.244.1.0/24", Path("/var/lib/t/n1/ipam"))
    assert render_conflist(network) == {
        "cniVersion": "1.0.0",
        "name": "timonel-n1",
        "plugins": [
            {
                "type": "bridge",
                "bridge": "tmnl-n1",
                "isGateway": True,
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "dataDir": "/var/lib/t/n1/ipam",
                    "ranges": [[{"subnet": "10.244.1.0/24"}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }


def test_mtu_only_when_given() -> None:
    network = PodNetwork("n", "b", "10.0.0.0/24", Path("/x"), mtu=1400)
    assert render_conflist(network)["plugins"][0]["mtu"] == 1400
    assert (
        "mtu" not in render_conflist(PodNetwork("n", "b", "10.0.0.0/24", Path("/x")))["plugins"][0]
    )


@pytest.mark.parametrize(
    ("bridge", "cidr"),
    [
        ("a-bridge-name-too-long", "10.0.0.0/24"),
        ("", "10.0.0.0/24"),
        ("br0", "10.0.0.1/24"),  # host bits set
        ("br0", "fd00::/64"),
    ],
)
def test_invalid_networks_are_refused(bridge: str, cidr: str) -> None:
    with pytest.raises(ValueError):
        render_conflist(PodNetwork("n", bridge, cidr, Path("/x")))


def test_default_names_are_unique_per_node_and_fit_an_interface_name() -> None:
    names = {bridge_name_for(f"node-{i}") for i in range(1000)}
    assert len(names) == 1000
    assert all(len(name) <= 15 for name in names)
    assert bridge_name_for("node-1") == bridge_name_for("node-1")
    network = pod_network_for("worker-7", "10.42.7.0/24", Path("/ipam"))
    assert network.network_name == "timonel-worker-7"
    assert network.bridge_name == bridge_name_for("worker-7")


def test_write_conflist_replaces_the_file_and_creates_the_ipam_dir(tmp_path: Path) -> None:
    conf_dir = tmp_path / "net.d"
    first = PodNetwork("n", "b0", "10.1.0.0/24", tmp_path / "ipam")
    path = write_conflist(conf_dir, first)
    assert path == conf_dir / CONFLIST_FILE_NAME
    assert (tmp_path / "ipam").is_dir()
    write_conflist(conf_dir, PodNetwork("n", "b0", "10.2.0.0/24", tmp_path / "ipam"))
    assert [p.name for p in conf_dir.iterdir()] == [CONFLIST_FILE_NAME]
    written = json.loads(path.read_text())
    assert written["plugins"][0]["ipam"]["ranges"] == [[{"subnet": "10.2.0.0/24"}]]
