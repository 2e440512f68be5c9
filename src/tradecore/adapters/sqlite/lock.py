"""One instance per account without a server: an exclusive `flock` on a lock file.

The kernel releases the lock when the process dies, so a crash never leaves it stuck. The
file records who holds it, for the refusal message.
"""

import contextlib
import fcntl
import hashlib
import os
import re
import socket
from datetime import UTC, datetime
from pathlib import Path

from tradecore.ports.lock import LockHeld


def lock_path(directory: str | os.PathLike[str], account: str, *, stem: str = "tradecore") -> Path:
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", account)[:64]
    digest = hashlib.blake2b(account.encode(), digest_size=4).hexdigest()
    return Path(directory) / f"{stem}.{safe}-{digest}.lock"


class FileInstanceLock:
    def __init__(
        self, directory: str | os.PathLike[str], *, stem: str = "tradecore", shared: bool = False
    ):
        """`shared`: the directory serves every user of the machine (its files anyone's)."""
        self._directory = Path(directory)
        self._stem = stem
        self._shared = shared
        self._fd: int | None = None
        self._path: Path | None = None

    async def acquire(self, account: str) -> None:
        if self._fd is not None:
            raise LockHeld(f"this process already holds the instance lock {self._path}")
        path = lock_path(self._directory, account, stem=self._stem)
        fd = _open(path, shared=self._shared)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 512, 0).decode("utf-8", "replace").strip() or "unknown"
            os.close(fd)
            raise LockHeld(
                f"another tradecore instance is already running for account {account!r} "
                f"({holder}; lock file {path}); stop it first, or use a different account"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        since = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        with contextlib.suppress(OSError):  # a file another user made is only readable
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()} since {since}".encode(), 0)
        self._fd = fd
        self._path = path

    async def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    @property
    def held(self) -> bool:
        return self._fd is not None


def _open(path: Path, *, shared: bool) -> int:
    """The lock file; in a shared directory made writable by anyone, and one another user
    made there is still lockable read-only (`flock` needs no write access)."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666 if shared else 0o644)
    except PermissionError:
        if not shared:
            raise
        return os.open(path, os.O_RDONLY)
    if shared:
        with contextlib.suppress(OSError):
            os.fchmod(fd, 0o666)
    return fd
