"""The namespace controller: a namespace being deleted is emptied, then finalized.

When a namespace gets a deletionTimestamp the API server marks it Terminating and keeps
it while `kubernetes` is in spec.finalizers. This controller deletes every namespaced
resource inside it (everything discovery offers with the delete verb, custom resources
included; Background propagation, so no orphan finalizers get in the way), reports
progress in the namespace's status conditions with kube's reasons and messages, and
once nothing is left removes `kubernetes` through the `finalize` subresource; the API
server then deletes the namespace.

Pods terminate gracefully: while some may still be in their grace period the namespace
is looked at again after half the longest remaining one (and whenever a pod in it goes).
Items held by finalizers are given 15 s between looks, as kube does.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import ClassVar

from timonel.api.errors import StatusError
from timonel.api.objects import Object, now_rfc3339, parse_rfc3339
from timonel.client.discovery import ServerResources, discover
from timonel.client.resources import NAMESPACES, PODS, Resource
from timonel.client.rest import is_conflict, is_not_found
from timonel.controllers.base import Controller, Requeue
from timonel.controllers.manager import ControllerContext

log = logging.getLogger(__name__)

NAMESPACE_FINALIZER = "kubernetes"
# How long items held by finalizers are given before the next look (kube's estimate).
FINALIZER_ESTIMATE_SECONDS = 15
# kube waits 5 s so that every API server of an HA control plane has seen the deletion;
# one API server in front of one store needs only in-flight creates to land.
DEFAULT_DELETION_GRACE_PERIOD = 1.0

DISCOVERY_FAILURE = "NamespaceDeletionDiscoveryFailure"
GV_PARSING_FAILURE = "NamespaceDeletionGVParsingFailure"
CONTENT_FAILURE = "NamespaceDeletionContentFailure"
CONTENT_REMAINING = "NamespaceContentRemaining"
FINALIZERS_REMAINING = "NamespaceFinalizersRemaining"
CONDITION_TYPES = (
    DISCOVERY_FAILURE,
    GV_PARSING_FAILURE,
    CONTENT_FAILURE,
    CONTENT_REMAINING,
    FINALIZERS_REMAINING,
)
# The condition each type shows when nothing is wrong: (reason, message).
OK_CONDITIONS = {
    DISCOVERY_FAILURE: ("ResourcesDiscovered", "All resources successfully discovered"),
    GV_PARSING_FAILURE: ("ParsedGroupVersions", "All legacy kube types successfully parsed"),
    CONTENT_FAILURE: (
        "ContentDeleted",
        "All content successfully deleted, may be waiting on finalization",
    ),
    CONTENT_REMAINING: ("ContentRemoved", "All content successfully removed"),
    FINALIZERS_REMAINING: ("ContentHasNoFinalizers", "All content-preserving finalizers finished"),
}


def gvr_string(resource: Resource) -> str:
    """A GroupVersionResource as Go prints it: `apps/v1, Resource=deployments`."""
    return f"{resource.group}/{resource.version}, Resource={resource.plural}"


@dataclass
class ResourceContent:
    """What is left of one resource in the namespace after deleting it."""

    estimate: int = 0
    remaining: int = 0
    finalizers: dict[str, int] = field(default_factory=dict)
    error: str = ""


def summarize_remaining(
    resource: Resource, namespace: str, items: list[Object], estimate: int
) -> ResourceContent:
    """kube's verdict on the items still listed after deleting a resource."""
    if not items:
        return ResourceContent()
    finalizers: dict[str, int] = {}
    for item in items:
        for finalizer in (item.get("metadata") or {}).get("finalizers") or []:
            finalizers[str(finalizer)] = finalizers.get(str(finalizer), 0) + 1
    if estimate:
        return ResourceContent(estimate, len(items), finalizers)
    if finalizers:
        return ResourceContent(FINALIZER_ESTIMATE_SECONDS, len(items), finalizers)
    return ResourceContent(
        0,
        len(items),
        error=f"unexpected items still remain in namespace: {namespace} for gvr: {gvr_string(resource)}",
    )


def estimate_pod_termination(pods: Iterable[Object], deleted_at: datetime, now: datetime) -> int:
    """The longest grace period of the non-terminal pods, or 0 once that long has
    passed since the namespace deletion began."""
    estimate = 0
    for pod in pods:
        if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            continue
        grace = (pod.get("spec") or {}).get("terminationGracePeriodSeconds")
        if isinstance(grace, int) and grace > estimate:
            estimate = grace
    if (now - deleted_at).total_seconds() >= estimate:
        return 0
    return estimate


def failing_conditions(
    *,
    discovery_error: str,
    content_errors: Iterable[str],
    remaining: Mapping[Resource, int],
    finalizers_remaining: Mapping[str, int],
    now: str,
) -> list[Object]:
    """The conditions that report a problem (kube's namespaceConditionUpdater)."""
    conditions: list[Object] = []

    def condition(type_: str, reason: str, message: str) -> None:
        conditions.append(
            {
                "type": type_,
                "status": "True",
                "lastTransitionTime": now,
                "reason": reason,
                "message": message,
            }
        )

    if discovery_error:
        condition(DISCOVERY_FAILURE, "DiscoveryFailed", discovery_error)
    remaining_resources = sorted(
        f"{resource.plural}.{resource.group} has {count} resource instances"
        for resource, count in remaining.items()
        if count
    )
    if remaining_resources:
        condition(
            CONTENT_REMAINING,
            "SomeResourcesRemain",
            f"Some resources are remaining: {', '.join(remaining_resources)}",
        )
    by_finalizer = sorted(
        f"{finalizer} in {count} resource instances"
        for finalizer, count in finalizers_remaining.items()
        if count
    )
    if by_finalizer:
        condition(
            FINALIZERS_REMAINING,
            "SomeFinalizersRemain",
            f"Some content in the namespace has finalizers remaining: {', '.join(by_finalizer)}",
        )
    errors = sorted(content_errors)
    if errors:
        condition(
            CONTENT_FAILURE,
            "ContentDeletionFailed",
            f"Failed to delete all resource types, {len(errors)} remaining: {', '.join(errors)}",
        )
    return conditions


def merge_conditions(
    current: list[Object], failing: list[Object], now: str
) -> tuple[list[Object], bool]:
    """Every deletion condition type present, failing ones as given and the rest in
    their ok form; lastTransitionTime moves only when the status flips. Conditions of
    other types are kept. Returns (conditions, changed)."""
    merged = [dict(c) for c in current]
    changed = False
    by_type = {c.get("type"): c for c in failing}
    for type_ in CONDITION_TYPES:
        wanted = by_type.get(type_)
        if wanted is None:
            reason, message = OK_CONDITIONS[type_]
            wanted = {
                "type": type_,
                "status": "False",
                "lastTransitionTime": now,
                "reason": reason,
                "message": message,
            }
        existing = next((c for c in merged if c.get("type") == type_), None)
        if existing is None:
            merged.append(dict(wanted))
            changed = True
        elif any(existing.get(k) != wanted[k] for k in ("status", "reason", "message")):
            if existing.get("status") != wanted["status"]:
                existing["lastTransitionTime"] = now
            existing.update(
                status=wanted["status"], reason=wanted["reason"], message=wanted["message"]
            )
            changed = True
    return merged, changed


def finalized_spec_finalizers(finalizers: Iterable[str]) -> list[str]:
    """spec.finalizers without ours (sorted, as kube writes them)."""
    return sorted({f for f in finalizers if f != NAMESPACE_FINALIZER})


def discovery_failure_message(resources: ServerResources) -> str:
    if not resources.failed:
        return ""
    return f"Discovery failed for some groups, {len(resources.failed)} failing: {resources.failure_message()}"


class NamespaceController(Controller):
    name: ClassVar[str] = "namespace-controller"
    workers: ClassVar[int] = 5

    def __init__(self, context: ControllerContext) -> None:
        self.namespaces = context.informers.informer(NAMESPACES)
        self.pods = context.informers.informer(PODS)
        super().__init__([self.namespaces])
        self.client = context.client
        self.grace_period = float(
            str(
                context.options.get(
                    "namespace_deletion_grace_period", DEFAULT_DELETION_GRACE_PERIOD
                )
            )
        )
        self.namespaces.add_handlers(
            on_add=self._on_namespace, on_update=lambda _, new: self._on_namespace(new)
        )
        self.pods.add_handlers(on_delete=self._on_pod_deleted)

    def _on_namespace(self, namespace: Object) -> None:
        meta = namespace.get("metadata") or {}
        if meta.get("deletionTimestamp"):
            # Let creates already admitted into the namespace land first.
            self.queue.add_after(str(meta.get("name", "")), self.grace_period)

    def _on_pod_deleted(self, pod: Object) -> None:
        namespace = str((pod.get("metadata") or {}).get("namespace", ""))
        cached = self.namespaces.get(namespace)
        if cached is not None and (cached.get("metadata") or {}).get("deletionTimestamp"):
            self.queue.add_after(namespace, 0.2)

    async def sync(self, key: str) -> None:
        cached = self.namespaces.get(key)
        if cached is None or not (cached.get("metadata") or {}).get("deletionTimestamp"):
            return
        try:
            namespace = await self.client.get(NAMESPACES, key)
        except StatusError as error:
            if is_not_found(error):
                return
            raise
        if not (namespace.get("metadata") or {}).get("deletionTimestamp"):
            return
        terminating = await self._ensure_terminating(namespace)
        if terminating is None or not (terminating.get("spec") or {}).get("finalizers"):
            return
        estimate = await self._delete_all_content(terminating)
        if estimate > 0:
            raise Requeue(estimate / 2)
        await self._finalize(terminating)

    async def _ensure_terminating(self, namespace: Object) -> Object | None:
        name = namespace["metadata"]["name"]
        current: Object | None = namespace
        for _ in range(5):
            if current is None:
                return None
            namespace = current
            if (namespace.get("status") or {}).get("phase") == "Terminating":
                return namespace
            updated = {
                **namespace,
                "status": {**(namespace.get("status") or {}), "phase": "Terminating"},
            }
            try:
                return await self.client.update_status(NAMESPACES, updated)
            except StatusError as error:
                if is_not_found(error):
                    return None
                if not is_conflict(error):
                    raise
            current = await self._reread(namespace)
        raise RuntimeError(f"namespace {name}: status update kept conflicting")

    async def _reread(self, namespace: Object) -> Object | None:
        meta = namespace.get("metadata") or {}
        try:
            latest = await self.client.get(NAMESPACES, meta["name"])
        except StatusError as error:
            if is_not_found(error):
                return None
            raise
        if (latest.get("metadata") or {}).get("uid") != meta.get("uid"):
            raise RuntimeError("namespace uid has changed across retries")
        return latest

    async def _delete_all_content(self, namespace: Object) -> int:
        """Delete everything in the namespace; returns the seconds to wait before
        looking again (0: nothing left). Raises when something could not be deleted."""
        meta = namespace.get("metadata") or {}
        name = str(meta["name"])
        deleted_at = parse_rfc3339(str(meta["deletionTimestamp"]))
        errors: list[str] = []
        discovery_error = ""
        try:
            resources = await discover(self.client)
            discovery_error = discovery_failure_message(resources)
        except StatusError as error:
            resources = ServerResources()
            discovery_error = error.message
        if discovery_error:
            errors.append(discovery_error)
        deletable = [
            entry
            for entry in resources.preferred
            if entry.resource.namespaced and entry.supports("delete")
        ]
        # One resource after another: some share storage (core and events.k8s.io events).
        results = [
            await self._delete_resource(e.resource, e.verbs, name, deleted_at) for e in deletable
        ]
        estimate = 0
        content_errors: list[str] = []
        remaining: dict[Resource, int] = {}
        finalizers: dict[str, int] = {}
        for entry, result in zip(deletable, results, strict=True):
            if result.error:
                content_errors.append(result.error)
            estimate = max(estimate, result.estimate)
            if result.remaining:
                remaining[entry.resource] = result.remaining
                for finalizer, count in result.finalizers.items():
                    finalizers[finalizer] = finalizers.get(finalizer, 0) + count
        errors += content_errors
        now = now_rfc3339()
        failing = failing_conditions(
            discovery_error=discovery_error,
            content_errors=content_errors,
            remaining=remaining,
            finalizers_remaining=finalizers,
            now=now,
        )
        conditions, changed = merge_conditions(
            list((namespace.get("status") or {}).get("conditions") or []), failing, now
        )
        if changed:
            updated = {
                **namespace,
                "status": {**(namespace.get("status") or {}), "conditions": conditions},
            }
            try:
                namespace.update(await self.client.update_status(NAMESPACES, updated))
            except StatusError as error:
                log.info(
                    "%s: couldn't update status condition for namespace %r: %s",
                    self.name,
                    name,
                    error,
                )
        if errors:
            raise RuntimeError("; ".join(errors))
        return estimate

    async def _delete_resource(
        self, resource: Resource, verbs: frozenset[str], namespace: str, deleted_at: datetime
    ) -> ResourceContent:
        try:
            estimate = 0
            if (resource.group, resource.plural) == ("", "pods"):
                pods = await self.client.list_all(PODS, namespace)
                estimate = estimate_pod_termination(
                    pods.get("items") or [], deleted_at, datetime.now(deleted_at.tzinfo)
                )
            collection_deleted = False
            if "deletecollection" in verbs:
                collection_deleted = await self._unsupported_is_false(
                    self.client.delete_collection(
                        resource, namespace, propagation_policy="Background"
                    )
                )
            if not collection_deleted:
                await self._delete_each(resource, verbs, namespace)
            if "list" not in verbs:
                return ResourceContent(estimate)
            listed = await self.client.list_all(resource, namespace)
        except StatusError as error:
            return ResourceContent(error=error.message or str(error))
        return summarize_remaining(resource, namespace, list(listed.get("items") or []), estimate)

    @staticmethod
    async def _unsupported_is_false(call: Awaitable[object]) -> bool:
        """True when the call succeeded, False when the server does not offer it."""
        try:
            await call
        except StatusError as error:
            if error.code in (404, 405):
                return False
            raise
        return True

    async def _delete_each(self, resource: Resource, verbs: frozenset[str], namespace: str) -> None:
        if "list" not in verbs:
            return
        listed = await self.client.list_all(resource, namespace)
        for item in listed.get("items") or []:
            try:
                await self.client.delete(
                    resource, item["metadata"]["name"], namespace, propagation_policy="Background"
                )
            except StatusError as error:
                if error.code not in (404, 405):
                    raise

    async def _finalize(self, namespace: Object) -> None:
        current: Object | None = namespace
        for _ in range(5):
            if current is None:
                return
            spec = current.get("spec") or {}
            finalizers = [str(f) for f in spec.get("finalizers") or []]
            if NAMESPACE_FINALIZER not in finalizers:
                return
            wanted = {
                **current,
                "spec": {**spec, "finalizers": finalized_spec_finalizers(finalizers)},
            }
            try:
                await self.client.update(NAMESPACES, wanted, subresource="finalize")
                return
            except StatusError as error:
                if is_not_found(error):
                    return
                if not is_conflict(error):
                    raise
            current = await self._reread(current)
        raise RuntimeError(f"namespace {namespace['metadata']['name']}: finalize kept conflicting")
