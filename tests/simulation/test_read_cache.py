"""The simulator's in-memory store answers repeated reads from memory (`process.ReadCache`):
a read must still see every write, whichever way it reached the database, and never a
write a transaction took back."""

import asyncio
from datetime import UTC, datetime

import pytest

from tradecore.domain.model import Venue
from tradecore.domain.positions import Operation, OperationKind
from tradecore.testing.simulation.process import inline_sqlite

AT = datetime(2026, 1, 1, tzinfo=UTC)


def _operation(op_id: str) -> Operation:
    return Operation(
        id=op_id,
        kind=OperationKind.OPEN,
        venue=Venue.BINANCE,
        symbol="BTCUSDT",
        position_id=None,
        started_at=AT,
    )


class _TakeItBack(Exception):
    pass


def test_a_repeated_read_sees_every_write_and_no_write_taken_back() -> None:
    async def run() -> None:
        database = await inline_sqlite()
        store = database.store

        async def flying() -> list[str]:
            return [op.id for op in await store.operations.in_flight()]

        try:
            assert await flying() == []
            await store.operations.start(_operation("o1"))
            assert await flying() == ["o1"]
            assert await flying() == ["o1"]  # the same read again
            await store.operations.finish("o1", at=AT, outcome="done")
            assert await flying() == []
            # a write that does not go through the store's executor
            await database.connection.execute(
                "INSERT INTO operations (id, kind, exchange, symbol, started_at) "
                "VALUES ('o2', 'open', 'binance', 'BTCUSDT', '2026-01-01T00:00:01.000000+00:00')"
            )
            assert await flying() == ["o2"]
            # a write inside a transaction is read inside it, and gone after the rollback
            with pytest.raises(_TakeItBack):
                async with store.transaction() as inside:
                    await inside.operations.start(_operation("o3"))
                    assert sorted(op.id for op in await inside.operations.in_flight()) == [
                        "o2",
                        "o3",
                    ]
                    raise _TakeItBack
            assert await flying() == ["o2"]
            assert await flying() == ["o2"]
            # a delete by a statement the store never makes
            await database.connection.execute("DELETE FROM operations")
            assert await flying() == []
        finally:
            await database.close()

    asyncio.run(run())
