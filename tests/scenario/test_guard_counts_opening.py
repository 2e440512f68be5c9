"""A position whose open is still in flight but which the venue holds without a stop (its
stop refused, the open retrying) is counted unprotected by a guard pass that sees it, though
the guard leaves it to its open (one writer).

Found by the simulator (bybit seed 63, `guard_blind`): the stop of a new position was
refused three times before the open rolled it back; a guard pass in between reported
`unprotected: 0` — issue 10, item 2: while a position has no stop "the guard's events count
it as unprotected".
"""

import asyncio
from decimal import Decimal

import pytest

from tradecore.app.open_position import OpenRequest
from tradecore.app.protection import ProtectionReport
from tradecore.domain.model import Side
from tradecore.testing import Fault, Op, RejectReason

from .harness import App


@pytest.mark.stop_after_fill
async def test_a_bare_position_whose_open_is_retrying_its_stop_is_counted_unprotected(
    app: App,
) -> None:
    app.gaps_allowed = 1  # bare from the fill until the stop's third try
    stop_op = Op.POSITION_STOP if app.venue.exchange.capabilities.position_stop else Op.STOP_ORDER
    app.venue.inject(Fault.reject(RejectReason.INSUFFICIENT_BALANCE, stop_op, times=2))
    request = OpenRequest(
        symbol="BTCUSDT",
        side=Side.LONG,
        quantity=Decimal("0.004"),
        rules=app.venue.rules("BTCUSDT"),
    )

    async def guard_meanwhile() -> ProtectionReport:
        # the entry filled (after the symbol's leverage set-up, however long that took) and
        # the first stop was refused: the position stands bare while the open retries
        while app.venue.position("BTCUSDT") is None:
            await app.clock.sleep(0.01)
        await app.clock.sleep(0.06)
        return await app.guard.check()

    opened, report = await app.run(asyncio.gather(app.opener.open(request), guard_meanwhile()))

    assert opened.opened  # the third try stood: the open ends protected
    assert (report.unprotected, report.fixed, report.failed) == (1, 0, 0)  # seen, left alone
    assert len(app.venue.stops("BTCUSDT")) == 1 or app.venue.position("BTCUSDT").stop_price
