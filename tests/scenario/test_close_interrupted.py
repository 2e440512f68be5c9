"""A market close a crash cut off, its CLOSE operation still in flight: the restart looks
its order up by client id and journals it, so the position's close names the bot's order
(simulator beyond the CI seeds, binance 2338; tests/simulation/test_close_crash.py). A venue
that does not answer that look-up at restart (a 5xx for a while) makes recovery try again
from the top, never end the operation not knowing (review 15: it was ended as "not found",
and the close came back as a phantom one)."""

from decimal import Decimal

import pytest

from tradecore.adapters.reporting.telemetry import Telemetry
from tradecore.domain.events import EventType
from tradecore.domain.model import Side
from tradecore.domain.orders import OrderRole, client_order_id
from tradecore.domain.positions import Operation, OperationKind
from tradecore.testing import Fault, FaultKind, Op

from .outside import btc_venue, running


@pytest.mark.parametrize("name", ["binance", "bybit"])
@pytest.mark.parametrize("answers", ["at once", "after 5xx"])
async def test_an_interrupted_close_is_named_as_what_closed_the_position(
    name: str, answers: str
) -> None:
    venue = btc_venue(name)
    async with running(venue) as app:
        await app.open("BTCUSDT", Side.LONG, "0.01")
        [position] = await app.store.positions.open_positions()
        # the process that dies: it journals a CLOSE, sends its market order, and dies on
        # the answer (what StopWriter.market_close does up to its order's record)
        operation = Operation(
            id="close-1",
            kind=OperationKind.CLOSE,
            venue=position.venue,
            symbol="BTCUSDT",
            position_id=position.id,
            started_at=venue.now(),
            client_order_ids=(client_order_id("close-1", OrderRole.EXIT),),
        )
        await app.store.operations.start(operation)
        await app.run(
            venue.exchange.create_market_order(
                "BTCUSDT",
                position.side.exit,
                Decimal("0.01"),
                client_order_id=operation.client_order_ids[0],
                reduce_only=True,
            )
        )
        await app.crash()
        assert venue.position("BTCUSDT") is None
        if answers == "after 5xx":
            venue.inject(Fault(kind=FaultKind.SERVER_ERROR, op=Op.FETCH_ORDER, times=10))
        await app.restart()

        assert await app.store.operations.in_flight() == []
        closed = [
            e for e in app.events.of(EventType.POSITION_CLOSED) if e.position_id == position.id
        ]
        assert len(closed) == 1
        assert closed[0].order_id is not None
        assert closed[0].data["reason"] == f"exit order {closed[0].order_id} filled"
        telemetry = Telemetry()  # the guard's market close is no aged exit
        for event in app.events.events:
            telemetry.observe(event)
        assert telemetry.aged_exits == 0
        assert not [
            e
            for e in app.events.of(EventType.PHANTOM_POSITION_CLOSED)
            if e.position_id == position.id
        ]
