"""Regenerate the protobuf request-body fixtures by recording what kubectl really sends.

Usage (from the repository root; needs /usr/bin/kubectl, the gcloud dispatcher that execs
`kubectl.1.<minor>` for the minor the server reports):

    .venv/bin/python tests/unit/apiserver/capture_kubectl_protobuf.py [SCENARIO ...]

For every scenario it runs the same kubectl command twice against a small recording HTTP
server on 127.0.0.1:

* reporting minor "32": kubectl 1.32 sends the typed clients' bodies as protobuf; the body
  is saved as `testdata/protobuf/<scenario>.bin`;
* reporting minor "31" (or older, for clients that already used protobuf in 1.31): that
  kubectl sends the same Go object as JSON, which is exactly what decoding the protobuf
  body must give; it is saved as `testdata/protobuf/<scenario>.json`, the expected value.

`create rolebinding` sent protobuf in every older kubectl too, so no JSON is captured for
it and `rolebinding.json` is kept by hand (from Go's encoding rules: omitempty, a zero
`metav1.Time` as null). Drain's eviction POST arrives as JSON even from 1.32, so it has no
scenario; the eviction decoding is tested with a constructed body.

Plain HTTP is fine here: kubectl sends no credentials to an http:// server. The server
answers just enough for each command to finish: legacy discovery, the objects some
commands read first, a JSON echo (201) for every POST, and 404 for a deleted pod.

This file is not collected by pytest (its name does not start with `test_`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

from timonel.api.errors import StatusError
from timonel.apiserver import protobuf

TESTDATA = Path(__file__).parent / "testdata" / "protobuf"
KUBECTL = "/usr/bin/kubectl"
PROTOBUF = "application/vnd.kubernetes.protobuf"
# Older kubectl minors tried in turn for the JSON reference (some clients sent protobuf early).
JSON_MINORS = ("31", "30", "29", "28", "27")


@dataclass(frozen=True)
class Scenario:
    name: str
    command: str  # kubectl arguments, split like a shell would
    request: str  # "<METHOD> <path suffix>" of the request whose body is recorded

    @property
    def args(self) -> list[str]:
        return shlex.split(self.command)


SCENARIOS = [
    Scenario("deployment", "create deployment hello --image=nginx:1.27 --replicas=2 --port=80", "POST /deployments"),
    Scenario("configmap", "create configmap x --from-literal=a=b", "POST /configmaps"),
    Scenario("secret", "create secret generic s --from-literal=k=v", "POST /secrets"),
    Scenario("secret-docker-registry", "create secret docker-registry reg --docker-server=r.example --docker-username=u --docker-password=p", "POST /secrets"),
    Scenario("namespace", "create namespace n", "POST /namespaces"),
    Scenario("service", "create service clusterip web --tcp=80:8080", "POST /services"),
    Scenario("service-nodeport", "create service nodeport np --tcp=5678:8080 --node-port=30080", "POST /services"),
    Scenario("job", "create job j --image=busybox -- echo hi", "POST /jobs"),
    Scenario("job-from-cronjob", "create job manual --from=cronjob/nightly", "POST /jobs"),
    Scenario("cronjob", "create cronjob c --image=busybox '--schedule=*/1 * * * *' -- echo hi", "POST /cronjobs"),
    Scenario("serviceaccount", "create serviceaccount sa", "POST /serviceaccounts"),
    Scenario("role", "create role r --verb=get --verb=list --resource=pods --resource-name=p1", "POST /roles"),
    Scenario("rolebinding", "create rolebinding rb --role=r --user=alice --serviceaccount=default:sa", "POST /rolebindings"),
    Scenario("clusterrole", "create clusterrole cr --verb=get --non-resource-url=/healthz", "POST /clusterroles"),
    Scenario("clusterrole-aggregated", "create clusterrole agg --aggregation-rule=team=a", "POST /clusterroles"),
    Scenario("clusterrolebinding", "create clusterrolebinding crb --clusterrole=cr --group=devs", "POST /clusterrolebindings"),
    Scenario("quota", "create quota q --hard=cpu=1,memory=1Gi,pods=10 --scopes=BestEffort", "POST /resourcequotas"),
    Scenario("pdb", "create poddisruptionbudget pdb --selector=app=web --min-available=50%", "POST /poddisruptionbudgets"),
    Scenario("priorityclass", "create priorityclass high --value=1000 --description=important --preemption-policy=Never", "POST /priorityclasses"),
    Scenario("ingress", "create ingress ing --class=nginx '--rule=foo.example/path*=svc:8080,tls=cert' --annotation=a=b", "POST /ingresses"),
    Scenario("hpa", "autoscale deployment hello --min=1 --max=3 --cpu-percent=50", "POST /horizontalpodautoscalers"),
    Scenario("token", "create token default --audience=api --duration=1h --bound-object-kind=Pod --bound-object-name=debug", "POST /serviceaccounts/default/token"),
    Scenario("selfsubjectaccessreview", "auth can-i create deployments", "POST /selfsubjectaccessreviews"),
    Scenario("selfsubjectaccessreview-subresource", "auth can-i get pods/log --namespace=kube-system", "POST /selfsubjectaccessreviews"),
    Scenario("selfsubjectaccessreview-nonresource", "auth can-i get /logs", "POST /selfsubjectaccessreviews"),
    Scenario("selfsubjectrulesreview", "auth can-i --list", "POST /selfsubjectrulesreviews"),
    Scenario("selfsubjectreview", "auth whoami", "POST /selfsubjectreviews"),
    Scenario("pod-debug-copy", "debug source --copy-to=source-copy --image=busybox --container=debugger --share-processes --attach=false -- sleep 1d", "POST /pods"),
    Scenario("deleteoptions-drain", "drain node1 --disable-eviction --grace-period=30 --timeout=20s", "DELETE /pods/web-1"),
    Scenario("deleteoptions-drain-dry-run", "drain node1 --disable-eviction --dry-run=server --timeout=20s", "DELETE /pods/web-1"),
]  # fmt: skip


# --- the objects some commands read before they write ---------------------------------

NODE: dict[str, Any] = yaml.safe_load("""
kind: Node
apiVersion: v1
metadata: {name: node1, uid: 2b1a7c2e-0000-4000-8000-000000000001, resourceVersion: "10"}
spec: {}
status: {}
""")

# The pod `drain node1` finds on the node, owned by a ReplicaSet so no --force is needed.
DRAINED_POD: dict[str, Any] = yaml.safe_load("""
kind: Pod
apiVersion: v1
metadata:
  name: web-1
  namespace: default
  uid: 2b1a7c2e-0000-4000-8000-000000000002
  resourceVersion: "11"
  ownerReferences:
  - {apiVersion: apps/v1, kind: ReplicaSet, name: web-5d8f, uid: 2b1a7c2e-0000-4000-8000-000000000003, controller: true}
spec:
  nodeName: node1
  containers: [{name: web, image: nginx}]
status: {phase: Running}
""")

# A pod with most of PodSpec filled in: `kubectl debug --copy-to` reads it and creates a
# copy through the typed client, so the copy arrives as protobuf with all of it.
SOURCE_POD: dict[str, Any] = yaml.safe_load("""
kind: Pod
apiVersion: v1
metadata:
  name: source
  namespace: default
  uid: 2b1a7c2e-0000-4000-8000-000000000004
  resourceVersion: "12"
  creationTimestamp: "2024-05-01T10:20:30Z"
  labels: {app: web, tier: front}
  annotations: {note: rich pod}
spec:
  volumes:
  - name: cfg
    configMap: {name: web-config, defaultMode: 420, optional: true, items: [{key: nginx.conf, path: nginx.conf, mode: 256}]}
  - {name: sec, secret: {secretName: web-tls, defaultMode: 256}}
  - {name: scratch, emptyDir: {medium: Memory, sizeLimit: 64Mi}}
  - {name: host, hostPath: {path: /var/log, type: Directory}}
  - {name: data, persistentVolumeClaim: {claimName: web-data, readOnly: true}}
  - name: info
    downwardAPI:
      items:
      - {path: labels, fieldRef: {apiVersion: v1, fieldPath: metadata.labels}}
      - {path: cpu, resourceFieldRef: {containerName: web, resource: limits.cpu, divisor: 1m}}
  - name: proj
    projected:
      defaultMode: 420
      sources:
      - serviceAccountToken: {audience: vault, expirationSeconds: 3600, path: token}
      - configMap: {name: ca, items: [{key: ca.crt, path: ca.crt}]}
  - {name: nfs, nfs: {server: 10.0.0.5, path: /exports, readOnly: false}}
  initContainers:
  - name: init
    image: busybox:1.36
    command: [sh, -c]
    args: [echo init]
    resources: {requests: {cpu: 10m}}
    restartPolicy: Always
  containers:
  - name: web
    image: nginx:1.27
    workingDir: /srv
    ports:
    - {name: http, containerPort: 8080, protocol: TCP}
    - {containerPort: 9090, hostPort: 9090, hostIP: 127.0.0.1, protocol: UDP}
    envFrom:
    - configMapRef: {name: web-env}
    - {prefix: S_, secretRef: {name: web-secret, optional: true}}
    env:
    - {name: PLAIN, value: "1"}
    - {name: EMPTY}
    - {name: FROM_CM, valueFrom: {configMapKeyRef: {name: web-config, key: k}}}
    - {name: FROM_SECRET, valueFrom: {secretKeyRef: {name: web-secret, key: pw, optional: false}}}
    - {name: POD_IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}
    - {name: MEM, valueFrom: {resourceFieldRef: {resource: limits.memory, divisor: 1Mi}}}
    resources:
      limits: {cpu: 500m, memory: 256Mi}
      requests: {cpu: 250m, memory: 128Mi}
    volumeMounts:
    - {name: cfg, mountPath: /etc/nginx, readOnly: true}
    - {name: scratch, mountPath: /tmp, subPath: t, mountPropagation: None}
    livenessProbe:
      httpGet: {path: /healthz, port: http, scheme: HTTP, httpHeaders: [{name: X-Probe, value: "1"}]}
      initialDelaySeconds: 5
      periodSeconds: 10
      timeoutSeconds: 1
      successThreshold: 1
      failureThreshold: 3
    readinessProbe: {tcpSocket: {port: 8080}, periodSeconds: 5}
    startupProbe: {exec: {command: [cat, /tmp/ready]}, failureThreshold: 30, terminationGracePeriodSeconds: 10}
    lifecycle:
      preStop: {sleep: {seconds: 5}}
      postStart: {exec: {command: ["true"]}}
    terminationMessagePath: /dev/termination-log
    terminationMessagePolicy: File
    imagePullPolicy: IfNotPresent
    securityContext:
      runAsUser: 1000
      runAsNonRoot: true
      readOnlyRootFilesystem: true
      allowPrivilegeEscalation: false
      privileged: false
      capabilities: {add: [NET_BIND_SERVICE], drop: [ALL]}
      seccompProfile: {type: RuntimeDefault}
    stdin: false
    tty: false
  restartPolicy: Always
  terminationGracePeriodSeconds: 30
  activeDeadlineSeconds: 600
  dnsPolicy: ClusterFirst
  nodeSelector: {disk: ssd}
  serviceAccountName: web
  serviceAccount: web
  automountServiceAccountToken: false
  nodeName: node1
  hostNetwork: false
  securityContext:
    runAsUser: 1000
    runAsGroup: 3000
    fsGroup: 2000
    supplementalGroups: [4000, 5000]
    sysctls: [{name: net.core.somaxconn, value: "1024"}]
    seccompProfile: {type: RuntimeDefault}
  imagePullSecrets: [{name: regcred}]
  hostname: web-0
  subdomain: web
  affinity:
    nodeAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
        nodeSelectorTerms:
        - matchExpressions: [{key: kubernetes.io/os, operator: In, values: [linux]}]
      preferredDuringSchedulingIgnoredDuringExecution:
      - {weight: 1, preference: {matchExpressions: [{key: zone, operator: Exists}]}}
    podAntiAffinity:
      preferredDuringSchedulingIgnoredDuringExecution:
      - weight: 100
        podAffinityTerm: {labelSelector: {matchLabels: {app: web}}, topologyKey: kubernetes.io/hostname}
    podAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
      - labelSelector: {matchExpressions: [{key: app, operator: In, values: [db]}]}
        namespaces: [data]
        topologyKey: zone
  schedulerName: default-scheduler
  tolerations:
  - {key: node.kubernetes.io/not-ready, operator: Exists, effect: NoExecute, tolerationSeconds: 300}
  - {key: dedicated, operator: Equal, value: web, effect: NoSchedule}
  hostAliases: [{ip: 127.0.0.1, hostnames: [web.local]}]
  priorityClassName: high
  priority: 1000
  dnsConfig: {nameservers: [1.1.1.1], searches: [svc.local], options: [{name: ndots, value: "2"}]}
  readinessGates: [{conditionType: example.com/ready}]
  enableServiceLinks: true
  preemptionPolicy: PreemptLowerPriority
  topologySpreadConstraints:
  - {maxSkew: 1, topologyKey: zone, whenUnsatisfiable: DoNotSchedule, labelSelector: {matchLabels: {app: web}}}
status: {phase: Running, podIP: 10.42.0.7}
""")

# `autoscale deployment hello` reads this for its name and selector.
DEPLOYMENT: dict[str, Any] = yaml.safe_load("""
kind: Deployment
apiVersion: apps/v1
metadata: {name: hello, namespace: default, uid: 2b1a7c2e-0000-4000-8000-000000000006, resourceVersion: "14"}
spec:
  selector: {matchLabels: {app: hello}}
  template:
    metadata: {labels: {app: hello}}
    spec: {containers: [{name: nginx, image: "nginx:1.27"}]}
""")

# `create job --from=cronjob/nightly` reads this and copies its job template.
CRONJOB: dict[str, Any] = yaml.safe_load("""
kind: CronJob
apiVersion: batch/v1
metadata:
  name: nightly
  namespace: default
  uid: 2b1a7c2e-0000-4000-8000-000000000005
  resourceVersion: "13"
  labels: {team: ops}
spec:
  schedule: 0 3 * * *
  concurrencyPolicy: Forbid
  suspend: false
  successfulJobsHistoryLimit: 3
  failedJobsHistoryLimit: 1
  jobTemplate:
    metadata:
      labels: {job: nightly}
      annotations: {owner: ops}
    spec:
      backoffLimit: 2
      activeDeadlineSeconds: 3600
      ttlSecondsAfterFinished: 600
      completions: 1
      parallelism: 1
      template:
        metadata:
          labels: {job: nightly}
        spec:
          restartPolicy: OnFailure
          containers:
          - {name: backup, image: busybox, command: [sh, -c, echo backup], resources: {requests: {cpu: 100m}}}
""")


# Legacy discovery (plain JSON): enough for RESTMapper lookups and drain's eviction check.
# "<groupVersion>": [(name, kind, namespaced, verbs, group/version of a subresource)]
ALL_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
CREATE = ["create"]
DISCOVERY: dict[str, list[tuple[str, str, bool, list[str], str]]] = {
    "v1": [
        ("pods", "Pod", True, ALL_VERBS, ""),
        ("pods/eviction", "Eviction", True, CREATE, "policy/v1"),
        ("nodes", "Node", False, ALL_VERBS, ""),
        ("namespaces", "Namespace", False, ALL_VERBS, ""),
        ("services", "Service", True, ALL_VERBS, ""),
        ("configmaps", "ConfigMap", True, ALL_VERBS, ""),
        ("secrets", "Secret", True, ALL_VERBS, ""),
        ("serviceaccounts", "ServiceAccount", True, ALL_VERBS, ""),
        ("serviceaccounts/token", "TokenRequest", True, CREATE, "authentication.k8s.io/v1"),
        ("resourcequotas", "ResourceQuota", True, ALL_VERBS, ""),
    ],
    "apps/v1": [
        ("deployments", "Deployment", True, ALL_VERBS, ""),
        ("deployments/scale", "Scale", True, ["get", "patch", "update"], "autoscaling/v1"),
    ],
    "autoscaling/v1": [
        ("horizontalpodautoscalers", "HorizontalPodAutoscaler", True, ALL_VERBS, "")
    ],
    "batch/v1": [
        ("jobs", "Job", True, ALL_VERBS, ""),
        ("cronjobs", "CronJob", True, ALL_VERBS, ""),
    ],
    "policy/v1": [("poddisruptionbudgets", "PodDisruptionBudget", True, ALL_VERBS, "")],
    "networking.k8s.io/v1": [("ingresses", "Ingress", True, ALL_VERBS, "")],
    "scheduling.k8s.io/v1": [("priorityclasses", "PriorityClass", False, ALL_VERBS, "")],
    "rbac.authorization.k8s.io/v1": [
        ("roles", "Role", True, ALL_VERBS, ""),
        ("rolebindings", "RoleBinding", True, ALL_VERBS, ""),
        ("clusterroles", "ClusterRole", False, ALL_VERBS, ""),
        ("clusterrolebindings", "ClusterRoleBinding", False, ALL_VERBS, ""),
    ],
    "authentication.k8s.io/v1": [("selfsubjectreviews", "SelfSubjectReview", False, CREATE, "")],
    "authorization.k8s.io/v1": [
        ("selfsubjectaccessreviews", "SelfSubjectAccessReview", False, CREATE, ""),
        ("selfsubjectrulesreviews", "SelfSubjectRulesReview", False, CREATE, ""),
    ],
}


def api_resource_list(group_version: str) -> dict[str, Any]:
    resources = []
    for name, kind, namespaced, verbs, sub_group_version in DISCOVERY[group_version]:
        resource: dict[str, Any] = {
            "name": name,
            "singularName": "" if "/" in name else kind.lower(),
            "namespaced": namespaced,
            "kind": kind,
            "verbs": verbs,
        }
        if sub_group_version:
            resource["group"], resource["version"] = sub_group_version.split("/")
        resources.append(resource)
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    }


@dataclass
class Recorder:
    """The server's state for one kubectl run."""

    minor: str
    requests: list[tuple[str, str, str, bytes]] = field(default_factory=list)
    deleted: set[str] = field(default_factory=set)


def version(minor: str) -> dict[str, str]:
    return {
        "major": "1", "minor": minor, "gitVersion": f"v1.{minor}.0", "gitCommit": "0000000",
        "gitTreeState": "clean", "buildDate": "2024-12-11T00:00:00Z", "goVersion": "go1.23.4",
        "compiler": "gc", "platform": "linux/amd64",
    }  # fmt: skip


def api_group_list() -> dict[str, Any]:
    groups = []
    for group_version in DISCOVERY:
        if "/" in group_version:
            group, version_name = group_version.split("/")
            preferred = {"groupVersion": group_version, "version": version_name}
            groups.append({"name": group, "versions": [preferred], "preferredVersion": preferred})
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def echo(path: str, body: bytes, content_type: str) -> dict[str, Any]:
    """The created object as a JSON reply, with the status each review command prints."""
    try:
        obj = protobuf.decode(body) if content_type == PROTOBUF else json.loads(body)
    except (StatusError, ValueError):
        obj = {}
    obj.setdefault("metadata", {})
    if path.endswith("/token"):
        obj["status"] = {"token": "captured-token", "expirationTimestamp": "2030-01-01T00:00:00Z"}
    elif path.endswith("accessreviews"):
        obj["status"] = {"allowed": True}
    elif path.endswith("rulesreviews"):
        obj["status"] = {"resourceRules": [], "nonResourceRules": [], "incomplete": False}
    elif path.endswith("selfsubjectreviews"):
        obj["status"] = {"userInfo": {"username": "capture", "groups": ["system:authenticated"]}}
    return obj


def read_reply(recorder: Recorder, path: str) -> web.Response:
    if path == "/version":
        return web.json_response(version(recorder.minor))
    if path == "/api":
        return web.json_response({"kind": "APIVersions", "versions": ["v1"]})
    if path == "/apis":
        return web.json_response(api_group_list())
    group_version = path.removeprefix("/api/").removeprefix("/apis/")
    if group_version in DISCOVERY:
        return web.json_response(api_resource_list(group_version))
    if path in ("/api/v1/pods", "/api/v1/namespaces/default/pods"):
        items = [] if "web-1" in recorder.deleted else [DRAINED_POD]
        return web.json_response(
            {"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": items}
        )
    objects = {
        "/api/v1/nodes/node1": NODE,
        "/api/v1/namespaces/default/pods/source": SOURCE_POD,
        "/apis/batch/v1/namespaces/default/cronjobs/nightly": CRONJOB,
        "/apis/apps/v1/namespaces/default/deployments/hello": DEPLOYMENT,
    }
    if "web-1" not in recorder.deleted:
        objects["/api/v1/namespaces/default/pods/web-1"] = DRAINED_POD
    if path in objects:
        return web.json_response(objects[path])
    not_found = {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "reason": "NotFound",
        "code": 404,
    }
    return web.json_response(not_found, status=404)


def build_app(recorder: Recorder) -> web.Application:
    async def handle(request: web.Request) -> web.Response:
        path = request.path
        if request.method == "GET":
            return read_reply(recorder, path)
        body = await request.read()
        recorder.requests.append((request.method, path, request.content_type, body))
        if request.method == "PATCH":  # drain cordons the node first
            return web.json_response(NODE)
        if request.method == "DELETE":
            recorder.deleted.add(path.rsplit("/", 1)[1])
            return web.json_response(DRAINED_POD)
        return web.json_response(echo(path, body, request.content_type), status=201)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


async def run_kubectl(port: int, workdir: Path, args: list[str]) -> tuple[int, str]:
    kubeconfig = workdir / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: capture\n"
        f"clusters: [{{name: capture, cluster: {{server: 'http://127.0.0.1:{port}'}}}}]\n"
        "users: [{name: capture, user: {}}]\n"
        "contexts: [{name: capture, context: {cluster: capture, user: capture, namespace: default}}]\n"
    )
    # HOME too: the dispatcher keeps a cache of its own.
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "HOME": str(workdir)}
    process = await asyncio.create_subprocess_exec(
        KUBECTL, f"--cache-dir={workdir / 'cache'}", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env=env,
    )  # fmt: skip
    output, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    return process.returncode or 0, output.decode()


async def capture(scenario: Scenario, minor: str) -> tuple[str, bytes]:
    """(Content-Type, body) of the scenario's request when the server reports 1.<minor>."""
    recorder = Recorder(minor=minor)
    runner = web.AppRunner(build_app(recorder))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            code, output = await run_kubectl(port, Path(tmp), scenario.args)
    finally:
        await runner.cleanup()
    method, suffix = scenario.request.split(" ")
    for recorded_method, path, content_type, body in recorder.requests:
        if recorded_method == method and path.endswith(suffix) and body:
            return content_type, body
    raise RuntimeError(
        f"{scenario.name} (1.{minor}): no {scenario.request} body recorded; "
        f"kubectl exited {code}:\n{output}"
    )


async def main(names: list[str]) -> None:
    TESTDATA.mkdir(parents=True, exist_ok=True)
    for scenario in SCENARIOS:
        if names and scenario.name not in names:
            continue
        content_type, body = await capture(scenario, "32")
        if content_type != PROTOBUF:
            raise RuntimeError(f"{scenario.name}: kubectl 1.32 sent {content_type}, not protobuf")
        (TESTDATA / f"{scenario.name}.bin").write_bytes(body)
        for minor in JSON_MINORS:
            content_type, reference = await capture(scenario, minor)
            if content_type.startswith("application/json"):
                text = json.dumps(json.loads(reference), indent=2) + "\n"
                (TESTDATA / f"{scenario.name}.json").write_text(text)
                print(f"{scenario.name}: {len(body)} protobuf bytes; JSON from kubectl 1.{minor}")
                break
        else:
            print(f"{scenario.name}: {len(body)} protobuf bytes; no kubectl sends it as JSON")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scenarios", nargs="*", help="scenario names (default: all)")
    asyncio.run(main(parser.parse_args().scenarios))
