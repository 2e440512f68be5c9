"""Review 16 of the journal's queue file (d92cb39): lone surrogates, the row cache's bound,
a start racing a live journal's first open, a short write, take-over and round trips."""

import asyncio
import fcntl
import json as _json
import os
import uuid
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.test_journal import (
    T0,
    FakeDatabase,
    event,
    journal,
    killed,
    queue_files,
    queue_lines,
)
from tradecore.adapters.journal import Journal
from tradecore.adapters.journal.queue_file import line_row, row_event, row_line
from tradecore.adapters.journal.rows import safe_row
from tradecore.adapters.serialization import JSON, dumps
from tradecore.domain.events import Event, EventType, Severity


async def test_a_lone_surrogate_in_an_error_message_keeps_the_step_on_disk(tmp_path):
    db = FakeDatabase()
    db.gate = asyncio.Event()  # the writer never finishes: everything stays queued
    j = journal(db, tmp_path)
    good = event(1)
    bad = Event(
        id=uuid.uuid4(),
        type=EventType.SIGNAL_RECEIVED,
        created_at=T0,
        error_message="venue said: \ud83d",
    )  # a truncated emoji from a JSON reply
    j.emit(good)
    j.emit(bad)
    await asyncio.sleep(0.01)
    ids = [line_row(line)[0] for line in queue_lines(tmp_path)]
    assert good.id in ids, f"the good event is not in the queue file: {ids}"


def test_emit_without_a_loop_does_not_raise_on_a_lone_surrogate(tmp_path):
    db = FakeDatabase()
    j = Journal(db, str(tmp_path / "journal.spool"))
    bad = Event(
        id=uuid.uuid4(), type=EventType.SIGNAL_RECEIVED, created_at=T0, stack_trace="\udcff"
    )
    j.emit(bad)  # "never raises"


async def _steady(tmp_path, down, n=20000, **opts):
    db = FakeDatabase()
    db.down = down
    j = journal(db, tmp_path, **opts)
    peak = 0
    for k in range(n):
        j.emit(event(k))
        await asyncio.sleep(0)
        peak = max(peak, len(j._rows))
    left = len(j._rows)
    await j.close()
    return peak, left, j


async def test_rows_bounded_database_up(tmp_path):
    peak, left, _ = await _steady(tmp_path, down=False)
    assert peak < 2000, (peak, left)


async def test_rows_bounded_database_down(tmp_path):
    peak, left, _ = await _steady(tmp_path, down=True)
    assert peak < 2000, (peak, left)


def test_two_journals_in_one_process_leave_each_others_live_file_alone(tmp_path):
    async def main():
        db1, db2 = FakeDatabase(), FakeDatabase()
        db1.gate = asyncio.Event()
        j1 = journal(db1, tmp_path)
        e = event(1)
        j1.emit(e)
        await asyncio.sleep(0)  # on disk
        j2 = journal(db2, tmp_path)
        await j2.flush()
        assert j2.stats.recovered == 0
        db1.gate.set()
        await j1.close()
        await j2.close()
        assert queue_files(tmp_path) == []

    asyncio.run(main())


def test_a_start_racing_a_live_journal_s_first_open_leaves_it_a_file_found_later(
    tmp_path, monkeypatch
):
    """B's take-over opens A's freshly created file between A's open(O_CREAT) and A's flock;
    B's release then unlinks it between A's retried open and flock. A must not be left
    writing, for its whole life, to a file no later start can find: killed, its unwritten
    events are taken over."""
    import tradecore.adapters.journal.queue_file as qf

    real_flock = fcntl.flock

    async def main():
        dba, dbb = FakeDatabase(), FakeDatabase()
        dba.gate = asyncio.Event()  # A never gets to write: its events stay queued
        a = Journal(dba, str(tmp_path / "journal.spool"))
        a.start()
        b = Journal(dbb, str(tmp_path / "journal.spool"))
        step = {"n": 0, "inside": False}

        def racing_flock(fd, op):
            if (
                not step["inside"]
                and op & fcntl.LOCK_NB
                and os.readlink(f"/proc/self/fd/{fd}") == a._queue_file.path
            ):
                step["inside"] = True
                step["n"] += 1
                if step["n"] == 1:
                    b.start()  # B starts now: takes A's empty new file over
                elif step["n"] == 2:
                    b._trim_queue_file()  # B's first trim: releases (unlinks) it
                step["inside"] = False
            return real_flock(fd, op)

        monkeypatch.setattr(qf.fcntl, "flock", racing_flock)
        e1, e2 = event(1), event(2)
        a.emit(e1)
        await asyncio.sleep(0)
        a.emit(e2)
        await asyncio.sleep(0)
        monkeypatch.setattr(qf.fcntl, "flock", real_flock)
        # A is now killed (never closed): its locks go with it. A fresh start takes over:
        assert "(deleted)" not in os.readlink(f"/proc/self/fd/{a._queue_file._fd}")
        await killed(a)
        c = Journal(FakeDatabase(), str(tmp_path / "journal.spool"))
        c.start()
        recovered = [ev.id for ev in c._queue]
        assert e1.id in recovered and e2.id in recovered, (recovered, os.listdir(tmp_path))

    asyncio.run(main())


def test_a_short_write_then_enospc_loses_no_whole_event(tmp_path, monkeypatch):
    import errno

    import tradecore.adapters.journal.queue_file as qf

    real_write = os.write
    calls = {"n": 0}

    def full_disk_once(fd, data):
        calls["n"] += 1
        if calls["n"] == 1:
            return real_write(fd, bytes(data[: len(data) // 2]))  # short write: disk filled up
        if calls["n"] == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    async def main():
        db = FakeDatabase()
        db.gate = asyncio.Event()  # nothing gets stored before the kill
        a = journal(db, tmp_path)
        monkeypatch.setattr(qf.os, "write", full_disk_once)
        e1 = event(1)
        a.emit(e1)
        await asyncio.sleep(0)  # torn on disk (space freed after)
        e2 = event(2)
        a.emit(e2)
        await asyncio.sleep(0)  # written whole, after the fragment
        monkeypatch.setattr(qf.os, "write", real_write)
        await killed(a)  # the next start:
        c = Journal(FakeDatabase(), str(tmp_path / "journal.spool"))
        c.start()
        recovered = [ev.id for ev in c._queue if ev.type == EventType.SIGNAL_RECEIVED]
        assert e2.id in recovered, (recovered, c.stats.corrupt_lines)

    asyncio.run(main())


text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)  # no lone surrogates
maybe = st.none() | text
leaf = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | text
    | st.decimals(allow_nan=False, allow_infinity=False)
)
data = st.dictionaries(
    text,
    st.recursive(
        leaf, lambda c: st.lists(c, max_size=3) | st.dictionaries(text, c, max_size=3), max_leaves=8
    ),
    max_size=5,
)
zones = st.sampled_from(
    [UTC, ZoneInfo("Europe/Berlin"), ZoneInfo("America/St_Johns"), ZoneInfo("Asia/Kolkata")]
)
events = st.builds(
    lambda t, sev, d, c, p, o, s, x, em, stck, when, tz: Event(
        id=uuid.uuid4(),
        type=t,
        severity=sev,
        data=d,
        correlation_id=c,
        position_id=p,
        order_id=o,
        symbol=s,
        exchange=x,
        error_message=em,
        stack_trace=stck,
        created_at=when.replace(tzinfo=tz),
    ),
    st.sampled_from(list(EventType)),
    st.sampled_from(list(Severity)),
    data,
    maybe,
    maybe,
    maybe,
    maybe,
    maybe,
    maybe,
    maybe,
    st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2100, 1, 1)),
    zones,
)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(events)
def test_a_queue_line_round_trips_to_the_same_row_by_both_routes(e):
    row = safe_row(e)
    line = row_line(row)
    assert line.count("\n") == 1 and line.endswith("\n")
    back = line_row(line.encode().rstrip(b"\n"))
    assert back == row
    # route 1: the writer stores the cached row itself; route 2: spooled (_line), replayed
    recovered = row_event(back)
    assert safe_row(recovered) == row
    spooled = dumps(recovered)
    replayed = JSON.structure(_json.loads(spooled), Event)
    assert safe_row(replayed) == row


def test_torn_last_line_and_a_taker_killed_before_release(tmp_path):
    async def main():
        dba = FakeDatabase()
        dba.gate = asyncio.Event()
        a = journal(dba, tmp_path)
        es = [event(n) for n in range(3)]
        for e in es:
            a.emit(e)
        await asyncio.sleep(0)
        path = a._queue_file.path
        await killed(a)
        with open(path, "ab") as f:
            f.write(b'["deadbeef')  # a torn line at the end
        dbb = FakeDatabase()
        dbb.gate = asyncio.Event()
        b = journal(dbb, tmp_path)  # takes A's file over, cannot write it, is killed
        b.emit(event(99))
        await asyncio.sleep(0)
        await killed(b)
        dbc = FakeDatabase()
        c = journal(dbc, tmp_path)
        await c.flush()
        await c.close()
        got = set(dbc.rows)
        assert all(e.id in got for e in es)
        assert queue_files(tmp_path) == []
        assert len(dbc.ids_of(EventType.JOURNAL_SPOOL_CORRUPT)) >= 1

    asyncio.run(main())


def test_no_descriptor_leaks_over_many_restarts(tmp_path):
    async def main():
        before = len(os.listdir("/proc/self/fd"))
        for k in range(40):
            db = FakeDatabase()
            db.gate = asyncio.Event()
            a = journal(db, tmp_path)
            a.emit(event(k))
            await asyncio.sleep(0)
            await killed(a)
            b = journal(FakeDatabase(), tmp_path)
            await b.flush()
            await b.close()
        after = len(os.listdir("/proc/self/fd"))
        assert after - before < 5, (before, after)
        assert queue_files(tmp_path) == []

    asyncio.run(main())


async def test_rows_bounded_when_spilling(tmp_path):
    db = FakeDatabase()
    db.gate = asyncio.Event()  # a write that hangs: the queue fills up
    j = journal(db, tmp_path, batch_size=10, max_queue=10)
    for k in range(2000):
        for i in range(5):
            j.emit(event(k * 5 + i))
        await asyncio.sleep(0)
    rows = len(j._rows)
    lines = len(queue_lines(tmp_path))
    db.gate.set()
    await j.close()
    assert rows < 100 and lines < 100, (rows, lines, j.stats.spilled)


async def test_a_lone_surrogate_is_stored_not_a_journal_stopped(tmp_path: Path) -> None:
    """(review 16) A venue's message cut in the middle of an emoji: SQLite (UTF-8) could not
    take the row, the journal took the database for down and spooled everything after it,
    replaying the same failure forever. The lone surrogate is stored as U+FFFD."""
    from tradecore.adapters.database import open_journal
    from tradecore.adapters.sqlite import SqliteDatabase

    database = await SqliteDatabase.connect(":memory:")
    try:
        j = open_journal(database, str(tmp_path / "journal.spool"))
        j.start()
        cut = Event(
            id=uuid.uuid4(),
            type=EventType.SIGNAL_RECEIVED,
            created_at=T0,
            error_message="venue said: \ud83d",
            data={"text": "half \udc00 of it"},
        )
        after = event(1)
        j.emit(cut)
        j.emit(after)
        await j.close()
        assert j.available and j.stats.spooled == 0
        rows = await database.connection.execute_fetchall(
            "SELECT error_message, event_data FROM events WHERE id IN (?, ?)",
            (str(cut.id), str(after.id)),
        )
        assert len(rows) == 2
        assert ("venue said: \ufffd", '{"text":"half \\ufffd of it"}') in [tuple(r) for r in rows]
    finally:
        await database.close()


def test_a_paper_session_never_shares_the_live_bot_s_spool() -> None:
    """(review 16) A paper session on a database in memory or on a server used the live bot's
    spool path: its start took the bot's spooled events and queue files over."""
    from tradecore.wiring.config import Config
    from tradecore.wiring.paper import _spool_for

    config = Config()
    live = config.database.spool_path
    memory = _spool_for("sqlite:///:memory:", config)
    server = _spool_for("postgresql://u:secret@db/paper", config)
    assert live not in (memory, server)
    assert "secret" not in server
    assert _spool_for("postgresql://u:secret@db/other", config) != server
