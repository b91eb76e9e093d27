"""The node's CNI network: one bridge, host-local IPAM over the node's podCIDR, portmap.

Several nodes may share one host (multi-node tests, one containerd per network namespace or
side by side), so everything that the CNI plugins key on is unique per node: the network name
(libcni caches results under /var/lib/cni/results by network name and container ID), the IPAM
`dataDir` (host-local defaults to the shared /var/lib/cni/networks/<network>) and the bridge
device name (unique per network namespace, at most 15 characters).

`ipMasq` is off: the bridge plugin would add one iptables chain per pod (slower start and
teardown) and would SNAT pod-to-pod traffic between nodes, which Kubernetes forbids. The proxy
adds one masquerade rule for traffic leaving the cluster CIDR instead.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

CNI_VERSION: Final = "1.0.0"
CONFLIST_FILE_NAME: Final = "10-timonel.conflist"
MAX_INTERFACE_NAME: Final = 15


@dataclass(frozen=True)
class PodNetwork:
    """What makes one node's pod network distinct from every other on the host."""

    network_name: str
    bridge_name: str
    pod_cidr: str
    ipam_data_dir: Path
    mtu: int | None = None


def bridge_name_for(node_name: str, prefix: str = "tmnl") -> str:
    """A bridge device name unique per node name that fits the 15-character kernel limit."""
    digest = hashlib.sha256(node_name.encode()).hexdigest()
    return f"{prefix}-{digest[: MAX_INTERFACE_NAME - len(prefix) - 1]}"


def pod_network_for(
    node_name: str, pod_cidr: str, ipam_data_dir: Path, *, mtu: int | None = None
) -> PodNetwork:
    """The default naming: network `timonel-<node>`, bridge from `bridge_name_for`."""
    return PodNetwork(
        network_name=f"timonel-{node_name}",
        bridge_name=bridge_name_for(node_name),
        pod_cidr=pod_cidr,
        ipam_data_dir=ipam_data_dir,
        mtu=mtu,
    )


def render_conflist(network: PodNetwork) -> dict[str, Any]:
    """The CNI network configuration list (as JSON-shaped data) for one node."""
    if not 0 < len(network.bridge_name) <= MAX_INTERFACE_NAME or "/" in network.bridge_name:
        raise ValueError(f"bridge name {network.bridge_name!r} is not a valid interface name")
    subnet = ipaddress.ip_network(network.pod_cidr, strict=True)
    if subnet.version != 4:
        raise ValueError(f"pod CIDR {network.pod_cidr} is not IPv4")
    bridge: dict[str, Any] = {
        "type": "bridge",
        "bridge": network.bridge_name,
        "isGateway": True,
        "ipMasq": False,
        "hairpinMode": True,
        "ipam": {
            "type": "host-local",
            "dataDir": str(network.ipam_data_dir),
            "ranges": [[{"subnet": str(subnet)}]],
            "routes": [{"dst": "0.0.0.0/0"}],
        },
    }
    if network.mtu is not None:
        bridge["mtu"] = network.mtu
    return {
        "cniVersion": CNI_VERSION,
        "name": network.network_name,
        "plugins": [bridge, {"type": "portmap", "capabilities": {"portMappings": True}}],
    }


def write_conflist(conf_dir: Path, network: PodNetwork) -> Path:
    """Write the node's conflist into `conf_dir` atomically; containerd picks it up live.

    The directory holds this one file: containerd loads the first conflist it finds
    (`max_conf_num = 1`), so a stray file sorting earlier would win.
    """
    conf_dir.mkdir(parents=True, exist_ok=True)
    network.ipam_data_dir.mkdir(parents=True, exist_ok=True)
    path = conf_dir / CONFLIST_FILE_NAME
    temporary = conf_dir / f".{CONFLIST_FILE_NAME}.tmp"
    temporary.write_text(json.dumps(render_conflist(network), indent=2) + "\n")
    os.replace(temporary, path)
    return path


def delete_bridge(bridge_name: str, *, netns: str | None = None) -> bool:
    """Remove the node's bridge device (the bridge plugin never does). True if one was removed."""
    command = ["ip", "link", "delete", bridge_name, "type", "bridge"]
    if netns is not None:
        command[1:1] = ["-n", netns]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode == 0:
        return True
    if "Cannot find device" in done.stderr:
        return False
    raise OSError(f"{' '.join(command)} failed: {done.stderr.strip()}")
