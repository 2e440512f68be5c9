"""A stop for less than the position leaves the rest of it without a stop: the guard counts
it as unprotected (its event, /health, metrics, the monitor) until the stop is resized.

Found by the simulator (binance seeds 51, 56, 95, `guard_blind`): a person added to a
position by hand, so its stop covered 0.065 of 0.085; the venue refused the resized stop
for a while, and every guard pass reported `unprotected: 0` — the keeper counted only a
position with no stop at all (issue 10, item 2: a position "has one stop-loss for its full
quantity", and while it has none "the guard's events count it as unprotected").
"""

import pytest

from tradecore.domain.model import Side
from tradecore.testing import Fault, Op, RejectReason

from .harness import App


async def test_a_stop_for_part_of_the_position_is_counted_unprotected_until_resized(
    app: App,
) -> None:
    if app.venue.exchange.capabilities.position_stop:
        pytest.skip("a position-attached stop covers whatever the position holds")
    assert (await app.open("BTCUSDT", Side.LONG, "0.004")).opened
    app.venue.open_by_hand("BTCUSDT", Side.LONG, "0.002")  # a person adds to it: 0.006
    app.venue.inject(Fault.reject(RejectReason.INVALID_PRICE, Op.STOP_ORDER))

    refused = await app.run(app.guard.check())

    assert (refused.unprotected, refused.fixed, refused.failed) == (1, 0, 1)
    assert app.guard.unprotected == 1  # what /health, the metric and the monitor show

    resized = await app.run(app.guard.check())

    assert (resized.unprotected, resized.fixed, resized.failed) == (1, 1, 0)
    assert app.guard.unprotected == 0
    [stop] = app.venue.stops("BTCUSDT")
    assert stop.quantity == app.venue.position("BTCUSDT").quantity
