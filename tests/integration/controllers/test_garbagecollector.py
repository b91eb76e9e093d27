"""The garbage collector inside `timonel server`, driven with kubectl."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from tests.conftest import RunningServer
from tests.integration.controllers.harness import get, wait_for


def configmap(
    server: RunningServer,
    name: str,
    namespace: str,
    *,
    owners: list[dict[str, Any]] | None = None,
    finalizers: list[str] | None = None,
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": namespace}
    if owners:
        meta["ownerReferences"] = owners
    if finalizers:
        meta["finalizers"] = finalizers
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"k": "v"}}
    created: dict[str, Any] = server.kubectl(
        "create", "-o", "json", "-f", "-", input=json.dumps(body)
    ).json()
    return created


def owned_by(owner: dict[str, Any], *, block: bool = False) -> dict[str, Any]:
    ref = {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
    }
    if block:
        ref["blockOwnerDeletion"] = True
    return ref


def test_background_deletion_removes_dependents(server: RunningServer, namespace: str) -> None:
    owner = configmap(server, "owner", namespace)
    configmap(server, "dependent", namespace, owners=[owned_by(owner)])
    configmap(
        server,
        "grandchild",
        namespace,
        owners=[owned_by(get(server, "cm", "dependent", namespace) or {})],
    )
    server.kubectl("delete", "configmap", "owner", "-n", namespace)
    wait_for(lambda: get(server, "cm", "dependent", namespace) is None, what="dependent deleted")
    wait_for(lambda: get(server, "cm", "grandchild", namespace) is None, what="grandchild deleted")


def test_foreground_deletion_waits_for_blocking_dependents(
    server: RunningServer, namespace: str
) -> None:
    owner = configmap(server, "owner", namespace)
    # The dependent's own finalizer keeps it (being deleted) until the test releases it.
    configmap(
        server,
        "dependent",
        namespace,
        owners=[owned_by(owner, block=True)],
        finalizers=["example.com/hold"],
    )
    server.kubectl(
        "delete", "configmap", "owner", "-n", namespace, "--cascade=foreground", "--wait=false"
    )

    def dependent_being_deleted() -> bool:
        dependent = get(server, "cm", "dependent", namespace)
        return dependent is not None and bool(dependent["metadata"].get("deletionTimestamp"))

    wait_for(dependent_being_deleted, what="dependent deleted by the collector")
    held = get(server, "cm", "owner", namespace)
    assert held is not None
    assert held["metadata"].get("deletionTimestamp")
    assert "foregroundDeletion" in held["metadata"]["finalizers"]

    server.kubectl(
        "patch",
        "configmap",
        "dependent",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        '{"metadata":{"finalizers":null}}',
    )
    wait_for(lambda: get(server, "cm", "dependent", namespace) is None, what="dependent gone")
    wait_for(lambda: get(server, "cm", "owner", namespace) is None, what="owner gone")


def test_foreground_deletion_does_not_wait_for_non_blocking_dependents(
    server: RunningServer, namespace: str
) -> None:
    owner = configmap(server, "owner", namespace)
    configmap(
        server, "dependent", namespace, owners=[owned_by(owner)], finalizers=["example.com/hold"]
    )
    server.kubectl(
        "delete", "configmap", "owner", "-n", namespace, "--cascade=foreground", "--timeout=20s"
    )
    assert get(server, "cm", "owner", namespace) is None
    dependent = get(server, "cm", "dependent", namespace)
    assert dependent is not None
    wait_for(
        lambda: bool(
            (get(server, "cm", "dependent", namespace) or {})
            .get("metadata", {})
            .get("deletionTimestamp")
        ),
        what="dependent deleted by the collector",
    )
    server.kubectl(
        "patch",
        "configmap",
        "dependent",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        '{"metadata":{"finalizers":null}}',
    )


def test_orphan_deletion_keeps_dependents_without_the_reference(
    server: RunningServer, namespace: str
) -> None:
    owner = configmap(server, "owner", namespace)
    other = configmap(server, "other-owner", namespace)
    configmap(server, "dependent", namespace, owners=[owned_by(owner)])
    configmap(server, "shared", namespace, owners=[owned_by(owner), owned_by(other)])
    server.kubectl(
        "delete", "configmap", "owner", "-n", namespace, "--cascade=orphan", "--timeout=20s"
    )
    assert get(server, "cm", "owner", namespace) is None
    dependent = get(server, "cm", "dependent", namespace)
    assert dependent is not None
    assert not dependent["metadata"].get("ownerReferences")
    shared = get(server, "cm", "shared", namespace)
    assert shared is not None
    assert [ref["uid"] for ref in shared["metadata"]["ownerReferences"]] == [
        other["metadata"]["uid"]
    ]


def test_dangling_reference_is_removed_while_another_owner_remains(
    server: RunningServer, namespace: str
) -> None:
    owner = configmap(server, "owner", namespace)
    other = configmap(server, "other-owner", namespace)
    configmap(server, "dependent", namespace, owners=[owned_by(owner), owned_by(other)])
    server.kubectl("delete", "configmap", "owner", "-n", namespace)

    def only_other_owner_left() -> bool:
        dependent = get(server, "cm", "dependent", namespace)
        assert dependent is not None, "a dependent with a remaining owner must stay"
        refs = dependent["metadata"].get("ownerReferences") or []
        return [ref["uid"] for ref in refs] == [other["metadata"]["uid"]]

    wait_for(only_other_owner_left, what="dangling reference removed")


def test_owner_that_never_existed_and_cross_namespace_owner(
    server: RunningServer, namespace: str
) -> None:
    absent = {"apiVersion": "v1", "kind": "ConfigMap", "name": "ghost", "uid": str(uuid.uuid4())}
    elsewhere = configmap(server, f"elsewhere-{namespace}", "default")
    configmap(server, "orphaned", namespace, owners=[absent])
    # A namespaced owner is looked up in the dependent's namespace: this one is absent there.
    configmap(server, "cross", namespace, owners=[owned_by(elsewhere)])
    # A cluster-scoped object cannot have a namespaced owner: the reference is ignored.
    role = f"gc-test-{namespace}"
    body = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": role, "ownerReferences": [absent]},
        "rules": [],
    }
    server.kubectl("create", "-f", "-", input=json.dumps(body))
    try:
        wait_for(
            lambda: get(server, "cm", "orphaned", namespace) is None,
            what="orphaned dependent deleted",
        )
        wait_for(
            lambda: get(server, "cm", "cross", namespace) is None,
            what="cross-namespace dependent deleted",
        )
        assert get(server, "cm", f"elsewhere-{namespace}", "default") is not None
        time.sleep(0.5)
        assert get(server, "clusterrole", role) is not None
    finally:
        server.kubectl("delete", "clusterrole", role, "--ignore-not-found")
        server.kubectl(
            "delete", "cm", f"elsewhere-{namespace}", "-n", "default", "--ignore-not-found"
        )


def test_custom_resources_are_collected(server: RunningServer, namespace: str) -> None:
    group = f"gc{uuid.uuid4().hex[:6]}.example.com"
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
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
    try:
        wait_for(
            lambda: (
                server.kubectl("get", f"widgets.{group}", "-n", namespace, check=False).returncode
                == 0
            ),
            what="custom resource served",
        )
        owner = configmap(server, "owner", namespace)
        widget = {
            "apiVersion": f"{group}/v1",
            "kind": "Widget",
            "metadata": {"name": "w", "namespace": namespace, "ownerReferences": [owned_by(owner)]},
        }
        server.kubectl("create", "-f", "-", input=json.dumps(widget))
        # A custom resource owning a built-in one.
        owning = server.kubectl(
            "get", f"widgets.{group}", "w", "-n", namespace, "-o", "json"
        ).json()
        configmap(server, "widget-child", namespace, owners=[owned_by(owning)])
        server.kubectl("delete", "configmap", "owner", "-n", namespace)
        wait_for(
            lambda: get(server, f"widgets.{group}", "w", namespace) is None,
            timeout=15,
            what="widget deleted",
        )
        wait_for(
            lambda: get(server, "cm", "widget-child", namespace) is None,
            what="widget's dependent deleted",
        )
    finally:
        server.kubectl("delete", "crd", f"widgets.{group}", "--ignore-not-found", "--wait=false")
