"""The simulated venue: one account's commands and queries, with no transport in front of it.

One account in one-way mode on one venue (Binance USDⓈ-M, Bybit linear, or any venue with a
registered dialect, `venues/`): markets, a USDT wallet, positions, orders, mark prices. Every
command returns `Accepted` or the venue's own `Rejected`; bad input is a rejection, never an
exception. The engine orchestrates: `validation` checks a command (with the dialect's codes),
`matching` fills, triggers and keeps the books. It never asks a venue's name.
"""

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from decimal import Decimal

from tradecore.adapters.paper.books import PositionRecord
from tradecore.adapters.paper.faults import Op
from tradecore.adapters.paper.matching import TickCallback
from tradecore.adapters.paper.resting import (
    DEFAULT_FUNDING_RATE,
    FUNDING_INTERVAL,
    ONE,
    EngineOrder,
    EnginePosition,
    Trail,
)
from tradecore.adapters.paper.validation import Validation
from tradecore.adapters.paper.venues import PaperDialect
from tradecore.domain.leverage import LeverageTier, MarginMode
from tradecore.domain.model import OrderSide, Side
from tradecore.domain.numbers import ZERO
from tradecore.domain.orders import MarkCandle, Order, OrderStatus, OrderType, VenuePosition
from tradecore.domain.pnl import SETTLE_ASSET, FundingPayment
from tradecore.domain.pnl import Fill as TradeFill
from tradecore.domain.precision import MarketRules
from tradecore.ports.exchange import Accepted, Applied, Rejected, RejectReason

R = RejectReason
Result = Accepted | Rejected

__all__ = ["DEFAULT_FUNDING_RATE", "FUNDING_INTERVAL", "Result", "VenueEngine"]


class VenueEngine(Validation):
    """One simulated account on one venue's dialect."""

    @property
    def dialect(self) -> PaperDialect:
        """The venue's facts and answers this account follows (the same as `profile`)."""
        return self.profile

    @property
    def markets(self) -> Mapping[str, MarketRules]:
        return dict(self._markets)

    def mark(self, symbol: str) -> Decimal | None:
        return self._marks.get(symbol)

    def mark_candles(self, symbol: str, since: datetime, minutes: int = 1) -> list[MarkCandle]:
        """The symbol's mark candles of `minutes` each from `since` to now (`history`)."""
        return self.history.candles(symbol, since, self.now(), minutes)

    def fills(self, symbol: str, since: datetime) -> list[TradeFill]:
        """The account's fills on `symbol` at or after `since`, oldest first."""
        self.settle_funding()
        return [
            TradeFill(
                symbol=f.symbol,
                order_id=f.order_id,
                client_order_id=f.client_order_id,
                side=f.side,
                price=f.price,
                quantity=f.quantity,
                fee=f.fee,
                fee_asset=SETTLE_ASSET,
                at=f.at,
                trade_id=f.trade_id,
            )
            for f in self.books.fills
            if f.symbol == symbol and f.at >= since
        ]

    def funding(self, symbol: str, since: datetime) -> list[FundingPayment]:
        """Funding settled on `symbol` at or after `since`, oldest first."""
        self.settle_funding()
        return [
            FundingPayment(
                symbol=f.symbol,
                amount=f.amount,
                asset=SETTLE_ASSET,
                at=f.at,
                payment_id=f.payment_id,
            )
            for f in self.books.funding
            if f.symbol == symbol and f.at >= since
        ]

    def positions(self) -> list[VenuePosition]:
        self.settle_funding()
        return [self._report(position) for position in self._positions.values()]

    def position(self, symbol: str) -> VenuePosition | None:
        position = self._positions.get(symbol)
        return None if position is None else self._report(position)

    def position_record(self, symbol: str) -> PositionRecord | None:
        """The books' record of the position open on `symbol` now (None when flat)."""
        position = self._positions.get(symbol)
        return None if position is None else position.record

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        symbols = self._open if symbol is None else {symbol: self._open.get(symbol, {})}
        return [o.snapshot(self.venue) for orders in symbols.values() for o in orders.values()]

    def order(self, order_id: str) -> Order | None:
        found = self._orders.get(order_id)
        return None if found is None else found.snapshot(self.venue)

    def listed(self, order: Order | None) -> Order | None:
        """`order` as a look-up by id or client id shows it: missing while `listing_lag` has
        not passed since its creation on a venue whose create only acknowledges."""
        if order is None or not self.listing_lag or not self.profile.acknowledges_only:
            return order
        created = order.created_at
        return order if created is None or self.now() - created >= self.listing_lag else None

    def all_orders(self) -> list[Order]:
        return [order.snapshot(self.venue) for order in self._orders.values()]

    def order_by_client_id(self, symbol: str, client_order_id: str) -> Order | None:
        """The latest order with this client id: open, filled, or closed within retention."""
        for order_id in reversed(self._by_client.get(client_order_id, ())):
            order = self._orders[order_id]
            if order.symbol != symbol:
                continue
            if order.status.is_open or order.filled > ZERO:
                return order.snapshot(self.venue)
            closed = order.closed_at or order.updated_at
            if self.now() - closed <= self.closed_order_retention:
                return order.snapshot(self.venue)
            return None
        return None

    def subscribe(self, symbols: Iterable[str], callback: TickCallback) -> Callable[[], None]:
        """Call `callback(symbol, mark, at)` on every tick of `symbols`; returns unsubscribe."""
        chosen = tuple(dict.fromkeys(symbols))
        for symbol in chosen:
            self._subscribers.setdefault(symbol, []).append(callback)

        def unsubscribe() -> None:
            for symbol in chosen:
                listeners = self._subscribers.get(symbol, [])
                if callback in listeners:
                    listeners.remove(callback)

        return unsubscribe

    def set_symbol_available(self, symbol: str, available: bool) -> None:
        """A symbol taken out of trading (opening refused, reducing allowed) or back in."""
        rules = self._markets[symbol]
        self._markets[symbol] = MarketRules(
            symbol=rules.symbol,
            tick_size=rules.tick_size,
            step_size=rules.step_size,
            min_quantity=rules.min_quantity,
            min_notional=rules.min_notional,
            max_leverage=rules.max_leverage,
            active=available,
        )

    def restrict_region(self, symbol: str, restricted: bool = True) -> None:
        """Refuse every order on `symbol` as the venue does for the account's region."""
        if restricted:
            self._restricted.add(symbol)
        else:
            self._restricted.discard(symbol)

    def set_wallet(self, amount: Decimal) -> None:
        self._wallet = amount

    def set_leverage(self, symbol: str, leverage: Decimal) -> None:
        self._leverage[symbol] = min(leverage, self._markets[symbol].max_leverage)

    def change_leverage(self, symbol: str, leverage: Decimal) -> Applied | Rejected:
        """The account's request to change the symbol's leverage (see `margin.py`)."""
        forced = self._forced(Op.SET_LEVERAGE, symbol)
        return forced or self.margin.change_leverage(symbol, leverage)

    def change_margin_mode(self, symbol: str, mode: MarginMode) -> Applied | Rejected:
        forced = self._forced(Op.SET_MARGIN_MODE, symbol)
        position_open = symbol in self._positions or bool(self._open.get(symbol))
        return forced or self.margin.change_mode(symbol, mode, position_open=position_open)

    def leverage(self, symbol: str) -> Decimal | None:
        return self._leverage.get(symbol)

    def margin_mode(self, symbol: str) -> MarginMode | None:
        return self.margin.mode(symbol) if symbol in self._markets else None

    def leverage_tiers(self, symbol: str) -> tuple[LeverageTier, ...]:
        return self.margin.tiers(symbol) if symbol in self._markets else ()

    def place_market(
        self,
        symbol: str,
        side: object,
        quantity: object,
        *,
        client_order_id: str | None = None,
        reduce_only: bool = False,
        position_idx: int = 0,
        origin: str = "api",
        stop_loss: object | None = None,
    ) -> Result:
        """A market order; `stop_loss` is the stop an entry carries (Bybit `/v5/order/create`
        `stopLoss`, `tpslMode=Full`): checked with the order, set on the position (origin
        "entry") the instant the order fills."""
        op = Op.MARKET_ORDER
        checked = self._check_order(
            op,
            symbol,
            side,
            quantity,
            client_order_id,
            position_idx,
            opening=not reduce_only,
            origin=origin,
        )
        if isinstance(checked, Rejected):
            return checked
        rules, order_side, qty = checked
        mark = self._marks[symbol]
        problem = self._check_exposure(rules, order_side, qty, mark, reduce_only=reduce_only)
        if problem is not None:
            return self._refuse(op, symbol, problem)
        carried = self._carried_stop(symbol, rules, order_side, mark, stop_loss)
        if isinstance(carried, Rejected):
            return self._refuse(op, symbol, carried)
        order = self._new_order(
            symbol=symbol,
            side=order_side,
            type=OrderType.MARKET,
            quantity=qty,
            price=None,
            trigger=None,
            client_order_id=client_order_id,
            reduce_only=reduce_only,
            close_position=False,
            position_idx=position_idx,
            origin=origin,
        )
        order.stop_loss = carried  # listed with the order, as Bybit lists its `stopLoss`
        fill = self._fillable(symbol, order, self._fill_ratio(symbol, origin))
        if fill > ZERO:
            self._fill(order, fill, self._slipped(mark, order_side), reason=origin)
        self._close_order(order, OrderStatus.FILLED if order.filled == qty else OrderStatus.EXPIRED)
        if carried is not None and fill > ZERO and symbol in self._positions:
            self.set_position_stop(symbol, carried, origin="entry")
        return Accepted(order=order.snapshot(self.venue))

    def _carried_stop(
        self,
        symbol: str,
        rules: MarketRules,
        order_side: OrderSide,
        mark: Decimal,
        stop_loss: object | None,
    ) -> Decimal | Rejected | None:
        """The stop an entry carries, checked as the venue checks it with the order: a
        price on the tick, on the losing side of the mark (Bybit refuses the whole order)."""
        if stop_loss is None:
            return None
        if not self.profile.capabilities.entry_stop:
            return self._reason(R.NOT_SUPPORTED, what="a stop-loss carried by an order")
        trigger = self._check_price(rules, stop_loss, "stopLoss")
        if isinstance(trigger, Rejected):
            return trigger
        side = Side.LONG if order_side is OrderSide.BUY else Side.SHORT
        past = trigger >= mark if side is Side.LONG else trigger <= mark
        return self.profile.position_stop_would_trigger(side, trigger, mark) if past else trigger

    def place_limit(
        self,
        symbol: str,
        side: object,
        quantity: object,
        price: object,
        *,
        client_order_id: str | None = None,
        reduce_only: bool = True,
        position_idx: int = 0,
        origin: str = "api",
    ) -> Result:
        op = Op.LIMIT_ORDER
        checked = self._check_order(
            op,
            symbol,
            side,
            quantity,
            client_order_id,
            position_idx,
            opening=not reduce_only,
            origin=origin,
        )
        if isinstance(checked, Rejected):
            return checked
        rules, order_side, qty = checked
        limit = self._check_price(rules, price, "price")
        if isinstance(limit, Rejected):
            return self._refuse(op, symbol, limit)
        problem = self._check_exposure(rules, order_side, qty, limit, reduce_only=reduce_only)
        if problem is not None:
            return self._refuse(op, symbol, problem)
        order = self._new_order(
            symbol=symbol,
            side=order_side,
            type=OrderType.LIMIT,
            quantity=qty,
            price=limit,
            trigger=None,
            client_order_id=client_order_id,
            reduce_only=reduce_only,
            close_position=False,
            position_idx=position_idx,
            origin=origin,
        )
        mark = self._marks[symbol]
        crosses = limit >= mark if order_side is OrderSide.BUY else limit <= mark
        if crosses:  # marketable: takes at the mark, as a taker would
            fill = self._fillable(symbol, order, ONE)
            if fill > ZERO:
                self._fill(order, fill, mark, reason=origin)
            self._close_order(
                order, OrderStatus.FILLED if order.filled == qty else OrderStatus.EXPIRED
            )
        else:
            self._rest(order, limit)
        return Accepted(order=order.snapshot(self.venue))

    def place_stop(
        self,
        symbol: str,
        side: object,
        quantity: object,
        trigger_price: object,
        *,
        client_order_id: str | None = None,
        reduce_only: bool = True,
        close_position: bool = False,
        position_idx: int = 0,
        origin: str = "api",
    ) -> Result:
        """A stop-market order that fires when the mark crosses `trigger_price`."""
        op = Op.STOP_ORDER
        if close_position and not self.profile.close_position_stops:
            return self._refuse(
                op, symbol, self._reason(R.NOT_SUPPORTED, what="closePosition stops")
            )
        checked = self._check_order(
            op,
            symbol,
            side,
            quantity,
            client_order_id,
            position_idx,
            opening=not (reduce_only or close_position),
            origin=origin,
            whole_position=close_position,
        )
        if isinstance(checked, Rejected):
            return checked
        rules, order_side, qty = checked
        trigger = self._check_price(rules, trigger_price, "stopPrice")
        if isinstance(trigger, Rejected):
            return self._refuse(op, symbol, trigger)
        problem = self._stop_problem(symbol, order_side, trigger, reduce_only or close_position)
        if problem is None and close_position and self._has_close_position_stop(symbol, order_side):
            problem = self._reason(R.STOP_ALREADY_EXISTS)
        if problem is not None:
            return self._refuse(op, symbol, problem)
        order = self._new_order(
            symbol=symbol,
            side=order_side,
            type=OrderType.STOP_MARKET,
            quantity=ZERO if close_position else qty,
            price=None,
            trigger=trigger,
            client_order_id=client_order_id,
            reduce_only=reduce_only or close_position,
            close_position=close_position,
            position_idx=position_idx,
            origin=origin,
        )
        self._rest(order, trigger)
        return Accepted(order=order.snapshot(self.venue))

    def place_take_profit(
        self,
        symbol: str,
        side: object,
        quantity: object,
        trigger_price: object,
        *,
        client_order_id: str | None = None,
        reduce_only: bool = True,
        close_position: bool = False,
        position_idx: int = 0,
        origin: str = "api",
    ) -> Result:
        """A take-profit-market order: fires when the mark moves to `trigger_price` the
        position's way (a sell when it rises to it, a buy when it falls to it)."""
        return self._place_conditional(
            OrderType.TAKE_PROFIT,
            symbol,
            side,
            quantity,
            trigger_price,
            client_order_id=client_order_id,
            reduce_only=reduce_only,
            close_position=close_position,
            position_idx=position_idx,
            origin=origin,
        )

    def place_trailing_stop(
        self,
        symbol: str,
        side: object,
        quantity: object,
        *,
        rate: Decimal | None = None,
        distance: Decimal | None = None,
        activation: object | None = None,
        client_order_id: str | None = None,
        position_idx: int = 0,
        origin: str = "api",
    ) -> Result:
        """A reduce-only trailing-stop-market order: from `activation` (at once if None) it
        follows the best mark and fires once the mark comes back by `rate` (a fraction:
        Binance's callbackRate / 100) or by `distance` (Bybit's trailingStop)."""
        if (rate is None) == (distance is None) or (rate or distance or ZERO) <= ZERO:
            return self._refuse(
                Op.STOP_ORDER,
                symbol,
                self._reason(R.OTHER, what="a trailing stop needs one callback rate or distance"),
            )
        return self._place_conditional(
            OrderType.TRAILING_STOP,
            symbol,
            side,
            quantity,
            activation,
            client_order_id=client_order_id,
            reduce_only=True,
            close_position=False,
            position_idx=position_idx,
            origin=origin,
            trail=(rate, distance),
        )

    def _place_conditional(
        self,
        kind: OrderType,
        symbol: str,
        side: object,
        quantity: object,
        trigger_price: object | None,
        *,
        client_order_id: str | None,
        reduce_only: bool,
        close_position: bool,
        position_idx: int,
        origin: str,
        trail: tuple[Decimal | None, Decimal | None] | None = None,
    ) -> Result:
        op = Op.STOP_ORDER
        checked = self._check_order(
            op,
            symbol,
            side,
            quantity,
            client_order_id,
            position_idx,
            opening=not (reduce_only or close_position),
            origin=origin,
            whole_position=close_position,
        )
        if isinstance(checked, Rejected):
            return checked
        rules, order_side, qty = checked
        trigger: Decimal | None = None
        if trigger_price is not None or trail is None:
            level = self._check_price(rules, trigger_price, "triggerPrice")
            if isinstance(level, Rejected):
                return self._refuse(op, symbol, level)
            trigger = level
        problem = self._profit_problem(symbol, order_side, trigger, reduce_only or close_position)
        if problem is not None:
            return self._refuse(op, symbol, problem)
        order = self._new_order(
            symbol=symbol,
            side=order_side,
            type=kind,
            quantity=ZERO if close_position else qty,
            price=None,
            trigger=trigger if trail is None else None,
            client_order_id=client_order_id,
            reduce_only=reduce_only or close_position,
            close_position=close_position,
            position_idx=position_idx,
            origin=origin,
        )
        if trail is not None:
            order.trail = Trail(trigger, *trail)
        self._rest(order, trigger if trail is None and trigger is not None else ZERO)
        if trail is not None:
            self._trail(symbol, self._index[symbol], self._marks[symbol])
        return Accepted(order=order.snapshot(self.venue))

    def set_position_stop(
        self, symbol: str, trigger_price: object | None, *, origin: str = "api"
    ) -> Result:
        """Attach, move in place, or (None) remove the position's own stop (Bybit trading-stop)."""
        op = Op.POSITION_STOP
        problem = self._entry_problem(op, symbol, origin, opening=False)
        if problem is None and not self.profile.capabilities.position_stop:
            problem = self._reason(R.NOT_SUPPORTED, what="position-attached stops")
        position = self._positions.get(symbol) if problem is None else None
        if problem is None and position is None:
            problem = self._reason(R.NO_POSITION, symbol=symbol)
        if problem is not None:
            return self._refuse(op, symbol, problem)
        assert position is not None
        existing = self._position_stops.get(symbol)
        if trigger_price is None:
            if existing is None:
                return self._refuse(op, symbol, self._reason(R.NOT_MODIFIED))
            self._cancel_by(existing, origin)
            return Accepted(order=existing.snapshot(self.venue))
        trigger = self._check_price(self._markets[symbol], trigger_price, "stopLoss")
        if isinstance(trigger, Rejected):
            return self._refuse(op, symbol, trigger)
        problem = self._position_stop_problem(position, trigger)
        if problem is None and existing is not None and existing.trigger_price == trigger:
            problem = self._reason(R.NOT_MODIFIED)
        if problem is not None:
            return self._refuse(op, symbol, problem)
        if existing is not None:
            self._move(existing, trigger=trigger, origin=origin)
            return Accepted(order=existing.snapshot(self.venue))
        order = self._new_order(
            symbol=symbol,
            side=position.side.exit,
            type=OrderType.POSITION_STOP,
            quantity=ZERO,
            price=None,
            trigger=trigger,
            client_order_id=None,
            reduce_only=True,
            close_position=True,
            position_idx=0,
            origin=origin,
        )
        self._position_stops[symbol] = order
        self._rest(order, trigger)
        return Accepted(order=order.snapshot(self.venue))

    def amend(
        self,
        symbol: str,
        order_id: str,
        *,
        trigger_price: object | None = None,
        price: object | None = None,
        origin: str = "api",
    ) -> Result:
        """Move a resting order in place (a stop's trigger, a limit's price)."""
        op = Op.AMEND
        problem = self._entry_problem(op, symbol, origin, opening=False)
        order = self._open_order(symbol, order_id) if problem is None else None
        if problem is None and order is None:
            problem = self._reason(R.ORDER_NOT_FOUND)
        if problem is not None:
            return self._refuse(op, symbol, problem)
        assert order is not None
        if order.type is OrderType.POSITION_STOP:
            return self.set_position_stop(symbol, trigger_price, origin=origin)
        if order.type is OrderType.STOP_MARKET:
            return self._amend_stop(order, trigger_price, origin)
        if order.type is not OrderType.LIMIT:
            return self._refuse(op, symbol, self._reason(R.NOT_SUPPORTED, what="amend"))
        return self._amend_limit(order, price, origin)

    def cancel(self, symbol: str, order_id: str, *, origin: str = "api") -> Result:
        op = Op.CANCEL
        problem = self._entry_problem(op, symbol, origin, opening=False)
        order = self._open_order(symbol, order_id) if problem is None else None
        if problem is None and order is None:
            problem = self._reason(R.ORDER_NOT_FOUND)
        if problem is not None:
            return self._refuse(op, symbol, problem)
        assert order is not None
        self._cancel_by(order, origin)
        return Accepted(order=order.snapshot(self.venue))

    def _open_order(self, symbol: str, order_id: object) -> EngineOrder | None:
        return self._open[symbol].get(order_id) if isinstance(order_id, str) else None

    def manual_close(self, symbol: str) -> Result:
        """Someone closes the position by hand on the venue's website."""
        position = self._positions.get(symbol)
        if position is None:
            return self._reason(R.NO_POSITION, symbol=symbol)
        return self.place_market(
            symbol, position.side.exit, position.size, reduce_only=True, origin="manual"
        )

    def _amend_stop(self, order: EngineOrder, raw_trigger: object | None, origin: str) -> Result:
        op = Op.AMEND
        if not self.profile.capabilities.amend_stop:
            return self._refuse(
                op,
                order.symbol,
                self._reason(
                    R.NOT_SUPPORTED,
                    what="amending a conditional order; "
                    "create the new stop, then cancel the old one",
                ),
            )
        trigger = self._check_price(self._markets[order.symbol], raw_trigger, "triggerPrice")
        if isinstance(trigger, Rejected):
            return self._refuse(op, order.symbol, trigger)
        mark = self._marks[order.symbol]
        if (trigger >= mark) if order.side is OrderSide.SELL else (trigger <= mark):
            return self._refuse(
                op, order.symbol, self.profile.would_trigger(order.side, trigger, mark)
            )
        if trigger == order.trigger_price:
            return self._refuse(op, order.symbol, self.profile.stop_unchanged())
        self._move(order, trigger=trigger, origin=origin)
        return Accepted(order=order.snapshot(self.venue))

    def _amend_limit(self, order: EngineOrder, raw_price: object | None, origin: str) -> Result:
        op = Op.AMEND
        if not self.profile.capabilities.amend_limit:
            return self._refuse(op, order.symbol, self._reason(R.NOT_SUPPORTED, what="amend"))
        price = self._check_price(self._markets[order.symbol], raw_price, "price")
        if isinstance(price, Rejected):
            return self._refuse(op, order.symbol, price)
        self._move(order, price=price, origin=origin)
        mark = self._marks[order.symbol]
        if (price >= mark) if order.side is OrderSide.BUY else (price <= mark):
            self._fill_limits(order.symbol, self._index[order.symbol], mark)
        return Accepted(order=order.snapshot(self.venue))

    def _report(self, position: EnginePosition) -> VenuePosition:
        stop = self._position_stops.get(position.symbol)
        return VenuePosition(
            venue=self.venue,
            symbol=position.symbol,
            side=position.side,
            quantity=position.size,
            entry_price=position.entry,
            mark_price=self._marks.get(position.symbol),
            position_idx=0,
            stop_price=None if stop is None else stop.trigger_price,
            liquidation_price=position.liquidation,
            unrealized_pnl=self._unrealized(position),
        )
