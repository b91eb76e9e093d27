"""The StatefulSet controller inside `timonel server`. The test marks pods Running and
Ready itself, as a kubelet would."""

from __future__ import annotations

import time
from typing import Any

from tests.conftest import RunningServer
from tests.integration.controllers.harness import (
    NO_SCHEDULER,
    apply,
    events,
    get,
    items,
    live_pods,
    mark_pod,
    wait_for,
)


def statefulset(
    name: str,
    replicas: int,
    *,
    policy: str = "OrderedReady",
    image: str = "nginx:1.27",
    partition: int | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "replicas": replicas,
        "serviceName": name,
        "podManagementPolicy": policy,
        "selector": {"matchLabels": {"app": name}},
        "template": {
            "metadata": {"labels": {"app": name}},
            "spec": {
                "schedulerName": NO_SCHEDULER,
                "containers": [{"name": "web", "image": image}],
            },
        },
        "volumeClaimTemplates": [
            {
                "metadata": {"name": "data"},
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": "1Gi"}},
                },
            }
        ],
    }
    if partition is not None:
        spec["updateStrategy"] = {
            "type": "RollingUpdate",
            "rollingUpdate": {"partition": partition},
        }
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": name},
        "spec": spec,
    }


def pod_names(server: RunningServer, namespace: str, app: str) -> list[str]:
    return sorted(p["metadata"]["name"] for p in live_pods(server, namespace, f"app={app}"))


def stays(condition: Any, seconds: float = 0.6) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not condition():
            return False
        time.sleep(0.1)
    return True


def test_ordered_creation_identity_storage_and_scale_down(
    server: RunningServer, namespace: str
) -> None:
    apply(server, statefulset("web", 3), namespace)
    for ordinal in range(3):
        name = f"web-{ordinal}"
        wait_for(lambda n=name: n in pod_names(server, namespace, "web"), what=f"{name} created")
        # The next pod waits until this one is Running and Ready.
        assert stays(
            lambda o=ordinal: (
                pod_names(server, namespace, "web") == [f"web-{i}" for i in range(o + 1)]
            )
        )
        mark_pod(server, namespace, name, "Running")

    pod = get(server, "pod", "web-1", namespace)
    assert pod is not None
    labels = pod["metadata"]["labels"]
    assert labels["statefulset.kubernetes.io/pod-name"] == "web-1"
    assert labels["apps.kubernetes.io/pod-index"] == "1"
    assert (pod["spec"]["hostname"], pod["spec"]["subdomain"]) == ("web-1", "web")
    assert {"name": "data", "persistentVolumeClaim": {"claimName": "data-web-1"}} in pod["spec"][
        "volumes"
    ]
    claims = sorted(c["metadata"]["name"] for c in items(server, "pvc", namespace))
    assert claims == ["data-web-0", "data-web-1", "data-web-2"]

    sts = wait_for(
        lambda: (
            (s := get(server, "statefulset", "web", namespace))
            and s["status"].get("readyReplicas") == 3
            and s
        ),
        what="three ready replicas",
    )
    status = sts["status"]
    assert (
        status["replicas"] == 3
        and status["currentReplicas"] == 3
        and status["updatedReplicas"] == 3
    )
    assert (
        status["currentRevision"] == status["updateRevision"] == labels["controller-revision-hash"]
    )
    assert status["observedGeneration"] == sts["metadata"]["generation"]
    assert status["availableReplicas"] == 3
    revisions = items(server, "controllerrevisions", namespace)
    assert [r["metadata"]["name"] for r in revisions] == [status["updateRevision"]]

    server.kubectl("scale", "statefulset", "web", "-n", namespace, "--replicas=1")
    wait_for(lambda: pod_names(server, namespace, "web") == ["web-0"], what="scaled down to web-0")
    deletions = [
        m for r, m in events(server, namespace, "StatefulSet", "web") if r == "SuccessfulDelete"
    ]
    assert deletions == [
        "delete Pod web-2 in StatefulSet web successful",
        "delete Pod web-1 in StatefulSet web successful",
    ]
    creations = [
        m for r, m in events(server, namespace, "StatefulSet", "web") if r == "SuccessfulCreate"
    ]
    assert "create Pod web-0 in StatefulSet web successful" in creations
    assert "create Claim data-web-0 Pod web-0 in StatefulSet web success" in creations
    # Claims outlive their pods unless the retention policy says otherwise.
    assert len(items(server, "pvc", namespace)) == 3


def test_parallel_creates_every_pod_at_once(server: RunningServer, namespace: str) -> None:
    apply(server, statefulset("par", 3, policy="Parallel"), namespace)
    wait_for(
        lambda: pod_names(server, namespace, "par") == ["par-0", "par-1", "par-2"],
        what="all pods at once",
    )


def test_rolling_update_from_the_highest_ordinal_down_to_the_partition(
    server: RunningServer, namespace: str
) -> None:
    apply(server, statefulset("db", 3, partition=1), namespace)
    for ordinal in range(3):
        wait_for(
            lambda o=ordinal: f"db-{o}" in pod_names(server, namespace, "db"), what=f"db-{ordinal}"
        )
        mark_pod(server, namespace, f"db-{ordinal}", "Running")
    first = wait_for(
        lambda: (
            (s := get(server, "statefulset", "db", namespace))
            and s["status"].get("readyReplicas") == 3
            and s
        ),
        what="ready",
    )
    old_revision = first["status"]["currentRevision"]

    apply(server, statefulset("db", 3, image="nginx:1.28", partition=1), namespace)

    def revision_of(name: str) -> str | None:
        pod = get(server, "pod", name, namespace)
        if pod is None or pod["metadata"].get("deletionTimestamp"):
            return None
        revision: str = pod["metadata"]["labels"]["controller-revision-hash"]
        return revision

    new_revision = wait_for(
        lambda: (r := revision_of("db-2")) and r != old_revision and r,
        what="db-2 at the new revision",
    )
    # db-1 waits for db-2 to come back ready.
    assert stays(lambda: revision_of("db-1") == old_revision)
    mark_pod(server, namespace, "db-2", "Running")
    wait_for(lambda: revision_of("db-1") == new_revision, what="db-1 updated")
    mark_pod(server, namespace, "db-1", "Running")
    sts = wait_for(
        lambda: (
            (s := get(server, "statefulset", "db", namespace))
            and s["status"].get("updatedReplicas") == 2
            and s
        ),
        what="two updated replicas",
    )
    # Below the partition nothing changes.
    assert stays(lambda: revision_of("db-0") == old_revision)
    assert get(server, "pod", "db-1", namespace)["spec"]["containers"][0]["image"] == "nginx:1.28"  # type: ignore[index]
    assert sts["status"]["currentRevision"] == old_revision
    assert sts["status"]["updateRevision"] == new_revision
    revisions = {
        r["metadata"]["name"]: r["revision"]
        for r in items(server, "controllerrevisions", namespace)
    }
    assert revisions == {old_revision: 1, new_revision: 2}

    # Without a partition the last pod follows and the update revision becomes current.
    apply(server, statefulset("db", 3, image="nginx:1.28", partition=0), namespace)
    wait_for(lambda: revision_of("db-0") == new_revision, what="db-0 updated")
    mark_pod(server, namespace, "db-0", "Running")
    wait_for(
        lambda: (
            (s := get(server, "statefulset", "db", namespace))
            and s["status"].get("currentRevision") == new_revision
        ),
        what="the update revision current",
    )
