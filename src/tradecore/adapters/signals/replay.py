"""Signals from a JSONL file, for paper runs: one JSON object per line, in file order."""

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import BinaryIO

import attrs

from tradecore.adapters.signals.codec import MAX_FRAME_BYTES, DecodeFailure, preview
from tradecore.adapters.signals.intake import Intake
from tradecore.adapters.signals.journal import SignalJournal
from tradecore.domain.signals import Signal
from tradecore.domain.waves import SignalLimits
from tradecore.ports.clock import Clock, IdGenerator
from tradecore.ports.events import EventSink

_BATCH_LINES = 256


@attrs.frozen
class _TooLong:
    size: int
    head: bytes


def _read_batch(handle: BinaryIO, max_bytes: int) -> list[bytes | _TooLong]:
    """Up to `_BATCH_LINES` lines; a line over `max_bytes` is skipped to its end, not loaded."""
    batch: list[bytes | _TooLong] = []
    while len(batch) < _BATCH_LINES:
        line = handle.readline(max_bytes + 1)
        if not line:
            break
        if len(line) > max_bytes and not line.endswith(b"\n"):
            batch.append(_skip_rest(handle, line))
        else:
            batch.append(line)
    return batch


def _skip_rest(handle: BinaryIO, head: bytes) -> _TooLong:
    size = len(head)
    chunk = head
    while chunk and not chunk.endswith(b"\n"):
        chunk = handle.readline(1 << 20)
        size += len(chunk)
    return _TooLong(size=size, head=head[:2048])


class ReplaySignalSource:
    """A `SignalSource` that replays a JSONL file.

    Lines are validated exactly like websocket frames (same decoding, same domain
    validator); a corrupt line becomes a `signal_rejected` event naming its line number and
    is skipped, blank lines are ignored, a repeated signal id is delivered once. With
    `pace=True` each signal is held until the clock reaches its `created_at`, so a paper
    run on a virtual clock sees signals when the live service would have sent them.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        events: EventSink,
        clock: Clock,
        ids: IdGenerator,
        pace: bool = False,
        limits: SignalLimits | None = None,
        max_line_bytes: int = MAX_FRAME_BYTES,
    ) -> None:
        self._path = Path(path)
        self._clock = clock
        self._pace = pace
        self._max_bytes = max_line_bytes
        self._journal = SignalJournal(
            events=events, clock=clock, ids=ids, source=f"file:{self._path.name}"
        )
        self._intake = Intake(journal=self._journal, limits=limits, max_bytes=max_line_bytes)
        self._seen: set[str] = set()
        self._closed = False

    async def signals(self) -> AsyncIterator[Signal]:
        """Each valid signal of the file once, in file order; ends at the end of the file."""
        handle = await asyncio.to_thread(self._path.open, "rb")
        try:
            number = 0
            while not self._closed:
                batch = await asyncio.to_thread(_read_batch, handle, self._max_bytes)
                if not batch:
                    return
                for line in batch:
                    number += 1
                    signal = self._take(line, number)
                    if signal is None:
                        continue
                    await self._wait_until_created(signal)
                    if self._closed:
                        return
                    self._journal.received(signal)
                    yield signal
        finally:
            handle.close()

    async def close(self) -> None:
        self._closed = True

    def _take(self, line: bytes | _TooLong, number: int) -> Signal | None:
        if isinstance(line, _TooLong):
            detail = f"line of {line.size} bytes exceeds the {self._max_bytes} byte limit"
            self._journal.rejected(DecodeFailure.TOO_LARGE, detail, preview(line.head), line=number)
            return None
        try:
            text = line.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError as exc:
            detail = f"line is not valid UTF-8: {exc}"
            self._journal.rejected(DecodeFailure.BAD_UNICODE, detail, preview(line), line=number)
            return None
        if not text.strip():
            return None
        signal = self._intake.take(text, line=number)
        if signal is None:
            return None
        if signal.id in self._seen:
            self._journal.duplicate(signal.id)
            return None
        self._seen.add(signal.id)
        return signal

    async def _wait_until_created(self, signal: Signal) -> None:
        if not self._pace:
            return
        delay = (signal.created_at - self._clock.now()).total_seconds()
        if delay > 0:
            await self._clock.sleep(delay)
