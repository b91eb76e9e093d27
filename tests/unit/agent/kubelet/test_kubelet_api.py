"""The kubelet API's decisions: who may call, which container's log, which streams."""

from __future__ import annotations

from typing import Any

import pytest
from multidict import MultiDict

from timonel.agent.kubelet import remotecommand, server
from timonel.agent.kubelet.remotecommand import StreamOptions
from timonel.api.errors import StatusError


def _cert(cn: str, *orgs: str) -> dict[str, Any]:
    subject = [(("organizationName", o),) for o in orgs] + [(("commonName", cn),)]
    return {"subject": tuple(subject)}


def test_only_the_api_server_and_administrators_may_call() -> None:
    assert server.caller(_cert("kube-apiserver-kubelet-client", "system:masters")) == (
        "kube-apiserver-kubelet-client",
        ("system:masters",),
    )
    assert server.may_call(*server.caller(_cert("kube-apiserver-kubelet-client")))
    assert server.may_call(*server.caller(_cert("system:admin", "system:masters")))
    assert not server.may_call(*server.caller(_cert("system:node:other", "system:nodes")))
    assert not server.may_call(*server.caller(None))


def _pod(statuses: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "metadata": {"name": "web"},
        "spec": {"containers": [{"name": "app"}], "initContainers": [{"name": "setup"}]},
        "status": {"containerStatuses": statuses},
    }


RUNNING = {"name": "app", "containerID": "containerd://new", "state": {"running": {}}}
RESTARTED = {
    **RUNNING,
    "lastState": {"terminated": {"exitCode": 1, "containerID": "containerd://old"}},
}


def test_the_current_log_is_the_running_containers() -> None:
    assert server.log_container_id(_pod([RUNNING]), "app", previous=False) == "new"
    assert server.log_container_id(_pod([RESTARTED]), "app", previous=False) == "new"


def test_the_previous_log_is_the_last_terminated_containers() -> None:
    assert server.log_container_id(_pod([RESTARTED]), "app", previous=True) == "old"
    with pytest.raises(StatusError) as error:
        server.log_container_id(_pod([RUNNING]), "app", previous=True)
    assert error.value.message == 'previous terminated container "app" in pod "web" not found'


def test_a_crash_looping_container_shows_its_last_run() -> None:
    waiting = {
        "name": "app",
        "state": {"waiting": {"reason": "CrashLoopBackOff"}},
        "lastState": {"terminated": {"containerID": "containerd://old"}},
    }
    assert server.log_container_id(_pod([waiting]), "app", previous=False) == "old"


@pytest.mark.parametrize(
    ("reason", "said"),
    [
        ("ContainerCreating", "ContainerCreating"),
        ("ErrImagePull", "image can't be pulled"),
        ("ImagePullBackOff", "trying and failing to pull image"),
    ],
)
def test_a_waiting_container_has_no_log_yet(reason: str, said: str) -> None:
    waiting = {"name": "app", "state": {"waiting": {"reason": reason}}}
    with pytest.raises(StatusError) as error:
        server.log_container_id(_pod([waiting]), "app", previous=False)
    assert error.value.code == 400
    assert error.value.message == f'container "app" in pod "web" is waiting to start: {said}'


def test_a_container_without_status_is_not_available() -> None:
    with pytest.raises(StatusError, match='container "setup" in pod "web" is not available'):
        server.log_container_id(_pod([RUNNING]), "setup", previous=False)
    assert server.find_container_spec(_pod([]), "setup") == {"name": "setup"}
    assert server.find_container_spec(_pod([]), "nope") is None


def test_log_options_from_the_query() -> None:
    now = 1_000 * 1_000_000_000
    options, previous = server.log_options(
        {"follow": "true", "tailLines": "5", "sinceSeconds": "10", "limitBytes": "100"}, now
    )
    assert previous is False
    assert options.follow and options.tail_lines == 5 and options.limit_bytes == 100
    assert options.since_ns == now - 10 * 1_000_000_000
    options, previous = server.log_options(
        {"previous": "1", "timestamps": "true", "sinceTime": "1970-01-01T00:00:10Z"}, now
    )
    assert previous and options.timestamps and options.since_ns == 10 * 1_000_000_000
    with pytest.raises(StatusError):
        server.log_options({"tailLines": "x"}, now)
    with pytest.raises(StatusError):
        server.log_options({"limitBytes": "0"}, now)


def test_stream_options_merge_stderr_into_a_tty() -> None:
    query = MultiDict([("stdin", "true"), ("stdout", "true"), ("stderr", "true"), ("tty", "1")])
    options = StreamOptions.from_query(query)
    assert options == StreamOptions(stdin=True, stdout=True, stderr=False, tty=True)
    assert remotecommand.spdy_stream_kinds(options) == ["error", "stdin", "stdout", "resize"]
    plain = StreamOptions.from_query(MultiDict([("stdout", "true"), ("stderr", "true")]))
    assert remotecommand.spdy_stream_kinds(plain) == ["error", "stdout", "stderr"]
    assert not StreamOptions.from_query(MultiDict()).any


def test_streaming_urls_split_into_host_port_and_target() -> None:
    url = remotecommand.parse_streaming_url("http://127.0.0.1:46551/exec/pXz2e6fG")
    assert (url.host, url.port, url.target) == ("127.0.0.1", 46551, "/exec/pXz2e6fG")
    assert remotecommand.parse_streaming_url("http://[::1]/attach/t?x=1").target == "/attach/t?x=1"
    with pytest.raises(ValueError):
        remotecommand.parse_streaming_url("unix:///run/sock")


def test_websocket_port_forward_ports_may_repeat_or_be_comma_separated() -> None:
    assert remotecommand.forwarded_ports(["8080,9090", "80", "8080"]) == [8080, 9090, 80]
    with pytest.raises(ValueError, match="required"):
        remotecommand.forwarded_ports([])
    with pytest.raises(ValueError, match="between 1 and 65535"):
        remotecommand.forwarded_ports(["70000"])
    with pytest.raises(ValueError):
        remotecommand.forwarded_ports(["http"])
