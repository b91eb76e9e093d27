"""The garbage collector: objects whose owners are gone go too.

Every resource the server serves with list, watch and delete (custom resources included,
re-discovered periodically and whenever a CRD changes) is watched; the informer events
build a dependency graph, uid → node (identity, owner references, dependents). Owners
named by a reference but not observed yet are *virtual* nodes until an informer shows
them or the API confirms they do not exist.

Two kinds of work go through the queue, keyed by uid:

- `delete/UID`: look at the live object. If it is an owner deleting in the foreground
  (deletionTimestamp + `foregroundDeletion`), remove the finalizer once no dependent with
  `blockOwnerDeletion` remains, else push those dependents. Otherwise classify each owner
  reference by asking the API (never the cache): *solid* (owner exists), *dangling*
  (absent, or another object under that name), *waiting* (owner deleting in the
  foreground). With a solid owner the dangling and waiting references are removed; with
  none the object is deleted (in the foreground when a waiting owner needs it gone and it
  has dependents of its own; otherwise with the policy its finalizers ask for).
- `orphan/UID`: an owner deleted with the `orphan` finalizer: remove its reference from
  every dependent, then remove the finalizer.

A namespaced owner is looked up in the dependent's namespace, so a reference across
namespaces counts as dangling; a cluster-scoped dependent naming a namespaced owner is
invalid and left alone. The decisions are pure functions (`plan_collection`, the patch
builders) and the graph does no I/O; `GarbageCollector` is the shell around them.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, ClassVar

from timonel.api.errors import StatusError
from timonel.api.objects import Object
from timonel.client.discovery import RestMapper, ServerResources, discover
from timonel.client.informer import Informer
from timonel.client.resources import CUSTOMRESOURCEDEFINITIONS, Resource
from timonel.client.rest import MERGE_PATCH, is_conflict, is_not_found
from timonel.controllers.base import Controller, Requeue
from timonel.controllers.manager import ControllerContext

log = logging.getLogger(__name__)

FOREGROUND_FINALIZER = "foregroundDeletion"
ORPHAN_FINALIZER = "orphan"
# Events are never owners worth tracking and churn too much (kube ignores them too).
IGNORED_RESOURCES = frozenset({("", "events"), ("events.k8s.io", "events")})
ABSENT_OWNER_CACHE_SIZE = 500
UPDATE_RETRIES = 5


# -- identities and the graph ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OwnerReference:
    api_version: str
    kind: str
    name: str
    uid: str
    controller: bool = False
    block_owner_deletion: bool = False

    @classmethod
    def parse(cls, ref: Any) -> OwnerReference | None:
        if not isinstance(ref, dict) or not ref.get("uid"):
            return None
        return cls(
            str(ref.get("apiVersion", "")),
            str(ref.get("kind", "")),
            str(ref.get("name", "")),
            str(ref["uid"]),
            ref.get("controller") is True,
            ref.get("blockOwnerDeletion") is True,
        )

    def same_coordinates(self, identity: Identity) -> bool:
        return (self.api_version, self.kind, self.name, self.uid) == (
            identity.api_version,
            identity.kind,
            identity.name,
            identity.uid,
        )


def owner_references(obj: Object) -> tuple[OwnerReference, ...]:
    refs = (
        OwnerReference.parse(r) for r in (obj.get("metadata") or {}).get("ownerReferences") or []
    )
    return tuple(r for r in refs if r is not None)


@dataclass(frozen=True, slots=True)
class Identity:
    """Which object a node stands for (kube's objectReference)."""

    api_version: str
    kind: str
    name: str
    uid: str
    namespace: str = ""

    @classmethod
    def of_reference(cls, ref: OwnerReference, namespace: str) -> Identity:
        return cls(ref.api_version, ref.kind, ref.name, ref.uid, namespace)

    def sort_key(self) -> tuple[str, str, str, str, str]:
        return (self.kind, self.api_version, self.namespace, self.name, self.uid)


def _being_deleted(obj: Object) -> bool:
    return bool((obj.get("metadata") or {}).get("deletionTimestamp"))


def _finalizers(obj: Object) -> list[str]:
    return [str(f) for f in (obj.get("metadata") or {}).get("finalizers") or []]


def deletion_starts_with(old: Object | None, new: Object, finalizer: str) -> bool:
    """True when `new` is being deleted with `finalizer` and `old` was not."""
    if not _being_deleted(new) or finalizer not in _finalizers(new):
        return False
    return old is None or not _being_deleted(old) or finalizer not in _finalizers(old)


def same_collection_metadata(old: Object, new: Object) -> bool:
    """Whether two states of an object agree on all the collector reads of it: uid,
    owner references, finalizers and deletion."""
    old_meta = old.get("metadata") or {}
    new_meta = new.get("metadata") or {}
    return (
        old_meta.get("uid") == new_meta.get("uid")
        and old_meta.get("ownerReferences") == new_meta.get("ownerReferences")
        and old_meta.get("finalizers") == new_meta.get("finalizers")
        and bool(old_meta.get("deletionTimestamp")) == bool(new_meta.get("deletionTimestamp"))
    )


@dataclass(eq=False)
class Node:
    identity: Identity
    owners: tuple[OwnerReference, ...] = ()
    dependents: set[str] = field(default_factory=set)
    observed: bool = True
    being_deleted: bool = False
    deleting_dependents: bool = False

    @property
    def uid(self) -> str:
        return self.identity.uid


@dataclass
class GraphWork:
    """What a graph change asks the collector to look at (uids)."""

    attempt_to_delete: list[str] = field(default_factory=list)
    attempt_to_orphan: list[str] = field(default_factory=list)
    # Virtual nodes given another identity to verify, to look at again after a pause.
    attempt_to_delete_later: list[str] = field(default_factory=list)


class AbsentOwnerCache:
    """Owners the API confirmed absent (least recently used ones forgotten first)."""

    def __init__(self, size: int = ABSENT_OWNER_CACHE_SIZE) -> None:
        self.size = size
        self._entries: OrderedDict[Identity, None] = OrderedDict()

    def add(self, identity: Identity) -> None:
        self._entries[identity] = None
        self._entries.move_to_end(identity)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def __contains__(self, identity: object) -> bool:
        if identity in self._entries:
            assert isinstance(identity, Identity)
            self._entries.move_to_end(identity)
            return True
        return False


def references_diff(
    old: Iterable[OwnerReference], new: Iterable[OwnerReference]
) -> tuple[list[OwnerReference], list[OwnerReference], list[tuple[OwnerReference, OwnerReference]]]:
    """(added, removed, changed) owner references, matched by uid."""
    old_by_uid = {ref.uid: ref for ref in old}
    added: list[OwnerReference] = []
    changed: list[tuple[OwnerReference, OwnerReference]] = []
    seen: set[str] = set()
    for ref in new:
        previous = old_by_uid.get(ref.uid)
        if previous is None:
            added.append(ref)
        elif previous != ref:
            changed.append((previous, ref))
        seen.add(ref.uid)
    removed = [ref for uid, ref in old_by_uid.items() if uid not in seen]
    return added, removed, changed


class DependencyGraph:
    """The owner/dependent graph kept from informer events. Pure: every change returns
    the `GraphWork` it implies."""

    def __init__(self) -> None:
        self.nodes: dict[str, Node] = {}
        self.absent = AbsentOwnerCache()

    def get(self, uid: str) -> Node | None:
        return self.nodes.get(uid)

    def dependents(self, node: Node) -> list[Node]:
        return [self.nodes[uid] for uid in sorted(node.dependents) if uid in self.nodes]

    def blocking_dependents(self, node: Node) -> list[Node]:
        """Dependents whose reference to `node` blocks its foreground deletion."""
        return [
            dep
            for dep in self.dependents(node)
            if any(ref.uid == node.uid and ref.block_owner_deletion for ref in dep.owners)
        ]

    # informer events

    def observe(self, api_version: str, kind: str, old: Object | None, new: Object) -> GraphWork:
        """An object was added or updated."""
        work = GraphWork()
        meta = new.get("metadata") or {}
        uid = str(meta.get("uid") or "")
        if not uid:
            return work
        existing = self.nodes.get(uid)
        if (
            old is not None
            and existing is not None
            and existing.observed
            and existing.identity.api_version == api_version
            and existing.identity.kind == kind
            and same_collection_metadata(old, new)
        ):
            # Most updates (a Lease renewal, a status write) leave what the graph holds
            # as it is: nothing to parse, nothing to do.
            return work
        identity = Identity(
            api_version, kind, str(meta.get("name", "")), uid, str(meta.get("namespace") or "")
        )
        owners = owner_references(new)
        if existing is not None and not existing.observed:
            if existing.identity != identity:
                # Dependents that named this owner differently may hold a bad reference.
                _, mismatched = self._partition_dependents(existing, identity)
                work.attempt_to_delete += [dep.uid for dep in mismatched]
                existing.identity = identity
            existing.observed = True
        if existing is None:
            node = Node(
                identity,
                owners,
                being_deleted=_being_deleted(new),
                deleting_dependents=_being_deleted(new)
                and FOREGROUND_FINALIZER in _finalizers(new),
            )
            self.nodes[uid] = node
            self._add_dependent_to_owners(node, owners, work)
            self._transitions(old, new, node, work)
            return work
        if (existing.identity.api_version, existing.identity.kind) != (api_version, kind):
            existing.identity = identity
        added, removed, changed = references_diff(existing.owners, owners)
        if added or removed or changed:
            self._unblocked_owners(removed, changed, work)
            existing.owners = owners
            self._add_dependent_to_owners(existing, added, work)
            self._remove_dependent_from_owners(existing, removed)
        if _being_deleted(new):
            existing.being_deleted = True
        self._transitions(old, new, existing, work)
        return work

    def remove(self, api_version: str, kind: str, obj: Object) -> GraphWork:
        """An object was deleted (seen by an informer)."""
        meta = obj.get("metadata") or {}
        uid = str(meta.get("uid") or "")
        existing = self.nodes.get(uid)
        if existing is None:
            return GraphWork()
        identity = Identity(
            api_version, kind, str(meta.get("name", "")), uid, str(meta.get("namespace") or "")
        )
        return self._remove_node(existing, identity)

    def virtual_delete(self, identity: Identity) -> GraphWork:
        """The API says `identity` does not exist (or is another object now)."""
        work = GraphWork()
        existing = self.nodes.get(identity.uid)
        if existing is None:
            return work
        if not existing.observed:
            matching, mismatched = self._partition_dependents(existing, identity)
            if mismatched:
                # Some dependents name this uid differently: only the confirmed identity
                # is absent; keep the node to verify the other names.
                if matching:
                    self.absent.add(identity)
                    work.attempt_to_delete += [dep.uid for dep in matching]
                if existing.identity == identity:
                    alternate = self._alternate_identity(mismatched, identity)
                    if alternate is not None:
                        existing.identity = alternate
                        work.attempt_to_delete_later.append(existing.uid)
                return work
        elif existing.identity != identity:
            matching, _ = self._partition_dependents(existing, identity)
            if matching:
                self.absent.add(identity)
                work.attempt_to_delete += [dep.uid for dep in matching]
            return work
        return self._remove_node(existing, identity)

    # internals

    def _remove_node(self, node: Node, identity: Identity) -> GraphWork:
        work = GraphWork()
        self.nodes.pop(node.uid, None)
        self._remove_dependent_from_owners(node, node.owners)
        if node.dependents:
            self.absent.add(identity)
        work.attempt_to_delete += sorted(node.dependents)
        for ref in node.owners:
            owner = self.nodes.get(ref.uid)
            if owner is not None and owner.deleting_dependents:
                # Its last blocking dependent may be gone now.
                work.attempt_to_delete.append(owner.uid)
        return work

    def _add_dependent_to_owners(
        self, node: Node, owners: Iterable[OwnerReference], work: GraphWork
    ) -> None:
        suspicious = False
        for ref in owners:
            owner = self.nodes.get(ref.uid)
            if owner is None:
                owner = Node(Identity.of_reference(ref, node.identity.namespace), observed=False)
                self.nodes[ref.uid] = owner
                owner.dependents.add(node.uid)
                # Verify the owner exists; a virtual delete removes it if not.
                work.attempt_to_delete.append(owner.uid)
                continue
            owner.dependents.add(node.uid)
            if suspicious:
                continue
            owner_namespace = owner.identity.namespace
            if owner_namespace and owner_namespace != node.identity.namespace:
                suspicious = True  # a namespaced owner in another namespace
            elif not ref.same_coordinates(owner.identity):
                suspicious = True
            elif not owner_namespace and node.identity.namespace != "" and not owner.observed:
                # Possibly a namespaced owner wrongly named from a cluster-scoped object.
                suspicious = True
        if suspicious:
            work.attempt_to_delete.append(node.uid)

    def _remove_dependent_from_owners(self, node: Node, owners: Iterable[OwnerReference]) -> None:
        for ref in owners:
            owner = self.nodes.get(ref.uid)
            if owner is not None:
                owner.dependents.discard(node.uid)

    def _unblocked_owners(
        self,
        removed: list[OwnerReference],
        changed: list[tuple[OwnerReference, OwnerReference]],
        work: GraphWork,
    ) -> None:
        """Owners waiting for dependents may proceed once a blocking reference goes."""
        unblocked = [ref for ref in removed if ref.block_owner_deletion]
        unblocked += [
            new for old, new in changed if old.block_owner_deletion and not new.block_owner_deletion
        ]
        for ref in unblocked:
            if ref.uid in self.nodes:
                work.attempt_to_delete.append(ref.uid)

    def _transitions(self, old: Object | None, new: Object, node: Node, work: GraphWork) -> None:
        if deletion_starts_with(old, new, ORPHAN_FINALIZER):
            work.attempt_to_orphan.append(node.uid)
            return
        if deletion_starts_with(old, new, FOREGROUND_FINALIZER):
            node.deleting_dependents = True
            work.attempt_to_delete += sorted(node.dependents)
            work.attempt_to_delete.append(node.uid)

    def _partition_dependents(
        self, node: Node, identity: Identity
    ) -> tuple[list[Node], list[Node]]:
        """Dependents whose reference to `identity.uid` matches `identity`, and those
        with one that does not (a dependent can be in both)."""
        matching: list[Node] = []
        mismatched: list[Node] = []
        for dep in self.dependents(node):
            found_match = found_mismatch = False
            if identity.namespace and identity.namespace != dep.identity.namespace:
                found_mismatch = True
            else:
                for ref in dep.owners:
                    if ref.uid == identity.uid:
                        if ref.same_coordinates(identity):
                            found_match = True
                        else:
                            found_mismatch = True
            if found_match:
                matching.append(dep)
            if found_mismatch:
                mismatched.append(dep)
        return matching, mismatched

    @staticmethod
    def _alternate_identity(dependents: list[Node], absent: Identity) -> Identity | None:
        """Another identity the dependents give this uid: the first one after `absent`
        in a stable order, else the first one."""
        cluster_scoped = not absent.namespace
        seen = {absent}
        candidates: list[Identity] = []
        for dep in dependents:
            for ref in dep.owners:
                if ref.uid != absent.uid:
                    continue
                if ref.same_coordinates(absent) and (
                    cluster_scoped or absent.namespace == dep.identity.namespace
                ):
                    continue
                candidate = Identity.of_reference(ref, dep.identity.namespace)
                if cluster_scoped and (candidate.api_version, candidate.kind) == (
                    absent.api_version,
                    absent.kind,
                ):
                    candidate = Identity.of_reference(ref, "")
                if candidate not in seen:
                    seen.add(candidate)
                    candidates.append(candidate)
        if not candidates:
            return None
        candidates.sort(key=Identity.sort_key)
        following = [c for c in candidates if c.sort_key() > absent.sort_key()]
        return following[0] if following else candidates[0]


# -- decisions -------------------------------------------------------------------------


class OwnerState(Enum):
    SOLID = "solid"  # the owner exists and is not deleting in the foreground
    DANGLING = "dangling"  # the owner does not exist (or another object has its name)
    WAITING = "waiting"  # the owner is being deleted in the foreground, waiting for us


class CollectionAction(Enum):
    KEEP = "keep"
    REMOVE_REFERENCES = "remove-references"
    DELETE = "delete"


@dataclass(frozen=True)
class CollectionPlan:
    action: CollectionAction
    remove_owner_uids: tuple[str, ...] = ()
    propagation_policy: str = ""
    # Make our own owner references non-blocking first (breaks foreground cycles).
    unblock_first: bool = False


def plan_collection(
    finalizers: Iterable[str],
    owners: Iterable[tuple[OwnerReference, OwnerState]],
    *,
    has_dependents: bool,
    a_dependent_deletes_dependents: bool,
) -> CollectionPlan:
    """What to do with an object whose owner references were classified."""
    states = list(owners)
    solid = [ref for ref, state in states if state is OwnerState.SOLID]
    dangling = [ref for ref, state in states if state is OwnerState.DANGLING]
    waiting = [ref for ref, state in states if state is OwnerState.WAITING]
    if solid:
        if not dangling and not waiting:
            return CollectionPlan(CollectionAction.KEEP)
        # Waiting owners must not wait for us forever: drop those references too.
        uids = tuple(ref.uid for ref in dangling + waiting)
        return CollectionPlan(CollectionAction.REMOVE_REFERENCES, remove_owner_uids=uids)
    if waiting and has_dependents:
        return CollectionPlan(
            CollectionAction.DELETE,
            propagation_policy="Foreground",
            unblock_first=a_dependent_deletes_dependents,
        )
    finalizer_set = set(finalizers)
    if ORPHAN_FINALIZER in finalizer_set:
        policy = "Orphan"
    elif FOREGROUND_FINALIZER in finalizer_set:
        policy = "Foreground"
    else:
        policy = "Background"
    return CollectionPlan(CollectionAction.DELETE, propagation_policy=policy)


def _resource_version(obj: Object) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion", ""))


def remove_owner_references_patch(obj: Object, owner_uids: Iterable[str]) -> Object | None:
    """A JSON merge patch (guarded by resourceVersion) dropping the references to
    `owner_uids`, or None when there are none."""
    remove = set(owner_uids)
    refs = list((obj.get("metadata") or {}).get("ownerReferences") or [])
    kept = [ref for ref in refs if not (isinstance(ref, dict) and ref.get("uid") in remove)]
    if len(kept) == len(refs):
        return None
    return {
        "metadata": {"resourceVersion": _resource_version(obj), "ownerReferences": kept or None}
    }


def unblock_owner_references_patch(obj: Object) -> Object | None:
    """A JSON merge patch setting blockOwnerDeletion false on every reference."""
    refs = list((obj.get("metadata") or {}).get("ownerReferences") or [])
    if not any(isinstance(ref, dict) and ref.get("blockOwnerDeletion") is True for ref in refs):
        return None
    unblocked = [
        {**ref, "blockOwnerDeletion": False}
        if isinstance(ref, dict) and ref.get("blockOwnerDeletion")
        else ref
        for ref in refs
    ]
    return {"metadata": {"resourceVersion": _resource_version(obj), "ownerReferences": unblocked}}


def remove_finalizer_patch(obj: Object, finalizer: str) -> Object | None:
    finalizers = _finalizers(obj)
    if finalizer not in finalizers:
        return None
    kept = [f for f in finalizers if f != finalizer]
    return {"metadata": {"resourceVersion": _resource_version(obj), "finalizers": kept or None}}


def deletable_resources(resources: ServerResources) -> set[Resource]:
    return {
        resource
        for resource in resources.preferred_supporting("delete", "list", "watch")
        if (resource.group, resource.plural) not in IGNORED_RESOURCES
    }


# -- the controller --------------------------------------------------------------------


class UnknownKind(Exception):
    def __init__(self, api_version: str, kind: str) -> None:
        super().__init__(f"no resource serves {kind} in {api_version or 'v1'}")


class NamespacedOwnerOfClusterScopedObject(Exception):
    """Will not resolve by retrying: the reference is ignored."""


class GarbageCollector(Controller):
    name: ClassVar[str] = "garbage-collector-controller"
    workers: ClassVar[int] = 10

    def __init__(self, context: ControllerContext) -> None:
        super().__init__([])
        self.client = context.client
        self.factory = context.informers
        self.graph = DependencyGraph()
        self.mapper = RestMapper(ServerResources())
        self.discovery_period = float(str(context.options.get("gc_discovery_period", 30.0)))
        self.initial_sync_timeout = float(str(context.options.get("gc_initial_sync_timeout", 30.0)))
        self._monitors: dict[Resource, Informer] = {}
        self._rediscover = asyncio.Event()
        self._virtual_retries: dict[str, int] = {}
        crds = context.informers.informer(CUSTOMRESOURCEDEFINITIONS)
        crds.add_handlers(
            on_add=lambda _: self._rediscover.set(),
            on_update=lambda _old, _new: self._rediscover.set(),
            on_delete=lambda _: self._rediscover.set(),
        )

    # monitors

    async def run(self, workers: int = 1) -> None:
        backoff = 0.2
        while True:
            try:
                await self.sync_monitors()
                break
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("%s: discovery failed: %s; retrying", self.name, exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
        try:
            await asyncio.wait_for(
                asyncio.gather(*(m.synced.wait() for m in self._monitors.values())),
                self.initial_sync_timeout,
            )
        except TimeoutError:
            log.warning("%s: not all resource monitors synced; proceeding", self.name)
        rediscovery = asyncio.create_task(self._rediscover_forever(), name="gc-discovery")
        try:
            await super().run(workers)
        finally:
            rediscovery.cancel()

    async def sync_monitors(self) -> None:
        """Discover the deletable resources and watch every one not watched yet."""
        resources = await discover(self.client)
        if resources.failed:
            log.info("%s: %s", self.name, resources.failure_message())
        self.mapper = RestMapper(resources)
        for resource in sorted(deletable_resources(resources), key=lambda r: (r.group, r.plural)):
            if resource not in self._monitors:
                self._monitor(resource)

    def _monitor(self, resource: Resource) -> None:
        informer = self.factory.informer(resource)
        api_version, kind = resource.api_version, resource.kind
        informer.add_handlers(
            on_add=lambda obj: self._enqueue(self.graph.observe(api_version, kind, None, obj)),
            on_update=lambda old, new: self._enqueue(
                self.graph.observe(api_version, kind, old, new)
            ),
            on_delete=lambda obj: self._enqueue(self.graph.remove(api_version, kind, obj)),
        )
        self._monitors[resource] = informer
        # A shared informer may have listed already: the graph needs what it holds.
        for obj in informer.all():
            self._enqueue(self.graph.observe(api_version, kind, None, obj))

    async def _rediscover_forever(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._rediscover.wait(), self.discovery_period)
                # A changed CRD is served a moment after it is stored: look twice.
                delays: tuple[float, ...] = (0.5, 2.0)
            except TimeoutError:
                delays = (0.0,)
            self._rediscover.clear()
            for delay in delays:
                await asyncio.sleep(delay)
                try:
                    await self.sync_monitors()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.warning("%s: rediscovery failed: %s", self.name, exc)

    def _enqueue(self, work: GraphWork) -> None:
        for uid in work.attempt_to_delete:
            self.queue.add(f"delete/{uid}")
        for uid in work.attempt_to_orphan:
            self.queue.add(f"orphan/{uid}")
        for uid in work.attempt_to_delete_later:
            self.queue.add_after(f"delete/{uid}", 1.0)

    # work

    async def sync(self, key: str) -> None:
        verb, _, uid = key.partition("/")
        if verb == "orphan":
            await self.attempt_to_orphan(uid)
        else:
            await self.attempt_to_delete(uid)

    def _resource(self, api_version: str, kind: str) -> Resource:
        resource = self.mapper.resource_for(api_version, kind)
        if resource is None:
            raise UnknownKind(api_version, kind)
        return resource

    async def _get_live(self, identity: Identity) -> tuple[Resource, Object | None]:
        """The live object `identity` names, or None when it is gone or replaced."""
        resource = self._resource(identity.api_version, identity.kind)
        if resource.namespaced and not identity.namespace:
            # Only a cluster-scoped dependent names a namespaced owner without a namespace.
            raise NamespacedOwnerOfClusterScopedObject()
        namespace = identity.namespace if resource.namespaced else ""
        try:
            live = await self.client.get(resource, identity.name, namespace)
        except StatusError as error:
            if is_not_found(error):
                return resource, None
            raise
        if (live.get("metadata") or {}).get("uid") != identity.uid:
            return resource, None
        return resource, live

    async def attempt_to_delete(self, uid: str) -> None:
        node = self.graph.get(uid)
        if node is None:
            self._virtual_retries.pop(uid, None)
            return
        if node.being_deleted and not node.deleting_dependents:
            return  # on its way; its dependents are looked at once it is gone
        identity = node.identity
        try:
            resource, live = await self._get_live(identity)
        except NamespacedOwnerOfClusterScopedObject:
            return  # will not resolve by retrying
        if live is None:
            self._virtual_retries.pop(uid, None)
            self._enqueue(self.graph.virtual_delete(identity))
            return
        if node.deleting_dependents:
            await self._process_deleting_dependents(node, resource)
        else:
            await self._collect(node, resource, live)
        current = self.graph.get(uid)
        if current is not None and not current.observed:
            # Exists but no informer has shown it yet: look again later.
            retries = self._virtual_retries.get(uid, 0)
            self._virtual_retries[uid] = retries + 1
            raise Requeue(min(0.1 * 2**retries, 60.0))
        self._virtual_retries.pop(uid, None)

    async def _process_deleting_dependents(self, node: Node, resource: Resource) -> None:
        blocking = self.graph.blocking_dependents(node)
        if not blocking:
            await self._remove_finalizer(resource, node.identity, FOREGROUND_FINALIZER)
            return
        for dep in blocking:
            if not dep.deleting_dependents:
                self.queue.add(f"delete/{dep.uid}")

    async def _collect(self, node: Node, resource: Resource, live: Object) -> None:
        refs = owner_references(live)
        if not refs:
            return
        try:
            states = [(ref, await self._owner_state(ref, node)) for ref in refs]
        except NamespacedOwnerOfClusterScopedObject:
            log.debug(
                "%s: %s is cluster-scoped but names a namespaced owner", self.name, node.identity
            )
            return
        dependents = self.graph.dependents(node)
        plan = plan_collection(
            _finalizers(live),
            states,
            has_dependents=bool(dependents),
            a_dependent_deletes_dependents=any(dep.deleting_dependents for dep in dependents),
        )
        if plan.action is CollectionAction.KEEP:
            return
        if plan.action is CollectionAction.REMOVE_REFERENCES:
            await self._patch_live(
                resource,
                node.identity,
                lambda obj: remove_owner_references_patch(obj, plan.remove_owner_uids),
            )
            return
        if plan.unblock_first:
            await self._patch_live(resource, node.identity, unblock_owner_references_patch)
        await self._delete(resource, node.identity, live, plan.propagation_policy)

    async def _owner_state(self, ref: OwnerReference, node: Node) -> OwnerState:
        dependent_namespace = node.identity.namespace
        if (
            Identity.of_reference(ref, "") in self.graph.absent
            or Identity.of_reference(ref, dependent_namespace) in self.graph.absent
        ):
            return OwnerState.DANGLING
        resource = self._resource(ref.api_version, ref.kind)
        if resource.namespaced and not dependent_namespace:
            raise NamespacedOwnerOfClusterScopedObject()
        namespace = dependent_namespace if resource.namespaced else ""
        absent_key = Identity.of_reference(ref, namespace)
        try:
            owner = await self.client.get(resource, ref.name, namespace)
        except StatusError as error:
            if is_not_found(error):
                self.graph.absent.add(absent_key)
                return OwnerState.DANGLING
            raise
        if (owner.get("metadata") or {}).get("uid") != ref.uid:
            self.graph.absent.add(absent_key)
            return OwnerState.DANGLING
        if _being_deleted(owner) and FOREGROUND_FINALIZER in _finalizers(owner):
            return OwnerState.WAITING
        return OwnerState.SOLID

    async def attempt_to_orphan(self, uid: str) -> None:
        owner = self.graph.get(uid)
        if owner is None:
            return
        failures: list[str] = []

        async def orphan(dep: Node) -> None:
            try:
                await self._patch_live(
                    self._resource(dep.identity.api_version, dep.identity.kind),
                    dep.identity,
                    lambda obj: remove_owner_references_patch(obj, [uid]),
                )
            except Exception as exc:
                failures.append(
                    f"orphaning {dep.identity.namespace}/{dep.identity.name} failed, {exc}"
                )

        await asyncio.gather(*(orphan(dep) for dep in self.graph.dependents(owner)))
        if failures:
            raise RuntimeError(
                f"failed to orphan dependents of owner {owner.identity}: {'; '.join(failures)}"
            )
        resource = self._resource(owner.identity.api_version, owner.identity.kind)
        await self._remove_finalizer(resource, owner.identity, ORPHAN_FINALIZER)

    # writes

    async def _patch_live(
        self, resource: Resource, identity: Identity, make_patch: Callable[[Object], Object | None]
    ) -> None:
        """Patch the live object with `make_patch(live)`, re-reading on conflicts; a
        gone object or a None patch means there is nothing to do."""
        for _ in range(UPDATE_RETRIES):
            _, live = await self._get_live(identity)
            if live is None:
                return
            patch = make_patch(live)
            if patch is None:
                return
            namespace = identity.namespace if resource.namespaced else ""
            try:
                await self.client.patch(
                    resource, identity.name, patch, namespace, patch_type=MERGE_PATCH
                )
                return
            except StatusError as error:
                if is_not_found(error):
                    return
                if not is_conflict(error):
                    raise
        raise RuntimeError(f"patching {identity} kept conflicting; will retry")

    async def _remove_finalizer(
        self, resource: Resource, identity: Identity, finalizer: str
    ) -> None:
        await self._patch_live(
            resource, identity, lambda obj: remove_finalizer_patch(obj, finalizer)
        )

    async def _delete(
        self, resource: Resource, identity: Identity, live: Object, policy: str
    ) -> None:
        namespace = identity.namespace if resource.namespaced else ""
        version = _resource_version(live)
        preconditions = {"uid": identity.uid}
        if version:
            preconditions["resourceVersion"] = version
        try:
            await self.client.delete(
                resource,
                identity.name,
                namespace,
                propagation_policy=policy,
                preconditions=preconditions,
            )
            return
        except StatusError as error:
            if is_not_found(error):
                self._enqueue(self.graph.virtual_delete(identity))
                return
            if not (is_conflict(error) and version):
                raise
        # Changed since we looked: still delete if its owners did not change.
        _, current = await self._get_live(identity)
        if current is None:
            return
        if owner_references(current) != owner_references(live):
            raise Requeue(0)
        try:
            await self.client.delete(
                resource,
                identity.name,
                namespace,
                propagation_policy=policy,
                preconditions={"uid": identity.uid},
            )
        except StatusError as error:
            if not is_not_found(error):
                raise
