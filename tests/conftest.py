"""Shared fixtures: a real PostgreSQL for the tests that need one — started by the session itself.

The first test that needs PostgreSQL starts a throwaway server (`tradecore.testing.pgserver`):
initdb in a temporary directory, a free port on 127.0.0.1, trust auth, its unix socket in that
directory, run as `nobody` when the tests run as root. It is stopped and its directory removed at
the session's end (also on Ctrl-C or SIGTERM, through atexit). The tests never use, stop or alter
any other server, such as the machine's own cluster on port 5432.

`postgres_server` is that server (the outage tests stop and start it); `postgres_url` is a database
created on it for the session; `postgres_database` creates further ones. Without the PostgreSQL
binaries those tests are skipped with a message saying so, except under `CI=true`, where they
fail: CI must never pass by skipping the database. Every test that uses these fixtures is marked
`postgres` automatically.
"""

import os
from collections.abc import Callable, Iterator

import pytest

from tradecore.testing.pgserver import PostgresServer, PostgresUnavailable

_POSTGRES_FIXTURES = {"postgres_server", "postgres_admin_url", "postgres_url", "postgres_database"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _POSTGRES_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.postgres)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server of this session's own, stopped and removed at its end."""
    try:
        server = PostgresServer.start()
    except PostgresUnavailable as exc:
        message = f"no throwaway PostgreSQL server could be started: {exc}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{message} (CI=true: failing instead of skipping)", pytrace=False)
        pytest.skip(message)
    yield server
    server.close()


@pytest.fixture(scope="session")
def postgres_admin_url(postgres_server: PostgresServer) -> str:
    """The maintenance database URL of the session's server."""
    return postgres_server.admin_url


@pytest.fixture(scope="session")
def postgres_database(postgres_server: PostgresServer) -> Callable[[], str]:
    """A factory of fresh, empty databases (gone with the server at the end of the session)."""
    return postgres_server.create_database


@pytest.fixture(scope="session")
def postgres_url(postgres_database: Callable[[], str]) -> str:
    """One fresh database for the whole session (tests empty the tables they use)."""
    return postgres_database()
