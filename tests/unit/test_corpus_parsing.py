"""Every documented venue answer, read by the ccxt adapter: what tradecore makes of it.

Each corpus entry (src/tradecore/testing/corpus/, docs/venues.md "The answer corpus") is
served by a loopback venue in place of its endpoint's answer (`server.canned`), so the real
ccxt client receives it over HTTP and the adapter reads it the way it reads the venue: an
order's kind, status and filled quantity, a position, a mark, market rules; an error body as
a refusal (its reason, whether retrying may help) or an unknown outcome for a command, and as
`ExchangeUnavailable` (retryable, rate limited) for a query. Where the adapter has no call for
an endpoint yet (leverage, margin mode), ccxt's call is checked to take the documented
answer (or raise for a refusal) and the adapter's error mapping reads the refusal.
"""

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import ccxt.async_support as ccxt
import pytest

from tradecore.adapters.ccxt.errors import command_outcome
from tradecore.adapters.ccxt.venues import binance, bybit
from tradecore.adapters.ccxt.venues.bybit import tiers_of
from tradecore.domain.leverage import MarginMode
from tradecore.domain.model import OrderSide
from tradecore.domain.orders import Order
from tradecore.ports.exchange import (
    Accepted,
    Applied,
    ExchangeUnavailable,
    Rejected,
    RejectReason,
    Unknown,
)
from tradecore.testing.corpus import BUILTIN, Entry, load
from tradecore.testing.loopback import LoopbackVenue

R = RejectReason
# the built-in venues' (a venue registered by a test, like the contract suite's toy, is held
# to its corpus by the contract suite's check of every loopback answer)
ENTRIES = {f"{entry.venue}/{entry.name}": entry for venue in BUILTIN for entry in load(venue)}
QTY = Decimal("0.01")


def _venue(entry: Entry) -> LoopbackVenue:
    marks = {"BTCUSDT": "50000", "ETHUSDT": "3000"}
    if entry.venue == "binance":
        return LoopbackVenue.binance(marks=marks)
    return LoopbackVenue.bybit(marks=marks)


def _serve(venue: LoopbackVenue, entry: Entry) -> None:
    venue.server.canned[(entry.method, entry.path)] = (entry.status, entry.body)


def _also(venue: LoopbackVenue, name: str) -> None:
    """Serve another documented answer too (a command's read-back)."""
    _serve(venue, ENTRIES[name])


def _order(order: Order) -> dict[str, Any]:
    return {
        "id": order.order_id,
        "symbol": order.symbol,
        "kind": order.type.value,
        "status": order.status.value,
        "side": order.side.value,
        "quantity": order.quantity,
        "filled": order.filled,
    }


def _outcome(outcome: object) -> dict[str, Any]:
    if isinstance(outcome, Accepted):
        return {"accepted": _order(outcome.order)}
    if isinstance(outcome, Applied):
        return {"applied": True, "changed": outcome.changed}
    if isinstance(outcome, Rejected):
        return {"rejected": outcome.reason.value, "retryable": outcome.retryable}
    assert isinstance(outcome, Unknown), outcome
    return {"unknown": True}


# ----------------------------------------------------------------- what each answer is read as

Probe = Callable[[LoopbackVenue, Entry], Awaitable[Any]]


async def create_limit(venue: LoopbackVenue, entry: Entry) -> Any:
    outcome = await venue.exchange.create_limit_order(
        "BTCUSDT", OrderSide.SELL, QTY, Decimal("60000"), client_order_id="tc-c-x0"
    )
    return _outcome(outcome)


async def create_market(venue: LoopbackVenue, entry: Entry) -> Any:
    outcome = await venue.exchange.create_market_order(
        "BTCUSDT", OrderSide.BUY, QTY, client_order_id="tc-c-e0"
    )
    return _outcome(outcome)


async def create_stop(venue: LoopbackVenue, entry: Entry) -> Any:
    venue.engine.place_market("BTCUSDT", OrderSide.BUY, QTY)
    outcome = await venue.exchange.create_stop_order(
        "BTCUSDT", OrderSide.SELL, QTY, Decimal("49000"), client_order_id="tc-c-s0"
    )
    return _outcome(outcome)


async def create_close_all_stop(venue: LoopbackVenue, entry: Entry) -> Any:
    venue.engine.place_market("BTCUSDT", OrderSide.BUY, QTY)
    outcome = await venue.exchange.create_stop_order(
        "BTCUSDT",
        OrderSide.SELL,
        QTY,
        Decimal("49000"),
        client_order_id="tc-c-s0",
        close_position=True,
    )
    return _outcome(outcome)


def fetch_order(order_id: str, symbol: str = "BTCUSDT") -> Probe:
    async def probe(venue: LoopbackVenue, entry: Entry) -> Any:
        found = await venue.exchange.fetch_order(symbol, order_id)
        return None if found is None else _order(found)

    return probe


async def open_orders(venue: LoopbackVenue, entry: Entry) -> Any:
    return [_order(o) for o in await venue.exchange.fetch_open_orders("BTCUSDT")]


def cancel(order_id: str, symbol: str = "BTCUSDT") -> Probe:
    async def probe(venue: LoopbackVenue, entry: Entry) -> Any:
        return _outcome(await venue.exchange.cancel_order(symbol, order_id))

    return probe


async def amend_limit(venue: LoopbackVenue, entry: Entry) -> Any:
    """A resting limit order of the venue's, moved: the documented answer is the moved order."""
    resting = venue.engine.place_limit(
        "BTCUSDT", OrderSide.BUY, QTY, Decimal("40000"), reduce_only=False
    )
    assert isinstance(resting, Accepted)
    outcome = await venue.exchange.amend_order(
        "BTCUSDT", resting.order.order_id, price=Decimal("41000")
    )
    return _outcome(outcome)


async def amend_bybit(venue: LoopbackVenue, entry: Entry) -> Any:
    """The documented open order (its look-up answered as documented) moved."""
    order_id = "fd4300ae-7847-404e-b947-b46980a4d140"
    return _outcome(await venue.exchange.amend_order("ETHUSDT", order_id, price=Decimal("1601")))


async def create_bybit(venue: LoopbackVenue, entry: Entry) -> Any:
    """Bybit acknowledges with ids only; the adapter reads the order back (answered with the
    documented open order)."""
    outcome = await venue.exchange.create_limit_order(
        "ETHUSDT", OrderSide.BUY, Decimal("0.1"), Decimal("1600"), client_order_id="tc-c-x0"
    )
    return _outcome(outcome)


async def create_bybit_carrying_a_stop(venue: LoopbackVenue, entry: Entry) -> Any:
    """An entry that carries its stop-loss: the adapter sends `stopLoss` with MarkPrice,
    Full, Market (the request the corpus entry records) and reads the order back."""
    client = venue.exchange.client
    create = client.privatePostV5OrderCreate
    requests: list[dict[str, Any]] = []

    async def recorded(request: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        requests.append(dict(request))
        return await create(request, *args, **kwargs)

    client.privatePostV5OrderCreate = recorded
    outcome = await venue.exchange.create_market_order(
        "ETHUSDT",
        OrderSide.BUY,
        Decimal("0.1"),
        client_order_id="tc-c-e0",
        stop_loss=Decimal("2700"),
    )
    [sent] = requests
    carried = {k: sent[k] for k in ("stopLoss", "slTriggerBy", "tpslMode", "slOrderType")}
    return {**_outcome(outcome), "sent": carried}


async def positions_with_stop(venue: LoopbackVenue, entry: Entry) -> Any:
    return [
        {"symbol": p.symbol, "side": p.side.value, "stop": p.stop_price}
        for p in await venue.exchange.fetch_positions()
    ]


async def cancel_algo(venue: LoopbackVenue, entry: Entry) -> Any:
    """The documented cancel names algo 2146760: the adapter first sees that order (the
    documented look-up), then cancels it."""
    _also(venue, "binance/algoOrder__query_canceled")
    assert await venue.exchange.fetch_order("BTCUSDT", "2146760") is not None
    _serve(venue, entry)
    return _outcome(await venue.exchange.cancel_order("BTCUSDT", "2146760"))


async def positions(venue: LoopbackVenue, entry: Entry) -> Any:
    return [
        {"symbol": p.symbol, "side": p.side.value, "quantity": p.quantity, "entry": p.entry_price}
        for p in await venue.exchange.fetch_positions()
    ]


async def ccxt_positions(venue: LoopbackVenue, entry: Entry) -> Any:
    """An endpoint the adapter does not call (v2): the adapter's reader on ccxt's answer."""
    client = venue.exchange.client
    raw = await client.fapiPrivateV2GetPositionRisk()
    return [
        {"symbol": p.symbol, "side": p.side.value, "quantity": p.quantity}
        for p in (binance.read_position(row) for row in raw)
        if p is not None
    ]


def mark(symbol: str) -> Probe:
    async def probe(venue: LoopbackVenue, entry: Entry) -> Any:
        return await venue.exchange.fetch_mark_price(symbol)

    return probe


async def markets(venue: LoopbackVenue, entry: Entry) -> Any:
    try:
        rules = await venue.exchange.load_markets()
    except ExchangeUnavailable as error:
        return {"unavailable": True, "retryable": error.retryable}
    return {
        symbol: {
            "tick": r.tick_size,
            "step": r.step_size,
            "min_qty": r.min_quantity,
            "min_notional": r.min_notional,
            "max_leverage": r.max_leverage,
        }
        for symbol, r in sorted(rules.items())
    }


async def server_time(venue: LoopbackVenue, entry: Entry) -> Any:
    return await venue.exchange.client.fetch_time()


async def balance(venue: LoopbackVenue, entry: Entry) -> Any:
    found = await venue.exchange.fetch_balance()
    return {"total": found.total, "free": found.free}


def fills(symbol: str) -> Probe:
    async def probe(venue: LoopbackVenue, entry: Entry) -> Any:
        since = datetime(2019, 1, 1, tzinfo=UTC)
        return [
            {"order": f.order_id, "price": f.price, "quantity": f.quantity, "fee": f.fee}
            for f in await venue.exchange.fetch_fills(symbol, since=since)
        ]

    return probe


async def bybit_fills(venue: LoopbackVenue, entry: Entry) -> Any:
    """One page through ccxt (the documented cursor would be followed for ever), read by the
    adapter's fill reader."""
    raw = await venue.exchange.client.fetch_my_trades("ETH/USDT:USDT")
    read = (bybit.read_fill(item["info"]) for item in raw)
    return [{"order": f.order_id, "price": f.price, "quantity": f.quantity} for f in read if f]


async def funding(venue: LoopbackVenue, entry: Entry) -> Any:
    since = datetime(2019, 1, 1, tzinfo=UTC)
    return [
        {"symbol": f.symbol, "amount": f.amount}
        for f in await venue.exchange.fetch_funding("BTCUSDT", since=since)
    ]


async def mark_candles(venue: LoopbackVenue, entry: Entry) -> Any:
    """The adapter's kline request (one page: the last minute) over the documented rows."""
    since = venue.now() - timedelta(minutes=1)
    return [
        {"opened": int(c.opened_at.timestamp() * 1000), "prices": (c.open, c.high, c.low, c.close)}
        for c in await venue.exchange.fetch_mark_candles("BTCUSDT", since=since)
    ]


async def bybit_funding(venue: LoopbackVenue, entry: Entry) -> Any:
    """One page (the documented cursor would be followed to the page limit), read by the
    adapter's funding reader."""
    raw = await venue.exchange.client.privateGetV5AccountTransactionLog({"type": "SETTLEMENT"})
    read = (bybit.read_funding(item) for item in raw["result"]["list"])
    return [{"symbol": f.symbol, "amount": f.amount} for f in read if f is not None]


def ccxt_call(call: Callable[[ccxt.Exchange], Awaitable[Any]]) -> Probe:
    """An endpoint the adapter has no call for yet: ccxt's call over the documented answer,
    a refusal read by the adapter's error mapping."""

    async def probe(venue: LoopbackVenue, entry: Entry) -> Any:
        try:
            await call(venue.exchange.client)
        except ccxt.BaseError as error:
            return _outcome(command_outcome(venue.exchange.venue, error))
        return "taken"

    return probe


async def set_position_stop(venue: LoopbackVenue, entry: Entry) -> Any:
    """The documented `{}` result; the stop it set is then listed (set on the engine here)."""
    venue.engine.place_market("BTCUSDT", OrderSide.BUY, QTY)
    venue.engine.set_position_stop("BTCUSDT", Decimal("49000"))
    outcome = await venue.exchange.set_position_stop("BTCUSDT", Decimal("49000"))
    read = _outcome(outcome)
    read.get("accepted", {}).pop("id", None)  # the engine's id for the stop it holds
    return read


async def margin_settings(venue: LoopbackVenue, entry: Entry) -> Any:
    """The symbol's margin mode and leverage as the adapter reads them."""
    exchange = venue.exchange
    return {
        "mode": await exchange.fetch_margin_mode("BTCUSDT"),
        "leverage": await exchange.fetch_leverage("BTCUSDT"),
    }


async def margin_mode(venue: LoopbackVenue, entry: Entry) -> Any:
    return await venue.exchange.fetch_margin_mode("BTCUSDT")


async def bybit_tiers(venue: LoopbackVenue, entry: Entry) -> Any:
    """The doc's example is an inverse symbol (BTCUSD), which the adapter's call does not
    take: the adapter's tier reader on ccxt's answer, for that symbol."""
    raw = await venue.exchange.client.publicGetV5MarketRiskLimit({"category": "linear"})
    return [
        {
            "floor": t.min_notional,
            "cap": t.max_notional,
            "max_leverage": t.max_leverage,
            "maintenance_rate": t.maintenance_rate,
            "maintenance_amount": t.maintenance_amount,
        }
        for t in tiers_of(raw["result"]["list"], "BTCUSD")
    ]


async def set_isolated(venue: LoopbackVenue, entry: Entry) -> Any:
    return _outcome(await venue.exchange.set_margin_mode("BTCUSDT", MarginMode.ISOLATED))


async def set_leverage_10(venue: LoopbackVenue, entry: Entry) -> Any:
    return _outcome(await venue.exchange.set_leverage("BTCUSDT", Decimal("10")))


BTC = "BTC/USDT:USDT"
OPEN_ID = "fd4300ae-7847-404e-b947-b46980a4d140"  # the order of Bybit's open-order example
HISTORY_ID = "14bad3a1-6454-43d8-bcf2-5345896cf74d"  # of its order-history example
PROBES: dict[str, Probe] = {
    "binance/order__create_limit_new": create_limit,
    "binance/order__create_result": create_limit,
    "binance/order__query_trailing_new": fetch_order("1573346959"),
    "binance/order__cancel_trailing_canceled": cancel("283194212"),
    "binance/order__modify_limit": amend_limit,
    "binance/order__modify_result": amend_limit,
    "binance/openOrders__list_trailing": open_orders,
    "binance/allOrders__list": ccxt_call(lambda c: c.fetch_orders(BTC)),
    "binance/algoOrder__create_take_profit": create_stop,
    "binance/algoOrder__create_stop_close_position": create_close_all_stop,
    "binance/algoOrder__query_canceled": fetch_order("2146760"),
    "binance/algoOrder__query_trailing": fetch_order("2146760"),
    "binance/algoOrder__cancel": cancel_algo,
    "binance/openAlgoOrders__list_take_profit": open_orders,
    "binance/openAlgoOrders__list_trailing": open_orders,
    "binance/allAlgoOrders__list": ccxt_call(
        lambda c: c.fetch_orders(BTC, None, None, {"trigger": True})
    ),
    "binance/positionRisk__v3_long": positions,
    "binance/positionRisk__v2_flat": ccxt_positions,
    "binance/leverage__change": ccxt_call(lambda c: c.set_leverage(21, BTC)),
    "binance/marginType__change": ccxt_call(lambda c: c.set_margin_mode("isolated", BTC)),
    "binance/positionMargin__modify_isolated": ccxt_call(lambda c: c.add_margin(BTC, 100)),
    "binance/positionSide__change_mode": ccxt_call(lambda c: c.set_position_mode(False)),
    "binance/userTrades__list": fills("BTCUSDT"),
    "binance/income__list": funding,
    "binance/markPriceKlines__list": mark_candles,
    "bybit/market_mark-price-kline__linear": mark_candles,
    "binance/premiumIndex__one_symbol": mark("BTCUSDT"),
    "binance/time__server_time": server_time,
    "binance/exchangeInfo__perpetual": markets,
    "binance/account__v3": balance,
    "binance/balance__v3": ccxt_call(lambda c: c.fapiPrivateV3GetBalance()),
    "binance/leverageBracket__usdm": markets,
    "binance/leverageBracket__usdm_with_coef": markets,
    "binance/symbolConfig__one_symbol": margin_settings,
    "bybit/order_create__ack": create_bybit,
    "bybit/order_create__entry_with_stop_loss": create_bybit_carrying_a_stop,
    "bybit/position_list__linear_long_with_stop_loss": positions_with_stop,
    "bybit/order_amend__ack": amend_bybit,
    "bybit/order_cancel__ack": cancel(OPEN_ID, "ETHUSDT"),
    "bybit/order_realtime__limit_new_with_tpsl": fetch_order(OPEN_ID, "ETHUSDT"),
    "bybit/order_realtime__limit_new_table_fields": fetch_order(OPEN_ID, "ETHUSDT"),
    "bybit/order_history__limit_cancelled": fetch_order(HISTORY_ID),
    "bybit/order_history__limit_cancelled_table_fields": fetch_order(HISTORY_ID),
    "bybit/position_list__inverse_short": positions,
    "bybit/position_list__table_fields": positions,
    "bybit/position_trading-stop__ok": set_position_stop,
    "bybit/position_set-leverage__ok": ccxt_call(lambda c: c.set_leverage(10, BTC)),
    "bybit/position_switch-mode__ok": ccxt_call(lambda c: c.set_position_mode(False, BTC)),
    "bybit/account_set-margin-mode__refused_3400045": ccxt_call(
        lambda c: c.set_margin_mode("isolated")
    ),
    "bybit/market_tickers__inverse_one": mark("BTCUSDT"),
    "bybit/market_instruments-info__linear_perpetual": markets,
    "bybit/market_time__server_time": server_time,
    "bybit/account_wallet-balance__unified": balance,
    "bybit/account_info__regular_margin": margin_mode,
    "bybit/market_risk-limit__inverse_one": bybit_tiers,
    "bybit/execution_list__linear_trade": bybit_fills,
    "bybit/account_transaction-log__settlement_and_trades": bybit_funding,
}

# Read-backs a command makes after the documented answer: served documented answers too.
ALSO = {
    "bybit/order_create__ack": "bybit/order_realtime__limit_new_with_tpsl",
    "bybit/order_create__entry_with_stop_loss": "bybit/order_realtime__limit_new_with_tpsl",
    "bybit/order_amend__ack": "bybit/order_realtime__limit_new_with_tpsl",
    "bybit/order_cancel__ack": "bybit/order_realtime__limit_new_with_tpsl",
}


def _error_names() -> list[str]:
    return sorted(name for name, entry in ENTRIES.items() if entry.name.startswith("error__"))


async def _observed(name: str) -> Any:
    entry = ENTRIES[name]
    venue = _venue(entry)
    try:
        if name in ALSO:
            _also(venue, ALSO[name])
        if PROBES[name] is not cancel_algo:
            _serve(venue, entry)
        return await PROBES[name](venue, entry)
    finally:
        await venue.close()


def test_every_documented_answer_has_a_reading() -> None:
    documented = {name for name in ENTRIES if not ENTRIES[name].name.startswith("error__")}
    assert documented == set(PROBES), "give each corpus entry a probe and an expectation"
    assert documented == set(EXPECTED)


# ----------------------------------------------------------------- error answers

# Where an error entry documents one endpoint, the adapter's call that reaches it.
ERROR_CALLS: dict[str, Probe] = {
    "binance/error__m4046_no_need_to_change_margin_type": ccxt_call(
        lambda c: c.set_margin_mode("isolated", BTC)
    ),
    "binance/error__m4047_margin_type_open_orders": set_isolated,
    "binance/error__m4048_margin_type_position": set_isolated,
    "bybit/error__r110043_leverage_not_modified": ccxt_call(lambda c: c.set_leverage(10, BTC)),
    "bybit/error__r110013_leverage_risk_limit": set_leverage_10,
    "bybit/error__r34040_not_modified": set_position_stop,
}
# The endpoints an error any endpoint may answer is served on: an order command and a query.
COMMAND = {"binance": ("POST", "/fapi/v1/order"), "bybit": ("POST", "/v5/order/create")}
QUERY = {"binance": ("GET", "/fapi/v3/positionRisk"), "bybit": ("GET", "/v5/position/list")}


async def _error_read(name: str) -> tuple[Any, Any]:
    """(what an order command makes of the answer, what a query makes of it)."""
    entry = ENTRIES[name]
    venue = _venue(entry)
    try:
        if name in ERROR_CALLS:
            _serve(venue, entry)
            return await ERROR_CALLS[name](venue, entry), None
        venue.server.canned[COMMAND[entry.venue]] = (entry.status, entry.body)
        command = await create_market(venue, entry)
        del venue.server.canned[COMMAND[entry.venue]]
        again = _venue(entry)  # a fresh adapter: the first may now sit out an IP ban
        try:
            again.server.canned[QUERY[entry.venue]] = (entry.status, entry.body)
            try:
                await again.exchange.fetch_positions()
            except ExchangeUnavailable as error:
                query: Any = {"retryable": error.retryable, "rate_limited": error.rate_limited}
            else:
                query = "read"
        finally:
            await again.close()
        return command, query
    finally:
        await venue.close()


def _o(order_id: str, symbol: str, kind: str, status: str, side: str, qty: str, filled: str) -> Any:
    return {
        "id": order_id,
        "symbol": symbol,
        "kind": kind,
        "status": status,
        "side": side,
        "quantity": Decimal(qty),
        "filled": Decimal(filled),
    }


def _rules(tick: str, step: str, min_qty: str, notional: str, leverage: str) -> Any:
    return {
        "tick": Decimal(tick),
        "step": Decimal(step),
        "min_qty": Decimal(min_qty),
        "min_notional": Decimal(notional),
        "max_leverage": Decimal(leverage),
    }


# The loopback's own markets (exchangeInfo), with the documented brackets' leverage: a symbol
# the brackets do not name gets leverage 1.
LOOPBACK_RULES = {
    "1000PEPEUSDT": _rules("0.0000001", "1", "1", "5", "1"),
    "BTCUSDT": _rules("0.1", "0.001", "0.001", "100", "1"),
    "ETHUSDT": _rules("0.01", "0.001", "0.001", "20", "1"),
    "SOLUSDT": _rules("0.01", "1", "1", "5", "1"),
}
LIMIT_NEW = _o("22542179", "BTCUSDT", "limit", "open", "sell", "10", "0")
MODIFIED = _o("20072994037", "BTCUSDT", "limit", "open", "buy", "1", "0")
BYBIT_OPEN = _o(OPEN_ID, "ETHUSDT", "limit", "open", "buy", "0.10", "0.00")
BYBIT_CANCELLED = _o(HISTORY_ID, "BTCUSDT", "limit", "canceled", "buy", "0.003", "0.000")
TAKE_PROFIT = _o("2148627", "BNBUSDT", "take_profit", "open", "sell", "0.01", "0")
BYBIT_SHORT = [
    {
        "symbol": "BTCUSD",
        "side": "short",
        "quantity": Decimal("300"),
        "entry": Decimal("27464.50441675"),
    }
]

EXPECTED: dict[str, Any] = {
    "binance/order__create_limit_new": {"accepted": LIMIT_NEW},
    "binance/order__create_result": {"accepted": LIMIT_NEW},
    # The doc's example predates the algo service (2025-12-09): a TRAILING_STOP_MARKET on the
    # plain endpoint. The adapter reads any non-LIMIT plain order as a market order.
    "binance/order__query_trailing_new": _o(
        "1573346959", "BTCUSDT", "market", "open", "buy", "0.40", "0"
    ),
    "binance/order__cancel_trailing_canceled": {
        "accepted": _o("283194212", "BTCUSDT", "market", "canceled", "buy", "11", "0")
    },
    "binance/order__modify_limit": {"accepted": MODIFIED},
    "binance/order__modify_result": {"accepted": MODIFIED},
    "binance/openOrders__list_trailing": [
        _o("1917641", "BTCUSDT", "market", "open", "buy", "0.40", "0")
    ],
    "binance/allOrders__list": "taken",
    "binance/algoOrder__create_take_profit": {
        "accepted": _o("2146760", "BNBUSDT", "take_profit", "open", "sell", "0.01", "0")
    },
    "binance/algoOrder__create_stop_close_position": {
        "accepted": _o("2146760", "BNBUSDT", "stop_market", "open", "sell", "0", "0")
    },
    "binance/algoOrder__query_canceled": _o(
        "2146760", "BNBUSDT", "take_profit", "canceled", "sell", "0.01", "0"
    ),
    "binance/algoOrder__query_trailing": _o(
        "2146760", "BNBUSDT", "trailing_stop", "canceled", "sell", "0.01", "0"
    ),
    "binance/algoOrder__cancel": {
        "accepted": _o("2146760", "BNBUSDT", "take_profit", "canceled", "sell", "0.01", "0")
    },
    "binance/openAlgoOrders__list_take_profit": [TAKE_PROFIT],
    "binance/openAlgoOrders__list_trailing": [{**TAKE_PROFIT, "kind": "trailing_stop"}],
    "binance/allAlgoOrders__list": "taken",
    "binance/positionRisk__v3_long": [
        {"symbol": "ADAUSDT", "side": "long", "quantity": Decimal("30"), "entry": Decimal("0.385")}
    ],
    "binance/positionRisk__v2_flat": [],  # positionAmt "0.000": no position
    "binance/leverage__change": "taken",
    "binance/marginType__change": "taken",
    "binance/positionMargin__modify_isolated": "taken",
    "binance/positionSide__change_mode": "taken",
    "binance/userTrades__list": [
        {
            "order": "25851813",
            "price": Decimal("7819.01"),
            "quantity": Decimal("0.002"),
            "fee": Decimal("0.07819010"),
        }
    ],
    "binance/income__list": [],  # a TRANSFER row: no funding payment
    "binance/markPriceKlines__list": [
        {
            "opened": 1591256460000,
            "prices": tuple(
                map(Decimal, ("9653.29201333", "9654.56401333", "9653.07367333", "9653.07367333"))
            ),
        }
    ],
    "bybit/market_mark-price-kline__linear": [
        {
            "opened": 1670608800000,
            "prices": tuple(map(Decimal, ("17164.16", "17164.16", "17121.5", "17131.64"))),
        }
    ],
    "binance/premiumIndex__one_symbol": Decimal("11793.63104562"),
    "binance/time__server_time": 1499827319559,
    # The connector's copy folds the filters into one PRICE_FILTER object: no LOT_SIZE, so
    # the rules cannot be read, and the adapter says so rather than guess a step.
    "binance/exchangeInfo__perpetual": {"unavailable": True, "retryable": False},
    "binance/account__v3": {"total": Decimal("23.72469206"), "free": Decimal("23.72469206")},
    "binance/balance__v3": "taken",
    "binance/leverageBracket__usdm": LOOPBACK_RULES,
    "binance/leverageBracket__usdm_with_coef": {
        **LOOPBACK_RULES,
        "ETHUSDT": _rules("0.01", "0.001", "0.001", "20", "75"),
    },
    "binance/symbolConfig__one_symbol": {"mode": MarginMode.CROSS, "leverage": Decimal("21")},
    "bybit/order_create__ack": {"accepted": BYBIT_OPEN},
    "bybit/order_create__entry_with_stop_loss": {
        "accepted": BYBIT_OPEN,
        "sent": {
            "stopLoss": "2700",
            "slTriggerBy": "MarkPrice",
            "tpslMode": "Full",
            "slOrderType": "Market",
        },
    },
    "bybit/position_list__linear_long_with_stop_loss": [
        {"symbol": "BTCUSDT", "side": "long", "stop": Decimal("57000")}
    ],
    "bybit/order_amend__ack": {"accepted": BYBIT_OPEN},
    "bybit/order_cancel__ack": {"accepted": BYBIT_OPEN},  # as the read-back lists it
    "bybit/order_realtime__limit_new_with_tpsl": BYBIT_OPEN,
    "bybit/order_realtime__limit_new_table_fields": BYBIT_OPEN,
    "bybit/order_history__limit_cancelled": BYBIT_CANCELLED,
    "bybit/order_history__limit_cancelled_table_fields": BYBIT_CANCELLED,
    "bybit/position_list__inverse_short": BYBIT_SHORT,
    "bybit/position_list__table_fields": BYBIT_SHORT,
    "bybit/position_trading-stop__ok": {
        "accepted": {
            "symbol": "BTCUSDT",
            "kind": "position_stop",
            "status": "open",
            "side": "sell",
            "quantity": Decimal("0"),
            "filled": Decimal("0"),
        }
    },
    "bybit/position_set-leverage__ok": "taken",
    "bybit/position_switch-mode__ok": "taken",
    "bybit/account_set-margin-mode__refused_3400045": {"rejected": "other", "retryable": False},
    "bybit/market_tickers__inverse_one": Decimal("114898.43"),
    "bybit/market_instruments-info__linear_perpetual": {
        "BTCUSDT": _rules("0.10", "0.001", "0.001", "5", "100.00")
    },
    "bybit/market_time__server_time": 1688639403423,
    "bybit/account_wallet-balance__unified": {
        "total": Decimal("0"),
        "free": Decimal("0"),
    },  # BTC only
    "bybit/account_info__regular_margin": MarginMode.CROSS,  # REGULAR_MARGIN: cross
    # the doc's one tier (of inverse BTCUSD; linear rows have the same fields): the first
    # tier starts at 0, mmDeduction "" is no deduction
    "bybit/market_risk-limit__inverse_one": [
        {
            "floor": Decimal("0"),
            "cap": Decimal("150"),
            "max_leverage": Decimal("100.00"),
            "maintenance_rate": Decimal("0.5"),
            "maintenance_amount": Decimal("0"),
        }
    ],
    "bybit/execution_list__linear_trade": [
        {
            "order": "8c065341-7b52-4ca9-ac2c-37e31ac55c94",
            "price": Decimal("1190.15"),
            "quantity": Decimal("0.1"),
        }
    ],
    # the SETTLEMENT row only; TRADE rows are no funding
    "bybit/account_transaction-log__settlement_and_trades": [
        {"symbol": "XRPUSDT", "amount": Decimal("-0.003676")}
    ],
}


@pytest.mark.parametrize("name", sorted(PROBES))
async def test_a_documented_answer_is_read_as_the_venue_means_it(name: str) -> None:
    assert await _observed(name) == EXPECTED[name]


def _refused(reason: RejectReason, retryable: bool) -> Any:
    return {"rejected": reason.value, "retryable": retryable}


UNKNOWN = {"unknown": True}
QUERY_RETRY = {"retryable": True, "rate_limited": False}
QUERY_FINAL = {"retryable": False, "rate_limited": False}
QUERY_RATE = {"retryable": True, "rate_limited": True}

# (what an order command makes of the error, what a query makes of it)
ERRORS: dict[str, tuple[Any, Any]] = {
    # 5xx and the backend timeout: the order may have been executed
    "binance/error__m1000_unknown_error_500": (UNKNOWN, QUERY_RETRY),
    "binance/error__m1001_internal_error_503": (UNKNOWN, QUERY_RETRY),
    "binance/error__m1007_timeout_408": (UNKNOWN, QUERY_RETRY),
    "binance/error__m1008_request_throttled_503": (UNKNOWN, QUERY_RETRY),
    "binance/error__m1003_ip_banned_418": (_refused(R.RATE_LIMITED, True), QUERY_RATE),
    "binance/error__m1003_rate_limited": (_refused(R.RATE_LIMITED, True), QUERY_RATE),
    # resynced and sent once more, then refused: retrying may help
    "binance/error__m1021_timestamp_ahead": (_refused(R.OTHER, True), QUERY_RETRY),
    "binance/error__m1021_timestamp_outside_recv_window": (_refused(R.OTHER, True), QUERY_RETRY),
    "binance/error__m1102_mandatory_parameter": (_refused(R.OTHER, False), QUERY_FINAL),
    "binance/error__m1111_precision": (_refused(R.INVALID_PRICE, False), QUERY_FINAL),
    "binance/error__m1116_invalid_order_type": (_refused(R.OTHER, False), QUERY_FINAL),
    "binance/error__m1121_invalid_symbol": (_refused(R.UNKNOWN_SYMBOL, False), QUERY_FINAL),
    "binance/error__m2011_unknown_order_sent": (_refused(R.ORDER_NOT_FOUND, False), QUERY_FINAL),
    "binance/error__m2013_order_does_not_exist": (_refused(R.ORDER_NOT_FOUND, False), QUERY_FINAL),
    "binance/error__m2015_invalid_api_key": (_refused(R.AUTHENTICATION, False), QUERY_FINAL),
    "binance/error__m2019_margin_insufficient": (
        _refused(R.INSUFFICIENT_BALANCE, False),
        QUERY_FINAL,
    ),
    "binance/error__m2021_would_immediately_trigger": (
        _refused(R.WOULD_TRIGGER_IMMEDIATELY, False),
        QUERY_FINAL,
    ),
    "binance/error__m2022_reduce_only_rejected": (
        _refused(R.REDUCE_ONLY_WOULD_INCREASE, False),
        QUERY_FINAL,
    ),
    "binance/error__m4003_quantity_less_than_zero": (
        _refused(R.INVALID_QUANTITY, False),
        QUERY_FINAL,
    ),
    "binance/error__m4014_tick_size": (_refused(R.INVALID_PRICE, False), QUERY_FINAL),
    "binance/error__m4045_max_stop_orders": (
        _refused(R.TOO_MANY_CONDITIONAL_ORDERS, False),
        QUERY_FINAL,
    ),
    "binance/error__m4046_no_need_to_change_margin_type": (_refused(R.NOT_MODIFIED, False), None),
    # the adapter's set_margin_mode: the symbol's margin type is held while orders or a
    # position are open
    "binance/error__m4047_margin_type_open_orders": (
        _refused(R.MARGIN_MODE_LOCKED, False),
        None,
    ),
    "binance/error__m4048_margin_type_position": (_refused(R.MARGIN_MODE_LOCKED, False), None),
    "binance/error__m4116_duplicate_client_order_id": (
        _refused(R.DUPLICATE_CLIENT_ID, False),
        QUERY_FINAL,
    ),
    "binance/error__m4120_use_algo_endpoint": (_refused(R.OTHER, False), QUERY_FINAL),
    "binance/error__m4130_stop_exists": (_refused(R.STOP_ALREADY_EXISTS, False), QUERY_FINAL),
    "binance/error__m4004_quantity_less_than_min": (
        _refused(R.INVALID_QUANTITY, False),
        QUERY_FINAL,
    ),
    "binance/error__m4140_symbol_status": (_refused(R.SYMBOL_UNAVAILABLE, False), QUERY_FINAL),
    "binance/error__m4164_min_notional": (_refused(R.BELOW_MIN_NOTIONAL, False), QUERY_FINAL),
    "binance/error__region_block_451": (_refused(R.REGION_RESTRICTED, False), QUERY_FINAL),
    "bybit/error__http403_access_too_frequent": (_refused(R.RATE_LIMITED, True), QUERY_RATE),
    "bybit/error__http5xx_html": (UNKNOWN, QUERY_RETRY),
    "bybit/error__r10000_server_timeout": (UNKNOWN, QUERY_RETRY),
    "bybit/error__r10016_server_error": (UNKNOWN, QUERY_RETRY),
    "bybit/error__r10001_params_error": (_refused(R.OTHER, False), QUERY_FINAL),
    "bybit/error__r10002_recv_window": (_refused(R.OTHER, True), QUERY_RETRY),
    "bybit/error__r10003_api_key_invalid": (_refused(R.AUTHENTICATION, False), QUERY_FINAL),
    "bybit/error__r10004_error_sign": (_refused(R.AUTHENTICATION, False), QUERY_FINAL),
    "bybit/error__r10005_permission_denied": (_refused(R.AUTHENTICATION, False), QUERY_FINAL),
    "bybit/error__r10010_unmatched_ip": (_refused(R.AUTHENTICATION, False), QUERY_FINAL),
    "bybit/error__r10006_too_many_visits": (_refused(R.RATE_LIMITED, True), QUERY_RATE),
    # "high server load. Please retry if you encounter this issue" (v5 error table)
    "bybit/error__r429_high_server_load": (_refused(R.VENUE_UNAVAILABLE, True), QUERY_RETRY),
    "bybit/error__r110001_order_does_not_exist": (_refused(R.ORDER_NOT_FOUND, False), QUERY_FINAL),
    "bybit/error__r170213_spot_order_does_not_exist": (
        _refused(R.ORDER_NOT_FOUND, False),
        QUERY_FINAL,
    ),
    "bybit/error__r110004_wallet_balance_insufficient": (
        _refused(R.INSUFFICIENT_BALANCE, False),
        QUERY_FINAL,
    ),
    "bybit/error__r110007_available_balance_insufficient": (
        _refused(R.INSUFFICIENT_BALANCE, False),
        QUERY_FINAL,
    ),
    "bybit/error__r110009_too_many_stop_orders": (
        _refused(R.TOO_MANY_CONDITIONAL_ORDERS, False),
        QUERY_FINAL,
    ),
    # v5 says "orderQty will be truncated to zero"; the adapter's table (after ccxt and the
    # older derivatives table, "Reduce-only rule not satisfied") calls it a reduce-only refusal
    "bybit/error__r110017_truncated_to_zero": (
        _refused(R.REDUCE_ONLY_WOULD_INCREASE, False),
        QUERY_FINAL,
    ),
    # ccxt raises it; the adapter's mapping reads "already so" (its set_leverage: applied,
    # unchanged)
    "bybit/error__r110043_leverage_not_modified": (_refused(R.NOT_MODIFIED, False), None),
    # the adapter's set_leverage, above the risk limit's maximum
    "bybit/error__r110013_leverage_risk_limit": (_refused(R.INVALID_LEVERAGE, False), None),
    "bybit/error__r110072_duplicate_order_link_id": (
        _refused(R.DUPLICATE_CLIENT_ID, False),
        QUERY_FINAL,
    ),
    "bybit/error__r110092_expect_rising": (
        _refused(R.WOULD_TRIGGER_IMMEDIATELY, False),
        QUERY_FINAL,
    ),
    "bybit/error__r110093_expect_falling": (
        _refused(R.WOULD_TRIGGER_IMMEDIATELY, False),
        QUERY_FINAL,
    ),
    "bybit/error__r110094_notional_too_low": (_refused(R.BELOW_MIN_NOTIONAL, False), QUERY_FINAL),
    "bybit/error__r170209_region": (_refused(R.REGION_RESTRICTED, False), QUERY_FINAL),
    "bybit/error__r34040_not_modified": (_refused(R.NOT_MODIFIED, False), None),
}


def test_every_documented_error_has_a_reading() -> None:
    assert set(_error_names()) == set(ERRORS)


@pytest.mark.parametrize("name", sorted(ERRORS))
async def test_a_documented_error_is_the_refusal_or_unknown_it_means(name: str) -> None:
    assert await _error_read(name) == ERRORS[name]
