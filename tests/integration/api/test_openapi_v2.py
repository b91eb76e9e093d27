"""kubectl 1.32 paths that read /openapi/v2: client-side validation of `List` manifests."""

from __future__ import annotations

import json

import yaml

from tests.conftest import RunningServer

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: listed
spec:
  replicas: 1
  selector:
    matchLabels:
      app: listed
  template:
    metadata:
      labels:
        app: listed
    spec:
      containers:
      - name: web
        image: nginx:1.27
        ports:
        - containerPort: 80
"""


def test_apply_a_list_written_by_get(server: RunningServer, namespace: str) -> None:
    server.kubectl("apply", "-n", namespace, "-f", "-", input=DEPLOYMENT)
    server.kubectl("create", "service", "clusterip", "listed", "--tcp=80:80", "-n", namespace)
    listing = server.kubectl("get", "deploy,svc", "-n", namespace, "-o", "yaml").stdout
    assert yaml.safe_load(listing)["kind"] == "List"
    # Controllers keep writing status, so a stored resourceVersion would make the patch
    # conflict (as it does against kube-apiserver); drop it like a user editing the file.
    listing = "\n".join(
        line for line in listing.splitlines() if not line.strip().startswith("resourceVersion:")
    )

    applied = server.kubectl("apply", "-f", "-", input=listing)
    assert "deployment.apps/listed configured" in applied.stdout
    assert "service/listed configured" in applied.stdout

    # A changed image in the list lands through the strategic merge patch kubectl builds.
    changed = listing.replace("nginx:1.27", "nginx:1.28")
    server.kubectl("apply", "-f", "-", input=changed)
    containers = server.kubectl(
        "get",
        "deploy",
        "listed",
        "-n",
        namespace,
        "-o",
        "jsonpath={.spec.template.spec.containers}",
    ).json()
    assert [(c["name"], c["image"]) for c in containers] == [("web", "nginx:1.28")]


def test_strict_validation_of_a_list_uses_the_v2_schema(
    server: RunningServer, namespace: str
) -> None:
    document = yaml.safe_load(DEPLOYMENT)
    document["metadata"]["namespace"] = namespace
    document["spec"]["bogus"] = 1
    listing = json.dumps({"apiVersion": "v1", "kind": "List", "items": [document]})

    rejected = server.kubectl("apply", "--validate=strict", "-f", "-", input=listing, check=False)
    assert rejected.returncode != 0
    assert 'unknown field "bogus" in io.k8s.api.apps.v1.DeploymentSpec' in rejected.stderr
    assert server.kubectl("get", "deploy", "-n", namespace, "-o", "name").stdout == ""

    del document["spec"]["bogus"]
    listing = json.dumps({"apiVersion": "v1", "kind": "List", "items": [document]})
    created = server.kubectl("apply", "--validate=strict", "-f", "-", input=listing)
    assert "deployment.apps/listed created" in created.stdout


def test_openapi_v2_served_as_json(server: RunningServer) -> None:
    document = json.loads(server.kubectl("get", "--raw", "/openapi/v2").stdout)
    assert document["swagger"] == "2.0"
    assert "io.k8s.api.core.v1.Pod" in document["definitions"]
    assert "/api/v1/namespaces/{namespace}/pods/{name}" in document["paths"]
