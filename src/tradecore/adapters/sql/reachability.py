"""The moment the database stops answering, and the moment it answers again, as the store
finds them: the journal stamps an outage from these, not from its own next write (issue 12:
an outage of ~62 s was journaled as 13 s, because it began at the next event's write)."""

from collections.abc import Callable, Sequence
from typing import Any

from tradecore.adapters.sql.executor import Executor, Row
from tradecore.ports.repositories import StoreUnavailable

OnDown = Callable[[StoreUnavailable], None]
OnUp = Callable[[], None]


class Reachability:
    """Whether the last call to the database answered; listeners hear each change once."""

    def __init__(self) -> None:
        self.down = False
        self._listeners: list[tuple[OnDown, OnUp]] = []

    def listen(self, on_down: OnDown, on_up: OnUp) -> None:
        self._listeners.append((on_down, on_up))

    def failed(self, error: StoreUnavailable) -> None:
        if self.down:
            return
        self.down = True
        for on_down, _ in self._listeners:
            on_down(error)

    def answered(self) -> None:
        if not self.down:
            return
        self.down = False
        for _, on_up in self._listeners:
            on_up()


class WatchedExecutor:
    """An `Executor` that tells `Reachability` how each call went."""

    def __init__(self, inner: Executor, reachability: Reachability) -> None:
        self._inner = inner
        self._reachability = reachability

    async def execute(self, sql: str, *args: Any) -> int:
        try:
            result = await self._inner.execute(sql, *args)
        except StoreUnavailable as error:
            self._reachability.failed(error)
            raise
        self._reachability.answered()
        return result

    async def fetch(self, sql: str, *args: Any) -> Sequence[Row]:
        try:
            rows = await self._inner.fetch(sql, *args)
        except StoreUnavailable as error:
            self._reachability.failed(error)
            raise
        self._reachability.answered()
        return rows
