"""The journal tells what happened on the venue, in the order it happened (issue 12, item 5):
a new stop before the old one's cancel, a stop that filled as filled, a move counted once."""

import asyncio

from tradecore.adapters.reporting.telemetry import Telemetry
from tradecore.domain.events import EventType
from tradecore.domain.model import Side

from .harness import App, follow_marks, pass_time
from .test_trailing import mark, open_and_trail


async def trail_three_times(app: App) -> str:
    follower = asyncio.create_task(follow_marks(app, ["BTCUSDT"]))
    position_id = await open_and_trail(app, "BTCUSDT", Side.LONG, "0.004")
    for price in ("50400", "50800", "51200", "51600"):
        await mark(app, "BTCUSDT", price)
    follower.cancel()
    return position_id


async def test_a_trailing_move_counts_as_one_stop_move(app: App) -> None:
    await trail_three_times(app)
    telemetry = Telemetry()
    for event in app.sink.events:
        telemetry.observe(event)

    moves = len(app.sink.of(EventType.TRAILING_STOP_UPDATED))
    assert moves >= 2
    assert telemetry.stop_moves == len(app.sink.of(EventType.STOP_LOSS_REPLACED)) == moves


async def test_the_new_stop_is_journaled_before_the_old_ones_cancel(app: App) -> None:
    position_id = await trail_three_times(app)
    mine = [e for e in app.sink.events if e.position_id == position_id]
    cancels = [e for e in mine if e.type is EventType.STOP_LOSS_CANCELLED]
    if not cancels:  # a venue that moves its stop in place cancels nothing
        return
    for cancel in cancels:
        placed = [
            e
            for e in mine
            if e.type in (EventType.STOP_LOSS_PLACED, EventType.STOP_LOSS_REPLACED)
            and e.data.get("previous_price") is not None
            and e.order_id != cancel.order_id
        ]
        before = [e for e in placed if mine.index(e) < mine.index(cancel)]
        assert before, f"the cancel of {cancel.order_id} is journaled before its replacement"
        assert before[-1].created_at <= cancel.created_at


async def test_a_stop_that_filled_is_journaled_as_filled_not_cancelled(app: App) -> None:
    result = await app.open("BTCUSDT", Side.LONG, "0.004")
    assert result.position is not None
    position = await app.store.positions.get(result.position.id)
    assert position is not None and position.stop_price is not None
    await app.venue.set_mark("BTCUSDT", str(position.stop_price - 100))  # the stop fires
    await pass_time(app, 1)
    assert app.venue.position("BTCUSDT") is None

    await app.run(app.sync.sync())

    mine = [e for e in app.sink.events if e.position_id == position.id]
    cancelled = [
        e for e in mine if e.type is EventType.STOP_LOSS_CANCELLED and e.data.get("cancelled")
    ]
    assert cancelled == [], "a stop that filled is journaled as cancelled"
    [filled] = [e for e in mine if e.type.value == "stop_loss_filled"]
    assert filled.order_id == position.stop_order_id
