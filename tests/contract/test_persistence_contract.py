"""The persistence contract: every test runs against SQLite and a real PostgreSQL.

What is stored is read back through a raw connection of the database's own driver, not
through the adapter under test. Outages are real: PostgreSQL has the journal's connection
terminated and the server stopped and started again — the session's own throwaway server
(tests/conftest.py), never another; SQLite (no server) has its file locked by another
connection, which makes every write fail just as an unreachable server does.
"""

import asyncio
import json
import signal
import sqlite3
import sys
import textwrap
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tradecore.adapters.database import connect_store, migrate
from tradecore.adapters.journal import Journal, event_row
from tradecore.adapters.postgres import PostgresDatabase, PostgresEventWriter
from tradecore.adapters.serialization import dumps
from tradecore.adapters.sqlite import SqliteDatabase
from tradecore.domain.events import Event, EventType, Severity
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
from tradecore.domain.trailing import TrailingPhase, TrailingState
from tradecore.ports.alerts import Alert
from tradecore.ports.lock import AccountMismatch, LockHeld
from tradecore.ports.repositories import DuplicateOpenPosition, RecordMissing, StaleVersion
from tradecore.testing.pgserver import PostgresServer

T0 = datetime(2026, 11, 21, 9, 0, 0, 123456, tzinfo=UTC)
TINY = Decimal("0.00000001234")
LARGE = Decimal("123456789.123456789")
TABLES = "positions, operations, orders, trailing_stops, processed_waves, signals, events, alerts"
REPO_ROOT = Path(__file__).resolve().parents[2]

Database = PostgresDatabase | SqliteDatabase


@attrs.define
class Backend:
    kind: str
    url: str
    path: str | None = None  # SQLite file
    in_loop: bool = False  # virtual time's: SQLite on the loop's thread, PostgreSQL in step
    server: PostgresServer | None = None  # the session's own PostgreSQL, which we may stop

    async def open(self, *, apply_migrations: bool = True) -> Database:
        if self.path is not None:
            # A short busy timeout so a locked file fails writes quickly (the outage analogue).
            return await SqliteDatabase.connect(
                self.path,
                apply_migrations=apply_migrations,
                busy_timeout_ms=200,
                in_loop=self.in_loop,
            )
        return await connect_store(
            self.url, apply_migrations=apply_migrations, in_loop=self.in_loop
        )

    async def query(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        """Rows through a raw driver connection (SQL with `$1` placeholders)."""
        if self.path is not None:
            con = sqlite3.connect(self.path)
            con.row_factory = sqlite3.Row
            try:
                rows = con.execute(sql.replace("$", "?"), args).fetchall()
            finally:
                con.close()
            return [dict(r) for r in rows]
        conn = await asyncpg.connect(self.url)
        try:
            return [dict(r) for r in await conn.fetch(sql, *args)]
        finally:
            await conn.close()

    async def events(self, event_type: EventType | None = None) -> list[dict[str, Any]]:
        where = "" if event_type is None else f"WHERE event_type = '{event_type.value}'"
        data = "event_data" if self.path is not None else "event_data::text AS event_data"
        rows = await self.query(
            f"SELECT id, event_type, {data}, correlation_id, position_id, order_id, symbol, "
            f"exchange, severity, error_message, stack_trace, created_at FROM events {where} "
            "ORDER BY seq"
        )
        for row in rows:
            row["id"] = uuid.UUID(str(row["id"]))
            row["event_data"] = json.loads(row["event_data"])
            if isinstance(row["created_at"], str):
                row["created_at"] = datetime.fromisoformat(row["created_at"])
        return rows

    @asynccontextmanager
    async def outage(self, seconds: float) -> AsyncIterator[None]:
        """The database refuses every write for about `seconds`, then comes back."""
        if self.path is not None:
            async with _sqlite_locked(self.path, seconds):
                yield
            return
        assert self.server is not None, "only the session's own server may be stopped"
        try:
            await asyncio.to_thread(self.server.stop)
            await asyncio.sleep(seconds)
            yield
        finally:
            await asyncio.to_thread(self.server.restart)
            await _wait_for_postgres(self.url)


@asynccontextmanager
async def _sqlite_locked(path: str, seconds: float) -> AsyncIterator[None]:
    # Taken in a thread: the journal's transaction needs the event loop to finish and let go.
    holder = sqlite3.connect(path, isolation_level=None, timeout=10, check_same_thread=False)
    await asyncio.to_thread(holder.execute, "BEGIN EXCLUSIVE")
    try:
        await asyncio.sleep(seconds)
        yield
    finally:
        await asyncio.to_thread(holder.execute, "ROLLBACK")
        holder.close()


async def _wait_for_postgres(url: str, timeout: float = 60.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            conn = await asyncpg.connect(url, timeout=2)
            await conn.close()
            return
        except (TimeoutError, OSError, asyncpg.PostgresError):
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.2)


@pytest.fixture(
    params=[
        pytest.param("sqlite"),
        pytest.param("sqlite-in-loop"),
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("postgres-in-loop", marks=pytest.mark.postgres),
    ]
)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param.startswith("sqlite"):
        path = str(tmp_path / "tradecore.db")
        in_loop = request.param == "sqlite-in-loop"
        return Backend(kind="sqlite", url=f"sqlite:///{path}", path=path, in_loop=in_loop)
    server = request.getfixturevalue("postgres_server")
    url = request.getfixturevalue("postgres_url")
    in_loop = request.param == "postgres-in-loop"
    return Backend(kind="postgres", url=url, server=server, in_loop=in_loop)


@pytest.fixture
async def db(backend: Backend) -> AsyncIterator[Database]:
    database = await backend.open()
    if backend.kind == "postgres":
        await backend.query(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE")
        await backend.query("DROP TABLE IF EXISTS tradecore_account")  # bound by a lock test
    yield database
    await database.close()


async def until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition never became true"
        await asyncio.sleep(0.01)


def position(pid: str = "p1", symbol: str = "BTCUSDT", money: Decimal = LARGE) -> Position:
    return Position(
        id=pid,
        venue=Venue.BYBIT,
        symbol=symbol,
        side=Side.LONG,
        state=PositionState.PENDING_ENTRY,
        requested_quantity=money,
        quantity=money,
        entry_price=money,
        stop_price=money,
        exit_price=money,
        realized_pnl=-money,
        fees=money,
        funding=-money,
        created_at=T0,
        wave=T0.replace(minute=0, second=0, microsecond=0),
        stop_owner=StopOwner.INITIAL,
    )


def order(oid: str, money: Decimal, position_id: str = "p1") -> Order:
    return Order(
        venue=Venue.BYBIT,
        symbol="BTCUSDT",
        order_id=oid,
        client_order_id=f"tc-{position_id}-s0",
        side=OrderSide.SELL,
        type=OrderType.STOP_MARKET,
        quantity=money,
        status=OrderStatus.OPEN,
        filled=money,
        price=money,
        trigger_price=money,
        average_price=money,
        reduce_only=True,
        created_at=T0,
    )


def event(n: int, **fields: Any) -> Event:
    return Event(
        id=uuid.uuid4(),
        type=EventType.SIGNAL_RECEIVED,
        created_at=T0 + timedelta(milliseconds=n),
        data={"n": n},
        **fields,
    )


# --- money ------------------------------------------------------------------------------


@pytest.mark.parametrize("money", [TINY, LARGE])
async def test_money_comes_back_exactly_from_every_money_column(
    db: Database, backend: Backend, money: Decimal
) -> None:
    store = db.store
    await store.positions.add(position(money=money))
    await store.orders.record(order("o1", money), role=OrderRole.STOP, position_id="p1")
    wave = T0.replace(second=0, microsecond=0)
    signal = Signal(
        id="s1",
        symbol="BTCUSDT",
        venue=Venue.BYBIT,
        side=Side.LONG,
        score_week=money,
        score_month=money,
        wave=wave,
        created_at=T0,
    )
    await store.signals.add(signal, received_at=T0)
    trailing = TrailingState(
        position_id="p1",
        venue=Venue.BYBIT,
        symbol="BTCUSDT",
        side=Side.LONG,
        entry_price=money,
        quantity=money,
        opened_at=T0,
        best_price=money,
        stop_price=money,
    )
    await store.trailing.save(trailing)

    stored = await store.positions.get("p1")
    assert stored is not None
    for name in ("requested_quantity", "quantity", "entry_price", "stop_price", "exit_price"):
        assert getattr(stored, name) == money, name
    assert (stored.realized_pnl, stored.fees, stored.funding) == (-money, money, -money)
    [stored_order] = await store.orders.for_position("p1")
    for name in ("quantity", "filled", "price", "trigger_price", "average_price"):
        assert getattr(stored_order, name) == money, name
    [stored_signal] = await store.signals.for_wave(wave)
    assert (stored_signal.score_week, stored_signal.score_month) == (money, money)
    assert await store.trailing.get("p1") == trailing

    raw = await backend.query("SELECT entry_price, realized_pnl, fees, funding FROM positions")
    assert Decimal(str(raw[0]["entry_price"])) == money
    assert Decimal(str(raw[0]["realized_pnl"])) == -money
    assert Decimal(str(raw[0]["fees"])) == money
    assert Decimal(str(raw[0]["funding"])) == -money


async def test_closed_positions_lacking_their_pnl_are_listed_until_it_is_written(
    db: Database,
) -> None:
    store = db.store
    unfilled = attrs.evolve(position("p0", symbol="ETHUSDT"), realized_pnl=None, fees=None)
    await store.positions.add(unfilled)
    await store.positions.save(unfilled.advance(PositionState.FAILED, closed_at=T0))
    filled = attrs.evolve(position(), opened_at=T0, realized_pnl=None, fees=None)
    await store.positions.add(filled)
    await store.positions.save(filled.advance(PositionState.ENTRY_PLACED))
    assert await store.positions.unsettled() == []  # still open
    active = attrs.evolve(filled, state=PositionState.ACTIVE, version=5)
    await store.positions.save(active)
    closed = active.advance(PositionState.CLOSED, closed_at=T0)
    await store.positions.save(closed)
    assert [p.id for p in await store.positions.unsettled()] == ["p1"]
    settled = attrs.evolve(closed, realized_pnl=Decimal("-1.5"), fees=Decimal("0.1"), version=9)
    await store.positions.save(settled)
    assert await store.positions.unsettled() == []


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    money=st.decimals(
        min_value=Decimal("-1e15"),
        max_value=Decimal("1e15"),
        allow_nan=False,
        allow_infinity=False,
        places=18,
    )
)
async def test_any_decimal_survives_a_position_round_trip(db: Database, money: Decimal) -> None:
    pid = uuid.uuid4().hex
    await db.store.positions.add(position(pid, symbol=pid, money=money))
    stored = await db.store.positions.get(pid)
    assert stored is not None
    assert stored.entry_price == money
    assert stored.realized_pnl == -money


# --- transactions and repositories --------------------------------------------------------


class Crash(Exception):
    pass


async def test_a_crash_between_two_writes_of_one_transaction_leaves_neither(db: Database) -> None:
    operation = Operation(
        id="op1",
        kind=OperationKind.OPEN,
        venue=Venue.BYBIT,
        symbol="BTCUSDT",
        position_id="p1",
        started_at=T0,
    )
    with pytest.raises(Crash):
        async with db.store.transaction() as tx:
            await tx.positions.add(position())
            await tx.operations.start(operation)
            raise Crash
    assert await db.store.positions.get("p1") is None
    assert await db.store.operations.in_flight() == []


async def test_a_refused_second_write_rolls_back_the_first(db: Database) -> None:
    await db.store.positions.add(position("p1"))
    with pytest.raises(DuplicateOpenPosition):
        async with db.store.transaction() as tx:
            await tx.orders.record(order("o9", LARGE), role=OrderRole.STOP, position_id="p1")
            await tx.positions.add(position("p2"))  # same symbol, still open: refused
    assert await db.store.orders.for_position("p1") == []


async def test_the_writes_of_a_transaction_land_together(db: Database) -> None:
    operation = Operation(
        id="op1",
        kind=OperationKind.OPEN,
        venue=Venue.BYBIT,
        symbol="BTCUSDT",
        position_id="p1",
        started_at=T0,
        client_order_ids=("tc-p1-e0",),
    )
    async with db.store.transaction() as tx:
        await tx.operations.start(operation)  # before its position: the key is deferred
        await tx.positions.add(position())
        async with tx.transaction() as nested:
            await nested.orders.record(order("o1", TINY), role=OrderRole.STOP, position_id="p1")
    assert await db.store.operations.in_flight() == [operation]
    assert len(await db.store.orders.for_position("p1")) == 1


async def test_a_save_carrying_an_older_version_is_refused_as_stale(db: Database) -> None:
    opening = position()
    await db.store.positions.add(opening)
    placed = opening.advance(PositionState.ENTRY_PLACED)
    await db.store.positions.save(placed)
    with pytest.raises(StaleVersion):
        await db.store.positions.save(opening.advance(PositionState.FAILED))
    stored = await db.store.positions.get("p1")
    assert stored is not None
    assert stored.state is PositionState.ENTRY_PLACED


async def test_a_change_and_its_events_are_one_write(
    backend: Backend, db: Database, tmp_path: Path
) -> None:
    """Promise 2 (simulator, bybit seed 1607): a process that dies right after a change was
    stored must not leave it without its event, so the row and its events land together —
    and the journal, writing the same events when they are emitted, stores each once."""
    opening = position()
    opened = event(1, position_id="p1")
    await db.store.positions.add(opening, events=[opened])
    stopped = opening.with_stop(price=TINY, order_id="o1", owner=StopOwner.PROTECTION)
    placed = Event(
        id=uuid.uuid4(),
        type=EventType.STOP_LOSS_PLACED,
        created_at=T0 + timedelta(seconds=1),
        data={"price": TINY, "method": "adopted"},
        position_id="p1",
    )
    await db.store.positions.save(stopped, events=[placed])
    journal = start_journal(db, tmp_path)
    journal.emit(placed)  # the sink's copy, as the app emits it after the save
    await journal.close()
    rows = await backend.events()
    assert [r["id"] for r in rows] == [opened.id, placed.id]
    assert rows[1]["event_data"] == {"price": "0.00000001234", "method": "adopted"}
    assert rows[1]["created_at"] == placed.created_at


async def test_a_refused_change_stores_none_of_its_events(backend: Backend, db: Database) -> None:
    opening = position()
    await db.store.positions.add(opening)
    await db.store.positions.save(opening.advance(PositionState.ENTRY_PLACED))
    with pytest.raises(StaleVersion):  # another writer got there first: nothing of it lands
        await db.store.positions.save(opening.advance(PositionState.FAILED), events=[event(1)])
    with pytest.raises(DuplicateOpenPosition):
        await db.store.positions.add(position("p2"), events=[event(2)])
    with pytest.raises(RecordMissing):
        await db.store.positions.save(
            position("p9").advance(PositionState.FAILED), events=[event(3)]
        )
    assert await backend.events() == []


async def test_a_change_with_events_joins_the_transaction_around_it(
    backend: Backend, db: Database
) -> None:
    with pytest.raises(Crash):
        async with db.store.transaction() as tx:
            await tx.positions.add(position(), events=[event(1)])
            raise Crash
    assert await db.store.positions.get("p1") is None
    assert await backend.events() == []


async def test_a_symbol_holds_one_open_position_until_it_ends(db: Database) -> None:
    first = position("p1")
    await db.store.positions.add(first)
    with pytest.raises(DuplicateOpenPosition):
        await db.store.positions.add(position("p2"))
    await db.store.positions.save(first.advance(PositionState.FAILED))
    await db.store.positions.add(position("p2"))
    found = await db.store.positions.open_for(Venue.BYBIT, "BTCUSDT")
    assert found is not None
    assert found.id == "p2"
    assert [p.id for p in await db.store.positions.open_positions()] == ["p2"]


async def test_an_operation_is_in_flight_until_finished(db: Database) -> None:
    await db.store.positions.add(position())
    operation = Operation(
        id="op1",
        kind=OperationKind.OPEN,
        venue=Venue.BYBIT,
        symbol="BTCUSDT",
        position_id="p1",
        started_at=T0,
        client_order_ids=("tc-p1-e0", "tc-p1-s0"),
    )
    await db.store.operations.start(operation)
    assert await db.store.operations.in_flight() == [operation]
    await db.store.operations.finish("op1", at=T0, outcome="active")
    assert await db.store.operations.in_flight() == []


async def test_an_order_recorded_again_is_updated_not_duplicated(db: Database) -> None:
    await db.store.positions.add(position())
    placed = order("o1", LARGE)
    await db.store.orders.record(placed, role=OrderRole.STOP, position_id="p1")
    filled = attrs.evolve(placed, status=OrderStatus.TRIGGERED, updated_at=T0)
    await db.store.orders.record(filled, role=OrderRole.STOP, position_id="p1")
    assert await db.store.orders.for_position("p1") == [filled]
    assert await db.store.orders.by_client_id(Venue.BYBIT, "tc-p1-s0") == filled
    assert await db.store.orders.by_client_id(Venue.BINANCE, "tc-p1-s0") is None


async def test_trailing_state_survives_a_restart(backend: Backend, db: Database) -> None:
    await db.store.positions.add(position())
    state = TrailingState(
        position_id="p1",
        venue=Venue.BYBIT,
        symbol="BTCUSDT",
        side=Side.LONG,
        entry_price=LARGE,
        quantity=TINY,
        opened_at=T0,
        phase=TrailingPhase.ACTIVE,
        best_price=LARGE,
        stop_price=LARGE,
        activated_at=T0,
        update_count=3,
        last_update_at=T0,
        marks_until=T0,
    )
    await db.store.trailing.save(attrs.evolve(state, update_count=2))
    await db.store.trailing.save(state)
    reopened = await backend.open()
    try:
        assert await reopened.store.trailing.all() == [state]
        await reopened.store.trailing.delete("p1")
        assert await reopened.store.trailing.get("p1") is None
    finally:
        await reopened.close()


async def test_a_wave_is_claimed_once_even_across_restarts(backend: Backend, db: Database) -> None:
    wave = T0.replace(minute=45, second=0, microsecond=0)
    assert await db.store.waves.claim(wave, at=T0)
    assert not await db.store.waves.claim(wave, at=T0)
    # a claimant finds its own claim again (its first answer lost); no other one does
    other = T0.replace(minute=15)
    assert await db.store.waves.claim(other, at=T0, by="process-a")
    assert await db.store.waves.claim(other, at=T0, by="process-a")
    assert not await db.store.waves.claim(other, at=T0, by="process-b")
    assert not await db.store.waves.claim(other, at=T0)
    await db.store.waves.complete(other, at=T0, summary={})
    assert not await db.store.waves.claim(other, at=T0, by="process-a")  # done: once, ever
    await db.store.waves.complete(wave, at=T0, summary={"opened": 5, "failed": 1})
    reopened = await backend.open()
    try:
        assert not await reopened.store.waves.claim(wave, at=T0)
    finally:
        await reopened.close()


async def test_a_signal_received_twice_is_recorded_once(db: Database) -> None:
    wave = T0.replace(second=0, microsecond=0)
    signal = Signal(
        id="s1",
        symbol="ETHUSDT",
        venue=Venue.BINANCE,
        side=Side.SHORT,
        score_week=Decimal("71.5"),
        score_month=Decimal("64"),
        wave=wave,
        created_at=T0,
    )
    await db.store.signals.add(signal, received_at=T0)
    await db.store.signals.add(signal, received_at=T0 + timedelta(seconds=1))
    assert await db.store.signals.for_wave(wave) == [signal]


async def test_an_alert_is_recorded_with_its_delivery(backend: Backend, db: Database) -> None:
    alert = Alert(key="db-down", severity=Severity.CRITICAL, title="Database down", text="x")
    await db.store.alerts.add(alert, at=T0, delivered=False)
    [row] = await backend.query("SELECT key, severity, delivered FROM alerts")
    assert (row["key"], row["severity"], bool(row["delivered"])) == ("db-down", "CRITICAL", False)


# --- the journal ------------------------------------------------------------------------------


def start_journal(db: Database, tmp_path: Path, **options: Any) -> Journal:
    journal = Journal(db.event_writer(), str(tmp_path / "journal.spool"), **options)
    journal.start()
    return journal


async def test_an_event_is_stored_in_the_spec_columns(
    backend: Backend, db: Database, tmp_path: Path
) -> None:
    journal = start_journal(db, tmp_path)
    sent = Event(
        id=uuid.uuid4(),
        type=EventType.STOP_LOSS_FAILED,
        created_at=T0,
        data={"price": TINY, "attempt": 3, "at": T0},
        correlation_id="corr-1",
        position_id="p1",
        order_id="o1",
        symbol="BTCUSDT",
        exchange="bybit",
        error_message="rejected\x00",
        stack_trace="Traceback ...",
    )
    journal.emit(sent)
    await journal.close()
    [row] = await backend.events()
    assert row["id"] == sent.id
    assert row["event_type"] == "stop_loss_failed"
    assert row["event_data"] == {"price": "0.00000001234", "attempt": 3, "at": T0.isoformat()}
    assert row["severity"] == "WARNING"
    assert row["created_at"] == T0
    assert (row["correlation_id"], row["position_id"], row["order_id"]) == ("corr-1", "p1", "o1")
    assert (row["symbol"], row["exchange"], row["stack_trace"]) == (
        "BTCUSDT",
        "bybit",
        "Traceback ...",
    )
    assert row["error_message"] == "rejected\ufffd"


async def test_a_replayed_batch_creates_no_duplicate_rows(
    backend: Backend, db: Database, tmp_path: Path
) -> None:
    events = [event(n) for n in range(600)]
    writer = db.event_writer()
    await writer.write([event_row(e) for e in events[:300]])
    await writer.write([event_row(e) for e in events])  # the first half again, then the rest
    await writer.close()
    stored = await backend.events()
    assert [r["id"] for r in stored] == [e.id for e in events]


async def test_a_full_queue_spills_and_every_event_still_arrives_once_in_order(
    backend: Backend, db: Database, tmp_path: Path
) -> None:
    journal = start_journal(db, tmp_path, batch_size=100, max_queue=1000)
    events = [event(n) for n in range(5000)]
    for e in events:  # never yields: the writer cannot keep up, the queue overflows
        journal.emit(e)
    assert journal.stats.spilled > 0
    await journal.close()
    assert [r["id"] for r in await backend.events()] == [e.id for e in events]


class Producer:
    """Emits `per_tick` events every 5 ms until stopped, remembering their ids in order."""

    def __init__(self, journal: Journal, per_tick: int = 10):
        self.journal = journal
        self.per_tick = per_tick
        self.ids: list[uuid.UUID] = []
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while not self._stop.is_set():
            for _ in range(self.per_tick):
                e = event(len(self.ids))
                self.ids.append(e.id)
                self.journal.emit(e)
            await asyncio.sleep(0.005)

    async def stop(self) -> None:
        self._stop.set()
        assert self._task is not None
        await self._task


async def _journal_caught_up(journal: Journal) -> None:
    await until(lambda: journal.available and not journal.spool_pending, timeout=60)
    await journal.close()


async def test_killing_the_writers_connection_mid_stream_loses_and_duplicates_nothing(
    backend: Backend, db: Database, tmp_path: Path
) -> None:
    writer = db.event_writer()
    journal = Journal(writer, str(tmp_path / "journal.spool"), retry_initial=0.05)
    journal.start()
    producer = Producer(journal, per_tick=40)  # ~8,000 events/s: writes nearly back to back
    producer.start()
    for _ in range(4):
        await asyncio.sleep(0.1)
        if isinstance(writer, PostgresEventWriter):
            await until(lambda: writer.backend_pid is not None)
            killed = writer.backend_pid
            await backend.query("SELECT pg_terminate_backend($1)", killed)
            # An idle connection is simply reopened; one killed mid-batch is an outage.
            await until(lambda k=killed: writer.backend_pid not in (None, k), timeout=10)
        else:
            async with backend.outage(0.4):
                await until(lambda: not journal.available, timeout=10)
    await asyncio.sleep(0.1)
    await producer.stop()
    await _journal_caught_up(journal)
    assert [r["id"] for r in await backend.events(EventType.SIGNAL_RECEIVED)] == producer.ids
    outages = len(await backend.events(EventType.DATABASE_UNAVAILABLE))
    assert outages == len(await backend.events(EventType.DATABASE_RESTORED))


async def test_a_database_stopped_for_a_while_loses_nothing_and_replays_in_order(
    backend: Backend, db: Database, tmp_path: Path
) -> None:
    journal = start_journal(db, tmp_path, retry_initial=0.1, retry_max=0.5)
    producer = Producer(journal)
    producer.start()
    await asyncio.sleep(0.2)
    async with backend.outage(1.5):
        await until(lambda: not journal.available, timeout=10)
        emitted_during = len(producer.ids)
        assert journal.spool_pending
    await asyncio.sleep(0.2)
    await producer.stop()
    await _journal_caught_up(journal)
    stored = await backend.events()
    ids = [r["id"] for r in stored if r["event_type"] == "signal_received"]
    assert ids == producer.ids
    assert len(producer.ids) > emitted_during > 0
    types = [r["event_type"] for r in stored]
    assert types.count("database_unavailable") == 1
    assert types.count("database_restored") == 1
    assert types.index("database_unavailable") < types.index("database_restored")
    assert await db.store.positions.get("none") is None  # the store works again too


async def test_a_corrupt_spool_line_is_skipped_with_an_event(
    backend: Backend, db: Database, tmp_path: Path
) -> None:
    good = [event(n) for n in range(3)]
    (tmp_path / "journal.spool").write_text(
        f"{dumps(good[0])}\n{{not json\n{dumps(good[1])}\n\x00\x01\n{dumps(good[2])}\n"
    )
    journal = start_journal(db, tmp_path)
    await _journal_caught_up(journal)
    assert [r["id"] for r in await backend.events(EventType.SIGNAL_RECEIVED)] == [
        e.id for e in good
    ]
    corrupt = await backend.events(EventType.JOURNAL_SPOOL_CORRUPT)
    assert len(corrupt) == 2
    assert corrupt[0]["event_data"]["line"] == "{not json"


async def test_retention_deletes_only_events_older_than_the_cutoff(
    backend: Backend, db: Database, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    journal = start_journal(db, tmp_path)
    old = [attrs.evolve(event(n), created_at=now - timedelta(days=100)) for n in range(25)]
    older = [attrs.evolve(event(n), created_at=now - timedelta(days=200)) for n in range(7)]
    recent = [attrs.evolve(event(n), created_at=now - timedelta(days=1)) for n in range(5)]
    for e in old + recent:
        journal.emit(e)
    await journal.flush()
    deleted = await db.purge_events(older_than=now - timedelta(days=90), batch_size=10)
    assert deleted == 25
    assert [r["id"] for r in await backend.events()] == [e.id for e in recent]

    for e in older:
        journal.emit(e)
    await journal.close()
    if backend.kind == "postgres":  # the operators' SQL entry point, for cron / pg_cron
        [row] = await backend.query("SELECT tradecore_purge_events(interval '90 days', 3) AS n")
        assert row["n"] == 7
    else:
        assert await db.purge_events(older_than=now - timedelta(days=90)) == 7
    assert [r["id"] for r in await backend.events()] == [e.id for e in recent]


# --- migrations -------------------------------------------------------------------------------


async def test_migrations_run_once_and_are_recorded(
    request: pytest.FixtureRequest, backend: Backend, tmp_path: Path
) -> None:
    if backend.kind == "postgres":
        fresh = Backend(kind="postgres", url=request.getfixturevalue("postgres_database")())
    else:
        path = str(tmp_path / "fresh.db")
        fresh = Backend(kind="sqlite", url=f"sqlite:///{path}", path=path)
    first = await migrate(fresh.url)
    second = await migrate(fresh.url)
    assert [m.version for m in first] == [1, 2, 3, 4]
    assert second == ()
    rows = await fresh.query(
        "SELECT version, name, checksum FROM schema_migrations ORDER BY version"
    )
    assert [(r["version"], r["name"]) for r in rows] == [
        (1, "initial_schema"),
        (2, "position_fees_funding"),
        (3, "wave_claimant"),
        (4, "operation_target_price"),
    ]
    assert [r["checksum"] for r in rows] == [m.checksum for m in first]
    reopened = await fresh.open()  # start-up migrates too: nothing left to do
    try:
        assert await reopened.migrate() == ()
    finally:
        await reopened.close()


# --- the instance lock ------------------------------------------------------------------------


async def test_the_lock_excludes_a_second_holder_until_released(db: Database) -> None:
    first, second = db.instance_lock(), db.instance_lock()
    account = f"acct-{uuid.uuid4().hex[:8]}"
    await first.acquire(account)
    try:
        with pytest.raises(LockHeld, match=account):
            await second.acquire(account)
        other = db.instance_lock()
        with pytest.raises(AccountMismatch, match="own database"):  # the database is the first's
            await other.acquire(account + "-other")
    finally:
        await first.release()
    await second.acquire(account)
    await second.release()


_HOLDER = textwrap.dedent(
    """
    import asyncio, sys
    from tradecore.adapters.sqlite import SqliteDatabase
    from tradecore.adapters.database import connect_store
    from tradecore.ports.lock import LockHeld

    async def main(url, account):
        if url.startswith("sqlite:///"):
            db = await SqliteDatabase.connect(url[len("sqlite:///"):], apply_migrations=False)
        else:
            db = await connect_store(url, apply_migrations=False)
        lock = db.instance_lock()
        try:
            await lock.acquire(account)
            print("held", flush=True)
            await asyncio.sleep(120)
        except LockHeld as exc:
            print(exc, flush=True)
            return 3
        finally:
            await db.close()

    sys.exit(asyncio.run(main(sys.argv[1], sys.argv[2])))
    """
)


async def _spawn_holder(url: str, account: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _HOLDER,
        url,
        account,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=REPO_ROOT,
    )


async def test_the_lock_excludes_a_second_process_and_frees_when_its_holder_dies(
    backend: Backend, db: Database
) -> None:
    account = f"acct-{uuid.uuid4().hex[:8]}"
    holder = await _spawn_holder(backend.url, account)
    try:
        assert holder.stdout is not None
        line = await asyncio.wait_for(holder.stdout.readline(), timeout=30)
        if line.strip() != b"held":
            _, err = await holder.communicate()
            pytest.fail(f"the holder process did not take the lock: {line!r} {err[-2000:]!r}")
        lock = db.instance_lock()
        with pytest.raises(LockHeld, match="already running"):
            await lock.acquire(account)

        refused = await _spawn_holder(backend.url, account)
        out, _ = await asyncio.wait_for(refused.communicate(), timeout=30)
        assert refused.returncode == 3
        assert account.encode() in out
    finally:
        holder.send_signal(signal.SIGKILL)  # a crash: the lock must not outlive it
        await holder.wait()
    lock = db.instance_lock()
    deadline = asyncio.get_running_loop().time() + 10
    while True:
        try:
            await lock.acquire(account)
            break
        except LockHeld:
            assert asyncio.get_running_loop().time() < deadline, "lock outlived its holder"
            await asyncio.sleep(0.1)
    await lock.release()


async def test_a_process_that_dies_without_closing_the_database_still_exits(
    backend: Backend, db: Database
) -> None:
    # A supervisor restarts a crashed bot only if the crashed process actually exits.
    crash = (
        "import asyncio, sys\n"
        "from tradecore.adapters.database import connect_store\n"
        "held = []  # as a running bot's container holds it\n"
        "async def main():\n"
        "    held.append(await connect_store(sys.argv[1]))\n"
        "    raise SystemExit(7)\n"
        "asyncio.run(main())\n"
    )
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", crash, backend.url, cwd=REPO_ROOT, stderr=asyncio.subprocess.PIPE
    )
    try:
        await asyncio.wait_for(child.wait(), timeout=20)
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()
    assert child.returncode == 7


async def test_a_stop_replacement_keeps_the_level_it_moves_to(db: Database) -> None:
    # read back exactly (a restart that cannot look the new stop up takes this level)
    await db.store.positions.add(position())
    operation = Operation(
        id="op1",
        kind=OperationKind.REPLACE_STOP,
        venue=Venue.BYBIT,
        symbol="BTCUSDT",
        position_id="p1",
        started_at=T0,
        client_order_ids=("tc-op1-s0",),
        target_price=Decimal("0.0000123457"),
    )
    await db.store.operations.start(operation)
    [stored] = await db.store.operations.in_flight()
    assert stored.target_price == Decimal("0.0000123457")
    assert stored == operation
