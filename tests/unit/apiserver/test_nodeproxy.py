"""Where the API server sends pods/log, exec, attach, port-forward and node proxy requests."""

from __future__ import annotations

from typing import Any

import pytest
from multidict import MultiDict

from timonel.api.errors import StatusError
from timonel.apiserver import nodeproxy
from timonel.apiserver.requestinfo import parse_request_info


def _node(addresses: list[tuple[str, str]], port: int | None = 10250) -> dict[str, Any]:
    status: dict[str, Any] = {"addresses": [{"type": t, "address": a} for t, a in addresses]}
    if port is not None:
        status["daemonEndpoints"] = {"kubeletEndpoint": {"Port": port}}
    return {"metadata": {"name": "node-1"}, "status": status}


def test_the_kubelet_is_dialled_at_the_preferred_address_and_reported_port() -> None:
    node = _node([("Hostname", "node-1"), ("InternalIP", "10.0.0.5")], port=39289)
    location = nodeproxy.kubelet_location(node)
    assert location == nodeproxy.KubeletLocation("node-1", "10.0.0.5", 39289)
    assert location.url("/healthz") == "https://10.0.0.5:39289/healthz"
    assert nodeproxy.kubelet_location(_node([("Hostname", "node-1")], None)).port == 10250
    assert nodeproxy.KubeletLocation("n", "fd00::1", 10250).url("/x") == "https://[fd00::1]:10250/x"
    with pytest.raises(StatusError):
        nodeproxy.kubelet_location(_node([]))


POD = {
    "metadata": {"name": "web", "namespace": "default"},
    "spec": {
        "containers": [{"name": "app"}, {"name": "sidecar"}],
        "initContainers": [{"name": "setup"}],
    },
}


def test_the_container_is_the_named_one_or_the_only_one() -> None:
    assert nodeproxy.choose_container(POD, "setup") == "setup"
    single = {**POD, "spec": {"containers": [{"name": "app"}]}}
    assert nodeproxy.choose_container(single, "") == "app"
    with pytest.raises(StatusError) as error:
        nodeproxy.choose_container(POD, "")
    assert error.value.message == (
        "a container name must be specified for pod web, choose one of: [app sidecar] "
        "or one of the init containers: [setup]"
    )
    with pytest.raises(StatusError, match="container nope is not valid for pod web"):
        nodeproxy.choose_container(POD, "nope")


def _target(path: str, query: list[tuple[str, str]]) -> str:
    info = parse_request_info("GET", path, None)
    return nodeproxy.kubelet_target(info, POD, MultiDict(query))


def test_log_requests_become_container_log_paths_with_validated_options() -> None:
    target = _target(
        "/api/v1/namespaces/default/pods/web/log",
        [("container", "app"), ("follow", "true"), ("tailLines", "10"), ("timestamps", "1")],
    )
    assert target == "/containerLogs/default/web/app?follow=true&timestamps=true&tailLines=10"
    with pytest.raises(StatusError) as error:
        _target(
            "/api/v1/namespaces/default/pods/web/log", [("container", "app"), ("limitBytes", "0")]
        )
    assert error.value.code == 422
    assert error.value.message.startswith(
        'PodLogOptions "web" is invalid: limitBytes: Invalid value: 0'
    )
    with pytest.raises(StatusError) as error:
        _target(
            "/api/v1/namespaces/default/pods/web/log",
            [("container", "app"), ("sinceSeconds", "5"), ("sinceTime", "2026-01-01T00:00:00Z")],
        )
    assert error.value.code == 422


def test_exec_attach_and_port_forward_paths() -> None:
    exec_target = _target(
        "/api/v1/namespaces/default/pods/web/exec",
        [
            ("command", "sh"),
            ("command", "-c"),
            ("command", "echo a&b"),
            ("container", "sidecar"),
            ("stdin", "true"),
            ("stdout", "true"),
            ("tty", "true"),
        ],
    )
    assert exec_target == (
        "/exec/default/web/sidecar?command=sh&command=-c&command=echo+a%26b"
        "&stdin=true&stdout=true&tty=true"
    )
    attach_target = _target(
        "/api/v1/namespaces/default/pods/web/attach", [("container", "app"), ("stdout", "1")]
    )
    assert attach_target == "/attach/default/web/app?stdout=1"
    assert _target("/api/v1/namespaces/default/pods/web/portforward", []) == (
        "/portForward/default/web"
    )
    assert _target("/api/v1/namespaces/default/pods/web/portforward", [("ports", "80")]) == (
        "/portForward/default/web?ports=80"
    )


def test_which_upgrades_go_to_a_kubelet() -> None:
    websocket = {"Connection": "Upgrade", "Upgrade": "websocket"}
    assert nodeproxy.is_proxied_upgrade("/api/v1/namespaces/d/pods/web/exec", websocket)
    assert nodeproxy.is_proxied_upgrade("/api/v1/namespaces/d/pods/web/portforward", websocket)
    assert nodeproxy.is_proxied_upgrade("/api/v1/nodes/n/proxy/logs/", websocket)
    assert not nodeproxy.is_proxied_upgrade("/api/v1/namespaces/d/pods/web/log", websocket)
    assert not nodeproxy.is_proxied_upgrade("/api/v1/namespaces/d/pods", websocket)
    assert not nodeproxy.is_proxied_upgrade("/api/v1/namespaces/d/pods/web/exec", {})


def test_completed_pods_refuse_exec_and_attach() -> None:
    done = {**POD, "status": {"phase": "Succeeded"}}
    assert nodeproxy.pod_phase_problem(done, "exec") == (
        "cannot exec into a container in a completed pod; current phase is Succeeded"
    )
    assert nodeproxy.pod_phase_problem(done, "log") is None
