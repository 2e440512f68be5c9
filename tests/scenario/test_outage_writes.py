"""Writes through a database outage: every store write takes the one resilient path, what waits
is spooled durably and replayed by the catch-up loop, signal intake never stops, and a wave
whose check meets the outage runs when the database returns inside its window — or is skipped
with an event and an alert.
"""

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import attrs
import pytest

from tradecore.adapters.clock import VirtualClock
from tradecore.adapters.sqlite.database import SqliteDatabase
from tradecore.app.kernel import Kernel
from tradecore.app.resilient_store import ResilientStore
from tradecore.app.settings import TradingSettings, WaveSettings
from tradecore.domain.events import Event, EventType, Severity
from tradecore.domain.model import Side, Venue
from tradecore.domain.positions import Operation, OperationKind, Position, PositionState, StopOwner
from tradecore.domain.signals import Signal
from tradecore.ports.alerts import Alert
from tradecore.ports.repositories import StaleVersion, Store, StoreUnavailable
from tradecore.testing import FakeVenue

from .conftest import ROUND_TRIP, Database
from .harness import SETTINGS, build_app, many_markets, pass_time
from .proxy import StoreProxy

T0 = datetime(2026, 1, 1, 8, 0, tzinfo=UTC)


class Outage:
    """Switches the database off for the store calls that pass through it; `fail_after`
    lets that many calls through first (the database dies in the middle of a replay)."""

    def __init__(self) -> None:
        self.down = False
        self.fail_after: int | None = None

    async def call(self, call: Callable[[], Awaitable[Any]]) -> Any:
        if self.fail_after is not None:
            if self.fail_after == 0:
                self.down = True
                self.fail_after = None
            else:
                self.fail_after -= 1
        if self.down:
            raise StoreUnavailable("connection refused (the test cut the database)")
        return await call()


def signal(number: int, wave: datetime, *, symbol: str = "S01USDT") -> Signal:
    return Signal(
        id=f"sig{number}",
        symbol=symbol,
        venue=Venue.BINANCE,
        side=Side.LONG,
        score_week=Decimal(80 - number),
        score_month=Decimal(70),
        wave=wave,
        created_at=wave + timedelta(seconds=number),
    )


def operation(number: int) -> Operation:
    return Operation(
        id=f"op{number}",
        kind=OperationKind.REPLACE_STOP,
        venue=Venue.BINANCE,
        symbol="S01USDT",
        position_id=None,
        client_order_ids=(f"c{number}",),
        started_at=T0,
    )


async def alert_rows(database: Database) -> int:
    if isinstance(database, SqliteDatabase):
        rows = await database.connection.execute_fetchall("SELECT count(*) FROM alerts")
        return int(next(iter(rows))[0])
    import asyncpg

    connection = await asyncpg.connect(database.dsn)
    try:
        return int(await connection.fetchval("SELECT count(*) FROM alerts"))
    finally:
        await connection.close()


def durable_store(database: Database, outage: Outage, path: Path) -> ResilientStore:
    """A process's store: the database behind `outage`, writes that wait spooled at `path`."""
    from tradecore.adapters.journal import WriteSpoolFile

    return ResilientStore(
        cast(Store, StoreProxy(database.store, outage.call)), spool=WriteSpoolFile(path)
    )


async def test_writes_held_in_an_outage_survive_a_crash_and_land_exactly_once(
    database: Database, tmp_path: Path
) -> None:
    outage = Outage()
    path = tmp_path / "writes.spool"
    store = durable_store(database, outage, path)
    outage.down = True
    await store.signals.add(signal(1, T0), received_at=T0)
    await store.operations.start(operation(1))
    await store.operations.start(operation(2))
    await store.operations.finish("op1", at=T0, outcome="interrupted")
    await store.alerts.add(
        Alert(key="k", severity=Severity.ERROR, title="t", text="x"), at=T0, delivered=False
    )
    assert store.behind == 5
    del store  # the process crashes with every write still waiting

    outage.down = False
    outage.fail_after = 2  # the database dies again after two of them landed
    second = durable_store(database, outage, path)
    assert not await second.catch_up()
    del second  # and the process crashes again

    outage.down = False
    third = durable_store(database, outage, path)
    assert await third.catch_up()
    assert third.behind == 0
    assert [s.id for s in await database.store.signals.for_wave(T0)] == ["sig1"]
    assert [o.id for o in await database.store.operations.in_flight()] == ["op2"]
    assert await alert_rows(database) == 1

    fourth = durable_store(database, outage, path)  # a clean restart replays nothing
    assert await fourth.catch_up()
    assert fourth.behind == 0
    assert await alert_rows(database) == 1


async def stored_event_ids(database: Database) -> list[str]:
    if isinstance(database, SqliteDatabase):
        rows = await database.connection.execute_fetchall("SELECT id FROM events ORDER BY seq")
        return [str(row[0]) for row in rows]
    import asyncpg

    connection = await asyncpg.connect(database.dsn)
    try:
        return [str(r[0]) for r in await connection.fetch("SELECT id FROM events ORDER BY seq")]
    finally:
        await connection.close()


async def test_a_change_saved_in_an_outage_lands_with_its_event_after_a_crash(
    database: Database, tmp_path: Path
) -> None:
    """A position's change and its event are one write (promise 2) through an outage too:
    held together in the spool, landed together by the next process, each once."""
    position = Position(
        id="p1",
        venue=Venue.BINANCE,
        symbol="S01USDT",
        side=Side.LONG,
        state=PositionState.ACTIVE,
        requested_quantity=Decimal("1.5"),
        quantity=Decimal("1.5"),
        entry_price=Decimal("100"),
        created_at=T0,
        opened_at=T0,
    )
    await database.store.positions.add(position)
    moved = position.with_stop(price=Decimal("97.5"), order_id="o1", owner=StopOwner.TRAILING)
    replaced = Event(
        id=uuid.uuid4(),
        type=EventType.STOP_LOSS_REPLACED,
        created_at=T0,
        data={"price": Decimal("97.5"), "method": "create_then_cancel"},
        position_id="p1",
    )
    outage = Outage()
    path = tmp_path / "writes.spool"
    store = durable_store(database, outage, path)
    outage.down = True
    await store.positions.save(moved, events=[replaced])
    assert store.behind == 1
    del store  # the process crashes with the write still waiting

    outage.down = False
    second = durable_store(database, outage, path)
    assert await second.catch_up()
    assert await stored_event_ids(database) == [str(replaced.id)]
    stored = await database.store.positions.get("p1")
    assert stored is not None and stored.stop_price == Decimal("97.5")
    with pytest.raises(StaleVersion):  # saved once more: refused, its event not copied
        await second.positions.save(moved, events=[replaced])
    assert await stored_event_ids(database) == [str(replaced.id)]


class QueueSource:
    """A signal source the test feeds by hand."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[Signal | None] = asyncio.Queue()

    async def signals(self) -> AsyncIterator[Signal]:
        while (item := await self.queue.get()) is not None:
            yield item

    async def close(self) -> None:
        self.queue.put_nowait(None)


async def test_signal_intake_goes_on_through_an_outage_and_the_catch_up_stores_it(
    database: Database,
) -> None:
    outage = Outage()
    markets, marks = many_markets(3)
    venue = FakeVenue.binance(
        markets=markets, marks=marks, latency=ROUND_TRIP, clock=VirtualClock(T0)
    )
    app = build_app(venue, cast(Store, StoreProxy(database.store, outage.call)))
    source = QueueSource()
    kernel = Kernel(attrs.evolve(app.parts, signals=source))
    await app.run(kernel.start())
    # the next wave: the inbox holds it (no more than one wave ahead), and its check
    # (08:35) is far beyond the test's minute
    later = T0 + timedelta(minutes=15)

    outage.down = True
    source.queue.put_nowait(signal(1, later))
    await pass_time(app, 30)
    source.queue.put_nowait(signal(2, later))
    await pass_time(app, 30)
    outage.down = False
    await pass_time(app, 6)  # one catch-up period (5 s) and a little
    source.queue.put_nowait(signal(3, later))
    await pass_time(app, 1)

    stored: list[str] = []
    for _ in range(2400):  # real time: the signals loop takes it off the queue and writes it
        stored = sorted(s.id for s in await database.store.signals.for_wave(later))
        if len(stored) == 3:
            break
        # a plain sleep, not `app.run`: the driver would move virtual time on while the
        # write is in flight, and on a loaded machine (many polls) past the wave, which the
        # inbox then no longer holds (failed once in a background `make test`)
        await asyncio.sleep(0.025)
    assert stored == ["sig1", "sig2", "sig3"]
    assert kernel.services.store.behind == 0
    assert sorted(s.id for s in kernel.services.inbox.of(later)) == ["sig1", "sig2", "sig3"]
    await app.run(kernel.stop("test over"))


class Alerts:
    def __init__(self) -> None:
        self.sent: list[Alert] = []

    async def send(self, alert: Alert) -> bool:
        self.sent.append(alert)
        return True


WAVES = WaveSettings(
    length_seconds=60, check_offset_seconds=5, monitoring_window_seconds=30, poll_seconds=1
)


def wave_app(database: Database, outage: Outage, alerts: Alerts) -> Any:
    markets, marks = many_markets(5)
    venue = FakeVenue.binance(
        markets=markets,
        marks=marks,
        latency=ROUND_TRIP,
        balance="100000",
        clock=VirtualClock(T0 + timedelta(seconds=1)),
    )
    settings = TradingSettings(keeper=SETTINGS.keeper, waves=WAVES)
    store = cast(Store, StoreProxy(database.store, outage.call))
    return build_app(venue, store, settings=settings, alerter=alerts)


async def waves_for(app: Any, *, seconds: float, outage: Outage, back_after: float) -> None:
    """The wave loop for `seconds` of virtual time, the database back after `back_after`."""
    stopping = asyncio.Event()
    loop = asyncio.create_task(app.waves.run(stopping=stopping))
    await app.clock.sleep(back_after)
    outage.down = False
    await app.clock.sleep(seconds - back_after)
    stopping.set()
    await app.waves.idle()
    loop.cancel()
    await asyncio.gather(loop, return_exceptions=True)


async def test_a_wave_whose_check_meets_an_outage_runs_when_the_database_returns_in_its_window(
    database: Database,
) -> None:
    outage, alerts = Outage(), Alerts()
    app = wave_app(database, outage, alerts)
    wave = T0  # checked at T0 + 65 s (the wave before the minute that begins at T0 + 60 s)
    for number in range(3):
        app.services.inbox.put(signal(number, wave, symbol=f"S0{number}USDT"), at=app.clock.now())
    outage.down = True
    # the check at T0 + 65 s meets the outage; the database is back at T0 + 71 s, inside
    # the wave's 30 s window
    await app.run(waves_for(app, seconds=90, outage=outage, back_after=70))

    kinds = [e.type.value for e in app.sink.events]
    assert [e.data["wave"] for e in app.sink.events if e.type.value == "wave_completed"] == [wave]
    # the check at T0 + 5 s (the wave before) had no database in its whole window
    skipped = [e.data["wave"] for e in app.sink.events if e.type.value == "wave_skipped"]
    assert skipped == [wave - timedelta(minutes=1)]
    assert kinds.count("signal_executed") == 3


async def test_a_wave_whose_database_dies_after_its_claim_trades_its_signals_when_it_returns(
    database: Database,
) -> None:
    """The claim is written, then the database goes before the open positions are read: the
    check tried again (as `run` does inside the window) still has the wave's signals — taken
    from the inbox once — trades them, and gives each exactly one fate."""
    outage, alerts = Outage(), Alerts()
    app = wave_app(database, outage, alerts)
    wave = T0
    for number in range(3):
        app.services.inbox.put(signal(number, wave, symbol=f"S0{number}USDT"), at=app.clock.now())
    outage.fail_after = 1  # the claim passes; the database is gone for what follows

    async def first_try() -> None:
        with pytest.raises(StoreUnavailable):
            await app.waves.process(wave)

    await app.run(first_try())
    outage.down = False
    report = await app.run(app.waves.process(wave))

    events = app.sink.events
    assert report.signals == 3 and report.opened == 3
    assert [e.data["wave"] for e in events if e.type.value == "wave_completed"] == [wave]
    fates = [e.data.get("signal_id") for e in events if "fate" in e.data]
    assert sorted(fates) == ["sig0", "sig1", "sig2"]
    assert [e.type.value for e in events].count("signal_executed") == 3
    assert [e.type.value for e in events].count("wave_detected") == 1


async def test_a_wave_whose_window_passes_in_an_outage_is_skipped_with_an_event_and_an_alert(
    database: Database,
) -> None:
    outage, alerts = Outage(), Alerts()
    app = wave_app(database, outage, alerts)
    app.services.inbox.put(signal(1, T0), at=app.clock.now())
    outage.down = True
    # the check at T0 + 65 s and its whole 30 s window pass without the database
    await app.run(waves_for(app, seconds=120, outage=outage, back_after=110))

    skipped = [
        e for e in app.sink.events if e.type.value == "wave_skipped" and e.data["wave"] == T0
    ]
    assert len(skipped) == 1
    assert skipped[0].data["wave"] == T0 and "database" in skipped[0].data["reason"]
    assert [a.key for a in alerts.sent].count(f"wave-skipped-{T0:%Y%m%dT%H%M}") == 1
    assert not [e for e in app.sink.events if e.type.value == "signal_executed"]


class PickySignals:
    """The signals repository of a database that refuses one signal for good."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    async def add(self, signal: Signal, *, received_at: datetime) -> None:
        if signal.id == "sig2":
            raise ValueError("a check constraint refuses it")
        await self._inner.add(signal, received_at=received_at)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


async def test_a_held_write_the_database_refuses_for_good_is_reported_and_blocks_nothing(
    database: Database, tmp_path: Path
) -> None:
    outage = Outage()
    proxy = StoreProxy(database.store, outage.call)
    proxy.signals = PickySignals(proxy.signals)  # type: ignore[attr-defined]
    from tradecore.adapters.journal import WriteSpoolFile

    store = ResilientStore(cast(Store, proxy), spool=WriteSpoolFile(tmp_path / "w.spool"))
    refused: list[str] = []
    store.backlog.on_refused = lambda write, error: refused.append(write.arguments["signal"].id)
    outage.down = True
    for number in (1, 2, 3):
        await store.signals.add(signal(number, T0), received_at=T0)
    outage.down = False

    assert await store.catch_up()
    assert refused == ["sig2"]
    assert sorted(s.id for s in await database.store.signals.for_wave(T0)) == ["sig1", "sig3"]
