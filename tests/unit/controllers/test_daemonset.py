"""The DaemonSet controller's decisions: which nodes run a daemon pod, what the pod looks
like, what to create and delete, rolling updates, status, history cleanup."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from timonel.api.objects import Object
from timonel.controllers.daemonset import (
    add_daemon_tolerations,
    compute_status,
    daemon_pod,
    node_should_run,
    plan_history_cleanup,
    plan_nodes,
    plan_rolling_update,
    pod_template,
    pods_by_node,
    rolling_update_limits,
    target_node_name,
    tolerates,
)

NOW = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
HASH = "newhash"


def stamp(seconds_before_now: float) -> str:
    return (NOW - timedelta(seconds=seconds_before_now)).strftime("%Y-%m-%dT%H:%M:%SZ")


def node(
    name: str, labels: dict[str, str] | None = None, taints: list[dict[str, str]] | None = None
) -> Object:
    return {"metadata": {"name": name, "labels": labels or {}}, "spec": {"taints": taints or []}}


def daemonset(
    *,
    pod_spec: dict[str, Any] | None = None,
    rolling: dict[str, Any] | None = None,
    strategy: str = "RollingUpdate",
) -> Object:
    update: dict[str, Any] = {"type": strategy}
    if strategy == "RollingUpdate":
        update["rollingUpdate"] = (
            rolling if rolling is not None else {"maxUnavailable": 1, "maxSurge": 0}
        )
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {
            "name": "agent",
            "namespace": "kube-system",
            "uid": "ds-uid",
            "generation": 2,
            "annotations": {"deprecated.daemonset.template.generation": "2"},
        },
        "spec": {
            "selector": {"matchLabels": {"app": "agent"}},
            "template": {
                "metadata": {"labels": {"app": "agent"}},
                "spec": {"containers": [{"name": "agent", "image": "agent:1"}], **(pod_spec or {})},
            },
            "updateStrategy": update,
        },
    }


def pod(
    name: str,
    node_name: str,
    *,
    hash_value: str = HASH,
    phase: str = "Running",
    ready: bool = True,
    bound: bool = False,
    created: float = 600.0,
    deleting: bool = False,
) -> Object:
    meta: dict[str, Any] = {
        "name": name,
        "namespace": "kube-system",
        "labels": {"app": "agent", "controller-revision-hash": hash_value},
        "creationTimestamp": stamp(created),
    }
    if deleting:
        meta["deletionTimestamp"] = stamp(0)
    spec: dict[str, Any] = {
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {
                            "matchFields": [
                                {"key": "metadata.name", "operator": "In", "values": [node_name]}
                            ]
                        }
                    ]
                }
            }
        }
    }
    if bound:
        spec["nodeName"] = node_name
    conditions = [
        {"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": stamp(300)}
    ]
    return {"metadata": meta, "spec": spec, "status": {"phase": phase, "conditions": conditions}}


# -- eligibility ----------------------------------------------------------------------


def test_daemon_pods_get_the_automatic_tolerations() -> None:
    spec: dict[str, Any] = {
        "tolerations": [
            {
                "key": "node.kubernetes.io/not-ready",
                "operator": "Exists",
                "effect": "NoExecute",
                "tolerationSeconds": 300,
            },
            {"key": "team", "operator": "Equal", "value": "a", "effect": "NoSchedule"},
        ]
    }
    add_daemon_tolerations(spec)
    assert spec["tolerations"] == [
        # A matching toleration is replaced: daemon pods are never evicted for it.
        {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
        {"key": "team", "operator": "Equal", "value": "a", "effect": "NoSchedule"},
        {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
        {"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"},
        {"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": "NoSchedule"},
        {"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": "NoSchedule"},
        {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"},
    ]
    host_network: dict[str, Any] = {"hostNetwork": True}
    add_daemon_tolerations(host_network)
    assert host_network["tolerations"][-1] == {
        "key": "node.kubernetes.io/network-unavailable",
        "operator": "Exists",
        "effect": "NoSchedule",
    }


def test_toleration_matching() -> None:
    taint = {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}
    assert tolerates({"key": "dedicated", "operator": "Equal", "value": "gpu"}, taint)
    assert tolerates({"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}, taint)
    assert not tolerates({"key": "dedicated", "value": "cpu"}, taint)
    assert not tolerates({"key": "dedicated", "operator": "Exists", "effect": "NoExecute"}, taint)
    assert tolerates({"operator": "Exists"}, taint)


def test_node_selector_and_affinity_decide_eligibility() -> None:
    by_selector = daemonset(pod_spec={"nodeSelector": {"disk": "ssd"}})
    assert node_should_run(by_selector, node("a", {"disk": "ssd"})) == (True, True)
    assert node_should_run(by_selector, node("b", {"disk": "hdd"})) == (False, False)

    affinity = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a", "b"]}]},
                    {"matchExpressions": [{"key": "cores", "operator": "Gt", "values": ["8"]}]},
                    {
                        "matchFields": [
                            {"key": "metadata.name", "operator": "In", "values": ["special"]}
                        ]
                    },
                ]
            }
        }
    }
    by_affinity = daemonset(pod_spec={"affinity": affinity})
    assert node_should_run(by_affinity, node("x", {"zone": "b"}))[0]
    assert node_should_run(by_affinity, node("y", {"cores": "16"}))[0]
    assert not node_should_run(by_affinity, node("z", {"cores": "4", "zone": "c"}))[0]
    assert node_should_run(by_affinity, node("special"))[0]
    not_in = daemonset(
        pod_spec={
            "affinity": {
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [
                            {
                                "matchExpressions": [
                                    {
                                        "key": "role",
                                        "operator": "NotIn",
                                        "values": ["control-plane"],
                                    }
                                ]
                            }
                        ]
                    }
                }
            }
        }
    )
    assert node_should_run(not_in, node("worker"))[0]
    assert not node_should_run(not_in, node("cp", {"role": "control-plane"}))[0]
    pinned = daemonset(pod_spec={"nodeName": "only-here"})
    assert node_should_run(pinned, node("elsewhere")) == (False, False)
    assert node_should_run(pinned, node("only-here")) == (True, True)


def test_taints() -> None:
    ds = daemonset()
    # Node condition taints are tolerated by every daemon pod.
    for key, effect in (
        ("node.kubernetes.io/not-ready", "NoExecute"),
        ("node.kubernetes.io/unreachable", "NoExecute"),
        ("node.kubernetes.io/unschedulable", "NoSchedule"),
        ("node.kubernetes.io/memory-pressure", "NoSchedule"),
    ):
        assert node_should_run(ds, node("n", taints=[{"key": key, "effect": effect}])) == (
            True,
            True,
        )
    # An untolerated NoSchedule taint: no new pod, but one already there stays.
    assert node_should_run(
        ds, node("n", taints=[{"key": "dedicated", "value": "db", "effect": "NoSchedule"}])
    ) == (
        False,
        True,
    )
    # An untolerated NoExecute taint: the pod must go.
    assert node_should_run(
        ds, node("n", taints=[{"key": "dedicated", "value": "db", "effect": "NoExecute"}])
    ) == (
        False,
        False,
    )
    tolerant = daemonset(pod_spec={"tolerations": [{"key": "dedicated", "operator": "Exists"}]})
    assert node_should_run(
        tolerant, node("n", taints=[{"key": "dedicated", "effect": "NoExecute"}])
    ) == (True, True)
    # The network-unavailable taint is tolerated by host-network daemons only.
    unavailable = node(
        "n", taints=[{"key": "node.kubernetes.io/network-unavailable", "effect": "NoSchedule"}]
    )
    assert not node_should_run(ds, unavailable)[0]
    assert node_should_run(daemonset(pod_spec={"hostNetwork": True}), unavailable)[0]


# -- the pods -------------------------------------------------------------------------


def test_daemon_pod_is_pinned_to_its_node() -> None:
    existing = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}
                ]
            },
            "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 1, "preference": {}}],
        }
    }
    ds = daemonset(pod_spec={"affinity": existing})
    made = daemon_pod(ds, pod_template(ds, "abc123"), "node-7")
    meta = made["metadata"]
    assert meta["generateName"] == "agent-"
    assert meta["namespace"] == "kube-system"
    assert meta["labels"] == {
        "app": "agent",
        "pod-template-generation": "2",
        "controller-revision-hash": "abc123",
    }
    assert meta["ownerReferences"] == [
        {
            "apiVersion": "apps/v1",
            "kind": "DaemonSet",
            "name": "agent",
            "uid": "ds-uid",
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    node_affinity = made["spec"]["affinity"]["nodeAffinity"]
    assert node_affinity["requiredDuringSchedulingIgnoredDuringExecution"] == {
        "nodeSelectorTerms": [
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["node-7"]}]}
        ]
    }
    assert node_affinity["preferredDuringSchedulingIgnoredDuringExecution"] == [
        {"weight": 1, "preference": {}}
    ]
    assert len(made["spec"]["tolerations"]) == 6
    assert target_node_name(made) == "node-7"
    # The set's own template is left alone.
    assert "tolerations" not in ds["spec"]["template"]["spec"]


def test_target_node_prefers_the_binding() -> None:
    bound = pod("p", "planned", bound=True)
    bound["spec"]["nodeName"] = "actual"
    assert target_node_name(bound) == "actual"
    assert target_node_name({"metadata": {"name": "stray"}, "spec": {}}) is None


# -- what to create and delete ----------------------------------------------------------


def test_manage_creates_missing_and_removes_extra_pods() -> None:
    ds = daemonset(pod_spec={"nodeSelector": {"role": "worker"}})
    nodes = [
        node("a", {"role": "worker"}),
        node("b", {"role": "worker"}),
        node("c", {"role": "db"}),
    ]
    pods = [
        pod("agent-b-old", "b", created=900),
        pod("agent-b-new", "b", created=60),
        pod("agent-c", "c"),
        pod("agent-gone", "vanished"),
        pod("agent-gone-bound", "vanished-too", bound=True),
        pod("agent-done", "a", phase="Succeeded", deleting=True),
    ]
    plan = plan_nodes(ds, nodes, pods_by_node(pods), HASH, NOW)
    # The finished pod on its way out does not count: "a" needs a pod.
    assert plan.create_on == ["a"]
    # The newer of two pods on a node, the pod on an ineligible node, and an unscheduled
    # pod for a node that no longer exists (a bound one is the pod GC's).
    assert sorted(plan.delete) == ["agent-b-new", "agent-c", "agent-gone"]


def test_manage_reports_finished_pods() -> None:
    ds = daemonset()
    pods = [pod("agent-a", "a", phase="Failed"), pod("agent-b", "b", phase="Succeeded")]
    plan = plan_nodes(ds, [node("a"), node("b")], pods_by_node(pods), HASH, NOW)
    assert [(p["metadata"]["name"], n) for p, n in plan.failed] == [("agent-a", "a")]
    assert [(p["metadata"]["name"], n) for p, n in plan.succeeded] == [("agent-b", "b")]
    # The replacement comes once the finished pod is gone.
    assert plan.create_on == []
    assert plan.delete == []


def test_surge_keeps_old_pod_until_new_one_is_available() -> None:
    ds = daemonset(rolling={"maxUnavailable": 0, "maxSurge": 1})
    waiting = [
        pod("old", "a", hash_value="old", created=900),
        pod("new", "a", ready=False, created=10),
    ]
    assert plan_nodes(ds, [node("a")], pods_by_node(waiting), HASH, NOW).delete == []
    available = [pod("old", "a", hash_value="old", created=900), pod("new", "a", created=10)]
    assert plan_nodes(ds, [node("a")], pods_by_node(available), HASH, NOW).delete == ["old"]


# -- rolling updates --------------------------------------------------------------------


def test_rolling_update_within_max_unavailable() -> None:
    ds = daemonset(rolling={"maxUnavailable": 1, "maxSurge": 0})
    nodes = [node(n) for n in ("a", "b", "c")]
    old = [pod(f"agent-{n}", n, hash_value="old") for n in ("a", "b", "c")]
    delete, create = plan_rolling_update(ds, nodes, pods_by_node(old), HASH, NOW)
    assert (len(delete), create) == (1, [])

    # A replaced node whose new pod is not available yet uses up the budget...
    in_progress = [
        pod("agent-a2", "a", ready=False),
        pod("agent-b", "b", hash_value="old"),
        pod("agent-c", "c", hash_value="old"),
    ]
    assert plan_rolling_update(ds, nodes, pods_by_node(in_progress), HASH, NOW) == ([], [])
    # ...but an old pod that is not available anyway is replaced regardless.
    broken = [pod("agent-a2", "a", ready=False), pod("agent-b", "b", hash_value="old", ready=False)]
    assert plan_rolling_update(ds, nodes[:2], pods_by_node(broken), HASH, NOW) == (["agent-b"], [])


def test_rolling_update_limits() -> None:
    assert rolling_update_limits(
        daemonset(rolling={"maxUnavailable": "50%", "maxSurge": 0}), 5
    ) == (0, 3)
    assert rolling_update_limits(
        daemonset(rolling={"maxUnavailable": 0, "maxSurge": "10%"}), 5
    ) == (1, 0)
    assert rolling_update_limits(daemonset(rolling={"maxUnavailable": 0, "maxSurge": 0}), 5) == (
        0,
        1,
    )


def test_rolling_update_with_surge_starts_new_pods_first() -> None:
    ds = daemonset(rolling={"maxUnavailable": 0, "maxSurge": 1})
    nodes = [node("a"), node("b")]
    old = [pod("agent-a", "a", hash_value="old"), pod("agent-b", "b", hash_value="old")]
    delete, create = plan_rolling_update(ds, nodes, pods_by_node(old), HASH, NOW)
    assert (delete, len(create)) == ([], 1)
    surged = [
        pod("agent-a", "a", hash_value="old"),
        pod("agent-a2", "a"),
        pod("agent-b", "b", hash_value="old"),
    ]
    assert plan_rolling_update(ds, nodes, pods_by_node(surged), HASH, NOW) == (["agent-a"], ["b"])


def test_on_delete_pods_count_as_updated_by_generation() -> None:
    ds = daemonset(strategy="OnDelete")
    current = pod("agent-a", "a", hash_value="other")
    current["metadata"]["labels"]["pod-template-generation"] = "2"
    stale = pod("agent-b", "b", hash_value="other")
    status = compute_status(ds, [node("a"), node("b")], pods_by_node([current, stale]), HASH, NOW)
    assert status["updatedNumberScheduled"] == 1


# -- status and history -----------------------------------------------------------------


def test_status_counters() -> None:
    ds = daemonset(pod_spec={"nodeSelector": {"role": "worker"}})
    ds["spec"]["minReadySeconds"] = 600
    nodes = [node(n, {"role": "worker"}) for n in ("a", "b", "c")] + [node("d", {"role": "db"})]
    pods = [
        pod("agent-a", "a"),  # ready for 300s: not yet available
        pod("agent-b", "b", ready=False, hash_value="old"),
        pod("agent-d", "d"),
    ]
    assert compute_status(ds, nodes, pods_by_node(pods), HASH, NOW) == {
        "desiredNumberScheduled": 3,
        "currentNumberScheduled": 2,
        "numberMisscheduled": 1,
        "numberReady": 1,
        "updatedNumberScheduled": 1,
        "numberAvailable": 0,
        "numberUnavailable": 3,
    }


def test_history_cleanup_keeps_the_limit_and_live_revisions() -> None:
    def revision(number: int) -> Object:
        return {
            "metadata": {
                "name": f"agent-h{number}",
                "labels": {"controller-revision-hash": f"h{number}"},
            },
            "revision": number,
        }

    old = [revision(n) for n in (4, 1, 3, 2)]
    doomed = plan_history_cleanup(old, live_hashes={"h1"}, history_limit=2)
    assert [r["revision"] for r in doomed] == [2, 3]
    assert plan_history_cleanup(old, live_hashes=set(), history_limit=4) == []
