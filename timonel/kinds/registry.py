"""Which resources the API serves: a registry of strategies by group, version and plural.

Built-in kinds are registered once at start; CustomResourceDefinitions add and remove
their resources while the server runs.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from timonel.kinds.base import Strategy


class ResourceRegistry:
    def __init__(self, strategies: Iterable[Strategy] = ()) -> None:
        self._by_resource: dict[tuple[str, str, str], Strategy] = {}
        for strategy in strategies:
            self.register(strategy)

    def register(self, strategy: Strategy) -> None:
        self._by_resource[(strategy.group, strategy.version, strategy.plural)] = strategy

    def unregister(self, group: str, version: str, plural: str) -> None:
        self._by_resource.pop((group, version, plural), None)

    def lookup(self, group: str, version: str, plural: str) -> Strategy | None:
        return self._by_resource.get((group, version, plural))

    def by_kind(self, group: str, version: str, kind: str) -> Strategy | None:
        for strategy in self._by_resource.values():
            if (strategy.group, strategy.version, strategy.kind) == (group, version, kind):
                return strategy
        return None

    def __iter__(self) -> Iterator[Strategy]:
        return iter(self._by_resource.values())

    def group_versions(self) -> dict[str, list[str]]:
        """Served versions per group ("" is the core group), in registration order."""
        found: dict[str, list[str]] = {}
        for strategy in self._by_resource.values():
            versions = found.setdefault(strategy.group, [])
            if strategy.version not in versions:
                versions.append(strategy.version)
        return found


def builtin_registry() -> ResourceRegistry:
    """Every kind timonel serves out of the box."""
    from timonel.kinds import builtin

    return ResourceRegistry(cls() for cls in builtin.STRATEGIES)
