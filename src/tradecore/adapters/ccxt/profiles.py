"""The shape of a venue's facts for the ccxt adapter, as data, and the checks before sending.

Each venue's `CcxtProfile` (capabilities, the ccxt options and order parameters, the readers
of its raw JSON, and the code it gives for the mistakes the adapter refuses before sending)
is built in its dialect module (`adapters/ccxt/venues/<venue>.py`); behaviour that differs
(algo orders, read-backs, position stops) is the dialect's too.
"""

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

import attrs

from tradecore.domain.model import Venue
from tradecore.domain.numbers import ZERO
from tradecore.domain.orders import Balance, Order, VenuePosition
from tradecore.domain.precision import MarketRules
from tradecore.ports.exchange import Capabilities, Rejected, RejectReason

R = RejectReason


@attrs.frozen(kw_only=True)
class Refusals:
    """The venue's own code for each mistake the adapter refuses before sending.

    ccxt's `amount_to_precision` truncates and `price_to_precision` rounds, so an off-grid
    value must never reach it: the adapter refuses it with the code the venue would give.
    """

    unknown_symbol: tuple[str, str]  # (code, the venue's text)
    not_a_number: str
    quantity_not_positive: str
    price_not_positive: str
    stop_not_positive: str
    too_precise: str  # more decimals than the step or tick has
    off_step: str
    off_tick: str
    below_min_quantity: str
    order_not_found: tuple[str, str]  # an amend of an order the venue does not have open


@attrs.frozen(kw_only=True)
class CcxtProfile:
    venue: Venue
    capabilities: Capabilities
    refusals: Refusals
    options: Mapping[str, Any]  # ccxt client options
    order_params: Mapping[str, Any]  # sent with every order
    stop_params: Mapping[str, Any]  # what makes a stop trigger on the mark price
    mark_field: str  # the mark in the venue's stream message
    read_order: Callable[[Mapping[str, Any]], Order]
    read_position: Callable[[Mapping[str, Any]], VenuePosition | None]
    read_balance: Callable[[Mapping[str, Any]], Balance]
    # what makes a stop close the whole position without a quantity (in place of
    # reduceOnly), where `capabilities.close_position_stop`
    close_position_params: Mapping[str, Any] = attrs.field(factory=dict)


# ----------------------------------------------------------------- checks before sending


def _refuse(reason: RejectReason, code: str, message: str) -> Rejected:
    return Rejected(reason=reason, message=f"refused before sending: {message}", code=code)


def _finite(value: object) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, (Decimal, int, str)):
        return None
    try:
        result = Decimal(value)
    except ArithmeticError:
        return None
    return result if result.is_finite() else None


def _exponent(value: Decimal) -> int:
    exponent = value.normalize().as_tuple().exponent
    return exponent if isinstance(exponent, int) else 0


def unknown_symbol(refusals: Refusals) -> Rejected:
    code, text = refusals.unknown_symbol
    return _refuse(R.UNKNOWN_SYMBOL, code, text)


def order_not_found(refusals: Refusals) -> Rejected:
    code, text = refusals.order_not_found
    return Rejected(reason=R.ORDER_NOT_FOUND, message=text, code=code)


def check_quantity(refusals: Refusals, rules: MarketRules, raw: object) -> Decimal | Rejected:
    """`raw` as the exact quantity to send, or the venue's refusal of it."""
    qty = _finite(raw)
    if qty is None:
        return _refuse(R.INVALID_QUANTITY, refusals.not_a_number, f"quantity {raw!r}")
    if qty <= ZERO:
        return _refuse(R.INVALID_QUANTITY, refusals.quantity_not_positive, f"quantity {qty}")
    if qty % rules.step_size != ZERO:
        precise = _exponent(qty) < _exponent(rules.step_size)
        return _refuse(
            R.INVALID_QUANTITY,
            refusals.too_precise if precise else refusals.off_step,
            f"quantity {qty} is not a multiple of the step {rules.step_size}",
        )
    if qty < rules.min_quantity:
        return _refuse(
            R.INVALID_QUANTITY,
            refusals.below_min_quantity,
            f"quantity {qty} is below the minimum {rules.min_quantity}",
        )
    return qty


def check_price(
    refusals: Refusals, rules: MarketRules, raw: object, *, stop: bool
) -> Decimal | Rejected:
    """`raw` as the exact price (or trigger) to send, or the venue's refusal of it."""
    price = _finite(raw)
    if price is None:
        return _refuse(R.INVALID_PRICE, refusals.not_a_number, f"price {raw!r}")
    if price <= ZERO:
        code = refusals.stop_not_positive if stop else refusals.price_not_positive
        return _refuse(R.INVALID_PRICE, code, f"price {price}")
    if price % rules.tick_size != ZERO:
        precise = _exponent(price) < _exponent(rules.tick_size)
        return _refuse(
            R.INVALID_PRICE,
            refusals.too_precise if precise else refusals.off_tick,
            f"price {price} is not a multiple of the tick {rules.tick_size}",
        )
    return price
