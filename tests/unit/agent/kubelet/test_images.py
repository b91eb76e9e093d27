"""Image references, pull policy, registries file, pull secrets."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from timonel.agent.kubelet.images import (
    RegistriesError,
    default_pull_policy,
    is_valid_reference,
    needs_pull,
    parse_registries,
    pull_credentials,
    pull_policy,
    render_cri_registry_config,
    render_hosts_dir,
    split_reference,
    write_hosts_dir,
)

REGISTRIES = """
mirrors:
  docker.io:
    endpoint: ["http://mirror.local:5000", "mirror2.example.com"]
  "registry.local:5000":
    endpoint: ["http://registry.local:5000"]
configs:
  "mirror2.example.com":
    auth: {username: u, password: p}
    tls: {ca_file: /etc/ca.crt, insecure_skip_verify: true}
  "private.example.com":
    tls: {cert_file: /c.pem, key_file: /k.pem}
"""


def test_references_split_with_docker_hub_defaults() -> None:
    assert split_reference("busybox") == ("docker.io", "library/busybox", "latest", "")
    assert split_reference("user/app:1") == ("docker.io", "user/app", "1", "")
    assert split_reference("localhost:5000/app") == ("localhost:5000", "app", "latest", "")
    assert split_reference("quay.io/a/b@sha256:" + "0" * 64) == (
        "quay.io",
        "a/b",
        "",
        "sha256:" + "0" * 64,
    )
    assert is_valid_reference("localhost/timonel/busybox:1")
    assert not is_valid_reference("Bad Image")
    assert not is_valid_reference("")


def test_pull_policy_defaults_and_decisions() -> None:
    assert default_pull_policy("busybox") == "Always"
    assert default_pull_policy("busybox:latest") == "Always"
    assert default_pull_policy("busybox:1.36") == "IfNotPresent"
    assert default_pull_policy("busybox@sha256:" + "0" * 64) == "IfNotPresent"
    assert pull_policy({"image": "busybox", "imagePullPolicy": "Never"}) == "Never"
    assert needs_pull("Always", True)
    assert needs_pull("IfNotPresent", False) and not needs_pull("IfNotPresent", True)
    assert not needs_pull("Never", False)


def test_registries_render_as_containerd_host_directories() -> None:
    registries = parse_registries(REGISTRIES)
    files = render_hosts_dir(registries)
    assert set(files) == {
        "docker.io/hosts.toml",
        "registry.local:5000/hosts.toml",
        "private.example.com/hosts.toml",
        "mirror2.example.com/hosts.toml",
    }
    docker = files["docker.io/hosts.toml"]
    assert docker.startswith('server = "https://registry-1.docker.io"\n')
    assert docker.index('[host."http://mirror.local:5000"]') < docker.index(
        '[host."https://mirror2.example.com"]'
    )
    assert 'ca = "/etc/ca.crt"' in docker and "skip_verify = true" in docker
    assert '[host."http://registry.local:5000"]' in files["registry.local:5000/hosts.toml"]
    private = files["private.example.com/hosts.toml"]
    assert 'client = [["/c.pem", "/k.pem"]]' in private
    config = render_cri_registry_config(registries, Path("/d/certs.d"))
    assert 'config_path = "/d/certs.d"' in config
    assert '.configs."mirror2.example.com".auth]\n  username = "u"\n  password = "p"' in config


def test_wildcard_mirror_is_the_default_directory(tmp_path: Path) -> None:
    registries = parse_registries('mirrors:\n  "*":\n    endpoint: ["http://cache.local"]\n')
    write_hosts_dir(tmp_path, registries)
    assert (
        (tmp_path / "_default" / "hosts.toml").read_text().startswith('[host."http://cache.local"]')
    )
    write_hosts_dir(tmp_path, parse_registries(""))
    assert not (tmp_path / "_default" / "hosts.toml").exists()


def test_bad_registries_files_are_refused() -> None:
    with pytest.raises(RegistriesError):
        parse_registries("mirrors: [")
    with pytest.raises(RegistriesError):
        parse_registries("mirrors:\n  docker.io:\n    endpoint: ['ftp://x']\n")


def docker_config_secret(auths: dict[str, dict[str, str]]) -> dict[str, object]:
    data = base64.b64encode(json.dumps({"auths": auths}).encode()).decode()
    return {"type": "kubernetes.io/dockerconfigjson", "data": {".dockerconfigjson": data}}


def test_pull_secrets_that_match_the_registry() -> None:
    secret = docker_config_secret(
        {
            "https://index.docker.io/v1/": {"auth": base64.b64encode(b"hub:pw").decode()},
            "registry.local:5000": {"username": "local", "password": "pw2"},
            "registry.local:5000/team": {"username": "team", "password": "pw3"},
        }
    )
    [hub] = pull_credentials("busybox", [secret])
    assert (hub.username, hub.password, hub.server_address) == (
        "hub",
        "pw",
        "https://registry-1.docker.io",
    )
    team = pull_credentials("registry.local:5000/team/app:1", [secret])
    assert [auth.username for auth in team] == ["team", "local"]
    assert pull_credentials("quay.io/x/y", [secret]) == []
