"""The journal's queue on disk: the events a journal emitted and has not written yet.

Each journal appends to its own file, `<spool>.queue.<pid>-<token>`, one line per event
(the event's row, JSON), with `os.write` on an `O_APPEND` descriptor and **no fsync**: a
process's death (`kill -9`, the OOM killer, a crash of the interpreter) keeps what it
wrote, in the kernel's page cache; a power loss of the host may not. The journal empties
its file whenever nothing is left queued or in flight.

The file is `flock`ed for as long as its journal lives, so a starting journal can tell a
dead process's file (it can lock it) from a live one's (it cannot: another process on the
same spool path, such as `venue-check` beside the bot, is left alone). `take_over` reads
every dead file and keeps it locked; its lines go to the front of the new journal's queue,
and the files are removed (`release_taken`) once all of it is written or spooled. A journal
killed before that leaves them for the next start (the writer skips ids it stored before).
"""

import contextlib
import fcntl
import glob
import json
import os
import uuid
from datetime import datetime

from loguru import logger

from tradecore.adapters.journal.rows import EventRow
from tradecore.domain.events import Event, EventType, Severity

_ENCODE = json.JSONEncoder(separators=(",", ":")).encode  # ASCII: any text encodes


def row_line(row: EventRow) -> str:
    """The row as one line of the queue file (its data already JSON text)."""
    return _ENCODE([row[0].hex, *row[1:11], row[11].isoformat()]) + "\n"


def line_row(raw: bytes) -> EventRow:
    """The row a queue-file line holds; ValueError if it holds none."""
    values = json.loads(raw)
    if not isinstance(values, list) or len(values) != 12:
        raise ValueError("not a 12-column event row")
    texts = values[1:11]
    if not all(v is None or isinstance(v, str) for v in texts) or texts[0] is None:
        raise ValueError("an event row's columns are text")
    created_at = datetime.fromisoformat(values[11])
    if created_at.tzinfo is None:
        raise ValueError("an event's time is timezone-aware")
    return (uuid.UUID(values[0]), *texts, created_at)


def row_event(row: EventRow) -> Event:
    """The event a row records (data decoded from its JSON: Decimals come back as their
    exact strings, which encode the same); ValueError if the row names no known event."""
    data = json.loads(row[2])
    if not isinstance(data, dict):
        raise ValueError("an event's data is a JSON object")
    return Event(
        id=row[0],
        type=EventType(row[1]),
        data=data,
        correlation_id=row[3],
        position_id=row[4],
        order_id=row[5],
        symbol=row[6],
        exchange=row[7],
        severity=Severity[row[8]],
        error_message=row[9],
        stack_trace=row[10],
        created_at=row[11],
    )


class QueueFile:
    """One journal's queue file (see the module docstring). A write that fails is logged and
    tried again with the next event; it never raises: the event is still queued in memory."""

    def __init__(self, spool_path: str) -> None:
        self.prefix = f"{spool_path}.queue."
        self.path = f"{self.prefix}{os.getpid()}-{uuid.uuid4().hex[:12]}"
        self._fd: int | None = None
        self._size = 0
        self._failed = b""  # lines a failed write left to the next append
        self._taken: list[tuple[str, int]] = []  # dead journals' files, locked until released

    def append(self, lines: str) -> None:
        """Append `lines` (whole lines) in one write. A write that fails is cut back to the
        last whole line and its lines are written with the next append (said once per run of
        failures)."""
        data = self._failed + lines.encode()
        try:
            if self._fd is None:
                self._fd = self._open_locked(self.path)
            view = memoryview(data)
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
        except OSError as exc:
            if not self._failed:
                logger.error("journal: cannot write the queue file {}: {}", self.path, exc)
            self._failed = data
            if self._fd is not None:
                with contextlib.suppress(OSError):
                    os.ftruncate(self._fd, self._size)  # no torn line for the next one
            return
        self._size += len(data)
        self._failed = b""

    def empty(self) -> None:
        """Everything in this journal's file is written or spooled: empty it."""
        if self._fd is None or self._size == 0:
            return
        try:
            os.ftruncate(self._fd, 0)
            self._size = 0
        except OSError as exc:
            logger.error("journal: cannot empty the queue file {}: {}", self.path, exc)

    def take_over(self) -> list[tuple[str, int, bytes]]:
        """The lines of every dead journal's file on this spool path, as (file, byte offset,
        line); each file stays locked by this journal until `release_taken`."""
        lines: list[tuple[str, int, bytes]] = []
        for path in sorted(glob.glob(glob.escape(self.prefix) + "*")):
            if path == self.path:
                continue
            try:
                fd = os.open(path, os.O_RDWR)
            except OSError:
                continue  # removed meanwhile by another journal that took it
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)  # alive: another process's journal
                continue
            try:
                with os.fdopen(os.dup(fd), "rb") as f:
                    raw = f.read()
            except OSError as exc:
                logger.error("journal: cannot read the queue file {}: {}", path, exc)
                os.close(fd)
                continue
            self._taken.append((path, fd))
            offset = 0
            for line in raw.split(b"\n"):
                if line.strip():
                    lines.append((path, offset, line))
                offset += len(line) + 1
        return lines

    def release_taken(self) -> None:
        """The taken-over files' events are all written or spooled: remove the files."""
        for path, fd in self._taken:
            with contextlib.suppress(OSError):
                os.unlink(path)
            with contextlib.suppress(OSError):
                os.close(fd)
        self._taken = []

    def close(self, *, remove: bool) -> None:
        """The journal closed: its file goes if everything in it is written or spooled
        (`remove`), else it stays for the next start to take over."""
        if self._fd is not None:
            if remove:
                with contextlib.suppress(OSError):
                    os.unlink(self.path)
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None

    @staticmethod
    def _open_locked(path: str) -> int:
        """The journal's own file, created and locked — the locked file the one at `path`
        (a starting journal may have taken and removed a file in the instant between)."""
        for _ in range(5):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                if os.fstat(fd).st_ino == os.stat(path).st_ino:
                    return fd
            except OSError:
                pass
            os.close(fd)
        raise OSError(f"could not create and lock {path}")
