"""Shared fixtures: a real PostgreSQL for the tests that need one.

`postgres_url` is a database created for this test session on 127.0.0.1:5432 (trust auth,
user postgres) and dropped at its end; `postgres_database` creates further ones. Without a
reachable server those tests are skipped with a message saying so, except under `CI=true`,
where they fail: CI must never pass by skipping the database. Every test that uses these
fixtures is marked `postgres` automatically.
"""

import asyncio
import os
import uuid
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

POSTGRES_HOST = os.environ.get("TRADECORE_TEST_PGHOST", "127.0.0.1")
POSTGRES_PORT = int(os.environ.get("TRADECORE_TEST_PGPORT", "5432"))
POSTGRES_USER = os.environ.get("TRADECORE_TEST_PGUSER", "postgres")
ADMIN_URL = f"postgresql://{POSTGRES_USER}@{POSTGRES_HOST}:{POSTGRES_PORT}/postgres"

_POSTGRES_FIXTURES = {"postgres_admin_url", "postgres_url", "postgres_database"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _POSTGRES_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.postgres)


def _run(coroutine: Coroutine[Any, Any, None]) -> None:
    # In a thread of its own: the factory may be called from inside a test's event loop.
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, coroutine).result()


async def _admin(sql: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(ADMIN_URL, timeout=5)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    """The maintenance database URL, after checking the server answers."""
    try:
        _run(_admin("SELECT 1"))
    except Exception as exc:
        message = (
            f"PostgreSQL is not reachable at {POSTGRES_HOST}:{POSTGRES_PORT} as user "
            f"{POSTGRES_USER} ({type(exc).__name__}: {exc}); these tests need a real server"
        )
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{message} (CI=true: failing instead of skipping)", pytrace=False)
        pytest.skip(message)
    return ADMIN_URL


@pytest.fixture(scope="session")
def postgres_database(postgres_admin_url: str) -> Iterator[Callable[[], str]]:
    """A factory of fresh, empty databases (each dropped at the end of the session)."""
    created: list[str] = []

    def create() -> str:
        name = f"tradecore_test_{uuid.uuid4().hex[:12]}"
        _run(_admin(f'CREATE DATABASE "{name}"'))
        created.append(name)
        return f"postgresql://{POSTGRES_USER}@{POSTGRES_HOST}:{POSTGRES_PORT}/{name}"

    yield create
    for name in created:
        try:
            _run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        except Exception as exc:  # never hide the test result behind a cleanup failure
            print(f"could not drop test database {name}: {exc}")


@pytest.fixture(scope="session")
def postgres_url(postgres_database: Callable[[], str]) -> str:
    """One fresh database for the whole session (tests empty the tables they use)."""
    return postgres_database()
