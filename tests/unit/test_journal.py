"""The journal against a hand-written in-memory database that can be taken down and brought
back: no event lost, none duplicated, order kept, whatever the outages."""

import asyncio
import contextlib
import json
import os
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import attrs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tradecore.adapters.clock import SequentialIds, VirtualClock, settle
from tradecore.adapters.journal import EventRow, Journal
from tradecore.adapters.journal.queue_file import line_row
from tradecore.adapters.serialization import dumps
from tradecore.domain.events import Event, EventType

T0 = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)


class FakeDatabase:
    """Stores rows keyed by id like the real ones (a replayed id is skipped), in arrival order.
    `down` makes every call raise; `gate` (when set) holds writes until it opens."""

    def __init__(self) -> None:
        self.rows: dict[uuid.UUID, EventRow] = {}
        self.down = False
        self.gate: asyncio.Event | None = None
        self.writes = 0

    async def write(self, rows: Sequence[EventRow]) -> None:
        if self.gate is not None:
            await self.gate.wait()
        if self.down:
            raise ConnectionError("database unreachable")
        self.writes += 1
        for row in rows:
            self.rows.setdefault(row[0], row)

    async def ping(self) -> None:
        if self.down:
            raise ConnectionError("database unreachable")

    async def close(self) -> None:
        pass

    def ids_of(self, event_type: EventType) -> list[uuid.UUID]:
        return [row[0] for row in self.rows.values() if row[1] == event_type.value]


def event(n: int, event_type: EventType = EventType.SIGNAL_RECEIVED) -> Event:
    return Event(
        id=uuid.uuid4(),
        type=event_type,
        created_at=T0 + timedelta(milliseconds=n),
        data={"n": n, "price": Decimal("0.00000001234")},
        symbol="BTCUSDT",
    )


def journal(db: FakeDatabase, tmp_path: Path, **options: float) -> Journal:
    settings_ = {"flush_interval": 0.001, "retry_initial": 0.001, "retry_max": 0.005}
    settings_.update(options)
    j = Journal(db, str(tmp_path / "journal.spool"), **settings_)  # type: ignore[arg-type]
    j.start()
    return j


async def until(condition: "object", timeout: float = 60.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():  # type: ignore[operator]
        assert asyncio.get_running_loop().time() < deadline, "condition never became true"
        await asyncio.sleep(0.001)


async def test_every_emitted_event_is_written_once_in_emission_order(tmp_path: Path) -> None:
    db = FakeDatabase()
    j = journal(db, tmp_path)
    events = [event(n) for n in range(1234)]
    for e in events:
        j.emit(e)
    await j.close()
    assert db.ids_of(EventType.SIGNAL_RECEIVED) == [e.id for e in events]


async def test_events_emitted_while_the_database_is_down_are_replayed_in_order_when_it_returns(
    tmp_path: Path,
) -> None:
    db = FakeDatabase()
    j = journal(db, tmp_path)
    before = [event(n) for n in range(10)]
    for e in before:
        j.emit(e)
    await j.flush()
    db.down = True
    during = [event(n) for n in range(10, 700)]
    for e in during:
        j.emit(e)
    await j.flush()
    assert not j.available
    assert j.spool_pending
    db.down = False
    after = [event(n) for n in range(700, 720)]
    for e in after:
        j.emit(e)
    await until(lambda: j.available and not j.spool_pending)
    await j.close()
    assert db.ids_of(EventType.SIGNAL_RECEIVED) == [e.id for e in before + during + after]
    assert len(db.ids_of(EventType.DATABASE_UNAVAILABLE)) == 1
    assert len(db.ids_of(EventType.DATABASE_RESTORED)) == 1


async def test_the_outage_is_recorded_before_the_restoration(tmp_path: Path) -> None:
    db = FakeDatabase()
    j = journal(db, tmp_path)
    db.down = True
    j.emit(event(0))
    await until(lambda: not j.available)
    db.down = False
    await until(lambda: j.available and not j.spool_pending)
    await j.close()
    types = [row[1] for row in db.rows.values()]
    unavailable = types.index(EventType.DATABASE_UNAVAILABLE.value)
    assert types.index(EventType.DATABASE_RESTORED.value) > unavailable


async def test_a_full_queue_spills_to_the_spool_instead_of_blocking_or_dropping(
    tmp_path: Path,
) -> None:
    db = FakeDatabase()
    j = journal(db, tmp_path, batch_size=10, max_queue=50)
    events = [event(n) for n in range(1000)]
    for e in events:  # no await: the writer never runs, the queue overflows again and again
        j.emit(e)
    assert j.stats.spilled >= 950
    await j.close()
    assert db.ids_of(EventType.SIGNAL_RECEIVED) == [e.id for e in events]


async def test_a_spill_during_a_slow_write_keeps_order_and_creates_no_duplicate(
    tmp_path: Path,
) -> None:
    db = FakeDatabase()
    db.gate = asyncio.Event()
    j = journal(db, tmp_path, batch_size=10, max_queue=30)
    first = [event(n) for n in range(10)]
    for e in first:
        j.emit(e)
    await until(lambda: j._inflight)  # the writer is inside write(), held at the gate
    rest = [event(n) for n in range(10, 105)]  # spills twice, leaves 5 in the queue
    for e in rest:
        j.emit(e)  # overflows while the first batch is still in flight
    db.gate.set()
    await until(lambda: not j.spool_pending)
    await j.close()
    assert db.ids_of(EventType.SIGNAL_RECEIVED) == [e.id for e in first + rest]


async def test_a_write_that_fails_after_a_spill_is_not_spooled_twice(tmp_path: Path) -> None:
    db = FakeDatabase()
    db.gate = asyncio.Event()
    j = journal(db, tmp_path, batch_size=10, max_queue=30)
    events = [event(n) for n in range(100)]
    for e in events[:10]:
        j.emit(e)
    await until(lambda: j._inflight)
    for e in events[10:]:
        j.emit(e)
    db.down = True
    db.gate.set()
    await until(lambda: not j.available)
    spooled = (tmp_path / "journal.spool").read_text().splitlines()
    spooled_ids = [json.loads(line)["id"] for line in spooled]
    assert len(spooled_ids) == len(set(spooled_ids))
    db.down = False
    await until(lambda: j.available and not j.spool_pending)
    await j.close()
    assert db.ids_of(EventType.SIGNAL_RECEIVED) == [e.id for e in events]


async def test_flush_returns_once_every_event_so_far_is_written(tmp_path: Path) -> None:
    db = FakeDatabase()
    j = journal(db, tmp_path, flush_interval=60.0)
    events = [event(n) for n in range(7)]
    for e in events:
        j.emit(e)
    await j.flush()
    assert db.ids_of(EventType.SIGNAL_RECEIVED) == [e.id for e in events]
    await j.close()


async def test_a_corrupt_spool_line_is_skipped_with_an_event_and_the_rest_replayed(
    tmp_path: Path,
) -> None:
    good = [event(n) for n in range(4)]
    spool = tmp_path / "journal.spool"
    lines = [
        dumps(good[0]),
        "this is not json",
        dumps(good[1]),
        '{"id": "not-a-uuid", "type": "bot_started"}',
        dumps(good[2]),
        dumps(good[3])[:20],  # torn: a crash in the middle of an append
    ]
    spool.write_text("\n".join(lines))  # no final newline, as a crash would leave it
    db = FakeDatabase()
    j = journal(db, tmp_path)
    await until(lambda: not j.spool_pending)
    await j.close()
    assert db.ids_of(EventType.SIGNAL_RECEIVED) == [e.id for e in good[:3]]
    corrupt = [r for r in db.rows.values() if r[1] == EventType.JOURNAL_SPOOL_CORRUPT.value]
    assert len(corrupt) == 3
    assert all("byte_offset" in json.loads(r[2]) for r in corrupt)


async def test_events_emitted_after_close_are_kept_in_the_spool(tmp_path: Path) -> None:
    db = FakeDatabase()
    j = journal(db, tmp_path)
    await j.close()
    late = event(1)
    j.emit(late)
    again = journal(db, tmp_path)
    await until(lambda: not again.spool_pending)
    await again.close()
    assert db.ids_of(EventType.SIGNAL_RECEIVED) == [late.id]


async def test_close_with_the_database_down_leaves_everything_in_the_spool_for_next_start(
    tmp_path: Path,
) -> None:
    db = FakeDatabase()
    db.down = True
    j = journal(db, tmp_path)
    events = [event(n) for n in range(25)]
    for e in events:
        j.emit(e)
    await j.close()
    assert db.rows == {}
    db.down = False
    restarted = journal(db, tmp_path)
    await until(lambda: not restarted.spool_pending)
    await restarted.close()
    assert db.ids_of(EventType.SIGNAL_RECEIVED) == [e.id for e in events]


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    steps=st.lists(
        st.one_of(
            st.tuples(st.just("emit"), st.integers(1, 120)),
            st.tuples(st.just("down"), st.booleans()),
            st.tuples(st.just("run"), st.integers(0, 3)),
        ),
        max_size=25,
    )
)
async def test_no_sequence_of_outages_loses_reorders_or_duplicates_an_event(
    tmp_path_factory: "object", steps: list[tuple[str, object]]
) -> None:
    tmp = tmp_path_factory.mktemp("journal")  # type: ignore[attr-defined]
    db = FakeDatabase()
    j = journal(db, tmp, batch_size=16, max_queue=64)
    emitted: list[uuid.UUID] = []
    for action, value in steps:
        if action == "emit":
            for _ in range(int(value)):  # type: ignore[call-overload]
                e = event(len(emitted))
                emitted.append(e.id)
                j.emit(e)
        elif action == "down":
            db.down = bool(value)
        else:
            for _ in range(int(value)):  # type: ignore[call-overload]
                await asyncio.sleep(0.002)
    db.down = False
    await until(lambda: j.available and not j.spool_pending)
    await j.close()
    assert db.ids_of(EventType.SIGNAL_RECEIVED) == emitted
    # every outage is reported once, and its end once
    outages = len(db.ids_of(EventType.DATABASE_UNAVAILABLE))
    assert outages == len(db.ids_of(EventType.DATABASE_RESTORED))


async def test_events_wait_in_memory_while_neither_database_nor_spool_can_take_them(
    tmp_path: Path,
) -> None:
    db = FakeDatabase()
    db.down = True
    j = journal(db, tmp_path, flush_interval=0.005)
    spool = tmp_path / "journal.spool"
    spool.unlink(missing_ok=True)
    spool.mkdir()  # appending to it now fails like a full or broken disk
    events = [event(n) for n in range(50)]
    for e in events:
        j.emit(e)
    await asyncio.sleep(0.05)
    assert j.stats.spooled == 0
    spool.rmdir()
    db.down = False
    await until(lambda: j.available and not j.spool_pending)
    await j.close()
    assert db.ids_of(EventType.SIGNAL_RECEIVED) == [e.id for e in events]


async def test_on_a_virtual_clock_the_journal_writes_at_instants_the_events_decide(
    tmp_path: Path,
) -> None:
    # Determinism (docs/testing.md): no real timer decides when a batch is written, and an
    # idle journal leaves no deadline for the virtual clock to step through.
    clock = VirtualClock(T0)
    db = FakeDatabase()
    j = Journal(db, str(tmp_path / "journal.spool"), clock=clock, flush_interval=0.1)
    j.start()
    await settle()
    assert clock.next_deadline() is None  # idle: no timer at all
    j.emit(event(1))
    j.emit(event(2))
    await settle()
    assert clock.next_deadline() == T0 + timedelta(seconds=0.1)
    await asyncio.sleep(0.05)  # real time passes: nothing is written before the clock moves
    assert db.writes == 0
    await clock.advance(0.1)
    assert db.writes == 1 and len(db.rows) == 2  # one batch, written at T0 + 0.1 s
    assert clock.next_deadline() is None
    await j.close()


async def test_a_journal_given_ids_names_its_own_events_with_them(tmp_path: Path) -> None:
    db = FakeDatabase()
    ids = SequentialIds("j")
    j = Journal(db, str(tmp_path / "journal.spool"), ids=ids, flush_interval=0.001)
    j.start()
    db.down = True
    j.emit(event(1))
    await j.flush()
    db.down = False
    j.emit(event(2))
    await until(lambda: j.available and not j.spool_pending)
    await j.close()
    own = db.ids_of(EventType.DATABASE_UNAVAILABLE) + db.ids_of(EventType.DATABASE_RESTORED)
    made = SequentialIds("j")
    assert sorted(own) == [made.new_uuid(), made.new_uuid()]


def queue_lines(tmp_path: Path) -> list[bytes]:
    """Every line in the journals' queue files on `tmp_path`'s spool path."""
    return [
        line
        for path in sorted(tmp_path.glob("journal.spool.queue.*"))
        for line in path.read_bytes().splitlines()
    ]


async def test_the_queue_file_holds_only_what_is_not_written_yet(tmp_path: Path) -> None:
    """Each event is on disk from the loop's turn after its emit (`<spool>.queue.<pid>-<token>`,
    one write for the events of a step) until the database
    or the spool holds it; the file is emptied then, so it never grows with the journal, and
    removed when the journal closes with everything written."""
    db = FakeDatabase()
    db.gate = asyncio.Event()  # the database holds the first write
    j = journal(db, tmp_path)
    for n in range(5):
        j.emit(event(n))
    await asyncio.sleep(0)  # the loop's next turn
    assert len(queue_lines(tmp_path)) == 5  # on disk before any write
    db.gate.set()
    await j.flush()
    await until(lambda: queue_lines(tmp_path) == [])
    j.emit(event(5))
    await j.close()
    assert queue_files(tmp_path) == []
    assert len(db.rows) == 6


def queue_files(tmp_path: Path) -> list[Path]:
    """The journals' queue files on `tmp_path`'s spool path."""
    return sorted(tmp_path.glob("journal.spool.queue.*"))


async def killed(j: Journal) -> None:
    """What a kill -9 does to a journal: its writer stops, nothing is closed or flushed, and
    its file descriptors (with their locks) go as the kernel lets a dead process's go."""
    if j._task is not None:
        j._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await j._task
    queue_file = j._queue_file
    assert queue_file is not None
    descriptors = [fd for _, fd in queue_file._taken]
    if queue_file._fd is not None:
        descriptors.append(queue_file._fd)
    for fd in descriptors:
        os.close(fd)
    queue_file._fd, queue_file._taken = None, []


async def died_with(db: FakeDatabase, tmp_path: Path, count: int) -> list[Event]:
    """`count` events a journal emitted (on disk after the loop's next turn) and never
    wrote: `db` holds its writes back, then the process dies."""
    db.gate = asyncio.Event()
    dying = journal(db, tmp_path)
    dead = [event(n) for n in range(count)]
    for e in dead:
        dying.emit(e)
    await asyncio.sleep(0)
    await killed(dying)
    return dead


async def test_a_dead_journal_s_events_are_written_by_the_next_one(tmp_path: Path) -> None:
    db = FakeDatabase()
    dead = await died_with(db, tmp_path, 3)  # nothing written before the process died
    db.gate.set()
    j = journal(db, tmp_path)
    j.emit(event(3))
    await j.close()
    assert all(e.id in db.rows for e in dead)
    assert j.stats.recovered == 3
    assert queue_files(tmp_path) == []  # all written: files removed


async def test_a_dead_journal_s_events_survive_a_start_that_cannot_write_them(
    tmp_path: Path,
) -> None:
    """(review 15) The next start finds the database down and the disk full: the dead
    process's events stay on disk, in its file, for the start after that."""
    db = FakeDatabase()
    dead = await died_with(db, tmp_path, 3)
    db.gate = None
    db.down = True
    j = journal(db, tmp_path)
    j._spool.append = _disk_full  # type: ignore[method-assign]
    j.emit(event(10))
    await asyncio.sleep(0.05)  # cycles that can neither write nor spool
    await killed(j)
    assert {e.id for e in dead} <= {line_row(line)[0] for line in queue_lines(tmp_path)}
    db.down = False
    survivor = journal(db, tmp_path)
    await survivor.close()
    assert all(e.id in db.rows for e in dead)


def _disk_full(lines: list[str]) -> None:
    raise OSError(28, "No space left on device")


async def test_a_live_journal_s_queue_file_is_left_alone(tmp_path: Path) -> None:
    """(review 15) A second journal on the same spool path (`venue-check` beside the bot)
    neither takes the live one's events over nor empties its file."""
    db = FakeDatabase()
    db.gate = asyncio.Event()
    live = journal(db, tmp_path)
    waiting = event(1)
    live.emit(waiting)
    await asyncio.sleep(0)
    other = journal(FakeDatabase(), tmp_path)
    other.emit(event(2))
    await other.close()
    assert other.stats.recovered == 0
    assert waiting.id in {line_row(line)[0] for line in queue_lines(tmp_path)}
    db.gate.set()
    await live.close()


async def test_an_event_whose_data_cannot_be_encoded_is_stored_and_emit_never_raises(
    tmp_path: Path,
) -> None:
    """(review 15) Data JSON cannot hold (a tuple key) is stored as its repr, as the writer
    stores it; emit does not raise, and a batch it is in is spooled whole in an outage."""
    db = FakeDatabase()
    db.down = True
    j = journal(db, tmp_path)
    odd = attrs.evolve(event(0), data={("a", 1): "tuple key"})
    good = [event(n) for n in range(1, 4)]
    j.emit(odd)  # raises nothing
    for e in good:
        j.emit(e)
    await until(lambda: j.stats.spooled >= 4)
    db.down = False
    await j.close()
    assert all(e.id in db.rows for e in good)
    assert "unencodable_data" in db.rows[odd.id][2]


async def test_the_queue_file_is_written_again_after_a_failed_write(tmp_path: Path) -> None:
    """(review 15) A write that fails (a full disk for a moment) does not switch the queue
    file off for the rest of the process's life."""
    db = FakeDatabase()
    db.gate = asyncio.Event()
    j = journal(db, tmp_path)
    j.emit(event(0))
    await asyncio.sleep(0)
    queue_file = j._queue_file
    assert queue_file is not None and queue_file._fd is not None
    real_fd = queue_file._fd
    queue_file._fd = 10**6  # a descriptor that fails the next write
    j.emit(event(1))
    await asyncio.sleep(0)
    queue_file._fd = real_fd
    later = event(2)
    j.emit(later)
    await asyncio.sleep(0)
    assert later.id in {line_row(line)[0] for line in queue_lines(tmp_path)}
    db.gate.set()
    await j.close()
