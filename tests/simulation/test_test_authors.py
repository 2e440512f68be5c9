"""What a test author gets (issue 10, item 6): a person's actions on `FakeVenue`, books with
every order's life and time, and the application's use cases through `TradingApp`."""

from decimal import Decimal

from tradecore.adapters.paper import Amendment, Fill, OrderClosed, OrderRecord
from tradecore.domain.model import Side
from tradecore.domain.orders import OrderType
from tradecore.ports.exchange import Accepted, RejectReason
from tradecore.testing import FakeVenue, Fault, Op, TradingApp

BTC = "BTCUSDT"


async def test_a_persons_actions_are_in_the_books_with_their_time_and_origin() -> None:
    venue = FakeVenue.bybit(marks={BTC: "50000"})
    assert isinstance(venue.open_by_hand(BTC, Side.LONG, "0.02"), Accepted)
    await venue.place_stop(BTC, Side.LONG.exit, "0.02", "48500")
    await venue.advance(10)
    assert all(isinstance(o, Accepted) for o in venue.move_stop(BTC, "49000"))
    assert isinstance(venue.add_take_profit(BTC, "52000"), Accepted)
    assert isinstance(venue.partly_close_by_hand(BTC, "0.01"), Accepted)
    assert all(isinstance(o, Accepted) for o in venue.cancel_stop(BTC))
    assert isinstance(venue.close_by_hand(BTC), Accepted)

    history = venue.books.history(BTC)
    kinds = [type(entry).__name__ for entry in history]
    assert kinds[:3] == ["OrderRecord", "Fill", "OrderRecord"]  # entry, its fill, the stop
    [move] = [e for e in history if isinstance(e, Amendment)]
    assert (move.old_trigger, move.new_trigger, move.origin) == (
        Decimal("48500"),
        Decimal("49000"),
        "manual",
    )
    assert move.at == venue.now()  # ten seconds after the open
    cancels = [e for e in history if isinstance(e, OrderClosed) and e.origin == "manual"]
    assert len(cancels) == 1  # the stop, cancelled by hand
    fills = [e for e in history if isinstance(e, Fill)]
    assert [f.quantity for f in fills] == [Decimal("0.02"), Decimal("0.01"), Decimal("0.01")]
    take_profit = [
        e for e in history if isinstance(e, OrderRecord) and e.type is OrderType.TAKE_PROFIT
    ]
    assert take_profit[0].origin == "manual" and venue.position(BTC) is None


async def test_the_guard_puts_back_a_stop_a_person_removed() -> None:
    venue = FakeVenue.binance(marks={BTC: "50000"}, latency=0.05)
    app = await TradingApp.on_sqlite(venue)
    try:
        await app.start()
        result = await app.open(BTC, Side.LONG, "0.01")
        assert result.opened
        venue.cancel_stop(BTC)
        assert venue.stops(BTC) == []
        await app.guard_pass()
        assert len(venue.stops(BTC)) == 1
    finally:
        await app.close()


async def test_a_crashed_app_restarts_on_the_same_store_and_keeps_the_position_protected() -> None:
    venue = FakeVenue.bybit(marks={BTC: "50000"}, latency=0.05)
    app = await TradingApp.on_sqlite(venue)
    try:
        await app.start(loops=True)
        assert (await app.open(BTC, Side.SHORT, "0.01")).opened
        await app.pass_time(30)
        await app.crash()
        venue.cancel_stop(BTC)  # while it is down
        report = await app.restart()
        assert report.unprotected == 1  # found bare by the recovery's guard pass ...
        assert len(venue.stops(BTC)) == 1  # ... and protected again
        sync = await app.sync_pass()
        assert sync.adopted == 0 and sync.closed == 0  # the journal knew the position
    finally:
        await app.close()


async def test_the_apps_unprotected_view_names_what_the_guard_left_bare() -> None:
    # what /health and the metrics serve, reachable without the runner
    venue = FakeVenue.binance(marks={BTC: "50000"}, latency=0.05)
    app = await TradingApp.on_sqlite(venue)
    await app.start()
    assert app.protection_view().symbols == frozenset()
    assert (await app.open(BTC, Side.LONG, "0.01")).opened
    venue.inject(Fault.reject(RejectReason.TOO_MANY_CONDITIONAL_ORDERS, Op.STOP_ORDER, times=99))
    venue.cancel_stop(BTC)
    await app.guard_pass()  # every stop refused: left bare
    view = app.protection_view()
    assert view.symbols == frozenset({BTC}) and view.unprotected == 1
    assert view.checked_at == venue.now()
    venue.engine.faults.clear()
    await app.guard_pass()
    assert app.protection_view().symbols == frozenset()
    await app.close()
