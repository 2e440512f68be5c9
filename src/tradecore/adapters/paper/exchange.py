"""The exchange port in front of the simulated venue, with the transport's faults.

`PaperExchange` is what tradecore talks to in paper trading and tests. It applies the
transport faults scripted on the engine's `FaultPlan` (a lost response, a timeout, a network
error, a rate limit, a 5xx) and an optional round-trip latency on the clock, and otherwise
hands every request to the engine.
"""

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import TypeVar

from tradecore.adapters.paper.engine import Result, VenueEngine
from tradecore.adapters.paper.faults import TRANSPORT_KINDS, Fault, FaultKind, Op
from tradecore.adapters.readback import ReadBack, read_back
from tradecore.domain.leverage import LeverageTier, MarginMode
from tradecore.domain.model import OrderSide, Venue
from tradecore.domain.numbers import ZERO
from tradecore.domain.orders import Balance, MarkCandle, MarkTick, Order, VenuePosition
from tradecore.domain.pnl import Fill, FundingPayment
from tradecore.domain.precision import MarketRules
from tradecore.ports.clock import Clock
from tradecore.ports.exchange import (
    Accepted,
    Applied,
    Capabilities,
    ExchangeUnavailable,
    Outcome,
    Rejected,
    RejectReason,
    SettingOutcome,
    Unknown,
)

T = TypeVar("T")


class MarkStream:
    """Mark ticks of some symbols, subscribed from construction so no tick is missed.

    It opens with each symbol's current mark, as the venues' streams do whether the mark
    moves or not: Binance pushes `<symbol>@markPrice` "every 3 seconds or every second"
    (developers.binance.com, USDⓈ-M futures, websocket market streams, "Mark Price
    Stream"); Bybit's `tickers.{symbol}` answers a subscription with a snapshot, then
    deltas (bybit-exchange.github.io/docs/v5/websocket/public/ticker). A subscriber never
    waits for the next move to learn the mark (simulator, binance seed 2099: a restart's
    trailing waited minutes on a flat mark for a move a crash had cut off)."""

    def __init__(self, engine: VenueEngine, symbols: Sequence[str]) -> None:
        self._queue: asyncio.Queue[MarkTick | None] = asyncio.Queue()
        self._venue = engine.venue
        self._unsubscribe = engine.subscribe(symbols, self._on_tick)
        self._closed = False
        now = engine.now()
        for symbol in dict.fromkeys(symbols):
            mark = engine.mark(symbol)
            if mark is not None:
                self._on_tick(symbol, mark, now)

    def _on_tick(self, symbol: str, mark: Decimal, at: datetime) -> None:
        self._queue.put_nowait(MarkTick(venue=self._venue, symbol=symbol, mark=mark, at=at))

    def __aiter__(self) -> "MarkStream":
        return self

    async def __anext__(self) -> MarkTick:
        if self._closed and self._queue.empty():
            raise StopAsyncIteration
        tick = await self._queue.get()
        if tick is None:
            raise StopAsyncIteration
        return tick

    async def aclose(self) -> None:
        self.close()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._unsubscribe()
            self._queue.put_nowait(None)


class PaperExchange:
    """The `Exchange` port over a `VenueEngine`."""

    def __init__(
        self,
        engine: VenueEngine,
        *,
        clock: Clock,
        latency: float = 0.0,
        read_back: ReadBack | None = None,
    ) -> None:
        self.engine = engine
        self._clock = clock
        self._latency = latency
        self._read_back = read_back or ReadBack()
        self._streams: list[MarkStream] = []

    @property
    def venue(self) -> Venue:
        return self.engine.venue

    @property
    def capabilities(self) -> Capabilities:
        return self.engine.profile.capabilities

    # ----------------------------------------------------------------- queries

    async def load_markets(self) -> Mapping[str, MarketRules]:
        return await self._query(Op.FETCH_MARKETS, None, lambda: self.engine.markets)

    async def fetch_balance(self) -> Balance:
        return await self._query(Op.FETCH_BALANCE, None, self.engine.balance)

    async def fetch_positions(self) -> Sequence[VenuePosition]:
        return await self._query(Op.FETCH_POSITIONS, None, self.engine.positions)

    async def fetch_open_orders(self, symbol: str | None = None) -> Sequence[Order]:
        return await self._query(
            Op.FETCH_OPEN_ORDERS, symbol, lambda: self.engine.open_orders(symbol)
        )

    async def fetch_order_by_client_id(self, symbol: str, client_order_id: str) -> Order | None:
        return await self._query(
            Op.FETCH_ORDER,
            symbol,
            lambda: self.engine.listed(self.engine.order_by_client_id(symbol, client_order_id)),
        )

    async def fetch_order(self, symbol: str, order_id: str) -> Order | None:
        def lookup() -> Order | None:
            order = self.engine.order(order_id) if isinstance(order_id, str) else None
            return (
                self.engine.listed(order) if order is not None and order.symbol == symbol else None
            )

        return await self._query(Op.FETCH_ORDER, symbol, lookup)

    async def fetch_mark_price(self, symbol: str) -> Decimal:
        mark = await self._query(Op.FETCH_MARK, symbol, lambda: self.engine.mark(symbol))
        if mark is None:
            raise ExchangeUnavailable(f"{symbol}: no mark price (unknown symbol)", retryable=False)
        return mark

    async def fetch_fills(
        self, symbol: str, *, since: datetime, order_ids: Sequence[str] | None = None
    ) -> Sequence[Fill]:
        def read() -> list[Fill]:
            fills = self.engine.fills(symbol, since)
            if order_ids is None:
                return fills
            wanted = set(order_ids)
            return [f for f in fills if f.order_id in wanted]

        return await self._query(Op.FETCH_FILLS, symbol, read)

    async def fetch_mark_candles(self, symbol: str, *, since: datetime) -> Sequence[MarkCandle]:
        return await self._query(
            Op.FETCH_MARK_CANDLES, symbol, lambda: self.engine.mark_candles(symbol, since)
        )

    async def fetch_funding(self, symbol: str, *, since: datetime) -> Sequence[FundingPayment]:
        return await self._query(
            Op.FETCH_FUNDING, symbol, lambda: self.engine.funding(symbol, since)
        )

    def watch_mark_prices(self, symbols: Sequence[str]) -> AsyncIterator[MarkTick]:
        stream = MarkStream(self.engine, symbols)
        self._streams.append(stream)
        return stream

    # ----------------------------------------------------------------- commands

    async def create_market_order(
        self,
        symbol: str,
        side: OrderSide,
        quantity: Decimal,
        *,
        client_order_id: str,
        reduce_only: bool = False,
        stop_loss: Decimal | None = None,
    ) -> Outcome:
        return await self._command(
            Op.MARKET_ORDER,
            symbol,
            client_order_id,
            lambda: self.engine.place_market(
                symbol,
                side,
                quantity,
                client_order_id=client_order_id,
                reduce_only=reduce_only,
                stop_loss=stop_loss,
            ),
        )

    async def create_limit_order(
        self,
        symbol: str,
        side: OrderSide,
        quantity: Decimal,
        price: Decimal,
        *,
        client_order_id: str,
        reduce_only: bool = True,
    ) -> Outcome:
        return await self._command(
            Op.LIMIT_ORDER,
            symbol,
            client_order_id,
            lambda: self.engine.place_limit(
                symbol,
                side,
                quantity,
                price,
                client_order_id=client_order_id,
                reduce_only=reduce_only,
            ),
        )

    async def create_stop_order(
        self,
        symbol: str,
        side: OrderSide,
        quantity: Decimal,
        trigger_price: Decimal,
        *,
        client_order_id: str,
        close_position: bool = False,
    ) -> Outcome:
        return await self._command(
            Op.STOP_ORDER,
            symbol,
            client_order_id,
            lambda: self.engine.place_stop(
                symbol,
                side,
                ZERO if close_position else quantity,  # Close-All: no quantity is sent
                trigger_price,
                client_order_id=client_order_id,
                close_position=close_position,
            ),
        )

    async def set_position_stop(self, symbol: str, trigger_price: Decimal | None) -> Outcome:
        return await self._command(
            Op.POSITION_STOP,
            symbol,
            None,
            lambda: self.engine.set_position_stop(symbol, trigger_price),
        )

    async def amend_order(
        self,
        symbol: str,
        order_id: str,
        *,
        trigger_price: Decimal | None = None,
        price: Decimal | None = None,
    ) -> Outcome:
        return await self._command(
            Op.AMEND,
            symbol,
            None,
            lambda: self.engine.amend(symbol, order_id, trigger_price=trigger_price, price=price),
        )

    async def cancel_order(self, symbol: str, order_id: str) -> Outcome:
        return await self._command(
            Op.CANCEL, symbol, None, lambda: self.engine.cancel(symbol, order_id)
        )

    # ----------------------------------------------------------------- leverage, margin mode

    async def set_leverage(self, symbol: str, leverage: Decimal) -> SettingOutcome:
        return await self._setting(
            Op.SET_LEVERAGE, symbol, lambda: self.engine.change_leverage(symbol, leverage)
        )

    async def set_margin_mode(self, symbol: str, mode: MarginMode) -> SettingOutcome:
        return await self._setting(
            Op.SET_MARGIN_MODE, symbol, lambda: self.engine.change_margin_mode(symbol, mode)
        )

    async def fetch_leverage(self, symbol: str) -> Decimal:
        return self._known(
            symbol,
            await self._query(Op.FETCH_LEVERAGE, symbol, lambda: self.engine.leverage(symbol)),
        )

    async def fetch_margin_mode(self, symbol: str) -> MarginMode:
        return self._known(
            symbol,
            await self._query(Op.FETCH_LEVERAGE, symbol, lambda: self.engine.margin_mode(symbol)),
        )

    async def fetch_leverage_tiers(self, symbol: str) -> Sequence[LeverageTier]:
        return self._known(
            symbol,
            await self._query(
                Op.FETCH_LEVERAGE, symbol, lambda: self.engine.leverage_tiers(symbol) or None
            ),
        )

    @staticmethod
    def _known(symbol: str, value: T | None) -> T:
        if value is None:
            raise ExchangeUnavailable(f"{symbol}: unknown symbol", retryable=False)
        return value

    async def _setting(
        self, op: Op, symbol: str, act: Callable[[], Applied | Rejected]
    ) -> SettingOutcome:
        """A setting's command: the venue's "already so" answer is done, not refused."""
        fault = self.engine.faults.take(op, symbol, TRANSPORT_KINDS)
        await self._travel()
        result: SettingOutcome
        if fault is None:
            result = act()
        elif fault.kind in (FaultKind.LOST_RESPONSE, FaultKind.SERVER_ERROR):
            if fault.kind is FaultKind.LOST_RESPONSE or fault.acted:
                act()
            result = Unknown(message=f"{op.value}: no readable answer ({fault.kind.value})")
        else:
            failure = self._transport_failure(fault, None)
            result = failure if isinstance(failure, Rejected | Unknown) else Unknown(message="?")
        await self._travel()
        if isinstance(result, Rejected) and result.reason is RejectReason.NOT_MODIFIED:
            return Applied(changed=False)
        return result

    async def close(self) -> None:
        for stream in self._streams:
            stream.close()
        self._streams.clear()

    # ----------------------------------------------------------------- transport

    async def _travel(self) -> None:
        """Half a round trip on the clock (virtual in tests), when latency is configured."""
        if self._latency > 0:
            await self._clock.sleep(self._latency / 2)

    async def _command(
        self, op: Op, symbol: str, client_order_id: str | None, act: Callable[[], Result]
    ) -> Outcome:
        fault = self.engine.faults.take(op, symbol, TRANSPORT_KINDS)
        await self._travel()
        if fault is None:
            result: Outcome = act()
        elif fault.kind is FaultKind.LOST_RESPONSE:
            act()  # the venue did it; only the answer is lost
            result = Unknown(
                message="response lost after the venue accepted the request",
                client_order_id=client_order_id,
            )
        elif fault.kind is FaultKind.SERVER_ERROR:
            if fault.acted:
                act()
            result = Unknown(
                message="HTTP 503 from the venue: the execution status is unknown",
                client_order_id=client_order_id,
            )
        else:
            result = self._transport_failure(fault, client_order_id)
        await self._travel()
        if isinstance(result, Accepted) and client_order_id is not None:
            return await self._proven(result, client_order_id)
        return result

    async def _proven(self, accepted: Accepted, client_order_id: str) -> Outcome:
        """On a venue whose create only acknowledges, once its look-ups lag (the engine's
        `listing_lag`), the order is read back as the ccxt adapter reads Bybit's: looked up
        with pauses on the clock until it shows, `Unknown` past the bound. Otherwise the
        in-process venue's answer already is the order's state."""
        if not (self.engine.listing_lag and self.engine.profile.acknowledges_only):
            return accepted
        symbol = accepted.order.symbol
        order = await read_back(
            lambda: self.fetch_order_by_client_id(symbol, client_order_id),
            clock=self._clock,
            policy=self._read_back,
        )
        if order is None:
            return Unknown(
                message=f"acknowledged, but its state was not proven within "
                f"{self._read_back.looks} look-ups; look it up by its client id",
                client_order_id=client_order_id,
            )
        return Accepted(order=order)

    def _transport_failure(self, fault: Fault, client_order_id: str | None) -> Outcome:
        profile = self.engine.profile
        if fault.kind is FaultKind.TIMEOUT:
            return Unknown(
                message="request timed out; the venue may or may not have it",
                client_order_id=client_order_id,
            )
        if fault.kind is FaultKind.RATE_LIMIT:
            return profile.refusal(RejectReason.RATE_LIMITED)
        return Rejected(
            reason=RejectReason.NETWORK_ERROR,
            message="connection failed before the request was sent",
            retryable=True,
        )

    async def _query(self, op: Op, symbol: str | None, read: Callable[[], T]) -> T:
        fault = self.engine.faults.take(op, symbol, TRANSPORT_KINDS)
        await self._travel()
        if fault is not None:
            raise ExchangeUnavailable(
                f"{op.value} failed: {fault.kind.value}",
                rate_limited=fault.kind is FaultKind.RATE_LIMIT,
            )
        result = read()
        await self._travel()
        return result
