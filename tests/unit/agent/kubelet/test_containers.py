"""Pod spec → CRI sandbox and container configs."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.agent.kubelet.podfixtures import make_pod
from timonel.agent.kubelet.containers import (
    HostVolume,
    container_config,
    container_mounts,
    container_resources,
    container_security_context,
    milli_cpu_to_quota,
    milli_cpu_to_shares,
    pod_cgroup_parent,
    pod_sandbox_config,
    verify_run_as_non_root,
)
from timonel.agent.kubelet.dns import DnsConfig
from timonel.agent.kubelet.env import ContainerConfigError
from timonel.agent.kubelet.runtimestate import (
    CONTAINER_HASH_ANNOTATION,
    NODE_LABEL,
    POD_UID_LABEL,
    RESTART_COUNT_ANNOTATION,
)
from timonel.agent.runtime.cri import api

GI = 1024**3


def test_cgroup_parent_by_qos_class() -> None:
    assert pod_cgroup_parent(make_pod(), "/timonel-n1") == "/timonel-n1/besteffort/poduid-1"
    burstable = make_pod({"name": "c", "image": "x", "resources": {"requests": {"cpu": "1"}}})
    assert pod_cgroup_parent(burstable, "/timonel-n1") == "/timonel-n1/burstable/poduid-1"
    exact = {"cpu": "1", "memory": "1Gi"}
    guaranteed = make_pod(
        {"name": "c", "image": "x", "resources": {"limits": exact, "requests": exact}}
    )
    assert pod_cgroup_parent(guaranteed, "/timonel-n1") == "/timonel-n1/poduid-1"


def test_cpu_shares_and_quota() -> None:
    assert milli_cpu_to_shares(0) == 2
    assert milli_cpu_to_shares(1) == 2
    assert milli_cpu_to_shares(250) == 256
    assert milli_cpu_to_shares(1000) == 1024
    assert milli_cpu_to_quota(0) == (0, 100_000)
    assert milli_cpu_to_quota(500) == (50_000, 100_000)
    assert milli_cpu_to_quota(5) == (1000, 100_000)


def test_resources_from_requests_and_limits() -> None:
    container = {
        "name": "c",
        "resources": {
            "requests": {"cpu": "250m", "memory": "1Gi"},
            "limits": {"cpu": "1", "memory": "2Gi"},
        },
    }
    pod = make_pod(container)
    resources = container_resources(pod, container, memory_capacity=8 * GI)
    assert resources.cpu_shares == 256
    assert (resources.cpu_quota, resources.cpu_period) == (100_000, 100_000)
    assert resources.memory_limit_in_bytes == 2 * GI
    assert resources.oom_score_adj == 1000 - 1000 * GI // (8 * GI)
    limits_only = {"name": "c", "resources": {"limits": {"cpu": "500m"}}}
    assert container_resources(make_pod(limits_only), limits_only, 8 * GI).cpu_shares == 512


def test_security_context_merges_pod_and_container() -> None:
    container = {
        "name": "c",
        "securityContext": {
            "runAsUser": 1000,
            "readOnlyRootFilesystem": True,
            "allowPrivilegeEscalation": False,
            "capabilities": {"add": ["NET_ADMIN"], "drop": ["ALL"]},
        },
    }
    pod = make_pod(
        container,
        securityContext={"runAsUser": 5, "runAsGroup": 7, "fsGroup": 9, "supplementalGroups": [11]},
    )
    context = container_security_context(pod, container)
    assert context.run_as_user.value == 1000
    assert context.run_as_group.value == 7
    assert list(context.supplemental_groups) == [9, 11]
    assert context.readonly_rootfs and context.no_new_privs
    assert list(context.capabilities.add_capabilities) == ["NET_ADMIN"]
    assert "/proc/kcore" in context.masked_paths and "/proc/sys" in context.readonly_paths
    privileged = {"name": "c", "securityContext": {"privileged": True}}
    privileged_context = container_security_context(make_pod(privileged), privileged)
    assert privileged_context.privileged and not privileged_context.masked_paths


def test_process_namespace_sharing_and_host_namespaces() -> None:
    shared = container_security_context(make_pod(shareProcessNamespace=True), {"name": "c"})
    assert shared.namespace_options.pid == api.POD
    host = container_security_context(make_pod(hostNetwork=True, hostPID=True), {"name": "c"})
    assert host.namespace_options.network == api.NODE and host.namespace_options.pid == api.NODE
    assert (
        container_security_context(make_pod(), {"name": "c"}).namespace_options.pid == api.CONTAINER
    )


def test_run_as_non_root() -> None:
    def check(security: dict[str, Any], uid: int | None, user: str = "") -> None:
        container = {"name": "c", "securityContext": security}
        verify_run_as_non_root(make_pod(container), container, uid, user)

    check({}, 0)
    check({"runAsNonRoot": True, "runAsUser": 1000}, 0)
    check({"runAsNonRoot": True}, 1000)
    with pytest.raises(ContainerConfigError, match="image will run as root"):
        check({"runAsNonRoot": True}, None)
    with pytest.raises(ContainerConfigError, match="runAsUser breaks non-root policy"):
        check({"runAsNonRoot": True, "runAsUser": 0}, 1000)
    with pytest.raises(ContainerConfigError, match="non-numeric user"):
        check({"runAsNonRoot": True}, None, "app")


def test_mounts_with_sub_paths_hosts_file_and_termination_message() -> None:
    container = {
        "name": "c",
        "volumeMounts": [
            {"name": "data", "mountPath": "/data", "subPath": "a/b"},
            {"name": "cfg", "mountPath": "/cfg"},
            {
                "name": "data",
                "mountPath": "/per-pod",
                "subPathExpr": "$(POD)",
                "mountPropagation": "HostToContainer",
            },
        ],
    }
    volumes = {"data": HostVolume("/v/data"), "cfg": HostVolume("/v/cfg", read_only=True)}
    mounts = container_mounts(
        container, volumes, [("POD", "p1")], hosts_file="/pod/etc-hosts", termination_file="/pod/t"
    )
    assert [(m.container_path, m.host_path, m.readonly) for m in mounts] == [
        ("/data", "/v/data/a/b", False),
        ("/cfg", "/v/cfg", True),
        ("/per-pod", "/v/data/p1", False),
        ("/etc/hosts", "/pod/etc-hosts", False),
        ("/dev/termination-log", "/pod/t", False),
    ]
    assert mounts[2].propagation == api.PROPAGATION_HOST_TO_CONTAINER
    escaping = {
        "name": "c",
        "volumeMounts": [{"name": "data", "mountPath": "/x", "subPath": "../etc"}],
    }
    with pytest.raises(ContainerConfigError):
        container_mounts(escaping, volumes, [])
    with pytest.raises(ContainerConfigError, match="cannot find volume"):
        container_mounts(
            {"name": "c", "volumeMounts": [{"name": "nope", "mountPath": "/x"}]}, volumes, []
        )


def test_sandbox_config() -> None:
    pod = make_pod(
        {
            "name": "c",
            "image": "x",
            "ports": [
                {"containerPort": 80, "hostPort": 8080},
                {"containerPort": 53, "protocol": "UDP"},
            ],
        },
        securityContext={
            "sysctls": [{"name": "net.ipv4.ip_unprivileged_port_start", "value": "0"}]
        },
    )
    pod["metadata"]["labels"] = {"app": "web"}
    pod["metadata"]["annotations"] = {"note": "x"}
    config = pod_sandbox_config(
        pod,
        attempt=2,
        node_name="n1",
        node_cgroup="/timonel-n1",
        log_directory="/logs/ns_p_uid-1",
        hostname="p",
        dns=DnsConfig(
            servers=("10.43.0.10",), searches=("ns.svc.cluster.local",), options=("ndots:5",)
        ),
    )
    assert (
        config.metadata.name,
        config.metadata.namespace,
        config.metadata.uid,
        config.metadata.attempt,
    ) == ("p", "ns", "uid-1", 2)
    assert (
        config.labels["app"] == "web"
        and config.labels[POD_UID_LABEL] == "uid-1"
        and config.labels[NODE_LABEL] == "n1"
    )
    assert config.annotations["note"] == "x"
    assert [(m.container_port, m.host_port, m.protocol) for m in config.port_mappings] == [
        (80, 8080, api.TCP)
    ]
    assert config.linux.cgroup_parent == "/timonel-n1/besteffort/poduid-1"
    assert dict(config.linux.sysctls) == {"net.ipv4.ip_unprivileged_port_start": "0"}
    assert list(config.dns_config.servers) == ["10.43.0.10"]
    assert config.linux.security_context.namespace_options.network == api.POD


def test_container_config_carries_what_adoption_needs() -> None:
    container = {"name": "web", "image": "busybox", "workingDir": "/srv", "tty": True}
    pod = make_pod(container, terminationGracePeriodSeconds=5)
    config = container_config(
        pod,
        container,
        node_name="n1",
        restart_count=3,
        image="sha256:abc",
        env=[("A", "1")],
        mounts=[],
        command=["httpd"],
        args=["-f"],
        memory_capacity=GI,
    )
    assert config.metadata.name == "web" and config.metadata.attempt == 3
    assert config.log_path == "web/3.log"
    assert config.image.image == "sha256:abc"
    assert (list(config.command), list(config.args), config.working_dir) == (
        ["httpd"],
        ["-f"],
        "/srv",
    )
    assert [(e.key, e.value) for e in config.envs] == [("A", "1")]
    assert config.annotations[RESTART_COUNT_ANNOTATION] == "3"
    assert config.annotations[CONTAINER_HASH_ANNOTATION]
    assert config.labels["io.kubernetes.container.name"] == "web"
    assert config.tty
