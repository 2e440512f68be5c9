from decimal import Decimal

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from tradecore.domain.errors import InvalidNumber
from tradecore.domain.leverage import LeverageTier, isolated_liquidation_price
from tradecore.domain.model import Side
from tradecore.domain.precision import is_multiple
from tradecore.domain.stops import (
    EmergencyBound,
    StopParams,
    StopPlan,
    emergency_stop,
    initial_stop,
    inside_liquidation,
    would_trigger,
)

D = Decimal
LONG, SHORT = Side.LONG, Side.SHORT
CENT = D("0.01")


def test_the_defaults_are_3_percent_with_a_half_percent_buffer_and_a_10_percent_emergency():
    params = StopParams()
    assert params.stop_loss_percent == 3
    assert params.mark_buffer_percent == D("0.5")
    assert params.emergency_stop_percent == 10


def test_a_long_stop_sits_3_percent_below_the_fill():
    assert initial_stop(LONG, D(100), D("100.2"), CENT) == StopPlan(side=LONG, price=D("97.00"))


def test_a_short_stop_sits_3_percent_above_the_fill():
    assert initial_stop(SHORT, D(100), D("99.8"), CENT) == StopPlan(side=SHORT, price=D("103.00"))


def test_a_long_stop_rounds_down_and_a_short_stop_rounds_up_away_from_the_mark():
    # 0.12345 x 0.97 = 0.1197465 and 0.12345 x 1.03 = 0.1271535 on a 0.0001 tick.
    tick = D("0.0001")
    assert initial_stop(LONG, D("0.12345"), D("0.12345"), tick).price == D("0.1197")
    assert initial_stop(SHORT, D("0.12345"), D("0.12345"), tick).price == D("0.1272")


def test_a_long_stop_that_would_trigger_at_once_moves_half_a_percent_below_the_mark():
    # Filled at 100, the mark has already fallen to 96.5: 97 would fire immediately.
    # 96.5 x 0.995 = 96.0175, rounded down to 96.01.
    plan = initial_stop(LONG, D(100), D("96.5"), CENT)
    assert plan == StopPlan(side=LONG, price=D("96.01"), adjusted=True)


def test_a_short_stop_that_would_trigger_at_once_moves_half_a_percent_above_the_mark():
    # 103.5 x 1.005 = 104.0175, rounded up to 104.02.
    plan = initial_stop(SHORT, D(100), D("103.5"), CENT)
    assert plan == StopPlan(side=SHORT, price=D("104.02"), adjusted=True)


def test_a_mark_exactly_at_the_planned_stop_counts_as_triggering():
    plan = initial_stop(LONG, D(100), D(97), CENT)
    assert plan.adjusted
    assert plan.price == D("96.51")  # 97 x 0.995 = 96.515, rounded down


def test_the_emergency_stop_is_10_percent_from_the_fill():
    assert emergency_stop(LONG, D(100), D(99), CENT).price == D("90.00")
    assert emergency_stop(SHORT, D(100), D(101), CENT).price == D("110.00")


def test_the_emergency_stop_also_moves_past_a_mark_that_is_already_beyond_it():
    plan = emergency_stop(SHORT, D(100), D(112), CENT)
    assert plan.adjusted
    assert plan.price == D("112.56")  # 112 x 1.005


def test_configured_distances_are_used():
    params = StopParams(stop_loss_percent=D(2), emergency_stop_percent=D(5))
    assert initial_stop(LONG, D(50), D(50), CENT, params).price == D("49.00")
    assert emergency_stop(LONG, D(50), D(50), CENT, params).price == D("47.50")


def test_a_stop_is_never_zero_even_on_a_price_of_one_tick():
    # Marked at one tick, a long's stop cannot go lower than one tick; it is returned (not 0)
    # and would_trigger tells the caller to close at market instead.
    plan = initial_stop(LONG, D("0.0001"), D("0.0001"), D("0.0001"))
    assert plan.price == D("0.0001")
    assert would_trigger(LONG, plan.price, D("0.0001"))


@pytest.mark.parametrize(
    ("side", "stop", "mark", "fires"),
    [
        (LONG, D(97), D("97.01"), False),
        (LONG, D(97), D(97), True),
        (LONG, D(97), D("96.99"), True),
        (SHORT, D(103), D("102.99"), False),
        (SHORT, D(103), D(103), True),
        (SHORT, D(103), D("103.01"), True),
    ],
)
def test_a_stop_triggers_at_or_beyond_its_price(side, stop, mark, fires):
    assert would_trigger(side, stop, mark) is fires


@pytest.mark.parametrize("bad", [D(0), D(-3), D("NaN"), "inf", True, "x", D(100), D(150)])
@pytest.mark.parametrize(
    "field", ["stop_loss_percent", "mark_buffer_percent", "emergency_stop_percent"]
)
def test_stop_distances_must_be_between_0_and_100_percent(field, bad):
    with pytest.raises(InvalidNumber, match=field):
        StopParams(**{field: bad})


@pytest.mark.parametrize("bad", [D(0), D(-100), D("NaN"), "inf", None, "abc"])
def test_a_fill_or_mark_that_is_not_a_positive_number_is_an_error(bad):
    with pytest.raises(InvalidNumber, match="fill_price"):
        initial_stop(LONG, bad, D(100), CENT)
    with pytest.raises(InvalidNumber, match="mark_price"):
        initial_stop(SHORT, D(100), bad, CENT)


# Properties over random fills, marks and ticks, on both sides.

ticks = st.sampled_from([D("1"), D("0.5"), D("0.01"), D("0.0001"), D("0.0000001")])
prices = st.decimals(min_value=D("0.000001"), max_value=D("100000"), places=6)
sides = st.sampled_from(Side)
distances = st.decimals(min_value=D("0.1"), max_value=D("50"), places=1)


@settings(max_examples=300)
@given(sides, prices, prices, ticks, distances)
def test_a_stop_is_a_positive_whole_number_of_ticks(side, fill, mark, tick, distance):
    plan = initial_stop(side, fill, mark, tick, StopParams(stop_loss_percent=distance))
    assert plan.price >= tick
    assert is_multiple(plan.price, tick)


@settings(max_examples=300)
@given(sides, prices, prices, ticks, distances)
def test_a_planned_stop_is_never_tighter_than_the_configured_distance(
    side, fill, mark, tick, distance
):
    plan = initial_stop(side, fill, mark, tick, StopParams(stop_loss_percent=distance))
    if plan.adjusted:
        return
    exact = fill * (1 - side.sign * distance / 100)
    assert (plan.price <= exact or plan.price == tick) if side is LONG else plan.price >= exact
    assert not would_trigger(side, plan.price, mark)


@settings(max_examples=300)
@given(sides, prices, prices, ticks)
def test_an_adjusted_stop_is_at_least_the_buffer_beyond_the_mark(side, fill, mark, tick):
    plan = initial_stop(side, fill, mark, tick)
    if not plan.adjusted:
        return
    beyond = mark * (1 - side.sign * D("0.005"))
    if side is LONG:
        assert plan.price <= beyond or plan.price == tick
    else:
        assert plan.price >= beyond
        assert not would_trigger(side, plan.price, mark)


@settings(max_examples=300)
@given(sides, prices, prices, ticks)
def test_a_stop_triggers_at_once_only_when_the_mark_is_within_a_tick_of_zero(
    side, fill, mark, tick
):
    plan = initial_stop(side, fill, mark, tick)
    if would_trigger(side, plan.price, mark):
        assert side is LONG
        assert plan.price == tick
        assert mark <= tick


# The emergency stop and the liquidation price (issue: a 10 % stop at 10x fires after it).


def test_at_10x_isolated_the_emergency_stop_comes_before_the_liquidation_not_after_it():
    tier = LeverageTier(
        min_notional=D(0), max_notional=D(50000), max_leverage=D(125), maintenance_rate=D("0.004")
    )
    liquidation = isolated_liquidation_price(LONG, D(50000), D("0.004"), D(10), tier)
    assert D(45000) < liquidation < D(46000)  # ~9.6 % under the entry: 10 % fires too late
    plan = emergency_stop(LONG, D(50000), D(49900), CENT, liquidation=liquidation, estimated=True)
    assert plan.price > liquidation and plan.configured == D("45000.00")
    assert plan.bound is EmergencyBound.ESTIMATED_LIQUIDATION
    # 20 % of the entry-to-liquidation distance stays between the stop and the liquidation
    assert plan.price == (liquidation + (D(50000) - liquidation) * D("0.2")).quantize(
        CENT, rounding="ROUND_CEILING"
    )


def test_the_emergency_stop_keeps_its_distance_when_the_liquidation_is_further():
    plan = emergency_stop(LONG, D(100), D(99), CENT, liquidation=D(50))  # 2x
    assert (plan.price, plan.bound, plan.liquidation) == (
        D("90.00"),
        EmergencyBound.CONFIGURED,
        D(50),
    )
    plan = emergency_stop(SHORT, D(100), D(101), CENT, liquidation=D("109.00"))
    assert plan.price == D("107.20") and plan.bound is EmergencyBound.VENUE_LIQUIDATION
    assert emergency_stop(SHORT, D(100), D(101), CENT).bound is EmergencyBound.CONFIGURED
    assert emergency_stop(LONG, D(100), D(99), CENT, liquidation=D(0)).price == D("90.00")


buffers = st.decimals(min_value=D("0.1"), max_value=D("99"), places=1)
fractions = st.decimals(min_value=D("0.001"), max_value=D("0.999"), places=3)


@settings(max_examples=500)
@given(sides, prices, prices, ticks, distances, buffers, fractions, st.booleans())
def test_an_emergency_stop_fires_before_the_liquidation_and_is_never_looser_than_configured(
    side, fill, mark, tick, distance, buffer, fraction, estimated
):
    # the liquidation sits on the losing side of the fill, as the venue puts it
    liquidation = fill * fraction if side is LONG else fill / fraction
    params = StopParams(emergency_stop_percent=distance, liquidation_buffer_percent=buffer)
    plan = emergency_stop(side, fill, mark, tick, params, liquidation=liquidation)
    configured = emergency_stop(side, fill, mark, tick, params)
    assert plan.configured == configured.price
    assert plan.price >= tick and is_multiple(plan.price, tick)
    # with the mark at or past the liquidation no level inside it can stand (tested below)
    room = (mark - liquidation if side is LONG else liquidation - mark) * (1 - buffer / 100)
    if side is LONG:
        if room > 2 * tick:
            assert plan.price > liquidation
        assert plan.price >= configured.price
    else:
        assert plan.price <= configured.price
        if liquidation > 2 * tick and room > 2 * tick:  # none below a liquidation near 0
            assert plan.price < liquidation
    if plan.price != configured.price:
        assert plan.bound is not EmergencyBound.CONFIGURED


@settings(max_examples=300)
@given(sides, prices, prices, ticks, distances, prices)
def test_an_emergency_stop_is_never_looser_than_configured_whatever_the_venue_says(
    side, fill, mark, tick, distance, liquidation
):
    params = StopParams(emergency_stop_percent=distance)
    plan = emergency_stop(side, fill, mark, tick, params, liquidation=liquidation)
    configured = emergency_stop(side, fill, mark, tick, params).price
    assert plan.price >= configured if side is LONG else plan.price <= configured
    assert plan.price >= tick and is_multiple(plan.price, tick)


@settings(max_examples=500)
@given(sides, prices, ticks, buffers, fractions, fractions)
def test_an_emergency_stop_does_not_fire_at_once_while_the_mark_is_short_of_the_liquidation(
    side, fill, tick, buffer, fraction, where
):
    """The mark may have run toward the liquidation since the fill (the close just failed):
    the stop goes between the mark and the liquidation, not onto the far side of the mark."""
    liquidation = fill * fraction if side is LONG else fill / fraction
    mark = liquidation + (fill - liquidation) * where  # between the liquidation and the fill
    assume(abs(mark - liquidation) * (1 - buffer / 100) > 2 * tick)
    params = StopParams(liquidation_buffer_percent=buffer)
    plan = emergency_stop(side, fill, mark, tick, params, liquidation=liquidation)
    assert not would_trigger(side, plan.price, mark)
    assert plan.price > liquidation if side is LONG else plan.price < liquidation


def test_a_mark_past_the_planned_level_gets_a_stop_between_it_and_the_liquidation():
    # long from 100, liquidated at 90.40: the level from the fill is 92.32, the mark is 92
    plan = emergency_stop(LONG, D(100), D(92), CENT, liquidation=D("90.40"))
    assert plan.price == D("90.72")  # 90.40 + 20 % x (92 - 90.40)
    assert not would_trigger(LONG, plan.price, D(92))


@settings(max_examples=500)
@given(sides, prices, prices, ticks, buffers, fractions, st.booleans())
def test_an_emergency_stop_never_fires_at_the_mark_it_is_planned_from(
    side, fill, mark, tick, buffer, fraction, estimated
):
    """Whatever the mark (short of the liquidation, within a tick of it, or past it: the
    estimate was off, or the venue's price was read before the mark), the venue refuses a
    stop that would trigger at once, and the refused emergency stop leaves the position bare."""
    liquidation = fill * fraction if side is LONG else fill / fraction
    params = StopParams(liquidation_buffer_percent=buffer)
    # a long at a price within a tick of 0 has no level below its mark at all
    assume(not would_trigger(side, emergency_stop(side, fill, mark, tick, params).price, mark))
    plan = emergency_stop(
        side, fill, mark, tick, params, liquidation=liquidation, estimated=estimated
    )
    assert not would_trigger(side, plan.price, mark)


@pytest.mark.parametrize(
    ("side", "mark", "liquidation"),
    [
        (LONG, D(89), D(90)),  # the mark already past the (estimated) liquidation
        (SHORT, D(111), D(110)),
        (LONG, D("90.01"), D(90)),  # within a tick of it
        (SHORT, D("109.99"), D(110)),
    ],
)
def test_a_mark_at_or_past_the_liquidation_still_gets_a_stop_that_stands(side, mark, liquidation):
    plan = emergency_stop(side, D(100), mark, D("0.1"), liquidation=liquidation, estimated=True)
    assert not would_trigger(side, plan.price, mark)
    assert plan.price == emergency_stop(side, D(100), mark, D("0.1")).price  # 0.5 % past it


# inside_liquidation: the bound every protective stop is kept inside (shared with the
# emergency stop above)


def test_a_stop_beyond_the_liquidation_is_pulled_inside_it():
    # long from 100 at 100x, liquidated at 99.50: the 3 % stop at 97 would never fire
    assert inside_liquidation(LONG, D(97), D(100), D(100), D("99.50"), CENT) == D("99.60")
    assert inside_liquidation(SHORT, D(103), D(100), D(100), D("100.50"), CENT) == D("100.40")


def test_a_stop_already_inside_the_liquidation_or_with_none_known_is_kept():
    assert inside_liquidation(LONG, D(97), D(100), D(100), D(90), CENT) == D(97)
    assert inside_liquidation(LONG, D(97), D(100), D(100), None, CENT) == D(97)
    assert inside_liquidation(SHORT, D(103), D(100), D(100), D(0), CENT) == D(103)


@settings(max_examples=500)
@given(sides, prices, prices, ticks, distances, buffers, fractions)
def test_a_bounded_stop_is_never_looser_and_never_fires_at_the_mark_it_is_planned_from(
    side, entry, mark, tick, distance, buffer, fraction
):
    liquidation = entry * fraction if side is LONG else entry / fraction
    params = StopParams(stop_loss_percent=distance, liquidation_buffer_percent=buffer)
    stop = initial_stop(side, entry, mark, tick, params).price
    assume(not would_trigger(side, stop, mark))  # a long within a tick of 0 has none
    bounded = inside_liquidation(side, stop, entry, mark, liquidation, tick, params)
    assert bounded >= stop if side is LONG else bounded <= stop
    assert bounded >= tick and is_multiple(bounded, tick)
    assert not would_trigger(side, bounded, mark)


@settings(max_examples=500)
@given(sides, prices, ticks, distances, buffers, fractions, fractions)
def test_a_bounded_stop_fires_before_the_liquidation_while_the_mark_is_short_of_it(
    side, entry, tick, distance, buffer, fraction, where
):
    liquidation = entry * fraction if side is LONG else entry / fraction
    mark = liquidation + (entry - liquidation) * where  # between the liquidation and the entry
    assume(abs(mark - liquidation) * (1 - buffer / 100) > 2 * tick)
    params = StopParams(stop_loss_percent=distance, liquidation_buffer_percent=buffer)
    stop = initial_stop(side, entry, mark, tick, params).price
    bounded = inside_liquidation(side, stop, entry, mark, liquidation, tick, params)
    assert bounded > liquidation if side is LONG else bounded < liquidation


@settings(max_examples=300)
@given(sides, prices, prices, prices, ticks, distances)
def test_the_emergency_stop_is_its_configured_level_bounded_inside_the_liquidation(
    side, fill, mark, liquidation, tick, distance
):
    params = StopParams(emergency_stop_percent=distance)
    plan = emergency_stop(side, fill, mark, tick, params, liquidation=liquidation)
    assert plan.price == inside_liquidation(
        side, plan.configured, fill, mark, liquidation, tick, params
    )
