"""While the trailing stop owns a position's stop and is alive, the guard still leaves one.

Found by `test_attack_schedule` (binance, seed 6): a person put a second stop on a trailed
position; every later guard pass left both standing, because the domain skipped a position
whose trailing stop was healthy altogether — extras included. The invariant is one stop for
the full quantity (two only while a replacement is in flight), and the old reason for the
exemption (the guard racing the trailing move) is gone: the keeper decides under the
symbol's lock on a fresh read. The trailing stop's own stop is still never taken over.
"""

import asyncio
from decimal import Decimal

from tradecore.domain.positions import StopOwner

from .harness import App, follow_marks, pass_time
from .invariants import stop_problems
from .test_stop_ownership import opened


async def trailed(app: App) -> str:
    """A long BTC position whose trailing stop has moved the stop and is alive."""
    position_id = await opened(app, "BTCUSDT", "0.004")
    position = await app.store.positions.get(position_id)
    assert position is not None
    await app.trailing.start(position)
    for price in ("50400", "51000", "51600"):
        await app.venue.set_mark("BTCUSDT", price)
        await pass_time(app, 61)
    trailed = await app.store.positions.get(position_id)
    assert trailed is not None and trailed.stop_owner is StopOwner.TRAILING
    return position_id


async def test_a_second_stop_a_person_added_to_a_trailed_position_is_cancelled(
    app: App,
) -> None:
    follower = asyncio.create_task(follow_marks(app, ["BTCUSDT"]))
    try:
        position_id = await trailed(app)
        held = app.venue.position("BTCUSDT")
        assert held is not None
        app.venue.manual_stop("BTCUSDT", held.side.exit, held.quantity, "49000")

        await app.run(app.guard.check())

        assert stop_problems(app.venue) == []  # one stop, for the full quantity
        position = await app.store.positions.get(position_id)
        assert position is not None and position.stop_owner is StopOwner.TRAILING
        assert position.stop_price is not None and position.stop_price > Decimal("49000")
    finally:
        follower.cancel()


async def test_a_trailed_stop_follows_a_partial_close_by_hand(app: App) -> None:
    follower = asyncio.create_task(follow_marks(app, ["BTCUSDT"]))
    try:
        await trailed(app)
        held = app.venue.position("BTCUSDT")
        assert held is not None
        app.venue.manual_order("BTCUSDT", held.side.exit, "0.002", reduce_only=True)

        await app.run(app.sync.sync())
        await app.run(app.guard.check())

        assert stop_problems(app.venue) == []  # the stop is for the 0.002 left
    finally:
        follower.cancel()
