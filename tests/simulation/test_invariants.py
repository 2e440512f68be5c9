"""The simulator's checker catches each invariant's violation in a hand-made venue history
(and stays quiet on the same history done right)."""

from datetime import timedelta
from decimal import Decimal

import pytest

from tradecore.adapters.clock import SequentialIds
from tradecore.adapters.paper import FaultKind
from tradecore.adapters.sqlite.database import SqliteDatabase
from tradecore.app.protection import ProtectionView
from tradecore.app.recorder import Recorder
from tradecore.domain.events import EventType, Severity
from tradecore.domain.model import OrderSide, Side
from tradecore.ports.exchange import ExchangeUnavailable, Rejected, RejectReason
from tradecore.testing import Accepted, EventLog, FakeVenue, Fault, Op
from tradecore.testing.simulation import Checker, Windows

BTC = "BTCUSDT"
TRIP = 0.05


def watched(**options: object) -> tuple[FakeVenue, Checker]:
    venue = FakeVenue.binance(marks={BTC: "50000"}, **options)  # type: ignore[arg-type]
    return venue, Checker(venue, Windows(round_trip=TRIP)).attach()


def open_long(venue: FakeVenue, cid: str = "tc-pos1-e0", quantity: str = "0.01") -> None:
    venue.engine.place_market(BTC, OrderSide.BUY, Decimal(quantity), client_order_id=cid)


def stop(venue: FakeVenue, trigger: str, cid: str, quantity: str = "0.01") -> str:
    result = venue.engine.place_stop(
        BTC, OrderSide.SELL, Decimal(quantity), Decimal(trigger), client_order_id=cid
    )
    return result.order.order_id  # type: ignore[union-attr]


def broken(checker: Checker) -> list[str]:
    return [v.invariant for v in checker.violations]


async def test_a_position_left_without_a_stop_beyond_one_round_trip_is_unprotected() -> None:
    venue, checker = watched()
    open_long(venue)
    await venue.advance(TRIP / 2)
    assert broken(checker) == []
    await venue.advance(5)  # nothing else happens: the checker's own timer catches it
    assert broken(checker) == ["unprotected"]


async def test_a_stop_placed_within_one_round_trip_is_fine() -> None:
    venue, checker = watched()
    open_long(venue)
    await venue.advance(TRIP)
    stop(venue, "48500", "tc-pos1-s0")
    await venue.advance(600)
    assert broken(checker) == []


def refused_stop(venue: FakeVenue, trigger: str, cid: str) -> RejectReason:
    refused = venue.engine.place_stop(
        BTC, OrderSide.SELL, Decimal("0.01"), Decimal(trigger), client_order_id=cid
    )
    assert isinstance(refused, Rejected)
    return refused.reason


async def test_a_stop_the_venue_refused_as_triggering_allows_its_trip_and_a_mark_read() -> None:
    # The mark falls through the planned stop while it travels: the venue refuses it (-2021),
    # the bot reads the mark and places it 0.5 % beyond (SPEC §3): two more round trips.
    venue, checker = watched()
    open_long(venue)
    await venue.advance(TRIP / 2)
    await venue.set_mark(BTC, "48400")
    await venue.advance(TRIP / 2)  # the stop reaches the venue one round trip after the fill
    assert refused_stop(venue, "48500", "tc-pos1-s0") is RejectReason.WOULD_TRIGGER_IMMEDIATELY
    await venue.advance(2 * TRIP)  # its answer comes back, the mark is read, the stop travels
    stop(venue, "48150", "tc-pos1-s1")
    await venue.advance(600)
    assert broken(checker) == []


async def test_a_gap_one_trip_longer_than_the_triggering_refusals_allow_is_unprotected() -> None:
    venue, checker = watched()
    open_long(venue)
    await venue.set_mark(BTC, "48400")
    await venue.advance(TRIP)
    assert refused_stop(venue, "48500", "tc-pos1-s0") is RejectReason.WOULD_TRIGGER_IMMEDIATELY
    await venue.advance(2 * TRIP)  # what the refusal allows: still quiet
    assert broken(checker) == []
    await venue.advance(TRIP)  # one round trip more: bare too long
    assert broken(checker) == ["unprotected"]
    stop(venue, "48150", "tc-pos1-s1")


async def test_refusals_at_a_mark_that_stands_still_do_not_excuse_a_bare_position() -> None:
    # A bot that keeps sending its stop on the far side of a mark that is not moving (a stale
    # mark, a level inside a liquidation the mark already passed): no refusal after the first
    # is the mark's doing, and the position is bare for 20 round trips.
    venue, checker = watched()
    open_long(venue)
    await venue.set_mark(BTC, "48400")
    await venue.advance(TRIP)
    for attempt in range(10):
        assert (
            refused_stop(venue, "48500", f"tc-pos1-s{attempt}")
            is RejectReason.WOULD_TRIGGER_IMMEDIATELY
        )
        await venue.advance(2 * TRIP)
    assert broken(checker) == ["unprotected"]
    stop(venue, "48150", "tc-pos1-s10")


async def test_refusals_while_the_mark_keeps_falling_through_each_stop_are_each_excused() -> None:
    # A crash: each stop, planned 0.5 % beyond the mark just read, meets a mark that fell
    # further while it travelled.
    venue, checker = watched()
    open_long(venue)
    await venue.advance(TRIP)
    trigger, mark = Decimal(48500), Decimal(48400)
    for attempt in range(5):
        await venue.set_mark(BTC, str(mark))
        assert (
            refused_stop(venue, str(trigger), f"tc-pos1-s{attempt}")
            is RejectReason.WOULD_TRIGGER_IMMEDIATELY
        )
        await venue.advance(2 * TRIP)
        trigger = (mark * Decimal("0.995")).quantize(Decimal("0.1"))
        mark = (mark * Decimal("0.99")).quantize(Decimal("0.1"))
    await venue.set_mark(BTC, str(mark))
    stop(venue, str((mark * Decimal("0.995")).quantize(Decimal("0.1"))), "tc-pos1-s5")
    await venue.advance(600)
    assert broken(checker) == []


async def test_a_stop_refused_for_another_reason_allows_no_more_time() -> None:
    venue, checker = watched()
    open_long(venue)
    await venue.advance(TRIP)
    venue.inject(Fault.reject(RejectReason.INSUFFICIENT_BALANCE, Op.STOP_ORDER))
    assert refused_stop(venue, "48500", "tc-pos1-s0") is RejectReason.INSUFFICIENT_BALANCE
    await venue.advance(2 * TRIP)
    assert broken(checker) == ["unprotected"]


async def test_a_gap_inside_an_injected_fault_window_is_allowed_until_it_ends() -> None:
    venue, checker = watched()
    checker.excuse(BTC, "reject:too_many_conditional_orders", until=venue.now() + _s(120))
    open_long(venue)
    await venue.advance(100)
    assert broken(checker) == []
    await venue.advance(30)
    assert broken(checker) == ["unprotected"]


async def test_a_refused_read_of_the_whole_account_excuses_every_symbol() -> None:
    # Rule (issue 10, item 2): a position may be bare "while an injected fault refuses every
    # protective command on that symbol (then until the fault ends plus one guard interval
    # plus one round trip)". The venue lists positions only for the whole account, so a
    # fault aimed at ETH that refuses that list refuses BTC's protection as much as ETH's.
    venue, checker = watched()
    open_long(venue)
    venue.inject(Fault.rate_limit(Op.FETCH_POSITIONS, symbol="ETHUSDT"))
    with pytest.raises(ExchangeUnavailable):
        await venue.exchange.fetch_positions()
    await venue.advance(60)  # the guard's next pass is one interval after the refusal
    assert broken(checker) == []
    await venue.advance(10)  # ... and then it had a pass and a round trip to put it right
    assert broken(checker) == ["unprotected"]


async def test_a_refused_read_of_another_symbol_excuses_nothing_here() -> None:
    venue, checker = watched()
    open_long(venue)
    venue.inject(Fault.rate_limit(Op.FETCH_OPEN_ORDERS, symbol="ETHUSDT"))
    with pytest.raises(ExchangeUnavailable):
        await venue.exchange.fetch_open_orders("ETHUSDT")
    await venue.advance(5)
    assert broken(checker) == ["unprotected"]


async def test_a_refused_balance_stops_no_protection_pass_and_excuses_nothing() -> None:
    venue, checker = watched()
    open_long(venue)
    venue.inject(Fault.rate_limit(Op.FETCH_BALANCE, symbol="ETHUSDT"))
    with pytest.raises(ExchangeUnavailable):
        await venue.exchange.fetch_balance()
    await venue.advance(5)
    assert broken(checker) == ["unprotected"]


async def test_two_stops_for_longer_than_a_round_trip_break_one_stop() -> None:
    venue, checker = watched()
    open_long(venue)
    stop(venue, "48500", "tc-pos1-s0")
    stop(venue, "48600", "tc-pos1-s1")
    await venue.advance(1)
    assert broken(checker) == ["one_stop"]


async def test_a_stop_an_earlier_position_left_is_a_zombie_not_a_second_stop() -> None:
    """Binance seed 391: a stop of ours placed while the symbol was flat still stands when
    the next position opens and gets its own stop. It is a zombie, judged by the zombie
    window (the guard's duplicate pass or the zombie pass removes it), not a second stop;
    past that window it is caught as one."""
    venue, checker = watched(cancel_reduce_only_when_flat=False)
    stop(venue, "48600", "tc-pos0-s1")  # left by an earlier position
    await venue.advance(60)
    open_long(venue)
    stop(venue, "48500", "tc-pos1-s0")
    await venue.advance(60)
    assert broken(checker) == []
    await venue.advance(checker.windows.zombie().total_seconds())
    assert broken(checker)[0] == "zombie"  # (then, no zombie any more, one stop too many)


async def test_a_stop_for_less_than_the_position_does_not_protect_it() -> None:
    venue, checker = watched()
    open_long(venue, quantity="0.02")
    stop(venue, "48500", "tc-pos1-s0", quantity="0.01")
    await venue.advance(1)
    assert broken(checker) == ["unprotected"]


async def test_the_bot_setting_a_looser_stop_than_its_last_one_is_loosened() -> None:
    venue, checker = watched()
    open_long(venue)
    first = stop(venue, "49000", "tc-pos1-s0")
    stop(venue, "48500", "tc-pos1-s1")  # the restore at the initial distance (story 3)
    venue.engine.cancel(BTC, first)
    assert broken(checker) == ["loosened"]


async def test_a_persons_looser_stop_not_put_back_within_a_guard_pass_is_loosened() -> None:
    venue, checker = watched()
    open_long(venue)
    stop(venue, "49000", "tc-pos1-s0")
    checker.excuse(
        BTC, "move_stop_looser", until=venue.now() + checker.windows.after_person(""), fault=False
    )
    venue.move_stop(BTC, "47000")
    await venue.advance(30)
    assert broken(checker) == []
    await venue.advance(60)
    assert broken(checker) == ["loosened"]


def person(checker: Checker, action: str) -> None:
    """What the simulator does as a person acts: the symbol is excused for a guard pass."""
    until = checker.clock.now() + checker.windows.after_person(action)
    checker.excuse(BTC, action, until=until, fault=False)


async def test_a_persons_tighter_stop_becomes_the_level_the_bot_must_not_undercut() -> None:
    venue, checker = watched()
    open_long(venue)
    stop(venue, "49000", "tc-pos1-s0")
    person(checker, "move_stop_tighter")
    venue.move_stop(BTC, "49500")  # tighter by hand ...
    await venue.advance(checker.windows.after_person("").total_seconds() + 1)
    [persons] = venue.stops(BTC)  # ... stood a guard pass: the bot's level now
    stop(venue, "49000", "tc-pos1-s1")  # the guard "repairs" it back to its own
    venue.engine.cancel(BTC, persons.order_id)
    assert broken(checker) == ["loosened"]


async def test_a_persons_tighter_stop_the_bot_journaled_is_its_level_at_once() -> None:
    venue, checker = watched()
    open_long(venue)
    stop(venue, "49000", "tc-pos1-s0")
    person(checker, "move_stop_tighter")
    venue.move_stop(BTC, "49500")
    recorder = Recorder(EventLog(), venue.clock, SequentialIds("e"))
    checker.on_event(  # the keeper adopted it: a manual change
        recorder.record(
            EventType.STOP_LOSS_REPLACED,
            symbol=BTC,
            data={"price": Decimal("49500"), "reason": "manual change", "method": "adopted"},
        )
    )
    stop(venue, "49000", "tc-pos1-s1")
    assert broken(checker) == ["loosened"]


async def test_a_persons_tighter_stop_gone_before_a_guard_pass_saw_it_is_not_the_level() -> None:
    """Simulator binance 54: a person tightened the stop, then cancelled it within a second;
    no guard pass could have seen it, so the bot rightly puts back the last stop it set."""
    venue, checker = watched()
    open_long(venue)
    stop(venue, "49000", "tc-pos1-s0")
    person(checker, "move_stop_tighter")
    venue.move_stop(BTC, "49500")
    await venue.advance(1)
    person(checker, "cancel_stop")
    venue.cancel_stop(BTC)
    await venue.advance(40)
    stop(venue, "49000", "tc-pos1-s1")  # the guard's repair: the bot's own level
    await venue.advance(600)
    assert broken(checker) == []


async def test_a_persons_tighter_stop_a_fault_hid_from_the_guard_is_not_the_level_yet() -> None:
    """Simulator binance 75: a person's tighter stop stood while a fault kept every guard
    pass from reading the venue; then the person moved it looser than the bot's level. The
    bot puts back its own level once the fault is over: not a loosening."""
    venue, checker = watched()
    open_long(venue)
    stop(venue, "49000", "tc-pos1-s0")
    checker.excuse(BTC, "ban_418", until=venue.now() + _s(600) + checker.windows.after_fault())
    person(checker, "move_stop_tighter")
    venue.move_stop(BTC, "49500")
    await venue.advance(300)
    person(checker, "move_stop_looser")
    venue.move_stop(BTC, "48000")
    await venue.advance(360)
    [persons] = venue.stops(BTC)
    stop(venue, "49000", "tc-pos1-s1")  # the guard, the fault over: the bot's own level
    venue.engine.cancel(BTC, persons.order_id)
    await venue.advance(600)
    assert broken(checker) == []


async def test_one_operation_entering_twice_is_caught() -> None:
    venue, checker = watched()
    open_long(venue, cid="tc-pos1-e0")
    stop(venue, "48500", "tc-pos1-s0")
    open_long(venue, cid="tc-pos1-e1")  # a retry after a lost answer, sent blind
    assert broken(checker) == ["entered_twice"]


async def test_our_order_outliving_its_position_is_a_zombie() -> None:
    venue, checker = watched(cancel_reduce_only_when_flat=False)
    open_long(venue)
    stop(venue, "48500", "tc-pos1-s0")
    venue.close_by_hand(BTC)
    await venue.advance(300)
    assert broken(checker) == []
    await venue.advance(60)
    assert broken(checker) == ["zombie"]


async def test_a_zombie_the_venue_refuses_to_cancel_may_live_one_zombie_pass_past_the_fault() -> (
    None
):
    # the zombie pass runs every zombie interval (300 s): a fault that refused its cancel is
    # repaired by the pass after it ends, one zombie interval later — not one guard pass later
    venue, checker = watched(cancel_reduce_only_when_flat=False)
    checker.excuse(BTC, "reject:no_position", until=venue.now() + _s(600))
    open_long(venue)
    stop(venue, "48500", "tc-pos1-s0")
    venue.close_by_hand(BTC)
    await venue.advance(600 + 300 - 60)
    assert broken(checker) == []
    await venue.advance(30)
    assert broken(checker) == ["zombie"]


async def test_a_refused_account_wide_read_blinds_every_symbol() -> None:
    # a fault aimed at another symbol refuses the positions read every pass needs: the zombie
    # on BTC cannot be judged while that lasts, and must go one zombie pass after it
    venue, checker = watched(cancel_reduce_only_when_flat=False)
    open_long(venue)
    stop(venue, "48500", "tc-pos1-s0")
    venue.close_by_hand(BTC)
    for _ in range(10):  # a pass every minute, each one's positions read refused
        await venue.advance(60)
        checker.on_fault(Fault.rate_limit(symbol="ETHUSDT"), Op.FETCH_POSITIONS, None)
    assert broken(checker) == []
    await venue.advance(60 + 300 - 60 - 10)
    assert broken(checker) == []
    await venue.advance(30)
    assert broken(checker) == ["zombie"]


def test_a_fault_plan_tells_its_observers_each_time_a_fault_fires() -> None:
    venue = FakeVenue.binance()
    heard: list[tuple[Op, str | None]] = []
    venue.engine.faults.observers.append(lambda _fault, op, symbol: heard.append((op, symbol)))
    venue.inject(Fault.rate_limit(symbol="ETHUSDT", times=2))
    assert venue.engine.faults.take(Op.FETCH_POSITIONS, None, frozenset({FaultKind.RATE_LIMIT}))
    assert heard == [(Op.FETCH_POSITIONS, None)]


async def test_the_guard_reporting_no_unprotected_position_while_one_is_bare_is_blind() -> None:
    venue, checker = watched()
    recorder = Recorder(EventLog(), venue.clock, SequentialIds("e"))
    checker.excuse(BTC, "network_error", until=venue.now() + _s(600))  # a long allowed gap
    open_long(venue)
    await venue.advance(60)
    checker.on_event(recorder.record(EventType.PROTECTION_CHECK_COMPLETED, data={"unprotected": 0}))
    assert broken(checker) == ["guard_blind"]
    checker.on_event(recorder.record(EventType.PROTECTION_CHECK_COMPLETED, data={"unprotected": 1}))
    assert broken(checker) == ["guard_blind"]


async def test_a_critical_without_an_injected_fault_is_unexplained() -> None:
    venue, checker = watched()
    recorder = Recorder(EventLog(), venue.clock, SequentialIds("e"))
    checker.excuse(BTC, "reject:region_restricted", until=venue.now() + _s(60))
    checker.on_event(
        recorder.record(EventType.CRITICAL_ERROR, symbol=BTC, severity=Severity.CRITICAL)
    )
    assert broken(checker) == []
    await venue.advance(120)
    checker.on_event(
        recorder.record(EventType.CRITICAL_ERROR, symbol=BTC, severity=Severity.CRITICAL)
    )
    assert broken(checker) == ["unexplained_critical"]


async def test_at_quiescence_a_position_the_journal_does_not_know_is_a_mismatch() -> None:
    venue, checker = watched()
    open_long(venue, cid="tc-pos1-e0")
    stop(venue, "48500", "tc-pos1-s0")
    database = await SqliteDatabase.connect(":memory:")
    try:
        found = await checker.quiescent(database.store, [])
    finally:
        await database.close()
    assert {v.invariant for v in found} == {"journal_mismatch"}
    details = " ".join(v.detail for v in found)
    assert "journal: nothing" in details  # the position
    assert "no event for our" in details  # and the orders nobody journaled


def _s(seconds: float) -> timedelta:
    return timedelta(seconds=seconds)


async def test_a_stop_that_does_not_follow_a_mark_far_in_profit_is_trailing_stuck() -> None:
    venue, checker = watched()
    open_long(venue)
    stop(venue, "48500", "tc-pos1-s0")
    for mark in ("50500", "51000", "51500", "52000"):  # 4 % up: trailing is active
        await venue.set_mark(BTC, mark)
        await venue.advance(20)
    await venue.advance(60)
    await venue.set_mark(BTC, "52010")
    await venue.advance(30)
    assert broken(checker) == []  # late is allowed (one more rate-limit period) ...
    await venue.advance(40)
    assert broken(checker) == ["trailing_stuck"]  # ... frozen is not


async def test_a_stop_that_follows_the_mark_is_not_stuck() -> None:
    venue, checker = watched()
    open_long(venue)
    first = stop(venue, "48500", "tc-pos1-s0")
    for mark in ("50500", "51000", "51500", "52000"):
        await venue.set_mark(BTC, mark)
        await venue.advance(20)
    stop(venue, "51740", "tc-pos1-s1")  # 52000 less the 0.5 % callback
    venue.engine.cancel(BTC, first)
    await venue.advance(60)
    await venue.set_mark(BTC, "52010")
    await venue.advance(120)
    assert broken(checker) == []


async def test_a_stop_trailing_from_a_mark_that_fell_through_the_trailing_level_is_fine() -> None:
    """The rate limit held the move to the best mark (52000) back, and the mark fell through
    52000 less the callback (51740) before it was due: no stop can stand at 51740 any more,
    so trailing resumes from the mark (issue 10, story 5) — 51700 less the callback."""
    venue, checker = watched()
    open_long(venue)
    first = stop(venue, "48500", "tc-pos1-s0")
    for mark in ("50500", "51000", "51500"):
        await venue.set_mark(BTC, mark)
        await venue.advance(20)
    second = stop(venue, "51242", "tc-pos1-s1")  # 51500 less the callback
    venue.engine.cancel(BTC, first)
    await venue.set_mark(BTC, "52000")  # inside the rate limit: the move waits
    await venue.advance(20)
    await venue.set_mark(BTC, "51700")  # through 51740 before the move was due
    await venue.advance(25)
    stop(venue, "51441", "tc-pos1-s2")  # due: trailed from the mark
    venue.engine.cancel(BTC, second)
    for mark in ("51710", "51690", "51705", "51700", "51695", "51710", "51700"):
        await venue.set_mark(BTC, mark)
        await venue.advance(30)
    assert broken(checker) == []


async def test_a_stop_left_behind_after_the_mark_fell_back_and_stayed_is_still_stuck() -> None:
    venue, checker = watched()
    open_long(venue)
    stop(venue, "48500", "tc-pos1-s0")
    for mark in ("50500", "51000", "51500", "52000", "51700"):
        await venue.set_mark(BTC, mark)
        await venue.advance(20)
    for mark in ("51710", "51690", "51705", "51700", "51695", "51710", "51700"):
        await venue.set_mark(BTC, mark)
        await venue.advance(30)
    assert broken(checker) == ["trailing_stuck"]


async def test_a_fall_through_the_trailing_level_counts_at_once_not_a_lag_later() -> None:
    """The mark falls through the newest best's trailing level (52000 less the callback)
    before the move was due; the fall counts from the moment it happens, though the best
    itself only counts once the rate limit let the bot see it."""
    venue, checker = watched()
    open_long(venue)
    first = stop(venue, "48500", "tc-pos1-s0")
    for mark in ("50500", "51000", "51678"):
        await venue.set_mark(BTC, mark)
        await venue.advance(20)
    stop(venue, "51420", "tc-pos1-s1")  # 51678 less the callback
    venue.engine.cancel(BTC, first)
    await venue.advance(10)
    await venue.set_mark(BTC, "51800")  # a better best: due after the rate limit
    await venue.advance(49)
    await venue.set_mark(BTC, "52000")  # better again, just before the move is due
    await venue.advance(24)
    await venue.set_mark(BTC, "51700")  # through 51740: 51700 less the callback gains < 0.1 %
    for mark in ("51705", "51710", "51700", "51706", "51702", "51708", "51700", "51704"):
        await venue.advance(10)
        await venue.set_mark(BTC, mark)
    assert broken(checker) == []


async def test_a_fault_that_begins_while_the_stop_lags_excuses_it_until_a_retry_after_it() -> None:
    """The stop lags a mark far in profit; before it is late, a fault begins that refuses
    every move, and the marks then stay flat. Once the fault's excuse is over the bot has its
    retry interval and a round trip to move the stop (no mark comes to prompt it), no more."""
    venue, checker = watched()
    open_long(venue)
    stop(venue, "48500", "tc-pos1-s0")
    for mark in ("50500", "51000", "51500", "52000"):
        await venue.set_mark(BTC, mark)
        await venue.advance(20)
    await venue.advance(60)
    await venue.set_mark(BTC, "52010")  # the move is owed from here on
    await venue.advance(10)
    windows = checker.windows
    until = venue.now() + _s(300) + windows.after_fault()
    checker.excuse(BTC, "reject:symbol_unavailable", until=until)
    retry = windows.trailing_retry + windows.round_trip
    await venue.advance((until - venue.now()).total_seconds() + retry - 1)
    assert broken(checker) == []
    await venue.advance(2)
    assert broken(checker) == ["trailing_stuck"]


def close_at_market(venue: FakeVenue, cid: str = "tc-op9-x0", quantity: str = "0.01") -> None:
    """The bot's reduce-only market close (what `StopWriter.market_close` sends)."""
    venue.engine.place_market(
        BTC, OrderSide.SELL, Decimal(quantity), client_order_id=cid, reduce_only=True
    )


async def test_the_bot_closing_a_protected_position_at_market_is_caught() -> None:
    # story 7: the stop stood, an "already done" answer was taken as a failure, and the
    # open rolled back: the position was closed at market though a stop protected it
    venue, checker = watched()
    open_long(venue)
    stop(venue, "48500", "tc-pos1-s0")
    await venue.advance(5)
    close_at_market(venue)
    assert broken(checker) == ["closed_protected"]


@pytest.mark.parametrize(
    ("left_at", "caught"),
    [
        pytest.param("48600", True, id="tighter-than-the-initial-stop"),
        pytest.param("48500", False, id="at-the-initial-stop"),
        pytest.param("48000", False, id="looser-than-the-initial-stop"),
    ],
)
async def test_a_rollback_is_caught_only_past_a_stop_it_could_have_kept(
    left_at: str, caught: bool
) -> None:
    """An open rolls back (no stop of its own could be placed) while a stop an earlier
    position left stands. One tighter than the initial stop from the entry (3 % under
    50000: 48500) is one the open adopts (`StopKeeper.adopt_standing`): closing at market
    past it is caught; a stop no tighter than that is not the risk the operator set, and
    the rollback is the rule (binance seed 297)."""
    venue, checker = watched(cancel_reduce_only_when_flat=False)
    stop(venue, left_at, "tc-pos0-s0")  # an earlier position's, left on the venue
    open_long(venue)
    await venue.advance(5)  # every stop of the open refused
    close_at_market(venue)
    await venue.advance(120)
    assert [v for v in broken(checker) if v != "zombie"] == (["closed_protected"] if caught else [])


async def test_closing_a_bare_position_at_market_is_the_last_resort() -> None:
    venue, checker = watched()
    checker.excuse(BTC, "reject:too_many_conditional_orders", until=venue.now() + _s(60))
    open_long(venue)
    await venue.advance(5)  # every stop refused: no stop on the venue
    close_at_market(venue)
    await venue.advance(120)
    assert broken(checker) == []


async def test_closing_at_market_once_the_mark_crossed_the_bots_level_is_allowed() -> None:
    venue, checker = watched()
    open_long(venue)
    stop(venue, "49000", "tc-pos1-s0")
    checker.excuse(BTC, "move_stop_looser", until=venue.now() + _s(120), fault=False)
    venue.move_stop(BTC, "47000")  # a person loosened it ...
    await venue.set_mark(BTC, "48900")  # ... and the mark went past the bot's level
    await venue.advance(1)
    close_at_market(venue)
    await venue.advance(120)
    assert broken(checker) == []


@pytest.mark.parametrize(
    ("stood", "back_after", "caught"),
    [
        pytest.param(14, 0.5, False, id="the-crossing-mark-stood-until-just-before-the-close"),
        pytest.param(600, 0.5, False, id="... having stood longer than the trailing lag"),
        pytest.param(14, 10.0, True, id="the-mark-came-back-long-before-the-close"),
    ],
)
async def test_a_mark_standing_past_the_level_until_just_before_the_close_allows_it(
    stood: float, back_after: float, caught: bool
) -> None:
    """Simulator beyond the CI seeds (binance seed 1679): a mark past the bot's level had
    stood for 14 s when the guard read it and decided to close; it moved back just before
    the close reached the venue. The checker counted only marks that began within the
    slack before the close, not one that began earlier and still stood then."""
    venue, checker = watched()
    open_long(venue)
    stop(venue, "49000", "tc-pos1-s0")
    checker.excuse(BTC, "move_stop_looser", until=venue.now() + _s(stood + 120), fault=False)
    venue.move_stop(BTC, "47000")  # a person loosened it ...
    await venue.set_mark(BTC, "48900")  # ... and the mark went past the bot's level
    await venue.advance(stood)  # the guard reads it here, and decides to close
    await venue.set_mark(BTC, "49100")  # the mark comes back over the level ...
    await venue.advance(back_after)
    close_at_market(venue)  # ... as the close reaches the venue
    await venue.advance(120)
    assert broken(checker) == (["closed_protected"] if caught else [])


async def test_closing_a_protected_position_at_the_aged_cap_is_allowed() -> None:
    venue, checker = watched()
    open_long(venue)
    stop(venue, "48500", "tc-pos1-s0")
    await venue.advance(3600 * 20)  # aged (3 h + 8 h grace), conceding, not at the cap yet
    close_at_market(venue, quantity="0.005")
    assert broken(checker) == ["closed_protected"]
    await venue.advance(3600 * 8)  # 10 % conceded 16.4 h past the grace: the cap
    close_at_market(venue, cid="tc-op9-x1", quantity="0.005")
    assert broken(checker) == ["closed_protected"]  # the first one only


async def test_a_health_view_that_shows_no_bare_position_while_one_is_bare_is_blind() -> None:
    # issue 10: while a fault refuses the repair, the position may stay bare — and for that
    # whole time /health, the metrics and the guard's events must count it as unprotected
    venue, checker = watched()
    recorder = Recorder(EventLog(), venue.clock, SequentialIds("e"))
    shown: set[str] = set()
    checker.health = lambda: ProtectionView(
        read_at=venue.now() - _s(1), checked_at=venue.now(), symbols=frozenset(shown)
    )
    checker.excuse(BTC, "reject:too_many_conditional_orders", until=venue.now() + _s(600))
    open_long(venue)
    await venue.advance(60)
    pass_over = {"unprotected": 1, "still_unprotected": 1}
    shown.add(BTC)
    checker.on_event(recorder.record(EventType.PROTECTION_CHECK_COMPLETED, data=pass_over))
    assert broken(checker) == []
    shown.clear()  # /health says 0 while the position is still bare
    await venue.advance(60)
    checker.on_event(recorder.record(EventType.PROTECTION_CHECK_COMPLETED, data=pass_over))
    assert broken(checker) == ["health_blind"]


async def test_a_position_that_became_bare_after_the_pass_read_the_venue_is_not_yet_due() -> None:
    venue, checker = watched()
    recorder = Recorder(EventLog(), venue.clock, SequentialIds("e"))
    read_at = venue.now()
    checker.health = lambda: ProtectionView(read_at=read_at, checked_at=venue.now())
    checker.excuse(BTC, "cancel_stop", until=venue.now() + _s(600), fault=False)
    await venue.advance(1)
    open_long(venue)  # after the pass's read: the next pass must count it
    await venue.advance(1)
    checker.on_event(recorder.record(EventType.PROTECTION_CHECK_COMPLETED, data={"unprotected": 1}))


async def test_a_take_profit_or_a_trailing_stop_alone_is_no_protection() -> None:
    venue, checker = watched()
    open_long(venue)
    assert isinstance(venue.add_take_profit(BTC, "55000"), Accepted)
    assert isinstance(venue.add_trailing_stop(BTC, rate="0.01"), Accepted)
    await venue.advance(5)
    assert broken(checker) == ["unprotected"]


async def test_a_take_profit_beside_the_stop_is_no_second_stop() -> None:
    venue, checker = watched()
    open_long(venue)
    await venue.advance(TRIP)
    stop(venue, "48500", "tc-pos1-s0")
    venue.add_take_profit(BTC, "55000")
    venue.add_trailing_stop(BTC, rate="0.01")
    await venue.advance(600)
    assert broken(checker) == []


async def test_a_best_mark_that_came_while_the_bot_was_down_is_not_one_it_must_trail() -> None:
    """CI seed binance 85 (trailing_stuck): the mark spiked while the process was down (a
    crash, then a start-up the venue's 418s held back for ten minutes) and never came back
    so high. The restarted bot trails from the marks it sees; it cannot trail a best it never
    saw. A best seen once it is up still counts."""
    venue, checker = watched()
    up = True
    checker.app_up = lambda: up
    open_long(venue)
    first = stop(venue, "48500", "tc-pos1-s0")
    await venue.set_mark(BTC, "50300")  # in profit, short of the activation (50750)
    await venue.advance(20)
    up, down = False, checker.excuse(None, "crash", until=None)
    for mark in ("52000", "51850", "51760", "51800"):  # never through 52000's level (51740)
        await venue.set_mark(BTC, mark)
        await venue.advance(20)
    up = True
    checker.close_excuse(down, venue.now() + _s(TRIP + checker.windows.slack))
    await venue.set_mark(BTC, "51790")  # the first mark it sees: activated, trailed from it
    stop(venue, "51531", "tc-pos1-s1")
    venue.engine.cancel(BTC, first)
    for mark in ("51780", "51770", "51790", "51760", "51785", "51775") * 2:
        await venue.set_mark(BTC, mark)
        await venue.advance(30)
    assert broken(checker) == []
    for mark in ("52300", "52290", "52295", "52285", "52300", "52290") * 2:  # seen: trailed
        await venue.set_mark(BTC, mark)
        await venue.advance(30)
    assert broken(checker) == ["trailing_stuck"]


async def test_a_best_mark_before_the_bot_knew_the_position_is_not_one_it_must_trail() -> None:
    """Simulator beyond the CI seeds, binance seed 909 (trailing_stuck): a person opened a
    position by hand while a 418 ban kept the venue unreadable; the mark ran far in its
    favour and came back before the ban ended and a sync pass adopted it. The bot trails
    from the marks it sees once it knows the position; a best seen after that counts."""
    venue, checker = watched()
    ban = checker.excuse(None, "ban_418", until=None)
    person(checker, "open_by_hand")
    venue.open_by_hand(BTC, Side.LONG, "0.01")
    for mark in ("51000", "52000", "51850", "51760", "51800"):  # never through 52000's level
        await venue.set_mark(BTC, mark)
        await venue.advance(20)
    checker.close_excuse(ban, venue.now())
    await venue.advance(60)
    recorder = Recorder(EventLog(), venue.clock, SequentialIds("e"))
    checker.on_event(  # a sync pass adopts it ...
        recorder.record(EventType.MISSING_POSITION_ADDED, symbol=BTC, data={})
    )
    await venue.set_mark(BTC, "51790")  # ... and its trailing starts from the marks it sees
    stop(venue, "51531", "tc-p9-s0")
    for mark in ("51780", "51770", "51790", "51760", "51785", "51775") * 2:
        await venue.set_mark(BTC, mark)
        await venue.advance(30)
    assert broken(checker) == []
    for mark in ("52300", "52290", "52295", "52285", "52300", "52290") * 2:  # seen: trailed
        await venue.set_mark(BTC, mark)
        await venue.advance(30)
    assert broken(checker) == ["trailing_stuck"]


@pytest.mark.parametrize("story", ["reopened_by_hand", "the_bots_own", "adopted_only"])
async def test_a_stop_set_for_a_position_the_bot_then_found_ended_binds_not_the_next(
    story: str,
) -> None:
    """Simulator beyond the CI seeds, bybit seed 1158 (loosened): a person's take-profit
    closed the bot's position while a 418 kept the bot from reading the venue; a person
    opened the symbol again, and trailing's next move (a Bybit position stop) landed on that
    position. Once it could read, the bot journaled its own position closed (flat since its
    entry) and adopted the person's, with a stop from the person's entry: the level the bot
    set was for its own position. Not so for a position the bot entered itself (a wrong
    close and re-adoption of its own live position loosens its stop: the review), nor for
    an adoption with no close."""
    venue, checker = watched()
    if story == "reopened_by_hand":
        open_long(venue)
        venue.close_by_hand(BTC)  # a person's take-profit: flat
        venue.open_by_hand(BTC, Side.LONG, "0.01")  # a person's position, a new record
    else:
        open_long(venue)  # the bot's own entry
    stop(venue, "49500", "tc-pos1-s3")  # trailing's move, for the bot's position
    recorder = Recorder(EventLog(), venue.clock, SequentialIds("e"))
    if story != "adopted_only":
        checker.on_event(recorder.record(EventType.POSITION_CLOSED, symbol=BTC, data={}))
    checker.on_event(recorder.record(EventType.MISSING_POSITION_ADDED, symbol=BTC, data={}))
    stop(venue, "48500", "tc-pos2-s0")  # the adopted position's own initial stop

    assert broken(checker) == ([] if story == "reopened_by_hand" else ["loosened"])
