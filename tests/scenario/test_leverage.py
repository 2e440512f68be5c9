"""Leverage and margin mode: set on the venue before a symbol's first entry, and a position
whose liquidation would come before its stop never stays open (issue 11, item 4)."""

from datetime import timedelta
from decimal import Decimal

import attrs
import pytest

from tradecore.adapters.clock import VirtualClock
from tradecore.adapters.virtual_time import run_driven
from tradecore.app.kernel import Kernel
from tradecore.app.leverage import MarginModeMismatch
from tradecore.app.settings import TradingSettings
from tradecore.domain.events import EventType, Severity
from tradecore.domain.leverage import MarginMode
from tradecore.domain.model import Side
from tradecore.domain.positions import PositionState
from tradecore.domain.signals import Signal
from tradecore.testing import FakeVenue, Fault, Op, RejectReason

from .conftest import ROUND_TRIP, Database
from .harness import SETTINGS, App, build_app, many_markets
from .test_waves import WAVE


def settings(**sizing: object) -> TradingSettings:
    return attrs.evolve(SETTINGS, sizing=attrs.evolve(SETTINGS.sizing, **sizing))


def events(app: App, kind: EventType) -> list:
    return [e for e in app.sink.events if e.type is kind]


def make_venue(name: str, **options: object) -> FakeVenue:
    maker = FakeVenue.binance if name == "binance" else FakeVenue.bybit
    return maker(latency=ROUND_TRIP, **options)


async def test_an_open_on_a_symbol_first_sets_its_leverage_and_margin_mode(
    venue: FakeVenue, database: Database
) -> None:
    app = build_app(venue, database.store, settings=settings(leverage=Decimal(5)))
    assert venue.engine.leverage("BTCUSDT") == Decimal(10)  # what the account held before

    first = await app.open("BTCUSDT", Side.LONG, "0.004")
    second_symbol = await app.open("ETHUSDT", Side.SHORT, "0.1")

    assert first.opened and second_symbol.opened
    assert venue.engine.leverage("BTCUSDT") == Decimal(5)
    assert venue.engine.margin_mode("BTCUSDT") is MarginMode.ISOLATED
    kinds = [e.type for e in app.sink.events if e.symbol == "BTCUSDT"]
    assert kinds.index(EventType.LEVERAGE_SET) < kinds.index(EventType.POSITION_OPEN_STARTED)
    (btc, eth) = events(app, EventType.LEVERAGE_SET)
    assert (btc.symbol, eth.symbol) == ("BTCUSDT", "ETHUSDT")
    assert btc.data["confirmed"] == Decimal(5) and btc.data["margin_mode"] == "isolated"
    # the venue liquidates a 5x position about 20 % away, far beyond its 3 % stop
    held = venue.position("BTCUSDT")
    assert held is not None and held.liquidation_price is not None
    assert held.liquidation_price < held.entry_price * Decimal("0.81")


async def test_a_symbols_leverage_is_set_once_not_before_every_open(
    venue: FakeVenue, database: Database
) -> None:
    app = build_app(venue, database.store, settings=settings(leverage=Decimal(5)))
    first = await app.run(app.services.margin.prepare("BTCUSDT"))
    # a refusal waiting for the next request: the wave's sizing and the open both ask
    venue.inject(Fault.reject(RejectReason.INVALID_LEVERAGE, Op.SET_LEVERAGE))

    again = await app.run(app.services.margin.prepare("BTCUSDT"))
    opened = await app.open("BTCUSDT", Side.LONG, "0.004")

    assert again == first and opened.opened
    assert len(events(app, EventType.LEVERAGE_SET)) == 1
    assert events(app, EventType.LEVERAGE_NOT_SET) == []


async def test_an_isolated_open_whose_liquidation_would_sit_inside_its_stop_is_refused(
    venue: FakeVenue, database: Database
) -> None:
    # 50x isolated: the venue would liquidate a long about 1.5 % below its entry, before the
    # 3 % stop could fire
    app = build_app(venue, database.store, settings=settings(leverage=Decimal(50)))

    result = await app.open("BTCUSDT", Side.LONG, "0.004")

    assert not result.opened and result.position is None
    assert result.reason.startswith("liquidation_inside_stop")
    assert venue.position("BTCUSDT") is None
    assert venue.engine.books.fills == []  # no entry was sent
    (refusal,) = events(app, EventType.LIQUIDATION_INSIDE_STOP)
    assert refusal.data["liquidation_price"] > refusal.data["stop_price"]
    assert "lower trading.sizing.leverage" in (refusal.error_message or "")
    assert events(app, EventType.POSITION_OPEN_STARTED) == []


@pytest.mark.parametrize("name", ["binance", "bybit"])
async def test_a_position_the_venue_would_liquidate_before_its_stop_is_closed_with_an_event(
    name: str, database: Database
) -> None:
    # cross margin: no estimate before the entry (the account's margin decides), so only the
    # venue's own liquidation price, read after the fill, can catch it
    venue = make_venue(name, margin_mode=MarginMode.CROSS)
    app = build_app(
        venue,
        database.store,
        settings=settings(leverage=Decimal(50), margin_mode=MarginMode.CROSS),
    )

    result = await app.open("BTCUSDT", Side.LONG, "0.004")

    assert not result.opened
    assert result.position is not None and result.position.state is PositionState.CLOSED
    assert "liquidation before the stop" in (result.position.close_reason or "")
    assert venue.position("BTCUSDT") is None  # closed at market on the venue
    assert venue.stops("BTCUSDT") == []  # and its stop removed
    (found,) = events(app, EventType.LIQUIDATION_INSIDE_STOP)
    assert found.severity is Severity.ERROR and found.data["closed"] is True
    assert found.position_id == result.position.id
    assert events(app, EventType.POSITION_CLOSED)


async def test_an_open_waits_for_the_leverage_the_venue_refused_and_tries_again_next_time(
    venue: FakeVenue, database: Database
) -> None:
    app = build_app(venue, database.store, settings=settings(leverage=Decimal(5)))
    venue.inject(Fault.reject(RejectReason.INVALID_LEVERAGE, Op.SET_LEVERAGE))

    refused = await app.open("BTCUSDT", Side.LONG, "0.004")
    retried = await app.open("BTCUSDT", Side.LONG, "0.004")

    assert not refused.opened and refused.reason.startswith("leverage_not_set")
    (not_set,) = events(app, EventType.LEVERAGE_NOT_SET)
    assert "invalid_leverage" in (not_set.error_message or "")
    assert retried.opened
    assert venue.engine.leverage("BTCUSDT") == Decimal(5)


async def test_an_account_in_another_margin_mode_than_configured_refuses_to_start(
    database: Database,
) -> None:
    # Bybit: a unified account's margin mode is the account's; the bot never changes it
    venue = make_venue("bybit", margin_mode=MarginMode.CROSS)
    app = build_app(venue, database.store)  # configured: isolated (the default)
    kernel = Kernel(app.parts)

    with pytest.raises(MarginModeMismatch) as refused:
        await run_driven(venue.clock, app.work, kernel.start(loops=False))

    message = str(refused.value)
    assert "\n" not in message
    assert "cross" in message and "isolated" in message
    assert "TRADECORE_TRADING__SIZING__MARGIN_MODE" in message
    (event,) = events(app, EventType.LEVERAGE_NOT_SET)
    assert event.severity is Severity.CRITICAL
    assert events(app, EventType.BOT_STARTED) == []
    assert venue.engine.books.fills == []


async def wave_with_one_signal(app: App, symbol: str) -> None:
    signal = Signal(
        id="sig-lev",
        symbol=symbol,
        venue=app.venue.exchange.venue,
        side=Side.LONG,
        score_week=Decimal(90),
        score_month=Decimal(90),
        wave=WAVE,
        created_at=WAVE + timedelta(seconds=1),
    )
    app.services.inbox.put(signal, at=app.clock.now())
    await app.run(app.waves.process(WAVE))


@pytest.mark.parametrize("name", ["binance", "bybit"])
async def test_a_wave_sizes_with_the_leverage_the_venue_confirms_not_the_configured_one(
    name: str, database: Database
) -> None:
    markets, marks = many_markets(1)  # S00USDT at 100, up to 50x
    clock = VirtualClock(WAVE + timedelta(minutes=20))
    # 15 USDT free: a 200 USDT position needs 10 at 20x but 20 at the venue's 10x
    venue = make_venue(name, markets=markets, marks=marks, balance="15", clock=clock)
    venue.inject(Fault.timeout(Op.SET_LEVERAGE))  # lost before the venue: it keeps 10x
    app = build_app(venue, database.store, settings=settings(leverage=Decimal(20)))

    await wave_with_one_signal(app, "S00USDT")

    (leverage,) = events(app, EventType.LEVERAGE_SET)
    assert (leverage.data["requested"], leverage.data["confirmed"]) == (20, 10)
    (refused,) = events(app, EventType.RISK_LIMITS_EXCEEDED)
    assert refused.data["reason"] == "insufficient_balance"
    assert "at 10x" in refused.data["detail"]
    assert venue.position("S00USDT") is None


async def test_a_venue_holding_more_leverage_than_configured_gets_no_entry(
    venue: FakeVenue, database: Database
) -> None:
    venue.inject(Fault.timeout(Op.SET_LEVERAGE))  # lost: the venue keeps its 10x
    app = build_app(venue, database.store, settings=settings(leverage=Decimal(5)))

    refused = await app.open("BTCUSDT", Side.LONG, "0.004")

    assert not refused.opened and "above the configured 5x" in refused.reason
    assert events(app, EventType.LEVERAGE_NOT_SET)
    assert venue.position("BTCUSDT") is None


async def test_a_leverage_changed_by_hand_after_the_set_up_is_set_again_before_the_next_entry(
    database: Database,
) -> None:
    """The bot set 5x on the symbol; a person then raised it to 40x in the venue's UI, where
    the venue liquidates a long about 2.5 % under its entry — before its 3 % stop. The next
    wave's entry on the symbol (none open) re-reads the venue's leverage with its marks, and
    sets it back before sizing with it."""
    markets, marks = many_markets(3)
    clock = VirtualClock(WAVE + timedelta(minutes=20))
    venue = FakeVenue.binance(markets=markets, marks=marks, latency=ROUND_TRIP, clock=clock)
    app = build_app(venue, database.store, settings=settings(leverage=Decimal(5)))
    prepared = await app.run(app.services.margin.prepare("S01USDT"))
    assert getattr(prepared, "leverage", None) == Decimal(5)
    venue.engine.set_leverage("S01USDT", Decimal(40))  # by hand, on the venue

    app.services.inbox.put(
        Signal(
            id="s1",
            symbol="S01USDT",
            venue=venue.exchange.venue,
            side=Side.LONG,
            score_week=Decimal(90),
            score_month=Decimal(50),
            wave=WAVE,
            created_at=WAVE,
        ),
        at=clock.now(),
    )
    report = await app.run(app.waves.process(WAVE))

    assert report.opened == 1, report
    assert venue.engine.leverage("S01USDT") == Decimal(5)
    held = venue.position("S01USDT")
    assert held is not None and held.liquidation_price is not None
    assert held.liquidation_price < held.entry_price * Decimal("0.81")  # 5x: ~20 % away
    assert not events(app, EventType.LIQUIDATION_INSIDE_STOP)
    reset = events(app, EventType.LEVERAGE_SET)[-1]
    assert reset.data["confirmed"] == Decimal(5)
    assert reset.data["found_on_venue"] == {"leverage": Decimal(40), "margin_mode": "isolated"}
