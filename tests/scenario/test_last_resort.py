"""Issue 10, story 4: when the last resort fails the open ends, the position is known as
unprotected, and the guard keeps trying every pass until it is protected."""

import pytest

from tradecore.domain.model import Side
from tradecore.domain.positions import PositionState
from tradecore.testing import Fault, Op, RejectReason

from .harness import App


def stop_op(app: App) -> Op:
    return Op.POSITION_STOP if app.venue.exchange.capabilities.position_stop else Op.STOP_ORDER


@pytest.mark.stop_after_fill
async def test_a_position_left_bare_by_a_failed_last_resort_is_protected_by_the_next_pass(
    app: App,
) -> None:
    app.gaps_allowed = 1  # bare from the failed last resort until the guard's pass
    app.venue.inject(
        Fault.reject(RejectReason.INVALID_PRICE, stop_op(app), times=4),  # 3 tries + emergency
        Fault.reject(RejectReason.INVALID_QUANTITY, Op.MARKET_ORDER, skip=1),  # the close
    )

    result = await app.open("BTCUSDT", Side.LONG, "0.004")

    assert not result.opened
    assert app.venue.position("BTCUSDT") is not None and app.venue.stops("BTCUSDT") == []
    assert await app.store.operations.in_flight() == []  # the open ended
    position = await app.store.positions.open_for(app.venue.exchange.venue, "BTCUSDT")
    assert position is not None and position.state is PositionState.ACTIVE

    report = await app.run(app.guard.check())

    assert report.unprotected == 1 and report.fixed == 1
    assert len(app.venue.stops("BTCUSDT")) == 1 or app.venue.position("BTCUSDT").stop_price
    assert app.guard.unprotected == 0


@pytest.mark.stop_after_fill
async def test_the_guard_retries_every_pass_while_the_venue_refuses_the_stop(app: App) -> None:
    app.gaps_allowed = 1
    app.venue.inject(
        Fault.reject(RejectReason.INVALID_PRICE, stop_op(app), times=4),
        Fault.reject(RejectReason.INVALID_QUANTITY, Op.MARKET_ORDER, skip=1),
    )
    await app.open("BTCUSDT", Side.LONG, "0.004")
    app.venue.inject(Fault.reject(RejectReason.INVALID_PRICE, stop_op(app), times=2))

    first = await app.run(app.guard.check())
    assert app.guard.unprotected == 1  # what /health, the metric and the monitor show
    second = await app.run(app.guard.check())
    third = await app.run(app.guard.check())

    assert (first.failed, second.failed, third.failed) == (1, 1, 0)
    assert third.fixed == 1 and app.guard.unprotected == 0


@pytest.mark.stop_after_fill
async def test_a_position_the_guard_protected_after_a_failed_open_is_trailed(app: App) -> None:
    app.gaps_allowed = 1
    app.venue.inject(
        Fault.reject(RejectReason.INVALID_PRICE, stop_op(app), times=4),
        Fault.reject(RejectReason.INVALID_QUANTITY, Op.MARKET_ORDER, skip=1),
    )
    result = await app.open("BTCUSDT", Side.LONG, "0.004")
    assert result.position is not None
    await app.run(app.guard.check())  # protected now

    assert app.trailing.state(result.position.id) is not None  # and trailed from now on
