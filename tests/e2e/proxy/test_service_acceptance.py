"""Service traffic while the pods behind it change, on the real `timonel server` with its
node agent: readiness, scaling, a rolling update, and NetworkPolicy with real pods.

The traffic comes from a prober in the node's namespace sending requests to the
ClusterIP back to back (a new connection each), which records who answered when (and, in
the rolling update, also from a pod, by the Service's name); watch events on the
Service's EndpointSlice are timed on the same clock. The figures are
printed (`pytest -s`); the bounds asserted carry slack for a busy machine.
"""

from __future__ import annotations

import json
import subprocess
import time
from typing import Any

from tests.e2e.kubelet.conftest import wait_for
from tests.e2e.proxy.netns_cluster import (
    BUSYBOX,
    NetnsCluster,
    Prober,
    SliceEvent,
    SliceWatch,
    client_pods,
    fetch_from_pod,
    ready_endpoints,
    wait_for_ready_endpoints,
)

READINESS_BOUND = 2.0
"""Seconds until an unready backend gets no more requests (and a ready one gets them)."""
RULES_BOUND = 1.0
"""Seconds from an endpoint change to the rules that carry it."""
SLACK = 1.5
"""Factor on the bounds for a machine shared with other work."""


def web(name: str, replicas: int, probe: str = "httpGet") -> list[str]:
    """busybox httpd answering with the pod's name, ready while /srv/ready exists (probed
    every second by `probe`, httpGet or exec; one failure is enough), that stops serving
    at once on SIGTERM, with a preStop pause as real Deployments have: the pod keeps
    serving while the proxies stop sending it new connections."""
    handlers: dict[str, dict[str, Any]] = {
        "httpGet": {"httpGet": {"path": "/ready", "port": 8080}},
        "exec": {"exec": {"command": ["test", "-e", "/srv/ready"]}},
    }
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
                    "terminationGracePeriodSeconds": 5,
                    "containers": [
                        {
                            "name": "httpd",
                            "image": BUSYBOX,
                            "command": [
                                "sh",
                                "-c",
                                "mkdir -p /srv && hostname > /srv/index.html && touch /srv/ready;"
                                " httpd -f -p 8080 -h /srv & trap 'kill $!; exit 0' TERM; wait",
                            ],
                            "ports": [{"name": "http", "containerPort": 8080}],
                            "readinessProbe": {
                                **handlers[probe],
                                "periodSeconds": 1,
                                "failureThreshold": 1,
                            },
                            "lifecycle": {"preStop": {"exec": {"command": ["sleep", "2"]}}},
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
            "selector": {"app": name},
            "ports": [{"name": "web", "port": 80, "targetPort": "http"}],
        },
    }
    return [json.dumps(deployment), json.dumps(service)]


def deploy(
    cluster: NetnsCluster, namespace: str, name: str, replicas: int, probe: str = "httpGet"
) -> tuple[str, set[str]]:
    """→ the Service's ClusterIP:port and the ready pods."""
    for manifest in web(name, replicas, probe):
        cluster.apply(manifest, namespace)
    pods = wait_for_ready_endpoints(cluster, namespace, name, replicas)
    cluster_ip = cluster.get("service", name, namespace)["spec"]["clusterIP"]
    return f"{cluster_ip}:80", pods


def all_answering(prober: Prober, pods: set[str], since: float) -> bool:
    return prober.answered_since(since) == pods


def ready(event: SliceEvent) -> set[str]:
    return {name for name, conditions in event.endpoints.items() if conditions.get("ready")}


def test_an_unready_backend_gets_no_traffic_until_it_is_ready_again(
    cluster: NetnsCluster,
) -> None:
    namespace = cluster.namespace()
    target, pods = deploy(cluster, namespace, "probed", 2, probe="exec")
    unready, _ = sorted(pods)
    with Prober(cluster.netns, target, concurrency=2) as prober:
        start = time.monotonic()
        wait_for(lambda: all_answering(prober, pods, start), timeout=10, what="both pods")

        removed = time.monotonic()
        cluster.exec(namespace, unready, "httpd", "rm", "/srv/ready")
        wait_for(
            lambda: unready not in ready_endpoints(cluster, namespace, "probed"),
            timeout=10,
            what="the pod to be unready",
        )
        time.sleep(READINESS_BOUND * SLACK)
        answers = prober.since(removed)
        last = max((o.started for o in answers if o.answer == unready), default=removed)
        stopped_after = last - removed

        restored = time.monotonic()
        cluster.exec(namespace, unready, "httpd", "touch", "/srv/ready")
        first = wait_for(
            lambda: next((o for o in prober.since(restored) if o.answer == unready), None),
            timeout=10,
            what="the pod to answer again",
        )
        back_after = first.started - restored
    print(
        f"\nreadiness: traffic stopped {stopped_after:.2f} s after the probe's file went,"
        f" came back {back_after:.2f} s after it returned ({len(prober.outcomes)} requests)"
    )
    assert stopped_after <= READINESS_BOUND * SLACK
    assert back_after <= READINESS_BOUND * SLACK
    # The other pod carried the traffic meanwhile: no request failed.
    assert prober.failures() == []


def test_scaling_is_in_the_rules_within_a_second_of_the_endpoint_change(
    cluster: NetnsCluster,
) -> None:
    namespace = cluster.namespace()
    target, pods = deploy(cluster, namespace, "scaled", 2)
    with (
        SliceWatch(cluster, namespace, "scaled") as watch,
        Prober(cluster.netns, target, concurrency=2, interval=0.005) as prober,
    ):
        start = time.monotonic()
        wait_for(lambda: all_answering(prober, pods, start), timeout=10, what="both pods")

        scaled_up = time.monotonic()
        cluster.kubectl("scale", "deployment", "scaled", "-n", namespace, "--replicas=3")
        grown = watch.first(lambda e: len(ready(e)) == 3, after=scaled_up)
        (added,) = ready(grown) - pods
        first = wait_for(
            lambda: next((o for o in prober.since(scaled_up) if o.answer == added), None),
            timeout=10,
            what="the new pod to answer",
        )
        up_delay = first.started - grown.seen

        scaled_down = time.monotonic()
        cluster.kubectl("scale", "deployment", "scaled", "-n", namespace, "--replicas=2")
        shrunk = watch.first(lambda e: len(ready(e)) == 2, after=scaled_down)
        (removed,) = ready(grown) - ready(shrunk)
        time.sleep(RULES_BOUND * SLACK)
        last = max(
            (o.started for o in prober.since(scaled_down) if o.answer == removed),
            default=shrunk.seen,
        )
        down_delay = last - shrunk.seen
    print(
        f"\nscaling: new endpoint answering {up_delay * 1000:.0f} ms after its slice change,"
        f" removed one's last answer {down_delay * 1000:.0f} ms after its slice change"
        f" ({len(prober.outcomes)} requests)"
    )
    assert up_delay <= RULES_BOUND * SLACK
    assert down_delay <= RULES_BOUND * SLACK
    assert prober.failures() == []


POD_LOOP = (
    "ok=0; failed=0; while [ ! -e /tmp/stop ]; do"
    " if timeout 2 wget -q -O /dev/null http://rolled/; then ok=$((ok+1));"
    " else failed=$((failed+1)); fi; done; echo $ok $failed > /tmp/result"
)
"""Requests from a pod, by the Service's name, until /tmp/stop appears."""


def test_a_rolling_update_under_load_fails_no_request(cluster: NetnsCluster) -> None:
    namespace = cluster.namespace()
    client_pods(cluster, namespace, {"client": {}})
    target, old_pods = deploy(cluster, namespace, "rolled", 3)
    in_pod = subprocess.Popen(
        cluster.kubectl_command("exec", "-n", namespace, "client", "--", "sh", "-c", POD_LOOP),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with Prober(cluster.netns, target, concurrency=4) as prober:
            start = time.monotonic()
            wait_for(lambda: all_answering(prober, old_pods, start), timeout=10, what="every pod")
            began = time.monotonic()
            cluster.kubectl(
                "set", "env", "deployment/rolled", "-n", namespace, "VERSION=2", "-c", "httpd"
            )
            cluster.kubectl(
                "rollout", "status", "deployment/rolled", "-n", namespace, "--timeout=120s",
                timeout=130,
            )  # fmt: skip
            rolled = time.monotonic()

            def replaced() -> set[str] | None:
                ready = ready_endpoints(cluster, namespace, "rolled")
                return ready if len(ready) == 3 and not ready & old_pods else None

            new_pods = wait_for(replaced, timeout=30, what="three new ready endpoints")
            # Keep going until the old pods have finished terminating.
            wait_for(
                lambda: not old_pods & {
                    p["metadata"]["name"] for p in cluster.get("pods", namespace=namespace)["items"]
                },
                timeout=30,
                what="the old pods to be gone",
            )  # fmt: skip
            settled = time.monotonic()
            wait_for(
                lambda: all_answering(prober, new_pods, settled), timeout=10, what="the new pods"
            )
        cluster.exec(namespace, "client", "client", "touch", "/tmp/stop")
        in_pod.wait(10)
        result = cluster.exec(namespace, "client", "client", "cat", "/tmp/result").stdout.split()
        pod_ok, pod_failed = (int(n) for n in result)
    finally:
        if in_pod.poll() is None:
            in_pod.kill()
            in_pod.wait(5)
    during = prober.since(began)
    print(
        f"\nrolling update: {len(during)} requests from the node and {pod_ok} from a pod"
        f" in {rolled - began:.1f} s of rollout and {settled - rolled:.1f} s of termination;"
        f" failed: {len(prober.failures())} and {pod_failed}"
    )
    assert prober.failures() == []
    assert pod_failed == 0
    assert len(during) > 100 and pod_ok > 20


def test_network_policy_lets_exactly_the_allowed_pods_in(cluster: NetnsCluster) -> None:
    namespace, elsewhere = cluster.namespace(), cluster.namespace()
    target, (server,) = deploy(cluster, namespace, "guarded", 1)
    server_ip = cluster.pod(server, namespace)["status"]["podIP"]
    client_pods(cluster, namespace, {"granted": {"access": "granted"}, "other": {"access": "none"}})
    client_pods(cluster, elsewhere, {"granted": {"access": "granted"}})
    clients = [(namespace, "granted"), (namespace, "other"), (elsewhere, "granted")]
    urls = (f"http://{target}/", f"http://{server_ip}:8080/")

    def reached(client: tuple[str, str]) -> list[bool]:
        return [fetch_from_pod(cluster, client[0], url, client[1]) == server for url in urls]

    assert all(reached(client) == [True, True] for client in clients)

    def policy(name: str, spec: dict[str, Any]) -> None:
        manifest = {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": name},
            "spec": spec,
        }
        cluster.apply(json.dumps(manifest), namespace)

    # Default deny for every pod in the namespace: nobody gets in, by ClusterIP or pod IP.
    policy("default-deny", {"podSelector": {}, "policyTypes": ["Ingress"]})
    wait_for(lambda: reached(clients[0]) == [False, False], timeout=10, what="the deny to apply")
    assert reached(clients[1]) == [False, False]
    assert reached(clients[2]) == [False, False]

    # Allowed: this namespace's pods labelled access=granted, to the server's port.
    policy(
        "allow-granted",
        {
            "podSelector": {"matchLabels": {"app": "guarded"}},
            "ingress": [
                {
                    "from": [{"podSelector": {"matchLabels": {"access": "granted"}}}],
                    "ports": [{"protocol": "TCP", "port": 8080}],
                }
            ],
        },
    )
    wait_for(lambda: reached(clients[0]) == [True, True], timeout=10, what="the allow to apply")
    # The others stay out: another label, or the same label in another namespace.
    assert reached(clients[1]) == [False, False]
    assert reached(clients[2]) == [False, False]
