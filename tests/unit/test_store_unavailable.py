"""A database that cannot be reached is `StoreUnavailable` at the port, whatever the driver."""

import json
import sqlite3
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from tradecore.adapters.clock import SequentialIds, VirtualClock, settle
from tradecore.adapters.database import open_journal
from tradecore.adapters.sqlite.database import SqliteDatabase
from tradecore.domain.events import Event, EventType
from tradecore.domain.model import Side, Venue
from tradecore.domain.positions import Position, PositionState
from tradecore.ports.repositories import StoreUnavailable


def position() -> Position:
    return Position(
        id="p1",
        venue=Venue.BINANCE,
        symbol="BTCUSDT",
        side=Side.LONG,
        state=PositionState.PENDING_ENTRY,
        requested_quantity=Decimal("0.01"),
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


async def test_a_sqlite_file_locked_by_another_writer_is_unavailable_not_a_crash(
    tmp_path: Path,
) -> None:
    path = str(tmp_path / "locked.db")
    database = await SqliteDatabase.connect(path, busy_timeout_ms=50)
    other = sqlite3.connect(path)
    other.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
    try:
        with pytest.raises(StoreUnavailable, match="locked"):
            await database.store.positions.add(position())
    finally:
        other.rollback()
        other.close()
    await database.store.positions.add(position())  # and it works again once released
    assert await database.store.positions.get("p1") is not None
    await database.close()


async def test_an_outage_is_journaled_from_the_moment_the_store_noticed_it_to_its_end(
    tmp_path: Path,
) -> None:
    # Issue 12: an outage of ~62 s was journaled as 13 s — it began when the next event's
    # write failed, not when the bot first found the database gone.
    clock = VirtualClock(datetime(2026, 1, 1, tzinfo=UTC))
    path = str(tmp_path / "outage.db")
    database = await SqliteDatabase.connect(path, busy_timeout_ms=50)
    journal = open_journal(database, str(tmp_path / "spool"), clock=clock, ids=SequentialIds())
    journal.start()
    other = sqlite3.connect(path)
    other.execute("BEGIN EXCLUSIVE")  # the database stops answering
    noticed = clock.now()
    with pytest.raises(StoreUnavailable):
        await database.store.positions.add(position())  # the bot notices, now
    await clock.advance(60)  # a quiet minute: no event to write
    journal.emit(Event(id=uuid.uuid4(), type=EventType.BOT_STARTED, created_at=clock.now()))
    await journal.flush()
    other.rollback()
    other.close()
    back = clock.now()
    await database.store.positions.add(position())  # it answers again
    for _ in range(200):
        if journal.available and not journal.spool_pending:
            break
        await clock.advance(0.05)
        await settle()
    await journal.close()
    rows = sqlite3.connect(path).execute(
        "SELECT event_type, created_at, event_data FROM events ORDER BY seq"
    )
    stamped = {kind: (at, data) for kind, at, data in rows}
    down_at = datetime.fromisoformat(stamped["database_unavailable"][0])
    assert down_at == noticed, "the outage begins when the store found the database gone"
    outage = float(json.loads(stamped["database_restored"][1])["outage_seconds"])
    assert outage == pytest.approx((back - noticed).total_seconds(), abs=0.5)
    await database.close()
