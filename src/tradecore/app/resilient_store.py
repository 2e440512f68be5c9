"""Trading through a database outage: the journal catches up, the venue never waits.

The exchange is the source of truth and the database the journal. When the database cannot
be reached (`StoreUnavailable`), the writes that record what already happened on the venue —
a position's new state, a moved stop, a trailing state, an order, an operation's start or
end, a signal, an alert — are kept in order in memory and replayed, in that order, as soon
as the database answers again. Reads fall back to the last state this process wrote, so the
stop keeper and the trailing service keep working on what they know.

What cannot be deferred refuses: a new position (its intent must be on disk before the venue
is asked, or a crash could open it twice), claiming a wave (it must be processed once, ever),
and reads of state this process never wrote. Those raise `StoreUnavailable`, and their
callers refuse or skip with an event.
"""

from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, cast

from tradecore.domain.model import Venue
from tradecore.domain.positions import Position
from tradecore.domain.trailing import TrailingState
from tradecore.ports.repositories import (
    AlertRepository,
    OperationRepository,
    OrderRepository,
    PositionRepository,
    SignalRepository,
    StaleVersion,
    Store,
    StoreUnavailable,
    TrailingRepository,
    WaveRepository,
)

Write = Callable[[], Awaitable[None]]


class Backlog:
    """Writes the database could not take yet, replayed in order."""

    def __init__(self) -> None:
        self._writes: list[Write] = []

    def __len__(self) -> int:
        return len(self._writes)

    async def write(self, call: Write) -> None:
        """Write now if nothing is waiting and the database answers; else queue it."""
        if self._writes:
            await self.flush()
        if self._writes:
            self._writes.append(call)
            return
        try:
            await call()
        except StoreUnavailable:
            self._writes.append(call)

    async def flush(self) -> bool:
        """Replay what is waiting, in order; True when nothing is left."""
        while self._writes:
            try:
                await self._writes[0]()
            except StoreUnavailable:
                return False
            except StaleVersion:
                pass  # a later state of the same position already reached the database
            self._writes.pop(0)
        return True


class _Positions:
    def __init__(self, inner: Any, backlog: Backlog) -> None:
        self._inner = inner
        self._backlog = backlog
        self._known: dict[str, Position] = {}

    async def add(self, position: Position) -> None:
        await self._inner.add(position)  # never deferred: the intent must be on disk
        self._known[position.id] = position

    async def save(self, position: Position) -> None:
        self._known[position.id] = position
        await self._backlog.write(lambda: self._inner.save(position))

    async def get(self, position_id: str) -> Position | None:
        known = self._known.get(position_id)
        if len(self._backlog) and known is not None:
            return known  # the database is behind this process
        try:
            found: Position | None = await self._inner.get(position_id)
        except StoreUnavailable:
            if known is None:
                raise
            return known
        if found is not None:
            self._known[position_id] = found
        return found

    async def open_positions(self) -> Sequence[Position]:
        result: Sequence[Position] = await self._inner.open_positions()
        return result

    async def open_for(self, venue: Venue, symbol: str) -> Position | None:
        result: Position | None = await self._inner.open_for(venue, symbol)
        return result

    async def unsettled(self) -> Sequence[Position]:
        found: Sequence[Position] = await self._inner.unsettled()
        if not len(self._backlog):
            return found
        # the database is behind this process: what it still lacks counts as written
        latest = [self._known.get(p.id, p) for p in found]
        return [p for p in latest if p.awaits_settlement]


class _Deferred:
    """A repository whose writes may wait in the backlog and whose reads go straight through."""

    def __init__(self, inner: Any, backlog: Backlog, writes: frozenset[str]) -> None:
        self._inner = inner
        self._backlog = backlog
        self._writes = writes

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._inner, name)
        if name not in self._writes:
            return method

        async def deferred(*args: Any, **kwargs: Any) -> None:
            await self._backlog.write(lambda: method(*args, **kwargs))

        return deferred


class _Trailing(_Deferred):
    def __init__(self, inner: Any, backlog: Backlog) -> None:
        super().__init__(inner, backlog, frozenset({"save", "delete"}))
        self._known: dict[str, TrailingState | None] = {}

    async def save(self, state: TrailingState) -> None:
        self._known[state.position_id] = state
        await self._backlog.write(lambda: self._inner.save(state))

    async def delete(self, position_id: str) -> None:
        self._known[position_id] = None
        await self._backlog.write(lambda: self._inner.delete(position_id))

    async def get(self, position_id: str) -> TrailingState | None:
        if position_id in self._known and len(self._backlog):
            return self._known[position_id]
        result: TrailingState | None = await self._inner.get(position_id)
        return result


class ResilientStore:
    """A `Store` that keeps trading state through a database outage (see the module doc)."""

    def __init__(self, inner: Store) -> None:
        self._inner = inner
        self.backlog = backlog = Backlog()
        # The wrappers forward every method of the repository they wrap (`_Deferred` by
        # `__getattr__`), so each stands for its port.
        self.positions: PositionRepository = _Positions(inner.positions, backlog)
        self.operations = cast(
            OperationRepository,
            _Deferred(inner.operations, backlog, frozenset({"start", "finish"})),
        )
        self.orders = cast(OrderRepository, _Deferred(inner.orders, backlog, frozenset({"record"})))
        self.trailing = cast(TrailingRepository, _Trailing(inner.trailing, backlog))
        self.waves: WaveRepository = inner.waves  # claiming a wave can never be deferred
        self.signals = cast(SignalRepository, _Deferred(inner.signals, backlog, frozenset({"add"})))
        self.alerts = cast(AlertRepository, _Deferred(inner.alerts, backlog, frozenset({"add"})))

    @property
    def behind(self) -> int:
        """How many writes wait for the database."""
        return len(self.backlog)

    async def catch_up(self) -> bool:
        """Replay the waiting writes; True when the database has everything."""
        return await self.backlog.flush()

    def transaction(self) -> AbstractAsyncContextManager[Store]:
        # A transaction is the all-or-nothing write of a new intent: never deferred.
        return self._inner.transaction()
