"""Pod volumes on the node: emptyDir, hostPath, configMap, secret, downwardAPI, projected
and persistentVolumeClaim (bound to a hostPath or local PersistentVolume).

Each pod has a directory `<pods dir>/<uid>/` (kubelet's layout): volumes live under
`volumes/kubernetes.io~<plugin>/<name>`, termination message files under
`containers/<name>/`, the managed /etc/hosts as `etc-hosts`.

ConfigMap, Secret, downward API and projected volumes are written with kubelet's atomic
writer: the files sit in a timestamped directory `..<time>`, the symlink `..data` points
at it, and each top-level name is a symlink into `..data`; an update writes a new
directory and swaps `..data` in one rename, so a reader never sees half an update. The
contents are rendered by pure functions (`render_*`), compared with what is on disk,
and rewritten only when they differ — `setup` is called on every sync of the pod, which
is how updates to a ConfigMap or Secret reach a running pod's volume.

emptyDir with `medium: Memory` is a tmpfs sized by sizeLimit (or the node's allocatable
memory). Service account tokens for projected volumes come from the TokenRequest API,
bound to the pod, and are renewed after 80% of their lifetime.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import shutil
import stat
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from timonel.agent.kubelet.containers import HostVolume
from timonel.agent.kubelet.env import (
    ContainerConfigError,
    ObjectLookup,
    config_map_data,
    metadata_field_value,
    resource_field_value,
    secret_data,
)
from timonel.agent.runtime.containerd import unmount_under
from timonel.api.errors import StatusError
from timonel.api.objects import Object
from timonel.api.quantity import QuantityError, parse_quantity_value
from timonel.client.resources import (
    PERSISTENTVOLUMECLAIMS,
    PERSISTENTVOLUMES,
    SERVICEACCOUNTS,
)
from timonel.client.rest import ApiClient

log = logging.getLogger(__name__)

DEFAULT_MODE: Final = 0o644
DATA_LINK: Final = "..data"
DATA_LINK_TEMPORARY: Final = "..data_tmp"
EMPTY_DIR: Final = "kubernetes.io~empty-dir"
PLUGIN_DIRS: Final = {
    "configMap": "kubernetes.io~configmap",
    "secret": "kubernetes.io~secret",
    "downwardAPI": "kubernetes.io~downward-api",
    "projected": "kubernetes.io~projected",
}
TOKEN_RENEW_FRACTION: Final = 0.8

Files = dict[str, tuple[bytes, int]]
"""Relative path → (content, mode) of an atomically written volume."""


class VolumeError(Exception):
    """A volume cannot be set up (yet): reported as a FailedMount event."""

    def __init__(self, volume: str, message: str) -> None:
        super().__init__(f'MountVolume.SetUp failed for volume "{volume}" : {message}')
        self.volume = volume


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


# -- rendering (pure) ----------------------------------------------------------------------


def _item_files(
    data: Mapping[str, bytes],
    items: list[Any],
    default_mode: int,
    *,
    kind: str,
    optional: bool,
) -> Files:
    if not items:
        return {key: (value, default_mode) for key, value in data.items()}
    files: Files = {}
    for item in items:
        item = _dict(item)
        key = str(item.get("key", ""))
        if key not in data:
            if optional:
                continue
            raise ContainerConfigError(f"{kind} references non-existent config key: {key}")
        mode = item.get("mode")
        files[str(item.get("path") or key)] = (
            data[key],
            int(mode) if mode is not None else default_mode,
        )
    return files


def render_config_map(
    config_map: Object | None, source: Mapping[str, Any], default_mode: int
) -> Files:
    """The files of a configMap volume (or projection); a missing optional ConfigMap is
    an empty volume."""
    name = str(source.get("name", ""))
    optional = bool(source.get("optional"))
    if config_map is None:
        if optional:
            return {}
        raise ContainerConfigError(f'configmap "{name}" not found')
    data = {key: value.encode() for key, value in config_map_data(config_map).items()}
    for key, value in _dict(config_map.get("binaryData")).items():
        data[str(key)] = base64.b64decode(str(value))
    return _item_files(
        data, _list(source.get("items")), default_mode, kind="configMap", optional=optional
    )


def render_secret(
    secret: Object | None,
    source: Mapping[str, Any],
    default_mode: int,
    *,
    name_key: str = "secretName",
) -> Files:
    name = str(source.get(name_key, ""))
    optional = bool(source.get("optional"))
    if secret is None:
        if optional:
            return {}
        raise ContainerConfigError(f'secret "{name}" not found')
    return _item_files(
        secret_data(secret),
        _list(source.get("items")),
        default_mode,
        kind="secret",
        optional=optional,
    )


def _find_container(pod: Object, name: str) -> dict[str, Any]:
    spec = _dict(pod.get("spec"))
    for field_name in ("containers", "initContainers"):
        for container in _list(spec.get(field_name)):
            if _dict(container).get("name") == name:
                return _dict(container)
    raise ContainerConfigError(f"container {name} not found in pod")


def render_downward_api(
    pod: Object, source: Mapping[str, Any], default_mode: int, node_allocatable: Mapping[str, str]
) -> Files:
    files: Files = {}
    meta = _dict(pod.get("metadata"))
    for item in _list(source.get("items")):
        item = _dict(item)
        path = str(item.get("path", ""))
        mode = int(item["mode"]) if item.get("mode") is not None else default_mode
        if item.get("fieldRef"):
            value = metadata_field_value(meta, str(_dict(item["fieldRef"]).get("fieldPath", "")))
        elif item.get("resourceFieldRef"):
            ref = _dict(item["resourceFieldRef"])
            container = _find_container(pod, str(ref.get("containerName", "")))
            value = resource_field_value(container, ref, node_allocatable)
        else:
            continue
        files[path] = (value.encode(), mode)
    return files


def render_projected(
    pod: Object,
    source: Mapping[str, Any],
    *,
    config_maps: ObjectLookup,
    secrets: ObjectLookup,
    tokens: Mapping[str, str],
    node_allocatable: Mapping[str, str],
) -> Files:
    """A projected volume's files; `tokens` maps each serviceAccountToken projection's
    path to its token."""
    namespace = str(_dict(pod.get("metadata")).get("namespace", ""))
    default_mode = int(source.get("defaultMode", DEFAULT_MODE))
    files: Files = {}
    for projection in _list(source.get("sources")):
        projection = _dict(projection)
        if "configMap" in projection:
            ref = _dict(projection["configMap"])
            files.update(
                render_config_map(
                    config_maps(namespace, str(ref.get("name", ""))), ref, default_mode
                )
            )
        elif "secret" in projection:
            ref = _dict(projection["secret"])
            files.update(
                render_secret(
                    secrets(namespace, str(ref.get("name", ""))), ref, default_mode, name_key="name"
                )
            )
        elif "downwardAPI" in projection:
            files.update(
                render_downward_api(
                    pod, _dict(projection["downwardAPI"]), default_mode, node_allocatable
                )
            )
        elif "serviceAccountToken" in projection:
            path = str(_dict(projection["serviceAccountToken"]).get("path", ""))
            if path not in tokens:
                raise ContainerConfigError(f"no service account token for {path}")
            mode = default_mode
            files[path] = (tokens[path].encode(), mode)
        elif "clusterTrustBundle" in projection:
            raise ContainerConfigError("clusterTrustBundle projections are not supported")
    return files


# -- atomic writer (I/O) ---------------------------------------------------------------------


def read_atomic_dir(target: Path) -> Files | None:
    """What an atomically written volume currently shows, None if it was never written."""
    data_dir = target / DATA_LINK
    if not data_dir.is_symlink():
        return None
    files: Files = {}
    base = target / os.readlink(data_dir)
    for root, _, names in os.walk(base):
        for name in names:
            path = Path(root) / name
            relative = str(path.relative_to(base))
            files[relative] = (path.read_bytes(), stat.S_IMODE(path.stat().st_mode))
    return files


def write_atomic_dir(target: Path, files: Files, *, group: int | None = None) -> bool:
    """Make `target` show exactly `files`; False when it already did."""
    if read_atomic_dir(target) == files:
        return False
    target.mkdir(parents=True, exist_ok=True)
    timestamp = datetime.now(UTC).strftime("..%Y_%m_%d_%H_%M_%S.%f")
    new_dir = target / timestamp
    new_dir.mkdir(mode=0o755)
    for relative, (content, mode) in files.items():
        path = new_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        os.chmod(path, mode)
        if group is not None:
            os.chown(path, -1, group)
    old_data = os.readlink(target / DATA_LINK) if (target / DATA_LINK).is_symlink() else None
    temporary = target / DATA_LINK_TEMPORARY
    with contextlib.suppress(FileNotFoundError):
        temporary.unlink()
    temporary.symlink_to(timestamp)
    os.replace(temporary, target / DATA_LINK)
    visible = {relative.split("/", 1)[0] for relative in files}
    for name in visible:
        link = target / name
        if not link.is_symlink():
            link.symlink_to(f"{DATA_LINK}/{name}")
    for entry in target.iterdir():
        if entry.name.startswith(".."):
            if (
                entry.name not in (DATA_LINK, timestamp)
                and entry.is_dir()
                and not entry.is_symlink()
            ):
                shutil.rmtree(entry, ignore_errors=True)
            continue
        if entry.is_symlink() and entry.name not in visible:
            entry.unlink()
    if old_data and old_data != timestamp:
        shutil.rmtree(target / old_data, ignore_errors=True)
    return True


# -- hostPath -------------------------------------------------------------------------------


def check_host_path(path: str, kind: str) -> None:
    """Create or check the path as its hostPath type says (VolumeError when it does not fit)."""
    target = Path(path)
    if kind == "DirectoryOrCreate" and not target.exists():
        target.mkdir(mode=0o755, parents=True)
        return
    if kind == "FileOrCreate" and not target.exists():
        if not target.parent.is_dir():
            raise ContainerConfigError(
                f"hostPath type check failed: {path}: parent directory does not exist"
            )
        target.touch(mode=0o644)
        return
    checks: dict[str, tuple[Callable[[os.stat_result], bool], str]] = {
        "Directory": (lambda s: stat.S_ISDIR(s.st_mode), "a directory"),
        "DirectoryOrCreate": (lambda s: stat.S_ISDIR(s.st_mode), "a directory"),
        "File": (lambda s: stat.S_ISREG(s.st_mode), "a file"),
        "FileOrCreate": (lambda s: stat.S_ISREG(s.st_mode), "a file"),
        "Socket": (lambda s: stat.S_ISSOCK(s.st_mode), "a socket file"),
        "CharDevice": (lambda s: stat.S_ISCHR(s.st_mode), "a character device"),
        "BlockDevice": (lambda s: stat.S_ISBLK(s.st_mode), "a block device"),
    }
    if kind not in checks:
        return
    check, what = checks[kind]
    try:
        info = target.stat()
    except FileNotFoundError:
        raise ContainerConfigError(f"hostPath type check failed: {path} is not {what}") from None
    if not check(info):
        raise ContainerConfigError(f"hostPath type check failed: {path} is not {what}")


# -- the manager ------------------------------------------------------------------------------


@dataclass
class _Token:
    token: str
    renew_at: float


@dataclass
class VolumeManager:
    """Sets up and tears down the volumes of the pods on this node."""

    pods_dir: Path
    client: ApiClient
    config_maps: ObjectLookup
    secrets: ObjectLookup
    node_allocatable: Callable[[], Mapping[str, str]] = dict
    _tokens: dict[tuple[str, str], _Token] = field(default_factory=dict)

    def pod_dir(self, uid: str) -> Path:
        return self.pods_dir / uid

    async def setup(self, pod: Object) -> dict[str, HostVolume]:
        """Make every volume of the pod ready (or up to date); raises VolumeError for the
        first one that cannot be."""
        meta = _dict(pod.get("metadata"))
        uid = str(meta.get("uid", ""))
        volumes_dir = self.pod_dir(uid) / "volumes"
        result: dict[str, HostVolume] = {}
        security = _dict(_dict(pod.get("spec")).get("securityContext"))
        fs_group = int(security["fsGroup"]) if security.get("fsGroup") is not None else None
        for volume in _list(_dict(pod.get("spec")).get("volumes")):
            volume = _dict(volume)
            name = str(volume.get("name", ""))
            try:
                result[name] = await self._setup_one(pod, volume, volumes_dir, fs_group)
            except ContainerConfigError as error:
                raise VolumeError(name, str(error)) from None
            except StatusError as error:
                raise VolumeError(name, error.message) from None
            except OSError as error:
                raise VolumeError(name, str(error)) from None
        return result

    async def _setup_one(
        self, pod: Object, volume: dict[str, Any], volumes_dir: Path, fs_group: int | None
    ) -> HostVolume:
        name = str(volume.get("name", ""))
        namespace = str(_dict(pod.get("metadata")).get("namespace", ""))
        if "emptyDir" in volume:
            path = volumes_dir / EMPTY_DIR / name
            source = _dict(volume["emptyDir"])
            if not path.is_dir():
                path.mkdir(parents=True, exist_ok=True)
                os.chmod(path, 0o777)
                if fs_group is not None:
                    os.chown(path, -1, fs_group)
                    os.chmod(path, 0o2777)
            if source.get("medium") == "Memory" and not os.path.ismount(path):
                self._mount_tmpfs(path, self._memory_size(pod, source))
            return HostVolume(str(path))
        if "hostPath" in volume:
            source = _dict(volume["hostPath"])
            path_text = str(source.get("path", ""))
            check_host_path(path_text, str(source.get("type") or ""))
            return HostVolume(path_text)
        if "persistentVolumeClaim" in volume:
            return await self._claim(namespace, _dict(volume["persistentVolumeClaim"]))
        for key, plugin in PLUGIN_DIRS.items():
            if key not in volume:
                continue
            source = _dict(volume[key])
            default_mode = int(source.get("defaultMode", DEFAULT_MODE))
            if key == "configMap":
                files = render_config_map(
                    self.config_maps(namespace, str(source.get("name", ""))), source, default_mode
                )
            elif key == "secret":
                files = render_secret(
                    self.secrets(namespace, str(source.get("secretName", ""))), source, default_mode
                )
            elif key == "downwardAPI":
                files = render_downward_api(pod, source, default_mode, self.node_allocatable())
            else:
                tokens = await self._service_account_tokens(pod, name, source)
                files = render_projected(
                    pod,
                    source,
                    config_maps=self.config_maps,
                    secrets=self.secrets,
                    tokens=tokens,
                    node_allocatable=self.node_allocatable(),
                )
            path = volumes_dir / plugin / name
            write_atomic_dir(path, files, group=fs_group)
            return HostVolume(str(path), read_only=True)
        kinds = sorted(k for k in volume if k != "name")
        raise ContainerConfigError(f"unsupported volume type {', '.join(kinds) or '(none)'}")

    def _memory_size(self, pod: Object, source: Mapping[str, Any]) -> int:
        limit = source.get("sizeLimit")
        candidates = []
        for value in (limit, self.node_allocatable().get("memory")):
            if value is None:
                continue
            with contextlib.suppress(QuantityError, ValueError):
                candidates.append(parse_quantity_value(value).value())
        return min(candidates) if candidates else 0

    def _mount_tmpfs(self, path: Path, size: int) -> None:
        options = "mode=0777" + (f",size={size}" if size > 0 else "")
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise OSError(f"mounting tmpfs at {path} failed: {done.stderr.strip()}")

    async def _claim(self, namespace: str, source: Mapping[str, Any]) -> HostVolume:
        claim_name = str(source.get("claimName", ""))
        claim = await self.client.get(PERSISTENTVOLUMECLAIMS, claim_name, namespace)
        volume_name = _dict(claim.get("spec")).get("volumeName")
        if not volume_name:
            raise ContainerConfigError(f"PVC {namespace}/{claim_name} is not bound")
        volume = await self.client.get(PERSISTENTVOLUMES, str(volume_name))
        spec = _dict(volume.get("spec"))
        claim_ref = _dict(spec.get("claimRef"))
        if claim_ref and (claim_ref.get("name"), claim_ref.get("namespace")) != (
            claim_name,
            namespace,
        ):
            raise ContainerConfigError(
                f"persistent volume {volume_name} is bound to another claim than {namespace}/{claim_name}"
            )
        read_only = bool(source.get("readOnly"))
        if "hostPath" in spec:
            host_path = _dict(spec["hostPath"])
            path = str(host_path.get("path", ""))
            check_host_path(path, str(host_path.get("type") or "DirectoryOrCreate"))
            return HostVolume(path, read_only=read_only)
        if "local" in spec:
            path = str(_dict(spec["local"]).get("path", ""))
            if not Path(path).exists():
                raise ContainerConfigError(
                    f"path {path} of local volume {volume_name} does not exist"
                )
            return HostVolume(path, read_only=read_only)
        raise ContainerConfigError(
            f"persistent volume {volume_name} is neither hostPath nor local: not supported on this node"
        )

    async def _service_account_tokens(
        self, pod: Object, volume_name: str, source: Mapping[str, Any]
    ) -> dict[str, str]:
        meta = _dict(pod.get("metadata"))
        spec = _dict(pod.get("spec"))
        tokens: dict[str, str] = {}
        for projection in _list(source.get("sources")):
            token_source = _dict(_dict(projection).get("serviceAccountToken"))
            if not token_source:
                continue
            path = str(token_source.get("path", ""))
            key = (str(meta.get("uid", "")), f"{volume_name}/{path}")
            cached = self._tokens.get(key)
            if cached is None or time.time() >= cached.renew_at:
                seconds = int(token_source.get("expirationSeconds") or 3600)
                request: Object = {
                    "apiVersion": "authentication.k8s.io/v1",
                    "kind": "TokenRequest",
                    "spec": {
                        "expirationSeconds": seconds,
                        "boundObjectRef": {
                            "apiVersion": "v1",
                            "kind": "Pod",
                            "name": meta.get("name", ""),
                            "uid": meta.get("uid", ""),
                        },
                    },
                }
                if token_source.get("audience"):
                    request["spec"]["audiences"] = [token_source["audience"]]
                answer = await self.client.create_subresource(
                    SERVICEACCOUNTS,
                    str(spec.get("serviceAccountName") or "default"),
                    "token",
                    request,
                    str(meta.get("namespace", "")),
                )
                cached = _Token(
                    str(_dict(answer.get("status")).get("token", "")),
                    time.time() + seconds * TOKEN_RENEW_FRACTION,
                )
                self._tokens[key] = cached
            tokens[path] = cached.token
        return tokens

    def teardown(self, uid: str) -> None:
        """Unmount and remove everything the pod had on the node."""
        directory = self.pod_dir(uid)
        if directory.exists():
            unmount_under(directory)
            shutil.rmtree(directory, ignore_errors=True)
        for key in [k for k in self._tokens if k[0] == uid]:
            del self._tokens[key]

    def known_pod_dirs(self) -> list[str]:
        if not self.pods_dir.is_dir():
            return []
        return [entry.name for entry in self.pods_dir.iterdir() if entry.is_dir()]


def references(pod: Object) -> tuple[set[str], set[str]]:
    """The names of the ConfigMaps and Secrets the pod's volumes and env refer to."""
    config_maps: set[str] = set()
    secrets: set[str] = set()
    spec = _dict(pod.get("spec"))
    for volume in _list(spec.get("volumes")):
        volume = _dict(volume)
        if "configMap" in volume:
            config_maps.add(str(_dict(volume["configMap"]).get("name", "")))
        if "secret" in volume:
            secrets.add(str(_dict(volume["secret"]).get("secretName", "")))
        for projection in _list(_dict(volume.get("projected")).get("sources")):
            projection = _dict(projection)
            if "configMap" in projection:
                config_maps.add(str(_dict(projection["configMap"]).get("name", "")))
            if "secret" in projection:
                secrets.add(str(_dict(projection["secret"]).get("name", "")))
    for field_name in ("initContainers", "containers"):
        for container in _list(spec.get(field_name)):
            container = _dict(container)
            for source in _list(container.get("envFrom")):
                source = _dict(source)
                if "configMapRef" in source:
                    config_maps.add(str(_dict(source["configMapRef"]).get("name", "")))
                if "secretRef" in source:
                    secrets.add(str(_dict(source["secretRef"]).get("name", "")))
            for variable in _list(container.get("env")):
                value_from = _dict(_dict(variable).get("valueFrom"))
                if "configMapKeyRef" in value_from:
                    config_maps.add(str(_dict(value_from["configMapKeyRef"]).get("name", "")))
                if "secretKeyRef" in value_from:
                    secrets.add(str(_dict(value_from["secretKeyRef"]).get("name", "")))
    for secret in _list(spec.get("imagePullSecrets")):
        secrets.add(str(_dict(secret).get("name", "")))
    return config_maps, secrets
