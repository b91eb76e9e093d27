"""Discovery: which resources the server serves, read from the API as client-go's
discovery client reads it (GET /api, /api/v1, /apis, then /apis/GROUP/VERSION).

Controllers that act on every kind (the garbage collector, the namespace controller)
use the *preferred* resources: for each (group, resource) the entry of the group's
preferred version, or of the first version that serves it. Group-versions that fail to
answer are reported by name; the resources found elsewhere are still usable.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from timonel.api.errors import StatusError
from timonel.client.resources import Resource
from timonel.client.rest import ApiClient


@dataclass(frozen=True, slots=True)
class ApiResource:
    """One top-level resource of one group-version, with the verbs it supports."""

    resource: Resource
    verbs: frozenset[str]

    def supports(self, *verbs: str) -> bool:
        return all(verb in self.verbs for verb in verbs)


@dataclass
class ServerResources:
    """What discovery found: every served resource, the preferred ones, and the
    group-versions that could not be read (group-version → error message)."""

    served: list[ApiResource] = field(default_factory=list)
    preferred: list[ApiResource] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    def preferred_supporting(self, *verbs: str, namespaced: bool | None = None) -> list[Resource]:
        return [
            entry.resource
            for entry in self.preferred
            if entry.supports(*verbs)
            and (namespaced is None or entry.resource.namespaced == namespaced)
        ]

    def failure_message(self) -> str:
        """client-go's ErrGroupDiscoveryFailed wording."""
        parts = sorted(f"{gv}: {error}" for gv, error in self.failed.items())
        return f"unable to retrieve the complete list of server APIs: {', '.join(parts)}"


class RestMapper:
    """(apiVersion, kind) → the resource that serves it, from discovery."""

    def __init__(self, resources: ServerResources) -> None:
        self._exact: dict[tuple[str, str, str], Resource] = {}
        self._by_group_kind: dict[tuple[str, str], Resource] = {}
        for entry in resources.served:
            r = entry.resource
            self._exact.setdefault((r.group, r.version, r.kind), r)
        for entry in resources.preferred:
            r = entry.resource
            self._by_group_kind.setdefault((r.group, r.kind), r)
        for entry in resources.served:
            r = entry.resource
            self._by_group_kind.setdefault((r.group, r.kind), r)

    def resource_for(self, api_version: str, kind: str) -> Resource | None:
        """The resource for exactly this version, else the group's preferred one for
        the kind (an owner named at an older version is still the same object)."""
        group, _, version = api_version.rpartition("/")
        return self._exact.get((group, version, kind)) or self._by_group_kind.get((group, kind))


def group_versions(api_versions: Mapping[str, Any], group_list: Mapping[str, Any]) -> list[str]:
    """Every group-version to read, each group's preferred version first."""
    found = [str(v) for v in api_versions.get("versions") or []]
    for group in group_list.get("groups") or []:
        preferred = (group.get("preferredVersion") or {}).get("groupVersion", "")
        versions = [str(v.get("groupVersion", "")) for v in group.get("versions") or []]
        found += [preferred] if preferred else []
        found += [gv for gv in versions if gv and gv != preferred]
    return found


def parse_resource_list(document: Mapping[str, Any]) -> list[ApiResource]:
    """The top-level resources of one APIResourceList (subresources left out)."""
    group, _, version = str(document.get("groupVersion", "")).rpartition("/")
    resources = []
    for entry in document.get("resources") or []:
        name = str(entry.get("name", ""))
        if not name or "/" in name:
            continue
        resource = Resource(
            group, version, name, str(entry.get("kind", "")), bool(entry.get("namespaced"))
        )
        resources.append(ApiResource(resource, frozenset(entry.get("verbs") or [])))
    return resources


def preferred_resources(
    ordered_group_versions: Iterable[str], lists: Mapping[str, list[ApiResource]]
) -> list[ApiResource]:
    """One entry per (group, resource): the first group-version, in the order given
    (preferred first), that serves it."""
    chosen: dict[tuple[str, str], ApiResource] = {}
    for gv in ordered_group_versions:
        for entry in lists.get(gv, []):
            chosen.setdefault((entry.resource.group, entry.resource.plural), entry)
    return list(chosen.values())


async def discover(client: ApiClient) -> ServerResources:
    """Read the discovery documents. Raises only when the group lists themselves
    cannot be read; a failing group-version is recorded in `failed`."""
    api_versions, group_list = await asyncio.gather(
        client.get_path("/api"), client.get_path("/apis")
    )
    ordered = group_versions(api_versions, group_list)

    async def read(gv: str) -> list[ApiResource] | str:
        path = f"/apis/{gv}" if "/" in gv else f"/api/{gv}"
        try:
            return parse_resource_list(await client.get_path(path))
        except StatusError as error:
            return error.message or f"the server returned {error.code}"

    answers = await asyncio.gather(*(read(gv) for gv in ordered))
    result = ServerResources()
    lists: dict[str, list[ApiResource]] = {}
    for gv, answer in zip(ordered, answers, strict=True):
        if isinstance(answer, str):
            result.failed[gv] = answer
        else:
            lists[gv] = answer
            result.served += answer
    result.preferred = preferred_resources(ordered, lists)
    return result
