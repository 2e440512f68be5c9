"""Every order kind understood (issue 11, item 3): only a stop-loss is protection.

The bodies are the venues' documented answers (the source is named above each); where a
field's value is not shown in a documented example it is said so.

- Binance USDⓈ-M algo orders carry their kind in `orderType`: "STOP_MARKET/
  TAKE_PROFIT_MARKET/STOP/TAKE_PROFIT/TRAILING_STOP_MARKET" (New Algo Order, POST
  /fapi/v1/algoOrder; developers.binance.com/docs/derivatives/usds-margined-futures/trade/
  rest-api/New-Algo-Order). A trailing stop carries `activatePrice` and `callbackRate`
  ("Used with TRAILING_STOP_MARKET orders", same page).
- Bybit v5 orders carry `stopOrderType`: TakeProfit, StopLoss, TrailingStop, Stop,
  PartialTakeProfit, PartialStopLoss, tpslOrder, OcoOrder, MmRateClose ("On web or app can
  set MMR to close position"), BidirectionalTpslOrder (bybit-exchange.github.io/docs/v5/
  enum#stopordertype).

Read as a stop-loss, a trailing stop made a position count as protected with no stop-loss
at all, and the keeper adopted its level as "a person's tighter stop".
"""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from tradecore.adapters.ccxt import parse
from tradecore.adapters.ccxt.venues import binance, bybit
from tradecore.domain.model import OrderSide, Side, Venue
from tradecore.domain.orders import Order, OrderStatus, OrderType, VenuePosition
from tradecore.domain.positions import Position, PositionState, StopOwner
from tradecore.domain.reconcile import (
    CancelOrder,
    PlaceStop,
    ReconcileReason,
    Snapshot,
    find_zombies,
    protect,
    standing_level,
)

MS = 1_767_225_600_000
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def binance_algo(order_type: str, **fields: object) -> dict[str, object]:
    """An open algo order as GET /fapi/v1/openAlgoOrders lists it (the field set of ccxt
    4.5.90 binance.py parse_order's "linear swap conditional order" example)."""
    body: dict[str, object] = {
        "algoId": 3358,
        "clientAlgoId": "web_yT58zmV3DSzMBQxc5tAJXU",
        "algoType": "CONDITIONAL",
        "orderType": order_type,
        "symbol": "BTCUSDT",
        "side": "SELL",
        "positionSide": "BOTH",
        "timeInForce": "GTC",
        "quantity": "1",
        "algoStatus": "NEW",
        "triggerPrice": "0.00",
        "price": "0.00",
        "icebergQuantity": None,
        "selfTradePreventionMode": "EXPIRE_MAKER",
        "workingType": "CONTRACT_PRICE",
        "priceMatch": "NONE",
        "closePosition": False,
        "priceProtect": False,
        "reduceOnly": True,
        "createTime": MS,
        "updateTime": MS,
        "triggerTime": 0,
        "goodTillDate": 0,
    }
    body.update(fields)
    return body


def bybit_conditional(stop_type: str, **fields: object) -> dict[str, object]:
    """An order as GET /v5/order/realtime lists it (Get Open & Closed Orders, response
    fields); `createType` and the trailing stop's trigger value are not in an example."""
    body: dict[str, object] = {
        "orderId": "1f2a-trailing",
        "orderLinkId": "",
        "blockTradeId": "",
        "symbol": "BTCUSDT",
        "price": "0",
        "qty": "1",
        "side": "Sell",
        "isLeverage": "",
        "positionIdx": 0,
        "orderStatus": "Untriggered",
        "cancelType": "UNKNOWN",
        "rejectReason": "EC_NoError",
        "avgPrice": "",
        "leavesQty": "1",
        "leavesValue": "0",
        "cumExecQty": "0",
        "cumExecValue": "0",
        "cumExecFee": "0",
        "timeInForce": "IOC",
        "orderType": "Market",
        "stopOrderType": stop_type,
        "orderIv": "",
        "triggerPrice": "0",
        "takeProfit": "0",
        "stopLoss": "0",
        "tpslMode": "Full",
        "tpLimitPrice": "0",
        "slLimitPrice": "0",
        "tpTriggerBy": "",
        "slTriggerBy": "",
        "triggerDirection": 2,
        "triggerBy": "MarkPrice",
        "lastPriceOnCreated": "100",
        "reduceOnly": True,
        "closeOnTrigger": True,
        "placeType": "",
        "smpType": "None",
        "smpGroup": 0,
        "smpOrderId": "",
        "createdTime": str(MS),
        "updatedTime": str(MS),
    }
    body.update(fields)
    return body


NOT_STOP_LOSSES = {
    # a trailing stop that has activated: its level (98) sits where a tighter stop would
    "binance TRAILING_STOP_MARKET": lambda: binance.read_algo(
        binance_algo(
            "TRAILING_STOP_MARKET", activatePrice="101", callbackRate="2", triggerPrice="98"
        )
    ),
    "binance TRAILING_STOP_MARKET, not yet active": lambda: binance.read_algo(
        binance_algo("TRAILING_STOP_MARKET", activatePrice="105", callbackRate="1")
    ),
    "binance orderType it does not know": lambda: binance.read_algo(
        binance_algo("SOME_NEW_KIND", triggerPrice="98")
    ),
    "bybit TrailingStop": lambda: bybit.read_v5_order(
        bybit_conditional("TrailingStop", triggerPrice="98")
    ),
    "bybit MmRateClose": lambda: bybit.read_v5_order(bybit_conditional("MmRateClose")),
    "bybit stopOrderType it does not know": lambda: bybit.read_v5_order(
        bybit_conditional("SomeNewKind", triggerPrice="98", tpslMode="Partial")
    ),
}


@pytest.fixture(params=sorted(NOT_STOP_LOSSES))
def other_kind(request: pytest.FixtureRequest) -> Order:
    return NOT_STOP_LOSSES[request.param]()


def journal(venue: Venue, stop_order_id: str | None) -> Position:
    return Position(
        id="p1",
        venue=venue,
        symbol="BTCUSDT",
        side=Side.LONG,
        state=PositionState.ACTIVE,
        requested_quantity=Decimal(1),
        quantity=Decimal(1),
        entry_price=Decimal(100),
        created_at=NOW - timedelta(hours=1),
        stop_price=Decimal(97) if stop_order_id else None,
        stop_order_id=stop_order_id,
        stop_owner=StopOwner.INITIAL if stop_order_id else None,
    )


def held(venue: Venue) -> VenuePosition:
    return VenuePosition(
        venue=venue,
        symbol="BTCUSDT",
        side=Side.LONG,
        quantity=Decimal(1),
        entry_price=Decimal(100),
        mark_price=Decimal(100),
    )


def bot_stop(venue: Venue) -> Order:
    return Order(
        venue=venue,
        symbol="BTCUSDT",
        order_id="bot-stop",
        client_order_id="tc-p1-s0",
        side=OrderSide.SELL,
        type=OrderType.STOP_MARKET,
        quantity=Decimal(1),
        status=OrderStatus.OPEN,
        trigger_price=Decimal(97),
        reduce_only=True,
    )


def snap(
    positions: tuple[Position, ...], holdings: tuple[VenuePosition, ...], orders: list[Order]
) -> Snapshot:
    return Snapshot(
        venues=frozenset({Venue.BINANCE, Venue.BYBIT}),
        positions=positions,
        venue_positions=holdings,
        orders=tuple(orders),
        operations=(),
        trailing_heartbeats={},
        now=NOW,
    )


def test_it_is_no_stop_loss(other_kind: Order) -> None:
    assert not other_kind.is_stop


def test_a_position_with_only_it_gets_a_stop_loss(other_kind: Order) -> None:
    venue = other_kind.venue
    position, holding = journal(venue, None), held(venue)

    actions = protect(snap((position,), (holding,), [other_kind]))

    assert [type(a) for a in actions] == [PlaceStop]
    assert standing_level([other_kind], holding, position) == (None, None)  # nothing adopted


def test_beside_the_bots_stop_it_is_left_alone_by_the_guard_and_the_zombie_pass(
    other_kind: Order,
) -> None:
    venue = other_kind.venue
    snapshot = snap((journal(venue, "bot-stop"),), (held(venue),), [bot_stop(venue), other_kind])

    assert protect(snapshot) == ()
    assert find_zombies(snapshot) == ()
    assert standing_level([bot_stop(venue), other_kind], held(venue), None)[0] == Decimal(97)


def test_on_a_symbol_with_no_position_it_is_a_conditional_zombie(other_kind: Order) -> None:
    actions = find_zombies(snap((), (), [other_kind]))

    assert [(type(a), a.reason) for a in actions] == [  # type: ignore[attr-defined]
        (CancelOrder, ReconcileReason.ZOMBIE_CONDITIONAL)
    ]


def test_the_kinds_the_venues_document_are_told_apart() -> None:
    kinds = {
        name: binance.read_algo(binance_algo(name, triggerPrice="98")).type.value
        for name in ("STOP_MARKET", "STOP", "TAKE_PROFIT", "TAKE_PROFIT_MARKET")
    }
    kinds["TRAILING_STOP_MARKET"] = binance.read_algo(
        binance_algo("TRAILING_STOP_MARKET", callbackRate="1")
    ).type.value
    for stop_type, direction, mode in (
        ("StopLoss", 2, "Full"),
        ("StopLoss", 2, "Partial"),
        ("PartialStopLoss", 2, "Partial"),
        ("TakeProfit", 1, "Full"),
        ("PartialTakeProfit", 1, "Partial"),
        ("TrailingStop", 2, "Full"),
        ("MmRateClose", 0, ""),
    ):
        order = bybit.read_v5_order(
            bybit_conditional(
                stop_type, triggerDirection=direction, tpslMode=mode, triggerPrice="98"
            )
        )
        kinds[f"bybit {stop_type} {mode}"] = order.type.value

    assert kinds == {
        "STOP_MARKET": "stop_market",
        "STOP": "stop_market",
        "TAKE_PROFIT": "take_profit",
        "TAKE_PROFIT_MARKET": "take_profit",
        "TRAILING_STOP_MARKET": "trailing_stop",
        "bybit StopLoss Full": "position_stop",
        "bybit StopLoss Partial": "stop_market",
        "bybit PartialStopLoss Partial": "stop_market",
        "bybit TakeProfit Full": "take_profit",
        "bybit PartialTakeProfit Partial": "take_profit",
        "bybit TrailingStop Full": "trailing_stop",
        "bybit MmRateClose ": "conditional",
    }


# ------------------------------------------------------------- Binance's cancel answer

# DELETE /fapi/v1/algoOrder, "Response Example" (developers.binance.com/docs/derivatives/
# usds-margined-futures/trade/rest-api/Cancel-Algo-Order); ccxt 4.5.90 binance.py
# parse_order shows the same body under "cancelOrder: linear swap conditional".
CANCEL_ANSWER = {
    "algoId": 2146760,
    "clientAlgoId": "6B2I9XVcJpCjqPAJ4YoFX7",
    "code": "200",
    "msg": "success",
}


def test_binances_documented_cancel_answer_reads_as_the_order_cancelled() -> None:
    listed = binance.read_algo(
        binance_algo(
            "STOP_MARKET", algoId=2146760, clientAlgoId="6B2I9XVcJpCjqPAJ4YoFX7", triggerPrice="97"
        )
    )

    cancelled = binance.read_algo_cancelled(CANCEL_ANSWER, listed)

    assert cancelled.status is OrderStatus.CANCELED
    assert (cancelled.order_id, cancelled.client_order_id) == ("2146760", "6B2I9XVcJpCjqPAJ4YoFX7")
    assert cancelled.trigger_price == Decimal(97) and cancelled.is_stop


def test_a_cancel_answer_for_another_order_is_unreadable() -> None:
    listed = binance.read_algo(binance_algo("STOP_MARKET", algoId=1, triggerPrice="97"))

    with pytest.raises(parse.Unreadable):
        binance.read_algo_cancelled(CANCEL_ANSWER, listed)
