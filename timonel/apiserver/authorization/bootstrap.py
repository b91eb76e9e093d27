"""The RBAC objects every cluster starts with, and their reconciliation at server start.

As kube-apiserver's bootstrap policy: a missing object is created; an existing one whose
`rbac.authorization.kubernetes.io/autoupdate` annotation is not "false" gets back what it
lacks (rules, aggregation selectors, labels, annotations, binding subjects) and keeps
whatever a user added. Roles marked autoupdate "false" are left alone.

Identities:
- `system:masters` (the admin kubeconfig's certificate, the in-process components):
  cluster-admin (and the authorizer lets them through before RBAC);
- `system:authenticated`: discovery, basic-user (self reviews), public-info-viewer;
- `system:nodes` (node agents, remote and simulated, which authenticate with the join
  token or a node certificate): `system:node`, everything a node agent reads and writes.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Final

from timonel.api.objects import Object

log = logging.getLogger(__name__)

GROUP: Final = "rbac.authorization.k8s.io"
API_VERSION: Final = f"{GROUP}/v1"
AUTOUPDATE: Final = "rbac.authorization.kubernetes.io/autoupdate"
BOOTSTRAPPING_LABEL: Final = "kubernetes.io/bootstrapping"
AGGREGATE_TO: Final = "rbac.authorization.k8s.io/aggregate-to-"

READ: Final = ("get", "list", "watch")
WRITE: Final = ("create", "delete", "deletecollection", "patch", "update")


def rule(
    verbs: tuple[str, ...] | list[str],
    groups: tuple[str, ...] | list[str] = ("",),
    resources: tuple[str, ...] | list[str] = (),
    *,
    urls: tuple[str, ...] | list[str] = (),
) -> dict[str, Any]:
    if urls:
        return {"verbs": list(verbs), "nonResourceURLs": list(urls)}
    return {"verbs": list(verbs), "apiGroups": list(groups), "resources": list(resources)}


def _meta(name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "labels": {BOOTSTRAPPING_LABEL: "rbac-defaults", **(labels or {})},
        "annotations": {AUTOUPDATE: "true"},
    }


def cluster_role(
    name: str,
    rules: list[dict[str, Any]],
    *,
    labels: dict[str, str] | None = None,
    aggregate_from: str = "",
) -> Object:
    role: Object = {
        "apiVersion": API_VERSION,
        "kind": "ClusterRole",
        "metadata": _meta(name, labels),
        "rules": rules,
    }
    if aggregate_from:
        role["aggregationRule"] = {
            "clusterRoleSelectors": [{"matchLabels": {f"{AGGREGATE_TO}{aggregate_from}": "true"}}]
        }
    return role


def cluster_role_binding(name: str, role: str, groups: tuple[str, ...]) -> Object:
    return {
        "apiVersion": API_VERSION,
        "kind": "ClusterRoleBinding",
        "metadata": _meta(name),
        "roleRef": {"apiGroup": GROUP, "kind": "ClusterRole", "name": role},
        "subjects": [{"apiGroup": GROUP, "kind": "Group", "name": g} for g in groups],
    }


_VIEW_RULES = [
    rule(
        READ,
        [""],
        [
            "configmaps",
            "endpoints",
            "persistentvolumeclaims",
            "persistentvolumeclaims/status",
            "pods",
            "replicationcontrollers",
            "replicationcontrollers/scale",
            "serviceaccounts",
            "services",
            "services/status",
        ],
    ),
    rule(
        READ,
        [""],
        [
            "bindings",
            "events",
            "limitranges",
            "namespaces/status",
            "pods/log",
            "pods/status",
            "replicationcontrollers/status",
            "resourcequotas",
            "resourcequotas/status",
        ],
    ),
    rule(READ, [""], ["namespaces"]),
    rule(READ, ["discovery.k8s.io"], ["endpointslices"]),
    rule(
        READ,
        ["apps"],
        [
            "controllerrevisions",
            "daemonsets",
            "daemonsets/status",
            "deployments",
            "deployments/scale",
            "deployments/status",
            "replicasets",
            "replicasets/scale",
            "replicasets/status",
            "statefulsets",
            "statefulsets/scale",
            "statefulsets/status",
        ],
    ),
    rule(READ, ["autoscaling"], ["horizontalpodautoscalers", "horizontalpodautoscalers/status"]),
    rule(READ, ["batch"], ["cronjobs", "cronjobs/status", "jobs", "jobs/status"]),
    rule(READ, ["policy"], ["poddisruptionbudgets", "poddisruptionbudgets/status"]),
    rule(READ, ["networking.k8s.io"], ["ingresses", "ingresses/status", "networkpolicies"]),
    rule(READ, ["events.k8s.io"], ["events"]),
]

_EDIT_RULES = [
    rule(
        READ,
        [""],
        ["pods/attach", "pods/exec", "pods/portforward", "pods/proxy", "secrets", "services/proxy"],
    ),
    rule(["impersonate"], [""], ["serviceaccounts"]),
    rule(WRITE, [""], ["pods", "pods/attach", "pods/exec", "pods/portforward", "pods/proxy"]),
    rule(["create"], [""], ["pods/eviction"]),
    rule(
        WRITE,
        [""],
        [
            "configmaps",
            "events",
            "persistentvolumeclaims",
            "replicationcontrollers",
            "replicationcontrollers/scale",
            "secrets",
            "serviceaccounts",
            "services",
            "services/proxy",
        ],
    ),
    rule(["create"], [""], ["serviceaccounts/token"]),
    rule(
        WRITE,
        ["apps"],
        [
            "daemonsets",
            "deployments",
            "deployments/rollback",
            "deployments/scale",
            "replicasets",
            "replicasets/scale",
            "statefulsets",
            "statefulsets/scale",
        ],
    ),
    rule(WRITE, ["autoscaling"], ["horizontalpodautoscalers"]),
    rule(WRITE, ["batch"], ["cronjobs", "jobs"]),
    rule(WRITE, ["networking.k8s.io"], ["ingresses", "networkpolicies"]),
    rule(WRITE, ["policy"], ["poddisruptionbudgets"]),
]

_ADMIN_RULES = [
    rule(["create"], ["authorization.k8s.io"], ["localsubjectaccessreviews"]),
    rule((*WRITE, *READ), [GROUP], ["rolebindings", "roles"]),
]

# What a node agent (kubelet, proxy, DNS, network policy, simulated nodes) does through
# the API; the join token is shared by all nodes, so this is not narrowed per node.
NODE_RULES = [
    rule((*READ, "create", "update", "patch", "delete"), [""], ["nodes"]),
    rule(["get", "update", "patch"], [""], ["nodes/status"]),
    rule((*READ, "create", "delete"), [""], ["pods"]),
    rule(["get", "update", "patch"], [""], ["pods/status"]),
    rule(["create"], [""], ["pods/eviction"]),
    rule(["create", "update", "patch"], ["", "events.k8s.io"], ["events"]),
    rule(
        READ,
        [""],
        [
            "configmaps",
            "secrets",
            "services",
            "namespaces",
            "serviceaccounts",
            "persistentvolumes",
            "persistentvolumeclaims",
        ],
    ),
    rule(["get", "update", "patch"], [""], ["persistentvolumeclaims/status"]),
    rule(["create"], [""], ["serviceaccounts/token"]),
    rule((*READ, "create", "update", "patch", "delete"), [""], ["endpoints"]),
    rule((*READ, "create", "update", "patch", "delete"), ["discovery.k8s.io"], ["endpointslices"]),
    rule((*READ, "create", "update", "patch", "delete"), ["coordination.k8s.io"], ["leases"]),
    rule(READ, ["networking.k8s.io"], ["networkpolicies"]),
    rule(["get", "post"], urls=["/v1-timonel/serving-kubelet.crt"]),
]

_DISCOVERY_URLS = (
    "/api",
    "/api/*",
    "/apis",
    "/apis/*",
    "/healthz",
    "/livez",
    "/openapi",
    "/openapi/*",
    "/readyz",
    "/version",
    "/version/",
)
_PUBLIC_INFO_URLS = ("/healthz", "/livez", "/readyz", "/version", "/version/")


def bootstrap_objects() -> list[tuple[str, Object]]:
    """(plural, object) for every bootstrap ClusterRole, then every ClusterRoleBinding."""
    roles = [
        cluster_role(
            "cluster-admin",
            [rule(["*"], ["*"], ["*"]), rule(["*"], urls=["*"])],
        ),
        cluster_role("admin", [], labels={}, aggregate_from="admin"),
        cluster_role("edit", [], labels={f"{AGGREGATE_TO}admin": "true"}, aggregate_from="edit"),
        cluster_role("view", [], labels={f"{AGGREGATE_TO}edit": "true"}, aggregate_from="view"),
        cluster_role(
            "system:aggregate-to-admin", _ADMIN_RULES, labels={f"{AGGREGATE_TO}admin": "true"}
        ),
        cluster_role(
            "system:aggregate-to-edit", _EDIT_RULES, labels={f"{AGGREGATE_TO}edit": "true"}
        ),
        cluster_role(
            "system:aggregate-to-view", _VIEW_RULES, labels={f"{AGGREGATE_TO}view": "true"}
        ),
        cluster_role("system:discovery", [rule(["get"], urls=_DISCOVERY_URLS)]),
        cluster_role(
            "system:basic-user",
            [
                rule(
                    ["create"],
                    ["authorization.k8s.io"],
                    ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                ),
                rule(["create"], ["authentication.k8s.io"], ["selfsubjectreviews"]),
            ],
        ),
        cluster_role("system:public-info-viewer", [rule(["get"], urls=_PUBLIC_INFO_URLS)]),
        cluster_role("system:node", NODE_RULES),
    ]
    bindings = [
        cluster_role_binding("cluster-admin", "cluster-admin", ("system:masters",)),
        cluster_role_binding("system:discovery", "system:discovery", ("system:authenticated",)),
        cluster_role_binding("system:basic-user", "system:basic-user", ("system:authenticated",)),
        cluster_role_binding(
            "system:public-info-viewer",
            "system:public-info-viewer",
            ("system:authenticated", "system:unauthenticated"),
        ),
        cluster_role_binding("system:node", "system:node", ("system:nodes",)),
    ]
    return [("clusterroles", r) for r in roles] + [("clusterrolebindings", b) for b in bindings]


def _autoupdate(existing: Object) -> bool:
    annotations = (existing.get("metadata") or {}).get("annotations") or {}
    return annotations.get(AUTOUPDATE) != "false"


def _merge_missing(into: list[Any], wanted: list[Any]) -> bool:
    changed = False
    for item in wanted:
        if item not in into:
            into.append(item)
            changed = True
    return changed


def reconcile(existing: Object, wanted: Object) -> Object | None:
    """`existing` with what it lacks of `wanted` added back, or None when nothing is
    missing (or the object opted out of updates)."""
    if not _autoupdate(existing):
        return None
    updated = copy.deepcopy(existing)
    changed = False
    meta = updated.setdefault("metadata", {})
    for field_name in ("labels", "annotations"):
        current = meta.get(field_name) or {}
        for key, value in (wanted["metadata"].get(field_name) or {}).items():
            if key not in current:
                current[key] = value
                changed = True
        if current:
            meta[field_name] = current
    if updated.get("kind") == "ClusterRole":
        rules = updated.get("rules") or []
        # An aggregated role's rules come from the roles it selects, not from here.
        if "aggregationRule" not in wanted:
            changed |= _merge_missing(rules, wanted.get("rules") or [])
        updated["rules"] = rules
        if "aggregationRule" in wanted:
            selectors = (updated.get("aggregationRule") or {}).get("clusterRoleSelectors") or []
            changed |= _merge_missing(selectors, wanted["aggregationRule"]["clusterRoleSelectors"])
            updated["aggregationRule"] = {"clusterRoleSelectors": selectors}
    else:
        subjects = updated.get("subjects") or []
        changed |= _merge_missing(subjects, wanted.get("subjects") or [])
        updated["subjects"] = subjects
    return updated if changed else None


# (method, path, body) -> (status, body), through the API as the server's own identity.
Request = Callable[[str, str, Any], Awaitable[tuple[int, Any]]]


async def ensure_bootstrap_policy(request: Request) -> None:
    """Create or reconcile the bootstrap roles and bindings (see the module docstring)."""
    for plural, wanted in bootstrap_objects():
        path = f"/apis/{GROUP}/v1/{plural}"
        name = wanted["metadata"]["name"]
        status, current = await request("GET", f"{path}/{name}", None)
        if status == 404:
            status, body = await request("POST", path, wanted)
            if status >= 300 and status != 409:
                log.warning("cannot create %s %s: %s", plural, name, body)
            continue
        if status != 200 or not isinstance(current, dict):
            log.warning("cannot read %s %s: %s", plural, name, current)
            continue
        if plural == "clusterrolebindings" and current.get("roleRef") != wanted["roleRef"]:
            # roleRef cannot change: replace the binding, as kube-apiserver's reconcile does.
            if _autoupdate(current):
                await request("DELETE", f"{path}/{name}", None)
                await request("POST", path, wanted)
            continue
        updated = reconcile(current, wanted)
        if updated is not None:
            status, body = await request("PUT", f"{path}/{name}", updated)
            if status >= 300:
                log.warning("cannot reconcile %s %s: %s", plural, name, body)
