"""The garbage collector's graph and decisions, without I/O."""

from __future__ import annotations

from typing import Any

from timonel.client.discovery import ApiResource, ServerResources
from timonel.client.resources import Resource
from timonel.controllers.garbagecollector import (
    CollectionAction,
    CollectionPlan,
    DependencyGraph,
    Identity,
    OwnerReference,
    OwnerState,
    deletable_resources,
    plan_collection,
    remove_finalizer_patch,
    remove_owner_references_patch,
    same_collection_metadata,
    unblock_owner_references_patch,
)


def cm(
    name: str,
    uid: str,
    *,
    namespace: str = "ns",
    owners: list[dict[str, Any]] | None = None,
    deleting: bool = False,
    finalizers: list[str] | None = None,
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "uid": uid, "resourceVersion": "7"}
    if namespace:
        meta["namespace"] = namespace
    if owners:
        meta["ownerReferences"] = owners
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    if finalizers:
        meta["finalizers"] = finalizers
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta}


def ref(name: str, uid: str, *, kind: str = "ConfigMap", block: bool = False) -> dict[str, Any]:
    found: dict[str, Any] = {"apiVersion": "v1", "kind": kind, "name": name, "uid": uid}
    if block:
        found["blockOwnerDeletion"] = True
    return found


def graph_with(*objects: dict[str, Any]) -> DependencyGraph:
    graph = DependencyGraph()
    for obj in objects:
        graph.observe("v1", "ConfigMap", None, obj)
    return graph


# the graph


def test_an_owner_not_seen_yet_is_a_virtual_node_to_verify() -> None:
    graph = DependencyGraph()
    work = graph.observe("v1", "ConfigMap", None, cm("child", "c", owners=[ref("parent", "p")]))
    parent = graph.get("p")
    assert parent is not None and not parent.observed
    assert parent.identity == Identity("v1", "ConfigMap", "parent", "p", "ns")
    assert parent.dependents == {"c"}
    assert work.attempt_to_delete == ["p"]

    work = graph.observe("v1", "ConfigMap", None, cm("parent", "p"))
    assert parent.observed
    assert work.attempt_to_delete == []


def test_observing_an_owner_under_another_name_flags_its_dependents() -> None:
    graph = DependencyGraph()
    graph.observe("v1", "ConfigMap", None, cm("child", "c", owners=[ref("wrong-name", "p")]))
    work = graph.observe("v1", "ConfigMap", None, cm("parent", "p"))
    assert work.attempt_to_delete == ["c"]
    node = graph.get("p")
    assert node is not None and node.identity.name == "parent"


def test_deleting_an_owner_enqueues_its_dependents_and_remembers_it_absent() -> None:
    owner = cm("parent", "p")
    graph = graph_with(owner, cm("child", "c", owners=[ref("parent", "p")]))
    work = graph.remove("v1", "ConfigMap", owner)
    assert work.attempt_to_delete == ["c"]
    assert graph.get("p") is None
    assert Identity("v1", "ConfigMap", "parent", "p", "ns") in graph.absent


def test_foreground_deletion_marks_the_owner_and_enqueues_dependents() -> None:
    owner = cm("parent", "p")
    graph = graph_with(owner, cm("child", "c", owners=[ref("parent", "p", block=True)]))
    deleting = cm("parent", "p", deleting=True, finalizers=["foregroundDeletion"])
    work = graph.observe("v1", "ConfigMap", owner, deleting)
    node = graph.get("p")
    assert node is not None and node.deleting_dependents and node.being_deleted
    assert work.attempt_to_delete == ["c", "p"]
    # Seeing the same state again is not a new transition.
    assert graph.observe("v1", "ConfigMap", deleting, deleting).attempt_to_delete == []


def test_orphan_deletion_goes_to_the_orphan_queue() -> None:
    owner = cm("parent", "p")
    graph = graph_with(owner)
    work = graph.observe(
        "v1", "ConfigMap", owner, cm("parent", "p", deleting=True, finalizers=["orphan"])
    )
    assert work.attempt_to_orphan == ["p"]
    assert work.attempt_to_delete == []


def test_only_blocking_references_hold_a_foreground_deletion() -> None:
    graph = graph_with(
        cm("parent", "p"),
        cm("blocking", "b", owners=[ref("parent", "p", block=True)]),
        cm("free", "f", owners=[ref("parent", "p")]),
    )
    owner = graph.get("p")
    assert owner is not None
    assert [dep.uid for dep in graph.dependents(owner)] == ["b", "f"]
    assert [dep.uid for dep in graph.blocking_dependents(owner)] == ["b"]


def test_dropping_or_unblocking_a_blocking_reference_wakes_the_owner() -> None:
    child = cm("child", "c", owners=[ref("parent", "p", block=True)])
    graph = graph_with(cm("parent", "p"), child)
    unblocked = cm("child", "c", owners=[ref("parent", "p")])
    assert graph.observe("v1", "ConfigMap", child, unblocked).attempt_to_delete == ["p"]
    dropped = cm("child", "c")
    assert graph.observe("v1", "ConfigMap", unblocked, dropped).attempt_to_delete == []
    owner = graph.get("p")
    assert owner is not None and owner.dependents == set()


def test_a_gone_dependent_wakes_an_owner_deleting_in_the_foreground() -> None:
    child = cm("child", "c", owners=[ref("parent", "p", block=True)])
    graph = graph_with(cm("parent", "p", deleting=True, finalizers=["foregroundDeletion"]), child)
    assert graph.remove("v1", "ConfigMap", child).attempt_to_delete == ["p"]


def test_a_reference_to_an_owner_in_another_namespace_is_verified() -> None:
    graph = graph_with(cm("parent", "p", namespace="a"))
    work = graph.observe(
        "v1", "ConfigMap", None, cm("child", "c", namespace="b", owners=[ref("parent", "p")])
    )
    assert work.attempt_to_delete == ["c"]


def test_virtual_delete_removes_a_confirmed_absent_owner() -> None:
    graph = graph_with(cm("child", "c", owners=[ref("parent", "p")]))
    virtual = graph.get("p")
    assert virtual is not None
    work = graph.virtual_delete(virtual.identity)
    assert graph.get("p") is None
    assert work.attempt_to_delete == ["c"]


def test_virtual_delete_keeps_a_uid_other_dependents_name_differently() -> None:
    graph = graph_with(
        cm("one", "c1", owners=[ref("parent", "p")]),
        cm("two", "c2", owners=[ref("other-name", "p")]),
    )
    absent = Identity("v1", "ConfigMap", "parent", "p", "ns")
    work = graph.virtual_delete(absent)
    node = graph.get("p")
    assert node is not None
    assert node.identity == Identity("v1", "ConfigMap", "other-name", "p", "ns")
    assert work.attempt_to_delete == ["c1"]
    assert work.attempt_to_delete_later == ["p"]
    assert absent in graph.absent


def test_virtual_delete_of_an_observed_object_under_another_identity_keeps_it() -> None:
    graph = graph_with(cm("parent", "p"), cm("child", "c", owners=[ref("alias", "p")]))
    work = graph.virtual_delete(Identity("v1", "ConfigMap", "alias", "p", "ns"))
    assert graph.get("p") is not None
    assert work.attempt_to_delete == ["c"]


# decisions


def owner(uid: str, state: OwnerState) -> tuple[OwnerReference, OwnerState]:
    return OwnerReference("v1", "ConfigMap", uid, uid), state


def test_plan_keeps_objects_with_only_solid_owners() -> None:
    plan = plan_collection(
        [],
        [owner("a", OwnerState.SOLID)],
        has_dependents=False,
        a_dependent_deletes_dependents=False,
    )
    assert plan == CollectionPlan(CollectionAction.KEEP)


def test_plan_drops_dangling_and_waiting_references_next_to_a_solid_one() -> None:
    plan = plan_collection(
        [],
        [
            owner("a", OwnerState.SOLID),
            owner("b", OwnerState.DANGLING),
            owner("c", OwnerState.WAITING),
        ],
        has_dependents=False,
        a_dependent_deletes_dependents=False,
    )
    assert plan == CollectionPlan(CollectionAction.REMOVE_REFERENCES, remove_owner_uids=("b", "c"))


def test_plan_deletes_without_solid_owners_honouring_finalizers() -> None:
    dangling = [owner("a", OwnerState.DANGLING)]
    cases = {(): "Background", ("orphan",): "Orphan", ("foregroundDeletion",): "Foreground"}
    for finalizers, policy in cases.items():
        plan = plan_collection(
            finalizers, dangling, has_dependents=True, a_dependent_deletes_dependents=False
        )
        assert plan == CollectionPlan(CollectionAction.DELETE, propagation_policy=policy)


def test_plan_deletes_in_the_foreground_for_a_waiting_owner_when_it_has_dependents() -> None:
    waiting = [owner("a", OwnerState.WAITING)]
    plan = plan_collection([], waiting, has_dependents=True, a_dependent_deletes_dependents=True)
    assert plan == CollectionPlan(
        CollectionAction.DELETE, propagation_policy="Foreground", unblock_first=True
    )
    plan = plan_collection([], waiting, has_dependents=False, a_dependent_deletes_dependents=False)
    assert plan == CollectionPlan(CollectionAction.DELETE, propagation_policy="Background")


def test_remove_owner_references_patch() -> None:
    obj = cm("child", "c", owners=[ref("a", "a"), ref("b", "b")])
    assert remove_owner_references_patch(obj, ["a"]) == {
        "metadata": {"resourceVersion": "7", "ownerReferences": [ref("b", "b")]}
    }
    assert remove_owner_references_patch(obj, ["a", "b"]) == {
        "metadata": {"resourceVersion": "7", "ownerReferences": None}
    }
    assert remove_owner_references_patch(obj, ["z"]) is None


def test_unblock_owner_references_patch() -> None:
    obj = cm("child", "c", owners=[ref("a", "a", block=True), ref("b", "b")])
    patch = unblock_owner_references_patch(obj)
    assert patch == {
        "metadata": {
            "resourceVersion": "7",
            "ownerReferences": [{**ref("a", "a"), "blockOwnerDeletion": False}, ref("b", "b")],
        }
    }
    assert unblock_owner_references_patch(cm("child", "c", owners=[ref("b", "b")])) is None


def test_remove_finalizer_patch() -> None:
    obj = cm("x", "x", finalizers=["foregroundDeletion", "example.com/keep"])
    assert remove_finalizer_patch(obj, "foregroundDeletion") == {
        "metadata": {"resourceVersion": "7", "finalizers": ["example.com/keep"]}
    }
    assert remove_finalizer_patch(cm("x", "x", finalizers=["orphan"]), "orphan") == {
        "metadata": {"resourceVersion": "7", "finalizers": None}
    }
    assert remove_finalizer_patch(obj, "orphan") is None


def test_deletable_resources_leave_out_events_and_what_cannot_be_watched() -> None:
    every = frozenset({"create", "delete", "get", "list", "watch"})
    configmaps = Resource("", "v1", "configmaps", "ConfigMap")
    resources = ServerResources(
        preferred=[
            ApiResource(configmaps, every),
            ApiResource(Resource("", "v1", "events", "Event"), every),
            ApiResource(Resource("events.k8s.io", "v1", "events", "Event"), every),
            ApiResource(
                Resource("authorization.k8s.io", "v1", "selfsubjectaccessreviews", "X", False),
                frozenset({"create"}),
            ),
        ]
    )
    assert deletable_resources(resources) == {configmaps}


def test_an_update_that_leaves_the_collection_metadata_changes_nothing() -> None:
    child = cm("child", "c", owners=[ref("parent", "p")])
    graph = graph_with(cm("parent", "p"), child)
    node = graph.get("c")
    assert node is not None
    owners = node.owners
    renewed = {**child, "metadata": {**child["metadata"], "resourceVersion": "8"}, "data": {}}
    work = graph.observe("v1", "ConfigMap", child, renewed)
    assert (work.attempt_to_delete, work.attempt_to_orphan) == ([], [])
    assert graph.get("c") is node and node.owners is owners


def test_updates_that_change_the_collection_metadata_still_reach_the_graph() -> None:
    child = cm("child", "c", owners=[ref("parent", "p", block=True)])
    graph = graph_with(cm("parent", "p"), cm("other", "o"), child)
    moved = cm("child", "c", owners=[ref("other", "o")])
    work = graph.observe("v1", "ConfigMap", child, moved)
    assert work.attempt_to_delete == ["p"]  # its blocking reference went
    parent, other = graph.get("p"), graph.get("o")
    assert parent is not None and other is not None
    assert parent.dependents == set() and other.dependents == {"c"}
    # Another object under the same name: a new uid is a new node.
    replaced = cm("child", "c2", owners=[ref("other", "o")])
    graph.observe("v1", "ConfigMap", moved, replaced)
    assert graph.get("c2") is not None and other.dependents == {"c", "c2"}
    deleting = cm("child", "c2", owners=[ref("other", "o")], deleting=True)
    graph.observe("v1", "ConfigMap", replaced, deleting)
    node = graph.get("c2")
    assert node is not None and node.being_deleted


def test_same_collection_metadata() -> None:
    base = cm("a", "u", owners=[ref("p", "p")], finalizers=["f"])
    assert same_collection_metadata(base, {**base, "data": {"k": "v"}})
    assert not same_collection_metadata(base, cm("a", "u", finalizers=["f"]))
    assert not same_collection_metadata(base, cm("a", "u", owners=[ref("p", "p")]))
    assert not same_collection_metadata(
        base, cm("a", "v", owners=[ref("p", "p")], finalizers=["f"])
    )
    assert not same_collection_metadata(
        base, cm("a", "u", owners=[ref("p", "p")], finalizers=["f"], deleting=True)
    )
