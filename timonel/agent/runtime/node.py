"""One node's whole container runtime: containerd, its CNI network and the built-in images.

`NodeRuntime` is what the kubelet starts before it talks CRI: it lays out the node's
directories, starts a `ManagedContainerd`, imports the pause and busybox images (so the node
runs pods without any registry) and writes the CNI conflist once the node's podCIDR is known
(containerd watches the directory and reports NetworkReady from then on).

Layout under `state_dir` (persistent) and `run_dir` (volatile):

    state_dir/containerd/{config.toml, root/, opt/, containerd.log}
    state_dir/cni/net.d/10-timonel.conflist   state_dir/cni/ipam/   state_dir/images/builtin.tar
    run_dir/{containerd.sock, containerd.sock.ttrpc, containerd.pid, state/}
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import shutil
import time
from pathlib import Path

from timonel.agent.runtime.cni import PodNetwork, delete_bridge, pod_network_for, write_conflist
from timonel.agent.runtime.containerd import (
    ManagedContainerd,
    remove_cgroup_tree,
    unmount_under,
)
from timonel.agent.runtime.cri import CriClient, CriError, Unavailable, remove_all_pod_sandboxes
from timonel.agent.runtime.images import (
    PAUSE_IMAGE,
    BuiltImage,
    import_image_archive,
    write_builtin_archive,
)

log = logging.getLogger(__name__)


class NodeRuntime:
    def __init__(
        self,
        *,
        node_name: str,
        state_dir: Path,
        run_dir: Path,
        pod_cidr: str | None = None,
        netns: str | None = None,
        stream_address: str = "127.0.0.1",
        network: PodNetwork | None = None,
        extra_containerd_config: str = "",
    ) -> None:
        """`network` overrides the default names derived from `node_name` (see cni.py);
        `extra_containerd_config` is TOML appended to containerd's config."""
        self.node_name = node_name
        self.state_dir = Path(state_dir)
        self.run_dir = Path(run_dir)
        self.netns = netns
        self.cni_conf_dir = self.state_dir / "cni" / "net.d"
        self.ipam_dir = self.state_dir / "cni" / "ipam"
        self.images_archive = self.state_dir / "images" / "builtin.tar"
        self._network_override = network
        self.network: PodNetwork | None = None
        self._pending_pod_cidr = pod_cidr
        self.startup_seconds: dict[str, float] = {}
        """How long each step of the last `start()` took (for logs and benchmarks)."""
        self.containerd = ManagedContainerd(
            self.state_dir / "containerd",
            self.run_dir,
            name=node_name,
            sandbox_image=PAUSE_IMAGE,
            cni_conf_dir=self.cni_conf_dir,
            stream_address=stream_address,
            netns=netns,
            extra_config=extra_containerd_config,
        )

    @property
    def cgroup_parent(self) -> str:
        """The cgroup every pod of this node goes under (cgroupfs notation)."""
        return f"/timonel-{self.node_name}"

    @property
    def socket(self) -> Path:
        return self.containerd.socket

    def client(self, *, timeout: float = 10.0) -> CriClient:
        return self.containerd.client(timeout=timeout)

    async def start(self) -> None:
        """Start containerd, import the built-in images it lacks, and configure the network if
        the podCIDR was given. Building the images overlaps with containerd's start."""
        self.cni_conf_dir.mkdir(parents=True, exist_ok=True)
        if self._pending_pod_cidr is not None:
            self.configure_network(self._pending_pod_cidr)

        async def build() -> list[BuiltImage]:
            started = time.monotonic()
            built = await write_builtin_archive(self.images_archive)
            self.startup_seconds["build_images"] = time.monotonic() - started
            return built

        async def start_containerd() -> None:
            started = time.monotonic()
            await self.containerd.start()
            self.startup_seconds["containerd"] = time.monotonic() - started

        building = asyncio.create_task(build())
        try:
            await start_containerd()
        finally:
            built = await building
        started = time.monotonic()
        if not await self._has_images(built):
            await import_image_archive(self.containerd.socket, self.images_archive)
        self.startup_seconds["import_images"] = time.monotonic() - started

    async def _has_images(self, images: list[BuiltImage]) -> bool:
        """Whether containerd already has every name of `images`, each with the built ID."""
        async with self.client() as client:
            for image in images:
                for name in image.names:
                    present = await client.image_status(name)
                    if present is None or present.id != image.config_digest:
                        return False
        return True

    def configure_network(self, pod_cidr: str) -> PodNetwork:
        """Write the conflist for `pod_cidr` (containerd reloads it on its own)."""
        network = self._network_override or pod_network_for(self.node_name, pod_cidr, self.ipam_dir)
        if network.pod_cidr != pod_cidr:
            network = dataclasses.replace(network, pod_cidr=pod_cidr)
        write_conflist(self.cni_conf_dir, network)
        self.network = network
        return network

    async def stop(self) -> None:
        """Stop containerd; pods keep running and are found again on the next start."""
        await self.containerd.stop()

    async def _remove_all_pods(self, timeout: float = 30.0) -> None:
        # containerd may be between a crash and its restart: wait for it rather than leave
        # shims, mounts and CNI state behind.
        deadline = time.monotonic() + timeout
        while True:
            try:
                async with self.client(timeout=timeout) as client:
                    await remove_all_pod_sandboxes(client)
                return
            except Unavailable:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)

    async def purge(self) -> None:
        """Remove everything this node put on the host: pods, containerd, bridge, mounts, files.

        Safe after a failed or partial start: each step only undoes what exists.
        """
        if self.containerd.pid is not None:
            try:
                await self._remove_all_pods()
            except CriError as error:  # the rest of the cleanup must still happen
                log.warning("node %s: removing pods failed: %s", self.node_name, error)
        await self.containerd.stop()
        remove_cgroup_tree(self.cgroup_parent)
        if self.network is not None:
            delete_bridge(self.network.bridge_name, netns=self.netns)
        for directory in (self.run_dir, self.state_dir):
            unmount_under(directory)
            shutil.rmtree(directory, ignore_errors=True)
