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
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.conftest import KUBECTL, KubectlResult, free_port
from tests.e2e.kubelet.conftest import Cluster, cleaned_up, wait_for
from tests.e2e.proxy.lab import ip, netns_path, request
from tests.e2e.runtime.conftest import runtime_unavailable

BUSYBOX = "localhost/timonel/busybox:1"
NODE_IP = "192.168.78.2"
OUTSIDE_IP = "192.168.78.1"


@dataclass
class NetnsCluster(Cluster):
    netns: str = ""

    def _enter(self) -> list[str]:
        return ["nsenter", f"--net={netns_path(self.netns)}"]

    def command(self) -> list[str]:
        return [*self._enter(), *super().command()]

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 60
    ) -> KubectlResult:
        command = [*self._enter(), KUBECTL, "--kubeconfig", str(self.kubeconfig),
                   "--cache-dir", str(self.cache_dir), *args]  # fmt: skip
        done = subprocess.run(command, input=input, capture_output=True, text=True, timeout=timeout)
        result = KubectlResult(done.returncode, done.stdout, done.stderr)
        if check and done.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed:\n{done.stderr}{done.stdout}")
        return result


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NetnsCluster]:
    if runtime_unavailable() is not None:
        pytest.skip(str(runtime_unavailable()))
    suffix = uuid.uuid4().hex[:6]
    netns, outside = f"tsv-{suffix}", f"tsx-{suffix}"
    base = tmp_path_factory.mktemp("proxy-server")
    try:
        # The node's link: a veth to a namespace standing for the network outside, with the
        # default route, so the agent finds its address as on a real host.
        for name in (netns, outside):
            ip("netns", "add", name)
            ip("-n", name, "link", "set", "lo", "up")
        ip("-n", netns, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0",
           "netns", outside)  # fmt: skip
        ip("-n", netns, "addr", "add", f"{NODE_IP}/24", "dev", "eth0")
        ip("-n", outside, "addr", "add", f"{OUTSIDE_IP}/24", "dev", "eth0")
        for name in (netns, outside):
            ip("-n", name, "link", "set", "eth0", "up")
        ip("-n", netns, "route", "add", "default", "via", OUTSIDE_IP)
        running = NetnsCluster(
            data_dir=base / "data",
            node_name=f"e2e-proxy-{suffix}",
            cluster_cidr="10.42.0.0/16",
            port=free_port(),
            cache_dir=base / "kubectl-cache",
            log_path=base / "server.log",
            netns=netns,
        )
        with cleaned_up(running):
            try:
                yield running
            finally:
                # Without their Deployments, the pods removed at cleanup stay removed.
                for namespace in running.namespaces:
                    running.kubectl(
                        "delete", "deployments", "--all", "-n", namespace, "--wait=false",
                        check=False,
                    )  # fmt: skip
    finally:
        for name in (netns, outside):
            subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)


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


def ready_endpoints(cluster: Cluster, namespace: str, name: str) -> set[str]:
    slices = cluster.get("endpointslices", namespace=namespace)["items"]
    return {
        endpoint["targetRef"]["name"]
        for item in slices
        if item["metadata"]["labels"].get("kubernetes.io/service-name") == name
        for endpoint in item.get("endpoints") or []
        if endpoint.get("conditions", {}).get("ready")
    }


def answers_from_node(cluster: NetnsCluster, target: str, count: int = 30) -> dict[str, Any]:
    return asyncio.run(request(cluster.netns, target, count=count, timeout=2))


def client_pod(cluster: Cluster, namespace: str) -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "client", "labels": {"role": "client"}},
        "spec": {
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
    cluster.apply(json.dumps(pod), namespace)
    wait_for(
        lambda: cluster.pod("client", namespace)["status"].get("phase") == "Running",
        timeout=60,
        what="the client pod",
    )


def fetch_from_pod(cluster: Cluster, namespace: str, url: str) -> str:
    # busybox 1.35's `wget -T` crashes: bound the request with `timeout` instead.
    result = cluster.exec(namespace, "client", "client", "timeout", "3", "wget", "-q", "-O-", url)
    return result.stdout.decode().strip() if result.exit_code == 0 else ""


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
