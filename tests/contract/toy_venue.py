"""A toy third venue, built only as docs/extending.md ("The paper engine's dialect") says.

It exists to prove that adding a venue to the simulated engine is one module: a registered
name, a `PaperDialect` with the venue's facts and words, `register(...)`. Its differences
from Binance and Bybit are deliberate: codes of its own, stops amended in place but no
position-attached stop, no conditional-order cap, a client id free again once its order
closed, leverage not only in whole numbers, and order ids with a prefix.
"""

from decimal import Decimal

import attrs

from tradecore.adapters.paper import PaperDialect, register
from tradecore.domain.model import Venue
from tradecore.domain.precision import MarketRules
from tradecore.ports.exchange import Capabilities, Rejected, RejectReason

R = RejectReason
TOY = Venue.register("toy")

ERRORS = {
    R.WOULD_TRIGGER_IMMEDIATELY: ("T100", "trigger {trigger} is already past the mark {mark}"),
    R.BELOW_MIN_NOTIONAL: ("T101", "order value below {min_notional}"),
    R.INSUFFICIENT_BALANCE: ("T102", "not enough margin"),
    R.SYMBOL_UNAVAILABLE: ("T103", "{symbol} is not trading"),
    R.UNKNOWN_SYMBOL: ("T104", "no such symbol {symbol}"),
    R.REGION_RESTRICTED: ("T105", "not available in your region"),
    R.REDUCE_ONLY_WOULD_INCREASE: ("T106", "reduce-only order would increase the position"),
    R.INVALID_PRICE: ("T107", "{field} {value} is not a multiple of {tick}"),
    R.INVALID_QUANTITY: ("T108", "bad quantity"),
    R.DUPLICATE_CLIENT_ID: ("T109", "client id in use"),
    R.ORDER_NOT_FOUND: ("T110", "no such order"),
    R.TOO_MANY_CONDITIONAL_ORDERS: ("T111", "too many stops"),
    R.NO_POSITION: ("T112", "no position on {symbol}"),
    R.NOT_SUPPORTED: (None, "toy does not support {what}"),
    R.NOT_MODIFIED: ("T113", "nothing to change"),
    R.INVALID_LEVERAGE: ("T114", "leverage {leverage} refused"),
    R.MARGIN_MODE_LOCKED: ("T115", "margin mode locked while a position is open"),
    R.RATE_LIMITED: ("T429", "slow down"),
    R.VENUE_UNAVAILABLE: ("T503", "try again later"),
    R.AUTHENTICATION: ("T401", "bad key"),
    R.OTHER: ("T000", "{what}"),
}
CODES = {reason: {code} for reason, (code, _) in ERRORS.items() if code is not None}


@attrs.frozen(kw_only=True)
class ToyDialect(PaperDialect):
    """Where the toy's answer depends on the request, it says so here."""

    def new_order_id(self, number: int) -> str:
        return f"toy-{self.order_id_start + number}"

    def price_unreadable(self, field: str) -> Rejected:
        return self.refusal(R.INVALID_PRICE, message=f"{field} is not a number")

    def leverage_unchanged(self) -> Rejected:
        return self.refusal(R.NOT_MODIFIED, message="leverage unchanged")


def _market(symbol: str, tick: str, step: str, notional: str, leverage: int) -> MarketRules:
    return MarketRules(
        symbol=symbol,
        tick_size=Decimal(tick),
        step_size=Decimal(step),
        min_quantity=Decimal(step),
        min_notional=Decimal(notional),
        max_leverage=Decimal(leverage),
    )


TOY_DIALECT = register(
    ToyDialect(
        venue=TOY,
        capabilities=Capabilities(
            amend_stop=True, position_stop=False, amend_limit=True, max_conditional_orders=None
        ),
        errors=ERRORS,
        markets=(
            _market("BTCUSDT", "0.5", "0.001", "10", 50),
            _market("ETHUSDT", "0.05", "0.01", "10", 50),
        ),
        client_ids_free_once_closed=True,
        taker_fee=Decimal("0.0004"),
        order_id_start=100,
    )
)
