"""The default ServiceAccount and kube-root-ca.crt decisions."""

from __future__ import annotations

from timonel.api.errors import StatusError
from timonel.controllers.serviceaccount import (
    DESCRIPTION,
    DESCRIPTION_ANNOTATION,
    missing_service_accounts,
    namespace_terminating,
    plan_root_ca_configmap,
)

PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def test_only_active_namespaces_get_the_default_service_account() -> None:
    active = {"metadata": {"name": "a"}, "status": {"phase": "Active"}}
    terminating = {"metadata": {"name": "a"}, "status": {"phase": "Terminating"}}
    assert missing_service_accounts(active, set()) == ["default"]
    assert missing_service_accounts(active, {"default"}) == []
    assert missing_service_accounts(terminating, set()) == []


def test_root_ca_configmap_is_created_with_the_ca_and_description() -> None:
    assert plan_root_ca_configmap(None, "ns", PEM) == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "kube-root-ca.crt",
            "namespace": "ns",
            "annotations": {DESCRIPTION_ANNOTATION: DESCRIPTION},
        },
        "data": {"ca.crt": PEM},
    }


def test_root_ca_configmap_is_left_alone_when_right_and_repaired_when_not() -> None:
    current = plan_root_ca_configmap(None, "ns", PEM)
    assert current is not None
    current["metadata"]["resourceVersion"] = "5"
    assert plan_root_ca_configmap(current, "ns", PEM) is None

    tampered = {
        **current,
        "metadata": {**current["metadata"], "annotations": {"team": "x"}},
        "data": {"ca.crt": "old", "extra": "y"},
    }
    wanted = plan_root_ca_configmap(tampered, "ns", PEM)
    assert wanted is not None
    assert wanted["data"] == {"ca.crt": PEM}
    assert wanted["metadata"]["annotations"] == {"team": "x", DESCRIPTION_ANNOTATION: DESCRIPTION}
    assert wanted["metadata"]["resourceVersion"] == "5"
    assert tampered["data"] == {"ca.crt": "old", "extra": "y"}


def test_namespace_terminating_is_read_from_the_status_causes() -> None:
    refused = StatusError(
        403, "Forbidden", "x", details={"causes": [{"reason": "NamespaceTerminating"}]}
    )
    assert namespace_terminating(refused)
    assert not namespace_terminating(StatusError(403, "Forbidden", "x"))
