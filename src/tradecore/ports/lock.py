"""One instance per account: a lock held for the life of the process."""

from typing import Protocol, runtime_checkable


class LockHeld(Exception):
    """Another process holds the lock for this account."""


@runtime_checkable
class InstanceLock(Protocol):
    async def acquire(self, account: str) -> None:
        """Take the lock for `account` or raise LockHeld with a message saying who holds it."""
        ...

    async def release(self) -> None:
        """Give the lock up (nothing if not held). A process that dies loses it too."""
        ...


class AccountMismatch(Exception):
    """The database journals another account: each account needs a database of its own."""
