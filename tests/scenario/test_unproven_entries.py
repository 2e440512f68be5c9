"""An entry whose state the venue has not proven holds its place until it is resolved.

The open leaves such an entry in flight (`PENDING_ENTRY`) and a later guard or sync pass
resolves it — and it may well have filled (Bybit's create only acknowledges; its look-ups may
not list the order yet). So whatever reads the open's answer must not take "not proven" for
"nothing opened": a wave must not open a reserve candidate in its place, or the wave ends
with more positions than `max_trades_per_wave` once the entry proves filled.
"""

import asyncio
import contextlib
from datetime import datetime, timedelta
from decimal import Decimal

import attrs
import pytest

from tradecore.adapters.paper.faults import FaultKind
from tradecore.app.kernel import Kernel
from tradecore.app.open_position import OpenRequest
from tradecore.domain.events import EventType
from tradecore.domain.model import Side, Venue
from tradecore.domain.numbers import ZERO
from tradecore.domain.positions import PositionState
from tradecore.domain.signals import Signal
from tradecore.testing import FakeVenue, Fault, Op

from .conftest import ROUND_TRIP, Opener
from .crash import Crash, Tripwire
from .harness import App, build_app
from .invariants import entries_sent, gap_problems, stop_problems
from .test_crash import QTY, recover_and_check, tripped
from .test_read_back import QTY as AMOUNT
from .test_read_back import app, entry_failures, lag
from .test_signal_fates import fates
from .test_waves import WAVE, wave_app, wave_of_signals

__all__ = ["app", "wave_app"]  # the fixtures, imported for pytest


@pytest.mark.parametrize("wave_app", ["bybit"], indirect=True)
async def test_a_wave_whose_entries_are_unproven_opens_no_reserve_in_their_place(
    wave_app: App,
) -> None:
    app = wave_app
    target = app.parts.settings.waves.max_trades_per_wave
    signals = wave_of_signals(app.venue.exchange.venue)
    for signal in signals:
        app.services.inbox.put(signal, at=app.clock.now())
    app.venue.lag_listing(3600)  # no entry is listed within the read-back: each is unproven
    # and no open can read the venue's positions to take what it holds as its fill (the
    # wave's own read, before its opens, goes through: it finds the venue flat)
    app.venue.inject(Fault(kind=FaultKind.TIMEOUT, op=Op.FETCH_POSITIONS, times=target, skip=1))

    report = await app.run(app.waves.process(WAVE))
    await app.run(app.guard.check())  # resolves them: every entry did fill

    active = [
        p for p in await app.store.positions.open_positions() if p.state is PositionState.ACTIVE
    ]
    held = [p for p in app.venue.engine.positions() if p.quantity > 0]
    assert len(held) <= target, f"{len(held)} positions on the venue, the wave allows {target}"
    assert len(active) == len(held) == target
    assert (report.opened, report.unproven, report.failed) == (0, target, 0)
    found = fates(app)
    assert {i: len(e) for i, e in found.items() if len(e) != 1} == {}
    assert app.sink.of(EventType.SIGNAL_EXECUTION_FAILED) == []


async def test_a_crash_anywhere_in_an_unproven_open_and_its_resolution_recovers_protected(
    open_database: Opener,
) -> None:
    """Bybit lists nothing within the read-back (and, after a restart, only the history
    knows closed orders): the process dies at every await of the open and of the guard pass
    that resolves it, before and after; a fresh process recovers with every position
    protected by one stop, nothing opened twice, nothing left in flight."""
    for at in range(1, 200):
        completed = True
        for after in (False, True):
            venue = FakeVenue.bybit(latency=ROUND_TRIP)
            venue.lag_listing(3600)
            database = await open_database()
            wire = Tripwire(at, after=after)
            app = tripped(venue, database, wire)
            with contextlib.suppress(Crash):
                await app.open("BTCUSDT", Side.LONG, QTY)
                await app.run(app.guard.check())
            completed = completed and not wire.fired
            await recover_and_check(venue, database)
            held = venue.position("BTCUSDT")
            if held is not None:
                [stored] = await database.store.positions.open_positions()
                assert stored.stop_price is not None and stored.quantity == held.quantity
            await database.close()
        if completed:
            return
    raise AssertionError("the scenario still had awaits after 200")


async def test_an_unproven_entry_the_venue_holds_is_protected_by_the_open_not_a_pass_later(
    app: App,
) -> None:
    """The read-back runs out (Bybit lists nothing yet) but the position is on the venue:
    the open takes it as its fill and places the stop itself, one round trip on, instead of
    leaving it bare until the next guard or sync pass (up to a minute later)."""
    lag(app, 3600)

    result = await app.open("BTCUSDT", Side.LONG, str(AMOUNT))

    held = app.venue.position("BTCUSDT")
    assert held is not None and held.quantity == AMOUNT
    assert result.opened and result.state is PositionState.ACTIVE, result
    assert result.position is not None and result.position.quantity == AMOUNT
    assert [o.trigger_price for o in app.venue.stops("BTCUSDT")] == [result.position.stop_price]
    assert entries_sent(app.venue, "BTCUSDT") == AMOUNT
    assert entry_failures(app) == []


async def test_a_stop_with_an_unproven_entry_in_flight_leaves_its_fill_protected(
    app: App,
) -> None:
    """`stop()` lets the wave's opens end, then ends the loops: an open that ended unproven
    (its look at the positions refused) has no guard or sync pass left to resolve it. The
    bot stops with "positions stay protected by their stops on the venue" — so the stop
    resolves it once more before it ends the process."""
    kernel = Kernel(app.parts)
    await app.run(kernel.start(loops=False))
    lag(app, 3600)
    # the symbol's leverage is set up first, so the fault hits the open's own look
    await app.run(kernel.services.margin.prepare("BTCUSDT"))
    app.venue.engine.faults.add(Fault.timeout(Op.FETCH_POSITIONS))
    request = OpenRequest(
        symbol="BTCUSDT", side=Side.LONG, quantity=AMOUNT, rules=app.venue.rules("BTCUSDT")
    )
    result = await app.run(kernel.services.opener.open(request))
    assert result.unproven, result

    await app.run(kernel.stop("test over"))

    held = app.venue.position("BTCUSDT")
    assert held is not None and held.quantity == AMOUNT  # it did fill
    assert stop_problems(app.venue) == []


async def test_guard_and_sync_passes_during_the_read_back_leave_the_open_its_one_stop(
    app: App,
) -> None:
    """While the open reads its entry back (Bybit lists it late), a guard pass and a sync
    pass run: the filled position is the open's (its operation is in flight), so neither
    adopts it nor places a stop of its own; the open ends with the one stop."""
    lag(app, 3600)

    async def passes() -> None:
        await app.clock.sleep(1.0)  # inside the read-back's 5.75 s
        await app.guard.check()
        await app.sync.sync()

    result, _ = await app.run(
        asyncio.gather(app.opener.open(request_for(app, "BTCUSDT")), passes())
    )

    assert result.opened, result
    [stored] = await app.store.positions.open_positions()
    assert stored.id == result.position.id if result.position else False
    assert [o.trigger_price for o in app.venue.stops("BTCUSDT")] == [stored.stop_price]
    assert app.sink.of(EventType.MISSING_POSITION_ADDED) == []


def request_for(app: App, symbol: str) -> OpenRequest:
    return OpenRequest(
        symbol=symbol, side=Side.LONG, quantity=AMOUNT, rules=app.venue.rules(symbol)
    )


async def test_an_entry_listed_late_is_bare_no_longer_than_one_round_trip(app: App) -> None:
    """Bybit's entry carries its stop (`/v5/order/create` `stopLoss`): the venue sets it on
    the position as the entry fills, so the read-back's wait for the listing leaves no gap."""
    lag(app, 2)

    result = await app.open("BTCUSDT", Side.LONG, str(AMOUNT))

    assert result.opened, result
    assert gap_problems(app.venue, round_trip=ROUND_TRIP) == []


async def test_a_stop_that_fired_while_bybit_lists_late_is_journaled_filled(app: App) -> None:
    """The stop is not listed by id yet: its fill in the account's fills (`/v5/execution/
    list`, with the `orderId`) proves it fired — journaled filled, not cancelled."""
    result = await app.open("BTCUSDT", Side.LONG, str(AMOUNT))
    assert result.opened and result.position is not None and result.position.stop_price
    lag(app, 3600)  # from here on look-ups by id miss what the venue did (the stop's fill)

    await app.venue.set_mark("BTCUSDT", result.position.stop_price - 100)
    await app.run(app.sync.sync())

    assert app.venue.position("BTCUSDT") is None  # the stop fired
    assert app.sink.of(EventType.STOP_LOSS_CANCELLED) == []
    assert len(app.sink.of(EventType.STOP_LOSS_FILLED)) == 1


async def test_an_unproven_entry_that_filled_and_was_closed_is_not_journaled_as_never_opened(
    app: App,
) -> None:
    """The entry filled, but no one could prove it (Bybit lists it late; the open's look at
    the positions refused), and the position was closed by hand before the next pass. The
    venue is flat and does not list the order: the fills show the entry traded, so the open
    is journaled closed with its figures — not FAILED, "nothing opened"."""
    lag(app, 3600)
    # the symbol's leverage is set up first, so the fault hits the open's own look
    await app.run(app.services.margin.prepare("BTCUSDT"))
    app.venue.engine.faults.add(Fault.timeout(Op.FETCH_POSITIONS))
    result = await app.open("BTCUSDT", Side.LONG, str(AMOUNT))
    assert result.unproven and result.position is not None
    app.venue.engine.manual_close("BTCUSDT")

    await app.run(app.guard.check())

    stored = await app.store.positions.get(result.position.id)
    assert stored is not None
    assert stored.state is not PositionState.FAILED, stored.close_reason
    assert stored.state is PositionState.CLOSED and stored.quantity == ZERO
    assert entry_failures(app) == []


def _signals(venue: Venue, wave: datetime, symbols: list[str]) -> list[Signal]:
    return [
        Signal(
            id=f"{wave:%H%M}-{symbol}",
            symbol=symbol,
            venue=venue,
            side=Side.LONG,
            score_week=Decimal(90 - i),
            score_month=Decimal(50),
            wave=wave,
            created_at=wave,
        )
        for i, symbol in enumerate(symbols)
    ]


@pytest.mark.parametrize("wave_app", ["bybit"], indirect=True)
@pytest.mark.parametrize(
    "limit", [{"max_exposure_usd": Decimal(1000)}, {"max_open_positions": 5}], ids=str
)
async def test_entries_left_unproven_count_in_the_exposure_the_next_wave_is_sized_with(
    wave_app: App, limit: dict[str, object]
) -> None:
    """A wave's entries stay unproven (Bybit lists nothing within the read-back, the venue's
    positions unread): they may well be open on the venue, so their notional counts against
    `max_exposure_usd`, and they count against `max_open_positions`, when the next wave is
    sized, as proven positions would. (The count held before the fix; the exposure did not.)"""
    limited = attrs.evolve(
        wave_app.parts.settings,
        sizing=attrs.evolve(wave_app.parts.settings.sizing, **limit),
    )
    app = build_app(wave_app.venue, wave_app.store, settings=limited)
    venue = app.venue.exchange.venue
    first = [f"S{i:02d}USDT" for i in (0, 1, 2, 4, 5)]  # S03 is on the stop list
    for signal in _signals(venue, WAVE, first):
        app.services.inbox.put(signal, at=app.clock.now())
    app.venue.lag_listing(3600)
    # the opens' reads fail (the wave's own read, before them, goes through)
    app.venue.inject(Fault(kind=FaultKind.TIMEOUT, op=Op.FETCH_POSITIONS, times=5, skip=1))
    report = await app.run(app.waves.process(WAVE))
    assert (report.opened, report.unproven) == (0, 5), report  # ~1000 USDT that may be open

    later = WAVE + timedelta(minutes=15)
    for signal in _signals(venue, later, [f"S{i:02d}USDT" for i in range(10, 15)]):
        app.services.inbox.put(signal, at=app.clock.now())
    second = await app.run(app.waves.process(later))

    held = [p for p in app.venue.engine.positions() if p.quantity > 0]
    notional = sum((p.quantity * p.entry_price for p in held), Decimal(0))
    assert notional <= Decimal(1000), f"{len(held)} positions worth {notional} USDT on the venue"
    assert (second.opened, second.unproven) == (0, 0)
    # refused by the wave's risk filter (or, had it passed, by sizing's own check)
    assert second.rejections in (
        {"risk_limits": 5},
        {"max_exposure": 5},
        {"max_open_positions": 5},
    ), second
