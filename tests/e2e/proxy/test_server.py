"""The real `timonel server` with its node agent, run inside a network namespace of its own
(`nsenter --net`), so its proxy and policy rules, bridge, routes and sysctls live there and
the host's tables are never touched; kubectl and the clients enter the namespace too.

A Deployment of busybox httpd behind a Service answers on its ClusterIP from the node and
from another pod, on its NodePort, and on the LoadBalancer address ServiceLB gives it; a
default-deny NetworkPolicy then cuts the pod off while the node still gets through.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from tests.e2e.kubelet.conftest import wait_for
from tests.e2e.proxy.lab import request
from tests.e2e.proxy.netns_cluster import (
    BUSYBOX,
    NODE_IP,
    NetnsCluster,
    client_pod,
    fetch_from_pod,
    ready_endpoints,
)


def manifests(name: str, replicas: int, service_type: str = "ClusterIP") -> list[str]:
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "terminationGracePeriodSeconds": 1,
                    "containers": [
                        {
                            "name": "httpd",
                            "image": BUSYBOX,
                            "command": [
                                "sh",
                                "-c",
                                "mkdir -p /srv && hostname > /srv/index.html"
                                " && exec httpd -f -p 8080 -h /srv",
                            ],
                            "ports": [{"name": "http", "containerPort": 8080}],
                            "readinessProbe": {
                                "httpGet": {"path": "/", "port": 8080},
                                "periodSeconds": 1,
                            },
                        }
                    ],
                },
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {
            "type": service_type,
            "selector": {"app": name},
            "ports": [{"name": "web", "port": 80, "targetPort": "http"}],
        },
    }
    return [json.dumps(deployment), json.dumps(service)]


def answers_from_node(cluster: NetnsCluster, target: str, count: int = 30) -> dict[str, Any]:
    return asyncio.run(request(cluster.netns, target, count=count, timeout=2))


def test_a_deployment_behind_a_service_answers_on_its_cluster_ip(cluster: NetnsCluster) -> None:
    namespace = cluster.namespace()
    for manifest in manifests("web", 2):
        cluster.apply(manifest, namespace)
    pods = wait_for(
        lambda: (found := ready_endpoints(cluster, namespace, "web")) and len(found) == 2 and found,
        timeout=90,
        what="two ready endpoints",
    )
    cluster_ip = cluster.get("service", "web", namespace)["spec"]["clusterIP"]
    # The API server's own Service has a slice too: its cluster IP is not rejected.
    api_slice = cluster.get("endpointslice", "kubernetes", "default")
    assert api_slice["endpoints"][0]["conditions"]["ready"] is True

    from_node = wait_for(
        lambda: (
            (r := answers_from_node(cluster, f"{cluster_ip}:80"))
            and set(r["answers"]) == pods
            and r
        ),
        timeout=10,
        what="both pods answering on the ClusterIP from the node",
    )
    assert from_node["errors"] == {}

    client_pod(cluster, namespace)
    seen = {fetch_from_pod(cluster, namespace, f"http://{cluster_ip}/") for _ in range(20)}
    assert seen == pods

    # Scaling is reflected in the rules.
    cluster.kubectl("scale", "deployment", "web", "-n", namespace, "--replicas=3")
    three = wait_for(
        lambda: (found := ready_endpoints(cluster, namespace, "web")) and len(found) == 3 and found,
        timeout=60,
        what="three ready endpoints",
    )
    wait_for(
        lambda: set(answers_from_node(cluster, f"{cluster_ip}:80", 40)["answers"]) == three,
        timeout=10,
        what="all three pods answering",
    )

    # A default-deny policy cuts the pod off; the node itself is always let through.
    deny = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "deny"},
        "spec": {"podSelector": {"matchLabels": {"app": "web"}}, "policyTypes": ["Ingress"]},
    }
    cluster.apply(json.dumps(deny), namespace)
    wait_for(
        lambda: fetch_from_pod(cluster, namespace, f"http://{cluster_ip}/") == "",
        timeout=10,
        what="the policy to block the client pod",
    )
    assert sum(answers_from_node(cluster, f"{cluster_ip}:80", 5)["answers"].values()) == 5
    cluster.kubectl("delete", "networkpolicy", "deny", "-n", namespace)
    wait_for(
        lambda: fetch_from_pod(cluster, namespace, f"http://{cluster_ip}/") in three,
        timeout=10,
        what="the client pod to get through again",
    )


def test_node_port_and_load_balancer_answer_on_the_node_address(cluster: NetnsCluster) -> None:
    namespace = cluster.namespace()
    for manifest in manifests("edge", 1, "LoadBalancer"):
        cluster.apply(manifest, namespace)
    wait_for(
        lambda: len(ready_endpoints(cluster, namespace, "edge")) == 1,
        timeout=90,
        what="a ready endpoint",
    )
    service = wait_for(
        lambda: (
            (s := cluster.get("service", "edge", namespace))
            and s["status"].get("loadBalancer", {}).get("ingress")
            and s
        ),
        timeout=30,
        what="the load balancer ingress",
    )
    assert [i["ip"] for i in service["status"]["loadBalancer"]["ingress"]] == [NODE_IP]
    node_port = service["spec"]["ports"][0]["nodePort"]
    for target in (f"{NODE_IP}:{node_port}", f"127.0.0.1:{node_port}", f"{NODE_IP}:80"):
        result = wait_for(
            lambda target=target: (
                (r := answers_from_node(cluster, target, 5))
                and sum(r["answers"].values()) == 5
                and r
            ),
            timeout=10,
            what=f"answers on {target}",
        )
        assert result["errors"] == {}
