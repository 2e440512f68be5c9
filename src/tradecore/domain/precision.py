"""Market rules and exact rounding of prices and quantities.

The venues reject a price that is not a multiple of the tick and a quantity that is not a
multiple of the step. ccxt's own helpers round to nearest and fail on zero; a stop or an
exit price must be rounded in a direction the caller chooses (the safe side), so tradecore
does it here, in Decimal, and never returns zero, a negative number or less than one unit.
"""

from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from enum import StrEnum

import attrs

from tradecore.domain.errors import BelowMinimum, InvalidNumber
from tradecore.domain.numbers import ZERO, non_negative, positive


class Rounding(StrEnum):
    """The direction a price is rounded to the tick."""

    UP = "up"
    DOWN = "down"


def _tick(value: object) -> Decimal:
    return positive(value, name="tick_size")


def _step(value: object) -> Decimal:
    return positive(value, name="step_size")


def _min_quantity(value: object) -> Decimal:
    return non_negative(value, name="min_quantity")


def _min_notional(value: object) -> Decimal:
    return non_negative(value, name="min_notional")


def _leverage(value: object) -> Decimal:
    return positive(value, name="max_leverage")


@attrs.frozen(kw_only=True)
class MarketRules:
    """What a venue accepts for one symbol (plain symbol, e.g. `BTCUSDT`)."""

    symbol: str
    tick_size: Decimal = attrs.field(converter=_tick)
    step_size: Decimal = attrs.field(converter=_step)
    min_quantity: Decimal = attrs.field(converter=_min_quantity)
    min_notional: Decimal = attrs.field(converter=_min_notional)
    max_leverage: Decimal = attrs.field(converter=_leverage)
    active: bool = True

    @property
    def smallest_quantity(self) -> Decimal:
        """The smallest quantity the venue accepts: the larger of one step and min quantity."""
        return max(self.step_size, self.min_quantity)


def _units(value: Decimal, unit: Decimal, rounding: str) -> Decimal:
    return (value / unit).to_integral_value(rounding=rounding)


def is_multiple(value: Decimal, unit: Decimal) -> bool:
    """True when `value` is an exact multiple of `unit` (both Decimal, unit > 0)."""
    return value % unit == ZERO


def round_price(price: object, tick_size: Decimal, direction: Rounding) -> Decimal:
    """Round `price` to a multiple of `tick_size`, up or down, never below one tick.

    >>> round_price(Decimal("0.0123456"), Decimal("0.0001"), Rounding.DOWN)
    Decimal('0.0123')
    >>> round_price(Decimal("0.00001"), Decimal("0.0001"), Rounding.DOWN)
    Decimal('0.0001')
    """
    value = positive(price, name="price")
    tick = positive(tick_size, name="tick_size")
    mode = ROUND_CEILING if direction is Rounding.UP else ROUND_FLOOR
    units = _units(value, tick, mode)
    if units < 1:
        units = Decimal(1)
    return (units * tick).quantize(tick)


def floor_quantity(quantity: object, step_size: Decimal) -> Decimal:
    """Floor `quantity` to a multiple of `step_size`; refuse a result below one step."""
    value = positive(quantity, name="quantity")
    step = positive(step_size, name="step_size")
    units = _units(value, step, ROUND_FLOOR)
    if units < 1:
        raise BelowMinimum(
            f"quantity {value} is below one step of {step}; "
            "increase the position size or choose a market with a smaller step"
        )
    return (units * step).quantize(step)


def price_for(rules: MarketRules, price: object, direction: Rounding) -> Decimal:
    """`round_price` with the market's tick."""
    return round_price(price, rules.tick_size, direction)


def quantity_for(rules: MarketRules, quantity: object) -> Decimal:
    """`floor_quantity` with the market's step, refusing less than the market's minimum."""
    result = floor_quantity(quantity, rules.step_size)
    if result < rules.min_quantity:
        raise BelowMinimum(
            f"{rules.symbol}: quantity {result} is below the minimum {rules.min_quantity}"
        )
    return result


def order_problem(rules: MarketRules, quantity: Decimal, price: Decimal | None) -> str | None:
    """Why the venue would refuse an order of `quantity` at `price`, or None if it accepts it.

    Used by the simulated venue and by pre-flight checks; the text names the rule.
    """
    try:
        qty = positive(quantity, name="quantity")
        px = None if price is None else positive(price, name="price")
    except InvalidNumber as error:
        return str(error)
    if not is_multiple(qty, rules.step_size):
        return f"quantity {qty} is not a multiple of the step {rules.step_size}"
    if qty < rules.min_quantity:
        return f"quantity {qty} is below the minimum quantity {rules.min_quantity}"
    if px is not None and not is_multiple(px, rules.tick_size):
        return f"price {px} is not a multiple of the tick {rules.tick_size}"
    return None
