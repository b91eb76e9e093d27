"""The real kubectl 1.32 against `timonel server --disable-agent`."""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import yaml

from tests.conftest import KUBECTL, RunningServer

SEED = """\
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


def test_version_reports_1_32(server: RunningServer) -> None:
    out = server.kubectl("version", "-o", "json").json()
    assert out["serverVersion"]["major"] == "1"
    assert out["serverVersion"]["minor"] == "32"


def test_cluster_info(server: RunningServer) -> None:
    out = server.kubectl("cluster-info").stdout
    assert "Kubernetes control plane" in out
    assert server.url in out


def test_api_resources_short_names(server: RunningServer) -> None:
    out = server.kubectl("api-resources").stdout
    rows: dict[str, list[str]] = {}
    for line in out.splitlines()[1:]:
        # The first row of a name is the core group's (metrics.k8s.io also serves pods, nodes).
        rows.setdefault(line.split()[0], line.split())
    expected = {
        "pods": "po",
        "services": "svc",
        "deployments": "deploy",
        "replicasets": "rs",
        "namespaces": "ns",
        "configmaps": "cm",
        "endpoints": "ep",
        "nodes": "no",
        "events": "ev",
        "serviceaccounts": "sa",
        "daemonsets": "ds",
        "statefulsets": "sts",
        "cronjobs": "cj",
        "persistentvolumeclaims": "pvc",
        "persistentvolumes": "pv",
        "ingresses": "ing",
        "networkpolicies": "netpol",
        "horizontalpodautoscalers": "hpa",
        "poddisruptionbudgets": "pdb",
        "storageclasses": "sc",
        "customresourcedefinitions": "crd",
    }
    for resource, short in expected.items():
        assert resource in rows, resource
        assert short in rows[resource][1].split(","), (resource, rows[resource])


def test_api_versions(server: RunningServer) -> None:
    versions = server.kubectl("api-versions").stdout.split()
    for gv in (
        "v1",
        "apps/v1",
        "batch/v1",
        "autoscaling/v2",
        "networking.k8s.io/v1",
        "policy/v1",
        "rbac.authorization.k8s.io/v1",
        "apiextensions.k8s.io/v1",
        "coordination.k8s.io/v1",
        "discovery.k8s.io/v1",
        "events.k8s.io/v1",
        "storage.k8s.io/v1",
    ):
        assert gv in versions


def test_seed_deployment_applies_with_defaults_and_reapplies_unchanged(
    server: RunningServer, namespace: str
) -> None:
    created = server.kubectl("apply", "-n", namespace, "-f", "-", input=SEED)
    assert created.stdout.strip() == "deployment.apps/nginx-deployment created"
    obj = server.kubectl(
        "get", "-n", namespace, "deployment", "nginx-deployment", "-o", "json"
    ).json()
    spec = obj["spec"]
    assert spec["replicas"] == 1
    assert spec["revisionHistoryLimit"] == 10
    assert spec["progressDeadlineSeconds"] == 600
    assert spec["minReadySeconds"] == 5
    assert spec["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
    }
    container = spec["template"]["spec"]["containers"][0]
    assert container == {
        "name": "nginx",
        "image": "nginx:1.14.2",
        "imagePullPolicy": "IfNotPresent",
        "ports": [{"containerPort": 80, "protocol": "TCP"}],
        "resources": {},
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
    }
    pod_spec = spec["template"]["spec"]
    assert pod_spec["restartPolicy"] == "Always"
    assert pod_spec["dnsPolicy"] == "ClusterFirst"
    assert pod_spec["schedulerName"] == "default-scheduler"
    assert pod_spec["terminationGracePeriodSeconds"] == 30
    assert pod_spec["securityContext"] == {}
    annotation = obj["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
    assert json.loads(annotation)["spec"]["minReadySeconds"] == 5
    assert obj["metadata"]["generation"] == 1

    again = server.kubectl("apply", "-n", namespace, "-f", "-", input=SEED)
    assert again.stdout.strip() == "deployment.apps/nginx-deployment unchanged"
    after = server.kubectl(
        "get", "-n", namespace, "deployment", "nginx-deployment", "-o", "json"
    ).json()
    # The deployment controller may write status meanwhile; the apply itself wrote nothing.
    assert after["metadata"]["generation"] == 1
    assert after["spec"] == obj["spec"]
    assert after["metadata"]["annotations"] == obj["metadata"]["annotations"]


def test_apply_changed_manifest_lands_and_annotation_follows(
    server: RunningServer, namespace: str
) -> None:
    server.kubectl("apply", "-n", namespace, "-f", "-", input=SEED)
    changed = SEED.replace("nginx:1.14.2", "nginx:1.16.1").replace(
        "  minReadySeconds: 5\n", "  minReadySeconds: 5\n  replicas: 3\n"
    )
    out = server.kubectl("apply", "-n", namespace, "-f", "-", input=changed)
    assert out.stdout.strip() == "deployment.apps/nginx-deployment configured"
    obj = server.kubectl("get", "-n", namespace, "deploy", "nginx-deployment", "-o", "json").json()
    assert obj["spec"]["replicas"] == 3
    assert obj["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.16.1"
    assert obj["metadata"]["generation"] == 2
    last = json.loads(
        obj["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
    )
    assert last["spec"]["replicas"] == 3
    assert last["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.16.1"


def test_apply_server_side(server: RunningServer, namespace: str) -> None:
    out = server.kubectl("apply", "--server-side", "-n", namespace, "-f", "-", input=SEED)
    assert "serverside-applied" in out.stdout
    obj = server.kubectl(
        "get", "-n", namespace, "deploy", "nginx-deployment", "-o", "json", "--show-managed-fields"
    ).json()
    managers = {(m["manager"], m["operation"]) for m in obj["metadata"]["managedFields"]}
    assert ("kubectl", "Apply") in managers
    changed = SEED.replace("nginx:1.14.2", "nginx:1.16.1")
    server.kubectl("apply", "--server-side", "-n", namespace, "-f", "-", input=changed)
    image = server.kubectl(
        "get",
        "-n",
        namespace,
        "deploy",
        "nginx-deployment",
        "-o",
        "jsonpath={.spec.template.spec.containers[0].image}",
    ).stdout
    assert image == "nginx:1.16.1"


def test_get_output_formats(server: RunningServer, namespace: str) -> None:
    server.kubectl("create", "-n", namespace, "-f", "-", input=SEED)
    table = server.kubectl("get", "-n", namespace, "deployments").stdout.splitlines()
    assert re.split(r"\s{2,}", table[0].strip()) == [
        "NAME",
        "READY",
        "UP-TO-DATE",
        "AVAILABLE",
        "AGE",
    ]
    assert table[1].split()[0] == "nginx-deployment"
    assert re.fullmatch(r"\d/1", table[1].split()[1])
    wide = server.kubectl("get", "-n", namespace, "deployments", "-o", "wide").stdout.splitlines()
    assert re.split(r"\s{2,}", wide[0].strip()) == [
        "NAME",
        "READY",
        "UP-TO-DATE",
        "AVAILABLE",
        "AGE",
        "CONTAINERS",
        "IMAGES",
        "SELECTOR",
    ]
    assert wide[1].split()[5:] == ["nginx", "nginx:1.14.2", "app=nginx"]
    as_yaml = yaml.safe_load(
        server.kubectl("get", "-n", namespace, "deploy", "nginx-deployment", "-o", "yaml").stdout
    )
    assert as_yaml["kind"] == "Deployment"
    name = server.kubectl(
        "get", "-n", namespace, "deploy", "-o", "jsonpath={.items[0].metadata.name}"
    ).stdout
    assert name == "nginx-deployment"


def test_label_selectors_and_field_selectors(server: RunningServer, namespace: str) -> None:
    for name, app, tier in (
        ("a", "a", "web"),
        ("b", "b", "db"),
        ("c", "c", "web"),
        ("d", "a", "cache"),
    ):
        server.kubectl("create", "configmap", name, "-n", namespace)
        server.kubectl("label", "configmap", name, "-n", namespace, f"app={app}", f"tier={tier}")
    out = server.kubectl(
        "get", "cm", "-n", namespace, "-l", "app in (a,b),tier!=db", "-o", "name"
    ).stdout.split()
    assert sorted(out) == ["configmap/a", "configmap/d"]
    out = server.kubectl("get", "cm", "-n", namespace, "-l", "!app", "-o", "name").stdout.split()
    assert out == ["configmap/kube-root-ca.crt"] or out == []
    out = server.kubectl(
        "get", "cm", "-n", namespace, "--field-selector", "metadata.name=c", "-o", "name"
    ).stdout.split()
    assert out == ["configmap/c"]
    everywhere = server.kubectl("get", "cm", "-A", "-l", "tier=web", "-o", "name").stdout.split()
    assert sorted(everywhere) == ["configmap/a", "configmap/c"]


def test_chunked_list(server: RunningServer, namespace: str) -> None:
    for index in range(7):
        server.kubectl("create", "configmap", f"cm-{index}", "-n", namespace)
    out = server.kubectl(
        "get", "cm", "-n", namespace, "--chunk-size=2", "-o", "name"
    ).stdout.split()
    assert sorted(o for o in out if o.startswith("configmap/cm-")) == [
        f"configmap/cm-{i}" for i in range(7)
    ]


def test_create_subcommands_protobuf(server: RunningServer, namespace: str) -> None:
    server.kubectl(
        "create",
        "deployment",
        "hello",
        "--image=nginx:1.27",
        "--replicas=2",
        "--port=80",
        "-n",
        namespace,
    )
    server.kubectl("create", "configmap", "settings", "--from-literal=a=b", "-n", namespace)
    server.kubectl(
        "create", "secret", "generic", "creds", "--from-literal=user=admin", "-n", namespace
    )
    deploy = server.kubectl("get", "deploy", "hello", "-n", namespace, "-o", "json").json()
    assert deploy["spec"]["replicas"] == 2
    assert deploy["spec"]["template"]["spec"]["containers"][0]["ports"] == [
        {"containerPort": 80, "protocol": "TCP"}
    ]
    cm = server.kubectl("get", "cm", "settings", "-n", namespace, "-o", "json").json()
    assert cm["data"] == {"a": "b"}
    secret = server.kubectl("get", "secret", "creds", "-n", namespace, "-o", "json").json()
    assert secret["data"] == {"user": "YWRtaW4="}
    assert secret["type"] == "Opaque"


def test_label_annotate_patch_scale(server: RunningServer, namespace: str) -> None:
    server.kubectl("create", "-n", namespace, "-f", "-", input=SEED)
    server.kubectl("label", "deploy", "nginx-deployment", "-n", namespace, "tier=frontend")
    server.kubectl("annotate", "deploy", "nginx-deployment", "-n", namespace, "owner=team-a")
    server.kubectl(
        "patch",
        "deploy",
        "nginx-deployment",
        "-n",
        namespace,
        "--type",
        "merge",
        "-p",
        '{"spec":{"minReadySeconds":7}}',
    )
    server.kubectl(
        "patch",
        "deploy",
        "nginx-deployment",
        "-n",
        namespace,
        "--type",
        "json",
        "-p",
        '[{"op":"replace","path":"/spec/revisionHistoryLimit","value":3}]',
    )
    server.kubectl(
        "patch",
        "deploy",
        "nginx-deployment",
        "-n",
        namespace,
        "-p",
        '{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","image":"busybox"}]}}}}',
    )
    server.kubectl("scale", "deploy", "nginx-deployment", "-n", namespace, "--replicas=4")
    obj = server.kubectl("get", "deploy", "nginx-deployment", "-n", namespace, "-o", "json").json()
    assert obj["metadata"]["labels"]["tier"] == "frontend"
    assert obj["metadata"]["annotations"]["owner"] == "team-a"
    assert obj["spec"]["minReadySeconds"] == 7
    assert obj["spec"]["revisionHistoryLimit"] == 3
    assert [c["name"] for c in obj["spec"]["template"]["spec"]["containers"]] == [
        "sidecar",
        "nginx",
    ] or [c["name"] for c in obj["spec"]["template"]["spec"]["containers"]] == ["nginx", "sidecar"]
    assert obj["spec"]["replicas"] == 4


def test_delete_cascade_modes_and_wait(server: RunningServer, namespace: str) -> None:
    for mode in ("background", "foreground", "orphan"):
        server.kubectl("create", "configmap", f"cm-{mode}", "-n", namespace)
        server.kubectl(
            "delete",
            "configmap",
            f"cm-{mode}",
            "-n",
            namespace,
            f"--cascade={mode}",
            "--timeout=20s",
        )
        gone = server.kubectl("get", "configmap", f"cm-{mode}", "-n", namespace, check=False)
        assert gone.returncode == 1
        assert "NotFound" in gone.stderr
    waited = server.kubectl(
        "wait", "--for=delete", "configmap/cm-background", "-n", namespace, "--timeout=5s"
    )
    assert waited.returncode == 0


def test_describe_and_events(server: RunningServer, namespace: str) -> None:
    server.kubectl("create", "-n", namespace, "-f", "-", input=SEED)
    out = server.kubectl("describe", "deploy", "nginx-deployment", "-n", namespace).stdout
    assert "nginx:1.14.2" in out
    assert "MinReadySeconds:" in out
    event = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": "nginx-deployment.1", "namespace": namespace},
        "involvedObject": {
            "kind": "Deployment",
            "name": "nginx-deployment",
            "namespace": namespace,
            "apiVersion": "apps/v1",
        },
        "reason": "ScalingReplicaSet",
        "message": "Scaled up replica set nginx-deployment-1 to 1",
        "type": "Normal",
        "source": {"component": "deployment-controller"},
        "count": 1,
        "firstTimestamp": "2026-01-01T00:00:00Z",
        "lastTimestamp": "2026-01-01T00:00:00Z",
    }
    server.kubectl("create", "-f", "-", input=json.dumps(event))
    events = server.kubectl("get", "events", "-n", namespace).stdout
    assert "ScalingReplicaSet" in events
    assert "deployment/nginx-deployment" in events


def test_explain(server: RunningServer) -> None:
    out = server.kubectl("explain", "pods.spec.containers").stdout
    assert "KIND:" in out and "Pod" in out
    assert "FIELD: containers" in out
    assert "image" in out


def test_get_watch_sees_changes(server: RunningServer, namespace: str) -> None:
    command = [
        KUBECTL,
        "--kubeconfig",
        str(server.kubeconfig),
        "--cache-dir",
        str(server.cache_dir),
        "get",
        "configmaps",
        "-n",
        namespace,
        "-w",
        "-o",
        "name",
    ]
    watcher = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.0)
        server.kubectl("create", "configmap", "watched", "-n", namespace)
        deadline = time.monotonic() + 10
        seen = ""
        assert watcher.stdout is not None
        while time.monotonic() < deadline:
            line = watcher.stdout.readline()
            seen += line
            if "configmap/watched" in line:
                break
        assert "configmap/watched" in seen
    finally:
        watcher.kill()
        watcher.wait()


def test_not_found_message(server: RunningServer) -> None:
    result = server.kubectl("get", "deploy", "does-not-exist", check=False)
    assert result.returncode == 1
    assert (
        'Error from server (NotFound): deployments.apps "does-not-exist" not found' in result.stderr
    )


def test_auth(server: RunningServer) -> None:
    assert server.kubectl("auth", "can-i", "create", "deployments").stdout.strip() == "yes"
    whoami = server.kubectl("auth", "whoami").stdout
    assert "system:admin" in whoami


def test_service_account_token_authenticates(
    server: RunningServer, namespace: str, tmp_path: Path
) -> None:
    server.kubectl("create", "serviceaccount", "robot", "-n", namespace)
    token = server.kubectl("create", "token", "robot", "-n", namespace).stdout.strip()
    assert token.count(".") == 2
    admin = yaml.safe_load(server.kubeconfig.read_text())
    admin["users"][0]["user"] = {"token": token}
    robot_config = tmp_path / "robot.yaml"
    robot_config.write_text(yaml.safe_dump(admin))

    def as_robot(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                KUBECTL,
                "--kubeconfig",
                str(robot_config),
                "--cache-dir",
                str(server.cache_dir),
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )

    whoami = as_robot("auth", "whoami", "-o", "json")
    assert whoami.returncode == 0, whoami.stderr
    assert (
        json.loads(whoami.stdout)["status"]["userInfo"]["username"]
        == f"system:serviceaccount:{namespace}:robot"
    )
    server.kubectl("delete", "serviceaccount", "robot", "-n", namespace)
    rejected = as_robot("get", "pods", "-n", namespace)
    assert rejected.returncode == 1
    assert "Unauthorized" in rejected.stderr
