"""A process killed (SIGKILL: no handler, no flush) right after it emitted events loses none
of them (promise 2). The journal writes its queue to the database every `flush_interval`
(0.1 s); what it emitted since lived in memory only, so a `kill -9` in that window lost the
events that were not stored with a position's row (a wave's fate, a signal's arrival, a
guard pass's summary). The events of each step of the event loop are now appended to the
journal's queue file at the loop's next turn (`<spool>.queue.<pid>-<token>`, no fsync: a
process kill leaves it in the kernel's page cache), which is emptied once everything in it
is stored or spooled; the next start takes over what a dead process left there and writes
it (an event already stored is skipped by its id). What a kill can still take: the events
of the one step it interrupts, before the loop's next turn."""

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from tradecore.adapters.database import open_journal
from tradecore.adapters.sqlite import SqliteDatabase

EVENTS = 200

CHILD = textwrap.dedent(
    """
    import asyncio, os, signal, sys, uuid
    from datetime import UTC, datetime
    from tradecore.adapters.database import open_journal
    from tradecore.adapters.sqlite import SqliteDatabase
    from tradecore.domain.events import Event, EventType

    async def main(db_path, spool, count):
        database = await SqliteDatabase.connect(db_path)
        journal = open_journal(database, spool)
        journal.start()
        await asyncio.sleep(0)  # the writer task runs: idle, it waits for events
        for n in range(count):
            journal.emit(Event(
                id=uuid.uuid4(), type=EventType.SIGNAL_RECEIVED,
                created_at=datetime.now(UTC), data={"n": n}, symbol="BTCUSDT",
            ))
        await asyncio.sleep(0)  # the loop's next turn; far from the writer's next cycle
        print("emitted", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)

    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
    """
)


async def stored(database: SqliteDatabase) -> list[int]:
    rows = await database.connection.execute_fetchall(
        "SELECT json_extract(event_data, '$.n') FROM events WHERE event_type = 'signal_received'"
    )
    return sorted(int(row[0]) for row in rows)


def test_events_emitted_just_before_a_kill_are_stored_by_the_next_start(tmp_path: Path) -> None:
    db_path, spool = str(tmp_path / "bot.db"), str(tmp_path / "events.spool")
    child = subprocess.run(
        [sys.executable, "-c", CHILD, db_path, spool, str(EVENTS)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    assert "emitted" in child.stdout

    async def restart() -> tuple[list[int], list[int]]:
        database = await SqliteDatabase.connect(db_path)
        try:
            before = await stored(database)
            journal = open_journal(database, spool)
            journal.start()
            await journal.flush()
            await journal.close()
            return before, await stored(database)
        finally:
            await database.close()

    before, after = asyncio.run(restart())
    assert before == []  # the kill came before the journal wrote any of them
    assert after == list(range(EVENTS)), f"{EVENTS - len(after)} of {EVENTS} events lost"
