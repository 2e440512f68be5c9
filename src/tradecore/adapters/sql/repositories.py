"""The repositories of `ports.repositories`, written once in SQL both dialects accept.

Each takes an `Executor` (a pool, a connection, or a connection inside a transaction) and a
`Codec` for the values the dialects store differently.
"""

import json
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from typing import Any, TypeVar

from tradecore.adapters.journal.rows import EVENT_COLUMNS, safe_row
from tradecore.adapters.serialization import JSON, dumps
from tradecore.adapters.sql.executor import Codec, Executor, Row, UniqueViolation
from tradecore.domain.events import Event
from tradecore.domain.model import OrderSide, Side, Venue
from tradecore.domain.orders import Order, OrderRole, OrderStatus, OrderType
from tradecore.domain.positions import (
    Operation,
    OperationKind,
    Position,
    PositionState,
    StopOwner,
)
from tradecore.domain.signals import Signal
from tradecore.domain.trailing import TrailingState
from tradecore.ports.alerts import Alert
from tradecore.ports.repositories import DuplicateOpenPosition, RecordMissing, StaleVersion

_T = TypeVar("_T")
_TERMINAL = "('closed', 'failed', 'rolled_back')"

_POSITION_COLUMNS = (
    "id, exchange, symbol, side, state, requested_quantity, quantity, entry_price, stop_price, "
    "stop_order_id, stop_owner, signal_id, wave, created_at, opened_at, closed_at, exit_price, "
    "realized_pnl, close_reason, adopted, version, fees, funding"
)
_POSITION_COUNT = len(_POSITION_COLUMNS.split(","))
_VERSION = _POSITION_COLUMNS.split(", ").index("version") + 1
# an event stored with the change it records (the journal's own writer skips it later)
_INSERT_EVENT = (
    f"INSERT INTO events ({', '.join(EVENT_COLUMNS)}, recorded_at) "
    f"VALUES ({', '.join(f'${i}' for i in range(1, len(EVENT_COLUMNS) + 2))}) "
    "ON CONFLICT (id) DO NOTHING"
)

Begin = Callable[[], AbstractAsyncContextManager[Executor]]


def wall_clock() -> datetime:
    return datetime.now(UTC)


class SqlPositions:
    """`now` stamps `updated_at` and the `recorded_at` of events saved with a change (the
    store's clock: virtual time in a paper session). `begin` opens the transaction a save
    with events needs; None when `db` already is one."""

    def __init__(
        self,
        db: Executor,
        codec: Codec,
        now: Callable[[], datetime] = wall_clock,
        begin: Begin | None = None,
    ):
        self._db = db
        self._c = codec
        self._now = now
        self._begin = begin

    def _values(self, p: Position) -> tuple[Any, ...]:
        c = self._c
        return (
            p.id,
            p.venue.value,
            p.symbol,
            p.side.value,
            p.state.value,
            c.money(p.requested_quantity),
            c.money(p.quantity),
            c.money(p.entry_price),
            c.money(p.stop_price),
            p.stop_order_id,
            None if p.stop_owner is None else p.stop_owner.value,
            p.signal_id,
            c.time(p.wave),
            c.time(p.created_at),
            c.time(p.opened_at),
            c.time(p.closed_at),
            c.money(p.exit_price),
            c.money(p.realized_pnl),
            p.close_reason,
            c.flag(p.adopted),
            p.version,
            c.money(p.fees),
            c.money(p.funding),
        )

    def _position(self, r: Row) -> Position:
        c = self._c
        owner = r["stop_owner"]
        return Position(
            id=r["id"],
            venue=Venue(r["exchange"]),
            symbol=r["symbol"],
            side=Side(r["side"]),
            state=PositionState(r["state"]),
            requested_quantity=_required(c.money_out(r["requested_quantity"])),
            quantity=_required(c.money_out(r["quantity"])),
            entry_price=c.money_out(r["entry_price"]),
            stop_price=c.money_out(r["stop_price"]),
            stop_order_id=r["stop_order_id"],
            stop_owner=None if owner is None else StopOwner(owner),
            signal_id=r["signal_id"],
            wave=c.time_out(r["wave"]),
            created_at=_required(c.time_out(r["created_at"])),
            opened_at=c.time_out(r["opened_at"]),
            closed_at=c.time_out(r["closed_at"]),
            exit_price=c.money_out(r["exit_price"]),
            realized_pnl=c.money_out(r["realized_pnl"]),
            close_reason=r["close_reason"],
            adopted=bool(r["adopted"]),
            version=r["version"],
            fees=c.money_out(r["fees"]),
            funding=c.money_out(r["funding"]),
        )

    async def add(self, position: Position, *, events: Sequence[Event] = ()) -> None:
        if not events or self._begin is None:
            await self._add(self._db, position, events)
            return
        async with self._begin() as tx:  # the new position and its events: both or neither
            await self._add(tx, position, events)

    async def _add(self, db: Executor, position: Position, events: Sequence[Event]) -> None:
        placeholders = ", ".join(f"${i}" for i in range(1, _POSITION_COUNT + 2))
        now = self._now()
        try:
            await db.execute(
                f"INSERT INTO positions ({_POSITION_COLUMNS}, updated_at) VALUES ({placeholders})",
                *self._values(position),
                self._c.time(now),
            )
        except UniqueViolation as exc:
            if "symbol" in exc.detail or "one_open" in exc.detail:
                raise DuplicateOpenPosition(
                    f"a position on {position.venue.value} {position.symbol} is still open; "
                    f"refusing to record a second one ({position.id})"
                ) from None
            raise DuplicateOpenPosition(f"position {position.id} already exists") from None
        await self._events(db, events, now)

    async def save(self, position: Position, *, events: Sequence[Event] = ()) -> None:
        if not events or self._begin is None:
            await self._save(self._db, position, events)
            return
        async with self._begin() as tx:  # the change and its events: both or neither
            await self._save(tx, position, events)

    async def _save(self, db: Executor, position: Position, events: Sequence[Event]) -> None:
        sets = ", ".join(
            f"{name.strip()} = ${i}"
            for i, name in enumerate(_POSITION_COLUMNS.split(","), start=1)
            if i > 1
        )
        now = self._now()
        try:
            changed = await db.execute(
                f"UPDATE positions SET {sets}, updated_at = ${_POSITION_COUNT + 1} "
                f"WHERE id = $1 AND version < ${_VERSION}",
                *self._values(position),
                self._c.time(now),
            )
        except UniqueViolation:
            raise DuplicateOpenPosition(
                f"a position on {position.venue.value} {position.symbol} is still open; "
                f"position {position.id} cannot reopen"
            ) from None
        if changed:
            await self._events(db, events, now)
            return
        rows = await db.fetch("SELECT version FROM positions WHERE id = $1", position.id)
        if not rows:
            raise RecordMissing(f"position {position.id} does not exist; add it first")
        raise StaleVersion(
            f"position {position.id} is stored at version {rows[0]['version']}, the save "
            f"carries version {position.version}: another writer changed it first"
        )

    async def _events(self, db: Executor, events: Sequence[Event], now: datetime) -> None:
        """Store `events` (as the journal's writers store them) in `db`'s transaction."""
        for event in events:
            row = safe_row(event)
            await db.execute(
                _INSERT_EVENT,
                str(row[0]),
                *row[1:11],
                self._c.time(row[11]),
                self._c.recorded(now),
            )

    async def get(self, position_id: str) -> Position | None:
        rows = await self._db.fetch(
            f"SELECT {_POSITION_COLUMNS} FROM positions WHERE id = $1", position_id
        )
        return self._position(rows[0]) if rows else None

    async def open_positions(self) -> Sequence[Position]:
        rows = await self._db.fetch(
            f"SELECT {_POSITION_COLUMNS} FROM positions WHERE state NOT IN {_TERMINAL} "
            "ORDER BY created_at, id"
        )
        return [self._position(r) for r in rows]

    async def unsettled(self) -> Sequence[Position]:
        rows = await self._db.fetch(
            f"SELECT {_POSITION_COLUMNS} FROM positions "
            "WHERE state IN ('closed', 'rolled_back') AND opened_at IS NOT NULL "
            "AND (realized_pnl IS NULL OR fees IS NULL) ORDER BY closed_at, id"
        )
        return [self._position(r) for r in rows]

    async def open_for(self, venue: Venue, symbol: str) -> Position | None:
        rows = await self._db.fetch(
            f"SELECT {_POSITION_COLUMNS} FROM positions "
            f"WHERE exchange = $1 AND symbol = $2 AND state NOT IN {_TERMINAL}",
            venue.value,
            symbol,
        )
        return self._position(rows[0]) if rows else None


_OPERATION_COLUMNS = (
    "id, kind, exchange, symbol, position_id, client_order_ids, started_at, finished_at, outcome, "
    "target_price"
)


class SqlOperations:
    def __init__(self, db: Executor, codec: Codec):
        self._db = db
        self._c = codec

    async def start(self, operation: Operation) -> None:
        c = self._c
        await self._db.execute(
            f"INSERT INTO operations ({_OPERATION_COLUMNS}) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) "
            "ON CONFLICT (id) DO NOTHING",  # a replayed start (a write that waited) is a no-op
            operation.id,
            operation.kind.value,
            operation.venue.value,
            operation.symbol,
            operation.position_id,
            json.dumps(list(operation.client_order_ids)),
            c.time(operation.started_at),
            c.time(operation.finished_at),
            operation.outcome,
            c.money(operation.target_price),
        )

    async def finish(self, operation_id: str, *, at: datetime, outcome: str) -> None:
        changed = await self._db.execute(
            "UPDATE operations SET finished_at = $2, outcome = $3 WHERE id = $1",
            operation_id,
            self._c.time(at),
            outcome,
        )
        if not changed:
            raise RecordMissing(f"operation {operation_id} does not exist")

    async def in_flight(self) -> Sequence[Operation]:
        rows = await self._db.fetch(
            f"SELECT {_OPERATION_COLUMNS} FROM operations WHERE finished_at IS NULL "
            "ORDER BY started_at, id"
        )
        return [self._operation(r) for r in rows]

    def _operation(self, r: Row) -> Operation:
        c = self._c
        return Operation(
            id=r["id"],
            kind=OperationKind(r["kind"]),
            venue=Venue(r["exchange"]),
            symbol=r["symbol"],
            position_id=r["position_id"],
            started_at=_required(c.time_out(r["started_at"])),
            client_order_ids=tuple(json.loads(r["client_order_ids"])),
            finished_at=c.time_out(r["finished_at"]),
            outcome=r["outcome"],
            target_price=c.money_out(r["target_price"]),
        )


_ORDER_COLUMNS = (
    "exchange, order_id, client_order_id, symbol, role, side, type, status, quantity, filled, "
    "price, trigger_price, average_price, reduce_only, close_position, position_idx, "
    "position_id, created_at, updated_at"
)


class SqlOrders:
    def __init__(self, db: Executor, codec: Codec):
        self._db = db
        self._c = codec

    async def record(self, order: Order, *, role: OrderRole, position_id: str | None) -> None:
        c = self._c
        columns = [name.strip() for name in _ORDER_COLUMNS.split(",")]
        updates = ", ".join(f"{n} = excluded.{n}" for n in columns[2:])
        placeholders = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
        await self._db.execute(
            f"INSERT INTO orders ({_ORDER_COLUMNS}) VALUES ({placeholders}) "
            f"ON CONFLICT (exchange, order_id) DO UPDATE SET {updates}",
            order.venue.value,
            order.order_id,
            order.client_order_id,
            order.symbol,
            role.value,
            order.side.value,
            order.type.value,
            order.status.value,
            c.money(order.quantity),
            c.money(order.filled),
            c.money(order.price),
            c.money(order.trigger_price),
            c.money(order.average_price),
            c.flag(order.reduce_only),
            c.flag(order.close_position),
            order.position_idx,
            position_id,
            c.time(order.created_at),
            c.time(order.updated_at),
        )

    async def for_position(self, position_id: str) -> Sequence[Order]:
        rows = await self._db.fetch(
            f"SELECT {_ORDER_COLUMNS} FROM orders WHERE position_id = $1 "
            "ORDER BY created_at NULLS LAST, order_id",
            position_id,
        )
        return [self._order(r) for r in rows]

    async def by_client_id(self, venue: Venue, client_order_id: str) -> Order | None:
        rows = await self._db.fetch(
            f"SELECT {_ORDER_COLUMNS} FROM orders WHERE exchange = $1 AND client_order_id = $2 "
            "ORDER BY updated_at DESC NULLS LAST, created_at DESC NULLS LAST LIMIT 1",
            venue.value,
            client_order_id,
        )
        return self._order(rows[0]) if rows else None

    def _order(self, r: Row) -> Order:
        c = self._c
        return Order(
            venue=Venue(r["exchange"]),
            symbol=r["symbol"],
            order_id=r["order_id"],
            client_order_id=r["client_order_id"],
            side=OrderSide(r["side"]),
            type=OrderType(r["type"]),
            quantity=_required(c.money_out(r["quantity"])),
            status=OrderStatus(r["status"]),
            filled=_required(c.money_out(r["filled"])),
            price=c.money_out(r["price"]),
            trigger_price=c.money_out(r["trigger_price"]),
            average_price=c.money_out(r["average_price"]),
            reduce_only=bool(r["reduce_only"]),
            close_position=bool(r["close_position"]),
            position_idx=r["position_idx"],
            created_at=c.time_out(r["created_at"]),
            updated_at=c.time_out(r["updated_at"]),
        )


class SqlTrailing:
    """Trailing state stored whole as JSON, so fields added to TrailingState need no migration."""

    def __init__(self, db: Executor, codec: Codec, now: Callable[[], datetime] = wall_clock):
        self._db = db
        self._c = codec
        self._now = now

    async def save(self, state: TrailingState) -> None:
        await self._db.execute(
            "INSERT INTO trailing_stops (position_id, exchange, symbol, phase, state, updated_at) "
            "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (position_id) DO UPDATE SET "
            "exchange = excluded.exchange, symbol = excluded.symbol, phase = excluded.phase, "
            "state = excluded.state, updated_at = excluded.updated_at",
            state.position_id,
            state.venue.value,
            state.symbol,
            state.phase.value,
            dumps(state),
            self._c.time(self._now()),
        )

    async def get(self, position_id: str) -> TrailingState | None:
        rows = await self._db.fetch(
            "SELECT state FROM trailing_stops WHERE position_id = $1", position_id
        )
        return JSON.structure(json.loads(rows[0]["state"]), TrailingState) if rows else None

    async def all(self) -> Sequence[TrailingState]:
        rows = await self._db.fetch("SELECT state FROM trailing_stops ORDER BY position_id")
        return [JSON.structure(json.loads(r["state"]), TrailingState) for r in rows]

    async def delete(self, position_id: str) -> None:
        await self._db.execute("DELETE FROM trailing_stops WHERE position_id = $1", position_id)


class SqlWaves:
    def __init__(self, db: Executor, codec: Codec):
        self._db = db
        self._c = codec

    async def claim(self, wave: datetime, *, at: datetime, by: str = "") -> bool:
        changed = await self._db.execute(
            "INSERT INTO processed_waves (wave, claimed_at, claimed_by) VALUES ($1, $2, $3) "
            "ON CONFLICT (wave) DO NOTHING",
            self._c.time(wave),
            self._c.time(at),
            by or None,
        )
        if changed == 1:
            return True
        if not by:
            return False
        rows = await self._db.fetch(
            "SELECT claimed_by FROM processed_waves WHERE wave = $1 AND completed_at IS NULL",
            self._c.time(wave),
        )
        return bool(rows) and rows[0]["claimed_by"] == by

    async def complete(self, wave: datetime, *, at: datetime, summary: dict[str, int]) -> None:
        changed = await self._db.execute(
            "UPDATE processed_waves SET completed_at = $2, summary = $3 WHERE wave = $1",
            self._c.time(wave),
            self._c.time(at),
            json.dumps(summary, sort_keys=True),
        )
        if not changed:
            raise RecordMissing(f"wave {wave.isoformat()} was never claimed")


class SqlSignals:
    def __init__(self, db: Executor, codec: Codec):
        self._db = db
        self._c = codec

    async def add(self, signal: Signal, *, received_at: datetime) -> None:
        c = self._c
        await self._db.execute(
            "INSERT INTO signals (id, symbol, exchange, side, score_week, score_month, wave, "
            "created_at, received_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) "
            "ON CONFLICT (id) DO NOTHING",
            signal.id,
            signal.symbol,
            signal.venue.value,
            signal.side.value,
            c.money(signal.score_week),
            c.money(signal.score_month),
            c.time(signal.wave),
            c.time(signal.created_at),
            c.time(received_at),
        )

    async def for_wave(self, wave: datetime) -> Sequence[Signal]:
        c = self._c
        rows = await self._db.fetch(
            "SELECT id, symbol, exchange, side, score_week, score_month, wave, created_at "
            "FROM signals WHERE wave = $1 ORDER BY received_at, id",
            c.time(wave),
        )
        return [
            Signal(
                id=r["id"],
                symbol=r["symbol"],
                venue=Venue(r["exchange"]),
                side=Side(r["side"]),
                score_week=_required(c.money_out(r["score_week"])),
                score_month=_required(c.money_out(r["score_month"])),
                wave=_required(c.time_out(r["wave"])),
                created_at=_required(c.time_out(r["created_at"])),
            )
            for r in rows
        ]


class SqlAlerts:
    def __init__(self, db: Executor, codec: Codec):
        self._db = db
        self._c = codec

    async def add(self, alert: Alert, *, at: datetime, delivered: bool) -> None:
        await self._db.execute(
            "INSERT INTO alerts (key, severity, title, text, delivered, created_at) "
            "VALUES ($1, $2, $3, $4, $5, $6)",
            alert.key,
            alert.severity.name,
            alert.title,
            alert.text,
            self._c.flag(delivered),
            self._c.time(at),
        )


def _required(value: _T | None) -> _T:
    if value is None:
        raise ValueError("a NOT NULL column came back NULL")
    return value
