"""Host inspection for runtime tests: free pod CIDRs, routes, what a node left behind."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import ipaddress
import json
import os
import signal
import subprocess
import time
from pathlib import Path

from timonel.agent.runtime.containerd import mounts_under, remove_cgroup_tree, unmount_under
from timonel.agent.runtime.node import NodeRuntime


def free_pod_cidr() -> str:
    """A /24 under 10.250.0.0/16 that no route on this host overlaps."""
    routes = json.loads(
        subprocess.run(["ip", "-j", "route"], capture_output=True, check=True).stdout
    )
    taken = [
        ipaddress.ip_network(route["dst"], strict=False)
        for route in routes
        if route["dst"] != "default"
    ]
    for candidate in ipaddress.ip_network("10.250.0.0/16").subnets(new_prefix=24):
        if candidate.network_address.packed[2] == 0:
            continue
        if not any(candidate.overlaps(network) for network in taken):
            return str(candidate)
    raise RuntimeError("no free /24 for pods under 10.250.0.0/16")


def route_device(address: str) -> str:
    """The device the host would send a packet for `address` out of."""
    routes = json.loads(
        subprocess.run(
            ["ip", "-j", "route", "get", address], capture_output=True, check=True
        ).stdout
    )
    return str(routes[0]["dev"])


def process_command_lines() -> dict[int, str]:
    """Every process's command line, read from /proc (ps would cut long lines to $COLUMNS)."""
    commands: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                raw = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            commands[int(entry.name)] = raw.replace(b"\0", b" ").decode(errors="replace")
    return commands


def leftovers(node: NodeRuntime) -> list[str]:
    """Everything of `node` still on the host after it was purged."""
    found: list[str] = []
    found += [f"mount {m}" for m in mounts_under(node.state_dir) + mounts_under(node.run_dir)]
    if node.network is not None:
        link = subprocess.run(
            ["ip", "link", "show", node.network.bridge_name], capture_output=True, check=False
        )
        if link.returncode == 0:
            found.append(f"bridge {node.network.bridge_name}")
    for pid, command in process_command_lines().items():
        if str(node.state_dir) in command or str(node.run_dir) in command:
            found.append(f"process {pid} {command}")
    found += [f"path {p}" for p in (node.state_dir, node.run_dir) if p.exists()]
    return found


async def wait_for_no_leftovers(node: NodeRuntime, timeout: float = 5.0) -> list[str]:
    """`leftovers(node)` once it is empty or `timeout` passed: shims exit a moment after
    their sandbox is removed."""
    for _ in range(int(timeout / 0.1)):
        if not leftovers(node):
            break
        await asyncio.sleep(0.1)
    return leftovers(node)


def parent_pid(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat[stat.rindex(")") + 2 :].split()[1])


def shim_socket(shim_command: str) -> Path:
    """The socket a killed shim leaves behind: containerd names it after the sha256 of
    "<containerd address>/<namespace>/<id>", under the shared /run/containerd/s."""
    words = shim_command.split()
    options = dict(zip(words[1::2], words[2::2], strict=False))
    key = f"{options['-address']}/{options['-namespace']}/{options['-id']}"
    return Path("/run/containerd/s") / hashlib.sha256(key.encode()).hexdigest()


def force_cleanup(node: NodeRuntime) -> None:
    """Last resort after a failed purge: kill the node's shims and their containers, then
    remove what they held. Only processes whose command line names the node's directories
    (its shims) and their children are touched."""
    shim_commands = {
        pid: command
        for pid, command in process_command_lines().items()
        if str(node.run_dir) in command or str(node.state_dir) in command
    }
    shims = list(shim_commands)
    children = [pid for pid in process_command_lines() if parent_pid(pid) in shims]
    for pid in [*children, *shims]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(Path(f"/proc/{pid}").exists() for pid in children):
        time.sleep(0.05)
    for command in shim_commands.values():
        shim_socket(command).unlink(missing_ok=True)
    for directory in (node.run_dir, node.state_dir):
        unmount_under(directory)
    remove_cgroup_tree(node.cgroup_parent)
    if node.network is not None:
        # libcni's cache: "<network>-<sandbox id>-eth0" and "cni-loopback-<sandbox id>-lo".
        results = Path("/var/lib/cni/results")
        for path in results.glob(f"{node.network.network_name}-*-eth0"):
            sandbox_id = path.name.removeprefix(f"{node.network.network_name}-")[: -len("-eth0")]
            (results / f"cni-loopback-{sandbox_id}-lo").unlink(missing_ok=True)
            path.unlink(missing_ok=True)
