"""The ccxt adapter over loopback venues: what the contract suite does not reach.

Clock drift is resynced and the order sent once; Bybit listings follow the cursor past one
page; a restarted process still finds and cancels Binance stops (algo orders) it never saw;
a dropped mark stream is reported, resubscribed and its recovery reported.
"""

import asyncio
from collections.abc import Callable
from decimal import Decimal

import pytest

from tradecore.adapters.ccxt.exchange import CcxtExchange
from tradecore.adapters.ccxt.streams import event_status
from tradecore.domain.events import Event, EventType
from tradecore.domain.model import OrderSide, Side, Venue
from tradecore.domain.orders import OrderStatus
from tradecore.ports.exchange import Accepted, ExchangeUnavailable, Rejected, RejectReason
from tradecore.testing import Fault, Op
from tradecore.testing.loopback import BybitDialect, LoopbackVenue

SYMBOL = "BTCUSDT"
QTY = Decimal("0.01")
MAKERS: dict[str, Callable[[], LoopbackVenue]] = {
    "binance": lambda: LoopbackVenue.binance(marks={SYMBOL: "50000"}),
    "bybit": lambda: LoopbackVenue.bybit(marks={SYMBOL: "50000"}),
}


@pytest.fixture(params=sorted(MAKERS))
async def venue(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    made = MAKERS[request.param]()
    yield made
    await made.close()


async def eventually(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    """Wait for something real I/O does (a socket closing), bounded."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "condition never held"
        await asyncio.sleep(0.005)


async def test_a_drifted_clock_is_resynced_and_the_order_is_placed_exactly_once(
    venue: LoopbackVenue,
) -> None:
    exchange = venue.exchange
    await exchange.load_markets()
    exchange.client.options["timeDifference"] = 3_600_000  # our clock an hour behind
    outcome = await exchange.create_market_order(
        SYMBOL, OrderSide.BUY, QTY, client_order_id="tc-skew-e0"
    )
    assert isinstance(outcome, Accepted), outcome
    placed = [o for o in venue.books.orders if o.client_order_id == "tc-skew-e0"]
    assert len(placed) == 1
    assert abs(exchange.client.options["timeDifference"]) < 60_000


async def test_a_query_with_a_drifted_clock_is_resynced_too(venue: LoopbackVenue) -> None:
    await venue.exchange.load_markets()
    venue.exchange.client.options["timeDifference"] = -3_600_000  # an hour ahead
    assert await venue.exchange.fetch_positions() == []


async def test_bybit_open_orders_are_listed_across_pages() -> None:
    venue = LoopbackVenue.bybit(marks={SYMBOL: "50000"})
    try:
        venue.engine.place_market(SYMBOL, OrderSide.BUY, Decimal("0.12"))
        for n in range(120):  # two and a half pages of 50
            venue.engine.place_limit(
                SYMBOL, OrderSide.SELL, Decimal("0.001"), Decimal(51000 + n), reduce_only=True
            )
        listed = await venue.exchange.fetch_open_orders(SYMBOL)
        assert sorted(o.price for o in listed) == [Decimal(51000 + n) for n in range(120)]
    finally:
        await venue.close()


async def test_after_a_restart_a_binance_stop_placed_earlier_is_found_and_cancelled() -> None:
    venue = LoopbackVenue.binance(marks={SYMBOL: "50000"})
    try:
        before = venue.exchange
        assert isinstance(
            await before.create_market_order(SYMBOL, OrderSide.BUY, QTY, client_order_id="tc-r-e0"),
            Accepted,
        )
        placed = await before.create_stop_order(
            SYMBOL, OrderSide.SELL, QTY, Decimal("49000"), client_order_id="tc-r-s0"
        )
        assert isinstance(placed, Accepted)
        after = venue.connect()  # a new process: it has never seen this stop
        found = await after.fetch_order(SYMBOL, placed.order.order_id)
        assert found is not None and found.is_stop and found.is_open
        cancelled = await after.cancel_order(SYMBOL, placed.order.order_id)
        assert isinstance(cancelled, Accepted), cancelled
        assert venue.engine.open_orders(SYMBOL) == []
    finally:
        await venue.close()


async def test_after_a_restart_a_fired_binance_stop_reports_its_fill() -> None:
    venue = LoopbackVenue.binance(marks={SYMBOL: "50000"})
    try:
        first = venue.exchange
        await first.create_market_order(SYMBOL, OrderSide.BUY, QTY, client_order_id="tc-f-e0")
        placed = await first.create_stop_order(
            SYMBOL, OrderSide.SELL, QTY, Decimal("49000"), client_order_id="tc-f-s0"
        )
        assert isinstance(placed, Accepted)
        await venue.set_mark(SYMBOL, "48950")
        again = venue.connect()
        by_id = await again.fetch_order(SYMBOL, placed.order.order_id)
        by_client = await again.fetch_order_by_client_id(SYMBOL, "tc-f-s0")
        for fired in (by_id, by_client):
            assert fired is not None and fired.status is OrderStatus.FILLED
            assert (fired.filled, fired.average_price) == (QTY, Decimal("48950"))
    finally:
        await venue.close()


async def _fired_stop(venue: LoopbackVenue, exchange: CcxtExchange, n: int) -> str:
    """A long of QTY and its stop at 49000, fired by the mark; the stop looked up (as the
    guard does when the stop is gone). Returns the stop's id; the mark is back at 50000."""
    await exchange.create_market_order(SYMBOL, OrderSide.BUY, QTY, client_order_id=f"tc-m{n}-e0")
    placed = await exchange.create_stop_order(
        SYMBOL, OrderSide.SELL, QTY, Decimal("49000"), client_order_id=f"tc-m{n}-s0"
    )
    assert isinstance(placed, Accepted), placed
    await venue.set_mark(SYMBOL, "48950")
    fired = await exchange.fetch_order(SYMBOL, placed.order.order_id)
    assert fired is not None and fired.status is OrderStatus.FILLED
    await venue.set_mark(SYMBOL, "50000")
    return placed.order.order_id


async def test_a_binance_bot_trailing_for_weeks_remembers_a_bounded_number_of_stops() -> None:
    """Every trailing move on Binance places a new algo stop and cancels the old one; the
    adapter's memory of algo orders (and of the orders fired ones became) stays at its cap
    instead of growing by every stop ever placed."""
    venue = LoopbackVenue.binance(marks={SYMBOL: "50000"})
    try:
        exchange = venue.connect(remembered_algos=3)
        await exchange.create_market_order(SYMBOL, OrderSide.BUY, QTY, client_order_id="tc-b-e0")
        for n in range(12):  # twelve trailing moves: create, list, then cancel the old stop
            placed = await exchange.create_stop_order(
                SYMBOL, OrderSide.SELL, QTY, Decimal(48000 + n), client_order_id=f"tc-b{n}-s0"
            )
            assert isinstance(placed, Accepted), placed
            await exchange.fetch_open_orders(SYMBOL)
            assert isinstance(await exchange.cancel_order(SYMBOL, placed.order.order_id), Accepted)
            assert len(exchange._algos) <= 3
        await exchange.create_market_order(SYMBOL, OrderSide.SELL, QTY, client_order_id="tc-b-x0")
        for n in range(5):
            await _fired_stop(venue, exchange, n)
            assert len(exchange._algos) <= 3 and len(exchange._fired) <= 3
    finally:
        await venue.close()


async def test_a_binance_stop_the_adapter_no_longer_remembers_is_still_found_and_cancelled() -> (
    None
):
    """With room for one algo order in the adapter's memory, an early stop pushed out by
    later ones is still found, cancelled (its second cancel: not found), and a fired stop's
    fill still carries the stop's id once the stop has been looked up."""
    venue = LoopbackVenue.binance(marks={SYMBOL: "50000"})
    try:
        exchange = venue.connect(remembered_algos=1)
        await exchange.create_market_order(SYMBOL, OrderSide.BUY, QTY, client_order_id="tc-o-e0")
        early = await exchange.create_stop_order(
            SYMBOL, OrderSide.SELL, QTY, Decimal("47000"), client_order_id="tc-o-s0"
        )
        assert isinstance(early, Accepted)
        for n in range(1, 4):  # later stops push the early one out of memory
            later = await exchange.create_stop_order(
                SYMBOL, OrderSide.SELL, QTY, Decimal(48000 + n), client_order_id=f"tc-o{n}-s0"
            )
            assert isinstance(later, Accepted)
            assert isinstance(await exchange.cancel_order(SYMBOL, later.order.order_id), Accepted)
        found = await exchange.fetch_order(SYMBOL, early.order.order_id)
        assert found is not None and found.is_stop and found.is_open
        await exchange.fetch_order(SYMBOL, later.order.order_id)  # the early one forgotten again
        cancelled = await exchange.cancel_order(SYMBOL, early.order.order_id)
        assert isinstance(cancelled, Accepted), cancelled
        assert cancelled.order.status is OrderStatus.CANCELED
        assert venue.engine.open_orders(SYMBOL) == []
        await exchange.fetch_order(SYMBOL, later.order.order_id)  # forgotten once more
        again = await exchange.cancel_order(SYMBOL, early.order.order_id)
        assert isinstance(again, Rejected) and again.reason is RejectReason.ORDER_NOT_FOUND

        await exchange.create_market_order(SYMBOL, OrderSide.SELL, QTY, client_order_id="tc-o-x0")
        since = venue.now()
        first = await _fired_stop(venue, exchange, 1)
        second = await _fired_stop(venue, exchange, 2)  # the first fired stop forgotten
        fills = await exchange.fetch_fills(SYMBOL, since=since)
        assert second in {f.order_id for f in fills}
        assert await exchange.fetch_order(SYMBOL, first) is not None  # looked up again
        fills = await exchange.fetch_fills(SYMBOL, since=since)
        assert first in {f.order_id for f in fills}
    finally:
        await venue.close()


class ListSink:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def emit(self, event: Event) -> None:
        self.events.append(event)

    async def flush(self) -> None:
        return None

    async def close(self) -> None:
        return None


class CountingIds:
    def __init__(self) -> None:
        self.count = 0

    def new_id(self) -> str:
        self.count += 1
        return f"id{self.count}"

    def new_uuid(self):  # type: ignore[no-untyped-def]
        import uuid

        self.count += 1
        return uuid.UUID(int=self.count)


async def test_a_dropped_mark_stream_is_an_event_and_recovers_after_resubscribing(
    venue: LoopbackVenue,
) -> None:
    sink = ListSink()
    exchange = venue.connect(
        on_stream_status=event_status(sink, venue.clock, CountingIds(), venue.engine.venue)
    )
    kinds = lambda: [e.type for e in sink.events]  # noqa: E731
    stream = exchange.watch_mark_prices([SYMBOL])
    await venue.set_mark(SYMBOL, "50100")
    seen = (await anext(stream)).mark  # the stream opens with the mark it first read
    if seen != Decimal("50100"):
        seen = (await anext(stream)).mark
    assert seen == Decimal("50100")
    assert kinds() == [EventType.WEBSOCKET_CONNECTED]

    await venue.drop_websockets()
    await eventually(lambda: kinds()[-1] is EventType.WEBSOCKET_DISCONNECTED)
    await venue.advance(1)  # the reconnect backoff, on the clock
    await venue.set_mark(SYMBOL, "50200")
    assert (await anext(stream)).mark == Decimal("50200")
    assert kinds() == [
        EventType.WEBSOCKET_CONNECTED,
        EventType.WEBSOCKET_DISCONNECTED,
        EventType.WEBSOCKET_CONNECTED,
    ]
    assert {e.exchange for e in sink.events} == {venue.engine.venue.value}


async def test_positions_read_through_ccxt_keep_exact_quantities_and_sides(
    venue: LoopbackVenue,
) -> None:
    ex = venue.exchange
    await ex.create_market_order(
        SYMBOL, OrderSide.SELL, Decimal("0.013"), client_order_id="tc-s-e0"
    )
    (position,) = await ex.fetch_positions()
    assert (position.side, position.quantity, position.entry_price) == (
        Side.SHORT,
        Decimal("0.013"),
        Decimal("50000"),
    )
    balance = await ex.fetch_balance()
    assert balance.total == venue.engine.balance().total
    assert venue.engine.venue in (Venue.BINANCE, Venue.BYBIT)


async def test_bybit_orders_closed_before_a_venue_restart_are_found_in_the_history() -> None:
    venue = LoopbackVenue.bybit(marks={SYMBOL: "50000"})
    try:
        assert isinstance(venue.dialect, BybitDialect)
        venue.dialect.realtime_keeps_closed = False
        opened = await venue.exchange.create_market_order(
            SYMBOL, OrderSide.BUY, QTY, client_order_id="tc-h-e0"
        )
        assert isinstance(opened, Accepted) and opened.order.status is OrderStatus.FILLED
        by_id = await venue.exchange.fetch_order(SYMBOL, opened.order.order_id)
        by_client = await venue.exchange.fetch_order_by_client_id(SYMBOL, "tc-h-e0")
        assert by_id == by_client == opened.order
    finally:
        await venue.close()


async def test_stops_are_sent_to_trigger_on_the_mark_price(venue: LoopbackVenue) -> None:
    ex = venue.exchange
    await ex.create_market_order(SYMBOL, OrderSide.BUY, QTY, client_order_id="tc-m-e0")
    placed = await ex.create_stop_order(
        SYMBOL, OrderSide.SELL, QTY, Decimal("49000"), client_order_id="tc-m-s0"
    )
    assert isinstance(placed, Accepted)
    if ex.capabilities.amend_stop:
        assert isinstance(
            await ex.amend_order(SYMBOL, placed.order.order_id, trigger_price=Decimal("49100")),
            Accepted,
        )
    if ex.capabilities.position_stop:
        assert isinstance(await ex.set_position_stop(SYMBOL, Decimal("48000")), Accepted)
    sent = [params for method, _, params in venue.server.requests if method == "POST"]
    stop_requests = [p for p in sent if "triggerPrice" in p or "stopLoss" in p]
    assert stop_requests
    for params in stop_requests:
        on_mark = {params.get("workingType"), params.get("triggerBy"), params.get("slTriggerBy")}
        assert on_mark & {"MARK_PRICE", "MarkPrice"}, params
        assert "LastPrice" not in on_mark and "CONTRACT_PRICE" not in on_mark, params


async def test_without_a_symbol_the_open_orders_of_every_symbol_are_listed(
    venue: LoopbackVenue,
) -> None:
    ex = venue.exchange
    for symbol, qty, trigger in (("BTCUSDT", "0.01", "49000"), ("ETHUSDT", "0.1", "2900")):
        await ex.create_market_order(
            symbol, OrderSide.BUY, Decimal(qty), client_order_id=f"tc-{symbol}-e0"
        )
        placed = await ex.create_stop_order(
            symbol,
            OrderSide.SELL,
            Decimal(qty),
            Decimal(trigger),
            client_order_id=f"tc-{symbol}-s0",
        )
        assert isinstance(placed, Accepted)
    listed = await ex.fetch_open_orders()
    assert sorted((o.symbol, o.trigger_price) for o in listed if o.is_stop) == [
        ("BTCUSDT", Decimal("49000")),
        ("ETHUSDT", Decimal("2900")),
    ]


async def test_a_command_whose_market_rules_cannot_load_is_refused_not_raised(
    venue: LoopbackVenue,
) -> None:
    venue.inject(Fault.rate_limit(Op.FETCH_MARKETS))
    outcome = await venue.exchange.create_market_order(
        SYMBOL, OrderSide.BUY, QTY, client_order_id="tc-l-e0"
    )
    assert isinstance(outcome, Rejected), outcome
    assert (outcome.reason, outcome.retryable) == (RejectReason.RATE_LIMITED, True)
    assert venue.books.orders == []
    retried = await venue.exchange.create_market_order(
        SYMBOL, OrderSide.BUY, QTY, client_order_id="tc-l-e0"
    )
    assert isinstance(retried, Accepted), retried


async def test_binances_documented_cancel_answer_is_accepted_without_listing_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """DELETE /fapi/v1/algoOrder answers `{"algoId", "clientAlgoId", "code": "200", "msg":
    "success"}` (Binance USDⓈ-M "Cancel Algo Order", Response Example): read as Unknown, it
    cost two listings per cancel before the stop writer knew the stop was gone."""
    venue = LoopbackVenue.binance(marks={SYMBOL: "50000"})
    try:
        ex = venue.exchange
        await ex.create_market_order(SYMBOL, OrderSide.BUY, QTY, client_order_id="tc-c-e0")
        placed = await ex.create_stop_order(
            SYMBOL, OrderSide.SELL, QTY, Decimal("49000"), client_order_id="tc-c-s0"
        )
        assert isinstance(placed, Accepted)
        cancel = venue.dialect._cancel_algo  # type: ignore[attr-defined]

        def documented(params: dict[str, str]) -> tuple[int, object]:
            status, body = cancel(params)
            if status != 200:
                return status, body
            keep = ("algoId", "clientAlgoId")
            return 200, {**{k: body[k] for k in keep}, "code": "200", "msg": "success"}

        monkeypatch.setattr(venue.dialect, "_cancel_algo", documented)
        asked = len(venue.server.requests)

        outcome = await ex.cancel_order(SYMBOL, placed.order.order_id)

        assert isinstance(outcome, Accepted), outcome
        assert outcome.order.status is OrderStatus.CANCELED
        assert outcome.order.client_order_id == "tc-c-s0"
        assert [(m, p) for m, p, _ in venue.server.requests[asked:]] == [
            ("DELETE", "/fapi/v1/algoOrder")
        ]
    finally:
        await venue.close()


async def test_binance_looks_a_client_id_up_on_the_endpoint_its_role_letter_names() -> None:
    """An entry (`-e`) is a plain order: `GET /fapi/v1/order` only. A stop (`-s`) is an algo
    order: `GET /fapi/v1/algoOrder` only. Neither look-up depends on what the other endpoint
    answers for an id it does not hold (its code for an unknown `clientAlgoId` is not in the
    sources reachable here)."""
    venue = LoopbackVenue.binance(marks={SYMBOL: "50000"})
    try:
        ex = venue.exchange
        await ex.create_market_order(SYMBOL, OrderSide.BUY, QTY, client_order_id="tc-k-e0")
        await ex.create_stop_order(
            SYMBOL, OrderSide.SELL, QTY, Decimal("49000"), client_order_id="tc-k-s0"
        )

        async def asked(cid: str) -> tuple[object, list[tuple[str, str]]]:
            before = len(venue.server.requests)
            found = await ex.fetch_order_by_client_id(SYMBOL, cid)
            return found, [(m, p) for m, p, _ in venue.server.requests[before:]]

        entry, entry_paths = await asked("tc-k-e0")
        assert entry is not None and entry.filled == QTY  # type: ignore[attr-defined]
        assert entry_paths == [("GET", "/fapi/v1/order")]
        stop, stop_paths = await asked("tc-k-s0")
        assert stop is not None and stop.is_stop  # type: ignore[attr-defined]
        assert stop_paths == [("GET", "/fapi/v1/algoOrder")]
        missing, missing_paths = await asked("tc-k2-e0")
        assert missing is None
        assert missing_paths == [("GET", "/fapi/v1/order")]
    finally:
        await venue.close()


async def test_a_binance_market_order_answered_as_new_is_read_back_until_its_fill_shows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A USDⓈ-M New Order answer can show a market order `NEW` with `executedQty` 0 though it
    filled (ccxt/node-binance-api issue #444: `status: 'NEW'`, `executedQty: '0'` for a
    filled futures market buy). Taken as it stands, the open read "filled nothing" and
    failed while the position stood: the adapter reads it back on the plain order endpoint."""
    venue = LoopbackVenue.binance(marks={SYMBOL: "50000"})
    try:
        new_order = venue.dialect._new_order  # type: ignore[attr-defined]

        def acknowledged(params: dict[str, str]) -> tuple[int, object]:
            status, body = new_order(params)
            if status == 200 and isinstance(body, dict) and body.get("type") == "MARKET":
                zero = {"executedQty": "0", "cumQty": "0", "cumQuote": "0", "avgPrice": "0"}
                body = {**body, **zero, "status": "NEW"}
            return status, body

        monkeypatch.setattr(venue.dialect, "_new_order", acknowledged)
        ex = venue.exchange

        outcome = await ex.create_market_order(
            SYMBOL, OrderSide.BUY, QTY, client_order_id="tc-n-e0"
        )

        assert isinstance(outcome, Accepted), outcome
        assert (outcome.order.status, outcome.order.filled) == (OrderStatus.FILLED, QTY)
        assert outcome.order.average_price == Decimal("50000")
    finally:
        await venue.close()


async def test_a_persons_take_profit_and_trailing_stop_are_listed_as_what_they_are(
    venue: LoopbackVenue,
) -> None:
    """Placed with the person's own ccxt (Binance: TAKE_PROFIT_MARKET and
    TRAILING_STOP_MARKET algo orders; Bybit: a conditional order rising to its trigger and
    trading-stop's trailingStop), they come back as a take-profit and a trailing stop."""
    ex = venue.exchange
    await ex.create_market_order(SYMBOL, OrderSide.BUY, QTY, client_order_id="tc-k-e0")
    tool = venue.connect().client
    try:
        await tool.create_order(
            "BTC/USDT:USDT", "market", "sell", 0.01, None, {"takeProfitPrice": "55000"}
        )
        trailing = (
            {"trailingPercent": "1", "reduceOnly": True}
            if venue.engine.venue is Venue.BINANCE
            else {"trailingAmount": "500", "tpslMode": "Full", "positionIdx": 0}  # both required
        )
        await tool.create_order("BTC/USDT:USDT", "market", "sell", 0.01, None, trailing)
    finally:
        await tool.close()

    listed = await ex.fetch_open_orders(SYMBOL)

    assert sorted(o.type.value for o in listed) == ["take_profit", "trailing_stop"]
    assert not any(o.is_stop for o in listed)


async def test_an_ip_ban_stops_every_request_until_it_ends(monkeypatch: pytest.MonkeyPatch) -> None:
    """Binance: "Repeatedly violating rate limits and/or failing to back off after receiving
    429s will result in an automated IP ban (HTTP status 418)"; "A Retry-After header is
    sent with a 418 or 429 responses and will give the number of seconds required to wait
    ... in the case of a 418, until the ban is over" (USDⓈ-M General Info, Limits); the body
    says it too (-1003 "Way too many requests; IP banned until %s."). A request sent during
    the ban extends it: nothing goes out until the ban's end."""
    venue = LoopbackVenue.binance(marks={SYMBOL: "50000"})
    try:
        ex = venue.exchange
        await ex.load_markets()
        until = int(venue.clock.now().timestamp() * 1000) + 120_000

        def banned() -> tuple[int, object]:
            message = (
                f"Way too many requests; IP banned until {until}. Please use the websocket "
                "for live updates to avoid bans."
            )
            return 418, {"code": -1003, "msg": message}

        monkeypatch.setattr(venue.dialect, "rate_limited", banned)
        venue.inject(Fault.rate_limit(Op.MARKET_ORDER))
        first = await ex.create_market_order(SYMBOL, OrderSide.BUY, QTY, client_order_id="tc-b-e0")
        assert isinstance(first, Rejected) and first.reason is RejectReason.RATE_LIMITED
        sent = len(venue.server.requests)

        await venue.advance(60)
        again = await ex.create_market_order(SYMBOL, OrderSide.BUY, QTY, client_order_id="tc-b-e0")
        assert isinstance(again, Rejected) and again.retryable
        with pytest.raises(ExchangeUnavailable) as refused:
            await ex.fetch_positions()
        assert refused.value.rate_limited
        assert len(venue.server.requests) == sent  # nothing went out during the ban

        await venue.advance(61)
        after = await ex.create_market_order(SYMBOL, OrderSide.BUY, QTY, client_order_id="tc-b-e0")
        assert isinstance(after, Accepted), after
    finally:
        await venue.close()


async def test_a_waves_leverage_reread_asks_binance_for_a_symbols_configuration_once() -> None:
    from tradecore.adapters.clock import SequentialIds, SystemClock
    from tradecore.app.leverage import MarginDesk
    from tradecore.app.recorder import Recorder
    from tradecore.domain.sizing import SizingParams
    from tradecore.testing import EventLog

    venue = LoopbackVenue.binance(marks={SYMBOL: "50000"})
    try:
        recorder = Recorder(EventLog(), SystemClock(), SequentialIds())
        desk = MarginDesk(venue.exchange, recorder, SizingParams())
        assert not hasattr(await desk.prepare(SYMBOL), "detail")  # set up once
        before = len(venue.server.requests)
        await desk.prepare(SYMBOL, reread=True)  # what every wave asks of each candidate
        asked = [(m, p, dict(q)) for m, p, q in venue.server.requests[before:]]
        assert [(m, p) for m, p, _ in asked] == [("GET", "/fapi/v1/symbolConfig")], asked
        assert asked[0][2].get("symbol") == SYMBOL  # this symbol's, not every symbol's
    finally:
        await venue.close()


async def test_a_bybit_403_is_an_ip_ban_that_stops_every_request_for_ten_minutes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Bybit: "If you receive an HTTP 403 (Access Denied) response, your IP has been either
    temporarily or permanently banned" (v5 Rate Limit, IP Rate Limit; "usually 30 minutes");
    "If you encounter the error "403, access too frequent" ... terminate all HTTP sessions and
    wait for at least 10 minutes" (bybit-exchange.github.io/docs/p2p/rate-limit). Retrying
    extends it, like Binance's 418: nothing goes out for the ban's shortest length."""
    venue = LoopbackVenue.bybit(marks={SYMBOL: "50000"})
    try:
        ex = venue.exchange
        await ex.load_markets()
        monkeypatch.setattr(venue.dialect, "rate_limited", lambda: (403, "access too frequent"))
        venue.inject(Fault.rate_limit(Op.MARKET_ORDER))
        first = await ex.create_market_order(SYMBOL, OrderSide.BUY, QTY, client_order_id="tc-b-e0")
        assert isinstance(first, Rejected) and first.reason is RejectReason.RATE_LIMITED, first
        sent = len(venue.server.requests)

        await venue.advance(9 * 60)
        with pytest.raises(ExchangeUnavailable) as refused:
            await ex.fetch_positions()
        assert refused.value.rate_limited
        assert len(venue.server.requests) == sent  # nothing went out during the ban

        await venue.advance(61)
        after = await ex.create_market_order(SYMBOL, OrderSide.BUY, QTY, client_order_id="tc-b-e1")
        assert isinstance(after, Accepted), after
    finally:
        await venue.close()
