"""PodSpec defaults (as kube-apiserver 1.32 returns them) and validation messages."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from timonel.kinds.core.podspec import (
    default_pod_spec,
    default_pod_template,
    default_pull_policy,
    validate_pod_spec,
    validate_pod_template,
)


def nginx_template() -> dict[str, Any]:
    return {
        "metadata": {"labels": {"app": "nginx"}},
        "spec": {
            "containers": [
                {"name": "nginx", "image": "nginx:1.14.2", "ports": [{"containerPort": 80}]}
            ]
        },
    }


def test_seed_deployment_template_defaults() -> None:
    template = nginx_template()
    default_pod_template(template)
    assert template == {
        "metadata": {"creationTimestamp": None, "labels": {"app": "nginx"}},
        "spec": {
            "containers": [
                {
                    "image": "nginx:1.14.2",
                    "imagePullPolicy": "IfNotPresent",
                    "name": "nginx",
                    "ports": [{"containerPort": 80, "protocol": "TCP"}],
                    "resources": {},
                    "terminationMessagePath": "/dev/termination-log",
                    "terminationMessagePolicy": "File",
                }
            ],
            "dnsPolicy": "ClusterFirst",
            "restartPolicy": "Always",
            "schedulerName": "default-scheduler",
            "securityContext": {},
            "terminationGracePeriodSeconds": 30,
        },
    }
    assert validate_pod_template(template, "spec.template") == []


def test_defaults_are_idempotent() -> None:
    template = nginx_template()
    template["spec"]["volumes"] = [{"name": "cfg", "configMap": {"name": "c"}}, {"name": "scratch"}]
    template["spec"]["containers"][0]["livenessProbe"] = {"httpGet": {"port": 80}}
    template["spec"]["containers"][0]["resources"] = {"limits": {"cpu": "0.5", "memory": "1Gi"}}
    default_pod_template(template)
    once = copy.deepcopy(template)
    default_pod_template(template)
    assert template == once


def test_explicit_values_are_kept() -> None:
    spec: dict[str, Any] = {
        "containers": [
            {
                "name": "a",
                "image": "busybox",
                "imagePullPolicy": "Never",
                "terminationMessagePolicy": "FallbackToLogsOnError",
            }
        ],
        "restartPolicy": "OnFailure",
        "dnsPolicy": "Default",
        "terminationGracePeriodSeconds": 0,
        "schedulerName": "mine",
        "securityContext": {"runAsUser": 1000},
    }
    default_pod_spec(spec)
    assert spec["restartPolicy"] == "OnFailure"
    assert spec["dnsPolicy"] == "Default"
    assert spec["terminationGracePeriodSeconds"] == 0
    assert spec["schedulerName"] == "mine"
    assert spec["securityContext"] == {"runAsUser": 1000}
    assert spec["containers"][0]["imagePullPolicy"] == "Never"
    assert spec["containers"][0]["terminationMessagePolicy"] == "FallbackToLogsOnError"


@pytest.mark.parametrize(
    ("image", "policy"),
    [
        ("nginx", "Always"),
        ("nginx:latest", "Always"),
        ("nginx:1.27", "IfNotPresent"),
        ("docker.io/library/nginx", "Always"),
        ("localhost:5000/app", "Always"),
        ("localhost:5000/app:v1", "IfNotPresent"),
        ("nginx@sha256:" + "a" * 64, "IfNotPresent"),
        ("nginx:latest@sha256:" + "a" * 64, "Always"),
        ("Nginx", "IfNotPresent"),
        ("", "IfNotPresent"),
    ],
)
def test_pull_policy(image: str, policy: str) -> None:
    assert default_pull_policy(image) == policy


def test_nested_defaults() -> None:
    spec: dict[str, Any] = {
        "containers": [
            {
                "name": "app",
                "image": "app:1",
                "env": [
                    {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}
                ],
                "resources": {
                    "limits": {"cpu": "0.5", "memory": "128974848"},
                    "requests": {"cpu": 0.25},
                },
                "readinessProbe": {"grpc": {"port": 9000}, "periodSeconds": 5},
                "lifecycle": {"preStop": {"httpGet": {"port": "http"}}},
            }
        ],
        "volumes": [
            {"name": "empty"},
            {"name": "secret", "secret": {"secretName": "s"}},
            {"name": "host", "hostPath": {"path": "/data"}},
            {
                "name": "projected",
                "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]},
            },
            {
                "name": "eph",
                "ephemeral": {"volumeClaimTemplate": {"spec": {"accessModes": ["ReadWriteOnce"]}}},
            },
        ],
        "serviceAccount": "builder",
    }
    default_pod_spec(spec)
    container = spec["containers"][0]
    assert container["env"][0]["valueFrom"]["fieldRef"] == {
        "apiVersion": "v1",
        "fieldPath": "spec.nodeName",
    }
    assert container["resources"] == {
        "limits": {"cpu": "500m", "memory": "128974848"},
        "requests": {"cpu": "250m"},
    }
    assert container["readinessProbe"] == {
        "grpc": {"port": 9000, "service": ""},
        "periodSeconds": 5,
        "timeoutSeconds": 1,
        "successThreshold": 1,
        "failureThreshold": 3,
    }
    assert container["lifecycle"]["preStop"]["httpGet"] == {
        "port": "http",
        "path": "/",
        "scheme": "HTTP",
    }
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["empty"] == {"name": "empty", "emptyDir": {}}
    assert volumes["secret"]["secret"]["defaultMode"] == 420
    assert volumes["host"]["hostPath"] == {"path": "/data", "type": ""}
    projected = volumes["projected"]["projected"]
    assert projected["defaultMode"] == 420
    assert projected["sources"][0]["serviceAccountToken"]["expirationSeconds"] == 3600
    claim = volumes["eph"]["ephemeral"]["volumeClaimTemplate"]
    assert claim["metadata"] == {"creationTimestamp": None}
    assert claim["spec"]["volumeMode"] == "Filesystem"
    assert claim["spec"]["resources"] == {}
    # The deprecated alias and the field agree.
    assert spec["serviceAccountName"] == spec["serviceAccount"] == "builder"


def messages(spec: dict[str, Any], *, defaulted: bool = True) -> list[str]:
    if defaulted:
        default_pod_spec(spec)
    return [e.message() for e in validate_pod_spec(spec, "spec")]


def container(**fields: Any) -> dict[str, Any]:
    return {"name": "app", "image": "app:1", **fields}


LABEL_RULE = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
    "must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used "
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"containers": []}, ["spec.containers: Required value"]),
        ({"containers": [container(name="")]}, ["spec.containers[0].name: Required value"]),
        (
            {"containers": [container(name="My_App")]},
            [f'spec.containers[0].name: Invalid value: "My_App": {LABEL_RULE}'],
        ),
        (
            {"containers": [container(name="my.app")]},
            ['spec.containers[0].name: Invalid value: "my.app": must not contain dots'],
        ),
        ({"containers": [container(image="")]}, ["spec.containers[0].image: Required value"]),
        (
            {"containers": [container(), container()]},
            ['spec.containers[1].name: Duplicate value: "app"'],
        ),
        (
            {"containers": [container(ports=[{"containerPort": 70000}])]},
            [
                "spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive"
            ],
        ),
        (
            {"containers": [container(ports=[{"containerPort": 0}])]},
            ["spec.containers[0].ports[0].containerPort: Required value"],
        ),
        (
            {
                "containers": [
                    container(
                        ports=[
                            {"containerPort": 80, "name": "http"},
                            {"containerPort": 81, "name": "http"},
                        ]
                    )
                ]
            },
            ['spec.containers[0].ports[1].name: Duplicate value: "http"'],
        ),
        (
            {"containers": [container(ports=[{"containerPort": 80, "name": "HTTP_PORT"}])]},
            [
                'spec.containers[0].ports[0].name: Invalid value: "HTTP_PORT": must contain only alpha-numeric '
                "characters (a-z, 0-9), and hyphens (-)",
                'spec.containers[0].ports[0].name: Invalid value: "HTTP_PORT": must contain at least one letter (a-z)',
            ],
        ),
        (
            {"containers": [container(ports=[{"containerPort": 80, "protocol": "HTTP"}])]},
            [
                'spec.containers[0].ports[0].protocol: Unsupported value: "HTTP": supported values: "SCTP", "TCP", "UDP"'
            ],
        ),
        (
            {"containers": [container(env=[{"name": "1BAD"}])]},
            [
                'spec.containers[0].env[0].name: Invalid value: "1BAD": a valid environment variable name must consist '
                "of alphabetic characters, digits, '_', '-', or '.', and must not start with a digit (e.g. "
                "'my.env-name',  or 'MY_ENV.NAME',  or 'MyEnvName1', regex used for validation is "
                "'[-._a-zA-Z][-._a-zA-Z0-9]*')"
            ],
        ),
        (
            {"containers": [container(env=[{"name": "A", "valueFrom": {}}])]},
            [
                'spec.containers[0].env[0].valueFrom: Invalid value: "": must specify one of: `fieldRef`, '
                "`resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`"
            ],
        ),
        (
            {"containers": [container(volumeMounts=[{"name": "data", "mountPath": "/data"}])]},
            ['spec.containers[0].volumeMounts[0].name: Not found: "data"'],
        ),
        (
            {
                "containers": [
                    container(resources={"requests": {"cpu": "2"}, "limits": {"cpu": "1"}})
                ]
            },
            [
                'spec.containers[0].resources.requests: Invalid value: "2": must be less than or equal to cpu limit of 1'
            ],
        ),
        (
            {"containers": [container(resources={"requests": {"memory": "-1Mi"}})]},
            [
                'spec.containers[0].resources.requests[memory]: Invalid value: "-1Mi": must be greater than or equal to 0'
            ],
        ),
        (
            {"containers": [container(resources={"limits": {"gpu": "1"}})]},
            [
                'spec.containers[0].resources.limits[gpu]: Invalid value: "gpu": must be a standard resource type or '
                "fully qualified",
                'spec.containers[0].resources.limits[gpu]: Invalid value: "gpu": must be a standard resource for containers',
            ],
        ),
        (
            {"containers": [container(resources={"requests": {"example.com/gpu": "1"}})]},
            [
                "spec.containers[0].resources.limits: Required value: Limit must be set for non overcommitable resources"
            ],
        ),
        (
            {"containers": [container(livenessProbe={"periodSeconds": 10})]},
            ["spec.containers[0].livenessProbe: Required value: must specify a handler type"],
        ),
        (
            {
                "containers": [
                    container(livenessProbe={"exec": {"command": ["true"]}, "successThreshold": 2})
                ]
            },
            ["spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1"],
        ),
        (
            {
                "containers": [
                    container(
                        readinessProbe={"exec": {"command": ["true"]}, "tcpSocket": {"port": 80}}
                    )
                ]
            },
            [
                "spec.containers[0].readinessProbe.tcpSocket: Forbidden: may not specify more than 1 handler type"
            ],
        ),
        (
            {"containers": [container(readinessProbe={"httpGet": {"port": 0}})]},
            [
                "spec.containers[0].readinessProbe.httpGet.port: Invalid value: 0: must be between 1 and 65535, inclusive"
            ],
        ),
        (
            {"containers": [container()], "restartPolicy": "Sometimes"},
            [
                'spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"'
            ],
        ),
        (
            {"containers": [container()], "dnsPolicy": "Cluster"},
            [
                'spec.dnsPolicy: Unsupported value: "Cluster": supported values: "ClusterFirstWithHostNet", '
                '"ClusterFirst", "Default", "None"'
            ],
        ),
        (
            {"containers": [container(imagePullPolicy="Sometimes")]},
            [
                'spec.containers[0].imagePullPolicy: Unsupported value: "Sometimes": supported values: "Always", '
                '"IfNotPresent", "Never"'
            ],
        ),
        (
            {
                "containers": [container()],
                "volumes": [{"name": "v", "emptyDir": {}, "hostPath": {"path": "/x"}}],
            },
            ["spec.volumes[0].hostPath: Forbidden: may not specify more than 1 volume type"],
        ),
        (
            {
                "containers": [container()],
                "volumes": [{"name": "v", "emptyDir": {}}, {"name": "v", "emptyDir": {}}],
            },
            ['spec.volumes[1].name: Duplicate value: "v"'],
        ),
        (
            {"containers": [container()], "volumes": [{"name": "v", "secret": {}}]},
            ["spec.volumes[0].secret.secretName: Required value"],
        ),
        (
            {"containers": [container()], "tolerations": [{"operator": "Equal", "value": "x"}]},
            [
                'spec.tolerations[0].operator: Invalid value: "Equal": operator must be Exists when `key` is empty, '
                'which means "match all values and all keys"'
            ],
        ),
        (
            {"containers": [container()], "tolerations": [{"key": "k", "tolerationSeconds": 5}]},
            [
                "spec.tolerations[0].effect: Invalid value: \"\": effect must be 'NoExecute' when `tolerationSeconds` is set"
            ],
        ),
        (
            {"containers": [container()], "activeDeadlineSeconds": 0},
            [
                "spec.activeDeadlineSeconds: Invalid value: 0: must be between 1 and 2147483647, inclusive"
            ],
        ),
        (
            {"containers": [container()], "hostname": "My.Host"},
            [f'spec.hostname: Invalid value: "My.Host": {LABEL_RULE}'],
        ),
        (
            {"containers": [container()], "dnsPolicy": "None"},
            ["spec.dnsConfig: Required value: must provide `dnsConfig` when `dnsPolicy` is None"],
        ),
        (
            {"containers": [container()], "preemptionPolicy": "Always"},
            [
                'spec.preemptionPolicy: Unsupported value: "Always": supported values: "PreemptLowerPriority", "Never"'
            ],
        ),
    ],
)
def test_validation_messages(spec: dict[str, Any], expected: list[str]) -> None:
    assert messages(spec) == expected


def test_grace_period_is_required_when_not_defaulted() -> None:
    spec = {
        "containers": [container(imagePullPolicy="Always", terminationMessagePolicy="File")],
        "restartPolicy": "Always",
        "dnsPolicy": "ClusterFirst",
    }
    assert messages(spec, defaulted=False) == ["spec.terminationGracePeriodSeconds: Required value"]


def test_invalid_quantity_is_reported_not_dropped() -> None:
    spec = {"containers": [container(resources={"limits": {"cpu": "lots"}})]}
    default_pod_spec(spec)
    assert spec["containers"][0]["resources"]["limits"]["cpu"] == "lots"
    assert messages(spec, defaulted=False) == [
        'spec.containers[0].resources.limits[cpu]: Invalid value: "lots": quantities must match the regular '
        "expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
    ]


def test_template_label_errors_name_the_embedded_metadata() -> None:
    template = nginx_template()
    template["metadata"]["labels"] = {"app": "bad value"}
    default_pod_template(template)
    problems = [e.field for e in validate_pod_template(template, "spec.template")]
    assert problems == ["spec.template.labels"]


def test_template_forbids_ephemeral_containers() -> None:
    template = nginx_template()
    template["spec"]["ephemeralContainers"] = [{"name": "debug", "image": "busybox"}]
    default_pod_template(template)
    assert [e.message() for e in validate_pod_template(template, "t")] == [
        "t.spec.ephemeralContainers: Forbidden: ephemeral containers not allowed in pod template"
    ]


def test_mounts_may_use_only_valid_volumes() -> None:
    spec = {
        "containers": [
            container(
                volumeMounts=[{"name": "v", "mountPath": "/v"}, {"name": "v", "mountPath": "/v"}]
            )
        ],
        "volumes": [{"name": "v", "emptyDir": {}}],
    }
    assert messages(spec) == [
        'spec.containers[0].volumeMounts[1].mountPath: Invalid value: "/v": must be unique'
    ]


def test_init_containers_without_restart_policy_take_no_probes() -> None:
    spec = {
        "containers": [container()],
        "initContainers": [
            {"name": "init", "image": "busybox", "readinessProbe": {"exec": {"command": ["x"]}}}
        ],
    }
    assert messages(spec) == [
        "spec.initContainers[0].readinessProbe: Forbidden: may not be set for init containers without "
        "restartPolicy=Always"
    ]
    spec["initContainers"][0]["restartPolicy"] = "Always"
    assert messages(spec) == []


def test_host_network_pod_ports_match() -> None:
    spec = {
        "hostNetwork": True,
        "containers": [container(ports=[{"containerPort": 80, "hostPort": 8080}])],
    }
    default_pod_spec(spec)
    assert [e.message() for e in validate_pod_spec(spec, "spec", is_pod=True)] == [
        "spec.containers[0].ports[0].hostPort: Invalid value: 8080: must match `containerPort` when "
        "`hostNetwork` is true"
    ]


def test_tolerations_seen_valid_before_are_judged_again_beside_others() -> None:
    not_ready = {
        "key": "node.kubernetes.io/not-ready",
        "operator": "Exists",
        "effect": "NoExecute",
        "tolerationSeconds": 300,
    }
    assert messages({"containers": [container()], "tolerations": [not_ready]}) == []
    # Still remembered as valid, the first toleration does not hide the second's error,
    # which keeps its index; a changed copy of the first is judged afresh.
    bad_value = {"key": "k", "operator": "Exists", "value": "v"}
    changed = {**not_ready, "effect": "NoSchedule"}
    assert messages(
        {"containers": [container()], "tolerations": [not_ready, bad_value, changed]}
    ) == [
        "spec.tolerations[1].operator: Invalid value: \"v\": value must be empty when `operator` is 'Exists'",
        "spec.tolerations[2].effect: Invalid value: \"NoSchedule\": effect must be 'NoExecute' when "
        "`tolerationSeconds` is set",
    ]
    odd = {"key": ["not", "hashable"], "operator": "Exists"}
    assert messages({"containers": [container()], "tolerations": [odd]}) == []


def test_pull_policy_is_the_same_when_asked_again() -> None:
    expected = {"nginx": "Always", "nginx:1.27": "IfNotPresent", "Nginx": "IfNotPresent"}
    for _ in range(2):
        assert {image: default_pull_policy(image) for image in expected} == expected
