"""The official `kubernetes` Python client against timonel."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import pytest
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

from tests.conftest import RunningServer


@pytest.fixture(scope="module")
def api_client(server: RunningServer) -> Iterator[client.ApiClient]:
    configuration = client.Configuration()
    config.load_kube_config(config_file=str(server.kubeconfig), client_configuration=configuration)
    with client.ApiClient(configuration) as api:
        yield api


def test_crud_and_selectors(api_client: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api_client)
    for index in range(3):
        core.create_namespaced_config_map(
            namespace,
            client.V1ConfigMap(
                metadata=client.V1ObjectMeta(
                    name=f"cm-{index}", labels={"group": "even" if index % 2 == 0 else "odd"}
                ),
                data={"index": str(index)},
            ),
        )
    got = core.read_namespaced_config_map("cm-1", namespace)
    assert got.data == {"index": "1"}
    evens = core.list_namespaced_config_map(namespace, label_selector="group=even")
    assert sorted(i.metadata.name for i in evens.items) == ["cm-0", "cm-2"]
    got.data["index"] = "one"
    replaced = core.replace_namespaced_config_map("cm-1", namespace, got)
    assert replaced.data == {"index": "one"}
    assert int(replaced.metadata.resource_version) > int(got.metadata.resource_version)
    stale = got
    stale.data["index"] = "stale"
    with pytest.raises(ApiException) as conflict:
        core.replace_namespaced_config_map("cm-1", namespace, stale)
    assert conflict.value.status == 409
    core.patch_namespaced_config_map("cm-1", namespace, {"data": {"extra": "x"}})
    assert core.read_namespaced_config_map("cm-1", namespace).data == {"index": "one", "extra": "x"}
    core.delete_namespaced_config_map("cm-1", namespace)
    with pytest.raises(ApiException) as missing:
        core.read_namespaced_config_map("cm-1", namespace)
    assert missing.value.status == 404


def test_watch_resumes_from_resource_version(api_client: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api_client)
    # Only the writer's objects: controllers add their own to every namespace.
    selector = "written-by=test"
    listed = core.list_namespaced_config_map(namespace, label_selector=selector)
    start = listed.metadata.resource_version
    names = [f"w-{i}" for i in range(6)]

    def writer() -> None:
        for name in names:
            core.create_namespaced_config_map(
                namespace,
                client.V1ConfigMap(
                    metadata=client.V1ObjectMeta(name=name, labels={"written-by": "test"})
                ),
            )

    thread = threading.Thread(target=writer)
    thread.start()
    seen: list[tuple[str, str]] = []
    last_rv = start
    stream = watch.Watch()
    for event in stream.stream(
        core.list_namespaced_config_map,
        namespace,
        label_selector=selector,
        resource_version=start,
        timeout_seconds=10,
    ):
        seen.append((event["type"], event["object"].metadata.name))
        last_rv = event["object"].metadata.resource_version
        if len(seen) == 3:
            stream.stop()
    thread.join()
    # Reconnect from the last resourceVersion seen: the rest arrives, nothing twice.
    stream = watch.Watch()
    for event in stream.stream(
        core.list_namespaced_config_map,
        namespace,
        label_selector=selector,
        resource_version=last_rv,
        timeout_seconds=10,
    ):
        seen.append((event["type"], event["object"].metadata.name))
        if len(seen) == len(names):
            stream.stop()
    assert seen == [("ADDED", name) for name in names]


def test_custom_resource_definition_and_custom_resource(
    api_client: client.ApiClient, namespace: str
) -> None:
    group = f"t{uuid.uuid4().hex[:6]}.example.com"
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {
                "plural": "widgets",
                "singular": "widget",
                "kind": "Widget",
                "shortNames": ["wd"],
            },
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "properties": {"size": {"type": "integer"}},
                                }
                            },
                        }
                    },
                    "subresources": {"status": {}},
                }
            ],
        },
    }
    ext = client.ApiextensionsV1Api(api_client)
    ext.create_custom_resource_definition(crd)
    custom = client.CustomObjectsApi(api_client)
    deadline = time.monotonic() + 10
    while True:
        try:
            created = custom.create_namespaced_custom_object(
                group,
                "v1",
                namespace,
                "widgets",
                {
                    "apiVersion": f"{group}/v1",
                    "kind": "Widget",
                    "metadata": {"name": "w1"},
                    "spec": {"size": 3},
                },
            )
            break
        except ApiException as exc:
            if exc.status != 404 or time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    assert created["spec"]["size"] == 3
    listed = custom.list_namespaced_custom_object(group, "v1", namespace, "widgets")
    assert [i["metadata"]["name"] for i in listed["items"]] == ["w1"]
    with pytest.raises(ApiException) as bad:
        custom.create_namespaced_custom_object(
            group,
            "v1",
            namespace,
            "widgets",
            {
                "apiVersion": f"{group}/v1",
                "kind": "Widget",
                "metadata": {"name": "w2"},
                "spec": {"size": "big"},
            },
        )
    assert bad.value.status == 422
