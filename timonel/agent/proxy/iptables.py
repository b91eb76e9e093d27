"""The iptables I/O: run iptables in a network namespace, install rulesets, clean up.

`Iptables` runs the `iptables`, `iptables-save` and `iptables-restore` commands the host's
alternatives select (the same backend the CNI plugins use: nft on Debian 12), optionally in
another network namespace (`nsenter --net=PATH`), which is how tests and multi-node setups
keep each node's tables apart.

`RulesetApplier` keeps one component's rules installed:

- `apply(ruleset)` loads what changed since the last apply with one atomic
  `iptables-restore --noflush` (nothing when nothing changed); a full apply rewrites every
  chain, deletes the component's chains left on the host that the ruleset no longer has, and
  inserts the jumps from the built-in chains idempotently (`-C || -I`);
- `intact()` says whether the tables still hold the component's canary chain (a firewall
  reload that dropped the tables removes it; the next apply must then be full);
- `remove()` deletes the jumps and every chain of the component.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from timonel.agent.proxy.ruleset import Jump, Ruleset, chains_in_save, removal_text, restore_text

log = logging.getLogger(__name__)

WAIT_SECONDS = 5
"""How long iptables waits for the xtables lock (only the legacy backend takes it)."""
LOCK_DIR = Path("/run/timonel/locks")


class IptablesError(Exception):
    def __init__(self, command: Sequence[str], returncode: int, stderr: str) -> None:
        super().__init__(f"{' '.join(command[:4])} … exited {returncode}: {stderr.strip()}")
        self.command = list(command)
        self.returncode = returncode
        self.stderr = stderr


@dataclass(frozen=True)
class Iptables:
    netns: str | None = None
    """A network namespace file (/run/netns/NAME, /proc/PID/ns/net); None: this process's."""

    def command(self, program: str, *args: str) -> list[str]:
        prefix = ["nsenter", f"--net={self.netns}"] if self.netns else []
        return [*prefix, program, *args]

    async def _run(
        self, program: str, *args: str, stdin: str | None = None, check: bool = True
    ) -> tuple[int, str, str]:
        command = self.command(program, *args)
        process = await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await process.communicate(stdin.encode() if stdin is not None else None)
        code = process.returncode if process.returncode is not None else -1
        stderr = _without_legacy_warning(err.decode(errors="replace"))
        if check and code != 0:
            raise IptablesError(command, code, stderr)
        return code, out.decode(errors="replace"), stderr

    async def run(self, *args: str, check: bool = True) -> tuple[int, str, str]:
        """`iptables ARGS` → (exit code, stdout, stderr)."""
        return await self._run("iptables", "-w", str(WAIT_SECONDS), *args, check=check)

    async def restore(self, text: str) -> None:
        """Load `text` atomically, leaving every chain it does not name alone."""
        await self._run("iptables-restore", "--noflush", "-w", str(WAIT_SECONDS), stdin=text)

    async def save(self, table: str) -> str:
        _, out, _ = await self._run("iptables-save", "-t", table)
        return out

    async def version(self) -> str:
        """e.g. "iptables v1.8.9 (nf_tables)"."""
        _, out, _ = await self._run("iptables", "--version")
        return out.strip()

    async def has_chain(self, table: str, chain: str) -> bool:
        code, _, _ = await self.run("-t", table, "-S", chain, check=False)
        return code == 0

    async def ensure_chain(self, table: str, chain: str) -> None:
        code, _, stderr = await self.run("-t", table, "-N", chain, check=False)
        if code != 0 and "exists" not in stderr:
            raise IptablesError(self.command("iptables", "-N", chain), code, stderr)

    async def ensure_jump(self, jump: Jump) -> bool:
        """Insert `jump` at the top of its chain unless it is there. True if inserted."""
        code, _, _ = await self.run("-t", jump.table, "-C", jump.chain, *jump.args(), check=False)
        if code == 0:
            if jump.first:
                return await self._keep_first(jump)
            return False
        await self.run("-t", jump.table, "-I", jump.chain, "1", *jump.args())
        return True

    async def _keep_first(self, jump: Jump) -> bool:
        """Move `jump` back to the top when rules were inserted above it."""
        _, listing, _ = await self.run("-t", jump.table, "-S", jump.chain)
        rules = [line for line in listing.splitlines() if line.startswith("-A ")]
        if rules and rules[0].endswith(f"-j {jump.target}"):
            return False
        await self.run("-t", jump.table, "-D", jump.chain, *jump.args())
        await self.run("-t", jump.table, "-I", jump.chain, "1", *jump.args())
        return True

    async def delete_jump(self, jump: Jump) -> None:
        """Delete every copy of `jump`."""
        for _ in range(16):
            code, _, _ = await self.run(
                "-t", jump.table, "-D", jump.chain, *jump.args(), check=False
            )
            if code != 0:
                return

    async def set_sysctl(self, name: str, value: str) -> bool:
        """Set a sysctl of the namespace (net.* sysctls are per network namespace). True if
        it exists and now has `value`."""
        path = Path("/proc/sys") / name.replace(".", "/")
        if self.netns is None:
            try:
                if path.read_text().strip() != value:
                    path.write_text(value)
            except OSError as error:
                log.warning("cannot set %s=%s: %s", name, value, error)
                return False
            return True
        code, _, stderr = await self._run(
            "sh", "-c", f'[ -e "{path}" ] && echo {value} > "{path}"', check=False
        )
        if code != 0:
            log.warning("cannot set %s=%s in %s: %s", name, value, self.netns, stderr.strip())
        return code == 0


def _without_legacy_warning(stderr: str) -> str:
    # iptables-nft prints this once any iptables-legacy command ran on the host; harmless.
    return "\n".join(
        line for line in stderr.splitlines() if "iptables-legacy tables present" not in line
    )


@dataclass
class ApplyStats:
    full: bool = False
    changed: bool = False
    lines: int = 0
    restore_seconds: float = 0.0


@dataclass
class RulesetApplier:
    """Keeps one component's ruleset installed (see the module docstring)."""

    iptables: Iptables
    owns: Callable[[str], bool]
    jumps: Sequence[Jump]
    canary: str
    stale_jumps: Sequence[Jump] = ()
    """Jumps the component may have installed before and must not keep (options changed)."""
    installed: Ruleset | None = None
    _canary_tables: set[str] = field(default_factory=set)

    def _tables(self, ruleset: Ruleset) -> list[str]:
        return sorted({*ruleset.tables, *(jump.table for jump in self.jumps)})

    async def apply(self, ruleset: Ruleset, *, full: bool = False) -> ApplyStats:
        """Install `ruleset`. On failure the next apply is full."""
        full = full or self.installed is None
        stats = ApplyStats(full=full)
        try:
            if full:
                for jump in self.stale_jumps:
                    await self.iptables.delete_jump(jump)
                stale: dict[str, list[str]] = {}
                for table in self._tables(ruleset):
                    found = chains_in_save(await self.iptables.save(table), self.owns)
                    stale[table] = found.get(table, [])
                text = restore_text(ruleset, None, stale=stale)
            else:
                text = restore_text(ruleset, self.installed)
            if text:
                started = time.perf_counter()
                await self.iptables.restore(text)
                stats.restore_seconds = time.perf_counter() - started
                stats.changed = True
                stats.lines = text.count("\n")
            if full:
                for jump in self.jumps:
                    await self.iptables.ensure_jump(jump)
                for table in self._tables(ruleset):
                    await self.iptables.ensure_chain(table, self.canary)
                self._canary_tables = set(self._tables(ruleset))
            else:
                for jump in self.jumps:
                    if jump.first:
                        await self.iptables.ensure_jump(jump)
        except BaseException:
            self.installed = None
            raise
        self.installed = ruleset
        return stats

    async def intact(self) -> bool:
        """False when a table lost the canary chain (the rules must be rewritten in full)."""
        for table in sorted(self._canary_tables):
            if not await self.iptables.has_chain(table, self.canary):
                return False
        return True

    async def remove(self) -> None:
        """Delete the jumps into the component's chains and the chains themselves, as found
        on the host, with one atomic iptables-restore (a stop cut short leaves all or
        nothing)."""
        tables = {*(self.installed.tables if self.installed else ()), *self._canary_tables}
        tables.update(jump.table for jump in [*self.jumps, *self.stale_jumps])

        def owned(chain: str) -> bool:
            return self.owns(chain) or chain == self.canary

        found: dict[str, tuple[list[str], list[str]]] = {}
        for table in sorted(tables):
            saved = await self.iptables.save(table)
            found[table] = (
                chains_in_save(saved, owned).get(table, []),
                jumps_in_save(saved, owned),
            )
        text = removal_text(found)
        if text:
            await self.iptables.restore(text)
        self.installed = None
        self._canary_tables.clear()


def jumps_in_save(saved: str, owned: Callable[[str], bool]) -> list[str]:
    """The rules of iptables-save output that jump from chains not `owned` into owned
    ones, as `-D` lines that delete them."""
    found: list[str] = []
    for line in saved.splitlines():
        if not line.startswith("-A "):
            continue
        chain = line.split(" ", 2)[1]
        target = line.rsplit(" -j ", 1)[-1].split(" ", 1)[0] if " -j " in line else ""
        if target and owned(target) and not owned(chain):
            found.append("-D " + line[3:])
    return found


async def ensure_forwarding_sysctls(iptables: Iptables, *, route_localnet: bool) -> None:
    """What Services need from the kernel: forwarding, bridged traffic through iptables
    (pod → Service → pod on one bridge), and, for NodePorts on 127.0.0.1, route_localnet."""
    await iptables.set_sysctl("net.ipv4.ip_forward", "1")
    if not await iptables.set_sysctl("net.bridge.bridge-nf-call-iptables", "1"):
        log.warning("without br_netfilter, pod → Service → pod on one bridge fails")
    if route_localnet:
        await iptables.set_sysctl("net.ipv4.conf.all.route_localnet", "1")


def owned_by_any(*predicates: Callable[[str], bool]) -> Callable[[str], bool]:
    def owns(chain: str) -> bool:
        return any(predicate(chain) for predicate in predicates)

    return owns


def stale_jumps(all_jumps: Iterable[Jump], wanted: Iterable[Jump]) -> tuple[Jump, ...]:
    keep = set(wanted)
    return tuple(jump for jump in all_jumps if jump not in keep)


class NamespaceLock:
    """One owner per network namespace for a component's chains (two proxies in one
    namespace would overwrite each other's rules): an exclusive flock on a file named after
    the namespace's inode, held for the life of the process and released when it exits,
    however it exits."""

    def __init__(self, component: str, iptables: Iptables, directory: Path = LOCK_DIR) -> None:
        self.component = component
        self.iptables = iptables
        self.directory = directory
        self._fd: int | None = None

    def path(self) -> Path:
        netns = self.iptables.netns or "/proc/self/ns/net"
        inode = os.stat(netns).st_ino
        return self.directory / f"{self.component}-netns-{inode}.lock"

    def try_acquire(self) -> bool:
        if self._fd is not None:
            return True
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path(), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    async def acquire(self, poll: float = 5.0) -> None:
        """Wait until this process owns the namespace (logging once while it waits)."""
        if self.try_acquire():
            return
        log.warning(
            "another process manages the %s rules of this network namespace (%s); waiting",
            self.component,
            self.path(),
        )
        while not self.try_acquire():
            await asyncio.sleep(poll)

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
