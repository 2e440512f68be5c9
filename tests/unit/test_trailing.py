from datetime import UTC, datetime, timedelta
from decimal import Decimal

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradecore.domain.errors import InvalidNumber
from tradecore.domain.model import Side, Venue
from tradecore.domain.precision import is_multiple
from tradecore.domain.stops import StopParams, initial_stop, would_trigger
from tradecore.domain.trailing import (
    EMPTY,
    ActivationCause,
    BreakevenReached,
    MoveStop,
    StopMoveReason,
    StopTriggered,
    TrailingActivated,
    TrailingEnded,
    TrailingParams,
    TrailingPhase,
    _trail,
    catch_up,
    end_trailing,
    follow_position,
    on_mark,
    prime,
    resume_trailing,
    start_trailing,
    stop_not_moved,
)

D = Decimal
LONG, SHORT = Side.LONG, Side.SHORT
CENT = D("0.01")
T0 = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
DEFAULTS = TrailingParams()


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


ENTRY = D(100)


def start(side=LONG, entry=ENTRY, stop="default", params=DEFAULTS):
    if stop == "default":
        stop = D(97) if side is LONG else D(103)
    return start_trailing(
        position_id="pos-1",
        venue=Venue.BYBIT,
        symbol="SOLUSDT",
        side=side,
        entry_price=entry,
        quantity=D("1.5"),
        opened_at=T0,
        stop_price=stop,
        params=params,
    )


def tick(state, mark, seconds, params=DEFAULTS):
    return on_mark(state, D(mark), at(seconds), params, CENT)


def moves(commands):
    return [c for c in commands if isinstance(c, MoveStop)]


def activated_long():
    """Long from 100, activated at 101.5 at t=0 with its stop at 100.99."""
    state, _ = tick(start(LONG), "101.5", 0)
    return state


# Worked examples.


def test_a_new_trailing_stop_is_inactive_and_watches_the_initial_stop():
    state = start(LONG)
    assert state.phase is TrailingPhase.INACTIVE
    assert state.stop_price == D(97)
    assert state.activation_price == D("101.5")
    assert state.update_count == 0


@pytest.mark.parametrize(("side", "mark"), [(LONG, "100.7"), (SHORT, "99.3")])
def test_a_tick_that_changes_nothing_returns_the_same_state_and_no_commands(side, mark):
    state = start(side)
    new, commands = tick(state, mark, 5)
    assert new is state
    assert commands is EMPTY


def test_a_long_activates_at_1_5_percent_profit_and_trails_half_a_percent_below():
    state = start(LONG)
    assert tick(state, "101.49", 1)[0] is state
    new, commands = tick(state, "101.5", 2)
    assert new.phase is TrailingPhase.ACTIVE
    assert new.best_price == D("101.5")
    # 101.5 x 0.995 = 100.9925, rounded down (away from the mark) to 100.99.
    assert commands == (
        TrailingActivated(
            position_id="pos-1", mark=D("101.5"), cause=ActivationCause.PROFIT, at=at(2)
        ),
        MoveStop(
            position_id="pos-1",
            new_stop=D("100.99"),
            previous_stop=D(97),
            reason=StopMoveReason.ACTIVATION,
        ),
    )
    assert new.stop_price == D("100.99")
    assert new.update_count == 1
    assert new.last_update_at == at(2)


def test_a_short_activates_at_1_5_percent_profit_and_trails_half_a_percent_above():
    new, commands = tick(start(SHORT), "98.5", 2)
    assert new.phase is TrailingPhase.ACTIVE
    # 98.5 x 1.005 = 98.9925, rounded up (away from the mark) to 98.99 -> 99.00.
    assert moves(commands) == [
        MoveStop(
            position_id="pos-1",
            new_stop=D("99.00"),
            previous_stop=D(103),
            reason=StopMoveReason.ACTIVATION,
        )
    ]


def test_a_stop_that_improves_by_less_than_1_percent_waits_for_the_rate_limit():
    state = activated_long()
    # 102 x 0.995 = 101.49: 0.495 % better than 100.99, but only 10 s after the last move.
    waiting, commands = tick(state, "102", 10)
    assert commands == ()
    assert waiting.stop_price == D("100.99")
    assert waiting.best_price == D(102)
    assert waiting.next_update_at == at(60)
    assert tick(waiting, "101.8", 59)[0] is waiting
    moved, commands = tick(waiting, "101.8", 60)
    assert moves(commands) == [
        MoveStop(
            position_id="pos-1",
            new_stop=D("101.49"),
            previous_stop=D("100.99"),
            reason=StopMoveReason.TRAIL,
        )
    ]
    assert moved.next_update_at is None
    assert moved.update_count == 2


def test_an_improvement_of_1_percent_or_more_bypasses_the_rate_limit():
    # 103 x 0.995 = 102.485 -> 102.48, 1.47 % better than 100.99, 10 s after the last move.
    moved, commands = tick(activated_long(), "103", 10)
    assert moves(commands) == [
        MoveStop(
            position_id="pos-1",
            new_stop=D("102.48"),
            previous_stop=D("100.99"),
            reason=StopMoveReason.OVERRIDE,
        )
    ]
    assert moved.stop_price == D("102.48")


def test_an_improvement_below_0_1_percent_does_not_move_the_stop():
    # 101.55 x 0.995 = 101.04: only 0.05 % better than 100.99, even long after the last move.
    new, commands = tick(activated_long(), "101.55", 600)
    assert commands == ()
    assert new.stop_price == D("100.99")
    assert new.best_price == D("101.55")
    assert new.next_update_at is None


def test_the_stop_stays_put_when_the_price_falls_back():
    state = activated_long()
    assert tick(state, "101.2", 300) == (state, EMPTY)


def test_after_the_rate_limit_a_move_of_0_1_percent_or_more_goes_through_at_once():
    # 101.7 x 0.995 = 101.1915 -> 101.19, 0.198 % better, 61 s after the last move.
    _, commands = tick(activated_long(), "101.7", 61)
    assert [m.new_stop for m in moves(commands)] == [D("101.19")]


def test_a_mark_through_the_stop_triggers_it_once():
    state = activated_long()
    triggered, commands = tick(state, "100.99", 30)
    assert triggered.phase is TrailingPhase.TRIGGERED
    assert commands == (
        StopTriggered(position_id="pos-1", stop_price=D("100.99"), mark=D("100.99"), at=at(30)),
    )
    assert tick(triggered, "100.5", 31) == (triggered, EMPTY)
    assert tick(triggered, "105", 32) == (triggered, EMPTY)


def test_a_triggered_stop_resumes_its_phase_when_the_venue_still_shows_the_position():
    triggered, _ = tick(activated_long(), "100.9", 30)
    resumed = resume_trailing(triggered)
    assert resumed.phase is TrailingPhase.ACTIVE
    assert resumed.stop_price == D("100.99")
    moved, commands = tick(resumed, "103", 120)
    assert [m.new_stop for m in moves(commands)] == [D("102.48")]
    assert resume_trailing(moved) is moved


def test_the_initial_stop_is_watched_before_activation_too():
    triggered, commands = tick(start(SHORT), "103.2", 5)
    assert triggered.phase is TrailingPhase.TRIGGERED
    assert isinstance(commands[0], StopTriggered)
    assert resume_trailing(triggered).phase is TrailingPhase.INACTIVE


def test_breakeven_moves_the_stop_to_the_entry_and_waits_for_activation():
    params = TrailingParams(breakeven_percent=D("0.8"))
    state = start(LONG, params=params)
    waiting, commands = tick(state, "100.8", 5, params)
    assert waiting.phase is TrailingPhase.WAITING
    assert commands == (
        BreakevenReached(position_id="pos-1", mark=D("100.8"), at=at(5)),
        MoveStop(
            position_id="pos-1",
            new_stop=D("100.00"),
            previous_stop=D(97),
            reason=StopMoveReason.BREAKEVEN,
        ),
    )
    assert tick(waiting, "100.9", 6, params)[0] is waiting
    active, commands = tick(waiting, "101.5", 90, params)
    assert active.phase is TrailingPhase.ACTIVE
    assert [m.new_stop for m in moves(commands)] == [D("100.99")]


def test_a_short_reaches_breakeven_below_its_entry():
    params = TrailingParams(breakeven_percent=D("0.8"))
    waiting, commands = tick(start(SHORT, params=params), "99.2", 5, params)
    assert waiting.phase is TrailingPhase.WAITING
    assert [m.new_stop for m in moves(commands)] == [D("100.00")]


def test_activation_soon_after_breakeven_keeps_the_rate_limit():
    params = TrailingParams(breakeven_percent=D("0.8"))
    waiting, _ = tick(start(LONG, params=params), "100.8", 0, params)
    # 100.99 is 0.99 % better than 100.00: below the 1 % override, so it waits until t=60.
    active, commands = tick(waiting, "101.5", 30, params)
    assert active.phase is TrailingPhase.ACTIVE
    assert moves(commands) == []
    assert active.next_update_at == at(60)
    _, commands = tick(active, "101.5", 60, params)
    assert [m.new_stop for m in moves(commands)] == [D("100.99")]


def test_breakeven_is_off_by_default():
    state = start(LONG)
    assert tick(state, "101.4", 5)[0] is state


def test_an_old_position_in_profit_activates_by_age():
    params = TrailingParams(min_position_age_minutes=30)
    state = start(LONG, params=params)
    assert tick(state, "100.3", 29 * 60, params)[0] is state
    assert tick(state, "99.9", 30 * 60, params)[0] is state  # old but losing
    active, commands = tick(state, "100.3", 30 * 60, params)
    assert active.phase is TrailingPhase.ACTIVE
    assert isinstance(commands[0], TrailingActivated)
    assert commands[0].cause is ActivationCause.AGE
    # 100.3 x 0.995 = 99.7985 -> 99.79, a better stop than the initial 97.
    assert [m.new_stop for m in moves(commands)] == [D("99.79")]


def test_a_pending_move_never_puts_the_stop_above_a_mark_that_fell_back():
    state = activated_long()
    waiting, _ = tick(state, "102.5", 10)  # 101.98 would be 0.98 % better: waits
    assert waiting.next_update_at == at(60)
    # At t=60 the mark is 101.9, below 101.98: the stop trails from the mark instead.
    moved, commands = tick(waiting, "101.9", 60)
    assert [m.new_stop for m in moves(commands)] == [D("101.39")]
    assert moved.stop_price < D("101.9")


def test_activation_without_a_known_stop_places_one():
    new, commands = tick(start(LONG, stop=None), "101.5", 1)
    assert moves(commands) == [
        MoveStop(
            position_id="pos-1",
            new_stop=D("100.99"),
            previous_stop=None,
            reason=StopMoveReason.ACTIVATION,
        )
    ]
    assert new.stop_price == D("100.99")


def test_a_restored_state_without_its_thresholds_rebuilds_them():
    restored = attrs.evolve(
        start(LONG), activation_price=None, breakeven_price=None, age_activation_at=None
    )
    new, commands = tick(restored, "101.5", 1)
    assert new.phase is TrailingPhase.ACTIVE
    assert new.activation_price == D("101.5")
    quiet, commands = tick(restored, "100", 1)
    assert commands == ()
    assert quiet.activation_price == D("101.5")


def test_priming_with_new_parameters_moves_the_activation_point():
    params = TrailingParams(activation_percent=D(2))
    state = prime(start(LONG), params)
    assert tick(state, "101.5", 1, params)[0] is state
    assert tick(state, "102", 1, params)[0].phase is TrailingPhase.ACTIVE


def test_ending_a_trailing_stop_reports_what_it_did():
    moved, _ = tick(activated_long(), "103", 10)
    assert end_trailing(moved, "stop_loss_filled") == TrailingEnded(
        position_id="pos-1",
        phase=TrailingPhase.ACTIVE,
        stop_price=D("102.48"),
        update_count=2,
        reason="stop_loss_filled",
    )


def test_a_mark_given_as_text_or_integer_is_read_exactly():
    state = start(LONG)
    new, _ = on_mark(state, "101.5", at(1), DEFAULTS, CENT)  # type: ignore[arg-type]
    assert new.best_price == D("101.5")
    assert on_mark(state, 100, at(1), DEFAULTS, CENT)[0] is state  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [D("NaN"), D("Infinity"), D(0), D(-101), "abc", True])
def test_a_mark_that_is_not_a_positive_number_is_an_error(bad):
    with pytest.raises(InvalidNumber, match="mark"):
        on_mark(start(LONG), bad, at(1), DEFAULTS, CENT)


@pytest.mark.parametrize(
    "params",
    [
        TrailingParams(activation_percent=D(0)),
        TrailingParams(callback_percent=D(-1)),
        TrailingParams(callback_percent=D(100)),
        TrailingParams(breakeven_percent=D(0)),
        TrailingParams(min_position_age_minutes=-1),
        TrailingParams(rate_limit_seconds=-60),
        TrailingParams(min_improvement_percent=D("NaN")),
    ],
)
def test_nonsense_parameters_are_refused_when_a_trailing_stop_starts(params):
    with pytest.raises(InvalidNumber):
        start(LONG, params=params)


@pytest.mark.parametrize(("field", "bad"), [("entry_price", D(0)), ("quantity", D(-1))])
def test_a_trailing_stop_needs_a_positive_entry_and_quantity(field, bad):
    values = {
        "position_id": "p",
        "venue": Venue.BINANCE,
        "symbol": "BTCUSDT",
        "side": LONG,
        "entry_price": D(100),
        "quantity": D(1),
        "opened_at": T0,
        "stop_price": D(97),
        "params": DEFAULTS,
    }
    values[field] = bad
    with pytest.raises(InvalidNumber, match=field):
        start_trailing(**values)


# Properties: random parameters and random mark paths, both sides.


def hundredths(low, high):
    return st.integers(low, high).map(lambda n: D(n) / 100)


@st.composite
def scenarios(draw):
    side = draw(st.sampled_from(Side))
    unit = draw(st.sampled_from([D("0.01"), D("0.0001"), D("0.5")]))
    entry_ticks = draw(st.integers(200, 200_000))
    params = TrailingParams(
        activation_percent=draw(hundredths(1, 500)),
        callback_percent=draw(hundredths(1, 300)),
        breakeven_percent=draw(st.none() | hundredths(1, 300)),
        min_position_age_minutes=draw(st.none() | st.integers(0, 30)),
        rate_limit_seconds=draw(st.integers(0, 120)),
        min_improvement_percent=draw(hundredths(1, 50)),
        emergency_improvement_percent=draw(hundredths(50, 300)),
    )
    # Each step: seconds elapsed, and a move of the mark in basis points.
    path = draw(
        st.lists(st.tuples(st.integers(0, 90), st.integers(-150, 150)), min_size=1, max_size=80)
    )
    stop_distance = draw(hundredths(10, 500))
    return side, unit, entry_ticks, params, path, stop_distance


def walk(side, unit, entry_ticks, params, path, stop_distance):
    """Yield (before, mark, now, after, commands) along the path."""
    entry = entry_ticks * unit
    stop_params = StopParams(stop_loss_percent=stop_distance)
    stop = initial_stop(side, entry, entry, unit, stop_params).price
    state = start_trailing(
        position_id="p",
        venue=Venue.BINANCE,
        symbol="XUSDT",
        side=side,
        entry_price=entry,
        quantity=D(1),
        opened_at=T0,
        stop_price=stop,
        params=params,
    )
    now, mark_ticks = T0, entry_ticks
    for seconds, bps in path:
        now += timedelta(seconds=seconds)
        mark_ticks = max(1, mark_ticks + mark_ticks * bps // 10_000)
        mark = mark_ticks * unit
        after, commands = on_mark(state, mark, now, params, unit)
        yield state, mark, now, after, commands
        state = after


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_a_trailing_stop_never_moves_against_the_position(scenario):
    side = scenario[0]
    for before, _, _, after, commands in walk(*scenario):
        assert after.stop_price is not None
        assert (after.stop_price - before.stop_price) * side.sign >= 0
        for move in moves(commands):
            assert move.previous_stop == before.stop_price
            assert move.new_stop == after.stop_price
            assert (move.new_stop - move.previous_stop) * side.sign > 0
        if not moves(commands):
            assert after.stop_price == before.stop_price


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_an_active_trailing_stop_never_sits_on_the_wrong_side_of_the_mark(scenario):
    side, unit = scenario[0], scenario[1]
    for _, mark, _, after, commands in walk(*scenario):
        if after.phase is TrailingPhase.ACTIVE:
            assert not would_trigger(side, after.stop_price, mark)
        for move in moves(commands):
            assert not would_trigger(side, move.new_stop, mark)
            assert is_multiple(move.new_stop, unit)


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_stop_moves_respect_the_minimum_improvement_and_the_rate_limit(scenario):
    side, params = scenario[0], scenario[3]
    limit = timedelta(seconds=params.rate_limit_seconds)
    last_move = None
    for _, _, now, _, commands in walk(*scenario):
        for move in moves(commands):
            gain = (move.new_stop - move.previous_stop) * side.sign / move.previous_stop * 100
            assert gain >= params.min_improvement_percent
            if last_move is not None and now - last_move < limit:
                assert move.reason is StopMoveReason.OVERRIDE
                assert gain >= params.emergency_improvement_percent
            last_move = now


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_a_move_cut_off_by_a_crash_leaves_the_rate_limit_counting_from_the_move_before(scenario):
    """What a restart does with a move that never reached the venue (`stop_not_moved` on
    the state's `previous_update_at`): the stop that stood before it, and the rate limit
    counting from the move that did reach the venue, not from the one cut off."""
    for before, _, _, after, commands in walk(*scenario):
        for move in moves(commands):
            assert after.previous_update_at == before.last_update_at == move.previous_update_at
            restored = stop_not_moved(
                after, before.stop_price, last_update_at=after.previous_update_at
            )
            assert restored.stop_price == before.stop_price
            assert restored.last_update_at == before.last_update_at


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_the_same_mark_twice_changes_nothing_the_second_time(scenario):
    params, unit = scenario[3], scenario[1]
    for before, mark, now, after, commands in walk(*scenario):
        if after is before:
            assert commands is EMPTY
        assert on_mark(after, mark, now, params, unit) == (after, EMPTY)
        assert on_mark(after, mark, now, params, unit)[0] is after


@settings(max_examples=200, deadline=None)
@given(scenarios())
def test_only_an_active_or_breakeven_trailing_stop_moves_the_stop(scenario):
    for before, _, _, after, commands in walk(*scenario):
        if moves(commands):
            assert after.phase in (TrailingPhase.ACTIVE, TrailingPhase.WAITING)
        if before.phase is TrailingPhase.TRIGGERED:
            assert after is before


def test_one_mark_that_passes_breakeven_and_activation_moves_the_stop_once():
    """Hypothesis found it: at 66.69 a long from 66.67 reaches breakeven and, aged 0 minutes,
    activation too. The venue must get one move from the standing stop to the final level, not
    two where the second claims a previous stop (66.67) the venue never held."""
    params = TrailingParams(
        activation_percent=D("0.03"),
        callback_percent=D("0.01"),
        breakeven_percent=D("0.01"),
        min_position_age_minutes=0,
        rate_limit_seconds=0,
        min_improvement_percent=D("0.01"),
        emergency_improvement_percent=D("0.5"),
    )
    state = start(LONG, entry=D("66.67"), stop=D("66.60"), params=params)
    after, commands = on_mark(state, D("66.69"), T0, params, CENT)
    assert [type(c) for c in commands if not isinstance(c, MoveStop)] == [
        BreakevenReached,
        TrailingActivated,
    ]
    assert moves(commands) == [
        MoveStop(
            position_id=state.position_id,
            new_stop=after.stop_price,
            previous_stop=D("66.60"),
            reason=StopMoveReason.ACTIVATION,
            previous_update_at=None,
        )
    ]
    assert after.update_count == 1
    assert after.previous_update_at is None  # a restart cutting it off: no move before it


# A restart's catch-up: the marks the journaled state never judged (binance seed 2508).


def test_a_mark_that_changes_the_state_is_when_the_state_holds_the_marks_until():
    state = start(LONG)
    assert state.marks_until is None
    moved, _ = tick(state, "101.5", 30)
    assert moved.marks_until == at(30)
    assert tick(moved, "101.4", 40)[0] is moved  # a mark that changes nothing: no new state


def test_a_lost_activation_is_caught_up_and_the_stop_placed_against_the_mark_now():
    state = start(SHORT)  # short from 100, activation at 98.5, stop 103
    caught, commands = catch_up(state, D("98.2"), D("98.6"), at(600), DEFAULTS, CENT)
    assert caught.phase is TrailingPhase.ACTIVE and caught.best_price == D("98.2")
    [note, move] = commands
    assert note == TrailingActivated(
        position_id="pos-1", mark=D("98.2"), cause=ActivationCause.PROFIT, at=at(600)
    )
    assert move.new_stop == caught.stop_price == D("98.70")  # 98.2 + 0.5 %, above 98.6
    assert caught.marks_until == at(600)
    assert catch_up(caught, D("98.2"), D("98.6"), at(601), DEFAULTS, CENT) == (caught, EMPTY)


def test_a_best_the_mark_has_fallen_back_from_trails_from_the_mark_instead():
    state = start(LONG)
    caught, commands = catch_up(state, D("103"), D("101.6"), at(600), DEFAULTS, CENT)
    assert caught.phase is TrailingPhase.ACTIVE
    # 103 wants 102.485 -> 102.48, which the mark of 101.6 would trigger: 101.6 - 0.5 %
    assert moves(commands)[0].new_stop == D("101.09")


def test_a_catch_up_that_reaches_nothing_changes_nothing():
    state = start(LONG)
    assert catch_up(state, D("101.4"), D("100"), at(600), DEFAULTS, CENT) == (state, EMPTY)
    active = activated_long()
    assert catch_up(active, D("101.5"), D("101"), at(600), DEFAULTS, CENT) == (active, EMPTY)
    triggered, _ = tick(active, "100.5", 10)
    assert catch_up(triggered, D("110"), D("109"), at(600), DEFAULTS, CENT) == (triggered, EMPTY)


@settings(max_examples=300, deadline=None)
@given(scenarios(), st.integers(0, 79))
def test_a_catch_up_on_the_marks_a_crash_took_never_loosens_and_takes_the_best_in(scenario, cut):
    side, unit, params = scenario[0], scenario[1], scenario[3]
    steps = list(walk(*scenario))
    if cut >= len(steps):
        return
    journaled = steps[cut][0]  # what the journal holds: the marks from here on were lost
    lost = [mark for _, mark, _, _, _ in steps[cut:]]
    best = max(lost) if side is LONG else min(lost)
    now, mark = steps[-1][2], lost[-1]
    caught, commands = catch_up(journaled, best, mark, now, params, unit)
    assert catch_up(caught, best, mark, now, params, unit) == (caught, EMPTY)
    assert (caught.stop_price - journaled.stop_price) * side.sign >= 0  # never looser
    for move in moves(commands):
        assert not would_trigger(side, move.new_stop, mark) and is_multiple(move.new_stop, unit)
    if journaled.phase is TrailingPhase.TRIGGERED:
        assert caught is journaled
        return
    reached = (best - prime(journaled, params).activation_price) * side.sign >= 0
    if journaled.phase is TrailingPhase.ACTIVE or reached:
        assert caught.phase is TrailingPhase.ACTIVE
        assert caught.best_price is not None
        # the best is in — or, when the mark has fallen back from it by more than the
        # callback, the mark the stop is trailed from
        trailed_from = mark if would_trigger(side, _trail(side, best, params, unit), mark) else best
        assert (caught.best_price - trailed_from) * side.sign >= 0


BREAKEVEN = TrailingParams(breakeven_percent=D("0.5"))


def test_a_breakeven_the_mark_fell_back_from_is_left_to_the_ticks_not_lost():
    """Long from 100 (breakeven 100.5, stop 97): while the bot was down the mark touched
    100.6 and is 99.8 now: no stop at the entry can stand. The catch-up changes nothing, so
    the mark back at 100.8 moves the stop to the entry, as without a catch-up — it used to
    mark breakeven reached with nothing placed, and the stop stayed at 97 for good."""
    state = start(LONG, params=BREAKEVEN)
    caught, commands = catch_up(state, D("100.6"), D("99.8"), at(600), BREAKEVEN, CENT)
    assert (caught, commands) == (state, EMPTY)
    later, _ = tick(caught, "100.8", 700, BREAKEVEN)
    assert later.stop_price == D(100)
    caught, commands = catch_up(state, D("100.6"), D("100.4"), at(600), BREAKEVEN, CENT)
    assert caught.phase is TrailingPhase.WAITING and moves(commands)[0].new_stop == D(100)


def test_a_stop_caught_up_from_a_mark_below_the_best_trails_every_later_rise():
    """Active from 101.5 (stop 100.99); while down the mark ran to 110 and is 108 now: the
    stop goes 0.5 % under the mark, and the state trails from the mark — it used to keep 110
    as its best, so the rise to 109.9 left the stop at 107.46 where the ticks alone would
    have trailed it to 109.35."""
    active = activated_long()
    caught, commands = catch_up(active, D("110"), D("108"), at(600), DEFAULTS, CENT)
    assert moves(commands)[0].new_stop == D("107.46") and caught.best_price == D(108)
    without, later = active, caught
    for seconds, price in ((700, "108"), (800, "109"), (900, "109.9")):
        without, _ = tick(without, price, seconds)
        later, _ = tick(later, price, seconds)
    assert without.stop_price == D("109.35")
    assert later.stop_price >= without.stop_price


def test_an_activation_caught_up_from_a_mark_far_below_the_best_follows_the_mark_up():
    state = start(LONG)  # ran to 103 while down, 99 now: the stop 0.5 % under 99
    caught, commands = catch_up(state, D("103"), D("99"), at(600), DEFAULTS, CENT)
    assert caught.phase is TrailingPhase.ACTIVE and moves(commands)[0].new_stop == D("98.50")
    for seconds, price in ((700, "100"), (800, "101"), (900, "102"), (1000, "102.9")):
        caught, _ = tick(caught, price, seconds)
    assert caught.stop_price == D("102.38")  # as the ticks alone would have trailed it


def test_a_person_s_add_moves_the_entry_the_catch_up_judges_from_a_partial_close_does_not():
    state = start(SHORT)
    added = follow_position(state, D("100.3"), D(3), DEFAULTS, at=at(900))
    assert (added.entry_at, added.marks_until) == (at(900), None)
    assert added.activation_price == D("100.3") * (1 - D("0.015"))
    closed_part = follow_position(state, ENTRY, D("0.5"), DEFAULTS, at=at(900))
    assert (closed_part.entry_at, closed_part.marks_until) == (None, None)


def test_a_state_journaled_before_marks_until_existed_loads_without_it():
    import json

    from tradecore.adapters.serialization import JSON, dumps

    old = json.loads(dumps(activated_long()))
    del old["marks_until"]
    loaded = JSON.structure(old, type(activated_long()))
    assert loaded == attrs.evolve(activated_long(), marks_until=None)


def test_a_breakeven_held_back_then_met_by_a_mark_below_the_entry_moves_when_it_comes_back():
    """Review 15b: a breakeven move held back by the rate limit, due on a mark below the
    entry (no stop at the entry can stand then), was dropped: WAITING with nothing due, the
    mark back above the entry moved nothing until activation."""
    params = TrailingParams(breakeven_percent=D("0.8"))
    state = attrs.evolve(start(LONG, stop=D("99.5"), params=params), last_update_at=at(0))
    waiting, commands = tick(state, "100.8", 10, params)  # 0.5 % better: waits until t=60
    assert waiting.phase is TrailingPhase.WAITING and not moves(commands)
    below, commands = tick(waiting, "99.8", 61, params)
    assert not moves(commands)
    _, commands = tick(below, "100.3", 70, params)
    assert [m.new_stop for m in moves(commands)] == [D("100.00")]
