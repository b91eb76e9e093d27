"""Discovery documents: which groups, versions and resources the server offers.

kubectl asks for the aggregated form (apidiscovery.k8s.io/v2) first and recognises it
only by the response Content-Type; the legacy per-group-version documents are still
fetched by some commands (`auth can-i`), so both are served.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from timonel.kinds.base import Strategy
from timonel.kinds.registry import ResourceRegistry

AGGREGATED_CONTENT_TYPE = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"

KUBERNETES_VERSION = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.0+timonel",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z",
    "goVersion": "go1.23.4",
    "compiler": "gc",
    "platform": "linux/amd64",
}

_SUBRESOURCE_VERBS = ["get", "patch", "update"]


def wants_aggregated(accept: str | None) -> bool:
    return bool(accept) and "as=APIGroupDiscoveryList" in (accept or "").split(",", 1)[0]


def _subresources(strategy: Strategy) -> list[tuple[str, dict[str, str], list[str]]]:
    """(name, responseKind, verbs) of a resource's subresources."""
    own = {"group": strategy.group, "version": strategy.version, "kind": strategy.kind}
    found: list[tuple[str, dict[str, str], list[str]]] = []
    if strategy.has_status:
        found.append(("status", own, _SUBRESOURCE_VERBS))
    if strategy.scale is not None:
        found.append(
            (
                "scale",
                {"group": "autoscaling", "version": "v1", "kind": "Scale"},
                _SUBRESOURCE_VERBS,
            )
        )
    if strategy.group == "" and strategy.plural == "pods":
        found += [
            ("binding", {"group": "", "version": "v1", "kind": "Binding"}, ["create"]),
            ("eviction", {"group": "policy", "version": "v1", "kind": "Eviction"}, ["create"]),
            ("log", own, ["get"]),
            ("exec", {"group": "", "version": "v1", "kind": "PodExecOptions"}, ["create", "get"]),
            (
                "attach",
                {"group": "", "version": "v1", "kind": "PodAttachOptions"},
                ["create", "get"],
            ),
            (
                "portforward",
                {"group": "", "version": "v1", "kind": "PodPortForwardOptions"},
                ["create", "get"],
            ),
        ]
    if strategy.group == "" and strategy.plural == "nodes":
        found.append(
            (
                "proxy",
                {"group": "", "version": "v1", "kind": "NodeProxyOptions"},
                ["create", "delete", "get", "patch", "update"],
            )
        )
    if strategy.group == "" and strategy.plural == "serviceaccounts":
        found.append(
            (
                "token",
                {"group": "authentication.k8s.io", "version": "v1", "kind": "TokenRequest"},
                ["create"],
            )
        )
    if strategy.group == "" and strategy.plural == "namespaces":
        found.append(("finalize", own, ["update"]))
    return found


def _storage_version_hash(strategy: Strategy) -> str:
    digest = hashlib.sha256(
        f"{strategy.group}/{strategy.version}/{strategy.kind}".encode()
    ).digest()
    import base64

    return base64.b64encode(digest[:8]).decode()


def resource_list(registry: ResourceRegistry, group: str, version: str) -> dict[str, Any] | None:
    """The legacy APIResourceList of one group-version."""
    resources: list[dict[str, Any]] = []
    for strategy in registry:
        if strategy.group != group or strategy.version != version:
            continue
        entry: dict[str, Any] = {
            "name": strategy.plural,
            "singularName": strategy.singular,
            "namespaced": strategy.namespaced,
            "kind": strategy.kind,
            "verbs": list(strategy.verbs),
        }
        if strategy.short_names:
            entry["shortNames"] = list(strategy.short_names)
        if strategy.categories:
            entry["categories"] = list(strategy.categories)
        if not strategy.virtual:
            entry["storageVersionHash"] = _storage_version_hash(strategy)
        resources.append(entry)
        for name, kind, verbs in _subresources(strategy):
            sub: dict[str, Any] = {
                "name": f"{strategy.plural}/{name}",
                "singularName": "",
                "namespaced": strategy.namespaced,
                "kind": kind["kind"],
                "verbs": verbs,
            }
            if kind["group"] != strategy.group or kind["version"] != strategy.version:
                sub["group"], sub["version"] = kind["group"], kind["version"]
            resources.append(sub)
    if not resources:
        return None
    group_version = f"{group}/{version}" if group else version
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    }


def _aggregated_group(
    registry: ResourceRegistry, group: str, versions: list[str]
) -> dict[str, Any]:
    version_entries = []
    for version in versions:
        resources = []
        for strategy in registry:
            if strategy.group != group or strategy.version != version:
                continue
            entry: dict[str, Any] = {
                "resource": strategy.plural,
                "responseKind": {
                    "group": strategy.group,
                    "version": strategy.version,
                    "kind": strategy.kind,
                },
                "scope": "Namespaced" if strategy.namespaced else "Cluster",
                "singularResource": strategy.singular,
                "verbs": list(strategy.verbs),
            }
            if strategy.short_names:
                entry["shortNames"] = list(strategy.short_names)
            if strategy.categories:
                entry["categories"] = list(strategy.categories)
            subresources = [
                {"subresource": name, "responseKind": kind, "verbs": verbs}
                for name, kind, verbs in _subresources(strategy)
            ]
            if subresources:
                entry["subresources"] = subresources
            resources.append(entry)
        version_entries.append({"version": version, "resources": resources, "freshness": "Current"})
    return {"metadata": {"name": group, "creationTimestamp": None}, "versions": version_entries}


def aggregated(registry: ResourceRegistry, *, core: bool) -> dict[str, Any]:
    groups = registry.group_versions()
    items = [
        _aggregated_group(registry, group, versions)
        for group, versions in groups.items()
        if (group == "") == core
    ]
    return {
        "kind": "APIGroupDiscoveryList",
        "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {},
        "items": items,
    }


def api_versions(server_address: str) -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}
        ],
    }


def _api_group(group: str, versions: list[str]) -> dict[str, Any]:
    entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {"name": group, "versions": entries, "preferredVersion": entries[0]}


def api_group_list(registry: ResourceRegistry) -> dict[str, Any]:
    groups = [_api_group(g, v) for g, v in registry.group_versions().items() if g]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_group(registry: ResourceRegistry, group: str) -> dict[str, Any] | None:
    versions = registry.group_versions().get(group)
    if not versions or not group:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_api_group(group, versions)}


def etag(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32].upper() + '"'


def encode(value: Any) -> bytes:
    return orjson.dumps(value)
