"""Repositories: the journal of positions, operations, orders, trailing state, waves, signals,
alerts. The exchange is the source of truth; these record what tradecore did and decided.

`Store.transaction()` groups writes that must land together (e.g. a position's new state and
the end of its operation): all of them or none.

Money is stored exactly (Decimal in, the same Decimal out). Errors a caller can act on are the
`RepositoryError`s below; database trouble surfaces as the driver's own exception.
"""

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any, Protocol, TypeVar, runtime_checkable

import attrs

from tradecore.domain.events import Event
from tradecore.domain.model import Venue
from tradecore.domain.orders import Order, OrderRole
from tradecore.domain.positions import Operation, Position
from tradecore.domain.signals import Signal
from tradecore.domain.trailing import TrailingState
from tradecore.ports.alerts import Alert

_Write = TypeVar("_Write", bound=Callable[..., Any])


def may_wait(write: _Write) -> _Write:
    """Marks a write of the port as one that may wait for the database.

    Such a write records what already happened on the venue or outside (a position's new
    state, a stop, an order, a signal, an alert): while the database is down it is held in
    order — spooled to disk, so a crash loses nothing — and replayed when the database
    returns. It must be safe to replay: a write that already landed, applied again, changes
    nothing. A write without the mark (a new position's intent, claiming a wave) must reach
    the database before its caller goes on, or raise `StoreUnavailable`.
    """
    write.may_wait = True  # type: ignore[attr-defined]
    return write


def waits(port: type, name: str) -> bool:
    """Whether the write `name` of the repository port `port` may wait (see `may_wait`)."""
    return getattr(getattr(port, name, None), "may_wait", False) is True


@attrs.frozen(kw_only=True)
class HeldWrite:
    """A write that waits for the database: `Store.<repository>.<method>(**arguments)`."""

    repository: str
    method: str
    arguments: Mapping[str, Any]


class WriteSpool(Protocol):
    """Where writes that wait for the database are kept durably, oldest first, until they land.

    `hold` returns once the write is on disk. `held` gives every write still waiting — from
    this process and from one that crashed before they landed — in the order they were held.
    `landed(n)` records that the oldest `n` of them reached the database; a crash between a
    write landing and `landed` replays that write once more (writes that wait are idempotent).
    """

    def hold(self, write: HeldWrite) -> None: ...

    def held(self) -> Sequence[HeldWrite]: ...

    def landed(self, count: int) -> None: ...


class StoreUnavailable(Exception):
    """The database cannot be reached right now (connection refused or lost, server down,
    file locked). Nothing was written by the call that raised it; retrying later may help."""


class RepositoryError(Exception):
    """A write the store refuses because of what is already stored."""


class DuplicateOpenPosition(RepositoryError):
    """A position not in a terminal state already exists for this (exchange, symbol)."""


class StaleVersion(RepositoryError):
    """The stored position has a version >= the one being saved: another writer got there first."""


class RecordMissing(RepositoryError):
    """The record to change does not exist."""


class PositionRepository(Protocol):
    async def add(self, position: Position, *, events: Sequence[Event] = ()) -> None:
        """Insert a new position; DuplicateOpenPosition if one is still open on its symbol.
        `events` record it and land with it, or neither does (see `save`)."""
        ...

    @may_wait
    async def save(self, position: Position, *, events: Sequence[Event] = ()) -> None:
        """Store the new state of an existing position, and `events` — the events that
        record this change — with it, in one transaction: both land or neither does, so a
        process that dies after the save cannot leave a change without its event (promise
        2). An event already stored under its id is skipped (the journal writes the same
        events again when they are emitted; a replay stores nothing twice).

        `position.version` must be greater than the stored one (`advance` and `with_stop` bump
        it); otherwise StaleVersion, because two writers changed the same position, and none
        of `events` is stored. A missing position is RecordMissing.
        """
        ...

    async def get(self, position_id: str) -> Position | None: ...

    async def open_positions(self) -> Sequence[Position]:
        """Every position not in a terminal state (opening, active or closing)."""
        ...

    async def open_for(self, venue: Venue, symbol: str) -> Position | None: ...

    async def unsettled(self) -> Sequence[Position]:
        """Positions closed (or rolled back) after a fill whose exit price, fees and realized
        PnL are not journaled yet (`Position.awaits_settlement`), oldest close first."""
        ...


class OperationRepository(Protocol):
    @may_wait
    async def start(self, operation: Operation) -> None:
        """Record the operation as started; one already stored under its id is left as it is
        (a start replayed after an outage changes nothing)."""
        ...

    @may_wait
    async def finish(self, operation_id: str, *, at: datetime, outcome: str) -> None:
        """Mark the operation finished; RecordMissing if there is no such operation."""
        ...

    async def in_flight(self) -> Sequence[Operation]: ...


class OrderRepository(Protocol):
    @may_wait
    async def record(self, order: Order, *, role: OrderRole, position_id: str | None) -> None:
        """Insert or update the order (keyed by venue and exchange order id)."""
        ...

    async def for_position(self, position_id: str) -> Sequence[Order]: ...

    async def by_client_id(self, venue: Venue, client_order_id: str) -> Order | None:
        """The last recorded order with this client id on `venue`, or None."""
        ...


class TrailingRepository(Protocol):
    @may_wait
    async def save(self, state: TrailingState) -> None:
        """Insert or replace the trailing state of `state.position_id`."""
        ...

    async def get(self, position_id: str) -> TrailingState | None: ...

    async def all(self) -> Sequence[TrailingState]: ...

    @may_wait
    async def delete(self, position_id: str) -> None: ...


class WaveRepository(Protocol):
    async def claim(self, wave: datetime, *, at: datetime, by: str = "") -> bool:
        """Record the wave as processed by claimant `by`; False if it already was (processed
        once, ever) — unless claimant `by` (not empty) made that claim and has not completed
        the wave: a claim whose answer was lost after its commit is found again as its own."""
        ...

    @may_wait
    async def complete(self, wave: datetime, *, at: datetime, summary: dict[str, int]) -> None: ...


class SignalRepository(Protocol):
    @may_wait
    async def add(self, signal: Signal, *, received_at: datetime) -> None:
        """Record the signal; a signal id seen before is ignored."""
        ...

    async def for_wave(self, wave: datetime) -> Sequence[Signal]: ...


class AlertRepository(Protocol):
    @may_wait
    async def add(self, alert: Alert, *, at: datetime, delivered: bool) -> None: ...


@runtime_checkable
class Store(Protocol):
    positions: PositionRepository
    operations: OperationRepository
    orders: OrderRepository
    trailing: TrailingRepository
    waves: WaveRepository
    signals: SignalRepository
    alerts: AlertRepository

    def transaction(self) -> AbstractAsyncContextManager["Store"]:
        """A store whose writes commit together when the block exits, or not at all.

        An exception leaving the block rolls every write in it back. Inside the block, use the
        store it yields; a nested `transaction()` on that store joins the outer one.
        """
        ...
