"""A wave of signals becomes positions: filtered with reasons, ranked, reserve used, once."""

import asyncio
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import attrs
import pytest

from tradecore.adapters.clock import VirtualClock
from tradecore.app.open_position import OpenRequest, OpenResult
from tradecore.app.settings import TradingSettings, WaveSettings
from tradecore.domain.events import EventType
from tradecore.domain.model import Side, Venue
from tradecore.domain.positions import PositionState
from tradecore.domain.signals import Signal
from tradecore.domain.waves import WaveReport
from tradecore.ports.repositories import StoreUnavailable
from tradecore.testing import FakeVenue, Fault, Op, RejectReason

from .conftest import ROUND_TRIP, Opener
from .harness import SETTINGS, App, build_app, many_markets

WAVE = datetime(2026, 1, 1, 8, 45, tzinfo=UTC)


def wave_of_signals(venue: Venue, count: int = 85, seed: int = 7) -> list[Signal]:
    """`count` signals over 30 symbols, some duplicated, some weak, some for unknown markets."""
    rng = random.Random(seed)
    signals = []
    for i in range(count):
        symbol = f"S{rng.randrange(30):02d}USDT" if i % 17 else "NOPEUSDT"
        signals.append(
            Signal(
                id=f"sig{i}",
                symbol=symbol,
                venue=venue,
                side=Side.LONG if rng.random() < 0.5 else Side.SHORT,
                score_week=Decimal(rng.randrange(0, 100)),
                score_month=Decimal(rng.randrange(0, 100)),
                wave=WAVE,
                created_at=WAVE + timedelta(seconds=i),
            )
        )
    return signals


@pytest.fixture
async def wave_app(request: pytest.FixtureRequest, open_database: Opener) -> AsyncIterator[App]:
    markets, marks = many_markets(30)
    maker = (
        FakeVenue.binance if getattr(request, "param", "binance") == "binance" else FakeVenue.bybit
    )
    clock = VirtualClock(WAVE + timedelta(minutes=20))  # past the 09:05 check: process by hand
    venue = maker(markets=markets, marks=marks, latency=ROUND_TRIP, balance="100000", clock=clock)
    database = await open_database()
    settings = TradingSettings(
        keeper=SETTINGS.keeper,
        waves=WaveSettings(min_score_week=Decimal(20), stop_list=frozenset({"S03USDT"})),
    )
    yield build_app(venue, database.store, settings=settings)
    await database.close()


@pytest.mark.parametrize("wave_app", ["binance", "bybit"], indirect=True)
async def test_a_wave_of_85_signals_opens_five_and_uses_the_reserve_when_one_fails(
    wave_app: App,
) -> None:
    app = wave_app
    signals = wave_of_signals(app.venue.exchange.venue)
    for signal in signals:
        app.services.inbox.put(signal, at=app.clock.now())
    ranked = sorted(
        (s for s in signals if s.score_week >= 20 and s.symbol not in {"S03USDT", "NOPEUSDT"}),
        key=lambda s: (-s.score_week, -s.score_month, s.created_at),
    )
    best_symbol = ranked[0].symbol
    app.venue.inject(
        Fault.reject(RejectReason.SYMBOL_UNAVAILABLE, Op.MARKET_ORDER, symbol=best_symbol)
    )

    report = await app.run(app.waves.process(WAVE))

    assert (report.signals, report.candidates, report.opened, report.failed) == (85, 7, 5, 1)
    assert report.rejections["score_week_below_minimum"] > 0
    unknown = [s for s in signals if s.symbol == "NOPEUSDT" and s.score_week >= 20]
    assert report.rejections["market_missing"] == len(unknown) > 0
    assert report.rejections["stop_list"] > 0
    opened = [
        p for p in await app.store.positions.open_positions() if p.state is PositionState.ACTIVE
    ]
    assert len(opened) == 5 and best_symbol not in {p.symbol for p in opened}
    for position in opened:
        assert len(app.venue.stops(position.symbol)) == 1
    assert len(app.sink.of(EventType.SIGNAL_EXECUTED)) == 5
    assert len(app.sink.of(EventType.SIGNAL_EXECUTION_FAILED)) == 1
    [completed] = app.sink.of(EventType.WAVE_COMPLETED)
    assert completed.correlation_id == "wave-20260101T0845"

    again = await app.run(app.waves.process(WAVE))

    assert again.duplicate
    assert app.sink.of(EventType.WAVE_DUPLICATE_DETECTED)
    assert len(await app.store.positions.open_positions()) == 5


async def test_a_wave_without_signals_is_reported_not_found_after_the_window(
    wave_app: App,
) -> None:
    start = wave_app.clock.now()

    report = await wave_app.run(wave_app.waves.process(WAVE))

    assert not report.found
    assert wave_app.sink.of(EventType.WAVE_NOT_FOUND)
    assert wave_app.clock.now() - start >= timedelta(seconds=240)


async def test_a_wave_is_processed_once_even_by_a_restarted_bot(wave_app: App) -> None:
    app = wave_app
    await app.run(app.waves.process(WAVE))
    restarted = build_app(app.venue, app.store)

    report = await restarted.run(restarted.waves.process(WAVE))

    assert report.duplicate


async def test_signals_the_account_cannot_carry_are_refused_with_their_reason(
    open_database: Opener,
) -> None:
    # S01 trades in steps of 10 at a mark of 100: 200 USDT buys less than one step.
    markets, marks = many_markets(3)
    markets[1] = attrs.evolve(markets[1], step_size=Decimal(10), min_quantity=Decimal(10))
    clock = VirtualClock(WAVE + timedelta(minutes=20))
    venue = FakeVenue.binance(markets=markets, marks=marks, balance="25", clock=clock)
    database = await open_database()
    app = build_app(venue, database.store)
    for i, symbol in enumerate(("S00USDT", "S01USDT", "S02USDT")):
        app.services.inbox.put(
            Signal(
                id=f"s{i}",
                symbol=symbol,
                venue=Venue.BINANCE,
                side=Side.LONG,
                score_week=Decimal(90 - i),
                score_month=Decimal(50),
                wave=WAVE,
                created_at=WAVE,
            ),
            at=clock.now(),
        )

    report = await app.run(app.waves.process(WAVE))

    # 25 USDT free: the first 200 USDT position at 10x takes 20 of it, the third finds 5.
    assert (report.opened, report.failed) == (1, 2)
    assert report.rejections == {"below_min_quantity": 1, "insufficient_balance": 1}
    assert app.sink.of(EventType.ORDER_BELOW_MINIMUM)
    assert app.sink.of(EventType.RISK_LIMITS_EXCEEDED)
    await database.close()


def _good_signals(venue: Venue, symbols: list[str]) -> list[Signal]:
    return [
        Signal(
            id=f"good-{symbol}",
            symbol=symbol,
            venue=venue,
            side=Side.LONG,
            score_week=Decimal(90 - i),
            score_month=Decimal(50),
            wave=WAVE,
            created_at=WAVE,
        )
        for i, symbol in enumerate(symbols)
    ]


SEVEN = ["S00USDT", "S01USDT", "S02USDT", "S04USDT", "S05USDT", "S06USDT", "S07USDT"]


def _held(app: App) -> list[str]:
    return sorted(p.symbol for p in app.venue.engine.positions() if p.quantity > 0)


async def test_a_wave_processed_twice_at_once_opens_its_target_once(wave_app: App) -> None:
    """A second `process` of a wave while the first is still at it (the wave is held
    claimed by this process across retries, and a claim held is no proof of who is at it)
    is a duplicate: it neither waits for the wave's signals nor opens any."""
    app = wave_app
    for signal in _good_signals(app.venue.exchange.venue, SEVEN):
        app.services.inbox.put(signal, at=app.clock.now())

    async def later() -> WaveReport:
        await app.clock.sleep(ROUND_TRIP)  # the first has claimed the wave and is opening it
        return await app.waves.process(WAVE)

    first, second = await app.run(asyncio.gather(app.waves.process(WAVE), later()))

    target = app.parts.settings.waves.max_trades_per_wave
    assert len(_held(app)) == target, _held(app)
    assert sorted((first.duplicate, second.duplicate)) == [False, True], (first, second)


async def test_a_wave_retried_after_an_open_failed_on_the_database_opens_no_more_than_its_target(
    wave_app: App,
) -> None:
    """One open of the wave meets the database down (`StoreUnavailable` out of the open)
    while four others are still opening: the check is tried again (`_check`), and the
    second pass over the wave counts what the first opened — the wave never holds more than
    `max_trades_per_wave` positions, and no open of the first pass runs on beside the second."""
    app = wave_app
    for signal in _good_signals(app.venue.exchange.venue, SEVEN):
        app.services.inbox.put(signal, at=app.clock.now())
    opener = app.opener
    real_open = opener.open
    failed: list[str] = []

    async def open_once_failing(request: OpenRequest) -> OpenResult:
        if request.symbol == "S05USDT" and not failed:
            failed.append(request.symbol)
            raise StoreUnavailable("connection refused (the test cut the database)")
        return await real_open(request)

    opener.open = open_once_failing  # type: ignore[method-assign]
    check = app.clock.now()

    await app.run(app.waves._check(WAVE, check))

    target = app.parts.settings.waves.max_trades_per_wave
    assert failed == ["S05USDT"]
    assert len(_held(app)) <= target, f"{_held(app)}: the wave allows {target}"
    assert len(_held(app)) == target
    [completed] = app.sink.of(EventType.WAVE_COMPLETED)
    assert completed.data["opened"] == target


async def test_a_claim_whose_answer_was_lost_is_this_process_s_and_the_wave_is_processed(
    wave_app: App,
) -> None:
    """The claim reached the database and its answer did not come back (the connection
    dropped after the commit). The check is tried again; the claim it finds is this
    process's own — the claim records who made it — so the wave is processed, not taken for
    one another session processed (which would lose every signal of it as a duplicate)."""
    app = wave_app
    for signal in _good_signals(app.venue.exchange.venue, SEVEN):
        app.services.inbox.put(signal, at=app.clock.now())
    waves = app.store.waves
    real_claim = waves.claim
    lost: list[datetime] = []

    async def claim_answer_lost(wave: datetime, **kwargs: object) -> bool:
        claimed = await real_claim(wave, **kwargs)  # type: ignore[arg-type]
        if not lost:
            lost.append(wave)
            raise StoreUnavailable("connection reset after the commit")
        return claimed

    waves.claim = claim_answer_lost  # type: ignore[method-assign]

    await app.run(app.waves._check(WAVE, app.clock.now()))

    assert lost == [WAVE]
    target = app.parts.settings.waves.max_trades_per_wave
    assert len(_held(app)) == target, _held(app)
    assert app.sink.of(EventType.WAVE_DUPLICATE_DETECTED) == []
    [completed] = app.sink.of(EventType.WAVE_COMPLETED)
    assert completed.data["opened"] == target
