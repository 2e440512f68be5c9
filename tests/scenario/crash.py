"""Killing the application at any await point, as a process crash would.

`Tripwire` counts the awaits the application makes on the exchange and the store; at the
chosen one it raises `Crash` — before the call (the request never left) or after it (the
venue or the database did it, the process died before it could act on the answer).
"""

import contextlib
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any


class Crash(BaseException):
    """The process died here. A BaseException, so no `except Exception` in the app catches it."""


class Tripwire:
    def __init__(self, at: int, *, after: bool) -> None:
        self.at = at
        self.after = after
        self.count = 0
        self.fired = False

    async def around(self, call: Callable[[], Awaitable[Any]]) -> Any:
        self.count += 1
        hit = self.count == self.at
        if hit and not self.after:
            self.fired = True
            raise Crash(f"before await #{self.at}")
        result = await call()
        if hit:
            self.fired = True
            raise Crash(f"after await #{self.at}")
        return result


class _Tripped:
    """Wraps every coroutine method of `target` in the tripwire."""

    def __init__(self, target: Any, wire: Tripwire) -> None:
        self._target = target
        self._wire = wire

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        if not callable(value) or name.startswith("_") or name in _SYNC:
            return value

        if not inspect.iscoroutinefunction(value):
            return value

        def call(*args: Any, **kwargs: Any) -> Any:
            return self._wire.around(lambda: value(*args, **kwargs))

        return call


_SYNC = {"watch_mark_prices"}


class TrippedExchange(_Tripped):
    pass


class TrippedStore:
    """A store whose repositories (and transactions) go through the tripwire."""

    def __init__(self, store: Any, wire: Tripwire) -> None:
        self._store = store
        self._wire = wire
        for name in ("positions", "operations", "orders", "trailing", "waves", "signals", "alerts"):
            setattr(self, name, _Tripped(getattr(store, name), wire))

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator["TrippedStore"]:
        async with self._store.transaction() as tx:
            yield TrippedStore(tx, self._wire)
