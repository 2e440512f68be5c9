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

Property tests (Hypothesis) run under the `tradecore` settings profile, loaded here before any
test module is imported: no per-example deadline and no `too_slow` health check, because on a
loaded machine another process can hold the CPU for seconds in the middle of an example or of
drawing one, and none of these tests is about time (performance lives in `benchmarks/`). A test
that lists its own `suppress_health_check` replaces the profile's list, so it must name
`HealthCheck.too_slow` again; collection refuses one that does not, or that sets a deadline.
Under `CI=true` the profile is `tradecore-ci`: the same, derandomized (the examples of a run
depend on the test alone, so three runs in a row draw the same ones).
`HYPOTHESIS_PROFILE` picks another registered profile.
"""

import os
from collections.abc import Callable, Iterator

import pytest
from hypothesis import HealthCheck, settings

from tradecore.testing.pgserver import PostgresServer, PostgresUnavailable

_POSTGRES_FIXTURES = {"postgres_server", "postgres_admin_url", "postgres_url", "postgres_database"}

settings.register_profile(
    "tradecore", deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
# Under CI the same examples every run (Hypothesis's own CI profile does the same): a run
# cannot pass or fail on the luck of its draw; local runs keep exploring new examples.
settings.register_profile("tradecore-ci", settings.get_profile("tradecore"), derandomize=True)
_CI = os.environ.get("CI", "").lower() == "true"
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "tradecore-ci" if _CI else "tradecore"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _POSTGRES_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.postgres)
    timed = [item.nodeid for item in items if _timed_by_hypothesis(item)]
    if timed:
        raise pytest.UsageError(
            "property tests that a busy machine can fail (a deadline, or a suppress_health_check "
            "list without HealthCheck.too_slow; tests/conftest.py says why): " + ", ".join(timed)
        )


def _timed_by_hypothesis(item: pytest.Item) -> bool:
    chosen = getattr(getattr(item, "obj", None), "_hypothesis_internal_use_settings", None)
    if chosen is None or settings.default.deadline is not None:
        return False  # not a property test, or another profile was asked for
    return chosen.deadline is not None or HealthCheck.too_slow not in chosen.suppress_health_check


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
