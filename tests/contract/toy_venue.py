"""A toy third venue, built only as docs/extending.md says: one module plus its corpus.

The toy is a Bybit v5 clone, as many real venues are clones of another's API: the same
endpoints, envelope and protocol codes (10001 params error, 10002 timestamp, 10003 key,
10006 too many visits), with its own id, host, trading error codes (901xx) and behaviour.
This module gives it to every layer without editing tradecore:

- its name (`Venue.register("toy")`);
- the paper engine's dialect (`adapters.paper.register`): how the simulated venue behaves;
- ccxt's class for it (`ToyClient`, and `ToyProClient` for streams: ccxt's `bybit` with its
  own id `toy`, host and codes) and the ccxt adapter's dialect
  (`adapters.ccxt.venues.register`), from Bybit's;
- the loopback dialect (`testing.loopback.server.register_dialect`): Bybit's wire format
  over the engine, without the endpoint the toy lacks;
- its answer corpus (`testing.corpus.register`): `toy_corpus/` beside this module.

Its differences from Bybit are deliberate and each is carried by a dialect: codes of its
own, no position-attached stop (no `/v5/position/trading-stop`: the shared code places a
resting stop, as `capabilities.position_stop` says), no conditional-order cap, a client id
free again once its order closed, order ids with a prefix, and rate limits of its own (half
of Bybit's per endpoint: the adapter's budgets and the loopback's headers both follow them).
The contract suites run it as `paper-toy` and `ccxt-toy`.
"""

from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import ccxt.async_support as ccxt
import ccxt.pro as ccxt_pro

from tradecore.adapters.ccxt.profiles import Refusals
from tradecore.adapters.ccxt.venues import register as register_ccxt
from tradecore.adapters.ccxt.venues.bybit import PROFILE as BYBIT_PROFILE
from tradecore.adapters.ccxt.venues.bybit import BybitDialect as BybitCcxtDialect
from tradecore.adapters.ccxt.venues.bybit import read_position, read_v5_order, v5_limits
from tradecore.adapters.paper import PaperDialect
from tradecore.adapters.paper import register as register_paper
from tradecore.domain.model import Venue
from tradecore.domain.orders import Order, VenuePosition
from tradecore.domain.precision import MarketRules
from tradecore.ports.exchange import Capabilities, Rejected, RejectReason
from tradecore.testing import corpus
from tradecore.testing.loopback.bybit import BybitDialect as BybitLoopbackDialect
from tradecore.testing.loopback.server import register_dialect

R = RejectReason
TOY = Venue.register("toy")

# ---------------------------------------------------------------- facts
# The toy's error table: its own trading codes; the Bybit protocol's generic ones kept.
ERRORS = {
    R.WOULD_TRIGGER_IMMEDIATELY: ("90100", "trigger {trigger} is already past the mark {mark}"),
    R.BELOW_MIN_NOTIONAL: ("90101", "order value below {min_notional}"),
    R.INSUFFICIENT_BALANCE: ("90102", "not enough margin"),
    R.SYMBOL_UNAVAILABLE: ("90103", "{symbol} is not trading"),
    R.UNKNOWN_SYMBOL: ("90104", "no such symbol {symbol}"),
    R.REGION_RESTRICTED: ("90105", "not available in your region"),
    R.REDUCE_ONLY_WOULD_INCREASE: ("90106", "reduce-only order would increase the position"),
    R.INVALID_PRICE: ("90107", "{field} {value} is not a multiple of {tick}"),
    R.INVALID_QUANTITY: ("90108", "bad quantity"),
    R.DUPLICATE_CLIENT_ID: ("90109", "client id in use"),
    R.ORDER_NOT_FOUND: ("90110", "no such order"),
    R.TOO_MANY_CONDITIONAL_ORDERS: ("90111", "too many stops"),
    R.NO_POSITION: ("90112", "no position on {symbol}"),
    R.NOT_SUPPORTED: (None, "toy does not support {what}"),
    R.NOT_MODIFIED: ("90113", "nothing to change"),
    R.INVALID_LEVERAGE: ("90114", "leverage {leverage} refused"),
    R.MARGIN_MODE_LOCKED: ("90115", "margin mode locked while a position is open"),
    R.RATE_LIMITED: ("10006", "Too many visits!"),
    R.VENUE_UNAVAILABLE: ("90503", "try again later"),
    R.AUTHENTICATION: ("10003", "API key is invalid."),
    R.OTHER: ("90000", "{what}"),
}
# A value with more decimals than the step or tick, or no number at all: one code for a price
# and a quantity (as Binance's -1111), refused by the adapter before sending.
PRECISION = ("90116", "too many decimals")
CODES = {reason: {code} for reason, (code, _) in ERRORS.items() if code is not None}
CODES[R.INVALID_PRICE].add(PRECISION[0])
CODES[R.INVALID_QUANTITY].add(PRECISION[0])
CAPABILITIES = Capabilities(
    amend_stop=True,
    position_stop=False,  # no trading-stop endpoint
    amend_limit=True,
    max_conditional_orders=None,
    margin_mode_per_symbol=False,  # Bybit's unified account: the account's mode, read only
)


# ---------------------------------------------------------------- the paper engine's dialect
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


TOY_DIALECT = register_paper(
    ToyDialect(
        venue=TOY,
        capabilities=CAPABILITIES,
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


# ---------------------------------------------------------------- ccxt's class for the toy
_EXACT = {
    "90100": ccxt.InvalidOrder,
    "90101": ccxt.InvalidOrder,
    "90102": ccxt.InsufficientFunds,
    "90103": ccxt.BadSymbol,
    "90104": ccxt.BadSymbol,
    "90105": ccxt.PermissionDenied,
    "90106": ccxt.InvalidOrder,
    "90107": ccxt.InvalidOrder,
    "90108": ccxt.InvalidOrder,
    "90109": ccxt.InvalidOrder,
    "90110": ccxt.OrderNotFound,
    "90111": ccxt.InvalidOrder,
    "90112": ccxt.BadRequest,
    "90113": ccxt.BadRequest,
    "90114": ccxt.BadRequest,
    "90115": ccxt.BadRequest,
    "90503": ccxt.ExchangeNotAvailable,
    "90000": ccxt.ExchangeError,
}
_DESCRIBE = {
    "id": "toy",
    "name": "Toy",
    "hostname": "toy.invalid",  # every {hostname} URL of Bybit's; the loopback rewrites them
    "exceptions": {"exact": _EXACT},
}


class ToyClient(ccxt.bybit):
    def describe(self) -> Any:
        return self.deep_extend(super().describe(), _DESCRIBE)


class ToyProClient(ccxt_pro.bybit):
    def describe(self) -> Any:
        return self.deep_extend(super().describe(), _DESCRIBE)


# ---------------------------------------------------------------- the ccxt adapter's dialect
def read_order(info: Mapping[str, Any]) -> Order:
    return read_v5_order(info, venue=TOY)


def read_toy_position(info: Mapping[str, Any]) -> VenuePosition | None:
    return read_position(info, venue=TOY)


# The toy's published limits, per second and UID: half of Bybit's, and no trading-stop.
PER_SECOND = {
    "order/create": 5,
    "order/amend": 5,
    "order/cancel": 5,
    "order/realtime": 25,
    "order/history": 25,
    "execution/list": 25,
    "position/list": 25,
    "position/set-leverage": 5,
    "account/wallet-balance": 25,
    "account/transaction-log": 12,
    "account/info": 25,
}

TOY_CODES: dict[str, RejectReason] = {
    **{code: reason for reason, (code, _) in ERRORS.items() if code is not None},
    "10003": R.AUTHENTICATION,
    "10004": R.AUTHENTICATION,
    "10005": R.AUTHENTICATION,
}


class ToyCcxtDialect(BybitCcxtDialect):
    """The toy through ccxt: Bybit's dialect with the toy's name, client, codes and
    capabilities (no position stop: `position_stop` is never asked for)."""

    venue = TOY
    display_name = "Toy linear"
    profile = attrs.evolve(
        BYBIT_PROFILE,
        venue=TOY,
        capabilities=CAPABILITIES,
        refusals=Refusals(
            unknown_symbol=("90104", "no such symbol"),
            not_a_number=PRECISION[0],
            quantity_not_positive="90108",
            price_not_positive="90107",
            stop_not_positive="90107",
            too_precise=PRECISION[0],
            off_step="90108",
            off_tick="90107",
            below_min_quantity="90108",
            order_not_found=("90110", "no such order"),
        ),
        read_order=read_order,
        read_position=read_toy_position,
    )
    codes: Mapping[str, RejectReason] = TOY_CODES
    limits = v5_limits(PER_SECOND, source="the toy's rate-limit table, PER_SECOND in toy_venue.py")
    has_testnet = False
    # Bybit's facts, but the margin mode is only read (the toy has no set-margin-mode)
    check_facts = attrs.evolve(
        BybitCcxtDialect.check_facts, margin_mode=("account_info__regular_margin",)
    )

    def client_class(self, *, websockets: bool) -> type[ccxt.Exchange]:
        return ToyProClient if websockets else ToyClient

    def reason_for(self, code: str, message: str) -> RejectReason | None:
        """`codes`, Bybit's text rules for 10001; 90116 is a price's or a quantity's."""
        if code == PRECISION[0]:
            return R.INVALID_PRICE if "price" in message.lower() else R.INVALID_QUANTITY
        return super().reason_for(code, message)

    async def own_check(self, check: Any, take_profit: Any, rules: Any, mark: Any) -> None:
        """The toy has no check of its own (no position stop to send twice)."""
        return None


TOY_CCXT_DIALECT = register_ccxt(ToyCcxtDialect())


# ---------------------------------------------------------------- the loopback dialect
class ToyLoopbackDialect(BybitLoopbackDialect):
    """Bybit's v5 wire format over the engine, as the toy answers it: without the
    trading-stop endpoint (a request to it is answered 404, as an unknown path)."""

    venue = TOY
    ccxt_id = "toy"
    lacks = frozenset({("POST", "/v5/position/trading-stop")})


register_dialect(ToyLoopbackDialect)

# ---------------------------------------------------------------- its corpus
corpus.register(TOY.value, Path(__file__).parent / "toy_corpus")
