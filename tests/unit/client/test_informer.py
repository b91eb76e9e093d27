"""The informer's store and event handling, without a server."""

from __future__ import annotations

from typing import Any

from timonel.api.objects import Object
from timonel.client.informer import Indexer, Informer
from timonel.client.resources import PODS


def pod(name: str, node: str, rv: str = "1", namespace: str = "ns") -> Object:
    return {
        "metadata": {"name": name, "namespace": namespace, "resourceVersion": rv},
        "spec": {"nodeName": node},
    }


def by_node(obj: Object) -> list[str]:
    return [obj["spec"]["nodeName"]]


def test_an_index_follows_updates_that_move_an_object() -> None:
    indexer = Indexer()
    indexer.add_index("node", by_node)
    indexer.put(pod("a", "n1"))
    indexer.put(pod("b", "n1"))
    indexer.put(pod("a", "n1", rv="2"))
    assert sorted(o["metadata"]["name"] for o in indexer.by_index("node", "n1")) == ["a", "b"]
    indexer.put(pod("a", "n2", rv="3"))
    assert [o["metadata"]["resourceVersion"] for o in indexer.by_index("node", "n2")] == ["3"]
    assert [o["metadata"]["name"] for o in indexer.by_index("node", "n1")] == ["b"]
    indexer.put(pod("b", "n2", rv="4"))
    assert indexer.by_index("node", "n1") == []
    assert "n1" not in indexer._indexes["node"]  # no empty sets left behind
    indexer.put(pod("a", "n2", namespace="other"))
    assert len(indexer.by_index("namespace", "ns")) == 2
    assert len(indexer.by_index("namespace", "other")) == 1
    indexer.remove(indexer.keys()[0])
    assert len(indexer) == 2


def test_index_functions_may_return_any_iterable() -> None:
    indexer = Indexer()
    indexer.add_index("node", lambda o: (v for v in by_node(o)))
    indexer.put(pod("a", "n1"))
    indexer.put(pod("a", "n1", rv="2"))
    assert [o["metadata"]["resourceVersion"] for o in indexer.by_index("node", "n1")] == ["2"]
    indexer.put(pod("a", "n2", rv="3"))
    assert indexer.by_index("node", "n1") == []


def informer() -> Informer:
    return Informer(client=None, resource=PODS)  # type: ignore[arg-type]


def test_events_update_the_store_and_the_resource_version_without_handlers() -> None:
    watched = informer()
    assert watched._receive("ADDED", pod("a", "n1", rv="5"))
    assert watched._receive("MODIFIED", pod("a", "n1", rv="6"))
    assert watched.get("ns/a") == pod("a", "n1", rv="6")
    assert watched._receive("BOOKMARK", {"metadata": {"resourceVersion": "9"}})
    assert watched._resource_version == "9"
    assert watched._receive("DELETED", pod("a", "n1", rv="10"))
    assert watched.get("ns/a") is None and watched._resource_version == "10"
    assert not watched._receive("ERROR", {"kind": "Status", "code": 410})


def test_handlers_see_adds_real_updates_and_deletes() -> None:
    watched = informer()
    seen: list[tuple[str, Any]] = []
    watched.add_handlers(
        on_add=lambda o: seen.append(("add", o["metadata"]["resourceVersion"])),
        on_update=lambda old, new: seen.append(
            ("update", (old["metadata"]["resourceVersion"], new["metadata"]["resourceVersion"]))
        ),
        on_delete=lambda o: seen.append(("delete", o["metadata"]["resourceVersion"])),
    )
    watched._receive("ADDED", pod("a", "n1", rv="1"))
    watched._receive("MODIFIED", pod("a", "n1", rv="1"))  # the same version: no update
    watched._receive("MODIFIED", pod("a", "n1", rv="2"))
    watched._receive("DELETED", pod("a", "n1", rv="3"))
    assert seen == [("add", "1"), ("update", ("1", "2")), ("delete", "2")]
