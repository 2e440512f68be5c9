"""PostgreSQL answering inside the awaiting task's step, for virtual time.

asyncpg awaits the server's answer on a socket: while it waits, the loop runs other tasks'
work of the same virtual instant, and how much of it depends on how fast the server answers
this time. Two paper sessions on the same inputs then do the same instant's work in different
orders (which sync finishes first, which position of one wave opens first), and a session on
PostgreSQL trades differently from one on SQLite, whose `InLoopConnection` answers at once.

`SideLoop` runs asyncpg on an event loop of its own, in a thread, and the caller's loop blocks
until the answer is there: a call on the database is then one step of the task that made it,
as on in-loop SQLite, and the clock cannot move while it is in flight (nothing else runs).
The pool, the transactions, the journal's writer and the instance lock all live on that loop
(asyncpg ties a connection to the loop that opened it). It blocks the caller's loop for each
round trip, which a wall-clock bot must not do; a session in virtual time loses nothing.
"""

import asyncio
import inspect
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, TypeVar

from tradecore.adapters.sql.executor import Executor, Row

T = TypeVar("T")


class SideLoop:
    """An event loop on its own daemon thread; `run` blocks the caller until a coroutine on it
    is done and returns its result (or raises its exception)."""

    def __init__(self, name: str = "postgres-in-loop") -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def run(self, call: Awaitable[T]) -> T:
        return asyncio.run_coroutine_threadsafe(_awaited(call), self._loop).result()

    def close(self) -> None:
        if self._loop.is_closed():
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()


async def _awaited(call: Awaitable[T]) -> T:
    return await call


class InStep:
    """`target` with every coroutine method run on `side` and answered within the caller's
    step (the journal's writer, the instance lock)."""

    def __init__(self, target: Any, side: SideLoop) -> None:
        self._target = target
        self._side = side

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        if name.startswith("_") or not inspect.iscoroutinefunction(value):
            return value
        side = self._side

        async def call(*args: Any, **kwargs: Any) -> Any:
            return side.run(value(*args, **kwargs))

        return call


class InStepExecutor:
    """The shared repositories' `Executor`, each statement answered within the caller's step."""

    def __init__(self, inner: Executor, side: SideLoop) -> None:
        self._inner = inner
        self._side = side

    async def execute(self, sql: str, *args: Any) -> int:
        return self._side.run(self._inner.execute(sql, *args))

    async def fetch(self, sql: str, *args: Any) -> Sequence[Row]:
        return self._side.run(self._inner.fetch(sql, *args))


def in_step_transactions(
    begin: Callable[[], AbstractAsyncContextManager[Executor]], side: SideLoop
) -> Callable[[], AbstractAsyncContextManager[Executor]]:
    """A `BeginTransaction` whose opening, statements and end each run within one step."""

    @asynccontextmanager
    async def in_step() -> AsyncIterator[Executor]:
        opened = begin()
        executor = side.run(opened.__aenter__())
        try:
            yield InStepExecutor(executor, side)
        except BaseException as error:
            if not side.run(opened.__aexit__(type(error), error, error.__traceback__)):
                raise
        else:
            side.run(opened.__aexit__(None, None, None))

    return in_step
