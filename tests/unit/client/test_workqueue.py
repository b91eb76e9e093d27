"""The work queue's guarantees: one worker per key, re-adds while processing, backoff."""

from __future__ import annotations

import asyncio

from timonel.client.workqueue import WorkQueue


async def test_a_key_is_never_processed_twice_at_once() -> None:
    queue = WorkQueue()
    active: set[str] = set()
    overlaps: list[str] = []
    processed: list[str] = []

    async def worker() -> None:
        while (key := await queue.get()) is not None:
            if key in active:
                overlaps.append(key)
            active.add(key)
            await asyncio.sleep(0.001)
            processed.append(key)
            active.discard(key)
            queue.done(key)

    workers = [asyncio.create_task(worker()) for _ in range(4)]
    for _ in range(50):
        for key in ("a", "b", "c"):
            queue.add(key)
        await asyncio.sleep(0)
    await asyncio.sleep(0.05)
    queue.shutdown()
    await asyncio.gather(*workers)
    assert overlaps == []
    assert {"a", "b", "c"} <= set(processed)


async def test_adding_a_key_being_processed_hands_it_out_again_after_done() -> None:
    queue = WorkQueue()
    queue.add("a")
    key = await queue.get()
    queue.add("a")
    assert len(queue) == 0  # held back while "a" is processed
    queue.done("a")
    assert await asyncio.wait_for(queue.get(), 1) == key


async def test_duplicate_adds_collapse() -> None:
    queue = WorkQueue()
    for _ in range(5):
        queue.add("a")
    assert len(queue) == 1


async def test_rate_limited_adds_back_off_exponentially_until_forgotten() -> None:
    queue = WorkQueue(base_delay=0.01)
    loop = asyncio.get_running_loop()
    delays = []
    for _ in range(3):
        started = loop.time()
        queue.add_rate_limited("a")
        key = await asyncio.wait_for(queue.get(), 2)
        delays.append(loop.time() - started)
        queue.done(key or "")
    # Each retry waits at least base * 2^failures (load can only make it later).
    assert [round(d, 3) >= 0.01 * 2**n * 0.99 for n, d in enumerate(delays)] == [True, True, True]
    assert queue.failures("a") == 3
    queue.forget("a")
    assert queue.failures("a") == 0


async def test_add_after_keeps_the_earliest_time() -> None:
    queue = WorkQueue()
    queue.add_after("a", 5)
    queue.add_after("a", 0.01)
    assert await asyncio.wait_for(queue.get(), 1) == "a"


async def test_shutdown_wakes_waiting_workers() -> None:
    queue = WorkQueue()
    waiter = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    queue.shutdown()
    assert await asyncio.wait_for(waiter, 1) is None
