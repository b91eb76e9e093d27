"""Authorization (RBAC) and audit logging against a real server, with the real kubectl."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.conftest import KUBECTL, RunningServer, start_server


def token_kubeconfig(server: RunningServer, token: str, path: Path) -> Path:
    config = yaml.safe_load(server.kubeconfig.read_text())
    config["users"][0]["user"] = {"token": token}
    path.write_text(yaml.safe_dump(config))
    return path


def run_kubectl(
    server: RunningServer, kubeconfig: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [KUBECTL, "--kubeconfig", str(kubeconfig), "--cache-dir", str(server.cache_dir), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def eventually_can(server: RunningServer, *args: str, expected: str = "yes") -> str:
    """`kubectl auth can-i` until it answers `expected` (a new binding reaches the
    authorizer through a watch, a moment after the write)."""
    deadline = time.monotonic() + 15
    while True:
        answer = server.kubectl("auth", "can-i", *args, check=False).stdout.strip()
        if answer == expected or time.monotonic() > deadline:
            return answer
        time.sleep(0.1)


@pytest.fixture
def robot(server: RunningServer, namespace: str, tmp_path: Path) -> Path:
    """A kubeconfig holding the token of a new service account `robot` in `namespace`."""
    server.kubectl("create", "serviceaccount", "robot", "-n", namespace)
    token = server.kubectl("create", "token", "robot", "-n", namespace).stdout.strip()
    return token_kubeconfig(server, token, tmp_path / "robot.yaml")


def test_service_account_without_bindings_is_forbidden(
    server: RunningServer, namespace: str, robot: Path
) -> None:
    result = run_kubectl(server, robot, "get", "pods", "-n", namespace)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f'Error from server (Forbidden): pods is forbidden: User "system:serviceaccount:'
        f'{namespace}:robot" cannot list resource "pods" in API group "" in the namespace '
        f'"{namespace}"'
    )
    status = run_kubectl(server, robot, "get", "--raw", f"/api/v1/namespaces/{namespace}/pods")
    assert status.returncode == 1
    # Discovery and self reviews stay open to every authenticated user.
    assert run_kubectl(server, robot, "api-versions").returncode == 0
    whoami = run_kubectl(server, robot, "auth", "whoami", "-o", "json")
    assert whoami.returncode == 0, whoami.stderr
    assert run_kubectl(server, robot, "auth", "can-i", "list", "pods").stdout.strip() == "no"


def test_view_role_binding_grants_reading_in_its_namespace_only(
    server: RunningServer, namespace: str, robot: Path
) -> None:
    account = f"system:serviceaccount:{namespace}:robot"
    server.kubectl(
        "create",
        "rolebinding",
        "robot-view",
        "--clusterrole=view",
        f"--serviceaccount={namespace}:robot",
        "-n",
        namespace,
    )
    assert eventually_can(server, "list", "pods", "-n", namespace, f"--as={account}") == "yes"
    listed = run_kubectl(server, robot, "get", "pods", "-n", namespace)
    assert listed.returncode == 0, listed.stderr
    assert run_kubectl(server, robot, "get", "deployments", "-n", namespace).returncode == 0
    elsewhere = run_kubectl(server, robot, "get", "pods", "-n", "default")
    assert elsewhere.returncode == 1
    assert 'cannot list resource "pods" in API group "" in the namespace "default"' in (
        elsewhere.stderr
    )
    created = run_kubectl(
        server, robot, "create", "configmap", "nope", "-n", namespace, "--from-literal=a=b"
    )
    assert created.returncode == 1
    assert (
        f'configmaps is forbidden: User "{account}" cannot create resource "configmaps" in API '
        f'group "" in the namespace "{namespace}"' in created.stderr
    )
    secrets = run_kubectl(server, robot, "get", "secrets", "-n", namespace)
    assert secrets.returncode == 1  # view does not read secrets
    listing = run_kubectl(server, robot, "auth", "can-i", "--list", "-n", namespace)
    assert listing.returncode == 0
    pods_rows = [line for line in listing.stdout.splitlines() if line.startswith("pods ")]
    assert pods_rows and "[get list watch]" in pods_rows[0]


def test_can_i_and_impersonation(server: RunningServer, namespace: str) -> None:
    user = f"dev-{uuid.uuid4().hex[:6]}"
    assert server.kubectl("auth", "can-i", "create", "deployments").stdout.strip() == "yes"
    no = server.kubectl(
        "auth", "can-i", "get", "pods", "-n", namespace, f"--as={user}", check=False
    )
    assert (no.returncode, no.stdout.strip()) == (1, "no")
    server.kubectl(
        "create", "rolebinding", "dev-edit", "--clusterrole=edit", f"--user={user}", "-n", namespace
    )
    assert eventually_can(
        server, "create", "deployments.apps", "-n", namespace, f"--as={user}"
    ) == ("yes")
    assert (
        server.kubectl(
            "auth", "can-i", "create", "rolebindings", "-n", namespace, f"--as={user}", check=False
        ).stdout.strip()
        == "no"
    )
    created = server.kubectl(
        "create", "configmap", "by-dev", "-n", namespace, "--from-literal=a=b", f"--as={user}"
    )
    assert "created" in created.stdout
    # A group grants too: --as-group.
    group_view = server.kubectl(
        "get", "pods", "-n", namespace, "--as=someone", "--as-group=system:masters"
    )
    assert group_view.returncode == 0


def test_impersonation_needs_the_impersonate_verb(
    server: RunningServer, namespace: str, robot: Path
) -> None:
    account = f"system:serviceaccount:{namespace}:robot"
    refused = run_kubectl(server, robot, "get", "pods", "-n", namespace, "--as=someone")
    assert refused.returncode == 1
    assert (
        f'users "someone" is forbidden: User "{account}" cannot impersonate resource "users" '
        'in API group "" at the cluster scope'
    ) in refused.stderr
    server.kubectl(
        "create",
        "clusterrole",
        f"impersonate-{namespace}",
        "--verb=impersonate",
        "--resource=users",
        "--resource-name=someone",
    )
    server.kubectl(
        "create",
        "clusterrolebinding",
        f"impersonate-{namespace}",
        f"--clusterrole=impersonate-{namespace}",
        f"--serviceaccount={namespace}:robot",
    )
    try:
        assert eventually_can(server, "impersonate", "users/someone", f"--as={account}") == "yes"
        # Now the request runs as "someone", who may not list pods.
        as_someone = run_kubectl(server, robot, "get", "pods", "-n", namespace, "--as=someone")
        assert 'User "someone" cannot list resource "pods"' in as_someone.stderr
        # Groups are impersonated separately.
        with_group = run_kubectl(
            server,
            robot,
            "get",
            "pods",
            "-n",
            namespace,
            "--as=someone",
            "--as-group=system:masters",
        )
        assert 'cannot impersonate resource "groups"' in with_group.stderr
    finally:
        server.kubectl("delete", "clusterrolebinding", f"impersonate-{namespace}")
        server.kubectl("delete", "clusterrole", f"impersonate-{namespace}")


def test_subject_access_review(server: RunningServer, namespace: str) -> None:
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "user": "nobody",
            "groups": ["system:authenticated"],
            "resourceAttributes": {"verb": "list", "resource": "pods", "namespace": namespace},
        },
    }
    answer = server.kubectl("create", "-o", "json", "-f", "-", input=json.dumps(review)).json()
    assert answer["status"] == {"allowed": False}
    review["spec"]["nonResourceAttributes"] = {"verb": "get", "path": "/version"}
    del review["spec"]["resourceAttributes"]
    answer = server.kubectl("create", "-o", "json", "-f", "-", input=json.dumps(review)).json()
    assert answer["status"]["allowed"] is True
    assert answer["status"]["reason"].startswith("RBAC: allowed by ClusterRoleBinding")


def test_bootstrap_roles_are_reconciled_not_reset(server: RunningServer) -> None:
    names = server.kubectl("get", "clusterroles", "-o", "name").stdout.split()
    for name in ("cluster-admin", "admin", "edit", "view", "system:discovery", "system:node"):
        assert f"clusterrole.rbac.authorization.k8s.io/{name}" in names
    binding = server.kubectl("get", "clusterrolebinding", "system:node", "-o", "json").json()
    assert {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:nodes"} in (
        binding["subjects"]
    )


AUDIT_POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: RequestResponse
  resources: [{group: "", resources: ["configmaps"]}]
  verbs: [create]
- level: Metadata
  resources: [{group: "", resources: ["secrets"]}]
- level: None
"""


@pytest.fixture(scope="module")
def audited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, Path]]:
    root = tmp_path_factory.mktemp("audited")
    policy = root / "policy.yaml"
    policy.write_text(AUDIT_POLICY)
    log = root / "audit.log"
    running = start_server(
        root / "data",
        root / "kubectl-cache",
        "--audit-log-path",
        str(log),
        "--audit-policy-file",
        str(policy),
        "--disable-scheduler",
        "--disable-controller-manager",
    )
    try:
        yield running, log
    finally:
        running.stop()


def audit_events(log: Path, predicate: dict[str, str]) -> list[dict]:  # type: ignore[type-arg]
    deadline = time.monotonic() + 10
    while True:
        events = [json.loads(line) for line in log.read_text().splitlines() if line]
        found = [
            e
            for e in events
            if all(e.get("objectRef", {}).get(k) == v for k, v in predicate.items())
        ]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def test_audit_log_levels(audited: tuple[RunningServer, Path]) -> None:
    server, log = audited
    server.kubectl("create", "configmap", "audited", "-n", "default", "--from-literal=k=v")
    server.kubectl("create", "secret", "generic", "hidden", "-n", "default", "--from-literal=p=s")
    server.kubectl("get", "pods", "-n", "default")

    configmap = audit_events(log, {"resource": "configmaps", "name": "audited"})
    assert [e["stage"] for e in configmap] == ["ResponseComplete"]
    event = configmap[0]
    assert event["apiVersion"] == "audit.k8s.io/v1" and event["kind"] == "Event"
    assert event["level"] == "RequestResponse"
    assert event["verb"] == "create"
    assert event["user"]["username"] == "system:admin"
    assert "system:masters" in event["user"]["groups"]
    assert event["sourceIPs"] == ["127.0.0.1"]
    assert event["userAgent"].startswith("kubectl/")
    assert event["objectRef"] == {
        "resource": "configmaps",
        "namespace": "default",
        "name": "audited",
        "apiVersion": "v1",
    }
    assert event["responseStatus"]["code"] == 201
    assert event["requestObject"]["data"] == {"k": "v"}
    assert event["responseObject"]["metadata"]["name"] == "audited"
    assert event["annotations"]["authorization.k8s.io/decision"] == "allow"
    assert event["requestReceivedTimestamp"] <= event["stageTimestamp"]
    assert event["requestURI"].startswith("/api/v1/namespaces/default/configmaps")

    secrets = audit_events(log, {"resource": "secrets"})
    assert [e["stage"] for e in secrets] == ["ResponseComplete"]
    assert secrets[0]["level"] == "Metadata"
    assert "requestObject" not in secrets[0] and "responseObject" not in secrets[0]
    # Level None: pods are not audited.
    assert audit_events(log, {"resource": "pods"}) == []
