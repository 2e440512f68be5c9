"""The virtual-time driver: the clock moves only when everything waits on it, never past the
end of the coroutine it drives."""

import asyncio
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from tradecore.adapters.clock import VirtualClock
from tradecore.adapters.virtual_time import ThreadWork, run_driven

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


async def test_the_clock_stops_where_a_coroutine_finished_after_its_last_database_call() -> None:
    # The guard sleeps 60 s between passes. The coroutine's last store call returns while the
    # loop is busy with other tasks' work of the same instant (a neighbour that keeps the loop
    # busy, and the store's thread that answers only once it does).
    clock = VirtualClock(START)
    work = ThreadWork()
    guard = asyncio.create_task(clock.sleep(60))
    answer = threading.Event()
    finished: list[datetime] = []

    async def neighbour() -> None:
        await asyncio.sleep(0.002)  # real time: the driver is waiting on the thread by now
        answer.set()
        await busy_until(lambda: bool(finished))

    async def one_store_call_then_done() -> str:
        await clock.sleep(1)
        busy = asyncio.create_task(neighbour())
        await work.counted(asyncio.to_thread(answer.wait, 5))
        finished.append(clock.now())
        await busy
        return "done"

    assert await run_driven(clock, work, one_store_call_then_done()) == "done"
    assert finished == [START + timedelta(seconds=1)]
    assert clock.now() == finished[0]
    guard.cancel()


async def test_the_clock_holds_still_while_the_coroutine_waits_on_a_thread() -> None:
    # Executor work the caller did not count (a file read, a hash) is real work in flight:
    # the coroutine proceeds without virtual time moving, so the clock must not jump.
    clock = VirtualClock(START)
    guard = asyncio.create_task(clock.sleep(60))

    async def read_a_file() -> datetime:
        await asyncio.to_thread(time.sleep, 0.02)
        return clock.now()

    finished = await run_driven(clock, ThreadWork(), read_a_file())
    assert finished == START
    assert clock.now() == START
    guard.cancel()


async def busy_until(done: Callable[[], bool], limit: float = 5.0) -> None:
    """A task with work at this very instant until `done()` (real time bounded)."""
    began = time.monotonic()
    while not done() and time.monotonic() - began < limit:
        await asyncio.sleep(0)
