"""Where a position's stop goes: the initial stop, its adjustment, the emergency stop (SPEC §3).

A stop is rounded to the tick AWAY from the mark price (a long's stop down, a short's up),
so rounding can only widen it, never push it onto the wrong side of the mark. It is never
zero or negative: the smallest stop is one tick.
"""

from decimal import Decimal

import attrs

from tradecore.domain.errors import InvalidNumber
from tradecore.domain.model import Side
from tradecore.domain.numbers import HUNDRED, ONE, percent, positive
from tradecore.domain.precision import Rounding, round_price


def _below_hundred(value: object, name: str) -> Decimal:
    result = positive(value, name=name)
    if result >= HUNDRED:
        raise InvalidNumber(f"{name} must be below 100 (percent), got {value!r}")
    return result


def _stop_loss(value: object) -> Decimal:
    return _below_hundred(value, "stop_loss_percent")


def _mark_buffer(value: object) -> Decimal:
    return _below_hundred(value, "mark_buffer_percent")


def _emergency(value: object) -> Decimal:
    return _below_hundred(value, "emergency_stop_percent")


@attrs.frozen(kw_only=True)
class StopParams:
    """Distances in percent (SPEC §3 defaults)."""

    stop_loss_percent: Decimal = attrs.field(default=Decimal(3), converter=_stop_loss)
    # How far beyond the mark a stop goes when the planned one would trigger at once.
    mark_buffer_percent: Decimal = attrs.field(default=Decimal("0.5"), converter=_mark_buffer)
    emergency_stop_percent: Decimal = attrs.field(default=Decimal(10), converter=_emergency)


@attrs.frozen(kw_only=True)
class StopPlan:
    """A stop price ready for the venue. `adjusted` when the mark forced it past the plan."""

    side: Side
    price: Decimal
    adjusted: bool = False


def away_from_mark(side: Side) -> Rounding:
    """The rounding that widens a stop of `side`: down below a long, up above a short."""
    return Rounding.DOWN if side is Side.LONG else Rounding.UP


def would_trigger(side: Side, stop_price: Decimal, mark_price: Decimal) -> bool:
    """True when a stop at `stop_price` fires at `mark_price` (at or beyond it)."""
    if side is Side.LONG:
        return mark_price <= stop_price
    return mark_price >= stop_price


def stop_at_distance(side: Side, reference: Decimal, distance_percent: Decimal) -> Decimal:
    """The unrounded price `distance_percent` from `reference` on the losing side of `side`."""
    return reference * (ONE - side.sign * percent(distance_percent))


def initial_stop(
    side: Side,
    fill_price: object,
    mark_price: object,
    tick_size: Decimal,
    params: StopParams | None = None,
) -> StopPlan:
    """The stop `stop_loss_percent` from the fill, moved past the mark if it would fire at once."""
    chosen = params or StopParams()
    return _stop(side, fill_price, mark_price, tick_size, chosen.stop_loss_percent, chosen)


def emergency_stop(
    side: Side,
    fill_price: object,
    mark_price: object,
    tick_size: Decimal,
    params: StopParams | None = None,
) -> StopPlan:
    """The wide stop placed when neither the normal stop nor a market close succeeded."""
    chosen = params or StopParams()
    return _stop(side, fill_price, mark_price, tick_size, chosen.emergency_stop_percent, chosen)


def _stop(
    side: Side,
    fill_price: object,
    mark_price: object,
    tick_size: Decimal,
    distance_percent: Decimal,
    params: StopParams,
) -> StopPlan:
    fill = positive(fill_price, name="fill_price")
    mark = positive(mark_price, name="mark_price")
    rounding = away_from_mark(side)
    planned = round_price(stop_at_distance(side, fill, distance_percent), tick_size, rounding)
    if not would_trigger(side, planned, mark):
        return StopPlan(side=side, price=planned)
    beyond = stop_at_distance(side, mark, params.mark_buffer_percent)
    # A long marked within a tick of zero keeps the one-tick floor and still triggers;
    # the caller sees `would_trigger` and closes at market instead.
    price = round_price(beyond, tick_size, rounding)
    return StopPlan(side=side, price=price, adjusted=True)
