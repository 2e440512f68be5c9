from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
import attrs
import pytest

from tradecore.adapters.paper import BINANCE, BYBIT
from tradecore.adapters.postgres.database import PostgresDatabase
from tradecore.adapters.sqlite.database import SqliteDatabase
from tradecore.testing import FakeVenue

from .harness import App, build_app
from .invariants import gap_problems, stop_problems

ROUND_TRIP = 0.05  # seconds of virtual time per venue request

Database = SqliteDatabase | PostgresDatabase
Opener = Callable[[], Awaitable[Database]]


@pytest.fixture(params=["binance", "bybit"])
def venue(request: pytest.FixtureRequest) -> FakeVenue:
    """The venue; under `@pytest.mark.stop_after_fill` its entries carry no stop-loss
    (`Capabilities.entry_stop` off: on Bybit the entry otherwise carries its stop), so the
    stop is placed after the fill — the path a test of refused or failed stops is about, as
    on Bybit when the mark could not be read to plan the carried stop."""
    profile = BINANCE if request.param == "binance" else BYBIT
    if request.node.get_closest_marker("stop_after_fill") is not None:
        capabilities = attrs.evolve(profile.capabilities, entry_stop=False)
        profile = attrs.evolve(profile, capabilities=capabilities)
    return FakeVenue(profile, latency=ROUND_TRIP)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def open_database(request: pytest.FixtureRequest) -> Opener:
    """Opens an empty, migrated database: SQLite in memory, or the session's PostgreSQL."""
    if request.param == "sqlite":
        return lambda: SqliteDatabase.connect(":memory:")
    url = request.getfixturevalue("postgres_url")

    async def fresh_postgres() -> Database:
        db = await PostgresDatabase.connect(url)
        await empty(db)
        return db

    return fresh_postgres


@pytest.fixture
async def database(open_database: Opener) -> AsyncIterator[Database]:
    """Every scenario runs on both databases."""
    db = await open_database()
    yield db
    await db.close()


async def empty(db: PostgresDatabase) -> None:
    connection = await asyncpg.connect(db.dsn)
    try:
        tables = await connection.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
            "AND tablename <> 'schema_migrations'"
        )
        names = ", ".join(f'"{row["tablename"]}"' for row in tables)
        await connection.execute(f"TRUNCATE {names} CASCADE")
    finally:
        await connection.close()


@pytest.fixture
async def app(venue: FakeVenue, database: Database) -> AsyncIterator[App]:
    """The application on `venue` and `database`; when the scenario is over, the invariants
    must hold: every open position on exactly one full stop, no gap over one round trip."""
    application = build_app(venue, database.store)
    yield application
    assert stop_problems(venue) == []
    assert gap_problems(venue, round_trip=ROUND_TRIP, allowed=application.gaps_allowed) == []
