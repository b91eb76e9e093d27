"""Images: the pull policy, credentials, and the registries file (like k3s's registries.yaml).

Pure parts:
- `pull_policy` / `needs_pull`: Always, IfNotPresent, Never; an image without a tag (or
  tagged `latest`) and no digest defaults to Always, any other to IfNotPresent.
- `Registries` from the registries file:

      mirrors:
        docker.io:
          endpoint: ["http://mirror.local:5000", "https://mirror2.example.com"]
        "registry.local:5000":
          endpoint: ["http://registry.local:5000"]     # a plain-HTTP registry
      configs:
        "mirror2.example.com":
          auth: {username: u, password: p}             # or auth: <base64 user:pass>, identitytoken
          tls: {ca_file: /path/ca.crt, cert_file: ..., key_file: ..., insecure_skip_verify: false}

  rendered as containerd's registry host directory (`<dir>/<registry>/hosts.toml`: the
  mirrors in order, then the registry itself; `*` is `_default`) and per-host credentials in
  the CRI plugin's config (`registry.configs."<host>".auth`), which is where containerd 1.6
  looks for them when a pull brings none of its own.
- `pull_credentials`: the pod's imagePullSecrets (`kubernetes.io/dockerconfigjson` and
  `kubernetes.io/dockercfg`) that match the image's registry, tried in order, as kubelet's
  keyring does.

I/O: `ImageManager.ensure_image` pulls through CRI as the policy says, with kubelet's events
(Pulling, Pulled, Failed, BackOff, ErrImageNeverPull) and per-image pull backoff
(ImagePullBackOff: 10 s doubling to 5 min).
"""

from __future__ import annotations

import asyncio
import base64
import fnmatch
import json
import logging
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from timonel.agent.kubelet.backoff import Backoff
from timonel.agent.runtime.cri import CriClient, CriError, api
from timonel.api.objects import Object

log = logging.getLogger(__name__)

DOCKER_HUB: Final = "docker.io"
DOCKER_HUB_SERVER: Final = "https://registry-1.docker.io"
DOCKER_HUB_ALIASES: Final = frozenset(
    {"docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"}
)

_REFERENCE: Final = re.compile(
    r"^(?:[a-zA-Z0-9](?:[a-zA-Z0-9.-]*[a-zA-Z0-9])?(?::[0-9]+)?/)?"
    r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
    r"(?::[\w][\w.-]{0,127})?(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?$"
)


class ImageError(Exception):
    """An image could not be made available; `reason` is the container's waiting reason."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


# -- references and policy ------------------------------------------------------------------


def is_valid_reference(image: str) -> bool:
    return bool(image) and bool(_REFERENCE.match(image))


def split_reference(image: str) -> tuple[str, str, str, str]:
    """(registry, repository, tag, digest) of a reference, Docker Hub's defaults applied."""
    name, _, digest = image.partition("@")
    first, slash, rest = name.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        registry, path = first, rest
    else:
        registry, path = DOCKER_HUB, name
        if "/" not in path:
            path = f"library/{path}"
    repository, colon, tag = path.rpartition(":")
    if not colon or "/" in tag:
        repository, tag = path, ""
    if not tag and not digest:
        tag = "latest"
    return registry, repository, tag, digest


def image_registry(image: str) -> str:
    return split_reference(image)[0]


def default_pull_policy(image: str) -> str:
    _, _, tag, digest = split_reference(image)
    if not digest and tag == "latest":
        return "Always"
    return "IfNotPresent"


def pull_policy(container: Mapping[str, Any]) -> str:
    policy = container.get("imagePullPolicy")
    if policy in ("Always", "IfNotPresent", "Never"):
        return str(policy)
    return default_pull_policy(str(container.get("image", "")))


def needs_pull(policy: str, present: bool) -> bool:
    if policy == "Always":
        return True
    if policy == "IfNotPresent":
        return not present
    return False


# -- registries.yaml -------------------------------------------------------------------------


@dataclass(frozen=True)
class RegistryAuth:
    username: str = ""
    password: str = ""
    auth: str = ""
    identity_token: str = ""


@dataclass(frozen=True)
class RegistryTls:
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    insecure_skip_verify: bool = False


@dataclass(frozen=True)
class RegistryConfig:
    auth: RegistryAuth | None = None
    tls: RegistryTls | None = None


@dataclass(frozen=True)
class Registries:
    mirrors: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    configs: Mapping[str, RegistryConfig] = field(default_factory=dict)


class RegistriesError(ValueError):
    pass


def _host_of(endpoint: str) -> str:
    """The host[:port] of an endpoint URL or bare host."""
    text = endpoint.split("://", 1)[-1]
    return text.split("/", 1)[0]


def parse_registries(text: str) -> Registries:
    import yaml  # only nodes with a registries file pay for the YAML parser

    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as error:
        raise RegistriesError(f"not YAML: {error}") from None
    if not isinstance(data, dict):
        raise RegistriesError("expected a mapping with mirrors and configs")
    mirrors: dict[str, tuple[str, ...]] = {}
    for registry, value in (data.get("mirrors") or {}).items():
        endpoints = (value or {}).get("endpoint") or []
        if not isinstance(endpoints, list):
            raise RegistriesError(f"mirrors.{registry}.endpoint: expected a list")
        normalized = []
        for endpoint in endpoints:
            endpoint = str(endpoint).rstrip("/")
            if "://" not in endpoint:
                endpoint = f"https://{endpoint}"
            if not endpoint.startswith(("http://", "https://")):
                raise RegistriesError(f"mirrors.{registry}.endpoint: {endpoint!r} is not http(s)")
            normalized.append(endpoint)
        mirrors[str(registry)] = tuple(normalized)
    configs: dict[str, RegistryConfig] = {}
    for host, value in (data.get("configs") or {}).items():
        value = value or {}
        auth_data = value.get("auth")
        tls_data = value.get("tls")
        configs[_host_of(str(host))] = RegistryConfig(
            auth=RegistryAuth(
                username=str(auth_data.get("username", "")),
                password=str(auth_data.get("password", "")),
                auth=str(auth_data.get("auth", "")),
                identity_token=str(auth_data.get("identitytoken", "")),
            )
            if isinstance(auth_data, dict)
            else None,
            tls=RegistryTls(
                ca_file=str(tls_data.get("ca_file", "")),
                cert_file=str(tls_data.get("cert_file", "")),
                key_file=str(tls_data.get("key_file", "")),
                insecure_skip_verify=bool(tls_data.get("insecure_skip_verify", False)),
            )
            if isinstance(tls_data, dict)
            else None,
        )
    return Registries(mirrors, configs)


def load_registries(path: Path) -> Registries:
    """The registries file at `path`; no file means no mirrors and no credentials."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return Registries()
    return parse_registries(text)


def _toml(value: str) -> str:
    return json.dumps(value)


def _host_entry(endpoint: str, registries: Registries, capabilities: Sequence[str]) -> str:
    lines = [
        f"[host.{_toml(endpoint)}]",
        f"  capabilities = [{', '.join(map(_toml, capabilities))}]",
    ]
    tls = (registries.configs.get(_host_of(endpoint)) or RegistryConfig()).tls
    if tls is not None:
        if tls.insecure_skip_verify:
            lines.append("  skip_verify = true")
        if tls.ca_file:
            lines.append(f"  ca = {_toml(tls.ca_file)}")
        if tls.cert_file and tls.key_file:
            lines.append(f"  client = [[{_toml(tls.cert_file)}, {_toml(tls.key_file)}]]")
    return "\n".join(lines) + "\n"


def _server_for(registry: str) -> str:
    if registry == DOCKER_HUB:
        return DOCKER_HUB_SERVER
    return f"https://{registry}"


def render_hosts_dir(registries: Registries) -> dict[str, str]:
    """containerd's registry host directory: {"<registry>/hosts.toml": text}."""
    files: dict[str, str] = {}
    registries_with_tls = {
        host for host, config in registries.configs.items() if config.tls is not None
    }
    for registry in sorted(set(registries.mirrors) | registries_with_tls):
        directory = "_default" if registry == "*" else registry
        parts = []
        if registry != "*":
            parts.append(f"server = {_toml(_server_for(registry))}\n")
        for endpoint in registries.mirrors.get(registry, ()):
            parts.append(_host_entry(endpoint, registries, ("pull", "resolve")))
        if (
            registry != "*"
            and registry in registries_with_tls
            and registry not in registries.mirrors
        ):
            parts.append(
                _host_entry(_server_for(registry), registries, ("pull", "resolve", "push"))
            )
        files[f"{directory}/hosts.toml"] = "\n".join(parts)
    return files


def render_cri_registry_config(registries: Registries, hosts_dir: Path) -> str:
    """The CRI plugin's registry section: the host directory and per-host credentials."""
    cri = '[plugins."io.containerd.grpc.v1.cri".registry'
    lines = [f"{cri}]", f"  config_path = {_toml(str(hosts_dir))}"]
    for host, config in sorted(registries.configs.items()):
        if config.auth is None:
            continue
        lines.append("")
        lines.append(f"{cri}.configs.{_toml(host)}.auth]")
        for key, value in (
            ("username", config.auth.username),
            ("password", config.auth.password),
            ("auth", config.auth.auth),
            ("identitytoken", config.auth.identity_token),
        ):
            if value:
                lines.append(f"  {key} = {_toml(value)}")
    return "\n".join(lines) + "\n"


def write_hosts_dir(hosts_dir: Path, registries: Registries) -> None:
    """Make `hosts_dir` hold exactly the rendered files (containerd reads it on each pull)."""
    wanted = render_hosts_dir(registries)
    hosts_dir.mkdir(parents=True, exist_ok=True)
    for existing in hosts_dir.glob("*/hosts.toml"):
        if str(existing.relative_to(hosts_dir)) not in wanted:
            existing.unlink()
    for relative, text in wanted.items():
        path = hosts_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


# -- pull secrets -----------------------------------------------------------------------------


def _normalized_registry(key: str) -> tuple[str, str]:
    """(host, path prefix) of a docker config key such as https://index.docker.io/v1/."""
    text = key.split("://", 1)[-1].rstrip("/")
    host, _, path = text.partition("/")
    if host in DOCKER_HUB_ALIASES:
        host, path = DOCKER_HUB, ""
    return host.lower(), path


def docker_config_entries(secret: Object) -> list[tuple[str, dict[str, Any]]]:
    """(registry key, credentials) of a dockerconfigjson or dockercfg Secret."""
    raw_data = secret.get("data")
    data: dict[str, Any] = raw_data if isinstance(raw_data, dict) else {}
    entries: list[tuple[str, dict[str, Any]]] = []
    for field_name, wrapped in ((".dockerconfigjson", True), (".dockercfg", False)):
        raw = data.get(field_name)
        if not raw:
            continue
        try:
            parsed = json.loads(base64.b64decode(str(raw)))
        except (ValueError, TypeError):
            continue
        auths = parsed.get("auths") if wrapped and isinstance(parsed, dict) else parsed
        if isinstance(auths, dict):
            entries.extend((str(k), v) for k, v in auths.items() if isinstance(v, dict))
    return entries


def _matches(key: str, registry: str, repository: str) -> bool:
    host, path = _normalized_registry(key)
    if not fnmatch.fnmatchcase(registry.lower(), host):
        return False
    return not path or repository == path or repository.startswith(path.rstrip("/") + "/")


def pull_credentials(image: str, secrets: Iterable[Object]) -> list[api.AuthConfig]:
    """The credentials of the pod's pull secrets that apply to `image`, most specific
    first; the pull is tried with each in turn, then without any."""
    registry, repository, _, _ = split_reference(image)
    found: list[tuple[int, api.AuthConfig]] = []
    for secret in secrets:
        for key, entry in docker_config_entries(secret):
            if not _matches(key, registry, repository):
                continue
            username = str(entry.get("username", ""))
            password = str(entry.get("password", ""))
            if entry.get("auth") and not username:
                decoded = base64.b64decode(str(entry["auth"])).decode(errors="replace")
                username, _, password = decoded.partition(":")
            # containerd 1.6 compares the URL's host with the host it is talking to.
            server = f"https://{registry if registry != DOCKER_HUB else 'registry-1.docker.io'}"
            found.append(
                (
                    len(_normalized_registry(key)[1]),
                    api.AuthConfig(
                        username=username,
                        password=password,
                        server_address=server,
                        identity_token=str(entry.get("identitytoken", "")),
                        registry_token=str(entry.get("registrytoken", "")),
                    ),
                )
            )
    return [auth for _, auth in sorted(found, key=lambda item: -item[0])]


# -- pulling ------------------------------------------------------------------------------------


EventSink = Callable[[str, str, str], None]
"""(type, reason, message) → records an Event about the container."""


@dataclass
class ImageManager:
    """Makes a container's image present as its pull policy says (kubelet's image puller)."""

    cri: Callable[[], CriClient]
    backoff: Backoff = field(default_factory=Backoff)
    pull_timeout: float = 600.0
    _locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    _last_errors: dict[str, str] = field(default_factory=dict)

    async def ensure_image(
        self,
        pod_uid: str,
        container: Mapping[str, Any],
        pull_secrets: Sequence[Object],
        record: EventSink,
        sandbox_config: api.PodSandboxConfig | None = None,
    ) -> api.Image:
        """The image to create the container from (its `id`, and its user); raises
        ImageError with the container's waiting reason (ErrImagePull, ImagePullBackOff,
        ErrImageNeverPull, InvalidImageName)."""
        image = str(container.get("image", ""))
        if not is_valid_reference(image):
            message = (
                f'Failed to apply default image tag "{image}": couldn\'t parse image name '
                f'"{image}": invalid reference format'
            )
            record("Warning", "InspectFailed", message)
            raise ImageError("InvalidImageName", message)
        policy = pull_policy(container)
        present = await self.cri().image_status(image)
        if not needs_pull(policy, present is not None):
            if present is not None:
                record("Normal", "Pulled", f'Container image "{image}" already present on machine')
                return present
            message = f'Container image "{image}" is not present with pull policy of Never'
            record("Warning", "ErrImageNeverPull", message)
            raise ImageError("ErrImageNeverPull", message)
        key = f"{pod_uid}/{image}"
        if self.backoff.in_backoff_since_update(key, time.time()):
            message = f'Back-off pulling image "{image}"'
            record("Normal", "BackOff", message)
            previous = self._last_errors.get(key)
            raise ImageError(
                "ImagePullBackOff", f"{message}: ErrImagePull: {previous}" if previous else message
            )
        lock = self._locks.setdefault(image, asyncio.Lock())
        started = time.monotonic()
        async with lock:
            waited = time.monotonic() - started
            record("Normal", "Pulling", f'Pulling image "{image}"')
            pulled = time.monotonic()
            try:
                image_ref = await self._pull(image, pull_secrets, sandbox_config)
            except CriError as error:
                self.backoff.next(key, time.time())
                self._last_errors[key] = error.details
                message = f'Failed to pull image "{image}": {error.details}'
                record("Warning", "Failed", message)
                raise ImageError("ErrImagePull", error.details) from None
        self.backoff.reset(key)
        self._last_errors.pop(key, None)
        took = time.monotonic() - pulled
        status = await self.cri().image_status(image_ref)
        size = f" Image size: {status.size} bytes." if status is not None else ""
        record(
            "Normal",
            "Pulled",
            f'Successfully pulled image "{image}" in {took:.3f}s ({took + waited:.3f}s '
            f"including waiting).{size}",
        )
        return status if status is not None else api.Image(id=image_ref)

    async def _pull(
        self,
        image: str,
        pull_secrets: Sequence[Object],
        sandbox_config: api.PodSandboxConfig | None,
    ) -> str:
        credentials: list[api.AuthConfig | None] = [*pull_credentials(image, pull_secrets), None]
        last: CriError | None = None
        for auth in credentials:
            try:
                return await self.cri().pull_image(
                    image, auth=auth, sandbox_config=sandbox_config, timeout=self.pull_timeout
                )
            except CriError as error:
                last = error
        assert last is not None
        raise last

    def forget_pod(self, pod_uid: str) -> None:
        self.backoff.forget_prefix(f"{pod_uid}/")
        for key in [k for k in self._last_errors if k.startswith(f"{pod_uid}/")]:
            del self._last_errors[key]
