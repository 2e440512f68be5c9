"""One instance per account without a server: an exclusive `flock` on a lock file.

The kernel releases the lock when the process dies, so a crash never leaves it stuck. The
file records who holds it, for the refusal message.
"""

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
    def __init__(self, directory: str | os.PathLike[str], *, stem: str = "tradecore"):
        self._directory = Path(directory)
        self._stem = stem
        self._fd: int | None = None
        self._path: Path | None = None

    async def acquire(self, account: str) -> None:
        if self._fd is not None:
            raise LockHeld(f"this process already holds the instance lock {self._path}")
        path = lock_path(self._directory, account, stem=self._stem)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
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
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()} since {since}".encode(), 0)
        self._fd = fd
        self._path = path

    async def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    @property
    def held(self) -> bool:
        return self._fd is not None
