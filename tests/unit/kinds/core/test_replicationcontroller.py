"""ReplicationControllers, PodTemplates, Endpoints and ServiceAccounts."""

from __future__ import annotations

import copy
from typing import Any

from timonel.kinds.core.endpoints import EndpointsStrategy, format_endpoints
from timonel.kinds.core.podtemplate import PodTemplateStrategy
from timonel.kinds.core.replicationcontroller import ReplicationControllerStrategy, selector_text
from timonel.kinds.core.serviceaccount import ServiceAccountStrategy


def controller(**spec: Any) -> dict[str, Any]:
    obj = {
        "apiVersion": "v1",
        "kind": "ReplicationController",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "nginx", "image": "nginx"}]},
            },
            **spec,
        },
    }
    strategy = ReplicationControllerStrategy()
    strategy.default(obj)
    strategy.prepare_for_create(obj)
    return obj


def test_controller_defaults_from_template() -> None:
    obj = controller()
    assert obj["spec"]["selector"] == {"app": "web"}
    assert obj["metadata"]["labels"] == {"app": "web"}
    assert obj["spec"]["replicas"] == 1
    assert obj["metadata"]["generation"] == 1
    assert obj["status"] == {"replicas": 0}
    assert obj["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] == "Always"
    assert ReplicationControllerStrategy().validate(obj) == []
    assert selector_text(obj) == "app=web"


def test_controller_validation() -> None:
    obj = controller(selector={"app": "other"}, replicas=-1)
    obj["spec"]["template"]["spec"]["restartPolicy"] = "Never"
    assert [e.message() for e in ReplicationControllerStrategy().validate(obj)] == [
        "spec.replicas: Invalid value: -1: must be greater than or equal to 0",
        'spec.template.metadata.labels: Invalid value: {"app":"web"}: `selector` does not match template `labels`',
        'spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: "Always"',
    ]


def test_controller_generation_and_table() -> None:
    strategy = ReplicationControllerStrategy()
    old = controller()
    new = copy.deepcopy(old)
    new["spec"]["replicas"] = 3
    new["status"] = {"replicas": 99}
    strategy.prepare_for_update(new, old)
    assert new["metadata"]["generation"] == 2
    assert new["status"] == {"replicas": 0}
    new["status"] = {"replicas": 3, "readyReplicas": 2}
    row = strategy.table_row(new)
    assert row[:4] == ["web", 3, 3, 2]
    assert row[5:] == ["nginx", "nginx", "app=web"]
    assert ReplicationControllerStrategy.scale is not None
    assert strategy.categories == ("all",)


def test_pod_template() -> None:
    strategy = PodTemplateStrategy()
    obj: dict[str, Any] = {
        "metadata": {"name": "t", "namespace": "default"},
        "template": {
            "metadata": {"labels": {"b": "2", "a": "1"}},
            "spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "y"}]},
        },
    }
    strategy.default(obj)
    strategy.prepare_for_create(obj)
    assert obj["template"]["metadata"]["creationTimestamp"] is None
    assert strategy.validate(obj) == []
    assert strategy.table_row(obj) == ["t", "a,b", "x,y", "a=1,b=2"]
    changed = copy.deepcopy(obj)
    changed["template"]["spec"]["containers"][0]["image"] = "z"
    strategy.prepare_for_update(changed, obj)
    assert changed["metadata"]["generation"] == 2


def test_endpoints() -> None:
    strategy = EndpointsStrategy()
    obj: dict[str, Any] = {
        "metadata": {"name": "web", "namespace": "default"},
        "subsets": [
            {
                "addresses": [{"ip": "10.42.0.1"}, {"ip": "10.42.0.2"}],
                "ports": [{"port": 80}, {"port": 443}],
            }
        ],
    }
    strategy.default(obj)
    assert obj["subsets"][0]["ports"][0]["protocol"] == "TCP"
    assert format_endpoints(obj) == "10.42.0.1:80,10.42.0.2:80,10.42.0.1:443 + 1 more..."
    assert [e.message() for e in strategy.validate(obj)] == [
        "subsets[0].ports[0].name: Required value",
        "subsets[0].ports[1].name: Required value",
    ]
    assert format_endpoints({"subsets": []}) == "<none>"
    loopback = {"subsets": [{"addresses": [{"ip": "127.0.0.1"}]}]}
    assert [e.message() for e in strategy.validate(loopback)] == [
        'subsets[0].addresses[0].ip: Invalid value: "127.0.0.1": may not be in the loopback range '
        "(127.0.0.0/8, ::1/128)"
    ]
    assert (
        format_endpoints({"subsets": [{"addresses": [{"ip": "fd00::1"}], "ports": [{"port": 53}]}]})
        == "[fd00::1]:53"
    )


def test_service_account() -> None:
    strategy = ServiceAccountStrategy()
    obj = {"metadata": {"name": "builder", "namespace": "default"}, "secrets": [{"name": "a"}]}
    assert strategy.table_row(obj)[:2] == ["builder", 1]
    assert strategy.short_names == ("sa",)
