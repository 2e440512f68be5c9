"""A person's take-profit is not a stop-loss (found attacking issue 10's stop ownership).

Both venues list a take-profit among their conditional orders: Binance as an algo order of
`orderType` TAKE_PROFIT(_MARKET) (/fapi/v1/algoOrder, "STOP_MARKET/TAKE_PROFIT_MARKET/STOP/
TAKE_PROFIT/TRAILING_STOP_MARKET"), Bybit with `stopOrderType` TakeProfit or
PartialTakeProfit, or as a plain conditional order that triggers when the price moves the
position's way (`triggerDirection` 1 = rises to, 2 = falls to; Bybit v5 place-order docs).
Read as a stop, a take-profit above a long's mark made the guard count the position as
protected, adopt the take-profit as "a person's tighter stop" and leave the position with no
stop-loss at all — or cancel the person's take-profit as a "duplicate stop".
"""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from tradecore.adapters.ccxt.venues import binance, bybit
from tradecore.domain.model import OrderSide, Side, Venue
from tradecore.domain.orders import Order, OrderStatus, OrderType, VenuePosition
from tradecore.domain.positions import Position, PositionState, StopOwner
from tradecore.domain.reconcile import CancelOrder, PlaceStop, Snapshot, protect, standing_level

MS = 1_767_225_600_000
NOW = datetime(2026, 1, 1, tzinfo=UTC)


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
        client_order_id=None,
        side=OrderSide.SELL,
        type=OrderType.STOP_MARKET,
        quantity=Decimal(1),
        status=OrderStatus.OPEN,
        trigger_price=Decimal(97),
        reduce_only=True,
    )


def snap(position: Position, holding: VenuePosition, orders: list[Order]) -> Snapshot:
    return Snapshot(
        venues=frozenset({Venue.BINANCE, Venue.BYBIT}),
        positions=(position,),
        venue_positions=(holding,),
        orders=tuple(orders),
        operations=(),
        trailing_heartbeats={},
        now=NOW,
    )


def binance_take_profit(kind: str = "TAKE_PROFIT_MARKET") -> Order:
    return binance.read_algo(
        {
            "algoId": 4242,
            "clientAlgoId": "web_tp_1",
            "algoType": "CONDITIONAL",
            "orderType": kind,
            "symbol": "BTCUSDT",
            "side": "SELL",
            "quantity": "0",
            "algoStatus": "NEW",
            "triggerPrice": "110",
            "price": "110" if kind == "TAKE_PROFIT" else "0",
            "closePosition": True,
            "reduceOnly": False,
            "createTime": MS,
            "updateTime": MS,
        }
    )


def bybit_conditional(stop_type: str, *, direction: int, side: str = "Sell") -> Order:
    return bybit.read_v5_order(
        {
            "orderId": "tp-1",
            "orderLinkId": "",
            "symbol": "BTCUSDT",
            "side": side,
            "orderType": "Market",
            "orderStatus": "Untriggered",
            "stopOrderType": stop_type,
            "tpslMode": "Full" if stop_type == "TakeProfit" else "Partial",
            "qty": "1",
            "cumExecQty": "0",
            "triggerPrice": "110" if direction == 1 else "90",
            "triggerDirection": direction,
            "reduceOnly": True,
            "closeOnTrigger": True,
            "positionIdx": 0,
            "createdTime": str(MS),
            "updatedTime": str(MS),
        }
    )


TAKE_PROFITS = {
    "binance TAKE_PROFIT_MARKET": lambda: binance_take_profit(),
    "binance TAKE_PROFIT": lambda: binance_take_profit("TAKE_PROFIT"),
    "bybit TakeProfit": lambda: bybit_conditional("TakeProfit", direction=1),
    "bybit PartialTakeProfit": lambda: bybit_conditional("PartialTakeProfit", direction=1),
    "bybit conditional sell that rises to its trigger": lambda: bybit_conditional(
        "Stop", direction=1
    ),
}


@pytest.fixture(params=sorted(TAKE_PROFITS))
def take_profit(request: pytest.FixtureRequest) -> Order:
    return TAKE_PROFITS[request.param]()


def test_a_take_profit_is_not_a_stop(take_profit: Order) -> None:
    assert not take_profit.is_stop


def test_a_position_with_only_a_take_profit_is_unprotected(take_profit: Order) -> None:
    position = journal(take_profit.venue, stop_order_id=None)
    holding = held(take_profit.venue)

    actions = protect(snap(position, holding, [take_profit]))

    assert any(isinstance(a, PlaceStop) for a in actions)  # a stop-loss must be placed
    assert standing_level([take_profit], holding, position) == (None, None)  # nothing adopted


def test_a_take_profit_next_to_the_bots_stop_is_left_alone(take_profit: Order) -> None:
    venue = take_profit.venue
    position = journal(venue, stop_order_id="bot-stop")

    actions = protect(snap(position, held(venue), [bot_stop(venue), take_profit]))

    assert not any(
        isinstance(a, CancelOrder) and a.order_id == take_profit.order_id for a in actions
    )
    assert actions == ()


def test_a_bybit_conditional_stop_that_falls_to_its_trigger_is_still_a_stop() -> None:
    assert bybit_conditional("Stop", direction=2).is_stop  # a sell stop-loss for a long
    assert bybit_conditional("Stop", direction=1, side="Buy").is_stop  # a buy one, a short
