"""The CronJob controller against a real control plane with a shortened clock: time runs
60 times faster for the controllers, so a `* * * * *` schedule fires every second.

The control plane runs in this process (its controllers get the fast clock through
ServerOptions.controller_options); the test talks to it through the in-process client,
the full API request path."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from timonel.api.errors import StatusError
from timonel.api.objects import Object, parse_rfc3339
from timonel.client.resources import CRONJOBS, EVENTS, JOBS, NAMESPACES, PODS
from timonel.client.rest import ApiClient
from timonel.server import ControlPlane, ServerOptions
from timonel.util.clock import ScaledClock

T = TypeVar("T")
NAMESPACE = "cron"
RATE = 60.0


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[ApiClient]:
    options = ServerOptions(
        data_dir=tmp_path,
        bind_address="127.0.0.1",
        https_listen_port=0,
        disable_agent=True,
        controller_options={"clock": ScaledClock(RATE), "job_sync_batch_period": 0.05},
    )
    plane = ControlPlane(options)
    await plane.start()
    api = plane.in_process_client("test")
    await api.create(
        NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
    )
    try:
        yield api
    finally:
        await plane.stop()


async def eventually(
    probe: Callable[[], Awaitable[T | None]], timeout: float = 10.0, what: str = "condition"
) -> T:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await probe()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{what} not met in {timeout}s")
        await asyncio.sleep(0.05)


def cronjob(name: str, **spec: Any) -> Object:
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "schedule": "* * * * *",
            **spec,
            "jobTemplate": {
                "metadata": {"labels": {"from": name}},
                "spec": {
                    "template": {
                        "spec": {
                            "schedulerName": "timonel-tests-no-scheduler",
                            "restartPolicy": "Never",
                            "containers": [{"name": "tick", "image": "busybox"}],
                        }
                    }
                },
            },
        },
    }


async def jobs_of(api: ApiClient, name: str) -> list[Object]:
    listed = await api.list(JOBS, NAMESPACE, label_selector=f"from={name}")
    return sorted(listed["items"], key=lambda j: j["metadata"]["name"])


async def finish_job(api: ApiClient, job_name: str, phase: str = "Succeeded") -> None:
    """Stand in for the kubelet: the Job's pod ran and exited."""

    async def pod() -> Object | None:
        listed = await api.list(
            PODS, NAMESPACE, label_selector=f"batch.kubernetes.io/job-name={job_name}"
        )
        return listed["items"][0] if listed["items"] else None

    found = await eventually(pod, what=f"a pod of {job_name}")
    found["status"] = {"phase": phase}
    await api.update_status(PODS, found)


async def event_messages(api: ApiClient, name: str, reason: str) -> list[str]:
    listed = await api.list(EVENTS, NAMESPACE)
    return [
        e["message"]
        for e in listed["items"]
        if e["involvedObject"].get("name") == name and e["reason"] == reason
    ]


async def test_fires_on_schedule(client: ApiClient) -> None:
    created = await client.create(CRONJOBS, cronjob("tick", successfulJobsHistoryLimit=1))
    job = (await eventually(lambda: jobs_of(client, "tick"), what="a first Job"))[0]
    owner = job["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == (
        "CronJob",
        "tick",
        created["metadata"]["uid"],
        True,
    )
    scheduled = job["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"]
    assert scheduled.endswith(":00Z")
    # The name is the scheduled time in minutes since the epoch.
    minutes = int(job["metadata"]["name"].removeprefix("tick-"))
    assert parse_rfc3339(scheduled).timestamp() == minutes * 60
    cj = await eventually(
        lambda: _status_with(client, "tick", "active"), what="the Job in status.active"
    )
    assert cj["status"]["active"][0]["name"] == job["metadata"]["name"]
    # A minute is a second here: a later schedule may have fired since.
    last = parse_rfc3339(cj["status"]["lastScheduleTime"])
    assert last >= parse_rfc3339(scheduled) and last.second == 0
    assert f"Created job {job['metadata']['name']}" in await event_messages(
        client, "tick", "SuccessfulCreate"
    )

    await finish_job(client, job["metadata"]["name"])
    done = await eventually(
        lambda: _status_with(client, "tick", "lastSuccessfulTime"), what="a successful run"
    )
    assert job["metadata"]["name"] not in [a["name"] for a in done["status"].get("active") or []]
    assert (
        f"Saw completed job: {job['metadata']['name']}, status: Complete"
        in await event_messages(client, "tick", "SawCompletedJob")
    )

    # The next minute (a second later here) brings the next Job; once it succeeds, the
    # history limit of 1 removes the first.
    later = await eventually(
        lambda: _later_jobs(client, "tick", job["metadata"]["name"]),
        what="a Job for a later minute",
    )
    await finish_job(client, later[0]["metadata"]["name"])
    await eventually(
        lambda: _gone(client, job["metadata"]["name"]), what="the oldest successful Job deleted"
    )
    assert f"Deleted job {job['metadata']['name']}" in await event_messages(
        client, "tick", "SuccessfulDelete"
    )


async def test_forbid_skips_while_a_job_runs(client: ApiClient) -> None:
    await client.create(CRONJOBS, cronjob("solo", concurrencyPolicy="Forbid"))
    first = (await eventually(lambda: jobs_of(client, "solo"), what="a first Job"))[0]
    await eventually(
        lambda: _event(client, "solo", "JobAlreadyActive"), timeout=10, what="a skipped schedule"
    )
    assert [j["metadata"]["name"] for j in await jobs_of(client, "solo")] == [
        first["metadata"]["name"]
    ]


async def test_suspended_cronjob_starts_nothing(client: ApiClient) -> None:
    await client.create(CRONJOBS, cronjob("paused", suspend=True))
    await asyncio.sleep(2.5)  # more than two scheduled minutes
    assert await jobs_of(client, "paused") == []


async def _status_with(api: ApiClient, name: str, field: str) -> Object | None:
    cj = await api.get(CRONJOBS, name, NAMESPACE)
    return cj if (cj.get("status") or {}).get(field) else None


async def _later_jobs(api: ApiClient, name: str, first: str) -> list[Object]:
    return [j for j in await jobs_of(api, name) if j["metadata"]["name"] > first]


async def _gone(api: ApiClient, job_name: str) -> bool:
    try:
        await api.get(JOBS, job_name, NAMESPACE)
    except StatusError as error:
        return error.code == 404
    return False


async def _event(api: ApiClient, name: str, reason: str) -> bool:
    return bool(await event_messages(api, name, reason))
