"""ResourceQuota status from the quota controller, and quota enforcement when the API
server admits creates, seen through kubectl."""

from __future__ import annotations

import json

from tests.conftest import RunningServer
from tests.integration.controllers.harness import NO_SCHEDULER, apply, get, wait_for


def pod(name: str, cpu: str = "") -> dict[str, object]:
    container: dict[str, object] = {"name": "c", "image": "nginx"}
    if cpu:
        container["resources"] = {"requests": {"cpu": cpu}}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"schedulerName": NO_SCHEDULER, "containers": [container]},
    }


def used(server: RunningServer, namespace: str, name: str = "quota") -> dict[str, str]:
    quota = get(server, "resourcequota", name, namespace) or {}
    found: dict[str, str] = (quota.get("status") or {}).get("used") or {}
    return found


def test_the_third_pod_is_refused(server: RunningServer, namespace: str) -> None:
    server.kubectl("create", "quota", "quota", "--hard=pods=2,services=5", "-n", namespace)
    wait_for(lambda: used(server, namespace) == {"pods": "0", "services": "0"}, what="quota status")
    quota = get(server, "resourcequota", "quota", namespace)
    assert quota is not None and quota["status"]["hard"] == {"pods": "2", "services": "5"}

    apply(server, pod("one"), namespace)
    apply(server, pod("two"), namespace)
    third = server.kubectl(
        "apply", "-n", namespace, "-f", "-", input=json.dumps(pod("three")), check=False
    )
    assert third.returncode != 0
    assert (
        'pods "three" is forbidden: exceeded quota: quota, requested: pods=1, used: pods=2, limited: pods=2'
        in third.stderr
    )
    assert used(server, namespace)["pods"] == "2"
    table = server.kubectl("get", "quota", "-n", namespace).stdout
    assert "pods: 2/2" in table and "services: 0/5" in table

    # Deleting a pod gives its share back: the controller recounts, and the pod fits.
    server.kubectl("delete", "pod", "one", "-n", namespace, "--wait=false")
    wait_for(lambda: used(server, namespace)["pods"] == "1", what="usage recounted")
    apply(server, pod("three"), namespace)


def test_compute_quota_needs_requests_and_counts_them(
    server: RunningServer, namespace: str
) -> None:
    server.kubectl(
        "create", "quota", "compute", "--hard=requests.cpu=1,count/configmaps=3", "-n", namespace
    )
    wait_for(lambda: "requests.cpu" in used(server, namespace, "compute"), what="quota status")
    bare = server.kubectl("run", "bare", "--image=nginx", "-n", namespace, check=False)
    assert (
        'pods "bare" is forbidden: failed quota: compute: must specify requests.cpu for: bare'
        in bare.stderr
    )
    apply(server, pod("small", "600m"), namespace)
    assert used(server, namespace, "compute")["requests.cpu"] == "600m"
    big = server.kubectl(
        "apply", "-n", namespace, "-f", "-", input=json.dumps(pod("big", "500m")), check=False
    )
    assert (
        "exceeded quota: compute, requested: requests.cpu=500m, used: requests.cpu=600m, limited: requests.cpu=1"
        in big.stderr
    )
    # The namespace's root CA ConfigMap counts too.
    wait_for(
        lambda: used(server, namespace, "compute").get("count/configmaps") == "1",
        what="configmaps counted",
    )
