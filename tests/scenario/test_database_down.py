"""The database down for 60 s of virtual time while trading.

Trading continues: the trailing stop keeps moving on the venue, every position keeps exactly
one stop, the protection guard reports it cannot read the journal instead of acting on half
a picture, and a new open is refused (its intent cannot be stored, so a crash could double
it). When the database returns, the journal catches up: positions, stops and trailing state
agree with the venue, and every event emitted during the outage is in the events table,
exactly once.
"""

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, cast

import asyncpg

from tradecore.adapters.journal import BatchWriter, Journal
from tradecore.adapters.postgres.database import PostgresDatabase
from tradecore.adapters.sqlite.database import SqliteDatabase
from tradecore.adapters.virtual_time import AroundPort
from tradecore.domain.events import EventType
from tradecore.domain.model import Side
from tradecore.ports.repositories import Store, StoreUnavailable
from tradecore.testing import FakeVenue

from .conftest import Database
from .harness import RecordingSink, build_app, follow_marks, pass_time
from .invariants import journal_problems, stop_problems
from .proxy import StoreProxy


class Outage:
    """Switches the database off for everything the application and the journal ask of it."""

    def __init__(self) -> None:
        self.down = False

    async def store_call(self, call: Callable[[], Awaitable[Any]]) -> Any:
        if self.down:
            raise StoreUnavailable("connection refused (the test cut the database)")
        return await call()

    async def journal_call(self, call: Callable[[], Awaitable[Any]]) -> Any:
        if self.down:
            raise ConnectionRefusedError("connection refused (the test cut the database)")
        return await call()


async def replayed(journal: Journal, *, within: float = 15.0) -> None:
    """Wait (real time: the journal probes the database on its own backoff) for the replay."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while journal.stats.replayed < journal.stats.spooled:
        assert loop.time() < deadline, f"spool not replayed: {journal.stats}"
        await asyncio.sleep(0.02)
    await journal.flush()


async def stored_events_of(database: Database) -> list[tuple[str, str]]:
    """(id, type) of every row in the events table."""
    sql = "SELECT id, event_type FROM events"
    if isinstance(database, SqliteDatabase):
        rows = await database.connection.execute_fetchall(sql)
        return [(str(row[0]), str(row[1])) for row in rows]
    connection = await asyncpg.connect(cast(PostgresDatabase, database).dsn)
    try:
        return [(str(row["id"]), row["event_type"]) for row in await connection.fetch(sql)]
    finally:
        await connection.close()


async def test_sixty_seconds_without_the_database_lose_nothing_and_leave_nothing_bare(
    venue: FakeVenue, database: Database, tmp_path: Path
) -> None:
    outage = Outage()
    cable = cast(BatchWriter, AroundPort(database.event_writer(), outage.journal_call))
    journal = Journal(cable, str(tmp_path / "events.spool"))
    journal.start()
    sink = RecordingSink(journal)
    store = cast(Store, StoreProxy(database.store, outage.store_call))
    app = build_app(venue, store, sink=sink)
    follower = asyncio.create_task(follow_marks(app, ["BTCUSDT"]))
    btc = await app.open("BTCUSDT", Side.LONG, "0.004")
    eth = await app.open("ETHUSDT", Side.SHORT, "0.1")
    assert btc.position is not None and eth.position is not None
    await app.trailing.start(btc.position)
    first_stop = app.venue.stops("BTCUSDT")[0].trigger_price

    outage.down = True
    for price in ("50400", "50800", "51200", "51600"):
        await app.venue.set_mark("BTCUSDT", price)
        await pass_time(app, 15)
    refused = await app.open("SOLUSDT", Side.LONG, "1")
    guarded = await app.run(app.guard.check())
    await journal.flush()  # the journal tries the database, finds it gone, spools

    moved_stop = app.venue.stops("BTCUSDT")[0].trigger_price
    assert moved_stop is not None and first_stop is not None and moved_stop > first_stop
    assert stop_problems(venue) == []
    assert not refused.opened and "database unavailable" in refused.reason
    assert app.venue.position("SOLUSDT") is None
    assert guarded.skipped and sink.of(EventType.HEALTH_CHECK_FAILED)
    assert app.services.store.behind > 0
    assert journal.stats.spooled > 0 and journal.stats.written < journal.stats.emitted

    outage.down = False
    assert await app.run(app.services.store.catch_up())
    await replayed(journal)

    assert await journal_problems(venue, database.store) == []
    stored = await database.store.positions.get(btc.position.id)
    assert stored is not None and stored.stop_price == moved_stop
    trailing = await database.store.trailing.get(btc.position.id)
    assert trailing is not None and trailing.stop_price == moved_stop
    stored_events = await stored_events_of(database)
    ids = [event_id for event_id, _ in stored_events]
    assert len(ids) == len(set(ids))  # none twice
    assert {str(e.id) for e in sink.events} <= set(ids)  # none lost
    about_itself = [kind for _, kind in stored_events]
    assert "database_unavailable" in about_itself and "database_restored" in about_itself
    follower.cancel()
    await journal.close()
