"""Issue 5's multi-node acceptance on a cluster of one server and three node agents, each
in a network namespace of its own (see cluster.py):

- a Deployment of 6 replicas spreads over the nodes; from a client pod the Service answers
  by ClusterIP and by its DNS names, every backend is reached; the NodePort answers on
  every node's address; pods reach pods on other nodes with their own address (host-gw
  routes, no NAT);
- an agent dies (SIGKILL of the agent and its containerd): its node becomes NotReady, its
  DNS endpoint is taken out of kube-dns, its pods are recreated on the other nodes, and
  the Service answers throughout;
- the routes follow the nodes: a deleted Node's podCIDR is no longer routed, and a
  cleanly stopped agent removes its routes.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pytest

from tests.e2e.kubelet.conftest import condition, wait_for
from tests.e2e.multinode.cluster import BUSYBOX, MultiNodeCluster, Node
from tests.e2e.proxy.lab import request
from timonel.agent.podnetwork.routes import ROUTE_PROTOCOL

REPLICAS = 6
# The backend: its hostname at /, the client's address (as httpd saw it) at /cgi-bin/ip.
BACKEND = (
    "mkdir -p /srv/cgi-bin && hostname > /srv/index.html"
    " && printf '#!/bin/sh\\necho Content-Type: text/plain\\necho\\necho $REMOTE_ADDR\\n'"
    " > /srv/cgi-bin/ip && chmod +x /srv/cgi-bin/ip && exec httpd -f -p 8080 -h /srv"
)
TOLERATE_SECONDS = 2


@dataclass
class Web:
    namespace: str
    cluster_ip: str
    node_port: int
    client_node: Node


def _deployment() -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": REPLICAS,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "terminationGracePeriodSeconds": 1,
                    "containers": [
                        {
                            "name": "httpd",
                            "image": BUSYBOX,
                            "command": ["sh", "-c", BACKEND],
                            "ports": [{"name": "http", "containerPort": 8080}],
                            "readinessProbe": {
                                "httpGet": {"path": "/", "port": 8080},
                                "periodSeconds": 1,
                            },
                        }
                    ],
                    "topologySpreadConstraints": [
                        {
                            "maxSkew": 1,
                            "topologyKey": "kubernetes.io/hostname",
                            "whenUnsatisfiable": "DoNotSchedule",
                            "nodeTaintsPolicy": "Honor",
                            "labelSelector": {"matchLabels": {"app": "web"}},
                        }
                    ],
                    # Evicted soon after their node is lost (the default is 300 s).
                    "tolerations": [
                        {
                            "key": key,
                            "operator": "Exists",
                            "effect": "NoExecute",
                            "tolerationSeconds": TOLERATE_SECONDS,
                        }
                        for key in (
                            "node.kubernetes.io/not-ready",
                            "node.kubernetes.io/unreachable",
                        )
                    ],
                },
            },
        },
    }


def _service() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {
            "type": "NodePort",
            "selector": {"app": "web"},
            "ports": [{"name": "web", "port": 80, "targetPort": "http"}],
        },
    }


def _client(node: Node) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "client"},
        "spec": {
            "nodeSelector": {"kubernetes.io/hostname": node.name},
            "terminationGracePeriodSeconds": 1,
            "containers": [
                {
                    "name": "client",
                    "image": BUSYBOX,
                    "command": ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"],
                }
            ],
        },
    }


def live_pods(cluster: MultiNodeCluster, namespace: str) -> list[dict[str, Any]]:
    pods = cluster.get("pods", namespace=namespace)["items"]
    return [
        p
        for p in pods
        if p["metadata"].get("labels", {}).get("app") == "web"
        and not p["metadata"].get("deletionTimestamp")
    ]


def ready_endpoints(cluster: MultiNodeCluster, namespace: str) -> dict[str, str]:
    """Pod name → node name of the Service's ready endpoints."""
    slices = cluster.get("endpointslices", namespace=namespace)["items"]
    return {
        endpoint["targetRef"]["name"]: endpoint.get("nodeName", "")
        for item in slices
        if item["metadata"]["labels"].get("kubernetes.io/service-name") == "web"
        for endpoint in item.get("endpoints") or []
        if endpoint.get("conditions", {}).get("ready")
    }


def fetch(cluster: MultiNodeCluster, namespace: str, url: str) -> str:
    # busybox 1.35's `wget -T` crashes: bound the request with `timeout` instead.
    result = cluster.exec(namespace, "client", "client", "timeout", "3", "wget", "-q", "-O-", url)
    return result.stdout.decode().strip() if result.exit_code == 0 else ""


def fetch_many(cluster: MultiNodeCluster, namespace: str, url: str, count: int) -> Counter[str]:
    """`count` requests from the client pod in one go → answers ("FAIL" for failures)."""
    script = f"for i in $(seq {count}); do timeout 3 wget -q -O- {url} || echo FAIL; done"
    result = cluster.exec(namespace, "client", "client", "sh", "-c", script, timeout=120)
    return Counter(result.stdout.decode().split())


@pytest.fixture(scope="module")
def web(cluster: MultiNodeCluster) -> Web:
    namespace = cluster.namespace()
    client_node = cluster.nodes[0]
    for manifest in (_deployment(), _service(), _client(client_node)):
        cluster.apply(json.dumps(manifest), namespace)
    wait_for(
        lambda: len(ready_endpoints(cluster, namespace)) == REPLICAS,
        timeout=120,
        what=f"{REPLICAS} ready endpoints",
    )
    wait_for(
        lambda: cluster.pod("client", namespace)["status"].get("phase") == "Running",
        timeout=60,
        what="the client pod",
    )
    service = cluster.get("service", "web", namespace)
    return Web(
        namespace=namespace,
        cluster_ip=service["spec"]["clusterIP"],
        node_port=int(service["spec"]["ports"][0]["nodePort"]),
        client_node=client_node,
    )


def test_the_service_answers_from_every_node_over_the_pod_network(
    cluster: MultiNodeCluster, web: Web
) -> None:
    namespace = web.namespace
    placed = ready_endpoints(cluster, namespace)
    assert Counter(placed.values()) == {node.name: 2 for node in cluster.nodes}

    # Every node routes to the others' pods through their addresses (host-gw).
    nodes = {n["metadata"]["name"]: n for n in cluster.get("nodes")["items"]}
    for node in cluster.nodes:
        expected = {
            (nodes[other.name]["spec"]["podCIDR"], other.address)
            for other in cluster.nodes
            if other is not node
        }
        routes = {(r["dst"], r["gateway"]) for r in node.routes(ROUTE_PROTOCOL)}
        assert routes == expected, node.name

    # By ClusterIP: every backend answers, nothing fails.
    answers = fetch_many(cluster, namespace, f"http://{web.cluster_ip}/", 90)
    assert set(answers) == set(placed), answers

    # By DNS name, short, with the namespace, and fully qualified.
    for name in ("web", f"web.{namespace}", f"web.{namespace}.svc.cluster.local"):
        assert fetch(cluster, namespace, f"http://{name}/") in placed, name

    # The NodePort on every node's address, from outside the cluster.
    for node in cluster.nodes:
        result = asyncio.run(request(cluster.lan, f"{node.address}:{web.node_port}", count=6))
        assert sum(result["answers"].values()) == 6, (node.name, result)
        assert set(result["answers"]) <= set(placed)

    # Pod to pod across nodes: the backend sees the client pod's own address.
    client = cluster.pod("client", namespace)
    client_ip = client["status"]["podIP"]
    remote = [
        p for p in live_pods(cluster, namespace) if p["spec"]["nodeName"] != web.client_node.name
    ]
    assert {p["spec"]["nodeName"] for p in remote} == {n.name for n in cluster.nodes[1:]}
    for pod in remote:
        seen = fetch(cluster, namespace, f"http://{pod['status']['podIP']}:8080/cgi-bin/ip")
        assert seen.strip("[]").removeprefix("::ffff:") == client_ip, (
            pod["spec"]["nodeName"],
            seen,
        )


@dataclass
class RequestLoop:
    """Requests to `url` from the client pod, one after another, until stopped: each line
    `<unix second> <answer or FAIL>`."""

    cluster: MultiNodeCluster
    namespace: str
    url: str
    output: str = ""
    thread: threading.Thread | None = None

    def __enter__(self) -> RequestLoop:
        script = (
            "rm -f /tmp/stop; while [ ! -e /tmp/stop ]; do"
            f" if r=$(timeout 2 wget -q -O- {self.url}); then echo $(date +%s) $r;"
            " else echo $(date +%s) FAIL; fi; sleep 0.05; done"
        )

        def run() -> None:
            result = self.cluster.exec(
                self.namespace, "client", "client", "sh", "-c", script, timeout=240
            )
            self.output = result.stdout.decode()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.cluster.exec(self.namespace, "client", "client", "touch", "/tmp/stop")
        assert self.thread is not None
        self.thread.join(30)

    def results(self) -> list[tuple[int, str]]:
        lines = [line.split(" ", 1) for line in self.output.splitlines() if " " in line]
        return [(int(second), answer) for second, answer in lines]


def _ready_status(cluster: MultiNodeCluster, name: str) -> str:
    return condition(cluster.get("node", name), "Ready")


def _dns_endpoint_ready(cluster: MultiNodeCluster, node: Node) -> bool | None:
    found = cluster.kubectl(
        "get", "endpointslice", f"kube-dns-{node.name}", "-n", "kube-system", "-o", "json",
        check=False,
    )  # fmt: skip
    if found.returncode != 0:
        return None
    return bool(found.json()["endpoints"][0]["conditions"]["ready"])


def test_a_dead_agents_pods_move_while_the_service_keeps_answering(
    cluster: MultiNodeCluster, web: Web
) -> None:
    namespace = web.namespace
    victim = cluster.nodes[2]
    survivors = {n.name for n in cluster.nodes if n is not victim}
    before = ready_endpoints(cluster, namespace)
    doomed = {pod for pod, node in before.items() if node == victim.name}
    assert len(doomed) == 2
    assert _dns_endpoint_ready(cluster, victim) is True

    with RequestLoop(cluster, namespace, f"http://{web.cluster_ip}/") as loop:
        time.sleep(2)
        killed_at = time.time()
        victim.kill()
        wait_for(
            lambda: _ready_status(cluster, victim.name) == "Unknown",
            timeout=40,
            what="the dead node NotReady",
        )
        # Its DNS server went with the agent: no proxy sends queries there any more.
        wait_for(
            lambda: _dns_endpoint_ready(cluster, victim) is False,
            timeout=20,
            what="the dead node's DNS endpoint not ready",
        )
        dns = cluster.get("endpoints", "kube-dns", "kube-system")
        not_ready = {a["ip"] for s in dns["subsets"] for a in s.get("notReadyAddresses") or []}
        assert not_ready == {victim.address}

        def replaced() -> dict[str, str] | None:
            ready = ready_endpoints(cluster, namespace)
            moved = len(ready) == REPLICAS and not doomed & set(ready)
            return ready if moved else None

        after = wait_for(replaced, timeout=90, what="the pods recreated on the other nodes")
        assert set(after.values()) == survivors
        fresh = set(after) - set(before)
        time.sleep(5)  # for the loop to reach the replacements
        # Names resolve every time: the dead node's DNS endpoint is out of rotation.
        answers = fetch_many(cluster, namespace, "http://web/", 20)
        assert set(answers) <= set(after), answers
    results = loop.results()
    assert results, "the request loop printed nothing"
    failures = [(second, answer) for second, answer in results if answer == "FAIL"]
    # Only a request in flight when the agent died may fail.
    assert len(failures) <= 1, (failures, len(results))
    assert all(abs(second - killed_at) <= 2 for second, _ in failures), (failures, killed_at)
    served = {answer for _, answer in results}
    assert fresh <= served, (fresh, Counter(a for _, a in results))


def test_routes_follow_the_nodes(cluster: MultiNodeCluster, web: Web) -> None:
    dead = cluster.nodes[2]
    first, second = cluster.nodes[0], cluster.nodes[1]
    dead_cidr = cluster.get("node", dead.name)["spec"]["podCIDR"]
    assert dead_cidr in {r["dst"] for r in first.routes(ROUTE_PROTOCOL)}
    cluster.kubectl("delete", "node", dead.name, "--wait=false")
    wait_for(
        lambda: all(
            dead_cidr not in {r["dst"] for r in node.routes(ROUTE_PROTOCOL)}
            for node in (first, second)
        ),
        timeout=20,
        what="the deleted node's podCIDR unrouted",
    )
    assert second.routes(ROUTE_PROTOCOL)
    second.stop()
    assert second.routes(ROUTE_PROTOCOL) == []
    assert first.routes(ROUTE_PROTOCOL)  # the rest of the cluster keeps its routes
