"""The local spool: events the database could not take, as JSON lines, fsynced per batch.

Lines are appended in the order the events were emitted and read back in that order. The
read position lives in memory: after a crash the whole file is replayed again, which the
idempotent batch writer makes harmless. The file is emptied only when every line in it has
been read and written, checked without yielding to the event loop, so lines appended
meanwhile are never lost.
"""

import os
from pathlib import Path


class Spool:
    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        self._offset = 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._repair_torn_tail()

    def _repair_torn_tail(self) -> None:
        # A crash in the middle of an append leaves a line without its newline; end it, so
        # the next batch starts on a fresh line and only the torn line is lost to corruption.
        if not self.path.exists() or self.path.stat().st_size == 0:
            return
        with self.path.open("rb") as f:
            f.seek(-1, os.SEEK_END)
            last = f.read(1)
        if last != b"\n":
            with self.path.open("ab") as f:
                f.write(b"\n")
                f.flush()
                os.fsync(f.fileno())

    def resume_at(self, offset: int) -> None:
        """Read on from `offset` (a line start a previous run recorded as written)."""
        self._offset = min(max(offset, 0), self.size())

    def append(self, lines: list[str]) -> None:
        """Append `lines` (each one JSON document without newlines) and fsync once."""
        if not lines:
            return
        payload = ("\n".join(lines) + "\n").encode()
        with self.path.open("ab") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())

    def pending(self) -> bool:
        """Whether lines remain that have not been read and written."""
        try:
            return self.path.stat().st_size > self._offset
        except FileNotFoundError:
            return False

    def size(self) -> int:
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    def read(self, max_lines: int) -> tuple[list[tuple[int, bytes]], int]:
        """Up to `max_lines` unread lines as (line start offset, bytes), and the offset after."""
        lines: list[tuple[int, bytes]] = []
        try:
            f = self.path.open("rb")
        except FileNotFoundError:
            return lines, self._offset
        with f:
            f.seek(self._offset)
            position = self._offset
            while len(lines) < max_lines:
                line = f.readline()
                if not line:
                    break
                # A last line without its newline (written by something else: our appends
                # are whole) is returned as it is; decoding decides whether it is corrupt.
                lines.append((position, line.removesuffix(b"\n")))
                position += len(line)
        return lines, position

    def commit(self, offset: int) -> None:
        """Mark everything before `offset` as written; empty the file once all of it is."""
        self._offset = offset
        if self._offset >= self.size():
            with self.path.open("r+b") as f:
                f.truncate(0)
                f.flush()
                os.fsync(f.fileno())
            self._offset = 0
