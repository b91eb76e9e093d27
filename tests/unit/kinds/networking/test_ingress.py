"""Ingress and IngressClass strategies: kube-apiserver 1.32's validation, status and tables."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from timonel.kinds.networking.ingress import IngressClassStrategy, IngressStrategy

INGRESS = IngressStrategy()
INGRESS_CLASS = IngressClassStrategy()

# The minimal Ingress of the Kubernetes documentation, with TLS and a class.
MINIMAL = """
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: minimal-ingress
  namespace: default
spec:
  ingressClassName: nginx-example
  tls:
  - hosts: [foo.bar.com]
    secretName: testsecret-tls
  rules:
  - host: foo.bar.com
    http:
      paths:
      - path: /testpath
        pathType: Prefix
        backend:
          service:
            name: test
            port:
              number: 80
"""


def load(text: str = MINIMAL) -> dict[str, Any]:
    obj: dict[str, Any] = yaml.safe_load(text)
    INGRESS.default(obj)
    return obj


def messages(obj: dict[str, Any]) -> list[str]:
    return [e.message() for e in INGRESS.validate(obj)]


def path_of(obj: dict[str, Any]) -> dict[str, Any]:
    path: dict[str, Any] = obj["spec"]["rules"][0]["http"]["paths"][0]
    return path


def test_documented_ingress_is_valid() -> None:
    assert messages(load()) == []


def test_create_starts_with_an_empty_load_balancer_status() -> None:
    obj = load()
    obj["status"] = {"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}]}}
    INGRESS.prepare_for_create(obj)
    assert obj["status"] == {"loadBalancer": {}}
    assert obj["metadata"]["generation"] == 1


def test_update_keeps_status_and_bumps_generation_on_spec_changes() -> None:
    old = load()
    INGRESS.prepare_for_create(old)
    old["status"] = {"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}]}}
    new = copy.deepcopy(old)
    new["status"] = {}
    path_of(new)["path"] = "/other"
    INGRESS.prepare_for_update(new, old)
    assert new["status"] == old["status"]
    assert new["metadata"]["generation"] == 2


def test_rules_or_default_backend_required() -> None:
    obj = load()
    del obj["spec"]["rules"]
    del obj["spec"]["tls"]
    assert messages(obj) == [
        "spec: Invalid value: []networking.IngressRule(nil): either `defaultBackend` or `rules` must be specified"
    ]


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (
            {"path": "/x", "backend": {"service": {"name": "test", "port": {"number": 80}}}},
            ["spec.rules[0].http.paths[0].pathType: Required value: pathType must be specified"],
        ),
        (
            {
                "path": "x",
                "pathType": "Exact",
                "backend": {"service": {"name": "test", "port": {"number": 80}}},
            },
            ['spec.rules[0].http.paths[0].path: Invalid value: "x": must be an absolute path'],
        ),
        (
            {
                "path": "/a//b",
                "pathType": "Prefix",
                "backend": {"service": {"name": "test", "port": {"number": 80}}},
            },
            ["spec.rules[0].http.paths[0].path: Invalid value: \"/a//b\": must not contain '//'"],
        ),
        (
            {
                "path": "/a",
                "pathType": "Regex",
                "backend": {"service": {"name": "test", "port": {"number": 80}}},
            },
            [
                'spec.rules[0].http.paths[0].pathType: Unsupported value: "Regex": supported values: '
                '"Exact", "ImplementationSpecific", "Prefix"'
            ],
        ),
        (
            {
                "path": "/",
                "pathType": "Prefix",
                "backend": {"service": {"name": "test", "port": {}}},
            },
            [
                "spec.rules[0].http.paths[0].backend: Required value: port name or number is required"
            ],
        ),
        (
            {
                "path": "/",
                "pathType": "Prefix",
                "backend": {"service": {"name": "test", "port": {"name": "http", "number": 80}}},
            },
            [
                'spec.rules[0].http.paths[0].backend: Invalid value: "": cannot set both port name & port number'
            ],
        ),
        (
            {
                "path": "/",
                "pathType": "Prefix",
                "backend": {"service": {"name": "test", "port": {"number": 70000}}},
            },
            [
                "spec.rules[0].http.paths[0].backend.service.port.number: Invalid value: 70000: "
                "must be between 1 and 65535, inclusive"
            ],
        ),
        (
            {"path": "/", "pathType": "Prefix", "backend": {}},
            [
                'spec.rules[0].http.paths[0].backend: Invalid value: "": resource or service backend is required'
            ],
        ),
        (
            {
                "path": "/",
                "pathType": "Prefix",
                "backend": {"resource": {"kind": "StorageBucket", "name": "a/b"}},
            },
            [
                "spec.rules[0].http.paths[0].backend.resource.name: Invalid value: \"a/b\": may not contain '/'"
            ],
        ),
    ],
)
def test_path_validation(path: dict[str, Any], expected: list[str]) -> None:
    obj = load()
    obj["spec"]["rules"][0]["http"]["paths"] = [path]
    assert messages(obj) == expected


def test_host_rules() -> None:
    obj = load()
    obj["spec"]["rules"][0]["host"] = "10.0.0.1"
    assert messages(obj)[0] == (
        'spec.rules[0].host: Invalid value: "10.0.0.1": must be a DNS name, not an IP address'
    )
    obj["spec"]["rules"][0]["host"] = "*.foo.com"
    assert messages(obj) == []
    obj["spec"]["rules"][0]["host"] = "foo.*.com"
    assert messages(obj)[0].startswith(
        'spec.rules[0].host: Invalid value: "foo.*.com": a wildcard DNS-1123 subdomain must start with'
    )


def test_class_annotation_must_match_class_name() -> None:
    obj = load()
    obj["metadata"]["annotations"] = {"kubernetes.io/ingress.class": "traefik"}
    assert messages(obj) == [
        'annotations.kubernetes.io/ingress.class: Invalid value: "traefik": '
        "must match `ingressClassName` when both are specified"
    ]


def test_status_update_validates_addresses() -> None:
    old = load()
    new = copy.deepcopy(old)
    new["status"] = {"loadBalancer": {"ingress": [{"ip": "300.1.1.1"}, {"hostname": "1.2.3.4"}]}}
    assert [e.message() for e in INGRESS.validate_status_update(new, old)] == [
        'status.loadBalancer.ingress[0].ip: Invalid value: "300.1.1.1": '
        "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
        'status.loadBalancer.ingress[1].hostname: Invalid value: "1.2.3.4": must be a DNS name, not an IP address',
    ]


def test_table_row() -> None:
    obj = load()
    obj["status"] = {
        "loadBalancer": {"ingress": [{"ip": "192.168.1.10"}, {"hostname": "lb.example.com"}]}
    }
    row = INGRESS.table_row(obj)
    assert row[:5] == [
        "minimal-ingress",
        "nginx-example",
        "foo.bar.com",
        "192.168.1.10,lb.example.com",
        "80, 443",
    ]
    assert [c.name for c in INGRESS.columns] == [
        "Name",
        "Class",
        "Hosts",
        "Address",
        "Ports",
        "Age",
    ]


def test_table_row_without_class_hosts_or_tls() -> None:
    obj = load()
    del obj["spec"]["ingressClassName"]
    del obj["spec"]["tls"]
    obj["spec"]["rules"] = [{"host": h} for h in ("a.com", "", "b.com", "c.com", "d.com")]
    assert INGRESS.table_row(obj)[1:5] == ["<none>", "a.com,b.com,c.com + 2 more...", "", "80"]
    obj["spec"]["rules"] = [{"http": {"paths": []}}]
    assert INGRESS.table_row(obj)[2] == "*"


# -- IngressClass -------------------------------------------------------------------------

NGINX_CLASS = """
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata:
  name: external-lb
spec:
  controller: example.com/ingress-controller
  parameters:
    apiGroup: k8s.example.com
    kind: IngressParameters
    name: external-lb
"""


def load_class() -> dict[str, Any]:
    obj: dict[str, Any] = yaml.safe_load(NGINX_CLASS)
    INGRESS_CLASS.default(obj)
    return obj


def test_ingress_class_defaults_parameter_scope() -> None:
    obj = load_class()
    assert obj["spec"]["parameters"]["scope"] == "Cluster"
    assert INGRESS_CLASS.validate(obj) == []
    assert not INGRESS_CLASS.namespaced


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({}, ["spec.controller: Required value"]),
        (
            {"controller": "nginx"},
            [
                'spec.controller: Invalid value: "nginx": must be a domain-prefixed path (such as "acme.io/foo")'
            ],
        ),
        (
            {
                "controller": "k8s.io/ingress-nginx",
                "parameters": {"kind": "Params", "name": "p", "scope": "Namespace"},
            },
            ["spec.parameters.namespace: Required value: `parameters.scope` is set to 'Namespace'"],
        ),
        (
            {
                "controller": "k8s.io/ingress-nginx",
                "parameters": {"kind": "Params", "name": "p", "scope": "Cluster", "namespace": "x"},
            },
            ["spec.parameters.namespace: Forbidden: `parameters.scope` is set to 'Cluster'"],
        ),
        (
            {"controller": "k8s.io/ingress-nginx", "parameters": {"name": "p", "scope": "Galaxy"}},
            [
                "spec.parameters.kind: Required value",
                'spec.parameters.scope: Unsupported value: "Galaxy": supported values: "Cluster", "Namespace"',
            ],
        ),
    ],
)
def test_ingress_class_validation(spec: dict[str, Any], expected: list[str]) -> None:
    obj = {"metadata": {"name": "c"}, "spec": spec}
    assert [e.message() for e in INGRESS_CLASS.validate(obj)] == expected


def test_ingress_class_controller_is_immutable() -> None:
    old = load_class()
    new = copy.deepcopy(old)
    new["spec"]["controller"] = "example.com/other"
    assert [e.message() for e in INGRESS_CLASS.validate_update(new, old)] == [
        'spec.controller: Invalid value: "example.com/other": field is immutable'
    ]


def test_ingress_class_table_row() -> None:
    obj = load_class()
    assert INGRESS_CLASS.table_row(obj)[:3] == [
        "external-lb",
        "example.com/ingress-controller",
        "IngressParameters.k8s.example.com/external-lb",
    ]
    del obj["spec"]["parameters"]
    assert INGRESS_CLASS.table_row(obj)[2] == "<none>"
