from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tradecore.domain.errors import BelowMinimum, InvalidNumber
from tradecore.domain.precision import (
    MarketRules,
    Rounding,
    floor_quantity,
    is_multiple,
    order_problem,
    price_for,
    quantity_for,
    round_price,
)

D = Decimal
UNITS = [D("1"), D("0.5"), D("0.1"), D("0.01"), D("0.0001"), D("0.00001"), D("0.0000001")]
BAD_NUMBERS = [D("NaN"), "nan", D("Infinity"), "-inf", True, "abc", None, -1, "-0.01", 0]


def rules(**overrides):
    values = {
        "symbol": "BTCUSDT",
        "tick_size": "0.1",
        "step_size": "0.001",
        "min_quantity": "0.001",
        "min_notional": "100",
        "max_leverage": "125",
    }
    values.update(overrides)
    return MarketRules(**values)


# Strategies: a unit (tick or step) and a positive value around it, from tiny to large.
units = st.sampled_from(UNITS)
values = st.decimals(min_value=D("0.000000001"), max_value=D("10000000"), allow_nan=False, places=9)


def test_market_rules_read_strings_as_exact_decimals():
    market = rules(tick_size="0.0000001")
    assert market.tick_size == D("0.0000001")
    assert market.min_notional == D(100)


@pytest.mark.parametrize("field", ["tick_size", "step_size", "max_leverage"])
@pytest.mark.parametrize("bad", BAD_NUMBERS)
def test_market_rules_refuse_a_unit_that_is_not_a_positive_number(field, bad):
    with pytest.raises(InvalidNumber, match=field):
        rules(**{field: bad})


@pytest.mark.parametrize("field", ["min_quantity", "min_notional"])
@pytest.mark.parametrize("bad", [D("NaN"), "inf", False, "abc", -1, "-0.001"])
def test_market_rules_refuse_a_minimum_that_is_negative_or_not_a_number(field, bad):
    with pytest.raises(InvalidNumber, match=field):
        rules(**{field: bad})


def test_market_rules_allow_a_zero_minimum():
    assert rules(min_notional="0", min_quantity="0").min_notional == 0


def test_the_smallest_quantity_is_the_larger_of_the_step_and_the_minimum():
    assert rules(step_size="0.001", min_quantity="0.005").smallest_quantity == D("0.005")
    assert rules(step_size="0.01", min_quantity="0.001").smallest_quantity == D("0.01")


def test_a_price_rounds_down_or_up_to_the_tick():
    assert round_price(D("0.0123456"), D("0.0001"), Rounding.DOWN) == D("0.0123")
    assert round_price(D("0.0123456"), D("0.0001"), Rounding.UP) == D("0.0124")
    assert round_price(D("97123.45"), D("0.1"), Rounding.DOWN) == D("97123.4")
    assert round_price(D("97123.45"), D("0.1"), Rounding.UP) == D("97123.5")


def test_a_price_already_on_the_tick_is_kept_with_the_tick_exponent():
    result = round_price(D("18.58"), D("0.001"), Rounding.DOWN)
    assert result == D("18.58")
    assert str(result) == "18.580"


def test_a_price_below_one_tick_becomes_one_tick_never_zero():
    # The earlier bot sent an aged exit at a price rounded to 0 ("price must be greater than
    # minimum price precision of 0.000001"); here the floor is one tick.
    assert round_price(D("0.0000004"), D("0.000001"), Rounding.DOWN) == D("0.000001")
    assert round_price(D("0.3"), D("1"), Rounding.DOWN) == D("1")


@pytest.mark.parametrize("bad", BAD_NUMBERS)
def test_rounding_refuses_a_price_that_is_not_a_positive_number(bad):
    with pytest.raises(InvalidNumber, match="price"):
        round_price(bad, D("0.01"), Rounding.DOWN)


@pytest.mark.parametrize("bad", [D(0), D(-1), D("NaN")])
def test_rounding_refuses_a_tick_that_is_not_positive(bad):
    with pytest.raises(InvalidNumber, match="tick_size"):
        round_price(D(1), bad, Rounding.UP)


def test_a_quantity_floors_to_the_step():
    assert floor_quantity(D("0.0020592"), D("0.001")) == D("0.002")
    assert floor_quantity(D("1231.98"), D("1")) == D("1231")


def test_a_quantity_below_one_step_is_refused_not_rounded_to_zero():
    with pytest.raises(BelowMinimum, match="below one step"):
        floor_quantity(D("0.0009"), D("0.001"))


@pytest.mark.parametrize("bad", BAD_NUMBERS)
def test_flooring_refuses_a_quantity_that_is_not_a_positive_number(bad):
    with pytest.raises(InvalidNumber, match="quantity"):
        floor_quantity(bad, D("0.001"))


def test_the_market_rounds_prices_to_its_own_tick():
    assert price_for(rules(tick_size="0.5"), D("100.74"), Rounding.DOWN) == D("100.5")


def test_the_market_refuses_a_quantity_below_its_minimum_quantity():
    market = rules(step_size="0.001", min_quantity="0.01")
    assert quantity_for(market, D("0.0123")) == D("0.012")
    with pytest.raises(BelowMinimum, match="minimum"):
        quantity_for(market, D("0.0099"))


def test_an_order_the_venue_accepts_has_no_problem():
    assert order_problem(rules(), D("0.002"), D("97123.4")) is None
    assert order_problem(rules(), D("0.002"), None) is None


@pytest.mark.parametrize(
    ("quantity", "price", "problem"),
    [
        (D("0.0025"), None, "not a multiple of the step"),
        (D("0.002"), D("97123.45"), "not a multiple of the tick"),
        (D("0"), None, "greater than 0"),
        (D("NaN"), None, "finite"),
        (D("0.002"), D("-1"), "greater than 0"),
    ],
)
def test_an_order_the_venue_would_refuse_names_the_rule(quantity, price, problem):
    assert problem in order_problem(rules(), quantity, price)


def test_an_order_below_the_minimum_quantity_is_a_problem():
    market = rules(min_quantity="0.01")
    assert "below the minimum" in order_problem(market, D("0.002"), None)


@given(values, units, st.sampled_from(Rounding))
def test_a_rounded_price_is_a_whole_number_of_ticks_and_at_least_one(price, tick, direction):
    result = round_price(price, tick, direction)
    assert is_multiple(result, tick)
    assert result >= tick


@given(values, units)
def test_rounding_down_never_raises_and_rounding_up_never_lowers_a_price(price, tick):
    down = round_price(price, tick, Rounding.DOWN)
    up = round_price(price, tick, Rounding.UP)
    assert down <= price or down == tick
    assert up >= price
    assert up - down <= tick
    if price >= tick:
        assert price - down < tick
        assert up - price < tick


@given(values, units)
def test_a_floored_quantity_is_whole_steps_never_above_the_input_and_within_a_step(quantity, step):
    if quantity < step:
        with pytest.raises(BelowMinimum):
            floor_quantity(quantity, step)
        return
    result = floor_quantity(quantity, step)
    assert is_multiple(result, step)
    assert step <= result <= quantity
    assert quantity - result < step
