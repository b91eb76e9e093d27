"""The same pod as bench/pod_startup.py, started by `podman kube play`: the peer to beat.

Podman is kept private: its configuration (CONTAINERS_CONF, CONTAINERS_STORAGE_CONF),
storage, run state, events log and network definitions live under one temporary
directory; the machine-specific settings that podman 4.3 needs here are in the generated
containers.conf (see shared/reference/runtime.md §3): rlimits within this VM's hard limits,
runc (crun fails on hybrid cgroups), cgroupfs and a file events log (no systemd), and
subnets picked free on this machine. What podman still leaves outside (netavark's iptables
chains, /run/containers/networks, /run/libpod, /var/lib/containers/cache) is removed
afterwards when it was not there before.

Per pod: `podman kube play` (it returns once the containers are started), then `podman
inspect` until the container is running; the time to running is from just before `kube
play` to that answer. Teardown is `podman pod rm -f -t 0` (`kube down` often takes 3 s
longer for no reason visible here). Usable alone:

    .venv/bin/python bench/podman_peer.py [--pods 50] [--concurrent 20]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import harness
from cri_pod_start import WORKLOAD

from timonel.agent.runtime.images import BUSYBOX_IMAGE, busybox_image, write_image_archive

SHARED_LEFTOVERS = (
    Path("/run/containers/networks"),
    Path("/run/containers"),
    Path("/run/libpod"),
    Path("/var/lib/containers/cache"),
    Path("/var/lib/containers"),
)
KUBE_NETWORK = "podman-default-kube-network"


def available() -> bool:
    return shutil.which("podman") is not None and Path("/usr/lib/podman/netavark").exists()


def free_subnets(parent: str, prefix: int, count: int) -> list[str]:
    routes = json.loads(subprocess.run(["ip", "-j", "route"], capture_output=True).stdout)
    taken = [ipaddress.ip_network(r["dst"], strict=False) for r in routes if r["dst"] != "default"]
    free = [
        str(candidate)
        for candidate in ipaddress.ip_network(parent).subnets(new_prefix=prefix)
        if not any(candidate.overlaps(network) for network in taken)
    ]
    if len(free) < count:
        raise SystemExit(f"no {count} free /{prefix} under {parent}")
    return free[:count]


def pod_yaml(name: str) -> str:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "terminationGracePeriodSeconds": 2,
            "restartPolicy": "Always",
            "containers": [
                {
                    "name": "main",
                    "image": BUSYBOX_IMAGE,
                    "imagePullPolicy": "IfNotPresent",
                    "command": WORKLOAD,
                }
            ],
        },
    }
    return json.dumps(pod)  # JSON is YAML


def iptables_chains() -> set[tuple[str, str]]:
    chains: set[tuple[str, str]] = set()
    for table in ("filter", "nat"):
        listing = subprocess.run(["iptables", "-t", table, "-S"], capture_output=True, text=True)
        for line in listing.stdout.splitlines():
            if line.startswith("-N "):
                chains.add((table, line.split()[1]))
    return chains


def remove_chains(chains: set[tuple[str, str]]) -> None:
    """Delete the jumps to `chains` from any chain, then the chains themselves."""
    names = {name for _, name in chains}
    for table in ("filter", "nat"):
        listing = subprocess.run(["iptables", "-t", table, "-S"], capture_output=True, text=True)
        for line in listing.stdout.splitlines():
            parts = shlex.split(line)
            jumps_to_ours = "-j" in parts and parts[parts.index("-j") + 1] in names
            if parts[:1] == ["-A"] and jumps_to_ours and parts[1] not in names:
                subprocess.run(["iptables", "-t", table, "-D", *parts[1:]], check=False)
    for table, name in sorted(chains):
        subprocess.run(["iptables", "-t", table, "-F", name], check=False)
    for table, name in sorted(chains):
        subprocess.run(["iptables", "-t", table, "-X", name], check=False)


class Podman:
    def __init__(self, base: Path) -> None:
        self.base = base
        self.version = ""
        subnet, pool = free_subnets("10.216.0.0/13", 16, 2)
        conf = base / "containers.conf"
        conf.write_text(
            f"""[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "{base}/events.log"
tmp_dir = "{base}/tmp"
static_dir = "{base}/libpod"
volume_path = "{base}/volumes"

[network]
network_backend = "netavark"
network_config_dir = "{base}/networks"
default_subnet = "{next(ipaddress.ip_network(subnet).subnets(new_prefix=24))}"
default_subnet_pools = [{{"base" = "{pool}", "size" = 24}}]
"""
        )
        storage = base / "storage.conf"
        storage.write_text(
            f"""[storage]
driver = "overlay"
graphroot = "{base}/storage"
runroot = "{base}/run"
"""
        )
        self.env = dict(
            os.environ,
            CONTAINERS_CONF=str(conf),
            CONTAINERS_STORAGE_CONF=str(storage),
            TMPDIR=str(base / "tmp"),
        )
        (base / "tmp").mkdir()
        (base / "pods").mkdir()

    def run(self, *args: str, check: bool = True) -> str:
        done = subprocess.run(
            ["podman", *args], env=self.env, capture_output=True, text=True, check=False
        )
        if check and done.returncode != 0:
            raise RuntimeError(f"podman {' '.join(args)}: {done.stderr.strip()}")
        return done.stdout

    async def arun(self, *args: str) -> str:
        process = await asyncio.create_subprocess_exec(
            "podman",
            *args,
            env=self.env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await process.communicate()
        if process.returncode != 0:
            raise RuntimeError(f"podman {' '.join(args)}: {err.decode().strip()}")
        return out.decode()

    def load_image(self) -> None:
        archive = self.base / "busybox.tar"
        write_image_archive(archive, [busybox_image(names=(BUSYBOX_IMAGE,))])
        image_id = self.run("pull", "-q", f"oci-archive:{archive}").strip().splitlines()[-1]
        self.run("tag", image_id, BUSYBOX_IMAGE)

    async def start(self, name: str) -> tuple[float, float]:
        """(seconds until `kube play` returned, seconds until the container is running)."""
        path = self.base / "pods" / f"{name}.yaml"
        path.write_text(pod_yaml(name))
        started = time.perf_counter()
        await self.arun("kube", "play", "--quiet", str(path))
        played = time.perf_counter()
        while True:
            state = await self.arun("inspect", "--format", "{{.State.Status}}", f"{name}-main")
            if state.strip() == "running":
                return played - started, time.perf_counter() - started
            await asyncio.sleep(0.01)

    async def remove(self, name: str) -> float:
        started = time.perf_counter()
        await self.arun("pod", "rm", "-f", "-t", "0", name)
        return time.perf_counter() - started

    async def one(self, name: str) -> tuple[float, float, float]:
        """(kube play returned, running, removed) for one pod, in seconds."""
        played, running = await self.start(name)
        return played, running, await self.remove(name)

    async def at_once(self, names: list[str]) -> dict[str, Any]:
        started = time.perf_counter()
        results = await asyncio.gather(*(self.start(name) for name in names))
        all_running = time.perf_counter() - started
        await asyncio.gather(*(self.remove(name) for name in names))
        return {
            "pods": len(names),
            "all_running_s": round(all_running, 2),
            "created_to_running": harness.latency_summary([run for _, run in results]),
        }

    def teardown(self) -> None:
        with contextlib.suppress(Exception):
            self.run("pod", "rm", "-a", "-f", "-t", "0", check=False)
            self.run("network", "rm", "-f", KUBE_NETWORK, check=False)
            self.run("system", "reset", "-f", check=False)


def sequential_report(times: list[tuple[float, float, float]]) -> dict[str, Any]:
    return {
        "pods": len(times),
        "kube_play_returned": harness.latency_summary([t[0] for t in times]),
        "created_to_running": harness.latency_summary([t[1] for t in times]),
        "pod_rm": harness.latency_summary([t[2] for t in times]),
    }


@contextlib.asynccontextmanager
async def private_podman() -> AsyncIterator[Podman]:
    """A podman of our own, its image loaded and its first pod (which builds podman's pause
    image) done; afterwards everything removed, also what podman leaves outside its
    directories (see the module docstring)."""
    existed = {path: path.exists() for path in SHARED_LEFTOVERS}
    chains_before = iptables_chains()
    base = Path(tempfile.mkdtemp(prefix="timonel-podman-"))
    podman = Podman(base)
    try:
        podman.version = podman.run("--version").strip()
        podman.load_image()
        await podman.one("warm-up")
        yield podman
    finally:
        podman.teardown()
        shutil.rmtree(base, ignore_errors=True)
        new_chains = {
            chain
            for chain in iptables_chains() - chains_before
            if "NETAVARK" in chain[1] or chain[1].startswith("CNI-")
        }
        remove_chains(new_chains)
        for path, was_there in existed.items():
            if not was_there and path.exists():
                shutil.rmtree(path, ignore_errors=True)
                with contextlib.suppress(OSError):
                    path.unlink()


async def measure(pods: int, concurrent: int) -> dict[str, Any]:
    async with private_podman() as podman:
        times = [await podman.one(f"seq-{index}") for index in range(pods)]
        return {
            "version": podman.version,
            "sequential": sequential_report(times),
            "concurrent": await podman.at_once([f"con-{i}" for i in range(concurrent)]),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=50)
    parser.add_argument("--concurrent", type=int, default=20)
    arguments = parser.parse_args()
    if not available():
        raise SystemExit("podman and netavark are not installed (apt-get install -y podman)")
    print(json.dumps(asyncio.run(measure(arguments.pods, arguments.concurrent)), indent=2))


if __name__ == "__main__":
    main()
