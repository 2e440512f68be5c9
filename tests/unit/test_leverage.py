"""Where an isolated position is liquidated, and whether that comes before its stop."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tradecore.domain.leverage import (
    LeverageTier,
    isolated_liquidation_price,
    liquidated_before_stop,
    liquidation_refusal,
    tier_for,
)
from tradecore.domain.model import Side

D = Decimal
# Binance BTCUSDT's first bracket (GET /fapi/v1/leverageBracket): up to 300,000 USDT of
# notional at 125x with a maintenance margin rate of 0.4 % and no deduction.
FIRST = LeverageTier(
    min_notional=0, max_notional=300_000, max_leverage=125, maintenance_rate=D("0.004")
)
SECOND = LeverageTier(
    min_notional=300_000,
    max_notional=800_000,
    max_leverage=100,
    maintenance_rate=D("0.005"),
    maintenance_amount=300,
)

prices = st.decimals(min_value=D("0.0001"), max_value=D("1000000"), places=4)
quantities = st.decimals(min_value=D("0.001"), max_value=D("1000"), places=3)
rates = st.decimals(min_value=D(0), max_value=D("0.004"), places=4)
leverages = st.integers(min_value=1, max_value=125)
sides = st.sampled_from(Side)


def tier(rate: Decimal) -> LeverageTier:
    return LeverageTier(
        min_notional=0, max_notional=10**12, max_leverage=125, maintenance_rate=rate
    )


def test_a_10x_long_is_liquidated_about_ten_percent_below_its_entry() -> None:
    # (100 × (1 − 1/10)) / (1 − 0.004) = 90.3614...
    price = isolated_liquidation_price(Side.LONG, D(100), D(1), D(10), FIRST)
    assert price.quantize(D("0.0001")) == D("90.3614")


def test_a_10x_short_is_liquidated_about_ten_percent_above_its_entry() -> None:
    # (100 × (1 + 1/10)) / (1 + 0.004) = 109.5617...
    price = isolated_liquidation_price(Side.SHORT, D(100), D(1), D(10), FIRST)
    assert price.quantize(D("0.0001")) == D("109.5618")


def test_a_larger_tier_deduction_moves_the_liquidation_away_from_the_entry() -> None:
    without = attrs_evolve_amount(SECOND, D(0))
    long_with = isolated_liquidation_price(Side.LONG, D(50_000), D(10), D(20), SECOND)
    long_without = isolated_liquidation_price(Side.LONG, D(50_000), D(10), D(20), without)
    assert long_with < long_without


def attrs_evolve_amount(t: LeverageTier, amount: Decimal) -> LeverageTier:
    return LeverageTier(
        min_notional=t.min_notional,
        max_notional=t.max_notional,
        max_leverage=t.max_leverage,
        maintenance_rate=t.maintenance_rate,
        maintenance_amount=amount,
    )


def test_the_tier_is_chosen_by_the_positions_notional() -> None:
    assert tier_for([SECOND, FIRST], D(1000)) is FIRST
    assert tier_for([SECOND, FIRST], D(300_001)) is SECOND
    assert tier_for([SECOND, FIRST], D(10**9)) is SECOND  # beyond all: the last
    assert tier_for([], D(1)) is None


def test_at_50x_a_long_is_liquidated_before_its_3_percent_stop_and_the_open_is_refused() -> None:
    # 50x: liquidation at 100 × 0.98 / 0.996 = 98.39, above the stop at 97.
    refusal = liquidation_refusal(Side.LONG, D(100), D(1), D(50), D(97), [FIRST])
    assert refusal is not None
    assert refusal.liquidation > refusal.stop == D(97)
    assert "lower trading.sizing.leverage" in refusal.detail


def test_at_10x_the_3_percent_stop_comes_first_and_the_open_is_allowed() -> None:
    assert liquidation_refusal(Side.LONG, D(100), D(1), D(10), D(97), [FIRST]) is None
    assert liquidation_refusal(Side.SHORT, D(100), D(1), D(10), D(103), [FIRST]) is None


def test_without_tiers_no_estimate_is_made() -> None:
    assert liquidation_refusal(Side.LONG, D(100), D(1), D(100), D(97), []) is None


@pytest.mark.parametrize(
    ("side", "liquidation", "stop", "first"),
    [
        (Side.LONG, D(98), D(97), True),
        (Side.LONG, D(97), D(97), True),
        (Side.LONG, D(90), D(97), False),
        (Side.SHORT, D(102), D(103), True),
        (Side.SHORT, D(110), D(103), False),
        (Side.LONG, D(0), D(97), False),  # the venue says 0: no liquidation price
    ],
)
def test_liquidation_comes_first_when_the_mark_reaches_it_no_later_than_the_stop(
    side: Side, liquidation: Decimal, stop: Decimal, first: bool
) -> None:
    assert liquidated_before_stop(side, liquidation, stop) is first


@given(prices, quantities, leverages, rates)
def test_a_long_is_liquidated_below_its_entry_and_a_short_above(
    entry: Decimal, quantity: Decimal, leverage: int, rate: Decimal
) -> None:
    t = tier(rate)
    # the venues cap leverage below 1 / rate, so no position is liquidated at its entry
    lever = min(D(leverage), D(1) / (rate * 2) if rate else D(leverage))
    assert isolated_liquidation_price(Side.LONG, entry, quantity, lever, t) < entry
    assert isolated_liquidation_price(Side.SHORT, entry, quantity, lever, t) > entry


@given(prices, quantities, leverages, leverages, rates)
def test_more_leverage_never_moves_the_liquidation_away_from_the_entry(
    entry: Decimal, quantity: Decimal, a: int, b: int, rate: Decimal
) -> None:
    low, high = sorted((D(a), D(b)))
    t = tier(rate)
    long_low = isolated_liquidation_price(Side.LONG, entry, quantity, low, t)
    long_high = isolated_liquidation_price(Side.LONG, entry, quantity, high, t)
    short_low = isolated_liquidation_price(Side.SHORT, entry, quantity, low, t)
    short_high = isolated_liquidation_price(Side.SHORT, entry, quantity, high, t)
    assert long_low <= long_high
    assert short_low >= short_high


@given(sides, prices, quantities, leverages, leverages, rates)
def test_an_open_refused_at_some_leverage_is_refused_at_every_higher_one(
    side: Side, entry: Decimal, quantity: Decimal, a: int, b: int, rate: Decimal
) -> None:
    low, high = sorted((D(a), D(b)))
    stop = entry * (D("0.97") if side is Side.LONG else D("1.03"))
    refused_low = liquidation_refusal(side, entry, quantity, low, stop, [tier(rate)])
    refused_high = liquidation_refusal(side, entry, quantity, high, stop, [tier(rate)])
    assert refused_low is None or refused_high is not None


@given(prices, quantities, leverages, rates)
def test_the_estimate_is_never_negative(
    entry: Decimal, quantity: Decimal, leverage: int, rate: Decimal
) -> None:
    big = attrs_evolve_amount(tier(rate), D(10**9))
    assert isolated_liquidation_price(Side.LONG, entry, quantity, D(leverage), big) >= 0
