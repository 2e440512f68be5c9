"""The journal: `emit` queues an event without awaiting anything; a writer task flushes
batches (every `flush_interval` seconds or `batch_size` events) through a `BatchWriter`.

While the database is unreachable, batches go to the spool (fsync per batch) and the
database is probed with backoff; when it answers, the spool is replayed in order before
anything newer, and the journal records `database_restored`. A queue that reaches
`max_queue` spills to the spool at once instead of blocking or dropping. `close` flushes
everything. Replay is idempotent: every event carries a UUID the writer deduplicates on.

The queue is on disk too (`write_ahead`, on by default): the events emitted during one step
of the event loop are encoded once (the rows the writer stores) and appended to the
journal's queue file (`queue_file.py`) in one write at the loop's next turn — `emit` itself
stays free of I/O — and the file is emptied whenever nothing is left queued or in flight
(all of it stored or spooled). A process
killed between two flushes (`kill -9`, the OOM killer, a crash of the interpreter) leaves its
unwritten events there — written without fsync, they are in the kernel's page cache, which a
process's death does not lose (a power loss of the host within one flush interval can) — and
the next journal on the spool path takes them over at `start`, ahead of its own events (an
event stored already is skipped by its id). `tests/scenario/test_journal_killed.py` kills a
real process.
"""

import asyncio
import json
import uuid
from collections import deque
from datetime import UTC, datetime
from typing import Any

import attrs
from loguru import logger

from tradecore.adapters.journal.queue_file import QueueFile, line_row, row_event, row_line
from tradecore.adapters.journal.rows import EventRow, safe_row
from tradecore.adapters.journal.spool import Spool
from tradecore.adapters.journal.writer import BatchWriter
from tradecore.adapters.serialization import JSON, dumps
from tradecore.domain.events import Event, EventType
from tradecore.ports.clock import Clock, IdGenerator


@attrs.define
class JournalStats:
    emitted: int = 0
    written: int = 0  # events written straight from the queue
    spooled: int = 0  # events appended to the spool (outage, spill, after close)
    spilled: int = 0  # of those, events spooled because the queue was full
    replayed: int = 0  # events written from the spool
    recovered: int = 0  # events a dead process left in its queue file, taken over at start
    corrupt_lines: int = 0
    outages: int = 0


class Journal:
    """An `EventSink` over a `BatchWriter` and a spool file. Call `start()` inside the loop."""

    def __init__(
        self,
        writer: BatchWriter,
        spool_path: str,
        *,
        clock: Clock | None = None,
        ids: IdGenerator | None = None,
        batch_size: int = 500,
        flush_interval: float = 0.1,
        max_queue: int = 100_000,
        retry_initial: float = 0.25,
        retry_max: float = 5.0,
        write_ahead: bool = True,
    ):
        if batch_size < 1 or max_queue < batch_size:
            raise ValueError("the journal needs batch_size >= 1 and max_queue >= batch_size")
        self._writer = writer
        self._spool = Spool(spool_path)
        self._queue_file = QueueFile(spool_path) if write_ahead else None
        self._rows: dict[uuid.UUID, EventRow] = {}  # rows encoded ahead, for the writer
        self._ahead: list[Event] = []  # emitted in this step of the loop, not on disk yet
        self._clock = clock
        self._ids = ids
        self._batch_size = batch_size
        self._interval = flush_interval
        self._max_queue = max_queue
        self._retry_initial = retry_initial
        self._retry_max = retry_max
        self._retry = retry_initial
        self._queue: deque[Event] = deque()
        self._inflight: list[Event] = []
        self._inflight_spooled = False
        self._wake = asyncio.Event()
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._stalled = False
        self._probed_at_close = False  # closing tries the database once more, not forever
        self._closed = False
        self._available = True
        self._restoring = False
        self._next_probe = 0.0
        self._down_at: datetime | None = None
        self._back_at: datetime | None = None  # when the store found the database back
        self.stats = JournalStats()

    # --- the caller's side -------------------------------------------------------------

    def emit(self, event: Event) -> None:
        """Queue `event`. Never awaits, never raises for database trouble, never drops."""
        self.stats.emitted += 1
        if self._closed:
            self._spool_events([event])
            return
        queue = self._queue
        queue.append(event)
        if self._queue_file is not None:
            self._ahead.append(event)
            if len(self._ahead) == 1:
                try:  # on disk at the loop's next turn, with the rest of this step's events
                    asyncio.get_running_loop().call_soon(self._write_ahead)
                except RuntimeError:  # no loop running: at once
                    self._write_ahead()
        size = len(queue)
        if size >= self._max_queue:
            self._spill()
        elif size >= self._batch_size or size == 1:
            self._wake.set()  # a full batch, or the first event for an idle writer

    async def flush(self) -> None:
        """Return when every event emitted so far is written or spooled."""
        target = self.stats.emitted
        if self._done() >= target:
            return
        if self._task is None or self._task.done():
            self._spool_events(self._take_all())
            return
        future = asyncio.get_running_loop().create_future()
        self._waiters.append((target, future))
        self._wake.set()
        await future

    async def close(self) -> None:
        """Write (or spool) everything, then stop the writer and close the database side."""
        if self._closed:
            return
        self._closing = True
        self._wake.set()
        if self._task is not None and not self._task.done():
            await self._task
        self._spool_events(self._take_all())
        self._trim_queue_file()
        if self._queue_file is not None:  # what the spool could not take is on disk here
            self._queue_file.close(remove=not self._queue and not self._inflight)
        self._closed = True
        self._resolve_waiters()
        try:
            await self._writer.close()
        except Exception as exc:
            logger.warning("journal: closing the database writer failed: {}", exc)

    def database_down(self, error: BaseException) -> None:
        """The store found the database gone: the outage begins now, not at the journal's
        next write (which may come a quiet minute later)."""
        if not self._closed and (self._available or self._restoring):
            self._went_down(error)

    def database_answered(self) -> None:
        """The store found the database back: the outage ends now; probe and replay at once
        instead of at the end of the probe's backoff."""
        if self._closed or self._available:
            return
        self._back_at = self._now()
        self._retry = self._retry_initial
        self._next_probe = self._seconds()
        self._wake.set()

    @property
    def available(self) -> bool:
        """Whether the last contact with the database succeeded."""
        return self._available

    @property
    def spool_pending(self) -> bool:
        return self._spool.pending()

    def start(self) -> None:
        """Start the writer task (replays whatever a previous run left in the spool, and in
        the queue file: the events a killed process had not written)."""
        if self._task is None:
            self._take_over_queue_file()
            self._task = asyncio.get_running_loop().create_task(self._run(), name="journal-writer")

    # --- the writer task ---------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            await self._wait_for_work()
            try:
                await self._cycle()
            except Exception as exc:  # a bug must not stop the journal: keep events safe
                logger.exception("journal: writer cycle failed")
                self._went_down(exc)
                self._spool_events(self._take_all())
            self._trim_queue_file()
            self._resolve_waiters()
            if self._closing and not self._queue:
                return

    async def _wait_for_work(self) -> None:
        """Until there is something to do: a full batch, a flush, the close; else events
        (at most `flush_interval` after the first), a probe or a retry that is due.

        Every wait is on the journal's clock and an idle writer (nothing queued, nothing to
        probe or replay) waits on no timer at all, so in virtual time the writer runs at
        instants that follow from the events alone — the same on every run — and adds no
        deadline while nothing happens."""
        if self._busy() and not self._stalled:
            return
        self._wake.clear()
        idle = self._available and not self._stalled and not self._spool.pending()
        if idle and not self._queue:
            await self._wake.wait()
            if self._busy():
                return
            self._wake.clear()
        wait = self._interval
        if not self._available and not self._queue:
            wait = max(self._interval, self._next_probe - self._seconds())
        await self._sleep_or_wake(wait)

    def _busy(self) -> bool:
        return bool(self._closing or self._waiters or len(self._queue) >= self._batch_size)

    async def _sleep_or_wake(self, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        woken = loop.create_task(self._wake.wait())
        slept = loop.create_task(self._sleep(seconds))
        try:
            await asyncio.wait((woken, slept), return_when=asyncio.FIRST_COMPLETED)
        finally:
            woken.cancel()
            slept.cancel()

    async def _sleep(self, seconds: float) -> None:
        if self._clock is not None:
            await self._clock.sleep(seconds)
        else:
            await asyncio.sleep(seconds)

    def _seconds(self) -> float:
        """Now, in seconds on the journal's clock (the loop's when it has none)."""
        if self._clock is not None:
            return self._clock.now().timestamp()
        return asyncio.get_running_loop().time()

    async def _cycle(self) -> None:
        now = self._seconds()
        last_chance = self._closing and not self._probed_at_close
        if not self._available and (last_chance or now >= self._next_probe):
            self._probed_at_close = self._closing
            await self._probe()
        if self._available and self._spool.pending():
            await self._replay()
        if self._available and self._restoring and not self._spool.pending():
            self._restored()
        self._stalled = False
        while self._queue:
            kept = await self._write_batch(self._take(self._batch_size))
            self._resolve_waiters()
            if not kept:
                self._stalled = True  # neither database nor spool took it: wait, then retry
                return

    async def _write_batch(self, batch: list[Event]) -> bool:
        """Write `batch` or spool it; False if neither worked (it is back in the queue)."""
        self._inflight = batch
        self._inflight_spooled = False
        try:
            if self._available and not self._spool.pending():
                try:
                    await self._writer.write([self._row(e) for e in batch])
                except Exception as exc:
                    self._went_down(exc)
                else:
                    self.stats.written += len(batch)
                    return True
            return self._inflight_spooled or self._spool_events(batch)
        except BaseException:
            # whatever went wrong, the batch is not lost: back to the front of the queue
            if not self._inflight_spooled:
                self._queue.extendleft(reversed(batch))
            raise
        finally:
            self._inflight = []
            self._inflight_spooled = False

    async def _probe(self) -> None:
        try:
            await self._writer.ping()
        except Exception:
            self._next_probe = self._seconds() + self._retry
            self._retry = min(self._retry * 2, self._retry_max)
            return
        self._available = True
        self._restoring = True

    async def _replay(self) -> None:
        """Write the spool to the database in order, a batch at a time, from where it stopped."""
        while self._spool.pending():
            lines, end = self._spool.read(self._batch_size)
            if not lines:
                return
            events = [e for e in (self._decode(offset, raw) for offset, raw in lines) if e]
            if events:
                try:
                    await self._writer.write([safe_row(e) for e in events])
                except Exception as exc:
                    self._went_down(exc)
                    return
            self._spool.commit(end)
            self.stats.replayed += len(events)

    def _decode(self, offset: int, raw: bytes) -> Event | None:
        try:
            return JSON.structure(json.loads(raw), Event)
        except Exception as exc:
            self.stats.corrupt_lines += 1
            self.emit(
                self._own_event(
                    EventType.JOURNAL_SPOOL_CORRUPT,
                    spool=str(self._spool.path),
                    byte_offset=offset,
                    line=raw[:500].decode("utf-8", "replace"),
                    error=f"{type(exc).__name__}: {exc}"[:500],
                )
            )
            return None

    def _went_down(self, exc: BaseException) -> None:
        loop_time = self._seconds()
        if not self._available or self._restoring:
            # Still the same outage (the probe answered but the replay did not get through):
            # one database_unavailable, one database_restored per outage.
            self._available = False
            self._back_at = None
            self._next_probe = loop_time + self._retry
            self._retry = min(self._retry * 2, self._retry_max)
            return
        self._available = False
        self._restoring = False
        self._retry = self._retry_initial
        self._next_probe = loop_time + self._retry
        self._down_at = self._now()
        self.stats.outages += 1
        logger.warning("journal: database unavailable, spooling events: {}", exc)
        self.emit(
            self._own_event(
                EventType.DATABASE_UNAVAILABLE,
                error=f"{type(exc).__name__}: {exc}"[:1000],
                spool=str(self._spool.path),
            )
        )

    def _restored(self) -> None:
        self._restoring = False
        down_at, back_at = self._down_at, self._back_at or self._now()
        self._back_at = None
        outage = (back_at - down_at).total_seconds() if down_at else None
        logger.info("journal: database restored, spool replayed")
        self.emit(
            self._own_event(
                EventType.DATABASE_RESTORED,
                outage_seconds=outage,
                down_at=down_at.isoformat() if down_at else None,
                back_at=back_at.isoformat(),
                replayed_total=self.stats.replayed,
            )
        )

    # --- queue and spool helpers -------------------------------------------------------

    def _take(self, count: int) -> list[Event]:
        self._write_ahead()  # every event on disk (and its row cached) before it leaves
        queue = self._queue
        return [queue.popleft() for _ in range(min(count, len(queue)))]

    def _take_all(self) -> list[Event]:
        self._write_ahead()
        events = list(self._queue)
        self._queue.clear()
        return events

    def _spill(self) -> None:
        """The queue is full: move it (and an unfinished batch) to the spool, oldest first."""
        events: list[Event] = []
        if self._inflight and not self._inflight_spooled:
            events.extend(self._inflight)
            self._inflight_spooled = True  # if its write succeeds after all, replay dedups
        events.extend(self._take_all())
        if self._spool_events(events):
            self.stats.spilled += len(events)
            self._trim_queue_file()
        self._wake.set()

    def _spool_events(self, events: list[Event]) -> bool:
        if not events:
            return True
        try:
            self._spool.append([self._line(e) for e in events])
        except OSError as exc:
            # Disk trouble too: keep the events in memory (the queue grows past its bound)
            # rather than lose them, and try again on the next cycle.
            logger.error("journal: cannot write the spool {}: {}", self._spool.path, exc)
            self._queue.extendleft(reversed(events))
            return False
        self.stats.spooled += len(events)
        return True

    def _take_over_queue_file(self) -> None:
        """What dead journals on this spool path left in their queue files goes to the front
        of this one's queue, ahead of its own events: written (or spooled) like them, and
        their files removed once all of it is (`_trim_queue_file`)."""
        if self._queue_file is None:
            return
        taken: list[Event] = []
        for path, offset, raw in self._queue_file.take_over():
            try:
                row = line_row(raw)
                event = row_event(row)
            except Exception as exc:
                self.stats.corrupt_lines += 1
                self.emit(
                    self._own_event(
                        EventType.JOURNAL_SPOOL_CORRUPT,
                        spool=path,
                        byte_offset=offset,
                        line=raw[:500].decode("utf-8", "replace"),
                        error=f"{type(exc).__name__}: {exc}"[:500],
                    )
                )
                continue
            self._rows[event.id] = row
            taken.append(event)
        if not taken:
            return
        self._queue.extendleft(reversed(taken))
        self.stats.emitted += len(taken)
        self.stats.recovered += len(taken)
        self._wake.set()
        logger.warning(
            "journal: {} event(s) a previous process emitted but did not write, writing now",
            len(taken),
        )

    def _trim_queue_file(self) -> None:
        """Nothing queued and nothing in flight: every event in the queue file is stored or
        spooled, so the file is emptied. Checked without yielding to the loop, so an event
        emitted meanwhile is never cut off."""
        if self._queue_file is None or self._queue or self._inflight:
            return
        self._queue_file.empty()
        self._queue_file.release_taken()
        self._rows.clear()  # every event went through _take: its row is written or spooled

    def _write_ahead(self) -> None:
        """The events emitted since the last turn, as rows, to the queue file in one write."""
        events, self._ahead = self._ahead, []
        if self._queue_file is None or not events:
            return
        rows = self._rows
        lines = []
        for event in events:
            row = rows.get(event.id) or safe_row(event)
            rows[event.id] = row
            lines.append(row_line(row))
        self._queue_file.append("".join(lines))

    def _row(self, event: Event) -> EventRow:
        """The event's row: encoded at `emit` (write-ahead), else now."""
        return self._rows.pop(event.id, None) or safe_row(event)

    def _line(self, event: Event) -> str:
        """The event as a spool line; one whose data cannot be encoded is spooled with the
        data's repr (`safe_row`), never dropped nor raised to the caller."""
        self._rows.pop(event.id, None)
        try:
            return dumps(event)
        except Exception:
            return dumps(row_event(safe_row(event)))

    def _done(self) -> int:
        unfinished = len(self._queue)
        if not self._inflight_spooled:
            unfinished += len(self._inflight)
        return self.stats.emitted - unfinished

    def _resolve_waiters(self) -> None:
        if not self._waiters:
            return
        done = self._done()
        still: list[tuple[int, asyncio.Future[None]]] = []
        for target, future in self._waiters:
            if future.done():
                continue
            if done >= target or self._closed:
                future.set_result(None)
            else:
                still.append((target, future))
        self._waiters = still

    def _now(self) -> datetime:
        return self._clock.now() if self._clock is not None else datetime.now(UTC)

    def _own_event(self, event_type: EventType, **data: Any) -> Event:
        id_ = self._ids.new_uuid() if self._ids is not None else uuid.uuid4()
        return Event(id=id_, type=event_type, created_at=self._now(), data=data)
