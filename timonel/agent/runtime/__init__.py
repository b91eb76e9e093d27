"""The node's container runtime: a private containerd, a CRI client, CNI config, local images.

- `containerd`: `ManagedContainerd` runs and supervises one containerd instance.
- `cri`: `CriClient`, an asyncio CRI v1 client, and its errors.
- `cni`: the node's bridge network configuration.
- `images`: reproducible OCI image archives (pause, busybox, application images) and import.
- `node`: `NodeRuntime`, all of the above composed for one node.
"""

from timonel.agent.runtime.cni import PodNetwork, render_conflist, write_conflist
from timonel.agent.runtime.containerd import ContainerdError, ManagedContainerd
from timonel.agent.runtime.cri import (
    CriClient,
    CriError,
    DeadlineExceeded,
    ExecSyncResult,
    NotFound,
    RuntimeError_,
    Unavailable,
)
from timonel.agent.runtime.images import (
    BUSYBOX_ALIASES,
    BUSYBOX_IMAGE,
    PAUSE_IMAGE,
    build_image,
    import_image_archive,
)
from timonel.agent.runtime.node import NodeRuntime

__all__ = [
    "BUSYBOX_ALIASES",
    "BUSYBOX_IMAGE",
    "PAUSE_IMAGE",
    "ContainerdError",
    "CriClient",
    "CriError",
    "DeadlineExceeded",
    "ExecSyncResult",
    "ManagedContainerd",
    "NodeRuntime",
    "NotFound",
    "PodNetwork",
    "RuntimeError_",
    "Unavailable",
    "build_image",
    "import_image_archive",
    "render_conflist",
    "write_conflist",
]
