"""What asyncpg raises when the server goes away mid-use is the port's `StoreUnavailable`,
so the resilient store waits the outage out instead of a pass failing with a driver error.

Seen in `tests/crossprocess/test_database_outage.py` on this machine: after PostgreSQL came
back, a pooled connection the outage had interrupted answered the guard's next query with
`InternalClientError('cannot switch to state 12; another operation (2) is in progress')`,
and the guard pass failed (`ProtectionGuard.check failed`) instead of waiting for the store.
"""

import asyncpg
import pytest

from tradecore.adapters.postgres.executor import reachable
from tradecore.ports.repositories import StoreUnavailable


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.InternalClientError(
            "cannot switch to state 12; another operation (2) is in progress"
        ),
        asyncpg.InterfaceError("connection is closed"),
        ConnectionResetError("reset by peer"),
    ],
)
async def test_a_connection_broken_by_an_outage_is_the_store_unavailable(error: Exception) -> None:
    with pytest.raises(StoreUnavailable, match=type(error).__name__):
        async with reachable():
            raise error
