"""Wrapping every coroutine method of a port in an `around(call)` hook (crash tests)."""

import contextlib
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

Around = Callable[[Callable[[], Awaitable[Any]]], Awaitable[Any]]
REPOSITORIES = ("positions", "operations", "orders", "trailing", "waves", "signals", "alerts")


class Proxy:
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


class StoreProxy:
    """A store whose repositories (and transactions) go through `around`."""

    def __init__(self, store: Any, around: Around) -> None:
        self._store = store
        self._around = around
        for name in REPOSITORIES:
            setattr(self, name, Proxy(getattr(store, name), around))

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator["StoreProxy"]:
        async with self._store.transaction() as tx:
            yield StoreProxy(tx, self._around)
