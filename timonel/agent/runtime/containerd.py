"""A containerd instance owned by the node agent: its config, its process, its supervision.

Each instance is private: its own root, state, gRPC/ttrpc sockets, runc root, CNI config
directory and pod network namespaces (under its state dir), so several can run on one host
(one per simulated node in multi-node tests) next to a system containerd without touching it.
The only shared paths left are containerd's shim sockets (/run/containerd/s/<hash>) and libcni's
result cache (/var/lib/cni/results), both keyed by unique names.

Lifecycle, as `ManagedContainerd` runs it:

- `start()` writes the config, then either adopts the instance a previous agent left running
  (same PID, process start time, command line and config; containerd and the pods' shims
  outlive the agent on purpose) or launches `containerd --config ...` in its own session,
  optionally inside a named network namespace (`nsenter --net=/run/netns/NS`). It returns when
  the CRI service answers `Version`.
- A supervision task restarts containerd when it exits, with exponential backoff. Running
  containers survive this: their shims are separate processes.
- `stop()` sends SIGTERM, then SIGKILL after a timeout, to that one PID and nothing else.
  It leaves pods running (as stopping a system containerd does); remove them first through CRI
  when the node goes away (`cri.remove_all_pod_sandboxes`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from timonel.agent.runtime.cri import CriClient, CriError

log = logging.getLogger(__name__)

CONTAINERD_BINARY: Final = "containerd"
RUNC_BINARY: Final = "/usr/sbin/runc"
CNI_BIN_DIR: Final = Path("/usr/lib/cni")
MAX_UNIX_SOCKET_PATH: Final = 107
PROCESS_PATH: Final = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

DISABLED_PLUGINS: Final = (
    "io.containerd.snapshotter.v1.btrfs",
    "io.containerd.snapshotter.v1.zfs",
    "io.containerd.snapshotter.v1.devmapper",
    "io.containerd.snapshotter.v1.aufs",
    "io.containerd.tracing.processor.v1.otlp",
    "io.containerd.internal.v1.tracing",
)


class ContainerdError(Exception):
    pass


@dataclass(frozen=True)
class ContainerdPaths:
    """Where one instance keeps things: `state_dir` persists, `run_dir` may live on tmpfs."""

    state_dir: Path
    run_dir: Path

    @property
    def config(self) -> Path:
        return self.state_dir / "config.toml"

    @property
    def root(self) -> Path:
        return self.state_dir / "root"

    @property
    def opt(self) -> Path:
        return self.state_dir / "opt"

    @property
    def log(self) -> Path:
        return self.state_dir / "containerd.log"

    @property
    def socket(self) -> Path:
        return self.run_dir / "containerd.sock"

    @property
    def ttrpc_socket(self) -> Path:
        return self.run_dir / "containerd.sock.ttrpc"

    @property
    def state(self) -> Path:
        return self.run_dir / "state"

    @property
    def runc_root(self) -> Path:
        return self.state / "runc"

    @property
    def pid_file(self) -> Path:
        return self.run_dir / "containerd.pid"


@dataclass(frozen=True)
class ContainerdSettings:
    paths: ContainerdPaths
    sandbox_image: str
    cni_conf_dir: Path
    cni_bin_dir: Path = CNI_BIN_DIR
    stream_address: str = "127.0.0.1"
    stream_port: int = 0
    runc_binary: str = RUNC_BINARY
    log_level: str = "info"
    extra_config: str = ""
    """More TOML appended to the config (the agent's registry mirrors and credentials)."""


def _toml_string(value: str | Path) -> str:
    # A TOML basic string takes the same escapes as JSON for everything a path can contain.
    return json.dumps(str(value))


def render_containerd_config(settings: ContainerdSettings) -> str:
    """A minimal containerd 1.6 (config version 2) file; every other key keeps its default.

    Why the non-default keys: `restrict_oom_score_adj` because lowering oom_score_adj needs
    CAP_SYS_RESOURCE, which some hosts (containers, sandboxes) lack; the per-instance runc
    `Root`, netns under the state dir and a random stream port keep instances apart; cgroupfs
    because the agent does not require systemd; /usr/lib/cni is Debian's plugin directory;
    `max_conf_num = 1` makes the node's single conflist authoritative.
    """
    paths = settings.paths
    socket = str(paths.socket)
    if len(socket.encode()) > MAX_UNIX_SOCKET_PATH - len(".ttrpc"):
        raise ContainerdError(f"socket path too long for a unix socket: {socket}")
    disabled = ", ".join(_toml_string(plugin) for plugin in DISABLED_PLUGINS)
    cri = '[plugins."io.containerd.grpc.v1.cri"'
    return f"""\
version = 2
root = {_toml_string(paths.root)}
state = {_toml_string(paths.state)}
disabled_plugins = [{disabled}]

[grpc]
  address = {_toml_string(paths.socket)}

[ttrpc]
  address = {_toml_string(paths.ttrpc_socket)}

[debug]
  level = {_toml_string(settings.log_level)}

[plugins."io.containerd.internal.v1.opt"]
  path = {_toml_string(paths.opt)}

{cri}]
  sandbox_image = {_toml_string(settings.sandbox_image)}
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  stream_server_address = {_toml_string(settings.stream_address)}
  stream_server_port = {_toml_string(str(settings.stream_port))}
  enable_tls_streaming = false

{cri}.containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"

{cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

{cri}.containerd.runtimes.runc.options]
  BinaryName = {_toml_string(settings.runc_binary)}
  Root = {_toml_string(paths.runc_root)}
  SystemdCgroup = false

{cri}.cni]
  bin_dir = {_toml_string(settings.cni_bin_dir)}
  conf_dir = {_toml_string(settings.cni_conf_dir)}
  max_conf_num = 1
""" + (f"\n{settings.extra_config}" if settings.extra_config else "")


def containerd_command(config: Path, *, netns: str | None = None) -> list[str]:
    """The command line that runs one instance, entering `netns` (a /run/netns name) if given."""
    command = [CONTAINERD_BINARY, "--config", str(config)]
    if netns is not None:
        # nsenter execs containerd in place (no fork without a PID namespace), so the PID we
        # get is containerd's; it keeps the host mount namespace, unlike `ip netns exec`.
        command = ["nsenter", f"--net={netns_path(netns)}", "--", *command]
    return command


def netns_path(netns: str) -> Path:
    return Path(netns) if netns.startswith("/") else Path("/run/netns") / netns


# --- processes, identified by PID and start time ------------------------------------------------


def process_start_time(pid: int) -> int | None:
    """Start time of a live process in clock ticks since boot; None if it is gone (or a zombie
    that nobody reaped yet: an adopted containerd is not our child)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return parse_start_time(stat)


def parse_start_time(stat: str) -> int | None:
    """The start time field of a /proc/PID/stat line, None for a dead process."""
    # The command name (field 2) may contain spaces and parentheses: split after its last ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def process_command_line(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


@dataclass(frozen=True)
class PidRecord:
    pid: int
    start_time: int
    config_sha256: str

    def encode(self) -> str:
        return json.dumps(
            {"pid": self.pid, "startTime": self.start_time, "configSha256": self.config_sha256}
        )

    @classmethod
    def decode(cls, text: str) -> PidRecord | None:
        try:
            data = json.loads(text)
            return cls(int(data["pid"]), int(data["startTime"]), str(data["configSha256"]))
        except (ValueError, KeyError, TypeError):
            return None


def is_same_process(record: PidRecord, config: Path) -> bool:
    """Whether `record` still names the containerd we started with `config` (PIDs get reused)."""
    if process_start_time(record.pid) != record.start_time:
        return False
    command = process_command_line(record.pid)
    return bool(command) and Path(command[0]).name == CONTAINERD_BINARY and str(config) in command


def same_network_namespace(pid: int, netns: str | None) -> bool:
    """Whether `pid` runs in `netns` (a /run/netns name), or in ours when it is None."""
    try:
        current = os.stat(f"/proc/{pid}/ns/net")
        wanted = os.stat(netns_path(netns) if netns is not None else "/proc/self/ns/net")
    except OSError:
        return False
    return (current.st_dev, current.st_ino) == (wanted.st_dev, wanted.st_ino)


async def socket_accepts(path: Path) -> bool:
    try:
        _, writer = await asyncio.open_unix_connection(str(path))
    except OSError:
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


# --- the managed instance ------------------------------------------------------------------------


class ManagedContainerd:
    """One containerd process that this agent starts, supervises and stops."""

    def __init__(
        self,
        state_dir: Path,
        run_dir: Path,
        *,
        name: str,
        sandbox_image: str,
        cni_conf_dir: Path,
        cni_bin_dir: Path | str = CNI_BIN_DIR,
        stream_address: str = "127.0.0.1",
        netns: str | None = None,
        extra_config: str = "",
        ready_timeout: float = 30.0,
        stop_timeout: float = 10.0,
        restart_backoff: tuple[float, float] = (0.5, 30.0),
    ) -> None:
        self.name = name
        self.netns = netns
        self.paths = ContainerdPaths(Path(state_dir), Path(run_dir))
        self.settings = ContainerdSettings(
            paths=self.paths,
            sandbox_image=sandbox_image,
            cni_conf_dir=Path(cni_conf_dir),
            cni_bin_dir=Path(cni_bin_dir),
            stream_address=stream_address,
            extra_config=extra_config,
        )
        self.ready_timeout = ready_timeout
        self.stop_timeout = stop_timeout
        self.restart_backoff = restart_backoff
        self.restarts = 0
        self._process: asyncio.subprocess.Process | None = None
        self._adopted: PidRecord | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._stopping = False
        self._ready = asyncio.Event()

    @property
    def socket(self) -> Path:
        return self.paths.socket

    @property
    def endpoint(self) -> str:
        """The CRI endpoint in kubelet's notation (`unix:///...`)."""
        return f"unix://{self.paths.socket}"

    @property
    def pid(self) -> int | None:
        if self._process is not None and self._process.returncode is None:
            return self._process.pid
        if self._adopted is not None:
            return self._adopted.pid
        return None

    @property
    def running(self) -> bool:
        return self._ready.is_set()

    def client(self, *, timeout: float = 10.0) -> CriClient:
        return CriClient(self.paths.socket, timeout=timeout)

    async def start(self) -> None:
        """Run containerd (or adopt ours from a previous agent) and wait until CRI answers."""
        if self._supervisor is not None:
            raise ContainerdError(f"containerd {self.name} is already started")
        self._stopping = False
        config_text = render_containerd_config(self.settings)
        for directory in (self.paths.state_dir, self.paths.run_dir, self.paths.root):
            directory.mkdir(parents=True, exist_ok=True)
        self.paths.config.write_text(config_text)
        config_sha256 = hashlib.sha256(config_text.encode()).hexdigest()

        previous = self._read_pid_record()
        if previous is not None and is_same_process(previous, self.paths.config):
            if previous.config_sha256 == config_sha256 and same_network_namespace(
                previous.pid, self.netns
            ):
                log.info("containerd %s: adopting running pid %d", self.name, previous.pid)
                self._adopted = previous
            else:
                log.info(
                    "containerd %s: config or network namespace changed, restarting pid %d",
                    self.name,
                    previous.pid,
                )
                await self._terminate(previous.pid, is_current=lambda: self._is_alive(previous))
        elif await socket_accepts(self.paths.socket):
            raise ContainerdError(
                f"{self.paths.socket} is served by a process this agent did not start"
            )
        if self._adopted is None:
            await self._launch(config_sha256)
        try:
            await self._wait_ready()
        except BaseException:
            await self._kill_current()
            raise
        self._supervisor = asyncio.create_task(
            self._supervise(config_sha256), name=f"containerd-{self.name}"
        )

    async def stop(self) -> None:
        """Stop the supervised containerd: SIGTERM, then SIGKILL after `stop_timeout`."""
        self._stopping = True
        self._ready.clear()
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
            self._supervisor = None
        await self._kill_current()

    async def wait_ready(self, timeout: float | None = None) -> None:
        """Wait until containerd answers again (after a restart)."""
        await asyncio.wait_for(self._ready.wait(), timeout)

    async def __aenter__(self) -> ManagedContainerd:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # --- internals ---

    def _read_pid_record(self) -> PidRecord | None:
        try:
            return PidRecord.decode(self.paths.pid_file.read_text())
        except FileNotFoundError:
            return None

    def _is_alive(self, record: PidRecord) -> bool:
        return process_start_time(record.pid) == record.start_time

    async def _launch(self, config_sha256: str) -> None:
        command = containerd_command(self.paths.config, netns=self.netns)
        environment = {**os.environ, "PATH": PROCESS_PATH}
        with self.paths.log.open("ab") as log_file:
            # Its own session: a terminal's Ctrl-C reaches the agent, which then stops
            # containerd in order, rather than killing containerd mid-operation.
            self._process = await asyncio.create_subprocess_exec(
                *command,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env=environment,
                start_new_session=True,
            )
        self._adopted = None
        start_time = process_start_time(self._process.pid)
        if start_time is not None:
            record = PidRecord(self._process.pid, start_time, config_sha256)
            self.paths.pid_file.write_text(record.encode())
        log.info("containerd %s: started pid %d", self.name, self._process.pid)

    def _current_alive(self) -> bool:
        if self._process is not None:
            return self._process.returncode is None
        return self._adopted is not None and self._is_alive(self._adopted)

    async def _wait_exit(self) -> int | None:
        if self._process is not None:
            return await self._process.wait()
        if self._adopted is not None:
            # Not our child: poll. /proc/PID/stat disappears or changes start time on exit.
            while self._is_alive(self._adopted):
                await asyncio.sleep(0.5)
        return None

    async def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            if not self._current_alive():
                raise ContainerdError(
                    f"containerd {self.name} exited during startup; log tail:\n{self._log_tail()}"
                )
            if await socket_accepts(self.paths.socket):
                # A fresh channel per try: a gRPC channel that failed to connect backs off for
                # up to a second before trying again.
                async with CriClient(self.paths.socket, timeout=1.0) as client:
                    try:
                        await client.version()
                    except CriError:
                        pass
                    else:
                        self._ready.set()
                        return
            await asyncio.sleep(0.02)
        raise ContainerdError(
            f"containerd {self.name} did not answer CRI within {self.ready_timeout} s; "
            f"log tail:\n{self._log_tail()}"
        )

    def _log_tail(self, lines: int = 20) -> str:
        try:
            text = self.paths.log.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    async def _supervise(self, config_sha256: str) -> None:
        initial_backoff, max_backoff = self.restart_backoff
        backoff = initial_backoff
        while True:
            started = time.monotonic()
            code = await self._wait_exit()
            if self._stopping:
                return
            self._ready.clear()
            log.warning(
                "containerd %s exited (code %s); restarting in %.1f s", self.name, code, backoff
            )
            if time.monotonic() - started > 60:
                backoff = initial_backoff
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, max_backoff)
            try:
                await self._launch(config_sha256)
                await self._wait_ready()
            except (ContainerdError, OSError) as error:
                log.error("containerd %s: restart failed: %s", self.name, error)
                await self._kill_current()  # a hung instance would never be seen to exit
                continue
            self.restarts += 1

    async def _kill_current(self) -> None:
        if self._process is not None:
            process = self._process
            await self._terminate(process.pid, is_current=lambda: process.returncode is None)
            await process.wait()
            self._process = None
        elif self._adopted is not None:
            adopted = self._adopted
            await self._terminate(adopted.pid, is_current=lambda: self._is_alive(adopted))
            self._adopted = None
        else:
            return  # nothing of ours ran: keep a pid file that names someone else's instance
        with contextlib.suppress(FileNotFoundError):
            self.paths.pid_file.unlink()

    async def _terminate(self, pid: int, *, is_current: Callable[[], bool]) -> None:
        """SIGTERM `pid`, SIGKILL it after `stop_timeout`; signal only while it is still ours."""
        for sig, wait in ((signal.SIGTERM, self.stop_timeout), (signal.SIGKILL, 5.0)):
            if not is_current():
                return
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline and is_current():
                await asyncio.sleep(0.02)
        if is_current():
            raise ContainerdError(f"containerd {self.name} (pid {pid}) survived SIGKILL")


# --- cleanup -------------------------------------------------------------------------------------


def mounts_under(path: Path) -> list[Path]:
    """Mount points at or below `path`, deepest first (the order to unmount them in)."""
    prefix = os.path.realpath(path)
    found: list[Path] = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        mount_point = line.split()[4].encode().decode("unicode_escape")
        if mount_point == prefix or mount_point.startswith(prefix.rstrip("/") + "/"):
            found.append(Path(mount_point))
    return sorted(found, key=lambda p: len(p.parts), reverse=True)


def unmount_under(path: Path) -> list[Path]:
    """Unmount everything at or below `path` (a dead instance's rootfs, shm and netns mounts)."""
    unmounted: list[Path] = []
    for mount_point in mounts_under(path):
        done = subprocess.run(["umount", str(mount_point)], capture_output=True, check=False)
        if done.returncode != 0:
            subprocess.run(["umount", "--lazy", str(mount_point)], capture_output=True, check=False)
        unmounted.append(mount_point)
    return unmounted


def cgroup_mount_points() -> list[Path]:
    """Where each cgroup hierarchy (v1 controllers, and the v2 tree) is mounted."""
    found: list[Path] = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        _, _, after = line.partition(" - ")
        if after.split()[0] in ("cgroup", "cgroup2"):
            found.append(Path(line.split()[4]))
    return found


def remove_cgroup_tree(cgroup_path: str) -> list[Path]:
    """Remove the (empty) cgroup `cgroup_path` and those below it, in every hierarchy.

    runc removes a container's own cgroup; the pod and node levels above it are the agent's.
    Cgroups that still hold processes stay (rmdir refuses them).
    """
    relative = cgroup_path.strip("/")
    if not relative:
        raise ValueError("refusing to remove the root cgroup")
    removed: list[Path] = []
    for mount_point in cgroup_mount_points():
        top = mount_point / relative
        if not top.is_dir():
            continue
        directories = [Path(root) for root, _, _ in os.walk(top)]
        for directory in sorted(directories, key=lambda p: len(p.parts), reverse=True):
            try:
                directory.rmdir()
            except OSError:
                continue
            removed.append(directory)
    return removed
