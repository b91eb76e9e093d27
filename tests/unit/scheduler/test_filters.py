"""Filter plugins as tables: a pending pod, nodes, pods already placed -> feasible nodes
and the exact reasons kube-scheduler gives for the others."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.scheduler.builders import filter_verdicts, node, on, pod

CONTROL_PLANE = {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}
GPU_TAINT = {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}
ZONE = "topology.kubernetes.io/zone"


def _in(key: str, *values: str) -> dict[str, Any]:
    return {"key": key, "operator": "In", "values": list(values)}


def _required(*terms: dict[str, Any]) -> dict[str, Any]:
    return {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": list(terms)}
        }
    }


def _case(
    name: str,
    plugin: str,
    pending: dict[str, Any],
    nodes: list[dict[str, Any]],
    expected: dict[str, tuple[str, ...]],
    placed: list[dict[str, Any]] | None = None,
) -> Any:
    return pytest.param(plugin, pending, nodes, placed or [], expected, id=name)


WERE_UNSCHEDULABLE = ("node(s) were unschedulable",)
AFFINITY_SELECTOR = ("node(s) didn't match Pod's node affinity/selector",)

CASES = [
    # -- NodeUnschedulable -------------------------------------------------------------------
    _case(
        "cordoned node rejected",
        "NodeUnschedulable",
        pod(),
        [node("a", unschedulable=True), node("b")],
        {"a": WERE_UNSCHEDULABLE, "b": ()},
    ),
    _case(
        "toleration of the unschedulable taint",
        "NodeUnschedulable",
        pod(
            tolerations=[
                {
                    "key": "node.kubernetes.io/unschedulable",
                    "operator": "Exists",
                    "effect": "NoSchedule",
                }
            ]
        ),
        [node("a", unschedulable=True)],
        {"a": ()},
    ),
    _case(
        "tolerate everything",
        "NodeUnschedulable",
        pod(tolerations=[{"operator": "Exists"}]),
        [node("a", unschedulable=True)],
        {"a": ()},
    ),
    # -- NodeName ----------------------------------------------------------------------------
    _case(
        "nodeName picks one node",
        "NodeName",
        pod(node_name="b"),
        [node("a"), node("b")],
        {"a": ("node(s) didn't match the requested node name",), "b": ()},
    ),
    _case("no nodeName fits all", "NodeName", pod(), [node("a")], {"a": ()}),
    # -- TaintToleration ---------------------------------------------------------------------
    _case(
        "untolerated taint names key and value",
        "TaintToleration",
        pod(),
        [node("a", taints=[GPU_TAINT]), node("b")],
        {"a": ("node(s) had untolerated taint {dedicated: gpu}",), "b": ()},
    ),
    _case(
        "taint without value",
        "TaintToleration",
        pod(),
        [node("cp", taints=[CONTROL_PLANE])],
        {"cp": ("node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }",)},
    ),
    _case(
        "NoExecute counts, PreferNoSchedule does not",
        "TaintToleration",
        pod(),
        [
            node("a", taints=[{"key": "k", "value": "v", "effect": "NoExecute"}]),
            node("b", taints=[{"key": "k", "value": "v", "effect": "PreferNoSchedule"}]),
        ],
        {"a": ("node(s) had untolerated taint {k: v}",), "b": ()},
    ),
    _case(
        "Equal toleration needs the value",
        "TaintToleration",
        pod(
            tolerations=[
                {"key": "dedicated", "operator": "Equal", "value": "db", "effect": "NoSchedule"}
            ]
        ),
        [node("a", taints=[GPU_TAINT])],
        {"a": ("node(s) had untolerated taint {dedicated: gpu}",)},
    ),
    _case(
        "Exists toleration ignores the value",
        "TaintToleration",
        pod(tolerations=[{"key": "dedicated", "operator": "Exists"}]),
        [node("a", taints=[GPU_TAINT])],
        {"a": ()},
    ),
    _case(
        "toleration for another effect",
        "TaintToleration",
        pod(tolerations=[{"key": "dedicated", "value": "gpu", "effect": "NoExecute"}]),
        [node("a", taints=[GPU_TAINT])],
        {"a": ("node(s) had untolerated taint {dedicated: gpu}",)},
    ),
    _case(
        "first untolerated taint is reported",
        "TaintToleration",
        pod(tolerations=[{"key": "dedicated", "operator": "Exists"}]),
        [
            node(
                "a",
                taints=[
                    GPU_TAINT,
                    {"key": "x", "value": "1", "effect": "NoSchedule"},
                    {"key": "y", "value": "2", "effect": "NoSchedule"},
                ],
            )
        ],
        {"a": ("node(s) had untolerated taint {x: 1}",)},
    ),
    # -- NodeAffinity ------------------------------------------------------------------------
    _case(
        "nodeSelector",
        "NodeAffinity",
        pod(node_selector={"disk": "ssd"}),
        [node("a", labels={"disk": "ssd"}), node("b", labels={"disk": "hdd"}), node("c")],
        {"a": (), "b": AFFINITY_SELECTOR, "c": AFFINITY_SELECTOR},
    ),
    _case(
        "required terms are ORed, expressions ANDed",
        "NodeAffinity",
        pod(
            affinity=_required(
                {"matchExpressions": [_in(ZONE, "z1"), {"key": "gpu", "operator": "Exists"}]},
                {"matchExpressions": [_in(ZONE, "z2")]},
            )
        ),
        [
            node("a", labels={ZONE: "z1", "gpu": "1"}),
            node("b", labels={ZONE: "z1"}),
            node("c", labels={ZONE: "z2"}),
        ],
        {"a": (), "b": AFFINITY_SELECTOR, "c": ()},
    ),
    _case(
        "NotIn and DoesNotExist",
        "NodeAffinity",
        pod(
            affinity=_required(
                {
                    "matchExpressions": [
                        {"key": ZONE, "operator": "NotIn", "values": ["z1"]},
                        {"key": "spot", "operator": "DoesNotExist"},
                    ]
                }
            )
        ),
        [
            node("a", labels={ZONE: "z1"}),
            node("b", labels={ZONE: "z2"}),
            node("c", labels={"spot": "true"}),
            node("d"),
        ],
        {"a": AFFINITY_SELECTOR, "b": (), "c": AFFINITY_SELECTOR, "d": ()},
    ),
    _case(
        "Gt and Lt compare integers",
        "NodeAffinity",
        pod(
            affinity=_required(
                {
                    "matchExpressions": [
                        {"key": "cores", "operator": "Gt", "values": ["4"]},
                        {"key": "cores", "operator": "Lt", "values": ["16"]},
                    ]
                }
            )
        ),
        [
            node("a", labels={"cores": "8"}),
            node("b", labels={"cores": "4"}),
            node("c", labels={"cores": "many"}),
        ],
        {"a": (), "b": AFFINITY_SELECTOR, "c": AFFINITY_SELECTOR},
    ),
    _case(
        "nodeSelector and affinity both apply",
        "NodeAffinity",
        pod(
            node_selector={"disk": "ssd"},
            affinity=_required({"matchExpressions": [_in(ZONE, "z1")]}),
        ),
        [node("a", labels={"disk": "ssd", ZONE: "z1"}), node("b", labels={"disk": "ssd"})],
        {"a": (), "b": AFFINITY_SELECTOR},
    ),
    _case(
        "matchFields on metadata.name",
        "NodeAffinity",
        pod(affinity=_required({"matchFields": [_in("metadata.name", "b")]})),
        [node("a"), node("b")],
        {"a": AFFINITY_SELECTOR, "b": ()},
    ),
    _case(
        "conflicting names fail in PreFilter",
        "NodeAffinity",
        pod(
            affinity=_required(
                {"matchFields": [_in("metadata.name", "a"), _in("metadata.name", "b")]}
            )
        ),
        [node("a"), node("b")],
        {"a": ("pod affinity terms conflict",), "b": ("pod affinity terms conflict",)},
    ),
    # -- NodeResourcesFit --------------------------------------------------------------------
    _case(
        "cpu and memory",
        "NodeResourcesFit",
        pod(cpu="2", memory="1Gi"),
        [
            node("a", cpu="1"),
            node("b", memory="512Mi"),
            node("c", cpu="1", memory="512Mi"),
            node("d"),
        ],
        {
            "a": ("Insufficient cpu",),
            "b": ("Insufficient memory",),
            "c": ("Insufficient cpu", "Insufficient memory"),
            "d": (),
        },
    ),
    _case(
        "what placed pods request is taken",
        "NodeResourcesFit",
        pod(cpu="2"),
        [node("a"), node("b")],
        {"a": ("Insufficient cpu",), "b": ()},
        placed=[on("a", pod("x", cpu="3"))],
    ),
    _case(
        "pod count",
        "NodeResourcesFit",
        pod(),
        [node("a", pods="1"), node("b", pods="2")],
        {"a": ("Too many pods",), "b": ()},
        placed=[on("a", pod("x")), on("b", pod("y"))],
    ),
    _case(
        "extended resources and ephemeral storage",
        "NodeResourcesFit",
        pod(requests={"example.com/gpu": "2", "ephemeral-storage": "10Gi"}),
        [
            node("a", extra={"example.com/gpu": "1", "ephemeral-storage": "20Gi"}),
            node("b", extra={"example.com/gpu": "4"}),
            node("c", extra={"example.com/gpu": "4", "ephemeral-storage": "20Gi"}),
        ],
        {"a": ("Insufficient example.com/gpu",), "b": ("Insufficient ephemeral-storage",), "c": ()},
    ),
    _case(
        "an init container needs its own peak",
        "NodeResourcesFit",
        pod(
            cpu="1",
            init_containers=[{"name": "i", "image": "x", "resources": {"requests": {"cpu": "3"}}}],
        ),
        [node("a", cpu="2"), node("b", cpu="3")],
        {"a": ("Insufficient cpu",), "b": ()},
    ),
    _case(
        "sidecars add to the containers",
        "NodeResourcesFit",
        pod(
            cpu="1",
            init_containers=[
                {
                    "name": "s",
                    "image": "x",
                    "restartPolicy": "Always",
                    "resources": {"requests": {"cpu": "2"}},
                }
            ],
        ),
        [node("a", cpu="2"), node("b", cpu="3")],
        {"a": ("Insufficient cpu",), "b": ()},
    ),
    _case(
        "overhead counts",
        "NodeResourcesFit",
        pod(cpu="1", overhead={"cpu": "500m"}),
        [node("a", cpu="1"), node("b", cpu="1500m")],
        {"a": ("Insufficient cpu",), "b": ()},
    ),
    _case(
        "a pod asking nothing fits a full node",
        "NodeResourcesFit",
        pod(),
        [node("a", cpu="1")],
        {"a": ()},
        placed=[on("a", pod("x", cpu="1"))],
    ),
    # -- NodePorts ---------------------------------------------------------------------------
    _case(
        "host port taken",
        "NodePorts",
        pod(host_ports=[8080]),
        [node("a"), node("b")],
        {"a": ("node(s) didn't have free ports for the requested pod ports",), "b": ()},
        placed=[on("a", pod("x", host_ports=[8080])), on("b", pod("y", host_ports=[9090]))],
    ),
]


@pytest.mark.parametrize(("plugin", "pending", "nodes", "placed", "expected"), CASES)
def test_filter(plugin: str, pending: Any, nodes: Any, placed: Any, expected: Any) -> None:
    assert filter_verdicts(plugin, pending, nodes, placed) == expected


def _port_pod(name: str, port: int, ip: str = "", protocol: str = "TCP") -> dict[str, Any]:
    item = pod(name)
    entry: dict[str, Any] = {"containerPort": port, "hostPort": port, "protocol": protocol}
    if ip:
        entry["hostIP"] = ip
    item["spec"]["containers"][0]["ports"] = [entry]
    return item


@pytest.mark.parametrize(
    ("used", "wanted", "conflict"),
    [
        (("", 80, "TCP"), ("", 80, "TCP"), True),
        (("", 80, "TCP"), ("", 80, "UDP"), False),
        (("10.0.0.1", 80, "TCP"), ("10.0.0.2", 80, "TCP"), False),
        (("10.0.0.1", 80, "TCP"), ("", 80, "TCP"), True),
        (("", 80, "TCP"), ("10.0.0.2", 80, "TCP"), True),
        (("10.0.0.1", 80, "TCP"), ("10.0.0.1", 80, "TCP"), True),
    ],
)
def test_host_port_addresses(
    used: tuple[str, int, str], wanted: tuple[str, int, str], conflict: bool
) -> None:
    placed = on("a", _port_pod("x", used[1], used[0], used[2]))
    pending = _port_pod("p", wanted[1], wanted[0], wanted[2])
    verdicts = filter_verdicts("NodePorts", pending, [node("a")], [placed])
    assert bool(verdicts["a"]) is conflict


def test_ignored_extended_resources() -> None:
    verdicts = filter_verdicts(
        "NodeResourcesFit",
        pod(requests={"example.com/gpu": "1"}),
        [node("a")],
        args={"ignoredResources": ["example.com/gpu"]},
    )
    assert verdicts == {"a": ()}


# -- PodTopologySpread (DoNotSchedule) ----------------------------------------------------------

SPREAD_BY_ZONE = {
    "maxSkew": 1,
    "topologyKey": ZONE,
    "whenUnsatisfiable": "DoNotSchedule",
    "labelSelector": {"matchLabels": {"app": "web"}},
}
SPREAD_REASON = ("node(s) didn't match pod topology spread constraints",)


def _zoned(name: str, zone: str) -> dict[str, Any]:
    return node(name, labels={ZONE: zone})


def _web(name: str) -> dict[str, Any]:
    return pod(name, labels={"app": "web"})


def test_spread_rejects_the_crowded_zone() -> None:
    nodes = [_zoned("a1", "z1"), _zoned("a2", "z1"), _zoned("b1", "z2"), node("bare")]
    placed = [on("a1", _web("w1")), on("a2", _web("w2")), on("b1", _web("w3"))]
    verdicts = filter_verdicts(
        "PodTopologySpread", pod(labels={"app": "web"}, spread=[SPREAD_BY_ZONE]), nodes, placed
    )
    assert verdicts == {
        "a1": SPREAD_REASON,
        "a2": SPREAD_REASON,
        "b1": (),
        "bare": ("node(s) didn't match pod topology spread constraints (missing required label)",),
    }


def test_spread_counts_only_matching_pods_in_the_namespace() -> None:
    nodes = [_zoned("a", "z1"), _zoned("b", "z2")]
    placed = [
        on("a", _web("w1")),
        on("a", pod("other", labels={"app": "db"})),
        on("b", pod("elsewhere", namespace="prod", labels={"app": "web"})),
    ]
    pending = pod(labels={"app": "web"}, spread=[SPREAD_BY_ZONE])
    assert filter_verdicts("PodTopologySpread", pending, nodes, placed) == {
        "a": SPREAD_REASON,
        "b": (),
    }


def test_spread_min_domains_counts_missing_domains_as_empty() -> None:
    nodes = [_zoned("a", "z1"), _zoned("b", "z2")]
    placed = [on("a", _web("w1")), on("b", _web("w2"))]
    constraint = {**SPREAD_BY_ZONE, "minDomains": 3}
    pending = pod(labels={"app": "web"}, spread=[constraint])
    # Two domains fewer than minDomains: the global minimum is 0, so 1 + 1 - 0 > 1.
    assert filter_verdicts("PodTopologySpread", pending, nodes, placed) == {
        "a": SPREAD_REASON,
        "b": SPREAD_REASON,
    }


def test_spread_honours_node_affinity_when_counting_domains() -> None:
    nodes = [
        node("a", labels={ZONE: "z1", "pool": "web"}),
        node("b", labels={ZONE: "z2", "pool": "web"}),
        node("c", labels={ZONE: "z3", "pool": "batch"}),
    ]
    placed = [on("a", _web("w1")), on("b", _web("w2"))]
    pending = pod(labels={"app": "web"}, spread=[SPREAD_BY_ZONE], node_selector={"pool": "web"})
    # z3 holds no web pod but is not a domain for this pod: the minimum is 1, so z1 and z2
    # are fine (1 + 1 - 1 <= 1).
    verdicts = filter_verdicts("PodTopologySpread", pending, nodes, placed)
    assert verdicts["a"] == () and verdicts["b"] == ()
    # Without the node selector z3 is a domain with 0 pods.
    verdicts = filter_verdicts(
        "PodTopologySpread", pod(labels={"app": "web"}, spread=[SPREAD_BY_ZONE]), nodes, placed
    )
    assert verdicts == {"a": SPREAD_REASON, "b": SPREAD_REASON, "c": ()}


def test_spread_on_hostname() -> None:
    hostname = {**SPREAD_BY_ZONE, "topologyKey": "kubernetes.io/hostname"}
    nodes = [node("a"), node("b"), node("c")]
    placed = [on("a", _web("w1")), on("b", _web("w2"))]
    verdicts = filter_verdicts(
        "PodTopologySpread", pod(labels={"app": "web"}, spread=[hostname]), nodes, placed
    )
    assert verdicts == {"a": SPREAD_REASON, "b": SPREAD_REASON, "c": ()}


def test_spread_match_label_keys() -> None:
    constraint = {
        **SPREAD_BY_ZONE,
        "labelSelector": {"matchLabels": {"app": "web"}},
        "matchLabelKeys": ["version"],
    }
    nodes = [_zoned("a", "z1"), _zoned("b", "z2")]
    placed = [
        on("a", pod("old1", labels={"app": "web", "version": "1"})),
        on("a", pod("old2", labels={"app": "web", "version": "1"})),
    ]
    pending = pod(labels={"app": "web", "version": "2"}, spread=[constraint])
    # Only version 2 pods count: none yet, so both zones are fine.
    assert filter_verdicts("PodTopologySpread", pending, nodes, placed) == {"a": (), "b": ()}


# -- InterPodAffinity -----------------------------------------------------------------------

HOSTNAME = "kubernetes.io/hostname"
AFFINITY_REASON = ("node(s) didn't match pod affinity rules",)
ANTI_REASON = ("node(s) didn't match pod anti-affinity rules",)
EXISTING_REASON = ("node(s) didn't satisfy existing pods anti-affinity rules",)


def _term(labels: dict[str, str], key: str = HOSTNAME, **extra: Any) -> dict[str, Any]:
    return {"labelSelector": {"matchLabels": labels}, "topologyKey": key, **extra}


def _pod_affinity(kind: str, *terms: dict[str, Any]) -> dict[str, Any]:
    return {kind: {"requiredDuringSchedulingIgnoredDuringExecution": list(terms)}}


def test_required_affinity_follows_the_matching_pod() -> None:
    nodes = [node("a"), node("b")]
    placed = [on("b", pod("db", labels={"app": "db"}))]
    pending = pod(affinity=_pod_affinity("podAffinity", _term({"app": "db"})))
    assert filter_verdicts("InterPodAffinity", pending, nodes, placed) == {
        "a": AFFINITY_REASON,
        "b": (),
    }


def test_required_affinity_by_zone() -> None:
    nodes = [_zoned("a", "z1"), _zoned("b", "z1"), _zoned("c", "z2")]
    placed = [on("a", pod("db", labels={"app": "db"}))]
    pending = pod(affinity=_pod_affinity("podAffinity", _term({"app": "db"}, ZONE)))
    assert filter_verdicts("InterPodAffinity", pending, nodes, placed) == {
        "a": (),
        "b": (),
        "c": AFFINITY_REASON,
    }


def test_first_pod_with_affinity_to_its_own_kind_goes_anywhere() -> None:
    nodes = [node("a"), node("b")]
    itself = pod(
        labels={"app": "cache"}, affinity=_pod_affinity("podAffinity", _term({"app": "cache"}))
    )
    assert filter_verdicts("InterPodAffinity", itself, nodes) == {"a": (), "b": ()}
    stranger = pod(
        labels={"app": "web"}, affinity=_pod_affinity("podAffinity", _term({"app": "cache"}))
    )
    assert filter_verdicts("InterPodAffinity", stranger, nodes) == {
        "a": AFFINITY_REASON,
        "b": AFFINITY_REASON,
    }


def test_affinity_terms_look_in_the_pod_namespace_by_default() -> None:
    nodes = [node("a")]
    placed = [on("a", pod("db", namespace="other", labels={"app": "db"}))]
    pending = pod(affinity=_pod_affinity("podAffinity", _term({"app": "db"})))
    assert filter_verdicts("InterPodAffinity", pending, nodes, placed) == {"a": AFFINITY_REASON}
    across = pod(affinity=_pod_affinity("podAffinity", _term({"app": "db"}, namespaces=["other"])))
    assert filter_verdicts("InterPodAffinity", across, nodes, placed) == {"a": ()}


def test_required_anti_affinity() -> None:
    nodes = [node("a"), node("b")]
    placed = [on("a", pod("w1", labels={"app": "web"}))]
    pending = pod(
        labels={"app": "web"}, affinity=_pod_affinity("podAntiAffinity", _term({"app": "web"}))
    )
    assert filter_verdicts("InterPodAffinity", pending, nodes, placed) == {
        "a": ANTI_REASON,
        "b": (),
    }


def test_existing_pods_anti_affinity_keeps_others_out() -> None:
    nodes = [_zoned("a", "z1"), _zoned("b", "z1"), _zoned("c", "z2")]
    loner = pod(
        "loner",
        labels={"app": "loner"},
        affinity=_pod_affinity("podAntiAffinity", _term({"app": "web"}, ZONE)),
    )
    placed = [on("a", loner)]
    assert filter_verdicts("InterPodAffinity", pod(labels={"app": "web"}), nodes, placed) == {
        "a": EXISTING_REASON,
        "b": EXISTING_REASON,
        "c": (),
    }
    # A pod the term does not select is not kept out.
    assert filter_verdicts("InterPodAffinity", pod(labels={"app": "db"}), nodes, placed) == {
        "a": (),
        "b": (),
        "c": (),
    }
