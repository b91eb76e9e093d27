"""The sync loop shared by the proxy and the network policy enforcer.

A `RuleSyncer` owns a `RulesetApplier` and re-renders its ruleset whenever `changed()` is
called. Syncs are at least `min_sync_period` apart, so a burst of changes costs one sync,
and the first change after a quiet spell syncs at once. Every `sync_period` the loop checks
that the tables still hold the component's canary chain and rewrites everything if not;
every `full_sync_period` it rewrites everything anyway. A failed sync is retried, in full.
Nothing is installed before `ready` is set (rules from a partial picture of the cluster
would cut off traffic); on a clean stop the component's jumps and chains are removed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from timonel.agent.proxy.iptables import NamespaceLock, RulesetApplier
from timonel.agent.proxy.ruleset import Ruleset

log = logging.getLogger(__name__)

Snapshot = TypeVar("Snapshot")


@dataclass(frozen=True)
class SyncSettings:
    min_sync_period: float = 0.1
    sync_period: float = 10.0
    full_sync_period: float = 3600.0
    retry_period: float = 1.0


@dataclass(frozen=True)
class SyncResult:
    full: bool
    changed: bool
    rules: int
    render_seconds: float
    restore_seconds: float
    finished: float
    """time.monotonic() when the rules were in place."""


class RuleSyncer(Generic[Snapshot]):
    """Subclasses provide `snapshot()` (on the event loop: what to render from) and
    `render(snapshot)` (in a worker thread: the ruleset)."""

    component = "rules"
    lock_name = ""
    """Non-empty: hold this per-network-namespace lock while the rules are installed."""

    def __init__(
        self,
        applier: RulesetApplier,
        *,
        settings: SyncSettings | None = None,
        cleanup_on_exit: bool = True,
    ) -> None:
        self.applier = applier
        self.settings = settings or SyncSettings()
        self.cleanup_on_exit = cleanup_on_exit
        self.ready = asyncio.Event()
        self.last_result: SyncResult | None = None
        self.listeners: list[Callable[[SyncResult], None]] = []
        self._dirty = asyncio.Event()
        self._need_full = True

    def changed(self) -> None:
        self._dirty.set()

    def snapshot(self) -> Snapshot:
        raise NotImplementedError

    def render(self, snapshot: Snapshot) -> Ruleset:
        raise NotImplementedError

    async def prepare(self) -> None:
        """Runs once before the first sync (sysctls and the like)."""

    async def after_sync(self, result: SyncResult) -> None:
        """Runs after each successful sync (housekeeping that needs the rules in place)."""

    async def sync(self, *, full: bool = False) -> SyncResult:
        """Render the rules from what is known now and install what changed."""
        snapshot = self.snapshot()
        started = time.perf_counter()
        ruleset = await asyncio.to_thread(self.render, snapshot)
        rendered = time.perf_counter()
        stats = await self.applier.apply(ruleset, full=full)
        if stats.full:
            self._need_full = False
        result = SyncResult(
            full=stats.full,
            changed=stats.changed,
            rules=ruleset.rule_count(),
            render_seconds=rendered - started,
            restore_seconds=stats.restore_seconds,
            finished=time.monotonic(),
        )
        self.last_result = result
        for listener in list(self.listeners):
            listener(result)
        await self.after_sync(result)
        return result

    async def run(self) -> None:
        """Sync until cancelled; remove the rules on the way out."""
        lock = NamespaceLock(self.lock_name, self.applier.iptables) if self.lock_name else None
        if lock is not None:
            await lock.acquire()
        try:
            await self.prepare()
            await self.ready.wait()
            await self._loop()
        finally:
            if self.cleanup_on_exit:
                with contextlib.suppress(Exception):
                    await self.applier.remove()
            if lock is not None:
                lock.release()

    async def _loop(self) -> None:
        settings = self.settings
        loop = asyncio.get_running_loop()
        last_sync = -1e9
        last_full = loop.time()
        self._dirty.set()
        while True:
            periodic = False
            try:
                await asyncio.wait_for(self._dirty.wait(), settings.sync_period)
            except TimeoutError:
                periodic = True
            pause = last_sync + settings.min_sync_period - loop.time()
            if pause > 0:
                await asyncio.sleep(pause)
            self._dirty.clear()
            if periodic and not self._need_full and not await self.applier.intact():
                log.warning("%s were removed from the tables; rewriting them", self.component)
                self._need_full = True
            if loop.time() - last_full > settings.full_sync_period:
                self._need_full = True
            full = self._need_full
            last_sync = loop.time()
            try:
                result = await self.sync(full=full)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.error("syncing %s failed: %s", self.component, error)
                self._need_full = True
                loop.call_later(settings.retry_period, self._dirty.set)
                continue
            self._need_full = False
            if full:
                last_full = loop.time()
            if result.changed:
                log.debug(
                    "%s synced (%s): %d rules, render %.0f ms, restore %.0f ms",
                    self.component,
                    "full" if full else "partial",
                    result.rules,
                    result.render_seconds * 1000,
                    result.restore_seconds * 1000,
                )
