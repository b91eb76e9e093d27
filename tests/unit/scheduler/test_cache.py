"""The cache keeps node state incrementally: pods added, assumed, confirmed, forgotten."""

from __future__ import annotations

from tests.unit.scheduler.builders import cache_with, node, on, pod
from timonel.scheduler.cache import Cache
from timonel.scheduler.framework import ClusterEvent, CycleState, PodInfo

ZONE = "topology.kubernetes.io/zone"


def _requested(cache: Cache, name: str) -> tuple[int, int, int, int, int]:
    info = cache.nodes[name]
    return info.req_cpu, info.req_memory, info.non_zero_cpu, info.non_zero_memory, len(info.pods)


def test_pods_add_and_remove_their_requests() -> None:
    cache = cache_with([node("a")])
    first = on("a", pod("x", cpu="500m", memory="1Gi"))
    second = on("a", pod("y"))
    cache.add_pod(first)
    cache.add_pod(second)
    # y asks nothing, but counts 100m / 200Mi for scoring.
    assert _requested(cache, "a") == (500, 2**30, 600, 2**30 + 200 * 2**20, 2)
    cache.remove_pod(first)
    assert _requested(cache, "a") == (0, 0, 100, 200 * 2**20, 1)


def test_terminal_pods_free_their_resources() -> None:
    cache = cache_with([node("a")])
    running = on("a", pod("x", cpu="1"))
    cache.add_pod(running)
    finished = {**running, "status": {"phase": "Succeeded"}}
    cache.update_pod(running, finished)
    assert _requested(cache, "a")[0] == 0
    assert cache.pod_count == 0


def test_assume_confirm_and_forget() -> None:
    cache = cache_with([node("a")])
    pending = pod("x", cpu="1")
    info = PodInfo(pending)
    cache.assume_pod(info, "a")
    assert cache.is_assumed(info.uid)
    assert _requested(cache, "a")[0] == 1000
    cache.forget_pod(info)
    assert _requested(cache, "a")[0] == 0

    cache.assume_pod(info, "a")
    bound = {**pending, "spec": {**pending["spec"], "nodeName": "a"}}
    confirmed = cache.add_pod(bound)
    assert confirmed is info  # confirmation reuses what was assumed
    assert not cache.is_assumed(info.uid)
    assert _requested(cache, "a")[0] == 1000
    cache.forget_pod(info)  # no longer assumed: nothing to forget
    assert _requested(cache, "a")[0] == 1000


def test_bound_elsewhere_than_assumed_moves_the_pod() -> None:
    cache = cache_with([node("a"), node("b")])
    pending = pod("x", cpu="1")
    cache.assume_pod(PodInfo(pending), "a")
    cache.add_pod(on("b", {**pending, "spec": dict(pending["spec"]), "status": {}}))
    assert _requested(cache, "a")[0] == 0
    assert _requested(cache, "b")[0] == 1000


def test_node_update_reports_what_changed() -> None:
    original = node("a", labels={"disk": "ssd"})
    cache = cache_with([original])
    relabelled = node("a", labels={"disk": "hdd"})
    assert cache.update_node(original, relabelled) == {ClusterEvent.NODE_LABEL_CHANGE}
    tainted = node(
        "a",
        labels={"disk": "hdd"},
        cpu="8",
        taints=[{"key": "k", "value": "", "effect": "NoSchedule"}],
    )
    assert cache.update_node(relabelled, tainted) == {
        ClusterEvent.NODE_TAINT_CHANGE,
        ClusterEvent.NODE_ALLOCATABLE_CHANGE,
    }
    cordoned = node(
        "a",
        labels={"disk": "hdd"},
        cpu="8",
        unschedulable=True,
        taints=[{"key": "k", "value": "", "effect": "NoSchedule"}],
    )
    assert cache.update_node(tainted, cordoned) == {ClusterEvent.NODE_SCHEDULABLE_CHANGE}
    assert cache.nodes["a"].alloc_cpu == 8000


def test_pods_outlive_their_node_until_removed() -> None:
    cache = cache_with([node("a"), node("b")])
    placed = on("a", pod("x", cpu="1"))
    cache.add_pod(placed)
    cache.remove_node(node("a"))
    assert [n.name for n in cache.snapshot().nodes] == ["b"]
    assert "a" in cache.nodes  # still holds x
    cache.remove_pod(placed)
    assert "a" not in cache.nodes


def test_pod_on_a_node_not_seen_yet() -> None:
    cache = Cache()
    cache.add_pod(on("later", pod("x", cpu="1")))
    assert cache.snapshot().nodes == []
    cache.add_node(node("later"))
    (info,) = cache.snapshot().nodes
    assert info.req_cpu == 1000 and info.alloc_cpu == 4000


def test_snapshot_interleaves_zones() -> None:
    nodes = [node(f"{zone}{i}", labels={ZONE: zone}) for zone in "ab" for i in range(3)]
    cache = cache_with([*nodes, node("c0", labels={ZONE: "c"})])
    assert [n.name for n in cache.snapshot().nodes] == ["a0", "b0", "c0", "a1", "b1", "a2", "b2"]


def test_snapshot_is_reused_until_nodes_change() -> None:
    cache = cache_with([node("a")])
    first = cache.snapshot().nodes
    cache.add_pod(on("a", pod("x")))
    assert cache.snapshot().nodes is first
    cache.add_node(node("b"))
    assert [n.name for n in cache.snapshot().nodes] == ["a", "b"]


def test_equal_resource_states_are_shared() -> None:
    cache = cache_with([node("a"), node("b"), node("c")])
    cache.add_pod(on("a", pod("x", cpu="1")))
    cache.add_pod(on("b", pod("y", cpu="1")))
    a, b, c = (cache.nodes[n] for n in "abc")
    assert a.resources is b.resources
    assert a.resources is not c.resources


def test_images_counted_across_nodes() -> None:
    image = "registry.example/app:1"
    cache = cache_with([node("a", images=[([image], 10)]), node("b", images=[([image], 10)])])
    snapshot = cache.snapshot()
    assert snapshot.image_num_nodes(image) == 2
    cache.update_node(None, node("b"))
    assert snapshot.image_num_nodes(image) == 1
    cache.remove_node(node("a"))
    assert snapshot.image_num_nodes(image) == 0


def test_pod_groups_count_per_node_and_zone() -> None:
    from timonel.api.selectors import parse_label_selector
    from timonel.scheduler.cache import count_in_topology

    cache = cache_with([node("a", labels={ZONE: "z1"}), node("b", labels={ZONE: "z2"})])
    web = [on("a", pod(f"w{i}", labels={"app": "web"})) for i in range(2)]
    web.append(on("b", pod("w2", labels={"app": "web"})))
    for item in web:
        cache.add_pod(item)
    cache.add_pod(on("b", pod("db", labels={"app": "db"})))
    (group,) = cache.pod_groups.matching("default", parse_label_selector("app=web"))
    assert group.node_counts == {"a": 2, "b": 1}
    assert count_in_topology(group, ZONE, cache.nodes) == {"z1": 2, "z2": 1}
    cache.remove_pod(web[0])
    assert count_in_topology(group, ZONE, cache.nodes) == {"z1": 1, "z2": 1}
    cache.add_pod(on("b", pod("w3", labels={"app": "web"})))
    assert count_in_topology(group, ZONE, cache.nodes) == {"z1": 1, "z2": 2}
    # A terminating pod is no longer counted for spreading.
    deleting = {
        **web[1],
        "metadata": {**web[1]["metadata"], "deletionTimestamp": "2026-01-01T00:00:00Z"},
    }
    cache.update_pod(web[1], deleting)
    assert count_in_topology(group, ZONE, cache.nodes) == {"z2": 2}


def test_status_updates_keep_the_parsed_pod() -> None:
    cache = cache_with([node("a")])
    running = on("a", pod("x", cpu="1"))
    info = cache.add_pod(running)
    ready = {**running, "status": {"phase": "Running", "conditions": [{"type": "Ready"}]}}
    assert cache.update_pod(running, ready) is info
    assert info is not None and info.pod is ready
    relabelled = {**ready, "metadata": {**ready["metadata"], "labels": {"app": "new"}}}
    changed = cache.update_pod(ready, relabelled)
    assert changed is not info and changed is not None and changed.labels == {"app": "new"}
    assert _requested(cache, "a")[0] == 1000


def _columns_agree(cache: Cache) -> None:
    snapshot = cache.snapshot()
    assert snapshot.names == [n.name for n in snapshot.nodes]
    assert snapshot.resources == [n.resources for n in snapshot.nodes]
    assert snapshot.label_column(ZONE) == [n.labels.get(ZONE) for n in snapshot.nodes]


def test_snapshot_columns_follow_pods_and_nodes() -> None:
    nodes = [node(f"{zone}{i}", labels={ZONE: zone}) for zone in "ab" for i in range(2)]
    cache = cache_with(nodes)
    _columns_agree(cache)
    placed = on("a1", pod("x", cpu="1"))
    cache.add_pod(placed)
    _columns_agree(cache)
    assumed = PodInfo(pod("y", cpu="2"))
    cache.assume_pod(assumed, "b0")
    _columns_agree(cache)
    cache.forget_pod(assumed)
    _columns_agree(cache)
    cache.update_node(None, node("a0", labels={ZONE: "a"}, cpu="8"))
    _columns_agree(cache)
    cache.update_node(None, node("b1", labels={ZONE: "c"}))
    _columns_agree(cache)
    cache.remove_node(node("a1"))
    _columns_agree(cache)
    # A node no longer in the snapshot writes nowhere: its pods still change it.
    cache.remove_pod(placed)
    _columns_agree(cache)
    cache.add_node(node("a1", labels={ZONE: "a"}))
    _columns_agree(cache)


def test_cycle_state_slices_a_window_of_the_snapshot() -> None:
    nodes = [node(f"{zone}{i}", labels={ZONE: zone}) for zone in "ab" for i in range(3)]
    cache = cache_with([*nodes, node("c0")], [on("b1", pod("x", cpu="1"))])
    snapshot = cache.snapshot()
    state = CycleState(snapshot)
    # Positions 4, 5, 6 and then 0, 1: the window wraps around.
    window = [*snapshot.nodes[4:], *snapshot.nodes[:2]]
    state.set_window(window, 4)
    assert state.node_names(window) == [n.name for n in window]
    assert state.resource_states(window) == [n.resources for n in window]
    assert state.label_values(window, ZONE) == [n.labels.get(ZONE) for n in window]
    # Other lists, or the window once extended, are read node by node.
    window.append(snapshot.nodes[2])
    assert state.node_names(window) == [n.name for n in window]
    assert state.resource_states(window) == [n.resources for n in window]
    assert state.label_values(window, ZONE) == [n.labels.get(ZONE) for n in window]
