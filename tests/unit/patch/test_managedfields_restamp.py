"""A write that only changes fields its manager already owns (a Lease renewal) keeps every
managed-fields entry as it was but for that manager's time: the same result as the full
Update, reached without parsing the entries."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest

from timonel.patch import managedfields


def _stamped(live: dict[str, Any] | None, new: dict[str, Any], manager: str, now: str) -> Any:
    new = copy.deepcopy(new)
    managedfields.record_update(
        live, new, manager=manager, api_version="coordination.k8s.io/v1", schema=None, now=now
    )
    # As stored and read back: the entries come from JSON.
    return orjson.loads(orjson.dumps(new))


def _lease(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": "n1", "namespace": "kube-node-lease", "uid": "u1"},
        "spec": {"holderIdentity": "n1", "leaseDurationSeconds": 40, **spec},
    }


def _live() -> Any:
    """kubelet created the Lease; a controller later set one label."""
    live = _stamped(None, _lease(renewTime="t0"), "kubelet", "2026-01-01T00:00:00Z")
    live["metadata"]["resourceVersion"] = "5"
    labelled = copy.deepcopy(live)
    labelled["metadata"]["labels"] = {"zone": "a"}
    labelled = _stamped(live, labelled, "controller", "2026-01-01T00:00:01Z")
    labelled["metadata"]["resourceVersion"] = "6"
    return labelled


def _renewal(live: Any) -> Any:
    new = copy.deepcopy(live)
    new["spec"]["renewTime"] = "t1"
    del new["metadata"]["resourceVersion"]
    return new


def _added_field(live: Any) -> Any:
    new = _renewal(live)
    new["spec"]["acquireTime"] = "t1"
    return new


def _removed_field(live: Any) -> Any:
    new = _renewal(live)
    del new["spec"]["leaseDurationSeconds"]
    return new


def _relabelled(live: Any) -> Any:
    new = _renewal(live)
    new["metadata"]["labels"]["zone"] = "b"
    return new


def _only_relabelled(live: Any) -> Any:
    new = copy.deepcopy(live)
    del new["metadata"]["resourceVersion"]
    new["metadata"]["labels"]["zone"] = "b"
    return new


CASES = {
    "renewal by its owner": (_renewal, "kubelet", True),
    "renewal by another manager": (_renewal, "someone-else", False),
    "a field the writer does not own yet": (_added_field, "kubelet", False),
    "a field removed": (_removed_field, "kubelet", False),
    "a field another manager owns": (_relabelled, "kubelet", False),
    "the other manager's own field": (_only_relabelled, "controller", True),
    "the other manager's own field and one it does not own": (_relabelled, "controller", False),
}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_the_short_way_gives_what_the_full_update_gives(case: str, monkeypatch: Any) -> None:
    change, manager, short = CASES[case]
    live = _live()
    new = change(live)
    taken: list[bool] = []
    restamped = managedfields._restamped

    def watched(*args: Any) -> Any:
        result = restamped(*args)
        taken.append(result is not None)
        return result

    monkeypatch.setattr(managedfields, "_restamped", watched)
    quick = _stamped(live, new, manager, "2026-01-01T00:01:00Z")
    assert taken == [short]
    monkeypatch.setattr(managedfields, "_restamped", lambda *args: None)
    full = _stamped(live, new, manager, "2026-01-01T00:01:00Z")
    assert quick["metadata"]["managedFields"] == full["metadata"]["managedFields"]
    assert quick["metadata"]["managedFields"] != live["metadata"]["managedFields"]


def test_a_renewal_moves_only_its_manager_s_time() -> None:
    live = _live()
    renewed = _stamped(live, _renewal(live), "kubelet", "2026-01-01T00:01:00Z")
    before = {e["manager"]: e for e in live["metadata"]["managedFields"]}
    after = {e["manager"]: e for e in renewed["metadata"]["managedFields"]}
    assert after["controller"] == before["controller"]
    assert after["kubelet"] == {**before["kubelet"], "time": "2026-01-01T00:01:00Z"}
    assert list(after["kubelet"]) == list(before["kubelet"])
