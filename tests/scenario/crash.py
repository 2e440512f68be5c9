"""Killing the application at any await point, as a process crash would.

`Tripwire` counts the awaits the application makes on the exchange and the store; at the
chosen one it raises `Crash` — before the call (the request never left) or after it (the
venue or the database did it, the process died before it could act on the answer).
"""

from collections.abc import Awaitable, Callable
from typing import Any

from tradecore.adapters.virtual_time import AroundPort

from .proxy import StoreProxy


class Crash(BaseException):
    """The process died here. A BaseException, so no `except Exception` in the app catches it."""


class Tripwire:
    """Crashes at await `at` (before or after it) and at every await after it: the process
    is dead, its other tasks too."""

    def __init__(self, at: int, *, after: bool) -> None:
        self.at = at
        self.after = after
        self.count = 0
        self.fired = False

    async def around(self, call: Callable[[], Awaitable[Any]]) -> Any:
        if self.fired:  # the process is dead: its other tasks die at their next await too
            raise Crash("the process is dead")
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


def tripped_exchange(exchange: Any, wire: Tripwire) -> AroundPort:
    return AroundPort(exchange, wire.around)


def tripped_store(store: Any, wire: Tripwire) -> StoreProxy:
    return StoreProxy(store, wire.around)
