"""One bot per account: the lock's key names the account by a fingerprint of its key, and the
machine's lock and the database's are taken as one."""

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tradecore.adapters.account_lock import AccountLock, account_key, machine_lock
from tradecore.adapters.sqlite.lock import FileInstanceLock
from tradecore.ports.lock import LockHeld
from tradecore.ports.repositories import StoreUnavailable

KEYS = st.text(min_size=8, max_size=64)


@given(KEYS)
def test_the_account_key_never_holds_the_api_key(key: str) -> None:
    name = account_key("binance", "live", key)
    assert key not in name and name.startswith("binance:live:")


def test_the_account_key_tells_accounts_apart_and_ignores_everything_else() -> None:
    live = account_key("binance", "live", "k1")
    assert live == account_key("binance", "live", "k1")  # any database, any label
    assert live != account_key("binance", "live", "k2")
    assert live != account_key("binance", "demo", "k1")
    assert live != account_key("bybit", "live", "k1")
    here = account_key("binance", "demo", "k1", exchange_url="http://127.0.0.1:9001")
    assert here.startswith("binance:loopback:")
    assert here != account_key("binance", "demo", "k1", exchange_url="http://127.0.0.1:9002")
    assert here == account_key("binance", "demo", "k1", exchange_url="http://127.0.0.1:9001/")


async def test_a_refusal_by_the_database_gives_the_machine_lock_back(tmp_path: Path) -> None:
    account = account_key("bybit", "demo", "k")
    other_process = FileInstanceLock(tmp_path / "db", stem="bot.db")
    (tmp_path / "db").mkdir()
    await other_process.acquire(account)  # holds the account in the database
    both = AccountLock(
        [machine_lock(tmp_path / "machine"), FileInstanceLock(tmp_path / "db", stem="bot.db")]
    )
    with pytest.raises(LockHeld, match="already running"):
        await both.acquire(account)
    await other_process.release()
    alone = machine_lock(tmp_path / "machine")
    await alone.acquire(account)  # the machine's lock was given back
    await alone.release()
    await both.acquire(account)
    with pytest.raises(LockHeld, match="lock file"):
        await machine_lock(tmp_path / "machine").acquire(account)
    await both.release()


class _DatabaseDown:
    """A database lock whose release fails: the database went down before shutdown."""

    async def acquire(self, account: str) -> None:
        return None

    async def release(self) -> None:
        raise StoreUnavailable("PostgreSQL unreachable")


async def test_a_database_lock_that_cannot_be_given_back_does_not_keep_the_machine_lock(
    tmp_path: Path,
) -> None:
    """Review finding 8: the failed release ended the loop and the machine's flock stayed
    held by this process. Every lock is given back, each on its own; the failure is raised
    after."""
    account = account_key("binance", "live", "k")
    both = AccountLock([machine_lock(tmp_path), _DatabaseDown()])
    await both.acquire(account)
    with pytest.raises(StoreUnavailable):
        await both.release()
    again = machine_lock(tmp_path)
    await again.acquire(account)  # the machine's lock was given back
    await again.release()
