"""Aged positions (SPEC §7): what price an old position is offered at, and when it is closed.

A position older than `max_position_age_hours` is *aged*. For `grace_period_hours` its exit
order sits at breakeven including fees. After the grace period the exit concedes
`loss_step_percent` per hour; from `acceleration_after_hours` past grace each further hour
concedes `acceleration_factor` times the previous hour's step; the concession is capped at
`max_loss_percent`, and at the cap the position is closed at market.

The concession is measured from breakeven, so `L` percent of concession is a net loss of
exactly `L` percent of what the entry cost (fees included) — the cap is a real 10 % loss:

    long:  breakeven = entry * (1 + f) / (1 - f)     exit = breakeven * (1 - L/100)
    short: breakeven = entry * (1 - f) / (1 + f)     exit = breakeven * (1 + L/100)

where `f` is the taker fee per side as a fraction (entry and exit both pay it). Within an
hour the concession grows linearly at that hour's rate, so the target moves smoothly and
never jumps. The earlier bot's formula (0.5 %/h, x1.2 after 10 h, 10 % cap) is kept; its
rounding to 0 is not: the exit price is rounded to the tick in the direction that concedes
less (up for a long's sell, down for a short's buy) and never below one tick.
"""

from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum

import attrs

from tradecore.domain.errors import DomainError
from tradecore.domain.model import Side
from tradecore.domain.numbers import ONE, ZERO, non_negative, percent, positive
from tradecore.domain.precision import Rounding, round_price

_HOUR = Decimal(3600)


class AgedPhase(StrEnum):
    NOT_AGED = "not_aged"
    GRACE = "grace"  # exit at breakeven including fees
    CONCESSION = "concession"  # loss_step_percent per hour
    ACCELERATED = "accelerated"  # each hour's step x acceleration_factor
    CAP = "cap"  # max_loss_percent reached: close at market


def _max_age(value: object) -> Decimal:
    return non_negative(value, name="max_position_age_hours")


def _grace(value: object) -> Decimal:
    return non_negative(value, name="grace_period_hours")


def _step(value: object) -> Decimal:
    return non_negative(value, name="loss_step_percent")


def _acceleration_after(value: object) -> Decimal:
    return non_negative(value, name="acceleration_after_hours")


def _factor(value: object) -> Decimal:
    result = positive(value, name="acceleration_factor")
    if result < ONE:
        raise DomainError(f"acceleration_factor must be at least 1, got {value!r}")
    return result


def _max_loss(value: object) -> Decimal:
    result = positive(value, name="max_loss_percent")
    if result >= 100:
        raise DomainError(f"max_loss_percent must be below 100, got {value!r}")
    return result


def _fee(value: object) -> Decimal:
    result = non_negative(value, name="taker_fee_percent")
    if result >= 50:
        raise DomainError(f"taker_fee_percent must be below 50, got {value!r}")
    return result


@attrs.frozen(kw_only=True)
class AgedParams:
    """SPEC §7 defaults. `taker_fee_percent` is the fee per side in percent of the notional
    (Binance and Bybit charge 0.05 % / 0.055 % taker on USDT perpetuals at the base tier)."""

    max_position_age_hours: Decimal = attrs.field(default=Decimal(3), converter=_max_age)
    grace_period_hours: Decimal = attrs.field(default=Decimal(8), converter=_grace)
    loss_step_percent: Decimal = attrs.field(default=Decimal("0.5"), converter=_step)
    acceleration_after_hours: Decimal = attrs.field(
        default=Decimal(10), converter=_acceleration_after
    )
    acceleration_factor: Decimal = attrs.field(default=Decimal("1.2"), converter=_factor)
    max_loss_percent: Decimal = attrs.field(default=Decimal(10), converter=_max_loss)
    taker_fee_percent: Decimal = attrs.field(default=Decimal("0.05"), converter=_fee)


@attrs.frozen(kw_only=True)
class AgedDecision:
    """What the aged manager should do with one position now.

    `target_price` is the exit order's price, already on the tick (None when not aged);
    `loss_percent` is the concession from breakeven; `close_at_market` is set at the cap.
    """

    phase: AgedPhase
    quantity: Decimal
    breakeven_price: Decimal
    loss_percent: Decimal = ZERO
    target_price: Decimal | None = None
    close_at_market: bool = False
    hours_past_grace: Decimal = ZERO


def breakeven_price(entry_price: Decimal, side: Side, taker_fee_percent: Decimal) -> Decimal:
    """The exit price at which the position's net PnL, both fees paid, is zero."""
    fee = percent(taker_fee_percent)
    if side is Side.LONG:
        return entry_price * (ONE + fee) / (ONE - fee)
    return entry_price * (ONE - fee) / (ONE + fee)


def concession_percent(hours_past_grace: Decimal, params: AgedParams) -> Decimal:
    """Cumulative concession (percent, uncapped) after `hours_past_grace` hours.

    Hour k (1-based) concedes `step` while k <= acceleration_after_hours and
    `step * factor ** (k - acceleration_after_hours)` after it; a part hour concedes its
    share of that hour's step.
    """
    if hours_past_grace <= ZERO:
        return ZERO
    linear_hours = min(hours_past_grace, params.acceleration_after_hours)
    total = linear_hours * params.loss_step_percent
    extra = hours_past_grace - params.acceleration_after_hours
    step = params.loss_step_percent
    while extra > ZERO and total < params.max_loss_percent:
        step *= params.acceleration_factor
        total += min(extra, ONE) * step
        extra -= ONE
    return total


def _phase(hours_past_grace: Decimal, loss: Decimal, params: AgedParams) -> AgedPhase:
    if loss >= params.max_loss_percent:
        return AgedPhase.CAP
    if hours_past_grace > params.acceleration_after_hours:
        return AgedPhase.ACCELERATED
    return AgedPhase.CONCESSION


def _conceded(breakeven: Decimal, side: Side, loss: Decimal) -> Decimal:
    if side is Side.LONG:
        return breakeven * (ONE - percent(loss))
    return breakeven * (ONE + percent(loss))


def _exit_rounding(side: Side) -> Rounding:
    # A long exits with a sell: a higher price concedes less. A short exits with a buy.
    return Rounding.UP if side is Side.LONG else Rounding.DOWN


def _age_hours(opened_at: datetime, now: datetime) -> Decimal:
    if opened_at.tzinfo is None or now.tzinfo is None:
        raise DomainError("opened_at and now must be timezone-aware (UTC)")
    age = max(now - opened_at, timedelta(0))
    micros = (age.days * 86_400 + age.seconds) * 1_000_000 + age.microseconds
    return Decimal(micros) / 1_000_000 / _HOUR


def decide_aged(
    *,
    entry_price: object,
    side: Side,
    quantity: object,
    opened_at: datetime,
    now: datetime,
    params: AgedParams,
    tick_size: object,
) -> AgedDecision:
    """The aged phase and the exit price of a position at `now` (a pure function of time).

    >>> from datetime import timezone
    >>> t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    >>> d = decide_aged(entry_price=Decimal(100), side=Side.LONG, quantity=Decimal(1),
    ...     opened_at=t0, now=t0 + timedelta(hours=13), params=AgedParams(),
    ...     tick_size=Decimal("0.01"))
    >>> d.phase.value, d.loss_percent, d.target_price
    ('concession', Decimal('1.0'), Decimal('99.10'))
    """
    entry = positive(entry_price, name="entry_price")
    qty = positive(quantity, name="quantity")
    tick = positive(tick_size, name="tick_size")
    breakeven = breakeven_price(entry, side, params.taker_fee_percent)
    age = _age_hours(opened_at, now)
    if age < params.max_position_age_hours:
        return AgedDecision(phase=AgedPhase.NOT_AGED, quantity=qty, breakeven_price=breakeven)
    rounding = _exit_rounding(side)
    past_grace = age - params.max_position_age_hours - params.grace_period_hours
    if past_grace < ZERO:
        target = round_price(breakeven, tick, rounding)
        return AgedDecision(
            phase=AgedPhase.GRACE, quantity=qty, breakeven_price=breakeven, target_price=target
        )
    loss = min(concession_percent(past_grace, params), params.max_loss_percent)
    phase = _phase(past_grace, loss, params)
    return AgedDecision(
        phase=phase,
        quantity=qty,
        breakeven_price=breakeven,
        loss_percent=loss,
        target_price=round_price(_conceded(breakeven, side, loss), tick, rounding),
        close_at_market=phase is AgedPhase.CAP,
        hours_past_grace=past_grace,
    )
