"""A position a protection pass sees bare, whose symbol the keeper then cannot read (the
venue refuses the read under its lock), is still counted unprotected — in the pass's event
and in the application's view that `/health` and the metrics serve. Issue 10, item 2: while
a fault keeps a position bare, "/health, metrics and the guard's events count it as
unprotected"; a pass that could not look again must not call it protected."""

from tradecore.adapters.paper import FaultKind
from tradecore.domain.model import Side
from tradecore.testing import FakeVenue, Fault, Op, TradingApp

BTC = "BTCUSDT"


async def test_a_bare_position_the_keeper_cannot_read_again_stays_unprotected() -> None:
    venue = FakeVenue.binance(marks={BTC: "50000"}, latency=0.05)
    app = await TradingApp.on_sqlite(venue)
    await app.start()
    assert (await app.open(BTC, Side.LONG, "0.01")).opened
    venue.cancel_stop(BTC)  # a person removes it
    # the pass reads the whole account; the keeper's read of BTC under its lock is refused
    venue.inject(
        Fault(kind=FaultKind.RATE_LIMIT, op=Op.FETCH_OPEN_ORDERS, symbol=BTC, skip=1, times=9)
    )
    report = await app.guard_pass()
    assert venue.stops(BTC) == []  # nothing could be done: still bare
    assert (report.unprotected, report.failed) == (1, 1)
    assert app.protection_view().symbols == frozenset({BTC})
    venue.engine.faults.clear()
    report = await app.guard_pass()
    assert (report.unprotected, report.fixed) == (1, 1) and len(venue.stops(BTC)) == 1
    assert app.protection_view().symbols == frozenset()
    await app.close()
