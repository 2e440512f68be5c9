"""Trading through a database outage: one path for every write, the venue never waits.

The exchange is the source of truth and the database the journal. Every write of the
application goes through this store. Whether a write may wait is part of the port's contract:
the writes marked `@may_wait` in `ports/repositories.py` record what already happened on the
venue or outside — a position's new state, a moved stop, a trailing state, an order, an
operation's start or end, a wave's summary, a signal, an alert. When the database cannot be
reached (`StoreUnavailable`) they are held in order: kept in memory and, when the store has a
`WriteSpool`, on disk first, so a crash during an outage loses none of them. Once one write
waits, every later one waits behind it (the order is kept), and `catch_up` — which the
kernel runs every `CATCH_UP_SECONDS` — replays them in that order as soon as the database
answers. A process that starts with writes left in the spool by one that crashed lands them
before it recovers. Reads fall back to the last state this process wrote, so the stop keeper
and the trailing service keep working on what they know.

What may not wait refuses: a new position (its intent must be on disk before the venue is
asked, or a crash could open it twice), claiming a wave (it must be processed once, ever),
a transaction, and reads of state this process never wrote. Those raise `StoreUnavailable`,
and their callers refuse, retry or skip with an event.
"""

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, cast

from loguru import logger

from tradecore.domain.events import Event
from tradecore.domain.model import Venue
from tradecore.domain.positions import Position
from tradecore.domain.trailing import TrailingState
from tradecore.ports.repositories import (
    AlertRepository,
    HeldWrite,
    OperationRepository,
    OrderRepository,
    PositionRepository,
    RecordMissing,
    SignalRepository,
    StaleVersion,
    Store,
    StoreUnavailable,
    TrailingRepository,
    WaveRepository,
    WriteSpool,
    waits,
)

CATCH_UP_SECONDS = 5.0  # how often writes held back by a database outage are replayed


Refused = Callable[[HeldWrite, Exception], object]


class Backlog:
    """Writes the database could not take yet, held in order (durably with a spool)."""

    def __init__(self, store: Store, spool: WriteSpool | None = None) -> None:
        self._store = store
        self._spool = spool
        self._writes: list[HeldWrite] | None = None  # read from the spool on first use
        self._flushing = asyncio.Lock()
        self.landed = 0  # writes replayed since this process started
        self.refused = 0  # writes the database refused for good when replayed
        self.on_refused: Refused | None = None  # told of each (the kernel records an event)

    def _held(self) -> list[HeldWrite]:
        if self._writes is None:
            self._writes = list(self._spool.held()) if self._spool is not None else []
        return self._writes

    def __len__(self) -> int:
        return len(self._held())

    def hold(self, write: HeldWrite) -> None:
        """Hold `write` behind whatever waits (on disk first, with a spool)."""
        writes = self._held()  # what a previous run left is read before this joins it
        if self._spool is not None:
            self._spool.hold(write)  # on disk before it counts as held
        writes.append(write)

    async def _apply(self, write: HeldWrite) -> None:
        repository = getattr(self._store, write.repository)
        await getattr(repository, write.method)(**write.arguments)

    async def flush(self) -> bool:
        """Replay what is waiting, in order; True when nothing is left."""
        async with self._flushing:  # one replay at a time, or a write could land twice
            writes = self._held()
            while writes:
                write = writes[0]
                try:
                    await self._apply(write)
                except StoreUnavailable:
                    return False
                except (StaleVersion, RecordMissing) as error:
                    # A later state of the same record is already stored (a position saved
                    # by another path), or the record is gone: replaying it changes nothing.
                    logger.info(
                        "catch-up: {}.{} not replayed: {!r}", write.repository, write.method, error
                    )
                except Exception as error:  # refused for good: never block what follows
                    self.refused += 1
                    logger.error(
                        "catch-up: {}.{} refused by the database: {!r}",
                        write.repository,
                        write.method,
                        error,
                    )
                    if self.on_refused is not None:
                        self.on_refused(write, error)
                writes.pop(0)
                self.landed += 1
                if self._spool is not None:
                    self._spool.landed(1)
            return True


class _Repository:
    """A repository port whose `@may_wait` writes go through the backlog; everything else
    (reads, writes that may not wait) goes straight to the database."""

    def __init__(self, name: str, port: type, inner: Any, backlog: Backlog) -> None:
        self._name = name
        self._port = port
        self._inner = inner
        self._backlog = backlog

    def __getattr__(self, method: str) -> Any:
        found = getattr(self._inner, method)
        if not waits(self._port, method):
            return found
        deferred = self._deferred(method)
        setattr(self, method, deferred)  # built once per method
        return deferred

    def _deferred(self, method: str) -> Callable[..., Awaitable[None]]:
        signature = inspect.signature(getattr(self._port, method))
        itself = next(iter(signature.parameters))
        name, backlog, target = self._name, self._backlog, getattr(self._inner, method)

        async def deferred(*args: Any, **kwargs: Any) -> None:
            if not len(backlog):  # the usual case: straight to the database
                try:
                    await target(*args, **kwargs)
                    return
                except StoreUnavailable:
                    pass
            arguments = dict(signature.bind(None, *args, **kwargs).arguments)
            del arguments[itself]  # None stood for the repository itself
            backlog.hold(HeldWrite(repository=name, method=method, arguments=arguments))

        return deferred


class _Positions(_Repository):
    def __init__(self, inner: Any, backlog: Backlog) -> None:
        super().__init__("positions", PositionRepository, inner, backlog)
        self._known: dict[str, Position] = {}
        self._save = self._deferred("save")

    async def add(self, position: Position, *, events: Sequence[Event] = ()) -> None:
        await self._inner.add(position, events=events)  # never deferred: on disk first
        self._known[position.id] = position

    async def save(self, position: Position, *, events: Sequence[Event] = ()) -> None:
        self._known[position.id] = position
        await self._save(position, events=events)

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


class _Trailing(_Repository):
    def __init__(self, inner: Any, backlog: Backlog) -> None:
        super().__init__("trailing", TrailingRepository, inner, backlog)
        self._known: dict[str, TrailingState | None] = {}
        self._save = self._deferred("save")
        self._delete = self._deferred("delete")

    async def save(self, state: TrailingState) -> None:
        self._known[state.position_id] = state
        await self._save(state)

    async def delete(self, position_id: str) -> None:
        self._known[position_id] = None
        await self._delete(position_id)

    async def get(self, position_id: str) -> TrailingState | None:
        if position_id in self._known and len(self._backlog):
            return self._known[position_id]
        result: TrailingState | None = await self._inner.get(position_id)
        return result


class ResilientStore:
    """A `Store` that keeps trading state through a database outage (see the module doc).

    `spool` keeps the writes that wait on disk; without one they wait in memory only (a
    test, or a caller that accepts losing them to a crash)."""

    def __init__(self, inner: Store, *, spool: WriteSpool | None = None) -> None:
        self._inner = inner
        self.backlog = backlog = Backlog(inner, spool)
        # Each wrapper forwards every method of the repository it wraps, so it stands for
        # its port; which writes may wait is read from the port (`@may_wait`).
        self.positions: PositionRepository = _Positions(inner.positions, backlog)
        self.operations = cast(
            OperationRepository,
            _Repository("operations", OperationRepository, inner.operations, backlog),
        )
        self.orders = cast(
            OrderRepository, _Repository("orders", OrderRepository, inner.orders, backlog)
        )
        self.trailing = cast(TrailingRepository, _Trailing(inner.trailing, backlog))
        self.waves = cast(
            WaveRepository, _Repository("waves", WaveRepository, inner.waves, backlog)
        )
        self.signals = cast(
            SignalRepository, _Repository("signals", SignalRepository, inner.signals, backlog)
        )
        self.alerts = cast(
            AlertRepository, _Repository("alerts", AlertRepository, inner.alerts, backlog)
        )

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


def resilient(store: Store, *, spool: WriteSpool | None = None) -> ResilientStore:
    """`store` itself when it already is the resilient path, else that path around it."""
    return store if isinstance(store, ResilientStore) else ResilientStore(store, spool=spool)
