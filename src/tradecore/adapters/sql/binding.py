"""A database journals one account.

Positions, operations, waves and signals carry no account: a second account sharing the
database would read the first's open positions as its own (its synchronizer, finding them
missing on its venue, would close them in the journal) and skip the first's waves as
duplicates. So the first account to take the database's instance lock binds the database to
itself (one row in `tradecore_account`), and every other account is refused at the lock,
before it reads or writes anything. The table is made by the lock, not by a migration: the
lock is taken before the migrations run (docs/operations.md, "Many accounts").
"""

from collections.abc import Awaitable, Callable

from tradecore.ports.lock import AccountMismatch, InstanceLock

CREATE = (
    "CREATE TABLE IF NOT EXISTS tradecore_account ("
    " id INTEGER PRIMARY KEY CHECK (id = 1),"
    " account TEXT NOT NULL)"
)
CLAIM = (
    "INSERT INTO tradecore_account (id, account) VALUES (1, {param}) ON CONFLICT (id) DO NOTHING"
)
OWNER = "SELECT account FROM tradecore_account WHERE id = 1"

Bind = Callable[[str], Awaitable[str]]  # claims the database for an account; the owner


class AccountBoundLock:
    """The database's instance lock, and the check that the database is this account's."""

    def __init__(self, inner: InstanceLock, bind: Bind, where: str) -> None:
        self._inner = inner
        self._bind = bind
        self._where = where

    async def acquire(self, account: str) -> None:
        await self._inner.acquire(account)
        try:
            owner = await self._bind(account)
        except BaseException:
            await self._inner.release()
            raise
        if owner != account:
            await self._inner.release()
            raise AccountMismatch(
                f"the database {self._where} journals account {owner!r}, and this bot trades "
                f"account {account!r}: each account needs its own database (PostgreSQL: one "
                "database per account on the same server; SQLite: its own file), since a "
                "shared one would mix their positions and waves (docs/operations.md, "
                '"Many accounts")'
            )

    async def release(self) -> None:
        await self._inner.release()
