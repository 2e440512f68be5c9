"""A venue that amends stops in place and has no position-attached stop (`amend_stop` on,
`position_stop` off; Bybit's profile with its trading-stop endpoint switched off). A person
cancelled the bot's trailed stop; the next trailing move's amend is answered "order not
found" and its create is refused, and the process dies before it tries again. The journal
keeps the last level the bot set, so the restart puts the stop back there, never at the
initial distance (issue 10, story 3's rule)."""

from datetime import timedelta
from decimal import Decimal

import attrs

from tradecore.adapters.journal import event_row
from tradecore.adapters.paper import BYBIT
from tradecore.adapters.reporting.monitor import take_snapshot
from tradecore.adapters.reporting.source import Reader
from tradecore.adapters.sql.executor import SqliteCodec
from tradecore.adapters.sqlite.executor import SqliteExecutor
from tradecore.domain.events import EventType
from tradecore.domain.model import Side
from tradecore.testing import FakeVenue, Fault, Op, RejectReason

from .conftest import ROUND_TRIP
from .outside import mark_moves, running


def amending_venue() -> FakeVenue:
    capabilities = attrs.evolve(BYBIT.capabilities, position_stop=False, entry_stop=False)
    profile = attrs.evolve(BYBIT, capabilities=capabilities)
    return FakeVenue(profile, marks={"BTCUSDT": "50000"}, latency=ROUND_TRIP)


async def test_a_move_that_finds_its_stop_gone_and_is_refused_keeps_the_trailed_level() -> None:
    venue = amending_venue()
    async with running(venue) as app:
        await app.open("BTCUSDT", Side.LONG, "0.01")
        [position] = await app.store.positions.open_positions()
        await app.services.trailing.start(position)

        await mark_moves(app, venue, "50900")  # activation: the stop is trailed
        [trailed] = venue.stops("BTCUSDT")
        assert trailed.trigger_price is not None and trailed.trigger_price > Decimal("48500")
        assert app.events.of(EventType.STOP_LOSS_REPLACED)[-1].data["method"] == "amend"

        venue.cancel_stop("BTCUSDT")  # a person
        venue.inject(Fault.reject(RejectReason.SYMBOL_UNAVAILABLE, Op.STOP_ORDER))
        await mark_moves(app, venue, "51500", then=1)  # amend: order not found; the create: refused
        assert app.events.of(EventType.STOP_LOSS_FAILED)
        await app.crash()  # before the trailing stop tries again
        [journaled] = await app.store.positions.open_positions()
        assert journaled.stop_price == trailed.trigger_price  # the bot's level (gone order named)

        await app.restart()
        await app.guard_pass()
        [stop] = venue.stops("BTCUSDT")
        assert stop.trigger_price is not None
        assert stop.trigger_price >= trailed.trigger_price, (stop.trigger_price, trailed)


async def test_the_monitor_shows_it_unprotected_while_the_bot_is_down() -> None:
    """(review 14) The same story up to the crash: the venue holds no stop, and the
    standalone monitor — the only watcher while the bot is down, reading the journal —
    lists the position as unprotected. The journal still names the gone stop at the bot's
    level (what the guard restores), so the move said so when it failed:
    `unprotected_position_found`."""
    venue = amending_venue()
    async with running(venue) as app:
        await app.open("BTCUSDT", Side.LONG, "0.01")
        [position] = await app.store.positions.open_positions()
        await app.services.trailing.start(position)
        await mark_moves(app, venue, "50900")
        venue.cancel_stop("BTCUSDT")  # a person
        venue.inject(Fault.reject(RejectReason.SYMBOL_UNAVAILABLE, Op.STOP_ORDER))
        await mark_moves(app, venue, "51500", then=1)
        await app.crash()
        assert venue.stops("BTCUSDT") == []

        database = app._database
        assert database is not None
        # what the runner's journal stores of everything emitted (its queue file keeps what
        # a kill cut off: test_journal_killed.py); the harness's sink is memory only
        await database.event_writer().write([event_row(e) for e in app.events.events])
        reader = Reader(
            SqliteExecutor(database.connection, database.lock), SqliteCodec(), lambda: None
        )
        now = venue.now()
        seen = await take_snapshot(reader, now=now, since=now - timedelta(hours=1))
        assert position.id in seen.unprotected, seen.anomalies
