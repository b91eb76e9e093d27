"""Namespace deletion inside `timonel server`, driven with kubectl."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from tests.conftest import RunningServer
from tests.integration.controllers.harness import get, wait_for

CONTENT = """\
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {a: "1"}
---
apiVersion: v1
kind: Secret
metadata: {name: token}
stringData: {t: x}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: nginx}]
---
apiVersion: v1
kind: Pod
metadata: {name: lone}
spec:
  containers: [{name: c, image: busybox}]
"""


def conditions(namespace: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in namespace.get("status", {}).get("conditions") or []}


def test_delete_namespace_with_content(server: RunningServer) -> None:
    name = f"ns-{uuid.uuid4().hex[:8]}"
    server.kubectl("create", "namespace", name)
    server.kubectl("apply", "-n", name, "-f", "-", input=CONTENT)
    started = time.monotonic()
    server.kubectl("delete", "namespace", name, "--timeout=30s")
    assert time.monotonic() - started < 15
    gone = server.kubectl("get", "namespace", name, check=False)
    assert gone.returncode == 1 and "NotFound" in gone.stderr
    for kind in ("configmaps", "secrets", "services", "deployments", "pods", "serviceaccounts"):
        left = server.kubectl("get", kind, "-n", name, "-o", "name").stdout.split()
        assert left == [], (kind, left)


def test_content_held_by_a_finalizer_keeps_the_namespace_terminating(server: RunningServer) -> None:
    name = f"ns-{uuid.uuid4().hex[:8]}"
    server.kubectl("create", "namespace", name)
    held = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "held", "namespace": name, "finalizers": ["example.com/hold"]},
    }
    server.kubectl("create", "-f", "-", input=json.dumps(held))
    server.kubectl("delete", "namespace", name, "--wait=false")

    def reports_remaining_content() -> bool:
        namespace = get(server, "namespace", name)
        assert namespace is not None
        return "NamespaceFinalizersRemaining" in conditions(namespace)

    wait_for(reports_remaining_content, timeout=15, what="deletion conditions")
    namespace = get(server, "namespace", name)
    assert namespace is not None
    assert namespace["status"]["phase"] == "Terminating"
    assert namespace["spec"]["finalizers"] == ["kubernetes"]
    found = conditions(namespace)
    assert found["NamespaceContentRemaining"]["status"] == "True"
    assert found["NamespaceContentRemaining"]["reason"] == "SomeResourcesRemain"
    assert found["NamespaceContentRemaining"]["message"] == (
        "Some resources are remaining: configmaps. has 1 resource instances"
    )
    assert found["NamespaceFinalizersRemaining"]["reason"] == "SomeFinalizersRemain"
    assert found["NamespaceFinalizersRemaining"]["message"] == (
        "Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances"
    )
    assert found["NamespaceDeletionDiscoveryFailure"] == {
        **found["NamespaceDeletionDiscoveryFailure"],
        "status": "False",
        "reason": "ResourcesDiscovered",
        "message": "All resources successfully discovered",
    }
    assert found["NamespaceDeletionContentFailure"]["status"] == "False"
    # Nothing new may be created while it terminates.
    refused = server.kubectl("create", "configmap", "late", "-n", name, check=False)
    assert refused.returncode != 0 and "being terminated" in refused.stderr

    server.kubectl(
        "patch",
        "configmap",
        "held",
        "-n",
        name,
        "--type=merge",
        "-p",
        '{"metadata":{"finalizers":null}}',
    )
    # kube looks again after half the 15 s it allows finalizers.
    wait_for(lambda: get(server, "namespace", name) is None, timeout=20, what="namespace gone")


def test_custom_resources_in_the_namespace_are_deleted(server: RunningServer) -> None:
    group = f"ns{uuid.uuid4().hex[:6]}.example.com"
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"gadgets.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "x-kubernetes-preserve-unknown-fields": True,
                        }
                    },
                }
            ],
        },
    }
    server.kubectl("create", "-f", "-", input=json.dumps(crd))
    name = f"ns-{uuid.uuid4().hex[:8]}"
    try:
        server.kubectl("create", "namespace", name)
        wait_for(
            lambda: (
                server.kubectl("get", f"gadgets.{group}", "-n", name, check=False).returncode == 0
            ),
            what="custom resource served",
        )
        gadget = {"apiVersion": f"{group}/v1", "kind": "Gadget", "metadata": {"name": "g"}}
        server.kubectl("create", "-n", name, "-f", "-", input=json.dumps(gadget))
        server.kubectl("delete", "namespace", name, "--timeout=30s")
        assert server.kubectl("get", f"gadgets.{group}", "-A", "-o", "name").stdout.split() == []
    finally:
        server.kubectl("delete", "crd", f"gadgets.{group}", "--ignore-not-found", "--wait=false")
