"""One bot per account: the instance lock keyed by venue and account, held on the machine and in
the database (docs/operations.md, "One bot per account").

The account is named by a fingerprint of its API key — a keyed hash, never the key — so two
processes that trade the same account are refused whatever database each was given: the
machine's lock file (an `flock` in a runtime directory, keyed by the fingerprint) catches
them on one host, the database's lock (SQLite's file lock, PostgreSQL's advisory lock) two
hosts sharing a database.
"""

import hashlib
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from tradecore.adapters.sqlite.lock import FileInstanceLock
from tradecore.ports.lock import InstanceLock

MACHINE_STEM = "tradecore-account"


def account_key(
    venue: str, environment: str, api_key: str | None, *, exchange_url: str = ""
) -> str:
    """`venue:environment:fingerprint`, the name the lock is keyed by.

    `environment` is "demo" or "live"; a loopback exchange for tests is its own account,
    named by its address and key. The fingerprint is 64 bits of BLAKE2b over the venue, the
    environment (or address) and the key: stable across processes and versions, and it
    gives the key away no more than the hash does.
    """
    where = f"loopback {exchange_url.rstrip('/')}" if exchange_url else environment
    digest = hashlib.blake2b(
        "\0".join((venue, where, api_key or "")).encode(),
        digest_size=8,
        person=b"tradecore-acct",
    ).hexdigest()
    return f"{venue}:{'loopback' if exchange_url else environment}:{digest}"


def default_lock_dir() -> Path:
    """Where the machine's account locks live unless `lock_dir` says: one directory for every
    user of the machine (sticky and world-writable, as /tmp is), so no two bots share an
    account on this host whoever runs them."""
    return Path(tempfile.gettempdir()) / "tradecore-locks"


def machine_lock(directory: str | os.PathLike[str] | None = None) -> FileInstanceLock:
    """The machine's lock for an account, in `directory` (default: `default_lock_dir()`)."""
    path = Path(directory) if directory else default_lock_dir()
    if not path.is_dir():
        path.mkdir(parents=True, exist_ok=True)
        if directory is None:
            os.chmod(path, 0o1777)
    return FileInstanceLock(path, stem=MACHINE_STEM, shared=directory is None)


class AccountLock:
    """Several instance locks taken as one, in order, and given back in reverse: all held, or
    none (a refusal by a later lock gives the earlier ones back)."""

    def __init__(self, locks: Sequence[InstanceLock]) -> None:
        self._locks = tuple(locks)
        self._held: list[InstanceLock] = []

    async def acquire(self, account: str) -> None:
        try:
            for lock in self._locks:
                await lock.acquire(account)
                self._held.append(lock)
        except BaseException:
            await self.release()
            raise

    async def release(self) -> None:
        """Every lock held is given back, in reverse, each on its own: one that cannot be
        given back (the database is down at shutdown) does not keep the others held. The
        first failure is raised once all were tried."""
        failure: BaseException | None = None
        while self._held:
            try:
                await self._held.pop().release()
            except BaseException as error:  # raised again below, after the others
                failure = failure or error
        if failure is not None:
            raise failure


class Taken:
    """A lock the runner took before anything else opened (so a refusal names the lock, not a
    busy port): the kernel's acquire and release are no-ops; the runner gives it back."""

    def __init__(self, account: str) -> None:
        self.account = account

    async def acquire(self, account: str) -> None:
        if account != self.account:
            raise RuntimeError(f"the lock taken is {self.account!r}, not {account!r}")

    async def release(self) -> None:
        return None
