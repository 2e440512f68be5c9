"""Repositories: the journal of positions, operations, orders, trailing state, waves, signals,
alerts. The exchange is the source of truth; these record what tradecore did and decided.

`Store.transaction()` groups writes that must land together (e.g. a position's new state and
the end of its operation): all of them or none.

Money is stored exactly (Decimal in, the same Decimal out). Errors a caller can act on are the
`RepositoryError`s below; database trouble surfaces as the driver's own exception.
"""

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Protocol, runtime_checkable

from tradecore.domain.model import Venue
from tradecore.domain.orders import Order, OrderRole
from tradecore.domain.positions import Operation, Position
from tradecore.domain.signals import Signal
from tradecore.domain.trailing import TrailingState
from tradecore.ports.alerts import Alert


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
    async def add(self, position: Position) -> None:
        """Insert a new position; DuplicateOpenPosition if one is still open on its symbol."""
        ...

    async def save(self, position: Position) -> None:
        """Store the new state of an existing position.

        `position.version` must be greater than the stored one (`advance` and `with_stop` bump
        it); otherwise StaleVersion, because two writers changed the same position. A missing
        position is RecordMissing.
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
    async def start(self, operation: Operation) -> None: ...

    async def finish(self, operation_id: str, *, at: datetime, outcome: str) -> None:
        """Mark the operation finished; RecordMissing if there is no such operation."""
        ...

    async def in_flight(self) -> Sequence[Operation]: ...


class OrderRepository(Protocol):
    async def record(self, order: Order, *, role: OrderRole, position_id: str | None) -> None:
        """Insert or update the order (keyed by venue and exchange order id)."""
        ...

    async def for_position(self, position_id: str) -> Sequence[Order]: ...

    async def by_client_id(self, venue: Venue, client_order_id: str) -> Order | None:
        """The last recorded order with this client id on `venue`, or None."""
        ...


class TrailingRepository(Protocol):
    async def save(self, state: TrailingState) -> None:
        """Insert or replace the trailing state of `state.position_id`."""
        ...

    async def get(self, position_id: str) -> TrailingState | None: ...

    async def all(self) -> Sequence[TrailingState]: ...

    async def delete(self, position_id: str) -> None: ...


class WaveRepository(Protocol):
    async def claim(self, wave: datetime, *, at: datetime) -> bool:
        """Record the wave as processed; False if it already was (processed once, ever)."""
        ...

    async def complete(self, wave: datetime, *, at: datetime, summary: dict[str, int]) -> None: ...


class SignalRepository(Protocol):
    async def add(self, signal: Signal, *, received_at: datetime) -> None:
        """Record the signal; a signal id seen before is ignored."""
        ...

    async def for_wave(self, wave: datetime) -> Sequence[Signal]: ...


class AlertRepository(Protocol):
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
