"""An aged position: grace at breakeven, concession, acceleration, the cap — one exit order."""

from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from tradecore.adapters.reporting.telemetry import Telemetry
from tradecore.app.settings import AgedSettings, TradingSettings
from tradecore.domain.aged import AgedParams, AgedPhase
from tradecore.domain.events import EventType
from tradecore.domain.model import Side
from tradecore.domain.orders import OrderType
from tradecore.domain.positions import PositionState
from tradecore.domain.sizing import SizingParams
from tradecore.domain.stops import StopParams
from tradecore.testing import FakeVenue, Fault, Op, RejectReason

from .conftest import ROUND_TRIP, Opener
from .harness import SETTINGS, App, build_app

HOUR = 3600.0


@pytest.fixture(params=["binance", "bybit"])
async def aged_app(request: pytest.FixtureRequest, open_database: Opener) -> AsyncIterator[App]:
    maker = FakeVenue.bybit if request.param == "bybit" else FakeVenue.binance
    database = await open_database()
    # A wide stop, so the position can sit 12 % under water and age all the way to the cap.
    # 5x (set on the symbol by the bot): 12 % under water is no liquidation
    settings = TradingSettings(
        keeper=SETTINGS.keeper,
        stops=StopParams(stop_loss_percent=15),
        sizing=SizingParams(leverage=5),
    )
    venue = maker(latency=ROUND_TRIP, leverage=5)
    yield build_app(venue, database.store, settings=settings)
    await database.close()


def exit_orders(app: App) -> list[Decimal | None]:
    return [o.price for o in app.venue.engine.open_orders("BTCUSDT") if o.type is OrderType.LIMIT]


async def test_an_aged_position_keeps_one_exit_order_down_to_the_cap_then_closes(
    aged_app: App,
) -> None:
    app = aged_app
    result = await app.open("BTCUSDT", Side.LONG, "0.004")
    assert result.opened and result.position is not None
    await app.venue.set_mark("BTCUSDT", "44000")  # 12 % under water, above the 15 % stop
    prices: list[Decimal] = []

    for _hour in range(40):
        await app.clock.advance(HOUR)
        await app.run(app.aged.check())
        if app.venue.position("BTCUSDT") is None:
            break
        orders = exit_orders(app)
        if orders:
            assert len(orders) == 1  # exactly one exit order, always
            assert orders[0] is not None
            prices.append(orders[0])

    assert app.venue.position("BTCUSDT") is None  # closed at market at the cap
    assert prices[0] > Decimal("50000")  # grace: breakeven including fees
    assert prices == sorted(prices, reverse=True)  # concedes, never takes it back
    assert min(prices) >= Decimal("45000")  # never beyond the 10 % cap
    phases = [e.data["to"] for e in app.sink.of(EventType.AGED_PHASE_CHANGED)]
    assert phases == [AgedPhase.CONCESSION.value, AgedPhase.ACCELERATED.value, AgedPhase.CAP.value]
    assert app.sink.of(EventType.AGED_POSITION_DETECTED)
    stored = await app.store.positions.get(result.position.id)
    assert stored is not None and stored.state is PositionState.CLOSED
    assert app.venue.stops("BTCUSDT") == []


async def test_an_aged_exit_that_fills_is_closed_and_counted_as_an_aged_exit(
    aged_app: App,
) -> None:
    app = aged_app
    result = await app.open("BTCUSDT", Side.LONG, "0.004")
    assert result.opened and result.position is not None
    await app.venue.set_mark("BTCUSDT", "44000")
    while not exit_orders(app):
        await app.clock.advance(HOUR)
        await app.run(app.aged.check())
    [price] = exit_orders(app)
    assert price is not None
    await app.venue.set_mark("BTCUSDT", str(price + 100))  # the exit order fills
    assert app.venue.position("BTCUSDT") is None
    await app.run(app.sync.sync())

    [closed] = app.sink.of(EventType.POSITION_CLOSED)
    assert closed.data["reason"] == f"aged exit order {closed.order_id} filled"
    telemetry = Telemetry()
    for event in app.sink.events:
        telemetry.observe(event)
    assert telemetry.aged_exits == 1


async def test_a_symbol_refused_for_region_reasons_is_skipped_for_a_day(aged_app: App) -> None:
    long_grace = AgedSettings(params=AgedParams(grace_period_hours=48))  # a day fits in grace
    app = build_app(
        aged_app.venue,
        aged_app.store,
        settings=TradingSettings(keeper=SETTINGS.keeper, aged=long_grace),
    )
    result = await app.open("BTCUSDT", Side.LONG, "0.004")
    assert result.opened
    await app.clock.advance(4 * HOUR)
    app.venue.inject(Fault.reject(RejectReason.REGION_RESTRICTED, Op.LIMIT_ORDER))

    await app.run(app.aged.check())
    assert exit_orders(app) == []
    assert app.sink.of(EventType.SYMBOL_UNAVAILABLE)

    await app.clock.advance(HOUR)
    await app.run(app.aged.check())
    assert exit_orders(app) == []  # still skipped

    await app.clock.advance(24 * HOUR)
    await app.run(app.aged.check())
    assert len(exit_orders(app)) == 1
