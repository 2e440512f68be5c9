"""A position's change and the event that records it are one write (promise 2).

Found by the simulator beyond the CI seeds (bybit seed 1607): a person tightened a position's
stop by hand; the guard took the tighter level as the bot's, saved the position — and the
process died before the event saying so was emitted. The row held the new level, no event
did: the journal could not tell the bot's level was now the person's, and whoever reads the
events (an operator, an audit, the simulator's checker) held the bot to the older one.

The position's row and its events are now written in one transaction: a crash after the
save finds the event stored with the row; a crash before it finds neither. Killed at every
await of the guard's adoption (before and after each), on both venues and both databases,
the level the journal's events last recorded for the position is the level its row holds.
"""

import contextlib
import json
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import asyncpg
import pytest

from tradecore.adapters.journal import Journal
from tradecore.adapters.reporting.source import Reader
from tradecore.adapters.sql.executor import SqliteCodec
from tradecore.adapters.sqlite import SqliteDatabase
from tradecore.adapters.sqlite.executor import SqliteExecutor
from tradecore.app.kernel import Kernel
from tradecore.domain.events import EventType
from tradecore.domain.model import Side
from tradecore.domain.positions import Position, PositionState
from tradecore.ports.exchange import RejectReason
from tradecore.testing import FakeVenue, Fault, Op

from .conftest import ROUND_TRIP, Database, Opener
from .crash import Crash, Tripwire
from .harness import App, RecordingSink, build_app
from .test_crash import QTY, fresh, profile, tripped  # noqa: F401 (profile: a fixture)

_STOP_EVENTS = (EventType.STOP_LOSS_PLACED.value, EventType.STOP_LOSS_REPLACED.value)


async def stored_stop_events(database: Database) -> list[dict[str, Any]]:
    """The stop events in the database's events table, in the order they were stored."""
    sql = (
        "SELECT id, event_type, event_data, position_id, created_at AS at FROM events "
        f"WHERE event_type IN {_STOP_EVENTS!r} ORDER BY created_at"
    )
    if isinstance(database, SqliteDatabase):
        rows = [dict(row) for row in await database.connection.execute_fetchall(sql)]
    else:
        connection = await asyncpg.connect(database.dsn)  # type: ignore[attr-defined]
        try:
            rows = [dict(row) for row in await connection.fetch(sql)]
        finally:
            await connection.close()
    for row in rows:
        row["id"] = str(row["id"])
        data = row["event_data"]
        row["event_data"] = json.loads(data) if isinstance(data, str) else data
        at = row["at"]
        row["at"] = datetime.fromisoformat(at) if isinstance(at, str) else at
    return rows


def emitted_stop_events(*apps: App) -> list[dict[str, Any]]:
    return [
        {
            "id": str(e.id),
            "event_type": e.type.value,
            "event_data": json.loads(json.dumps(e.data, default=str)),
            "position_id": e.position_id,
            "at": e.created_at,
        }
        for app in apps
        for e in app.sink.events
        if e.type.value in _STOP_EVENTS
    ]


async def last_journaled_level(database: Database, position_id: str, *apps: App) -> Decimal:
    """The level the last stop event of the position records: the events each process
    emitted and the ones the database holds (a process's sink may have died with it)."""
    events = {e["id"]: e for e in emitted_stop_events(*apps)}
    for row in await stored_stop_events(database):
        events.setdefault(row["id"], row)
    mine = sorted(
        (e for e in events.values() if e["position_id"] == position_id), key=lambda e: e["at"]
    )
    assert mine, "no stop event recorded for the position"
    return Decimal(str(mine[-1]["event_data"]["price"]))


async def test_a_crash_anywhere_in_adopting_a_persons_tighter_stop_leaves_its_event(
    profile: str,  # noqa: F811
    open_database: Opener,
) -> None:
    checked = 0
    for at in range(1, 60):
        completed = True
        for after in (False, True):
            venue, database = await fresh(profile, open_database)
            setup = build_app(venue, database.store)
            opened = await setup.open("BTCUSDT", Side.LONG, QTY)
            assert opened.position is not None
            venue.move_stop("BTCUSDT", "49700")  # a person tightens the bot's stop by hand
            wire = Tripwire(at, after=after)
            dying = tripped(venue, database, wire)
            with contextlib.suppress(Crash):
                await dying.run(dying.guard.check())
            completed = completed and not wire.fired
            survivor = build_app(venue, database.store)
            await survivor.run(Kernel(survivor.parts).start(loops=False))
            row = await database.store.positions.get(opened.position.id)
            assert row is not None and row.stop_price == Decimal("49700")
            journaled = await last_journaled_level(
                database, opened.position.id, setup, dying, survivor
            )
            assert journaled == row.stop_price, (
                f"killed {'after' if after else 'before'} await {at}: the row holds "
                f"{row.stop_price}, the journal's events last say {journaled}"
            )
            checked += 1
            await database.close()
        if completed:
            break
    assert checked >= 6  # the adoption really has awaits to die at


class _DiesAfterTheSave:
    """A store whose process is killed right after it saved a row `fatal` picks."""

    def __init__(self, inner: Any, fatal: Callable[[Position], bool]) -> None:
        self._inner = inner
        self.positions = _Rows(inner.positions, fatal)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class _Rows:
    def __init__(self, inner: Any, fatal: Callable[[Position], bool]) -> None:
        self._inner = inner
        self._fatal = fatal

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def save(self, position: Any, *, events: Any = ()) -> None:
        await self._inner.save(position, events=events)
        if self._fatal(position):
            raise Crash("killed right after the save")


def _journal(database: SqliteDatabase, path: Path, *, flush_interval: float = 0.1) -> Journal:
    journal = Journal(database.event_writer(), str(path), flush_interval=flush_interval)
    journal.start()
    return journal


async def _all_stored(database: SqliteDatabase, dying: App, position_id: str) -> None:
    """Every event the dying process recorded for the position before the save it died
    after is in the database (the old stop's cancel, the entry's placement, ...)."""
    rows = await database.connection.execute_fetchall("SELECT id FROM events")
    stored = {str(r[0]) for r in rows}
    lost = [
        e.type.value
        for e in dying.sink.events
        if e.position_id == position_id and str(e.id) not in stored
    ]
    assert lost == [], f"recorded before the save, lost with the journal's queue: {lost}"


def _kill(journal: Journal) -> None:
    """The process is gone, its journal's unflushed queue with it."""
    assert journal._task is not None
    journal._task.cancel()


@pytest.mark.parametrize("profile_name", ["binance", "bybit"])
async def test_a_trailing_move_killed_before_the_journal_flushed_keeps_its_event(
    profile_name: str, tmp_path: Path
) -> None:
    """Review finding: a create-then-cancel emits `stop_loss_replaced` when the new stop
    stands (the venue's order), cancels the old one, then saves the row. A real kill takes
    the journal's unflushed queue with it (up to its flush interval): the row held the new
    level, no event did, and the restart — finding the row naming the new stop — journaled
    nothing. The save carries the event already emitted, so the row never has it alone."""
    venue = (FakeVenue.bybit if profile_name == "bybit" else FakeVenue.binance)(latency=ROUND_TRIP)
    database = await SqliteDatabase.connect(str(tmp_path / "journal.db"))
    first = _journal(database, tmp_path / "a.spool")
    setup = build_app(venue, database.store, sink=RecordingSink(first))
    opened = await setup.open("BTCUSDT", Side.LONG, QTY)
    assert opened.position is not None
    await first.close()

    level = Decimal("49700")
    queue_lost = _journal(database, tmp_path / "b.spool", flush_interval=5.0)
    store = _DiesAfterTheSave(database.store, lambda p: p.stop_price == level)
    dying = build_app(venue, cast(Any, store), sink=RecordingSink(queue_lost))
    with contextlib.suppress(Crash):
        await dying.run(
            dying.keeper.move_trailing(opened.position.id, "BTCUSDT", level, reason="trailing")
        )
    _kill(queue_lost)
    await _all_stored(database, dying, opened.position.id)

    last = _journal(database, tmp_path / "c.spool")
    survivor = build_app(venue, database.store, sink=RecordingSink(last))
    await survivor.run(Kernel(survivor.parts).start(loops=False))
    await last.close()
    row = await database.store.positions.get(opened.position.id)
    assert row is not None and row.stop_price == level
    journaled = await last_journaled_level(database, opened.position.id, setup, survivor)
    await database.close()
    assert journaled == row.stop_price, f"row {row.stop_price}, events last say {journaled}"


async def test_a_stop_the_guard_put_back_is_not_reported_bare_by_the_monitor(
    tmp_path: Path,
) -> None:
    """Review finding: an event stored with its change lands in the events table before
    events emitted earlier that the journal had not flushed yet, so the table's insertion
    order (`seq`) is not the order things happened. The monitor's "found bare" read by
    `seq`: a stop the guard put back (`stop_loss_placed`, stored with the row) read as
    older than the `unprotected_position_found` before it. Readers order by the event's
    own time."""
    venue = FakeVenue.bybit(latency=ROUND_TRIP)
    database = await SqliteDatabase.connect(str(tmp_path / "journal.db"))
    journal = Journal(database.event_writer(), str(tmp_path / "events.spool"))
    journal.start()
    app = build_app(venue, database.store, sink=RecordingSink(journal))
    opened = await app.open("BTCUSDT", Side.LONG, QTY)
    assert opened.position is not None
    await journal.flush()
    venue.cancel_stop("BTCUSDT")  # a person removes the stop
    await app.run(app.guard.check())  # unprotected_position_found, then the stop put back
    await journal.flush()
    assert venue.stops("BTCUSDT"), "the guard put the stop back"
    reader = Reader(SqliteExecutor(database.connection, database.lock), SqliteCodec(), None)
    bare = await reader.found_bare()
    await journal.close()
    await database.close()
    assert opened.position.id not in bare


@pytest.mark.parametrize("profile_name", ["binance", "bybit"])
@pytest.mark.parametrize(
    ("state", "event"),
    [
        (PositionState.ENTRY_PLACED, EventType.ENTRY_ORDER_FILLED),
        (PositionState.FAILED, EventType.ENTRY_ORDER_FAILED),
    ],
)
async def test_an_open_killed_before_the_journal_flushed_keeps_the_event_of_its_state(
    profile_name: str, state: PositionState, event: EventType, tmp_path: Path
) -> None:
    """The same for an open: its fill (or its failure) is emitted, then the row takes the
    state; a process killed after that save, its journal's queue lost, left a filled row
    whose fill no event recorded. The save carries the events already emitted."""
    venue = (FakeVenue.bybit if profile_name == "bybit" else FakeVenue.binance)(latency=ROUND_TRIP)
    if state is PositionState.FAILED:
        venue.inject(Fault.reject(RejectReason.INSUFFICIENT_BALANCE, Op.MARKET_ORDER))
    database = await SqliteDatabase.connect(str(tmp_path / "journal.db"))
    queue_lost = _journal(database, tmp_path / "a.spool", flush_interval=5.0)
    store = _DiesAfterTheSave(database.store, lambda p: p.state is state)
    dying = build_app(venue, cast(Any, store), sink=RecordingSink(queue_lost))
    with contextlib.suppress(Crash):
        await dying.open("BTCUSDT", Side.LONG, QTY)
    _kill(queue_lost)
    [(position_id,)] = await database.connection.execute_fetchall("SELECT id FROM positions")
    await _all_stored(database, dying, position_id)

    rows = await database.connection.execute_fetchall(
        "SELECT p.state, e.event_type FROM positions p LEFT JOIN events e "
        "ON e.position_id = p.id AND e.event_type = ?",
        (event.value,),
    )
    await database.close()
    assert [(r[0], r[1]) for r in rows] == [(state.value, event.value)]
