"""Virtual time for an application whose store does real I/O.

The virtual clock moves only when every task waits on it. A database call (a thread for
aiosqlite, a socket for asyncpg) or other executor work in flight holds the clock still, so
the time a test, a paper session or a benchmark sees between two venue events is the venue's
round trips, never our I/O. `CountedStore` wraps the `Store` port to count its calls;
`ThreadWork.watch_loop` counts executor work; `drive`/`run_driven` move the clock.

Holding the clock keeps time right but not order: a thread (or the server, for asyncpg)
answers whenever the machine gets to it, so other tasks' work of the same instant may run
before or after. Where the order must be the same on every run and on either database, the
database answers within the awaiting task's step instead (`connect_store(…, in_loop=True)`:
SQLite on the loop's own thread, PostgreSQL on a side loop the caller blocks on;
docs/testing.md, "Same inputs, same seed, same journal").
"""

import asyncio
import contextlib
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from datetime import datetime
from typing import Any, TypeVar

from tradecore.adapters.clock import VirtualClock, settle
from tradecore.ports.repositories import Store

T = TypeVar("T")


class ThreadWork:
    """Counts awaits on work outside the event loop — database calls through the store, file
    reads on the default executor — so the virtual clock never moves while one is pending."""

    def __init__(self) -> None:
        self.pending = 0
        self._watched: set[asyncio.AbstractEventLoop] = set()

    async def counted(self, call: Awaitable[T]) -> T:
        self.pending += 1
        try:
            return await call
        finally:
            self.pending -= 1

    async def around(self, call: Callable[[], Awaitable[T]]) -> T:
        """`counted` in the form `AroundPort` takes."""
        return await self.counted(call())

    def watch_loop(self, loop: asyncio.AbstractEventLoop) -> Callable[[], None]:
        """Count every `run_in_executor` on `loop` (`asyncio.to_thread` included) until the
        returned function is called. Watching a loop this instance already watches is a no-op."""
        if loop in self._watched:
            return lambda: None
        original = loop.run_in_executor

        def counted(executor: Any, func: Any, *args: Any) -> asyncio.Future[Any]:
            future = original(executor, func, *args)
            self.pending += 1
            future.add_done_callback(self._done)
            return future

        loop.run_in_executor = counted  # type: ignore[assignment,method-assign]
        self._watched.add(loop)

        def restore() -> None:
            loop.run_in_executor = original  # type: ignore[method-assign]
            self._watched.discard(loop)

        return restore

    def _done(self, _: object) -> None:
        self.pending -= 1


Around = Callable[[Callable[[], Awaitable[Any]]], Awaitable[Any]]


class AroundPort:
    """A port whose every coroutine method runs through `around(call)` (counting, faults)."""

    def __init__(self, target: Any, around: Around) -> None:
        self._target = target
        self._around = around

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        if name.startswith("_") or not inspect.iscoroutinefunction(value):
            return value

        def call(*args: Any, **kwargs: Any) -> Awaitable[Any]:
            return self._around(lambda: value(*args, **kwargs))

        return call


REPOSITORIES = ("positions", "operations", "orders", "trailing", "waves", "signals", "alerts")


class CountedStore:
    """The `Store` port with every repository call counted as work in flight (the journal's
    own writes are not: they never decide what the application does next)."""

    def __init__(self, inner: Store, work: ThreadWork) -> None:
        self._inner = inner
        self._work = work
        for name in REPOSITORIES:
            setattr(self, name, AroundPort(getattr(inner, name), work.around))

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator["CountedStore"]:
        opened = self._inner.transaction()
        inner = await self._work.counted(opened.__aenter__())
        try:
            yield CountedStore(inner, self._work)
        except BaseException as error:
            if not await self._work.counted(
                opened.__aexit__(type(error), error, error.__traceback__)
            ):
                raise
        else:
            await self._work.counted(opened.__aexit__(None, None, None))


async def drive(
    clock: VirtualClock,
    work: ThreadWork,
    *,
    until: Callable[[], bool],
    end: datetime | None = None,
    on_step: Callable[[], None] | None = None,
) -> None:
    """Move `clock` deadline by deadline until `until()` or `end`, never past thread work.

    Time moves only at a point where the loop has nothing ready, no thread works for us and
    `until()` is still false, all three checked after the loop settled: a coroutine that
    finishes while the loop settles (its last thread call answered meanwhile) ends the drive
    at the instant it finished, not one deadline later. Executor work (`asyncio.to_thread`)
    is counted while the drive runs, whether or not the caller watches the loop."""
    restore = work.watch_loop(asyncio.get_running_loop())
    try:
        while True:
            await settle()
            if until():
                return
            if work.pending:
                await asyncio.sleep(0.0002)  # real time: a thread or a socket is working for us
                continue
            deadline = clock.next_deadline()
            if deadline is None or (end is not None and deadline > end):
                if end is not None and clock.now() < end:
                    await clock.run_until(end)
                return
            await clock.run_until(deadline)
            if on_step is not None:
                on_step()
    finally:
        restore()


async def run_driven(clock: VirtualClock, work: ThreadWork, coroutine: Coroutine[Any, Any, T]) -> T:
    """Run `coroutine` to its end, moving `clock` only while it (and every other task) waits
    on it; the clock is left at the instant the coroutine finished."""
    task = asyncio.ensure_future(coroutine)
    while not task.done():
        await drive(clock, work, until=task.done)
        if not task.done():
            await asyncio.sleep(0.001)  # only real work (a thread, a socket) is left
    return task.result()
