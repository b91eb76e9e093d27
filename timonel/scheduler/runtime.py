"""A profile made runnable: its plugins instantiated and sorted by extension point, and
one method per extension point that runs them in order."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import repeat
from operator import add, mul
from typing import Final

from timonel.scheduler.framework import (
    ALL_EVENTS,
    SUCCESS,
    BindPlugin,
    ClusterEvent,
    Code,
    CycleState,
    Diagnosis,
    EnqueueExtensions,
    FilterPlugin,
    Handle,
    NodeInfo,
    NormalizeScorePlugin,
    PodInfo,
    PostFilterPlugin,
    PreFilterPlugin,
    PreFilterResult,
    PreScorePlugin,
    Profile,
    Registry,
    ReservePlugin,
    ResourceScorePlugin,
    ResourceState,
    ScorePlugin,
    Status,
    error,
    unresolvable,
)

_NO_NODES: Final = PreFilterResult(frozenset())


class Framework:
    def __init__(self, profile: Profile, registry: Registry, handle: Handle) -> None:
        self.profile = profile
        self.scheduler_name = profile.scheduler_name
        self.percentage_of_nodes_to_score = profile.percentage_of_nodes_to_score
        self.pre_filter: list[PreFilterPlugin] = []
        self.filter: list[FilterPlugin] = []
        self.post_filter: list[PostFilterPlugin] = []
        self.pre_score: list[PreScorePlugin] = []
        self.score: list[tuple[ScorePlugin, int]] = []
        self.normalize: dict[str, NormalizeScorePlugin] = {}
        self.resource_score: dict[str, ResourceScorePlugin] = {}
        self.reserve: list[ReservePlugin] = []
        self.bind: list[BindPlugin] = []
        # Which cluster events may make a pod rejected by each plugin schedulable.
        self.plugin_events: dict[str, frozenset[ClusterEvent]] = {}
        for spec in profile.plugins:
            factory = registry.get(spec.name)
            if factory is None:
                raise ValueError(f"plugin {spec.name!r} is not registered")
            plugin = factory(spec.args, handle)
            self._register(plugin, spec.weight)

    def _register(self, plugin: object, weight: int) -> None:
        name: str = getattr(plugin, "name")  # noqa: B009 - every plugin has one
        if isinstance(plugin, PreFilterPlugin):
            self.pre_filter.append(plugin)
        if isinstance(plugin, FilterPlugin):
            self.filter.append(plugin)
        if isinstance(plugin, PostFilterPlugin):
            self.post_filter.append(plugin)
        if isinstance(plugin, PreScorePlugin):
            self.pre_score.append(plugin)
        if isinstance(plugin, ScorePlugin):
            self.score.append((plugin, weight or 1))
        if isinstance(plugin, NormalizeScorePlugin):
            self.normalize[name] = plugin
        elif isinstance(plugin, ResourceScorePlugin) and isinstance(plugin, ScorePlugin):
            self.resource_score[name] = plugin
        if isinstance(plugin, ReservePlugin):
            self.reserve.append(plugin)
        if isinstance(plugin, BindPlugin):
            self.bind.append(plugin)
        events = (
            plugin.events_to_register() if isinstance(plugin, EnqueueExtensions) else ALL_EVENTS
        )
        self.plugin_events[name] = events

    # -- filtering ---------------------------------------------------------------------------

    def run_pre_filter(
        self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]
    ) -> tuple[PreFilterResult | None, Status, list[str]]:
        """(merged result, status, plugins whose results narrowed the nodes)."""
        result: PreFilterResult | None = None
        narrowing: list[str] = []
        for plugin in self.pre_filter:
            partial, status = plugin.pre_filter(state, pod, nodes)
            if status.is_skip:
                state.skip_filter.add(plugin.name)
                continue
            if not status.is_success:
                status = status.with_plugin(plugin.name)
                if status.is_rejected:
                    return None, status, [plugin.name]
                return (
                    None,
                    error(
                        plugin.name, f'running PreFilter plugin "{plugin.name}": {status.message}'
                    ),
                    [],
                )
            if partial is not None and partial.node_names is not None:
                narrowing.append(plugin.name)
                result = partial if result is None else result.merge(partial)
                if not result.node_names:
                    names = narrowing[0] if len(narrowing) == 1 else f"[{' '.join(narrowing)}]"
                    message = (
                        f"node(s) didn't satisfy plugin {names}"
                        if len(narrowing) == 1
                        else f"node(s) didn't satisfy plugin(s) {names} simultaneously"
                    )
                    return _NO_NODES, unresolvable("", message), narrowing
        return result, SUCCESS, narrowing

    def active_filters(self, state: CycleState) -> list[FilterPlugin]:
        skipped = state.skip_filter
        return [p for p in self.filter if p.name not in skipped]

    def run_post_filter(self, state: CycleState, pod: PodInfo, diagnosis: Diagnosis) -> Status:
        reasons: list[str] = []
        for plugin in self.post_filter:
            status = plugin.post_filter(state, pod, diagnosis)
            if status.is_success or status.code is Code.UNSCHEDULABLE_AND_UNRESOLVABLE:
                return status.with_plugin(plugin.name)
            if not status.is_rejected:
                return error(plugin.name, status.message)
            reasons.extend(status.reasons)
        return Status(Code.UNSCHEDULABLE, tuple(reasons))

    # -- scoring -----------------------------------------------------------------------------

    def run_pre_score(self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]) -> Status:
        for plugin in self.pre_score:
            status = plugin.pre_score(state, pod, nodes)
            if status.is_skip:
                state.skip_score.add(plugin.name)
            elif not status.is_success:
                return error(
                    plugin.name, f'running PreScore plugin "{plugin.name}": {status.message}'
                )
        return SUCCESS

    def run_score(
        self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]
    ) -> list[int] | None:
        """Weighted totals per node; None when every node scores the same. Plugins that
        score every node alike cannot change the winner: their share is left out of the
        totals (which are therefore relative, not absolute). Plugins scoring by resource
        state answer once per distinct state; their weighted sum is looked up per node
        once."""
        totals: list[int] | None = None
        skipped = state.skip_score
        keys: list[ResourceState] | None = None
        distinct: set[ResourceState] = set()
        by_state: dict[ResourceState, int] | None = None
        for plugin, weight in self.score:
            if plugin.name in skipped:
                continue
            if plugin.name in self.resource_score:
                if keys is None:
                    keys = state.resource_states(nodes)
                    distinct = set(keys)
                partial = self.resource_score[plugin.name].score_resource_states(
                    state, pod, distinct
                )
                if partial is not None:
                    if by_state is None:
                        by_state = {k: weight * v for k, v in partial.items()}
                    else:
                        by_state = {k: v + weight * partial[k] for k, v in by_state.items()}
                    continue
            scores = plugin.score(state, pod, nodes)
            normalizer = self.normalize.get(plugin.name)
            if normalizer is not None:
                normalizer.normalize(state, pod, nodes, scores)
            if not scores or scores.count(scores[0]) == len(scores):
                continue
            weighted: Iterable[int] = scores if weight == 1 else map(mul, scores, repeat(weight))
            totals = list(weighted) if totals is None else list(map(add, totals, weighted))
        if by_state is not None and keys is not None and len(set(by_state.values())) > 1:
            looked_up = map(by_state.__getitem__, keys)
            totals = list(looked_up) if totals is None else list(map(add, totals, looked_up))
        return totals

    # -- placing -----------------------------------------------------------------------------

    def run_reserve(self, state: CycleState, pod: PodInfo, node_name: str) -> Status:
        for index, plugin in enumerate(self.reserve):
            status = plugin.reserve(state, pod, node_name)
            if not status.is_success:
                for reserved in reversed(self.reserve[: index + 1]):
                    reserved.unreserve(state, pod, node_name)
                return status.with_plugin(plugin.name)
        return SUCCESS

    def run_unreserve(self, state: CycleState, pod: PodInfo, node_name: str) -> None:
        for plugin in reversed(self.reserve):
            plugin.unreserve(state, pod, node_name)

    async def run_bind(self, state: CycleState, pod: PodInfo, node_name: str) -> Status:
        for plugin in self.bind:
            status = await plugin.bind(state, pod, node_name)
            if status.is_skip:
                continue
            if not status.is_success:
                return error(plugin.name, f'running Bind plugin "{plugin.name}": {status.message}')
            return SUCCESS
        return error("", "no bind plugin bound the pod")
