"""Score plugins as tables: normalised 0..100 scores as kube-scheduler computes them."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.scheduler.builders import node, on, pod, scores
from timonel.scheduler.cache import Cache

ZONE = "topology.kubernetes.io/zone"
HOSTNAME = "kubernetes.io/hostname"
MB = 1024 * 1024


def test_least_allocated() -> None:
    nodes = [node("empty", cpu="4", memory="8Gi"), node("busy", cpu="4", memory="8Gi")]
    placed = [on("busy", pod("x", cpu="2", memory="4Gi"))]
    # empty: cpu (4000-1000)/4000, memory (8-2)/8 -> 75; busy: (4000-3000)/4000 -> 25.
    assert scores("NodeResourcesFit", pod(cpu="1", memory="2Gi"), nodes, placed) == {
        "empty": 75,
        "busy": 25,
    }


def test_least_allocated_uses_default_requests_for_best_effort_pods() -> None:
    # 100m of 4 cpu -> 97; 200Mi of 8Gi -> 97 (integer arithmetic, floors).
    assert scores("NodeResourcesFit", pod(), [node("a", cpu="4", memory="8Gi")]) == {"a": 97}


def test_least_allocated_overcommitted_resource_scores_zero() -> None:
    placed = [on("a", pod("x", cpu="5"))]
    # cpu 0 (over capacity); memory counts the placed pod's 200Mi default too:
    # (8192 - 400) / 8192 -> 95; (0 + 95) / 2 -> 47.
    assert scores("NodeResourcesFit", pod(cpu="1", memory="200Mi"), [node("a")], placed) == {
        "a": 47
    }


def test_most_allocated_strategy() -> None:
    args = {
        "scoringStrategy": {"type": "MostAllocated", "resources": [{"name": "cpu", "weight": 1}]}
    }
    placed = [on("busy", pod("x", cpu="2"))]
    assert scores(
        "NodeResourcesFit", pod(cpu="1"), [node("idle"), node("busy")], placed, args=args
    ) == {"idle": 25, "busy": 75}


def test_balanced_allocation() -> None:
    nodes = [node("a", cpu="4", memory="8Gi"), node("b", cpu="4", memory="8Gi")]
    placed = [on("b", pod("x", cpu="1", memory="3Gi"))]
    # a: cpu 1/4, memory 1/8 -> 1 - 0.0625 -> 93; b: cpu 2/4, memory 4/8 -> 100.
    assert scores("NodeResourcesBalancedAllocation", pod(cpu="1", memory="1Gi"), nodes, placed) == {
        "a": 93,
        "b": 100,
    }


def test_balanced_allocation_ignores_default_requests() -> None:
    # Best-effort pods add nothing: an empty node is perfectly balanced.
    assert scores("NodeResourcesBalancedAllocation", pod(), [node("a")]) == {"a": 100}


def test_taint_toleration_prefers_untainted_nodes() -> None:
    soft = {"key": "spot", "value": "true", "effect": "PreferNoSchedule"}
    other = {"key": "slow", "value": "", "effect": "PreferNoSchedule"}
    nodes = [node("clean"), node("one", taints=[soft]), node("two", taints=[soft, other])]
    assert scores("TaintToleration", pod(), nodes) == {"clean": 100, "one": 50, "two": 0}
    tolerant = pod(tolerations=[{"key": "spot", "operator": "Exists"}])
    assert scores("TaintToleration", tolerant, nodes) == {"clean": 100, "one": 100, "two": 0}


def test_preferred_node_affinity() -> None:
    affinity = {
        "nodeAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {
                    "weight": 10,
                    "preference": {
                        "matchExpressions": [{"key": ZONE, "operator": "In", "values": ["z1"]}]
                    },
                },
                {
                    "weight": 5,
                    "preference": {
                        "matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}]
                    },
                },
            ]
        }
    }
    nodes = [
        node("both", labels={ZONE: "z1", "disk": "ssd"}),
        node("zone", labels={ZONE: "z1"}),
        node("none"),
    ]
    assert scores("NodeAffinity", pod(affinity=affinity), nodes) == {
        "both": 100,
        "zone": 66,
        "none": 0,
    }
    assert scores("NodeAffinity", pod(), nodes) == {}  # skipped without preferences


def test_image_locality() -> None:
    image = "registry.example/app:1"
    nodes = [node("has", images=[([image], 500 * MB)]), node("lacks")]
    # 500MB on half the nodes -> 250MB -> (250 - 23) * 100 / (1000 - 23) -> 23.
    assert scores("ImageLocality", pod(image=image), nodes) == {"has": 23, "lacks": 0}
    # An untagged reference means :latest.
    nodes = [node("has", images=[(["registry.example/app:latest"], 500 * MB)]), node("lacks")]
    assert scores("ImageLocality", pod(image="registry.example/app"), nodes)["has"] == 23


SPREAD_ANYWAY = {
    "maxSkew": 1,
    "topologyKey": HOSTNAME,
    "whenUnsatisfiable": "ScheduleAnyway",
    "labelSelector": {"matchLabels": {"app": "web"}},
}


def _web(name: str, **kwargs: Any) -> dict[str, Any]:
    return pod(name, labels={"app": "web"}, **kwargs)


def test_spread_schedule_anyway_by_hostname() -> None:
    nodes = [node("a"), node("b"), node("c")]
    placed = [on("a", _web("w1")), on("a", _web("w2")), on("b", _web("w3"))]
    # counts 2, 1, 0 weighted by log(3 + 2): 3, 2, 0; fewer pods score higher.
    pending = pod(labels={"app": "web"}, spread=[SPREAD_ANYWAY])
    assert scores("PodTopologySpread", pending, nodes, placed) == {"a": 0, "b": 33, "c": 100}


def test_spread_nodes_without_the_key_score_zero() -> None:
    zone = {**SPREAD_ANYWAY, "topologyKey": ZONE}
    nodes = [node("a", labels={ZONE: "z1"}), node("b", labels={ZONE: "z2"}), node("bare")]
    placed = [on("a", _web("w1"))]
    pending = pod(labels={"app": "web"}, spread=[zone])
    assert scores("PodTopologySpread", pending, nodes, placed) == {"a": 0, "b": 100, "bare": 0}


def _replica_set(cache: Cache) -> None:
    cache.set_controller(
        "ReplicaSet",
        "default",
        "web",
        {"spec": {"selector": {"matchLabels": {"app": "web"}}}},
    )


def test_default_spreading_for_a_replica_set() -> None:
    nodes = [node("a"), node("b"), node("c")]
    owner = ("ReplicaSet", "web")
    placed = [
        on("a", _web("w1", owner=owner)),
        on("a", _web("w2", owner=owner)),
        on("b", _web("w3", owner=owner)),
    ]
    pending = _web("new", owner=owner)
    from tests.unit.scheduler import builders

    cache = builders.cache_with(nodes, placed)
    _replica_set(cache)
    instance = builders.plugin("PodTopologySpread", cache)
    from timonel.scheduler.framework import CycleState, PodInfo

    snapshot = cache.snapshot()
    state = CycleState(snapshot)
    info = PodInfo(pending)
    assert instance.pre_score(state, info, snapshot.nodes).is_success
    raw = instance.score(state, info, snapshot.nodes)
    instance.normalize(state, info, snapshot.nodes, raw)
    # hostname, maxSkew 3: 2*log(5)+2 -> 5, log(5)+2 -> 4, 2; the zone constraint adds
    # nothing on nodes without zone labels. Normalised: 100 * (7 - s) / 5.
    assert raw == [40, 60, 100]


def test_default_spreading_needs_a_known_controller() -> None:
    owner = ("ReplicaSet", "web")
    # Without the ReplicaSet (or a Service) there is no selector, so nothing to spread.
    assert scores("PodTopologySpread", _web("new", owner=owner), [node("a")]) == {}


def test_preferred_pod_affinity_and_anti_affinity() -> None:
    term = {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": HOSTNAME}
    nodes = [node("a"), node("b")]
    placed = [on("a", pod("db", labels={"app": "db"}))]
    near = pod(
        affinity={
            "podAffinity": {
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {"weight": 50, "podAffinityTerm": term}
                ]
            }
        }
    )
    assert scores("InterPodAffinity", near, nodes, placed) == {"a": 100, "b": 0}
    far = pod(
        affinity={
            "podAntiAffinity": {
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {"weight": 50, "podAffinityTerm": term}
                ]
            }
        }
    )
    assert scores("InterPodAffinity", far, nodes, placed) == {"a": 0, "b": 100}


def test_existing_pods_required_affinity_attracts_the_pods_they_want() -> None:
    wants_web = pod(
        "fan",
        affinity={
            "podAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [
                    {"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": HOSTNAME}
                ]
            }
        },
    )
    nodes = [node("a"), node("b")]
    placed = [on("a", wants_web)]
    assert scores("InterPodAffinity", pod(labels={"app": "web"}), nodes, placed) == {
        "a": 100,
        "b": 0,
    }
    assert scores("InterPodAffinity", pod(labels={"app": "db"}), nodes, placed) == {}


@pytest.mark.parametrize(
    ("counts", "expected"),
    # 100 * 1 / 3 floors to 33 before it is reversed: 67.
    [([0, 0], [100, 100]), ([1, 0], [0, 100]), ([3, 1, 0], [0, 67, 100])],
)
def test_taint_score_normalisation(counts: list[int], expected: list[int]) -> None:
    from timonel.scheduler.framework import default_normalize_score

    values = list(counts)
    default_normalize_score(values, reverse=True)
    assert values == expected
