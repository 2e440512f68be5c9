from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradecore.domain.errors import BelowMinimum, InvalidNumber
from tradecore.domain.precision import MarketRules, is_multiple
from tradecore.domain.sizing import (
    Accepted,
    AccountRisk,
    Rejected,
    RiskReason,
    SizingParams,
    decide,
    sized_quantity,
)

D = Decimal
BTC = MarketRules(
    symbol="BTCUSDT",
    tick_size="0.1",
    step_size="0.001",
    min_quantity="0.001",
    min_notional="100",
    max_leverage="125",
)
DOGE = MarketRules(
    symbol="DOGEUSDT",
    tick_size="0.00001",
    step_size="1",
    min_quantity="1",
    min_notional="5",
    max_leverage="75",
)
ROOMY = AccountRisk(open_positions=0, exposure_usd=D(0), free_balance=D(10_000))


def test_the_defaults_are_200_usdt_at_10x_with_at_most_20_positions():
    params = SizingParams()
    assert params.position_size_usd == D(200)
    assert params.leverage == D(10)
    assert params.max_open_positions == 20
    assert params.max_exposure_usd == D(4000)


def test_a_btc_position_is_200_usdt_of_notional_rounded_down_to_the_step():
    # 200 / 97,123.4 = 0.002059... BTC -> 0.002 BTC, worth 194.2468 USDT, margin 19.42468.
    decision = decide(SizingParams(), BTC, D("97123.4"), ROOMY)
    assert decision == Accepted(
        quantity=D("0.002"),
        mark_price=D("97123.4"),
        notional=D("194.2468"),
        margin=D("19.42468"),
    )


def test_a_doge_position_floors_to_whole_coins():
    # 200 / 0.16234 = 1231.98... -> 1231 DOGE, worth 199.84054 USDT.
    decision = decide(SizingParams(), DOGE, D("0.16234"), ROOMY)
    assert isinstance(decision, Accepted)
    assert decision.quantity == D(1231)
    assert decision.notional == D("199.84054")


def test_leverage_changes_the_margin_not_the_size():
    at_10x = decide(SizingParams(leverage=D(10)), DOGE, D("0.16234"), ROOMY)
    at_20x = decide(SizingParams(leverage=D(20)), DOGE, D("0.16234"), ROOMY)
    assert isinstance(at_10x, Accepted)
    assert isinstance(at_20x, Accepted)
    assert at_10x.quantity == at_20x.quantity
    assert at_10x.margin == 2 * at_20x.margin


def test_an_inactive_market_is_refused():
    closed = MarketRules(
        symbol="HNTUSDT",
        tick_size="0.001",
        step_size="0.1",
        min_quantity="0.1",
        min_notional="5",
        max_leverage="20",
        active=False,
    )
    decision = decide(SizingParams(), closed, D("2.5"), ROOMY)
    assert isinstance(decision, Rejected)
    assert decision.reason is RiskReason.MARKET_INACTIVE


def test_leverage_above_what_the_market_allows_is_refused():
    decision = decide(SizingParams(leverage=D(100)), DOGE, D("0.16"), ROOMY)
    assert isinstance(decision, Rejected)
    assert decision.reason is RiskReason.LEVERAGE_ABOVE_MAXIMUM
    assert "75" in decision.detail


def test_a_full_book_refuses_the_twenty_first_position():
    full = AccountRisk(open_positions=20, exposure_usd=D(0), free_balance=D(10_000))
    decision = decide(SizingParams(), BTC, D("97123.4"), full)
    assert isinstance(decision, Rejected)
    assert decision.reason is RiskReason.MAX_OPEN_POSITIONS


def test_the_twentieth_position_is_still_allowed():
    nineteen = AccountRisk(open_positions=19, exposure_usd=D(0), free_balance=D(10_000))
    assert isinstance(decide(SizingParams(), BTC, D("97123.4"), nineteen), Accepted)


def test_a_price_too_high_for_one_step_is_refused_not_sized_to_zero():
    decision = decide(SizingParams(), BTC, D("250000"), ROOMY)
    assert isinstance(decision, Rejected)
    assert decision.reason is RiskReason.BELOW_MIN_QUANTITY


def test_a_size_below_the_minimum_quantity_is_refused():
    lots = MarketRules(
        symbol="ETHUSDT",
        tick_size="0.01",
        step_size="0.001",
        min_quantity="0.1",
        min_notional="20",
        max_leverage="100",
    )
    # 200 / 3,000 = 0.0666 ETH, below the 0.1 ETH minimum.
    decision = decide(SizingParams(), lots, D("3000"), ROOMY)
    assert isinstance(decision, Rejected)
    assert decision.reason is RiskReason.BELOW_MIN_QUANTITY


def test_a_size_below_the_minimum_notional_is_refused():
    # 4 USDT buys 24 DOGE at 0.16234 (3.89616 USDT); the venue wants 5 USDT at least.
    decision = decide(SizingParams(position_size_usd=D(4)), DOGE, D("0.16234"), ROOMY)
    assert isinstance(decision, Rejected)
    assert decision.reason is RiskReason.BELOW_MIN_NOTIONAL
    assert "3.89616" in decision.detail


def test_rounding_down_below_the_minimum_notional_is_refused():
    # 200 USDT buys one step of 0.002 BTC at 60,000 -> 0.003 is too much, 0.002 = 120 < 150.
    strict = MarketRules(
        symbol="BTCUSDT",
        tick_size="0.1",
        step_size="0.002",
        min_quantity="0.002",
        min_notional="150",
        max_leverage="125",
    )
    decision = decide(SizingParams(), strict, D("60000"), ROOMY)
    assert isinstance(decision, Rejected)
    assert decision.reason is RiskReason.BELOW_MIN_NOTIONAL


def test_an_open_that_would_exceed_the_exposure_limit_is_refused():
    heavy = AccountRisk(open_positions=5, exposure_usd=D(3900), free_balance=D(10_000))
    decision = decide(SizingParams(), DOGE, D("0.16234"), heavy)
    assert isinstance(decision, Rejected)
    assert decision.reason is RiskReason.MAX_EXPOSURE


def test_an_open_that_fits_the_exposure_limit_exactly_is_allowed():
    params = SizingParams(position_size_usd=D(200), max_exposure_usd=D(1000))
    book = AccountRisk(open_positions=4, exposure_usd=D(800), free_balance=D(10_000))
    decision = decide(params, DOGE, D("0.2"), book)  # exactly 1000 DOGE = 200 USDT
    assert isinstance(decision, Accepted)
    assert decision.notional == D(200)


def test_an_open_whose_margin_exceeds_the_free_balance_is_refused():
    poor = AccountRisk(open_positions=0, exposure_usd=D(0), free_balance=D("19.99"))
    decision = decide(SizingParams(), DOGE, D("0.2"), poor)  # margin 200 / 10 = 20
    assert isinstance(decision, Rejected)
    assert decision.reason is RiskReason.INSUFFICIENT_BALANCE


def test_a_free_balance_equal_to_the_margin_is_enough():
    exact = AccountRisk(open_positions=0, exposure_usd=D(0), free_balance=D(20))
    assert isinstance(decide(SizingParams(), DOGE, D("0.2"), exact), Accepted)


def test_sized_quantity_refuses_rather_than_returns_less_than_the_minimum():
    with pytest.raises(BelowMinimum):
        sized_quantity(SizingParams(), BTC, D("250000"))


@pytest.mark.parametrize("bad", [D(0), D(-1), D("NaN"), "inf", True, "abc"])
def test_a_mark_price_that_is_not_a_positive_number_is_an_error(bad):
    with pytest.raises(InvalidNumber, match="mark_price"):
        decide(SizingParams(), BTC, bad, ROOMY)


@pytest.mark.parametrize(
    ("field", "bad"),
    [
        ("position_size_usd", D(0)),
        ("position_size_usd", "nan"),
        ("leverage", D(-10)),
        ("leverage", True),
        ("max_exposure_usd", D(0)),
        ("max_open_positions", 0),
        ("max_open_positions", True),
        ("max_open_positions", 2.5),
    ],
)
def test_sizing_parameters_refuse_nonsense(field, bad):
    with pytest.raises(InvalidNumber, match=field):
        SizingParams(**{field: bad})


@pytest.mark.parametrize(
    ("field", "bad"),
    [("open_positions", -1), ("exposure_usd", D(-1)), ("free_balance", "nan")],
)
def test_account_figures_refuse_nonsense(field, bad):
    values = {"open_positions": 0, "exposure_usd": D(0), "free_balance": D(100)}
    values[field] = bad
    with pytest.raises(InvalidNumber, match=field):
        AccountRisk(**values)


# Properties over random markets, prices and accounts.

units = st.sampled_from([D("1"), D("0.1"), D("0.001"), D("0.00001"), D("0.0000001"), D("5")])
prices = st.decimals(min_value=D("0.0000001"), max_value=D("200000"), places=7)
money = st.decimals(min_value=D("1"), max_value=D("5000"), places=2)


@st.composite
def markets(draw):
    step = draw(units)
    return MarketRules(
        symbol="XUSDT",
        tick_size=draw(units),
        step_size=step,
        min_quantity=step * draw(st.integers(min_value=0, max_value=5)),
        min_notional=draw(st.decimals(min_value=D(0), max_value=D(300), places=2)),
        max_leverage=D(125),
    )


@settings(max_examples=300)
@given(markets(), prices, money, st.integers(min_value=1, max_value=125))
def test_an_accepted_size_never_exceeds_the_notional_nor_falls_below_the_minimums(
    market, mark, size, leverage
):
    params = SizingParams(position_size_usd=size, leverage=D(leverage), max_exposure_usd=D(10**6))
    decision = decide(params, market, mark, ROOMY)
    if isinstance(decision, Rejected):
        assert decision.reason in (RiskReason.BELOW_MIN_QUANTITY, RiskReason.BELOW_MIN_NOTIONAL)
        return
    assert decision.notional == decision.quantity * mark
    assert decision.notional <= size
    assert decision.notional >= market.min_notional
    assert decision.quantity >= market.smallest_quantity
    assert is_multiple(decision.quantity, market.step_size)
    assert decision.margin == decision.notional / leverage
    # Rounded down, not further: one more step would break the configured size.
    assert (decision.quantity + market.step_size) * mark > size


@settings(max_examples=300)
@given(markets(), prices, money)
def test_a_size_the_venue_would_refuse_is_a_rejection_never_a_quantity(market, mark, size):
    params = SizingParams(position_size_usd=size, max_exposure_usd=D(10**6))
    decision = decide(params, market, mark, ROOMY)
    largest = (size / mark // market.step_size) * market.step_size
    fits = largest >= market.smallest_quantity and largest * mark >= market.min_notional
    assert isinstance(decision, Accepted) == fits


@given(
    st.integers(min_value=0, max_value=30),
    st.decimals(min_value=D(0), max_value=D(5000), places=2),
    st.decimals(min_value=D(0), max_value=D(100), places=2),
)
def test_an_accepted_open_respects_every_account_limit(open_positions, exposure, free):
    params = SizingParams()
    book = AccountRisk(open_positions=open_positions, exposure_usd=exposure, free_balance=free)
    decision = decide(params, DOGE, D("0.16234"), book)
    within = (
        open_positions < params.max_open_positions
        and exposure + D("199.84054") <= params.max_exposure_usd
        and D("19.984054") <= free
    )
    assert isinstance(decision, Accepted) == within


def test_exposure_counts_unproven_entries_and_fills_whatever_stage_their_open_is_in():
    from datetime import UTC, datetime

    from tradecore.domain.model import Side, Venue
    from tradecore.domain.positions import Position, PositionState
    from tradecore.domain.sizing import exposure_of

    def position(state: PositionState, quantity: str = "0", entry: str | None = None) -> Position:
        return Position(
            id=f"p-{state.value}",
            venue=Venue.BYBIT,
            symbol="BTCUSDT",
            side=Side.LONG,
            state=state,
            requested_quantity=D("0.004"),
            quantity=D(quantity),
            entry_price=None if entry is None else D(entry),
            created_at=datetime(2026, 1, 1, tzinfo=UTC),
        )

    held = [
        position(PositionState.ACTIVE, "0.002", "50000"),  # 100
        position(PositionState.PENDING_SL, "0.001", "50000"),  # 50: filled, stop on its way
        position(PositionState.PENDING_ENTRY),  # unproven: a full 200
        position(PositionState.FAILED),  # nothing opened
    ]
    assert exposure_of(held, SizingParams()) == D(350)
