"""The store writes that wait for the database, spooled like events (`WriteSpool`).

One JSON line per held write — `{"repository", "method", "arguments"}`, each argument
through the JSON converter — appended and fsynced by the same `Spool` the journal uses for
events. How far the writes have landed is kept beside it (`<spool>.landed`, a byte offset,
fsynced), so a process that crashes after some of them landed replays only the rest; the
file is emptied once every write in it has landed. An offset beyond the file's end (a crash
after the file was emptied, before `.landed` said 0) is set back to 0 when the file is opened,
before anything new is appended to it. Reading a line back gives each argument
the type the port declares for it (`typing.get_type_hints`), so a Position comes back a
Position and a Decimal a Decimal.
"""

import json
import os
import typing
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

from loguru import logger

from tradecore.adapters.journal.spool import Spool
from tradecore.adapters.serialization import JSON, dumps
from tradecore.ports.repositories import HeldWrite, Store


@cache
def _parameter_types(repository: str, method: str) -> dict[str, Any]:
    port = typing.get_type_hints(Store)[repository]
    hints = typing.get_type_hints(getattr(port, method))
    hints.pop("return", None)
    return hints


def encode(write: HeldWrite) -> str:
    return dumps(
        {
            "repository": write.repository,
            "method": write.method,
            "arguments": {k: JSON.unstructure(v) for k, v in write.arguments.items()},
        }
    )


def decode(line: bytes) -> HeldWrite:
    raw = json.loads(line)
    repository, method = str(raw["repository"]), str(raw["method"])
    types = _parameter_types(repository, method)
    arguments = {k: JSON.structure(v, types[k]) for k, v in raw["arguments"].items()}
    return HeldWrite(repository=repository, method=method, arguments=arguments)


class WriteSpoolFile:
    """A `WriteSpool` in a file (see the module doc). Opens nothing until first used."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._landed_path = self.path.with_name(self.path.name + ".landed")
        self._spool: Spool | None = None
        self._ends: list[int] = []  # the byte offset after each held write, oldest first

    def _opened(self) -> Spool:
        if self._spool is None:
            spool = Spool(self.path)
            landed = self._read_landed()
            if landed > spool.size():
                # The file was emptied and the process died before `.landed` said 0: the
                # offset belongs to the old file. Record 0 now, before anything is appended,
                # or a later restart would resume at the old offset and skip new writes.
                landed = 0
                self._write_landed(0)
            spool.resume_at(landed)
            self._spool = spool
        return self._spool

    def hold(self, write: HeldWrite) -> None:
        spool = self._opened()
        spool.append([encode(write)])
        self._ends.append(spool.size())

    def held(self) -> Sequence[HeldWrite]:
        spool = self._opened()
        writes: list[HeldWrite] = []
        self._ends = []
        while True:
            lines, end = spool.read(1000)
            if not lines:
                break
            for number, (offset, raw) in enumerate(lines):
                after = lines[number + 1][0] if number + 1 < len(lines) else end
                try:
                    writes.append(decode(raw))
                except Exception as error:  # a torn or foreign line: say so, keep the rest
                    logger.error(
                        "write spool {}: line at byte {} cannot be read ({!r}); skipped",
                        self.path,
                        offset,
                        error,
                    )
                    continue
                self._ends.append(after)
            if end == spool.size():
                break
            spool.resume_at(end)  # read on; the recorded offset moves only in `landed`
        spool.resume_at(self._read_landed())
        return writes

    def landed(self, count: int) -> None:
        spool = self._opened()
        if count <= 0 or not self._ends:
            return
        offset = self._ends[min(count, len(self._ends)) - 1]
        del self._ends[:count]
        spool.commit(offset)  # empties the file once everything in it has landed
        self._write_landed(0 if not self._ends and spool.size() == 0 else offset)

    def _read_landed(self) -> int:
        try:
            return int(self._landed_path.read_text().strip() or 0)
        except (FileNotFoundError, ValueError):
            return 0

    def _write_landed(self, offset: int) -> None:
        temporary = self._landed_path.with_name(self._landed_path.name + ".tmp")
        with temporary.open("w") as f:
            f.write(str(offset))
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, self._landed_path)
