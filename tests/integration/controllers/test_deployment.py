"""The deployment and replicaset controllers inside `timonel server`, driven with kubectl.

These tests run the controllers alone: pods name a scheduler nobody serves, so they are
never bound (whatever nodes other tests registered). Where a test needs pods Running
and Ready, a stand-in for the kubelet (`ReadyMaker`, `Cluster.mark_ready`) writes their
status through the API (PUT pods/X/status), as a node would.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from kubernetes import client, config
from kubernetes.client.rest import ApiException
from kubernetes.watch.watch import iter_resp_lines

from tests.conftest import RunningServer

Obj = dict[str, Any]

NO_SCHEDULER = "timonel-tests-no-scheduler"

SEED = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: nginx-deployment
spec:
  selector:
    matchLabels:
      app: nginx
  minReadySeconds: 5
  template:
    metadata:
      labels:
        app: nginx
    spec:
      containers:
      - name: nginx
        image: nginx:1.14.2
        ports:
        - containerPort: 80
"""
# The seed, kept away from any scheduler and node.
SEED_UNBOUND = SEED.replace(
    "    spec:\n      containers:",
    f"    spec:\n      schedulerName: {NO_SCHEDULER}\n      containers:",
)


def manifest(
    name: str,
    *,
    replicas: int = 1,
    image: str = "nginx:1.14.2",
    min_ready: int = 0,
    strategy: Obj | None = None,
    extra_spec: Obj | None = None,
) -> str:
    spec: Obj = {
        "replicas": replicas,
        "selector": {"matchLabels": {"app": name}},
        "minReadySeconds": min_ready,
        "template": {
            "metadata": {"labels": {"app": name}},
            "spec": {
                "schedulerName": NO_SCHEDULER,
                "containers": [{"name": "web", "image": image}],
            },
        },
    }
    if strategy is not None:
        spec["strategy"] = strategy
    spec.update(extra_spec or {})
    return json.dumps(
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name}, "spec": spec}
    )


def wait_until(
    condition: Callable[[], bool], timeout: float = 10.0, what: str = "condition"
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met in {timeout}s")
        time.sleep(0.05)


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def controller_of(obj: Obj) -> Obj | None:
    for reference in obj["metadata"].get("ownerReferences") or []:
        if reference.get("controller"):
            return dict(reference)
    return None


def is_ready(pod: Obj) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (pod.get("status") or {}).get("conditions") or []
    )


def ready_since(pod: Obj) -> float | None:
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready" and condition.get("status") == "True":
            return datetime.fromisoformat(
                condition["lastTransitionTime"].replace("Z", "+00:00")
            ).timestamp()
    return None


def image_of(obj: Obj) -> str:
    spec = obj["spec"]["template"]["spec"] if "template" in obj["spec"] else obj["spec"]
    return str(spec["containers"][0]["image"])


@pytest.fixture(scope="module")
def api_client(server: RunningServer) -> Iterator[client.ApiClient]:
    configuration = client.Configuration()
    config.load_kube_config(config_file=str(server.kubeconfig), client_configuration=configuration)
    with client.ApiClient(configuration) as api:
        yield api


class Cluster:
    """One test namespace, read through the API (raw JSON) and driven with kubectl."""

    def __init__(self, server: RunningServer, api: client.ApiClient, namespace: str) -> None:
        self.server = server
        self.namespace = namespace
        self.core = client.CoreV1Api(api)
        self.apps = client.AppsV1Api(api)

    def kubectl(self, *args: str, input: str | None = None, check: bool = True) -> Any:
        return self.server.kubectl(*args, "-n", self.namespace, input=input, check=check)

    def apply(self, text: str) -> None:
        self.kubectl("apply", "-f", "-", input=text)

    def pods(self, *, label: str = "", including_deleting: bool = False) -> list[Obj]:
        response = self.core.list_namespaced_pod(
            self.namespace, label_selector=label, _preload_content=False
        )
        items: list[Obj] = json.loads(response.data)["items"]
        return [
            p for p in items if including_deleting or not p["metadata"].get("deletionTimestamp")
        ]

    def replica_sets(self) -> list[Obj]:
        response = self.apps.list_namespaced_replica_set(self.namespace, _preload_content=False)
        items: list[Obj] = json.loads(response.data)["items"]
        return items

    def deployment(self, name: str) -> Obj:
        response = self.apps.read_namespaced_deployment(
            name, self.namespace, _preload_content=False
        )
        found: Obj = json.loads(response.data)
        return found

    def replica_set(self, name: str) -> Obj:
        response = self.apps.read_namespaced_replica_set(
            name, self.namespace, _preload_content=False
        )
        found: Obj = json.loads(response.data)
        return found

    def events(self, reason: str) -> list[str]:
        response = self.core.list_namespaced_event(self.namespace, _preload_content=False)
        return [
            e["message"] for e in json.loads(response.data)["items"] if e.get("reason") == reason
        ]

    def wait_for_events(self, reason: str, *messages: str) -> None:
        """Events are recorded in the background: wait until these have been."""
        wait_until(lambda: set(messages) <= set(self.events(reason)), what=f"{reason} events")

    def mark_ready(self, pod: Obj, index: int = 1) -> bool:
        """Report the pod Running and Ready, as its node would; False if it changed meanwhile."""
        stamp = now_rfc3339()
        containers = pod["spec"]["containers"]
        pod = {
            **pod,
            "status": {
                "phase": "Running",
                "conditions": [
                    {"type": "Initialized", "status": "True", "lastTransitionTime": stamp},
                    {"type": "Ready", "status": "True", "lastTransitionTime": stamp},
                    {"type": "ContainersReady", "status": "True", "lastTransitionTime": stamp},
                    {"type": "PodScheduled", "status": "True", "lastTransitionTime": stamp},
                ],
                "podIP": f"10.42.0.{index % 250 + 2}",
                "podIPs": [{"ip": f"10.42.0.{index % 250 + 2}"}],
                "startTime": stamp,
                "containerStatuses": [
                    {
                        "name": c["name"],
                        "image": c["image"],
                        "imageID": "",
                        "ready": True,
                        "started": True,
                        "restartCount": 0,
                        "state": {"running": {"startedAt": stamp}},
                    }
                    for c in containers
                ],
            },
        }
        try:
            self.core.replace_namespaced_pod_status(pod["metadata"]["name"], self.namespace, pod)
        except ApiException as error:
            if error.status in (404, 409):
                return False
            raise
        return True

    def rollout_status(self, name: str, timeout: str = "30s") -> Any:
        return self.kubectl(
            "rollout", "status", f"deployment/{name}", f"--timeout={timeout}", check=False
        )


class ReadyMaker:
    """A stand-in for the nodes: every pod of the namespace becomes Running and Ready
    soon after it appears."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._count = 0

    def __enter__(self) -> ReadyMaker:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                for pod in self.cluster.pods():
                    if not is_ready(pod):
                        self._count += 1
                        self.cluster.mark_ready(pod, self._count)
            except Exception:  # a transient failure: the next round retries
                pass
            self._stop.wait(0.05)


class Watcher:
    """Follows a collection through a watch and checks `check(objects)` after every
    event, so a rule is known to hold at every instant the API server went through."""

    def __init__(
        self,
        list_call: Callable[..., Any],
        namespace: str,
        check: Callable[[dict[str, Obj]], str | None],
    ) -> None:
        self.list_call = list_call
        self.namespace = namespace
        self.check = check
        self.objects: dict[str, Obj] = {}
        self.violations: list[str] = []
        self.events = 0
        self._response: Any = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._started = threading.Event()

    def __enter__(self) -> Watcher:
        listed = json.loads(self.list_call(self.namespace, _preload_content=False).data)
        for item in listed["items"]:
            self.objects[item["metadata"]["name"]] = item
        self._rv = listed["metadata"]["resourceVersion"]
        self._thread.start()
        self._started.wait(5)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._response is not None:
            self._response.shutdown()  # unblocks the reading thread
        self._thread.join(5)
        if self._response is not None:
            self._response.close()

    def _run(self) -> None:
        self._response = self.list_call(
            self.namespace,
            watch=True,
            resource_version=self._rv,
            timeout_seconds=120,
            _preload_content=False,
        )
        self._started.set()
        try:
            for line in iter_resp_lines(self._response):
                event = json.loads(line)
                obj = event["object"]
                name = obj["metadata"]["name"]
                if event["type"] == "DELETED":
                    self.objects.pop(name, None)
                elif event["type"] in ("ADDED", "MODIFIED"):
                    self.objects[name] = obj
                self.events += 1
                problem = self.check(self.objects)
                if problem:
                    self.violations.append(problem)
        except Exception:  # the stream closed
            pass


@pytest.fixture
def cluster(server: RunningServer, api_client: client.ApiClient, namespace: str) -> Cluster:
    return Cluster(server, api_client, namespace)


# -- the seed Deployment ----------------------------------------------------------------


def test_seed_deployment_creates_a_replica_set_and_a_pod(cluster: Cluster) -> None:
    cluster.apply(SEED)
    wait_until(lambda: len(cluster.pods()) == 1, what="one pod")
    deployment = cluster.deployment("nginx-deployment")
    [rs] = cluster.replica_sets()
    [pod] = cluster.pods()

    template_hash = rs["metadata"]["labels"]["pod-template-hash"]
    assert rs["metadata"]["name"] == f"nginx-deployment-{template_hash}"
    assert rs["metadata"]["labels"] == {"app": "nginx", "pod-template-hash": template_hash}
    assert rs["spec"]["selector"] == {
        "matchLabels": {"app": "nginx", "pod-template-hash": template_hash}
    }
    assert rs["spec"]["template"]["metadata"]["labels"] == {
        "app": "nginx",
        "pod-template-hash": template_hash,
    }
    assert rs["spec"]["replicas"] == 1
    assert rs["spec"]["minReadySeconds"] == 5
    assert controller_of(rs) == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "nginx-deployment",
        "uid": deployment["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }
    annotations = rs["metadata"]["annotations"]
    assert annotations["deployment.kubernetes.io/revision"] == "1"
    assert annotations["deployment.kubernetes.io/desired-replicas"] == "1"
    assert annotations["deployment.kubernetes.io/max-replicas"] == "2"
    assert "kubectl.kubernetes.io/last-applied-configuration" not in annotations

    assert pod["metadata"]["generateName"] == f"{rs['metadata']['name']}-"
    assert pod["metadata"]["name"].startswith(f"{rs['metadata']['name']}-")
    assert pod["metadata"]["labels"] == {"app": "nginx", "pod-template-hash": template_hash}
    assert controller_of(pod) == {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "name": rs["metadata"]["name"],
        "uid": rs["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }

    wait_until(
        lambda: cluster.deployment("nginx-deployment").get("status", {}).get("replicas") == 1,
        what="status counts the pod",
    )
    deployment = cluster.deployment("nginx-deployment")
    assert deployment["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
    assert deployment["metadata"]["generation"] == 1  # the revision annotation came with the status
    status = deployment["status"]
    assert status["observedGeneration"] == 1
    assert (status["replicas"], status["updatedReplicas"], status["unavailableReplicas"]) == (
        1,
        1,
        1,
    )
    conditions = {c["type"]: c for c in status["conditions"]}
    assert (conditions["Available"]["status"], conditions["Available"]["reason"]) == (
        "False",
        "MinimumReplicasUnavailable",
    )
    assert conditions["Progressing"]["status"] == "True"
    assert conditions["Progressing"]["reason"] in ("NewReplicaSetCreated", "ReplicaSetUpdated")

    wait_until(
        lambda: (
            bool(cluster.events("ScalingReplicaSet")) and bool(cluster.events("SuccessfulCreate"))
        ),
        what="events",
    )
    assert cluster.events("ScalingReplicaSet") == [
        f"Scaled up replica set {rs['metadata']['name']} to 1"
    ]
    assert cluster.events("SuccessfulCreate") == [f"Created pod: {pod['metadata']['name']}"]


def test_seed_rollout_completes_after_min_ready_seconds(cluster: Cluster) -> None:
    cluster.apply(SEED_UNBOUND)
    wait_until(lambda: len(cluster.pods()) == 1, what="one pod")
    [pod] = cluster.pods()
    assert cluster.mark_ready(pod)
    ready_at = time.monotonic()
    time.sleep(2)
    # Ready, but not yet for minReadySeconds: not available.
    status = cluster.deployment("nginx-deployment")["status"]
    assert status.get("readyReplicas") == 1
    assert status.get("availableReplicas", 0) == 0
    result = cluster.rollout_status("nginx-deployment")
    assert result.returncode == 0, result.stderr
    assert 'deployment "nginx-deployment" successfully rolled out' in result.stdout
    assert time.monotonic() - ready_at >= 4.0  # whole-second timestamps: at least 4 of the 5 s
    status = cluster.deployment("nginx-deployment")["status"]
    assert (status["availableReplicas"], status.get("unavailableReplicas", 0)) == (1, 0)
    conditions = {c["type"]: c for c in status["conditions"]}
    assert (
        conditions["Available"]["status"],
        conditions["Available"]["reason"],
        conditions["Available"]["message"],
    ) == ("True", "MinimumReplicasAvailable", "Deployment has minimum availability.")
    rs_name = cluster.replica_sets()[0]["metadata"]["name"]
    assert (conditions["Progressing"]["reason"], conditions["Progressing"]["message"]) == (
        "NewReplicaSetAvailable",
        f'ReplicaSet "{rs_name}" has successfully progressed.',
    )


def test_scaling_to_3_then_10_then_0(cluster: Cluster) -> None:
    cluster.apply(SEED_UNBOUND)
    wait_until(lambda: len(cluster.pods()) == 1, what="one pod")
    for replicas in (3, 10, 0):
        cluster.kubectl("scale", "deployment/nginx-deployment", f"--replicas={replicas}")

        def scaled(count: int = replicas) -> bool:
            status = cluster.deployment("nginx-deployment")["status"]
            return len(cluster.pods()) == count and status.get("replicas", 0) == count

        wait_until(scaled, what=f"{replicas} pods")
        [rs] = cluster.replica_sets()
        assert rs["spec"]["replicas"] == replicas
        annotations = rs["metadata"]["annotations"]
        assert annotations["deployment.kubernetes.io/desired-replicas"] == str(replicas)
    rs_name = cluster.replica_sets()[0]["metadata"]["name"]
    cluster.wait_for_events(
        "ScalingReplicaSet",
        f"Scaled up replica set {rs_name} to 3 from 1",
        f"Scaled up replica set {rs_name} to 10 from 3",
        f"Scaled down replica set {rs_name} to 0 from 10",
    )
    wait_until(lambda: len(cluster.events("SuccessfulDelete")) == 10, what="deletion events")
    assert all(
        m.startswith("Deleted pod: nginx-deployment-") for m in cluster.events("SuccessfulDelete")
    )


def test_changing_the_seed_image_rolls_out_a_new_replica_set(cluster: Cluster) -> None:
    cluster.apply(SEED_UNBOUND)
    with ReadyMaker(cluster):
        assert cluster.rollout_status("nginx-deployment").returncode == 0
        [old] = cluster.replica_sets()
        cluster.kubectl("set", "image", "deployment/nginx-deployment", "nginx=nginx:1.16.1")
        result = cluster.rollout_status("nginx-deployment")
        assert result.returncode == 0, result.stderr
    sets = {rs["metadata"]["name"]: rs for rs in cluster.replica_sets()}
    assert len(sets) == 2
    old = sets[old["metadata"]["name"]]
    [new] = [rs for name, rs in sets.items() if name != old["metadata"]["name"]]
    assert (old["spec"]["replicas"], new["spec"]["replicas"]) == (0, 1)
    assert image_of(new) == "nginx:1.16.1"
    assert new["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
    assert [image_of(p) for p in cluster.pods()] == ["nginx:1.16.1"]
    deployment = cluster.deployment("nginx-deployment")
    assert deployment["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
    cluster.wait_for_events(
        "ScalingReplicaSet",
        f"Scaled up replica set {new['metadata']['name']} to 1",
        f"Scaled down replica set {old['metadata']['name']} to 0 from 1",
    )


# -- rolling updates within maxSurge and maxUnavailable ---------------------------------------


@pytest.mark.parametrize(
    ("replicas", "strategy", "surge", "unavailable"),
    [
        (4, {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 1}}, 1, 1),
        # 25% of 5: surge rounds up to 2, unavailable down to 1.
        (
            5,
            {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
            },
            2,
            1,
        ),
        # No unavailability allowed at all.
        (3, {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}, 1, 0),
    ],
)
def test_rolling_update_never_exceeds_max_surge_or_max_unavailable(
    cluster: Cluster, replicas: int, strategy: Obj, surge: int, unavailable: int
) -> None:
    min_ready = 1
    cluster.apply(manifest("web", replicas=replicas, min_ready=min_ready, strategy=strategy))
    with ReadyMaker(cluster):
        assert cluster.rollout_status("web").returncode == 0

        def pods_rule(pods: dict[str, Obj]) -> str | None:
            alive = [p for p in pods.values() if not p["metadata"].get("deletionTimestamp")]
            now = time.time()
            available = [
                p
                for p in alive
                if (since := ready_since(p)) is not None and since + min_ready < now
            ]
            if len(alive) > replicas + surge:
                return f"{len(alive)} pods > {replicas} + {surge}"
            if len(available) < replicas - unavailable:
                return f"{len(available)} available < {replicas} - {unavailable}"
            return None

        def sizes_rule(sets: dict[str, Obj]) -> str | None:
            total = sum(rs["spec"]["replicas"] for rs in sets.values())
            return (
                f"replica sets sized {total} > {replicas} + {surge}"
                if total > replicas + surge
                else None
            )

        with (
            Watcher(cluster.core.list_namespaced_pod, cluster.namespace, pods_rule) as pods,
            Watcher(
                cluster.apps.list_namespaced_replica_set, cluster.namespace, sizes_rule
            ) as sets,
        ):
            cluster.kubectl("set", "image", "deployment/web", "web=nginx:1.16.1")
            result = cluster.rollout_status("web")
            assert result.returncode == 0, result.stderr
            wait_until(
                lambda: sorted(image_of(p) for p in cluster.pods()) == ["nginx:1.16.1"] * replicas,
                what="every pod replaced",
            )
            time.sleep(0.2)
    assert pods.events >= 2 * replicas  # the watch saw the rollout
    assert sets.events >= 2
    assert pods.violations == []
    assert sets.violations == []
    old = [rs for rs in cluster.replica_sets() if image_of(rs) == "nginx:1.14.2"]
    assert [rs["spec"]["replicas"] for rs in old] == [0]


def test_recreate_removes_every_old_pod_before_creating_new_ones(cluster: Cluster) -> None:
    cluster.apply(manifest("web", replicas=3, strategy={"type": "Recreate"}))
    with ReadyMaker(cluster):
        assert cluster.rollout_status("web").returncode == 0

        def never_mixed(pods: dict[str, Obj]) -> str | None:
            images = {image_of(p) for p in pods.values()}
            return f"old and new pods together: {images}" if len(images) > 1 else None

        with Watcher(cluster.core.list_namespaced_pod, cluster.namespace, never_mixed) as watcher:
            cluster.kubectl("set", "image", "deployment/web", "web=nginx:1.16.1")
            assert cluster.rollout_status("web").returncode == 0
            wait_until(
                lambda: sorted(image_of(p) for p in cluster.pods()) == ["nginx:1.16.1"] * 3,
                what="every pod replaced",
            )
    assert watcher.violations == []


# -- rollout undo, restart, pause, resume, history ------------------------------------------------


def test_undo_returns_to_the_previous_template(cluster: Cluster) -> None:
    cluster.apply(manifest("web", replicas=2))
    with ReadyMaker(cluster):
        assert cluster.rollout_status("web").returncode == 0
        cluster.kubectl(
            "annotate", "deployment/web", "kubernetes.io/change-cause=upgrade to 1.16.1"
        )
        cluster.kubectl("set", "image", "deployment/web", "web=nginx:1.16.1")
        assert cluster.rollout_status("web").returncode == 0
        history = cluster.kubectl("rollout", "history", "deployment/web").stdout
        assert "upgrade to 1.16.1" in history
        cluster.kubectl("rollout", "undo", "deployment/web")
        assert cluster.rollout_status("web").returncode == 0
        wait_until(
            lambda: sorted(image_of(p) for p in cluster.pods()) == ["nginx:1.14.2"] * 2,
            what="pods back on 1.14.2",
        )
    deployment = cluster.deployment("web")
    assert image_of(deployment) == "nginx:1.14.2"
    assert deployment["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
    sets = cluster.replica_sets()
    assert len(sets) == 2  # the first ReplicaSet came back; none was created
    [current] = [rs for rs in sets if image_of(rs) == "nginx:1.14.2"]
    assert current["spec"]["replicas"] == 2
    assert current["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
    assert current["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"] == "1"
    history = cluster.kubectl("rollout", "history", "deployment/web").stdout.split("\n")
    assert [line.split()[0] for line in history[2:] if line.strip()] == ["2", "3"]


def test_restart_replaces_every_pod(cluster: Cluster) -> None:
    cluster.apply(manifest("web", replicas=3))
    with ReadyMaker(cluster):
        assert cluster.rollout_status("web").returncode == 0
        before = {p["metadata"]["name"] for p in cluster.pods()}
        cluster.kubectl("rollout", "restart", "deployment/web")
        assert cluster.rollout_status("web").returncode == 0
        wait_until(
            lambda: (
                len(cluster.pods()) == 3
                and not before & {p["metadata"]["name"] for p in cluster.pods()}
            ),
            what="every pod replaced",
        )
    template = cluster.deployment("web")["spec"]["template"]
    assert "kubectl.kubernetes.io/restartedAt" in template["metadata"]["annotations"]
    assert len(cluster.replica_sets()) == 2


def test_pause_stops_the_rollout_and_resume_continues_it(cluster: Cluster) -> None:
    cluster.apply(manifest("web", replicas=2))
    with ReadyMaker(cluster):
        assert cluster.rollout_status("web").returncode == 0
        cluster.kubectl("rollout", "pause", "deployment/web")

        def paused_condition() -> bool:
            conditions = cluster.deployment("web")["status"].get("conditions") or []
            return any(
                c["type"] == "Progressing" and c["reason"] == "DeploymentPaused" for c in conditions
            )

        wait_until(paused_condition, what="DeploymentPaused condition")
        cluster.kubectl("set", "image", "deployment/web", "web=nginx:1.16.1")
        # A paused Deployment still scales, but does not roll out.
        cluster.kubectl("scale", "deployment/web", "--replicas=3")
        wait_until(lambda: len(cluster.pods()) == 3, what="scaled while paused")
        time.sleep(0.5)
        assert len(cluster.replica_sets()) == 1
        assert {image_of(p) for p in cluster.pods()} == {"nginx:1.14.2"}
        restart = cluster.kubectl("rollout", "restart", "deployment/web", check=False)
        assert restart.returncode != 0
        assert "paused" in restart.stderr

        cluster.kubectl("rollout", "resume", "deployment/web")
        assert cluster.rollout_status("web").returncode == 0
        wait_until(
            lambda: sorted(image_of(p) for p in cluster.pods()) == ["nginx:1.16.1"] * 3,
            what="rolled out after resume",
        )
    conditions = {c["type"]: c for c in cluster.deployment("web")["status"]["conditions"]}
    assert conditions["Progressing"]["reason"] == "NewReplicaSetAvailable"


def test_revision_history_limit_cleans_up_old_replica_sets(cluster: Cluster) -> None:
    cluster.apply(manifest("web", replicas=1, extra_spec={"revisionHistoryLimit": 1}))
    with ReadyMaker(cluster):
        assert cluster.rollout_status("web").returncode == 0
        for version in ("1.15.0", "1.16.0", "1.17.0"):
            cluster.kubectl("set", "image", "deployment/web", f"web=nginx:{version}")
            assert cluster.rollout_status("web").returncode == 0
    wait_until(lambda: len(cluster.replica_sets()) == 2, what="old replica sets cleaned up")
    revisions = sorted(
        rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
        for rs in cluster.replica_sets()
    )
    assert revisions == ["3", "4"]


def test_progress_deadline_exceeded(cluster: Cluster) -> None:
    cluster.apply(manifest("stuck", replicas=1, extra_spec={"progressDeadlineSeconds": 2}))
    result = cluster.rollout_status("stuck", timeout="20s")
    assert result.returncode != 0
    assert 'deployment "stuck" exceeded its progress deadline' in result.stderr
    conditions = {c["type"]: c for c in cluster.deployment("stuck")["status"]["conditions"]}
    rs_name = cluster.replica_sets()[0]["metadata"]["name"]
    assert (
        conditions["Progressing"]["status"],
        conditions["Progressing"]["reason"],
        conditions["Progressing"]["message"],
    ) == ("False", "ProgressDeadlineExceeded", f'ReplicaSet "{rs_name}" has timed out progressing.')


def test_a_hash_collision_bumps_the_collision_count(cluster: Cluster) -> None:
    cluster.apply(manifest("web"))
    wait_until(lambda: len(cluster.replica_sets()) == 1, what="a replica set")
    taken = cluster.replica_sets()[0]["metadata"]["name"]
    # Leave behind a foreign ReplicaSet under the name the template hashes to.
    cluster.kubectl("delete", "deployment/web", "--cascade=orphan")
    wait_until(lambda: controller_of(cluster.replica_set(taken)) is None, what="orphaned")
    cluster.kubectl("label", f"replicaset/{taken}", "app=other", "--overwrite")
    cluster.kubectl("set", "image", f"replicaset/{taken}", "web=nginx:9.9")
    cluster.apply(manifest("web"))
    wait_until(lambda: len(cluster.replica_sets()) == 2, what="a second replica set")
    [fresh] = [rs for rs in cluster.replica_sets() if rs["metadata"]["name"] != taken]
    assert fresh["metadata"]["name"].startswith("web-")
    assert controller_of(fresh)["name"] == "web"  # type: ignore[index]
    assert cluster.deployment("web")["status"]["collisionCount"] == 1
    assert controller_of(cluster.replica_set(taken)) is None


# -- the replicaset controller ------------------------------------------------------------


def test_a_deleted_pod_is_replaced(cluster: Cluster) -> None:
    cluster.apply(manifest("web", replicas=2))
    wait_until(lambda: len(cluster.pods()) == 2, what="two pods")
    victim = cluster.pods()[0]["metadata"]["name"]
    cluster.kubectl("delete", "pod", victim)
    wait_until(
        lambda: (
            len(cluster.pods()) == 2
            and victim not in {p["metadata"]["name"] for p in cluster.pods()}
        ),
        what="replacement pod",
    )
    rs_name = cluster.replica_sets()[0]["metadata"]["name"]
    wait_until(lambda: len(cluster.events("SuccessfulCreate")) == 3, what="three creations")
    assert all(m.startswith(f"Created pod: {rs_name}-") for m in cluster.events("SuccessfulCreate"))


def replica_set_manifest(name: str, replicas: int) -> str:
    return json.dumps(
        {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {"name": name},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": {"app": name}},
                    "spec": {
                        "schedulerName": NO_SCHEDULER,
                        "containers": [{"name": "web", "image": "nginx:1.14.2"}],
                    },
                },
            },
        }
    )


def test_replica_set_adopts_orphans_and_releases_pods_that_stop_matching(cluster: Cluster) -> None:
    orphan = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "orphan", "labels": {"app": "front"}},
        "spec": {
            "schedulerName": NO_SCHEDULER,
            "containers": [{"name": "web", "image": "nginx:1.14.2"}],
        },
    }
    cluster.kubectl("create", "-f", "-", input=json.dumps(orphan))
    cluster.kubectl("create", "-f", "-", input=replica_set_manifest("front", 2))
    wait_until(lambda: len(cluster.pods()) == 2, what="two pods")
    rs = cluster.replica_set("front")
    names = {p["metadata"]["name"] for p in cluster.pods()}
    assert "orphan" in names  # adopted: only one pod was created
    adopted = next(p for p in cluster.pods() if p["metadata"]["name"] == "orphan")
    assert controller_of(adopted) == {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "name": "front",
        "uid": rs["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }

    cluster.kubectl("label", "pod", "orphan", "app=elsewhere", "--overwrite")
    wait_until(
        lambda: len(cluster.pods(label="app=front")) == 2, what="replacement for the released pod"
    )

    def released() -> bool:
        pod = next(p for p in cluster.pods() if p["metadata"]["name"] == "orphan")
        return controller_of(pod) is None

    wait_until(released, what="pod released")
    wait_until(
        lambda: cluster.replica_set("front").get("status", {}).get("replicas") == 2, what="status"
    )
    status = cluster.replica_set("front")["status"]
    assert status["replicas"] == 2
    assert status["fullyLabeledReplicas"] == 2
    assert status["observedGeneration"] == 1


def test_replica_set_status_counts_ready_and_available(cluster: Cluster) -> None:
    body = json.loads(replica_set_manifest("front", 3))
    body["spec"]["minReadySeconds"] = 1
    cluster.kubectl("create", "-f", "-", input=json.dumps(body))
    wait_until(lambda: len(cluster.pods()) == 3, what="three pods")
    for index, pod in enumerate(cluster.pods()[:2]):
        assert cluster.mark_ready(pod, index)

    def counts() -> tuple[int, int]:
        status = cluster.replica_set("front").get("status", {})
        return status.get("readyReplicas", 0), status.get("availableReplicas", 0)

    wait_until(lambda: counts()[0] == 2, what="two ready")
    assert counts()[1] == 0
    # Available once ready for longer than minReadySeconds, with no other event to wake the controller.
    wait_until(lambda: counts() == (2, 2), timeout=5, what="two available")


def test_scale_down_deletes_not_ready_pods_first(cluster: Cluster) -> None:
    cluster.kubectl("create", "-f", "-", input=replica_set_manifest("front", 4))
    wait_until(lambda: len(cluster.pods()) == 4, what="four pods")
    pods = cluster.pods()
    ready = {p["metadata"]["name"] for p in pods[:2]}
    for index, pod in enumerate(pods[:2]):
        assert cluster.mark_ready(pod, index)
    wait_until(
        lambda: cluster.replica_set("front").get("status", {}).get("readyReplicas") == 2,
        what="ready",
    )
    cluster.kubectl("scale", "replicaset/front", "--replicas=2")
    wait_until(lambda: len(cluster.pods()) == 2, what="scaled down")
    assert {p["metadata"]["name"] for p in cluster.pods()} == ready
    wait_until(lambda: len(cluster.events("SuccessfulDelete")) == 2, what="deletion events")
    assert all(m.startswith("Deleted pod: front-") for m in cluster.events("SuccessfulDelete"))
