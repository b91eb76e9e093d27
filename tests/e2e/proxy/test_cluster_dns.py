"""Cluster DNS as pods see it, on the real `timonel server` with its node agent.

Every query takes the real path: the pod's resolv.conf names the `kube-dns` Service's
address (10.43.0.10), the proxy DNATs it to the node agent's DNS server, which answers for
the cluster domain and forwards other names to the node's upstream resolvers. The upstream
is a stand-in the test starts where the node's resolv.conf says (inside the test's
namespaces, so nothing leaves the machine).
"""

from __future__ import annotations

import ipaddress
import json
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO
from tests.e2e.kubelet.conftest import wait_for
from tests.e2e.proxy.lab import ip, netns_path
from tests.e2e.proxy.netns_cluster import (
    BUSYBOX,
    NODE_IP,
    NetnsCluster,
    client_pods,
    wait_for_ready_endpoints,
)
from timonel.agent.kubelet.dns import parse_resolv_conf

CLUSTER_DNS = "10.43.0.10"
EXTERNAL_NAME = "www.example.test"
EXTERNAL_ADDRESS = "192.0.2.80"


@dataclass
class Setup:
    namespace: str
    cluster_ip: str
    client_ip: str

    def fqdn(self, name: str) -> str:
        return f"{name}.{self.namespace}.svc.cluster.local"


def web_objects() -> list[dict[str, Any]]:
    """Two busybox httpd pods, ready while /srv/ready exists, behind a Service with a
    named port and a headless one; an ExternalName Service; a headless Service for the
    client pod's own hostname record."""
    deployment: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "terminationGracePeriodSeconds": 1,
                    "containers": [
                        {
                            "name": "httpd",
                            "image": BUSYBOX,
                            "command": [
                                "sh",
                                "-c",
                                "mkdir -p /srv && touch /srv/ready && hostname > /srv/index.html"
                                " && exec httpd -f -p 8080 -h /srv",
                            ],
                            "ports": [{"name": "http", "containerPort": 8080}],
                            "readinessProbe": {
                                "httpGet": {"path": "/ready", "port": 8080},
                                "periodSeconds": 1,
                                "failureThreshold": 1,
                            },
                        }
                    ],
                },
            },
        },
    }

    def service(name: str, spec: dict[str, Any]) -> dict[str, Any]:
        return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": spec}

    return [
        deployment,
        service(
            "web",
            {
                "selector": {"app": "web"},
                "ports": [{"name": "http", "port": 80, "targetPort": 8080}],
            },
        ),
        service(
            "web-headless",
            {"clusterIP": "None", "selector": {"app": "web"}, "ports": [{"port": 8080}]},
        ),
        service("outside", {"type": "ExternalName", "externalName": EXTERNAL_NAME}),
        service(
            "named", {"clusterIP": "None", "selector": {"dns": "named"}, "ports": [{"port": 1}]}
        ),
    ]


@pytest.fixture(scope="module")
def upstream(cluster: NetnsCluster) -> Iterator[list[str]]:
    """The stand-in upstream, on every IPv4 nameserver of the node's resolv.conf: a
    loopback one inside the node's namespace, any other on the outside namespace (where
    the node's default route leads). Yields the names it was asked for, as they come."""
    nameservers = parse_resolv_conf(Path("/etc/resolv.conf").read_text()).nameservers
    addresses = [a for a in nameservers if ipaddress.ip_address(a).version == 4]
    if not addresses:
        pytest.skip("the node's resolv.conf has no IPv4 nameserver to stand in for")
    taken = [
        ipaddress.ip_network(n, strict=False)
        for n in (f"{NODE_IP}/24", "10.42.0.0/16", "10.43.0.0/16")
    ]
    if any(ipaddress.ip_address(a) in network for a in addresses for network in taken):
        pytest.skip("the node's resolv.conf names an address inside the test's networks")
    placed: dict[str, list[str]] = {}
    for address in addresses:
        if ipaddress.ip_address(address).is_loopback:
            placed.setdefault(cluster.netns, []).append(address)
        else:
            ip("-n", cluster.outside, "addr", "add", f"{address}/32", "dev", "lo")
            placed.setdefault(cluster.outside, []).append(address)
    asked: list[str] = []
    processes: list[subprocess.Popen[str]] = []
    try:
        for netns, listen in placed.items():
            command = ["nsenter", f"--net={netns_path(netns)}", sys.executable, "-m",
                       "tests.e2e.proxy.upstream_dns", "--record",
                       f"{EXTERNAL_NAME}={EXTERNAL_ADDRESS}",
                       *(f"--listen={a}" for a in listen)]  # fmt: skip
            process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=REPO)
            processes.append(process)
            assert process.stdout is not None
            assert process.stdout.readline().strip() == "ready"

            def read(process: subprocess.Popen[str] = process) -> None:
                assert process.stdout is not None
                for line in process.stdout:
                    asked.append(json.loads(line)["name"])

            threading.Thread(target=read, daemon=True).start()
        yield asked
    finally:
        for process in processes:
            process.kill()
            process.wait(5)


@pytest.fixture(scope="module")
def setup(cluster: NetnsCluster) -> Setup:
    namespace = cluster.namespace()
    for obj in web_objects():
        cluster.apply(json.dumps(obj), namespace)
    # The client's own A record: probe.named.<namespace>.svc.cluster.local.
    client_pods(
        cluster,
        namespace,
        {"client": {"dns": "named"}},
        spec={"hostname": "probe", "subdomain": "named"},
    )
    wait_for_ready_endpoints(cluster, namespace, "web", 2)
    wait_for_ready_endpoints(cluster, namespace, "named", 1)
    return Setup(
        namespace=namespace,
        cluster_ip=cluster.get("service", "web", namespace)["spec"]["clusterIP"],
        client_ip=cluster.pod("client", namespace)["status"]["podIP"],
    )


def run(cluster: NetnsCluster, setup: Setup, *command: str) -> tuple[int, str]:
    result = cluster.exec(setup.namespace, "client", "client", *command)
    return result.exit_code, (result.stdout + result.stderr).decode()


def nslookup(cluster: NetnsCluster, setup: Setup, *args: str) -> tuple[int, str]:
    """busybox nslookup; its first lines say which server answered."""
    code, output = run(cluster, setup, "nslookup", *args)
    assert re.match(rf"Server:\s+{re.escape(CLUSTER_DNS)}\s", output), output
    return code, output


def addresses(output: str, name: str) -> set[str]:
    """The A records nslookup printed for `name`."""
    found = re.findall(rf"Name:\s+{re.escape(name)}\nAddress: ([0-9.]+)\n", output)
    return set(found)


def resolved_by_libc(cluster: NetnsCluster, setup: Setup, name: str) -> str:
    """The address the pod's own resolver (search path, ndots) gives `name`, as ping shows
    it (the ping itself goes unanswered: a ClusterIP is not a host)."""
    _, output = run(cluster, setup, "ping", "-c", "1", "-W", "1", name)
    match = re.match(rf"PING {re.escape(name)} \(([0-9.]+)\)", output)
    assert match, output
    return match.group(1)


def test_cluster_info_lists_the_dns_service(cluster: NetnsCluster) -> None:
    info = cluster.kubectl("cluster-info").stdout
    assert re.search(
        r"CoreDNS\S* is running at \S*https://127\.0\.0\.1:\d+\S*/api/v1/namespaces/"
        r"kube-system/services/kube-dns:dns/proxy",
        info,
    ), info
    service = cluster.get("service", "kube-dns", "kube-system")
    labels = service["metadata"]["labels"]
    assert labels["kubernetes.io/cluster-service"] == "true"
    assert labels["kubernetes.io/name"] == "CoreDNS"
    assert service["spec"]["clusterIP"] == CLUSTER_DNS
    # Its endpoints are the node agent's DNS server, on the node's address.
    endpoints = wait_for(
        lambda: cluster.get("endpoints", "kube-dns", "kube-system").get("subsets"),
        timeout=30,
        what="the kube-dns endpoints",
    )
    assert [a["ip"] for a in endpoints[0]["addresses"]] == [NODE_IP]
    assert {p["name"] for p in endpoints[0]["ports"]} >= {"dns", "dns-tcp"}


def resolv_conf_lines(text: str) -> dict[str, list[str]]:
    """Keyword → its words, over all the lines that start with it."""
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        if words := line.split():
            found.setdefault(words[0], []).extend(words[1:])
    return found


def test_a_pod_gets_the_cluster_resolver(cluster: NetnsCluster, setup: Setup) -> None:
    _, text = run(cluster, setup, "cat", "/etc/resolv.conf")
    host = parse_resolv_conf(Path("/etc/resolv.conf").read_text())
    cluster_search = [f"{setup.namespace}.svc.cluster.local", "svc.cluster.local", "cluster.local"]
    assert resolv_conf_lines(text) == {
        "search": [*cluster_search, *host.searches],
        "nameserver": [CLUSTER_DNS],
        "options": ["ndots:5"],
    }


def test_the_dns_policy_chooses_the_resolver(cluster: NetnsCluster, setup: Setup) -> None:
    host = parse_resolv_conf(Path("/etc/resolv.conf").read_text())
    client_pods(
        cluster,
        setup.namespace,
        {"host-dns": {}},
        spec={"dnsPolicy": "Default"},
    )
    client_pods(
        cluster,
        setup.namespace,
        {"own-dns": {}},
        spec={
            "dnsPolicy": "None",
            "dnsConfig": {
                "nameservers": ["192.0.2.53"],
                "searches": ["example.test"],
                "options": [{"name": "ndots", "value": "2"}],
            },
        },
    )
    # A pod on the node's network that still wants the cluster's names.
    client_pods(
        cluster,
        setup.namespace,
        {"node-net": {}},
        spec={"hostNetwork": True, "dnsPolicy": "ClusterFirstWithHostNet"},
    )

    def resolv_conf(pod: str) -> dict[str, list[str]]:
        result = cluster.exec(setup.namespace, pod, "client", "cat", "/etc/resolv.conf")
        return resolv_conf_lines(result.stdout.decode())

    default = resolv_conf("host-dns")
    assert default.get("nameserver", []) == list(host.nameservers[:3])
    assert default.get("search", []) == list(host.searches)
    assert resolv_conf("own-dns") == {
        "nameserver": ["192.0.2.53"],
        "search": ["example.test"],
        "options": ["ndots:2"],
    }
    assert resolv_conf("node-net")["nameserver"] == [CLUSTER_DNS]
    web = setup.fqdn("web")
    result = cluster.exec(setup.namespace, "node-net", "client", "nslookup", web)
    assert addresses(result.stdout.decode(), web) == {setup.cluster_ip}


def test_a_service_resolves_to_its_cluster_ip_by_every_name(
    cluster: NetnsCluster, setup: Setup
) -> None:
    full = setup.fqdn("web")
    code, output = nslookup(cluster, setup, full)
    assert code == 0 and addresses(output, full) == {setup.cluster_ip}, output
    # busybox nslookup applies the search path to a single label itself...
    _, output = nslookup(cluster, setup, "web")
    assert addresses(output, full) == {setup.cluster_ip}, output
    # ...and the pod's resolver does for every name with fewer than five dots.
    names = ("web", f"web.{setup.namespace}", f"web.{setup.namespace}.svc", full)
    for name in names:
        assert resolved_by_libc(cluster, setup, name) == setup.cluster_ip, name

    # By every name the Service answers, and over repeated requests every backend does.
    loop = f"for i in 1 2 3 4 5 6 7 8; do for n in {' '.join(names)}; do" \
        " timeout 3 wget -q -O- http://$n/ || echo failed; done; done"  # fmt: skip
    _, output = run(cluster, setup, "sh", "-c", loop)
    answers = output.split()
    backends = {p["metadata"]["name"] for p in web_pods(cluster, setup)}
    assert len(answers) == 8 * len(names) and set(answers) == backends, output


def web_pods(cluster: NetnsCluster, setup: Setup) -> list[dict[str, Any]]:
    pods = cluster.get("pods", namespace=setup.namespace)["items"]
    return [p for p in pods if p["metadata"]["labels"].get("app") == "web"]


def test_a_headless_service_answers_every_ready_pod(cluster: NetnsCluster, setup: Setup) -> None:
    web = {p["metadata"]["name"]: p["status"]["podIP"] for p in web_pods(cluster, setup)}
    assert len(web) == 2
    name = setup.fqdn("web-headless")
    _, output = nslookup(cluster, setup, name)
    assert addresses(output, name) == set(web.values()), output

    # A pod that is no longer ready leaves the answer, and comes back with its readiness.
    unready, kept = sorted(web)
    cluster.exec(setup.namespace, unready, "httpd", "rm", "/srv/ready")
    try:
        wait_for(
            lambda: addresses(nslookup(cluster, setup, name)[1], name) == {web[kept]},
            timeout=15,
            what="the unready pod to leave the headless answer",
        )
    finally:
        cluster.exec(setup.namespace, unready, "httpd", "touch", "/srv/ready")
    wait_for(
        lambda: addresses(nslookup(cluster, setup, name)[1], name) == set(web.values()),
        timeout=15,
        what="the pod to come back to the headless answer",
    )


def test_srv_ptr_external_name_pod_hostname_and_nxdomain(
    cluster: NetnsCluster, setup: Setup
) -> None:
    web = setup.fqdn("web")
    # SRV for the named port: priority weight port target.
    code, output = nslookup(cluster, setup, "-type=SRV", f"_http._tcp.{web}")
    assert code == 0 and re.search(
        rf"_http\._tcp\.{re.escape(web)}\s+service = \d+ \d+ 80 {re.escape(web)}", output
    ), output

    # PTR of the ClusterIP.
    code, output = nslookup(cluster, setup, setup.cluster_ip)
    reverse = ".".join(reversed(setup.cluster_ip.split("."))) + ".in-addr.arpa"
    assert code == 0 and re.search(rf"{re.escape(reverse)}\s+name = {re.escape(web)}", output), (
        output
    )

    # ExternalName: a CNAME to the external name.
    outside = setup.fqdn("outside")
    code, output = nslookup(cluster, setup, "-type=CNAME", outside)
    assert code == 0 and re.search(
        rf"{re.escape(outside)}\s+canonical name = {re.escape(EXTERNAL_NAME)}", output
    ), output

    # The client pod's hostname and subdomain, and its IP-based name.
    probe = setup.fqdn("probe.named")
    code, output = nslookup(cluster, setup, probe)
    assert code == 0 and addresses(output, probe) == {setup.client_ip}, output
    by_ip = f"{setup.client_ip.replace('.', '-')}.{setup.namespace}.pod.cluster.local"
    code, output = nslookup(cluster, setup, by_ip)
    assert code == 0 and addresses(output, by_ip) == {setup.client_ip}, output

    # NXDOMAIN for a name in the cluster domain that nothing has.
    nosuch = setup.fqdn("nosuch")
    code, output = nslookup(cluster, setup, nosuch)
    assert code != 0 and f"can't find {nosuch}: NXDOMAIN" in output, output


def test_other_names_go_to_the_node_upstream(
    cluster: NetnsCluster, setup: Setup, upstream: list[str]
) -> None:
    code, output = nslookup(cluster, setup, EXTERNAL_NAME)
    assert code == 0 and addresses(output, EXTERNAL_NAME) == {EXTERNAL_ADDRESS}, output
    assert EXTERNAL_NAME in upstream
    # The ExternalName Service's CNAME is followed to the upstream's address.
    outside = setup.fqdn("outside")
    code, output = nslookup(cluster, setup, "-type=A", outside)
    assert addresses(output, EXTERNAL_NAME) == {EXTERNAL_ADDRESS}, output
    # The upstream's NXDOMAIN reaches the pod; cluster names never go upstream.
    code, output = nslookup(cluster, setup, "nothing.example.test")
    assert code != 0 and "can't find nothing.example.test: NXDOMAIN" in output, output
    assert "nothing.example.test" in upstream
    assert not [name for name in upstream if name.endswith("cluster.local")]
