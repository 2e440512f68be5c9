"""A position's change and the event that records it are one write (promise 2).

Found by the simulator beyond the CI seeds (bybit seed 1607): a person tightened a position's
stop by hand; the guard took the tighter level as the bot's, saved the position — and the
process died before the event saying so was emitted. The row held the new level, no event
did: the journal could not tell the bot's level was now the person's, and whoever reads the
events (an operator, an audit, the simulator's checker) held the bot to the older one.

The position's row and its events are now written in one transaction: a crash after the
save finds the event stored with the row; a crash before it finds neither. Killed at every
await of the guard's adoption (before and after each), on both venues and both databases,
the level the journal's events last recorded for the position is the level its row holds.
"""

import contextlib
import json
from datetime import datetime
from decimal import Decimal
from typing import Any

import asyncpg

from tradecore.adapters.sqlite import SqliteDatabase
from tradecore.app.kernel import Kernel
from tradecore.domain.events import EventType
from tradecore.domain.model import Side

from .conftest import Database, Opener
from .crash import Crash, Tripwire
from .harness import App, build_app
from .test_crash import QTY, fresh, profile, tripped  # noqa: F401 (profile: a fixture)

_STOP_EVENTS = (EventType.STOP_LOSS_PLACED.value, EventType.STOP_LOSS_REPLACED.value)


async def stored_stop_events(database: Database) -> list[dict[str, Any]]:
    """The stop events in the database's events table, in the order they were stored."""
    sql = (
        "SELECT id, event_type, event_data, position_id, created_at AS at FROM events "
        f"WHERE event_type IN {_STOP_EVENTS!r} ORDER BY created_at"
    )
    if isinstance(database, SqliteDatabase):
        rows = [dict(row) for row in await database.connection.execute_fetchall(sql)]
    else:
        connection = await asyncpg.connect(database.dsn)  # type: ignore[attr-defined]
        try:
            rows = [dict(row) for row in await connection.fetch(sql)]
        finally:
            await connection.close()
    for row in rows:
        row["id"] = str(row["id"])
        data = row["event_data"]
        row["event_data"] = json.loads(data) if isinstance(data, str) else data
        at = row["at"]
        row["at"] = datetime.fromisoformat(at) if isinstance(at, str) else at
    return rows


def emitted_stop_events(*apps: App) -> list[dict[str, Any]]:
    return [
        {
            "id": str(e.id),
            "event_type": e.type.value,
            "event_data": json.loads(json.dumps(e.data, default=str)),
            "position_id": e.position_id,
            "at": e.created_at,
        }
        for app in apps
        for e in app.sink.events
        if e.type.value in _STOP_EVENTS
    ]


async def last_journaled_level(database: Database, position_id: str, *apps: App) -> Decimal:
    """The level the last stop event of the position records: the events each process
    emitted and the ones the database holds (a process's sink may have died with it)."""
    events = {e["id"]: e for e in emitted_stop_events(*apps)}
    for row in await stored_stop_events(database):
        events.setdefault(row["id"], row)
    mine = sorted(
        (e for e in events.values() if e["position_id"] == position_id), key=lambda e: e["at"]
    )
    assert mine, "no stop event recorded for the position"
    return Decimal(str(mine[-1]["event_data"]["price"]))


async def test_a_crash_anywhere_in_adopting_a_persons_tighter_stop_leaves_its_event(
    profile: str,  # noqa: F811
    open_database: Opener,
) -> None:
    checked = 0
    for at in range(1, 60):
        completed = True
        for after in (False, True):
            venue, database = await fresh(profile, open_database)
            setup = build_app(venue, database.store)
            opened = await setup.open("BTCUSDT", Side.LONG, QTY)
            assert opened.position is not None
            venue.move_stop("BTCUSDT", "49700")  # a person tightens the bot's stop by hand
            wire = Tripwire(at, after=after)
            dying = tripped(venue, database, wire)
            with contextlib.suppress(Crash):
                await dying.run(dying.guard.check())
            completed = completed and not wire.fired
            survivor = build_app(venue, database.store)
            await survivor.run(Kernel(survivor.parts).start(loops=False))
            row = await database.store.positions.get(opened.position.id)
            assert row is not None and row.stop_price == Decimal("49700")
            journaled = await last_journaled_level(
                database, opened.position.id, setup, dying, survivor
            )
            assert journaled == row.stop_price, (
                f"killed {'after' if after else 'before'} await {at}: the row holds "
                f"{row.stop_price}, the journal's events last say {journaled}"
            )
            checked += 1
            await database.close()
        if completed:
            break
    assert checked >= 6  # the adoption really has awaits to die at
