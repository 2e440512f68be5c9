from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradecore.domain.aged import AgedDecision, AgedParams, AgedPhase, decide_aged
from tradecore.domain.errors import DomainError
from tradecore.domain.model import Side

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
CENT = Decimal("0.01")
DEFAULTS = AgedParams()
PHASE_ORDER = [
    AgedPhase.NOT_AGED,
    AgedPhase.GRACE,
    AgedPhase.CONCESSION,
    AgedPhase.ACCELERATED,
    AgedPhase.CAP,
]


def _at(
    hours: float,
    *,
    side: Side = Side.LONG,
    entry: str = "100",
    tick: Decimal = CENT,
    params: AgedParams = DEFAULTS,
) -> AgedDecision:
    return decide_aged(
        entry_price=Decimal(entry),
        side=side,
        quantity=Decimal("2"),
        opened_at=T0,
        now=T0 + timedelta(hours=hours),
        params=params,
        tick_size=tick,
    )


def test_a_position_younger_than_three_hours_is_not_aged_and_gets_no_exit_price():
    decision = _at(2.99)
    assert decision.phase is AgedPhase.NOT_AGED
    assert decision.target_price is None
    assert not decision.close_at_market


def test_at_three_hours_a_long_is_offered_at_breakeven_including_both_fees_rounded_up():
    # 100 * 1.0005 / 0.9995 = 100.10005..., rounded up to the cent so the exit never loses.
    decision = _at(3)
    assert decision.phase is AgedPhase.GRACE
    assert decision.target_price == Decimal("100.11")
    assert decision.quantity == Decimal("2")


def test_a_short_in_grace_is_offered_at_breakeven_rounded_down():
    # 100 * 0.9995 / 1.0005 = 99.90005...
    decision = _at(10, side=Side.SHORT)
    assert decision.phase is AgedPhase.GRACE
    assert decision.target_price == Decimal("99.90")


def test_grace_lasts_eight_hours_after_the_position_becomes_aged():
    assert _at(10.99).phase is AgedPhase.GRACE
    assert _at(11).phase is AgedPhase.CONCESSION


def test_two_hours_after_grace_a_long_concedes_one_percent_from_breakeven():
    # breakeven 100.10005 * 0.99 = 99.0990495 -> 99.10 (up: never concede more than 1 %)
    decision = _at(13)
    assert decision.phase is AgedPhase.CONCESSION
    assert decision.loss_percent == Decimal("1.0")
    assert decision.target_price == Decimal("99.10")


def test_half_an_hour_after_grace_the_concession_is_a_quarter_percent():
    assert _at(11.5).loss_percent == Decimal("0.25")


def test_after_ten_hours_past_grace_each_hour_concedes_one_point_two_times_the_last():
    # 10 h x 0.5 % = 5 %, then 0.6 % and 0.72 %
    decision = _at(3 + 8 + 12)
    assert decision.phase is AgedPhase.ACCELERATED
    assert decision.loss_percent == Decimal("6.32")
    assert decision.hours_past_grace == Decimal(12)


def test_a_short_concedes_upwards():
    # breakeven 99.9000499750... * 1.01 = 100.8990504... -> rounded down to 100.89
    decision = _at(13, side=Side.SHORT)
    assert decision.target_price == Decimal("100.89")


def test_at_the_ten_percent_cap_the_position_is_closed_at_market():
    # 5 + 0.6 + 0.72 + 0.864 + 1.0368 + 1.24416 = 9.46496 after 15 h; the 16th hour crosses 10 %
    assert _at(3 + 8 + 15).phase is AgedPhase.ACCELERATED
    decision = _at(3 + 8 + 16)
    assert decision.phase is AgedPhase.CAP
    assert decision.close_at_market
    assert decision.loss_percent == Decimal(10)
    # 100.10005 * 0.9 = 90.090045 -> 90.10 (rounded up)
    assert decision.target_price == Decimal("90.10")


def test_a_week_old_position_stays_at_the_cap():
    decision = _at(24 * 7)
    assert decision.phase is AgedPhase.CAP
    assert decision.loss_percent == Decimal(10)


def test_an_exit_price_below_one_tick_is_raised_to_one_tick_never_zero():
    # The earlier bot rounded such prices to 0 and the venue refused the exit order.
    decision = _at(20, side=Side.SHORT, entry="0.00004", tick=Decimal("0.0001"))
    assert decision.target_price == Decimal("0.0001")


def test_a_tiny_priced_long_keeps_a_price_on_the_tick():
    decision = _at(14, entry="0.0000123", tick=Decimal("0.0000001"))
    assert decision.target_price is not None
    assert decision.target_price % Decimal("0.0000001") == 0
    assert decision.target_price > 0


def test_without_fees_grace_offers_exactly_the_entry_price():
    decision = _at(4, params=AgedParams(taker_fee_percent=Decimal(0)))
    assert decision.target_price == Decimal("100.00")


def test_a_clock_behind_the_opening_time_means_not_aged():
    assert _at(-5).phase is AgedPhase.NOT_AGED


def test_naive_times_are_refused():
    with pytest.raises(DomainError, match="timezone-aware"):
        decide_aged(
            entry_price=Decimal(100),
            side=Side.LONG,
            quantity=Decimal(1),
            opened_at=datetime(2026, 1, 1),
            now=datetime(2026, 1, 2),
            params=DEFAULTS,
            tick_size=CENT,
        )


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_loss_percent", Decimal(100)),
        ("max_loss_percent", Decimal(0)),
        ("acceleration_factor", Decimal("0.9")),
        ("taker_fee_percent", Decimal(-1)),
        ("loss_step_percent", Decimal("NaN")),
        ("grace_period_hours", Decimal(-1)),
    ],
)
def test_nonsensical_parameters_are_refused(field: str, value: Decimal):
    with pytest.raises(DomainError, match=field.split("_")[0]):
        AgedParams(**{field: value})


def test_a_zero_entry_price_is_refused():
    with pytest.raises(DomainError, match="entry_price"):
        _at(5, entry="0")


prices = st.decimals(min_value=Decimal("0.01"), max_value=Decimal(100_000), places=4)
ticks = st.sampled_from([Decimal("0.0001"), Decimal("0.001"), Decimal("0.01")])
fees = st.decimals(min_value=Decimal(0), max_value=Decimal("0.2"), places=3)
minutes = st.integers(min_value=0, max_value=60 * 24 * 5)
sides = st.sampled_from([Side.LONG, Side.SHORT])


def _decide(entry: Decimal, side: Side, tick: Decimal, fee: Decimal, at: int) -> AgedDecision:
    return decide_aged(
        entry_price=entry,
        side=side,
        quantity=Decimal(1),
        opened_at=T0,
        now=T0 + timedelta(minutes=at),
        params=AgedParams(taker_fee_percent=fee),
        tick_size=tick,
    )


@settings(max_examples=200, deadline=None)
@given(prices, sides, ticks, fees, minutes, minutes)
def test_the_aged_target_concedes_monotonically_over_time(entry, side, tick, fee, a, b):
    early, late = (
        _decide(entry, side, tick, fee, min(a, b)),
        _decide(entry, side, tick, fee, max(a, b)),
    )
    assert PHASE_ORDER.index(early.phase) <= PHASE_ORDER.index(late.phase)
    assert early.loss_percent <= late.loss_percent
    if early.target_price is not None and late.target_price is not None:
        if side is Side.LONG:
            assert late.target_price <= early.target_price
        else:
            assert late.target_price >= early.target_price


@settings(max_examples=200, deadline=None)
@given(prices, sides, ticks, fees, minutes)
def test_the_aged_exit_never_loses_more_than_the_cap_fees_included(entry, side, tick, fee, at):
    entry = max(entry, tick * 10)  # prices below a few ticks cannot honour any percentage
    decision = _decide(entry, side, tick, fee, at)
    assert decision.loss_percent <= DEFAULTS.max_loss_percent
    if decision.target_price is None:
        return
    f = fee / 100
    cap = DEFAULTS.max_loss_percent / 100
    assert decision.target_price > 0
    assert decision.target_price % tick == 0
    if side is Side.LONG:
        paid = entry * (1 + f)
        assert decision.target_price * (1 - f) - paid >= -cap * paid
    else:
        received = entry * (1 - f)
        assert received - decision.target_price * (1 + f) >= -cap * received


@settings(max_examples=200, deadline=None)
@given(prices, sides, ticks, fees, st.integers(min_value=3 * 60, max_value=11 * 60 - 1))
def test_an_exit_at_the_grace_target_never_loses_money_after_fees(entry, side, tick, fee, at):
    decision = _decide(entry, side, tick, fee, at)
    assert decision.phase is AgedPhase.GRACE
    assert decision.target_price is not None
    f = fee / 100
    if side is Side.LONG:
        assert decision.target_price * (1 - f) >= entry * (1 + f)
    else:
        assert decision.target_price * (1 + f) <= entry * (1 - f) or decision.target_price == tick
