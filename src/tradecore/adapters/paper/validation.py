"""Validation: what the simulated venue refuses, and with which code and text.

Every command is checked here before it reaches matching: the symbol, the account's state,
quantities and prices against the market's rules, client ids, reduce-only and margin, stops on
the right side of the mark, the conditional-order cap. Bad input is a rejection, never an
exception. Which code and text a refusal carries is the venue's dialect's (`venues/`); the
checks themselves are the same for every venue.
"""

import re
from decimal import Decimal, InvalidOperation

from tradecore.adapters.paper.books import Refusal
from tradecore.adapters.paper.faults import FaultKind, Op
from tradecore.adapters.paper.matching import Matching
from tradecore.adapters.paper.resting import EnginePosition
from tradecore.domain.model import OrderSide, Side
from tradecore.domain.numbers import ZERO
from tradecore.domain.orders import OrderType
from tradecore.domain.precision import MarketRules
from tradecore.ports.exchange import Rejected, RejectReason

R = RejectReason
_CLIENT_ID = re.compile(r"^[A-Za-z0-9_-]{1,36}$")
# Above any real contract's maximum; keeps Decimal arithmetic away from overflow.
_LIMIT = Decimal(10) ** 12
_REJECT_KINDS = frozenset({FaultKind.REJECT})


def _finite(value: object) -> Decimal | None:
    """`value` as a finite Decimal, or None for NaN, infinities, booleans and non-numbers."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float):
        value = repr(value)
    try:
        result = value if isinstance(value, Decimal) else Decimal(value)  # type: ignore[arg-type]
    except (InvalidOperation, TypeError, ValueError):
        return None
    return result if result.is_finite() else None


def _multiple(value: Decimal, unit: Decimal) -> bool:
    try:
        return value % unit == ZERO
    except InvalidOperation:  # the quotient has more digits than the context holds
        return False


def _exponent(value: Decimal) -> int:
    exponent = value.normalize().as_tuple().exponent
    return exponent if isinstance(exponent, int) else 0


class Validation(Matching):
    """The checks every command passes before it changes the account."""

    def _forced(self, op: Op, symbol: str) -> Rejected | None:
        """A refusal a test scripted for this request (`Fault.reject`), if any."""
        forced = self.faults.take(op, symbol, _REJECT_KINDS)
        if forced is None or forced.reason is None:
            return None
        return self._reason(forced.reason, code=forced.code, message=forced.message)

    def _check_order(
        self,
        op: Op,
        symbol: str,
        side: object,
        quantity: object,
        client_order_id: str | None,
        position_idx: int,
        *,
        opening: bool,
        origin: str,
        whole_position: bool = False,
    ) -> tuple[MarketRules, OrderSide, Decimal] | Rejected:
        problem = self._entry_problem(op, symbol, origin, opening=opening)
        if problem is not None:
            return self._refuse(op, symbol, problem)
        rules = self._markets[symbol]
        order_side = self._side(side)
        result: Rejected | Decimal
        if order_side is None:
            result = self.profile.invalid_side(side)
        elif whole_position:  # a closePosition stop: the venue takes the position's size
            result = ZERO
        else:
            result = self._check_quantity(rules, quantity)
        if not isinstance(result, Rejected):
            result = self._check_identity(client_order_id, position_idx) or result
        if isinstance(result, Rejected):
            return self._refuse(op, symbol, result)
        assert order_side is not None
        return rules, order_side, result

    def _entry_problem(self, op: Op, symbol: str, origin: str, *, opening: bool) -> Rejected | None:
        if origin == "api":
            forced = self.faults.take(op, symbol, _REJECT_KINDS)
            if forced is not None and forced.reason is not None:
                return self._reason(
                    forced.reason,
                    code=forced.code,
                    message=forced.message,
                    symbol=symbol,
                    trigger="?",
                    mark="?",
                )
        if not isinstance(symbol, str) or symbol not in self._markets:
            return self._reason(R.UNKNOWN_SYMBOL, symbol=symbol)
        if symbol in self._restricted:
            return self._reason(R.REGION_RESTRICTED, symbol=symbol)
        if opening and not self._markets[symbol].active:
            return self._reason(R.SYMBOL_UNAVAILABLE, symbol=symbol)
        if symbol not in self._marks:
            return self._reason(R.VENUE_UNAVAILABLE, symbol=symbol)
        return None

    @staticmethod
    def _side(side: object) -> OrderSide | None:
        if isinstance(side, OrderSide):
            return side
        try:
            return OrderSide(str(side).lower())
        except ValueError:
            return None

    def _check_quantity(self, rules: MarketRules, raw: object) -> Decimal | Rejected:
        dialect = self.profile
        qty = _finite(raw)
        if qty is None:
            return dialect.quantity_unreadable()
        if qty <= ZERO:
            return self._reason(R.INVALID_QUANTITY)
        if qty > _LIMIT:
            return dialect.quantity_too_large()
        if not _multiple(qty, rules.step_size):
            if _exponent(qty) < _exponent(rules.step_size):
                return dialect.quantity_too_precise()
            return dialect.quantity_off_step()
        if qty < rules.min_quantity:
            return dialect.quantity_below_minimum()
        return qty

    def _check_price(self, rules: MarketRules, raw: object, field: str) -> Decimal | Rejected:
        dialect = self.profile
        price = _finite(raw)
        stop = field != "price"
        if price is None:
            return dialect.price_unreadable(field)
        if price <= ZERO:
            return dialect.price_not_positive(field, stop=stop)
        if price > _LIMIT:
            return dialect.price_too_large(field, stop=stop)
        if not _multiple(price, rules.tick_size):
            finer = _exponent(price) < _exponent(rules.tick_size)
            return dialect.price_off_tick(field, price, rules.tick_size, too_precise=finer)
        return price

    def _check_identity(self, client_order_id: str | None, position_idx: int) -> Rejected | None:
        if client_order_id is not None:
            if not isinstance(client_order_id, str) or not _CLIENT_ID.match(client_order_id):
                return self.profile.invalid_client_id()
            used = (
                self._open_client_ids
                if self.profile.client_ids_free_once_closed
                else self._by_client
            )
            if client_order_id in used:
                return self._reason(R.DUPLICATE_CLIENT_ID)
        return self.profile.position_index_refused(position_idx)

    def _check_exposure(
        self,
        rules: MarketRules,
        side: OrderSide,
        qty: Decimal,
        price: Decimal,
        *,
        reduce_only: bool,
    ) -> Rejected | None:
        position = self._positions.get(rules.symbol)
        reducing = position is not None and position.side.exit is side
        if reduce_only:
            flat = self.profile.reduce_only_without_position() if position is None else None
            if flat is not None:
                return flat
            return None if reducing else self._reason(R.REDUCE_ONLY_WOULD_INCREASE)
        if qty * price < rules.min_notional:
            return self._reason(R.BELOW_MIN_NOTIONAL, min_notional=rules.min_notional)
        opening = qty - (position.size if reducing and position is not None else ZERO)
        needed = max(ZERO, opening) * price / self._leverage[rules.symbol]
        fee = qty * price * self.profile.taker_fee
        if needed + fee > self.balance().free:
            return self._reason(R.INSUFFICIENT_BALANCE)
        return None

    def _stop_problem(
        self, symbol: str, side: OrderSide, trigger: Decimal, reduce_only: bool
    ) -> Rejected | None:
        mark = self._marks[symbol]
        if (trigger >= mark) if side is OrderSide.SELL else (trigger <= mark):
            return self.profile.would_trigger(side, trigger, mark)
        position = self._positions.get(symbol)
        if reduce_only and position is not None and position.side.entry is side:
            return self._reason(R.REDUCE_ONLY_WOULD_INCREASE)
        return self._cap_problem(symbol)

    def _profit_problem(
        self, symbol: str, side: OrderSide, trigger: Decimal | None, reduce_only: bool
    ) -> Rejected | None:
        """A take-profit (or a trailing stop's activation) on the wrong side of the mark
        would fire at once: refused as the venue refuses a stop past the mark."""
        mark = self._marks[symbol]
        if trigger is not None and (
            (trigger <= mark) if side is OrderSide.SELL else (trigger >= mark)
        ):
            opposite = OrderSide.BUY if side is OrderSide.SELL else OrderSide.SELL
            return self.profile.would_trigger(opposite, trigger, mark)
        position = self._positions.get(symbol)
        if reduce_only and position is not None and position.side.entry is side:
            return self._reason(R.REDUCE_ONLY_WOULD_INCREASE)
        return self._cap_problem(symbol)

    def _cap_problem(self, symbol: str) -> Rejected | None:
        """The venue's cap on open conditional orders (per symbol or per account), if reached."""
        cap = self.profile.conditional_cap
        per_symbol = self.profile.conditional_cap_per_symbol
        stops = self._stops_open[symbol] if per_symbol else self._stops_total
        if cap is not None and stops >= cap:
            return self._reason(R.TOO_MANY_CONDITIONAL_ORDERS)
        return None

    def _position_stop_problem(self, position: EnginePosition, trigger: Decimal) -> Rejected | None:
        mark = self._marks[position.symbol]
        past = trigger >= mark if position.side is Side.LONG else trigger <= mark
        return (
            self.profile.position_stop_would_trigger(position.side, trigger, mark) if past else None
        )

    def _has_close_position_stop(self, symbol: str, side: OrderSide) -> bool:
        return any(
            order.close_position and order.side is side and order.type is OrderType.STOP_MARKET
            for order in self._open[symbol].values()
        )

    def _reason(
        self,
        reason: RejectReason,
        *,
        code: str | None = None,
        message: str | None = None,
        **detail: object,
    ) -> Rejected:
        return self.profile.refusal(reason, code=code, message=message, **detail)

    def _refuse(self, op: Op, symbol: object, rejected: Rejected) -> Rejected:
        plain = symbol if isinstance(symbol, str) else None
        mark = None if plain is None else self._marks.get(plain)
        self.books.refusals.append(
            Refusal(at=self.now(), op=op.value, symbol=plain, rejected=rejected, mark=mark)
        )
        return rejected
