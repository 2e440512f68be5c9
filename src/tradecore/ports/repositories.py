"""Repositories: the journal of positions, operations, orders, trailing state, waves, signals,
alerts. The exchange is the source of truth; these record what tradecore did and decided.

`Store.transaction()` groups writes that must land together (e.g. a position's new state and
the end of its operation): all of them or none.
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


class PositionRepository(Protocol):
    async def add(self, position: Position) -> None: ...

    async def save(self, position: Position) -> None:
        """Store the new state of an existing position."""
        ...

    async def get(self, position_id: str) -> Position | None: ...

    async def open_positions(self) -> Sequence[Position]:
        """Every position not in a terminal state (opening, active or closing)."""
        ...

    async def open_for(self, venue: Venue, symbol: str) -> Position | None: ...


class OperationRepository(Protocol):
    async def start(self, operation: Operation) -> None: ...

    async def finish(self, operation_id: str, *, at: datetime, outcome: str) -> None: ...

    async def in_flight(self) -> Sequence[Operation]: ...


class OrderRepository(Protocol):
    async def record(self, order: Order, *, role: OrderRole, position_id: str | None) -> None:
        """Insert or update the order (keyed by venue and exchange order id)."""
        ...

    async def for_position(self, position_id: str) -> Sequence[Order]: ...


class TrailingRepository(Protocol):
    async def save(self, state: TrailingState) -> None: ...

    async def get(self, position_id: str) -> TrailingState | None: ...

    async def all(self) -> Sequence[TrailingState]: ...

    async def delete(self, position_id: str) -> None: ...


class WaveRepository(Protocol):
    async def claim(self, wave: datetime, *, at: datetime) -> bool:
        """Record the wave as processed; False if it already was (processed once, ever)."""
        ...

    async def complete(self, wave: datetime, *, at: datetime, summary: dict[str, int]) -> None: ...


class SignalRepository(Protocol):
    async def add(self, signal: Signal, *, received_at: datetime) -> None: ...


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
        """A store whose writes commit together when the block exits, or not at all."""
        ...
