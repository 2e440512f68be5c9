"""A database that cannot be reached is `StoreUnavailable` at the port, whatever the driver."""

import sqlite3
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from tradecore.adapters.sqlite.database import SqliteDatabase
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
