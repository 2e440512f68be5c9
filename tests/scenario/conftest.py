from collections.abc import AsyncIterator

import pytest

from tradecore.adapters.sqlite.database import SqliteDatabase
from tradecore.testing import FakeVenue

from .harness import App, build_app

ROUND_TRIP = 0.05  # seconds of virtual time per venue request


@pytest.fixture(params=["binance", "bybit"])
def venue(request: pytest.FixtureRequest) -> FakeVenue:
    maker = FakeVenue.binance if request.param == "binance" else FakeVenue.bybit
    return maker(latency=ROUND_TRIP)


@pytest.fixture
async def database() -> AsyncIterator[SqliteDatabase]:
    db = await SqliteDatabase.connect(":memory:")
    yield db
    await db.close()


@pytest.fixture
def app(venue: FakeVenue, database: SqliteDatabase) -> App:
    return build_app(venue, database.store)
