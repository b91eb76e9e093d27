"""The scheduler's cache: nodes and the pods placed on them, kept incrementally.

Invariants:
- Every pod with `spec.nodeName` (or assumed onto a node by this scheduler) is counted on
  exactly one `NodeInfo`; terminal pods (Succeeded/Failed) are not counted at all.
- An *assumed* pod is one the scheduler has placed but whose binding the API has not yet
  confirmed. It counts like a bound pod, so the next cycle sees its resources; when the
  informer reports the pod bound it is *confirmed*; if binding fails it is *forgotten*.
- A scheduling cycle is synchronous (it never awaits), so no event can change the cache
  during one: the live `NodeInfo`s are a consistent snapshot for the cycle. `snapshot()`
  only rebuilds what is derived from the set of nodes (the zone-interleaved node order,
  per-image node counts), and only after nodes were added, removed or relabelled.

Pods are also indexed by *group* (namespace, labels, terminating or not, affinity terms):
replicas of one workload share a group, so counting "pods matching this selector on this
node / in this zone" walks a few groups rather than every pod.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from timonel.api.objects import Object
from timonel.api.selectors import LabelSelector, label_selector_from_set
from timonel.scheduler.framework import (
    ClusterEvent,
    ControllerRef,
    NodeInfo,
    PodInfo,
    ResourceState,
)
from timonel.scheduler.podspec import LABEL_REGION, LABEL_ZONE, PodAffinity, label_selector

_TERMINAL_PHASES: Final = frozenset({"Succeeded", "Failed"})
_NO_NAMES: Final[frozenset[str]] = frozenset()


def is_terminal(pod: Object) -> bool:
    return (pod.get("status") or {}).get("phase") in _TERMINAL_PHASES


def zone_key(labels: Mapping[str, str]) -> str:
    """utilnode.GetZoneKey: region and zone together; "" when the node has neither."""
    region = labels.get(LABEL_REGION, "")
    zone = labels.get(LABEL_ZONE, "")
    if not region and not zone:
        return ""
    return f"{region}:\x00:{zone}"


# -- pod groups --------------------------------------------------------------------------------

GroupKey = tuple[str, frozenset[tuple[str, str]], bool, PodAffinity]


class PodGroup:
    """Pods that look the same to selectors and affinity terms, counted per node."""

    __slots__ = ("affinity", "labels", "namespace", "node_counts", "terminating", "topology")

    def __init__(self, pod: PodInfo) -> None:
        self.namespace = pod.namespace
        self.labels = pod.labels
        self.terminating = pod.terminating
        self.affinity = pod.affinity
        self.node_counts: dict[str, int] = {}
        # topology key -> {topology value: pods}, built on first use and kept current.
        self.topology: dict[str, dict[str, int]] = {}

    def count_on(self, node_name: str) -> int:
        return self.node_counts.get(node_name, 0)


class PodGroups:
    def __init__(self) -> None:
        self._groups: dict[GroupKey, PodGroup] = {}
        self._matching: dict[tuple[str, LabelSelector], list[PodGroup]] = {}
        # Groups whose pods carry any affinity terms, and required anti-affinity terms.
        self._with_affinity: dict[GroupKey, PodGroup] = {}
        self._with_anti_affinity: dict[GroupKey, PodGroup] = {}

    @staticmethod
    def _key(pod: PodInfo) -> GroupKey:
        return (pod.namespace, frozenset(pod.labels.items()), pod.terminating, pod.affinity)

    def add(self, pod: PodInfo, node: NodeInfo) -> None:
        key = self._key(pod)
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = PodGroup(pod)
            self._matching.clear()
            if pod.has_affinity:
                self._with_affinity[key] = group
            if pod.has_required_anti_affinity:
                self._with_anti_affinity[key] = group
        group.node_counts[node.name] = group.node_counts.get(node.name, 0) + 1
        for topology_key, counts in group.topology.items():
            value = node.labels.get(topology_key)
            if value is not None:
                counts[value] = counts.get(value, 0) + 1

    def remove(self, pod: PodInfo, node: NodeInfo) -> None:
        key = self._key(pod)
        group = self._groups.get(key)
        if group is None:
            return
        count = group.node_counts.get(node.name, 0) - 1
        if count > 0:
            group.node_counts[node.name] = count
        else:
            group.node_counts.pop(node.name, None)
        for topology_key, counts in group.topology.items():
            value = node.labels.get(topology_key)
            if value is not None:
                left = counts.get(value, 0) - 1
                if left > 0:
                    counts[value] = left
                else:
                    counts.pop(value, None)
        if not group.node_counts:
            del self._groups[key]
            self._with_affinity.pop(key, None)
            self._with_anti_affinity.pop(key, None)
            self._matching.clear()

    def forget_topology(self) -> None:
        """Node labels changed: per-topology counts are rebuilt on next use."""
        for group in self._groups.values():
            group.topology.clear()

    def groups(self) -> list[PodGroup]:
        return list(self._groups.values())

    def with_affinity(self) -> list[PodGroup]:
        return list(self._with_affinity.values())

    def with_required_anti_affinity(self) -> list[PodGroup]:
        return list(self._with_anti_affinity.values())

    def matching(self, namespace: str, selector: LabelSelector) -> list[PodGroup]:
        """Live (not terminating) groups in `namespace` whose labels `selector` selects."""
        memo_key = (namespace, selector)
        found = self._matching.get(memo_key)
        if found is None:
            found = [
                g
                for g in self._groups.values()
                if g.namespace == namespace and not g.terminating and selector.matches(g.labels)
            ]
            self._matching[memo_key] = found
        return found


def count_in_topology(
    group: PodGroup, topology_key: str, nodes: Mapping[str, NodeInfo]
) -> dict[str, int]:
    """Pods of `group` per value of `topology_key` (nodes without the label not counted)."""
    counts = group.topology.get(topology_key)
    if counts is None:
        counts = {}
        for node_name, count in group.node_counts.items():
            node = nodes.get(node_name)
            value = node.labels.get(topology_key) if node is not None else None
            if value is not None:
                counts[value] = counts.get(value, 0) + count
        group.topology[topology_key] = counts
    return counts


# -- snapshot ----------------------------------------------------------------------------------


class Snapshot:
    """The cluster as a scheduling cycle sees it (see the module docstring)."""

    def __init__(self, cache: Cache) -> None:
        self._cache = cache
        self.nodes: list[NodeInfo] = []
        # Columns parallel to `nodes`: names, labels by key (built on first use) and
        # ResourceStates (which each NodeInfo writes back as its pods change).
        self.names: list[str] = []
        self.resources: list[ResourceState] = []
        self._label_columns: dict[str, list[str | None]] = {}

    def set_nodes(self, nodes: list[NodeInfo]) -> None:
        for node in self.nodes:
            node.snapshot_column = None
        resources = [node.resources for node in nodes]
        for position, node in enumerate(nodes):
            node.snapshot_column = resources
            node.snapshot_position = position
        self.nodes = nodes
        self.names = [node.name for node in nodes]
        self.resources = resources
        self._label_columns = {}

    def label_column(self, key: str) -> list[str | None]:
        column = self._label_columns.get(key)
        if column is None:
            column = self._label_columns[key] = [node.labels.get(key) for node in self.nodes]
        return column

    @property
    def lister(self) -> Cache:
        return self._cache

    @property
    def pod_groups(self) -> PodGroups:
        return self._cache.pod_groups

    def get(self, name: str) -> NodeInfo | None:
        node = self._cache.nodes.get(name)
        return node if node is not None and node.has_node else None

    @property
    def node_map(self) -> Mapping[str, NodeInfo]:
        return self._cache.nodes

    def image_num_nodes(self, image: str) -> int:
        return len(self._cache.image_holders.get(image, ()))

    def image_holders(self, image: str) -> frozenset[str] | set[str]:
        """Names of the nodes that have `image`."""
        return self._cache.image_holders.get(image, _NO_NAMES)

    # Cluster-wide facts that let plugins skip a scan over the nodes entirely.
    @property
    def any_cordoned(self) -> bool:
        return bool(self._cache.cordoned)

    @property
    def any_no_schedule_taints(self) -> bool:
        return bool(self._cache.no_schedule_tainted)

    @property
    def any_prefer_no_schedule_taints(self) -> bool:
        return bool(self._cache.prefer_no_schedule_tainted)

    def nodes_with_affinity_pods(self) -> list[NodeInfo]:
        return [n for n in self._cache.affinity_nodes.values() if n.has_node]

    def nodes_with_required_anti_affinity_pods(self) -> list[NodeInfo]:
        return [n for n in self._cache.anti_affinity_nodes.values() if n.has_node]

    def topology_domains(self, topology_key: str) -> Mapping[str, int]:
        """Every value of `topology_key` among nodes, with how many nodes carry it."""
        return self._cache.topology_domains(topology_key)

    def on_every_node(self, label_key: str) -> bool:
        """Whether every node carries the label `label_key`."""
        return self._cache.labelled_nodes(label_key) == len(self.nodes)


# -- the cache ---------------------------------------------------------------------------------


@dataclass
class _PodState:
    info: PodInfo
    node_name: str
    assumed: bool = False
    binding_finished: bool = False


class Cache:
    """Nodes, placed pods and the few other objects plugins consult (namespaces'
    labels, and the Services and controllers default spreading derives selectors from)."""

    def __init__(self) -> None:
        self.nodes: dict[str, NodeInfo] = {}
        self.pod_groups = PodGroups()
        self.image_holders: dict[str, set[str]] = {}
        self.cordoned: set[str] = set()
        self.no_schedule_tainted: set[str] = set()
        self.prefer_no_schedule_tainted: set[str] = set()
        self.affinity_nodes: dict[str, NodeInfo] = {}
        self.anti_affinity_nodes: dict[str, NodeInfo] = {}
        self._pods: dict[str, _PodState] = {}
        self._order_dirty = True
        self._domains: dict[str, dict[str, int]] = {}
        self._labelled: dict[str, int] = {}
        self._snapshot = Snapshot(self)
        self._namespaces: dict[str, dict[str, str]] = {}
        self._services: dict[str, dict[str, Mapping[str, str]]] = {}
        self._controllers: dict[tuple[str, str, str], LabelSelector] = {}

    # -- snapshot ----------------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        if self._order_dirty:
            self._snapshot.set_nodes(self._interleaved_nodes())
            self._order_dirty = False
        return self._snapshot

    def _interleaved_nodes(self) -> list[NodeInfo]:
        """Nodes round-robin across zones (kube's node tree), so a cycle that looks at
        only part of the cluster still sees every zone."""
        zones: dict[str, list[NodeInfo]] = {}
        for node in self.nodes.values():
            if node.has_node:
                zones.setdefault(zone_key(node.labels), []).append(node)
        if len(zones) <= 1:
            return next(iter(zones.values()), [])
        ordered: list[NodeInfo] = []
        columns = list(zones.values())
        for index in range(max(len(c) for c in columns)):
            ordered.extend(c[index] for c in columns if index < len(c))
        return ordered

    def topology_domains(self, topology_key: str) -> Mapping[str, int]:
        domains = self._domains.get(topology_key)
        if domains is None:
            domains = {}
            for node in self.nodes.values():
                value = node.labels.get(topology_key) if node.has_node else None
                if value is not None:
                    domains[value] = domains.get(value, 0) + 1
            self._domains[topology_key] = domains
        return domains

    def labelled_nodes(self, label_key: str) -> int:
        count = self._labelled.get(label_key)
        if count is None:
            count = self._labelled[label_key] = sum(self.topology_domains(label_key).values())
        return count

    def _topology_changed(self) -> None:
        self._order_dirty = True
        self._domains.clear()
        self._labelled.clear()
        self.pod_groups.forget_topology()

    # -- nodes -------------------------------------------------------------------------------

    def _node_info(self, name: str) -> NodeInfo:
        node = self.nodes.get(name)
        if node is None:
            node = self.nodes[name] = NodeInfo(name=name)
        return node

    def add_node(self, node: Object) -> NodeInfo:
        name = (node.get("metadata") or {}).get("name") or ""
        info = self._node_info(name)
        self._forget_images(info)
        info.set_node(node)
        self._count_images(info)
        self._topology_changed()
        return info

    def update_node(self, old: Object | None, new: Object) -> frozenset[ClusterEvent]:
        """Apply a node update; returns what changed, for the scheduling queue."""
        name = (new.get("metadata") or {}).get("name") or ""
        info = self.nodes.get(name)
        if info is None or not info.has_node:
            self.add_node(new)
            return frozenset({ClusterEvent.NODE_ADD})
        before = (
            dict(info.labels),
            info.taints,
            (info.alloc_cpu, info.alloc_memory, info.alloc_ephemeral, info.alloc_pods),
            dict(info.alloc_scalar),
            info.unschedulable,
        )
        self._forget_images(info)
        info.set_node(new)
        self._count_images(info)
        events: set[ClusterEvent] = set()
        if before[0] != info.labels:
            events.add(ClusterEvent.NODE_LABEL_CHANGE)
            self._topology_changed()
        if before[1] != info.taints:
            events.add(ClusterEvent.NODE_TAINT_CHANGE)
        allocatable = (info.alloc_cpu, info.alloc_memory, info.alloc_ephemeral, info.alloc_pods)
        if before[2] != allocatable or before[3] != info.alloc_scalar:
            events.add(ClusterEvent.NODE_ALLOCATABLE_CHANGE)
        if before[4] != info.unschedulable:
            events.add(ClusterEvent.NODE_SCHEDULABLE_CHANGE)
        return frozenset(events)

    def remove_node(self, node: Object) -> None:
        name = (node.get("metadata") or {}).get("name") or ""
        info = self.nodes.get(name)
        if info is None:
            return
        self._forget_images(info)
        info.node = {}
        info.labels = {}
        info.images = {}
        info.generation += 1
        if not info.pods:
            del self.nodes[name]
        self._topology_changed()

    def _count_images(self, info: NodeInfo) -> None:
        """Index what the node has: its images, and whether it is cordoned or tainted."""
        for image in info.images:
            self.image_holders.setdefault(image, set()).add(info.name)
        for members, present in (
            (self.cordoned, info.unschedulable),
            (self.no_schedule_tainted, bool(info.no_schedule_taints)),
            (self.prefer_no_schedule_tainted, bool(info.prefer_no_schedule_taints)),
        ):
            if present:
                members.add(info.name)
            else:
                members.discard(info.name)

    def _forget_images(self, info: NodeInfo) -> None:
        for image in info.images:
            holders = self.image_holders.get(image)
            if holders is not None:
                holders.discard(info.name)
                if not holders:
                    del self.image_holders[image]
        self.cordoned.discard(info.name)
        self.no_schedule_tainted.discard(info.name)
        self.prefer_no_schedule_tainted.discard(info.name)

    # -- pods --------------------------------------------------------------------------------

    @property
    def pod_count(self) -> int:
        return len(self._pods)

    def is_assumed(self, uid: str) -> bool:
        state = self._pods.get(uid)
        return state is not None and state.assumed

    def node_of(self, uid: str) -> str | None:
        state = self._pods.get(uid)
        return state.node_name if state is not None else None

    def _place(self, info: PodInfo, node_name: str) -> None:
        node = self._node_info(node_name)
        node.add_pod(info)
        self.pod_groups.add(info, node)
        if info.has_affinity:
            self.affinity_nodes[node_name] = node
        if info.has_required_anti_affinity:
            self.anti_affinity_nodes[node_name] = node

    def _unplace(self, info: PodInfo, node_name: str) -> None:
        node = self.nodes.get(node_name)
        if node is None or not node.remove_pod(info):
            return
        self.pod_groups.remove(info, node)
        if not node.pods_with_affinity:
            self.affinity_nodes.pop(node_name, None)
        if not node.pods_with_required_anti_affinity:
            self.anti_affinity_nodes.pop(node_name, None)
        if not node.pods and not node.has_node:
            del self.nodes[node_name]

    def assume_pod(self, info: PodInfo, node_name: str) -> None:
        """Count `info` on `node_name` before the API confirms the binding."""
        if info.uid in self._pods:
            raise ValueError(f"pod {info.key} is already in the cache")
        self._place(info, node_name)
        self._pods[info.uid] = _PodState(info, node_name, assumed=True)

    def finish_binding(self, info: PodInfo) -> None:
        state = self._pods.get(info.uid)
        if state is not None and state.assumed:
            state.binding_finished = True

    def forget_pod(self, info: PodInfo) -> None:
        """Undo `assume_pod` after a failed binding."""
        state = self._pods.get(info.uid)
        if state is not None and state.assumed:
            self._unplace(state.info, state.node_name)
            del self._pods[info.uid]

    def add_pod(self, pod: Object) -> PodInfo | None:
        """A bound pod appeared (or an assumed one was confirmed). Returns its PodInfo."""
        if is_terminal(pod):
            self.remove_pod(pod)
            return None
        node_name = (pod.get("spec") or {}).get("nodeName") or ""
        uid = (pod.get("metadata") or {}).get("uid") or ""
        state = self._pods.get(uid)
        if state is not None:
            if state.node_name == node_name and _same_spec(state.info, pod):
                # The confirmation of our own binding, or a status update: nothing the
                # scheduler counts changed.
                state.info.pod = pod
                state.assumed = False
                return state.info
            self._unplace(state.info, state.node_name)
        info = PodInfo(pod)
        self._place(info, node_name)
        self._pods[info.uid] = _PodState(info, node_name)
        return info

    def update_pod(self, old: Object | None, new: Object) -> PodInfo | None:
        return self.add_pod(new)

    def remove_pod(self, pod: Object) -> PodInfo | None:
        uid = (pod.get("metadata") or {}).get("uid") or ""
        state = self._pods.pop(uid, None)
        if state is None:
            return None
        self._unplace(state.info, state.node_name)
        return state.info

    # -- other objects -----------------------------------------------------------------------

    def set_namespace(self, namespace: Object | None, name: str) -> None:
        if namespace is None:
            self._namespaces.pop(name, None)
        else:
            self._namespaces[name] = (namespace.get("metadata") or {}).get("labels") or {}

    def namespace_labels(self, namespace: str) -> Mapping[str, str]:
        return self._namespaces.get(namespace, {})

    def set_service(self, namespace: str, name: str, service: Object | None) -> None:
        services = self._services.setdefault(namespace, {})
        selector = (service.get("spec") or {}).get("selector") if service is not None else None
        if selector is None:
            services.pop(name, None)
        else:
            services[name] = selector

    def service_selectors(self, namespace: str) -> Iterable[Mapping[str, str]]:
        return self._services.get(namespace, {}).values()

    def set_controller(
        self, kind: str, namespace: str, name: str, controller: Object | None
    ) -> None:
        """ReplicationController (map selector), ReplicaSet or StatefulSet (LabelSelector)."""
        key = (kind, namespace, name)
        if controller is None:
            self._controllers.pop(key, None)
            return
        raw: Any = (controller.get("spec") or {}).get("selector")
        if kind == "ReplicationController":
            self._controllers[key] = label_selector_from_set(raw or {})
        else:
            self._controllers[key] = label_selector(raw)

    def controller_selector(
        self, namespace: str, controller: ControllerRef
    ) -> LabelSelector | None:
        return self._controllers.get((controller.kind, namespace, controller.name))


def _same_spec(info: PodInfo, pod: Object) -> bool:
    """Whether `pod` is `info`'s pod with nothing the scheduler reads changed but its
    node name and status."""
    old, new = info.pod, pod
    if old is new:
        return True
    old_meta, new_meta = old.get("metadata") or {}, new.get("metadata") or {}
    if old_meta.get("labels") != new_meta.get("labels"):
        return False
    if (old_meta.get("deletionTimestamp") is None) != (new_meta.get("deletionTimestamp") is None):
        return False
    old_spec = dict(old.get("spec") or {})
    new_spec = dict(new.get("spec") or {})
    old_spec.pop("nodeName", None)
    new_spec.pop("nodeName", None)
    return old_spec == new_spec
